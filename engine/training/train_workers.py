"""Training the models of one job in parallel worker processes: one per core, the load balanced.

Small recurrent models do not speed up with more threads (a step is a long chain of small ops), but
independent models train side by side perfectly well: so each worker process trains its share of the
job's models with engine.training.loop.train_models (the same loop as in-process training, one or a few
torch threads), and this module merges their events into one stream for the CLI and the app.

- Assignment: each model's step is timed once on the first batch; the models are then split between
  the processes so that the slowest process has as little to do as possible (they finish together).
- Same weights as in one process: batches are a pure function of (seed, step) and every model is seeded
  alike, so with the same thread count a model ends bit for bit where serial training ends; resume is
  per model and just as exact.
- Stop: the caller's `stop` is relayed to the workers, which checkpoint and finish. Ctrl-C, SIGHUP and
  SIGTERM reach the whole process group; workers are started with them held and then ignore them, and
  wait for the relayed stop.
- Failure: a worker's UserError stops the others (they checkpoint) and is raised here; a worker that dies
  (killed, out of memory) is reported by name; a worker whose parent dies stops at its next step.
- Started from a fork server (engine/core/processes.worker_context), never forked from this process: a
  forked copy of a process with Qt or torch threads running can deadlock.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue as queue_module
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import replace

import torch

from engine.core.device import resolve_device, torch_threads
from engine.core.errors import UserError
from engine.core.processes import (
    ParentLink,
    ignore_stop_signals,
    parent_link,
    stop_signals_held,
    worker_context,
)
from engine.training.run_plan import TrainJob
from engine.training.train_config import TrainConfig

URGENT = ("eval", "checkpoint", "done", "stopped")
SEND_EVERY_S = 0.05  # a worker batches its step events: hundreds a second for tiny models
JOIN_TIMEOUT_S = 600  # a stopped worker checkpoints its models, then exits
NICE = 5


def assign(models: list[str], costs: dict[str, float], processes: int) -> list[list[str]]:
    """Split models into at most `processes` groups so that the most loaded group is as light as possible.

    Exact (every assignment tried) for the handful of models a job has; longest-first greedy (LPT) beyond."""
    processes = max(1, min(processes, len(models)))
    if processes ** len(models) <= 50_000:
        best = min(itertools.product(range(processes), repeat=len(models)),
                   key=lambda owner: (max(sum(costs[m] for m, o in zip(models, owner) if o == g)
                                          for g in range(processes)), owner))
        groups = [[m for m, o in zip(models, best) if o == g] for g in range(processes)]
    else:
        groups, loads = [[] for _ in range(processes)], [0.0] * processes
        for key in sorted(models, key=lambda k: -costs[k]):
            i = loads.index(min(loads))
            groups[i].append(key)
            loads[i] += costs[key]
    order = {k: i for i, k in enumerate(models)}
    return [sorted(g, key=order.get) for g in groups if g]


def step_costs(job: TrainJob, cfg: TrainConfig, models: list[str], threads: int) -> dict[str, float]:
    """Seconds of one training step of each model on the job's first batch (after one warm-up step)."""
    from engine.core.device import resolve_precision
    from engine.training.loop import make_sampler, next_token_nats

    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    batch = torch.from_numpy(make_sampler(job.train_tokens, cfg, job.token_config).batch(0, cfg.batch_size))
    costs = {}
    with torch_threads(threads):
        from engine.models import build_model

        for key in models:
            model = build_model(key, cfg.preset, job.token_config.vocab_size, window=cfg.resolved_window())
            for _ in range(2):  # the first step pays for first-use allocations
                start = time.perf_counter()
                total, count = next_token_nats(model, batch, precision)
                (total / count.clamp(min=1)).backward()
                costs[key] = time.perf_counter() - start
                model.zero_grad(set_to_none=True)
    return costs


def train_in_processes(job: TrainJob, cfg: TrainConfig, models: list[str], processes: int, threads: int,
                       stop: threading.Event) -> Iterator:
    """Yield the merged TrainEvents of `models` trained in `processes` worker processes."""
    costs = step_costs(job, cfg, models, threads) if len(models) > processes else dict.fromkeys(models, 1.0)
    with parent_link() as parent:  # open until the workers have ended: they end with this process
        pool = _Pool(job, cfg, assign(models, costs, processes), threads, parent)
        try:
            while not pool.all_ended():
                if stop.is_set():
                    pool.stop_all.set()
                yield from pool.receive()
            pool.raise_failure()
        finally:
            pool.stop_all.set()
            _finish(pool.workers, pool.events)
    yield pool.final_event()


class _Pool:
    """The worker processes of one job and what they have reported: their events merged, each one's final
    event (None for a worker that failed or died), the first failure."""

    def __init__(self, job: TrainJob, cfg: TrainConfig, groups: list[list[str]], threads: int, parent: ParentLink):
        self.job, self.cfg, self.groups = job, cfg, groups
        context = worker_context()  # and the resource tracker the queue is tracked by
        portable = replace(job, lock=None)  # the parent keeps the run's lock; workers write only their models
        # A signal to the process group while a worker starts must not kill it: the parent decides
        # (engine/core/processes.py).
        with stop_signals_held():
            self.events = context.Queue()
            self.stop_all = context.Event()
            self.workers = [context.Process(target=_worker_main, name=f"melody-memory-train-{i}", daemon=True,
                                            args=(i, portable, cfg, group, threads, self.events, self.stop_all,
                                                  parent))
                            for i, group in enumerate(groups)]
            for worker in self.workers:
                worker.start()
        self.finals: dict = {}
        self.etas: dict[int, float] = {}
        self.failure: str | None = None
        self.failure_is_bug = False

    def all_ended(self) -> bool:
        return len(self.finals) == len(self.workers)

    def receive(self) -> Iterator:
        """The events of one message (none after 0.1 s of silence); then a look for workers that died."""
        try:
            index, kind, payload = self.events.get(timeout=0.1)
        except queue_module.Empty:
            index = kind = payload = None
        if kind == "events":
            yield from self._merged(index, payload)
        elif kind is not None:  # "user-error" or "error": stop the others (they checkpoint), then report it
            self._failed(index, payload if kind == "user-error" else f"a training process failed:\n{payload}",
                         bug=kind == "error")
        self._look_for_dead(queue_ran_dry=kind is None)

    def _merged(self, index: int, events) -> Iterator:
        for event in events:
            if event.kind in ("done", "stopped"):
                self.finals[index] = event
                self.etas[index] = 0.0  # nothing left here: its last estimate must not hold the job's up
                continue
            if event.eta_s is not None:
                self.etas[index] = event.eta_s
            event.eta_s = max(self.etas.values()) if len(self.etas) == len(self.workers) else None
            yield event

    def _look_for_dead(self, queue_ran_dry: bool) -> None:
        """A worker that died (killed, out of memory) sends nothing: look after every message, not only when
        the queue runs dry (other workers keep it busy). One that exited cleanly has sent its last message
        before it exited, so it is missing only once the queue ran dry."""
        for i, worker in enumerate(self.workers):
            if i in self.finals or worker.exitcode is None or (worker.exitcode == 0 and not queue_ran_dry):
                continue
            self._failed(i, f"the training process for {', '.join(self.groups[i])} ended unexpectedly (exit code "
                            f"{worker.exitcode}); what its models had saved is kept: continue with "
                            f"`train --resume --out {self.job.out_dir}`")

    def _failed(self, index: int, message: str, bug: bool = False) -> None:
        self.finals[index] = None
        self.stop_all.set()
        if self.failure is None:
            self.failure, self.failure_is_bug = message, bug

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise RuntimeError(self.failure) if self.failure_is_bug else UserError(self.failure)

    def final_event(self):
        from engine.training.loop import TrainEvent

        done = [e for e in self.finals.values() if e is not None]
        summary = {k: v for e in done for k, v in (e.summary or {}).items()}
        kind = "done" if all(e.kind == "done" for e in done) else "stopped"
        return TrainEvent(kind=kind, step=min(e.step for e in done), total_steps=self.cfg.steps,
                          elapsed_s=max(e.elapsed_s for e in done), summary=summary)


def _finish(workers, events) -> None:
    """Wait for the workers to checkpoint and exit, draining their messages so none blocks on a full pipe."""
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        with contextlib.suppress(queue_module.Empty):
            events.get(timeout=0.1)
    for worker in workers:
        if worker.is_alive():
            worker.kill()  # stuck past the deadline (workers ignore SIGTERM: the parent relays stops)
        worker.join(timeout=5)


def _worker_main(index: int, job: TrainJob, cfg: TrainConfig, models: list[str], threads: int, events, stop,
                 parent: ParentLink) -> None:
    """A worker process: train `models`, send events in small batches, report errors by kind."""
    parent.adopt()
    # The parent decides when to stop: Ctrl-C, a closed terminal (SIGHUP) and `kill` reach the whole group,
    # and the parent relays them as a stop so that every model is checkpointed.
    ignore_stop_signals()
    # A little below normal priority: the app's window (and whatever else the user runs) gets the core the
    # moment it needs it, so the window stays responsive while every core trains; an idle machine still
    # gives training all of it.
    if hasattr(os, "nice"):
        os.nice(NICE)
    torch.set_num_threads(threads)

    alive = parent.parent_alive

    from engine.training.loop import train_models

    pending, last = [], time.monotonic()
    try:
        for event in train_models(job, cfg, models, stop, alive):
            pending.append(event)
            now = time.monotonic()
            if event.kind in URGENT or now - last >= SEND_EVERY_S:
                events.put((index, "events", pending))
                pending, last = [], now
        if pending:
            events.put((index, "events", pending))
    except UserError as exc:
        events.put((index, "user-error", str(exc)))
    except BaseException:  # a bug: its traceback goes to the parent, which shows it
        events.put((index, "error", traceback.format_exc()))
    finally:
        if not alive():
            events.cancel_join_thread()  # nobody reads any more: do not wait to flush at exit
