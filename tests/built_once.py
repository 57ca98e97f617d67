"""Test fixtures built once per test run and shared by the pytest-xdist workers (see `built_once`)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """`build(folder)` run once per test run, its folder then shared by every pytest-xdist worker: the first
    worker to ask builds it under a lock while the other waits, then reads the same files. For what tests only
    read (the test tunes, the tiny run, the shipped models' stand-in, the installed wheel); each worker used to
    build its own copy.

    The folder lives in this run's temporary root (fresh every run: nothing is carried from an earlier run).
    A build that fails leaves no mark: the next worker to ask builds again (and fails the same way)."""
    with one_at_a_time(tmp_path_factory, name) as root:
        folder, done = root / name, root / f"{name}.done"
        if not done.exists():
            if folder.exists():  # a worker failed half-way: start again
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            build(folder)
            done.touch()
    return folder


@contextlib.contextmanager
def one_at_a_time(tmp_path_factory, name: str) -> Iterator[Path]:
    """Hold the run-wide lock `name` (one pytest-xdist worker at a time); yields this run's shared folder.

    Under xdist the workers' temporary folders share a parent that is new for each run; without xdist (or on
    a system without fcntl, where each worker works alone) it is this process's own temporary folder."""
    base = tmp_path_factory.getbasetemp()
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): each worker on its own
        fcntl = None
    shared = os.environ.get("PYTEST_XDIST_WORKER") is not None and fcntl is not None
    root = (base.parent if shared else base) / "built-once"
    root.mkdir(exist_ok=True)
    with open(root / f"{name}.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when this process dies
        yield root
