"""recipec list, verify and graph: each against a case where it must say no."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, run_recipec


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.recipec]\n")
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    (tmp_path / "recipes").mkdir()
    shutil.copy(ROOT / "recipes" / "tiny-cpu.yaml", tmp_path / "recipes")
    (tmp_path / "recipes" / "tiny-sweep.yaml").write_text(
        "extends: tiny-cpu\nname: tiny-sweep\nconfig-key: tiny-sweep\nvariants:\n"
        "  - matrix:\n      decode.port: [18201, 18202]\n    name: d{decode.port}\n")
    return tmp_path


def test_list_shows_recipes_and_variants_with_config_keys(repo):
    proc = run_recipec("list", cwd=repo / "recipes")
    assert proc.returncode == 0, proc.stderr
    assert [line.split() for line in proc.stdout.splitlines()] == [
        ["tiny-cpu", "tiny-llama-bf16-cpu-vllm-disagg-e2e", "recipes/tiny-cpu.yaml"],
        ["tiny-sweep", "tiny-sweep", "recipes/tiny-sweep.yaml"],
        ["tiny-sweep-d18201", "tiny-sweep-d18201", "recipes/tiny-sweep.yaml"],
        ["tiny-sweep-d18202", "tiny-sweep-d18202", "recipes/tiny-sweep.yaml"],
    ]


def test_list_names_a_file_that_does_not_resolve(repo):
    (repo / "recipes" / "broken.yaml").write_text("extends: nope\n")
    proc = run_recipec("list", cwd=repo)
    assert proc.returncode == 1
    assert proc.stderr.startswith("recipes/broken.yaml:1:10: RC940 base 'nope' does not exist")
    assert "tiny-sweep-d18202" in proc.stdout


def build(repo, name="tiny-cpu", *extra):
    proc = run_recipec("build", name, *extra, cwd=repo)
    assert proc.returncode == 0, proc.stderr
    return repo / "build" / name / "local"


def verify(bundle, cwd=None):
    return run_recipec("verify", str(bundle), cwd=cwd or bundle)


def test_verify_a_fresh_bundle_and_the_golden_ones(repo):
    proc = verify(build(repo, "tiny-sweep-d18202", "--set", "health.probe-interval-s=3"))
    assert proc.returncode == 0 and proc.stdout.endswith(": up to date\n"), proc.stdout + proc.stderr
    for bundle in sorted(p for p in (ROOT / "golden").glob("*/*") if p.is_dir()):  # not a refusal's .error
        assert run_recipec("verify", str(bundle)).returncode == 0, bundle


def test_verify_finds_a_file_edited_by_hand_added_or_missing(repo):
    bundle = build(repo)
    with open(bundle / "launch.sh", "a") as f:
        f.write("echo patched\n")
    (bundle / "notes.txt").write_text("x")
    (bundle / "README.md").unlink()
    proc = verify(bundle)
    assert proc.returncode == 1
    assert sorted(line.split("/")[-1] for line in proc.stdout.splitlines()) == [
        "README.md: missing",
        "launch.sh: edited by hand (its sha256 is not the one bundle.json records)",
        "notes.txt: not a file of the bundle (added by hand)"], proc.stdout


def test_verify_finds_a_changed_recipe_or_profile(repo):
    bundle = build(repo)
    profile = repo / "profiles" / "cluster" / "ci-machine.yaml"
    profile.write_text(profile.read_text().replace("probe-interval-s: 2", "probe-interval-s: 3"))
    proc = verify(bundle)
    assert proc.returncode == 1 and "recipe changed: recipes/tiny-cpu.yaml (or a file it extends)" in proc.stdout
    # A comment is not a change of meaning: the bundle is still current
    profile.write_text(profile.read_text().replace("probe-interval-s: 3", "probe-interval-s: 2") + "# note\n")
    assert verify(bundle).returncode == 0


def test_verify_finds_another_recipec_and_a_changed_output(repo):
    bundle = build(repo)
    manifest = json.loads((bundle / "bundle.json").read_text())
    old = dict(manifest, recipec_version="0.0.1")
    (bundle / "bundle.json").write_text(json.dumps(old))
    proc = verify(bundle)
    assert proc.returncode == 1 and "recipec changed: the bundle was built by recipec 0.0.1" in proc.stdout
    # Same version, file and digest edited together: the rebuild still tells
    text = (bundle / "lib.sh").read_text() + "# extra\n"
    (bundle / "lib.sh").write_text(text)
    import hashlib
    manifest["files"]["lib.sh"] = hashlib.sha256(text.encode()).hexdigest()
    (bundle / "bundle.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    proc = verify(bundle)
    assert proc.returncode == 1
    assert any(line.endswith("lib.sh: not what recipec 0.1.0 builds from the recipe today")
               for line in proc.stdout.splitlines()), proc.stdout


def test_verify_refuses_a_directory_that_is_not_a_bundle(tmp_path):
    proc = run_recipec("verify", str(tmp_path))
    assert proc.returncode == 1 and "no bundle.json: not a recipec bundle" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_graph_mermaid_draws_nodes_services_ports_and_conversations():
    out = run_recipec("graph", "kimik2.5", check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  subgraph node1["decode node 0"]' in lines
    assert any("prefill-0 (prefill)<br/>8100 prefill HTTP, 8998 Mooncake bootstrap" in line for line in lines)
    assert '  benchmark(["benchmark: concurrency 8, 16, 32"])' in lines, out  # kimik2.5's sweep
    for edge in ("benchmark -->|HTTP, one point a concurrency| router", "router -->|prefill requests| prefill_0",
                 "prefill_0 -->|KV: MooncakeConnector| decode_0", "prefill_0 -->|LMCacheMPConnector| lmcache_0"):
        assert f"  {edge}" in lines, out
    tiny = run_recipec("graph", "tiny-cpu", check=True).stdout
    assert "prefill_0 -->|KV: ExampleConnector| decode_0" in tiny
    assert "  client -->|HTTP| router" in tiny.splitlines()  # tiny-cpu's client step


def test_graph_svg_through_dot(tmp_path):
    if shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("graphviz's dot is not installed: CI must draw the SVG for real (.ci/run installs it)")
        pytest.skip("graphviz's dot is not installed")
    proc = run_recipec("graph", "kimik2.5", "--format", "svg", "-o", str(tmp_path / "g.svg"))
    assert proc.returncode == 0, proc.stderr
    svg = (tmp_path / "g.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "decode&#45;0" in svg


def test_graph_svg_without_dot_says_so(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no dot here
    proc = subprocess.run([sys.executable, "-m", "recipec.cli", "graph", "kimik2.5", "--format", "svg"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("--format svg needs Graphviz's `dot` on PATH"), proc.stderr
