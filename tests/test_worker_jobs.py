"""engine/core/processes.run_jobs: independent jobs in worker processes, stopped when cancelled or when one fails.

The evaluation's own use of it (the same report with 1 and 2 processes, Cancel during the probe) is tested in
tests/test_evaluate.py; here are the cases an evaluation does not reach on purpose: a job that never looks at
its stop event, and a job that fails.
"""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from engine.core.processes import GRACE_S, JobsCancelled, run_jobs, worker_context


def _sleep(seconds: float, stop=None) -> float:
    """A job that ignores `stop` (as a teacher-forced measure does): only killing its worker ends it early."""
    time.sleep(seconds)
    return seconds


def _fail_or_wait(n: int, stop=None) -> int:
    """Job 0 fails at once; the others wait for the stop event, as a probe model's training does."""
    if n == 0:
        raise ValueError("job 0 failed")
    while not stop.is_set():
        time.sleep(0.05)
    return n


def test_cancel_kills_a_worker_whose_job_ignores_the_stop_event():
    ready = worker_context().Process(target=time.sleep, args=(0,))  # the fork server up and loaded, as after
    ready.start()  # the app's first job (it imports torch once: not what is timed here)
    ready.join()
    cancel = threading.Event()
    timer = threading.Timer(1.0, cancel.set)
    started = time.monotonic()
    timer.start()
    with pytest.raises(JobsCancelled):
        run_jobs(_sleep, [(60,), (60,), (60,)], 2, cancel=cancel)
    timer.join()
    assert time.monotonic() - started < 1.0 + GRACE_S + 5  # not the 60 s the jobs asked for
    assert not multiprocessing.active_children()
    # inline: the same jobs in order, each handed the cancel event as its stop
    seen = []
    assert run_jobs(_sleep, [(0,), (0.01,)], 1, on_result=lambda i, r: seen.append((i, r))) == [0, 0.01]
    assert seen == [(0, 0), (1, 0.01)]


def test_a_failed_job_is_raised_here_and_stops_the_others():
    with pytest.raises(ValueError, match="job 0 failed"):
        run_jobs(_fail_or_wait, [(n,) for n in range(4)], 2)
    assert not multiprocessing.active_children()
