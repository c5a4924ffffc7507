"""Image rules: pinned, public, from an allowed registry or organisation."""

from __future__ import annotations

import re

from .registry import Finding, rule

MOVING_TAGS = ("latest", "main", "nightly", "dev", "master", "edge")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _normalise(image: str) -> str:
    """docker.io is implied for names without a registry host, and `library/` for single names."""
    first = image.split("/", 1)[0]
    if "/" not in image:
        return "docker.io/library/" + image
    if "." not in first and ":" not in first and first != "localhost":
        return "docker.io/" + image
    return image


def _tag(image: str) -> str | None:
    if _DIGEST.search(image):
        return None
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def _images(recipe):
    """(key path, image) of the recipe's image and of each service's own (container.services)."""
    yield ("image",), recipe.image
    for role, override in sorted(recipe.container.services.items()):
        if override.image is not None:
            yield ("container", "services", role, "image"), override.image


@rule("RC301")
def image_unpinned(ctx):
    for keypath, image in _images(ctx.recipe):
        tag = _tag(image)
        if tag is None:
            continue
        if tag == "":
            yield Finding(keypath, f"image '{image}' has no tag: it means :latest")
        elif tag in MOVING_TAGS:
            yield Finding(keypath, f"image '{image}' uses the moving tag '{tag}'")


@rule("RC302")
def image_not_allowed(ctx):
    allowed = ctx.config.image_allow_list
    for keypath, image in _images(ctx.recipe):
        full = _normalise(image)
        if not any(full.startswith(prefix) for prefix in allowed):
            yield Finding(keypath, f"image '{image}' ({full}) is not from an allowed "
                          f"registry or organisation ({', '.join(allowed)})")
