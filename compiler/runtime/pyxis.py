"""pyxis: every service an srun step of its own with --container-image, as srt-slurm runs workers.

Only inside a SLURM job (node.sh runs as one task per node; the step is placed on that task's node
with --overlap, so it shares the task's resources). Containers stay unnamed: pyxis removes an
unnamed container when its step ends, and a named one never (NVIDIA/pyxis args.c), and a step ends
with its srun client or, at the latest, with the job. The service's env is exported to srun and
listed in --container-env, so it is set before the entrypoint and wins over the image's ENV;
nothing else of the host's env is listed. GPUs are the job's (SLURM gres), no device flag.
"""

from __future__ import annotations

from ..words import Ref
from ..words import joined
from .base import Runtime, Wrapped


class Pyxis(Runtime):
    name = "pyxis"
    command = "srun"
    needs_job = True

    def reference(self, image: str) -> str:
        """An enroot URI: the registry host is separated from the image by '#', not '/' (pyxis
        args.c: `[USER@][REGISTRY#]IMAGE[:TAG]`); docker.io is enroot's default. A path (a squashfs
        file made by `enroot import`) stays as it is."""
        if image.startswith("/") or "#" in image:
            return image
        first, _, rest = image.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return rest if first == "docker.io" else f"{first}#{rest}"
        return image

    def wrap(self, image, name, mounts, env, pass_env, devices):
        words: list = ["srun", "--overlap", "--nodes=1", "--ntasks=1",
                       joined("--nodelist=", Ref("SLURMD_NODENAME")), joined("--container-image=", image)]
        if mounts:
            items: list = []
            for m in mounts:
                items += [",", m.source, ":", m.target, ":ro" if m.read_only else ""]
            words.append(joined("--container-mounts=", *items[1:]))
        words.append("--no-container-mount-home")
        names = [key for key, _ in env] + list(pass_env)
        # srun passes its whole environment to the step by default, and pyxis sets it in the
        # container: --export keeps it to the listed names (and SLURM's own variables).
        words.append("--export=" + (",".join(names) if names else "NONE"))
        if names:
            words.append("--container-env=" + ",".join(names))
        return Wrapped(tuple(words), tuple(env))
