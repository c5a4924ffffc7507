#!/usr/bin/env python3
"""A stand-in for vllm, lmcache and vllm-router in tests: it plays a server, or a fault.

Installed on PATH under each engine's name (see conftest.py). It reads its port from its own argv
the way the real engine would (--port, or --http-port for `lmcache server`), answers GET on every
path with 200 once "ready", and behaves according to STANDIN_<PORT> in its environment, so one
test can make exactly one service misbehave (modes combine with commas: slow_start:2,ignore_term):

  die_at_start[:CODE]    exit CODE (default 3) after writing a line, before binding
  exit0_at_start         exit 0 at once (a server that "daemonizes" or gives up silently)
  never_ready            bind, but answer 503 forever
  die_after:SECS[:CODE]  serve, then exit CODE (default 7) SECS after start
  hang_after:SECS        serve, then stop answering SECS after start (the process stays alive)
                         (SECS may be `usr1`: the fault happens when the process gets SIGUSR1,
                         so a test can fault a service exactly when the stack is serving)
  ignore_term            serve, and ignore SIGTERM (only KILL stops it; its engine-core child too)
  slow_start:SECS        answer 503 until SECS after start, then 200
  completions_fail       (router) answer /health, but 500 to every completion
  decode_only            (router) send completions to decode only: PD silently not disaggregated
  empty_answer           (engine) answer completions with empty text

Engines answer POST /v1/completions with a short text and count each on GET /metrics as vLLM does
(vllm:request_success_total); the router sends each completion to its first --prefill, then its
first --decode, and returns decode's answer, as vllm-router's PD mode does.

Every event is logged with its wall-clock time (`standin: <event> at <epoch seconds>`: started,
listening, ready, FAULT <kind>, TERM), so tests measure detection from the moment of the fault.

`vllm serve` also forks a child in its process group, like vLLM's EngineCore, so teardown is
tested on grandchildren. `vllm bench serve --base-url URL` plays the client step: it GETs
URL/v1/models, runs STANDIN_CLIENT_SECS more seconds (default 0) and exits STANDIN_CLIENT_EXIT
(default 0). With --result-filename (a benchmark point) it also writes a result JSON shaped like
vLLM's into --result-dir: --num-prompts completed, output tokens --random-output-len each, and
throughput and latencies that grow with --max-concurrency; STANDIN_BENCH faults a point by its
concurrency (comma-separated): zero_output:C, failed:C (one request failed), exit:C[:CODE]
(exit CODE, default 4, before writing), no_result:C (exit 0, no file). With STANDIN_RECORD set to a directory, every invocation writes its argv and
environment there as JSON.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socketserver
import sys
import threading
import time
import urllib.request


def arg(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def record(prog: str, argv: list[str]) -> None:
    folder = os.environ.get("STANDIN_RECORD")
    if not folder:
        return
    # PIDs repeat across containers (each has its own PID namespace): a random part keeps names apart.
    name = f"{prog}-{os.getpid()}-{os.urandom(4).hex()}.json"
    with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
        json.dump({"prog": prog, "argv": argv, "env": dict(os.environ)}, fh)


def event(what: str) -> None:
    """One line of the log, with the wall-clock time tests measure from."""
    print(f"standin: {what} at {time.time():.3f}", flush=True)


def client(argv: list[str]) -> int:
    event("client started")
    base = arg(argv, "--base-url") or os.environ.get("ROUTER_URL", "")
    with urllib.request.urlopen(base + "/v1/models", timeout=5) as resp:
        print(f"client: {base}/v1/models answered {resp.status}", flush=True)
    time.sleep(float(os.environ.get("STANDIN_CLIENT_SECS", "0")))
    code = int(os.environ.get("STANDIN_CLIENT_EXIT", "0"))
    if code:
        event(f"FAULT client_exit:{code}")
        print(f"client: failing with status {code} (simulated)", flush=True)
        return code
    if arg(argv, "--result-filename"):
        return bench_point(argv)
    return code


def bench_point(argv: list[str]) -> int:
    """One benchmark point: a result JSON like `vllm bench serve --save-result` writes."""
    conc = int(arg(argv, "--max-concurrency") or 1)
    prompts = int(arg(argv, "--num-prompts") or 1)
    out_len = int(arg(argv, "--random-output-len") or 16)
    faults = {}
    for item in filter(None, os.environ.get("STANDIN_BENCH", "").split(",")):
        kind, _, rest = item.partition(":")
        at, _, extra = rest.partition(":")
        if int(at) == conc:
            faults[kind] = extra
    if "exit" in faults:
        event(f"FAULT bench exit at concurrency {conc}")
        print(f"client: crashing at concurrency {conc} (simulated)", flush=True)
        return int(faults["exit"] or 4)
    if "no_result" in faults:
        return 0
    failed = 1 if "failed" in faults else 0
    completed = prompts - failed
    tokens = 0 if "zero_output" in faults else completed * out_len
    result = {"completed": completed, "failed": failed, "num_prompts": prompts, "max_concurrency": conc,
              "total_input_tokens": completed * 100, "total_output_tokens": tokens, "duration": 1.0,
              "request_throughput": float(conc), "output_throughput": 100.0 * conc,
              "total_token_throughput": 200.0 * conc}
    for metric, base in (("ttft", 10.0), ("tpot", 2.0), ("itl", 2.0), ("e2el", 50.0)):
        for stat, factor in (("mean", 1.0), ("median", 1.0), ("p50", 1.0), ("p90", 1.5), ("p99", 2.0)):
            result[f"{stat}_{metric}_ms"] = base * conc * factor
    for item in (argv[argv.index("--metadata") + 1:] if "--metadata" in argv else []):
        if item.startswith("--"):
            break
        key, _, value = item.partition("=")
        result[key] = value
    path = os.path.join(arg(argv, "--result-dir") or ".", arg(argv, "--result-filename"))
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    print(f"client: wrote {path}: {completed} completed, {tokens} output tokens", flush=True)
    return 0


def values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


class State:
    ready_at = 0.0
    hung = False
    served = 0  # completions answered (vllm:request_success_total)


def post_json(url: str, body: bytes) -> dict:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as resp:
        return json.load(resp)


def serve(port: int, host: str, mode: str, child: bool, prefill=(), decode=()) -> int:
    state = State()
    started = time.monotonic()
    modes = {}
    for item in filter(None, mode.split(",")):
        kind, _, rest = item.partition(":")
        modes[kind] = rest.split(":") if rest else []
    print(f"standin: pid {os.getpid()} port {port} mode {mode or 'ok'}", flush=True)
    event("started")
    if "die_at_start" in modes:
        print("standin: fatal error during start-up (simulated)", flush=True)
        event("FAULT die_at_start")
        return int(modes["die_at_start"][0]) if modes["die_at_start"] else 3
    if "exit0_at_start" in modes:
        print("standin: exiting 0 at start (simulated)", flush=True)
        event("FAULT exit0_at_start")
        return 0
    if "ignore_term" in modes:
        signal.signal(signal.SIGTERM, lambda *_: event("TERM received, ignoring it"))
    else:
        def on_term(*_):
            event("TERM received, exiting")
            os._exit(143)
        signal.signal(signal.SIGTERM, on_term)
    if "slow_start" in modes:
        state.ready_at = started + float(modes["slow_start"][0])
    if "never_ready" in modes:
        state.ready_at = float("inf")

    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self, code: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 - http.server's naming
            if state.hung:
                event("request while hung")
                time.sleep(3600)
            ok = time.monotonic() >= state.ready_at
            if ok and self.path == "/metrics" and not prefill and not decode:
                text = ("# TYPE vllm:request_success_total counter\n"
                        f'vllm:request_success_total{{engine="0",finished_reason="length"}} {state.served}.0\n'
                        'vllm:request_success_total{engine="0",finished_reason="stop"} 0.0\n')
                return self.answer(200, text.encode(), "text/plain")
            self.answer(200 if ok else 503, b'{"status":"healthy"}' if ok else b'{"status":"starting"}')

        def do_POST(self):  # noqa: N802
            if self.path != "/v1/completions":
                return self.do_GET()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if state.hung:
                event("request while hung")
                time.sleep(3600)
            if "completions_fail" in modes:
                event("FAULT completions_fail")
                return self.answer(500, b'{"error":"no worker could serve the request (simulated)"}')
            if prefill or decode:  # the router: prefill first, then decode answers
                try:
                    if "decode_only" not in modes:
                        post_json(prefill[0] + "/v1/completions", body)
                    else:
                        event("FAULT decode_only")
                    reply = post_json(decode[0] + "/v1/completions", body)
                except Exception as exc:  # noqa: BLE001 - a worker's failure is the router's 502
                    return self.answer(502, json.dumps({"error": str(exc)}).encode())
                return self.answer(200, json.dumps(reply).encode())
            with lock:
                state.served += 1
            text = "" if "empty_answer" in modes else " hello from the stand-in"
            reply = {"choices": [{"index": 0, "text": text, "finish_reason": "length"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 1 if text else 0}}
            self.answer(200, json.dumps(reply).encode())

        def log_message(self, fmt, *args):
            print("standin: " + fmt % args, flush=True)

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    def fault(kind: str) -> None:
        event(f"FAULT {kind}")
        if kind == "die_after":
            print("standin: crashing while serving (simulated)", flush=True)
            os._exit(int(modes[kind][1]) if len(modes[kind]) > 1 else 7)
        print("standin: hanging (simulated)", flush=True)
        state.hung = True

    # Armed before the first answer: a USR1 that follows "ready" must never find the default action.
    faults = [(k, p[0]) for k, p in modes.items() if k in ("die_after", "hang_after")]
    for kind, when in faults:
        if when == "usr1":
            signal.signal(signal.SIGUSR1, lambda *_, kind=kind: fault(kind))

    server = Server((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    event("listening")
    if state.ready_at != float("inf"):
        ready = time.time() + max(0.0, state.ready_at - time.monotonic())
        print(f"standin: ready at {ready:.3f}", flush=True)
    if child:  # like vLLM's EngineCore: a child in the same process group
        pid = os.fork()
        if pid == 0:
            os.environ["STANDIN_ROLE"] = "engine-core"
            if "ignore_term" not in modes:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
            while True:
                time.sleep(1)
    for at, kind in sorted((float(when), kind) for kind, when in faults if when != "usr1"):
        time.sleep(max(0.0, started + at - time.monotonic()))
        fault(kind)
    while True:
        time.sleep(3600)


def _listen(host: str, port: int):
    import socket

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(8)
    return sock


def main() -> int:
    prog = os.path.basename(sys.argv[0])
    argv = sys.argv[1:]
    record(prog, argv)
    if prog == "vllm" and argv[:2] == ["bench", "serve"]:
        return client(argv)
    lmcache = prog == "lmcache"
    port = int(arg(argv, "--http-port" if lmcache else "--port") or 8000)
    host = arg(argv, "--http-host" if lmcache else "--host") or "127.0.0.1"
    # Hold the other ports the real engine binds, so port preflight sees what it would see.
    extra = [arg(argv, "--port")] if lmcache else [os.environ.get("VLLM_MOONCAKE_BOOTSTRAP_PORT")]
    if prog == "vllm-router":
        extra = [arg(argv, "--prometheus-port")]
    held = [_listen(host, int(p)) for p in extra if p]
    mode = os.environ.get(f"STANDIN_{port}", "")
    child = prog == "vllm" and os.environ.get("STANDIN_NO_CHILD") != "1"
    router = prog == "vllm-router"
    try:
        return serve(port, host, mode, child, values(argv, "--prefill") if router else (),
                     values(argv, "--decode") if router else ())
    finally:
        for sock in held:
            sock.close()


if __name__ == "__main__":
    sys.exit(main())
