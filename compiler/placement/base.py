"""What every placement answers (placement/__init__.py lists them)."""

from __future__ import annotations

from ..words import Word

LOCALHOST = "127.0.0.1"


class Placement:
    """One recipe's services placed on one target. Node ranks are the topology's (prefill nodes
    first, then decode); node indexes are the Plan's nodes, where the services of a rank run."""

    name: str = ""
    literal_addresses: bool = False  # every address is known at build time (argv words are literals)
    files: tuple = ()  # (bundle file, template) pairs of this target's bundle
    one_machine: bool = False  # every service runs where the launcher runs (what the README tells)
    in_job: bool = False  # every node's script runs as a task of a scheduler's job (pyxis needs one)

    def __init__(self, recipe):
        self.recipe = recipe
        self._peers: set[int] = set()

    def bundle_files(self) -> tuple:
        """(bundle file, template) pairs of this recipe's bundle: the target's, and the benchmark
        library where the recipe has a benchmark."""
        if self.recipe.benchmark is None:
            return self.files
        return (*self.files, ("bench.sh", "bench.sh"))

    # nodes
    def node_of(self, rank: int) -> int:
        raise NotImplementedError

    def node_count(self, ranks: int) -> int:
        raise NotImplementedError

    def label(self, node: int, prefill_ranks: list[int], decode_ranks: list[int]) -> str:
        raise NotImplementedError

    # addresses
    def bind_host(self, rank: int) -> Word:
        """The address an engine on this rank listens on."""
        raise NotImplementedError

    def router_bind_host(self) -> Word:
        raise NotImplementedError

    def reach(self, rank: int) -> Word:
        """The address services elsewhere reach this rank's services at."""
        raise NotImplementedError

    def peers(self) -> tuple:
        """Ranks whose address some word of the plan reads (given out by reach), sorted."""
        return tuple(sorted(self._peers))

    # ports, env, logs, scheduler
    def port(self, base: int, node_rank: int, worker: int = 0, per_node: int = 1) -> int:
        """The port of worker `worker` of the `node_rank`-th node of a role, from the role's base."""
        raise NotImplementedError

    def devices(self, role: str, index: int, per_worker: int) -> tuple:
        """The device ids engine `index` of `role` (0-based over the role's engines, in plan order)
        sees through the recipe's visible-devices variable; () leaves the variable unset."""
        per_node = getattr(self.recipe, role).workers_per_node
        if per_node == 1:  # one engine a node: it sees every device of its node
            return ()
        w = index % per_node
        return tuple(range(w * per_worker, (w + 1) * per_worker))

    def engine_env(self) -> dict:
        """Environment every engine gets from its placement."""
        return {}

    def log_dir(self) -> Word:
        """This run's log directory under LOG_ROOT: one per run, never an earlier run's."""
        raise NotImplementedError

    def container_prefix(self) -> Word:
        """What every container name of one run starts with: unique per run (job), so teardown
        removes exactly this run's containers; the service's name follows."""
        raise NotImplementedError

    def directives(self, nodes: int) -> tuple:
        """(key, value) scheduler directives of the launcher."""
        return ()


__all__ = ["Placement", "LOCALHOST"]
