"""Config keys kept outside recipes: the top-level keys of YAML files named by globs.

Takes the globs of `config-keys-from` (InferenceX keeps its config keys as the top-level keys of
configs/*-master.yaml) and the folder they are relative to; gives the set of keys. Each way this
can go wrong is one ProjectError naming the glob or the file: a glob that matches nothing, a file
that cannot be read or is not YAML (with its position), a file that is not a mapping.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import yaml

from .errors import LoadError, Position, ProjectError
from .load import read_text

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

# A master config is a few hundred KB (InferenceX's largest: 324 KB); the changelog's limit.
MAX_BYTES = 16 * 1024 * 1024


def _has_magic(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def config_files(patterns: tuple, base: Path, source: str) -> list[Path]:
    """The files ``patterns`` name, relative to ``base``, sorted and without repeats."""
    found: list[Path] = []
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else str(base / pattern)
        if not _has_magic(pattern):
            path = Path(full)
            if not path.exists():
                raise ProjectError(f"config-keys-from file {pattern!r} does not exist",
                                   Position(_shown(path)), hint=f"from {source}")
            found.append(path)
            continue
        matches = sorted(glob.glob(full, recursive=True))
        if not matches:
            raise ProjectError(f"config-keys-from glob {pattern!r} matches no file in {base}",
                               hint=f"from {source}")
        found += [Path(m) for m in matches]
    return sorted(set(found), key=lambda p: str(p))


def _shown(path: Path) -> str:
    return os.path.relpath(path) if path.is_absolute() else str(path)


def _at(display: str, mark) -> Position:
    return Position(display, mark.line + 1, mark.column + 1)


def top_level_keys(text: str, display: str) -> set[str]:
    """The keys of the mapping at the top of ``text``, read from the parser's event stream.

    Only the top-level keys matter, so nothing is built: no values, no alias expansion (an alias
    bomb costs nothing here), ~6x faster than loading the whole file with positions.
    """
    keys: set[str] = set()
    depth, nodes_at_top, root, documents = 0, 0, None, 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise ProjectError("a config-keys-from file must hold one YAML document",
                                       _at(display, event.start_mark))
                continue
            if not isinstance(event, yaml.NodeEvent) and not isinstance(event, yaml.CollectionEndEvent):
                continue
            if depth == 0 and root is None:
                root = event
                if not isinstance(event, yaml.MappingStartEvent):
                    got = ("a list" if isinstance(event, yaml.SequenceStartEvent) else
                           "empty" if isinstance(event, yaml.ScalarEvent) and event.value == "" else "a scalar")
                    raise ProjectError("a config-keys-from file must be a mapping whose top-level keys "
                                       f"are config keys (this one is {got})", _at(display, event.start_mark))
            elif depth == 1 and isinstance(event, yaml.NodeEvent):
                nodes_at_top += 1
                if nodes_at_top % 2 == 1:  # a key (keys and values alternate)
                    if not isinstance(event, yaml.ScalarEvent):
                        raise ProjectError("a config-keys-from file's top-level keys must be plain "
                                           "scalars", _at(display, event.start_mark))
                    keys.add(event.value)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ProjectError(f"config-keys-from file is not valid YAML: {message}",
                           _at(display, mark) if mark else Position(display)) from None
    except yaml.YAMLError as exc:
        raise ProjectError(f"config-keys-from file is not valid YAML: {exc}", Position(display)) from None
    if root is None:
        raise ProjectError("a config-keys-from file must be a mapping whose top-level keys are config "
                           "keys (this one is empty)", Position(display, 1, 1))
    return keys


def keys_of(path: Path) -> set[str]:
    display = _shown(path)
    try:
        text = read_text(path, display, max_bytes=MAX_BYTES)
    except LoadError as exc:
        raise ProjectError(f"config-keys-from file: {exc.message}", exc.position or Position(display),
                           hint=exc.hint) from None
    return top_level_keys(text, display)


def config_keys(patterns: tuple, base: Path, source: str) -> set[str]:
    """Every top-level key of every file ``patterns`` match (``source`` says where they were set)."""
    keys: set[str] = set()
    for path in config_files(patterns, base, source):
        keys |= keys_of(path)
    return keys
