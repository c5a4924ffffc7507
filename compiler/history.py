"""The changelog's history: its version at a git base ref, compared with the working tree's.

Takes the changelog path and a ref (``--base-ref origin/main``); gives which entries are new, and a
diagnostic for each old entry edited (anything but its pr-link), deleted, or new entry inserted
before old ones. Entries are matched by their content without pr-link, as InferenceX's own merge
tool compares them, so a pr-link correction is not an edit.
"""

from __future__ import annotations

import difflib
import json
import subprocess
from pathlib import Path

from .diagnostics import Diagnostic
from .errors import GitError, LoadError, Position
from .load import Document, load_text


PR_LINK = "pr-link"


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, timeout=60)
    except FileNotFoundError:
        raise GitError("--base-ref needs git, and git is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args)} did not finish within 60 s") from None


def read_at_ref(path: Path, ref: str) -> str | None:
    """The text of ``path`` at git ``ref``, or None if the file did not exist there."""
    folder = path.resolve().parent
    if _git(folder, "rev-parse", "--git-dir").returncode != 0:
        raise GitError(f"{path}: not in a git repository, so --base-ref {ref} cannot be read")
    if _git(folder, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode != 0:
        raise GitError(f"--base-ref {ref}: no such commit, branch or tag in this repository",
                       hint="fetch it first (e.g. git fetch origin main)")
    prefix = _git(folder, "rev-parse", "--show-prefix").stdout.decode().strip()
    spec = f"{ref}:{prefix}{path.name}"
    if _git(folder, "cat-file", "-e", spec).returncode != 0:
        return None
    blob = _git(folder, "cat-file", "blob", spec)
    try:
        return blob.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise LoadError(f"{path.name} at {ref} is not UTF-8 text: cannot compare with it") from None


def base_entries(path: Path, ref: str, max_nodes: int) -> list:
    """The raw entries of the changelog at ``ref`` ([] if it did not exist there)."""
    text = read_at_ref(path, ref)
    if text is None:
        return []
    try:
        data = load_text(text, f"{ref}:{path.name}", max_nodes=max_nodes).data
    except LoadError as exc:
        raise LoadError(f"the changelog at {ref} is not readable ({exc}): cannot compare with it") from None
    return data if isinstance(data, list) else []


def _key(entry) -> str:
    """An entry's identity: everything but its pr-link, canonically."""
    if isinstance(entry, dict):
        entry = {k: v for k, v in entry.items() if k != PR_LINK}
    return json.dumps(entry, sort_keys=True, default=str)


def _first_difference(old, new) -> tuple:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return ()
    for key in list(new) + [k for k in old if k not in new]:
        if key != PR_LINK and old.get(key) != new.get(key):
            return (key,) if key in new else ()
    return ()


def _describe(entry, index: int, ref: str) -> str:
    link = entry.get(PR_LINK) if isinstance(entry, dict) else None
    return f"entry {index + 1} of {ref}" + (f" ({link})" if link else "")


def compare(base: list, doc: Document, ref: str) -> tuple[set[int], list[Diagnostic]]:
    """(indexes of new entries, diagnostics) of the working changelog against the base entries."""
    head = doc.data if isinstance(doc.data, list) else []
    matcher = difflib.SequenceMatcher(None, [_key(e) for e in base], [_key(e) for e in head],
                                      autojunk=False)
    new: set[int] = set()
    out: list[Diagnostic] = []

    def at(j: int, keypath: tuple = ()) -> Position:
        return doc.position((min(j, len(head) - 1), *keypath)) if head else doc.position(())

    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(paired):
            old, j = base[i1 + k], j1 + k
            out.append(Diagnostic(at(j, _first_difference(old, head[j])), "RC520",
                                  f"{_describe(old, i1 + k, ref)} was edited; only its pr-link may change",
                                  "restore it and add a new entry at the end"))
        for i in range(i1 + paired, i2):
            out.append(Diagnostic(at(j1 + paired), "RC521", f"{_describe(base[i], i, ref)} was deleted",
                                  "restore it: the changelog is append-only"))
        for j in range(j1 + paired, j2):
            new.add(j)
            if i2 < len(base):  # old entries follow it: inserted, not appended
                out.append(Diagnostic(at(j), "RC522", f"new entry inserted before {_describe(base[i2], i2, ref)}",
                                      "move it to the end of the file"))
    return new, out


__all__ = ["read_at_ref", "base_entries", "compare"]
