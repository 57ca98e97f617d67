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
- Stop: the caller's `stop` is relayed to the workers, which checkpoint and finish. Ctrl-C reaches the
  whole process group; workers ignore it and wait for the relayed stop.
- Failure: a worker's UserError stops the others (they checkpoint) and is raised here; a worker that dies
  (killed, out of memory) is reported by name; a worker whose parent dies stops at its next step.
- Spawned, not forked: a forked copy of a process with Qt or torch threads running can deadlock.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import queue as queue_module
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import replace

import torch

from engine.core.device import resolve_device, torch_threads
from engine.core.errors import UserError
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
    from engine.training.loop import TrainEvent

    costs = step_costs(job, cfg, models, threads) if len(models) > processes else dict.fromkeys(models, 1.0)
    groups = assign(models, costs, processes)
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    stop_all = context.Event()
    portable = replace(job, lock=None)  # the parent keeps the run's lock; workers write only their models
    workers = [context.Process(target=_worker_main, name=f"melody-memory-train-{i}", daemon=True,
                               args=(i, portable, cfg, group, threads, events, stop_all, os.getpid()))
               for i, group in enumerate(groups)]
    with _interrupts_ignored():  # a Ctrl-C while a worker imports torch must not kill it: the parent decides
        for worker in workers:
            worker.start()
    finals: dict[int, TrainEvent | None] = {}
    etas: dict[int, float] = {}
    failure: str | None = None
    failure_is_bug = False
    try:
        while len(finals) < len(workers):
            if stop.is_set():
                stop_all.set()
            try:
                index, kind, payload = events.get(timeout=0.1)
            except queue_module.Empty:
                index = kind = payload = None
            if kind == "events":
                for event in payload:
                    if event.kind in ("done", "stopped"):
                        finals[index] = event
                        continue
                    if event.eta_s is not None:
                        etas[index] = event.eta_s
                    event.eta_s = max(etas.values()) if len(etas) == len(workers) else None
                    yield event
            elif kind is not None:  # "user-error" or "error": stop the others (they checkpoint), then report it
                finals[index] = None
                stop_all.set()
                if failure is None:
                    failure = payload if kind == "user-error" else f"a training process failed:\n{payload}"
                    failure_is_bug = kind == "error"
            # A worker that died (killed, out of memory) sends nothing: look after every message, not only
            # when the queue runs dry (other workers keep it busy). One that exited cleanly has sent its
            # last message before it exited, so it is missing only once the queue ran dry.
            for i, worker in enumerate(workers):
                if i in finals or worker.exitcode is None or (worker.exitcode == 0 and kind is not None):
                    continue
                finals[i] = None
                stop_all.set()
                if failure is None:
                    failure = (f"the training process for {', '.join(groups[i])} ended unexpectedly (exit code "
                               f"{worker.exitcode}); what its models had saved is kept: continue with "
                               f"`train --resume --out {job.out_dir}`")
        if failure is not None:
            raise RuntimeError(failure) if failure_is_bug else UserError(failure)
    finally:
        stop_all.set()
        _finish(workers, events)
    done = [e for e in finals.values() if e is not None]
    summary = {k: v for e in done for k, v in (e.summary or {}).items()}
    kind = "done" if all(e.kind == "done" for e in done) else "stopped"
    yield TrainEvent(kind=kind, step=min(e.step for e in done), total_steps=cfg.steps,
                     elapsed_s=max(e.elapsed_s for e in done), summary=summary)


@contextlib.contextmanager
def _interrupts_ignored():
    """SIGINT ignored while workers start: an ignored signal stays ignored across exec, and Python then
    installs no KeyboardInterrupt handler of its own. Only the main thread may change handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _finish(workers, events) -> None:
    """Wait for the workers to checkpoint and exit, draining their messages so none blocks on a full pipe."""
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        try:
            events.get(timeout=0.1)
        except queue_module.Empty:
            pass
    for worker in workers:
        if worker.is_alive():
            worker.kill()  # stuck past the deadline (workers ignore SIGTERM: the parent relays stops)
        worker.join(timeout=5)


def _worker_main(index: int, job: TrainJob, cfg: TrainConfig, models: list[str], threads: int, events, stop,
                 parent_pid: int) -> None:
    """A worker process: train `models`, send events in small batches, report errors by kind."""
    # The parent decides when to stop: Ctrl-C, a closed terminal (SIGHUP) and `kill` reach the whole group,
    # and the parent relays them as a stop so that every model is checkpointed.
    for name in ("SIGINT", "SIGHUP", "SIGTERM"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    # A little below normal priority: the app's window (and whatever else the user runs) gets the core the
    # moment it needs it, so the window stays responsive while every core trains; an idle machine still
    # gives training all of it.
    if hasattr(os, "nice"):
        os.nice(NICE)
    torch.set_num_threads(threads)

    def alive() -> bool:
        return os.getppid() == parent_pid

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
    except BaseException:  # noqa: BLE001 - a bug: its traceback goes to the parent, which shows it
        events.put((index, "error", traceback.format_exc()))
    finally:
        if not alive():
            events.cancel_join_thread()  # nobody reads any more: do not wait to flush at exit
