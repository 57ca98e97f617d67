"""Imported first by the fork server that worker processes start from (engine/core/processes.PRELOAD): it
blocks the stop signals for the server's whole life, however it was started. `worker_context` starts it
with them blocked already, but multiprocessing restarts a server that died from whichever thread starts the
next worker, with that thread's mask. A worker forked from the server is born with the block and sets its
own disposition (training and evaluation workers ignore the signals, parsers take the defaults back)."""

import signal

from engine.core.processes import STOP_SIGNALS

if hasattr(signal, "pthread_sigmask"):
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
