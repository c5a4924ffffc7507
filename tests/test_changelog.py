"""perf-changelog.yaml lint: byte hygiene, structure, pr-links, config keys, and history against a
git base ref (temporary repositories with a base commit and a changed changelog)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import ROOT, run_recipec

KEY = "kimik2.5-fp4-mi355x-vllm-disagg-agentic"
REPO = "SemiAnalysisAI/InferenceX"


def entry(n: int, key: str = KEY, desc: str | None = None, link: str | None = None, extra: str = "") -> str:
    link = f"https://github.com/{REPO}/pull/{n}" if link is None else link
    return (f"- config-keys:\n    - {key}\n  description:\n    - \"{desc or f'change {n}'}\"\n"
            f"  pr-link: {link}\n{extra}\n")


def lint(tmp_path, text: str | bytes, *args: str):
    path = tmp_path / "log.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    proc = run_recipec("lint", "--changelog", str(path), "--repo", REPO, "--format", "json", *args,
                       cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    found = [(d["code"], d["line"], d["col"]) for d in json.loads(proc.stdout)] if proc.stdout else []
    return proc, found, (json.loads(proc.stdout) if proc.stdout else [])


def test_a_good_changelog_passes(tmp_path):
    text = entry(1) + entry(2, key="kimik2.5-*", extra="  scenario-type:\n    - agentic-coding\n"
                                                         "  append-only: true\n")
    proc, found, _ = lint(tmp_path, text)
    assert (proc.returncode, found) == (0, [])


@pytest.mark.parametrize("text,expected", [
    (entry(1).rstrip("\n"), [("RC501", 5, 63)]),
    (entry(1).replace("  description", "\tdescription"), [("RC001", 3, 1), ("RC502", 3, 1)]),
    (entry(1).replace("\n", "\r\n"), [("RC503", n, c) for n, c in
                                      ((1, 15), (2, 46), (3, 15), (4, 17), (5, 63), (6, 1))]),
    (entry(1).replace("change 1", "change\0 1"), [("RC504", 4, 14)]),
    (entry(1) + "  pr-link: https://github.com/x/y/pull/2\n", [("RC001", 7, 3)]),  # duplicate key
    ("config-keys: [a]\n", [("RC100", 1, 1)]),  # entries must be a list
    (entry(1).replace("    - \"change 1\"", "    - 7")
     + "- config-keys: []\n  description: [x]\n  pr-link: https://github.com/SemiAnalysisAI/InferenceX/pull/3\n",
     [("RC100", 4, 7), ("RC100", 7, 16)]),
    (entry(1, extra="  evals-only: true\n  append-only: true\n"), [("RC100", 1, 3)]),
    (entry(1, extra="  scenario-type: agentic-coding\n"), [("RC100", 6, 18)]),
    (entry(1, extra="  notes: x\n"), [("RC100", 6, 3)]),
])
def test_hygiene_and_structure(tmp_path, text, expected):
    proc, found, _ = lint(tmp_path, text)
    assert proc.returncode == 1
    assert found == expected


def test_not_utf8_is_a_finding_with_position(tmp_path):
    proc, found, diags = lint(tmp_path, entry(1).encode().replace(b"change 1", b"change \xff"))
    assert proc.returncode == 1 and found == [("RC001", 4, 15)]
    assert "not UTF-8" in diags[0]["message"]


@pytest.mark.parametrize("link,why", [
    ("XXX", "placeholder"), ("TBD", "placeholder"), ('""', "placeholder"), ("", "placeholder"),
    (f"https://github.com/{REPO}/pull/XXX", "placeholder"),
    (f"https://github.com/{REPO}/pull/12/changes", "points into a pull request page"),
    (f"https://github.com/{REPO}/pull/12/files", "points into a pull request page"),
    ("https://github.com/someone/fork/pull/12", "not of SemiAnalysisAI/InferenceX"),
    (f"https://github.com/{REPO}/issues/12", "is not a pull request"),
    (f"http://github.com/{REPO}/pull/12", "not a pull request URL"),
    (f"https://github.com/{REPO}/pull/12/", "points into a pull request page"),
    ("#12", "placeholder"),
])
def test_pr_link_must_be_a_canonical_pull_url_of_the_repo(tmp_path, link, why):
    proc, found, diags = lint(tmp_path, entry(1) + entry(2, link=link))
    assert proc.returncode == 1
    assert [(d["code"], d["line"]) for d in diags] == [("RC510", 11)]
    assert why in diags[0]["message"]


def test_repo_option_decides_which_repository(tmp_path):
    text = entry(1, link="https://github.com/acme/recipes/pull/4")
    assert lint(tmp_path, text)[0].returncode == 1
    path = tmp_path / "log.yaml"
    proc = run_recipec("lint", "--changelog", str(path), "--repo", "acme/recipes", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout


def test_unknown_config_key_of_the_project_changelog(tmp_path):
    (tmp_path / "recipes").mkdir()
    shutil.copy(ROOT / "tests" / "data" / "kimik2.5-flat.yaml", tmp_path / "recipes" / "kimik2.5.yaml")
    (tmp_path / "perf-changelog.yaml").write_text(entry(1) + entry(2, key="kimi-typo") + entry(3, key="kimik2.5-*"))
    proc = run_recipec("lint", "--repo", REPO, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.startswith("perf-changelog.yaml:8:7: RC511 config key 'kimi-typo' matches no recipe")
    assert proc.stdout.count("RC511") == 1


# --- history against a base ref --------------------------------------------------------------------

def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd), "PATH": "/usr/bin:/bin"})


@pytest.fixture
def project(tmp_path):
    """A git repository with one recipe and a three-entry changelog committed as `base`."""
    (tmp_path / "recipes").mkdir()
    shutil.copy(ROOT / "tests" / "data" / "kimik2.5-flat.yaml", tmp_path / "recipes" / "kimik2.5.yaml")
    (tmp_path / "perf-changelog.yaml").write_text(entry(1) + entry(2) + entry(3, key="gone-recipe"))
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "base")
    git(tmp_path, "tag", "base")

    def run(text: str):
        (tmp_path / "perf-changelog.yaml").write_text(text)
        proc = run_recipec("lint", "--repo", REPO, "--base-ref", "base", "--format", "json", cwd=tmp_path)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc, [(d["code"], d["line"], d["col"]) for d in json.loads(proc.stdout or "[]")]
    return run


def test_history_unchanged_passes_and_old_keys_are_not_rechecked(project):
    # entry 3 names a recipe that no longer exists: history, not this change's business
    proc, found = project(entry(1) + entry(2) + entry(3, key="gone-recipe"))
    assert (proc.returncode, found) == (0, [])


def test_new_entry_at_the_end_is_checked_for_config_keys(project):
    proc, found = project(entry(1) + entry(2) + entry(3, key="gone-recipe") + entry(4, key="kimi-typo"))
    assert proc.returncode == 1 and found == [("RC511", 20, 7)]
    proc, found = project(entry(1) + entry(2) + entry(3, key="gone-recipe") + entry(4))
    assert (proc.returncode, found) == (0, [])


def test_edited_entry(project):
    proc, found = project(entry(1) + entry(2, desc="rewritten history") + entry(3, key="gone-recipe"))
    assert proc.returncode == 1 and found == [("RC520", 10, 5)]


def test_deleted_entry(project):
    proc, found = project(entry(1) + entry(3, key="gone-recipe"))
    assert proc.returncode == 1 and found == [("RC521", 7, 3)]


def test_entry_inserted_in_the_middle(project):
    proc, found = project(entry(1) + entry(9) + entry(2) + entry(3, key="gone-recipe"))
    assert proc.returncode == 1 and found == [("RC522", 7, 3)]


def test_pr_link_correction_is_allowed(project):
    fixed = entry(2).replace("/pull/2", "/pull/22")
    proc, found = project(entry(1) + fixed + entry(3, key="gone-recipe"))
    assert (proc.returncode, found) == (0, [])


def test_pr_link_correction_must_still_be_canonical(project):
    broken = entry(2).replace("/pull/2", "/pull/2/files")
    proc, found = project(entry(1) + broken + entry(3, key="gone-recipe"))
    assert proc.returncode == 1 and found == [("RC510", 11, 12)]


def test_changelog_new_since_base(project, tmp_path):
    git(tmp_path, "rm", "-q", "perf-changelog.yaml")
    git(tmp_path, "commit", "-q", "-m", "no changelog")
    git(tmp_path, "tag", "-f", "base")
    proc, found = project(entry(1) + entry(2, key="nope"))
    assert proc.returncode == 1 and found == [("RC511", 8, 7)]


def test_unknown_ref_and_not_a_repository_are_usage_errors(project, tmp_path):
    (tmp_path / "perf-changelog.yaml").write_text(entry(1))
    proc = run_recipec("lint", "--base-ref", "origin/nope", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--base-ref origin/nope: no such commit, branch or tag" in proc.stderr
    shutil.rmtree(tmp_path / ".git")
    proc = run_recipec("lint", "--base-ref", "base", cwd=tmp_path)
    assert proc.returncode == 2 and "not in a git repository" in proc.stderr
