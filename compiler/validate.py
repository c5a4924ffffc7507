"""Stage 2, validate: a loaded Document -> a typed model, or errors that name file:line:col.

pydantic does the typing (the models of model.py, compiled once: compiled.py); this module only
translates its error locations back to positions in the YAML (via the Document's position map) and
its messages into a recipe author's words.

It also names the types of what it gives (Recipe, RoleSpec, ...): later stages import them from
here and read their attributes, whatever class validation makes them of.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic_core import ValidationError as CoreValidationError

from .compose import merged_note
from .compiled import known_keys, record_class, validator
from .constraints import ONE_LINE_PATTERN
from .diagnostics import Diagnostic
from .errors import ValidationError
from .load import Document

SCHEMA_CODE = "RC100"
BASE_UNKNOWN_KEY = "RC944"

if TYPE_CHECKING:  # the models, for the fields a type checker sees
    from .model import ChangelogEntry, ClientSpec, KVTransfer, LMCacheSpec, Recipe, RoleSpec, RouterSpec
else:  # the classes validated values have at run time: compiled.py's Records, the same fields
    ChangelogEntry, ClientSpec, KVTransfer, LMCacheSpec, Recipe, RoleSpec, RouterSpec = map(record_class, (
        "ChangelogEntry", "ClientSpec", "KVTransfer", "LMCacheSpec", "Recipe", "RoleSpec", "RouterSpec"))


def validate(doc: Document, model: str):
    """The validated value of a document against a model ("recipe", "changelog": compiled.ROOTS)."""
    try:
        return validator(model).validate_python(doc.data)
    except CoreValidationError as exc:
        raise ValidationError(_diagnostics(doc, model, exc)) from None


def validate_recipe(doc: Document) -> Recipe:
    """The Recipe of a loaded document, or ValidationError with the schema's diagnostics."""
    return validate(doc, "recipe")


def _diagnostics(doc: Document, model: str, exc: CoreValidationError):
    seen: dict[tuple, Diagnostic] = {}
    paths: dict[tuple, tuple] = {}
    for err in exc.errors(include_url=False):
        keypath = _data_path(doc.data, err["loc"])
        message, hint = _describe(err, keypath, doc.data, model)
        position = doc.position(keypath)
        if err["type"] == "extra_forbidden" and keypath in doc.key_positions:
            position = doc.key_positions[keypath]
        where = ".".join(str(k) for k in keypath) or "(top level)"
        code = SCHEMA_CODE
        if doc.sources and position.path != doc.path and err["type"] == "extra_forbidden" \
                and not position.path.startswith("--set"):
            code = BASE_UNKNOWN_KEY  # written in a profile or base recipe, not the file being built
        diag = Diagnostic(position, code, f"{where}: {message}{merged_note(doc, keypath)}", hint)
        # A union reports each of its members' complaints; one line a place is enough.
        seen.setdefault((position, where), diag)
        paths[(position, where)] = keypath
    # A union reports each member's complaint: where one member went on to fault a value inside
    # (a JSON mapping's key), the others' "should be a valid boolean" about the whole is noise.
    deeper = {p[:i] for p in paths.values() for i in range(len(p))}
    return [d for k, d in seen.items() if paths[k] not in deeper]


def _data_path(data: Any, loc: tuple) -> tuple:
    """The prefix of a pydantic loc that indexes into the data (drops union member tags)."""
    path: list = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not path_is_union_tag(part):
            path.append(part)  # a missing key: point at it by name, position of the parent
            break
        elif isinstance(part, str) and path_is_union_tag(part):
            continue  # a union member's tag between two keys (a JSON value's list or dict)
        else:
            break
        path.append(part)
    return tuple(path)


def path_is_union_tag(part: str) -> bool:
    return "[" in part or part in {"str", "int", "float", "bool", "list", "dict", "none"}


def _describe(err: dict, keypath: tuple, data: Any, model: str) -> tuple[str, str | None]:
    kind = err["type"]
    if kind == "extra_forbidden":
        known = known_keys(model, keypath[:-1])
        key = str(keypath[-1]) if keypath else "?"
        import difflib  # noqa: PLC0415 (only a misspelling pays for it)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else (
            f"known keys: {', '.join(sorted(known))}" if known else None)
        return f"unknown key '{key}'", hint
    if kind == "missing":
        return "required key is missing", None
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{_shown(err.get('input'))} is not allowed", f"expected {expected}"
    if not isinstance(err.get("input"), (str, int, float, bool, list, dict, type(None))):
        # A YAML date or !!binary: no JSON, no flag, no env value can carry one.
        value = err["input"]
        what = {"date": "date", "datetime": "timestamp", "bytes": "!!binary"}.get(type(value).__name__, "value")
        shown = _shown(value if isinstance(value, bytes) else str(value))
        return (f"a YAML {what} ({shown}) where text, a number or a boolean is expected",
                "quote it to pass it as text")
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        if pattern == ONE_LINE_PATTERN:
            return (f"{_shown(err.get('input'))} must be one line: no control character, no line "
                    "separator"), None
        return f"{_shown(err.get('input'))} does not match the pattern {pattern}", None
    return f"{err['msg'][0].lower()}{err['msg'][1:]} (got {_shown(err.get('input'))})", None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
