"""Composition: a loaded recipe Document and the files it extends -> one merged Document.

Takes the Document of the file being built (load.py) and gives a Document of the same kind: the
merged data, and for every value the Position where it was written, in whichever file that was. The
later stages read positions as before, so a diagnostic on a value a profile set points at the
profile's line; ``contributors`` names every file that wrote part of a merged mapping.

Rules (docs/composition.md):
- ``extends: NAME`` or ``extends: [NAME, ...]``: bases merge left to right, then the file itself on top.
  NAME is ``profiles/PATH`` (a file under the project's profiles/), ``./PATH`` or ``../PATH`` (relative
  to the file naming it), or a recipe name (recipes/NAME.yaml); ``.yaml`` is added when missing.
- Mappings merge key by key; lists and scalars replace whole. ``key: !delete`` removes a key a base set.
- A base may extend others (any depth); a cycle, a missing base, a base that is not a mapping and a
  !delete of nothing are errors (RC940-RC943) at the position of the name or marker.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .config import project_config
from .diagnostics import Diagnostic
from .errors import CheckFailed, LoadError, Position
from .load import DELETE, Document, Marks, load_text, read_text

EXTENDS = "extends"
VARIANTS = "variants"


def composes(doc: Document) -> bool:
    """Whether a loaded document needs this module (most recipes do not: a cheap test)."""
    data = doc.data
    return bool(doc.deletes) or (isinstance(data, dict) and (EXTENDS in data or VARIANTS in data))


def fail(position: Position, code: str, message: str, hint: str | None = None):
    from .codes import CODES

    raise CheckFailed([Diagnostic(position, code, message, hint or CODES[code].hint)])


def compose(doc: Document, path: Path) -> Document:
    """The merged Document of ``doc`` (read from ``path``) and every base it extends, at any depth.

    The top file's ``variants`` section is left in the data for variants.py; a base may not have one.
    """
    return _compose(doc, path, (), top=True)


def _compose(doc: Document, path: Path, chain: tuple, top: bool) -> Document:
    data = doc.data
    if not isinstance(data, dict):
        if doc.deletes:
            fail(doc.positions[doc.deletes[0]], "RC943", "!delete in a file that extends nothing")
        return doc
    if not top and VARIANTS in data:
        fail(doc.key_positions[(VARIANTS,)], "RC946", "variants in a base: only the file being built "
             "may declare variants", "move the variants section into the recipe that extends this file")
    names = data.get(EXTENDS)
    chain = chain + ((path.resolve(), doc.path),)
    if names is None:
        if doc.deletes:
            fail(doc.positions[doc.deletes[0]], "RC943", "!delete in a file that extends nothing",
                 "remove the marker, or extend the file that sets the key")
        doc.sources = (doc.path,)
        return doc
    if isinstance(names, str):
        entries = [((EXTENDS,), names)]
    elif isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        entries = [((EXTENDS, i), n) for i, n in enumerate(names)]
    else:
        fail(doc.positions[(EXTENDS,)], "RC942", "extends must be a name or a non-empty list of names")
    merged: Document | None = None
    for keypath, name in entries:
        where = doc.positions[keypath]
        base_path, base_display = locate(name, path, where)
        if base_path.resolve() in (resolved for resolved, _ in chain):
            cycle = " -> ".join([shown for _, shown in chain] + [base_display])
            fail(where, "RC941", f"extends cycle: {cycle}")
        try:
            base = load_text(read_text(base_path, base_display), base_display)
        except LoadError as exc:  # a base that does not parse: its own position, as any load error
            raise exc from None
        if not isinstance(base.data, dict):
            fail(where, "RC942", f"base {base_display} is not a mapping of recipe keys")
        base = _compose(base, base_path, chain, top=False)
        merged = base if merged is None else merge(merged, base)
    own = Document(doc.path, {k: v for k, v in data.items() if k != EXTENDS}, doc.positions,
                   doc.key_positions, doc.deletes, (doc.path,))
    return merge(merged, own)


def locate(name: str, path: Path, where: Position) -> tuple[Path, str]:
    """The file a name in extends stands for, and how to show it (relative to the project root)."""
    config = project_config(path.parent)
    file = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
    if name.startswith(("./", "../")):
        candidate = path.parent / file
    elif config.root is None:
        fail(where, "RC940", f"base '{name}': no project root to find it under",
             "use a path relative to this file (./NAME)")
    elif name.startswith("profiles/"):
        candidate = config.root / file
    elif "/" in name or ".." in name:
        fail(where, "RC940", f"base '{name}' is neither profiles/PATH, ./PATH nor a recipe name")
    else:
        candidate = config.root / "recipes" / file
    if not candidate.is_file():
        fail(where, "RC940", f"base '{name}' does not exist ({config.display(candidate)})",
             _known(config.root, name))
    return candidate, config.display(candidate)


def _known(root: Path | None, name: str) -> str | None:
    if root is None or name.startswith(("./", "../")):
        return None
    folder, pattern = (root, "profiles/**/*.yaml") if name.startswith("profiles/") else (root / "recipes", "*.yaml")
    found = sorted(p.relative_to(folder).with_suffix("").as_posix() for p in folder.glob(pattern))
    return f"known: {', '.join(found[:20])}" if found else None


def merge(base: Document, over: Document) -> Document:
    """``over`` on top of ``base``: mappings key by key, anything else replaced, !delete removes.

    Positions: every position of ``over`` (it wrote those values), and those of ``base`` that no
    replaced or deleted key hides.
    """
    hidden: set = set()
    data = _merge(base.data, over.data, (), over, hidden)
    positions = Marks(over.path)
    key_positions = Marks(over.path)
    for marks, into in ((base.positions, positions), (base.key_positions, key_positions)):
        for keypath in dict.keys(marks):
            if not any(keypath[:i] in hidden for i in range(1, len(keypath) + 1)):
                into[keypath] = marks[keypath]  # a Position: it names its own file
    for keypath in dict.keys(over.positions):
        if keypath not in over.deletes:
            dict.__setitem__(positions, keypath, dict.__getitem__(over.positions, keypath))
    for keypath in dict.keys(over.key_positions):
        if keypath not in over.deletes:
            dict.__setitem__(key_positions, keypath, dict.__getitem__(over.key_positions, keypath))
    sources = tuple(dict.fromkeys(base.sources + over.sources))
    return Document(over.path, data, positions, key_positions, (), sources)


def _merge(base, over, keypath: tuple, doc: Document, hidden: set):
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return over
    out = dict(base)
    for key, value in over.items():
        here = keypath + (key,)
        if value is DELETE:
            if key not in out:
                fail(doc.positions[here], "RC943", f"!delete of '{'.'.join(map(str, here))}', "
                     "which no base sets")
            del out[key]
            hidden.add(here)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, here, doc, hidden)
        else:
            if key in out:
                hidden.add(here)
            out[key] = _strip_deletes(value, here, doc)
    return out


def _strip_deletes(value, keypath: tuple, doc: Document):
    """A replacing value may not hold !delete markers: there is nothing under it to delete."""
    if doc.deletes:
        for marker in doc.deletes:
            if marker[:len(keypath)] == keypath:
                fail(doc.positions[marker], "RC943", f"!delete of '{'.'.join(map(str, marker))}', "
                     "which no base sets")
    return value


def contributors(doc: Document, keypath: tuple) -> list[str]:
    """The files that wrote a value at or under ``keypath`` (more than one only where merged)."""
    if len(doc.sources) < 2:
        return []
    keypath = tuple(keypath)
    n = len(keypath)
    files = {doc.positions[k].path for k in dict.keys(doc.positions) if k[:n] == keypath}
    return [s for s in doc.sources if s in files] + sorted(f for f in files if f not in doc.sources)


def merged_note(doc: Document, keypath: tuple) -> str:
    """' [merged from A, B]' for a diagnostic on a value several files wrote, else ''."""
    files = contributors(doc, keypath)
    return f" [merged from {', '.join(files)}]" if len(files) > 1 else ""


def digest(data) -> str:
    """The sha256 of a resolved recipe: its canonical JSON (sorted keys), so it says what the recipe
    means, not how it is split into files or commented. bundle.json's recipe_sha256."""
    text = _CANONICAL.encode(data)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# json.dumps with options makes an encoder a call; a digest is taken for every recipe and variant.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
