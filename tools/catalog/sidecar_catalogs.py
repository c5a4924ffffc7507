"""Catalogs of the services around vLLM: LMCache server, vllm-router, mooncake_master.

Each dump_* runs inside a venv with that package installed and gives a catalog dict
(schema: compiler/catalog/README.md) built from the package's own parser.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from surface import (
    argparse_surface,
    argparse_syntax,
    dist_version,
    gflags_flags,
    installed_dist,
    run_until_parse,
)

# --------------------------------------------------------------------------- vllm-router


def dump_vllm_router() -> dict[str, Any]:
    from vllm_router import launch_router

    parser = run_until_parse(lambda: launch_router.parse_router_args(sys.argv[1:]),
                              ["vllm-router"])
    surface = argparse_surface(parser)
    return {
        "engine": "vllm-router",
        "package": "vllm-router",
        "version": dist_version("vllm-router"),
        "source": ("argparse parser built by vllm_router.launch_router.parse_router_args "
                   "(the console script is a Python argparse launcher over the Rust "
                   "extension vllm_router_rs), captured at parse time"),
        "command": ["vllm-router"],
        "syntax": argparse_syntax(parser, "--request-timeout-secs", "1800"),
        **surface,
    }


def _mooncake_master_binary() -> str:
    import mooncake

    binary = Path(mooncake.__file__).with_name("mooncake_master")
    if not binary.exists():
        raise SystemExit(f"mooncake_master binary not found next to {mooncake.__file__}")
    return str(binary)


def _gflags_rejects_unknown(binary: str) -> bool:
    proc = subprocess.run([binary, "--recipec_no_such_flag"], capture_output=True, text=True,
                          timeout=60, check=False)
    return proc.returncode != 0 and "unknown command line flag" in proc.stderr + proc.stdout


def dump_mooncake() -> dict[str, Any]:
    dist = installed_dist("mooncake-transfer-engine", "mooncake-transfer-engine-non-cuda")
    if dist is None:
        raise SystemExit("mooncake-transfer-engine is not installed in this python")
    binary = _mooncake_master_binary()
    # gflags exits 1 after printing help; --helpxml is its machine-readable form.
    proc = subprocess.run([binary, "--helpxml"], capture_output=True, text=True, timeout=60,
                          check=False)
    return {
        "engine": "mooncake",
        "package": dist,
        "version": dist_version(dist),
        "source": "mooncake_master --helpxml (gflags' machine-readable flag list) of the "
                  "binary shipped in the wheel",
        "command": ["mooncake_master"],
        "syntax": {
            "kind": "gflags",
            "flag_equals_value": True,
            "underscore_dash_equivalent": False,
            "json_dotted_keys": False,
            "allow_abbrev": False,
            "single_dash_equivalent": True,
            "unknown_flag_fatal": _gflags_rejects_unknown(binary),
        },
        "flags": gflags_flags(proc.stdout),
        "positionals": [],
        "mutually_exclusive": [],
    }


# --------------------------------------------------------------------------- LMCache


def _lmcache_config_error(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """Run LMCache's own post-parse storage config check; the error text, or None."""
    from lmcache.v1.distributed.config import parse_args_to_config

    args = parser.parse_args(argv)
    try:
        parse_args_to_config(args)
    except ValueError as exc:
        return str(exc)
    return None


def _lmcache_requirements(parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    """Requirements enforced after argparse, each probed against the real code.

    The rule shapes are written here; every claimed outcome is executed and the dump
    fails if LMCache behaves differently, so a new version cannot silently drift.
    """
    dram = json.dumps({"type": "DRAM", "tag": "_default", "size_gb": 1,
                       "eviction": {"eviction_policy": "LRU"}})
    probes = [
        ([], False),
        (["--l1-size-gb", "1"], False),
        (["--eviction-policy", "LRU"], False),
        (["--l1-size-gb", "1", "--eviction-policy", "LRU"], True),
        (["--l1-manager", dram], True),
        (["--l1-manager", dram, "--l1-size-gb", "1"], False),
    ]
    messages = []
    for argv, should_pass in probes:
        error = _lmcache_config_error(parser, argv)
        if (error is None) != should_pass:
            raise SystemExit(f"lmcache server {argv}: expected "
                             f"{'success' if should_pass else 'an error'}, got {error!r}")
        messages.append(error)
    return [
        {
            "all_of": ["--eviction-policy", "--l1-size-gb"],
            "unless_any": ["--l1-manager"],
            "message": messages[0],
            "checked_by": "lmcache.v1.distributed.config.parse_args_to_config",
        },
        {
            "none_of_with": {"--l1-manager": ["--l1-size-gb"]},
            "message": messages[5],
            "checked_by": "lmcache.v1.distributed.config.parse_args_to_config",
        },
    ]


def dump_lmcache() -> dict[str, Any]:
    from lmcache.cli import main as lmcache_main

    top = run_until_parse(lambda: lmcache_main.main(["server"]), ["lmcache", "server"])
    sub_action = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub_action.choices["server"]
    surface = argparse_surface(parser)
    # `lmcache server` registers nothing (and only warns) when the full package's
    # native parts fail to import: refuse to write an empty catalog.
    if "--l1-size-gb" not in surface["flags"]:
        raise SystemExit("lmcache server registered no storage flags: is the full "
                         "lmcache package (not lmcache-cli) importable?")
    return {
        "engine": "lmcache",
        "package": "lmcache",
        "version": dist_version("lmcache"),
        "source": ("argparse parser of the `server` subcommand built by "
                   "lmcache.cli.main.main (captured at parse time); requirements probed "
                   "with lmcache.v1.distributed.config.parse_args_to_config"),
        "command": ["lmcache", "server"],
        "syntax": argparse_syntax(parser, "--http-port", "8080"),
        **surface,
        "requirements": _lmcache_requirements(parser),
    }

