"""tools/containers: make-image.sh builds a local image and the stand-in engine serves inside it.

Skipped when podman is not usable, unless RECIPEC_REQUIRE_CONTAINERS=1 (CI), which makes a
missing podman a failure. Needs root (debootstrap) the first time; later runs reuse the image
(make-image.sh skips a build whose recipe hash label matches).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.containers

ROOT = Path(__file__).resolve().parents[2]
MAKE_IMAGE = ROOT / "tools" / "containers" / "make-image.sh"
STANDINS = ROOT / "tests" / "standins"
IMAGE = "recipec-standin:bookworm"


def podman_usable() -> str | None:
    """None if podman can run containers here, else why not."""
    if shutil.which("podman") is None:
        return "podman not installed (tools/containers/setup-podman.sh)"
    if os.geteuid() != 0:
        return "make-image.sh needs root"
    proc = subprocess.run(["podman", "info"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return f"podman info failed: {proc.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="module")
def image() -> str:
    why = podman_usable()
    if why:
        if os.environ.get("RECIPEC_REQUIRE_CONTAINERS") == "1":
            pytest.fail(f"RECIPEC_REQUIRE_CONTAINERS=1 but {why}")
        pytest.skip(why)
    proc = subprocess.run([str(MAKE_IMAGE), IMAGE], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return f"localhost/{IMAGE}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_standin_serves_health_inside_podman(image: str):
    port = free_port()
    name = f"recipec-test-{os.getpid()}-standin"
    run = subprocess.run(
        ["podman", "run", "-d", "--rm", "--init", "--name", name, "--network", "host",
         "-v", f"{STANDINS}:{STANDINS}:ro", image,
         "python3", str(STANDINS / "standin.py"), "--port", str(port)],
        capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                    status = resp.status
                    break
            except OSError:
                time.sleep(0.1)
        assert status == 200
        # The process answering is the one in the container: podman knows it as running.
        state = subprocess.run(["podman", "inspect", "--format", "{{.State.Status}}", name],
                               capture_output=True, text=True, timeout=30)
        assert state.stdout.strip() == "running"
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "2", name], capture_output=True, timeout=60)
    gone = subprocess.run(["podman", "container", "exists", name], timeout=30)
    assert gone.returncode == 1


def test_make_image_is_cached(image: str):
    start = time.monotonic()
    proc = subprocess.run([str(MAKE_IMAGE), IMAGE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stderr
    assert time.monotonic() - start < 10


def test_make_image_rejects_a_registry_reference():
    proc = subprocess.run([str(MAKE_IMAGE), "docker.io/vllm/x:1"], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 1
    assert "must be NAME:TAG" in proc.stderr
