"""Part of plan: which node checks each node runs before any of its services starts, and with what
values (templates/preflight.sh holds the checks; steps.j2 prints one `node_preflight` line each).

Takes the recipe and one node's services; gives (check, word...) tuples. Checks that cannot fail on
a node are left out (no engine: no model check; CPU: no accelerator count; no rdma: no RDMA check).
"""

from __future__ import annotations

import math

from .engine_args import MOONCAKE_CONNECTOR, connectors_of
from .parallel import accelerator_family
from .words import Ref

_TRUE = ("1", "true", "yes", "on")


def node_checks(recipe, services, gpus: int) -> tuple:
    """The node checks of a node running `services`, whose engines use `gpus` accelerators."""
    engines = [s for s in services if s.role in ("prefill", "decode")]
    checks: list[tuple] = []
    if engines:
        offline = any(str(v).lower() in _TRUE for k, v in recipe.engine.env.items()
                      if k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
        checks.append(("model", recipe.model.path, "1" if offline else "0"))
    if gpus:
        checks.append(("accelerators", str(gpus), accelerator_family(recipe.cluster.accelerator)))
    devices: list[str] = []
    rdma = False
    for role in sorted({s.role for s in engines}):
        for kv in connectors_of(getattr(recipe, role).kv_transfer):
            if kv.connector == MOONCAKE_CONNECTOR and kv.extra_config.get("mooncake_protocol", "rdma") == "rdma":
                rdma = True
                named = kv.extra_config.get("device_name") or ""
                devices += [d.strip() for d in str(named).split(",") if d.strip() and d.strip() not in devices]
    if rdma:
        checks.append(("rdma", *devices))
    lmcache = [s for s in services if s.role == "lmcache"]
    if lmcache and recipe.lmcache.l1_size_gb:
        gb = recipe.lmcache.l1_size_gb * len(lmcache)
        checks.append(("memory", str(math.ceil(gb * 1024 * 1024)), f"LMCache L1 ({gb:g} GiB)"))
    checks.append(("logdir", Ref("LOG_DIR")))
    return tuple(checks)
