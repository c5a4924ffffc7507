"""Stage 3, check: a registry of small checks, each reporting codes of the one table (codes.py).

Three kinds, by what they read:
- recipe rules (`@rule`) read the validated Recipe and the project config;
- plan rules (`@plan_rule`) read the Plans the plan stage made, one per target (ports, flags):
  they never plan themselves;
- document rules (`@document_rule`) read the raw data of a recipe that did not validate, and
  explain a key better than the schema can.

Each check yields ``Finding``s that point at a key path; the registry turns them into Diagnostics at
that key's file:line:col. pipeline.check runs recipe rules, plans, then plan rules.
"""

from __future__ import annotations

from typing import Iterable

from ..codes import CODES, Code, Scope, all_codes
from ..compose import merged_note
from ..config import ProjectConfig
from ..diagnostics import Diagnostic
from ..load import Document
from ..plan_types import Plan
from ..validate import Recipe
from .registry import CHECKS, Check, Context, Finding, PlanContext, document_rule, plan_rule, rule


def _load_rule_modules() -> None:
    # Imported for their side effect: each module registers its checks. Once: an import statement
    # of ten names runs importlib's Python code for each, three times a recipe.
    if _LOADED:
        return
    from . import agreement, benchmark, connectors, containers, flags, images, lmcache, platform, ports, topology  # noqa: F401
    _LOADED.append(True)


_LOADED: list = []


def diagnostic(code: Code, f: Finding, doc: Document) -> Diagnostic:
    """A Finding of `code` as a Diagnostic at its key's position in `doc`."""
    position = doc.key_positions.get(tuple(f.keypath)) if f.at_key else None
    message = f.message + merged_note(doc, f.keypath)
    return Diagnostic(position or doc.position(f.keypath), code.code, message, f.hint or code.hint,
                      f.severity or code.severity)


def _run(scope: Scope, arg, doc: Document) -> list[Diagnostic]:
    _load_rule_modules()
    out = []
    for check in CHECKS:
        if check.scope == scope:
            for f in check.run(arg):
                out.append(diagnostic(CODES[f.code or check.codes[0]], f, doc))
    return out


def check_document(doc: Document) -> list[Diagnostic]:
    """Rules over the raw data of a recipe that did not validate."""
    return sorted(set(_run("document", doc, doc)))


def check_recipe(recipe: Recipe, doc: Document, config: ProjectConfig) -> list[Diagnostic]:
    """Recipe rules over a validated Recipe."""
    return sorted(set(_run("recipe", Context(recipe, config), doc)))


def check_plans(plans: Iterable[Plan], doc: Document, target: str | None = None) -> list[Diagnostic]:
    """Plan rules over the Plans of one recipe (every target's); `target` is the one being built
    (default: the recipe's own), for the rules that hold for one target only."""
    plans = tuple(plans)
    recipe = plans[0].recipe
    return sorted(set(_run("plan", PlanContext(recipe, plans, target or recipe.target), doc)))


def explain(doc: Document, schema: list[Diagnostic]) -> list[Diagnostic]:
    """The diagnostics of a recipe that did not validate: the schema's, each replaced by a document
    rule's where one reports at the same position."""
    coded = check_document(doc)
    taken = {d.position for d in coded}
    return coded + [d for d in schema if d.position not in taken]


def all_rules() -> list[Code]:
    """Every code, sorted (`recipec rules`)."""
    return all_codes()


__all__ = ["Finding", "Context", "PlanContext", "Check", "CHECKS", "rule", "plan_rule", "document_rule",
           "diagnostic", "check_document", "check_recipe", "check_plans", "explain", "all_rules"]
