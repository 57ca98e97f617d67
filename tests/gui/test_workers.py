"""Background jobs whose window is closed before they return (a CI failure: the originality meter's
baseline arrived after its window was gone and raised "Signal source has been deleted" in the next test)."""

from __future__ import annotations

import threading

import shiboken6
from PySide6.QtCore import QObject, QTimer, Signal

from gui import workers


class _Meter(QObject):
    changed = Signal()

    def __init__(self):
        super().__init__()
        self.received = []

    def arrived(self, value):
        self.received.append(value)
        self.changed.emit()


def test_a_job_whose_owner_was_deleted_delivers_nothing(qtbot):
    release = threading.Event()
    meter = _Meter()
    job = workers.start_job(lambda: release.wait(10) and 42, owner=meter,
                            on_return=lambda value: meter.arrived(value), on_finish=lambda: meter.arrived("end"))
    shiboken6.delete(meter)  # the window closed while the job ran
    with qtbot.waitSignal(job.finished, timeout=10000):
        release.set()
    # pytest-qt fails this test if the callbacks ran on the deleted object (a RuntimeError in the event loop)


def test_a_job_whose_owner_lives_delivers_its_result(qtbot):
    meter = _Meter()
    workers.start_job(lambda: 42, owner=meter, on_return=lambda value: meter.arrived(value))
    qtbot.waitUntil(lambda: meter.received == [42], timeout=10000)


def test_closing_right_after_a_job_was_started_neither_stalls_nor_misses_the_cancel(qtbot):
    """Inside the event loop (where the app's slots run) superqt hands a job to the thread pool from a timer;
    closing the window before that timer fired (a Generate's attribution job starts as the composition
    arrives) used to block the GUI thread for the whole timeout, waiting for a job that could not start while
    it waited. Now the job starts during the close, finds its cancel event set, and the close goes on."""
    saw_cancel, outcome = [], []
    cancel = threading.Event()

    def close_right_after_a_start():  # a slot: runs in the event loop, as closeEvent does
        job = workers.start_job(lambda: saw_cancel.append(cancel.is_set()), cancel=cancel)
        outcome.append((workers.stop_all(timeout_s=5.0), job))

    QTimer.singleShot(0, close_right_after_a_start)
    qtbot.waitUntil(lambda: bool(outcome), timeout=10000)
    stopped, job = outcome[0]
    assert stopped, "stop_all gave up waiting for a job that had not started"
    assert job.done_event.is_set() and saw_cancel == [True]
    qtbot.waitUntil(lambda: workers.running_jobs() == 0, timeout=5000)
