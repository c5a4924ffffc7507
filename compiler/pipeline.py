"""The stages wired together: recipe reference -> checked Recipe -> Plan -> files -> bundle.

Each stage lives in its own module; this one only resolves names, applies --set overrides to the
loaded data (before validation, so overridden values are validated like any other), and runs them
in order.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import __version__
from .config import project_config
from .errors import Position, UsageError
from .load import Document, load_text, read_text

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
LOOKED_FOR = "a pyproject.toml with [tool.recipec], or a recipes/ folder"


@dataclass
class LoadedRecipe:
    path: Path
    display: str
    sha256: str
    doc: Document
    recipe: object  # model.Recipe
    overrides: tuple


def resolve_recipe(ref: str) -> tuple[Path, str]:
    """A name under the project's recipes/ or a path; and how to show it (relative to the root).

    A name is looked up only in the project found from the current directory, never in the
    recipes that ship with recipec: a missing name is an error, not someone else's recipe. A
    path's project is found from the recipe's own folder, so the bundle does not depend on where
    it was built from.
    """
    if ref.endswith((".yaml", ".yml")) or os.sep in ref or "/" in ref:
        path = Path(ref)
        config = project_config(path.parent)
        return path, config.display(path) if config.root is not None else path.name
    if not _NAME.match(ref) or ".." in ref:
        raise UsageError(f"'{ref}' is not a recipe name (lowercase letters, digits, '.', '_', '-') "
                         "nor a path to a .yaml file")
    root = project_config(Path.cwd()).root
    if root is None:
        raise UsageError(f"no recipe named '{ref}': no project here (looked for {LOOKED_FOR} in "
                         f"{Path.cwd()} and its parents)", hint="run recipec init, or give the recipe's path")
    candidate = root / "recipes" / f"{ref}.yaml"
    if candidate.is_file():
        return candidate, candidate.relative_to(root).as_posix()
    known = sorted(p.stem for p in (root / "recipes").glob("*.yaml"))
    raise UsageError(f"no recipe named '{ref}' in {root / 'recipes'}", hint=f"known: {', '.join(known) or 'none'}")


def parse_override(text: str) -> tuple[list, object]:
    if "=" not in text:
        raise UsageError(f"--set {text!r}: expected dotted.path=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not key.strip() or any(not p for p in parts):
        raise UsageError(f"--set {text!r}: empty key in the dotted path")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise UsageError(f"--set {text!r}: the value is not valid YAML") from None
    return [int(p) if p.isdigit() else p for p in parts], value


def apply_overrides(doc: Document, overrides: tuple) -> None:
    for text in overrides:
        keys, value = parse_override(text)
        if not isinstance(doc.data, dict):
            raise UsageError(f"--set {text!r}: the recipe is not a mapping")
        node = doc.data
        for i, k in enumerate(keys[:-1]):
            nxt = node[k] if isinstance(node, list) and isinstance(k, int) and k < len(node) else (
                node.get(k) if isinstance(node, dict) else None)
            if nxt is None:
                if not isinstance(node, dict):
                    raise UsageError(f"--set {text!r}: {'.'.join(map(str, keys[:i + 1]))} is not a mapping")
                nxt = node[k] = {}
            if not isinstance(nxt, (dict, list)):
                raise UsageError(f"--set {text!r}: {'.'.join(map(str, keys[:i + 1]))} is a value, not a mapping")
            node = nxt
        last = keys[-1]
        if isinstance(node, list):
            if not isinstance(last, int) or last >= len(node):
                raise UsageError(f"--set {text!r}: no list item {last}")
            node[last] = value
        else:
            node[last] = value
        doc.positions[tuple(keys)] = Position(f"--set {text}")


def load_recipe(ref: str, overrides: tuple = ()) -> LoadedRecipe:
    from .validate import validate_recipe

    path, display = resolve_recipe(ref)
    text = read_text(path, display)
    doc = load_text(text, display)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()  # the bytes compiled (strict UTF-8), read once
    apply_overrides(doc, overrides)
    recipe = validate_recipe(doc)
    return LoadedRecipe(path, display, digest, doc, recipe, tuple(overrides))


def check(loaded: LoadedRecipe):
    from .rules import check_recipe

    return check_recipe(loaded.recipe, loaded.doc, project_config(loaded.path.parent))


def default_output(recipe_path: Path) -> Path:
    """The folder build/ goes in: the recipe's project root (the current directory outside one)."""
    return (project_config(recipe_path.parent).root or Path()) / "build"


def build(ref: str, target: str | None, out: Path | None, overrides: tuple = (), strict: bool = False):
    """Load, validate, check, plan, render and write one recipe; returns (bundle dir, warnings)."""
    from .errors import CheckFailed
    from .plan import build_plan
    from .render import render_bundle
    from .write import write_bundle

    loaded = load_recipe(ref, overrides)
    diagnostics = check(loaded)
    errors = [d for d in diagnostics if d.severity == "error" or strict]
    if errors:
        raise CheckFailed(errors)
    recipe = loaded.recipe
    target = target or recipe.target
    plan = build_plan(recipe, target, recipe_path=loaded.display, recipe_sha256=loaded.sha256,
                      overrides=loaded.overrides, version=__version__)
    files = render_bundle(plan)
    out = out or default_output(loaded.path) / recipe.name / target
    return write_bundle(files, out), [d for d in diagnostics if d not in errors]
