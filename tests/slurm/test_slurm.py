"""The slurm bundle of kimik2.5 run through a real multi-node SLURM cluster (issue 6).

tools/slurm/cluster.sh runs slurmctld and one slurmd per emulated node (n1..nN) on this machine. Each
test builds a shrunk bundle with ports of its own, submits it with sbatch (as a user would: through
./launch.sh, or plain `sbatch launch.sh`) with the stand-in engines first on PATH, and judges the run
by what SLURM says (scontrol and the job completion log), by the job's output, and by the processes
left behind. Rank 0 (n1) runs lmcache-0, prefill-0, the router and the client step; rank 1 (n2) runs
decode-0.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import launcher_run, log_root
from slurmjob import (Cluster, build_bundle, cluster_env, cluster_sh, job_env, leftovers, make_standin_bin,
                      submit)

pytestmark = pytest.mark.slurm

# SHRINK's timing (slurmjob.py): what a service death may cost before the job ends is one probe
# interval to notice, a probe timeout if a probe was under way, the grace period of the nodes SLURM
# then stops, and SLURM's own step and job teardown (measured ~0.15 s here: tools/slurm/measure.py),
# with slack for a loaded CI machine.
PROBE_INTERVAL_S = 1
PROBE_TIMEOUT_S = 2
GRACE_PERIOD_S = 2
SLURM_TEARDOWN_S = 3
DEATH_TO_END_BOUND_S = PROBE_INTERVAL_S + PROBE_TIMEOUT_S + GRACE_PERIOD_S + SLURM_TEARDOWN_S
LONG_CLIENT = {"CLIENT_CMD": "sleep 120"}  # a client step that keeps the stack serving


@pytest.fixture(scope="session")
def cluster():
    """The real cluster: up already, or brought up here (and down again at the end). Where it cannot
    be had the tests skip, unless RECIPEC_REQUIRE_SLURM=1 (CI), where that is a failure."""
    required = os.environ.get("RECIPEC_REQUIRE_SLURM") == "1"

    def unavailable(reason: str):
        if required:
            pytest.fail(f"RECIPEC_REQUIRE_SLURM=1 but no SLURM cluster: {reason}", pytrace=False)
        pytest.skip(f"no SLURM cluster: {reason} (tools/slurm/cluster.sh up 3 brings one up)")

    started = False
    if cluster_sh("status", timeout=30).returncode != 0 or int(cluster_env().get("SLURM_TEST_NODES", 0)) < 2:
        if os.geteuid() != 0:
            unavailable("tools/slurm/cluster.sh needs root")
        if not shutil.which("slurmctld") and not shutil.which("apt-get"):
            unavailable("SLURM is not installed and there is no apt-get to install it")
        up = cluster_sh("up", "3")
        if up.returncode != 0:
            unavailable(f"tools/slurm/cluster.sh up 3 failed:\n{up.stderr[-3000:]}")
        started = True
    env = cluster_env()
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True,
                           env={**os.environ, **env}, timeout=30).stdout.split()
    yield Cluster(env=env, nodes=sorted(set(nodes)))
    if started:
        cluster_sh("down")


@pytest.fixture
def standins(tmp_path: Path) -> Path:
    return make_standin_bin(tmp_path / "bin")


@pytest.fixture
def bundle(tmp_path: Path):
    return build_bundle(tmp_path / "bundle")


def node_lines(output: str, rank: int) -> str:
    return "\n".join(line for line in output.splitlines() if f"recipec[node{rank}:" in line)


def kill_service(job, name: str) -> float:
    """SIGKILL a running service's whole process group, as a crash would end it; return when."""
    pid = job.service_pid(name)
    os.killpg(pid, signal.SIGKILL)
    return time.monotonic()


# 2. The bundle through sbatch: success, and a service dying on either node.

def test_stack_comes_up_on_two_nodes_and_the_job_completes(cluster, bundle, standins):
    """COMPLETED 0:0; rank 0 waited for decode-0 on the other node (slow to start here) while it
    watched its own services; rank 1 left once the router was gone; every log in one directory."""
    path, ports = bundle
    # The client runs 3 s: long enough for rank 1 to see the router up and serve (a client that ends
    # at once can end the run before rank 1's own wait for the router is over).
    job = submit(cluster, path, path_dir=standins, env={f"STANDIN_{ports['decode.port']}": "slow_start:3",
                                                         "STANDIN_CLIENT_SECS": "3"})
    end = job.wait_end()
    out = end.output
    assert (end.state, end.exit_code) == ("COMPLETED", "0:0"), out
    assert (end.jobcomp["JobState"], end.jobcomp["ExitCode"]) == ("COMPLETED", "0:0")
    assert "node 1/2: n1 = 127.0.0.1" in out and "node 2/2: n2 = 127.0.0.1" in out
    rank0, rank1 = node_lines(out, 0), node_lines(out, 1)
    # Each rank ran its own services, on the node SLURM gave it.
    assert re.search(r"recipec\[node0:n1\] started lmcache-0", rank0)
    assert "started prefill-0" in rank0 and "started router" in rank0 and "started decode" not in rank0
    assert "started decode-0" in rank1 and "started prefill" not in rank1
    # Rank 0 waited for the remote decode-0 (3 s slow) beside its own prefill-0 ...
    assert "waiting for prefill-0 decode-0 to be ready" in rank0
    assert re.search(r"decode-0 is ready after [2-9]s", rank0), rank0
    assert "client exited with status 0" in rank0
    # ... and rank 1 served until the run was over (rank 0 done, the router gone), then left on
    # its own, with status 0.
    assert "all services ready; serving while router is up" in rank1
    assert re.search(r"the run is over|router has stopped answering", rank1), rank1
    assert re.search(r"exit status 0$", rank1, re.M)
    assert "srun finished with status 0" in out
    # One job log directory holds the logs of both nodes.
    logs = {p.name for p in job.log_dir.iterdir()}
    assert {"lmcache-0.log", "prefill-0.log", "router.log", "client.log", "decode-0.log",
            "node0.status", "node1.status"} <= logs, logs
    assert Path(job.info()["StdOut"]) == log_root(path) / f"kimik2.5-1p1d-{job.job_id}.out"
    assert f"{ports['router.port']}/v1/models answered 200" in (job.log_dir / "client.log").read_text()
    assert end.leftovers == []


def test_a_quick_client_step_does_not_leave_the_other_node_waiting(cluster, bundle, standins):
    """A client step shorter than a probe interval: the router comes and goes between two probes of
    rank 1, which must not wait READY_TIMEOUT_S (60 s here) for it and fail the job: it sees rank
    0's status in the job log directory and leaves."""
    path, _ = bundle
    job = submit(cluster, path, path_dir=standins,
                 env={"CLIENT_CMD": "true", "PROBE_INTERVAL_S": "4", "READY_TIMEOUT_S": "60"})
    end = job.wait_end()
    assert (end.state, end.exit_code) == ("COMPLETED", "0:0"), end.output
    assert re.search(r"recipec\[node1:n2\] the run is over", end.output), end.output
    assert end.ended - job.submitted < 25, end.output
    assert end.leftovers == []


def test_job_exit_status_is_the_client_steps(cluster, bundle, standins):
    """The failing node's own status, not the 143 of the node SLURM stopped, is the job's."""
    path, _ = bundle
    job = submit(cluster, path, path_dir=standins, env={"STANDIN_CLIENT_EXIT": "5"})
    end = job.wait_end()
    assert (end.state, end.exit_code) == ("FAILED", "5:0"), end.output
    assert end.jobcomp["ExitCode"] == "5:0"
    assert "node 0 (n1) exit status: 5" in end.output
    assert "node 0 (n1) failed; the others were stopped: the job exits with its status 5" in end.output
    assert end.leftovers == []


@pytest.mark.parametrize("service, rank, node", [("decode-0", 1, "n2"), ("prefill-0", 0, "n1"),
                                                  ("lmcache-0", 0, "n1")])
def test_a_service_dying_while_serving_fails_the_job(cluster, bundle, standins, service, rank, node):
    """A service killed while the client step runs: FAILED with the failing node's status, the
    service and its node named in the job log, within the probe bound plus SLURM's teardown."""
    path, _ = bundle
    job = submit(cluster, path, path_dir=standins, env=LONG_CLIENT)
    job.wait_output(r"client is running")
    died = kill_service(job, service)
    end = job.wait_end()
    seconds = end.ended - died
    out = end.output
    assert end.state == "FAILED", out
    assert end.exit_code == "1:0" and end.jobcomp["ExitCode"] == "1:0", out
    assert re.search(rf"recipec\[node{rank}:{node}\] ERROR: {service} \(pid \d+\) exited with status 137", out), out
    other = 1 - rank
    # The other node stops either way the bundle provides, whichever comes first: SLURM's SIGTERM
    # (--kill-on-bad-exit) or its own look at the failed node's status file in the job's LOG_DIR.
    assert re.search(rf"recipec\[node{other}:[^]]*\] (received SIGTERM: tearing down|the run is over)",
                     out), out
    assert re.search(rf"recipec\[node{other}:[^]]*\] stopped: ", out), out
    assert f"node {rank} ({node}) failed; the others were stopped: the job exits with its status 1" in out
    assert seconds < DEATH_TO_END_BOUND_S, f"{service} died {seconds:.1f}s before the job ended"
    assert end.leftovers == []
    print(f"{service} on {node}: death to job end {seconds:.2f}s")


# 3. Multi-node semantics.

def test_fewer_nodes_than_the_recipe_needs_fail_before_anything_starts(cluster, bundle, standins):
    path, _ = bundle
    job = submit(cluster, path, "-N", "1", path_dir=standins)
    end = job.wait_end()
    assert (end.state, end.exit_code) == ("FAILED", "1:0"), end.output
    assert "ERROR: this job has 1 node(s); the recipe needs 2 (1 prefill + 1 decode)" in end.output
    assert "srun" not in end.output and "started" not in end.output
    assert not job.log_dir.exists()
    assert end.leftovers == []


def test_a_node_whose_address_does_not_resolve_fails_the_job(cluster, bundle, standins, tmp_path):
    """Fault injection on the real path: a `scontrol` first on PATH passes every call to the real
    one, but reports n2's NodeAddr as a name no resolver knows; launch.sh's getent must say so."""
    path, _ = bundle
    real = shutil.which("scontrol")
    wrapper = tmp_path / "fault-bin" / "scontrol"
    wrapper.parent.mkdir()
    wrapper.write_text(f"""#!/usr/bin/env bash
set -euo pipefail
if [[ ${{1:-}} == show && ${{2:-}} == node && ${{3:-}} == n2 ]]; then
  {real} "$@" | sed 's/NodeAddr=[^ ]*/NodeAddr=n2.unresolvable.invalid/'
else
  exec {real} "$@"
fi
""")
    wrapper.chmod(0o755)
    job = submit(cluster, path, path_dir=standins, env={"PATH": f"{wrapper.parent}:{standins}:{os.environ['PATH']}"})
    end = job.wait_end()
    assert (end.state, end.exit_code) == ("FAILED", "1:0"), end.output
    assert "node 1/2: n1 = 127.0.0.1" in end.output
    assert "ERROR: node n2: its address does not resolve" in end.output
    assert "srun" not in end.output and not job.log_dir.exists()
    assert end.leftovers == []


def test_a_node_failing_at_start_ends_the_job_at_once(cluster, bundle, standins):
    """--kill-on-bad-exit: decode-0 dies at start on n2; rank 0, which would otherwise wait for it
    up to READY_TIMEOUT_S (30 s), is stopped by SLURM at once."""
    path, ports = bundle
    job = submit(cluster, path, path_dir=standins, env={f"STANDIN_{ports['decode.port']}": "die_at_start:3"})
    end = job.wait_end()
    out = end.output
    assert (end.state, end.exit_code) == ("FAILED", "1:0"), out
    assert re.search(r"recipec\[node1:n2\] ERROR: decode-0 \(pid \d+\) exited with status 3", out), out
    assert "fatal error during start-up (simulated)" in out  # the log tail
    assert "srun: error: n2: task 1: Exited with exit code 1" in out
    # SLURM stopped rank 0 (SIGTERM: 143; under load that can come before node.sh has even set
    # its trap, when it has started nothing and leaves no status), well before its 30 s deadline.
    assert re.search(r"node 0 \(n1\) exit status: (143|unknown)", out), out
    assert "not ready after" not in out
    assert end.ended - job.submitted < 12, out
    assert end.leftovers == []


def test_a_node_failing_its_preflight_is_named_and_ends_the_job_in_seconds(cluster, standins, tmp_path):
    """preflight.sh on every node, in parallel, before anything starts: decode (TP8) on n2 needs 8
    accelerators and the fake node shows 8, prefill (TP1) on n1 needs 1; with 4 visible n2 fails,
    named by node and check, and SLURM stops n1."""
    from harness import fake_node

    path, _ = build_bundle(tmp_path / "bundle", "decode.tensor-parallel-size=8")
    job = submit(cluster, path, path_dir=standins, env=fake_node(tmp_path / "node", gpus=4))
    end = job.wait_end()
    out = end.output
    assert (end.state, end.exit_code) == ("FAILED", "1:0"), out
    assert re.search(r"recipec\[node1:n2\] ERROR: preflight accelerators failed: this node's engines need 8 "
                     r"amd accelerator\(s\), 4 are visible", out), out
    assert "srun: error: n2: task 1: Exited with exit code 1" in out
    assert "started decode-0" not in out
    assert end.ended - job.submitted < 12, out
    assert end.leftovers == []


def test_rank0_checks_its_own_services_while_waiting_for_remote_ones(cluster, bundle, standins):
    """decode-0 on n2 never becomes ready; prefill-0 on n1 dies meanwhile: rank 0 fails on that at
    once, not at the READY_TIMEOUT_S deadline of its wait for decode-0."""
    path, ports = bundle
    job = submit(cluster, path, path_dir=standins, env={f"STANDIN_{ports['decode.port']}": "never_ready",
                                                        f"STANDIN_{ports['prefill.port']}": "die_after:3:9"})
    end = job.wait_end()
    out = end.output
    assert (end.state, end.exit_code) == ("FAILED", "1:0"), out
    assert "recipec[node0:n1] waiting for prefill-0 decode-0 to be ready" in out
    assert re.search(r"recipec\[node0:n1\] ERROR: prefill-0 \(pid \d+\) exited with status 9", out), out
    assert "not ready after" not in out
    assert end.ended - job.submitted < 15, out
    assert end.leftovers == []


def test_scancel_tears_down_every_node(cluster, bundle, standins):
    """scancel while serving: CANCELLED, every service on both nodes stopped, none left behind, even
    one that ignores SIGTERM: the recipe's 30 s grace is cut to fit SLURM's KillWait, so the bundle's
    own KILL comes before SLURM's."""
    path, ports = bundle
    kill_wait = cluster.kill_wait_s()
    job = submit(cluster, path, path_dir=standins,
                 env={**LONG_CLIENT, "GRACE_PERIOD_S": "30", f"STANDIN_{ports['decode.port']}": "ignore_term"})
    job.wait_output(r"client is running")
    cancelled = time.monotonic()
    subprocess.run(["scancel", job.job_id], env=job.env, check=True, timeout=30)
    end = job.wait_end()
    out = end.output
    assert end.state == "CANCELLED", out
    assert end.jobcomp["JobState"] == "CANCELLED"
    grace = kill_wait - 2
    assert f"GRACE_PERIOD_S=30 does not fit in SLURM's KillWait of {kill_wait}s: using {grace}s" in out
    for rank in (0, 1):  # scancel TERMs every node; one may see the other's status file first
        assert re.search(rf"recipec\[node{rank}:[^]]*\] (received SIGTERM: tearing down|the run is over)",
                         out), out
        assert re.search(rf"recipec\[node{rank}:[^]]*\] exit status 143", out), out
    assert re.search(rf"recipec\[node1:n2\] decode-0 did not stop within {grace}s", out), out
    assert end.ended - cancelled < kill_wait + 3, out
    assert end.leftovers == []


def test_plain_sbatch_from_the_bundle_directory(cluster, bundle, standins):
    """`sbatch launch.sh` in the bundle directory: output to slurm-<id>.out there, the job runs."""
    path, _ = bundle
    job = submit(cluster, path, path_dir=standins, plain_sbatch=True, cwd=path)
    end = job.wait_end()
    assert (end.state, end.exit_code) == ("COMPLETED", "0:0"), end.output
    assert Path(job.info()["StdOut"]) == path / f"slurm-{job.job_id}.out"
    assert "client exited with status 0" in end.output
    assert (job.log_dir / "decode-0.log").exists()
    assert end.leftovers == []


def test_plain_sbatch_from_elsewhere_finds_the_bundle(cluster, bundle, standins, tmp_path):
    """`sbatch DIR/launch.sh` from another directory: the job finds DIR from its Command."""
    path, _ = bundle
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    job = submit(cluster, path, "-N", "1", path_dir=standins, plain_sbatch=True, cwd=elsewhere)
    end = job.wait_end()
    # -N 1: the job gets as far as the node count check, which needs the bundle's lib.sh.
    assert "no bundle" not in end.output, end.output
    assert "the recipe needs 2" in end.output
    assert Path(job.info()["StdOut"]) == elsewhere / f"slurm-{job.job_id}.out"


def test_salloc_runs_the_bundle_in_the_allocation(cluster, bundle, standins, tmp_path):
    """Inside an allocation launch.sh does not submit: it runs the nodes at once; salloc's status
    is the run's."""
    path, _ = bundle
    env, tag = job_env(cluster, standins)
    proc = launcher_run(["salloc", "-N", "2", str(path / "launch.sh")], env=env, cwd=tmp_path, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert "client exited with status 0" in proc.stderr
    job_id = re.search(r"recipec\[job-(\d+)\] exit status 0", proc.stderr).group(1)
    assert (log_root(path) / f"job-{job_id}" / "decode-0.log").exists()
    assert leftovers(tag) == []
