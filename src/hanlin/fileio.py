"""Crash-safe writes: a file or folder is written beside its target under a temporary name and
renamed over it, so a reader — or a restart after a crash — sees the old version or the new one,
never half of one. Every place in Hanlin that replaces a file goes through here.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _temp_name(target: Path) -> Path:
    """A unique sibling of ``target`` (same folder, so the final rename is atomic)."""
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def atomic_write_bytes(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (written to a sibling, flushed to disk,
    renamed). ``mode`` sets exact permissions (``0o600`` for key files); without it the file
    gets the usual ``0o666`` less the umask. The folder is created when missing; on any error
    the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
    try:
        if mode is not None:
            os.fchmod(fd, mode)  # exact, whatever the umask
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(
    path: Path, text: str, *, mode: int | None = None, encoding: str = "utf-8"
) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded (UTF-8 by default)."""
    atomic_write_bytes(path, text.encode(encoding), mode=mode)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary sibling path for a writer that needs a file name (an index's ``save``, a
    GGUF writer, a copy); it replaces ``path`` when the block ends without an error, and is
    removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """A temporary sibling folder that replaces the folder ``target`` (removing an old one)
    when the block ends without an error; removed otherwise."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(target)
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["atomic_dir", "atomic_path", "atomic_write_bytes", "atomic_write_text"]
