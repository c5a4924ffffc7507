"""The local bundle of kimik2.5-tp4 (kimik2.5 on one machine), run for real against stand-in engines
(issue: walking skeleton)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket

import pytest

from conftest import run_bundle
from harness import ROOT, build_local, event_time, log_root, run_logs, signal_launcher, signal_service


def test_stack_comes_up_and_client_status_is_the_launchers(local_bundle, standin_bin):
    bundle, ports = local_bundle()
    run = run_bundle(bundle, standin_bin)
    assert run.returncode == 0, run.stderr
    for name in ("lmcache-0", "decode-0", "prefill-0", "router"):
        assert re.search(rf"{name} is ready after \d+s", run.stderr), name
    assert f"router at http://127.0.0.1:{ports['router.port']}" in run.stderr
    assert "client exited with status 0" in run.stderr
    assert run.leftovers == []
    client_log = (run_logs(bundle) / "client.log").read_text()
    assert f"http://127.0.0.1:{ports['router.port']}/v1/models answered 200" in client_log


def test_client_failure_is_the_launchers_exit_status(local_bundle, standin_bin):
    bundle, _ = local_bundle()
    run = run_bundle(bundle, standin_bin, env={"STANDIN_CLIENT_EXIT": "5"})
    assert run.returncode == 5, run.stderr
    assert "client exited with status 5" in run.stderr
    assert run.leftovers == []


def test_client_cmd_replaces_the_recipe_client(local_bundle, standin_bin):
    bundle, ports = local_bundle()
    run = run_bundle(bundle, standin_bin, env={"CLIENT_CMD": 'echo "got $ROUTER_URL"; exit 4'})
    assert run.returncode == 4
    assert f"got http://127.0.0.1:{ports['router.port']}" in (run_logs(bundle) / "client.log").read_text()
    assert run.leftovers == []


def test_service_dying_at_start_fails_fast_with_name_and_log(local_bundle, standin_bin):
    bundle, ports = local_bundle()
    run = run_bundle(bundle, standin_bin, env={f"STANDIN_{ports['decode.port']}": "die_at_start:3"})
    assert run.returncode != 0
    assert re.search(r"ERROR: decode-0 \(pid \d+\) exited with status 3", run.stderr), run.stderr
    assert "fatal error during start-up (simulated)" in run.stderr  # the log tail
    # Detected within a few probe intervals (1 s here) of the start, not at the 20 s deadline.
    assert run.seconds < 8, run.seconds
    assert run.leftovers == []


def test_start_is_ordered_by_readiness_and_parallel_where_independent(local_bundle, standin_bin):
    """Read from the stand-ins' own timed events: what started when, what was ready when."""
    bundle, ports = local_bundle()
    # A slow LMCache server: decode needs nothing, so it must not wait for it; prefill must.
    run = run_bundle(bundle, standin_bin, env={f"STANDIN_{ports['lmcache.http-port']}": "slow_start:2"})
    assert run.returncode == 0, run.stderr
    logs = run_logs(bundle)

    def started(name):
        return event_time(logs / f"{name}.log", "client started" if name == "client" else "started")

    def ready(name):
        return event_time(logs / f"{name}.log", "ready")

    assert started("decode-0") < ready("lmcache-0")  # independent services start in parallel
    assert started("prefill-0") >= ready("lmcache-0")  # LMCache ready before the prefill using it
    assert started("router") >= max(ready("prefill-0"), ready("decode-0"))  # engines before router
    assert started("client") >= ready("router")  # router before client
    # ...and each as soon as the launcher sees it: within one probe interval (1 s) and a margin.
    assert started("prefill-0") - ready("lmcache-0") < 1.5
    assert started("router") - max(ready("prefill-0"), ready("decode-0")) < 1.5
    assert run.leftovers == []


def test_port_taken_by_an_ipv6_listener_is_seen_without_ss(local_bundle, standin_bin, tmp_path):
    """/proc/net/tcp6 is read too: a wildcard IPv6 listener blocks the port for IPv4 as well."""
    bundle, ports = local_bundle()
    no_ss = tmp_path / "no-ss"
    no_ss.mkdir()
    (no_ss / "ss").write_text("#!/bin/sh\nexit 1\n")
    (no_ss / "ss").chmod(0o755)
    try:
        sock = socket.socket(socket.AF_INET6)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT is not "no IPv6"
        sock.bind(("::", ports["router.port"]))
    except OSError:
        pytest.skip("no IPv6 on this machine")
    sock.listen(1)
    try:
        run = run_bundle(bundle, standin_bin, path_prefix=[no_ss])
    finally:
        sock.close()
    assert run.returncode == 1
    assert re.search(rf"ERROR: port {ports['router.port']}, wanted by router \(router HTTP\), is already "
                     rf"in use by pid {os.getpid()} \(", run.stderr), run.stderr
    assert "started " not in run.stderr
    assert run.leftovers == []


@pytest.mark.parametrize("mode", ["die_after:usr1:4", "hang_after:usr1"])
def test_older_bash_without_wait_n_still_detects_within_a_tick(local_bundle, standin_bin, mode):
    """bash < 5.1 has no `wait -n -p`: lib.sh falls back to checking every tick. Force that path."""
    bundle, ports = local_bundle()
    lib = bundle / "lib.sh"
    text = lib.read_text()
    assert "  WAIT_ANY=1\n" in text
    lib.write_text(text.replace("  WAIT_ANY=1\n", "  WAIT_ANY=0\n"))
    pidfile = run_logs(bundle) / "decode-0.pid"
    run = run_bundle(bundle, standin_bin,
                     env={f"STANDIN_{ports['decode.port']}": mode, "STANDIN_CLIENT_SECS": "30",
                          "PROBE_TIMEOUT_S": "1", "UNHEALTHY_AFTER": "2"},
                     on_line=[("client is running", signal_service(pidfile, signal.SIGUSR1))])
    assert run.returncode == 1, run.stderr
    fault = event_time(run_logs(bundle) / "decode-0.log", "FAULT")
    if mode.startswith("die"):
        assert re.search(r"ERROR: decode-0 \(pid \d+\) exited with status 4", run.stderr), run.stderr
        assert run.ended_at - fault <= 1 + 1.0 + 1.0  # a tick, a probe timeout, a margin
    else:
        assert "decode-0 is alive but has not answered" in run.stderr, run.stderr
        assert run.ended_at - fault <= 2 * (1 + 1) + 1.0
    assert run.leftovers == []


def lib_launcher(folder, body: str, grace_s: int) -> None:
    """folder/launch.sh: the golden lib.sh sourced, as a bundle's launcher does, then `body` (bash;
    $here is the folder). For tests of lib.sh's teardown on its own."""
    (folder / "lib.sh").write_text((ROOT / "golden" / "kimik2.5-tp4" / "local" / "lib.sh").read_text())
    (folder / "launch.sh").write_text(
        "set -euo pipefail\nshopt -s inherit_errexit\n"
        f"READY_TIMEOUT_S=5 PROBE_INTERVAL_S=1 PROBE_TIMEOUT_S=1 UNHEALTHY_AFTER=2 GRACE_PERIOD_S={grace_s}\n"
        "LOG_TAIL_LINES=5\n"
        'here=$(dirname -- "${BASH_SOURCE[0]}")\n'
        'source "$here/lib.sh"\n' + body)


def test_teardown_stops_children_not_yet_recorded_as_services(tmp_path):
    """A signal can land between start_service's fork and its bookkeeping: the child is then no
    known service, but still this shell's job, and teardown must stop it (with or without setsid)."""
    lib_launcher(tmp_path, "(exec setsid sleep 300) &\n"  # its own group already, never recorded
                 "(exec sleep 301) &\n"  # not yet in its own group
                 "sleep 0.3\n"
                 "exit 3\n", grace_s=1)
    run = run_bundle(tmp_path, None)
    assert run.returncode == 3, run.stderr
    assert run.seconds < 3, run.seconds
    assert run.leftovers == [], run.stderr


def test_a_term_lost_before_setsid_is_sent_again_to_the_group(tmp_path):
    """Teardown can TERM a service between start_service's fork and its setsid: only the PID gets
    it, and the shell in that window can lose it (CI saw a just-started stand-in outlive its TERM
    and be KILLed). A setsid that ignores TERM for its first 0.5 s plays that window: the service
    must still stop on a TERM once its group exists, long before GRACE_PERIOD_S would KILL it."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    marker = tmp_path / "in-the-window"
    (fake / "setsid").write_text(f"#!/bin/bash\ntrap '' TERM\n: >{marker}\nsleep 0.5\ntrap - TERM\n"
                                 f"exec {shutil.which('setsid')} \"$@\"\n")
    (fake / "setsid").chmod(0o755)
    # start_service waits for the group to exist, so the window is inside it: a TERM to the
    # launcher from a helper that sees the fake setsid running, and the service recorded (its PID
    # file, written just before that wait), lands there.
    lib_launcher(tmp_path, f'PATH="{fake}:$PATH"\n'
                 f'(until [[ -e {marker} && -e "$here/svc.pid" ]]; do sleep 0.01; done; kill -TERM $$) &\n'
                 'start_service svc "$here/svc.log" http://127.0.0.1:9/ -- sleep 302 || exit 1\n'
                 "sleep 5\nexit 3\n", grace_s=6)
    run = run_bundle(tmp_path, None)
    assert run.returncode == 143, run.stderr
    assert "received SIGTERM" in run.stderr
    assert "svc made its process group after the TERM: TERM again" in run.stderr, run.stderr
    assert "sending KILL" not in run.stderr
    assert run.seconds < 3, run.seconds
    assert run.leftovers == [], run.stderr


def test_a_subshell_left_the_traps_does_not_tear_the_stack_down(tmp_path):
    """CI once saw a second process with the launcher's state (a subshell that kept the EXIT trap)
    tear the whole stack down mid-run and exit 0 while the launcher went on. The traps act in the
    launcher's own shell only: a subshell running them just leaves."""
    lib_launcher(tmp_path,
                 'start_service svc "$here/svc.log" http://127.0.0.1:9/ -- sleep 303 || exit 1\n'
                 'until kill -0 -- "-${SERVICE_PID[svc]}" 2>/dev/null; do sleep 0.01; done\n'  # group up
                 "(trap on_exit EXIT; exit 0) || true\n"  # what bash did: a subshell with the EXIT trap
                 "(on_signal TERM 143) || true\n"
                 'kill -0 -- "-${SERVICE_PID[svc]}" && echo "svc still up" >&2\n'
                 "exit 3\n", grace_s=2)
    run = run_bundle(tmp_path, None)
    assert run.returncode == 3, run.stderr
    assert "svc still up" in run.stderr, run.stderr
    assert run.stderr.count("exit status") == 1 and "exit status 3" in run.stderr, run.stderr
    assert "received SIGTERM" not in run.stderr, run.stderr
    assert run.leftovers == [], run.stderr


@pytest.mark.parametrize("seen, status", [("0", 0), ("143", 143), ("130", 130), ("5", 1)])
def test_a_node_that_sees_the_run_over_exits_with_what_that_run_was(tmp_path, seen, status):
    """A node waiting for the router that finds the router node's status file leaves; it reports
    success only if that run succeeded: after a scancel it must not say 0 because it noticed the
    other node's 143 before its own SIGTERM arrived."""
    (tmp_path / "node0.status").write_text(seen + "\n")
    lib_launcher(tmp_path, 'RUN_OVER_FILE=$here/node0.status\n'
                 "watch_remote router http://127.0.0.1:9/health\n"
                 "wait_ready router\n"
                 "exit 0\n", grace_s=1)
    run = run_bundle(tmp_path, None)
    assert run.returncode == status, run.stderr
    assert f"the run is over ({tmp_path}/node0.status: {seen})" in run.stderr, run.stderr


def test_a_signal_during_teardown_is_never_reported_as_success(tmp_path):
    """The run ends with status 0 and tears down (a service that ignores TERM keeps it busy); a
    SIGTERM then arrives: teardown finishes, and the exit status is 143, not 0."""
    lib_launcher(tmp_path, 'STATUS_FILE=$here/node.status\n'
                 "start_service svc \"$here/svc.log\" '' -- bash -c 'trap \"\" TERM; sleep 304' || exit 1\n"
                 'until kill -0 -- "-${SERVICE_PID[svc]}" 2>/dev/null; do sleep 0.01; done\n'
                 "sleep 0.3\n"
                 "exit 0\n", grace_s=2)
    run = run_bundle(tmp_path, None, on_line=[(r"stopping svc", signal_launcher(signal.SIGTERM))])
    assert run.returncode == 143, run.stderr
    assert "svc did not stop within 2s of TERM: sending KILL" in run.stderr  # teardown finished
    assert "a signal arrived during teardown: not reporting success" in run.stderr
    assert (tmp_path / "node.status").read_text() == "143\n"
    assert run.leftovers == [], run.stderr


def test_logs_survive_a_rebuild_and_each_run_keeps_its_own(local_bundle, standin_bin):
    """A rebuild replaces the bundle directory; the logs live beside it (LOG_ROOT = <bundle>.logs),
    one directory per run, so the failed run's logs are still there after the fix is rebuilt."""
    bundle, ports = local_bundle()
    failed = run_bundle(bundle, standin_bin, env={f"STANDIN_{ports['decode.port']}": "die_at_start:3"})
    assert failed.returncode == 1, failed.stderr
    first = run_logs(bundle)
    assert first.parent == log_root(bundle) and re.fullmatch(r"run-\d{8}T\d{6}Z-\d+", first.name), first
    assert f"logs of this run: {first}" in failed.stderr
    assert "fatal error during start-up (simulated)" in (first / "decode-0.log").read_text()
    assert not (bundle / "logs").exists()

    build_local(bundle)  # the rebuild
    assert "fatal error during start-up (simulated)" in (first / "decode-0.log").read_text()
    again = run_bundle(bundle, standin_bin, env={"RUN_ID": "after-the-fix"})
    assert again.returncode == 0, again.stderr
    assert run_logs(bundle) == log_root(bundle) / "after-the-fix"
    assert (first / "decode-0.log").exists()  # never overwritten by a later run
    assert "client exited with status 0" not in (first / "decode-0.log").read_text()


def test_log_dir_still_overrides_where_a_run_logs(local_bundle, standin_bin, tmp_path):
    bundle, _ = local_bundle()
    elsewhere = tmp_path / "elsewhere"
    run = run_bundle(bundle, standin_bin, env={"LOG_DIR": str(elsewhere)})
    assert run.returncode == 0, run.stderr
    assert (elsewhere / "client.log").exists() and (elsewhere / "watchdog.log").exists()
    assert not (log_root(bundle) / "latest").exists()
