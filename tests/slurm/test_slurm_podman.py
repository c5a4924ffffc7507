"""The slurm bundle of kimik2.5 with every service in podman, or in docker (the recipe's own
runtime), through the real SLURM cluster: each emulated node runs its services in containers named
after the job, and the job's end, however it comes, leaves none of them (issue 14). Needs the
cluster (tools/slurm/cluster.sh) and podman (and a docker daemon: tools/containers/setup-docker.sh).
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from harness import CLIENT_STEP, log_root, port_overrides, run_recipec
from podman import STANDIN_IMAGE, container_project, containers_named, docker_image, make_image, \
    remove_containers, require_docker, require_podman, standin_sets
from slurmjob import SHRINK, make_standin_bin, submit
from test_slurm import DEATH_TO_END_BOUND_S, LONG_CLIENT, cluster, node_lines  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slurm, pytest.mark.containers]


RUNTIMES = ["podman", "docker"]


def build_in_podman(tmp_path: Path, benchmark: bool = False, runtime: str = "podman"):
    (require_docker if runtime == "docker" else require_podman)()
    image = docker_image(STANDIN_IMAGE) if runtime == "docker" else make_image(STANDIN_IMAGE)
    standins = make_standin_bin(tmp_path / "bin")
    sets, ports = port_overrides()
    project = tmp_path / "project"
    recipe = container_project(project, "kimik2.5")
    args = ["build", str(recipe), "--target", "slurm", "-o", str(tmp_path / "bundle")]
    for s in [*SHRINK, *(() if benchmark else CLIENT_STEP), *sets,
              *standin_sets(image, standins, ports), f"container.runtime={runtime}"]:
        args += ["--set", s]
    run_recipec(*args, cwd=project, check=True)
    return tmp_path / "bundle", ports, standins


@pytest.fixture(params=RUNTIMES)
def podman_bundle(tmp_path: Path, request):
    return (*build_in_podman(tmp_path, runtime=request.param), request.param)


def job_containers(job_id: str, runtime: str = "podman") -> list[str]:
    left = containers_named(f"-job{job_id}-", runtime)
    remove_containers(left, runtime)
    return left


def test_services_run_in_containers_on_two_nodes_and_the_job_completes(cluster, podman_bundle):
    path, ports, standins, runtime = podman_bundle
    job = submit(cluster, path, path_dir=standins)
    end = job.wait_end()
    out = end.output
    assert (end.state, end.exit_code) == ("COMPLETED", "0:0"), out
    rank0, rank1 = node_lines(out, 0), node_lines(out, 1)
    assert f"prefill-0 starts in ({runtime} container recipec-kimik2.5-job{job.job_id}-prefill-0" in rank0
    assert f"decode-0 starts in ({runtime} container recipec-kimik2.5-job{job.job_id}-decode-0" in rank1
    assert f"image localhost/recipec-standin:bookworm is on this node ({runtime})" in rank1
    assert "containers running: decode-0" in rank1
    assert f"removed the containers of this run ({runtime})" in rank0 and "removed the containers of this run" in rank1
    assert f"{ports['router.port']}/v1/models answered 200" in (job.log_dir / "client.log").read_text()
    assert end.leftovers == []
    assert job_containers(job.job_id, runtime) == []


def test_a_killed_runtime_client_fails_the_job_and_its_container_is_removed(cluster, podman_bundle):
    """SIGKILL of decode-0's `podman run` (`docker run`) client (its process group) leaves its
    container running (conmon, containerd's shim keeps it): the node notices the client's death, the job fails, and the node's teardown
    removes the container by the name it gave it."""
    path, _, standins, runtime = podman_bundle
    job = submit(cluster, path, path_dir=standins, env=LONG_CLIENT)
    job.wait_output(r"client is running")
    pid = job.service_pid("decode-0")
    os.killpg(pid, signal.SIGKILL)
    died = time.monotonic()
    end = job.wait_end()
    out = end.output
    assert (end.state, end.exit_code) == ("FAILED", "1:0"), out
    assert re.search(rf"recipec\[node1:n2\] ERROR: decode-0 \(pid \d+\) exited with status 137 \({runtime} container "
                     rf"recipec-kimik2.5-job{job.job_id}-decode-0, image ", out), out
    assert re.search(rf"recipec\[node1:n2\] removed the containers of this run \({runtime}\):.*-decode-0", out), out
    assert end.ended - died < DEATH_TO_END_BOUND_S + 2, out  # + the container removals
    assert end.leftovers == []
    assert job_containers(job.job_id, runtime) == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_sweep_runs_each_point_in_a_container_on_the_router_node(cluster, tmp_path, runtime):
    """kimik2.5's own benchmark (3 points, stand-in client) in the job: each point a container named
    after the job on the router's node, the results read by the image's python, summary written."""
    path, _, standins = build_in_podman(tmp_path, benchmark=True, runtime=runtime)
    job = submit(cluster, path, path_dir=standins, env={"BENCH_COOLDOWN_S": "0", "ANSWER_TIMEOUT_S": "5"})
    end = job.wait_end()
    out = end.output
    assert (end.state, end.exit_code) == ("COMPLETED", "0:0"), out
    rank0 = node_lines(out, 0)
    for point in ("c8", "c16", "c32"):
        assert f"bench-{point} starts in ({runtime} container recipec-kimik2.5-job{job.job_id}-bench-{point}" in rank0
        assert f"point {point}: valid: " in rank0
    assert f"image localhost/recipec-standin:bookworm is on this node ({runtime})" in rank0
    summary = log_root(path) / "results" / f"job-{job.job_id}" / "summary.csv"
    assert [line.split(",")[0] for line in summary.read_text().splitlines()] == ["point", "c8", "c16", "c32"]
    assert end.leftovers == []
    assert job_containers(job.job_id, runtime) == []
