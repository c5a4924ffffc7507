"""perf-changelog.yaml: the InferenceX-format log of recipe changes, and its lint.

Takes the changelog's path (plus the known recipes' config keys, and which entries are new since a
base ref); gives Diagnostics. The entry model (model.py: ChangelogEntry) mirrors
InferenceX's own (utils/matrix_logic/validation.py), so any file InferenceX accepts passes here and
the changelog's JSON Schema comes from the same place as the recipe's.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from .diagnostics import Diagnostic
from .errors import LoadError, Position, RecipecError, ValidationError
from .load import Document, load_text, read_text

# A changelog is appended to for years (InferenceX's is ~400 KB): its limits are a recipe's x 16.
MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 2_000_000


_PR_LINK = re.compile(r"^https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)/pull/([1-9][0-9]*)\Z")
_PLACEHOLDER = re.compile(r"^(x+|tbd|todo|tba|n/?a|none|null|pending|\?+|-+|#?0*)\Z", re.I)


def hygiene(text: str, display: str) -> list[Diagnostic]:
    """Byte-level rules YAML would not complain about (one finding per kind and line)."""
    out = []
    if text and not text.endswith("\n"):
        lines = text.split("\n")
        out.append(Diagnostic(Position(display, len(lines), len(lines[-1]) + 1), "RC501",
                              "file does not end with a newline", "add a final newline"))
    if "\t" not in text and "\r" not in text and "\0" not in text:
        return out  # the common case: skip the per-line scan of a long file
    for lineno, line in enumerate(text.split("\n"), 1):
        for char, code, what, hint in (("\t", "RC502", "tab", "indent with spaces"),
                                       ("\r", "RC503", "carriage return", "use LF line endings"),
                                       ("\0", "RC504", "NUL", "remove it")):
            col = line.find(char)
            if col >= 0:
                out.append(Diagnostic(Position(display, lineno, col + 1), code, f"{what} character", hint))
    return out


def pr_link_findings(link: str, repository: str | None) -> list[str]:
    link = link.strip()
    if not link or _PLACEHOLDER.match(link) or "XXX" in link.upper() or "TBD" in link.upper():
        return [f"pr-link '{link}' is a placeholder"]
    m = _PR_LINK.match(link)
    if not m:
        if re.match(r"^https?://(www\.)?github\.com/[^/]+/[^/]+/pull/\d+[/?#]", link):
            return [f"pr-link '{link}' points into a pull request page, not at the pull request"]
        if re.match(r"^https?://(www\.)?github\.com/[^/]+/[^/]+/(issues|commit)/", link):
            return [f"pr-link '{link}' is not a pull request"]
        return [f"pr-link '{link}' is not a pull request URL https://github.com/OWNER/REPO/pull/N"]
    if repository and f"{m.group(1)}/{m.group(2)}".lower() != repository.lower():
        return [f"pr-link '{link}' is a pull request of {m.group(1)}/{m.group(2)}, not of {repository}"]
    return []


def load_changelog(path: Path, display: str) -> tuple[list[Diagnostic], Document | None, list | None]:
    """Hygiene findings, the loaded document and the validated entries (None where it failed)."""
    out, doc, entries, _ = _load(path, display)
    return out, doc, entries


def _load(path: Path, display: str) -> tuple[list[Diagnostic], Document | None, list | None, str]:
    """load_changelog's answer and the file's text."""
    from .validate import validate

    try:
        text = read_text(path, display, max_bytes=MAX_BYTES)
    except LoadError as exc:
        if exc.position is not None and exc.position.line:
            return [Diagnostic(exc.position, "RC001", exc.message, exc.hint)], None, None, ""
        raise  # no such file, a directory, unreadable: not a finding about its content
    out = hygiene(text, display)
    try:
        doc = load_text(text, display, max_nodes=MAX_NODES)
    except RecipecError as exc:
        if any(d.code == "RC504" for d in out):  # the NUL is already reported, with its column
            return out, None, None, text
        return out + [Diagnostic(exc.position or Position(display), "RC001", exc.message, exc.hint)], None, None, text
    if doc.data is None:
        doc.data = []
    if not isinstance(doc.data, list):
        return out + [Diagnostic(doc.position(()), "RC100", "the changelog must be a list of entries "
                                 f"(got a {type(doc.data).__name__})", "start each entry with '- '")], doc, None, text
    try:
        return out, doc, validate(doc, "changelog"), text
    except ValidationError as exc:
        return out + list(exc.diagnostics), doc, None, text


def _pr_link_off_its_line(text_lines: list[str], doc: Document, i: int, link: str) -> bool:
    """True when entry ``i``'s pr-link value is not the whole rest of its `pr-link:` line.

    InferenceX's merge gate corrects a link by rewriting the `pr-link:` line alone; a value folded
    onto the next line (or a `|`/`>` block, or a flow mapping) would be left half rewritten.
    """
    key = doc.key_positions.get((i, "pr-link"))
    if key is None or not key.line or key.line > len(text_lines):
        return False
    line = text_lines[key.line - 1]
    rest = line[key.col - 1:].split(":", 1)[1] if ":" in line[key.col - 1:] else ""
    if not rest.strip():
        return True
    if rest.strip() == link:  # the common case, without a YAML parse
        return False
    try:
        import yaml

        return yaml.safe_load(rest) != link
    except yaml.YAMLError:
        return True


def lint_changelog(path: Path, display: str, *, repository: str | None, config_keys: set[str] | None,
                   new_entries: set[int] | None = None, history=None,
                   pr_number: int | None = None) -> list[Diagnostic]:
    """All diagnostics of one changelog. Config keys are checked for ``new_entries`` (indexes; None:
    every entry) when ``config_keys`` is given. ``history`` (a callable from the loaded Document to
    (new entry indexes, diagnostics)) compares it with a base ref's version. ``pr_number``: the
    pull request new entries must link (only with ``history``, which says which entries are new)."""
    out, doc, entries, text = _load(path, display)
    if doc is not None and history is not None and isinstance(doc.data, list):
        new_entries, found = history(doc)
        out += found
    text_lines = text.split("\n") if doc is not None else []
    for i, raw in enumerate(doc.data if doc is not None and isinstance(doc.data, list) else ()):
        link = raw.get("pr-link") if isinstance(raw, dict) else None
        if isinstance(link, str) or link is None and isinstance(raw, dict) and "pr-link" in raw:
            found = pr_link_findings(link or "", repository)
            for message in found:
                out.append(Diagnostic(doc.position((i, "pr-link")), "RC510", message,
                                      "link the pull request itself: https://github.com/OWNER/REPO/pull/N"))
            if isinstance(link, str) and _pr_link_off_its_line(text_lines, doc, i, link):
                out.append(Diagnostic(doc.key_positions[(i, "pr-link")], "RC513",
                                      "the pr-link value must stand on the `pr-link:` line itself",
                                      "write `pr-link: URL` on one line: the merge gate rewrites that line"))
            if (pr_number is not None and not found and new_entries is not None and i in new_entries
                    and not re.search(rf"/pull/{pr_number}$", link.strip())):
                repo = repository or "OWNER/REPO"
                out.append(Diagnostic(doc.position((i, "pr-link")), "RC512",
                                      f"new entry's pr-link '{link.strip()}' is not this pull request (#{pr_number})",
                                      f"link https://github.com/{repo}/pull/{pr_number}"))
    # An empty pr-link is also "not a string" to the schema: the placeholder finding says it better.
    placeholders = {d.position for d in out if d.code == "RC510"}
    out = [d for d in out if not (d.code == "RC100" and d.position in placeholders)]
    if entries is not None and config_keys is not None:
        known = sorted(config_keys)
        for i, entry in enumerate(entries):
            if new_entries is not None and i not in new_entries:
                continue
            for j, key in enumerate(entry.config_keys):
                if not _matches_a_key(key, config_keys, known):
                    out.append(Diagnostic(doc.position((i, "config-keys", j)), "RC511",
                                          f"config key '{key}' matches no recipe nor config file key",
                                          _known_hint(key, known)))
    return sorted(set(out))


def _matches_a_key(pattern: str, keys: set[str], known: list[str]) -> bool:
    if not any(c in pattern for c in "*?["):
        return pattern in keys  # most entries name keys outright: no pattern to run
    match = re.compile(fnmatch.translate(pattern)).match
    return any(match(k) for k in known)


def _known_hint(key: str, known: list[str]) -> str:
    if not known:
        return "no recipes found"
    if len(known) <= 8:
        return "known: " + ", ".join(known)
    import difflib

    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    return (f"did you mean {', '.join(close)}? " if close else "") + f"{len(known)} config keys are known"


__all__ = ["lint_changelog", "load_changelog", "pr_link_findings"]
