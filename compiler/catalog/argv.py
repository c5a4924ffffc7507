"""Reading an argv as an engine's own parser would, from the engine's catalog (no engine needed).

Takes argv words (after the command) and a catalog (catalog/__init__.py); gives the Problems the
engine's parser would have with them, each of a kind (the flag rules, rules/flags.py, report each
kind under its code; `recipec lint --live` compares them with the real parser). The reading follows
the catalog's `syntax`: `--flag=value`, vLLM's `_`/`-` equivalence and dotted JSON keys, and where
argparse would quietly take a misspelling (an abbreviation, a stray value filling a free positional)
the Problem says so (`parser_accepts`), for `recipec lint --live` to compare.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Iterator, Literal

# What is wrong with an argv: a flag the parser lacks; a value after a switch, or one too many; a
# value missing; a value outside the flag's choices or type; a --kv-transfer-config key or value
# KVTransferConfig lacks; a requirement across flags (checked after parsing).
ProblemKind = Literal["unknown-flag", "unexpected-value", "missing-value", "invalid-value",
                      "kv-transfer-config", "requirement"]


@dataclass(frozen=True)
class Problem:
    """One thing a catalog says is wrong with one argv: what kind, which flag, what."""

    kind: ProblemKind
    flag: str  # the flag word as generated ("" for a word that belongs to no flag)
    message: str
    hint: str | None = None
    parser_accepts: bool = False  # the engine's own parser takes it anyway (an abbreviation)


def _version_key(version: str) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", version))


@functools.lru_cache(maxsize=None)
def _versions(package: str) -> tuple:
    from . import available_catalogs

    return tuple(sorted((v for p, v in available_catalogs() if p == package), key=_version_key))


@functools.lru_cache(maxsize=None)  # the catalogs are read once a process; every plan asks for five
def catalog_for(package: str, version: str | None):
    """(catalog, version used, why none) for a package: the pinned version, else the newest."""
    from . import CatalogNotFound, load_catalog

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
    # "-5" is a value (a negative number), "-" alone is a value (stdin); "-x"/"--x" are flags.
    return type(word) is str and len(word) > 1 and word[0] == "-" and not word[1].isdigit()


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
    import difflib  # noqa: PLC0415 (only a misspelling pays for it)
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


_CHOICES: dict[int, tuple] = {}


def _choice_strings(choices: list) -> frozenset:
    """A flag's choices as a set of strings, made once per catalog list (catalogs are cached for
    the life of the process, so the list's id is a stable key; the list is kept to pin the id)."""
    hit = _CHOICES.get(id(choices))
    if hit is None or hit[0] is not choices:
        hit = _CHOICES[id(choices)] = (choices, frozenset(map(str, choices)))
    return hit[1]


def _bad_value(value: str, meta: dict) -> str | None:
    """Why a value does not fit the flag's choices or simple type, or None."""
    choices = meta.get("choices")
    if choices is not None and value not in _choice_strings(choices):
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
    syntax = catalog.get("syntax", {})
    free = [p["name"] for p in catalog.get("positionals", ()) if p.get("nargs") in ("?", 1, None)]
    free = free[positionals_used:]

    def stray(flag: str, message: str, extra: list, hint: str | None = None) -> Problem:
        # A stray value fills a free positional (vLLM's model_tag): the parser takes the argv, and
        # the value silently means something else. Still an error; not a parser disagreement.
        if len(extra) <= len(free):
            names = [free.pop(0) for _ in extra]
            message += f" (its parser would take it as the positional {', '.join(names)})"
            return Problem("unexpected-value", flag, message, hint, parser_accepts=True)
        return Problem("unexpected-value", flag, message, hint)

    equals = syntax.get("flag_equals_value", True)
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not _is_flag(word):
            yield stray("", f"'{_shown(word)}' is the value of no flag", [word]), word
            continue
        if equals and "=" in word:
            word, inline = word.split("=", 1)
            values: tuple = (inline,)
        else:
            first = i
            while i < len(words) and not _is_flag(words[i]):
                i += 1
            values = tuple(words[first:i])
        yield from _flag_reading(word, values, catalog, stray)


# A flag's reading is a function of its words and the catalog, but for a value that fills a free
# positional (stray): a sweep's argv, and the argv of many recipes, repeat most flags with the same
# values, so each distinct flag is read once a process. Catalogs live as long as the process
# (catalog_for caches them): a catalog's id is a stable key, and each entry keeps its catalog.
_FLAG_READINGS: dict[tuple, tuple] = {}
_MAX_FLAG_READINGS = 16384


def _flag_reading(word: str, values: tuple, catalog: dict, stray) -> list:
    """_read_flag's (problem, value) pairs, kept unless stray was called."""
    key = (id(catalog), word, values)
    hit = _FLAG_READINGS.get(key)
    if hit is not None and hit[0] is catalog:
        return hit[1]
    strays: list = []

    def counted(*args, **kwargs) -> Problem:
        strays.append(True)
        return stray(*args, **kwargs)

    found = list(_read_flag(word, list(values), catalog, counted))
    if not strays:  # a stray's reading depends on the positionals still free: read it each time
        if len(_FLAG_READINGS) >= _MAX_FLAG_READINGS:
            _FLAG_READINGS.clear()
        _FLAG_READINGS[key] = (catalog, found)
    return found


def _read_flag(word: str, values: list, catalog: dict, stray) -> Iterator[tuple[Problem, object]]:
    """The problems of one flag (its name, without an `=value`) and its values: the `=value`, or
    the words after it up to the next flag."""
    flags, syntax = catalog["flags"], catalog.get("syntax", {})
    name, dotted = _normalise(word, syntax, flags)
    meta = flags.get(name)
    if meta is None:
        positive = "--" + name[5:] if name.startswith("--no-") else None
        if positive in flags and not flags[positive].get("takes_value"):
            yield Problem("unknown-flag", word, f"{positive} cannot be negated in {engine_name(catalog)}: "
                          f"false writes {word}, which it does not accept",
                          "leave the key out, or set it to null"), None
        elif (full := _abbreviates(name, flags, syntax)) is not None:
            yield Problem("unknown-flag", word, f"{word} is not a flag of {engine_name(catalog)} (its parser "
                          f"would take it as an abbreviation of {full})",
                          f"did you mean {full}? Spell it out: an abbreviation changes meaning "
                          "when a new flag shares its prefix", parser_accepts=True), None
        else:
            yield Problem("unknown-flag", word, f"{word} is not a flag of {engine_name(catalog)}",
                          _did_you_mean(name, flags)), None
        return
    if dotted is not None:  # --json-flag.key VALUE sets one key of the JSON value
        fields = catalog.get("kv_transfer_config_fields") if name == "--kv-transfer-config" else None
        key = dotted.split(".", 1)[0]
        if fields and key not in fields:
            import difflib  # noqa: PLC0415 (only a misspelling pays for it)
            close = difflib.get_close_matches(key, sorted(fields), n=1)
            yield Problem("kv-transfer-config", word, f"{word} sets '{key}', which KVTransferConfig of "
                          f"{engine_name(catalog)} does not have",
                          f"did you mean '{close[0]}'?" if close else None), None
        elif len(values) != 1:
            yield Problem("missing-value" if not values else "unexpected-value", word,
                          f"{word} takes one value, got {len(values)}"), None
        return
    least, most = _arity(meta.get("nargs", 1))
    if most == 0 and values:
        yield stray(word, f"{word} is a switch and takes no value, but '{_shown(values[0])}' "
                    "follows it", values, "write true or false for a switch: true gives the flag "
                    "alone, false its --no- form"), values[0]
        return
    if len(values) < least:
        yield Problem("missing-value", word, f"{word} needs {'a value' if least == 1 else f'{least} values'}"
                      f", got {'none' if not values else len(values)}"), None
        return
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
            yield Problem("invalid-value", word, f"{word}: {why}"), value


def engine_name(catalog: dict) -> str:
    return f"{catalog.get('package', catalog.get('engine'))} {catalog.get('version')}"
