"""Shared test setup: no display, one torch thread, temporary Qt settings, and no leaked threads.

The environment variables are set at import time, before any test module imports Qt or torch, because
Qt reads QT_QPA_PLATFORM once when the application object is created.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.built_once import built_once

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Nothing a test does reaches the person's own settings or data folder: each app test points both at its own
# temporary files (qsettings_tmp, app_env), and a write that outlives that (for instance a window closed by
# qtbot after the test's monkeypatch is undone) lands in this session's throwaway folder, removed at exit.
# Before this, a test's corpus folder turned up in the real settings.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="melody-memory-tests-"))
atexit.register(shutil.rmtree, _SESSION_HOME, ignore_errors=True)
os.environ.setdefault("MELODY_MEMORY_SETTINGS", str(_SESSION_HOME / "settings.ini"))
os.environ.setdefault("MELODY_MEMORY_DATA", str(_SESSION_HOME / "data"))
# Atomic writes, without their flushes to disk (engine/core/atomic.py): a power cut is not under test, and an
# fsync can take seconds on a busy disk. The spawned workers and the commands the tests start inherit it.
os.environ.setdefault("MELODY_MEMORY_FSYNC", "0")
# The machine is shared; a test never needs more than one BLAS thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def _one_core_per_xdist_worker() -> None:
    """Under `make test` (two xdist workers on two cores) each worker, and all it starts, runs on a core of its
    own. Training's default thread count is the cores this process may use / its processes, so a test that
    trains saw two cores and ran two torch threads beside the other worker's: OpenMP threads that wait on each
    other on an oversubscribed CPU made a 60-step tiny run take 47 s instead of 10."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if not worker.startswith("gw") or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if count < 2 or len(cores) < count:
        return
    share = len(cores) // count
    index = int(worker[2:])
    os.sched_setaffinity(0, cores[index * share:(index + 1) * share])


_one_core_per_xdist_worker()

# Hypothesis: few examples by default, so the suite keeps its time budget; HYPOTHESIS_PROFILE=deep for a long
# hunt. A test's own @settings(max_examples=...) still wins.
try:
    from hypothesis import HealthCheck
    from hypothesis import settings as hypothesis_settings

    _QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
    hypothesis_settings.register_profile("ci", max_examples=8, deadline=None, suppress_health_check=_QUIET)
    hypothesis_settings.register_profile("deep", max_examples=500, deadline=None, suppress_health_check=_QUIET)
    hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover
    pass


def pytest_configure(config):
    config.addinivalue_line("markers", "late: run after the other tests (see pytest_collection_modifyitems)")


def pytest_collection_modifyitems(config, items):
    """Tests marked `late` run last. For a test that reads what another test's fixture builds once per run
    (tests/built_once.py) and would otherwise start beside it: pytest-xdist hands the first tests out one per
    worker, and the second worker sat idle until the first had built (6-7 s of one core)."""
    items.sort(key=lambda item: item.get_closest_marker("late") is not None)  # stable: the order is kept


def pytest_sessionfinish(session):
    """In the controlling process (or the only one), after every worker has ended: stop the sound server a test
    started (tests/pulse_sink.py), never while another worker's app may still be connected to it."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        from tests.pulse_sink import stop_the_server_the_tests_started

        stop_the_server_the_tests_started(session.config._tmp_path_factory)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Freeze what is alive when pytest is done: the interpreter's last full garbage collections, over every
    object torch, Qt and the tests made, took 2-7 s per process at exit on a 2-core machine, and pytest-xdist
    waits for its workers to exit before it reports. What is frozen is still freed by reference counting; only
    garbage in reference cycles is left for the operating system, as any process's memory is at exit."""
    import gc

    gc.freeze()


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


# ---- a small folder of MIDI tunes (engine, CLI and app tests share it) ---------------------------

SCALE = (60, 62, 64, 65, 67, 69, 71, 72)
# Splits come from a hash of a tune's notes: tunes are kept or redrawn so that every split gets a few.
WANTED = {"train": 30, "valid": 5, "test": 5}


def _write_tune(path: Path, rng: np.random.Generator, numerator: int = 4) -> None:
    """24 bars: a 2-bar theme played again and again (a fourth higher every third time), in quarters and eighths."""
    import pretty_midi

    beat = 0.5  # 120 qpm
    theme = []
    t = 0.0
    while t < 2 * numerator - 1e-9:
        length = rng.choice([0.5, 1.0])
        theme.append((t, int(rng.choice(SCALE)), length))
        t += length
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(numerator, 4, 0))
    inst = pretty_midi.Instrument(program=73, name="melody")
    bars_per_section = 2
    for section in range(12):
        shift = 5 if section % 3 == 2 else 0
        start_beats = section * bars_per_section * numerator
        for onset, pitch, length in theme:
            if onset >= bars_per_section * numerator:
                continue
            s = (start_beats + onset) * beat
            e = (start_beats + min(onset + length, bars_per_section * numerator)) * beat
            inst.notes.append(pretty_midi.Note(velocity=90, pitch=pitch + shift, start=s, end=e - 0.01))
    pm.instruments.append(inst)
    pm.write(str(path))


@pytest.fixture(scope="session")
def midi_folder(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "tunes", _write_midi_folder)


def _write_midi_folder(folder: Path) -> None:
    from engine.data.corpus import split_of_melody
    from engine.music.midi_io import load_midi_melodies

    rng = np.random.default_rng(0)
    counts = dict.fromkeys(WANTED, 0)
    i = 0
    while counts != WANTED:
        path = folder / f"tune_{i:03d}.mid"
        _write_tune(path, rng, numerator=3 if sum(counts.values()) % 5 == 4 else 4)
        split = split_of_melody(load_midi_melodies(path)[0])
        if counts[split] < WANTED[split]:
            counts[split] += 1
            i += 1
        else:
            path.unlink()  # that split is full: draw another tune under the same name
    (folder / "broken.mid").write_bytes(b"this is not a MIDI file")


@pytest.fixture(scope="session")
def pulse_null_sink(tmp_path_factory):
    """A PulseAudio null sink as the default output: a real audio device that discards the sound at real-time
    pace, one for the whole run and every worker (tests/pulse_sink.py). Skips with the reason where no server
    can run."""
    from tests.pulse_sink import shared_null_sink

    with shared_null_sink(tmp_path_factory) as description:
        yield description


@pytest.fixture(scope="session")
def corpus_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")
