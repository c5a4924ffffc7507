"""Port rules, over the Plans: two services of one node must never want the same port."""

from __future__ import annotations

from .registry import Finding, plan_rule


@plan_rule("RC201")
def port_conflict(ctx):
    seen_messages = set()
    for plan in ctx.plans:
        for first, use in plan.ports.conflicts():
            msg = (f"port {use.port} is wanted by {first.service} ({first.purpose}) and by {use.service} "
                   f"({use.purpose}) on {plan.nodes[use.node].label} [{plan.target} target]")
            if msg not in seen_messages:
                seen_messages.add(msg)
                yield Finding(use.keypath, msg)
