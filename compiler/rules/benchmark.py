"""Benchmark rules, over the recipe's benchmark section: what the schema cannot say about a sweep.

The client's flags themselves are read against the vllm-bench-serve catalog by the flag rules
(flags.py), like every other generated argv.
"""

from __future__ import annotations

import re

from ..bench_plan import OWNED_BENCH_FLAGS, prompts_of
from ..engine_args import flag_name
from .registry import Finding, rule

_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@rule("RC920")
def benchmark_with_client(ctx):
    if ctx.recipe.benchmark is not None and ctx.recipe.client is not None:
        yield Finding(("client",), "the recipe has a benchmark and a client step; a run ends with one step's "
                      "status", at_key=True)


@rule("RC921")
def result_dir_outside(ctx):
    b = ctx.recipe.benchmark
    if b is None:
        return
    parts = b.result_dir.split("/")
    bad = [p for p in parts if not _PART.fullmatch(p) or p in (".", "..")]
    if b.result_dir.startswith("/"):
        why = "is absolute"
    elif bad:
        why = f"has the part '{bad[0]}'" if bad[0] else "has an empty part"
    else:
        return
    yield Finding(("benchmark", "result-dir"), f"benchmark.result-dir '{b.result_dir}' {why}: results go under "
                  "LOG_ROOT, in a directory of this run")


@rule("RC922")
def bench_flag_owned(ctx):
    b = ctx.recipe.benchmark
    if b is None:
        return
    for key in b.args:
        flag = flag_name(key)
        if flag in OWNED_BENCH_FLAGS:
            yield Finding(("benchmark", "args", key), f"benchmark.args sets {flag}: "
                          f"{OWNED_BENCH_FLAGS[flag][1]}", at_key=True)


@rule("RC923")
def concurrency_repeated(ctx):
    b = ctx.recipe.benchmark
    if b is None:
        return
    seen = set()
    for i, c in enumerate(b.concurrency):
        if c in seen:
            yield Finding(("benchmark", "concurrency", i), f"concurrency {c} is listed twice")
        seen.add(c)


@rule("RC924")
def prompts_below_concurrency(ctx):
    b = ctx.recipe.benchmark
    if b is None:
        return
    for i, c in enumerate(b.concurrency):
        n = prompts_of(ctx.recipe, c)
        if n < c:
            yield Finding(("benchmark", "concurrency", i), f"the point of concurrency {c} sends only {n} prompts")
