"""Flag rules, over the Plans: every argv the plan generates, read against the catalog of the
version it runs.

The engines' argv (prefill, decode) are read against the catalog of engine.package engine.version,
the LMCache server's against lmcache's (lmcache.version), the router's against vllm-router's
(router.version); an unpinned sidecar is read against the newest catalog of its package. Catalogs
are what the real parsers accept (compiler/catalog, made by tools/catalog/dump.py), so a flag the
engine would reject at start-up, after minutes of waiting for nodes, is reported at lint time, at
the recipe line that produced it. How an argv is read is catalog/argv.py's business; where each
flag came from, plan.py records as it writes the argv (Service.sources), and where its flags start
(Service.flags_at).

Connector names in a kv-transfer section are RC601's; RC805 checks the KVTransferConfig keys and
values of every generated --kv-transfer-config, and connector names only where args wrote one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

from ..bench_plan import BENCH_PACKAGE
from ..catalog.argv import Problem, catalog_for, engine_name, read_argv
from ..engine_args import KV_CONFIG_KEYS
from ..placement import PLACEMENTS
from ..plan_types import Plan
from .registry import Finding, plan_rule

SIDECARS = {"lmcache": "lmcache", "router": "vllm-router"}  # recipe section -> catalog package
# The code each kind of argv problem is reported under.
CODES_OF = {"unknown-flag": "RC801", "unexpected-value": "RC802", "missing-value": "RC803",
            "invalid-value": "RC804", "kv-transfer-config": "RC805"}


@dataclass(frozen=True)
class ServiceArgv:
    """One service's generated argv after its command (what its parser reads), with the catalog
    that reads it and where each flag came from."""

    service: str
    section: str  # recipe section: prefill | decode | lmcache | router | benchmark
    args: tuple  # argv after the command: positionals, then flags
    catalog: dict | None
    version: str | None
    package: str
    missing: str | None  # why there is no catalog
    sources: dict
    positionals_used: int = 0  # `vllm serve MODEL`: the model is the parser's positional

    @property
    def words(self) -> tuple:
        """The flags and their values."""
        return self.args[self.positionals_used:]


def argv_plan(plans) -> Plan:
    """The plan whose argv the flag rules read: one whose addresses are literals. Every placement
    writes the same flags; only address words differ, filled in at run time elsewhere."""
    return next(p for p in plans if PLACEMENTS[p.target].literal_addresses)


def service_argvs(plan: Plan) -> list[ServiceArgv]:
    """Every service of a plan whose argv a catalog describes (engines, LMCache, router)."""
    r = plan.recipe
    out = []
    for svc in plan.services:
        if svc.role in ("prefill", "decode"):
            package, version = r.engine.package, r.engine.version
        elif svc.role == "lmcache":
            package, version = SIDECARS["lmcache"], r.lmcache.version
        elif svc.role == "router":
            package, version = SIDECARS["router"], r.router.version
        else:
            continue
        catalog, version, missing = catalog_for(package, version)
        out.append(ServiceArgv(svc.name, svc.role, tuple(svc.argv[svc.command_words:]), catalog, version,
                               package, missing, dict(svc.sources), svc.positionals))
    b = plan.benchmark
    if b is not None:  # every point has the same flags: the first one's argv speaks for all
        catalog, version, missing = catalog_for(BENCH_PACKAGE, r.benchmark.version)
        out.append(ServiceArgv("benchmark", "benchmark", tuple(b.points[0].argv[b.command_words:]), catalog,
                               version, BENCH_PACKAGE, missing, dict(b.sources)))
    return out


# A reading of an argv is a pure function of its words, its catalog and the positionals before
# them, and the variants of a sweep mostly repeat one another's argv (a sweep changes a value or
# two): each distinct argv is read once a process. Catalogs live as long as the process
# (catalog_for caches them), so a catalog's id is a stable key; each entry keeps its catalog, and
# a key whose catalog is another object (an id reused) is read again. Below this, catalog/argv.py
# keeps each flag's reading too (the argv of different recipes share most flags): without this
# whole-argv layer a lint costs 0.42 M instructions more a variant, 0.24 M more a recipe.
_READINGS: dict[tuple, tuple] = {}
_MAX_READINGS = 4096


def _kept(key: tuple, catalog: dict, read) -> tuple:
    """read() (a tuple of frozen Problems, shared between variants), made once per key and catalog."""
    hit = _READINGS.get((id(catalog), *key))
    if hit is None or hit[0] is not catalog:
        if len(_READINGS) >= _MAX_READINGS:
            _READINGS.clear()
        hit = _READINGS[(id(catalog), *key)] = (catalog, read())
    return hit[1]


def _reading(words: tuple, catalog: dict, positionals_used: int) -> tuple:
    """The Problems read_argv finds in words."""
    return _kept(("argv", positionals_used, words), catalog,
                 lambda: tuple(p for p, _ in read_argv(list(words), catalog, positionals_used)))


def problems(sa: ServiceArgv) -> list[tuple[Problem, tuple]]:
    """Every catalog problem of one service's argv, with the recipe key path it comes from."""
    if sa.catalog is None:
        return []
    out = [(p, sa.sources.get(p.flag, (sa.section,))) for p in _reading(sa.words, sa.catalog, sa.positionals_used)]
    words = list(sa.words)
    if "--kv-transfer-config" in words and sa.catalog.get("kv_transfer_config_fields"):
        raw = words[words.index("--kv-transfer-config") + 1:][:1]
        if raw and isinstance(raw[0], str):
            by_args = sa.sources["--kv-transfer-config"][-2:-1] == ("args",)
            # What _kv_problems reads of sa: its catalog, the flag's source and the service's name.
            out += _kept(("kv", raw[0], sa.sources["--kv-transfer-config"], by_args, sa.service), sa.catalog,
                         lambda: tuple(_kv_problems(raw[0], sa, by_args)))
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
            at = keypath if by_args else keypath + ((KV_CONFIG_KEYS[key],) if key in KV_CONFIG_KEYS else ())
            if key not in fields:
                import difflib  # noqa: PLC0415 (only a misspelling pays for it)
                close = difflib.get_close_matches(key, sorted(fields), n=1)
                yield Problem("kv-transfer-config", "--kv-transfer-config", f"{where}: '{key}' is not a "
                              f"KVTransferConfig key of {engine}",
                              f"did you mean '{close[0]}'?" if close else None), at
                continue
            choices = fields[key].get("choices")
            if choices and value is not None and value not in choices:
                yield Problem("kv-transfer-config", "--kv-transfer-config", f"{where}: {key} '{value}' is not one "
                              f"of {', '.join(choices)}"), at
        name = node.get("kv_connector")
        if by_args and known and isinstance(name, str) and name not in known \
                and not node.get("kv_connector_module_path"):
            import difflib  # noqa: PLC0415 (only a misspelling pays for it)
            close = difflib.get_close_matches(name, sorted(known), n=1)
            yield Problem("kv-transfer-config", "--kv-transfer-config", f"{where}: {name} is not a connector of "
                          f"{engine}", f"did you mean '{close[0]}'?" if close else None), keypath
        extra = node.get("kv_connector_extra_config")
        children = extra.get("connectors") if isinstance(extra, dict) else None
        if isinstance(children, list):
            for i, child in enumerate(children):
                child_path = keypath if by_args else keypath + ("connectors", i)
                yield from walk(child, child_path, f"{where} connector {i}")

    yield from walk(config, flag_path, f"{sa.service} --kv-transfer-config")


def code_of(problem: Problem) -> str:
    """The code a problem is reported under."""
    return CODES_OF.get(problem.kind, "RC801")


@plan_rule("RC801", "RC802", "RC803", "RC804", "RC805", "RC806")
def flags(ctx):
    """Every catalog problem of the plan's argv, each reported once naming every service it
    concerns (the argv are read once, however many codes they yield); and RC806 for a package
    without a catalog."""
    argvs = service_argvs(argv_plan(ctx.plans))
    found: dict[tuple, tuple] = {}
    for sa in argvs:
        for p, keypath in problems(sa):
            _, services = found.setdefault((p.message, keypath), (p, []))
            if sa.service not in services:
                services.append(sa.service)
    for (message, keypath), (p, services) in found.items():
        code = code_of(p)
        at_key = code in ("RC801", "RC805") and len(keypath) > 2 and keypath[-2] == "args"
        yield Finding(keypath, f"{', '.join(services)}: {message}", p.hint, at_key=at_key, code=code)
    yield from _catalog_missing(ctx.recipe, argvs)


def _catalog_missing(recipe, argvs: list[ServiceArgv]) -> Iterator[Finding]:
    seen = set()
    for sa in argvs:
        if sa.catalog is None and sa.package not in seen:
            seen.add(sa.package)
            where = ("engine", "version") if sa.section in ("prefill", "decode") else (
                (sa.section, "version") if getattr(recipe, sa.section).version else (sa.section,))
            yield Finding(where, f"{sa.missing}: the flags of {sa.package} are not checked",
                          at_key=where[-1] != "version", code="RC806")
