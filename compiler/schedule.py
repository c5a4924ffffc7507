"""The order of one node's work: preflight, then each service started as soon as what it needs is
ready, then serve.

Part of plan: takes a node's services (with their `after` dependencies), the services of other nodes
it waits for, and the client step; gives the Steps its script prints, each with the comment that
says why it stands there. Independent services start together; each wait is for exactly what the
next service lacks, so nothing waits longer than it must.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from .plan_types import Service, Step


class _Node(NamedTuple):
    """What the order of a service depends on."""

    name: str
    role: str
    after: tuple


def order_steps(rank: int, local: list[Service], remote: list[Service], client: Service | None,
                benchmark: bool = False, named: frozenset = frozenset()) -> tuple:
    """named: the services whose containers have names; a start step awaits those it starts (their
    containers must be running within a deadline)."""
    # The order reads only names, roles and dependencies: the same for one node in every variant of
    # a sweep, so it is worked out once per distinct shape (Steps are frozen: shared).
    return _ordered(rank, tuple((s.name, s.role, s.after) for s in local), tuple(s.name for s in remote),
                    client is not None, benchmark, named)


@functools.lru_cache(maxsize=256)
def _ordered(rank: int, local: tuple, remote: tuple, client: bool, benchmark: bool, named: frozenset) -> tuple:
    return tuple(Step(step.kind, step.services, step.why, tuple(n for n in step.services if n in named))
                 if step.kind in ("start", "client") else step
                 for step in _steps(rank, [_Node(*s) for s in local], remote, client, benchmark))


def _steps(rank: int, local: list[_Node], remote: tuple, client: bool, benchmark: bool) -> list[Step]:
    local_names = {s.name for s in local}
    remote_by_name = set(remote)
    steps: list[Step] = [Step("preflight", tuple(s.name for s in local),
                              "What this node needs must be there (node checks, preflight.sh) and every port it "
                              "binds free, before anything starts.")]
    needed_remote = sorted({d for s in local for d in s.after if d in remote_by_name},
                           key=remote.index)
    is_router_node = any(s.role == "router" for s in local)
    if not is_router_node:
        needed_remote.append("router")
    if needed_remote:
        steps.append(Step("watch", tuple(needed_remote),
                          "Services on other nodes this node waits for (readiness only; no PID here)."))
    ready: set[str] = set()
    started: list[str] = []
    pending = list(local)
    while pending:
        startable = [s for s in pending if all(d in ready for d in s.after)]
        if startable:
            steps.append(Step("start", tuple(s.name for s in startable), _why_start(startable)))
            started += [s.name for s in startable]
            pending = [s for s in pending if s not in startable]
        if not pending:
            break
        # Wait for exactly what the next startable service lacks, so it starts as early as it can.
        waitable = ()
        for s in pending:
            unmet = tuple(d for d in s.after if d not in ready)
            if all(d in started or d in remote_by_name for d in unmet):
                waitable = unmet
                break
        if not waitable:  # pragma: no cover - a dependency cycle; plan inputs cannot make one
            raise RuntimeError(f"cannot order services on node {rank}: {[s.name for s in pending]}")
        steps.append(Step("wait", waitable, _why_wait(waitable, pending, local_names)))
        ready.update(waitable)
    rest = tuple(n for n in started if n not in ready)
    if rest:
        steps.append(Step("wait", rest, "Everything this node started must be ready before it serves."))
    if is_router_node:
        if benchmark:
            steps.append(Step("benchmark", (),
                              "The stack is ready: check that it answers, then run the sweep; its status is "
                              "the launcher's."))
        elif client:
            steps.append(Step("client", ("client",),
                              "The stack is ready: run the client step; its status is the launcher's."))
        else:
            steps.append(Step("serve", (), "Serve until SIGINT/SIGTERM, checking every service each tick."))
    else:
        steps.append(Step("wait", ("router",), "Serve once the router on node 0 is up."))
        steps.append(Step("serve_while_up", ("router",),
                          "Serve while the router is up; when it goes away the job is over."))
    return tuple(steps)


def _and(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _why_start(services: list[_Node]) -> str:
    names = _and(s.name for s in services)
    needs = sorted({d for s in services for d in s.after})
    if not needs:
        return f"{names}: {'they need' if len(services) > 1 else 'it needs'} nothing else, so start at once."
    return f"{names}: {_and(needs)} {'are' if len(needs) > 1 else 'is'} ready, so start now."


def _why_wait(waitable, pending, local_names) -> str:
    blocked = _and(s.name for s in pending if any(d in waitable for d in s.after))
    return f"{blocked} must not start before {_and(waitable)} {'are' if len(waitable) > 1 else 'is'} ready."
