"""Atomic file writes: a reader (or a killed run) never sees a half-written file.

Write to a temporary file in the destination folder, flush it to disk, then ``os.replace`` it over
the destination -- an atomic rename on POSIX and Windows.  The temporary file lives beside the
target because a rename across file systems is not atomic; its name is unique per process and call
(``mkstemp``), so two runs writing one target never clash.  :func:`check_file` / :func:`check_dir`
test a destination before a command does its long work; an ``OSError`` while writing becomes a
one-line :class:`~pixelwise.errors.PixelwiseError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import PixelwiseError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _write_error(path, e) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600 and some writers (safetensors) recreate the file: set the mode last
        os.chmod(tmp_path, 0o666 & ~_umask())
        with open(tmp_path, "rb+") as f:  # the data must be on disk before the rename is
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except OSError as e:
        if e.errno not in _WRITE_ERRNOS:  # e.g. a file the writer itself failed to read
            raise
        raise _write_error(path, e) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


# failures of the destination (not of whatever the writer was doing): reported in one line
_WRITE_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EFBIG,
    errno.EISDIR,
    errno.ENOTDIR,
    errno.ENAMETOOLONG,
    errno.EXDEV,
}


def _write_error(path: Path, e: OSError) -> PixelwiseError:
    why = "permission denied" if isinstance(e, PermissionError) else (e.strerror or str(e))
    return PixelwiseError(f"cannot write {path}: {why}")


def check_dir(path: str | Path, what: str = "--out") -> Path:
    """Fail now, in one line, if folder ``path`` could not be created or written to later."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PixelwiseError(f"{what} {path} is an existing file, not a folder: name a folder")
    _probe(path, what)
    return path


def check_file(path: str | Path, what: str = "--out") -> Path:
    """Fail now, in one line, if file ``path`` could not be written later (a folder, unwritable place)."""
    path = Path(path)
    if path.is_dir():
        raise PixelwiseError(f"{what} {path} is a folder: name the file to write")
    _probe(path.parent, what, path)
    return path


def _probe(folder: Path, what: str, named: Path | None = None) -> None:
    """Create and remove a file in ``folder`` (or the nearest existing folder above it): the only
    test that is right for read-only mounts, ACLs and root alike."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise PixelwiseError(f"{what} {named or folder}: {existing} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".pixelwise-probe.", dir=existing)
    except OSError as e:
        why = "permission denied" if isinstance(e, PermissionError) else (e.strerror or str(e))
        raise PixelwiseError(f"cannot write {what} {named or folder}: {why} in {existing.resolve()}") from None
    os.close(fd)
    os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | Path, data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    write_bytes(path, text.encode("utf-8"))
