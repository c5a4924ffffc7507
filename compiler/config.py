"""Project settings from pyproject.toml's [tool.recipec] table (repository, image allow-list)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ALLOW_LIST = ("docker.io/vllm/", "docker.io/rocm/", "docker.io/lmcache/", "nvcr.io/nvidia/")


@dataclass(frozen=True)
class ProjectConfig:
    root: Path | None
    repository: str | None
    image_allow_list: tuple


def find_pyproject(start: Path) -> Path | None:
    start = start.resolve()
    for folder in (start, *start.parents) if start.is_dir() else start.parents:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=16)
def project_config(start: Path) -> ProjectConfig:
    path = find_pyproject(start)
    table: dict = {}
    if path is not None:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            tomllib = None
        if tomllib is not None:
            try:
                table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("recipec", {})
            except (OSError, ValueError):
                table = {}
    return ProjectConfig(
        root=path.parent if path else None,
        repository=table.get("repository"),
        image_allow_list=tuple(table.get("image-allow-list", DEFAULT_ALLOW_LIST)),
    )
