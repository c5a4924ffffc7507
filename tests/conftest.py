"""Shared test helpers: building bundles, stand-in engines on PATH, and leftover-process checks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "tests" / "standins" / "standin.py"
ENGINE_NAMES = ("vllm", "lmcache", "vllm-router")


def run_recipec(*args: str, cwd: Path = ROOT, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "compiler.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"recipec {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def free_ports(n: int) -> list[int]:
    """n distinct ports that are free right now (bound together so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_overrides() -> tuple[list[str], dict[str, int]]:
    """--set flags moving every kimik2.5 port to a free one (tests may run beside real servers)."""
    names = ["prefill.port", "prefill.mooncake-bootstrap-port", "decode.port", "lmcache.port",
             "lmcache.http-port", "router.port", "router.prometheus-port"]
    ports = dict(zip(names, free_ports(len(names))))
    return [f"{k}={v}" for k, v in ports.items()], ports


@pytest.fixture
def standin_bin(tmp_path: Path) -> Path:
    """A directory holding vllm, lmcache and vllm-router: all the stand-in."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ENGINE_NAMES:
        (folder / name).symlink_to(STANDIN)
    return folder


def processes_with_tag(tag: str) -> list[int]:
    """PIDs whose environment carries tag: everything a launcher run started, grandchildren too."""
    needle = f"RECIPEC_TEST_TAG={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                stat = (entry / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return found


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    tag: str
    leftovers: list


def run_bundle(bundle: Path, path_dir: Path | None, env: dict | None = None, timeout: float = 90,
               signal_after: tuple | None = None) -> Run:
    """Run bundle/launch.sh with the stand-ins first on PATH; report status, output and leftovers."""
    tag = uuid.uuid4().hex
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("STANDIN_", "CLIENT_CMD"))}
    if path_dir is not None:
        full_env["PATH"] = f"{path_dir}:{full_env['PATH']}"
    full_env.update({"RECIPEC_TEST_TAG": tag, "PROBE_INTERVAL_S": "1", "READY_TIMEOUT_S": "20",
                     "GRACE_PERIOD_S": "3", "PROBE_TIMEOUT_S": "2"})
    full_env.update(env or {})
    start = time.monotonic()
    proc = subprocess.Popen(["bash", str(bundle / "launch.sh")], env=full_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        if signal_after is not None:
            wait_for, sig = signal_after
            wait_for(proc)
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"launcher did not finish within {timeout}s:\n{err[-4000:]}")
    seconds = time.monotonic() - start
    time.sleep(0.3)  # let the kernel finish reaping before we look
    leftovers = processes_with_tag(tag)
    for pid in leftovers:  # never leak processes into the next test, but report them
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return Run(proc.returncode, out, err, seconds, tag, leftovers)


@pytest.fixture
def local_bundle(tmp_path: Path):
    """Build kimik2.5 for the local target on free ports; returns (bundle dir, ports)."""
    def build(*extra: str):
        sets, ports = port_overrides()
        out = tmp_path / "bundle"
        args = ["build", "kimik2.5", "--target", "local", "-o", str(out)]
        for s in [*sets, *extra]:
            args += ["--set", s]
        run_recipec(*args, check=True)
        return out, ports
    return build
