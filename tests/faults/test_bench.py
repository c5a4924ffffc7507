"""The benchmark step of kimik2.5-tp4's local bundle (kimik2.5 on one machine; its sweep inherited)
against stand-ins (issue 15): readiness that means "answers", the sweep, the validity gate per point, the results and their summary.

Each fault is played by the stand-ins (tests/standins/standin.py): a router that answers /health but
fails every completion, a router that skips prefill (PD silently decode-only), an engine that answers
with empty text, and benchmark points that write 0 output tokens, count a failed request, or crash.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from harness import build_local, log_root, make_standin_bin, run_bundle, run_logs, run_recipec

pytestmark = pytest.mark.faults

POINTS = ("c8", "c16", "c32")
FILES = {"c8": "kimik2.5-tp4-c8-n80-in8192-out1024.json", "c16": "kimik2.5-tp4-c16-n160-in8192-out1024.json",
         "c32": "kimik2.5-tp4-c32-n320-in8192-out1024.json"}
QUICK = {"BENCH_COOLDOWN_S": "0", "ANSWER_TIMEOUT_S": "3"}


def play(tmp_path: Path, env=None, sets=(), mode=None, run_id=None):
    """Build kimik2.5 (with its benchmark) on free ports, run it with the stand-ins; mode: {port key:
    stand-in mode}. Returns the run, the bundle and the results directories of the runs so far."""
    bundle = tmp_path / "bundle"
    ports = build_local(bundle, *sets, benchmark=True)
    full = {**QUICK, **(env or {})}
    for key, value in (mode or {}).items():
        full[f"STANDIN_{ports[key]}"] = value
    if run_id:
        full["RUN_ID"] = run_id
    bin_dir = tmp_path / "bin"
    if not bin_dir.exists():
        make_standin_bin(bin_dir)
    run = run_bundle(bundle, bin_dir, env=full, timeout=60)
    assert not run.leftovers, run.stderr
    results = log_root(bundle) / "results"
    return run, bundle, sorted(results.iterdir()) if results.exists() else []


def ran_points(bundle: Path) -> list[str]:
    return sorted(p.stem.removeprefix("bench-") for p in run_logs(bundle).glob("bench-*.log"))


def test_a_sweep_runs_every_point_against_one_stack_and_summarises(tmp_path):
    run, bundle, dirs = play(tmp_path)
    assert run.returncode == 0, run.stderr
    # One boot: every service started once, then the answers check, then the three points in order.
    assert len(re.findall(r"started router \(pid", run.stderr)) == 1
    answered = run.line_time(r"prefill and decode both served it")
    assert answered < run.line_time(r"point c8: starting") < run.line_time(r"point c16: starting") \
        < run.line_time(r"point c32: starting")
    assert len(dirs) == 1 and dirs[0].name == run_logs(bundle).name
    for point, name in FILES.items():
        result = json.loads((dirs[0] / name).read_text())
        assert result["point"] == point and result["recipe"] == "kimik2.5-tp4"
        assert result["max_concurrency"] == int(point[1:]) and result["num_prompts"] == 10 * int(point[1:])
    with open(dirs[0] / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["point"] for r in rows] == list(POINTS)
    assert [float(r["output_throughput"]) for r in rows] == [800.0, 1600.0, 3200.0]
    assert [float(r["p99_ttft_ms"]) for r in rows] == [160.0, 320.0, 640.0]
    assert {"median_tpot_ms", "p90_itl_ms"} <= set(rows[0])
    table = (dirs[0] / "summary.md").read_text().splitlines()
    assert table[0].startswith("| point | concurrency |") and len(table) == 2 + len(POINTS)
    assert table[2].startswith("| c8 | 8 | 80 | 80 | 0 |")
    # recipec report draws what the sweep wrote.
    pytest.importorskip("matplotlib")
    proc = run_recipec("report", str(dirs[0]), "-o", str(tmp_path / "charts"))
    assert proc.returncode == 0, proc.stderr
    drawn = json.loads((tmp_path / "charts" / "report.json").read_text())["series"][0]["points"]
    assert [(p["point"], p["output_throughput"]) for p in drawn] == [("c8", 800.0), ("c16", 1600.0), ("c32", 3200.0)]
    assert (tmp_path / "charts" / "throughput.png").read_bytes()[:4] == b"\x89PNG"


def test_a_result_directory_of_another_run_is_never_written_into(tmp_path):
    first, _, dirs = play(tmp_path, run_id="same-run")
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in dirs[0].iterdir()}
    # A new log directory for the second run (LOG_DIR), the same run name: its results go elsewhere.
    second, bundle, dirs = play(tmp_path, run_id="same-run",
                                env={"LOG_DIR": str(tmp_path / "other-logs" / "same-run")})
    assert second.returncode == 0, second.stderr
    assert [d.name for d in dirs] == ["same-run", "same-run-2"]
    assert {p.name: p.read_bytes() for p in dirs[0].iterdir()} == before
    assert sorted(p.name for p in dirs[1].iterdir()) == sorted([*FILES.values(), "summary.csv", "summary.md"])


def test_a_router_that_is_healthy_but_fails_completions_stops_the_run_before_any_point(tmp_path):
    run, bundle, dirs = play(tmp_path, mode={"router.port": "completions_fail"})
    assert run.returncode == 1, run.stderr
    assert re.search(r"ERROR: the stack is healthy but does not answer: no completion from the router "
                     r"within 3s \(last: HTTP 500: .*no worker could serve", run.stderr), run.stderr
    assert ran_points(bundle) == []
    assert [list(d.iterdir()) for d in dirs] == [[]]  # nothing measured, nothing written


def test_a_prefill_that_never_sees_the_request_is_pd_fallen_back_to_decode_only(tmp_path):
    run, bundle, _ = play(tmp_path, mode={"router.port": "decode_only"})
    assert run.returncode == 1, run.stderr
    assert "the router answered" in run.stderr  # /health and the answer were fine: only PD was not
    assert re.search(r"ERROR: prefill never saw the request: PD fell back to decode-only "
                     r"\(vllm:request_success_total on prefill stayed at 0, decode 0 -> 1\)", run.stderr), run.stderr
    assert ran_points(bundle) == []


def test_an_empty_answer_is_not_an_answer(tmp_path):
    run, bundle, _ = play(tmp_path, mode={"decode.port": "empty_answer"})
    assert run.returncode == 1, run.stderr
    assert "does not answer" in run.stderr and "(last: an empty answer)" in run.stderr, run.stderr
    assert ran_points(bundle) == []


def test_answers_check_off_runs_no_pd_check(tmp_path):
    run, _, _ = play(tmp_path, mode={"router.port": "decode_only"}, sets=("benchmark.answers.check-pd=false",))
    assert run.returncode == 0, run.stderr
    assert "the router answered" in run.stderr and "served it" not in run.stderr


def test_zero_output_tokens_fail_the_point_and_keep_the_earlier_results(tmp_path):
    run, bundle, dirs = play(tmp_path, env={"STANDIN_BENCH": "zero_output:16"})
    assert run.returncode == 1, run.stderr
    assert re.search(r"ERROR: point c16 failed: invalid result: 0 output tokens \(at least 1 needed\)", run.stderr)
    assert ran_points(bundle) == ["c16", "c8"]  # c32 never ran
    kept = sorted(p.name for p in dirs[0].iterdir())
    assert kept == sorted([FILES["c8"], FILES["c16"], "summary.csv", "summary.md"])
    with open(dirs[0] / "summary.csv", newline="") as fh:
        assert [r["point"] for r in csv.DictReader(fh)] == ["c8"]  # only the valid points
    assert "results of 1 earlier point(s) are kept" in run.stderr


def test_a_point_whose_client_crashes_mid_sweep_names_the_point(tmp_path):
    run, bundle, dirs = play(tmp_path, env={"STANDIN_BENCH": "exit:32:6"})
    assert run.returncode == 1, run.stderr
    assert "ERROR: point c32 failed: the benchmark client exited with status 6" in run.stderr
    assert "client: crashing at concurrency 32 (simulated)" in run.stderr  # its log tail
    assert {FILES["c8"], FILES["c16"]} <= {p.name for p in dirs[0].iterdir()}
    assert "results of 2 earlier point(s) are kept" in run.stderr


def test_a_client_that_writes_no_result_fails_its_point(tmp_path):
    run, _, _ = play(tmp_path, env={"STANDIN_BENCH": "no_result:8"})
    assert run.returncode == 1
    assert re.search(r"point c8 failed: the benchmark client wrote no result .*/kimik2\.5-tp4-c8-n80", run.stderr)


def test_failed_requests_fail_a_point_unless_the_recipe_allows_them(tmp_path):
    run, _, _ = play(tmp_path, env={"STANDIN_BENCH": "failed:8"})
    assert run.returncode == 1
    assert "point c8 failed: invalid result: 79 of 80 requests completed (at least 1 of them needed); " \
           "1 requests failed (at most 0 allowed)" in run.stderr, run.stderr
    allowed = ("benchmark.validity.max-failed=1", "benchmark.validity.min-completed-ratio=0.95")
    run, _, _ = play(tmp_path, env={"STANDIN_BENCH": "failed:8"}, sets=allowed)
    assert run.returncode == 0, run.stderr
    assert "point c8: valid: 79/80 completed" in run.stderr


def test_client_cmd_replaces_the_benchmark(tmp_path):
    run, bundle, dirs = play(tmp_path, env={"CLIENT_CMD": 'echo "got $ROUTER_URL"; exit 3'})
    assert run.returncode == 3
    assert "instead of the recipe's benchmark" in run.stderr and ran_points(bundle) == [] and dirs == []


def test_hostile_benchmark_values_reach_the_client_literally_and_run_nothing(tmp_path):
    marker = tmp_path / "pwned"
    value = f"$(touch {marker}-dollar) `touch {marker}-tick`; touch {marker}-semi 'q' \"d\" * ~ %s"
    record = tmp_path / "record"
    record.mkdir()
    sets = (f"benchmark.env.HOSTILE={json.dumps(value)}", f"benchmark.args={{tokenizer: {json.dumps(value)}}}",
            f"benchmark.answers.prompt={json.dumps(value)}", "benchmark.concurrency=[2]")
    run, _, dirs = play(tmp_path, env={"STANDIN_RECORD": str(record)}, sets=sets)
    assert run.returncode == 0, run.stderr
    calls = [json.loads(p.read_text()) for p in record.glob("vllm-*.json")]
    bench = [c for c in calls if c["argv"][:2] == ["bench", "serve"]]
    assert len(bench) == 1
    assert bench[0]["argv"][bench[0]["argv"].index("--tokenizer") + 1] == value
    assert bench[0]["env"]["HOSTILE"] == value
    assert not list(tmp_path.glob("pwned*"))
    assert json.loads((dirs[0] / "kimik2.5-tp4-c2-n20-in8192-out1024.json").read_text())["point"] == "c2"
