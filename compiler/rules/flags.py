"""Flag rules: every argv the plan generates, read against the catalog of the version it runs.

The engines' argv (prefill, decode) are read against the catalog of engine.package engine.version,
the LMCache server's against lmcache's (lmcache.version), the router's against vllm-router's
(router.version); an unpinned sidecar is read against the newest catalog of its package. Catalogs
are what the real parsers accept (compiler/catalog, made by tools/catalog/dump.py), so a flag the
engine would reject at start-up, after minutes of waiting for nodes, is reported at lint time, at
the recipe line that produced it. How an argv is read is argv.py's business; where each flag came
from, plan.py records as it writes the argv (Service.sources).

Connector names in a kv-transfer section are RC601's; RC805 checks the KVTransferConfig keys and
values of every generated --kv-transfer-config, and connector names only where args wrote one.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Iterator

from . import Finding, rule
from .argv import Problem, catalog_for, engine_name, read_argv

SIDECARS = {"lmcache": "lmcache", "router": "vllm-router"}  # recipe section -> catalog package
# --kv-transfer-config keys -> the kv-transfer keys recipec writes them from.
KV_KEYS = {"kv_connector": "connector", "kv_role": "role", "kv_connector_module_path": "module-path",
           "kv_load_failure_policy": "load-failure-policy", "kv_connector_extra_config": "extra-config"}


@dataclass(frozen=True)
class ServiceArgv:
    """One service's generated argv, cut after its command, with what reads it and where it's from."""

    service: str
    section: str  # recipe section: prefill | decode | lmcache | router
    words: tuple
    command: tuple
    catalog: dict | None
    version: str | None
    package: str
    missing: str | None  # why there is no catalog
    sources: dict
    positionals_used: int = 0  # `vllm serve MODEL`: the model is the parser's positional


def service_argvs(ctx, target: str = "local") -> list[ServiceArgv]:
    """Every service of a plan whose argv a catalog describes (engines, LMCache, router); made once
    per recipe and target, kept with the plans the Context caches."""
    key = ("rules.flags", "service_argvs", target)
    if key not in ctx._plans:
        ctx._plans[key] = _service_argvs(ctx, target)
    return ctx._plans[key]


def _service_argvs(ctx, target: str) -> list[ServiceArgv]:
    r = ctx.recipe
    eng = r.engine
    out = []
    for svc in ctx.plan(target).services:
        if svc.role in ("prefill", "decode"):
            cut = len(eng.command) + (1 if eng.model_arg == "positional" else 0)
            catalog, version, missing = catalog_for(eng.package, eng.version)
            package = eng.package
        elif svc.role == "lmcache":
            cut = len(r.lmcache.command)
            package = SIDECARS["lmcache"]
            catalog, version, missing = catalog_for(package, r.lmcache.version)
        elif svc.role == "router":
            cut = len(r.router.command)
            package = SIDECARS["router"]
            catalog, version, missing = catalog_for(package, r.router.version)
        else:
            continue
        used = 1 if svc.role in ("prefill", "decode") and eng.model_arg == "positional" else 0
        out.append(ServiceArgv(svc.name, svc.role, tuple(svc.argv[cut:]), tuple(svc.argv[:cut]),
                               catalog, version, package, missing, dict(svc.sources), used))
    return out


def problems(sa: ServiceArgv) -> list[tuple[Problem, tuple]]:
    """Every catalog problem of one service's argv, with the recipe key path it comes from."""
    if sa.catalog is None:
        return []
    out = [(p, sa.sources.get(p.flag, (sa.section,)))
           for p, _ in read_argv(list(sa.words), sa.catalog, sa.positionals_used)]
    words = list(sa.words)
    if "--kv-transfer-config" in words and sa.catalog.get("kv_transfer_config_fields"):
        raw = words[words.index("--kv-transfer-config") + 1:][:1]
        if raw and isinstance(raw[0], str):
            by_args = sa.sources["--kv-transfer-config"][-2:-1] == ("args",)
            out += list(_kv_problems(raw[0], sa, by_args))
    return out


def _kv_problems(raw: str, sa: ServiceArgv, by_args: bool):
    """RC805: a --kv-transfer-config's keys, roles and (where args wrote it) connector names."""
    try:
        config = json.loads(raw)
    except ValueError:
        return  # RC804 already says the value is not JSON
    fields = sa.catalog["kv_transfer_config_fields"]
    known = set(sa.catalog.get("connectors", ()))
    flag_path = sa.sources["--kv-transfer-config"]
    engine = engine_name(sa.catalog)

    def walk(node, keypath, where):
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            at = keypath if by_args else keypath + ((KV_KEYS[key],) if key in KV_KEYS else ())
            if key not in fields:
                close = difflib.get_close_matches(key, sorted(fields), n=1)
                yield Problem("RC805", "--kv-transfer-config", f"{where}: '{key}' is not a "
                              f"KVTransferConfig key of {engine}",
                              f"did you mean '{close[0]}'?" if close else None), at
                continue
            choices = fields[key].get("choices")
            if choices and value is not None and value not in choices:
                yield Problem("RC805", "--kv-transfer-config", f"{where}: {key} '{value}' is not one "
                              f"of {', '.join(choices)}"), at
        name = node.get("kv_connector")
        if by_args and known and isinstance(name, str) and name not in known \
                and not node.get("kv_connector_module_path"):
            close = difflib.get_close_matches(name, sorted(known), n=1)
            yield Problem("RC805", "--kv-transfer-config", f"{where}: {name} is not a connector of "
                          f"{engine}", f"did you mean '{close[0]}'?" if close else None), keypath
        extra = node.get("kv_connector_extra_config")
        children = extra.get("connectors") if isinstance(extra, dict) else None
        if isinstance(children, list):
            for i, child in enumerate(children):
                child_path = keypath if by_args else keypath + ("connectors", i)
                yield from walk(child, child_path, f"{where} connector {i}")

    yield from walk(config, flag_path, f"{sa.service} --kv-transfer-config")


def _all_problems(ctx) -> dict:
    """(message, key path) -> (problem, services), read once per recipe however many of the rules
    below ask (kept with the plans the Context caches). The local plan is read: the slurm plan has
    the same services with the same flags, only addresses (filled in at run time) differ."""
    key = ("rules.flags", "problems")
    if key not in ctx._plans:
        found: dict[tuple, tuple] = {}
        for target in ("local",):
            for sa in service_argvs(ctx, target):
                for p, keypath in problems(sa):
                    _, services = found.setdefault((p.message, keypath), (p, []))
                    if sa.service not in services:
                        services.append(sa.service)
        ctx._plans[key] = found
    return ctx._plans[key]


def _findings(ctx, code: str) -> Iterator[Finding]:
    """The findings of one code, each reported once, naming every service it concerns."""
    for (message, keypath), (p, services) in _all_problems(ctx).items():
        if p.code == code:
            at_key = code in ("RC801", "RC805") and len(keypath) > 2 and keypath[-2] == "args"
            yield Finding(keypath, f"{', '.join(services)}: {message}", p.hint, at_key=at_key)


@rule("RC801", "flag-unknown", "a generated flag is not accepted by the pinned engine version",
      "fix the flag's name in args: compiler/catalog/data lists every flag of the pinned version")
def flag_unknown(ctx):
    yield from _findings(ctx, "RC801")


@rule("RC802", "flag-value-unexpected", "a value follows a flag that takes none (a switch), or more "
      "values than the flag takes", "write true/false for a switch, one value for a one-value flag")
def flag_value_unexpected(ctx):
    yield from _findings(ctx, "RC802")


@rule("RC803", "flag-value-missing", "a generated flag lacks the value it needs",
      "give the flag its value in args")
def flag_value_missing(ctx):
    yield from _findings(ctx, "RC803")


@rule("RC804", "flag-value-invalid", "a flag's value is outside its choices, or not of its type "
      "(number, JSON)", "use one of the values the pinned version accepts")
def flag_value_invalid(ctx):
    yield from _findings(ctx, "RC804")


@rule("RC805", "kv-transfer-config-invalid", "a generated --kv-transfer-config has a key "
      "KVTransferConfig does not have, a value outside a field's choices, or (written in args) a "
      "connector the registry lacks", "write KV transfer in the kv-transfer section, with the keys "
      "the pinned vLLM's KVTransferConfig has")
def kv_transfer_config_invalid(ctx):
    yield from _findings(ctx, "RC805")


@rule("RC806", "engine-catalog-missing", "no engine catalog for the pinned version: its flags are "
      "not checked", "generate one with tools/catalog/make-all.sh, or pin a version that has one",
      severity="warning")
def catalog_missing(ctx):
    seen = set()
    for sa in service_argvs(ctx):
        if sa.catalog is None and sa.package not in seen:
            seen.add(sa.package)
            where = ("engine", "version") if sa.section in ("prefill", "decode") else (
                (sa.section, "version") if getattr(ctx.recipe, sa.section).version else (sa.section,))
            yield Finding(where, f"{sa.missing}: the flags of {sa.package} are not checked",
                          at_key=where[-1] != "version")
