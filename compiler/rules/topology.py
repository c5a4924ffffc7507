"""Topology rules: the parallelism fits the nodes."""

from __future__ import annotations

from .registry import Finding, rule


@rule("RC401")
def gpus_exceeded(ctx):
    gpus = ctx.recipe.cluster.gpus_per_node
    for role in ("prefill", "decode"):
        spec = getattr(ctx.recipe, role)
        need = spec.tensor_parallel_size * spec.workers_per_node
        if need > gpus:
            yield Finding((role, "tensor-parallel-size"),
                          f"{role}: {spec.workers_per_node} worker(s) x TP{spec.tensor_parallel_size} = "
                          f"{need} GPUs per node, but a node has {gpus}")
