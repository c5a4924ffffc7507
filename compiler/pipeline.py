"""The stages wired together: recipe reference -> checked Recipe -> Plans -> files -> bundle.

Each stage lives in its own module; this one only resolves names, applies --set overrides to the
loaded data (before validation, so overridden values are validated like any other), and runs them
in order: load, validate, recipe rules, plan (once per target), plan rules, render, write. Stages
return their diagnostics; an exception aborts (a file that cannot be read, a recipe that does not
validate, a failed check in build).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING


from . import __version__
from .config import project_config
from .errors import Position, UsageError
from .compose import composes, digest as recipe_digest
from .load import Document, load_text, read_text

if TYPE_CHECKING:
    from .diagnostics import Diagnostic
    from .plan_types import Plan

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*\Z")
LOOKED_FOR = "a pyproject.toml with [tool.recipec], or a recipes/ folder"


@dataclass
class LoadedRecipe:
    path: Path
    display: str
    sha256: str
    doc: Document
    recipe: object  # validate.Recipe
    overrides: tuple


def resolve_recipe(ref: str) -> tuple[Path, str, str | None]:
    """A name under the project's recipes/ (or of a variant of one) or a path; how to show it
    (relative to the root); and the variant's name, if ``ref`` names one.

    A name is looked up only in the project found from the current directory, never in the
    recipes that ship with recipec: a missing name is an error, not someone else's recipe. A
    path's project is found from the recipe's own folder, so the bundle does not depend on where
    it was built from.
    """
    if ref.endswith((".yaml", ".yml")) or os.sep in ref or "/" in ref:
        path = Path(ref)
        config = project_config(path.parent)
        return path, config.display(path) if config.root is not None else path.name, None
    if not _NAME.match(ref) or ".." in ref:
        raise UsageError(f"'{ref}' is not a recipe name (lowercase letters, digits, '.', '_', '-') "
                         "nor a path to a .yaml file")
    root = project_config(Path.cwd()).root
    if root is None:
        raise UsageError(f"no recipe named '{ref}': no project here (looked for {LOOKED_FOR} in "
                         f"{Path.cwd()} and its parents)", hint="run recipec init, or give the recipe's path")
    candidate = root / "recipes" / f"{ref}.yaml"
    if candidate.is_file():
        return candidate, candidate.relative_to(root).as_posix(), None
    owner = variant_file(root, ref)
    if owner is not None:
        return owner, owner.relative_to(root).as_posix(), ref
    known = sorted(p.stem for p in (root / "recipes").glob("*.yaml"))
    raise UsageError(f"no recipe named '{ref}' in {root / 'recipes'}", hint=f"known: {', '.join(known) or 'none'}")


def variant_file(root: Path, name: str) -> Path | None:
    """The recipe file under root/recipes/ that declares a variant called ``name``, or None.

    Files whose name begins the variant's name are tried first (kimik2.5.yaml for kimik2.5-l1-600);
    only a file that mentions variants is loaded at all."""
    from .errors import RecipecError
    from .variants import variant_name

    files = sorted((root / "recipes").glob("*.yaml"), key=lambda p: (not name.startswith(p.stem + "-"), p.name))
    for path in files:
        try:
            if "variants:" not in path.read_text(encoding="utf-8", errors="replace"):
                continue
            source = load_source(path, path.relative_to(root).as_posix())
        except (RecipecError, OSError):
            continue  # lint reports it; here it only is not the file asked for
        if any(variant_name(source.doc, v) == name for v in source.variants):
            return path
    return None


def parse_override(text: str) -> tuple[list, object]:
    """A --set text -> (key path as strings, value). The value goes through the recipe loader (its
    limits, its errors, its positions), as if it stood in a file of its own named `--set TEXT`."""
    from .errors import LoadError

    if "=" not in text:
        raise UsageError(f"--set {text!r}: expected dotted.path=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not key.strip() or any(not p for p in parts):
        raise UsageError(f"--set {text!r}: empty key in the dotted path")
    if not raw.strip():
        return parts, ""
    try:
        # Named by its text, as validation errors name it; a long text by its key alone.
        value = load_text(raw, f"--set {text}" if len(text) <= 80 else f"--set {key}=...").data
    except LoadError as exc:  # a bad command line, said as a loader says it of a file
        raise UsageError(exc.message, exc.position, exc.hint) from None
    return parts, value


def _index(part: str) -> int | None:
    """A list index written in a --set path: ASCII digits only (str.isdigit also takes '²')."""
    return int(part) if part.isascii() and part.isdigit() and len(part) <= 9 else None


def apply_overrides(doc: Document, overrides: tuple) -> None:
    for text in overrides:
        keys, value = parse_override(text)
        if not isinstance(doc.data, dict):
            raise UsageError(f"--set {text!r}: the recipe is not a mapping")
        node = doc.data
        path: list = []
        for i, k in enumerate(keys):
            last = i == len(keys) - 1
            if isinstance(node, list):
                at = _index(k)
                if at is None or at >= len(node):
                    raise UsageError(f"--set {text!r}: no list item {k}")
                k = at
            elif not isinstance(node, dict):
                raise UsageError(f"--set {text!r}: {'.'.join(keys[:i])} is a value, not a mapping")
            path.append(k)
            if last:
                replaced = node[k] if isinstance(node, list) else node.get(k)
                node[k] = value
            else:
                nxt = node[k] if isinstance(node, list) else node.get(k)
                if nxt is None:
                    nxt = node[k] = {}
                node = nxt
        _set_origin(doc, tuple(path), value, Position(f"--set {text}"), replaced)


def _set_origin(doc: Document, keypath: tuple, value, origin: Position, replaced=None) -> None:
    """Every value under ``keypath`` was written by one --set (or variant override): say so, and
    forget the positions of what it replaced (a mapping or list: its items had positions too)."""
    n = len(keypath)
    if isinstance(replaced, (dict, list)):
        for marks in (doc.positions, doc.key_positions):
            for stale in [k for k in dict.keys(marks) if k[:n] == keypath and len(k) > n]:
                dict.__delitem__(marks, stale)
    stack = [(keypath, value)]
    while stack:
        at, item = stack.pop()
        dict.__setitem__(doc.positions, at, origin)
        dict.__setitem__(doc.key_positions, at, origin)
        if isinstance(item, dict):
            stack += [(at + (k,), v) for k, v in item.items()]
        elif isinstance(item, list):
            stack += [(at + (i,), v) for i, v in enumerate(item)]


@dataclass
class Source:
    """A recipe file resolved: its composed Document (variants section removed) and its variants."""

    path: Path
    display: str
    doc: Document
    variants: list  # variants.Variant


def load_source(path: Path, display: str) -> Source:
    doc = load_text(read_text(path, display), display)
    variants: list = []
    if composes(doc):
        from .compose import compose
        from .variants import split

        doc, variants = split(compose(doc, path))
    return Source(path, display, doc, variants)


def load_recipe(ref: str, overrides: tuple = ()) -> LoadedRecipe:
    """Load and validate; ValidationError (the schema's diagnostics, explained by the document
    rules where they can) when the recipe does not fit the model. ``ref`` may name a variant."""
    path, display, variant = resolve_recipe(ref)
    source = load_source(path, display)
    chosen = None
    if variant is not None:
        from .variants import variant_name

        chosen = next((v for v in source.variants if variant_name(source.doc, v) == variant), None)
        if chosen is None:
            raise UsageError(f"no recipe or variant named '{ref}'")
    return finish(source, chosen, overrides)


def load_all(source: Source) -> list:
    """The recipe of a file and each of its variants: a LoadedRecipe, or the CheckFailed of one
    that does not validate (lint reports every one)."""
    from .errors import CheckFailed

    out = []
    for variant in [None, *source.variants]:
        try:
            out.append(finish(source, variant, ()))
        except CheckFailed as exc:
            out.append(exc)
    return out


def finish(source: Source, variant, overrides: tuple) -> LoadedRecipe:
    """Validate the recipe of ``source`` (or one of its variants) with ``overrides`` applied."""
    from .errors import ValidationError
    from .validate import validate_recipe

    doc = source.doc
    if variant is not None:
        from .variants import apply

        doc = apply(doc, variant, _set_origin)
    # What the recipe means, however it is split into files and commented: the --set texts are
    # recorded beside it (bundle.json "overrides"), so `recipec verify` can replay both.
    digest = recipe_digest(doc.data)
    apply_overrides(doc, overrides)
    try:
        recipe = validate_recipe(doc)
    except ValidationError as exc:
        from .rules import explain

        raise ValidationError(explain(doc, exc.diagnostics)) from None
    return LoadedRecipe(source.path, source.display, digest, doc, recipe, tuple(overrides))


@dataclass(frozen=True)
class Checked:
    """A recipe's diagnostics from every rule, and the Plans the plan rules read (the ones built)."""

    diagnostics: list[Diagnostic]
    plans: dict[str, Plan]  # target -> its Plan, every target of placement.TARGETS


def plan_all(loaded: LoadedRecipe) -> dict[str, Plan]:
    """The Plan of every target, each built once (the plan rules check them all; build renders one)."""
    from .placement import TARGETS
    from .plan import build_plan

    return {target: build_plan(loaded.recipe, target, recipe_path=loaded.display, recipe_sha256=loaded.sha256,
                               overrides=loaded.overrides, version=__version__) for target in TARGETS}


def check(loaded: LoadedRecipe, target: str | None = None) -> Checked:
    """Recipe rules, plan, plan rules (`target`: the one being built; default the recipe's own)."""
    from .rules import check_plans, check_recipe

    diagnostics = check_recipe(loaded.recipe, loaded.doc, project_config(loaded.path.parent))
    plans = plan_all(loaded)
    diagnostics += check_plans(plans.values(), loaded.doc, target)
    return Checked(sorted(set(diagnostics)), plans)


def default_output(recipe_path: Path) -> Path:
    """The folder build/ goes in: the recipe's project root (the current directory outside one)."""
    return (project_config(recipe_path.parent).root or Path()) / "build"


def build(ref: str, target: str | None, out: Path | None, overrides: tuple = (), strict: bool = False):
    """Load, validate, check, plan, render and write one recipe; returns (bundle dir, warnings)."""
    from .codes import ERROR
    from .errors import CheckFailed
    from .render import render_bundle
    from .write import write_bundle

    loaded = load_recipe(ref, overrides)
    checked = check(loaded, target)
    errors = [d for d in checked.diagnostics if d.severity == ERROR or strict]
    if errors:
        raise CheckFailed(errors)
    recipe = loaded.recipe
    target = target or recipe.target
    plan = checked.plans[target]
    if plan.refused:  # a runtime that cannot run on this target (pyxis outside SLURM)
        from .codes import CODES
        from .rules import diagnostic
        from .rules.registry import Finding

        code, keypath, message = plan.refused
        raise CheckFailed([diagnostic(CODES[code], Finding(keypath, message), loaded.doc)])
    files = render_bundle(plan)
    out = out or default_output(loaded.path) / recipe.name / target
    return write_bundle(files, out), [d for d in checked.diagnostics if d not in errors]
