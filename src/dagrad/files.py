"""Writing files whole or not at all: through a temporary file in the same directory, then a rename.

Model files, checkpoints, diagrams and the demo's reports all go through
``atomic_write``, so an error or an interrupt mid-write leaves any earlier file
untouched and no temporary file behind. A save killed outright (SIGKILL, power
loss) cannot clean up after itself; its temporary file is removed by the next
save to the same target. Re-saving keeps the file's permissions, and saving
through a symbolic link replaces the file the link points to, not the link.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator, Union

try:  # POSIX: a writer holds a lock on its temporary file, so a live save's file is never taken for a leftover
    import fcntl
except ImportError:  # pragma: no cover - Windows: leftovers are not cleaned up
    fcntl = None

__all__ = ["atomic_write", "temporary_files"]

_SUFFIX = ".tmp"


def _prefix(target: Path) -> str:
    return f".{target.name}."


def temporary_files(path: Union[str, os.PathLike]) -> list[Path]:
    """The temporary files of saves to ``path`` (for tests and for the curious: normally none)."""
    target = Path(os.path.realpath(path))
    directory = target.parent
    prefix = _prefix(target)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(directory / n for n in names if n.startswith(prefix) and n.endswith(_SUFFIX))


def _remove_leftovers(target: Path) -> None:
    """Delete temporary files of earlier saves to ``target`` that no running save holds."""
    if fcntl is None:
        return
    for leftover in temporary_files(target):
        try:
            fd = os.open(leftover, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a save in progress (in this or another process) holds it
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        finally:
            os.close(fd)


def _mode_for(target: Path) -> int:
    """The mode of the file being replaced, or what a plain ``open`` would give a new one."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path: Union[str, os.PathLike]) -> Iterator[BinaryIO]:
    """Open a binary file that replaces ``path`` only when the block ends without an exception.

    The new file gets the permissions of the file it replaces, or those a
    plain ``open`` would give (not ``mkstemp``'s owner-only 0600); it is
    flushed to disk before the rename, and the rename is flushed after it.
    A symbolic link at ``path`` is followed: its target is replaced and the
    link stays.

    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> with atomic_write(target) as f:
    ...     _ = f.write(b"whole")
    >>> target.read_bytes()
    b'whole'
    """
    target = Path(os.path.realpath(path))
    directory = target.parent
    _remove_leftovers(target)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=_prefix(target), suffix=_SUFFIX)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when the file is closed, or when this process dies
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _mode_for(target))
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, target)  # while still locked, so no cleaner takes it for a leftover
        _sync_directory(directory)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (where directories can be opened)."""
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
