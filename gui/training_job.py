"""The adapter between the Train tab and engine/training.py: what the tab asks for -> a TrainJob, and the
engine's events -> batches the GUI thread can take without being flooded.

The engine yields an event after every model's step (hundreds a second for tiny models). Sending each
across threads would keep the GUI busy; instead the worker collects them and yields a list at most
every `batch_seconds` (and at once for evaluations, checkpoints and the end).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

URGENT = ("eval", "checkpoint", "done", "stopped")


@dataclass
class TrainRequest:
    corpus: object  # engine.corpus.Corpus
    models: list
    preset: str
    steps: int
    learning_rate: float
    window: int
    seed: int
    out_dir: Path
    device: object = None
    eval_every: int | None = None  # None: a value that gives about 20 validation points
    threads: int | None = None


def make_job(request: TrainRequest):
    from engine.training import TrainConfig, TrainJob

    eval_every = request.eval_every or max(5, request.steps // 20)
    device = getattr(request.device, "type", request.device) or "auto"
    config = TrainConfig(
        preset=request.preset,
        steps=request.steps,
        window=request.window,
        lr=request.learning_rate,
        seed=request.seed,
        eval_every=eval_every,
        save_every=max(eval_every, 100),
        log_every=max(1, min(10, eval_every)),
        device=str(device),
        threads=request.threads,
        warmup_steps=min(100, max(1, request.steps // 10)),
    )
    corpus = request.corpus
    return TrainJob(
        models=list(request.models),
        train_tokens=corpus.tokens("train"),
        valid_tokens=corpus.tokens("valid") or corpus.tokens("test"),
        token_config=corpus.token_config,
        corpus_fingerprint=corpus.fingerprint,
        out_dir=request.out_dir,
        config=config,
    )


def training_job(request: TrainRequest, stop: threading.Event, batch_seconds: float = 0.05):
    """Generator for a worker: yields lists of TrainEvents."""
    from engine.training import train

    pending: list = []
    last = time.monotonic()
    for event in train(make_job(request), stop=stop):
        pending.append(event)
        now = time.monotonic()
        if event.kind in URGENT or now - last >= batch_seconds:
            yield pending
            pending, last = [], now
    if pending:
        yield pending


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
