"""Recipe strings full of shell metacharacters reach the engines literally and are never executed.

The recipe is kimik2.5 with hostile values in every free-form string field the model allows:
model path, served name, engine/role/lmcache/router/client env values, extra engine, role, lmcache
and router args, and client argv. (log-dir, names and env-var names are restricted by the model's
patterns; this test does not loosen them.) One value comes by --set with a raw newline, which
the header comment of every script repeats. The bundle runs against stand-ins that record their argv
and environment; each value must arrive byte for byte, and no marker file may appear.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import ROOT, make_standin_bin, port_overrides, run_bundle, run_recipec

pytestmark = pytest.mark.faults


def hostile(marker: Path, what: str) -> str:
    """A value that runs `touch marker-...` if any shell ever evaluates it, in every way it could."""
    m = f"{marker}-{what}"
    return (f"{what} $(touch {m}-dollar) `touch {m}-backtick` ; touch {m}-semicolon ; "
            f"'single' \"double\" \\backslash $HOME ${{PATH}} * ? [a] ~ & | > {m}-redirect <x !x\n"
            f"second line\ttab  two  spaces %s %q")


def test_hostile_strings_arrive_literally_and_run_nothing(tmp_path):
    marker = tmp_path / "pwned"
    record = tmp_path / "record"
    record.mkdir()
    v = {k: hostile(marker, k) for k in
         ("model", "served", "engine_env", "prefill_env", "lmcache_env", "router_env", "client_env",
          "engine_arg", "decode_arg", "lmcache_arg", "router_arg", "client_arg")}
    recipe = yaml.safe_load((ROOT / "tests" / "data" / "kimik2.5-tp4-flat.yaml").read_text())  # fits one machine
    recipe["model"] = {"path": v["model"], "served-name": v["served"]}
    recipe["engine"]["env"]["RECIPEC_HOSTILE"] = v["engine_env"]
    recipe["engine"]["args"]["chat-template"] = v["engine_arg"]
    recipe["prefill"]["env"] = {"RECIPEC_HOSTILE_PREFILL": v["prefill_env"]}
    # A flag of decode alone that both sides need not share (a per-side tokenizer is RC960).
    recipe["decode"]["args"] = {"response-role": v["decode_arg"]}
    recipe["lmcache"]["env"] = {"RECIPEC_HOSTILE_LMCACHE": v["lmcache_env"]}
    recipe["lmcache"]["args"] = {"instance-id": v["lmcache_arg"]}
    recipe["router"]["env"] = {"RECIPEC_HOSTILE_ROUTER": v["router_env"]}
    recipe["router"]["args"] = {"api-key": v["router_arg"]}
    del recipe["benchmark"]  # the client step carries the hostile client values
    recipe["client"] = {"command": ["vllm", "bench", "serve", "--metadata", v["client_arg"],
                                    "--base-url", "${ROUTER_URL}/x"]}
    recipe["client"]["env"] = {"RECIPEC_HOSTILE_CLIENT": v["client_env"]}
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True))

    sets, ports = port_overrides()
    # A --set text is printed in each script's header comment: a raw newline in it must not end
    # the comment. (YAML folds the plain scalar; the engine gets the folded value.)
    raw_served = f"served\ntouch {marker}-header ; $(touch {marker}-header2)"
    v["served"] = yaml.safe_load(raw_served)
    sets.append(f"model.served-name={raw_served}")
    bundle = tmp_path / "bundle"
    args = ["build", str(path), "--target", "local", "-o", str(bundle)]
    for s in sets:
        args += ["--set", s]
    built = run_recipec(*args)
    assert built.returncode == 0, built.stderr
    # Still clean with all that inside (at warning level: SC2016, an info, rightly notes that a
    # single-quoted `$(...)` does not expand).
    for script in ("launch.sh", "lib.sh"):
        check = subprocess.run(["shellcheck", "--external-sources", "--severity=warning", script],
                               cwd=bundle, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout
    run = run_bundle(bundle, make_standin_bin(tmp_path / "bin"), env={"STANDIN_RECORD": str(record)})
    assert run.returncode == 0, run.stderr

    # Nothing was executed, by the launcher or anything it started.
    assert not list(tmp_path.glob("pwned*")), list(tmp_path.glob("pwned*"))
    calls = [json.loads(p.read_text()) for p in record.glob("*.json")]
    by_role = {}
    for c in calls:
        if c["prog"] == "vllm" and c["argv"][:2] == ["bench", "serve"]:
            by_role["client"] = c
        elif c["prog"] == "vllm":
            port = int(c["argv"][c["argv"].index("--port") + 1])
            by_role["prefill" if port == ports["prefill.port"] else "decode"] = c
        else:
            by_role[c["prog"]] = c
    assert set(by_role) == {"client", "prefill", "decode", "lmcache", "vllm-router"}, by_role.keys()

    def flag(call, name):
        argv = call["argv"]
        return argv[argv.index(name) + 1]

    for role in ("prefill", "decode"):
        call = by_role[role]
        assert call["argv"][1] == v["model"]  # `vllm serve MODEL`: the positional model
        assert flag(call, "--served-model-name") == v["served"]
        assert flag(call, "--chat-template") == v["engine_arg"]
        assert call["env"]["RECIPEC_HOSTILE"] == v["engine_env"]
    assert by_role["prefill"]["env"]["RECIPEC_HOSTILE_PREFILL"] == v["prefill_env"]
    assert flag(by_role["decode"], "--response-role") == v["decode_arg"]
    assert flag(by_role["lmcache"], "--instance-id") == v["lmcache_arg"]
    assert by_role["lmcache"]["env"]["RECIPEC_HOSTILE_LMCACHE"] == v["lmcache_env"]
    assert flag(by_role["vllm-router"], "--api-key") == v["router_arg"]
    assert by_role["vllm-router"]["env"]["RECIPEC_HOSTILE_ROUTER"] == v["router_env"]
    client = by_role["client"]
    assert flag(client, "--metadata") == v["client_arg"]
    assert client["env"]["RECIPEC_HOSTILE_CLIENT"] == v["client_env"]
    # ${ROUTER_URL} is the one documented run-time substitution; the rest of that word stays literal.
    assert client["argv"][-1] == f"http://127.0.0.1:{ports['router.port']}/x"
    assert run.leftovers == []
