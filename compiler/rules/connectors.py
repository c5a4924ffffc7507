"""Connector and engine-flag rules: what the pinned engine accepts and how roles pair up."""

from __future__ import annotations

from . import Finding, rule

# Flags the plan sets itself from structured fields; setting them in args would contradict it.
PLAN_OWNED_FLAGS = {
    "host": "set by recipec from the target",
    "port": "set per worker from prefill.port / decode.port",
    "tensor-parallel-size": "set from tensor-parallel-size",
    "kv-transfer-config": "generated from kv-transfer",
    "model": "set from model.path",
    "served-model-name": "set from model.served-name",
}


@rule("RC202", "flag-owned-by-recipec", "an engine flag in args is one recipec sets from other keys",
      "remove it from args and set the structured key instead")
def flag_owned(ctx):
    r = ctx.recipe
    for keypath, args in ((("engine", "args"), r.engine.args), (("prefill", "args"), r.prefill.args),
                          (("decode", "args"), r.decode.args)):
        for key in args:
            name = key.lstrip("-").replace("_", "-")
            if name in PLAN_OWNED_FLAGS:
                yield Finding(keypath + (key,), f"--{name} is {PLAN_OWNED_FLAGS[name]}")
