"""A launcher killed by SIGKILL leaves nothing running; a new launch over what an earlier run left
names it (issue 12, item 7).

SIGKILL cannot be trapped: lib.sh's watchdog (its own session, told of every service group through
a pipe only the launcher holds) sees the pipe end and stops the groups: TERM, GRACE_PERIOD_S, KILL.
Where the watchdog was killed too, the next launch reads the PID files of that run and refuses to
start, naming each service, its process group and the command that stops it.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from harness import build_local, log_root, make_standin_bin, run_bundle, run_logs, signal_launcher
from scenarios import ENV, GRACE_PERIOD_S, SERVING, launcher_sigkill

pytestmark = pytest.mark.faults

SERVICES = ("lmcache-0", "prefill-0", "decode-0", "router", "client")
# SIGKILL -> no process of the run left: the watchdog sees the pipe end at once, TERMs every group,
# and the stand-ins stop within ~0.1 s. A service that ignores TERM costs the grace period.
CLEANUP_BOUND_S = 2.0
LEFTOVER_BOUND_S = 3.0  # a second launch over leftovers -> its exit 1


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, argv[0]) of every child of pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append((int(entry.name), b" ".join(argv).decode(errors="replace")))
    return found


def kill_watchdog(proc, marks) -> None:
    """SIGKILL the launcher's watchdog (what killing everything at once, kill -9 of the session or
    the OOM killer, would do), so that the services are really left behind."""
    dogs = [pid for pid, argv in children(proc.pid) if " watchdog " in f" {argv} "]
    assert len(dogs) == 1, children(proc.pid)
    os.kill(dogs[0], signal.SIGKILL)
    marks["watchdog"] = dogs[0]


@pytest.mark.parametrize("ignore_term", [False, True], ids=["stops_on_term", "prefill_ignores_term"])
def test_launcher_sigkill_leaves_no_service_running(tmp_path, ignore_term):
    run, cleanup_s = launcher_sigkill(tmp_path, ignore_term)
    bundle = tmp_path / "bundle"
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert run.leftovers == [], f"left running after the launcher's SIGKILL: {run.leftovers}"
    bound = CLEANUP_BOUND_S + (GRACE_PERIOD_S if ignore_term else 0)
    assert cleanup_s <= bound, f"SIGKILL -> nothing left took {cleanup_s:.2f}s (bound {bound}s)"
    if ignore_term:
        assert cleanup_s >= GRACE_PERIOD_S, cleanup_s  # TERM first, KILL only after the grace
    log = (run_logs(bundle) / "watchdog.log").read_text()
    assert "the launcher ended without tearing down (SIGKILL?): stopping lmcache-0 decode-0 prefill-0 router client" in log, log
    assert ("still running after 2s: KILL to" in log) == ignore_term, log
    print(f"SIGKILL -> no service left: {cleanup_s:.2f}s")


def test_a_clean_run_leaves_the_watchdog_quiet(tmp_path):
    bundle = tmp_path / "bundle"
    build_local(bundle)
    run = run_bundle(bundle, make_standin_bin(tmp_path / "bin"), env=ENV)
    assert run.returncode == 0, run.stderr
    assert run.leftovers == []
    assert (run_logs(bundle) / "watchdog.log").read_text() == ""
    assert not list(run_logs(bundle).glob("*.pid"))  # launcher.pid too


def second_launch(bundle: Path, bin_dir: Path, result: dict):
    def act(proc, marks):
        marks["launcher"] = proc.pid
        time.sleep(0.2)  # a SIGKILLed launcher is reaped by the test's wait meanwhile
        result["run"] = run_bundle(bundle, bin_dir, env=ENV, timeout=30)
    return act


def test_a_second_launch_over_leftovers_names_them_and_starts_nothing(tmp_path):
    bundle = tmp_path / "bundle"
    build_local(bundle)
    bin_dir = make_standin_bin(tmp_path / "bin")
    second: dict = {}
    first = run_bundle(bundle, bin_dir, env={**ENV, "STANDIN_CLIENT_SECS": "30"}, timeout=60,
                       on_line=[(SERVING, kill_watchdog), (SERVING, signal_launcher(signal.SIGKILL)),
                                (SERVING, second_launch(bundle, bin_dir, second))])
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert first.marks.get("errors") is None, first.marks
    assert first.leftovers, "the services should have been left running (watchdog killed)"
    run = second["run"]
    assert run.returncode == 1, run.stderr
    assert run.seconds < LEFTOVER_BOUND_S, run.seconds
    for name in SERVICES:
        m = re.search(rf"ERROR: an earlier run left {name} running: process group (\d+) \(PID file (\S+)\); "
                      rf"stop it with: kill -TERM -- -(\d+)", run.stderr)
        assert m and m.group(1) == m.group(3), f"{name} not named:\n{run.stderr}"
        assert int(m.group(1)) in first.leftovers or any(
            os.getpgid(p) == int(m.group(1)) for p in first.leftovers if Path(f"/proc/{p}").exists())
    assert "ERROR: an earlier run of this bundle is still running: nothing was started" in run.stderr
    assert not re.search(r"started \S+ \(pid", run.stderr), run.stderr
    assert "already running" not in run.stderr  # that launcher is dead
    assert run.leftovers == []
    print(f"second launch over leftovers: exit 1 in {run.seconds:.2f}s")


def test_a_second_launch_while_the_first_runs_names_the_launcher(tmp_path):
    bundle = tmp_path / "bundle"
    build_local(bundle)
    bin_dir = make_standin_bin(tmp_path / "bin")
    second: dict = {}
    first = run_bundle(bundle, bin_dir, env={**ENV, "STANDIN_CLIENT_SECS": "30"}, timeout=60,
                       on_line=[(SERVING, second_launch(bundle, bin_dir, second)),
                                (SERVING, signal_launcher(signal.SIGTERM))])
    run = second["run"]
    assert run.returncode == 1, run.stderr
    assert run.seconds < LEFTOVER_BOUND_S, run.seconds
    assert f"ERROR: this bundle is already running: launcher pid {first.marks['launcher']} (logs in " \
        f"{run_logs(bundle)}); stop it with: kill {first.marks['launcher']}" in run.stderr, run.stderr
    assert not re.search(r"started \S+ \(pid", run.stderr), run.stderr
    # The first run went on undisturbed until its own SIGTERM, and tore down as usual.
    assert first.returncode == 143, first.stderr
    assert "ERROR" not in first.stderr, first.stderr
    assert first.leftovers == [] and run.leftovers == []


def test_stale_pid_files_are_removed_and_the_run_goes_on(tmp_path):
    """PID files of processes that have ended, or whose PID now belongs to a process started after
    the file was written, are no leftovers: removed, and the launch proceeds."""
    bundle = tmp_path / "bundle"
    build_local(bundle)
    logs = log_root(bundle) / "run-earlier"
    logs.mkdir(parents=True)
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    (logs / "prefill-0.pid").write_text(f"{dead}\n")
    reused = logs / "router.pid"  # names a live process that started after the file was written
    reused.write_text(f"{os.getpid()}\n")
    os.utime(reused, (0, 0))  # 1970: long before this pytest started
    run = run_bundle(bundle, make_standin_bin(tmp_path / "bin"), env=ENV)
    assert run.returncode == 0, run.stderr
    assert "earlier run" not in run.stderr
    assert not list(logs.iterdir())  # both stale PID files removed
    assert run.leftovers == []
