#!/usr/bin/env python3
"""Dump an engine's command-line surface into a versioned JSON catalog.

Run it with the python of a venv in which the engine is installed:

    python tools/catalog/dump.py vllm|vllm-bench-serve|lmcache|vllm-router|mooncake --out compiler/catalog/data/

Each dumper builds the engine's own parser (argparse objects for vLLM, LMCache and
vllm-router; gflags' --helpxml for mooncake_master) rather than scraping --help text,
so the catalog says exactly what that installed version accepts. The output is
deterministic (sorted keys, no timestamps, no machine paths) so catalogs diff cleanly
between versions. Schema: compiler/catalog/README.md.

Stdlib only; engine modules are imported lazily inside each dumper. Layout:
surface.py reads a parser (engine-neutral), vllm_catalog.py and sidecar_catalogs.py
know where each engine keeps its parser, this file writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import sidecar_catalogs
import vllm_catalog

SCHEMA_VERSION = 1

DUMPERS: dict[str, Callable[..., dict[str, Any]]] = {
    "vllm": vllm_catalog.dump_vllm,
    "vllm-bench-serve": vllm_catalog.dump_vllm_bench_serve,
    "lmcache": sidecar_catalogs.dump_lmcache,
    "vllm-router": sidecar_catalogs.dump_vllm_router,
    "mooncake": sidecar_catalogs.dump_mooncake,
}


def _summary(catalog: dict[str, Any]) -> dict[str, int]:
    flags = catalog["flags"]
    return {
        "option_strings": len(flags),
        "long_options": sum(1 for f in flags if f.startswith("--")),
        "distinct_dests": len({v["dest"] for v in flags.values()}),
    }


def render(catalog: dict[str, Any]) -> str:
    catalog = {"schema_version": SCHEMA_VERSION, **catalog}
    catalog["counts"] = _summary(catalog)
    return json.dumps(catalog, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("engine", choices=sorted(DUMPERS))
    cli.add_argument("--out", required=True, type=Path, help="catalog data directory")
    cli.add_argument("--vllm-device-type", metavar="TYPE",
                     help="vllm only: build the parser as if on this device type (e.g. "
                          "cuda) when the installed wheel targets a GPU this machine lacks")
    args = cli.parse_args(argv)
    if args.vllm_device_type and args.engine != "vllm":
        cli.error("--vllm-device-type applies to vllm only")

    # Engines log to stdout/stderr on import; keep our own output to the last line.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("LMCACHE_LOG_LEVEL", "ERROR")
    os.environ.setdefault("LMCACHE_DISABLE_BANNER", "1")
    warnings.simplefilter("ignore")
    kwargs = {"device_type": args.vllm_device_type} if args.vllm_device_type else {}
    catalog = DUMPERS[args.engine](**kwargs)
    text = render(catalog)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{catalog['package']}-{catalog['version']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    counts = json.loads(text)["counts"]
    print(f"{path}: {counts['option_strings']} option strings, "
          f"{counts['distinct_dests']} dests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
