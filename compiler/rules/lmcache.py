"""LMCache rules: the MP connector and the server it talks to agree, and the server can start.

Facts from lmcache 0.5.6 (the server's flags, and LMCacheMPConnector's extra-config keys in
lmcache/integration/vllm/vllm_multi_process_adapter.py): the connector's lmcache.mp.host is a bare
host with a scheme (a port in it is doubled), lmcache.mp.port/hash_algorithm/isolated_ipc must equal
the server's --port/--hash-algorithm/--isolated-ipc, and the server refuses to start without both
--l1-size-gb and --eviction-policy unless --l1-manager is given.
"""

from __future__ import annotations

import re

from ..codes import WARNING
from ..engine_args import LMCACHE_CONNECTOR, PD_MODES, flag_name
from .registry import Finding, rule
from .connectors import SIDES, connectors

SERVER_DEFAULT_HASH = "blake3"  # lmcache server --hash-algorithm default, and the connector's
SERVER_DEFAULT_TRANSFER_MODE = "lmcache_driven"  # lmcache server --supported-transfer-mode default
TRANSFER_MODES = ("lmcache_driven", "engine_driven", "auto")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DRAM_WARN_FRACTION = 0.9  # the OS, vLLM's own host memory and pinned buffers need the rest
_MP_HOST = re.compile(r"^[a-z][a-z0-9+.-]*://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+)\Z")


def device_transfer_mode(accelerator: str) -> str:
    """What the connector's transfer mode auto resolves to on a device (lmcache 0.5.6: CPU and
    MUSA engine_driven; CUDA, ROCm and NPU lmcache_driven)."""
    name = accelerator.strip().lower()
    if name in ("cpu", "none", "") or name.startswith(("musa", "mthreads")):
        return "engine_driven"
    return "lmcache_driven"


def _mp_connectors(recipe, side: str):
    return [(c, kp) for c, kp in connectors(recipe, side) if c.connector == LMCACHE_CONNECTOR]


def _server_arg(lm, name: str):
    """A server flag given through lmcache.args (either spelling), or None."""
    for key, value in lm.args.items():
        if flag_name(key) == "--" + name:
            return value
    return None


def _same_host(a: str, b: str) -> bool:
    return a == b or (a in LOOPBACK and b in LOOPBACK) or b in ("0.0.0.0", "::")


@rule("RC701")
def server_missing(ctx):
    lm = ctx.recipe.lmcache
    for side in SIDES:
        for kv, keypath in _mp_connectors(ctx.recipe, side):
            if lm is None:
                yield Finding(keypath + ("connector",), f"{side} uses {LMCACHE_CONNECTOR} but the recipe has "
                              "no lmcache section: nothing serves it")
            elif side not in lm.roles:
                yield Finding(keypath + ("connector",), f"{side} uses {LMCACHE_CONNECTOR} but lmcache.roles "
                              f"is {lm.roles}: no LMCache server runs on {side} nodes")


@rule("RC702")
def mp_mismatch(ctx):
    lm = ctx.recipe.lmcache
    if lm is None:
        return
    server_hash = _server_arg(lm, "hash-algorithm") or SERVER_DEFAULT_HASH
    server_isolated = bool(_server_arg(lm, "isolated-ipc"))
    for side in SIDES:
        for kv, keypath in _mp_connectors(ctx.recipe, side):
            extra = kv.extra_config
            at = keypath + ("extra-config",)
            host = extra.get("lmcache.mp.host")
            if isinstance(host, str) and _MP_HOST.match(host):
                bare = host.split("://", 1)[1].strip("[]")
                if not _same_host(bare, lm.host):
                    yield Finding(at + ("lmcache.mp.host",), f"lmcache.mp.host {host} is not the "
                                  f"LMCache server's host {lm.host}")
            port = extra.get("lmcache.mp.port")
            if port is not None and str(port) != str(lm.port):
                yield Finding(at + ("lmcache.mp.port",), f"lmcache.mp.port {port} is not the LMCache "
                              f"server's port {lm.port}")
            algo = extra.get("lmcache.mp.hash_algorithm", SERVER_DEFAULT_HASH)
            if str(algo) != str(server_hash):
                where = at + ("lmcache.mp.hash_algorithm",) if "lmcache.mp.hash_algorithm" in extra \
                    else ("lmcache", "args")
                yield Finding(where, f"the connector hashes with {algo} but the LMCache server with "
                              f"{server_hash}: no lookup would ever hit")
            isolated = bool(extra.get("lmcache.mp.isolated_ipc", False))
            if isolated != server_isolated:
                where = at + ("lmcache.mp.isolated_ipc",) if "lmcache.mp.isolated_ipc" in extra \
                    else ("lmcache", "args")
                yield Finding(where, f"lmcache.mp.isolated_ipc is {isolated} on the connector but "
                              f"{server_isolated} on the server (--isolated-ipc)")


@rule("RC703")
def mp_host_form(ctx):
    for side in SIDES:
        for kv, keypath in _mp_connectors(ctx.recipe, side):
            host = kv.extra_config.get("lmcache.mp.host")
            if host is not None and not (isinstance(host, str) and _MP_HOST.match(host)):
                yield Finding(keypath + ("extra-config", "lmcache.mp.host"), f"lmcache.mp.host {host!r} "
                              "is not scheme://host (a port in it is doubled: tcp://h:5555:5555)")
    lm = ctx.recipe.lmcache
    if lm is not None and not re.match(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+)$", lm.host):
        yield Finding(("lmcache", "host"), f"lmcache.host {lm.host!r} must be a bare host or address "
                      "(no scheme, no port): the port is lmcache.port")


@rule("RC704")
def decode_race(ctx):
    remote = [c for c, _ in connectors(ctx.recipe, "decode") if c.connector in PD_MODES]
    if not remote:
        return
    for kv, keypath in _mp_connectors(ctx.recipe, "decode"):
        yield Finding(keypath + ("connector",), f"{LMCACHE_CONNECTOR} on decode next to {remote[0].connector}: "
                      "its lookup/retrieve races the remote-prefill KV load")


@rule("RC705")
def l1_incomplete(ctx):
    lm = ctx.recipe.lmcache
    if lm is None or _server_arg(lm, "l1-manager") is not None:
        return
    size = lm.l1_size_gb if lm.l1_size_gb is not None else _server_arg(lm, "l1-size-gb")
    policy = lm.eviction_policy or _server_arg(lm, "eviction-policy")
    missing = [k for k, v in (("l1-size-gb", size), ("eviction-policy", policy)) if v is None]
    if missing:
        yield Finding(("lmcache",), f"the LMCache server has no {' and no '.join(missing)}: "
                      "`lmcache server` exits at start-up without both", at_key=True)


@rule("RC706")
def l1_exceeds_dram(ctx):
    lm = ctx.recipe.lmcache
    if lm is None or lm.l1_size_gb is None:
        return
    dram = ctx.recipe.cluster.dram_gb_per_node
    size = lm.l1_size_gb
    if size > dram:
        yield Finding(("lmcache", "l1-size-gb"), f"L1 of {size:g} GB is more than the node's "
                      f"{dram} GB of DRAM")
    elif size > DRAM_WARN_FRACTION * dram:
        yield Finding(("lmcache", "l1-size-gb"), f"L1 of {size:g} GB leaves less than "
                      f"{100 - DRAM_WARN_FRACTION * 100:.0f}% of the node's {dram} GB for everything "
                      "else", severity=WARNING)


@rule("RC707")
def server_unused(ctx):
    lm = ctx.recipe.lmcache
    if lm is None:
        return
    for i, side in enumerate(lm.roles):
        if not _mp_connectors(ctx.recipe, side):
            yield Finding(("lmcache", "roles", i), f"an LMCache server starts on every {side} node, "
                          f"but no {side} connector uses it")


@rule("RC708")
def transfer_mode(ctx):
    lm = ctx.recipe.lmcache
    if lm is None:
        return
    server = lm.supported_transfer_mode or _server_arg(lm, "supported-transfer-mode") \
        or SERVER_DEFAULT_TRANSFER_MODE
    for side in SIDES:
        env = {**ctx.recipe.engine.env, **getattr(ctx.recipe, side).env}
        for kv, keypath in _mp_connectors(ctx.recipe, side):
            key = "lmcache.mp.mp_transfer_mode"
            if key in kv.extra_config:
                mode, where = kv.extra_config[key], keypath + ("extra-config", key)
            elif "LMCACHE_CONNECTOR_TRANSFER_MODE" in env:
                mode = env["LMCACHE_CONNECTOR_TRANSFER_MODE"]
                where = (side if "LMCACHE_CONNECTOR_TRANSFER_MODE" in getattr(ctx.recipe, side).env
                         else "engine", "env", "LMCACHE_CONNECTOR_TRANSFER_MODE")
            else:
                mode, where = "auto", keypath + ("connector",)
            if mode not in TRANSFER_MODES:
                yield Finding(where, f"transfer mode {mode!r} is not one of {', '.join(TRANSFER_MODES)}")
                continue
            resolved, said = mode, ""
            if mode == "auto":  # the connector picks by device at run time, as lmcache 0.5.6 does
                resolved = device_transfer_mode(ctx.recipe.cluster.accelerator)
                said = (f" (mode {'auto, its default,' if where[-1] == 'connector' else 'auto'} on "
                        f"accelerator {ctx.recipe.cluster.accelerator})")
            if server not in ("auto", resolved):
                yield Finding(where, f"the connector transfers {resolved}{said} but the LMCache server "
                              f"supports only {server}: vLLM would hang in start-up, never healthy")
