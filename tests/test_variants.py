"""Variants: one file, a list or matrix of overrides; each with a derived name and config key, built
and linted by name, each value reporting the variant file's line."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from conftest import ROOT, run_recipec

SWEEP = """\
extends: kimik2.5
name: kimik2.5-sweep
config-key: kimik2.5-fp4-mi355x-sweep
variants:
  - name: l1-600
    set:
      lmcache.l1-size-gb: 600
  - matrix:
      decode.tensor-parallel-size: [4, 8]
      engine.args.max-num-seqs: [128, 256]
    name: d-tp{decode.tensor-parallel-size}-seqs{engine.args.max-num-seqs}
"""


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.recipec]\n")
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    (tmp_path / "recipes").mkdir()
    shutil.copy(ROOT / "recipes" / "kimik2.5.yaml", tmp_path / "recipes")
    (tmp_path / "recipes" / "kimik2.5-sweep.yaml").write_text(SWEEP)
    return tmp_path


def test_build_a_variant_by_name(repo):
    # slurm: kimik2.5's TP8 prefill and a TP4 decode do not fit one 8-GPU machine (RC967 refuses local)
    proc = run_recipec("build", "kimik2.5-sweep-d-tp4-seqs128", "--target", "slurm", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    bundle = json.loads((repo / "build" / "kimik2.5-sweep-d-tp4-seqs128" / "slurm" / "bundle.json").read_text())
    assert bundle["config_key"] == "kimik2.5-fp4-mi355x-sweep-d-tp4-seqs128"
    decode = next(s for s in bundle["services"] if s["name"] == "decode-0")
    argv = decode["argv"]
    assert argv[argv.index("--tensor-parallel-size") + 1] == "4"
    assert argv[argv.index("--max-num-seqs") + 1] == "128"
    assert bundle["recipe_path"] == "recipes/kimik2.5-sweep.yaml"


def test_lint_checks_every_variant_and_reports_the_variant_line(repo):
    (repo / "recipes" / "kimik2.5-sweep.yaml").write_text(SWEEP.replace("[4, 8]", "[4, 16]"))
    proc = run_recipec("lint", "--only", "recipes", cwd=repo)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    # TP16 > 8 GPUs: two variants (seqs128, seqs256), each at the matrix value that set it
    assert lines == ["recipes/kimik2.5-sweep.yaml:9:40: RC401 decode: 1 worker(s) x TP16 = 16 GPUs per node, "
                     "but a node has 8 (lower workers-per-node or the parallel sizes, or raise "
                     "cluster.gpus-per-node)"] * 2, proc.stdout


def test_show_origins_of_a_variant(repo):
    out = run_recipec("show", "--origins", "kimik2.5-sweep-l1-600", cwd=repo, check=True).stdout
    assert re.search(r"^  l1-size-gb: 600 +# recipes/kimik2\.5-sweep\.yaml:7:27$", out, re.M), out
    assert re.search(r"^name: kimik2\.5-sweep-l1-600 +# recipes/kimik2\.5-sweep\.yaml:5:11$", out, re.M), out


def test_diff_a_recipe_and_its_variant(repo):
    proc = run_recipec("diff", "kimik2.5-sweep", "kimik2.5-sweep-l1-600", cwd=repo)
    assert proc.returncode == 1
    line = (ROOT / "recipes" / "kimik2.5.yaml").read_text().splitlines().index("  l1-size-gb: 1200") + 1
    assert proc.stdout.splitlines() == [
        "- config-key: kimik2.5-fp4-mi355x-sweep  # recipes/kimik2.5-sweep.yaml:3:13",
        "+ config-key: kimik2.5-fp4-mi355x-sweep-l1-600  # recipes/kimik2.5-sweep.yaml:5:11",
        f"- lmcache.l1-size-gb: 1200  # recipes/kimik2.5.yaml:{line}:15",
        "+ lmcache.l1-size-gb: 600  # recipes/kimik2.5-sweep.yaml:7:27",
        "- name: kimik2.5-sweep  # recipes/kimik2.5-sweep.yaml:2:7",
        "+ name: kimik2.5-sweep-l1-600  # recipes/kimik2.5-sweep.yaml:5:11",
    ]


def test_config_key_shared_across_files_is_RC947(repo):
    (repo / "recipes" / "other.yaml").write_text(
        "extends: kimik2.5\nname: other\nconfig-key: kimik2.5-fp4-mi355x-sweep-l1-600\n")
    proc = run_recipec("lint", "--only", "recipes", cwd=repo)
    assert proc.returncode == 1
    assert proc.stdout.startswith("recipes/other.yaml:3:13: RC947 config key 'kimik2.5-fp4-mi355x-sweep-l1-600' of "
                                  "other is also the config key of kimik2.5-sweep-l1-600 "
                                  "(recipes/kimik2.5-sweep.yaml:5:11)"), proc.stdout


def test_unknown_variant_name_is_a_usage_error(repo):
    proc = run_recipec("build", "kimik2.5-sweep-d-tp2-seqs128", cwd=repo)
    assert proc.returncode == 2 and "no recipe named 'kimik2.5-sweep-d-tp2-seqs128'" in proc.stderr


def test_changelog_may_name_a_variants_config_key(repo):
    (repo / "perf-changelog.yaml").write_text(
        "- config-keys:\n    - kimik2.5-fp4-mi355x-sweep-d-tp8-seqs256\n  description:\n    - x\n"
        "  pr-link: https://github.com/acme/r/pull/1\n")
    proc = run_recipec("lint", "--repo", "acme/r", cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_variants_do_not_leak_into_each_other_or_the_recipe(repo, monkeypatch):
    """Variants share the recipe's data where they do not override it (copy on write)."""
    from recipec.pipeline import load_all, load_source

    monkeypatch.chdir(repo)
    source = load_source(repo / "recipes" / "kimik2.5-sweep.yaml", "recipes/kimik2.5-sweep.yaml")
    loaded = load_all(source)
    assert [x.recipe.name for x in loaded] == ["kimik2.5-sweep", "kimik2.5-sweep-l1-600", *(
        f"kimik2.5-sweep-d-tp{tp}-seqs{s}" for tp in (4, 8) for s in (128, 256))]
    base, small, tp4 = loaded[0].recipe, loaded[1].recipe, loaded[2].recipe
    assert (base.lmcache.l1_size_gb, small.lmcache.l1_size_gb, tp4.lmcache.l1_size_gb) == (1200, 600, 1200)
    assert (base.decode.tensor_parallel_size, tp4.decode.tensor_parallel_size) == (8, 4)
    assert (dict(base.engine.args)["max-num-seqs"], dict(tp4.engine.args)["max-num-seqs"]) == (256, 128)
    assert source.doc.data["lmcache"]["l1-size-gb"] == 1200
    assert len({x.sha256 for x in loaded}) == len(loaded)
