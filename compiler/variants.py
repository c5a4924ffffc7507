"""Variants: one recipe file, many configurations. A resolved Document with a ``variants`` section ->
the Document of the recipe itself and one Document per variant.

    variants:
      - name: l1-600                        # one variant: kimik2.5-l1-600, config key ...-l1-600
        set:
          lmcache.l1-size-gb: 600           # each entry does what `--set PATH=VALUE` does
      - matrix:                             # every combination of the axes, one variant each
          prefill.workers-per-node: [1, 2]
          lmcache.l1-size-gb: [600, 1200]
        name: w{prefill.workers-per-node}-l1-{lmcache.l1-size-gb}   # default: the values joined by '-'

A variant's name is the recipe's name, '-', its suffix; its config key likewise (a `set` of `name` or
`config-key` wins). Every value a variant sets reports the variant file's line. Errors: RC945 (a path
the schema does not have, a list item the recipe lacks), RC946 (the section's shape, a bad or repeated
name).
"""

from __future__ import annotations

import copy
import functools
import itertools
import re
from dataclasses import dataclass

from .compose import VARIANTS, fail
from .errors import Position
from .load import Document, Marks

_SUFFIX = re.compile(r"^[a-z0-9][a-z0-9._-]*\Z")
_FIELD = re.compile(r"\{([^{}]+)\}")
MAX_VARIANTS = 10_000


@dataclass(frozen=True)
class Variant:
    suffix: str
    where: Position  # the entry's name (or matrix) position: the derived name and key report it
    overrides: tuple  # (dotted path, keypath, value, Position of the value)


def split(doc: Document) -> tuple[Document, list[Variant]]:
    """The recipe without its variants section, and the variants it declares (checked)."""
    data = doc.data
    if not isinstance(data, dict) or VARIANTS not in data:
        return doc, []
    spec = data.pop(VARIANTS)
    section = doc.positions[(VARIANTS,)]
    if not isinstance(spec, list) or not spec:
        fail(section, "RC946", "variants must be a non-empty list of {name, set} or {matrix, name} entries")
    out: list[Variant] = []
    seen: dict[str, Position] = {}
    for i, entry in enumerate(spec):
        at = (VARIANTS, i)
        where = doc.positions[at]
        if not isinstance(entry, dict) or not ({"set", "matrix"} & set(entry)) or set(entry) - {"name", "set", "matrix"} \
                or ("set" in entry) == ("matrix" in entry):
            fail(where, "RC946", "a variant is {name: SUFFIX, set: {PATH: VALUE, ...}} or "
                 "{matrix: {PATH: [VALUES]}, name: TEMPLATE}")
        made = _listed(doc, entry, at) if "set" in entry else _matrix(doc, entry, at)
        for variant in made:
            if variant.suffix in seen:
                fail(variant.where, "RC946", f"two variants named '{variant.suffix}' (the first at "
                     f"{seen[variant.suffix]})")
            seen[variant.suffix] = variant.where
            out.append(variant)
        if len(out) > MAX_VARIANTS:
            fail(where, "RC946", f"more than {MAX_VARIANTS} variants")
    checked: set = set()  # a path's check reads the recipe and the path alone: once per path
    for variant in out:
        for dotted, keypath, _, position in variant.overrides:
            if keypath not in checked:
                _check_path(data, dotted, keypath, position)
                checked.add(keypath)
    _unique_keys(doc, out)
    return doc, out


def _unique_keys(doc: Document, variants: list[Variant]) -> None:
    """RC947 within one file (so build refuses it too; lint also compares across files)."""
    base = doc.data.get("config-key")
    if not isinstance(base, str):
        return
    seen = {base: doc.position(("config-key",))}
    for variant in variants:
        key, where = f"{base}-{variant.suffix}", variant.where
        for _, keypath, value, position in variant.overrides:
            if keypath == ("config-key",):
                key, where = value, position
        if key in seen:
            fail(where, "RC947", f"config key '{key}' is also the config key of another variant or of "
                 f"the recipe ({seen[key]})")
        seen[key] = where


def _listed(doc: Document, entry: dict, at: tuple) -> list[Variant]:
    name, overrides = entry.get("name"), entry["set"]
    name_at = doc.positions.get(at + ("name",), doc.positions[at])
    _check_suffix(name, name_at)
    if not isinstance(overrides, dict) or not overrides:
        fail(doc.positions[at + ("set",)], "RC946", "set must map key paths (prefill.port) to values")
    return [Variant(name, name_at, tuple((path, _keypath(path, doc.key_positions[at + ("set", path)]), value,
                                          doc.positions[at + ("set", path)])
                                         for path, value in overrides.items()))]


def _matrix(doc: Document, entry: dict, at: tuple) -> list[Variant]:
    axes = entry["matrix"]
    where = doc.positions[at + ("matrix",)]
    if not isinstance(axes, dict) or not axes or not all(isinstance(v, list) and v for v in axes.values()):
        fail(where, "RC946", "matrix must map key paths to non-empty lists of values")
    template = entry.get("name")
    if template is not None and not isinstance(template, str):
        fail(doc.positions[at + ("name",)], "RC946", "a matrix's name is a template such as w{prefill.port}")
    name_at = doc.positions.get(at + ("name",), where)
    for field in _FIELD.findall(template or ""):
        if field not in axes:
            fail(name_at, "RC946", f"the name template names {{{field}}}, which is not an axis of the matrix")
    paths = list(axes)
    keypaths = [_keypath(p, doc.key_positions[at + ("matrix", p)]) for p in paths]
    count = 1
    for values in axes.values():
        count *= len(values)
    if count > MAX_VARIANTS:
        fail(where, "RC946", f"the matrix makes {count} variants, more than {MAX_VARIANTS}")
    out = []
    for combo in itertools.product(*(range(len(axes[p])) for p in paths)):
        values = {p: axes[p][j] for p, j in zip(paths, combo)}
        if template is None:
            suffix = "-".join(_word(v) for v in values.values())
        else:
            suffix = _FIELD.sub(lambda m: _word(values[m.group(1)]), template)
        _check_suffix(suffix, name_at)
        out.append(Variant(suffix, name_at, tuple(
            (p, kp, values[p], doc.positions[at + ("matrix", p, j)]) for p, kp, j in zip(paths, keypaths, combo))))
    return out


def _word(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower()


def _check_suffix(name, where: Position) -> None:
    if not isinstance(name, str) or not _SUFFIX.match(name):
        fail(where, "RC946", f"variant name {name!r} is not lowercase letters, digits, '.', '_', '-'",
             "name each variant: its full name is RECIPE-NAME")


def _keypath(dotted, where: Position) -> tuple:
    if not isinstance(dotted, str) or not dotted or any(not p for p in dotted.split(".")):
        fail(where, "RC946", f"{dotted!r} is not a dotted key path such as prefill.port")
    return tuple(int(p) if p.isascii() and p.isdigit() else p for p in dotted.split("."))


def _check_path(data: dict, dotted: str, keypath: tuple, where: Position) -> None:
    """RC945 where the path leaves what the recipe has: a key the schema lacks, a list item that is
    not there, or a step into a plain value."""

    node = data
    for i, part in enumerate(keypath):
        parent = keypath[:i]
        if isinstance(part, int) and not isinstance(node, list):
            fail(where, "RC945", f"{dotted}: the recipe has no list at {'.'.join(map(str, parent))} "
                 f"to set item {part} of", "set the whole list instead")
        if isinstance(node, list):
            if not isinstance(part, int) or part >= len(node):
                fail(where, "RC945", f"{dotted}: {'.'.join(map(str, parent))} has no item {part}")
            node = node[part]
            continue
        if node is not None and not isinstance(node, dict):
            fail(where, "RC945", f"{dotted}: {'.'.join(map(str, parent))} is a value, not a mapping")
        known = _known(tuple(p if isinstance(p, str) else 0 for p in parent))
        if known and part not in known:
            import difflib

            close = difflib.get_close_matches(str(part), known, n=1)
            fail(where, "RC945", f"{dotted}: the recipe has no key '{part}'"
                 + (f" under {'.'.join(map(str, parent))}" if parent else ""),
                 f"did you mean '{close[0]}'?" if close else None)
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:  # a new key of a mapping the recipe has: allowed, as --set allows it
            if any(isinstance(p, int) for p in keypath[i + 1:]):
                fail(where, "RC945", f"{dotted}: the recipe has no list at "
                     f"{'.'.join(map(str, keypath[:i + 1]))} to set an item of", "set the whole list instead")
            return


@functools.lru_cache(maxsize=256)
def _known(keypath: tuple) -> tuple:
    from .validate import known_keys

    return tuple(known_keys("recipe", keypath))


def apply(doc: Document, variant: Variant, set_origin) -> Document:
    """The Document of one variant: a copy of ``doc`` with its overrides, and its derived name."""
    # Copy on write: only the mappings and lists on an override's path are copied; the rest is
    # shared with the recipe's data, which nothing after load changes (a deep copy of the whole
    # recipe per variant was a third of a variant's lint).
    data = dict(doc.data)
    out = Document(doc.path, data, _copy(doc.positions), _copy(doc.key_positions), (), doc.sources)
    explicit = set()
    for dotted, keypath, value, position in variant.overrides:
        node = data
        for part in keypath[:-1]:
            nxt = node[part] if isinstance(node, list) else node.get(part)
            nxt = {} if nxt is None else dict(nxt) if isinstance(nxt, dict) else list(nxt)
            node[part] = nxt
            node = nxt
        last = keypath[-1]
        replaced = node[last] if isinstance(node, list) else node.get(last)
        node[last] = copy.deepcopy(value)
        set_origin(out, keypath, value, position, replaced)
        explicit.add(keypath)
    for key in ("name", "config-key"):
        if (key,) not in explicit and isinstance(data.get(key), str):
            data[key] = f"{data[key]}-{variant.suffix}"
            set_origin(out, (key,), data[key], variant.where)
    return out


def _copy(marks: Marks) -> Marks:
    out = Marks(marks.path)
    dict.update(out, marks)
    return out


def variant_name(doc: Document, variant: Variant) -> str:
    """The full name of a variant of the recipe ``doc`` (its own `set` of name, where it has one)."""
    for _, keypath, value, _ in variant.overrides:
        if keypath == ("name",) and isinstance(value, str):
            return value
    name = doc.data.get("name") if isinstance(doc.data, dict) else None
    return f"{name}-{variant.suffix}" if isinstance(name, str) else variant.suffix
