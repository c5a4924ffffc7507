#!/usr/bin/env python3
"""Measure, on the real cluster of tools/slurm/cluster.sh, the time from a service's death to the
end of its SLURM job (the figures in docs/slurm.md).

    tools/slurm/cluster.sh up 3
    python tools/slurm/measure.py [RUNS]      # default 5 runs for each of decode-0, prefill-0, lmcache-0

Each run builds the shrunk kimik2.5 slurm bundle of tests/slurm (PROBE_INTERVAL_S=1,
GRACE_PERIOD_S=2, stand-in engines), submits it with a client step that keeps it serving, SIGKILLs
the service's process group once the client runs, and polls scontrol every 50 ms until the job has
ended. Death and end are both seen from this machine's monotonic clock.

The baseline is SLURM's own share: a bare two-task `srun --kill-on-bad-exit=1` job whose task 1
exits 1 when told (a file appears) while task 0 waits, with a TERM trap, to be stopped; timed from
the file's creation to the job's end.
"""

from __future__ import annotations

import os
import subprocess
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "slurm")]

from slurmjob import (TERMINAL_STATES, Cluster, build_bundle, cluster_env, fields,  # noqa: E402
                      make_standin_bin, submit)

SERVICES = (("decode-0", "n2"), ("prefill-0", "n1"), ("lmcache-0", "n1"))


def one_run(cluster: Cluster, work: Path, service: str) -> tuple[float, str, str]:
    bundle, _ = build_bundle(work / "bundle")
    standins = make_standin_bin(work / "bin")
    job = submit(cluster, bundle, path_dir=standins, env={"CLIENT_CMD": "sleep 120"})
    job.wait_output(r"client is running")
    pid = job.service_pid(service)
    os.killpg(pid, signal.SIGKILL)
    died = time.monotonic()
    end = job.wait_end()
    if end.leftovers:
        raise SystemExit(f"job {job.job_id}: leftovers {end.leftovers}")
    return end.ended - died, end.state, end.exit_code


BASELINE_JOB = """#!/usr/bin/env bash
set -euo pipefail
srun --kill-on-bad-exit=1 -N 2 -n 2 --ntasks-per-node=1 bash -c '
  if [[ $SLURM_PROCID == 1 ]]; then
    until [[ -e $GO ]]; do sleep 0.02; done
    exit 1
  fi
  trap "exit 143" TERM
  sleep 300 & wait
'
"""


def baseline_run(cluster: Cluster, work: Path) -> float:
    script, go = work / "job.sh", work / "go"
    script.write_text(BASELINE_JOB)
    env = {**os.environ, **cluster.env, "GO": str(go)}
    job_id = subprocess.run(["sbatch", "--parsable", "-N", "2", f"--output={work}/out", str(script)],
                            env=env, capture_output=True, text=True, check=True).stdout.strip()
    while fields(subprocess.run(["squeue", "-h", "-j", job_id, "-o", "JobState=%T"], env=env,
                                capture_output=True, text=True).stdout).get("JobState") != "RUNNING":
        time.sleep(0.05)
    time.sleep(1)  # the step is running
    go.touch()
    told = time.monotonic()
    while True:
        info = fields(subprocess.run(["scontrol", "show", "job", "-o", job_id], env=env,
                                     capture_output=True, text=True).stdout)
        if info.get("JobState") in TERMINAL_STATES:
            return time.monotonic() - told
        time.sleep(0.05)


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    cluster = Cluster(env=cluster_env(), nodes=[])
    print(f"{'service':10} {'node':4} {'runs':>4} {'median':>7} {'min':>6} {'max':>6}  states")
    everything = []
    for service, node in SERVICES:
        times, states = [], set()
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="recipec-measure-") as work:
                seconds, state, code = one_run(cluster, Path(work), service)
            times.append(seconds)
            states.add(f"{state} {code}")
        everything += times
        print(f"{service:10} {node:4} {runs:4} {statistics.median(times):6.2f}s {min(times):5.2f}s "
              f"{max(times):5.2f}s  {', '.join(sorted(states))}")
    print(f"{'all':10} {'':4} {len(everything):4} {statistics.median(everything):6.2f}s "
          f"{min(everything):5.2f}s {max(everything):5.2f}s")
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="recipec-measure-") as work:
            times.append(baseline_run(cluster, Path(work)))
    print(f"{'baseline':10} {'':4} {runs:4} {statistics.median(times):6.2f}s {min(times):5.2f}s "
          f"{max(times):5.2f}s  (bare srun: task 1 exits 1, SLURM stops task 0, job ends)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
