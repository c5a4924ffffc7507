"""What every runtime answers (runtime/__init__.py lists them)."""

from __future__ import annotations

from dataclasses import dataclass

from ..words import Word


@dataclass(frozen=True)
class Mount:
    source: Word
    target: Word
    read_only: bool


@dataclass(frozen=True)
class Wrapped:
    """A service's start in its container: the words before its argv, and its client's env."""

    prefix: tuple  # runtime command, its options, the image (the service's argv follows)
    env: tuple = ()  # (NAME, Word) exported to the runtime's client process (not the container's)


class Runtime:
    name: str = ""
    command: str = ""  # the executable each node needs on PATH
    needs_job: bool = False  # runs only where node scripts are tasks of a SLURM job (placement.in_job)
    names_containers: bool = False  # teardown removes its containers by name (container.sh)

    def reference(self, image: str) -> str:
        """The recipe's image as this runtime names it (pulls and runs it by)."""
        return image

    def wrap(self, image: str, name: Word | None, mounts: tuple, env: tuple, pass_env: tuple,
             devices: str) -> Wrapped:
        """The start of one service in image: mounts (Mount), env ((NAME, Word) the service gets),
        pass_env (host variables passed in by name), devices (amd, nvidia, none)."""
        raise NotImplementedError

    def once(self, image: str, mounts: tuple) -> tuple:
        """The words before a short command run in image with mounts: no devices, no env, nothing
        left when it ends (the runtimes here that name containers override this)."""
        return self.wrap(image, None, mounts, (), (), "none").prefix


__all__ = ["Mount", "Wrapped", "Runtime"]
