"""Helpers for running generated slurm bundles through the real SLURM cluster of tools/slurm/cluster.sh.

The cluster's nodes (n1..nN) are slurmd daemons on this machine, all at 127.0.0.1: every service of a
job needs its own port (free ones are picked per bundle), and every process a job starts carries
RECIPEC_TEST_TAG in its environment (the job inherits the submitter's, sbatch --export=ALL), which is
how the tests find leftovers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from conftest import ENGINE_NAMES, ROOT, STANDIN, port_overrides, processes_with_tag, run_recipec
from harness import CLIENT_STEP, healthy_node, launcher_run, log_root

CLUSTER_SH = ROOT / "tools" / "slurm" / "cluster.sh"
TERMINAL_STATES = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
                   "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT"}

# What every test bundle is built with: one GPU's worth of everything, short timeouts, a short time
# limit so a broken run cannot hold the cluster, and nodes shared between jobs.
SHRINK = (
    "prefill.tensor-parallel-size=1",
    "decode.tensor-parallel-size=1",
    "lmcache.l1-size-gb=1",
    "lmcache.l1-init-size-gb=1",
    "health.ready-timeout-s=30",
    "health.probe-interval-s=1",
    "health.probe-timeout-s=2",
    "health.grace-period-s=2",
    "slurm.time-limit=00:03:00",
    "slurm.exclusive=false",
    # Services from the stand-ins on PATH, whatever runtime the recipe names (test_slurm_podman.py
    # runs them in podman).
    "container.runtime=none",
    "container.services={}",
)


@dataclass
class Cluster:
    env: dict  # SLURM_CONF, SLURM_JOBCOMP_LOG, SLURM_TEST_DIR, SLURM_TEST_NODES
    nodes: list  # node names, n1..nN

    @property
    def jobcomp_log(self) -> Path:
        return Path(self.env["SLURM_JOBCOMP_LOG"])

    def kill_wait_s(self) -> int:
        out = scontrol("show", "config", env=self.env)
        return int(re.search(r"^KillWait\s*=\s*(\d+)", out, re.M).group(1))


def cluster_sh(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CLUSTER_SH), *args], capture_output=True, text=True,
                          timeout=timeout)


def cluster_env() -> dict:
    proc = cluster_sh("env", timeout=30)
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def scontrol(*args: str, env: dict) -> str:
    proc = subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **env})
    if proc.returncode != 0:
        raise AssertionError(f"scontrol {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def fields(line: str) -> dict:
    """KEY=value words of one `scontrol -o` or jobcomp line (values here hold no spaces)."""
    return dict(w.split("=", 1) for w in line.split() if "=" in w)


@dataclass
class JobEnd:
    job_id: str
    state: str
    exit_code: str  # "N:S" as SLURM shows it
    derived_exit_code: str
    ended: float  # time.monotonic() when the test saw the job end
    output: str  # the batch script's stdout/stderr file
    jobcomp: dict  # the job completion log's record of the job
    leftovers: list = field(default_factory=list)  # tagged processes still alive after the end

    @property
    def exit_status(self) -> int:
        return int(self.exit_code.split(":")[0])


@dataclass
class Submission:
    job_id: str
    bundle: Path
    tag: str
    env: dict
    cluster: Cluster
    submitted: float

    @property
    def log_dir(self) -> Path:
        return log_root(self.bundle) / f"job-{self.job_id}"

    def info(self) -> dict:
        return fields(scontrol("show", "job", "-o", self.job_id, env=self.cluster.env))

    def output_path(self) -> Path:
        return Path(self.info()["StdOut"])

    def output(self) -> str:
        try:
            return self.output_path().read_text(errors="replace")
        except OSError:
            return ""

    def wait_output(self, pattern: str, timeout: float = 40) -> float:
        """Block until the job's output matches pattern; return when (monotonic). Fails if the job ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.output()):
                return time.monotonic()
            if self.info().get("JobState") in TERMINAL_STATES:
                raise AssertionError(f"job {self.job_id} ended before /{pattern}/:\n{self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"no /{pattern}/ in job {self.job_id} output after {timeout}s:\n{self.output()}")

    def service_pid(self, name: str, timeout: float = 20) -> int:
        pidfile = self.log_dir / f"{name}.pid"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return int(pidfile.read_text())
            except (OSError, ValueError):
                time.sleep(0.1)
        raise AssertionError(f"{pidfile} never appeared:\n{self.output()}")

    def wait_end(self, timeout: float = 90) -> JobEnd:
        """Poll scontrol (sbatch --wait polls too slowly to time anything) until the job ends."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.info()
            if info.get("JobState") in TERMINAL_STATES:
                ended = time.monotonic()
                break
            if time.monotonic() > deadline:
                subprocess.run(["scancel", self.job_id], env={**os.environ, **self.cluster.env},
                               capture_output=True, timeout=30)
                raise AssertionError(f"job {self.job_id} still {info.get('JobState')} after {timeout}s:\n"
                                     f"{self.output()}")
            time.sleep(0.05)
        record = self._jobcomp_record()
        leftovers = self.leftovers()
        return JobEnd(self.job_id, info["JobState"], info["ExitCode"], info.get("DerivedExitCode", ""),
                      ended, self.output(), record, leftovers)

    def _jobcomp_record(self, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.cluster.jobcomp_log.read_text(errors="replace").splitlines():
                if line.startswith(f"JobId={self.job_id} "):
                    return fields(line)
            time.sleep(0.1)
        raise AssertionError(f"job {self.job_id} not in {self.cluster.jobcomp_log}")

    def leftovers(self, settle: float = 2.0) -> list:
        return leftovers(self.tag, settle)


def leftovers(tag: str, settle: float = 2.0) -> list:
    """Processes carrying tag still alive: wait up to settle seconds for stragglers, then KILL and
    describe what is left."""
    deadline = time.monotonic() + settle
    found = processes_with_tag(tag)
    while found and time.monotonic() < deadline:
        time.sleep(0.1)
        found = processes_with_tag(tag)
    described = []
    for pid in found:  # never leak into the next test, but report what was there
        try:
            described.append(f"{pid} {Path(f'/proc/{pid}/cmdline').read_text().replace(chr(0), ' ')}")
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return described


def job_env(cluster: Cluster, path_dir: Path | None, extra: dict | None = None) -> tuple[dict, str]:
    """The submitting environment: ours without SLURM job variables (pytest may itself run in a job)
    or fault settings, plus the cluster's SLURM_CONF, the stand-ins first on PATH and a tag."""
    tag = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "STANDIN_", "CLIENT_CMD", "RECIPEC_"))}
    env.update(cluster.env)
    if path_dir is not None:
        env["PATH"] = f"{path_dir}:{env['PATH']}"
    env["RECIPEC_TEST_TAG"] = tag
    env.update(healthy_node())  # every emulated node is this machine: an MI355X node, faked
    env.update(extra or {})
    return env, tag


def make_standin_bin(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ENGINE_NAMES:
        (folder / name).symlink_to(STANDIN)
    return folder


def build_bundle(out: Path, *extra_sets: str) -> tuple[Path, dict]:
    """kimik2.5 for the slurm target, shrunk, every port moved to a free one."""
    sets, ports = port_overrides()
    args = ["build", "kimik2.5", "--target", "slurm", "-o", str(out)]
    for s in [*SHRINK, *CLIENT_STEP, *sets, *extra_sets]:
        args += ["--set", s]
    run_recipec(*args, check=True)
    return out, ports


def submit(cluster: Cluster, bundle: Path, *sbatch_args: str, path_dir: Path | None,
           env: dict | None = None, plain_sbatch: bool = False, cwd: Path | None = None) -> Submission:
    """Submit the bundle: through ./launch.sh (it submits itself) or, with plain_sbatch, as
    `sbatch [ARGS] launch.sh` run from cwd (default: the bundle directory)."""
    full_env, tag = job_env(cluster, path_dir, env)
    if plain_sbatch:
        cmd = ["sbatch", "--parsable", *sbatch_args, str(bundle / "launch.sh")]
    else:
        cmd = ["bash", str(bundle / "launch.sh"), "--parsable", *sbatch_args]
    submitted = time.monotonic()
    proc = launcher_run(cmd, env=full_env, cwd=cwd or bundle, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}): {proc.stderr}")
    job_id = proc.stdout.strip().split(";")[0]
    assert job_id.isdigit(), proc.stdout
    return Submission(job_id, bundle, tag, full_env, cluster, submitted)
