#!/usr/bin/env python3
"""What a sweep in one launch saves on the real tiny-cpu stack (issue 15; docs/benchmark.md).

Runs the 3-point sweep of tests/engines/test_bench_sweep.py (concurrency 1, 2, 4) once as ONE launch,
then as three launches of one point each, and prints for each run: the launcher's wall time, the boot
(start -> all healthy) and all healthy -> "answers" (the router's first completion, counted on
prefill and decode). Needs an engines venv:

    RECIPEC_ENGINES_VENV=/path/.venv-engines python bench/sweep.py [--model DIR]

~8 minutes on 2 busy cores (four boots of a vLLM-CPU pair).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "engines")]

from harness import run_bundle  # noqa: E402
from test_bench_sweep import CONCURRENCY, answers_seconds, build  # noqa: E402
from test_real_stack import ENV, RUN_TIMEOUT_S  # noqa: E402


def one(folder: Path, model: Path, venv: Path, concurrency, attempts: int = 2) -> dict:
    """One launch; a run that fails is tried again once on new ports (this machine is shared: a port
    picked free can be taken by another process during the minutes vLLM-CPU takes to boot)."""
    for attempt in range(attempts):
        bundle = build(folder / f"try{attempt}", model, concurrency)
        run = run_bundle(bundle, None, env=ENV, timeout=RUN_TIMEOUT_S, path_prefix=[venv / "bin"])
        if run.returncode == 0:
            break
        print(f"run {concurrency} failed ({run.returncode}):\n{run.stderr[-1500:]}", file=sys.stderr, flush=True)
    else:
        raise SystemExit(f"run {concurrency} failed {attempts} times")
    healthy = run.line_time(r"stack ready: router at")
    out = {"points": list(concurrency), "total_s": run.seconds, "boot_s": healthy - run.started_at,
           "answers_s": answers_seconds(run), "sweep_s": run.ended_at - run.line_time(r"point c\d+: starting")}
    print(json.dumps(out), flush=True)
    return out


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--model", type=Path, default=None, help="a tiny model dir (default: made in a temp dir)")
    args = cli.parse_args()
    venv = Path(os.environ["RECIPEC_ENGINES_VENV"])
    with tempfile.TemporaryDirectory(prefix="recipec-sweep-") as tmp:
        work = Path(tmp)
        model = args.model
        if model is None:
            model = work / "tiny-llama"
            subprocess.run([str(venv / "bin" / "python"), str(ROOT / "tools" / "make_tiny_model.py"), str(model)],
                           check=True, capture_output=True)
        together = one(work / "together", model, venv, CONCURRENCY)
        apart = [one(work / f"apart-{c}", model, venv, (c,)) for c in CONCURRENCY]
    print(f"{'run':<28} {'total s':>8} {'boot s':>8} {'answers s':>10}")
    print(f"{'one launch, points ' + ','.join(map(str, CONCURRENCY)):<28} {together['total_s']:8.1f} "
          f"{together['boot_s']:8.1f} {together['answers_s']:10.2f}")
    for r in apart:
        print(f"{'one launch, point ' + str(r['points'][0]):<28} {r['total_s']:8.1f} {r['boot_s']:8.1f} "
              f"{r['answers_s']:10.2f}")
    total_apart = sum(r["total_s"] for r in apart)
    print(f"three launches together: {total_apart:.1f} s; one launch: {together['total_s']:.1f} s; "
          f"saved {total_apart - together['total_s']:.1f} s "
          f"({(total_apart - together['total_s']) / total_apart:.0%}), i.e. {len(apart) - 1} boots of "
          f"~{sum(r['boot_s'] for r in apart) / len(apart):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
