"""A lock on a run directory while one process writes it, released by the OS on any exit (kill -9 too).

`fcntl.flock` (POSIX) and `msvcrt.locking` (Windows) locks belong to an open file: when the process
dies, however it dies, the OS closes the file and the lock is gone, so a crashed run never leaves a
stale lock behind. The lock file `RUN_DIR/.lock` also says who holds it (pid, host, start time), for the
message the second writer gets.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from .errors import UserError

LOCK_FILE = ".lock"


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
        if not _try_lock(fd):
            os.close(fd)
            raise UserError(f"{self.folder} is being written by another process{self._holder()}: wait until it "
                            f"has finished, or choose another folder")
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
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


def is_locked(folder) -> bool:
    """Whether another process holds the lock of `folder` right now (a hint for the app; RunLock decides)."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        if _try_lock(fd):
            _unlock(fd)
            return False
        return True
    finally:
        os.close(fd)


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
