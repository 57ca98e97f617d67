"""Helper processes that end with the process that started them, and are not stopped behind its back.

How they start (`worker_context`): from a fork server where the platform has one, a clean process started
once that has imported torch, so that each worker is forked from it in a tenth of a second instead of paying
three seconds of imports; never a fork of this process, whose Qt or torch threads could leave a copied lock
held. What a worker takes from its parent (`ParentLink`): the parent's environment as it is now, and the
read end of a pipe that only the parent holds open, which reads as ended the moment the parent is gone,
however it died (kill -9 included). Signals meant to stop the whole job reach every process of the group:
`stop_signals_held` and `ignore_stop_signals` leave them to the parent.

`run_jobs` runs independent jobs in a pool of such workers (or in this process, one after another): the
evaluation's stages made of one job per model use it, so that the pool, the stop event and the killing of a
worker that does not stop are written once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection

# What the fork server imports before it forks any worker: engine/core/fork_server.py (the stop signals blocked
# for its life), then what every worker imports first: torch (1.5 CPU-s) and torch._dynamo (1.2 CPU-s more,
# imported by AdamW's first use). The engine's own modules take 0.1 s more once torch is in.
PRELOAD = ("engine.core.fork_server", "torch", "torch._dynamo")


def worker_context():
    """The multiprocessing context worker processes start from: a fork server on Linux (Python 3.14's
    default there), else spawn (macOS keeps spawn: forking without exec after torch is loaded is not safe
    there). The server is started here, with the stop signals blocked for its whole
    life: a Ctrl-C or SIGHUP to the process group does not end it (the workers it forks are born with the
    same block, then ignore the signals: the parent relays them). A server that died is started again.
    Multiprocessing's resource tracker is started first, one that a closed terminal does not kill."""
    if not sys.platform.startswith("linux"):
        start_resource_tracker()
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver, resource_tracker

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))  # used when the server starts; later calls change nothing
    with _blocked_in_this_thread():
        # The server's start starts the resource tracker first if it is not running, and that start unblocks
        # SIGINT and SIGTERM in this thread when it is done: so the tracker first, then the server.
        resource_tracker.ensure_running()
    with _blocked_in_this_thread():
        forkserver.ensure_running()
    return context


@dataclass
class ParentLink:
    """What a worker takes from the parent that starts it (pass it in the worker's arguments; make it with
    `parent_link()`): the parent's environment (a fork server's worker would otherwise have the server's,
    from when it started) and the read end of the parent's liveness pipe."""

    env: dict
    reader: Connection

    def adopt(self) -> None:
        """In the worker, first: take the parent's environment."""
        os.environ.clear()
        os.environ.update(self.env)

    def parent_alive(self) -> bool:
        """The parent never writes to the pipe: anything to read is its end closing, when it exits or dies."""
        try:
            return not self.reader.poll()
        except (EOFError, OSError):
            return False

    def exit_when_parent_dies(self) -> None:
        """Start watching: when the parent is gone, leave at once (os._exit: for workers that hold nothing
        that needs saving)."""

        def watch() -> None:
            with contextlib.suppress(EOFError, OSError):
                multiprocessing.connection.wait([self.reader])
            os._exit(1)

        threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextlib.contextmanager
def parent_link():
    """A ParentLink for the workers started inside the block: its pipe's write end stays open here until the
    block ends, so end the block only after the workers have ended."""
    reader, writer = multiprocessing.Pipe(duplex=False)
    try:
        yield ParentLink(dict(os.environ), reader)
    finally:
        writer.close()
        reader.close()


@contextlib.contextmanager
def _blocked_in_this_thread():
    """Block the stop signals in the calling thread only (any thread: a child process started from it inherits
    its mask); a signal meant for the process goes to another thread meanwhile, or waits here: none is lost."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


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


def default_stop_signals() -> None:
    """In a worker that may die of the stop signals with the rest of its group (a parser holds nothing to
    save): unblock them, as a spawned process from an unblocked thread had them (a fork server's workers are
    born with them blocked)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


# --- independent jobs in worker processes, or here -----------------------------------------------------

POLL_S = 0.2  # how often run_jobs looks at its cancel event while workers run
GRACE_S = 2.0  # how long a worker may take to stop before it is killed (a job that never looks at `stop`)


class JobsCancelled(Exception):
    """run_jobs' default exception when its cancel event is set."""


_STOP = None  # in a worker of run_jobs: the pool's stop event


def _start_worker(stop, parent: ParentLink, threads: int) -> None:
    """A run_jobs worker: the parent relays stops (its own pool's event), ends with it, one torch thread."""
    global _STOP
    parent.adopt()
    ignore_stop_signals()
    parent.exit_when_parent_dies()
    _STOP = stop
    import torch

    torch.set_num_threads(threads)


def _call(work, job):
    return work(*job, stop=_STOP)


def run_jobs(work, jobs, processes: int, *, inline=None, cancel=None, cancelled: type[Exception] = JobsCancelled,
             on_result=None) -> list:
    """[work(*job, stop=event) for job in jobs]: the results in the jobs' order, whatever order they finish in.

    With `processes` > 1 and more than one job they run in min(processes, jobs) worker processes
    (`worker_context`: never a fork of this process, which may be the app's), each with one torch thread,
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
    with parent_link() as parent:  # open until the pool has shut down: its workers end with this process
        return _in_pool(work, jobs, processes, cancel, cancelled, on_result, parent)


def _in_pool(work, jobs: list, processes: int, cancel, cancelled, on_result, parent: ParentLink) -> list:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = worker_context()  # and the resource tracker that the stop event's semaphore is tracked by
    results: list = [None] * len(jobs)
    with stop_signals_held():  # the workers start at submit: they are born with the stop signals held
        stop = context.Event()
        pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_start_worker,
                                   initargs=(stop, parent, 1))
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
        # No wait here (see above). A worker that has exited is left alone: a fork server reaps its workers at
        # once, so its pid may already belong to another process.
        if worker.exitcode is None:
            worker.kill()
