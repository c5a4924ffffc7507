"""Part of plan: which service runs in which container, seeing what (a recipe's `container` section).

Takes the Recipe, its placement and the planned services; gives each service its Container (image,
the name teardown removes it by, the runtime's words before its argv: runtime/), and each node the
images to pull or check and the mount sources to check or create before anything starts. Mounts:
the recipe's, the model directory (an absolute model path), the Hugging Face cache, every
ExampleConnector shared_storage_path (prefill writes, decode reads: one directory), and the run's
LOG_DIR; the same for every service, at the same path inside as outside unless the recipe says.
"""

from __future__ import annotations

import dataclasses
import functools

from .engine_args import connector_tree
from .memo import per_recipe
from .plan_types import Benchmark, BenchPoint, Container, Service, Tunable
from .runtime import RUNTIMES, Mount, runtime_for
from .words import Ref, joined

# Connector keys that name a directory the KV cache passes through: created on the node, mounted.
KV_PATH_KEYS = ("shared_storage_path",)


def devices_of(recipe) -> str:
    chosen = recipe.container.devices
    if chosen is not None:
        return chosen
    accel = recipe.cluster.accelerator.strip().upper()
    if accel == "CPU":
        return "none"
    return "amd" if accel.startswith("MI") else "nvidia"


def runtime_name(recipe, role: str) -> str:
    override = recipe.container.services.get(role)
    return override.runtime if override is not None and override.runtime is not None else recipe.container.runtime


def image_of(recipe, role: str) -> str:
    override = recipe.container.services.get(role)
    return override.image if override is not None and override.image is not None else recipe.image


@per_recipe  # asked for every service of a plan, and by every plan of the recipe
def mounts_of(recipe) -> tuple[tuple, tuple, tuple]:
    """(Mounts, sources that must exist, directories the launcher creates) of every container."""
    c = recipe.container
    mounts: list[Mount] = []
    must_exist: list = []
    create: list = []
    for m in c.mounts:
        mounts.append(Mount(m.source, m.target or m.source, m.read_only))
        must_exist.append(m.source)
    if recipe.model.path.startswith("/"):
        mounts.append(Mount(recipe.model.path, recipe.model.path, True))
        must_exist.append(recipe.model.path)
    if c.hf_cache:
        mounts.append(Mount(c.hf_cache, c.hf_cache, False))
        must_exist.append(c.hf_cache)
    kv_paths = set()
    for spec in (recipe.prefill, recipe.decode):
        for kv, _ in connector_tree(spec.kv_transfer):
            for key in KV_PATH_KEYS:
                value = kv.extra_config.get(key)
                if isinstance(value, str) and value.startswith("/") and value not in kv_paths:
                    kv_paths.add(value)
                    mounts.append(Mount(value, value, False))
                    create.append(value)
    mounts.append(Mount(Ref("LOG_DIR"), Ref("LOG_DIR"), False))
    return tuple(mounts), tuple(dict.fromkeys(must_exist)), tuple(create)


def contain(recipe, place, svc: Service) -> Service:
    """svc, started in its container (unchanged where its runtime is none)."""
    container = _container(recipe, place, svc.role, svc.name, svc.env)
    if container is None:
        return svc
    # dataclasses.replace without its per-field checks and __init__ (a frozen dataclass sets each of
    # its 15 fields through object.__setattr__): ~4 us less a service, and lint plans ~15 a recipe.
    contained = object.__new__(Service)
    contained.__dict__.update(svc.__dict__, container=container)
    return contained


def _container(recipe, place, role: str, name: str, own_env: tuple, extra_mounts: tuple = (),
               devices: str | None = None) -> Container | None:
    """The Container of the unit `name` of `role` (None where its runtime is none); own_env: its
    (NAME, Word) env, which wins over the recipe's; extra_mounts: what it sees besides every
    container's mounts; devices: none, amd or nvidia (default: the recipe's accelerators)."""
    runtime = runtime_for(runtime_name(recipe, role))
    if runtime is None:
        return None
    c = recipe.container
    image = runtime.reference(image_of(recipe, role))
    named = joined(place.container_prefix(), "-", name) if runtime.names_containers else None
    shared, hf_home = _shared_env(recipe)
    if own_env:
        own = {k for k, _ in own_env}
        env = tuple(own_env) + tuple(pair for pair in shared if pair[0] not in own) + hf_home
    else:
        env = shared + hf_home
    wrapped = runtime.wrap(image, named, mounts_of(recipe)[0] + extra_mounts, env, tuple(c.pass_env),
                           devices or devices_of(recipe))
    return Container(runtime=runtime.name, image=image, name=named, prefix=wrapped.prefix, env=wrapped.env)


@per_recipe
def _shared_env(recipe) -> tuple[tuple, tuple]:
    """The (NAME, text) pairs every container gets: the container section's env (a service's own
    env wins over it), and HF_HOME where the recipe has an HF cache (last: it wins)."""
    c = recipe.container
    return tuple((k, _text(v)) for k, v in c.env.items()), ((("HF_HOME", c.hf_cache),) if c.hf_cache else ())


def bench_mounts(recipe) -> tuple[tuple, tuple]:
    """(Mounts, sources that must exist) the benchmark's client sees besides every container's:
    this run's result directory (made by bench.sh before the first point) and a dataset file."""
    mounts = [Mount(Ref("RESULT_DIR"), Ref("RESULT_DIR"), False)]
    data = recipe.benchmark.dataset.file
    if data is not None and data.path.startswith("/"):
        mounts.append(Mount(data.path, data.path, True))
        return tuple(mounts), (data.path,)
    return tuple(mounts), ()


def contain_benchmark(recipe, place, bench: Benchmark | None) -> Benchmark | None:
    """bench with every point's client in a container of the client role's runtime and image (named
    bench-POINT, like a service) and its result JSON read by python in that image; unchanged where
    that runtime is none (the client and BENCH_PYTHON from the node's PATH)."""
    runtime = runtime_for(runtime_name(recipe, "client")) if bench is not None else None
    if runtime is None:
        return bench
    extra, needed = bench_mounts(recipe)
    points = []
    for p in bench.points:
        container = _container(recipe, place, "client", f"bench-{p.name}", p.launch_env, extra,
                               devices="none")  # HTTP and a tokenizer
        points.append(BenchPoint(p.name, p.concurrency, p.prompts, p.result_file, p.argv, container.env, container))
    reader = _reader(runtime.name, runtime.reference(image_of(recipe, "client")), extra[0], recipe.benchmark.python)
    return dataclasses.replace(bench, points=tuple(points), reader=reader, mounts_needed=needed)


@functools.lru_cache(maxsize=64)
def _reader(runtime: str, image: str, results: Mount, python: str) -> tuple:
    """The words that run python in image, seeing the readiness answer (LOG_DIR) and this run's
    results only (the summary is written there)."""
    return RUNTIMES[runtime].once(image, (Mount(Ref("LOG_DIR"), Ref("LOG_DIR"), True), results)) + (python,)


def refusal(recipe, place, services: list, bench: Benchmark | None) -> tuple:
    """Why this target cannot run the recipe: a runtime that runs only inside SLURM jobs (RC900),
    for a service, the client step or the benchmark's points; () where it can."""
    units = [(s.role, s.name) for s in services] + [("client", "benchmark")] * (bench is not None)
    for role, name in units:
        runtime = runtime_for(runtime_name(recipe, role))
        if runtime is not None and runtime.needs_job and not place.in_job:
            override = recipe.container.services.get(role)
            key = ("container", "services", role, "runtime") if override and override.runtime else (
                "container", "runtime")
            return ("RC900", key, f"the {runtime.name} runtime runs only inside SLURM jobs (srun "
                    f"--container-image), not on the {place.name} target ({name})")
    return ()


def container_tunables(recipe) -> tuple:
    """The run-time knobs of the container runtimes, where some role runs in one."""
    if all(runtime_name(recipe, role) == "none" for role in ("lmcache", "prefill", "decode", "router", "client")):
        return ()
    c = recipe.container
    return (
        Tunable("IMAGE_TIMEOUT_S", str(c.pull_timeout_s), "seconds a node's image check or pull may take"),
        Tunable("CONTAINER_START_TIMEOUT_S", str(c.start_timeout_s),
                "seconds a container may take to be running (a hung runtime fails here)"),
    )


def _text(value) -> str:
    from .engine_args import fmt

    return fmt(value)


def node_images(services, bench: Benchmark | None = None) -> tuple:
    """(runtime, image, names) of each image a node's services (and its benchmark's points, named
    bench-POINT) run in, in start order."""
    seen: dict = {}
    units = [(s.container, s.name) for s in services]
    units += [(p.container, f"bench-{p.name}") for p in (bench.points if bench is not None else ())]
    for container, name in units:
        if container is not None:
            seen.setdefault((container.runtime, container.image), []).append(name)
    return tuple((rt, image, tuple(names)) for (rt, image), names in seen.items())
