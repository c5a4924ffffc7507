"""Another repository as recipec's home: the project root found from any subdirectory, names
resolved only in that project, [tool.recipec] checked, lint with nothing to check, `recipec init`."""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, run_recipec

from recipec.config import project_config

KIMI = (ROOT / "tests" / "data" / "kimik2.5-flat.yaml").read_text()  # kimik2.5, flat


def user_repo(tmp_path, pyproject: str | None = "[tool.recipec]\n"):
    """A recipe repository of someone else: recipes/acme-kimi.yaml, and a subdirectory."""
    repo = tmp_path / "acme"
    (repo / "recipes").mkdir(parents=True)
    (repo / "docs" / "deep").mkdir(parents=True)
    (repo / "recipes" / "acme-kimi.yaml").write_text(
        KIMI.replace("name: kimik2.5\n", "name: acme-kimi\n").replace("job-name: kimik2.5-1p1d", "job-name: acme"))
    if pyproject is not None:
        (repo / "pyproject.toml").write_text(pyproject)
    return repo


@pytest.mark.parametrize("pyproject", ["[tool.recipec]\n", None], ids=["pyproject", "recipes-folder"])
def test_build_by_name_from_any_subdirectory_of_the_project(tmp_path, pyproject):
    repo = user_repo(tmp_path, pyproject)
    proc = run_recipec("build", "acme-kimi", cwd=repo / "docs" / "deep", check=True)
    assert proc.stdout.strip() == "wrote ../../build/acme-kimi/slurm"
    run_recipec("build", "acme-kimi", "-o", str(tmp_path / "from-root"), cwd=repo, check=True)
    cmp = filecmp.dircmp(repo / "build" / "acme-kimi" / "slurm", tmp_path / "from-root")
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only
    assert "from recipes/acme-kimi.yaml" in (tmp_path / "from-root" / "launch.sh").read_text()
    assert json.loads((tmp_path / "from-root" / "bundle.json").read_text())["recipe_path"] == "recipes/acme-kimi.yaml"


def test_a_name_the_project_lacks_is_an_error_not_recipecs_own_recipe(tmp_path):
    repo = user_repo(tmp_path)
    proc = run_recipec("build", "kimik2.5", cwd=repo / "docs")
    assert proc.returncode == 2
    assert f"no recipe named 'kimik2.5' in {repo / 'recipes'} (known: acme-kimi)" in proc.stderr
    assert not (repo / "build").exists()


def test_a_name_outside_any_project_says_what_it_looked_for(tmp_path):
    proc = run_recipec("build", "kimik2.5", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no project here (looked for a pyproject.toml with [tool.recipec], or a recipes/ folder in" in proc.stderr


def test_pyproject_with_the_table_marks_the_root_before_a_recipes_folder(tmp_path):
    repo = user_repo(tmp_path)
    # a nested folder with its own recipes/ and a pyproject.toml without [tool.recipec]
    inner = repo / "docs" / "examples"
    (inner / "recipes").mkdir(parents=True)
    (inner / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    proc = run_recipec("build", "acme-kimi", "-o", str(tmp_path / "b"), cwd=inner)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("pyproject,message", [
    ("[tool.recipec]\nrepositroy = 'acme/recipes'\n",
     "pyproject.toml:2:1: unknown key 'repositroy' in [tool.recipec] (did you mean 'repository'?) "
     "(known: config-keys-from, image-allow-list, repository)"),
    ("[tool.recipec]\nrepository = 7\n", "pyproject.toml:2:1: [tool.recipec] repository must be a string (got int)"),
    ("[tool.recipec]\nimage-allow-list = ['docker.io/vllm/', 3]\n",
     "pyproject.toml:2:1: [tool.recipec] image-allow-list must be a list of strings (got list)"),
    ("[tool.recipec]\nrepository = acme\n", "pyproject.toml:2:14: invalid TOML: Invalid value"),
])
def test_bad_tool_recipec_is_one_error_for_build_and_lint(tmp_path, pyproject, message):
    repo = user_repo(tmp_path, pyproject)
    for args in (["build", "acme-kimi"], ["lint"]):
        proc = run_recipec(*args, cwd=repo)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.strip().startswith(message), proc.stderr
    assert not (repo / "build").exists()


def test_lint_from_a_subdirectory_checks_the_whole_project(tmp_path):
    repo = user_repo(tmp_path)
    (repo / "recipes" / "broken.yaml").write_text("name: broken\n")
    proc = run_recipec("lint", cwd=repo / "docs" / "deep")
    assert proc.returncode == 1
    assert proc.stdout.startswith("recipes/broken.yaml:1:1: RC100 ")


@pytest.mark.parametrize("layout,args,message", [
    ("none", [], "nothing to lint: found no recipes/*.yaml and perf-changelog.yaml (no project in {cwd} "
                 "or its parents"),
    ("empty", [], "nothing to lint: found no recipes/*.yaml and perf-changelog.yaml (in {root})"),
    ("empty", ["--only", "changelog"], "nothing to lint: found no perf-changelog.yaml (in {root})"),
    ("empty", ["--only", "recipes"], "nothing to lint: found no recipes/*.yaml (in {root})"),
])
def test_lint_with_nothing_to_check_is_an_error(tmp_path, layout, args, message):
    root = tmp_path / "p"
    cwd = root / "sub"
    cwd.mkdir(parents=True)
    if layout == "empty":
        (root / "recipes").mkdir()
    proc = run_recipec("lint", *args, cwd=cwd)
    assert proc.returncode == 1
    assert message.format(cwd=cwd, root=root) in proc.stderr, proc.stderr


def test_lint_only_recipes_skips_the_changelog_and_only_changelog_skips_recipe_findings(tmp_path):
    repo = user_repo(tmp_path)
    (repo / "recipes" / "broken.yaml").write_text("name: broken\n")
    (repo / "perf-changelog.yaml").write_text(
        "- config-keys: [nope]\n  description: [x]\n  pr-link: https://github.com/a/b/pull/1\n")
    proc = run_recipec("lint", "--only", "recipes", "recipes/broken.yaml", cwd=repo)
    assert proc.returncode == 1 and "perf-changelog" not in proc.stdout and "broken.yaml" in proc.stdout
    proc = run_recipec("lint", "--only", "changelog", cwd=repo)
    assert proc.returncode == 1
    assert proc.stdout.startswith("perf-changelog.yaml:1:17: RC511 config key 'nope' matches no recipe")
    assert "broken.yaml" not in proc.stdout


# --- recipec init ---------------------------------------------------------------------------

PROFILES = ["profiles/cluster/mi355x-slurm.yaml", "profiles/engine/vllm-v1.yaml", "profiles/hardware/mi355x.yaml",
            "profiles/model/kimi-k2.5-mxfp4.yaml"]
SCAFFOLD = [".github/workflows/recipes.yml", ".gitignore", ".pre-commit-config.yaml", "perf-changelog.yaml",
            *PROFILES, "pyproject.toml", "recipes/example.yaml", "schema/changelog.schema.json",
            "schema/recipe.schema.json"]


def files_of(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_init_scaffolds_a_repository_that_lints_clean_and_builds(tmp_path):
    repo = tmp_path / "recipes-repo"
    proc = run_recipec("init", str(repo), "--repo", "acme/recipes", "--hooks-repo",
                       "https://example.org/recipec.git", "--hooks-rev", "v9", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert files_of(repo) == SCAFFOLD
    assert 'repository = "acme/recipes"' in (repo / "pyproject.toml").read_text()
    hooks = (repo / ".pre-commit-config.yaml").read_text()
    assert "repo: https://example.org/recipec.git\n    rev: v9\n" in hooks
    for hook in ("recipec-lint-recipes", "recipec-lint-changelog", "recipec-schema"):
        assert f"id: {hook}\n" in hooks
    assert "recipec lint --base-ref origin/main --format github" in (repo / ".github/workflows/recipes.yml").read_text()
    for cwd in (repo, repo / "recipes"):
        for args in (["lint"], ["lint", "--format", "github"], ["schema", "--check"]):
            proc = run_recipec(*args, cwd=cwd)
            assert (proc.returncode, proc.stdout) == (0, ""), (args, proc.stdout, proc.stderr)
    run_recipec("build", "example", cwd=repo / "recipes", check=True)
    assert (repo / "build" / "example" / "slurm" / "launch.sh").is_file()
    # the hooks' ids are the ones this repository's .pre-commit-hooks.yaml defines
    import yaml

    ids = [h["id"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())]
    assert ids == ["recipec-lint-recipes", "recipec-lint-changelog", "recipec-schema"]


def test_init_writes_the_example_on_profiles_and_it_says_what_kimik2_5_says(tmp_path):
    """The scaffold's profiles are this repository's (byte for byte), and its example resolves to
    kimik2.5 but for the names: a new repository starts composed, and never drifts from the seed."""
    import yaml

    repo = tmp_path / "new"
    run_recipec("init", str(repo), "--hooks-repo", "https://example.org/r.git", cwd=tmp_path, check=True)
    for name in PROFILES:
        assert (repo / name).read_bytes() == (ROOT / name).read_bytes(), name
    assert "\nextends:\n" in (repo / "recipes" / "example.yaml").read_text()
    shown = run_recipec("show", "example", cwd=repo, check=True).stdout
    example, seed = yaml.safe_load(shown), yaml.safe_load(run_recipec("show", "kimik2.5", check=True).stdout)
    assert example["engine"]["env"]["VLLM_ROCM_USE_AITER"] == 1  # from profiles/hardware/mi355x.yaml
    names = {"name": "example", "config-key": "example-kimik2.5-fp4-mi355x-vllm-disagg"}
    assert {**seed, **names, "slurm": {**seed["slurm"], "job-name": "example-1p1d"}} == example


def test_init_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    proc = run_recipec("init", cwd=tmp_path)
    assert proc.returncode == 1
    assert "is not empty: recipec init writes a new recipe repository (--force adds" in proc.stderr
    assert files_of(tmp_path) == ["notes.txt"]


def test_init_force_adds_what_is_missing_and_never_overwrites(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'theirs'\n")
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "example.yaml").write_text("their own\n")
    proc = run_recipec("init", "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert files_of(tmp_path) == SCAFFOLD
    assert (tmp_path / "pyproject.toml").read_text() == "[project]\nname = 'theirs'\n"
    assert (tmp_path / "recipes" / "example.yaml").read_text() == "their own\n"
    assert "kept pyproject.toml (exists; not overwritten)\n" in proc.stdout
    assert "created .pre-commit-config.yaml\n" in proc.stdout


@pytest.mark.parametrize("setup,args,code,message", [
    ("file", ["target"], 1, "target exists and is not a directory"),
    ("recipes-file", ["--force", "."], 1, "recipes is a file where the scaffold needs a folder"),
    ("none", ["--repo", "not a repo", "t"], 2, "--repo 'not a repo': expected OWNER/REPO"),
])
def test_init_bad_input_writes_nothing(tmp_path, setup, args, code, message):
    if setup == "file":
        (tmp_path / "target").write_text("x")
    if setup == "recipes-file":
        (tmp_path / "recipes").write_text("x")
    before = files_of(tmp_path)
    proc = run_recipec("init", *args, cwd=tmp_path)
    assert proc.returncode == code and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert files_of(tmp_path) == before


def test_schema_check_from_a_subdirectory_reads_the_projects_schema(tmp_path):
    shutil.copytree(ROOT / "schema", tmp_path / "schema")
    (tmp_path / "recipes" / "x").mkdir(parents=True)
    assert run_recipec("schema", "--check", cwd=tmp_path / "recipes" / "x").returncode == 0
    (tmp_path / "schema" / "recipe.schema.json").write_text("{}\n")
    proc = run_recipec("schema", "--check", cwd=tmp_path / "recipes" / "x")
    assert proc.returncode == 1 and "recipe.schema.json: out of date" in proc.stderr


def test_a_checked_tool_recipec_table_is_read_from_the_cache_and_a_bad_one_never(tmp_path):
    """[tool.recipec] is parsed once per content: a second run reads the checked table from the
    per-user cache (no tomllib), a damaged or tampered entry is checked again, an error is never cached."""
    import os
    import subprocess
    import sys

    repo = user_repo(tmp_path, "[tool.recipec]\nimage-allow-list = ['docker.io/vllm/']\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("RECIPEC_NO_CACHE", None)
    probe = ("import sys; from pathlib import Path; from recipec.config import project_config; "
             "c = project_config(Path('.')); print(list(c.image_allow_list), bool({'tomllib', 'tomli'} & set(sys.modules)))")

    def run() -> str:
        proc = subprocess.run([sys.executable, "-c", probe], cwd=repo, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert run() == "['docker.io/vllm/'] True"  # parsed, then cached
    assert run() == "['docker.io/vllm/'] False"  # from the cache
    (entry,) = (tmp_path / "cache" / "recipec" / "project").glob("*.json")
    for damaged in ('{"image-allow-list": [3]}', '{"shell": "rm -rf /"}', "{torn"):
        entry.write_text(damaged)
        assert run() == "['docker.io/vllm/'] True"  # checked again, the cache rewritten
    (repo / "pyproject.toml").write_text("[tool.recipec]\nrepository = 7\n")
    for _ in range(2):  # reported on every run: a failure leaves no entry
        proc = subprocess.run([sys.executable, "-m", "recipec.cli", "lint"], cwd=repo, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 1 and "repository must be a string" in proc.stderr, proc.stderr
    assert len(list((tmp_path / "cache" / "recipec" / "project").glob("*.json"))) == 1


@pytest.mark.parametrize("written", ["proj/recipes/a.yaml", "plink/recipes/a.yaml", "proj/recipes/link.yaml",
                                     "proj/recipes/../recipes/a.yaml", "plink/recipes/../recipes/a.yaml",
                                     "proj/linkdir/../recipes/a.yaml", "other/b.yaml", "proj"])
def test_display_is_the_resolved_path_relative_to_the_root(tmp_path, monkeypatch, written):
    """ProjectConfig.display resolves a recipe's folder once a process: what it shows must stay
    what Path.resolve() and relative_to the root show, through linked folders, a linked file, `..`
    after a link, and paths outside the project."""
    (tmp_path / "proj" / "recipes").mkdir(parents=True)
    (tmp_path / "other" / "deep").mkdir(parents=True)
    (tmp_path / "proj" / "pyproject.toml").write_text("[tool.recipec]\n")
    (tmp_path / "proj" / "recipes" / "a.yaml").write_text("")
    (tmp_path / "other" / "b.yaml").write_text("")
    (tmp_path / "proj" / "recipes" / "link.yaml").symlink_to(tmp_path / "other" / "b.yaml")
    (tmp_path / "proj" / "linkdir").symlink_to(tmp_path / "other" / "deep")  # linkdir/.. is other/
    (tmp_path / "plink").symlink_to(tmp_path / "proj")
    monkeypatch.chdir(tmp_path)
    config = project_config(Path("proj/recipes"))
    try:
        expected = Path(written).resolve().relative_to(config.root).as_posix()
    except ValueError:
        expected = written
    assert config.display(Path(written)) == expected
