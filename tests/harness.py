"""Running generated bundles against stand-in engines: build, run, watch, and look for leftovers.

Plain functions (no pytest), shared by tests/ and bench/faults.py. Every process a run starts carries
RECIPEC_TEST_TAG=<uuid> in its environment, so leftovers are found by that tag, grandchildren too.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "tests" / "standins" / "standin.py"
ENGINE_NAMES = ("vllm", "lmcache", "vllm-router")
# The documented override path: every tunable is an environment variable of the launcher.
FAST_TUNABLES = {"PROBE_INTERVAL_S": "1", "READY_TIMEOUT_S": "20", "GRACE_PERIOD_S": "3",
                 "PROBE_TIMEOUT_S": "2"}
EVENT = re.compile(r"standin: (.+?) at (\d+\.\d+)$")


def run_recipec(*args: str, cwd: Path = ROOT, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "recipec.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"recipec {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(n: int) -> list[int]:
    """n distinct ports that are free right now, chosen below the kernel's ephemeral range.

    Ports the kernel hands out for bind(0) come from the ephemeral range, where every client
    connection and srun's own listeners also take theirs: a port picked there can be taken again
    between the pick and the bundle's preflight (seen in CI: srun held a test's LMCache port).
    """
    import random

    low, _ = _ephemeral_range()
    pick = random.SystemRandom()
    ports: list[int] = []
    while len(ports) < n:
        port = pick.randrange(20000, max(20001, low - 1))
        if port in ports:
            continue
        try:
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", port))
        except OSError:
            continue
        ports.append(port)
    return ports


def port_overrides() -> tuple[list[str], dict[str, int]]:
    """--set flags moving every kimik2.5 port to a free one (tests may run beside real servers), and
    its services out of their containers (the stand-ins run from PATH; a later --set of
    container.runtime puts them back in one: tests/podman.py)."""
    names = ["prefill.port", "prefill.mooncake-bootstrap-port", "decode.port", "lmcache.port",
             "lmcache.http-port", "router.port", "router.prometheus-port"]
    ports = dict(zip(names, free_ports(len(names))))
    return [f"{k}={v}" for k, v in ports.items()] + ["container.runtime=none", "container.services={}"], ports


# kimik2.5 runs a benchmark sweep; the process-fault tests need what they were written for: one
# long client step (the stand-in's `vllm bench serve`) while a fault hits. tests/faults/test_bench.py
# builds the benchmark itself (benchmark=True).
CLIENT_STEP = ("benchmark=null", 'client={command: [vllm, bench, serve, --base-url, "${ROUTER_URL}"]}')


def build_local(out: Path, *extra: str, recipe: str = "kimik2.5-tp4", benchmark: bool = False,
                runtime: str = "none", bin_dir: Path | None = None) -> dict[str, int]:
    """Build recipe for the local target into out, on free ports; returns the ports. kimik2.5-tp4:
    kimik2.5 on one 8-GPU machine (kimik2.5 itself needs 16 GPUs, which the local target refuses).
    Its sweep (kimik2.5's) gives way to a client step unless benchmark is true.

    runtime none: every service from PATH, whatever the recipe's container section says. podman
    (or docker): every service in podman (docker), in the stand-in image, with the stand-ins of
    bin_dir (tests/podman.py).
    """
    if recipe.startswith("kimik2.5") and not benchmark:
        extra = (*CLIENT_STEP, *extra)
    sets, ports = port_overrides()
    where, cwd = recipe, ROOT
    if runtime != "none":
        from podman import STANDIN_IMAGE, container_project, docker_image, make_image, standin_sets

        assert runtime in ("podman", "docker") and bin_dir is not None, (runtime, bin_dir)
        where = str(container_project(out.parent / "project", recipe))
        cwd = out.parent / "project"
        image = docker_image(STANDIN_IMAGE) if runtime == "docker" else make_image(STANDIN_IMAGE)
        sets += [*standin_sets(image, bin_dir, ports), f"container.runtime={runtime}"]
    args = ["build", where, "--target", "local", "-o", str(out)]
    for s in [*sets, *extra]:
        args += ["--set", s]
    run_recipec(*args, cwd=cwd, check=True)
    return ports


def log_root(bundle: Path) -> Path:
    """LOG_ROOT's default: a sibling of the bundle, `<bundle>.logs`, that a rebuild leaves alone."""
    return bundle.parent / f"{bundle.name}.logs"


def run_logs(bundle: Path) -> Path:
    """The newest run's log directory of a local bundle (LOG_ROOT/latest, resolved)."""
    return (log_root(bundle) / "latest").resolve()


def make_standin_bin(folder: Path, names=ENGINE_NAMES) -> Path:
    """A directory holding each engine name as a link to the stand-in."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
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
    started_at: float = 0.0  # wall clock (time.time()), comparable with the stand-ins' events
    ended_at: float = 0.0
    lines: list = field(default_factory=list)  # (wall-clock time, stderr line) as they arrived
    marks: dict = field(default_factory=dict)  # name -> wall-clock time an action fired
    clean_at: float = 0.0  # wall clock when no process of the run was left (0: some were)

    def line_time(self, pattern: str) -> float:
        """When the first stderr line matching pattern arrived."""
        for at, line in self.lines:
            if re.search(pattern, line):
                return at
        raise AssertionError(f"no line matches {pattern!r}:\n{self.stderr}")


def events(logfile: Path) -> list[tuple[str, float]]:
    """The timed events a stand-in wrote to its log: [(event, wall-clock time)]."""
    if not logfile.exists():
        return []
    return [(m.group(1), float(m.group(2))) for line in logfile.read_text().splitlines()
            if (m := EVENT.search(line))]


def event_time(logfile: Path, prefix: str) -> float:
    for what, at in events(logfile):
        if what.startswith(prefix):
            return at
    raise AssertionError(f"{logfile.name} has no event {prefix!r}:\n{logfile.read_text()}")


Action = Callable[[subprocess.Popen, dict], None]

# Signals a launcher must be able to trap. A process started with one of them ignored (pytest run
# under `nohup`, or as `cmd &` from a non-interactive shell, which ignores INT and QUIT) passes
# that on to its children, and bash cannot trap a signal that was ignored when it started.
LAUNCHER_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGPIPE)


def default_signals() -> None:
    """preexec_fn for every launcher a test starts: the signal dispositions a terminal gives it."""
    for sig in LAUNCHER_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


def launcher_popen(argv: list, **kwargs) -> subprocess.Popen:
    """Start a launcher (launch.sh, salloc, sbatch) as a user at a terminal would: default signal
    dispositions, its own session (a signal to it reaches no test process). The one way the tests
    start launchers."""
    return subprocess.Popen(argv, preexec_fn=default_signals, start_new_session=True, **kwargs)


def launcher_run(argv: list, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """launcher_popen, waited for, output captured as text (subprocess.run's shape)."""
    with launcher_popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def fake_node(root: Path, gpus: int = 8, mem_available_gib: int = 4096, rdma: tuple = ()) -> dict:
    """A node's /sys, /proc and /dev as preflight.sh reads them (an MI355X node by default: 8 KFD
    GPU nodes, 4 TiB free), under root; returns the PREFLIGHT_*_ROOT variables pointing there."""
    sys_root, proc_root, dev_root = root / "sys", root / "proc", root / "dev"
    nodes = sys_root / "class" / "kfd" / "kfd" / "topology" / "nodes"
    for i in range(gpus + 1):  # node 0 is the CPU (gpu_id 0), as KFD lists it
        (nodes / str(i)).mkdir(parents=True, exist_ok=True)
        (nodes / str(i) / "gpu_id").write_text(f"{0 if i == 0 else 1000 + i}\n")
    for dev in rdma:
        (sys_root / "class" / "infiniband" / dev).mkdir(parents=True, exist_ok=True)
    proc_root.mkdir(parents=True, exist_ok=True)
    (proc_root / "meminfo").write_text(f"MemTotal: {mem_available_gib * 1048576 + 1024} kB\n"
                                       f"MemAvailable: {mem_available_gib * 1048576} kB\n")
    dev_root.mkdir(parents=True, exist_ok=True)
    return {"PREFLIGHT_SYS_ROOT": str(sys_root), "PREFLIGHT_PROC_ROOT": str(proc_root),
            "PREFLIGHT_DEV_ROOT": str(dev_root)}


_HEALTHY_NODE: dict = {}


def healthy_node() -> dict:
    """fake_node's variables of one healthy node per test process (the stand-in runs' default:
    this machine has neither the GPUs nor the 1200 GiB of free memory kimik2.5-tp4 asks for)."""
    if not _HEALTHY_NODE:
        import tempfile

        _HEALTHY_NODE.update(fake_node(Path(tempfile.mkdtemp(prefix="recipec-node-"))))
    return dict(_HEALTHY_NODE)


def run_bundle(bundle: Path, path_dir: Path | None, env: dict | None = None, timeout: float = 90,
               on_line: list | tuple = (), path_prefix: list | tuple = (), shell: str = "bash",
               settle_s: float = 0.3) -> Run:
    """Run bundle/launch.sh with the stand-ins first on PATH; report status, output and leftovers
    (processes of the run still there settle_s after the launcher's exit).

    on_line: (regex, action) pairs; action(proc, marks) runs once, on the first stderr line matching
    regex (e.g. send the launcher a signal, or fault a service), and may note times in marks.
    """
    tag = uuid.uuid4().hex
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("STANDIN_", "CLIENT_CMD"))}
    dirs = [str(d) for d in path_prefix] + ([str(path_dir)] if path_dir is not None else [])
    if dirs:
        full_env["PATH"] = ":".join([*dirs, full_env["PATH"]])
    full_env.update({"RECIPEC_TEST_TAG": tag, **FAST_TUNABLES, **healthy_node()})
    full_env.update(env or {})
    lines: list = []
    marks: dict = {}
    pending = list(on_line)
    started_at, start = time.time(), time.monotonic()
    proc = launcher_popen([shell, str(bundle / "launch.sh")], env=full_env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def read_stderr():
        for line in proc.stderr:
            lines.append((time.time(), line.rstrip("\n")))
            for item in list(pending):
                if re.search(item[0], line):
                    pending.remove(item)
                    try:
                        item[1](proc, marks)
                    except Exception as exc:  # noqa: BLE001 - reported with the run, not lost
                        marks.setdefault("errors", []).append(repr(exc))

    out_chunks: list = []
    readers = [threading.Thread(target=read_stderr, daemon=True),
               threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for pid in processes_with_tag(tag):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        raise AssertionError(f"launcher did not finish within {timeout}s:\n"
                             + "\n".join(line for _, line in lines[-60:]))
    ended_at, seconds = time.time(), time.monotonic() - start
    for reader in readers:  # a leftover holding the pipes open must not hang the test
        reader.join(5)
    out = "".join(out_chunks)
    # Look for 0.3 s at least (let the kernel finish reaping), up to settle_s while some are left
    # (what may still be stopping); clean_at: since when none has been.
    clean_at = 0.0
    while True:
        leftovers = processes_with_tag(tag)
        if leftovers:
            clean_at = 0.0
        elif not clean_at:
            clean_at = time.time()
        waited = time.monotonic() - start - seconds
        if waited >= 0.3 and (not leftovers or waited >= settle_s):
            break
        time.sleep(0.02)
    for pid in leftovers:  # never leak processes into the next test, but report them
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    stderr = "\n".join(line for _, line in lines) + "\n"
    return Run(proc.returncode, out, stderr, seconds, tag, leftovers, started_at, ended_at, lines, marks,
               clean_at)


def signal_launcher(sig: int, mark: str = "signal") -> Action:
    """An on_line action: send the launcher sig, noting when."""
    def act(proc: subprocess.Popen, marks: dict) -> None:
        marks[mark] = time.time()
        proc.send_signal(sig)
    return act


def signal_service(pidfile: Path, sig: int, mark: str = "fault") -> Action:
    """An on_line action: send a service (by its PID file) sig, noting when."""
    def act(proc: subprocess.Popen, marks: dict) -> None:
        pid = int(pidfile.read_text().strip())
        marks[mark] = time.time()
        os.kill(pid, sig)
    return act


def resolved_data(path: Path):
    """A recipe file's data as recipec resolves it: its extends merged, its variants section set
    aside (compose.py, variants.py); what a flat recipe would hold."""
    from recipec.pipeline import load_source

    return load_source(Path(path), Path(path).name).doc.data
