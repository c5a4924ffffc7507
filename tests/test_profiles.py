"""The repository's recipes on shared profiles: the same meaning as their flat forms, the same bundles
(test_golden), and `recipec show` / `recipec diff` that say where each value comes from."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import ROOT, run_recipec
from harness import resolved_data


@pytest.mark.parametrize("name", ["kimik2.5", "kimik2.5-tp4", "tiny-cpu"])
def test_composed_recipe_means_what_its_flat_form_says(name):
    """tests/data/NAME-flat.yaml is the recipe written out in one file (tests that edit recipe text
    use it); the composed recipe must resolve to the same data."""
    flat = yaml.safe_load((ROOT / "tests" / "data" / f"{name}-flat.yaml").read_text())
    assert resolved_data(ROOT / "recipes" / f"{name}.yaml") == flat


def test_recipes_share_profiles():
    for name in ("kimik2.5", "tiny-cpu"):
        text = (ROOT / "recipes" / f"{name}.yaml").read_text()
        assert re.search(r"^extends:\n(  - profiles/(hardware|model|cluster|engine)/\S+ .*\n){3,}", text, re.M), name
    assert (ROOT / "profiles" / "hardware" / "h200.yaml").is_file()


def test_show_origins_names_the_profile_line_of_each_value():
    out = run_recipec("show", "--origins", "kimik2.5", check=True).stdout
    lines = out.splitlines()
    assert "  accelerator: MI355X" in lines[lines.index("cluster:") + 1]
    assert re.search(r"^  accelerator: MI355X +# profiles/hardware/mi355x\.yaml:4:16$", out, re.M), out
    assert re.search(r"^  path: amd/Kimi-K2\.5-MXFP4 +# profiles/model/kimi-k2\.5-mxfp4\.yaml:3:9$", out, re.M)
    assert re.search(r"^  port: 8100 +# recipes/kimik2\.5\.yaml:\d+:9$", out, re.M)
    # The annotated text is still YAML, and it is the resolved recipe
    assert yaml.safe_load(out) == resolved_data(ROOT / "recipes" / "kimik2.5.yaml")


def test_show_reports_a_set_as_the_option():
    out = run_recipec("show", "--origins", "kimik2.5", "--set", "prefill.port=9100", check=True).stdout
    assert re.search(r"^  port: 9100 +# --set prefill\.port=9100$", out, re.M), out


def test_kimi_on_h200_is_one_line_of_extends(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.recipec]\n")
    (tmp_path / "recipes").mkdir()
    import shutil

    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    shutil.copy(ROOT / "recipes" / "kimik2.5.yaml", tmp_path / "recipes")
    (tmp_path / "recipes" / "kimik2.5-h200.yaml").write_text(
        "extends: [kimik2.5, profiles/hardware/h200]\nname: kimik2.5-h200\n"
        "config-key: kimik2.5-fp4-h200-vllm-disagg-agentic\nimage: docker.io/vllm/vllm-openai:v0.33.0\n"
        "engine:\n  env:\n    VLLM_ROCM_USE_AITER: !delete\n    VLLM_ROCM_USE_AITER_RMSNORM: !delete\n"
        "    VLLM_ROCM_QUICK_REDUCE_QUANTIZATION: !delete\n    HSA_NO_SCRATCH_RECLAIM: !delete\n")
    data = resolved_data(tmp_path / "recipes" / "kimik2.5-h200.yaml")
    assert data["cluster"]["visible-devices-env"] == "CUDA_VISIBLE_DEVICES"
    assert not [k for k in data["engine"]["env"] if "ROCM" in k or k.startswith("HSA")]
    proc = run_recipec("diff", "kimik2.5", "kimik2.5-h200", cwd=tmp_path)
    assert proc.returncode == 1
    assert "- cluster.accelerator: MI355X  # profiles/hardware/mi355x.yaml:4:16" in proc.stdout.splitlines()
    assert "+ cluster.accelerator: H200  # profiles/hardware/h200.yaml:5:16" in proc.stdout.splitlines()
    assert run_recipec("lint", "--only", "recipes", cwd=tmp_path).returncode == 0


def test_diff_of_a_recipe_with_itself_is_empty_and_bundles_differ_by_a_set(tmp_path):
    same = run_recipec("diff", "kimik2.5", "kimik2.5")
    assert same.returncode == 0 and same.stdout == ""
    proc = run_recipec("diff", "--bundles", "kimik2.5", "tiny-cpu")
    assert proc.returncode == 1
    assert "+++ tiny-cpu/launch.sh" in proc.stdout and "- model.path: amd/Kimi-K2.5-MXFP4" in proc.stdout
