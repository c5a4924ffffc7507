"""Part of plan: a recipe's benchmark section -> the Benchmark of the Plan (bench.sh runs it).

Takes the Recipe, the router's node and the engines' base URLs; gives every point's whole argv of
the benchmark client (`vllm bench serve`), the file each point's result goes to (named by recipe,
point and parameters), the readiness completion's JSON body and the /metrics URLs that show
whether a request went through prefill and decode. Which flags recipec writes itself (and which
recipe key each comes from, for lint) is here too: OWNED_BENCH_FLAGS.
"""

from __future__ import annotations

import json

from .containers import runtime_name
from .engine_args import flag_name, fmt, sourced_flags
from .plan_types import Benchmark, BenchPoint, Tunable
from .validate import Recipe
from .words import Ref, Word, joined

BENCH_PACKAGE = "vllm-bench-serve"  # the catalog the client's argv is read against
# Percentiles every point reports unless benchmark.args says otherwise: the summary's columns.
PERCENTILE_METRICS = "ttft,tpot,itl,e2el"
METRIC_PERCENTILES = "50,90,99"

# Client flags recipec writes from the benchmark section: the key each comes from (where lint
# reports), and why benchmark.args may not set it (RC922).
OWNED_BENCH_FLAGS = {
    "--backend": (("benchmark", "backend"), "set from benchmark.backend"),
    "--base-url": (("benchmark",), "the router's URL, known to the plan"),
    "--model": (("model", "path"), "set from model.path"),
    "--served-model-name": (("model", "served-name"), "set from model.served-name"),
    "--dataset-name": (("benchmark", "dataset"), "set from benchmark.dataset"),
    "--dataset-path": (("benchmark", "dataset", "file", "path"), "set from benchmark.dataset.file.path"),
    "--random-input-len": (("benchmark", "dataset", "random", "input-len"), "set from benchmark.dataset.random"),
    "--random-output-len": (("benchmark", "dataset", "random", "output-len"), "set from benchmark.dataset.random"),
    "--random-range-ratio": (("benchmark", "dataset", "random", "range-ratio"),
                             "set from benchmark.dataset.random"),
    "--num-prompts": (("benchmark", "prompts"), "set per point from benchmark.prompts"),
    "--max-concurrency": (("benchmark", "concurrency"), "set per point from benchmark.concurrency"),
    "--request-rate": (("benchmark", "request-rate"), "set from benchmark.request-rate"),
    "--num-warmups": (("benchmark", "warmups"), "set from benchmark.warmups"),
    "--ignore-eos": (("benchmark", "ignore-eos"), "set from benchmark.ignore-eos"),
    "--save-result": (("benchmark",), "every point saves its result"),
    "--result-dir": (("benchmark", "result-dir"), "this run's result directory, chosen at run time"),
    "--result-filename": (("benchmark",), "named by recipe, point and parameters"),
    "--label": (("benchmark",), "names the point in its result"),
    "--metadata": (("benchmark",), "records recipe, point and concurrency in the result"),
}

_OWNED_SOURCES = {flag: where for flag, (where, _) in OWNED_BENCH_FLAGS.items()}
_SORTED_JSON = json.JSONEncoder(sort_keys=True)  # json.dumps with an option makes one a call


def point_name(concurrency: int) -> str:
    return f"c{concurrency}"


def prompts_of(recipe: Recipe, concurrency: int) -> int:
    p = recipe.benchmark.prompts
    return p.count if p.count is not None else p.per_concurrency * concurrency


def result_file(recipe: Recipe, concurrency: int) -> str:
    """`<recipe>-c<C>-n<N>-<dataset>[-rr<rate>].json`: what a reader needs to tell points apart."""
    b = recipe.benchmark
    ds = b.dataset
    data = f"in{ds.random.input_len}-out{ds.random.output_len}" if ds.random else ds.file.format
    rate = "" if b.request_rate == "inf" else f"-rr{fmt(b.request_rate)}"
    return f"{recipe.name}-{point_name(concurrency)}-n{prompts_of(recipe, concurrency)}-{data}{rate}.json"


def _point_argvs(recipe: Recipe, router_url: Word, sources: dict) -> list[tuple]:
    """Every point's argv, in sweep order; sources: the recipe key each flag comes from. The
    points differ only in the prompts, the concurrency and the words naming the point."""
    b = recipe.benchmark
    head: list[Word] = [*b.command, "--backend", b.backend, "--base-url", router_url, "--model", recipe.model.path]
    if recipe.model.served_name:
        head += ["--served-model-name", recipe.model.served_name]
    if b.dataset.random:
        r = b.dataset.random
        head += ["--dataset-name", "random", "--random-input-len", str(r.input_len),
                 "--random-output-len", str(r.output_len)]
        if r.range_ratio:
            head += ["--random-range-ratio", fmt(r.range_ratio)]
    else:
        head += ["--dataset-name", b.dataset.file.format, "--dataset-path", b.dataset.file.path]
    rate: list[Word] = ["--request-rate", fmt(b.request_rate), "--num-warmups", str(b.warmups)]
    if b.ignore_eos:
        rate.append("--ignore-eos")
    given = {flag_name(k) for k in b.args}
    if "--percentile-metrics" not in given:
        rate += ["--percentile-metrics", PERCENTILE_METRICS]
        sources["--percentile-metrics"] = ("benchmark",)
    if "--metric-percentiles" not in given:
        rate += ["--metric-percentiles", METRIC_PERCENTILES]
        sources["--metric-percentiles"] = ("benchmark",)
    rate += ["--save-result", "--result-dir", Ref("RESULT_DIR")]
    sources.update(_OWNED_SOURCES)
    tail = sourced_flags(b.args, ("benchmark", "args"), sources)
    out = []
    for c in b.concurrency:
        name = point_name(c)
        out.append((*head, "--num-prompts", str(prompts_of(recipe, c)), "--max-concurrency", str(c), *rate,
                    "--result-filename", result_file(recipe, c), "--label", f"{recipe.name}-{name}",
                    "--metadata", f"recipe={recipe.name}", f"point={name}", f"concurrency={c}", *tail))
    return out


def _metrics_url(base: Word) -> Word:
    return joined(base, "/metrics")


def plan_benchmark(recipe: Recipe, router_url: Word, node: int, prefill_bases: list, decode_bases: list
                   ) -> Benchmark | None:
    b = recipe.benchmark
    if b is None:
        return None
    sources: dict = {}
    env = tuple((k, fmt(v)) for k, v in b.env.items())
    points = tuple(BenchPoint(point_name(c), c, prompts_of(recipe, c), result_file(recipe, c), argv, launch_env=env)
                   for c, argv in zip(b.concurrency, _point_argvs(recipe, router_url, sources)))
    body = _SORTED_JSON.encode({"model": recipe.model.served_name or recipe.model.path, "prompt": b.answers.prompt,
                                "max_tokens": b.answers.max_tokens, "temperature": 0})
    check = b.answers.check_pd
    return Benchmark(
        node=node, points=points, env=env,
        sources=tuple(sources.items()), command_words=len(b.command), answer_body=body,
        prefill_metrics=tuple(_metrics_url(u) for u in prefill_bases) if check else (),
        decode_metrics=tuple(_metrics_url(u) for u in decode_bases) if check else ())


def bench_tunables(recipe: Recipe) -> tuple:
    """The benchmark's run-time knobs, each with the recipe's value as default."""
    b = recipe.benchmark
    if b is None:
        return ()
    v = b.validity
    return (
        Tunable("RESULT_ROOT", (Ref("LOG_ROOT"), "/" + b.result_dir),
                "where each run's result directory goes (a new one every run, never overwritten)"),
        Tunable("ANSWER_TIMEOUT_S", str(b.answers.timeout_s),
                "seconds the router may take to answer the first completion"),
        Tunable("BENCH_COOLDOWN_S", str(b.cooldown_s), "seconds between two points"),
        Tunable("BENCH_MIN_OUTPUT_TOKENS", str(v.min_output_tokens), "a point with fewer output tokens fails"),
        Tunable("BENCH_MIN_COMPLETED_RATIO", fmt(v.min_completed_ratio),
                "a point that completes fewer of its prompts than this fraction fails"),
        Tunable("BENCH_MAX_FAILED", str(v.max_failed), "a point with more failed requests fails"),
        Tunable("BENCH_PYTHON", b.python, "the interpreter that reads the client's result JSON")
        if runtime_name(recipe, "client") == "none" else
        Tunable("BENCH_PYTHON", "", f"a host interpreter to read the client's result JSON with (empty: "
                f"{b.python} in the benchmark's image)"),
    )
