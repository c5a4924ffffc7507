"""bench_plan.py: every point of a sweep planned once, whole argv and result file each (issue 15)."""

from __future__ import annotations

import json

from recipec.pipeline import load_recipe
from recipec.plan import Ref, build_plan


def plan(*sets: str, target: str = "local"):
    return build_plan(load_recipe("kimik2.5", sets).recipe, target, recipe_path="x", recipe_sha256="y")


def flag(argv, name):
    return argv[argv.index(name) + 1]


def test_kimik_sweeps_its_seed_concurrencies_with_ten_prompts_each():
    b = plan().benchmark
    assert [(p.name, p.concurrency, p.prompts) for p in b.points] == [("c8", 8, 80), ("c16", 16, 160),
                                                                      ("c32", 32, 320)]
    assert [p.result_file for p in b.points] == ["kimik2.5-c8-n80-in8192-out1024.json",
                                                 "kimik2.5-c16-n160-in8192-out1024.json",
                                                 "kimik2.5-c32-n320-in8192-out1024.json"]
    for p in b.points:
        assert p.argv[:3] == ("vllm", "bench", "serve")
        assert (flag(p.argv, "--max-concurrency"), flag(p.argv, "--num-prompts")) == (str(p.concurrency),
                                                                                       str(p.prompts))
        assert flag(p.argv, "--result-dir") == Ref("RESULT_DIR") and flag(p.argv, "--result-filename") == p.result_file
        assert (flag(p.argv, "--random-input-len"), flag(p.argv, "--random-output-len")) == ("8192", "1024")
        assert "--ignore-eos" in p.argv and "--trust-remote-code" in p.argv
    assert json.loads(b.answer_body) == {"model": "amd/Kimi-K2.5-MXFP4", "prompt": "Say hello.", "max_tokens": 8,
                                         "temperature": 0}
    assert (b.prefill_metrics, b.decode_metrics) == (("http://127.0.0.1:8100/metrics",),
                                                     ("http://127.0.0.1:8200/metrics",))
    assert dict(b.sources)["--max-concurrency"] == ("benchmark", "concurrency")
    assert dict(b.sources)["--trust-remote-code"] == ("benchmark", "args", "trust-remote-code")


def test_a_count_a_file_dataset_and_a_rate_name_the_result_files():
    b = plan("benchmark.prompts={count: 7}", "benchmark.dataset={file: {path: /d/s.json}}",
             "benchmark.request-rate=2.5").benchmark
    assert [p.prompts for p in b.points] == [7, 7, 7]
    assert b.points[0].result_file == "kimik2.5-c8-n7-sharegpt-rr2.5.json"
    argv = b.points[0].argv
    assert (flag(argv, "--dataset-name"), flag(argv, "--dataset-path"), flag(argv, "--request-rate")) == (
        "sharegpt", "/d/s.json", "2.5")
    assert "--random-input-len" not in argv


def test_on_slurm_the_metrics_urls_are_the_engines_nodes_and_the_sweep_runs_with_the_router():
    p = plan(target="slurm")
    assert p.benchmark.node == next(s.node for s in p.services if s.name == "router") == 0
    assert p.benchmark.prefill_metrics == (("http://", Ref("NODE_0_ADDR"), ":8100/metrics"),)
    assert p.benchmark.decode_metrics == (("http://", Ref("NODE_1_ADDR"), ":8200/metrics"),)
    steps = [s.kind for s in p.nodes[0].steps]
    assert steps[-1] == "benchmark" and "client" not in steps
    assert [s.kind for s in p.nodes[1].steps][-1] == "serve_while_up"
    assert ("bench.sh", "bench.sh") in p.files


def test_percentiles_given_in_args_replace_the_defaults_and_check_pd_off_drops_the_metrics():
    b = plan("benchmark.args={metric-percentiles: '95'}", "benchmark.answers.check-pd=false").benchmark
    argv = b.points[0].argv
    assert argv.count("--metric-percentiles") == 1 and flag(argv, "--metric-percentiles") == "95"
    assert flag(argv, "--percentile-metrics") == "ttft,tpot,itl,e2el"
    assert b.prefill_metrics == b.decode_metrics == ()


def test_without_a_benchmark_there_is_no_bench_sh():
    p = build_plan(load_recipe("tiny-cpu").recipe, "local", recipe_path="x", recipe_sha256="y")
    assert p.benchmark is None and "bench.sh" not in dict(p.files)
