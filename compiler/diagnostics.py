"""A finding about an input file: where, which rule, what, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass, field

from .codes import ERROR, WARNING, Severity
from .errors import Position


@dataclass(frozen=True, order=True)
class Diagnostic:
    position: Position
    code: str
    message: str
    hint: str | None = field(default=None, compare=False)
    severity: Severity = field(default=ERROR, compare=False)

    def format(self) -> str:
        text = f"{self.position}: {self.code} {self.message}"
        if self.severity == WARNING:
            text = f"{self.position}: {self.code} warning: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text

    def as_dict(self) -> dict:
        return {"path": self.position.path, "line": self.position.line, "col": self.position.col,
                "code": self.code, "severity": self.severity, "message": self.message, "hint": self.hint}
