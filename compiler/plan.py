"""Stage 4, plan: a checked Recipe -> a Plan, where every value of the bundle is computed once.

Takes the Recipe and a target ("local" or "slurm"); gives nodes, services, ports, argv lists, env,
readiness URLs and the ordered start/wait steps of each node. Templates only print what is here.

Addresses: on the local target every service runs on 127.0.0.1 and ports are spread so that no two
services of the whole stack share one. On slurm, a node's own address and its peers' are only known
at run time: they appear as ``Ref`` words (``${NODE_ADDR}``, ``${NODE_1_ADDR}``), filled in by the
node script from what SLURM allocated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from .engine_args import (LMCACHE_CONNECTOR, MOONCAKE_CONNECTOR, NIXL_CONNECTORS, fmt, kv_transfer_config,
                          sourced_flags, uses)
from .schedule import order_steps

if TYPE_CHECKING:  # at run time these are compiled Records (compiled.py), not pydantic models
    from .model import Recipe, RoleSpec

TARGETS = ("local", "slurm")


@dataclass(frozen=True)
class Ref:
    """A shell variable, read when the script runs (never a recipe value)."""

    name: str


Word = Union[str, tuple]  # a literal, or a tuple of literals and Refs concatenated


@dataclass(frozen=True)
class PortUse:
    port: int
    service: str
    purpose: str
    keypath: tuple = ()  # the recipe key the port comes from (where a conflict is reported)


@dataclass(frozen=True)
class Service:
    name: str
    role: str  # lmcache | prefill | decode | router | client
    node: int  # index into Plan.nodes; on SLURM also the task rank
    argv: tuple
    env: tuple = ()  # (NAME, Word) pairs, in order
    ports: tuple = ()
    ready_url: Word | None = None
    log: str = ""
    after: tuple = ()  # services that must be ready before this one starts
    critical: bool = True
    sources: tuple = ()  # (flag word, recipe key path) of each flag: where lint reports on it


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


@dataclass(frozen=True)
class Tunable:
    name: str
    default: Word
    why: str


@dataclass(frozen=True)
class Plan:
    recipe: Recipe
    recipe_path: str
    recipe_sha256: str
    overrides: tuple
    target: str
    nodes: tuple
    services: tuple
    tunables: tuple
    router_url: Word
    client: Service | None
    nodes_needed: int
    sbatch: tuple  # (key, value) pairs for #SBATCH lines
    version: str
    peer_addresses: tuple = ()  # node indexes whose NODE_<i>_ADDR some word reads (slurm)


LOCALHOST = "127.0.0.1"
RUNTIME_VARIABLES = ("ROUTER_URL", "LOG_DIR")


def client_word(arg: str) -> Word:
    """Client argv item: ${ROUTER_URL} and ${LOG_DIR} become run-time variables, all else literal."""
    parts: list = []
    rest = arg
    while rest:
        hits = [(rest.find("${" + v + "}"), v) for v in RUNTIME_VARIABLES if "${" + v + "}" in rest]
        if not hits:
            parts.append(rest)
            break
        at, var = min(hits)
        if at:
            parts.append(rest[:at])
        parts.append(Ref(var))
        rest = rest[at + len(var) + 3:]
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts[0]
    return tuple(parts)


@dataclass
class _Layout:
    """Who runs where: node indexes of each role, and each service's host address word."""

    target: str
    recipe: Recipe
    prefill_nodes: list[int] = field(default_factory=list)
    decode_nodes: list[int] = field(default_factory=list)

    def __post_init__(self):
        p, d = self.recipe.prefill.nodes, self.recipe.decode.nodes
        self.prefill_nodes = list(range(p))
        self.decode_nodes = list(range(p, p + d))

    def addr(self, node: int, here: int | None = None) -> Word:
        if self.target == "local":
            return LOCALHOST
        return Ref("NODE_ADDR") if node == here else Ref(f"NODE_{node}_ADDR")

    def node_of(self, index: int) -> int:
        return 0 if self.target == "local" else index

    def spread(self, base: int, node_rank: int, worker: int, per_node: int) -> int:
        """Port of a worker: on one machine every instance of the stack needs its own."""
        if self.target == "local":
            return base + node_rank * per_node + worker
        return base + worker


def build_plan(recipe: Recipe, target: str, *, recipe_path: str, recipe_sha256: str,
               overrides: tuple = (), version: str = "0") -> Plan:
    if target not in TARGETS:
        raise ValueError(target)
    lay = _Layout(target, recipe)
    services: list[Service] = []
    lmcache_by_node: dict[int, tuple[Service, int]] = {}  # node -> (its LMCache server, MP port)
    lm = recipe.lmcache

    # LMCache: one server per node of each role it serves; prefill engines there connect to it.
    if lm is not None:
        for role in lm.roles:
            node_ranks = lay.prefill_nodes if role == "prefill" else lay.decode_nodes
            for rank in node_ranks:
                i = len(lmcache_by_node)
                port = lm.port + (i if target == "local" else 0)
                http_port = lm.http_port + (i if target == "local" else 0)
                argv = [*lm.command, "--host", lm.host, "--port", str(port),
                        "--http-host", LOCALHOST, "--http-port", str(http_port)]
                sources = {"--host": ("lmcache", "host"), "--port": ("lmcache", "port"),
                           "--http-host": ("lmcache",), "--http-port": ("lmcache", "http-port")}
                for key in ("l1_size_gb", "l1_init_size_gb", "l1_read_ttl_seconds", "chunk_size",
                            "max_workers", "eviction_policy", "supported_transfer_mode"):
                    value = getattr(lm, key)
                    if value is not None:
                        flag = "--" + key.replace("_", "-")
                        argv += [flag, fmt(value)]
                        sources[flag] = ("lmcache", flag[2:])
                argv += sourced_flags(lm.args, ("lmcache", "args"), sources)
                svc = Service(
                    name=f"lmcache-{i}", role="lmcache", node=lay.node_of(rank), argv=tuple(argv),
                    env=tuple((k, fmt(v)) for k, v in lm.env.items()),
                    ports=(PortUse(port, f"lmcache-{i}", "LMCache MP (ZMQ)", ("lmcache", "port")),
                           PortUse(http_port, f"lmcache-{i}", "LMCache HTTP (health)",
                                   ("lmcache", "http-port"))),
                    ready_url=f"http://{LOCALHOST}:{http_port}/healthcheck", log=f"lmcache-{i}.log",
                    sources=tuple(sources.items()))
                lmcache_by_node[rank] = (svc, port)
                services.append(svc)

    engines = {"prefill": [], "decode": []}
    for role, spec, node_ranks in (("prefill", recipe.prefill, lay.prefill_nodes),
                                   ("decode", recipe.decode, lay.decode_nodes)):
        for r_index, rank in enumerate(node_ranks):
            for w in range(spec.workers_per_node):
                svc = _engine(recipe, lay, role, spec, rank, r_index, w, *lmcache_by_node.get(rank, (None, None)))
                engines[role].append(svc)
                services.append(svc)

    router = _router(recipe, lay, engines)
    services.append(router)
    router_url: Word = (f"http://{LOCALHOST}:{recipe.router.port}" if target == "local"
                        else ("http://", Ref("NODE_0_ADDR"), f":{recipe.router.port}"))
    client = _client(recipe, lay, router)

    nodes_needed = recipe.prefill.nodes + recipe.decode.nodes
    if target == "local":
        nodes = (_node_plan(0, "this machine", services, [], client, lay),)
    else:
        nodes = tuple(_node_plan(rank, _label(rank, lay), [s for s in services if s.node == rank],
                                 [s for s in services if s.node != rank], client if rank == 0 else None,
                                 lay)
                      for rank in range(nodes_needed))
    peers: list = []
    if target == "slurm":  # on the local target every address is 127.0.0.1: no peers to look up
        words = [w if isinstance(w, tuple) else (w,) for s in services
                 for w in (*s.argv, *(v for _, v in s.env), s.ready_url)]
        words.append(router_url if isinstance(router_url, tuple) else (router_url,))
        peers = sorted({int(p.name.split("_")[1]) for w in words if isinstance(w, tuple)
                        for p in w if isinstance(p, Ref) and p.name.startswith("NODE_") and p.name != "NODE_ADDR"})
    return Plan(
        peer_addresses=tuple(peers),
        recipe=recipe, recipe_path=recipe_path, recipe_sha256=recipe_sha256, overrides=tuple(overrides),
        target=target, nodes=nodes, services=tuple(services), tunables=_tunables(recipe, target),
        router_url=router_url, client=client, nodes_needed=nodes_needed,
        sbatch=_sbatch(recipe, nodes_needed), version=version)


def _log_root(recipe: Recipe) -> Word:
    """Beside the bundle, never inside it: a rebuild replaces the bundle directory, and the logs of
    the run that just failed are the ones most needed. A relative log-dir L is `<bundle>.L`."""
    return recipe.log_dir if recipe.log_dir.startswith("/") else (Ref("BUNDLE_DIR"), "." + recipe.log_dir)


def _log_dir(target: str) -> Word:
    """One directory per run under LOG_ROOT, never an earlier run's: on SLURM the job's (shared by
    every node's logs), locally RUN_ID's (set by launch.sh: UTC time and PID, or the user's)."""
    run = ("job-", Ref("SLURM_JOB_ID")) if target == "slurm" else (Ref("RUN_ID"),)
    return (Ref("LOG_ROOT"), "/", *run)


def _engine(recipe: Recipe, lay: _Layout, role: str, spec: RoleSpec, rank: int, r_index: int, w: int,
            lmcache: Service | None, lmcache_port: int | None) -> Service:
    index = r_index * spec.workers_per_node + w
    name = f"{role}-{index}"
    port = lay.spread(spec.port, r_index, w, spec.workers_per_node)
    here = lay.node_of(rank)
    host = lay.addr(rank, here=rank)
    eng = recipe.engine
    argv: list[Word] = list(eng.command)
    argv += [recipe.model.path] if eng.model_arg == "positional" else ["--model", recipe.model.path]
    argv += ["--host", host, "--port", str(port)]
    sources = {"--model": ("model", "path"), "--host": (role, "port"), "--port": (role, "port"),
               "--tensor-parallel-size": (role, "tensor-parallel-size")}
    if recipe.model.served_name:
        argv += ["--served-model-name", recipe.model.served_name]
        sources["--served-model-name"] = ("model", "served-name")
    argv += ["--tensor-parallel-size", str(spec.tensor_parallel_size)]
    for key, value in {**eng.args, **spec.args}.items():  # a role's value replaces the common one
        where = (role, "args") if key in spec.args else ("engine", "args")
        argv += sourced_flags({key: value}, where, sources)

    env: dict[str, Word] = {k: fmt(v) for k, v in {**eng.env, **spec.env}.items()}
    ports = [PortUse(port, name, f"{role} HTTP", (role, "port"))]
    if spec.workers_per_node > 1:
        tp = spec.tensor_parallel_size
        env[recipe.cluster.visible_devices_env] = ",".join(str(g) for g in range(w * tp, (w + 1) * tp))
    if lay.target == "slurm":
        env["VLLM_HOST_IP"] = Ref("NODE_ADDR")
    kv = spec.kv_transfer
    if kv is not None:
        if uses(kv, MOONCAKE_CONNECTOR) and kv.role != "kv_consumer":
            boot = lay.spread(spec.mooncake_bootstrap_port, r_index, w, spec.workers_per_node)
            env["VLLM_MOONCAKE_BOOTSTRAP_PORT"] = str(boot)
            ports.append(PortUse(boot, name, "Mooncake bootstrap", (role, "mooncake-bootstrap-port")))
        if uses(kv, NIXL_CONNECTORS):
            side = lay.spread(spec.nixl_side_channel_port, r_index, w, spec.workers_per_node)
            env["VLLM_NIXL_SIDE_CHANNEL_PORT"] = str(side)
            ports.append(PortUse(side, name, "NIXL side channel", (role, "nixl-side-channel-port")))
        # The node's own LMCache server; without one (a lint error, RC701) the section's values.
        lm = recipe.lmcache
        lm_port = lmcache_port if lmcache_port is not None else (lm.port if lm else 5555)
        config = kv_transfer_config(kv, lm.host if lm else LOCALHOST, lm_port)
        argv += ["--kv-transfer-config", json.dumps(config, separators=(",", ":"))]
        sources.setdefault("--kv-transfer-config", (role, "kv-transfer"))
    after = (lmcache.name,) if lmcache is not None and uses(kv, LMCACHE_CONNECTOR) else ()
    # Peers reach this engine by its node's address, read under the node's own name everywhere.
    reach = LOCALHOST if lay.target == "local" else Ref(f"NODE_{rank}_ADDR")
    return Service(name=name, role=role, node=here, argv=tuple(argv), env=tuple(env.items()),
                   ports=tuple(ports), ready_url=_url(reach, port, "/health"), log=f"{name}.log",
                   after=after, sources=tuple(sources.items()))


def _url(host: Word, port: int, path: str) -> Word:
    if isinstance(host, str):
        return f"http://{host}:{port}{path}"
    return ("http://", host, f":{port}{path}")


def _base_url(svc: Service) -> Word:
    url = svc.ready_url
    if isinstance(url, str):
        return url.rsplit("/", 1)[0]
    return url[:-1] + (url[-1].rsplit("/", 1)[0],)


def _router(recipe: Recipe, lay: _Layout, engines: dict) -> Service:
    r = recipe.router
    host = LOCALHOST if lay.target == "local" else "0.0.0.0"
    argv: list[Word] = [*r.command, "--host", host, "--port", str(r.port), "--vllm-pd-disaggregation"]
    mooncake = uses(recipe.prefill.kv_transfer, MOONCAKE_CONNECTOR)
    for svc in engines["prefill"]:
        argv += ["--prefill", _base_url(svc)]
        if mooncake:
            argv.append(dict(svc.env)["VLLM_MOONCAKE_BOOTSTRAP_PORT"])
    for svc in engines["decode"]:
        argv += ["--decode", _base_url(svc)]
    if r.kv_connector:
        argv += ["--kv-connector", r.kv_connector]
    if r.prefill_policy:
        argv += ["--prefill-policy", r.prefill_policy]
    if r.decode_policy:
        argv += ["--decode-policy", r.decode_policy]
    argv += ["--prometheus-port", str(r.prometheus_port)]
    sources = {"--host": ("router",), "--port": ("router", "port"), "--vllm-pd-disaggregation": ("router",),
               "--prefill": ("prefill", "port"), "--decode": ("decode", "port"),
               "--kv-connector": ("router", "kv-connector"), "--prefill-policy": ("router", "prefill-policy"),
               "--decode-policy": ("router", "decode-policy"), "--prometheus-port": ("router", "prometheus-port")}
    argv += sourced_flags(r.args, ("router", "args"), sources)
    node = lay.node_of(lay.prefill_nodes[0])
    ready_host = LOCALHOST if lay.target == "local" else Ref("NODE_0_ADDR")
    return Service(
        name="router", role="router", node=node, argv=tuple(argv),
        env=tuple((k, fmt(v)) for k, v in r.env.items()),
        ports=(PortUse(r.port, "router", "router HTTP", ("router", "port")),
               PortUse(r.prometheus_port, "router", "router Prometheus", ("router", "prometheus-port"))),
        ready_url=_url(ready_host, r.port, "/health"), log="router.log",
        after=tuple(s.name for s in engines["prefill"] + engines["decode"]),
        sources=tuple(sources.items()))


def _client(recipe: Recipe, lay: _Layout, router: Service) -> Service | None:
    if recipe.client is None:
        return None
    return Service(name="client", role="client", node=router.node,
                   argv=tuple(client_word(a) for a in recipe.client.command),
                   env=tuple((k, fmt(v)) for k, v in recipe.client.env.items()),
                   log="client.log", after=("router",), critical=False)


def _label(rank: int, lay: _Layout) -> str:
    if rank in lay.prefill_nodes:
        what = f"prefill node {lay.prefill_nodes.index(rank)}"
        return what + (" + router" if rank == lay.prefill_nodes[0] else "")
    return f"decode node {lay.decode_nodes.index(rank)}"


def _node_plan(rank: int, label: str, local: list[Service], remote: list[Service],
               client: Service | None, lay: _Layout) -> NodePlan:
    """One node's services, the order of its work (schedule.py), and the commands it needs."""
    steps = order_steps(rank, local, remote, client)
    users: dict[str, list[str]] = {"curl": ["health probes"], "setsid": ["start_service"]}
    for s in [*local, *((client,) if client is not None else ())]:
        if isinstance(s.argv[0], str):
            users.setdefault(s.argv[0], []).append(s.name)
    commands = sorted(users)
    return NodePlan(index=rank, label=label, services=tuple(local), remote=tuple(remote),
                    steps=tuple(steps), commands=tuple(commands),
                    ports=tuple(p for s in local for p in s.ports),
                    needs=tuple((c, ", ".join(users[c])) for c in commands))


def _tunables(recipe: Recipe, target: str) -> tuple:
    h = recipe.health
    return (
        Tunable("READY_TIMEOUT_S", str(h.ready_timeout_s), "seconds a service may take to become ready"),
        Tunable("PROBE_INTERVAL_S", str(h.probe_interval_s), "seconds between liveness/readiness probes"),
        Tunable("PROBE_TIMEOUT_S", str(h.probe_timeout_s), "seconds one HTTP probe may take"),
        Tunable("UNHEALTHY_AFTER", str(h.unhealthy_after),
                "failed health probes in a row, while serving, before a live service counts as hung"),
        Tunable("GRACE_PERIOD_S", str(h.grace_period_s), "seconds between TERM and KILL at teardown"),
        Tunable("LOG_TAIL_LINES", "40", "lines of a failed service's log to print"),
        Tunable("LOG_ROOT", _log_root(recipe), "where each run's log directory goes"),
        Tunable("LOG_DIR", _log_dir(target), "where this run's logs and PID files go"),
    )


def _sbatch(recipe: Recipe, nodes: int) -> tuple:
    s = recipe.slurm
    out = [("job-name", s.job_name or recipe.name), ("nodes", str(nodes)), ("ntasks-per-node", "1")]
    if s.partition:
        out.append(("partition", s.partition))
    if s.account:
        out.append(("account", s.account))
    out.append(("time", s.time_limit))
    if s.exclusive:
        out.append(("exclusive", ""))
    out += sorted(s.extra_directives.items())
    return tuple(out)
