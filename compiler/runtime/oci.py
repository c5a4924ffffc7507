"""podman and docker: `RUNTIME run` in the foreground, one named container per service.

The foreground client is the service's process (its PID the launcher watches; --sig-proxy, the
default, hands it the teardown's TERM). --init puts an init as PID 1, which passes TERM on: without
it the engine is PID 1 and ignores TERM (measured, docs/containers.md). A SIGKILLed client leaves its
container running, so teardown also removes each container by the name it was given
(container.sh). No --rm: teardown removes every container it named anyway (one call for all), and
with --rm the client exits only after it has removed its container, 0.2-0.3 s after the container
did (measured): a death is noticed that much later, and every client of a teardown pays it.
--pull=never: the image preflight pulled it before anything started.
Device flags: AMD as InferenceX passes them (benchmarks/multi_node/amd_utils/job.slurm); NVIDIA as
--gpus (docker, NVIDIA Container Toolkit) or CDI (podman).
"""

from __future__ import annotations

import functools

from ..words import joined
from .base import Runtime, Wrapped

AMD_DEVICES = ("--device=/dev/kfd", "--device=/dev/dri", "--group-add=video",
               "--security-opt=seccomp=unconfined", "--cap-add=SYS_PTRACE")


class _OCI(Runtime):
    nvidia: tuple = ()
    names_containers = True

    def wrap(self, image, name, mounts, env, pass_env, devices):
        return Wrapped((self.command, "run", "--init", "--pull=never", joined("--name=", name),
                        *self._options(image, mounts, env, pass_env, devices)))

    # The words after the name are the same for a service in every variant of a sweep (a plan asks
    # once per service and target); they are a function of these arguments alone (hashable words).
    @functools.lru_cache(maxsize=256)
    def _options(self, image, mounts, env, pass_env, devices) -> tuple:
        words: list = ["--network=host", "--ipc=host"]
        words += {"amd": AMD_DEVICES, "nvidia": self.nvidia}.get(devices, ())
        for m in mounts:
            words.append(joined("--volume=", m.source, ":", m.target, ":ro" if m.read_only else ":rw"))
        words += [joined("--env=", key, "=", value) for key, value in env]
        words += [f"--env={key}" for key in pass_env]  # no value: the host's, if it has one
        words.append(image)
        return tuple(words)

    def once(self, image, mounts):
        # A few seconds' command that teardown does not track: removed by the runtime when it ends
        # (--rm), on no network (it reads and writes files only).
        words: list = [self.command, "run", "--rm", "--pull=never", "--network=none"]
        for m in mounts:
            words.append(joined("--volume=", m.source, ":", m.target, ":ro" if m.read_only else ":rw"))
        return (*words, image)


class Podman(_OCI):
    name = command = "podman"
    nvidia = ("--device=nvidia.com/gpu=all",)  # CDI (nvidia-ctk cdi generate)


class Docker(_OCI):
    name = command = "docker"
    nvidia = ("--gpus=all",)
