"""Helper processes that end with the process that started them, and are not stopped behind its back.

A spawned helper (a corpus parser of the process pool) keeps running when its parent is killed with
kill -9: nothing tells it. A daemon thread that looks at the parent's pid once a second ends it instead.
Signals meant to stop the whole job reach every process of the group: `stop_signals_held` and
`ignore_stop_signals` leave them to the parent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time


def exit_when_parent_dies(parent_pid: int, poll_s: float = 1.0) -> None:
    """Start watching: when this process's parent is no longer `parent_pid`, leave at once (os._exit:
    a parser holds nothing that needs saving)."""

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


# What stops a run from outside: Ctrl-C, a closed terminal or ssh session, `kill`. The parent of a pool of
# workers decides what they mean (checkpoint, then stop); a child must not die of them on its own.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGHUP", "SIGTERM") if hasattr(signal, name))


@contextlib.contextmanager
def stop_signals_held():
    """Hold the stop signals back while child processes (and multiprocessing's resource tracker) start.

    A child inherits the blocked mask across exec, so a signal to the process group while it imports
    torch stays pending in it until `ignore_stop_signals()` discards it, instead of killing it
    half-started; the resource tracker keeps SIGHUP blocked for its whole life (it unblocks only SIGINT
    and SIGTERM, which it ignores), so a closed terminal no longer kills it and leaves KeyError tracebacks
    behind. In this process a held signal is delivered when the block ends: none is lost. Only the main
    thread's mask changes; on Windows this does nothing."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, with the stop signals held (see above): call it before
    a pool of spawned processes is made, so the tracker they share is one that survives a SIGHUP."""
    from multiprocessing import resource_tracker

    with stop_signals_held():
        resource_tracker.ensure_running()


def ignore_stop_signals() -> None:
    """In a child started under `stop_signals_held`: ignore the stop signals (the parent relays them),
    then unblock them, which discards any that arrived while it started."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
