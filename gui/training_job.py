"""The adapter between the Train tab and engine/training/train.py: a planned job run in a worker, its events
batched so that the GUI thread is not flooded.

The engine yields an event after every model's step (hundreds a second for tiny models). Sending each
across threads would keep the GUI busy; instead the worker collects them and yields a list at most
every `batch_seconds` (and at once for evaluations, checkpoints and the end). Planning (checks, the
run's lock, what a resume continues) happens before, on the GUI thread: engine/training/run_plan.py.
"""

from __future__ import annotations

import threading
import time

URGENT = ("eval", "checkpoint", "done", "stopped")


def training_job(plan, job, stop: threading.Event, batch_seconds: float = 0.05):
    """Generator for a worker: yields lists of TrainEvents; releases the plan's lock at the end."""
    from engine.training.train import train

    pending: list = []
    last = time.monotonic()
    try:
        for event in train(job, stop=stop):
            pending.append(event)
            now = time.monotonic()
            if event.kind in URGENT or now - last >= batch_seconds:
                yield pending
                pending, last = [], now
        if pending:
            yield pending
    finally:
        plan.release()


def event_fields(event) -> dict:
    """What the Train tab draws from one event (kept in one place should the event grow)."""
    return {
        "kind": event.kind,
        "model": event.model,
        "step": event.step,
        "total_steps": event.total_steps,
        "train_bpt": event.train_bpt if event.kind == "step" else None,
        "valid_bpt": event.valid_bpt,
        "tokens_per_s": event.tokens_per_s,
        "eta_s": event.eta_s,
    }
