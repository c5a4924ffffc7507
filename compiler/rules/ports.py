"""Port rules: two services of one node must never want the same port."""

from __future__ import annotations

from . import Finding, rule

@rule("RC201", "port-conflict", "two services of one node use the same port",
      "give each service its own port in the recipe")
def port_conflict(ctx):
    seen_messages = set()
    for target in ("local", "slurm"):
        plan = ctx.plan(target)
        for node in plan.nodes:
            owners: dict[int, tuple] = {}
            for svc in node.services:
                for use in svc.ports:
                    if use.port in owners:
                        first = owners[use.port]
                        msg = (f"port {use.port} is wanted by {first[0]} ({first[1]}) and by {svc.name} "
                               f"({use.purpose}) on {'this machine' if target == 'local' else node.label}"
                               f" [{target} target]")
                        if msg not in seen_messages:
                            seen_messages.add(msg)
                            yield Finding(use.keypath, msg)
                    else:
                        owners[use.port] = (svc.name, use.purpose)
