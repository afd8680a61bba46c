"""The lock of a checkpoint folder: one run at a time writes there.

A run that writes into a checkpoint folder it was given (``dirpath``) holds
:class:`FolderLock` on it while it trains: a second run pointed there is
refused with the holder's pid. The lock is an ``fcntl.flock``, so it dies with
its process (SIGKILL included). Where fcntl is missing (Windows) there is no
lock, and two runs must not share a folder. :func:`lock` is also how a
checkpoint writer marks its temp file as alive (``checkpoint.py``).
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import IO

from .errors import CheckpointError, cause

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (see the module docstring)
    fcntl = None

LOCK_FILE = ".lock"  # in a checkpoint folder a run writes into: who holds it
# flock's errors on a file system that has no locks (not every OS has every name).
_NO_LOCKS = {getattr(errno, name, None) for name in ("ENOLCK", "ENOSYS", "EOPNOTSUPP", "ENOTSUP")}


def lock(fd: int, *, wait: bool) -> bool:
    """Lock ``fd`` (``flock``, exclusive); False where there are no locks (Windows, some NFS).

    Raises BlockingIOError when another process holds it and ``wait`` is False.
    """
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in _NO_LOCKS:
            return False
        raise
    return True


class FolderLock:
    """The lock of a checkpoint folder: one run at a time writes there.

    ``<folder>/.lock`` is locked with ``fcntl.flock`` and holds the holder's
    pid and host, for the message another run gets. The kernel drops the lock
    when its process ends, however it ends, so a killed run never leaves a
    stale lock behind. The file itself stays (deleting it would let a second
    run lock a new file while the first still holds the old one).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise CheckpointError naming the folder and its holder."""
        if self._file is not None:
            return
        path = self.folder / LOCK_FILE
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            file = path.open("a+", encoding="utf-8")
            locked = lock(file.fileno(), wait=False)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise CheckpointError(
                f"checkpoint folder {str(self.folder)!r} is in use by another run ({holder}); "
                "give this run its own folder (--checkpoint.dirpath), or wait for that one "
                "to end"
            ) from None
        except OSError as error:
            raise CheckpointError(
                f"{cause(error)} while writing {str(path)!r}, the lock of that checkpoint "
                "folder: free some space, or give this run another folder (--checkpoint.dirpath)"
            ) from None
        if not locked:  # Windows, or a file system without locks
            file.close()
            print(f"note: {str(self.folder)!r} can't be locked: two runs must not share it")
            return
        file.seek(0)
        file.truncate()
        file.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        """Let another run write here (closing the file drops the lock)."""
        if self._file is not None:
            self._file.close()
            self._file = None
