"""Connector and engine-flag rules: what the pinned engine accepts and how roles pair up."""

from __future__ import annotations

import functools

from ..codes import WARNING
from ..engine_args import OWNED_ENGINE_FLAGS, PD_MODES, connector_tree, flag_name
from ..memo import per_recipe
from ..validate import KVTransfer, Recipe
from .registry import Finding, document_rule, rule

# Renamed or removed connectors, so the message can say what to use instead.
GONE_CONNECTORS = {
    "SharedStorageConnector": "renamed ExampleConnector",
    "P2pNcclConnector": "removed; use NixlConnector or MooncakeConnector",
    "PyNcclConnector": "removed (V0 engine); use NixlConnector or MooncakeConnector",
}
LEGACY_KV_KEYS = ("kv_rank", "kv_parallel_size", "kv_ip", "kv_buffer_size")

ROUTER_DEFAULT_MODE = "nixl"  # vllm-router 0.1.17 --kv-connector default
SIDE_ROLES = {"prefill": ("kv_producer", "kv_both"), "decode": ("kv_consumer", "kv_both")}
SIDES = ("prefill", "decode")


def connectors(recipe: Recipe, side: str) -> list[tuple[KVTransfer, tuple]]:
    """Every connector of a side's kv-transfer, with its key path."""
    return list(_tree(recipe, side))


@per_recipe  # a dozen rules walk the same two trees
def _tree(recipe: Recipe, side: str) -> tuple:
    return tuple(connector_tree(getattr(recipe, side).kv_transfer, (side, "kv-transfer")))


def pd_connectors(recipe: Recipe, side: str) -> list[tuple[KVTransfer, tuple]]:
    return [(c, kp) for c, kp in connectors(recipe, side) if c.connector in PD_MODES]


@functools.lru_cache(maxsize=None)
def known_connectors(package: str, version: str) -> frozenset | None:
    """Connector class names the pinned engine registers (its catalog), or None when none is in."""
    from ..catalog import CatalogNotFound, load_catalog

    try:
        return frozenset(load_catalog(package, version)["connectors"])
    except (CatalogNotFound, KeyError):
        return None


@rule("RC202")
def flag_owned(ctx):
    r = ctx.recipe
    for keypath, args in ((("engine", "args"), r.engine.args), (("prefill", "args"), r.prefill.args),
                          (("decode", "args"), r.decode.args)):
        for key in args:
            flag = flag_name(key)
            if flag in OWNED_ENGINE_FLAGS:
                yield Finding(keypath + (key,), f"{flag} is {OWNED_ENGINE_FLAGS[flag][1]}")


@rule("RC601")
def unknown_connector(ctx):
    eng = ctx.recipe.engine
    known = known_connectors(eng.package, eng.version)
    for side in SIDES:
        for kv, keypath in connectors(ctx.recipe, side):
            if kv.module_path:  # kv_connector_module_path loads the class from there, first
                continue
            if known is None:
                yield Finding(keypath + ("connector",), f"no connector registry known for "
                              f"{eng.package} {eng.version}: '{kv.connector}' is not checked",
                              "add an engine catalog (tools/catalog/dump.py) for this version",
                              severity=WARNING)
                return
            if kv.connector in known:
                continue
            why = GONE_CONNECTORS.get(kv.connector)
            import difflib  # noqa: PLC0415 (only a misspelling pays for it)
            close = difflib.get_close_matches(kv.connector, sorted(known), n=1)
            hint = f"did you mean '{close[0]}'?" if close and not why else None
            yield Finding(keypath + ("connector",), f"{kv.connector} is not a connector of "
                          f"{eng.package} {eng.version}" + (f" ({why})" if why else ""), hint)


@document_rule("RC602")
def legacy_kv_keys(doc):
    data = doc.data if isinstance(doc.data, dict) else {}
    for side in SIDES:
        spec = data.get(side)
        kv = spec.get("kv-transfer") if isinstance(spec, dict) else None
        yield from _legacy_keys(kv, (side, "kv-transfer"))


def _legacy_keys(kv, keypath: tuple):
    if not isinstance(kv, dict):
        return
    for key in kv:
        if isinstance(key, str) and key.replace("-", "_") in LEGACY_KV_KEYS:
            yield Finding(keypath + (key,), f"'{key}' is a legacy KVTransferConfig key: vLLM rejects it "
                          "at start-up", at_key=True)
    children = kv.get("connectors")
    if isinstance(children, list):
        for i, child in enumerate(children):
            yield from _legacy_keys(child, keypath + ("connectors", i))


@rule("RC603")
def role_wrong_side(ctx):
    for side in SIDES:
        for kv, keypath in connectors(ctx.recipe, side):
            if kv.role not in SIDE_ROLES[side]:
                yield Finding(keypath + ("role",), f"{kv.connector} on {side} has role {kv.role}; "
                              f"{side} takes {' or '.join(SIDE_ROLES[side])}")


@rule("RC604")
def nixl_kv_both(ctx):
    for side in SIDES:
        for kv, keypath in connectors(ctx.recipe, side):
            if PD_MODES.get(kv.connector) == "nixl" and kv.role == "kv_both":
                yield Finding(keypath + ("role",), f"{kv.connector} with kv_both is deprecated in vLLM")


@rule("RC605")
def multiconnector_children(ctx):
    for side in SIDES:
        for kv, keypath in connectors(ctx.recipe, side):
            if kv.connector == "MultiConnector" and not kv.connectors:
                yield Finding(keypath + ("connector",), "MultiConnector without child connectors")
            elif kv.connector != "MultiConnector" and kv.connectors:
                yield Finding(keypath + ("connectors",), f"{kv.connector} takes no child connectors; "
                              "only a MultiConnector does")


@rule("RC606")
def mooncake_rdma_device(ctx):
    for side in SIDES:
        for kv, keypath in connectors(ctx.recipe, side):
            if kv.connector != "MooncakeConnector":
                continue
            protocol = kv.extra_config.get("mooncake_protocol", "rdma")
            if protocol == "rdma" and not kv.extra_config.get("device_name"):
                where = ("extra-config", "mooncake_protocol") if "mooncake_protocol" in kv.extra_config \
                    else ("connector",)
                said = "" if "mooncake_protocol" in kv.extra_config else " (rdma is the default)"
                yield Finding(keypath + where, f"MooncakeConnector over rdma{said} needs the RDMA "
                              "device names in extra-config device_name")


@rule("RC607")
def pd_mismatch(ctx):
    p = {PD_MODES[c.connector]: (c, kp) for c, kp in pd_connectors(ctx.recipe, "prefill")}
    d = {PD_MODES[c.connector]: (c, kp) for c, kp in pd_connectors(ctx.recipe, "decode")}
    if not p and not d or set(p) & set(d):
        return
    if p and d:
        c, kp = next(iter(d.values()))
        names = ", ".join(sorted(c.connector for c, _ in p.values()))
        yield Finding(kp + ("connector",), f"decode receives KV through {c.connector} but prefill "
                      f"sends it through {names}")
    elif p:
        c, kp = next(iter(p.values()))
        yield Finding(kp + ("connector",), f"prefill sends KV through {c.connector} but decode has no "
                      "PD connector to receive it")
    else:
        c, kp = next(iter(d.values()))
        yield Finding(kp + ("connector",), f"decode waits for KV through {c.connector} but prefill has "
                      "no PD connector to send it")


@rule("RC608")
def router_mismatch(ctx):
    modes = {PD_MODES[c.connector]: c.connector for side in SIDES
             for c, _ in pd_connectors(ctx.recipe, side)}
    said = ctx.recipe.router.kv_connector
    if not modes:
        if said:
            yield Finding(("router", "kv-connector"), f"router kv-connector is {said}, but the engines "
                          "use no PD connector (Mooncake, NIXL or MoRIIO)")
        return
    if (said or ROUTER_DEFAULT_MODE) in modes:
        return
    wanted = " or ".join(sorted(modes))
    engines = ", ".join(sorted(modes.values()))
    if said:
        yield Finding(("router", "kv-connector"), f"router kv-connector is {said}, but the engines "
                      f"transfer KV with {engines}: use {wanted}")
    else:
        yield Finding(("router",), f"router kv-connector is unset, so vllm-router uses "
                      f"{ROUTER_DEFAULT_MODE}, but the engines transfer KV with {engines}: set {wanted}")
