"""The slurm target: one node per topology rank, addresses known only at run time.

A node's own address and its peers' appear as Ref words (${NODE_ADDR}, ${NODE_1_ADDR}), filled
in by node.sh from what SLURM allocated; node.sh resolves exactly the peers this placement gave
out. Each node has its own ports, so only workers of one node are spread.
"""

from __future__ import annotations

from ..words import Ref, Word
from .base import Placement


class SlurmPlacement(Placement):
    name = "slurm"
    in_job = True
    files = (("launch.sh", "slurm/launch.sh.j2"), ("node.sh", "slurm/node.sh.j2"), ("lib.sh", "lib.sh"),
             ("preflight.sh", "preflight.sh"),
             ("README.md", "README.md.j2"))

    def node_of(self, rank: int) -> int:
        return rank

    def node_count(self, ranks: int) -> int:
        return ranks

    def label(self, node: int, prefill_ranks: list[int], decode_ranks: list[int]) -> str:
        if node in prefill_ranks:
            what = f"prefill node {prefill_ranks.index(node)}"
            return what + (" + router" if node == prefill_ranks[0] else "")
        return f"decode node {decode_ranks.index(node)}"

    def bind_host(self, rank: int) -> Ref:
        return Ref("NODE_ADDR")

    def router_bind_host(self) -> str:
        return "0.0.0.0"

    def reach(self, rank: int) -> Ref:
        # Read under the node's own name everywhere, its own node included.
        self._peers.add(rank)
        return Ref(f"NODE_{rank}_ADDR")

    def port(self, base: int, node_rank: int, worker: int = 0, per_node: int = 1) -> int:
        return base + worker

    def engine_env(self) -> dict:
        return {"VLLM_HOST_IP": Ref("NODE_ADDR")}

    def log_dir(self) -> Word:
        # One directory per job, shared by every node's logs.
        return (Ref("LOG_ROOT"), "/job-", Ref("SLURM_JOB_ID"))

    def container_prefix(self) -> Word:
        return ("recipec-" + self.recipe.name + "-job", Ref("SLURM_JOB_ID"))

    def directives(self, nodes: int) -> tuple:
        s = self.recipe.slurm
        out = [("job-name", s.job_name or self.recipe.name), ("nodes", str(nodes)), ("ntasks-per-node", "1")]
        if s.partition:
            out.append(("partition", s.partition))
        if s.account:
            out.append(("account", s.account))
        out.append(("time", s.time_limit))
        if s.exclusive:
            out.append(("exclusive", ""))
        out += sorted(s.extra_directives.items())
        return tuple(out)
