"""`recipec lint`: every recipe through load/validate/check, and the changelog through its rules.

Takes recipe references, a changelog path, the repository pr-links must point to and an optional
git base ref; gives every Diagnostic, sorted. A recipe that cannot be read is a finding (RC001), not
an abort: lint reports on every file it was given.
"""

from __future__ import annotations

from pathlib import Path

from .config import project_config
from .diagnostics import Diagnostic
from .errors import CheckFailed, Position, RecipecError


def _recipe_paths(recipes: tuple) -> list[str]:
    if recipes:
        return list(recipes)
    return sorted(str(p) for p in Path("recipes").glob("*.yaml"))


def run_lint(recipes: tuple, changelog: Path | None, repository: str | None,
             base_ref: str | None, live=None) -> list[Diagnostic]:
    """live: None, or a function from (loaded recipe, its Plans) pairs to more Diagnostics (`--live`)."""
    from .pipeline import check, load_recipe

    out: list[Diagnostic] = []
    keys: set[str] = set()
    loaded_recipes = []
    for ref in _recipe_paths(recipes):
        try:
            loaded = load_recipe(ref)
        except CheckFailed as exc:
            out += exc.diagnostics
            continue
        except RecipecError as exc:
            if exc.exit_code != 1:
                raise
            out.append(Diagnostic(exc.position or Position(ref), "RC001", exc.message, exc.hint))
            continue
        keys.add(loaded.recipe.config_key)
        checked = check(loaded)
        out += checked.diagnostics
        if live is not None:  # kept only for --live: a loaded document holds its whole YAML tree
            loaded_recipes.append((loaded, tuple(checked.plans.values())))
    if live is not None:
        out += live(loaded_recipes)
    if changelog is None and Path("perf-changelog.yaml").is_file():
        changelog = Path("perf-changelog.yaml")
    if changelog is not None:
        out += _lint_changelog(changelog, repository, base_ref,
                               # Only the full set of recipes says which config keys exist; with
                               # none at all (another project's changelog) there is nothing to match.
                               keys if not recipes and keys else None)
    return sorted(out)


def _lint_changelog(changelog: Path, repository: str | None, base_ref: str | None,
                    keys: set[str] | None) -> list[Diagnostic]:
    from .changelog import MAX_NODES, lint_changelog

    repo = repository or project_config(Path.cwd()).repository
    history = None
    if base_ref is not None:
        from .history import base_entries, compare

        base = base_entries(changelog, base_ref, MAX_NODES)

        def history(doc):
            return compare(base, doc, base_ref)
    return lint_changelog(changelog, str(changelog), repository=repo, config_keys=keys, history=history)
