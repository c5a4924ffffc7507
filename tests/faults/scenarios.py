"""The fault scenarios: each plays one fault against a real generated `local` bundle of kimik2.5-tp4.

Shared by tests/faults/test_faults.py (which asserts) and bench/faults.py (which times). A scenario
says how to provoke the fault (stand-in modes, a signal, a taken port, a missing binary), what the
launcher must answer (exit status, a message naming the service, the service's log tail), when the
fault happened (a stand-in's timed FAULT event, or the moment the test acted) and how soon the
launcher must have exited after it.

Tunables come from the environment, the documented override path: PROBE_INTERVAL_S=1,
GRACE_PERIOD_S=2, PROBE_TIMEOUT_S=1, UNHEALTHY_AFTER=2, READY_TIMEOUT_S=20 (3 where the deadline is
the fault).
"""

from __future__ import annotations

import json
import os
import subprocess
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness import (ENGINE_NAMES, Run, build_local, event_time, fake_node, make_standin_bin, run_bundle,
                     run_logs, signal_launcher, signal_service)

PROBE_INTERVAL_S = 1
GRACE_PERIOD_S = 2
PROBE_TIMEOUT_S = 1
UNHEALTHY_AFTER = 2
SHORT_DEADLINE_S = 3
ENV = {"PROBE_INTERVAL_S": str(PROBE_INTERVAL_S), "GRACE_PERIOD_S": str(GRACE_PERIOD_S),
       "PROBE_TIMEOUT_S": str(PROBE_TIMEOUT_S), "UNHEALTHY_AFTER": str(UNHEALTHY_AFTER)}
# Detection targets: a fault ends the run within one probe interval plus this margin.
MARGIN_S = 1.0
DEATH_BOUND_S = PROBE_INTERVAL_S + MARGIN_S
HANG_BOUND_S = UNHEALTHY_AFTER * (PROBE_INTERVAL_S + PROBE_TIMEOUT_S) + MARGIN_S
CONTAINER_TEARDOWN_S = 1.0  # what a podman teardown adds to fault -> exit (Scenario.for_runtime)

SERVING = r"all services ready; client is running"
SERVING_NO_CLIENT = r"all services ready; serving until SIGINT or SIGTERM"
SERVICE_PORT = {"lmcache-0": "lmcache.http-port", "prefill-0": "prefill.port",
                "decode-0": "decode.port", "router": "router.port"}


@dataclass
class Setup:
    """What one play of a scenario works with."""

    workdir: Path
    bundle: Path
    ports: dict
    bin: Path
    path_prefix: list = field(default_factory=list)
    held: list = field(default_factory=list)  # sockets the test holds during the run
    runtime: str = "none"  # where the services run: none, podman, docker

    def log(self, service: str) -> Path:
        return run_logs(self.bundle) / f"{service}.log"

    def mode(self, service: str, mode: str) -> dict:
        return {f"STANDIN_{self.ports[SERVICE_PORT[service]]}": mode}


@dataclass
class Scenario:
    name: str
    summary: str
    status: int | None  # None: any non-zero status
    message: str  # regex the launcher's stderr must match (names the service)
    tail: str | None  # a line of the service's log the launcher must have printed
    fault_time: Callable[[Run, Setup], float]
    bound_s: float  # fault -> launcher exit
    env: Callable[[Setup], dict] = lambda s: {}
    prepare: Callable[[Setup], None] = lambda s: None
    on_line: Callable[[Setup], list] = lambda s: []
    build: tuple = ()
    nothing_started: bool = False
    min_s: float = 0.0  # fault -> exit must take at least this (the grace period before KILL)
    check: Callable[[Run, Setup], None] = lambda run, s: None  # anything else to assert
    # What differs when every service runs in podman (field -> value), e.g. a missing binary is no
    # longer found on the host's PATH but by the container's start.
    in_podman: dict = field(default_factory=dict)
    in_docker: dict = field(default_factory=dict)  # what differs again under docker (its init's words)
    runtimes: tuple = ("none", "podman", "docker")  # the runtimes it is played with

    def for_runtime(self, runtime: str) -> "Scenario":
        if runtime == "none":
            return self
        import dataclasses

        # Fault -> exit includes the teardown, and in containers the teardown costs more: each
        # runtime client exits only after conmon has seen its container exit, and the containers
        # are then removed by one runtime call (~0.2 s and ~0.3 s here: bench/faults.py,
        # docs/containers.md). Where nothing was started there is nothing to remove.
        extra = 0.0 if self.in_podman.get("nothing_started", self.nothing_started) else CONTAINER_TEARDOWN_S
        # in_podman holds for docker too, naming docker where it names podman.
        differs = {k: v.replace("podman", runtime) if isinstance(v, str) else v for k, v in self.in_podman.items()}
        differs.update(self.in_docker if runtime == "docker" else {})
        return dataclasses.replace(self, **{"bound_s": self.bound_s + extra, **differs})


def at_event(service: str, prefix: str = "FAULT") -> Callable[[Run, Setup], float]:
    return lambda run, s: event_time(s.log(service), prefix)


def at_mark(mark: str) -> Callable[[Run, Setup], float]:
    return lambda run, s: run.marks[mark]


def at_start(run: Run, s: Setup) -> float:
    return run.started_at


def fault_service(service: str, when: str = SERVING) -> Callable[[Setup], list]:
    """Make service's USR1-triggered fault happen once the stack serves. In a container the signal
    goes to the engine through the runtime (`RUNTIME kill --signal`, which answers once it is
    delivered): the runtime client's own forwarding (sig-proxy) is asynchronous, and docker's
    dropped one of these under load in CI, which is not what the scenarios test. Even `docker kill`
    once answered and the engine never logged its fault (CI, hangs_while_serving-docker): until the
    engine logs it, the signal is sent again each second, five times at most (the fault's time is
    the engine's FAULT line, so a late one is not counted against the launcher)."""
    def signal_in_container(s: Setup):
        def act(proc, marks: dict) -> None:
            name = container_name(s, service)
            marks["fault"] = time.time()
            for attempt in range(5):
                done = subprocess.run([s.runtime, "kill", "--signal=USR1", name], capture_output=True,
                                      text=True, timeout=30)
                assert attempt > 0 or done.returncode == 0, done.stderr  # later: it may have died of it
                deadline = time.time() + 1
                while time.time() < deadline:
                    if "standin: FAULT" in s.log(service).read_text(errors="replace"):
                        return
                    time.sleep(0.05)
        return act

    return lambda s: [(when, signal_service(run_logs(s.bundle) / f"{service}.pid", signal.SIGUSR1)
                       if s.runtime == "none" else signal_in_container(s))]


def container_name(s: Setup, service: str) -> str:
    """The name this run gave service's container: bundle.json's, its run id filled in."""
    manifest = json.loads((s.bundle / "bundle.json").read_text())
    name = next(x["container"]["name"] for x in manifest["services"] if x["name"] == service)
    return name.replace("${RUN_ID}", run_logs(s.bundle).name)


def hold_port(key: str, host: str = "127.0.0.1") -> Callable[[Setup], None]:
    def prepare(s: Setup) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        # As free_ports checked it: an earlier test's connections can leave the port in TIME_WAIT
        # (CI once failed here, EADDRINUSE); no other socket can listen on it either way.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, s.ports[key]))
        sock.listen(1)
        s.held.append(sock)
    return prepare


def without_ss(s: Setup) -> None:
    """Put an `ss` that fails first on PATH: the preflight must fall back to /proc/net."""
    folder = s.workdir / "no-ss"
    folder.mkdir(exist_ok=True)
    fake = folder / "ss"
    fake.write_text("#!/bin/sh\necho 'ss: simulated failure (no netlink)' >&2\nexit 1\n")
    fake.chmod(0o755)
    s.path_prefix.append(folder)


def deadline(run: Run, s: Setup) -> float:
    return run.line_time(r"waiting for prefill-0 decode-0 to be ready") + SHORT_DEADLINE_S


def probe_in_flight(run: Run, s: Setup) -> None:
    """The signal really came while a probe was waiting on the hung server."""
    hung = event_time(s.log("lmcache-0"), "request while hung")
    assert hung < run.marks["signal"], (hung, run.marks)


def after(delay: float, action):
    def act(proc, marks):
        time.sleep(delay)
        action(proc, marks)
    return act


SCENARIOS = [
    Scenario(
        "dies_at_start", "decode exits 3 before binding its port",
        status=1, message=r"ERROR: decode-0 \(pid \d+\) exited with status 3",
        tail="fatal error during start-up (simulated)",
        env=lambda s: s.mode("decode-0", "die_at_start:3"),
        fault_time=at_event("decode-0"), bound_s=DEATH_BOUND_S),
    Scenario(
        "exits_0_at_start", "the LMCache server exits 0 at once (as if it daemonized)",
        status=1, message=r"ERROR: lmcache-0 \(pid \d+\) exited with status 0",
        tail="exiting 0 at start (simulated)",
        env=lambda s: s.mode("lmcache-0", "exit0_at_start"),
        fault_time=at_event("lmcache-0"), bound_s=DEATH_BOUND_S),
    Scenario(
        "never_ready", f"prefill binds but answers 503 forever (READY_TIMEOUT_S={SHORT_DEADLINE_S})",
        status=1, message=r"ERROR: not ready after 3s: prefill-0",
        tail="mode never_ready",
        env=lambda s: {**s.mode("prefill-0", "never_ready"), "READY_TIMEOUT_S": str(SHORT_DEADLINE_S)},
        fault_time=deadline, bound_s=DEATH_BOUND_S),
    Scenario(
        "dies_while_serving_status_0", "decode exits 0 while the client runs",
        status=1, message=r"ERROR: decode-0 \(pid \d+\) exited with status 0",
        tail="crashing while serving (simulated)",
        env=lambda s: {**s.mode("decode-0", "die_after:usr1:0"), "STANDIN_CLIENT_SECS": "30"},
        on_line=fault_service("decode-0"),
        fault_time=at_event("decode-0"), bound_s=DEATH_BOUND_S),
    Scenario(
        "dies_while_serving_status_9", "prefill exits 9 while the client runs",
        status=1, message=r"ERROR: prefill-0 \(pid \d+\) exited with status 9",
        tail="crashing while serving (simulated)",
        env=lambda s: {**s.mode("prefill-0", "die_after:usr1:9"), "STANDIN_CLIENT_SECS": "30"},
        on_line=fault_service("prefill-0"),
        fault_time=at_event("prefill-0"), bound_s=DEATH_BOUND_S),
    Scenario(
        "lmcache_dies_prefill_answers",
        "the LMCache server dies while serving; prefill keeps answering /health",
        status=1, message=r"ERROR: lmcache-0 \(pid \d+\) exited with status 1",
        tail="crashing while serving (simulated)",
        env=lambda s: {**s.mode("lmcache-0", "die_after:usr1:1"), "STANDIN_CLIENT_SECS": "30"},
        on_line=fault_service("lmcache-0"),
        fault_time=at_event("lmcache-0"), bound_s=DEATH_BOUND_S),
    Scenario(
        "hangs_while_serving", "decode stays alive but stops answering (hang)",
        status=1, message=rf"ERROR: decode-0 is alive but has not answered \S+ for {UNHEALTHY_AFTER} probes",
        tail="hanging (simulated)",
        env=lambda s: {**s.mode("decode-0", "hang_after:usr1"), "STANDIN_CLIENT_SECS": "30"},
        on_line=fault_service("decode-0"),
        fault_time=at_event("decode-0"), bound_s=HANG_BOUND_S),
    Scenario(
        "router_dies_serving", "the router exits 5 while serving (no client step: serve mode)",
        status=1, message=r"ERROR: router \(pid \d+\) exited with status 5",
        tail="crashing while serving (simulated)", build=("client=null",),
        env=lambda s: s.mode("router", "die_after:usr1:5"),
        on_line=fault_service("router", SERVING_NO_CLIENT),
        fault_time=at_event("router"), bound_s=DEATH_BOUND_S),
    Scenario(
        "client_fails", "the client step exits 5",
        status=5, message=r"client exited with status 5",
        tail="client: failing with status 5 (simulated)",
        env=lambda s: {"STANDIN_CLIENT_EXIT": "5"},
        fault_time=at_event("client"), bound_s=DEATH_BOUND_S),
    Scenario(
        "ignores_sigterm", "prefill (and its engine-core child) ignore TERM; the launcher is stopped",
        status=143, message=rf"prefill-0 did not stop within {GRACE_PERIOD_S}s of TERM: sending KILL",
        tail=None,
        env=lambda s: {**s.mode("prefill-0", "ignore_term"), "STANDIN_CLIENT_SECS": "30"},
        on_line=lambda s: [(SERVING, signal_launcher(signal.SIGTERM))],
        fault_time=at_mark("signal"), bound_s=GRACE_PERIOD_S + MARGIN_S, min_s=GRACE_PERIOD_S),
    Scenario(
        "port_taken", "the decode port is already bound (ss names the holder)",
        status=1, message=r"ERROR: port {decode.port}, wanted by decode-0 \(decode HTTP\), is already in use by pid {pid} \(",
        tail=None, prepare=hold_port("decode.port"),
        fault_time=at_start, bound_s=DEATH_BOUND_S, nothing_started=True),
    Scenario(
        "port_taken_no_ss", "the router's Prometheus port is taken and `ss` fails: /proc/net fallback",
        status=1,
        message=r"ERROR: port {router.prometheus-port}, wanted by router \(router Prometheus\), is already in use by pid {pid} \(",
        tail=None, prepare=lambda s: (hold_port("router.prometheus-port", "0.0.0.0")(s), without_ss(s)),
        fault_time=at_start, bound_s=DEATH_BOUND_S, nothing_started=True),
    Scenario(
        "binary_missing", "vllm-router is not on PATH",
        status=1, message=r"ERROR: not found on PATH: vllm-router \(needed by router\)",
        tail=None, prepare=lambda s: (s.bin / "vllm-router").unlink(),
        fault_time=at_start, bound_s=DEATH_BOUND_S, nothing_started=True,
        # In a container the image's PATH is searched when the container starts: the router's
        # container exits at once, with the runtime's (its init's) own words in the router's log.
        in_podman=dict(message=r"ERROR: router \(pid \d+\) exited with status [1-9]\d* \(podman container \S+-router, image ",
                       tail="failed to exec pid1", nothing_started=False,
                       fault_time=lambda run, s: run.line_time(r"started router")),
        in_docker=dict(tail="exec vllm-router failed: No such file or directory")),  # docker-init (tini)
    Scenario(
        "sigterm_while_starting", "SIGTERM to the launcher while it waits for a slow LMCache server",
        status=143, message=r"received SIGTERM: tearing down", tail=None,
        env=lambda s: s.mode("lmcache-0", "slow_start:60"),
        on_line=lambda s: [(r"waiting for lmcache-0", signal_launcher(signal.SIGTERM))],
        fault_time=at_mark("signal"), bound_s=DEATH_BOUND_S),
    Scenario(
        "sigint_while_starting", "SIGINT to the launcher while it waits for a slow LMCache server",
        status=130, message=r"received SIGINT: tearing down", tail=None,
        env=lambda s: s.mode("lmcache-0", "slow_start:60"),
        on_line=lambda s: [(r"waiting for lmcache-0", signal_launcher(signal.SIGINT))],
        fault_time=at_mark("signal"), bound_s=DEATH_BOUND_S),
    Scenario(
        "sigterm_inside_probe",
        "SIGTERM while a readiness probe hangs (PROBE_TIMEOUT_S=30): handled at once, not after it",
        status=143, message=r"received SIGTERM: tearing down", tail=None,
        env=lambda s: {**s.mode("lmcache-0", "hang_after:0"), "PROBE_TIMEOUT_S": "30"},
        on_line=lambda s: [(r"waiting for lmcache-0", after(1.5, signal_launcher(signal.SIGTERM)))],
        fault_time=at_mark("signal"), bound_s=DEATH_BOUND_S, check=probe_in_flight),
    Scenario(
        "sigterm_while_serving", "SIGTERM to the launcher while the client runs",
        status=143, message=r"received SIGTERM: tearing down", tail=None,
        env=lambda s: {"STANDIN_CLIENT_SECS": "30"},
        on_line=lambda s: [(SERVING, signal_launcher(signal.SIGTERM))],
        fault_time=at_mark("signal"), bound_s=DEATH_BOUND_S),
    Scenario(
        "sigint_while_serving", "SIGINT to the launcher while it serves (no client step)",
        status=130, message=r"received SIGINT: tearing down", tail=None, build=("client=null",),
        on_line=lambda s: [(SERVING_NO_CLIENT, signal_launcher(signal.SIGINT))],
        fault_time=at_mark("signal"), bound_s=DEATH_BOUND_S),
    # Node preflight (preflight.sh): what a node lacks is named, node and check, before anything
    # starts; on the hand-written stack each was found by an engine minutes into its start.
    Scenario(
        "preflight_model_missing", "the model path exists on no node",
        status=1, message=r"recipec\[local\] ERROR: preflight model failed: model path /no/such/model does not "
        r"exist on this node", tail=None, build=("model.path=/no/such/model",),
        fault_time=at_start, bound_s=DEATH_BOUND_S, nothing_started=True),
    Scenario(
        "preflight_model_offline", "HF_HUB_OFFLINE=1 and the model is not in the Hugging Face cache",
        status=1, message=r"ERROR: preflight model failed: model amd/Kimi-K2.5-MXFP4 is not in the Hugging Face "
        r"cache \S+, and offline mode \(HF_HUB_OFFLINE\) forbids a download", tail=None,
        build=("engine.env.HF_HUB_OFFLINE=1",), env=lambda s: {"HF_HUB_CACHE": str(s.workdir / "empty-hub")},
        fault_time=at_start, bound_s=DEATH_BOUND_S, nothing_started=True),
    Scenario(
        "preflight_accelerators", "the node shows 4 GPUs; its engines need 8 (TP4 + TP4)",
        status=1, message=r"ERROR: preflight accelerators failed: this node's engines need 8 amd accelerator\(s\), "
        r"4 are visible", tail=None, env=lambda s: fake_node(s.workdir / "node", gpus=4),
        fault_time=at_start, bound_s=DEATH_BOUND_S, nothing_started=True),
    Scenario(
        "preflight_rdma", "Mooncake over rdma on a node without RDMA devices",
        status=1, message=r"ERROR: preflight rdma failed: Mooncake uses rdma, but this node has no RDMA device",
        tail=None, build=("prefill.kv-transfer.connectors.0.extra-config={mooncake_protocol: rdma, "
                          "device_name: mlx5_0}",
                          "decode.kv-transfer.extra-config={mooncake_protocol: rdma, device_name: mlx5_0}"),
        fault_time=at_start, bound_s=DEATH_BOUND_S, nothing_started=True),
    Scenario(
        "preflight_memory", "64 GiB of free host memory for a 1200 GiB LMCache L1",
        status=1, message=r"ERROR: preflight memory failed: LMCache L1 \(1200 GiB\) needs 1200 GiB of host memory, "
        r"64 GiB are free", tail=None, env=lambda s: fake_node(s.workdir / "node", mem_available_gib=64),
        fault_time=at_start, bound_s=DEATH_BOUND_S, nothing_started=True),
    Scenario(
        "preflight_logdir", "the log directory's file system has less room than PREFLIGHT_MIN_LOG_MB",
        status=1, message=r"ERROR: preflight logdir failed: log directory \S+ has \d+ MB free, less than "
        r"PREFLIGHT_MIN_LOG_MB=999999999", tail=None, env=lambda s: {"PREFLIGHT_MIN_LOG_MB": "999999999"},
        fault_time=at_start, bound_s=DEATH_BOUND_S, nothing_started=True),
]
BY_NAME = {s.name: s for s in SCENARIOS}


@dataclass
class Outcome:
    run: Run
    setup: Setup
    fault_at: float
    detect_s: float  # fault -> launcher exit
    message: str  # the scenario's message regex with this run's ports filled in


def setup(workdir: Path, scenario: Scenario, runtime: str = "none") -> Setup:
    bundle = workdir / "bundle"
    bin_dir = make_standin_bin(workdir / "bin", ENGINE_NAMES)
    ports = build_local(bundle, *scenario.build, runtime=runtime, bin_dir=bin_dir)
    return Setup(workdir, bundle, ports, bin_dir, runtime=runtime)


def play(scenario: Scenario, workdir: Path, runtime: str = "none") -> Outcome:
    """Build a bundle in workdir, provoke the fault, run the launcher; measure. runtime podman:
    every service in a podman container (the scenario's in_podman differences apply)."""
    scenario = scenario.for_runtime(runtime)
    s = setup(workdir, scenario, runtime)
    scenario.prepare(s)
    try:
        run = run_bundle(s.bundle, s.bin, env={**ENV, **scenario.env(s)}, timeout=60,
                         on_line=scenario.on_line(s), path_prefix=s.path_prefix)
    finally:
        for sock in s.held:
            sock.close()
        s.held.clear()
    fault_at = scenario.fault_time(run, s)
    fields = {k: str(v) for k, v in s.ports.items()} | {"pid": str(os.getpid())}
    message = scenario.message
    for key, value in fields.items():
        message = message.replace("{" + key + "}", value)
    return Outcome(run, s, fault_at, run.ended_at - fault_at, message)


def launcher_sigkill(workdir: Path, ignore_term: bool = False) -> tuple[Run, float]:
    """SIGKILL the launcher while the client runs (prefill ignoring TERM if asked); wait up to 15 s
    for the run's processes to be gone. Returns the run and the seconds from the SIGKILL until no
    process of the run was left (inf if some still were)."""
    bundle = workdir / "bundle"
    ports = build_local(bundle)
    env = {**ENV, "STANDIN_CLIENT_SECS": "30"}
    if ignore_term:
        env[f"STANDIN_{ports['prefill.port']}"] = "ignore_term"
    run = run_bundle(bundle, make_standin_bin(workdir / "bin"), env=env, timeout=60, settle_s=15,
                     on_line=[(SERVING, signal_launcher(signal.SIGKILL))])
    return run, (run.clean_at - run.marks["signal"]) if run.clean_at else float("inf")
