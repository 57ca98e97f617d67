"""Helper processes that end with the process that started them, and are not stopped behind its back.

A spawned helper (a corpus parser of the process pool) keeps running when its parent is killed with
kill -9: nothing tells it. A daemon thread that looks at the parent's pid once a second ends it instead.
Signals meant to stop the whole job reach every process of the group: `stop_signals_held` and
`ignore_stop_signals` leave them to the parent.

`run_jobs` runs independent jobs in a pool of such workers (or in this process, one after another): the
evaluation's stages made of one job per model use it, so that the pool, the stop event and the killing of a
worker that does not stop are written once.
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


# --- independent jobs in worker processes, or here -----------------------------------------------------

POLL_S = 0.2  # how often run_jobs looks at its cancel event while workers run
GRACE_S = 2.0  # how long a worker may take to stop before it is killed (a job that never looks at `stop`)


class JobsCancelled(Exception):
    """run_jobs' default exception when its cancel event is set."""


_STOP = None  # in a worker of run_jobs: the pool's stop event


def _start_worker(stop, parent_pid: int, threads: int) -> None:
    """A run_jobs worker: the parent relays stops (its own pool's event), ends with it, one torch thread."""
    global _STOP
    ignore_stop_signals()
    exit_when_parent_dies(parent_pid)
    _STOP = stop
    import torch

    torch.set_num_threads(threads)


def _call(work, job):
    return work(*job, stop=_STOP)


def run_jobs(work, jobs, processes: int, *, inline=None, cancel=None, cancelled: type[Exception] = JobsCancelled,
             on_result=None) -> list:
    """[work(*job, stop=event) for job in jobs]: the results in the jobs' order, whatever order they finish in.

    With `processes` > 1 and more than one job they run in min(processes, jobs) spawned worker processes
    (spawned, not forked: the app calls this from a thread of a Qt process), each with one torch thread,
    started with the stop signals held (a Ctrl-C is the parent's to handle) and ending with the parent;
    `work` and the jobs must pickle (a module-level function, a functools.partial of one). Otherwise they
    run here, in order, through `inline` when given (the same measure on what this process already holds),
    with this process's torch threads.
    `stop` is what a job may look at to end early: `cancel` here, the pool's event in a worker (set when
    the jobs are cancelled or one of them failed). `on_result(index, result)` runs in this process as each
    job finishes. Setting `cancel` raises `cancelled` (here: between jobs; in workers: within POLL_S, the
    jobs not started are dropped and a worker still busy after GRACE_S is killed). A job's exception is
    raised here, after the other workers are stopped.
    """
    jobs = list(jobs)
    if processes > 1 and len(jobs) > 1:
        return _in_workers(work, jobs, min(processes, len(jobs)), cancel, cancelled, on_result)
    here = inline or work
    results = []
    for index, job in enumerate(jobs):
        if cancel is not None and cancel.is_set():
            raise cancelled("cancelled")
        results.append(here(*job, stop=cancel))
        if on_result is not None:
            on_result(index, results[-1])
    return results


def _in_workers(work, jobs: list, processes: int, cancel, cancelled, on_result) -> list:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    start_resource_tracker()  # the stop event's semaphore is tracked by one that a closed terminal does not kill
    results: list = [None] * len(jobs)
    with stop_signals_held():  # the workers start at submit: they are born with the stop signals held
        stop = context.Event()
        pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_start_worker,
                                   initargs=(stop, os.getpid(), 1))
        futures = {pool.submit(_call, work, job): index for index, job in enumerate(jobs)}
    workers = list(pool._processes.values())  # private, but the only handle on them to kill (3.14: kill_workers)
    try:
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=futures.get):
                index = futures[future]
                results[index] = future.result()
                if on_result is not None:
                    on_result(index, results[index])
            if cancel is not None and cancel.is_set():
                raise cancelled("cancelled")
    finally:
        stop.set()
        # Only the pool's own thread waits for the workers: joining them here too raced it for their exit
        # status, and a worker that had left could look alive to multiprocessing ever after (seen on 3.11).
        # Here they are only killed, all of them, if the pool has not shut down after GRACE_S (a job that does
        # not look at `stop`; they ignore SIGTERM, which is what the pool's own clean-up sends).
        killer = threading.Timer(GRACE_S, _kill, (workers,))
        killer.name = "run_jobs-kill-after-grace"
        killer.start()
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        finally:
            killer.cancel()
            killer.join()
    return results


def _kill(workers: list) -> None:
    for worker in workers:
        worker.kill()  # no wait here (see above); a worker already gone is left alone
