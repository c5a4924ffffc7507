"""Every error a user can cause, as one typed exception each.

The CLI turns a RecipecError into one line (``path:line:col: message``) and its exit code; any other
exception is a bug and may show a traceback.
"""

from __future__ import annotations

from typing import NamedTuple


class Position(NamedTuple):
    """Where in which file a value stands (1-based line and column).

    A NamedTuple, not a dataclass: the loader makes one for every key and value of every recipe,
    and a frozen dataclass costs several times more to construct.
    """

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col}"
        return self.path


class RecipecError(Exception):
    """A user error: printed as one line, never as a traceback."""

    exit_code = 1

    def __init__(self, message: str, position: Position | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.position = position
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.position}: {self.message}" if self.position else self.message
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(RecipecError):
    """The command line itself is wrong (unknown recipe name, bad --set syntax, bad -o)."""

    exit_code = 2


class GitError(UsageError):
    """--base-ref cannot be read: not a git repository, no such ref, or no git."""


class LoadError(RecipecError):
    """The file is not a readable recipe: not UTF-8, not YAML, duplicate keys, too large."""


class CheckFailed(RecipecError):
    """One or more rules reported errors; ``diagnostics`` holds them all, sorted."""

    def __init__(self, diagnostics):
        self.diagnostics = sorted(diagnostics)
        first = self.diagnostics[0] if self.diagnostics else None
        super().__init__(f"{len(self.diagnostics)} check(s) failed", first.position if first else None)

    def __str__(self) -> str:
        return "\n".join(d.format() for d in self.diagnostics)


class ValidationError(CheckFailed):
    """The document does not fit the model (wrong type, unknown key, missing field): one
    diagnostic per place, in ``diagnostics``."""


class WriteError(RecipecError):
    """The bundle could not be written where asked (output path is a symlink, a file, not writable)."""


class CatalogNotFound(KeyError):
    """No engine catalog was generated for this package and version (catalog/; the flag rules
    report it as RC806, never abort on it)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class ProjectError(RecipecError):
    """The project itself is wrong: an unknown or mistyped [tool.recipec] key, a config-keys-from
    file that is missing or not a mapping, nothing to lint, a scaffold that would overwrite files."""


class ReportError(RecipecError):
    """`recipec report` cannot draw a result directory: missing, without results, a result that is not
    JSON; or matplotlib (the `report` extra) is not installed."""
