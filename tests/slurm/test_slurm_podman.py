"""The slurm bundle of kimik2.5 with every service in podman, through the real SLURM cluster: each
emulated node runs its services in containers named after the job, and the job's end, however it
comes, leaves none of them (issue 14). Needs the cluster (tools/slurm/cluster.sh) and podman.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from harness import CLIENT_STEP, log_root, port_overrides, run_recipec
from podman import STANDIN_IMAGE, container_project, containers_named, make_image, remove_containers, \
    require_podman, standin_sets
from slurmjob import SHRINK, make_standin_bin, submit
from test_slurm import DEATH_TO_END_BOUND_S, LONG_CLIENT, cluster, node_lines  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slurm, pytest.mark.containers]


def build_in_podman(tmp_path: Path, benchmark: bool = False):
    require_podman()
    standins = make_standin_bin(tmp_path / "bin")
    sets, ports = port_overrides()
    project = tmp_path / "project"
    recipe = container_project(project, "kimik2.5")
    args = ["build", str(recipe), "--target", "slurm", "-o", str(tmp_path / "bundle")]
    for s in [*SHRINK, *(() if benchmark else CLIENT_STEP), *sets,
              *standin_sets(make_image(STANDIN_IMAGE), standins, ports)]:
        args += ["--set", s]
    run_recipec(*args, cwd=project, check=True)
    return tmp_path / "bundle", ports, standins


@pytest.fixture
def podman_bundle(tmp_path: Path):
    return build_in_podman(tmp_path)


def job_containers(job_id: str) -> list[str]:
    left = containers_named(f"-job{job_id}-")
    remove_containers(left)
    return left


def test_services_run_in_podman_on_two_nodes_and_the_job_completes(cluster, podman_bundle):
    path, ports, standins = podman_bundle
    job = submit(cluster, path, path_dir=standins)
    end = job.wait_end()
    out = end.output
    assert (end.state, end.exit_code) == ("COMPLETED", "0:0"), out
    rank0, rank1 = node_lines(out, 0), node_lines(out, 1)
    assert f"prefill-0 starts in (podman container recipec-kimik2.5-job{job.job_id}-prefill-0" in rank0
    assert f"decode-0 starts in (podman container recipec-kimik2.5-job{job.job_id}-decode-0" in rank1
    assert "image localhost/recipec-standin:bookworm is on this node (podman)" in rank1
    assert "containers running: decode-0" in rank1
    assert "removed the containers of this run (podman)" in rank0 and "removed the containers of this run" in rank1
    assert f"{ports['router.port']}/v1/models answered 200" in (job.log_dir / "client.log").read_text()
    assert end.leftovers == []
    assert job_containers(job.job_id) == []


def test_a_killed_runtime_client_fails_the_job_and_its_container_is_removed(cluster, podman_bundle):
    """SIGKILL of decode-0's `podman run` client (its process group) leaves its container running
    (conmon keeps it): the node notices the client's death, the job fails, and the node's teardown
    removes the container by the name it gave it."""
    path, _, standins = podman_bundle
    job = submit(cluster, path, path_dir=standins, env=LONG_CLIENT)
    job.wait_output(r"client is running")
    pid = job.service_pid("decode-0")
    os.killpg(pid, signal.SIGKILL)
    died = time.monotonic()
    end = job.wait_end()
    out = end.output
    assert (end.state, end.exit_code) == ("FAILED", "1:0"), out
    assert re.search(r"recipec\[node1:n2\] ERROR: decode-0 \(pid \d+\) exited with status 137 \(podman container "
                     rf"recipec-kimik2.5-job{job.job_id}-decode-0, image ", out), out
    assert re.search(r"recipec\[node1:n2\] removed the containers of this run \(podman\):.*-decode-0", out), out
    assert end.ended - died < DEATH_TO_END_BOUND_S + 2, out  # + the container removals
    assert end.leftovers == []
    assert job_containers(job.job_id) == []


def test_the_sweep_runs_each_point_in_podman_on_the_router_node(cluster, tmp_path):
    """kimik2.5's own benchmark (3 points, stand-in client) in the job: each point a container named
    after the job on the router's node, the results read by the image's python, summary written."""
    path, _, standins = build_in_podman(tmp_path, benchmark=True)
    job = submit(cluster, path, path_dir=standins, env={"BENCH_COOLDOWN_S": "0", "ANSWER_TIMEOUT_S": "5"})
    end = job.wait_end()
    out = end.output
    assert (end.state, end.exit_code) == ("COMPLETED", "0:0"), out
    rank0 = node_lines(out, 0)
    for point in ("c8", "c16", "c32"):
        assert f"bench-{point} starts in (podman container recipec-kimik2.5-job{job.job_id}-bench-{point}" in rank0
        assert f"point {point}: valid: " in rank0
    assert "image localhost/recipec-standin:bookworm is on this node (podman)" in rank0
    summary = log_root(path) / "results" / f"job-{job.job_id}" / "summary.csv"
    assert [line.split(",")[0] for line in summary.read_text().splitlines()] == ["point", "c8", "c16", "c32"]
    assert end.leftovers == []
    assert job_containers(job.job_id) == []
