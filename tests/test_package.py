"""recipec as a real package, used from another repository: the wheel in a fresh venv, and the
pre-commit hooks run for real by pre-commit on a scaffolded repository.

Both start from a snapshot of this working tree (tracked and untracked, not ignored files) committed
into a temporary git repository: the wheel is built from it (`python -m build --wheel`), and
pre-commit installs recipec from it at that commit, as it would from recipec's public repository.
They need the network for the packages recipec depends on (pip honours PIP_CONSTRAINT and
PIP_INDEX_URL); `-m "not package"` leaves them out.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_recipec

pytestmark = pytest.mark.package


def run(*args, cwd, env=None, timeout=600, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def git(folder, *args):
    return run("git", "-c", "user.name=recipec", "-c", "user.email=dev@recipec", "-c", "commit.gpgsign=false",
               *args, cwd=folder)


def clean_env(**extra) -> dict:
    """This process's environment without the venv: the tools under test find only their own."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME") and not k.startswith("PRE_COMMIT")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> tuple[Path, str]:
    """(a git repository holding this working tree as one commit, that commit)."""
    src = tmp_path_factory.mktemp("recipec-src")
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT).stdout
    for name in sorted(set(filter(None, listed.split("\0")))):
        if (ROOT / name).is_file():  # a deleted file is still listed until committed
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    git(src, "init", "-q", "-b", "main")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "snapshot")
    return src, git(src, "rev-parse", "HEAD").stdout.strip()


@pytest.fixture(scope="module")
def installed(snapshot, tmp_path_factory) -> Path:
    """The bin/ of a fresh venv where the wheel built from the snapshot is installed."""
    src, _ = snapshot
    work = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "build", "--wheel", "--outdir", work / "dist", src, cwd=work, env=clean_env())
    wheels = list((work / "dist").glob("recipec-*.whl"))
    assert len(wheels) == 1, wheels
    run(sys.executable, "-m", "venv", work / "venv", cwd=work)
    run(work / "venv" / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        wheels[0], cwd=work, env=clean_env())
    return work / "venv" / "bin"


def test_the_wheel_builds_kimik2_5_from_an_unrelated_directory(installed, tmp_path):
    # a user's repository: a copy of recipes/ and the profiles they extend, no pyproject, far from
    # recipec's source
    project = tmp_path / "user" / "serving"
    shutil.copytree(ROOT / "recipes", project / "recipes")
    shutil.copytree(ROOT / "profiles", project / "profiles")
    (project / "ops").mkdir()
    env = clean_env(XDG_CACHE_HOME=str(tmp_path / "cache"), HOME=str(tmp_path))
    recipec = installed / "recipec"
    proc = run(recipec, "build", "kimik2.5", cwd=project / "ops", env=env)
    assert proc.stdout.strip() == "wrote ../build/kimik2.5/slurm"
    built, golden = project / "build" / "kimik2.5" / "slurm", ROOT / "golden" / "kimik2.5" / "slurm"
    cmp = filecmp.dircmp(built, golden)
    assert not cmp.left_only and not cmp.right_only
    for name in cmp.common_files:
        assert (built / name).read_bytes() == (golden / name).read_bytes(), name
    run(recipec, "build", "tiny-cpu", "--target", "local", cwd=project, env=env)
    assert (project / "build" / "tiny-cpu" / "local" / "launch.sh").is_file()
    assert run(recipec, "lint", cwd=project / "ops", env=env).returncode == 0
    # the user's repository has no acme-kimi: an error, never a recipe shipped with recipec
    proc = run(recipec, "build", "acme-kimi", cwd=project, env=env, check=False)
    assert proc.returncode == 2 and "no recipe named 'acme-kimi' in" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_wheel_installs_one_import_package_named_recipec_with_its_data(installed, tmp_path):
    python = installed / "python"
    code = ("import importlib.util as u, recipec, pathlib; p = pathlib.Path(recipec.__file__).parent;"
            "print(u.find_spec('compiler') is None, 'site-packages' in str(p),"
            " (p / 'templates' / 'slurm' / 'launch.sh.j2').is_file(),"
            " (p / 'scaffold_files' / 'dot-pre-commit-config.yaml').is_file(),"
            " len(list((p / 'catalog' / 'data').glob('*.json'))) > 0)")
    assert run(python, "-c", code, cwd=tmp_path, env=clean_env()).stdout.split() == ["True"] * 5
    # the scaffold ships inside the package: init works from the wheel, and its result lints clean
    env = clean_env(XDG_CACHE_HOME=str(tmp_path / "cache"), HOME=str(tmp_path))
    run(installed / "recipec", "init", tmp_path / "new", "--hooks-repo", "https://example.org/r.git", cwd=tmp_path, env=env)
    assert run(installed / "recipec", "lint", cwd=tmp_path / "new" / "recipes", env=env).returncode == 0
    run(installed / "recipec", "build", "example", cwd=tmp_path / "new", env=env)


def test_pre_commit_runs_recipecs_hooks_on_a_scaffolded_repository(snapshot, tmp_path):
    src, commit = snapshot
    repo = tmp_path / "recipes-repo"
    run_recipec("init", str(repo), "--repo", "acme/recipes", "--hooks-repo", str(src), "--hooks-rev", commit,
                cwd=tmp_path, check=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    env = clean_env(PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"), HOME=str(tmp_path),
                    XDG_CACHE_HOME=str(tmp_path / "cache"))
    pre_commit = [sys.executable, "-m", "pre_commit"]
    proc = run(*pre_commit, "run", "--all-files", cwd=repo, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("recipec lint (recipes)", "recipec lint (perf-changelog.yaml)", "recipec schema --check"):
        assert any(line.startswith(name) and line.endswith("Passed") for line in proc.stdout.splitlines()), proc.stdout

    # break each thing a hook checks: every hook fails, naming what is wrong
    recipe = repo / "recipes" / "example.yaml"
    recipe.write_text(recipe.read_text().replace("  port: 8200\n", "  port: 8100\n", 1))
    (repo / "perf-changelog.yaml").write_text(
        "- config-keys:\n    - example-kimik2.5-fp4-mi355x-vllm-disagg\n  description:\n    - \"x\"\n"
        "  pr-link: https://github.com/acme/recipes/pull/XXX\n")
    (repo / "schema" / "recipe.schema.json").write_text("{}\n")
    git(repo, "add", "-A")
    proc = run(*pre_commit, "run", "--all-files", cwd=repo, env=env, check=False)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    for name in ("recipec lint (recipes)", "recipec lint (perf-changelog.yaml)", "recipec schema --check"):
        assert any(line.startswith(name) and line.endswith("Failed") for line in lines), proc.stdout
    assert "recipes/example.yaml:" in proc.stdout and "RC201 port 8100" in proc.stdout
    assert "perf-changelog.yaml:5:12: RC510 pr-link 'https://github.com/acme/recipes/pull/XXX' is a placeholder" in proc.stdout
    assert "recipe.schema.json: out of date" in proc.stdout
