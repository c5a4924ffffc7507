"""Every fault scenario (scenarios.py) against a real generated local bundle with stand-in engines.

Each asserts the exit status, a message naming the service, the service's log tail, the time from
the fault to the launcher's exit, and that no process of the bundle survives (grandchildren too).
"""

from __future__ import annotations

import re
import shutil
import signal
import sys

import pytest

from harness import run_bundle, run_logs, signal_launcher
from podman import containers_named, remove_containers, require_docker, require_podman
from scenarios import BY_NAME, ENV, SCENARIOS, SERVING_NO_CLIENT, after, play, setup

pytestmark = pytest.mark.faults


PLAYS = [pytest.param(s, r, id=s.name if r == "none" else f"{s.name}-{r}",
                      marks=[pytest.mark.containers] if r != "none" else [])
         for r in ("none", "podman", "docker") for s in SCENARIOS if r in s.runtimes]


@pytest.mark.parametrize("scenario, runtime", PLAYS)
def test_fault(scenario, runtime, tmp_path):
    if runtime == "podman":
        require_podman()
    elif runtime == "docker":
        require_docker()
    out = play(scenario, tmp_path, runtime)
    scenario = scenario.for_runtime(runtime)
    run = out.run
    context = f"{scenario.name}: {scenario.summary}\n{run.stderr}"
    if scenario.status is None:
        assert run.returncode != 0, context
    else:
        assert run.returncode == scenario.status, context
    assert re.search(out.message, run.stderr), f"no {out.message!r} in:\n{context}"
    if scenario.tail is not None:  # the service's own words, printed as its log tail
        assert re.search(r"last \d+ lines of \S+\.log:", run.stderr), context
        assert "    | " in run.stderr and scenario.tail in run.stderr, context
    assert scenario.min_s <= out.detect_s <= scenario.bound_s, (
        f"{scenario.name}: fault -> exit took {out.detect_s:.2f}s, expected "
        f"{scenario.min_s}..{scenario.bound_s}s\n{context}")
    if scenario.nothing_started:
        assert "started " not in run.stderr, context
    assert run.marks.get("errors") is None, run.marks
    scenario.check(run, out.setup)
    assert run.leftovers == [], f"processes left behind: {run.leftovers}\n{context}"
    assert not list(run_logs(out.setup.bundle).glob("*.pid")), "PID files left behind"
    if runtime != "none":  # every container this run named is gone, whatever ended it
        left = containers_named(run_logs(out.setup.bundle).name, runtime)
        remove_containers(left, runtime)
        assert left == [], f"containers left behind: {left}\n{context}"
        if not scenario.nothing_started:
            assert re.search(rf"removed the containers of this run \({runtime}\)", run.stderr), context


def test_launchers_get_sigint_even_when_the_tests_ignore_it(tmp_path):
    """pytest started under `nohup ... &` ignores SIGINT, and bash cannot trap a signal ignored at
    its start: the tests' one way of starting a launcher (harness.launcher_popen) resets it."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        out = play(BY_NAME["sigint_while_starting"], tmp_path)
    finally:
        signal.signal(signal.SIGINT, old)
    assert out.run.returncode == 130, out.run.stderr
    assert "WARNING" not in out.run.stderr, out.run.stderr


def test_a_launcher_started_with_sigint_ignored_says_so_and_stops_on_sigterm(tmp_path):
    """What `./launch.sh &` from a script gets: SIGINT ignored. The launcher says at once that Ctrl-C
    cannot stop it and how to; SIGINT then does nothing, SIGTERM still tears down everything."""
    s = setup(tmp_path, BY_NAME["sigint_while_serving"])
    wrapper = tmp_path / "bash-int-ignored"  # bash with SIGINT ignored, as a non-interactive `&` does
    wrapper.write_text(f"#!{sys.executable}\nimport os, signal, sys\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                       f"os.execv({shutil.which('bash')!r}, ['bash', *sys.argv[1:]])\n")
    wrapper.chmod(0o755)
    run = run_bundle(s.bundle, s.bin, env=ENV, timeout=60, shell=str(wrapper),
                     on_line=[(SERVING_NO_CLIENT, signal_launcher(signal.SIGINT, "sigint")),
                              (SERVING_NO_CLIENT, after(1.0, signal_launcher(signal.SIGTERM)))])
    assert run.returncode == 143, run.stderr
    assert "WARNING: SIGINT was ignored when this launcher started" in run.stderr
    assert "received SIGINT" not in run.stderr and "received SIGTERM: tearing down" in run.stderr
    assert run.ended_at - run.marks["signal"] < 2, run.stderr
    assert run.leftovers == [], run.stderr


def test_preflight_skip_turns_a_wrong_check_off(tmp_path):
    """PREFLIGHT_SKIP=accelerators: the node that shows too few GPUs (the preflight_accelerators
    scenario) runs the whole stack, and says the check was skipped."""
    from harness import fake_node

    s = setup(tmp_path, BY_NAME["preflight_accelerators"])
    run = run_bundle(s.bundle, s.bin, timeout=60,
                     env={**ENV, **fake_node(tmp_path / "node", gpus=4), "PREFLIGHT_SKIP": "accelerators"})
    assert run.returncode == 0, run.stderr
    assert "preflight accelerators: skipped (PREFLIGHT_SKIP)" in run.stderr
    assert run.leftovers == []
