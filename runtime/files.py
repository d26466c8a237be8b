"""Atomic file writes: a file appears under its final name complete, or not at all.

A write goes to a temporary file in the same folder (same filesystem, so the final
``os.replace`` is atomic), is flushed and fsynced, then renamed over the target. A
failure at any point (disk full, an exception, Ctrl-C) removes the temporary file and
leaves an earlier file under the final name untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "folder_mode",
    "replace_folder",
    "require_writable",
    "unwritable",
]


def unwritable(path: str | os.PathLike, *, folder: bool = False) -> str | None:
    """Why ``path`` cannot be written, or None when it can be: as a file (made or replaced
    in its folder), or with ``folder`` as a folder to write files in. Folders that do not
    exist yet count as writable where the nearest existing one is. Checked before the work
    whose result would be lost (an export, a check of every runtime), not instead of
    handling the write's own errors."""
    path = Path(path)
    if path.is_dir():
        if not folder:
            return "it is a folder; accepted: a file name"
        existing = path
    elif path.exists() and folder:
        return "it is a file, not a folder"
    else:
        existing = path.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            return f"{str(existing)!r} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        # access() reports a read-only file system and immutable folders too, for root
        return f"folder {str(existing)!r} is not writable (no permission, or a read-only file system)"
    return None


def require_writable(path: str | os.PathLike, what: str, *, folder: bool = False) -> Path:
    """``path`` as a Path, or OutputError naming ``what`` (a flag, "the output") and why."""
    reason = unwritable(path, folder=folder)
    if reason is not None:
        raise OutputError(f"cannot write {what} {str(path)!r}: {reason}")
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path next to ``path``; on success it replaces ``path``.

    For writers that want a file name (``model.save(tmp)``, ``onnx.save``). The
    temporary name keeps the suffix, since some writers check it.

    Example:
        >>> with atomic_path("model.keras") as tmp:   # doctest: +SKIP
        ...     model.save(tmp)
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"cannot write {str(target)!r}: it is a folder; accepted: a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=target.parent
        )
    except OSError as exc:
        raise OutputError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes 0600 files whatever the umask: a model copied into a container or
        # served by another user could not be read. Give it the mode open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise OutputError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def replace_folder(staging: Path, target: Path) -> None:
    """Puts the finished folder ``staging`` at ``target`` (beside it, on one file system),
    replacing what ``target`` held: a Triton model folder, a web site. Where a folder was
    there, it is moved aside first and put back if the swap fails."""
    if not target.exists():
        os.replace(staging, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.replace(target, old)  # a folder renames over an empty one
    try:
        os.replace(staging, target)
    except OSError:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def folder_mode() -> int:
    """The mode ``mkdir`` gives a new folder under the process umask (for folders made by
    ``tempfile.mkdtemp``, which makes them 0700, or copied with another tree's modes)."""
    return 0o777 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(current)
    return current


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
