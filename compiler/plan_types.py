"""What a Plan is made of: plain frozen data, made by plan.py (with a placement and schedule.py)
and read by the plan rules (rules/) and render.py. Nothing here computes a value of the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .placement import Target
from .validate import Recipe
from .words import Ref, Word

__all__ = ["Role", "StepKind", "Ref", "Word", "PortUse", "PortPlan", "Container", "Service", "Step", "NodePlan",
           "Tunable", "BenchPoint", "Benchmark", "Plan"]

# What a service is; its argv, readiness and place in the start order follow from it.
Role = Literal["lmcache", "prefill", "decode", "router", "client"]
# One block of a node script (templates/steps.j2 prints each kind).
StepKind = Literal["preflight", "start", "watch", "wait", "client", "benchmark", "serve", "serve_while_up"]


@dataclass(frozen=True)
class PortUse:
    port: int
    service: str
    purpose: str
    keypath: tuple = ()  # the recipe key the port comes from (where a conflict is reported)
    node: int = 0  # index into Plan.nodes of the node that binds it


@dataclass(frozen=True)
class PortPlan:
    """Every port of a plan, each with its owner, purpose, recipe key and node, in start order."""

    uses: tuple = ()

    def of_node(self, node: int) -> tuple:
        return tuple(u for u in self.uses if u.node == node)

    def conflicts(self) -> list[tuple[PortUse, PortUse]]:
        """(first owner, later one) of every port wanted twice on one node."""
        owners: dict[tuple, PortUse] = {}
        out = []
        for use in self.uses:
            first = owners.setdefault((use.node, use.port), use)
            if first is not use:
                out.append((first, use))
        return out


@dataclass(frozen=True)
class Container:
    """How a service is started in its image (containers.py, runtime/)."""

    runtime: str  # runtime/ name: podman, docker, pyxis, apptainer
    image: str
    name: Word | None  # the name teardown removes it by; None where the runtime removes it itself
    prefix: tuple  # words before the service's argv: the runtime, its options, the image
    env: tuple = ()  # (NAME, Word) of the runtime's client process (the container's env is in prefix)


@dataclass(frozen=True)
class Service:
    name: str
    role: Role
    node: int  # index into Plan.nodes; on SLURM also the task rank
    argv: tuple
    env: tuple = ()  # (NAME, Word) pairs, in order
    ports: tuple = ()  # this service's PortUses (also in Plan.ports)
    ready_url: Word | None = None
    log: str = ""
    after: tuple = ()  # services that must be ready before this one starts
    critical: bool = True
    sources: tuple = ()  # (flag word, recipe key path) of each flag: where lint reports on it
    command_words: int = 0  # argv[:command_words] is the executable and its subcommand (`vllm serve`)
    positionals: int = 0  # positional arguments after the command (the model of `vllm serve MODEL`)
    gpus: int = 0  # accelerators this service uses (an engine: TP x PP x local DP; parallel.py)
    container: Container | None = None  # None: started from the node's PATH

    @property
    def launch_argv(self) -> tuple:
        """What the node runs: the runtime's words, then the argv (the argv alone without one)."""
        return self.argv if self.container is None else self.container.prefix + self.argv

    @property
    def launch_env(self) -> tuple:
        """The env of the process the node starts (a container gets the service's env in prefix)."""
        return self.env if self.container is None else self.container.env

    @property
    def flags_at(self) -> int:
        """Index of the first argv word that a parser reads as a flag or a flag's value."""
        return self.command_words + self.positionals


@dataclass(frozen=True)
class Step:
    """One block of a node script, with the comment that says why it stands there."""

    kind: StepKind
    services: tuple = ()
    why: str = ""
    awaits: tuple = ()  # services of this step whose named containers must be running (container.sh)


@dataclass(frozen=True)
class NodePlan:
    index: int
    label: str
    services: tuple  # Service objects started on this node
    remote: tuple  # Service objects of other nodes this node waits for or watches
    steps: tuple
    commands: tuple  # executables this node needs on PATH
    ports: tuple = ()  # PortUse of every service of this node, for the preflight
    needs: tuple = ()  # (executable, what needs it) for each of commands, for the missing-command message
    gpus: int = 0  # accelerators the node's services use together (the preflight looks for them)
    checks: tuple = ()  # (check, word...) of each node check before anything starts (preflight.py)
    images: tuple = ()  # (runtime, image, service names): pulled or checked before anything starts
    mounts_needed: tuple = ()  # host paths containers mount that must exist before anything starts
    mounts_made: tuple = ()  # host paths containers mount that the node creates (KV directories)


@dataclass(frozen=True)
class Tunable:
    name: str
    default: Word
    why: str


@dataclass(frozen=True)
class BenchPoint:
    """One point of a sweep: the client's whole argv for it, and the file its result goes to."""

    name: str  # c8: names the point in messages, logs and files
    concurrency: int
    prompts: int
    result_file: str  # under RESULT_DIR; named by recipe, point and parameters
    argv: tuple  # the client's own argv (lint reads its flags)
    launch_env: tuple = ()  # (NAME, Word) of the process the node starts (the client's, or its runtime's)
    container: Container | None = None  # the client in the benchmark's image (containers.py); None: PATH

    @property
    def launch_argv(self) -> tuple:
        return self.argv if self.container is None else self.container.prefix + self.argv


@dataclass(frozen=True)
class Benchmark:
    """The benchmark step (bench.sh runs it): the "answers" check, then each point, gated."""

    node: int  # runs where the router runs
    points: tuple  # BenchPoint, in sweep order
    env: tuple  # (NAME, Word) pairs of the client
    sources: tuple  # (flag, recipe key path) of the client's flags, for lint
    command_words: int
    answer_body: str  # the JSON of the readiness completion
    prefill_metrics: tuple  # /metrics URL Words of every prefill engine (empty: PD not checked)
    decode_metrics: tuple
    # Words that run the interpreter reading result JSON in the benchmark's image (the runtime's
    # one-shot start, then python); empty: the host's BENCH_PYTHON.
    reader: tuple = ()
    mounts_needed: tuple = ()  # sources its containers mount that must exist on its node (a dataset file)


@dataclass(frozen=True)
class Plan:
    recipe: Recipe
    recipe_path: str
    recipe_sha256: str
    overrides: tuple
    target: Target
    nodes: tuple
    services: tuple
    tunables: tuple
    router_url: Word
    client: Service | None
    nodes_needed: int
    sbatch: tuple  # (key, value) pairs for #SBATCH lines
    version: str
    peer_addresses: tuple = ()  # node indexes whose NODE_<i>_ADDR some word reads (slurm)
    ports: PortPlan = PortPlan()
    files: tuple = ()  # (bundle file, template) pairs the placement's bundle is rendered from
    one_machine: bool = False  # the whole stack runs on the machine the launcher runs on
    benchmark: Benchmark | None = None  # replaces the client step (a recipe has one or the other)
    containers: bool = False  # some service runs in a container (container.sh is sourced)
    refused: tuple = ()  # (code, recipe key path, message): why this target cannot be built
