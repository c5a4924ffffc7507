"""The registry of checks (rules/__init__.py runs them): Finding, the contexts checks read, and
the decorators that register a check under its codes (codes.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from ..codes import CODES, Scope, Severity
from ..config import ProjectConfig
from ..validate import Recipe


@dataclass(frozen=True)
class Finding:
    keypath: tuple
    message: str
    hint: str | None = None
    severity: Severity | None = None  # None: the code's own severity
    at_key: bool = False  # point at the key itself, not at its value
    code: str | None = None  # which code, where a check reports more than one


@dataclass(frozen=True)
class Context:
    """What a recipe rule reads."""

    recipe: Recipe
    config: ProjectConfig


@dataclass(frozen=True)
class PlanContext:
    """What a plan rule reads: the recipe's Plans, one per target (placement.TARGETS order)."""

    recipe: Recipe
    plans: tuple  # Plan objects
    target: str = ""  # the target being built (lint: the recipe's own); rules of one target read it


@dataclass(frozen=True)
class Check:
    codes: tuple  # the codes it may report (the first when a Finding names none)
    scope: Scope
    run: Callable[..., Iterable[Finding]]


CHECKS: list[Check] = []


def _register(scope: Scope, codes: tuple):
    def register(func):
        for code in codes:
            if CODES[code].scope != scope:  # pragma: no cover - a programming error caught at import
                raise RuntimeError(f"{code} is a {CODES[code].scope} code, not a {scope} one")
        CHECKS.append(Check(codes, scope, func))
        return func
    return register


def rule(*codes: str):
    """Register a recipe rule: a function from Context to Findings (of any of `codes`)."""
    return _register("recipe", codes)


def plan_rule(*codes: str):
    """Register a plan rule: a function from PlanContext to Findings (of any of `codes`)."""
    return _register("plan", codes)


def document_rule(code: str):
    """Register a rule over the raw Document, run when validation fails: its coded message
    replaces the schema's generic one at the same key (e.g. a legacy vLLM key is more than
    "unknown key")."""
    return _register("document", (code,))
