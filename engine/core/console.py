"""Human-readable progress for headless work: stderr, so that stdout stays clean for --json.

A reader that goes away (`train ... 2>&1 | head -4`, a dropped ssh pipeline, a killed `| tee`) closes the
pipe under the stream, and the next write raises BrokenPipeError. Progress goes through `write()`, which
then points every standard stream that is that dead pipe at /dev/null (nothing more is written to it, and
Python's flush at exit cannot fail either) and tells whoever listens (`when_closed`): training takes it as
a Ctrl-C, so that it checkpoints and stops instead of losing its work to a traceback nobody can read. With
nobody listening the error is raised, and main.py ends the command quietly.

stdout may be that dead pipe while stderr is fine (`train --json | tee log`, the tee killed): nothing is
written there until the end, so while someone listens each progress line also looks at it, and a stdout
whose reader has gone is taken the same way then, not after the whole run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import stat
import sys
from collections.abc import Callable

_listeners: list[Callable[[], None]] = []


def say(message: str) -> None:
    write(sys.stderr, message + "\n")


def write(stream, text: str) -> None:
    """Write and flush `text`; a closed pipe is handled as the module docstring says."""
    try:
        stream.write(text)
        stream.flush()
    except OSError as exc:
        if not isinstance(exc, BrokenPipeError) and exc.errno != errno.EPIPE:
            raise
        _reader_left(stream)
        if not _listeners:
            raise
    else:
        if _listeners and stream is not sys.stdout and _pipe_reader_gone(sys.stdout):
            _reader_left(sys.stdout)


def _reader_left(stream) -> None:
    for dead in {id(s): s for s in (stream, sys.stdout, sys.stderr)}.values():
        _silence_if_dead(dead)
    for callback in list(_listeners):
        callback()


@contextlib.contextmanager
def when_closed(callback: Callable[[], None]):
    """Call `callback` when a write finds its reader gone, while the block runs (it may be called again)."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


def _pipe_reader_gone(stream) -> bool:
    """Whether the stream is a pipe whose reader has gone (False for anything else, a test's buffer too)."""
    try:
        fd = stream.fileno()
        return stat.S_ISFIFO(os.fstat(fd).st_mode) and _reader_gone(fd)
    except (OSError, ValueError, AttributeError):
        return False


def _silence_if_dead(stream) -> None:
    """Point the stream's descriptor at /dev/null when it is a pipe whose reader has gone."""
    try:
        if not _pipe_reader_gone(stream):
            return
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    except (OSError, ValueError, AttributeError):  # no descriptor of its own (a test's buffer): nothing to point
        pass


def _reader_gone(fd: int) -> bool:
    if not hasattr(select, "poll"):  # pragma: no cover - Windows: a pipe that failed with EPIPE is dead
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
