"""Run engine calls off the GUI thread with superqt workers, and keep track of them.

Two traps this module handles so that tabs do not have to:
- superqt turns a RuntimeError raised inside a generator into a warning (it assumes a deleted Qt
  object), so a torch error would vanish silently. Every job here is wrapped so that any exception
  reaches `errored` as a `JobFailed` carrying the original.
- Closing the window must stop and wait for every job; `running_jobs()` and `stop_all()` give the
  main window one place to do that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import QObject, Signal
from superqt.utils import create_worker

_jobs: set = set()


class JobFailed(Exception):
    """An exception raised inside a background job, carried to the GUI thread."""

    def __init__(self, original: BaseException):
        super().__init__(str(original))
        self.original = original


def _guard_generator(fn, args, kwargs, done: threading.Event):
    try:
        return (yield from fn(*args, **kwargs))
    except Exception as exc:  # every failure is reported to the user by the caller
        raise JobFailed(exc) from exc
    finally:
        done.set()


def _guard_function(fn, args, kwargs, done: threading.Event):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise JobFailed(exc) from exc
    finally:
        done.set()


def start_job(
    fn: Callable,
    *args,
    on_yield: Callable | None = None,
    on_return: Callable | None = None,
    on_error: Callable | None = None,
    on_finish: Callable | None = None,
    generator: bool = False,
    cancel: threading.Event | None = None,
    owner: QObject | None = None,
    lasting: bool = False,
    **kwargs,
):
    """Start fn(*args, **kwargs) in the Qt thread pool; callbacks run on the GUI thread.

    `generator=True` for a generator function: each yielded value goes to on_yield. Returns the worker
    (its signals can be waited on in tests: worker.finished is always emitted last). `cancel` is the
    event that stops this job (it is not passed to fn): stop_all() waits only for jobs that have one.
    `owner` is the widget the callbacks belong to: once Qt has deleted it (its window was closed while the
    job ran), the job's result is dropped instead of reaching a deleted object. `lasting=True` for a job that
    may run for long and cannot be interrupted (a corpus load): closing the window does not wait for it;
    closing waits a few seconds for every other job, so none outlives the window it reports to.
    """
    done = threading.Event()  # set on the worker thread the moment fn has returned or raised
    guard = _guard_generator if generator else _guard_function
    worker = create_worker(guard, fn, args, kwargs, done, _start_thread=False, _ignore_errors=True)
    worker.done_event = done
    worker.cancel_event = cancel
    worker.lasting = lasting
    if on_yield is not None and generator:
        worker.yielded.connect(_while_alive(owner, on_yield))
    if on_return is not None:
        worker.returned.connect(_while_alive(owner, on_return))
    if on_error is not None:
        worker.errored.connect(_while_alive(owner, lambda exc: on_error(unwrap(exc))))
    _jobs.add(worker)
    finish = _while_alive(owner, on_finish) if on_finish is not None else None

    def finished() -> None:
        # One slot, the callback first: two slots of a signal from another thread are two queued events, and
        # between them the event loop could see no job running although on_finish (which may start the next
        # job, as a training run's end opens the run) has not run yet.
        try:
            if finish is not None:
                finish()
        finally:
            _jobs.discard(worker)

    worker.finished.connect(finished)
    worker.start()
    return worker


def _while_alive(owner: QObject | None, callback: Callable) -> Callable:
    if owner is None:
        return callback

    def call(*args):
        if shiboken6.isValid(owner):
            callback(*args)

    return call


def unwrap(exc: BaseException) -> BaseException:
    return exc.original if isinstance(exc, JobFailed) else exc


def running_jobs(awaited_only: bool = False) -> int:
    """Jobs whose finished signal has not been delivered yet (awaited_only: leaving out the lasting ones)."""
    return sum(1 for w in _jobs if not (awaited_only and w.lasting))


def stop_all(cancel_events=(), timeout_s: float = 20.0) -> bool:
    """Set every job's cancel event, then turn the GUI thread's event loop (user input held back) until every
    job but the lasting ones has ended and its finished signal has been delivered, while the widgets it reports
    to exist. True when all did in time.

    Jobs without a cancel event (an index, a baseline, a sound render) cannot be interrupted: they are short,
    and waited for (a result that arrives may start another); a lasting job (a corpus load) is not. superqt's
    worker.quit() is deliberately not used: it stops pulling from a generator at its next yield, so the code
    after a stop (training's last checkpoint) would never run.

    The loop must turn while it waits: superqt hands a job to the thread pool from a timer a millisecond after
    start_job, so a job started just before the window closed (the attribution that follows every Generate)
    would otherwise never start, and closing stalled for the whole timeout. Started now, it finds its cancel
    event set and stops as every job does (what a cancelled job delivers is the job's own affair: an evaluation
    reports "cancelled").
    """
    from PySide6.QtCore import QCoreApplication, QEventLoop

    for event in cancel_events:
        event.set()
    for worker in list(_jobs):
        if worker.cancel_event is not None:
            worker.cancel_event.set()
    deadline = time.monotonic() + timeout_s
    while running_jobs(awaited_only=True):
        if time.monotonic() >= deadline:
            return False
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents, 20)
        time.sleep(0.005)  # processEvents returns at once when nothing is pending
    return True


def error_text(exc: BaseException) -> str:
    """What the user reads in the error dialog: the message of a UserError in the app's words (a setting is
    named by its label, not its command-line flag), else type and message."""
    from engine.core.errors import UserError

    exc = unwrap(exc)
    if isinstance(exc, UserError):
        return exc.for_app()
    return f"{type(exc).__name__}: {exc}"


class _Relay(QObject):
    progressed = Signal(int, int)


def progress_relay(slot: Callable, parent=None):
    """A callable (done, total, *extra) safe to call from any thread; `slot(done, total)` runs on the GUI
    thread (Qt queues signals that cross threads)."""
    relay = _Relay(parent)
    relay.progressed.connect(slot)

    def report(done, total, *_extra):
        relay.progressed.emit(int(done), int(total))

    report.relay = relay  # keep the QObject alive as long as the callable
    return report
