"""apptainer: `apptainer exec` in the foreground; the service's processes are the client's children.

Nothing outlives the client's process group, so teardown is lib.sh's as without containers (no
names to remove). Host network is apptainer's default. --cleanenv keeps the host's env out; the
service's env goes in as APPTAINERENV_NAME of the client (apptainer sets NAME in the container), a
passed-on host variable as APPTAINERENV_NAME=${NAME:-}. No --contain/--containall: those also
give the container its own IPC (and PID) namespace, where the engines need the host's IPC as with
docker's --ipc=host; apptainer's default system binds stay. Mounts are --bind SRC:DST[:ro|:rw].
Devices: --rocm (AMD), --nv (NVIDIA).
"""

from __future__ import annotations

from ..words import Ref
from ..words import joined
from .base import Runtime, Wrapped


class Apptainer(Runtime):
    name = command = "apptainer"

    def reference(self, image: str) -> str:
        """A SIF file or sandbox directory as it is; a registry image as a docker:// URI."""
        return image if image.startswith("/") or "://" in image else "docker://" + image

    def wrap(self, image, name, mounts, env, pass_env, devices):
        words: list = ["apptainer", "exec", "--cleanenv"]
        words += {"amd": ("--rocm",), "nvidia": ("--nv",)}.get(devices, ())
        for m in mounts:
            words.append(joined("--bind=", m.source, ":", m.target, ":ro" if m.read_only else ":rw"))
        words.append(image)
        exported = [(f"APPTAINERENV_{key}", value) for key, value in env]
        # ${NAME:-}: an unset host variable passes an empty one (set -u must not end the launcher).
        exported += [(f"APPTAINERENV_{key}", Ref(f"{key}:-")) for key in pass_env]
        return Wrapped(tuple(words), tuple(exported))
