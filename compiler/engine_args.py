"""How recipe values become engine command-line words: flags from an args mapping, the flags
recipec owns (written from structured keys), and the --kv-transfer-config from the kv-transfer
section; the connector names recipec knows and the one walk over a connector tree.

Part of plan (which calls it), and the one home of these facts for the rules that reason about
flags and connectors.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from .validate import KVTransfer

LMCACHE_CONNECTOR = "LMCacheMPConnector"
MOONCAKE_CONNECTOR = "MooncakeConnector"
# The connectors that move KV from prefill to decode, and the vllm-router --kv-connector of each.
PD_MODES = {"MooncakeConnector": "mooncake", "NixlConnector": "nixl", "NixlPullConnector": "nixl",
            "NixlPushConnector": "nixl", "MoRIIOConnector": "moriio"}
NIXL_CONNECTORS = tuple(c for c, mode in PD_MODES.items() if mode == "nixl")

ROLE = "{role}"  # in a key path below: the engine's own section, prefill or decode
# Engine flags recipec writes itself from structured keys: the recipe key each is reported at, and
# why args may not set it (RC202).
OWNED_ENGINE_FLAGS = {
    "--host": ((ROLE, "port"), "set by recipec from the target"),
    "--port": ((ROLE, "port"), "set per worker from prefill.port / decode.port"),
    "--tensor-parallel-size": ((ROLE, "tensor-parallel-size"), "set from tensor-parallel-size"),
    "--kv-transfer-config": ((ROLE, "kv-transfer"), "generated from kv-transfer"),
    "--model": (("model", "path"), "set from model.path"),
    "--served-model-name": (("model", "served-name"), "set from model.served-name"),
}
# --kv-transfer-config keys -> the kv-transfer keys kv_transfer_config() writes them from.
KV_CONFIG_KEYS = {"kv_connector": "connector", "kv_role": "role", "kv_connector_module_path": "module-path",
                  "kv_load_failure_policy": "load-failure-policy", "kv_connector_extra_config": "extra-config"}


@functools.lru_cache(maxsize=64)  # a few flags and two roles, asked for every engine of every plan
def owned_source(flag: str, role: str) -> tuple:
    """The recipe key path an owned engine flag of a prefill or decode engine comes from."""
    return tuple(role if k == ROLE else k for k in OWNED_ENGINE_FLAGS[flag][0])


def flag_name(key: str) -> str:
    """The canonical name of a flag written in args, either spelling: `max_num_seqs` and
    `--max-num-seqs` are both --max-num-seqs (how the engines' parsers read them)."""
    return "--" + key.lstrip("-").replace("_", "-")


def fmt(value: Any) -> str:
    """A recipe scalar as the engine expects it on its command line or in its environment."""
    if type(value) is str:  # most values (str() of a str is the str itself)
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# One encoder for every compact JSON value (json.dumps with options builds a new one per call).
COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def _flag_words(key: str, value) -> list[str]:
    """The words of one args entry: true -> --f, false -> --no-f, null -> none."""
    if value is None:
        return []
    flag = key if key.startswith("-") else f"--{key}"
    if value is True:
        return [flag]
    if value is False:
        return ["--no-" + flag.lstrip("-")]
    if isinstance(value, dict):
        return [flag, COMPACT_JSON.encode(value)]
    if isinstance(value, list):
        return [flag, *(fmt(v) for v in value)]
    return [flag, fmt(value)]


def flag_args(args: dict) -> list[str]:
    """Recipe flag mapping -> argv: true -> --f, false -> --no-f, null -> left out."""
    out: list[str] = []
    for key, value in args.items():
        out += _flag_words(key, value)
    return out


def sourced_flags(args: dict, keypath: tuple, sources: dict) -> list[str]:
    """flag_args of a recipe args mapping, noting in sources which key wrote each flag."""
    out: list[str] = []
    for key, value in args.items():
        words = _flag_words(key, value)
        if words:
            sources[words[0]] = keypath + (key,)
            out += words
    return out


def role_flags(common: dict, own: dict, role: str, sources: dict) -> list[str]:
    """sourced_flags of engine.args and a role's args together: a role's value replaces the common
    one, in the common key's place; each flag's source is the section whose value it is."""
    # Every engine of every plan of every variant writes these, and a sweep changes one or two
    # values: the words are kept per distinct pair of mappings. The key holds each value's type
    # beside it (true, 1 and 1.0 are equal keys but write different words); a mapping holding a
    # JSON value (unhashable) is not kept.
    try:
        words, written = _role_words(tuple(common), tuple(map(type, common.values())), tuple(common.values()),
                                     tuple(own), tuple(map(type, own.values())), tuple(own.values()), role)
    except TypeError:
        words, written = _role_words.__wrapped__(tuple(common), (), tuple(common.values()), tuple(own), (),
                                                 tuple(own.values()), role)
    sources.update(written)
    return list(words)


@functools.lru_cache(maxsize=256)
def _role_words(common_keys: tuple, _common_types: tuple, common_values: tuple, own_keys: tuple,
                _own_types: tuple, own_values: tuple, role: str) -> tuple[tuple, tuple]:
    out: list[str] = []
    written: dict = {}
    own = dict(zip(own_keys, own_values))
    for key, value in {**dict(zip(common_keys, common_values)), **own}.items():
        words = _flag_words(key, value)
        if words:
            written[words[0]] = (role, "args", key) if key in own else ("engine", "args", key)
            out += words
    return tuple(out), tuple(written.items())


def connector_tree(kv: KVTransfer | None, keypath: tuple = ()) -> list[tuple[KVTransfer, tuple]]:
    """A connector and its MultiConnector children, depth first, each with its key path."""
    if kv is None:
        return []
    out = [(kv, keypath)]
    for i, child in enumerate(kv.connectors):  # a list, not a generator: cheaper to make and to walk
        out += connector_tree(child, keypath + ("connectors", i))
    return out


def connectors_of(kv: KVTransfer | None) -> list[KVTransfer]:
    """The connector and, for a MultiConnector, its children (depth first)."""
    return [c for c, _ in connector_tree(kv)]


def uses(kv: KVTransfer | None, connector: str | tuple) -> bool:
    names = (connector,) if isinstance(connector, str) else connector
    if kv is not None and not kv.connectors:  # one connector (most sections): no walk
        return kv.connector in names
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


def kv_transfer_json(kv: KVTransfer, lmcache_host: str, lmcache_port: int) -> str:
    """The --kv-transfer-config value: kv_transfer_config as compact JSON."""
    # Each plan of a recipe writes the same value (one plan per target): the last few are kept,
    # each with its section (validated values are frozen, and an id is not reused while held).
    key = (id(kv), lmcache_host, lmcache_port)
    hit = _KV_JSON.get(key)
    if hit is None or hit[0] is not kv:
        if len(_KV_JSON) >= 8:
            _KV_JSON.clear()
        hit = _KV_JSON[key] = (kv, COMPACT_JSON.encode(kv_transfer_config(kv, lmcache_host, lmcache_port)))
    return hit[1]


_KV_JSON: dict[tuple, tuple] = {}
