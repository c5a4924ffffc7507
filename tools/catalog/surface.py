"""Engine-neutral readers of a command's flag surface, for tools/catalog/dump.py.

Takes a live argparse parser (or an entry point that builds one, or gflags' --helpxml
text) and gives the catalog's `flags`/`positionals`/`syntax` data. Behaviour such as
negation or `--f=v` is probed by parsing on the real parser, never guessed from names.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import re
import sys
import typing
import xml.etree.ElementTree as ET
from typing import Any, Callable

# Actions whose values accumulate over repeated use instead of the last one winning.
_ACCUMULATING = ("append", "append_const", "extend", "count")


# --------------------------------------------------------------------------- helpers


def json_safe(value: Any) -> tuple[bool, Any]:
    """Return (ok, value) where value round-trips through JSON unchanged."""
    if value is None or isinstance(value, (bool, int, str)):
        return True, value
    if isinstance(value, float):
        return (value == value and value not in (float("inf"), float("-inf"))), value
    if isinstance(value, (list, tuple)):
        items = [json_safe(v) for v in value]
        if all(ok for ok, _ in items):
            return True, [v for _, v in items]
        return False, None
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = {k: json_safe(v) for k, v in value.items()}
        if all(ok for ok, _ in items.values()):
            return True, {k: v for k, (_, v) in items.items()}
        return False, None
    if hasattr(value, "value") and type(value).__module__ != "builtins":  # enum members
        return json_safe(value.value)
    return False, None


def _closure_values(fn: Callable) -> list[Any]:
    cells = getattr(fn, "__closure__", None) or ()
    values = []
    for cell in cells:
        with contextlib.suppress(ValueError):
            values.append(cell.cell_contents)
    values.extend(v for v in (getattr(fn, "__defaults__", None) or ()))
    return values


def _type_name(fn: Any, depth: int = 0) -> str | None:
    """Name an argparse ``type=`` callable in engine-neutral terms.

    Engines wrap json.loads or a pydantic dataclass in closures; we look through
    the closure so that e.g. vLLM's parse_type(json.loads) is reported as "json".
    """
    if fn is None:
        return None
    if fn in (int, float, str, bool):
        return fn.__name__
    if fn is json.loads:
        return "json"
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    short = name.rsplit(".", 1)[-1]
    if short == "parse_dataclass":
        cls = next((v for v in _closure_values(fn) if isinstance(v, type)), None)
        return f"json:{cls.__name__}" if cls else "json"
    if short == "union_dict_and_str":
        return "json|str"
    if depth < 3:
        for inner in _closure_values(fn):
            if any(inner is t for t in (int, float, str)) or (
                    callable(inner) and not isinstance(inner, type)):
                inner_name = _type_name(inner, depth + 1)
                if inner_name is not None:
                    if short == "_optional_type":
                        return f"optional:{inner_name}"
                    return inner_name
    if isinstance(fn, type):
        return fn.__name__
    return "custom" if short == "<lambda>" else short


def _is_json_type(type_name: str | None) -> bool:
    return bool(type_name) and "json" in re.split(r"[:|]", type_name)


def _action_name(action: argparse.Action) -> str:
    """argparse's own spelling: _StoreTrueAction -> store_true, BooleanOptionalAction
    -> boolean_optional; engine-defined action classes keep their class name."""
    name = type(action).__name__
    if type(action).__module__ != "argparse":
        return name
    name = name.lstrip("_").removesuffix("Action")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _nargs(action: argparse.Action) -> int | str:
    if action.nargs is None:
        return 1
    return action.nargs


def _action_groups(parser: argparse.ArgumentParser) -> dict[int, str]:
    groups = {}
    for group in parser._action_groups:
        for action in group._group_actions:
            groups[id(action)] = group.title
    return groups


def _exclusive_groups(parser: argparse.ArgumentParser) -> list[list[str]]:
    out = []
    for group in parser._mutually_exclusive_groups:
        out.append(sorted(a.option_strings[0] for a in group._group_actions if a.option_strings))
    return sorted(out)


_NO_VALUE = object()


def _probe_value(parser: argparse.ArgumentParser, opt: str, dest: str) -> Any:
    """The value `dest` gets when argv is just [opt], or _NO_VALUE if that fails."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return getattr(parser.parse_args([opt]), dest, _NO_VALUE)
        except (SystemExit, Exception):
            return _NO_VALUE


def _option_strings(parser: argparse.ArgumentParser) -> dict[int, list[str]]:
    """Every option string the parser accepts, per action, in registration order.

    Read from the parser's registry rather than action.option_strings: vLLM 0.33's
    EnableDisableAction keeps --no-enable-x / --no-disable-x registered (accepted)
    but drops them from option_strings to hide them from --help.
    """
    out: dict[int, list[str]] = {}
    for opt, action in parser._option_string_actions.items():
        out.setdefault(id(action), []).append(opt)
    return out


def _split_negations(parser: argparse.ArgumentParser, action: argparse.Action,
                     opts: list[str]) -> tuple[str, set[str]]:
    """(canonical option, negating options) of one action, by parsing each option.

    Negations are found by behaviour, not by name: an option of a no-value action
    that stores False where a sibling stores True negates it. This covers argparse's
    BooleanOptionalAction (--x / --no-x) and vLLM 0.33's EnableDisableAction
    (--enable-x / --disable-x, plus hidden --no-enable-x / --no-disable-x).
    """
    visible = [o for o in opts if o in action.option_strings] or opts
    ranked = sorted(visible, key=lambda o: (not o.startswith("--"), visible.index(o)))
    negations: set[str] = set()
    if action.nargs == 0 and len(opts) > 1 and _action_name(action) not in ("help", "version"):
        values = {o: _probe_value(parser, o, action.dest) for o in opts}
        if True in values.values() and False in values.values():
            negations = {o for o, v in values.items() if v is False}
            ranked = [o for o in ranked if o not in negations] or ranked
    return ranked[0], negations


def argparse_surface(
    parser: argparse.ArgumentParser,
    *,
    deprecated: set[int] | None = None,
) -> dict[str, Any]:
    """Describe every option string and positional of an argparse parser."""
    deprecated = deprecated or set()
    groups = _action_groups(parser)
    all_opts = _option_strings(parser)
    flags: dict[str, dict[str, Any]] = {}
    positionals: list[dict[str, Any]] = []
    for action in parser._actions:
        kind = _action_name(action)
        type_name = _type_name(action.type)
        if type_name is None and action.nargs != 0:
            type_name = "str"  # argparse's default conversion
        choices = [str(c) for c in action.choices] if action.choices is not None else None
        ok, default = json_safe(action.default)
        base: dict[str, Any] = {
            "dest": action.dest,
            "action": kind,
            "nargs": _nargs(action),
            "type": type_name,
            "json": _is_json_type(type_name),
            "choices": choices,
            "required": bool(action.required),
            "repeatable": kind in _ACCUMULATING,
            "deprecated": id(action) in deprecated or bool(getattr(action, "deprecated", False)),
            "group": groups.get(id(action)),
        }
        if ok and default is not argparse.SUPPRESS:
            base["default"] = default
        opts = all_opts.get(id(action), [])
        if not opts:
            if isinstance(action, argparse._SubParsersAction):
                continue
            positionals.append({"name": action.dest, **base})
            continue
        canonical, negations = _split_negations(parser, action, opts)
        for opt in opts:
            entry = dict(base)
            entry["canonical"] = canonical
            entry["aliases"] = sorted(s for s in opts if s != opt)
            entry["hidden"] = opt not in action.option_strings
            entry["takes_value"] = action.nargs != 0
            entry["value_optional"] = action.nargs in ("?", "*")
            entry["negatable"] = bool(negations) and opt not in negations
            entry["negation_of"] = canonical if opt in negations else None
            flags[opt] = entry
    return {"flags": flags, "positionals": positionals,
            "mutually_exclusive": _exclusive_groups(parser)}


def accepts(parser: argparse.ArgumentParser, argv: list[str]) -> bool:
    """Whether the parser accepts argv (argparse exits 2 on rejection)."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            return exc.code in (0, None)
        except Exception:
            return False
    return True


def dist_version(dist: str) -> str:
    return importlib.metadata.version(dist)


def installed_dist(*dists: str) -> str | None:
    for dist in dists:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            importlib.metadata.version(dist)
            return dist
    return None


def literal_choices(annotation: Any) -> list[str] | None:
    """Flatten (possibly nested / Optional) Literal annotations into strings."""
    values: list[str] = []

    def walk(tp: Any) -> None:
        origin = typing.get_origin(tp)
        if origin is typing.Literal:
            for arg in typing.get_args(tp):
                walk(arg)
        elif origin is not None and typing.get_args(tp):
            for arg in typing.get_args(tp):
                walk(arg)
        elif tp is type(None):
            return
        elif isinstance(tp, (str, int, bool)):
            if str(tp) not in values:
                values.append(str(tp))

    walk(annotation)
    return values or None


def annotation_text(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text)
    return text.replace("typing.", "")


# --------------------------------------------------------------------------- argparse capture


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__("parser captured")
        self.parser = parser


@contextlib.contextmanager
def _capture_parse_args():
    """Make the next ArgumentParser.parse_args/parse_known_args raise _Captured(parser).

    This lets a dumper run an engine's real CLI entry point up to the moment it parses
    argv, and take the exact parser it built, without starting anything.
    """
    originals = (argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args)

    def capture(self, *args, **kwargs):
        raise _Captured(self)

    argparse.ArgumentParser.parse_args = capture  # type: ignore[method-assign]
    argparse.ArgumentParser.parse_known_args = capture  # type: ignore[method-assign]
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args = originals


def run_until_parse(entry: Callable[[], Any], argv: list[str]) -> argparse.ArgumentParser:
    saved = sys.argv
    sys.argv = argv
    try:
        with _capture_parse_args():
            entry()
    except _Captured as captured:
        return captured.parser
    finally:
        sys.argv = saved
    raise SystemExit(f"{argv[0]}: entry point returned without parsing arguments")


def argparse_syntax(parser: argparse.ArgumentParser, probe_flag: str, probe_value: str
                    ) -> dict[str, Any]:
    """Probe generic argparse syntax on the real parser.

    probe_flag must be a dashed long option taking one value (e.g. --http-port), so
    that its underscore spelling and its abbreviation are real tests.
    """
    underscore_form = "--" + probe_flag[2:].replace("-", "_")
    return {
        "kind": "argparse",
        "flag_equals_value": accepts(parser, [f"{probe_flag}={probe_value}"]),
        "underscore_dash_equivalent": (underscore_form != probe_flag
                                       and accepts(parser, [underscore_form, probe_value])),
        "json_dotted_keys": False,
        "allow_abbrev": accepts(parser, [probe_flag[:-1], probe_value]),
        "unknown_flag_fatal": not accepts(parser, ["--recipec-no-such-flag"]),
    }


# --------------------------------------------------------------------------- gflags


def _gflags_value(kind: str, text: str | None) -> Any:
    if text is None:
        return None
    if kind == "bool":
        return text == "true"
    if kind in ("int32", "int64", "uint32", "uint64"):
        return int(text)
    if kind == "double":
        return float(text)
    return text


def gflags_flags(helpxml: str) -> dict[str, dict[str, Any]]:
    """The catalog `flags` of a gflags program, from its --helpxml output.

    gflags accepts -f and --f alike, --f=v and --f v for valued flags, and for a bool
    --f, --nof and --f=true|false; unknown flags are fatal.
    """
    flags: dict[str, dict[str, Any]] = {}
    for node in ET.fromstring(helpxml).iter("flag"):
        name = node.findtext("name") or ""
        kind = node.findtext("type") or "string"
        meaning = node.findtext("meaning") or ""
        is_bool = kind == "bool"
        entry: dict[str, Any] = {
            "dest": name,
            "action": "gflag",
            "nargs": 0 if is_bool else 1,
            "type": kind,
            "json": False,
            "choices": None,
            "required": False,
            "repeatable": False,
            "deprecated": "deprecated" in meaning.lower(),
            "group": node.findtext("file"),
            "canonical": f"--{name}",
            "aliases": [f"--no{name}"] if is_bool else [],
            "hidden": False,
            "takes_value": not is_bool,
            "value_optional": is_bool,
            "negatable": is_bool,
            "negation_of": None,
        }
        default = _gflags_value(kind, node.findtext("default"))
        if default is not None:
            entry["default"] = default
        flags[f"--{name}"] = entry
        if is_bool:
            flags[f"--no{name}"] = {
                **{k: v for k, v in entry.items() if k != "default"},
                "aliases": [f"--{name}"],
                "value_optional": False,
                "negatable": False,
                "negation_of": f"--{name}",
            }
    return flags
