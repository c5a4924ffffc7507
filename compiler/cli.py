"""The `recipec` command line: build, lint, rules, schema, init, report.

Every user error is a RecipecError, printed as one line per finding and mapped to its exit code
(1: invalid input or a failed check; 2: usage). Heavy modules are imported inside the commands, so
`recipec --help` and `recipec lint` pay only for what they use.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

# pydantic looks up plugins through every installed distribution's entry points on first use
# (~15 ms); recipec uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from . import __version__  # noqa: E402
from .errors import CheckFailed, RecipecError  # noqa: E402
from .placement import TARGETS  # noqa: E402
from .escape import finding_text, github_data, github_property  # noqa: E402


def _fail(exc: RecipecError) -> None:
    # One line a finding, whatever its values hold.
    lines = [d.format() for d in exc.diagnostics] if isinstance(exc, CheckFailed) else [str(exc)]
    for line in lines:
        click.echo(finding_text(line), err=True)
    if isinstance(exc, CheckFailed):
        click.echo(f"recipec: {len(exc.diagnostics)} error(s)", err=True)
    sys.exit(exc.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="recipec")
def main() -> None:
    """Compile serving recipes into guarded launch bundles."""


@main.command()
@click.argument("recipe")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Bundle directory (default: build/RECIPE/TARGET).")
@click.option("--target", type=click.Choice(list(TARGETS)), default=None,
              help="Where the bundle runs (default: the recipe's target).")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override a recipe value before validation (value parsed as YAML). Repeatable.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def build(recipe: str, output: Path | None, target: str | None, overrides: tuple, strict: bool) -> None:
    """Build the launch bundle of RECIPE (a name under recipes/ or a path)."""
    from .pipeline import build as run_build

    try:
        out, warnings = run_build(recipe, target, output, tuple(overrides), strict=strict)
    except RecipecError as exc:
        _fail(exc)
    for w in warnings:
        click.echo(finding_text(w.format()), err=True)
    click.echo(f"wrote {_shown(out)}")


def _shown(path: Path) -> str:
    """Relative to the current directory (../build/x from a subdirectory of the project)."""
    try:
        return os.path.relpath(path.resolve(), Path.cwd().resolve())
    except ValueError:
        return str(path)


@main.command()
@click.argument("recipes", nargs=-1)
@click.option("--changelog", "changelog", type=click.Path(path_type=Path), default=None,
              help="Changelog to lint (default: perf-changelog.yaml when present).")
@click.option("--repo", "repository", default=None, metavar="OWNER/REPO",
              help="Repository pr-links must point to (default: [tool.recipec] repository).")
@click.option("--base-ref", default=None, help="Git ref: changelog entries added since it are checked "
              "against the recipes' config keys, and history before it must be unchanged.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text")
@click.option("--strict", is_flag=True, help="Warnings fail too.")
@click.option("--live", is_flag=True, help="Also run every generated argv through the real parsers of "
              "the installed engines and report where they disagree with the catalogs.")
@click.option("--engines-python", default=None, metavar="PATH", help="The python --live runs the "
              "parsers with (default: $RECIPEC_ENGINES_VENV/bin/python).")
@click.option("--config-keys-from", "config_keys_from", multiple=True, metavar="GLOB",
              help="YAML files whose top-level keys are config keys too (quote the glob; relative to "
              "the current directory; replaces [tool.recipec] config-keys-from). Repeatable.")
@click.option("--pr-number", type=click.IntRange(min=1), default=None, metavar="N",
              help="The pull request being checked: new changelog entries must link it (with --base-ref).")
@click.option("--only", type=click.Choice(["recipes", "changelog"]), default=None,
              help="Lint only the recipes, or only the changelog (recipes are still read for their config keys).")
def lint(recipes: tuple, changelog: Path | None, repository: str | None, base_ref: str | None,
         fmt: str, strict: bool, live: bool, engines_python: str | None, config_keys_from: tuple,
         pr_number: int | None, only: str | None) -> None:
    """Check recipes (default: every recipes/*.yaml) and the changelog. Exit 1 on any error."""
    import gc

    from .lint import run_lint

    # Lint keeps what it loads until it ends; the collector's default pace re-walks all of it every
    # few hundred allocations, a fifth of the per-recipe cost. Collect far less often instead.
    gc.set_threshold(50_000, 50, 50)

    live_check = None
    if live:
        from .live import engines_python as find_python, run_live

        def live_check(loaded_recipes):
            report = run_live(loaded_recipes, python)
            click.echo(report.summary(), err=True)
            return report.diagnostics

    try:
        python = find_python(engines_python) if live else None
        diagnostics = run_lint(recipes, changelog, repository, base_ref, live_check,
                               config_keys_from=config_keys_from, pr_number=pr_number, only=only)
    except RecipecError as exc:
        _fail(exc)
    failing = [d for d in diagnostics if d.severity == "error" or strict]
    if fmt == "json":
        click.echo(json.dumps([d.as_dict() for d in diagnostics], indent=2))
    elif fmt == "github":
        for d in diagnostics:
            level = "error" if d in failing else "warning"
            message = d.message + (f" ({d.hint})" if d.hint else "")
            click.echo(f"::{level} file={github_property(d.position.path)},line={d.position.line},"
                       f"col={d.position.col},title={github_property(d.code)}::{github_data(message)}")
    else:
        for d in diagnostics:
            click.echo(finding_text(d.format()))
        if diagnostics:
            click.echo(f"recipec: {len(failing)} error(s), {len(diagnostics) - len(failing)} warning(s)",
                       err=True)
    sys.exit(1 if failing else 0)


@main.command()
def rules() -> None:
    """List every rule code with its summary and fix hint."""
    from .rules import all_rules

    for r in all_rules():
        click.echo(f"{r.code}  {r.name:<28} {r.severity:<7} {r.summary}")
        click.echo(f"{'':6} fix: {r.hint}")


@main.command()
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Directory to write recipe.schema.json and changelog.schema.json into.")
@click.option("--check", is_flag=True, help="Exit 1 if the files in --output (default schema/) differ.")
def schema(output: Path | None, check: bool) -> None:
    """Print the recipe JSON Schema, or write/check both schemas in a directory."""
    from .schema import schema_files

    files = schema_files()
    if output is None and not check:
        click.echo(files["recipe.schema.json"], nl=False)
        return
    if output is None:
        from .config import project_config

        root = project_config(Path.cwd()).root
        folder = root / "schema" if root is not None else Path("schema")
    else:
        folder = output
    if check:
        stale = [name for name, text in files.items()
                 if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != text]
        for name in stale:
            click.echo(f"{folder / name}: out of date (run: recipec schema -o {folder})", err=True)
        sys.exit(1 if stale else 0)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
        click.echo(f"wrote {folder / name}")


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Directory for throughput.png, latency.png and report.json (the data plotted).")
def report(results: tuple, output: Path) -> None:
    """Draw benchmark results (RESULTS: result directories of bundle runs) as PNG; several compare on
    one chart. Needs the `report` extra (matplotlib)."""
    from .report import write_report

    try:
        written = write_report(list(results), output)
    except RecipecError as exc:
        _fail(exc)
    for path in written:
        click.echo(f"wrote {path}")


@main.command()
@click.argument("directory", type=click.Path(path_type=Path), default=Path("."))
@click.option("--force", is_flag=True, help="Scaffold into a folder that is not empty (existing files "
              "are kept, never overwritten).")
@click.option("--repo", "repository", default=None, metavar="OWNER/REPO",
              help="The repository pr-links must point to ([tool.recipec] repository).")
@click.option("--hooks-repo", default=None, metavar="URL", help="Where pre-commit and CI get recipec "
              "(default: this recipec's source repository).")
@click.option("--hooks-rev", default=None, metavar="REV", help="The tag or commit of --hooks-repo "
              "(default: v<this version>).")
def init(directory: Path, force: bool, repository: str | None, hooks_repo: str | None,
         hooks_rev: str | None) -> None:
    """Scaffold a recipe repository in DIRECTORY (default: here)."""
    from .scaffold import UNKNOWN_HOOKS_REPO, init_project, own_repository

    try:
        created, kept = init_project(directory, force=force, repository=repository,
                                     hooks_repo=hooks_repo, hooks_rev=hooks_rev)
    except RecipecError as exc:
        _fail(exc)
    for name in created:
        click.echo(f"created {directory / name}")
    for name in kept:
        click.echo(f"kept {directory / name} (exists; not overwritten)")
    if hooks_repo is None and own_repository() is None:
        click.echo(f"recipec init: set the recipec repository in .pre-commit-config.yaml and "
                   f".github/workflows/recipes.yml (written as {UNKNOWN_HOOKS_REPO}; or pass --hooks-repo)",
                   err=True)
    click.echo(f"next: cd {directory} && git init && pre-commit install && recipec lint && recipec build example")


@main.command()
@click.argument("recipe")
@click.option("--origins", is_flag=True, help="Annotate every value with the file:line:col it was written at.")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="As for build. Repeatable.")
def show(recipe: str, origins: bool, overrides: tuple) -> None:
    """Print the resolved RECIPE (a name, a variant's name or a path): extends merged, variant applied."""
    from .show import resolved, to_yaml

    try:
        click.echo(to_yaml(resolved(recipe, tuple(overrides)).doc, origins), nl=False)
    except RecipecError as exc:
        _fail(exc)


@main.command()
@click.argument("a")
@click.argument("b")
@click.option("--bundles", is_flag=True, help="Also diff the bundles the two recipes build.")
@click.option("--target", type=click.Choice(list(TARGETS)), default=None,
              help="The bundles' target (default: each recipe's own).")
def diff(a: str, b: str, bundles: bool, target: str | None) -> None:
    """Compare two resolved recipes (or variants) value by value. Exit 1 when they differ."""
    from .show import diff_bundles, diff_recipes, resolved

    try:
        left, right = resolved(a), resolved(b)
        lines = diff_recipes(left, right)
        if bundles:
            lines += diff_bundles(left, right, target)
    except RecipecError as exc:
        _fail(exc)
    for line in lines:
        click.echo(line)
    sys.exit(1 if lines else 0)


@main.command("list")
def list_() -> None:
    """List the project's recipes and their variants, with config keys and files."""
    from .config import project_config
    from .show import listing

    root = project_config(Path.cwd()).root
    if root is None:
        _fail(RecipecError(f"no project in {Path.cwd()} or its parents (a pyproject.toml with [tool.recipec], "
                           "or a recipes/ folder)"))
    rows, errors = listing(root)
    width = [max((len(r[i]) for r in rows), default=0) for i in range(2)]
    for name, key, path in rows:
        click.echo(f"{name:<{width[0]}}  {key:<{width[1]}}  {path}")
    for line in errors:
        click.echo(finding_text(line), err=True)
    sys.exit(1 if errors else 0)


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
def verify(bundle: Path) -> None:
    """Check that BUNDLE (a bundle directory) is what its recipe builds today. Exit 1 on drift."""
    from .verify import verify as run_verify

    try:
        drifts = run_verify(bundle)
    except RecipecError as exc:
        _fail(exc)
    for line in drifts:
        click.echo(finding_text(f"{_shown(bundle)}/{line}" if not line.startswith(("recipe", "bundle.json"))
                                else f"{_shown(bundle)}: {line}"))
    if not drifts:
        click.echo(f"{_shown(bundle)}: up to date")
    sys.exit(1 if drifts else 0)


@main.command()
@click.argument("recipe")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid")
@click.option("--target", type=click.Choice(list(TARGETS)), default=None,
              help="Whose placement to draw (default: the recipe's target).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Write here, not to stdout.")
def graph(recipe: str, fmt: str, target: str | None, output: Path | None) -> None:
    """Draw RECIPE's topology: nodes, services, ports, connectors, who talks to whom."""
    from . import graph as draw
    from .pipeline import check, load_recipe

    try:
        loaded = load_recipe(recipe)
        plan = check(loaded).plans[target or loaded.recipe.target]
        text = {"mermaid": draw.mermaid, "dot": draw.dot, "svg": draw.svg}[fmt](plan)
    except RecipecError as exc:
        _fail(exc)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {_shown(output)}")


def run() -> None:
    """The `recipec` command: main(), then out through os._exit once its output is flushed.

    Interpreter teardown (freeing every module and object one by one) is ~30 ms of a ~200 ms run
    and does nothing for a command that has finished: files are written and closed, recipec
    registers no exit handlers. An unexpected exception still leaves the normal way, traceback
    and all. Tests and other callers use main(), which returns or raises as click's commands do.
    """
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # stdout closed early (recipec rules | head): Python's own exit status for it
        code = 120
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
