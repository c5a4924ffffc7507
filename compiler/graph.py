"""`recipec graph RECIPE`: the topology of a Plan as a picture.

Takes the Plan of one target (nothing is planned here: pipeline.check gives it) and gives Mermaid
text, or Graphviz DOT text that `dot -Tsvg` turns into SVG. Nodes are boxes (clusters), services the
boxes inside with their ports, and the edges say who talks to whom: the client and the router over
HTTP, the router to each prefill and decode engine, prefill to decode through the KV transfer
connector, each engine to the LMCache server its LMCacheMPConnector uses.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from .errors import RecipecError
from .plan_types import Plan, Service
from .render import plain

LMCACHE_CONNECTOR = "LMCacheMPConnector"


class GraphError(RecipecError):
    """dot is missing or failed (exit 1, one line)."""


def _id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _connectors(kv) -> list[str]:
    if kv is None:
        return []
    return [c.connector for c in kv.connectors] if kv.connectors else [kv.connector]


def edges(plan: Plan) -> list[tuple[str, str, str]]:
    """(from service, to service, label) of every conversation in the plan, in a stable order."""
    recipe = plan.recipe
    by_role: dict[str, list[Service]] = {}
    for s in plan.services:
        by_role.setdefault(s.role, []).append(s)
    out = []
    if plan.client is not None:
        for router in by_role.get("router", []):
            out.append((plan.client.name, router.name, "HTTP"))
    if plan.benchmark is not None:
        for router in by_role.get("router", []):
            out.append(("benchmark", router.name, "HTTP, one point a concurrency"))
    for router in by_role.get("router", []):
        for role in ("prefill", "decode"):
            for engine in by_role.get(role, []):
                out.append((router.name, engine.name, f"{role} requests"))
    pd = [c for c in _connectors(recipe.prefill.kv_transfer) if c != LMCACHE_CONNECTOR]
    decode_side = set(_connectors(recipe.decode.kv_transfer))
    shared = [c for c in pd if c in decode_side] or pd
    for p in by_role.get("prefill", []):
        for d in by_role.get("decode", []):
            out.append((p.name, d.name, "KV: " + ", ".join(shared) if shared else "KV"))
    lmcaches = {s.node: s for s in by_role.get("lmcache", [])}
    for role in ("prefill", "decode"):
        if LMCACHE_CONNECTOR in _connectors(getattr(recipe, role).kv_transfer):
            for engine in by_role.get(role, []):
                if engine.node in lmcaches:
                    out.append((engine.name, lmcaches[engine.node].name, LMCACHE_CONNECTOR))
    return out


def _label(s: Service) -> str:
    ports = ", ".join(f"{u.port} {u.purpose}" for u in s.ports)
    return f"{s.name} ({s.role})" + (f"\\n{ports}" if ports else "")


def _sweep(plan: Plan) -> str:
    concurrencies = ", ".join(str(p.concurrency) for p in plan.benchmark.points)
    return f"benchmark: concurrency {concurrencies}"


def mermaid(plan: Plan) -> str:
    lines = ["flowchart LR"]
    for node in plan.nodes:
        lines.append(f'  subgraph node{node.index}["{node.label}"]')
        for s in node.services:
            lines.append(f'    {_id(s.name)}["{_label(s).replace(chr(92) + "n", "<br/>")}"]')
        lines.append("  end")
    if plan.client is not None:
        lines.append(f'  {_id(plan.client.name)}(["client: {plain(plan.router_url)}"])')
    if plan.benchmark is not None:
        lines.append(f'  benchmark(["{_sweep(plan)}"])')
    for a, b, label in edges(plan):
        lines.append(f"  {_id(a)} -->|{label}| {_id(b)}")
    return "\n".join(lines) + "\n"


def dot(plan: Plan) -> str:
    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\\\\n", "\\n") + '"'

    lines = [f"digraph {q(plan.recipe.name)} {{", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
    for node in plan.nodes:
        lines.append(f"  subgraph cluster_{node.index} {{")
        lines.append(f"    label={q(node.label)};")
        for s in node.services:
            lines.append(f"    {_id(s.name)} [label={q(_label(s))}];")
        lines.append("  }")
    if plan.client is not None:
        lines.append(f"  {_id(plan.client.name)} [shape=oval, label={q('client: ' + plain(plan.router_url))}];")
    if plan.benchmark is not None:
        lines.append(f"  benchmark [shape=oval, label={q(_sweep(plan))}];")
    for a, b, label in edges(plan):
        lines.append(f"  {_id(a)} -> {_id(b)} [label={q(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def svg(plan: Plan) -> str:
    exe = shutil.which("dot")
    if exe is None:
        raise GraphError("--format svg needs Graphviz's `dot` on PATH, and there is none",
                         hint="install graphviz (apt-get install graphviz), or use --format mermaid or dot")
    proc = subprocess.run([exe, "-Tsvg"], input=dot(plan), capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise GraphError(f"dot -Tsvg failed (exit {proc.returncode}): {proc.stderr.strip()[:200]}")
    return proc.stdout
