"""How recipe values become engine command-line words: flags from an args mapping, and the
--kv-transfer-config from the structured kv-transfer section; and the connector names recipec knows.

Part of plan (which calls it), and shared with the rules that reason about connectors.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # at run time a compiled Record (compiled.py), not a pydantic model
    from .model import KVTransfer

LMCACHE_CONNECTOR = "LMCacheMPConnector"
MOONCAKE_CONNECTOR = "MooncakeConnector"
# The connectors that move KV from prefill to decode, and the vllm-router --kv-connector of each.
PD_MODES = {"MooncakeConnector": "mooncake", "NixlConnector": "nixl", "NixlPullConnector": "nixl",
            "NixlPushConnector": "nixl", "MoRIIOConnector": "moriio"}
NIXL_CONNECTORS = tuple(c for c, mode in PD_MODES.items() if mode == "nixl")


def fmt(value: Any) -> str:
    """A recipe scalar as the engine expects it on its command line or in its environment."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def flag_args(args: dict) -> list[str]:
    """Recipe flag mapping -> argv: true -> --f, false -> --no-f, null -> left out."""
    out: list[str] = []
    for key, value in args.items():
        flag = key if key.startswith("-") else f"--{key}"
        if value is None:
            continue
        if value is True:
            out.append(flag)
        elif value is False:
            out.append("--no-" + flag.lstrip("-"))
        elif isinstance(value, dict):
            out += [flag, json.dumps(value, separators=(",", ":"))]
        elif isinstance(value, list):
            out += [flag, *(fmt(v) for v in value)]
        else:
            out += [flag, fmt(value)]
    return out


def sourced_flags(args: dict, keypath: tuple, sources: dict) -> list[str]:
    """flag_args of a recipe args mapping, noting in sources which key wrote each flag."""
    out: list[str] = []
    for key, value in args.items():
        words = flag_args({key: value})
        if words:
            sources[words[0]] = keypath + (key,)
        out += words
    return out


def connectors_of(kv: KVTransfer | None) -> list[KVTransfer]:
    """The connector and, for a MultiConnector, its children (depth first)."""
    if kv is None:
        return []
    return [kv] + [c for child in kv.connectors for c in connectors_of(child)]


def uses(kv: KVTransfer | None, connector: str | tuple) -> bool:
    names = (connector,) if isinstance(connector, str) else connector
    return any(c.connector in names for c in connectors_of(kv))


def kv_transfer_config(kv: KVTransfer, lmcache_host: str, lmcache_port: int) -> dict:
    """The --kv-transfer-config dict, built from structured fields (never written by hand)."""
    out: dict[str, Any] = {"kv_connector": kv.connector, "kv_role": kv.role}
    if kv.module_path:
        out["kv_connector_module_path"] = kv.module_path
    if kv.load_failure_policy:
        out["kv_load_failure_policy"] = kv.load_failure_policy
    extra = dict(kv.extra_config)
    if kv.connector == LMCACHE_CONNECTOR:
        # One value in one place: the connector talks to the lmcache section's server.
        extra.setdefault("lmcache.mp.host", f"tcp://{lmcache_host}")
        extra.setdefault("lmcache.mp.port", lmcache_port)
    if kv.connectors:
        extra["connectors"] = [kv_transfer_config(c, lmcache_host, lmcache_port) for c in kv.connectors]
    if extra:
        out["kv_connector_extra_config"] = extra
    return out
