"""Background jobs whose window is closed before they return (a CI failure: the originality meter's
baseline arrived after its window was gone and raised "Signal source has been deleted" in the next test)."""

from __future__ import annotations

import threading

import shiboken6
from PySide6.QtCore import QObject, Signal

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
