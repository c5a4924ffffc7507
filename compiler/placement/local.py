"""The local target: the whole stack on this machine, every address 127.0.0.1.

Every instance of every role shares one machine, so each needs its own ports: a role's ports are
spread by node and worker from its base; and its own devices: prefill engines take the first
devices in order, decode engines the ones after (RC967 refuses a stack that needs more).
"""

from __future__ import annotations

from ..parallel import gpus_per_worker
from ..words import Ref, Word
from .base import LOCALHOST, Placement


class LocalPlacement(Placement):
    name = "local"
    literal_addresses = True
    one_machine = True
    files = (("launch.sh", "local/launch.sh.j2"), ("lib.sh", "lib.sh"), ("preflight.sh", "preflight.sh"), ("README.md", "README.md.j2"))

    def node_of(self, rank: int) -> int:
        return 0

    def node_count(self, ranks: int) -> int:
        return 1

    def label(self, node: int, prefill_ranks: list[int], decode_ranks: list[int]) -> str:
        return "this machine"

    def bind_host(self, rank: int) -> str:
        return LOCALHOST

    def router_bind_host(self) -> str:
        return LOCALHOST

    def reach(self, rank: int) -> str:
        return LOCALHOST

    def port(self, base: int, node_rank: int, worker: int = 0, per_node: int = 1) -> int:
        return base + node_rank * per_node + worker

    def devices(self, role: str, index: int, per_worker: int) -> tuple:
        r = self.recipe
        start = index * per_worker
        if role == "decode":
            start += r.prefill.nodes * r.prefill.workers_per_node * gpus_per_worker(r, "prefill")
        return tuple(range(start, start + per_worker))

    def log_dir(self) -> Word:
        # RUN_ID is set by launch.sh: UTC time and PID, or the user's own name for the run.
        return (Ref("LOG_ROOT"), "/", Ref("RUN_ID"))

    def container_prefix(self) -> Word:
        return ("recipec-" + self.recipe.name + "-", Ref("RUN_ID"))
