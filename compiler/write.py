"""Stage 6, write: {relative path: text} -> a bundle directory, replaced atomically.

The bundle is written into a temporary directory beside the target and renamed into place, so a
failed build never leaves a half-written bundle, and a reader never sees a mix of two builds.
An existing target is replaced only if it is empty or is a bundle recipec wrote: `-o ~` must not
delete a home directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import WriteError

EXECUTABLE_SUFFIXES = (".sh",)


def _is_replaceable(target: Path) -> bool:
    if not any(target.iterdir()):
        return True
    manifest = target / "bundle.json"
    if not manifest.is_file() or manifest.is_symlink():
        return False
    try:
        return "recipec_version" in json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def write_bundle(files: dict[str, str], target: Path) -> Path:
    target = Path(os.path.abspath(target))
    if target.is_symlink():
        raise WriteError(f"{target}: output is a symbolic link; refusing to write through it")
    if target.exists():
        if not target.is_dir():
            raise WriteError(f"{target}: exists and is not a directory")
        if not _is_replaceable(target):
            raise WriteError(f"{target}: exists and is not a recipec bundle; refusing to replace it",
                             hint="choose an empty or new directory with -o")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise WriteError(f"{target}: cannot create the output directory: {exc.strerror}") from None
    try:
        for rel, text in sorted(files.items()):
            path = staging / rel
            if path.resolve().parent != staging.resolve() and staging.resolve() not in path.resolve().parents:
                raise WriteError(f"bundle file {rel!r} would land outside the bundle")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o755 if rel.endswith(EXECUTABLE_SUFFIXES) else 0o644)
        staging.chmod(0o755)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, old / "bundle")
            os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise WriteError(f"{target}: cannot write the bundle: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
