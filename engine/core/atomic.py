"""The one way the app writes a file: to a temporary file beside it, then renamed over it.

So a reader (or a crash, a full disk, a killed process) only ever sees the old complete file or the
new complete file, never half of one; the new file gets the replaced file's mode, or for a new one what
the person's umask gives (as open() would), and a failed write leaves nothing behind, except when the
process is killed mid-write: then its temporary `.<name>.<8 random characters>.tmp` stays.
`remove_stale_temporaries(folder)` removes those; call it where no other process can be writing the
folder (holding the folder's lock), or pass `min_age_s` so that only long-abandoned ones go.

MELODY_MEMORY_FSYNC=0 in the environment drops the flushes to disk of durable writes (the test suite sets it:
durability through a power cut is not something a test can see, and each fsync can take seconds on a busy
disk); the writes stay atomic.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from engine.core.errors import UserError

TEMP_SUFFIX = ".tmp"
FSYNC_ENV = "MELODY_MEMORY_FSYNC"
# ".<name>.<random>.tmp": mkstemp's random part is 8 characters of [a-z0-9_]
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")


def atomic_write(path, content: bytes | Callable[[BinaryIO], None], *, durable: bool = False) -> Path:
    """Write `content` (bytes, or a function that writes into a binary file) to `path` atomically.

    durable=True also flushes the file and its folder to disk before returning (checkpoints: the last
    good one must survive a power cut). Any OS failure becomes a UserError naming the file.
    """
    path = Path(path)
    durable = durable and os.environ.get(FSYNC_ENV) != "0"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(content):
                content(fh)
            else:
                fh.write(content)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(path))  # mkstemp makes the file private (0600)
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if durable:
        _fsync_folder(path.parent)
    return path


def _mode_for(path: Path) -> int:
    """The mode a file written in place would get: the replaced file's own mode, or for a new file what
    open() gives (0o666 less the person's umask: 0644 under 022, 0600 under 077)."""
    try:
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode)
    except OSError:
        pass
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (/proc/self/status); elsewhere
    set and restored at once (os.umask is the only way to read it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; not every platform lets a folder be opened."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def nearest_existing(path) -> Path:
    """The path itself, or its nearest ancestor that exists: where a write that first makes the missing
    folders would start (checked before the work: is it a folder, can it be written)."""
    existing = Path(path)
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    return existing


def remove_stale_temporaries(folder, min_age_s: float = 0.0) -> list[Path]:
    """Delete the temporaries atomic_write left in `folder` (not its subfolders) when its process was
    killed mid-write; return the paths removed. Only files named as atomic_write names them are touched.

    With min_age_s=0 every such file goes: call it only while holding the folder's lock (no writer can
    be between mkstemp and rename). Without a lock, give the age beyond which no live writer can still
    own one (a write takes seconds). A folder that is missing or unreadable removes nothing."""
    removed: list[Path] = []
    cutoff = time.time() - min_age_s
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not _TEMP_NAME.match(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_mtime > cutoff:
                continue
            os.unlink(entry.path)
        except OSError:
            continue  # gone already, or not ours to remove
        removed.append(Path(entry.path))
    return removed
