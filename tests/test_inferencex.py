"""Lint of an InferenceX-style repository: a real (trimmed) changelog whose config keys are the
top-level keys of configs/*-master.yaml (tests/data/inferencex, see its PROVENANCE.md).

The sample lints clean; each mutated copy makes exactly the new check fire: config-keys-from (from
[tool.recipec] and from the command line), --pr-number against a git base ref, a pr-link folded off
its line, and each way config-keys-from itself can be wrong.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import ROOT, run_recipec

SAMPLE = ROOT / "tests" / "data" / "inferencex"
PR = "https://github.com/SemiAnalysisAI/InferenceX/pull/"


def git(folder, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path):
    """A copy of the sample as a git repository with one commit (the base ref `base`)."""
    folder = tmp_path / "InferenceX"
    shutil.copytree(SAMPLE, folder)
    git(folder, "init", "-q", "-b", "main")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "base")
    git(folder, "tag", "base")
    return folder


def lint(folder, *args, cwd=None):
    proc = run_recipec("lint", "--format", "json", *args, cwd=cwd or folder)
    assert "Traceback" not in proc.stderr, proc.stderr
    found = [(d["code"], d["path"], d["line"], d["col"]) for d in json.loads(proc.stdout)] if proc.stdout else []
    return proc, found


def append(folder, text):
    with open(folder / "perf-changelog.yaml", "a") as f:
        f.write(text)


def new_entry(key="dsv4-fp4-b200-vllm-agentic-mtp", link=PR + "2708"):
    return ("\n- config-keys:\n    - " + key + "\n  description:\n    - \"A new entry\"\n"
            f"  pr-link: {link}\n")


def test_the_sample_lints_clean_from_its_root_and_a_subdirectory(repo):
    for cwd in (repo, repo / "configs"):
        proc, found = lint(repo, cwd=cwd)
        assert (proc.returncode, found) == (0, []), proc.stderr
    proc, found = lint(repo, "--base-ref", "base", "--pr-number", "2708")
    assert (proc.returncode, found) == (0, []), proc.stderr


def test_config_keys_come_from_the_master_files(repo):
    # every key the sample's entries name is in configs/: without them the same entries fail
    text = (repo / "perf-changelog.yaml").read_text()
    (repo / "perf-changelog.yaml").write_text(text.replace("dsv4-fp4-b200-vllm-agentic-mtp",
                                                           "dsv4-fp4-b200-vllm-agentic-mtpx"))
    proc, found = lint(repo)
    assert proc.returncode == 1
    assert found and {f[0] for f in found} == {"RC511"}
    assert all(f[1] == "perf-changelog.yaml" for f in found)
    assert "did you mean dsv4-fp4-b200-vllm-agentic-mtp" in proc.stdout


def test_only_new_entries_config_keys_are_checked_against_the_base_ref(repo):
    append(repo, new_entry(key="no-such-config-fp4-b200-vllm"))
    proc, found = lint(repo, "--base-ref", "base")
    lines = (repo / "perf-changelog.yaml").read_text().split("\n")
    assert found == [("RC511", "perf-changelog.yaml", lines.index("    - no-such-config-fp4-b200-vllm") + 1, 7)]
    assert proc.returncode == 1


def test_the_command_line_glob_replaces_the_pyproject_one(repo):
    append(repo, new_entry(key="kimik3-fp4-mi355x-atom-agentic-mtp"))  # an AMD config
    proc, found = lint(repo, "--config-keys-from", "configs/nvidia-*.yaml")
    assert proc.returncode == 1 and {f[0] for f in found} == {"RC511"}
    assert "'kimik3-fp4-mi355x-atom-agentic-mtp'" in proc.stdout
    proc, found = lint(repo, "--config-keys-from", "configs/nvidia-*.yaml", "--config-keys-from",
                       "configs/amd-master.yaml")
    assert (proc.returncode, found) == (0, [])


def test_pr_number_new_entry_must_link_that_pull_request(repo):
    append(repo, new_entry(link=PR + "2708"))
    lines = (repo / "perf-changelog.yaml").read_text().split("\n")
    at = lines.index(f"  pr-link: {PR}2708") + 1
    proc, found = lint(repo, "--base-ref", "base", "--pr-number", "2709")
    assert proc.returncode == 1
    assert found == [("RC512", "perf-changelog.yaml", at, 12)]
    assert f"link {PR}2709" in proc.stdout
    proc, found = lint(repo, "--base-ref", "base", "--pr-number", "2708")
    assert (proc.returncode, found) == (0, [])
    # old entries keep their own pull requests; --pr-number says nothing about them
    proc, found = lint(repo, "--base-ref", "HEAD", "--pr-number", "1")
    assert found == [("RC512", "perf-changelog.yaml", at, 12)]  # HEAD is the base commit too


def test_pr_number_needs_a_base_ref(repo):
    proc = run_recipec("lint", "--pr-number", "2708", cwd=repo)
    assert proc.returncode == 2 and "--pr-number needs --base-ref" in proc.stderr


@pytest.mark.parametrize("folded", [
    "  pr-link: \n    https://github.com/SemiAnalysisAI/InferenceX/pull/1701\n",  # as in InferenceX at line 3595
    "  pr-link: >-\n    https://github.com/SemiAnalysisAI/InferenceX/pull/1701\n",
    "  pr-link: |\n    https://github.com/SemiAnalysisAI/InferenceX/pull/1701\n",
    "  pr-link: https://github.com/SemiAnalysisAI/\n    InferenceX/pull/1701\n",
    "  pr-link: \"https://github.com/SemiAnalysisAI/\n    InferenceX/pull/1701\"\n",
])
def test_a_pr_link_folded_off_its_line_is_reported_at_the_key(repo, folded):
    append(repo, "\n- config-keys:\n    - dsv4-fp4-b200-vllm-agentic-mtp\n  description:\n    - \"x\"\n" + folded)
    lines = (repo / "perf-changelog.yaml").read_text().split("\n")
    at = max(i for i, line in enumerate(lines) if line.startswith("  pr-link:")) + 1
    proc, found = lint(repo)
    assert proc.returncode == 1
    assert ("RC513", "perf-changelog.yaml", at, 3) in found
    assert {f[0] for f in found} <= {"RC513", "RC510"}  # a block scalar's newline also makes it non-canonical


def test_a_pr_link_on_its_line_with_quotes_or_a_comment_is_fine(repo):
    append(repo, new_entry(link=f"\"{PR}2708\"  # quoted"))
    proc, found = lint(repo)
    assert (proc.returncode, found) == (0, [])


def _replace_pyproject(repo, line):
    text = (repo / "pyproject.toml").read_text()
    (repo / "pyproject.toml").write_text(text.replace('config-keys-from = ["configs/*-master.yaml"]', line))


@pytest.mark.parametrize("setting,files,message", [
    ('config-keys-from = ["configs/*-mastre.yaml"]', {},
     "config-keys-from glob 'configs/*-mastre.yaml' matches no file in {repo} (from pyproject.toml)"),
    ('config-keys-from = ["configs/gone.yaml"]', {},
     "configs/gone.yaml: config-keys-from file 'configs/gone.yaml' does not exist (from pyproject.toml)"),
    ('config-keys-from = ["configs/*.yaml"]', {"configs/list.yaml": "- a\n- b\n"},
     "configs/list.yaml:1:1: a config-keys-from file must be a mapping whose top-level keys are config "
     "keys (this one is a list)"),
    ('config-keys-from = ["configs/*.yaml"]', {"configs/empty.yaml": "# nothing\n"},
     "configs/empty.yaml:1:1: a config-keys-from file must be a mapping"),
    ('config-keys-from = ["configs/*.yaml"]', {"configs/bad.yaml": "a: [1,\nb: 2\n"},
     "configs/bad.yaml:3:1: config-keys-from file is not valid YAML"),
    ('config-keys-from = ["configs/*.yaml"]', {"configs/latin1.yaml": b"a: caf\xe9\n"},
     "configs/latin1.yaml:1:7: config-keys-from file: not UTF-8 text (byte 0xe9)"),
    ('config-keys-from = ["configs"]', {},
     "configs: config-keys-from file: is a directory, not a file"),
    ('config-keys-from = "configs/*-master.yaml"', {},
     "pyproject.toml:5:1: [tool.recipec] config-keys-from must be a list of strings (got str)"),
    ('config-keys-form = ["configs/*-master.yaml"]', {},
     "pyproject.toml:5:1: unknown key 'config-keys-form' in [tool.recipec] (did you mean 'config-keys-from'?)"),
])
def test_each_bad_setting_is_one_clear_error(repo, setting, files, message):
    _replace_pyproject(repo, setting)
    for name, content in files.items():
        path = repo / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    proc = run_recipec("lint", cwd=repo)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().split("\n")
    assert len(lines) == 1, proc.stderr
    assert message.format(repo=repo) in lines[0], proc.stderr


def test_the_command_line_glob_errors_name_the_option(repo):
    proc = run_recipec("lint", "--config-keys-from", "nothing/*.yaml", cwd=repo)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"config-keys-from glob 'nothing/*.yaml' matches no file in {repo} (from --config-keys-from)"
