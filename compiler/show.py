"""`recipec show` and `recipec diff`: what a composed recipe finally says, value by value.

Takes a recipe reference (a name, a variant's name, a path) and gives text: the resolved recipe as
YAML, each value annotated (``--origins``) with the file:line:col it was written at; or the value-by-
value difference of two resolved recipes (and, with ``--bundles``, of the bundles they build).
"""

from __future__ import annotations

import difflib
import json
import re

from .escape import one_line
from .load import Document

_PLAIN = re.compile(r"^[A-Za-z0-9_/${}][A-Za-z0-9_./:${}+-]*\Z")


def resolved(ref: str, overrides: tuple = ()):
    """The LoadedRecipe of ``ref`` (validated: show prints only what would build)."""
    from .pipeline import load_recipe

    return load_recipe(ref, overrides)


def scalar(value) -> str:
    """A scalar as YAML that reads back as the same value (plain where that is unambiguous)."""
    import yaml

    if isinstance(value, str):
        if _PLAIN.match(value) and yaml.safe_load(value) == value:
            return value
        return json.dumps(value)  # JSON's escapes are YAML double-quoted escapes
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (int, float)) else json.dumps(str(value))


def to_yaml(doc: Document, origins: bool) -> str:
    """The resolved data of ``doc`` as block YAML, in merge order; with origins, a comment after
    each value naming where it was written."""
    lines: list[tuple[str, str]] = []

    def origin(keypath):  # a --set's text may hold anything: one visible line
        return one_line(str(doc.position(keypath))) if origins else ""

    def walk(value, keypath, indent):
        pad = "  " * indent
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            here = keypath + (key,)
            lead = f"{pad}{scalar(key)}:" if isinstance(value, dict) else f"{pad}-"
            if isinstance(item, (dict, list)) and item:
                if isinstance(value, list) and isinstance(item, dict):
                    # `- key: value` on the item's line, its other keys under it
                    first, *rest = item.items()
                    sub = {first[0]: first[1]}
                    start = len(lines)
                    walk(sub, here, indent + 1)
                    lines[start] = (f"{pad}- {lines[start][0].lstrip()}", lines[start][1])
                    walk(dict(rest), here, indent + 1)
                    continue
                lines.append((lead, origin(here) if isinstance(value, list) else ""))
                walk(item, here, indent + 1)
            else:
                shown = "{}" if item == {} else "[]" if item == [] else scalar(item)
                lines.append((f"{lead} {shown}", origin(here)))

    walk(doc.data, (), 0)
    if not origins:
        return "".join(text + "\n" for text, _ in lines)
    width = min(max(len(t) for t, _ in lines), 72)
    return "".join((f"{text:<{width}}  # {where}" if where else text).rstrip() + "\n" for text, where in lines)


def flatten(data, keypath: tuple = ()) -> dict[tuple, object]:
    """Every leaf value by its key path (empty mappings and lists are leaves)."""
    out: dict[tuple, object] = {}
    if isinstance(data, (dict, list)) and data:
        items = data.items() if isinstance(data, dict) else enumerate(data)
        for key, value in items:
            out.update(flatten(value, keypath + (key,)))
    else:
        out[keypath] = data
    return out


def diff_recipes(a, b) -> list[str]:
    """Value by value: `- path: value  # origin` for A, `+ ...` for B, where they differ."""
    fa, fb = flatten(a.doc.data), flatten(b.doc.data)
    out = []
    def order(keypath):  # keys alphabetically, list items by index (2 before 10)
        return tuple((1, 0, p) if isinstance(p, str) else (0, p, "") for p in keypath)

    for keypath in sorted(set(fa) | set(fb), key=order):
        va, vb = fa.get(keypath, _MISSING), fb.get(keypath, _MISSING)
        if va == vb and type(va) is type(vb):
            continue
        path = ".".join(scalar(p) if isinstance(p, str) else str(p) for p in keypath)
        if va is not _MISSING:
            out.append(f"- {path}: {scalar(va)}  # {one_line(str(a.doc.position(keypath)))}")
        if vb is not _MISSING:
            out.append(f"+ {path}: {scalar(vb)}  # {one_line(str(b.doc.position(keypath)))}")
    return out


_MISSING = object()


def diff_bundles(a, b, target: str | None) -> list[str]:
    """A unified diff of the bundles the two recipes build (rendered in memory, never written)."""
    from .pipeline import check
    from .render import render_bundle

    files = []
    for loaded in (a, b):
        plans = check(loaded).plans
        files.append(render_bundle(plans[target or loaded.recipe.target]))
    out: list[str] = []
    for name in sorted(set(files[0]) | set(files[1])):
        old, new = files[0].get(name, ""), files[1].get(name, "")
        out += difflib.unified_diff(old.splitlines(), new.splitlines(), f"{a.recipe.name}/{name}",
                                    f"{b.recipe.name}/{name}", lineterm="", n=1)
    return out


def listing(root) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(name, config key, file) of every recipe and variant under root/recipes/, and one line for
    each file that does not resolve (`recipec lint` says why in full)."""
    from .errors import RecipecError
    from .pipeline import load_source
    from .variants import variant_name

    rows, errors = [], []
    for path in sorted((root / "recipes").glob("*.yaml")):
        display = path.relative_to(root).as_posix()
        try:
            source = load_source(path, display)
        except RecipecError as exc:
            errors.append(str(exc).splitlines()[0])
            continue
        data = source.doc.data if isinstance(source.doc.data, dict) else {}
        name, key = str(data.get("name", "?")), str(data.get("config-key", "?"))
        rows.append((name, key, display))
        for v in source.variants:
            explicit = {kp: value for _, kp, value, _ in v.overrides}
            rows.append((variant_name(source.doc, v), str(explicit.get(("config-key",), f"{key}-{v.suffix}")),
                         display))
    return rows, errors
