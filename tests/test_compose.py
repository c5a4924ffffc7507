"""extends: the merge rules, and where each value (and each diagnostic) says it was written."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest import ROOT
from recipec.errors import CheckFailed
from recipec.pipeline import load_recipe

BASE = (ROOT / "tests" / "rules" / "RC940" / "bases" / "recipe.yaml").read_text()


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.recipec]\n")
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


@pytest.fixture
def repo(tmp_path):
    return project(tmp_path, {
        "profiles/hardware/gpu.yaml": """\
            cluster:
              accelerator: MI355X
              gpus-per-node: 8
              dram-gb-per-node: 3072
            engine:
              env:
                A: 1
                B: 2
              args:
                max-num-seqs: 256
            """,
        "recipes/base.yaml": BASE.replace("extends: ./hardware", "extends: profiles/hardware/gpu"),
    })


def load(repo: Path, text: str, *overrides: str, name: str = "r"):
    path = repo / "recipes" / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return load_recipe(str(path), overrides)


def errors(repo: Path, text: str, *overrides: str) -> list[str]:
    with pytest.raises(CheckFailed) as info:
        load(repo, text, *overrides)
    return [d.format() for d in info.value.diagnostics]


def test_mappings_merge_key_by_key_lists_and_scalars_replace(repo):
    loaded = load(repo, """\
        extends: base
        engine:
          env: {B: 3, C: 4}
          command: [python, -m, vllm.entrypoints.openai.api_server]
        decode:
          port: 8300
        """)
    r = loaded.recipe
    assert dict(r.engine.env) == {"A": 1, "B": 3, "C": 4, "VLLM_USE_V1": 1}  # A: profile, B replaced
    assert list(r.engine.command) == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    assert r.decode.port == 8300 and r.decode.tensor_parallel_size == 8 and r.cluster.gpus_per_node == 8
    assert loaded.doc.sources == ("profiles/hardware/gpu.yaml", "recipes/base.yaml", "recipes/r.yaml")


def test_a_list_replaces_the_whole_list(repo):
    (repo / "profiles" / "hardware" / "gpu.yaml").write_text(
        (repo / "profiles" / "hardware" / "gpu.yaml").read_text() + "slurm:\n  extra-directives: {gres: 'gpu:8'}\n")
    r = load(repo, "extends: base\nlmcache:\n  roles: [prefill, decode]\n").recipe
    r2 = load(repo, "extends: r\nlmcache:\n  roles: [decode]\n", name="r2").recipe
    assert list(r.lmcache.roles) == ["prefill", "decode"] and list(r2.lmcache.roles) == ["decode"]


def test_delete_marker_removes_a_key_a_base_set(repo):
    r = load(repo, "extends: base\nengine:\n  env:\n    A: !delete\n").recipe
    assert dict(r.engine.env) == {"B": 2, "VLLM_USE_V1": 1}


def test_null_is_a_value_not_a_delete(repo):
    # null keeps its schema meaning (an engine flag left out), so a profile's flag can be dropped
    # per role without the merge touching it.
    r = load(repo, "extends: base\nengine:\n  args:\n    max-num-seqs: null\n").recipe
    assert dict(r.engine.args) == {"max-num-seqs": None}


def test_value_from_a_profile_reports_the_profiles_line(repo):
    (repo / "profiles" / "hardware" / "gpu.yaml").write_text(
        (repo / "profiles" / "hardware" / "gpu.yaml").read_text().replace("gpus-per-node: 8", "gpus-per-node: 0"))
    got = errors(repo, "extends: base\n")
    assert len(got) == 1 and got[0].startswith("profiles/hardware/gpu.yaml:3:18: RC100 cluster.gpus-per-node"), got


def test_unknown_key_in_a_profile_is_RC944_at_the_profile(repo):
    (repo / "profiles" / "model.yaml").write_text("model:\n  path: x\n  servd-name: y\n")
    got = errors(repo, "extends: [base, profiles/model]\n")
    assert got == ["profiles/model.yaml:3:3: RC944 model.servd-name: unknown key 'servd-name' "
                   "(did you mean 'served-name'?)"]


def test_a_set_reports_the_option_and_replaces_the_profiles_origin(repo):
    got = errors(repo, "extends: base\n", "cluster.gpus-per-node=0")
    assert len(got) == 1 and got[0].startswith("--set cluster.gpus-per-node=0: RC100 cluster.gpus-per-node"), got
    loaded = load(repo, "extends: base\n", "engine.env={Z: 1}")
    assert str(loaded.doc.positions[("engine", "env", "Z")]) == "--set engine.env={Z: 1}"
    assert ("engine", "env", "A") not in loaded.doc.positions  # replaced: no stale origin left


def test_rule_on_a_merged_mapping_names_every_contributing_file(repo):
    from recipec.pipeline import check

    loaded = load(repo, """\
        extends: base
        lmcache:
          l1-size-gb: 100
        """, name="r")
    load(repo, "extends: r\nlmcache:\n  roles: [prefill]\n", name="r2")
    loaded = load(repo, "extends: r2\nlmcache:\n  l1-size-gb: !delete\n", name="r3")
    found = [d for d in check(loaded).diagnostics if d.code == "RC705"]
    assert len(found) == 1
    assert found[0].position.path == "recipes/r3.yaml"
    assert found[0].message.endswith("[merged from recipes/r2.yaml, recipes/r3.yaml]"), found[0].message


def test_origins_through_three_levels(repo):
    loaded = load(repo, "extends: base\n", name="mid")
    loaded = load(repo, "extends: mid\nprefill:\n  port: 9100\n", name="top")
    pos = loaded.doc.positions
    assert str(pos[("cluster", "accelerator")]) == "profiles/hardware/gpu.yaml:2:16"
    assert str(pos[("prefill", "port")]) == "recipes/top.yaml:3:9"
    assert str(pos[("prefill", "nodes")]).startswith("recipes/base.yaml:")
    assert str(loaded.doc.key_positions[("decode", "port")]).startswith("recipes/base.yaml:")


def test_a_base_that_does_not_load_fails_at_its_own_position(repo):
    (repo / "profiles" / "bad.yaml").write_text("cluster:\n  a: 1\n  a: 2\n")
    with pytest.raises(Exception) as info:
        load(repo, "extends: [base, profiles/bad]\n")
    assert str(info.value).startswith("profiles/bad.yaml:3:3: duplicate key 'a'")


def test_anchors_stay_refused_in_profiles(repo):
    (repo / "profiles" / "bad.yaml").write_text("cluster: &c {accelerator: X}\nslurm: *c\n")
    with pytest.raises(Exception, match="aliases"):
        load(repo, "extends: [base, profiles/bad]\n")


def test_recipe_base_by_name_and_missing_names_list_known(repo):
    got = errors(repo, "extends: nope\n")
    assert got == ["recipes/r.yaml:1:10: RC940 base 'nope' does not exist (recipes/nope.yaml) (known: base, r)"]


def test_digest_is_of_the_resolved_recipe_not_its_files(repo):
    """recipe_sha256 (bundle.json, script headers) says what a recipe means: one recipe split into
    profiles or written flat, commented or not, has one digest; any value changed, another."""
    split = load(repo, "extends: base\n", name="split").sha256
    flat = BASE.replace("extends: ./hardware\n", "").replace("  env:\n", "  args:\n    max-num-seqs: 256\n  env:\n    A: 1\n    B: 2\n")
    flat = flat.replace("image:", "cluster:\n  accelerator: MI355X\n  gpus-per-node: 8\n  dram-gb-per-node: 3072\nimage:")
    assert load(repo, "# a comment\n" + flat, name="flat").sha256 == split
    assert load(repo, flat.replace("port: 8200", "port: 8201"), name="flat").sha256 != split
    assert len(split) == 64
