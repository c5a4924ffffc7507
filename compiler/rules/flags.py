"""Flag rules: every argv the plan generates, read against the catalog of the version it runs.

The engines' argv (prefill, decode) are read against the catalog of engine.package engine.version,
the LMCache server's against lmcache's (lmcache.version), the router's against vllm-router's
(router.version); an unpinned sidecar is read against the newest catalog of its package. Catalogs
are what the real parsers accept (compiler/catalog, made by tools/catalog/dump.py), so a flag the
engine would reject at start-up, after minutes of waiting for nodes, is reported at lint time, at
the recipe line that produced it.

The reading follows each catalog's `syntax`: `--flag=value`, vLLM's `_`/`-` equivalence and its
dotted JSON keys. It never relies on argparse's prefix matching: generated flags are spelled out.
Connector names in a kv-transfer section are RC601's; RC805 checks the KVTransferConfig keys and
values of every generated --kv-transfer-config, and connector names only where args wrote one.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass
from typing import Iterator

from ..plan import flag_args
from . import Finding, rule

_NUMBER = re.compile(r"^-\d")
SIDECARS = {"lmcache": "lmcache", "router": "vllm-router"}  # recipe section -> catalog package
# --kv-transfer-config keys -> the kv-transfer keys recipec writes them from.
KV_KEYS = {"kv_connector": "connector", "kv_role": "role", "kv_connector_module_path": "module-path",
           "kv_load_failure_policy": "load-failure-policy", "kv_connector_extra_config": "extra-config"}


@dataclass(frozen=True)
class Problem:
    """One thing a catalog says is wrong with one argv: which rule, which flag, what."""

    code: str
    flag: str  # the flag word as generated ("" for a word that belongs to no flag)
    message: str
    hint: str | None = None
    parser_accepts: bool = False  # the engine's own parser takes it anyway (an abbreviation)


def _version_key(version: str) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", version))


@functools.lru_cache(maxsize=None)
def _versions(package: str) -> tuple:
    from ..catalog import available_catalogs

    return tuple(sorted((v for p, v in available_catalogs() if p == package), key=_version_key))


def catalog_for(package: str, version: str | None):
    """(catalog, version used, why none) for a package: the pinned version, else the newest."""
    from ..catalog import CatalogNotFound, load_catalog

    versions = _versions(package)
    if version is None:
        if not versions:
            return None, None, f"no engine catalog of {package} is checked in"
        version = versions[-1]
    try:
        return load_catalog(package, version), version, None
    except CatalogNotFound:
        return None, version, (f"no engine catalog for {package} {version} (there are: "
                               f"{', '.join(versions) or 'none'})")


def _is_flag(word) -> bool:
    return isinstance(word, str) and word.startswith("-") and len(word) > 1 and not _NUMBER.match(word)


def _shown(word) -> str:
    if isinstance(word, str):
        return word
    return "".join(p if isinstance(p, str) else "${" + p.name + "}" for p in word)


def _normalise(name: str, syntax: dict, flags: dict) -> tuple[str, str | None]:
    """The catalog key of a written flag name, and a dotted JSON key when there is one."""
    if syntax.get("underscore_dash_equivalent") and name.startswith("--"):
        head, dot, rest = name[2:].partition(".")
        name = "--" + head.replace("_", "-") + dot + rest
    if syntax.get("json_dotted_keys") and "." in name:
        base, _, key = name.partition(".")
        if flags.get(base, {}).get("json"):
            return base, key
    return name, None


def _abbreviates(name: str, flags: dict, syntax: dict) -> str | None:
    """The one flag argparse would expand this prefix to (allow_abbrev), or None."""
    if not syntax.get("allow_abbrev") or not name.startswith("--"):
        return None
    matches = {flags[f].get("canonical", f) for f in flags if f.startswith(name)}
    return matches.pop() if len(matches) == 1 else None


def _did_you_mean(name: str, flags: dict) -> str | None:
    visible = sorted(f for f, meta in flags.items() if f.startswith("--") and not meta.get("hidden"))
    close = difflib.get_close_matches(name, visible, n=1, cutoff=0.75)
    return f"did you mean {close[0]}?" if close else None


def _arity(nargs) -> tuple[int, int | None]:
    """(least, most) values a flag takes."""
    if nargs == "?":
        return 0, 1
    if nargs == "*":
        return 0, None
    if nargs == "+":
        return 1, None
    return int(nargs), int(nargs)


def _bad_value(value: str, meta: dict) -> str | None:
    """Why a value does not fit the flag's choices or simple type, or None."""
    choices = meta.get("choices")
    if choices is not None and value not in [str(c) for c in choices]:
        return f"'{value}' is not one of its choices ({', '.join(map(str, choices))})"
    kind = (meta.get("type") or "").removeprefix("optional:")
    if meta.get("type", "").startswith("optional:") and value in ("", "None"):
        return None
    try:
        if kind == "int":
            int(value)
        elif kind == "float":
            float(value)
        elif kind.startswith("json") and kind != "json|str":
            json.loads(value)
    except ValueError:
        wanted = {"int": "a whole number", "float": "a number"}.get(kind, "JSON")
        return f"'{value}' is not {wanted}"
    return None


def read_argv(words: list, catalog: dict, positionals_used: int = 0) -> Iterator[tuple[Problem, object]]:
    """Read argv words (after the command) as the catalog's parser would; yield (problem, value).

    positionals_used: positional arguments already in the command (`vllm serve MODEL`)."""
    flags, syntax = catalog["flags"], catalog.get("syntax", {})
    free = [p["name"] for p in catalog.get("positionals", ()) if p.get("nargs") in ("?", 1, None)]
    free = free[positionals_used:]

    def stray(flag: str, message: str, extra: list, hint: str | None = None) -> Problem:
        # A stray value fills a free positional (vLLM's model_tag): the parser takes the argv, and
        # the value silently means something else. Still an error; not a parser disagreement.
        if len(extra) <= len(free):
            names = [free.pop(0) for _ in extra]
            message += f" (its parser would take it as the positional {', '.join(names)})"
            return Problem("RC802", flag, message, hint, parser_accepts=True)
        return Problem("RC802", flag, message, hint)

    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not _is_flag(word):
            yield stray("", f"'{_shown(word)}' is the value of no flag", [word]), word
            continue
        inline = None
        if "=" in word and syntax.get("flag_equals_value", True):
            word, inline = word.split("=", 1)
        values: list = [] if inline is None else [inline]
        while inline is None and i < len(words) and not _is_flag(words[i]):
            values.append(words[i])
            i += 1
        name, dotted = _normalise(word, syntax, flags)
        meta = flags.get(name)
        if meta is None:
            positive = "--" + name[5:] if name.startswith("--no-") else None
            if positive in flags and not flags[positive].get("takes_value"):
                yield Problem("RC801", word, f"{positive} cannot be negated in {_engine(catalog)}: "
                              f"false writes {word}, which it does not accept",
                              "leave the key out, or set it to null"), None
            elif (full := _abbreviates(name, flags, syntax)) is not None:
                yield Problem("RC801", word, f"{word} is not a flag of {_engine(catalog)} (its parser "
                              f"would take it as an abbreviation of {full})",
                              f"did you mean {full}? Spell it out: an abbreviation changes meaning "
                              "when a new flag shares its prefix", parser_accepts=True), None
            else:
                yield Problem("RC801", word, f"{word} is not a flag of {_engine(catalog)}",
                              _did_you_mean(name, flags)), None
            continue
        if dotted is not None:  # --json-flag.key VALUE sets one key of the JSON value
            fields = catalog.get("kv_transfer_config_fields") if name == "--kv-transfer-config" else None
            key = dotted.split(".", 1)[0]
            if fields and key not in fields:
                close = difflib.get_close_matches(key, sorted(fields), n=1)
                yield Problem("RC805", word, f"{word} sets '{key}', which KVTransferConfig of "
                              f"{_engine(catalog)} does not have",
                              f"did you mean '{close[0]}'?" if close else None), None
            elif len(values) != 1:
                yield Problem("RC803" if not values else "RC802", word,
                              f"{word} takes one value, got {len(values)}"), None
            continue
        least, most = _arity(meta.get("nargs", 1))
        if most == 0 and values:
            yield stray(word, f"{word} is a switch and takes no value, but '{_shown(values[0])}' "
                        "follows it", values, "write true or false for a switch: true gives the flag "
                        "alone, false its --no- form"), values[0]
            continue
        if len(values) < least:
            yield Problem("RC803", word, f"{word} needs {'a value' if least == 1 else f'{least} values'}"
                          f", got {'none' if not values else len(values)}"), None
            continue
        if most is not None and len(values) > most:
            extra = values[most]
            yield stray(word, f"{word} takes {most} value{'s' if most != 1 else ''}, but "
                        f"'{_shown(extra)}' follows too", values[most:]), extra
            values = values[:most]
        for value in values:
            if not isinstance(value, str):
                continue  # filled in at run time (an address)
            why = _bad_value(value, meta)
            if why:
                yield Problem("RC804", word, f"{word}: {why}"), value


def _engine(catalog: dict) -> str:
    return f"{catalog.get('package', catalog.get('engine'))} {catalog.get('version')}"


# ------------------------------------------------------------------ where each flag comes from


def _args_sources(section_args: list[tuple[tuple, dict]]) -> dict[str, tuple]:
    """Generated flag word -> key path of the args entry that wrote it (later sections win)."""
    out: dict[str, tuple] = {}
    for keypath, args in section_args:
        for key, value in args.items():
            words = flag_args({key: value})
            if words:
                out[words[0]] = keypath + (key,)
    return out


def _engine_sources(recipe, role: str) -> dict[str, tuple]:
    out = {"--model": ("model", "path"), "--host": (role, "port"), "--port": (role, "port"),
           "--served-model-name": ("model", "served-name"),
           "--tensor-parallel-size": (role, "tensor-parallel-size"),
           "--kv-transfer-config": (role, "kv-transfer")}
    out.update(_args_sources([(("engine", "args"), recipe.engine.args),
                              ((role, "args"), getattr(recipe, role).args)]))
    return out


def _lmcache_sources(lm) -> dict[str, tuple]:
    out = {"--host": ("lmcache", "host"), "--port": ("lmcache", "port"),
           "--http-host": ("lmcache",), "--http-port": ("lmcache", "http-port")}
    for key in ("l1_size_gb", "l1_init_size_gb", "l1_read_ttl_seconds", "chunk_size", "max_workers",
                "eviction_policy", "supported_transfer_mode"):
        out["--" + key.replace("_", "-")] = ("lmcache", key.replace("_", "-"))
    out.update(_args_sources([(("lmcache", "args"), lm.args)]))
    return out


def _router_sources(r) -> dict[str, tuple]:
    out = {"--host": ("router",), "--port": ("router", "port"), "--vllm-pd-disaggregation": ("router",),
           "--prefill": ("prefill", "port"), "--decode": ("decode", "port"),
           "--kv-connector": ("router", "kv-connector"), "--prefill-policy": ("router", "prefill-policy"),
           "--decode-policy": ("router", "decode-policy"),
           "--prometheus-port": ("router", "prometheus-port")}
    out.update(_args_sources([(("router", "args"), r.args)]))
    return out


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
    """Every service of a plan whose argv a catalog describes (engines, LMCache, router)."""
    r = ctx.recipe
    eng = r.engine
    out = []
    for svc in ctx.plan(target).services:
        if svc.role in ("prefill", "decode"):
            cut = len(eng.command) + (1 if eng.model_arg == "positional" else 0)
            catalog, version, missing = catalog_for(eng.package, eng.version)
            package, sources = eng.package, _engine_sources(r, svc.role)
        elif svc.role == "lmcache":
            cut = len(r.lmcache.command)
            package = SIDECARS["lmcache"]
            catalog, version, missing = catalog_for(package, r.lmcache.version)
            sources = _lmcache_sources(r.lmcache)
        elif svc.role == "router":
            cut = len(r.router.command)
            package = SIDECARS["router"]
            catalog, version, missing = catalog_for(package, r.router.version)
            sources = _router_sources(r.router)
        else:
            continue
        used = 1 if svc.role in ("prefill", "decode") and eng.model_arg == "positional" else 0
        out.append(ServiceArgv(svc.name, svc.role, tuple(svc.argv[cut:]), tuple(svc.argv[:cut]),
                               catalog, version, package, missing, sources, used))
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
    engine = _engine(sa.catalog)

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
    """(message, key path) -> (problem, services) over both targets' plans, read once per recipe
    however many of the rules below ask (kept with the plans the Context caches)."""
    key = ("rules.flags", "problems")
    if key not in ctx._plans:
        found: dict[tuple, tuple] = {}
        for target in ("local", "slurm"):
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
      "not checked", "generate one with tools/catalog/make-all.sh (or pin a version that has one)",
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
