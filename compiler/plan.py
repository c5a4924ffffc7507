"""Stage 4, plan: a validated Recipe and a target -> a Plan, where every value of the bundle is
computed once.

Takes the Recipe and a target (a placement: placement/); gives nodes, services, the port table
(PortPlan), argv lists, env, readiness URLs and the ordered start/wait steps of each node
(schedule.py). The plan rules (rules/) and render read the Plan; nothing plans twice.

What differs between targets (node assignment, addresses, how ports are spread, the log
directory, scheduler directives, bundle files) is the placement's answer; this module asks it and
never compares target names. Addresses known only at run time are ``Ref`` words (words.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from .bench_plan import bench_tunables, plan_benchmark
from .containers import (contain, contain_benchmark, container_tunables, mounts_of, node_images,
                         refusal)
from .engine_args import (LMCACHE_CONNECTOR, MOONCAKE_CONNECTOR, NIXL_CONNECTORS, fmt, kv_transfer_json,
                          owned_source, role_flags, sourced_flags, uses)
from .memo import per_recipe
from .parallel import gpus_per_worker, uses_devices
from .placement import Placement, Target, placement_for
from .placement.base import LOCALHOST
from .preflight import node_checks
from .plan_types import Benchmark, NodePlan, Plan, PortPlan, PortUse, Service, Tunable
from .schedule import order_steps
from .validate import Recipe, RoleSpec
from .words import Ref, Word, joined

__all__ = ["build_plan", "client_word", "LOCALHOST", "Plan", "Service", "PortUse", "PortPlan", "NodePlan",
           "Tunable", "Ref", "Word"]

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


@dataclass(frozen=True)
class _Topology:
    """Node ranks of each role: prefill nodes first, then decode (the order of SLURM task ranks)."""

    prefill: list
    decode: list

    @classmethod
    def of(cls, recipe: Recipe) -> _Topology:
        p, d = recipe.prefill.nodes, recipe.decode.nodes
        return cls(list(range(p)), list(range(p, p + d)))


def build_plan(recipe: Recipe, target: Target, *, recipe_path: str, recipe_sha256: str,
               overrides: tuple = (), version: str = "0") -> Plan:
    place = placement_for(target, recipe)
    top = _Topology.of(recipe)
    services: list[Service] = []
    lmcache_by_rank: dict[int, tuple[Service, int]] = {}  # rank -> (its LMCache server, MP port)
    lm = recipe.lmcache

    # LMCache: one server per node of each role it serves; prefill engines there connect to it.
    if lm is not None:
        for role in lm.roles:
            for rank in (top.prefill if role == "prefill" else top.decode):
                svc, port = _lmcache(recipe, place, len(lmcache_by_rank), rank)
                lmcache_by_rank[rank] = (svc, port)
                services.append(svc)

    engines: dict[str, list[Service]] = {"prefill": [], "decode": []}
    for role, spec, ranks in (("prefill", recipe.prefill, top.prefill), ("decode", recipe.decode, top.decode)):
        for r_index, rank in enumerate(ranks):
            for w in range(spec.workers_per_node):
                lmcache, lmcache_port = lmcache_by_rank.get(rank, (None, None))
                svc = _engine(recipe, place, role, spec, rank, r_index, w, lmcache, lmcache_port)
                engines[role].append(svc)
                services.append(svc)

    router_rank = top.prefill[0]
    router = _router(recipe, place, engines, router_rank)
    services.append(router)
    router_url = _url(place.reach(router_rank), recipe.router.port, "")
    client = _client(recipe, router)
    # Each service in its container, where the recipe has one (containers.py; unchanged otherwise).
    services = [contain(recipe, place, s) for s in services]
    client = contain(recipe, place, client) if client is not None else None
    benchmark = contain_benchmark(recipe, place, plan_benchmark(
        recipe, router_url, router.node, [_base_url(s) for s in engines["prefill"]],
        [_base_url(s) for s in engines["decode"]]))
    contained = any(s.container is not None for s in [*services, *([client] if client else [])]) or bool(
        benchmark and benchmark.reader)
    _, mounts_needed, mounts_made = mounts_of(recipe) if contained else ((), (), ())

    nodes_needed = recipe.prefill.nodes + recipe.decode.nodes
    ports = PortPlan(tuple(p for s in services for p in s.ports))
    nodes = tuple(_node_plan(recipe, index, place.label(index, top.prefill, top.decode),
                             [s for s in services if s.node == index], [s for s in services if s.node != index],
                             client if client is not None and client.node == index else None,
                             ports.of_node(index), benchmark if benchmark and benchmark.node == index else None,
                             mounts_needed, mounts_made)
                  for index in range(place.node_count(nodes_needed)))
    return Plan(
        peer_addresses=place.peers(),
        recipe=recipe, recipe_path=recipe_path, recipe_sha256=recipe_sha256, overrides=tuple(overrides),
        target=target, nodes=nodes, services=tuple(services), tunables=_tunables(recipe, place),
        router_url=router_url, client=client, nodes_needed=nodes_needed,
        sbatch=place.directives(nodes_needed), version=version,
        ports=ports, files=place.bundle_files() + ((("container.sh", "container.sh"),) if contained else ()),
        one_machine=place.one_machine, benchmark=benchmark, containers=contained,
        refused=refusal(recipe, place, [*services, *([client] if client else [])], benchmark))


def _lmcache(recipe: Recipe, place: Placement, i: int, rank: int) -> tuple[Service, int]:
    """The i-th LMCache server, on node rank `rank`, and its MP port."""
    lm = recipe.lmcache
    node = place.node_of(rank)
    port = place.port(lm.port, i)
    http_port = place.port(lm.http_port, i)
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
    name = f"lmcache-{i}"
    svc = Service(
        name=name, role="lmcache", node=node, argv=tuple(argv),
        env=tuple((k, fmt(v)) for k, v in lm.env.items()),
        ports=(PortUse(port, name, "LMCache MP (ZMQ)", ("lmcache", "port"), node),
               PortUse(http_port, name, "LMCache HTTP (health)", ("lmcache", "http-port"), node)),
        ready_url=f"http://{LOCALHOST}:{http_port}/healthcheck", log=f"{name}.log",
        sources=tuple(sources.items()), command_words=len(lm.command))
    return svc, port


def _log_root(recipe: Recipe) -> Word:
    """Beside the bundle, never inside it: a rebuild replaces the bundle directory, and the logs of
    the run that just failed are the ones most needed. A relative log-dir L is `<bundle>.L`."""
    return recipe.log_dir if recipe.log_dir.startswith("/") else (Ref("BUNDLE_DIR"), "." + recipe.log_dir)


def _engine(recipe: Recipe, place: Placement, role: str, spec: RoleSpec, rank: int, r_index: int, w: int,
            lmcache: Service | None, lmcache_port: int | None) -> Service:
    index = r_index * spec.workers_per_node + w
    name = f"{role}-{index}"
    port = place.port(spec.port, r_index, w, spec.workers_per_node)
    node = place.node_of(rank)
    eng = recipe.engine
    argv: list[Word] = list(eng.command)
    positional = eng.model_arg == "positional"
    argv += [recipe.model.path] if positional else ["--model", recipe.model.path]
    argv += ["--host", place.bind_host(rank), "--port", str(port)]
    sources = {flag: owned_source(flag, role)
               for flag in ("--model", "--host", "--port", "--tensor-parallel-size")}
    if recipe.model.served_name:
        argv += ["--served-model-name", recipe.model.served_name]
        sources["--served-model-name"] = owned_source("--served-model-name", role)
    argv += ["--tensor-parallel-size", str(spec.tensor_parallel_size)]
    argv += role_flags(eng.args, spec.args, role, sources)  # a role's value replaces the common one

    env: dict[str, Word] = {k: fmt(v) for k, v in {**eng.env, **spec.env}.items()}
    ports = [PortUse(port, name, f"{role} HTTP", (role, "port"), node)]
    gpus = gpus_per_worker(recipe, role) if uses_devices(recipe) else 0
    devices = place.devices(role, index, gpus) if gpus else ()
    if devices:
        env[recipe.cluster.visible_devices_env] = ",".join(str(g) for g in devices)
    env.update(place.engine_env())
    kv = spec.kv_transfer
    if kv is not None:
        if uses(kv, MOONCAKE_CONNECTOR) and kv.role != "kv_consumer":
            boot = place.port(spec.mooncake_bootstrap_port, r_index, w, spec.workers_per_node)
            env["VLLM_MOONCAKE_BOOTSTRAP_PORT"] = str(boot)
            ports.append(PortUse(boot, name, "Mooncake bootstrap", (role, "mooncake-bootstrap-port"), node))
        if uses(kv, NIXL_CONNECTORS):
            side = place.port(spec.nixl_side_channel_port, r_index, w, spec.workers_per_node)
            env["VLLM_NIXL_SIDE_CHANNEL_PORT"] = str(side)
            ports.append(PortUse(side, name, "NIXL side channel", (role, "nixl-side-channel-port"), node))
        # The node's own LMCache server; without one (a lint error, RC701) the section's values.
        lm = recipe.lmcache
        lm_port = lmcache_port if lmcache_port is not None else (lm.port if lm else 5555)
        argv += ["--kv-transfer-config", kv_transfer_json(kv, lm.host if lm else LOCALHOST, lm_port)]
        sources.setdefault("--kv-transfer-config", owned_source("--kv-transfer-config", role))
    after = (lmcache.name,) if lmcache is not None and uses(kv, LMCACHE_CONNECTOR) else ()
    return Service(name=name, role=role, node=node, argv=tuple(argv), env=tuple(env.items()),
                   ports=tuple(ports), ready_url=_url(place.reach(rank), port, "/health"), log=f"{name}.log",
                   after=after, sources=tuple(sources.items()), command_words=len(eng.command),
                   positionals=1 if positional else 0, gpus=gpus)


def _url(host: Word, port: int, path: str) -> Word:
    return joined("http://", host, f":{port}{path}")


def _base_url(svc: Service) -> Word:
    url = svc.ready_url
    if isinstance(url, str):
        return url.rsplit("/", 1)[0]
    return url[:-1] + (url[-1].rsplit("/", 1)[0],)


def _router(recipe: Recipe, place: Placement, engines: dict, rank: int) -> Service:
    r = recipe.router
    node = place.node_of(rank)
    argv: list[Word] = [*r.command, "--host", place.router_bind_host(), "--port", str(r.port),
                        "--vllm-pd-disaggregation"]
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
    return Service(
        name="router", role="router", node=node, argv=tuple(argv),
        env=tuple((k, fmt(v)) for k, v in r.env.items()),
        ports=(PortUse(r.port, "router", "router HTTP", ("router", "port"), node),
               PortUse(r.prometheus_port, "router", "router Prometheus", ("router", "prometheus-port"), node)),
        ready_url=_url(place.reach(rank), r.port, "/health"), log="router.log",
        after=tuple(s.name for s in engines["prefill"] + engines["decode"]),
        sources=tuple(sources.items()), command_words=len(r.command))


def _client(recipe: Recipe, router: Service) -> Service | None:
    if recipe.client is None:
        return None
    return Service(name="client", role="client", node=router.node,
                   argv=tuple(client_word(a) for a in recipe.client.command),
                   env=tuple((k, fmt(v)) for k, v in recipe.client.env.items()),
                   log="client.log", after=("router",), critical=False,
                   command_words=len(recipe.client.command))


def _node_plan(recipe: Recipe, index: int, label: str, local: list[Service], remote: list[Service],
               client: Service | None, ports: tuple, bench: Benchmark | None, mounts_needed: tuple = (),
               mounts_made: tuple = ()) -> NodePlan:
    """One node's services, the order of its work (schedule.py), and the commands it needs;
    bench: the benchmark, where this node runs it."""
    # A started container must be running within its deadline (a hung runtime), for those it names.
    named = frozenset(s.name for s in [*local, *((client,) if client is not None else ())]
                      if s.container is not None and s.container.name is not None)
    steps = order_steps(index, local, remote, client, bench is not None, named)
    users: dict[str, list[str]] = {"curl": ["health probes"], "setsid": ["start_service"]}
    everything = [*local, *((client,) if client is not None else ())]
    for s in everything:
        if isinstance(s.launch_argv[0], str):
            users.setdefault(s.launch_argv[0], []).append(s.name)
    if bench is not None and not bench.reader:
        b = recipe.benchmark
        users.setdefault(b.command[0], []).append("benchmark")
        users.setdefault(b.python, []).append("benchmark results")
    elif bench is not None:  # the client and the reader in the benchmark's image
        users.setdefault(bench.reader[0], []).append("benchmark")
        mounts_needed += bench.mounts_needed
    images = node_images(everything, bench)
    if images:
        users.setdefault("timeout", []).append("container runtime calls")
    commands = sorted(users)
    gpus = sum(s.gpus for s in local)
    return NodePlan(index=index, label=label, services=tuple(local), remote=tuple(remote),
                    gpus=gpus, checks=node_checks(recipe, local, gpus),
                    steps=tuple(steps), commands=tuple(commands),
                    ports=ports,
                    needs=tuple((c, ", ".join(users[c])) for c in commands),
                    images=images, mounts_needed=mounts_needed if images else (),
                    mounts_made=mounts_made if images else ())


def _tunables(recipe: Recipe, place: Placement) -> tuple:
    before, after = _shared_tunables(recipe)
    return (*before, Tunable("LOG_DIR", place.log_dir(), "where this run's logs and PID files go"), *after)


@per_recipe  # the same for each plan of a recipe (one per target)
def _shared_tunables(recipe: Recipe) -> tuple[tuple, tuple]:
    """The tunables of every target (those before LOG_DIR, and after it)."""
    return _health_tunables(recipe), (*bench_tunables(recipe), *container_tunables(recipe))


def _health_tunables(recipe: Recipe) -> tuple:
    h = recipe.health
    return (
        Tunable("READY_TIMEOUT_S", str(h.ready_timeout_s), "seconds a service may take to become ready"),
        Tunable("PROBE_INTERVAL_S", str(h.probe_interval_s), "seconds between liveness/readiness probes"),
        Tunable("PROBE_TIMEOUT_S", str(h.probe_timeout_s), "seconds one HTTP probe may take"),
        Tunable("UNHEALTHY_AFTER", str(h.unhealthy_after),
                "failed health probes in a row, while serving, before a live service counts as hung"),
        Tunable("GRACE_PERIOD_S", str(h.grace_period_s), "seconds between TERM and KILL at teardown"),
        Tunable("LOG_TAIL_LINES", "40", "lines of a failed service's log to print"),
        Tunable("PREFLIGHT_SKIP", "", "node checks to skip (model accelerators rdma memory logdir, or all)"),
        Tunable("LOG_ROOT", _log_root(recipe), "where each run's log directory goes"),
    )
