"""How many accelerators one engine worker uses, read from the recipe as vLLM reads its flags.

Part of plan (placement/ slices devices with it) and read by the topology rules: one home for the
count. A `vllm serve` process runs TP x PP x local-DP ranks, one device each (vllm 0.33.0
engine/arg_utils.py create_engine_config: data_parallel_size_local is --data-parallel-size-local,
else 1 with --data-parallel-rank (external load balancing), else --data-parallel-size). Expert
parallelism (--enable-expert-parallel) reuses the TP x DP ranks and adds no device.
"""

from __future__ import annotations

import functools
import re

from .memo import per_recipe

# Short spellings of the flags read here (vllm 0.33.0 engine/arg_utils.py aliases).
ALIASES = {"-tp": "--tensor-parallel-size", "-pp": "--pipeline-parallel-size", "-dp": "--data-parallel-size",
           "-dpl": "--data-parallel-size-local", "-dpn": "--data-parallel-rank", "-q": "--quantization"}


@functools.lru_cache(maxsize=4096)  # the same few keys, read for every flag of every rule
def canonical(key: str) -> str:
    """The long flag an args key writes (`block_size`, `--block-size`, `-pp` alike)."""
    if key.startswith("-") and not key.startswith("--"):
        return ALIASES.get(key, key)
    return "--" + key.lstrip("-").replace("_", "-")


def side_arg(recipe, side: str, flag: str):
    """(value, key path) of `flag` as the side's engine gets it: the side's args win over
    engine.args; (None, None) when neither sets it (or sets it to null)."""
    found = _side_flags(recipe, side).get(flag)
    return (None, None) if found is None else found


@per_recipe  # the rules and plan ask ~50 times a recipe
def _side_flags(recipe, side: str) -> dict:
    """flag -> side_arg's answer, for every flag the side's args or engine.args write."""
    table: dict = {}
    for keypath, args in (((side, "args"), getattr(recipe, side).args), (("engine", "args"), recipe.engine.args)):
        for key, value in args.items():
            flag = canonical(key)
            if flag not in table:  # the first key that writes a flag is the one the engine gets
                table[flag] = (value, keypath + (key,)) if value is not None else (None, None)
    return table


def _count(recipe, side: str, flag: str) -> int | None:
    value, _ = side_arg(recipe, side, flag)
    if value is None or isinstance(value, bool):
        return None
    try:
        return max(int(value if isinstance(value, (int, float)) else str(value)), 1)
    except ValueError:  # not a number: the flag rules (RC804) say so
        return None


def gpus_per_worker(recipe, side: str) -> int:
    """Devices one worker of `side` uses: TP x PP x local DP."""
    tp = getattr(recipe, side).tensor_parallel_size
    pp = _count(recipe, side, "--pipeline-parallel-size") or 1
    local = _count(recipe, side, "--data-parallel-size-local")
    if local is None:
        rank, _ = side_arg(recipe, side, "--data-parallel-rank")
        local = 1 if rank is not None else (_count(recipe, side, "--data-parallel-size") or 1)
    return tp * pp * local


def parallel_words(recipe, side: str) -> str:
    """How gpus_per_worker was counted, for a message: 'TP8', 'TP4 x PP2 x DP2'."""
    tp = getattr(recipe, side).tensor_parallel_size
    total = gpus_per_worker(recipe, side)
    pp = _count(recipe, side, "--pipeline-parallel-size") or 1
    words = [f"TP{tp}"] + ([f"PP{pp}"] if pp > 1 else [])
    dp = total // (tp * pp)
    return " x ".join(words + ([f"DP{dp}"] if dp > 1 else []))


def uses_devices(recipe) -> bool:
    """Do the engines run on accelerators? A CPU cluster has none to count, slice or look for."""
    return recipe.cluster.accelerator.strip().upper() != "CPU"


_AMD = re.compile(r"^(MI\d|AMD|INSTINCT|RADEON)", re.I)
_NVIDIA = re.compile(r"^(NVIDIA|[ABHL]\d|GB\d|GH\d|RTX|V100|T4\b|TESLA)", re.I)


@functools.lru_cache(maxsize=64)  # a name or two a project, asked for every node of every plan
def accelerator_family(name: str) -> str:
    """amd, nvidia, cpu, or any (a name recipec does not know: count either kind)."""
    name = name.strip()
    if name.upper() == "CPU":
        return "cpu"
    if _AMD.match(name):
        return "amd"
    if _NVIDIA.match(name):
        return "nvidia"
    return "any"
