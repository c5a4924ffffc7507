#!/usr/bin/env python3
"""How `recipec lint` scales: 10/100/1000 generated recipes and a 6,000-line changelog.

Generates, in a temporary directory, 1,000 variations of recipes/kimik2.5.yaml (distinct names and
config keys, varied ports, TP and LMCache sizes) and an InferenceX-format perf-changelog.yaml of about
6,000 lines; times `recipec lint` (a fresh process each run, as CI runs it) and prints the median of
several runs, the start-up cost, and the cost per recipe above start-up. Measures; asserts nothing.

    python bench/lint_bench.py [--runs 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = (ROOT / "recipes" / "kimik2.5.yaml").read_text()
REPO = "SemiAnalysisAI/InferenceX"
WALL: list[float] = []
CPU: list[float] = []


def recipe(i: int) -> str:
    text = BASE.replace("name: kimik2.5\n", f"name: bench-{i:04d}\n", 1)
    text = text.replace("config-key: kimik2.5-fp4-mi355x-vllm-disagg-agentic",
                        f"config-key: bench-{i:04d}-fp4-mi355x-vllm-disagg", 1)
    text = text.replace("  port: 8100\n", f"  port: {8100 + i % 50}\n", 1)
    text = text.replace("  l1-size-gb: 1200\n", f"  l1-size-gb: {1000 + i % 400}\n", 1)
    if i % 3 == 1:
        text = text.replace("  workers-per-node: 1\n  tensor-parallel-size: 8\n  port: 82",
                            "  workers-per-node: 2\n  tensor-parallel-size: 4\n  port: 82", 1)
    return text.replace("job-name: kimik2.5-1p1d", f"job-name: bench-{i:04d}", 1)


def changelog(lines: int) -> str:
    """InferenceX-style entries (globs, multi-line descriptions, optional flags) up to `lines`."""
    out: list[str] = []
    n = 0
    while len(out) < lines:
        n += 1
        out += ["- config-keys:", f"    - bench-{n % 1000:04d}-fp4-mi355x-vllm-disagg"]
        if n % 4 == 0:
            out.append("    - bench-0*")
        out.append("  description:")
        out += [f'    - "Change {n}, part {k}: raise max-num-seqs and re-tune the LMCache L1 size"'
                for k in range(1 + n % 3)]
        out.append(f"  pr-link: https://github.com/{REPO}/pull/{n}")
        if n % 10 == 0:
            out += ["  scenario-type:", "    - agentic-coding"]
        if n % 25 == 0:
            out.append("  evals-only: true")
        out.append("")
    return "\n".join(out) + "\n"


def median_seconds(args: list[str], cwd: Path, runs: int) -> float:
    """Median CPU time (user + system) of the lint process: on a busy machine wall time measures the
    neighbours too. Wall time is printed beside it where it differs much."""
    times = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "compiler.cli", *args], cwd=cwd,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        times.append(cpu)
        WALL.append(wall)
        CPU.append(cpu)
        if proc.returncode != 0:
            raise SystemExit(f"recipec {' '.join(args[:3])} ... failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    opts = parser.parse_args()
    work = opts.keep or Path(tempfile.mkdtemp(prefix="recipec-bench-"))
    try:
        (work / "recipes").mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
        for i in range(1000):
            (work / "recipes" / f"bench-{i:04d}.yaml").write_text(recipe(i))
        log = changelog(6000)
        (work / "bench-changelog.yaml").write_text(log)
        empty = work / "empty"
        empty.mkdir(exist_ok=True)
        (empty / "perf-changelog.yaml").write_text("[]\n")

        base = median_seconds(["lint", "--changelog", "perf-changelog.yaml"], empty, opts.runs)
        print(f"start-up (lint of an empty changelog): {base * 1000:7.1f} ms  (median of {opts.runs})")
        rows = []
        for n in (10, 100, 1000):
            files = [f"recipes/bench-{i:04d}.yaml" for i in range(n)]
            t = median_seconds(["lint", *files, "--changelog", str(empty / "perf-changelog.yaml")], work, opts.runs)
            rows.append((n, t))
            print(f"lint {n:4d} recipes: {t * 1000:8.1f} ms   per recipe above start-up: "
                  f"{(t - base) / n * 1000:6.2f} ms")
        (n1, t1), (n2, t2) = rows[1], rows[2]
        print(f"marginal cost 100 -> 1000 recipes: {(t2 - t1) / (n2 - n1) * 1000:.2f} ms per recipe")
        t = median_seconds(["lint", "--changelog", "bench-changelog.yaml", "--repo", REPO,
                            "recipes/bench-0000.yaml"], work, opts.runs)
        lines = log.count("\n")
        print(f"lint changelog of {lines} lines ({len(log) // 1024} KiB, with one recipe): "
              f"{t * 1000:7.1f} ms, {(t - base) * 1000:.1f} ms above start-up")
        t = median_seconds(["lint"], work, opts.runs)
        print(f"lint of the whole generated repository (1000 recipes, config keys of every entry "
              f"checked): {t * 1000:.1f} ms")
        print(f"(times are CPU time of the lint process; wall time was {sum(WALL) / sum(CPU):.2f}x "
              "CPU time over all runs: above 1.0 the machine was busy)")
    finally:
        if opts.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
