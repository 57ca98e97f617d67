"""The training engine the CLI, the app and the bench share: a generator of progress events, Qt-free.

One job trains several models side by side. Every model sees the same batches (the same tunes, the same
transpositions), they share the step budget, the optimizer (AdamW, linear warm-up then cosine decay,
gradient clipping) and the seed (each model's initial weights come from torch.manual_seed(seed)). Any
difference is the architecture.

    with plan_new_run(out, models, config) as plan:          # engine/training/run_plan.py: checks, lock, resume
        for event in train(plan.job(corpus), stop=threading.Event()):
            ...   # TrainEvent: kind "step" | "eval" | "checkpoint" | "done" | "stopped"

On a CPU with several cores the models train in parallel worker processes, one per core (engine/
train_workers.py), each running the same loop (`train_models`, engine/training/loop.py) on its share; the events arrive merged.
Because a batch is a pure function of (seed, step) and every model is seeded alike, a model ends with
the same weights whichever process trained it and whatever else trained beside it.

A "step" event follows every model's optimizer step, and `stop` is looked at before each model's step:
it takes effect within one step, after which every model is checkpointed. A step whose loss or gradient
is not finite is never taken or saved: training stops with a UserError naming the model and the step.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch

from engine.core.atomic import remove_stale_temporaries
from engine.core.device import cpu_cores, resolve_device, torch_threads
from engine.core.run_lock import RunLock
from engine.training import distributed
from engine.training.loop import TrainEvent, train_models, world_size
from engine.training.run_plan import (
    TrainJob,
    check_models,
    check_new_run,
    manifest_for,
    read_manifest,
    write_manifest,
)
from engine.training.train_config import TrainConfig


def plan_processes(cfg: TrainConfig, models: list[str], device: torch.device) -> tuple[int, int]:
    """(training processes, torch threads in each). Processes pay on a CPU with several cores and several
    models: one per core, at most one per model. On a GPU, under torchrun, or when asked, one."""
    cores = cpu_cores()
    if distributed.current() is not None or device.type != "cpu":
        return 1, cfg.threads or cores
    processes = cfg.processes or min(cores, len(models))
    processes = max(1, min(processes, len(models)))
    return processes, cfg.threads or max(1, cores // processes)


def train(job: TrainJob, stop: threading.Event | None = None) -> Iterator[TrainEvent]:
    """Train job.models; yields TrainEvents (see the module docstring).

    Holds the run directory's lock throughout (the plan's, or its own) and records the run in run.json
    first, so that a run killed before any checkpoint can still be resumed whole."""
    stop = stop or threading.Event()
    cfg = job.config.validate().resolved()
    models = check_models(job.models)
    main = distributed.is_main()
    own_lock = None if job.lock is not None and job.lock.held else RunLock(job.out_dir)
    if own_lock is not None and main:
        own_lock.acquire()
    try:
        out_dir = Path(job.out_dir)
        dp = distributed.current()
        device = dp.device if dp else resolve_device(cfg.device)
        processes, threads = plan_processes(cfg, models, device)
        if cfg.threads is None:
            # Recorded, so that a resume computes with the same thread count (the last bits of a sum
            # depend on it) even when fewer models are left to share the cores.
            cfg = replace(cfg, threads=threads)
            job = replace(job, config=cfg)
        if main:
            if not job.resume:
                check_new_run(out_dir, models)  # the engine's own guard, whoever built the job
            for key in models:  # what a process killed mid-write left behind (no writer can own it now)
                remove_stale_temporaries(out_dir / key)
            if not job.resume or read_manifest(out_dir) is None:
                write_manifest(out_dir, manifest_for(job, world_size()))
        if processes > 1:
            from engine.training.train_workers import train_in_processes

            yield from train_in_processes(job, cfg, models, processes, threads, stop)
        else:
            with torch_threads(threads):
                yield from train_models(job, cfg, models, stop)
    finally:
        if own_lock is not None:
            own_lock.release()


