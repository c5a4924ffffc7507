"""`recipec lint`: every recipe through load/validate/check, and the changelog through its rules.

Takes recipe references, a changelog path, the repository pr-links must point to and an optional
git base ref; gives every Diagnostic, sorted. A recipe that cannot be read is a finding (RC001), not
an abort: lint reports on every file it was given.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import ProjectConfig, project_config
from .diagnostics import Diagnostic
from .errors import CheckFailed, Position, ProjectError, RecipecError, UsageError

LOOKED_FOR = "recipes/*.yaml and perf-changelog.yaml"


def _recipe_paths(recipes: tuple, project: ProjectConfig) -> list[str]:
    if recipes:
        return list(recipes)
    if project.root is None:
        return []
    return [str(p) for p in sorted((project.root / "recipes").glob("*.yaml"))]


def run_lint(recipes: tuple, changelog: Path | None, repository: str | None,
             base_ref: str | None, live=None, *, config_keys_from: tuple = (),
             pr_number: int | None = None, only: str | None = None) -> list[Diagnostic]:
    """live: None, or a function from (loaded recipe, its Plans) pairs to more Diagnostics (`--live`).
    config_keys_from: globs (relative to the current directory) replacing [tool.recipec]'s.
    pr_number: the pull request new changelog entries must link (needs base_ref).
    only: "recipes" (no changelog) or "changelog" (recipes are read for their config keys only)."""
    from .pipeline import check

    if pr_number is not None and base_ref is None:
        raise UsageError("--pr-number needs --base-ref: the base ref says which entries are new")
    project = project_config(Path.cwd())
    paths = _recipe_paths(recipes, project)
    if only == "recipes":
        changelog = None
    elif changelog is None and project.root is not None and (project.root / "perf-changelog.yaml").is_file():
        changelog = project.root / "perf-changelog.yaml"
    if (not paths or only == "changelog") and changelog is None:
        where = (f"in {project.root}" if project.root is not None else
                 f"no project in {Path.cwd()} or its parents (a pyproject.toml with [tool.recipec], or a "
                 "recipes/ folder)")
        looked_for = {"recipes": "recipes/*.yaml", "changelog": "perf-changelog.yaml"}.get(only, LOOKED_FOR)
        raise ProjectError(f"nothing to lint: found no {looked_for} ({where})",
                           hint="name recipes or --changelog, or run recipec init")
    extra_keys = None
    if config_keys_from:
        from .config_keys import config_keys

        extra_keys = config_keys(config_keys_from, Path.cwd(), "--config-keys-from")
    elif project.config_keys_from:
        from .config_keys import config_keys

        extra_keys = config_keys(project.config_keys_from, project.root, os.path.relpath(project.pyproject))

    out: list[Diagnostic] = []
    keys: set[str] = set()
    loaded_recipes = []
    first_of_key: dict[str, object] = {}
    for ref in paths:
        if recipes:  # some recipes only: their config keys are checked among their own variants
            first_of_key = {}
        try:
            results = _load(ref)
        except CheckFailed as exc:
            results = [exc]
        except RecipecError as exc:
            if exc.exit_code != 1:
                raise
            if only != "changelog":
                out.append(Diagnostic(exc.position or Position(ref), "RC001", exc.message, exc.hint))
            continue
        for loaded in results:
            if isinstance(loaded, CheckFailed):
                if only != "changelog":
                    out += loaded.diagnostics
                continue
            keys.add(loaded.recipe.config_key)
            out += _duplicate_key(loaded, first_of_key)
            if only == "changelog":
                continue
            checked = check(loaded)
            out += checked.diagnostics
            if live is not None:  # kept only for --live: a loaded document holds its whole YAML tree
                loaded_recipes.append((loaded, tuple(checked.plans.values())))
    if live is not None:
        out += live(loaded_recipes)
    if changelog is not None:
        # Only the full set of recipes says which config keys exist; with none at all (another
        # project's changelog) there is nothing to match, unless config-keys-from names them.
        # Recipes named on the command line are only some of them: no check then.
        known = keys if not recipes and keys else None
        if extra_keys is not None and not recipes:
            known = (known or set()) | extra_keys
        out += _lint_changelog(changelog, project, repository, base_ref, known, pr_number)
    return sorted(out)


def _load(ref: str) -> list:
    """A recipe file: its recipe and every variant (LoadedRecipe, or CheckFailed of one that does not
    validate); a variant's name: that variant."""
    from .pipeline import load_all, load_recipe, load_source, resolve_recipe

    path, display, variant = resolve_recipe(ref)
    if variant is not None:
        try:
            return [load_recipe(ref)]
        except CheckFailed as exc:
            return [exc]
    return load_all(load_source(path, display))


def _duplicate_key(loaded, first_of_key: dict) -> list[Diagnostic]:
    """RC947: the config key names one configuration in the whole repository (the changelog's
    entries and InferenceX's sweeps find a configuration by it)."""
    key = loaded.recipe.config_key
    first = first_of_key.setdefault(key, loaded)
    if first is loaded:
        return []
    at = first.doc.position(("config-key",))
    return [Diagnostic(loaded.doc.position(("config-key",)), "RC947",
                       f"config key '{key}' of {loaded.recipe.name} is also the config key of "
                       f"{first.recipe.name} ({at})", "give each recipe and variant its own config-key")]


def _lint_changelog(changelog: Path, project: ProjectConfig, repository: str | None,
                    base_ref: str | None, keys: set[str] | None, pr_number: int | None) -> list[Diagnostic]:
    from .changelog import MAX_NODES, lint_changelog

    repo = repository or project.repository
    history = None
    if base_ref is not None:
        from .history import base_entries, compare

        base = base_entries(changelog, base_ref, MAX_NODES)

        def history(doc):
            return compare(base, doc, base_ref)
    return lint_changelog(changelog, project.display(changelog), repository=repo, config_keys=keys,
                          history=history, pr_number=pr_number)
