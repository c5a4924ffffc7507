"""perf-changelog.yaml: the InferenceX-format log of recipe changes, and its lint.

Takes the changelog's path (plus the known recipes' config keys); gives Diagnostics. The entry model
is a pydantic model like the recipe's, so the changelog's JSON Schema comes from the same place.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Annotated, Optional

from pydantic import Field, RootModel, StringConstraints

from .diagnostics import Diagnostic
from .errors import Position, RecipecError
from .load import Document, load_text, read_text
from .model import Model
from .rules import document

ConfigKey = Annotated[str, StringConstraints(min_length=1, pattern=r"^[A-Za-z0-9*?\[\]._-]+$")]
Line = Annotated[str, StringConstraints(min_length=1)]


class ChangelogEntry(Model):
    """One change: which configurations it touches, what changed, and the pull request."""

    config_keys: list[ConfigKey] = Field(min_length=1, description="Config keys (globs allowed).")
    description: list[Line] = Field(min_length=1)
    pr_link: str = Field(description="https://github.com/OWNER/REPO/pull/N")
    evals_only: Optional[bool] = None
    all_evals: Optional[bool] = None
    append_only: Optional[bool] = None
    scenario_type: Optional[Annotated[str, StringConstraints(min_length=1)]] = None


class Changelog(RootModel[list[ChangelogEntry]]):
    """perf-changelog.yaml: a list of entries, oldest first, appended to at the end."""


_PR_LINK = re.compile(r"^https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)/pull/([1-9][0-9]*)$")


def hygiene(text: str, display: str) -> list[Diagnostic]:
    """Byte-level rules YAML would not complain about."""
    out = []
    if text and not text.endswith("\n"):
        lines = text.split("\n")
        out.append(Diagnostic(Position(display, len(lines), len(lines[-1]) + 1), "RC501",
                              "file does not end with a newline", "add a final newline"))
    for lineno, line in enumerate(text.split("\n"), 1):
        for char, code, what in (("\t", "RC502", "tab"), ("\r", "RC503", "carriage return")):
            col = line.find(char)
            if col >= 0:
                out.append(Diagnostic(Position(display, lineno, col + 1), code, f"{what} character",
                                      "use spaces and LF line endings"))
    return out


document("RC501", "changelog-no-final-newline", "the changelog does not end with a newline",
         "add a final newline", scope="changelog")
document("RC502", "changelog-tab", "the changelog contains a tab character", "indent with spaces",
         scope="changelog")
document("RC503", "changelog-cr", "the changelog contains a carriage return", "use LF line endings",
         scope="changelog")
document("RC510", "pr-link-not-canonical",
         "pr-link is not https://github.com/OWNER/REPO/pull/N of the project's repository",
         "link the pull request itself, e.g. https://github.com/OWNER/REPO/pull/123", scope="changelog")
document("RC511", "unknown-config-key", "a changelog entry names a config key no recipe has",
         "use the config-key of a recipe under recipes/ (globs allowed)", scope="changelog")


def pr_link_findings(entry: ChangelogEntry, repository: str | None) -> list[str]:
    link = entry.pr_link.strip()
    if not link or link.upper().strip("X") == "" or "XXX" in link.upper() or link.upper() in ("TODO", "TBD"):
        return [f"pr-link '{entry.pr_link}' is a placeholder"]
    m = _PR_LINK.match(link)
    if not m:
        if re.match(r"^https://github\.com/[^/]+/[^/]+/pull/\d+/", link):
            return [f"pr-link '{link}' points into a pull request page; link the pull request itself"]
        return [f"pr-link '{link}' is not a pull request URL https://github.com/OWNER/REPO/pull/N"]
    if repository and f"{m.group(1)}/{m.group(2)}".lower() != repository.lower():
        return [f"pr-link '{link}' is a pull request of {m.group(1)}/{m.group(2)}, not of {repository}"]
    return []


def lint_changelog(path: Path, display: str, *, repository: str | None,
                   config_keys: set[str] | None, check_keys_from: int = 0) -> list[Diagnostic]:
    """All diagnostics of one changelog. Config keys are checked for entries from index
    ``check_keys_from`` on (the ones added since a base ref; 0: all)."""
    from .validate import ValidationError, validate

    text = read_text(path, display)
    out = hygiene(text, display)
    try:
        doc: Document = load_text(text, display)
    except RecipecError as exc:
        return out + [Diagnostic(exc.position or Position(display), "RC001", exc.message, exc.hint)]
    if doc.data is None:
        doc.data = []
    try:
        entries = validate(doc, Changelog).root
    except ValidationError as exc:
        return out + list(exc.diagnostics)
    for i, entry in enumerate(entries):
        for message in pr_link_findings(entry, repository):
            out.append(Diagnostic(doc.position((i, "pr-link")), "RC510", message,
                                  "link the pull request itself: https://github.com/OWNER/REPO/pull/N"))
        if config_keys is not None and i >= check_keys_from:
            for j, key in enumerate(entry.config_keys):
                if not any(fnmatch.fnmatchcase(k, key) for k in config_keys):
                    out.append(Diagnostic(doc.position((i, "config-keys", j)), "RC511",
                                          f"config key '{key}' matches no recipe",
                                          "known: " + ", ".join(sorted(config_keys))))
    return sorted(out)


__all__ = ["ChangelogEntry", "Changelog", "lint_changelog"]
