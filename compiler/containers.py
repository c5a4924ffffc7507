"""Part of plan: which service runs in which container, seeing what (a recipe's `container` section).

Takes the Recipe, its placement and the planned services; gives each service its Container (image,
the name teardown removes it by, the runtime's words before its argv: runtime/), and each node the
images to pull or check and the mount sources to check or create before anything starts. Mounts:
the recipe's, the model directory (an absolute model path), the Hugging Face cache, every
ExampleConnector shared_storage_path (prefill writes, decode reads: one directory), and the run's
LOG_DIR; the same for every service, at the same path inside as outside unless the recipe says.
"""

from __future__ import annotations

from .engine_args import connector_tree
from .plan_types import Container, Service
from .runtime import Mount, runtime_for
from .runtime.base import joined
from .words import Ref

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


def mounts_of(recipe) -> tuple[tuple, tuple, tuple]:
    """(Mounts, sources that must exist, directories the launcher creates) of every container."""
    # Asked for every service of a plan, and by every plan of the recipe: the last recipe's answer
    # is kept, with the recipe (validated values are frozen; its id is not reused while it is held here).
    if _LAST_MOUNTS[0] is recipe:
        return _LAST_MOUNTS[1]
    _LAST_MOUNTS[:] = recipe, _mounts_of(recipe)
    return _LAST_MOUNTS[1]


_LAST_MOUNTS: list = [None, None]


def _mounts_of(recipe) -> tuple[tuple, tuple, tuple]:
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
    runtime = runtime_for(runtime_name(recipe, svc.role))
    if runtime is None:
        return svc
    c = recipe.container
    image = runtime.reference(image_of(recipe, svc.role))
    name = joined(place.container_prefix(), "-", svc.name) if runtime.names_containers else None
    own = {k for k, _ in svc.env}
    env = tuple(svc.env) + tuple((k, _text(v)) for k, v in c.env.items() if k not in own)
    if c.hf_cache:
        env += (("HF_HOME", c.hf_cache),)
    mounts, _, _ = mounts_of(recipe)
    wrapped = runtime.wrap(image, name, mounts, env, tuple(c.pass_env), devices_of(recipe))
    # What dataclasses.replace makes, without its per-field checks (~2 us more, for every service).
    return Service(**{**svc.__dict__, "container": Container(
        runtime=runtime.name, image=image, name=name, prefix=wrapped.prefix, env=wrapped.env)})


def _text(value) -> str:
    from .engine_args import fmt

    return fmt(value)


def node_images(services) -> tuple:
    """(runtime, image, service names) of each image a node's services run in, in start order."""
    seen: dict = {}
    for s in services:
        if s.container is not None:
            seen.setdefault((s.container.runtime, s.container.image), []).append(s.name)
    return tuple((rt, image, tuple(names)) for (rt, image), names in seen.items())
