"""Stage 3, check: a registry of small rules over a validated Recipe (what a schema cannot say).

Each rule has a code, a one-line summary and a fix hint, and yields ``Finding``s that point at a key
path; the registry turns them into Diagnostics at that key's file:line:col. `recipec rules` lists
them; tests/rules/ holds a failing and a passing fixture for each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from ..config import ProjectConfig
from ..diagnostics import Diagnostic
from ..load import Document

if TYPE_CHECKING:  # at run time a compiled Record (compiled.py), not a pydantic model
    from ..model import Recipe


@dataclass(frozen=True)
class Finding:
    keypath: tuple
    message: str
    hint: str | None = None
    severity: str | None = None  # None: the rule's own severity
    at_key: bool = False  # point at the key itself, not at its value


@dataclass(frozen=True)
class Context:
    recipe: Recipe
    doc: Document
    config: ProjectConfig
    _plans: dict = field(default_factory=dict, compare=False, repr=False)

    def plan(self, target: str):
        """The Plan of one target, built once however many rules ask (plans are the costly part)."""
        if target not in self._plans:
            from ..plan import build_plan

            self._plans[target] = build_plan(self.recipe, target, recipe_path="", recipe_sha256="")
        return self._plans[target]


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    summary: str
    hint: str
    severity: str
    check: Callable[[Context], Iterable[Finding]] | None  # None: checked by its own stage
    scope: str = "recipe"  # recipe | document | changelog | input


RULES: dict[str, Rule] = {}


def rule(code: str, name: str, summary: str, hint: str, severity: str = "error"):
    """Register a recipe rule: a function from Context to Findings."""
    def register(func: Callable[[Context], Iterator[Finding]]):
        document(code, name, summary, hint, severity, scope="recipe", check=func)
        return func
    return register


def document_rule(code: str, name: str, summary: str, hint: str, severity: str = "error"):
    """Register a rule over the raw Document, run when validation fails: its coded message
    replaces the schema's generic one at the same key (e.g. a legacy vLLM key is more than
    "unknown key")."""
    def register(func: Callable[[Document], Iterator[Finding]]):
        document(code, name, summary, hint, severity, scope="document", check=func)
        return func
    return register


def document(code: str, name: str, summary: str, hint: str, severity: str = "error", *,
             scope: str, check=None) -> None:
    """Register a code whose check lives in another stage (load, validate, changelog)."""
    if code in RULES:  # pragma: no cover - a programming error caught at import
        raise RuntimeError(f"rule code {code} registered twice")
    RULES[code] = Rule(code, name, summary, hint, severity, check, scope)


document("RC001", "unreadable-input", "the file is not readable YAML (encoding, syntax, duplicate "
         "keys, aliases, size, depth)", "fix the file at the position shown", scope="input")
document("RC100", "schema", "a value does not fit the model (type, unknown key, missing key)",
         "see schema/ for what each key takes", scope="input")


def _load_rule_modules() -> None:
    from . import connectors, flags, images, lmcache, ports, topology  # noqa: F401  (registration side effect)


def _diagnostic(r: Rule, f: Finding, doc: Document) -> Diagnostic:
    position = doc.key_positions.get(tuple(f.keypath)) if f.at_key else None
    return Diagnostic(position or doc.position(f.keypath), r.code, f.message, f.hint or r.hint,
                      f.severity or r.severity)


def check_document(doc: Document) -> list[Diagnostic]:
    """Rules over the raw data of a recipe that did not validate."""
    _load_rule_modules()
    return sorted({_diagnostic(r, f, doc) for r in RULES.values() if r.scope == "document"
                   for f in r.check(doc)})


def check_recipe(recipe: Recipe, doc: Document, config: ProjectConfig) -> list[Diagnostic]:
    _load_rule_modules()
    ctx = Context(recipe, doc, config)
    out = []
    for r in RULES.values():
        if r.scope != "recipe":
            continue
        out += [_diagnostic(r, f, doc) for f in r.check(ctx)]
    return sorted(set(out))


def all_rules() -> list[Rule]:
    _load_rule_modules()
    from .. import changelog, history, live  # noqa: F401  (their codes register there)
    return sorted(RULES.values(), key=lambda r: r.code)


__all__ = ["Finding", "Context", "Rule", "RULES", "rule", "document_rule", "check_recipe",
           "check_document", "all_rules", "Path"]
