"""A lock on a run directory while one process writes it, released by the OS on any exit (kill -9 too).

`fcntl.flock` (POSIX) and `msvcrt.locking` (Windows) locks belong to an open file: when the process
dies, however it dies, the OS closes the file and the lock is gone, so a crashed run never leaves a
stale lock behind. The lock file `RUN_DIR/.lock` also says who holds it (pid, host, start time), for the
message the second writer gets.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path

from engine.core.errors import UserError

LOCK_FILE = ".lock"
# What flock/locking answer when another process holds the lock; any other error is a real failure.
_HELD = {errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES, getattr(errno, "EDEADLK", errno.EAGAIN)}


class RunLock:
    """Exclusive, non-blocking lock on `folder` (created if missing). Use as a context manager."""

    def __init__(self, folder, what: str = "run"):
        self.folder, self.what = Path(folder), what
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"cannot write {self.folder}: {exc.strerror or exc}") from None
        try:
            _lock(fd)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"{self.folder} is being written by another process{self._holder()}: wait until it "
                            f"has finished, or choose another folder") from None
        except OSError as exc:  # a file system without locks: say so rather than claim another writer
            os.close(fd)
            raise UserError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        try:  # who holds it, for the next writer's message; the lock holds even if this cannot be written
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        except OSError:
            pass
        self._fd = fd
        return self

    def release(self, remove: bool = False) -> None:
        """Drop the lock; with `remove`, delete the lock file first, while it is still held (so that no
        other process can have locked the file that is being deleted)."""
        if self._fd is not None:
            if remove:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)  # closing the file drops the lock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _holder(self) -> str:
        try:
            doc = json.loads(self.path.read_text())
            return f" (pid {doc['pid']} on {doc['host']}, since {doc['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            return ""


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno in _HELD:
                raise BlockingIOError(exc.errno, exc.strerror) from None
            raise

else:
    import fcntl

    def _lock(fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in _HELD:
                raise BlockingIOError(exc.errno, exc.strerror) from None
            raise
