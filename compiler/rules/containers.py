"""Container rules: the runtime fits the target, the images a runtime runs are image references,
and the engines' image is the release engine.version pins."""

from __future__ import annotations

import re

from ..containers import image_of, runtime_name
from .images import MOVING_TAGS, _tag
from .registry import Finding, rule

ROLES = ("lmcache", "prefill", "decode", "router", "client")
_REFERENCE = re.compile(r"(/\S*|[A-Za-z0-9][A-Za-z0-9._/:@#+-]*)\Z")
_VERSION = re.compile(r"(?<![0-9.])v?(\d+\.\d+(?:\.\d+)?)(?![0-9])")
_AFTER_ENGINE = re.compile(r"vllm[_-]v?(\d+\.\d+(?:\.\d+)?)(?![0-9])", re.IGNORECASE)


def _key(recipe, role: str, field: str) -> tuple:
    override = recipe.container.services.get(role)
    if override is not None and getattr(override, field) is not None:
        return ("container", "services", role, field)
    return ("container", field) if field == "runtime" else (field,)


@rule("RC900")
def runtime_wrong_target(ctx):
    from ..placement import PLACEMENTS
    from ..runtime import runtime_for

    recipe = ctx.recipe
    if PLACEMENTS[recipe.target].in_job:
        return
    for role in ROLES:
        runtime = runtime_for(runtime_name(recipe, role))
        if runtime is not None and runtime.needs_job:
            yield Finding(_key(recipe, role, "runtime"), f"the pyxis runtime runs only inside SLURM jobs "
                          f"(srun --container-image); this recipe's target is {recipe.target}")
            return


def tag_version(tag: str) -> str | None:
    """The engine version an image tag names: after `vllm` (rocm6.4_vllm_0.10.1_...), else a version
    the tag starts with (v0.33.0, 0.32.0-x86_64); None when it names none or cannot be told."""
    m = _AFTER_ENGINE.search(tag)
    if m:
        return m.group(1)
    m = _VERSION.match(tag)
    return m.group(1) if m else None


def _release(version: str) -> tuple:
    numbers = [int(x) for x in re.match(r"\d+(?:\.\d+)*", version).group(0).split(".")]
    return tuple(numbers + [0] * (3 - len(numbers)))


@rule("RC901", "RC902")
def image_tag_version(ctx):
    recipe = ctx.recipe
    seen = set()
    for role in ("prefill", "decode"):  # the images the engine runs in
        image = image_of(recipe, role)
        if image in seen:
            continue
        seen.add(image)
        tag = _tag(image)
        keypath = _key(recipe, role, "image")
        if tag in MOVING_TAGS:
            continue  # RC301's
        contained = runtime_name(recipe, role) != "none"  # "cannot tell" only matters where it runs
        if tag is None or tag == "":
            if tag is None and contained:  # by digest; an untagged image is RC301's
                yield Finding(keypath, f"image '{image}' is pinned by digest: its engine version cannot be "
                              f"checked against engine.version {recipe.engine.version}", code="RC902")
            continue
        found = tag_version(tag)
        if found is None:
            if contained:
                yield Finding(keypath, f"image tag '{tag}' carries no version to check against engine.version "
                              f"{recipe.engine.version}", code="RC902")
        elif _release(found) != _release(recipe.engine.version):
            yield Finding(keypath, f"image tag '{tag}' is version {found}, but engine.version is "
                          f"{recipe.engine.version}")


@rule("RC903")
def image_reference(ctx):
    recipe = ctx.recipe
    for role in ROLES:
        if runtime_name(recipe, role) == "none":
            continue
        image = image_of(recipe, role)
        if not _REFERENCE.match(image):
            yield Finding(_key(recipe, role, "image"), f"image {image!r} ({role}) is not an image reference: "
                          "a runtime would read it as an option or several words")
