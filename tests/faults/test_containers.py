"""What only a container runtime can get wrong, with every service of kimik2.5 in podman (stand-in
engines in the local stand-in image): a missing image, mount source or runtime, a runtime that hangs,
a launcher killed by SIGKILL, and hostile recipe values. Each fails fast, names what is wrong, and
leaves no process and no container behind; values reach the runtime as literal words.
(The whole fault suite also runs in podman: test_faults.py, ids ending in -podman.)
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import signal
from pathlib import Path

import pytest

from harness import build_local, make_standin_bin, run_bundle, run_logs, signal_launcher
from podman import STANDINS, containers_named, remove_containers, require_docker, require_podman
from scenarios import ENV, GRACE_PERIOD_S, MARGIN_S, SERVING

pytestmark = [pytest.mark.faults, pytest.mark.containers]


@pytest.fixture(autouse=True)
def podman():
    require_podman()


def play(tmp_path: Path, *sets: str, env: dict | None = None, path_prefix=(), on_line=(), settle_s=0.3,
         benchmark=False, host_bin=True, runtime="podman"):
    """host_bin: the stand-ins on the launcher's PATH too (False: only inside the containers);
    runtime: podman, or docker (kimik2.5's own; a daemon from tools/containers/setup-docker.sh)."""
    if runtime == "docker":
        require_docker()
    bin_dir = make_standin_bin(tmp_path / "bin")
    bundle = tmp_path / "bundle"
    ports = build_local(bundle, *sets, runtime=runtime, bin_dir=bin_dir, benchmark=benchmark)
    run = run_bundle(bundle, bin_dir if host_bin else None, env={**ENV, **(env or {})}, timeout=90,
                     path_prefix=path_prefix, on_line=on_line, settle_s=settle_s)
    left = containers_named(run_logs(bundle).name, runtime)
    remove_containers(left, runtime)
    assert run.leftovers == [], f"processes left behind: {run.leftovers}\n{run.stderr}"
    assert left == [], f"containers left behind: {left}\n{run.stderr}"
    return run, bundle, ports


def test_an_image_that_is_not_there_fails_the_preflight_naming_it(tmp_path):
    run, _, _ = play(tmp_path, "image=localhost/recipec-no-such-image:v0.33.0")
    assert run.returncode == 1, run.stderr
    assert "image localhost/recipec-no-such-image:v0.33.0 (podman, for lmcache-0 prefill-0 decode-0 router " \
           "client) is not available on this node: " in run.stderr
    assert "pinging container registry localhost" in run.stderr, run.stderr  # podman's own words
    assert "nothing was started" in run.stderr and "started " not in run.stderr
    assert run.seconds < 15, run.seconds  # podman's 3 pull retries, not a model load


def test_a_mount_source_that_is_not_there_fails_before_anything_starts(tmp_path):
    missing = tmp_path / "no-such-model-dir"
    mounts = [{"source": str(STANDINS)}, {"source": str(tmp_path / "bin")}, {"source": str(missing)}]
    run, _, _ = play(tmp_path, f"container.mounts={json.dumps(mounts)}")
    assert run.returncode == 1, run.stderr
    assert f"ERROR: mount source {missing} does not exist on this node" in run.stderr
    assert "started " not in run.stderr and run.seconds < 5, run.stderr


def test_a_runtime_missing_on_the_node_is_named_with_what_needs_it(tmp_path):
    """apptainer is not installed here: the router's own runtime is missing."""
    if shutil.which("apptainer"):
        pytest.skip("apptainer is installed here")
    run, _, _ = play(tmp_path, "container.services={router: {runtime: apptainer}}")
    assert run.returncode == 1, run.stderr
    assert "ERROR: not found on PATH: apptainer (needed by router)" in run.stderr
    assert "started " not in run.stderr and run.seconds < 5, run.stderr


def test_a_runtime_that_cannot_answer_fails_the_image_preflight_with_its_words(tmp_path):
    """A docker client whose daemon does not answer (DOCKER_HOST names a socket nobody serves)."""
    if shutil.which("docker") is None:
        pytest.skip("needs a docker client")
    run, _, _ = play(tmp_path, "container.services={router: {runtime: docker}}",
                     env={"DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"})
    assert run.returncode == 1, run.stderr
    assert "image localhost/recipec-standin:bookworm (docker, for router) is not available on this node: " in run.stderr
    assert "docker daemon" in run.stderr and "started " not in run.stderr, run.stderr


def test_a_runtime_that_hangs_on_start_fails_at_the_start_deadline(tmp_path):
    """A `podman run` that never starts the container and ignores TERM (as a hung OCI runtime makes
    podman do: docs/containers.md): CONTAINER_START_TIMEOUT_S, not READY_TIMEOUT_S, ends the run."""
    fake = tmp_path / "hung" / "podman"
    fake.parent.mkdir()
    fake.write_text("#!/bin/bash\nif [[ $1 == run ]]; then trap '' TERM; while :; do sleep 1; done; fi\n"
                    'exec /usr/bin/podman "$@"\n')
    fake.chmod(0o755)
    run, _, _ = play(tmp_path, env={"CONTAINER_START_TIMEOUT_S": "3", "READY_TIMEOUT_S": "600"},
                     path_prefix=[fake.parent])
    assert run.returncode == 1, run.stderr
    assert "ERROR: lmcache-0 is not running 3s after its start: the podman runtime did not start it" in run.stderr
    assert "(podman container recipec-kimik2.5-tp4-run-" in run.stderr, run.stderr
    start = run.line_time(r"started lmcache-0")
    assert run.ended_at - start < 3 + GRACE_PERIOD_S + 3 * MARGIN_S, run.stderr  # deadline + TERM..KILL


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_a_launcher_killed_by_sigkill_leaves_no_container(tmp_path, runtime):
    """The watchdog stops the clients' process groups, then removes each named container."""
    run, bundle, _ = play(tmp_path, env={"STANDIN_CLIENT_SECS": "30"}, settle_s=15,
                          on_line=[(SERVING, signal_launcher(signal.SIGKILL))], runtime=runtime)
    assert run.returncode == -signal.SIGKILL, run.stderr
    log = (run_logs(bundle) / "watchdog.log").read_text()
    assert "removing container recipec-kimik2.5-tp4-run-" in log and f"-prefill-0 ({runtime})" in log, log
    assert run.clean_at and run.clean_at - run.marks["signal"] < GRACE_PERIOD_S + 5, (run.clean_at, run.marks)


def hostile(marker: Path, what: str) -> str:
    m = f"{marker}-{what}"
    return (f"{what} $(touch {m}-dollar) `touch {m}-backtick` ; touch {m}-semicolon ; "
            f"'single' \"double\" \\backslash $HOME * ? ~ & | > {m}-redirect !x\nsecond line\ttab %s")


def test_hostile_env_and_mount_paths_reach_podman_as_literal_words(tmp_path):
    marker = tmp_path / "pwned"
    record = tmp_path / "record"
    record.mkdir()
    odd = tmp_path / "mount $(touch pwned-mount) `x` ; 'q' \"d\" & * ~"  # no ':' or ',' (the model refuses them)
    odd.mkdir()
    env_value, engine_value = hostile(marker, "container_env"), hostile(marker, "engine_env")
    mounts = [{"source": str(STANDINS)}, {"source": str(tmp_path / "bin")},
              {"source": str(record), "read-only": False}, {"source": str(odd), "target": "/odd $(x)"}]
    run, _, _ = play(tmp_path, f"container.mounts={json.dumps(mounts)}",
                     f"container.env.RECIPEC_HOSTILE={json.dumps(env_value)}",
                     f"engine.env.RECIPEC_HOSTILE_ENGINE={json.dumps(engine_value)}",
                     env={"STANDIN_RECORD": str(record)})
    assert run.returncode == 0, run.stderr
    assert not list(tmp_path.rglob("pwned*")), list(tmp_path.rglob("pwned*"))
    calls = [json.loads(p.read_text()) for p in record.glob("*.json")]
    assert {c["prog"] for c in calls} == {"vllm", "lmcache", "vllm-router"}, calls
    for c in calls:  # every container got the recipe's env, byte for byte, and not the host's
        assert c["env"]["RECIPEC_HOSTILE"] == env_value
    engines = [c for c in calls if c["prog"] == "vllm" and c["argv"][0] == "serve"]
    assert len(engines) == 2 and all(c["env"]["RECIPEC_HOSTILE_ENGINE"] == engine_value for c in engines)
    assert all("PYTEST_CURRENT_TEST" not in c["env"] for c in calls), "the host's env leaked in"


def test_a_hostile_image_name_is_refused_at_build(tmp_path):
    from harness import run_recipec
    from podman import container_project

    recipe = container_project(tmp_path / "project", "kimik2.5")
    proc = run_recipec("build", str(recipe), "--set", "container.runtime=podman", "--set",
                       "container.services={router: {image: 'localhost/x:v1 --privileged'}}",
                       cwd=tmp_path / "project")
    assert proc.returncode == 1 and "RC903" in proc.stderr, proc.stderr


# The benchmark sweep in podman (issue 15 with 14): every point's client in a container of its own,
# named bench-POINT and removed like the services; result JSON read by python in the image. The
# host has no `vllm` and a `python3` that fails the test if anything runs it.
BENCH_QUICK = {"BENCH_COOLDOWN_S": "0", "ANSWER_TIMEOUT_S": "5"}
SWEEP = {"c8": "kimik2.5-tp4-c8-n80-in8192-out1024.json", "c16": "kimik2.5-tp4-c16-n160-in8192-out1024.json",
         "c32": "kimik2.5-tp4-c32-n320-in8192-out1024.json"}


def host_without_python(tmp_path: Path) -> Path:
    folder = tmp_path / "host-bin"
    folder.mkdir()
    for name in ("python3", "python", "vllm"):
        (folder / name).write_text(f"#!/bin/sh\necho 'the host {name} ran: $*' >&2\nexit 99\n")
        (folder / name).chmod(0o755)
    return folder


def results_of(bundle: Path) -> Path:
    from harness import log_root

    (found,) = (log_root(bundle) / "results").iterdir()
    return found


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_a_sweep_runs_each_point_in_its_own_container_and_reads_results_in_the_image(tmp_path, runtime):
    run, bundle, _ = play(tmp_path, benchmark=True, env=BENCH_QUICK, host_bin=False,
                          path_prefix=[host_without_python(tmp_path)], runtime=runtime)
    assert run.returncode == 0, run.stderr
    assert "the host " not in run.stderr, run.stderr
    for point in SWEEP:
        assert re.search(rf"bench-{point} starts in \({runtime} container recipec-kimik2\.5-tp4-run-\S+-bench-{point}, "
                         rf"image localhost/recipec-standin:bookworm\)", run.stderr), run.stderr
        assert f"point {point}: valid: " in run.stderr
    assert "containers running: bench-c8" in run.stderr  # the start deadline covers the points too
    results = results_of(bundle)
    assert sorted(p.name for p in results.iterdir()) == sorted([*SWEEP.values(), "summary.csv", "summary.md"])
    with open(results / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["point"], float(r["output_throughput"])) for r in rows] == [("c8", 800.0), ("c16", 1600.0),
                                                                           ("c32", 3200.0)]


def test_an_invalid_point_in_a_container_stops_the_sweep_and_keeps_the_earlier_results(tmp_path):
    run, bundle, _ = play(tmp_path, benchmark=True, env={**BENCH_QUICK, "STANDIN_BENCH": "zero_output:16"},
                          host_bin=False, path_prefix=[host_without_python(tmp_path)])
    assert run.returncode == 1, run.stderr
    assert "ERROR: point c16 failed: invalid result: 0 output tokens (at least 1 needed)" in run.stderr, run.stderr
    with open(results_of(bundle) / "summary.csv", newline="") as fh:
        assert [r["point"] for r in csv.DictReader(fh)] == ["c8"]


def test_a_runtime_that_hangs_on_a_point_fails_at_the_start_deadline_naming_it(tmp_path):
    """The services start; `podman run` of point c16 never starts its container and ignores TERM."""
    fake = tmp_path / "hung" / "podman"
    fake.parent.mkdir()
    fake.write_text("#!/bin/bash\nif [[ $1 == run && $* == *-bench-c16* ]]; then trap '' TERM; "
                    "while :; do sleep 1; done; fi\nexec /usr/bin/podman \"$@\"\n")
    fake.chmod(0o755)
    run, _, _ = play(tmp_path, benchmark=True, env={**BENCH_QUICK, "CONTAINER_START_TIMEOUT_S": "3"},
                     path_prefix=[fake.parent])
    assert run.returncode == 1, run.stderr
    assert "point c8: valid: " in run.stderr
    assert "ERROR: bench-c16 is not running 3s after its start: the podman runtime did not start it" in run.stderr
    start = run.line_time(r"started bench-c16")
    assert run.ended_at - start < 3 + GRACE_PERIOD_S + 3 * MARGIN_S, run.stderr
