"""Stage 6, write: {relative path: text} -> a bundle directory, replaced atomically.

The bundle is written into a staging directory beside the target, then swapped with the target in
one step (Linux renameat2 RENAME_EXCHANGE): at every instant the target is the complete old bundle
or the complete new one, whenever the build is killed. Then the old one, now in the staging
directory's place, is removed. Where the exchange is not supported (another kernel, a filesystem
without it) the swap takes two renames, and a build killed between them leaves the old bundle
only in a `.old` directory beside the target: the next build puts it back before anything else.

Staging and old directories are named `.TARGET.recipec-tmp|old.HOST.PID.RANDOM`, so a later build
removes exactly those a killed build of recipec left (its own prefix, this host, a PID no longer
running), and nothing else.

An existing target is replaced only if it is empty or is a bundle recipec wrote: `-o ~` must not
delete a home directory.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import shutil
import stat
from pathlib import Path

from .errors import WriteError

EXECUTABLE_SUFFIXES = (".sh",)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# renameat2 where glibc (< 2.28) has no wrapper: the syscall number of each architecture we know.
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276, "ppc64le": 357, "s390x": 347, "riscv64": 276}


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


@functools.cache
def _renameat2():
    """renameat2(olddirfd, old, newdirfd, new, flags) as a callable, or None where there is none.
    Looked up on first use: a build into a new directory never pays for ctypes."""
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return None
    import ctypes  # noqa: PLC0415 (only a rebuild over an existing bundle needs it)
    try:
        # dlopen(NULL): the symbols of the running interpreter, libc's among them (no find_library,
        # which starts a subprocess machinery just to name libc).
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    if hasattr(libc, "renameat2"):
        return libc.renameat2
    number = _SYS_RENAMEAT2.get(os.uname().machine)
    if number is None:
        return None
    return lambda *args: libc.syscall(number, *args)


class _NoExchange(Exception):
    """The kernel or the filesystem cannot exchange two paths."""


def exchange(a: Path, b: Path) -> None:
    """Swap two directories in one step; _NoExchange where that is not supported."""
    call = _renameat2()
    if call is None:
        raise _NoExchange
    if call(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        import ctypes  # noqa: PLC0415 (loaded already by _renameat2)
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise _NoExchange
        raise OSError(err, os.strerror(err), str(b))


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "_", os.uname().nodename)[:64] or "host"


def _owned_name(target: Path) -> re.Pattern:
    return re.compile(rf"^\.{re.escape(target.name)}\.recipec-(tmp|old)\.{re.escape(_host())}\.(\d+)\.[0-9a-f]+$")


def _make_dir(target: Path, kind: str) -> Path:
    while True:
        path = target.parent / f".{target.name}.recipec-{kind}.{_host()}.{os.getpid()}.{os.urandom(4).hex()}"
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def recover(target: Path) -> None:
    """Put back, then remove, what a killed build of this target left beside it: staging and old
    directories of this host whose build is no longer running."""
    owned = _owned_name(target)
    try:
        entries = sorted(os.listdir(target.parent))
    except OSError:
        return
    for entry in entries:
        m = owned.match(entry)
        if not m or _alive(int(m.group(2))):
            continue
        path = target.parent / entry
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                continue
            # The two-rename fallback killed between its renames: the old bundle is all there is.
            if m.group(1) == "old" and not os.path.lexists(target) and (path / "bundle").is_dir():
                os.rename(path / "bundle", target)
        except OSError:
            pass
        shutil.rmtree(path, ignore_errors=True)


def _write_file(path: Path, text: str, mode: int) -> None:
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)  # not the umask's choice: the bundle's scripts must be executable
    finally:
        os.close(fd)


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
        recover(target)
        staging = _make_dir(target, "tmp")
    except OSError as exc:
        raise WriteError(f"{target}: cannot create the output directory: {exc.strerror}") from None
    leftover: Path | None = staging
    try:
        for rel, text in sorted(files.items()):
            path = staging / rel
            if path.resolve().parent != staging.resolve() and staging.resolve() not in path.resolve().parents:
                raise WriteError(f"bundle file {rel!r} would land outside the bundle")
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_file(path, text, 0o755 if rel.endswith(EXECUTABLE_SUFFIXES) else 0o644)
        os.chmod(staging, 0o755)
        if os.path.lexists(target):
            try:
                exchange(staging, target)  # staging now holds the old bundle
            except _NoExchange:
                leftover = _make_dir(target, "old")
                os.rename(target, leftover / "bundle")
                try:
                    os.rename(staging, target)
                except OSError:
                    os.rename(leftover / "bundle", target)
                    raise
        else:
            os.rename(staging, target)
            leftover = None
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise WriteError(f"{target}: cannot write the bundle: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if leftover is not None:
        shutil.rmtree(leftover, ignore_errors=True)
    return target
