"""Port rules: two services of one node must never want the same port."""

from __future__ import annotations

from . import Finding, rule

# Where in the recipe each kind of port is set, to point a conflict at the line that causes it.
_PURPOSE_KEYS = {
    "LMCache MP (ZMQ)": ("lmcache", "port"),
    "LMCache HTTP (health)": ("lmcache", "http-port"),
    "router HTTP": ("router", "port"),
    "router Prometheus": ("router", "prometheus-port"),
}


def _keypath(service: str, purpose: str) -> tuple:
    if purpose in _PURPOSE_KEYS:
        return _PURPOSE_KEYS[purpose]
    role = service.split("-")[0]
    if purpose == "Mooncake bootstrap":
        return (role, "mooncake-bootstrap-port")
    if purpose == "NIXL side channel":
        return (role, "nixl-side-channel-port")
    return (role, "port")


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
                            yield Finding(_keypath(svc.name, use.purpose), msg)
                    else:
                        owners[use.port] = (svc.name, use.purpose)
