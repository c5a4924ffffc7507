"""`recipec lint`: every recipe through load/validate/check, and the changelog through its rules."""

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
             base_ref: str | None) -> list[Diagnostic]:
    from .changelog import lint_changelog
    from .pipeline import check, load_recipe

    out: list[Diagnostic] = []
    keys: set[str] = set()
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
        out += check(loaded)
    if changelog is None and Path("perf-changelog.yaml").is_file():
        changelog = Path("perf-changelog.yaml")
    if changelog is not None:
        config = project_config(Path.cwd())
        repo = repository or config.repository
        check_from = 0
        if base_ref is not None:
            from .history import entries_since

            check_from = entries_since(changelog, base_ref, out)
        out += lint_changelog(changelog, str(changelog), repository=repo,
                              config_keys=keys if not recipes else None, check_keys_from=check_from)
    return sorted(out)
