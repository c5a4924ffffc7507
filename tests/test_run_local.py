"""The local bundle of kimik2.5, run for real against stand-in engines (issue: walking skeleton)."""

from __future__ import annotations

import re

from conftest import run_bundle


def test_stack_comes_up_and_client_status_is_the_launchers(local_bundle, standin_bin):
    bundle, ports = local_bundle()
    run = run_bundle(bundle, standin_bin)
    assert run.returncode == 0, run.stderr
    for name in ("lmcache-0", "decode-0", "prefill-0", "router"):
        assert re.search(rf"{name} is ready after \d+s", run.stderr), name
    assert f"router at http://127.0.0.1:{ports['router.port']}" in run.stderr
    assert "client exited with status 0" in run.stderr
    assert run.leftovers == []
    client_log = (bundle / "logs" / "client.log").read_text()
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
    assert f"got http://127.0.0.1:{ports['router.port']}" in (bundle / "logs" / "client.log").read_text()
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
