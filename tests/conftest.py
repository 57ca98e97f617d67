"""Shared test setup: no display, one torch thread, temporary Qt settings, and no leaked threads.

The environment variables are set at import time, before any test module imports Qt or torch, because
Qt reads QT_QPA_PLATFORM once when the application object is created.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The machine is shared; a test never needs more than one BLAS thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

try:  # torch is a hard dependency, but keep conftest importable while the engine is being built
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    torch = None


def _python_threads() -> set[threading.Thread]:
    # Dummy threads are Python's record of foreign (Qt pool) threads that once ran Python code; Python
    # never removes them, so they are judged through QThreadPool instead.
    return {t for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}


def _qt_pool_active() -> int:
    import sys

    if "PySide6.QtCore" not in sys.modules:
        return 0
    from PySide6.QtCore import QThreadPool

    return QThreadPool.globalInstance().activeThreadCount()


@pytest.fixture(autouse=True)
def no_thread_leaks(request):
    """Fail a test that leaves a Python thread or a Qt pool thread running (as napari does).

    A thread that ends within a short grace period is fine: a worker that was told to stop may need a
    moment to return. What fails is a thread still running after it.
    """
    before = _python_threads()
    yield
    deadline = time.monotonic() + 2.0
    while True:
        leaked = [t for t in _python_threads() - before if t.is_alive()]
        pool = _qt_pool_active()
        if (not leaked and pool == 0) or time.monotonic() > deadline:
            break
        if "PySide6.QtCore" in __import__("sys").modules:
            from PySide6.QtCore import QCoreApplication

            if QCoreApplication.instance() is not None:
                QCoreApplication.processEvents()
        time.sleep(0.02)
    problems = []
    if leaked:
        problems.append("Python threads still running: " + ", ".join(t.name for t in leaked))
    if pool:
        problems.append(f"{pool} Qt thread-pool worker(s) still running")
    if problems:
        pytest.fail("test left threads running: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def qsettings_tmp(tmp_path, monkeypatch):
    """Point QSettings at a temporary INI file so tests never read or write the user's settings."""
    path = tmp_path / "settings.ini"
    monkeypatch.setenv("MELODY_MEMORY_SETTINGS", str(path))
    return path
