"""Topology rules: the parallelism fits the nodes (every target), and the whole stack fits the one
machine of a one-machine target."""

from __future__ import annotations

from ..parallel import gpus_per_worker, parallel_words
from .registry import Finding, plan_rule, rule


@rule("RC401")
def gpus_exceeded(ctx):
    gpus = ctx.recipe.cluster.gpus_per_node
    for role in ("prefill", "decode"):
        spec = getattr(ctx.recipe, role)
        each = gpus_per_worker(ctx.recipe, role)
        need = each * spec.workers_per_node
        if need > gpus:
            yield Finding((role, "tensor-parallel-size"),
                          f"{role}: {spec.workers_per_node} worker(s) x {parallel_words(ctx.recipe, role)} = "
                          f"{need} GPUs per node, but a node has {gpus}")


@plan_rule("RC967")
def local_gpus_exceeded(ctx):
    """Only for the target being built (lint: the recipe's own): a recipe for SLURM is not wrong
    because its stack does not fit one machine; a local bundle of it would start engines on devices
    another engine already holds."""
    for plan in ctx.plans:
        if plan.target != ctx.target or not plan.one_machine:
            continue
        have = ctx.recipe.cluster.gpus_per_node
        node = plan.nodes[0]
        if node.gpus > have:
            parts = ", ".join(f"{role} {n} x {parallel_words(ctx.recipe, role)}" for role, n in
                              (("prefill", ctx.recipe.prefill.nodes * ctx.recipe.prefill.workers_per_node),
                               ("decode", ctx.recipe.decode.nodes * ctx.recipe.decode.workers_per_node)))
            yield Finding(("cluster", "gpus-per-node"),
                          f"the {plan.target} target runs every engine on this machine: {parts} need "
                          f"{node.gpus} GPUs, the machine has {have} (cluster.gpus-per-node)")
