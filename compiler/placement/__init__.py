"""Placements: where a plan's services run and how they reach one another, one class per target.

The registry of targets. A placement owns everything that differs between targets: node
assignment, the addresses services bind and are reached at, how ports are spread, where logs go,
scheduler directives, and which bundle files are rendered. plan.py asks its placement and never
compares target names; a container runtime or Kubernetes adds a class here, not an `if` there.
"""

from __future__ import annotations

from typing import Literal, get_args

from .base import Placement
from .local import LocalPlacement
from .slurm import SlurmPlacement

# The model's `target` and the CLI's --target take these (order: the schema's).
Target = Literal["slurm", "local"]
TARGETS: tuple = get_args(Target)
DEFAULT_TARGET: Target = "slurm"  # a recipe's target when it names none

PLACEMENTS: dict[str, type[Placement]] = {p.name: p for p in (SlurmPlacement, LocalPlacement)}
assert tuple(PLACEMENTS) == TARGETS, "every target has its placement"


def placement_for(target: str, recipe) -> Placement:
    """A fresh placement of one recipe on one target (it records the peers its addresses name)."""
    try:
        return PLACEMENTS[target](recipe)
    except KeyError:
        raise ValueError(f"unknown target {target!r}") from None


__all__ = ["Target", "TARGETS", "DEFAULT_TARGET", "PLACEMENTS", "Placement", "placement_for"]
