"""Words of a generated command: a literal, or a shell variable read when the script runs.

Plan and the placements make them; render.py quotes each exactly once (a literal single-quoted
where needed, a Ref expanded inside double quotes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Ref:
    """A shell variable, read when the script runs (never a recipe value)."""

    name: str


Word = Union[str, Ref, tuple]  # a literal, a run-time variable, or a tuple of both concatenated
