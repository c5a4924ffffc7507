"""Image rules: pinned, public, from an allowed registry or organisation."""

from __future__ import annotations

import re

from .registry import Finding, rule

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


@rule("RC301")
def image_unpinned(ctx):
    tag = _tag(ctx.recipe.image)
    if tag is None:
        return
    if tag == "":
        yield Finding(("image",), f"image '{ctx.recipe.image}' has no tag: it means :latest")
    elif tag in ("latest", "main", "nightly", "dev", "master", "edge"):
        yield Finding(("image",), f"image '{ctx.recipe.image}' uses the moving tag '{tag}'")


@rule("RC302")
def image_not_allowed(ctx):
    full = _normalise(ctx.recipe.image)
    allowed = ctx.config.image_allow_list
    if not any(full.startswith(prefix) for prefix in allowed):
        yield Finding(("image",), f"image '{ctx.recipe.image}' ({full}) is not from an allowed "
                      f"registry or organisation ({', '.join(allowed)})")
