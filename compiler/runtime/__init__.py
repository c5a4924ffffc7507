"""Container runtimes: how a planned service is started inside its image, one class per runtime.

A runtime turns what plan decided for a service (image, container name, mounts, env, devices) into
the words that go before the service's own argv (`podman run ... IMAGE`), and the environment its
client process gets. Computed once, in plan (compiler/containers.py asks); templates print them.
The run-time side (image preflight, removal by name, the start deadline) is the static library
templates/container.sh, which knows each runtime's commands by the runtime's name.
"""

from __future__ import annotations

from .apptainer import Apptainer
from .base import Mount, Runtime, Wrapped
from .oci import Docker, Podman
from .pyxis import Pyxis

RUNTIMES: dict[str, Runtime] = {r.name: r for r in (Podman(), Docker(), Pyxis(), Apptainer())}


def runtime_for(name: str) -> Runtime | None:
    """The runtime called name; None for "none" (the service runs from the node's PATH)."""
    return None if name == "none" else RUNTIMES[name]


__all__ = ["RUNTIMES", "Runtime", "Mount", "Wrapped", "runtime_for"]
