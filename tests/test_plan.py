"""plan.py: values computed once, from the connector vocabulary it owns."""

from __future__ import annotations

import pytest

from recipec.pipeline import load_recipe
from recipec.engine_args import NIXL_CONNECTORS
from recipec.plan import build_plan


@pytest.mark.parametrize("connector", NIXL_CONNECTORS)
def test_every_nixl_connector_gets_its_own_side_channel_port(connector):
    assert "NixlPullConnector" in NIXL_CONNECTORS  # vLLM 0.33.0 registers it as a name of its own
    loaded = load_recipe("kimik2.5", (f"decode.kv-transfer.connector={connector}",
                                      "decode.nixl-side-channel-port=5700"))
    plan = build_plan(loaded.recipe, "local", recipe_path="x", recipe_sha256="y")
    decode = next(s for s in plan.services if s.name == "decode-0")
    assert dict(decode.env)["VLLM_NIXL_SIDE_CHANNEL_PORT"] == "5700"
    side = [p for p in decode.ports if p.purpose == "NIXL side channel"]
    assert [(p.port, p.keypath) for p in side] == [(5700, ("decode", "nixl-side-channel-port"))]


def test_each_port_names_the_recipe_key_it_comes_from():
    plan = build_plan(load_recipe("kimik2.5").recipe, "slurm", recipe_path="x", recipe_sha256="y")
    keys = {(p.service, p.keypath) for node in plan.nodes for p in node.ports}
    assert keys == {
        ("lmcache-0", ("lmcache", "port")), ("lmcache-0", ("lmcache", "http-port")),
        ("prefill-0", ("prefill", "port")), ("prefill-0", ("prefill", "mooncake-bootstrap-port")),
        ("decode-0", ("decode", "port")),
        ("router", ("router", "port")), ("router", ("router", "prometheus-port")),
    }


def test_prefill_connects_to_its_own_nodes_lmcache_server():
    """Two prefill nodes on one machine: each prefill's lmcache.mp.port is its node's server's."""
    loaded = load_recipe("kimik2.5", ("prefill.nodes=2",))
    plan = build_plan(loaded.recipe, "local", recipe_path="x", recipe_sha256="y")
    servers = {s.name: s for s in plan.services if s.role == "lmcache"}
    assert sorted(servers) == ["lmcache-0", "lmcache-1"]
    for i in (0, 1):
        prefill = next(s for s in plan.services if s.name == f"prefill-{i}")
        config = prefill.argv[prefill.argv.index("--kv-transfer-config") + 1]
        port = servers[f"lmcache-{i}"].argv[servers[f"lmcache-{i}"].argv.index("--port") + 1]
        assert f'"lmcache.mp.port":{port}' in config
        assert prefill.after == (f"lmcache-{i}",)


def test_each_flag_names_the_recipe_key_that_wrote_it():
    """A role's args replace the common engine args, and the source says which one wrote the flag."""
    loaded = load_recipe("kimik2.5", ("decode.args.max-num-seqs=64",))
    plan = build_plan(loaded.recipe, "local", recipe_path="x", recipe_sha256="y")
    by_name = {s.name: dict(s.sources) for s in plan.services}
    assert by_name["decode-0"]["--max-num-seqs"] == ("decode", "args", "max-num-seqs")
    assert by_name["prefill-0"]["--max-num-seqs"] == ("engine", "args", "max-num-seqs")
    assert by_name["prefill-0"]["--kv-transfer-config"] == ("prefill", "kv-transfer")
    assert by_name["lmcache-0"]["--l1-size-gb"] == ("lmcache", "l1-size-gb")
    assert by_name["router"]["--prefill"] == ("prefill", "port")
    decode = next(s for s in plan.services if s.name == "decode-0")
    assert decode.argv[decode.argv.index("--max-num-seqs") + 1] == "64"


def test_a_build_plans_once_per_target(monkeypatch, tmp_path):
    """`recipec build kimik2.5` plans each target once: the plan rules read those Plans, and the
    build renders the one of its target (no rule plans on its own: test_architecture.py)."""
    from click.testing import CliRunner

    from recipec import placement, plan
    from recipec.cli import main

    calls = []
    real = plan.build_plan

    def counting(recipe, target, **kwargs):
        calls.append(target)
        return real(recipe, target, **kwargs)

    monkeypatch.setattr(plan, "build_plan", counting)
    result = CliRunner().invoke(main, ["build", "kimik2.5", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sorted(calls) == sorted(placement.TARGETS)
    assert (tmp_path / "out" / "node.sh").is_file()  # the recipe's own target, slurm, was rendered


def _devices(plan) -> dict:
    return {s.name: dict(s.env).get("HIP_VISIBLE_DEVICES") for s in plan.services if s.role in ("prefill", "decode")}


def test_local_target_gives_each_engine_its_own_devices():
    """Prefill engines take the first devices, decode the next; a worker uses TP x PP x local DP."""
    recipe = load_recipe("kimik2.5-tp4", ("prefill.tensor-parallel-size=2", "prefill.args={pipeline-parallel-size: 2}",
                                          "decode.tensor-parallel-size=1", "decode.workers-per-node=2",
                                          "decode.args={data-parallel-size: 2}")).recipe
    local = build_plan(recipe, "local", recipe_path="x", recipe_sha256="y")
    assert _devices(local) == {"prefill-0": "0,1,2,3", "decode-0": "4,5", "decode-1": "6,7"}
    assert local.nodes[0].gpus == 8
    # On SLURM each node has its own devices: only workers sharing a node are split.
    slurm = build_plan(recipe, "slurm", recipe_path="x", recipe_sha256="y")
    assert _devices(slurm) == {"prefill-0": None, "decode-0": "0,1", "decode-1": "2,3"}
    assert [n.gpus for n in slurm.nodes] == [4, 4]


def test_gpus_per_worker_counts_local_dp_as_vllm_does():
    from recipec.parallel import gpus_per_worker

    def gpus(*sets):
        return gpus_per_worker(load_recipe("kimik2.5", sets).recipe, "decode")

    assert gpus() == 8
    assert gpus("decode.tensor-parallel-size=2", "decode.args={-dp: 4}") == 8
    assert gpus("decode.tensor-parallel-size=2", "decode.args={data-parallel-size: 4, data-parallel-size-local: 2}") == 4
    assert gpus("decode.tensor-parallel-size=2", "decode.args={data_parallel_size: 4, data-parallel-rank: 1}") == 2
    assert gpus("decode.args={enable-expert-parallel: true}") == 8  # EP reuses the TP x DP ranks


def test_local_gpu_check_holds_for_the_target_built_only(tmp_path):
    """kimik2.5 lints and builds for slurm; its local build is refused naming need and have."""
    from conftest import run_recipec

    assert run_recipec("lint", "recipes/kimik2.5.yaml").returncode == 0
    proc = run_recipec("build", "kimik2.5", "--target", "local", "-o", str(tmp_path / "b"), "--set", "prefill.nodes=2")
    assert proc.returncode == 1 and not (tmp_path / "b").exists()
    assert "RC967 the local target runs every engine on this machine: prefill 2 x TP8, decode 1 x TP8 need 24 GPUs, " \
           "the machine has 8" in proc.stdout + proc.stderr
    # A machine with the GPUs for both engines builds.
    assert run_recipec("build", "kimik2.5", "--target", "local", "-o", str(tmp_path / "c"),
                       "--set", "cluster.gpus-per-node=16").returncode == 0
