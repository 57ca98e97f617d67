"""Imported first by the fork server that worker processes start from (engine/core/processes.PRELOAD): it
blocks the stop signals for the server's whole life, however it was started. `worker_context` starts it
with them blocked already, but multiprocessing restarts a server that died from whichever thread starts the
next worker, with that thread's mask. A worker forked from the server is born with the block and sets its
own disposition (training and evaluation workers ignore the signals, parsers take the defaults back)."""

import signal
from multiprocessing import spawn

from engine.core.processes import STOP_SIGNALS

if hasattr(signal, "pthread_sigmask"):
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

# A worker forked while its parent stops (Ctrl-C, `kill`, a closed terminal during a pool's start) finds the
# pool's semaphores already gone with the parent: unpickling its process object fails with FileNotFoundError
# before any of our code runs, and multiprocessing printed that traceback under the parent's "interrupted".
# Such a worker has nothing to do: it leaves quietly. Anything else that fails a start is still shown.
_start_worker = spawn._main


def _main_or_quit_when_orphaned(fd, parent_sentinel):
    try:
        return _start_worker(fd, parent_sentinel)
    except FileNotFoundError:
        return 1


spawn._main = _main_or_quit_when_orphaned
