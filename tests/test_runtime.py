"""compiler/runtime/: the words each runtime puts before a service's argv, computed once in plan.

pyxis, apptainer and docker with devices cannot run on the test machine: these tests (and the golden
bundles golden/kimik2.5/slurm-pyxis, slurm-apptainer) pin their lines; podman runs for real in
tests/faults and tests/slurm.
"""

from __future__ import annotations

import json

import pytest

from recipec.pipeline import load_recipe
from recipec.plan import build_plan
from recipec.render import plain
from recipec.runtime import RUNTIMES

from conftest import run_recipec


def plan_of(target: str, *sets: str):
    return build_plan(load_recipe("kimik2.5", sets).recipe, target, recipe_path="x", recipe_sha256="y")


def service(plan, name):
    return next(s for s in [*plan.services, plan.client] if s.name == name)


def words(svc) -> list[str]:
    return [plain(w) for w in svc.container.prefix]


def test_docker_on_amd_nodes_as_inferencex_runs_it():
    """kimik2.5: docker, AMD devices, host network and IPC, --init, named by job and service."""
    prefill = service(plan_of("slurm"), "prefill-0")
    assert words(prefill)[:7] == ["docker", "run", "--init", "--pull=never",
                                  "--name=recipec-kimik2.5-job${SLURM_JOB_ID}-prefill-0", "--network=host", "--ipc=host"]
    w = words(prefill)
    for flag in ("--device=/dev/kfd", "--device=/dev/dri", "--group-add=video"):
        assert flag in w
    assert "--volume=/root/.cache/huggingface:/root/.cache/huggingface:rw" in w
    assert "--volume=${LOG_DIR}:${LOG_DIR}:rw" in w
    assert "--env=HF_HOME=/root/.cache/huggingface" in w and "--env=VLLM_HOST_IP=${NODE_ADDR}" in w
    assert w[-1] == "docker.io/vllm/vllm-openai-rocm:v0.33.0"
    assert prefill.argv[:2] == ("vllm", "serve")  # the engine's own argv is untouched (flag lint reads it)
    assert prefill.container.env == ()  # nothing of the service's env reaches the client process


@pytest.mark.parametrize("runtime, flags", [("docker", ["--gpus=all"]), ("podman", ["--device=nvidia.com/gpu=all"]),
                                            ("apptainer", ["--nv"])])
def test_nvidia_devices_per_runtime(runtime, flags):
    plan = plan_of("slurm", f"container.runtime={runtime}", "container.devices=nvidia")
    w = words(service(plan, "decode-0"))
    assert [f for f in flags if f in w] == flags
    assert not [f for f in w if f.startswith("--") and ("kfd" in f or "rocm" in f)]


def test_cpu_nodes_get_no_devices():
    plan = plan_of("local", "container.runtime=podman", "container.devices=null", "cluster.accelerator=CPU")
    w = words(service(plan, "decode-0"))
    assert not [f for f in w if f.startswith(("--device", "--group-add", "--gpus"))]


def test_pyxis_one_srun_step_per_service_with_an_enroot_uri():
    plan = plan_of("slurm", "container.runtime=pyxis", "container.pass-env=[HF_TOKEN]")
    lm = service(plan, "lmcache-0")
    assert words(lm) == [
        "srun", "--overlap", "--nodes=1", "--ntasks=1", "--nodelist=${SLURMD_NODENAME}",
        "--container-image=vllm/vllm-openai-rocm:v0.33.0",
        "--container-mounts=/root/.cache/huggingface:/root/.cache/huggingface,${LOG_DIR}:${LOG_DIR}",
        "--no-container-mount-home", "--export=HF_HOME,HF_TOKEN", "--container-env=HF_HOME,HF_TOKEN"]
    # pyxis takes the env from srun's own: the client process gets it, and --container-env lists it.
    prefill = service(plan, "prefill-0")
    assert dict(prefill.container.env)["VLLM_ROCM_USE_AITER"] == "1"
    listed = words(prefill)[-1].split("=", 1)[1].split(",")
    assert set(dict(prefill.container.env)) | {"HF_TOKEN"} == set(listed)
    assert prefill.container.name is None  # unnamed: pyxis removes it when the step ends
    assert not any(step.awaits for node in plan.nodes for step in node.steps)


@pytest.mark.parametrize("image, uri", [
    ("docker.io/vllm/vllm-openai-rocm:v0.33.0", "vllm/vllm-openai-rocm:v0.33.0"),
    ("nvcr.io/nvidia/pytorch:24.01-py3", "nvcr.io#nvidia/pytorch:24.01-py3"),
    ("localhost:5000/x/y:1", "localhost:5000#x/y:1"),
    ("vllm/vllm-openai:v0.33.0", "vllm/vllm-openai:v0.33.0"),
    ("/shared/images/vllm.sqsh", "/shared/images/vllm.sqsh"),
])
def test_pyxis_image_references(image, uri):
    assert RUNTIMES["pyxis"].reference(image) == uri


def test_apptainer_clean_env_binds_and_docker_uri():
    plan = plan_of("slurm", "container.runtime=apptainer", "container.pass-env=[HF_TOKEN]",
                   "container.mounts=[{source: /models, target: /m}]")
    prefill = service(plan, "prefill-0")
    assert words(prefill) == ["apptainer", "exec", "--cleanenv", "--rocm",
                              "--bind=/models:/m:ro", "--bind=/root/.cache/huggingface:/root/.cache/huggingface:rw",
                              "--bind=${LOG_DIR}:${LOG_DIR}:rw", "docker://docker.io/vllm/vllm-openai-rocm:v0.33.0"]
    env = {k: plain(v) for k, v in prefill.container.env}
    assert env["APPTAINERENV_VLLM_HOST_IP"] == "${NODE_ADDR}" and env["APPTAINERENV_HF_TOKEN"] == "${HF_TOKEN:-}"
    assert RUNTIMES["apptainer"].reference("/images/vllm.sif") == "/images/vllm.sif"


def test_the_router_in_an_image_and_runtime_of_its_own():
    plan = plan_of("slurm", "container.services={router: {image: 'docker.io/lmcache/vllm-router:v0.1.17', "
                   "runtime: podman}}")
    router, prefill = service(plan, "router"), service(plan, "prefill-0")
    assert router.container.runtime == "podman" and router.container.image == "docker.io/lmcache/vllm-router:v0.1.17"
    assert prefill.container.runtime == "docker"
    node0 = plan.nodes[0]
    assert [(rt, image) for rt, image, _ in node0.images] == [
        ("docker", "docker.io/vllm/vllm-openai-rocm:v0.33.0"), ("podman", "docker.io/lmcache/vllm-router:v0.1.17")]
    assert {"docker", "podman", "timeout"} <= set(node0.commands) and "vllm-router" not in node0.commands


def test_kv_directories_are_created_and_mounted_and_the_model_dir_checked():
    plan = build_plan(load_recipe("tiny-cpu", ("container.runtime=podman",)).recipe, "local",
                      recipe_path="x", recipe_sha256="y")
    node = plan.nodes[0]
    assert node.mounts_made == ("/tmp/recipec-tiny-cpu-kv",)
    assert node.mounts_needed == ("/tmp/recipec-tiny-llama",)
    w = words(service(plan, "decode-0"))
    assert "--volume=/tmp/recipec-tiny-llama:/tmp/recipec-tiny-llama:ro" in w
    assert "--volume=/tmp/recipec-tiny-cpu-kv:/tmp/recipec-tiny-cpu-kv:rw" in w
    assert "--name=recipec-tiny-cpu-${RUN_ID}-decode-0" in w


def test_runtime_none_changes_nothing():
    bare = plan_of("local", "container.runtime=none")
    assert all(s.container is None for s in bare.services) and not bare.containers
    assert ("container.sh", "container.sh") not in bare.files
    names = [t.name for t in bare.tunables]
    assert "LOG_DIR" in names and not {"IMAGE_TIMEOUT_S", "CONTAINER_START_TIMEOUT_S"} & set(names)


def test_pyxis_outside_slurm_is_refused_at_build(tmp_path):
    # kimik2.5-tp4: kimik2.5 on one machine (kimik2.5 itself is refused locally for its 16 GPUs, RC967)
    proc = run_recipec("build", "kimik2.5-tp4", "--target", "local", "--set", "container.runtime=pyxis",
                       "-o", str(tmp_path / "b"))
    assert proc.returncode == 1
    assert "RC900 the pyxis runtime runs only inside SLURM jobs" in proc.stderr
    assert not (tmp_path / "b").exists()


def test_bundle_json_records_each_container(tmp_path):
    run_recipec("build", "kimik2.5", "-o", str(tmp_path / "b"), check=True)
    manifest = json.loads((tmp_path / "b" / "bundle.json").read_text())
    prefill = next(s for s in manifest["services"] if s["name"] == "prefill-0")
    assert prefill["container"]["runtime"] == "docker"
    assert prefill["container"]["name"] == "recipec-kimik2.5-job${SLURM_JOB_ID}-prefill-0"
    assert prefill["argv"][:2] == ["vllm", "serve"]


# The benchmark's points in the client role's container (issue 15 with 14).

def test_each_point_runs_in_a_named_container_without_devices_and_sees_its_result_dir():
    plan = plan_of("slurm")
    b = plan.benchmark
    assert [plain(p.container.name) for p in b.points] == [
        f"recipec-kimik2.5-job${{SLURM_JOB_ID}}-bench-{p}" for p in ("c8", "c16", "c32")]
    for p in b.points:
        w = [plain(x) for x in p.container.prefix]
        assert w[:2] == ["docker", "run"] and w[-1] == "docker.io/vllm/vllm-openai-rocm:v0.33.0"
        assert "--volume=${RESULT_DIR}:${RESULT_DIR}:rw" in w and "--network=host" in w
        assert not any(x.startswith(("--device", "--group-add", "--gpus")) for x in w), w  # HTTP and a tokenizer
        assert [plain(x) for x in p.launch_argv[len(w):len(w) + 3]] == ["vllm", "bench", "serve"]
        assert p.argv[:3] == ("vllm", "bench", "serve")  # lint reads the client's own argv
    reader = [plain(x) for x in b.reader]
    assert reader == ["docker", "run", "--rm", "--pull=never", "--network=none",
                      "--volume=${LOG_DIR}:${LOG_DIR}:ro", "--volume=${RESULT_DIR}:${RESULT_DIR}:rw",
                      "docker.io/vllm/vllm-openai-rocm:v0.33.0", "python3"]
    node = plan.nodes[b.node]
    needs = dict(node.needs)
    assert "vllm" not in needs and "python3" not in needs and "benchmark" in needs["docker"]
    assert node.images[0][2][-3:] == ("bench-c8", "bench-c16", "bench-c32")  # the image preflight covers them
    assert {t.name: t.default for t in plan.tunables}["BENCH_PYTHON"] == ""


def test_a_dataset_file_is_mounted_read_only_and_checked_on_the_router_node():
    plan = plan_of("slurm", "benchmark.dataset={file: {path: /data/sharegpt.json, format: sharegpt}}")
    w = [plain(x) for x in plan.benchmark.points[0].container.prefix]
    assert "--volume=/data/sharegpt.json:/data/sharegpt.json:ro" in w
    assert "/data/sharegpt.json" in plan.nodes[plan.benchmark.node].mounts_needed
    assert all("/data/sharegpt.json" not in n.mounts_needed for n in plan.nodes if n.index != plan.benchmark.node)


@pytest.mark.parametrize("runtime, head, tail", [
    ("pyxis", ["srun", "--overlap"], ["--no-container-mount-home", "--export=NONE", "python3"]),
    ("apptainer", ["apptainer", "exec", "--cleanenv"],
     ["--bind=${RESULT_DIR}:${RESULT_DIR}:rw", "docker://docker.io/vllm/vllm-openai-rocm:v0.33.0", "python3"]),
])
def test_the_reader_is_a_one_shot_of_each_runtime(runtime, head, tail):
    reader = [plain(x) for x in plan_of("slurm", f"container.runtime={runtime}").benchmark.reader]
    assert reader[:len(head)] == head and reader[-len(tail):] == tail, reader


def test_a_bare_benchmark_runs_from_path_and_reads_with_bench_python():
    plan = plan_of("slurm", "container.runtime=none", "benchmark.python=python3.12")
    b = plan.benchmark
    assert b.reader == () and all(p.container is None and p.launch_argv == p.argv for p in b.points)
    assert {"vllm", "python3.12"} <= dict(plan.nodes[b.node].needs).keys()
    assert {t.name: t.default for t in plan.tunables}["BENCH_PYTHON"] == "python3.12"


def test_a_client_runtime_that_needs_a_job_is_refused_for_the_benchmark_off_slurm(tmp_path):
    proc = run_recipec("build", "kimik2.5-tp4", "--target", "local", "--set",
                       "container.services={client: {runtime: pyxis}}", "-o", str(tmp_path / "b"))
    assert proc.returncode == 1 and "RC900" in proc.stderr and "(benchmark)" in proc.stderr, proc.stderr
    assert not (tmp_path / "b").exists()
