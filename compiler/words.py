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


def joined(*parts: Word) -> Word:
    """One word made of literal and run-time parts (Refs), flattened."""
    if all(type(part) is str for part in parts):  # most words: no Ref at all
        return "".join(parts) or ()
    merged: list = []
    for part in parts:
        for piece in part if type(part) is tuple else (part,):
            if type(piece) is not str:  # a Ref (never compared with "": its __eq__ is Python's)
                merged.append(piece)
            elif not piece:
                continue
            elif merged and type(merged[-1]) is str:
                merged[-1] += piece
            else:
                merged.append(piece)
    if len(merged) == 1:
        return merged[0]
    return tuple(merged)
