"""The project: its root folder and its settings from pyproject.toml's [tool.recipec] table.

Takes a folder to start from (the current directory, or a recipe's folder); gives a ProjectConfig.
The root is the nearest folder, walking up, whose pyproject.toml has a [tool.recipec] table; when
there is none, the nearest folder holding a recipes/ folder. Names (`recipec build NAME`), the
changelog, schema/ and config-keys-from globs are all found from the root, and paths written into
bundles are relative to it, so a command gives the same answer from any subdirectory.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import Position, ProjectError

DEFAULT_ALLOW_LIST = ("docker.io/vllm/", "docker.io/rocm/", "docker.io/lmcache/", "nvcr.io/nvidia/")
TABLE = "tool.recipec"
# Each key of [tool.recipec] and the type its value must have.
KEYS = {"repository": str, "image-allow-list": list, "config-keys-from": list}
# A cheap test before parsing: most pyproject.toml files on the way up are other projects'.
_MENTIONS_TABLE = re.compile(r"tool\s*\.\s*[\"']?recipec\b")
_HEADER = re.compile(r"^\s*\[\s*tool\s*\.\s*recipec\s*\]\s*(#.*)?$")


@dataclass(frozen=True)
class ProjectConfig:
    root: Path | None
    repository: str | None
    image_allow_list: tuple
    config_keys_from: tuple = ()  # globs relative to root
    pyproject: Path | None = None  # the file the settings came from

    def display(self, path: Path) -> str:
        """``path`` as written in output: relative to the root when inside it, else as given."""
        if self.root is not None:
            full, root = _real(os.fspath(path)), os.fspath(self.root)
            if full == root:
                return "."
            inside = root if root.endswith(os.sep) else root + os.sep
            if full.startswith(inside):
                return full[len(inside):]
        return str(path)


def _real(path: str) -> str:
    """os.path.realpath(path), its folder resolved once a process (lint shows every recipe of one
    folder, and resolving walks each component); the file itself resolved where it is a link."""
    if os.path.islink(path) or ".." in path.split(os.sep):  # (abspath folds a/link/.. without the link)
        return os.path.realpath(path)
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(_real_folder(folder), name)


@functools.lru_cache(maxsize=64)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def _table_text(path: Path) -> str | None:
    """The text of a pyproject.toml that has a [tool.recipec] table (None: it has none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text if _MENTIONS_TABLE.search(text) else None


def _shown(path: Path) -> str:
    return os.path.relpath(path) if path.is_absolute() else str(path)


@functools.lru_cache(maxsize=16)
def find_root(start: Path) -> tuple[Path | None, Path | None, dict]:
    """(project root, its pyproject.toml or None, its [tool.recipec] table), walking up from
    ``start``."""
    start = Path(start).resolve()
    folders = (start, *start.parents)
    for folder in folders:
        candidate = folder / "pyproject.toml"
        text = _table_text(candidate) if candidate.is_file() else None
        if text is not None:
            table = _parse(candidate, text)
            if table is not None:
                return folder, candidate, table
    for folder in folders:
        if (folder / "recipes").is_dir():
            return folder, None, {}
    return None, None, {}


def _key_position(text: str, display: str, key: str) -> Position:
    """Where ``key`` is set in the [tool.recipec] table (the table's header when not found)."""
    in_table, header = False, Position(display)
    for lineno, line in enumerate(text.split("\n"), 1):
        if _HEADER.match(line):
            in_table, header = True, Position(display, lineno, 1)
            continue
        if in_table and line.lstrip().startswith("["):
            in_table = False
        if in_table:
            m = re.match(r"^(\s*)(['\"]?)" + re.escape(key) + r"\2\s*=", line)
            if m:
                return Position(display, lineno, len(m.group(1)) + 1)
    return header


def _parse(path: Path, text: str) -> dict | None:
    """The checked [tool.recipec] table (None: the file has none, it only mentions it), from the
    per-user cache when these exact bytes were checked before against these KEYS (tomllib's import and parse cost a
    run ~7 ms; a file that fails is never cached, so its error is always reported afresh)."""
    import hashlib
    import json

    from .cache import cache_dir

    folder = cache_dir("project")
    entry = os.path.join(folder, hashlib.sha256(f"{sorted((k, t.__name__) for k, t in KEYS.items())}\n{text}".encode()).hexdigest()[:32] + ".json") if folder else None
    if entry is not None:
        try:
            with open(entry, encoding="utf-8") as f:
                cached = json.load(f)
            if cached is None or (isinstance(cached, dict) and all(_fits(k, v) for k, v in cached.items())):
                return cached
        except (OSError, ValueError):
            pass  # not there yet, or torn: check it
    table = _check(path, text)
    if entry is not None:
        tmp = f"{entry}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(table, f)
            os.replace(tmp, entry)
        except OSError:
            pass  # a cache that cannot be written only costs the next run the parse
    return table


def _fits(key: str, value: object) -> bool:
    want = KEYS.get(key)
    return want is not None and isinstance(value, want) and (want is not list or all(isinstance(v, str) for v in value))


def _check(path: Path, text: str) -> dict | None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    display = _shown(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = Position(display, int(m.group(1)), int(m.group(2))) if m else Position(display)
        raise ProjectError(f"invalid TOML: {str(exc).split(' (at line')[0]}", where) from None
    tool = data.get("tool")
    if not isinstance(tool, dict) or "recipec" not in tool:
        return None
    table = tool["recipec"]
    if not isinstance(table, dict):
        raise ProjectError(f"[{TABLE}] must be a table", _key_position(text, display, "recipec"))
    for key, value in table.items():
        if key not in KEYS:
            import difflib

            close = difflib.get_close_matches(key, KEYS, n=1)
            raise ProjectError(f"unknown key '{key}' in [{TABLE}]" + (f" (did you mean '{close[0]}'?)" if close else ""),
                               _key_position(text, display, key), hint="known: " + ", ".join(sorted(KEYS)))
        if not _fits(key, value):
            want = KEYS[key]
            what = "a string" if want is str else "a list of strings"
            raise ProjectError(f"[{TABLE}] {key} must be {what} (got {type(value).__name__})",
                               _key_position(text, display, key))
    return table


@functools.lru_cache(maxsize=16)
def project_config(start: Path) -> ProjectConfig:
    root, path, table = find_root(start)
    return ProjectConfig(
        root=root,
        repository=table.get("repository"),
        image_allow_list=tuple(table.get("image-allow-list", DEFAULT_ALLOW_LIST)),
        config_keys_from=tuple(table.get("config-keys-from", ())),
        pyproject=path,
    )
