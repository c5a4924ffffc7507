#!/usr/bin/env python3
"""Benchmark: how fast generated bundles notice faults, and how little they add to start-up.

For each fault scenario of tests/faults/scenarios.py (a real `local` kimik2.5-tp4 bundle, stand-in
engines, PROBE_INTERVAL_S=1), runs it N times and prints the time from the fault to the launcher's
exit (median, min, max). Then, over N clean runs, the ready overhead: from the moment the slowest
service (the last one the launcher waits for: the router) is ready to the launcher declaring the
stack ready, and the same gap summed over every start stage (lmcache -> prefill, engines -> router,
router -> client).

    python bench/faults.py [--runs 5] [--only NAME ...] [--runtimes none podman] [--recipec-root DIR]

--runtimes: each scenario is played bare (none: the services from PATH) and with every service in a
podman container (the stand-in image, tests/podman.py), one column each; the start overhead of a
container, service by service, is measured side by side (launcher's start -> the service's ready).

--recipec-root builds the bundles with another checkout's compiler and templates (for before/after
figures). Targets: detection <= probe interval + 1 s (hangs: UNHEALTHY_AFTER probes); ready
overhead <= one probe interval.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "faults")]

import harness  # noqa: E402
import podman  # noqa: E402
import scenarios  # noqa: E402
from harness import event_time, make_standin_bin, run_bundle  # noqa: E402


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} {min(values):6.2f} {max(values):6.2f}"


def bench_faults(names: list[str], runs: int, runtimes: list[str]) -> list[tuple]:
    rows = []
    for sc in scenarios.SCENARIOS:
        if names and sc.name not in names:
            continue
        columns, ok = [], True
        for runtime in runtimes:
            times = []
            for _ in range(runs):
                with tempfile.TemporaryDirectory() as tmp:
                    try:
                        out = scenarios.play(sc, Path(tmp), runtime)
                    except (AssertionError, KeyError) as exc:  # e.g. no fault event: the scenario did not play
                        print(f"  {sc.name} ({runtime}): {str(exc).splitlines()[0]}", file=sys.stderr)
                        ok = False
                        continue
                    times.append(out.detect_s)
                    if out.run.leftovers:
                        ok = False
                    if runtime != "none":
                        left = podman.containers_named(harness.run_logs(out.setup.bundle).name)
                        podman.remove_containers(left)
                        ok = ok and not left
            columns.append(summary(times) if times else f"{'n/a':>20}")
        rows.append((sc, columns, ok))
        bound = sc.for_runtime(runtimes[-1]).bound_s
        target = f"<= {bound:.1f}" + (f", >= {sc.min_s:.1f}" if sc.min_s else "")
        print(f"{sc.name:32} {'   '.join(columns)}   target {target}{'' if ok else '  (FAILED runs)'}",
              flush=True)
    return rows


def bench_start_overhead(runs: int, runtimes: list[str]) -> None:
    """Per service: the launcher's `started NAME` line -> the service's own ready event, bare and in
    podman (side by side, alternating, so both see the same machine load)."""
    names = ("lmcache-0", "decode-0", "prefill-0", "router", "client")
    values: dict = {(r, n): [] for r in runtimes for n in names}
    for _ in range(runs):
        for runtime in runtimes:
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                bin_dir = make_standin_bin(tmp / "bin")
                bundle = tmp / "bundle"
                harness.build_local(bundle, runtime=runtime, bin_dir=bin_dir)
                run = run_bundle(bundle, bin_dir, env=scenarios.ENV)
                logs = harness.run_logs(bundle)
                for name in names:
                    started = run.line_time(rf"started {name} \(pid")
                    ready = event_time(logs / f"{name}.log", "ready" if name != "client" else "client started")
                    values[(runtime, name)].append(ready - started)
                if runtime != "none":
                    podman.remove_containers(podman.containers_named(logs.name))
    print(f"\nstart -> ready per service, seconds over {runs} runs: " + "   ".join(
        f"{r + ' median  min   max':>20}" for r in runtimes) + ("   overhead (median)" if len(runtimes) > 1 else ""))
    for name in names:
        cols = [summary(values[(r, name)]) for r in runtimes]
        extra = ""
        if len(runtimes) > 1:
            extra = f"   {statistics.median(values[(runtimes[-1], name)]) - statistics.median(values[(runtimes[0], name)]):+.2f}"
        print(f"{name:32} {'   '.join(cols)}{extra}", flush=True)


def bench_sigkill(runs: int) -> None:
    """SIGKILL of the launcher -> no process of the run left (the watchdog's work)."""
    for ignore_term, label in ((False, "launcher SIGKILL -> nothing left"),
                               (True, "  ... prefill ignoring TERM")):
        times = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                run, seconds = scenarios.launcher_sigkill(Path(tmp), ignore_term)
                times.append(seconds)
        print(f"{label:32} {summary(times)}", flush=True)


def bench_ready(runs: int) -> list[dict]:
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            bundle = tmp / "bundle"
            harness.build_local(bundle)
            run = run_bundle(bundle, make_standin_bin(tmp / "bin"), env=scenarios.ENV)
            logs = harness.run_logs(bundle)

            def ready(name):
                return event_time(logs / f"{name}.log", "ready")

            def started(name):
                return event_time(logs / f"{name}.log", "started" if name != "client" else "client started")

            stack_ready = run.line_time(r"stack ready: router at")
            stages = [started("prefill-0") - ready("lmcache-0"),
                      started("router") - max(ready("prefill-0"), ready("decode-0")),
                      started("client") - ready("router")]
            results.append({"final": stack_ready - ready("router"), "stages": sum(stages),
                            "per_stage": stages, "total": stack_ready - run.started_at})
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=[])
    ap.add_argument("--recipec-root", type=Path, default=None)
    ap.add_argument("--no-ready", action="store_true")
    ap.add_argument("--runtimes", nargs="+", default=["none", "podman"], choices=["none", "podman"])
    args = ap.parse_args()
    if args.recipec_root is not None:
        orig = harness.run_recipec
        harness.run_recipec = lambda *a, cwd=None, check=False: orig(*a, cwd=args.recipec_root, check=check)
    print(f"fault -> launcher exit, seconds over {args.runs} runs (PROBE_INTERVAL_S="
          f"{scenarios.PROBE_INTERVAL_S}, GRACE_PERIOD_S={scenarios.GRACE_PERIOD_S}, PROBE_TIMEOUT_S="
          f"{scenarios.PROBE_TIMEOUT_S}, UNHEALTHY_AFTER={scenarios.UNHEALTHY_AFTER})")
    if "podman" in args.runtimes and podman.podman_unusable():
        print(f"podman: {podman.podman_unusable()}: bare only", file=sys.stderr)
        args.runtimes = ["none"]
    print(f"{'scenario':32} " + "   ".join(f"{r + ' median  min   max':>20}" for r in args.runtimes))
    rows = bench_faults(args.only, args.runs, args.runtimes)
    if not args.only:
        bench_sigkill(args.runs)
    if len(args.runtimes) > 1 or args.runtimes != ["none"]:
        bench_start_overhead(args.runs, args.runtimes)
    if not args.no_ready:
        res = bench_ready(args.runs)
        print(f"\nready overhead, seconds over {args.runs} clean runs: {'median':>6} {'min':>6} {'max':>6}")
        print(f"{'router ready -> stack ready':42} {summary([r['final'] for r in res])}   target <= "
              f"{scenarios.PROBE_INTERVAL_S:.1f}")
        for i, label in enumerate(("lmcache ready -> prefill started", "engines ready -> router started",
                                   "router ready -> client started")):
            print(f"{label:42} {summary([r['per_stage'][i] for r in res])}")
        print(f"{'sum over the three stages':42} {summary([r['stages'] for r in res])}")
        print(f"{'launch -> stack ready (whole start-up)':42} {summary([r['total'] for r in res])}")
    return 0 if all(ok for _, _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
