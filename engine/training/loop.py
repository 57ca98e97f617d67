"""The training loop of one process (`train_models`) and what it is built from: the loss, the optimizer,
the batch stream, validation. engine/training/train.py runs it in this process or in worker processes
(engine/training/train_workers.py); both import it, it imports neither.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.core.device import resolve_device, resolve_precision
from engine.core.errors import UserError
from engine.data.batches import CropSampler, TuneSampler, validation_sequences, validation_windows
from engine.models import MODEL_KEYS, SequenceModel, build_model
from engine.music.tokens import PAD
from engine.training import checkpoint as ckpt
from engine.training import distributed
from engine.training.early_stop import EarlyStop
from engine.training.run_plan import (
    TrainJob,
    check_same_settings,
)
from engine.training.train_config import TrainConfig, lr_at

LN2 = math.log(2.0)
# Data-parallel only: how often (in steps) the ranks agree on whether to stop; one tiny all-reduce each.
STOP_CHECK_EVERY = 4


@dataclass
class TrainEvent:
    kind: str  # "step" after each model's step, "eval", "checkpoint", "done", "stopped"
    step: int  # optimizer steps this model has completed (for done/stopped: the job's step)
    total_steps: int
    model: str | None = None
    train_bpt: float | None = None  # mean over the last log_every steps (only on logging steps)
    valid_bpt: float | None = None  # on "eval" events
    lr: float | None = None
    tokens_per_s: float | None = None  # this model's training throughput so far (this session)
    eta_s: float | None = None  # whole job
    elapsed_s: float = 0.0
    paths: list[str] = field(default_factory=list)  # files saved, on "checkpoint"
    summary: dict | None = None  # on done/stopped: {model: {"valid_bpt", "train_bpt", "step", "params"}}


def next_token_nats(model, batch: torch.Tensor, precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """(summed next-token cross-entropy in nats, number of non-PAD targets) of a [B, T+1] batch.

    The one loss of training and validation: inputs are batch[:, :-1], targets batch[:, 1:], PAD targets
    ignored. Under bf16 the model runs in autocast and the loss is taken in float32."""
    with autocast(batch.device, precision):
        logits = model(batch[:, :-1])  # [B, T, V]
    targets = batch[:, 1:].reshape(-1)
    total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets, ignore_index=PAD, reduction="sum")
    return total, (targets != PAD).sum()


def autocast(device: torch.device, precision: str):
    """bf16 autocast where precision says so (resolve_precision decides when "auto" means bf16)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.no_grad()
def evaluate_bpt(model: SequenceModel, batches: list[torch.Tensor], precision: str = "fp32") -> float:
    """Bits per token over the fixed validation batches (each token weighted equally).
    In a data-parallel session each rank scores its share of the batches and the sums are all-reduced."""
    dp = distributed.current()
    if dp is not None:
        batches = batches[dp.rank :: dp.world]
    was_training = model.training
    model.eval()
    device = batches[0].device if batches else torch.device("cpu")
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = torch.zeros((), dtype=torch.float64, device=device)
    for batch in batches:
        nats, n = next_token_nats(model, batch, precision)
        total += nats.double()
        count += n
    model.train(was_training)
    if dp is not None:
        sums = distributed.all_sum(torch.stack([total, count]))
        total, count = sums[0], sums[1]
    return float(total) / max(float(count), 1.0) / LN2


def make_optimizer(model: SequenceModel, cfg: TrainConfig) -> torch.optim.AdamW:
    decay, no_decay = model.parameter_groups()  # the model declares what weight decay applies to
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def make_sampler(tokens, cfg: TrainConfig, token_config):
    """The batch stream the config asks for (whole tunes or crops)."""
    if cfg.sequences == "tunes":
        return TuneSampler(tokens, cfg.resolved_window(), token_config, cfg.transpose, cfg.seed, cfg.max_len)
    return CropSampler(tokens, cfg.resolved_window(), token_config, cfg.transpose, cfg.seed)


# Window-long validation chunks per forward: at most this many, and never more than a training batch has rows,
# so that validation stays inside the memory estimate of training (attention's rows x window^2 scores: 32
# rows of 8192 steps under --batch-size 1 asked for 8.6 GB of scores at the first validation).
VALID_ROWS = 32


def validation_batches(tokens, cfg: TrainConfig) -> list[np.ndarray]:
    """The fixed validation set, shaped like the training batches (whole tunes, or window-long chunks)."""
    if cfg.sequences == "tunes":
        return validation_sequences(tokens, cfg.max_len, cfg.max_valid_windows,
                                    batch_tokens=cfg.batch_size * cfg.resolved_window())
    windows = validation_windows(tokens, cfg.resolved_window(), cfg.max_valid_windows)
    rows = min(VALID_ROWS, cfg.batch_size)
    return [windows[i : i + rows] for i in range(0, len(windows), rows)]


def train_models(job: TrainJob, cfg: TrainConfig, models: list[str], stop: threading.Event,
                 alive: Callable[[], bool] | None = None) -> Iterator[TrainEvent]:
    """The training loop for `models` in this process (the whole job, or a worker process's share).
    `alive()` false ends it at once, saving nothing more (a worker whose parent died: it no longer holds
    the lock; it also stops between the files of a save)."""
    run = _Session(job, cfg, models, alive)
    stopped = False
    for step in range(run.start_step, cfg.steps):
        if run.ranks_agree_to_stop(step, stop):
            stopped = True  # every rank leaves at the same step, so no rank waits in a collective
            break
        batch, global_targets = run.batch(step)
        lr = lr_at(step, cfg)
        for slot in run.slots:
            if slot.stopped_early or slot.step != step:
                continue  # stopped early, or resumed ahead of the others (killed between two models' checkpoints)
            if run.orphaned():  # the parent was killed: what was saved stays, as after any kill
                return
            if run.dp is None and stop.is_set():
                stopped = True
                break
            yield from run.train_step(slot, batch, global_targets, lr)
        if stopped or (run.dp is None and all(s.stopped_early for s in run.slots)):
            break
    yield from run.finish(stopped or stop.is_set())


class _Session:
    """One call of train_models: the models' slots, the batches, the device and the clock."""

    def __init__(self, job: TrainJob, cfg: TrainConfig, models: list[str], alive: Callable[[], bool] | None):
        self.job, self.cfg, self.alive = job, cfg, alive
        self.dp = distributed.current()  # None unless launched by torchrun (see engine/training/distributed.py)
        self.rank, self.world = (self.dp.rank, self.dp.world) if self.dp else (0, 1)
        self.device = self.dp.device if self.dp else resolve_device(cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.out_dir = Path(job.out_dir)
        try:
            self.sampler = make_sampler(job.train_tokens, cfg, job.token_config)
            self.valid = [torch.from_numpy(b).to(self.device) for b in validation_batches(job.valid_tokens, cfg)]
        except ValueError as exc:
            raise UserError(f"cannot train: {exc}") from None
        self.slots = [_make_slot(key, job, cfg, job.token_config.vocab_size, self.device) for key in models]
        if self.dp is not None:
            from torch.nn.parallel import DistributedDataParallel

            for slot in self.slots:  # the wrapper broadcasts rank 0's weights, then all-reduces gradients
                slot.forward = DistributedDataParallel(
                    slot.model, device_ids=[self.device] if self.device.type == "cuda" else None)
        self.start_step = min(s.step for s in self.slots)
        self.started = time.perf_counter()
        self.steps_to_run = sum(max(0, cfg.steps - s.step) for s in self.slots)
        self.done_model_steps = 0

    def orphaned(self) -> bool:
        return self.alive is not None and not self.alive()

    def ranks_agree_to_stop(self, step: int, stop: threading.Event) -> bool:
        """Data-parallel only: every STOP_CHECK_EVERY steps the ranks agree whether one of them was stopped."""
        return (self.dp is not None and (step - self.start_step) % STOP_CHECK_EVERY == 0
                and distributed.any_rank(stop.is_set()))

    def batch(self, step: int) -> tuple[torch.Tensor, int | None]:
        """This rank's batch of `step`, and (data-parallel) the targets in the global batch."""
        if self.dp is None:
            return torch.from_numpy(self.sampler.batch(step, self.cfg.batch_size)).to(self.device, non_blocking=True), None
        # --batch-size is per rank: the global batch has batch_size x world rows' worth of tokens; this rank
        # takes every world-th row. Every rank draws it whole (cheap) to count its targets.
        full = self.sampler.batch(step, self.cfg.batch_size * self.world, world=self.world)
        global_targets = max(1, int((full[:, 1:] != PAD).sum()))
        return torch.from_numpy(full[self.rank :: self.world]).to(self.device, non_blocking=True), global_targets

    def eta(self) -> float | None:
        if self.done_model_steps == 0:
            return None
        per_step = (time.perf_counter() - self.started) / self.done_model_steps
        return per_step * (self.steps_to_run - self.done_model_steps)

    def event(self, kind: str, slot: _Slot, **kw) -> TrainEvent:
        return TrainEvent(kind=kind, step=slot.step, total_steps=self.cfg.steps, model=slot.key,
                          elapsed_s=slot.elapsed_before + time.perf_counter() - self.started, **kw)

    def save(self, slot: _Slot) -> list[str]:
        if self.rank != 0 or self.orphaned():  # a worker whose parent died no longer holds the lock: no save
            return []
        _check_finite_weights(slot, self.out_dir, self.cfg)
        try:
            paths = _save(slot, self.job, self.cfg, self.out_dir, self.device, self.world, self.alive)
        except ckpt.Orphaned:
            return []  # the parent died during the save: the files written so far are complete ones
        slot.saved_step = slot.step
        return [str(p) for p in paths]

    def train_step(self, slot: _Slot, batch: torch.Tensor, global_targets: int | None, lr: float) -> Iterator[TrainEvent]:
        """One optimizer step of one model, and the events, validation and checkpoint that follow it."""
        cfg = self.cfg
        t0 = time.perf_counter()
        lr = lr * slot.early_stop.lr_scale  # this model's plateaus so far (the converged recipe); 1 otherwise
        for group in slot.optimizer.param_groups:
            group["lr"] = lr
        total, targets = next_token_nats(slot.forward, batch, self.precision)
        # DDP averages gradients over the ranks; scaling this rank's summed loss by world / (targets in the
        # global batch) makes that average the gradient of the global batch's mean loss: exactly what one
        # process with the whole batch computes, PAD or not.
        loss = total * (self.world / global_targets) if self.dp is not None else total / targets.clamp(min=1)
        slot.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(slot.params, cfg.grad_clip, foreach=True)
        if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
            failure = UserError(_not_finite(slot, loss, grad_norm, self.out_dir, cfg))
            for other in self.slots:  # what the other models learnt is kept before the error ends training
                if other is not slot and other.step > other.saved_step:
                    yield self.event("checkpoint", other, paths=self.save(other))
            raise failure
        slot.optimizer.step()
        slot.loss_sum = loss.detach() if slot.loss_sum is None else slot.loss_sum + loss.detach()
        slot.loss_steps += 1
        slot.step += 1
        slot.busy_s += time.perf_counter() - t0
        slot.tokens += int(targets) * self.world  # the whole job's predicted tokens
        self.done_model_steps += 1
        yield from self._after_step(slot, lr)

    def _after_step(self, slot: _Slot, lr: float) -> Iterator[TrainEvent]:
        cfg = self.cfg
        last = slot.step == cfg.steps
        logging = slot.step % cfg.log_every == 0 or slot.step % cfg.eval_every == 0 or last
        train_bpt = self._logged_loss(slot) if logging else None
        tps = slot.tokens / slot.busy_s if slot.busy_s > 0 else None
        yield self.event("step", slot, train_bpt=train_bpt, lr=lr, tokens_per_s=tps, eta_s=self.eta())
        valid_bpt = None
        if slot.step % cfg.eval_every == 0 or last:
            valid_bpt = evaluate_bpt(slot.model, self.valid, self.precision)
            slot.last_valid = valid_bpt
            if slot.early_stop.update(slot.step, valid_bpt) and not last:  # flat (early_stop.py): done early
                slot.stopped_early = last = True
            yield self.event("eval", slot, train_bpt=slot.last_train, valid_bpt=valid_bpt, lr=lr,
                             tokens_per_s=tps, eta_s=self.eta())
        if logging:
            slot.history.append({"step": slot.step, "train_bpt": train_bpt, "valid_bpt": valid_bpt, "lr": lr,
                                 "tokens_per_s": tps,
                                 "elapsed_s": slot.elapsed_before + time.perf_counter() - self.started})
        if slot.step % cfg.save_every == 0 or last:
            yield self.event("checkpoint", slot, paths=self.save(slot))

    def _logged_loss(self, slot: _Slot) -> float:
        """The mean training loss (bits) since the last logged row; the running sum starts again."""
        if self.dp is not None:  # each rank's loss is its share x world: the mean over ranks is the loss
            slot.loss_sum = distributed.all_sum(slot.loss_sum) / self.world
        train_bpt = float(slot.loss_sum) / slot.loss_steps / LN2
        slot.loss_sum, slot.loss_steps = None, 0
        slot.last_train = train_bpt
        return train_bpt

    def finish(self, stopped: bool) -> Iterator[TrainEvent]:
        """Stopped: checkpoint what every model learnt since its last one. Then the job's final event."""
        if stopped:
            for slot in self.slots:
                if slot.step > slot.saved_step:  # what it learnt since its last checkpoint (nothing at step 0)
                    yield self.event("checkpoint", slot, paths=self.save(slot))
        distributed.barrier()  # data-parallel: "done" once rank 0's last checkpoints are on disk
        summary = {s.key: {"valid_bpt": s.last_valid, "train_bpt": s.last_train, "step": s.step,
                           "params": s.model.num_params()} for s in self.slots}
        kind = "done" if all(s.step >= self.cfg.steps or s.stopped_early for s in self.slots) else "stopped"
        yield TrainEvent(kind=kind, step=min(s.step for s in self.slots), total_steps=self.cfg.steps,
                         elapsed_s=time.perf_counter() - self.started, summary=summary)


class _Slot:
    """One model in the job, with its optimizer and running figures."""

    def __init__(self, key, model, optimizer, step, history):
        self.key, self.model, self.optimizer = key, model, optimizer
        self.forward = model  # what the training step calls: the model, or its DistributedDataParallel wrapper
        self.params = list(model.parameters())
        self.step, self.history = step, history
        self.saved_step = step  # the step of its newest checkpoint
        self.loss_sum: torch.Tensor | None = None
        self.loss_steps = 0
        self.busy_s = 0.0  # time spent in this model's steps this session
        self.tokens = 0
        self.last_train = history[-1]["train_bpt"] if history else None
        self.last_valid = next((r["valid_bpt"] for r in reversed(history) if r.get("valid_bpt") is not None), None)
        self.elapsed_before = history[-1]["elapsed_s"] if history and history[-1].get("elapsed_s") else 0.0
        self.early_stop = EarlyStop(None, 0.0)  # replaced by _make_slot with the run's settings and history
        self.stopped_early = False


def _make_slot(key, job: TrainJob, cfg: TrainConfig, vocab, device) -> _Slot:
    model_dir = Path(job.out_dir) / key
    if job.resume and ckpt.has_train_state(model_dir):
        model, record, opt_tensors, partial = ckpt.load_train_state(model_dir, key)
        check_same_settings(model_dir / ckpt.STATE_FILE, record.training, record.ranks, cfg, world_size())
        if record.corpus != job.corpus_fingerprint:
            raise UserError(f"{model_dir / ckpt.STATE_FILE}: was trained on a different corpus "
                            f"(hash {record.corpus}, now {job.corpus_fingerprint})")
        if record.finished:
            raise UserError(f"{model_dir}: has finished its {record.training.steps} steps: never overwritten")
        model.to(device).train()
        optimizer = make_optimizer(model, cfg)
        ckpt.restore_optimizer(optimizer, opt_tensors, model_dir / ckpt.STATE_FILE, step=record.step)
        slot = _Slot(key, model, optimizer, record.step, ckpt.read_history(model_dir, up_to_step=record.step))
        slot.early_stop = EarlyStop.replay(cfg.patience, cfg.min_delta, slot.history, cfg.lr_drop, cfg.lr_drops,
                                           cfg.flat_gain)
        if partial is not None and distributed.current() is None:
            # the loss summed since the last history row: the next row is the one an unstopped run logs
            # (data-parallel, each rank summed its own share, and rank 0 saved only its own: not restored)
            slot.loss_sum, slot.loss_steps = partial[0].to(device), partial[1]
        return slot
    if (model_dir / ckpt.CONFIG_FILE).exists() or ckpt.has_train_state(model_dir):
        why = "has no training state (a bundled or exported model)" if job.resume else "already holds a trained model"
        raise UserError(f"{model_dir} {why}: never overwritten; train into another folder")
    torch.manual_seed(cfg.seed)  # same seed for every model's initial weights
    model = build_model(key, cfg.preset, vocab, window=cfg.resolved_window()).to(device).train()
    slot = _Slot(key, model, make_optimizer(model, cfg), 0, [])
    slot.early_stop = EarlyStop(cfg.patience, cfg.min_delta, cfg.lr_drop, cfg.lr_drops, cfg.flat_gain)
    return slot


def _check_finite_weights(slot: _Slot, out_dir: Path, cfg: TrainConfig) -> None:
    """A checkpoint never holds weights that are not finite (an update can overflow where the loss and
    the gradient were still finite): training stops instead, and the last good checkpoint stays."""
    for name, p in slot.model.named_parameters():
        if not bool(torch.isfinite(p).all()):
            raise UserError(f"{slot.key}: weight {name} became non-finite at step {slot.step} (learning rate "
                            f"{cfg.lr:g}): not saved; the last checkpoint in {out_dir / slot.key} stays. A lower "
                            f"learning rate usually helps")


def world_size() -> int:
    dp = distributed.current()
    return dp.world if dp else 1


def _not_finite(slot: _Slot, loss, grad_norm, out_dir: Path, cfg: TrainConfig) -> str:
    what = "loss" if not torch.isfinite(loss) else "gradient"
    saved = ckpt.has_train_state(out_dir / slot.key)
    kept = f"its last checkpoint in {out_dir / slot.key} is kept" if saved else "nothing of it was saved"
    return (f"{slot.key}: the {what} became {float((loss if what == 'loss' else grad_norm).detach())} at step {slot.step + 1} "
            f"(learning rate {cfg.lr:g}): training stopped before that step; {kept}. A lower learning rate "
            f"usually helps")


def _save(slot: _Slot, job: TrainJob, cfg: TrainConfig, out_dir: Path, device, world: int,
          alive: Callable[[], bool] | None = None) -> list[Path]:
    record = ckpt.ModelRecord(
        key=slot.key, model=slot.model.config, tokens=job.token_config, training=cfg, step=slot.step,
        corpus=job.corpus_fingerprint, params=slot.model.num_params(), train_bpt=slot.last_train,
        valid_bpt=slot.last_valid, ranks=world, device=str(device), torch=torch.__version__,
        saved_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), stopped_early=slot.stopped_early)
    partial = (slot.loss_sum, slot.loss_steps) if slot.loss_sum is not None and world == 1 else None
    return ckpt.save_checkpoint(out_dir / slot.key, slot.model, slot.optimizer, record, slot.history,
                                partial_loss=partial, alive=alive)


def final_table(summary: dict) -> list[tuple[str, int, float | None, float | None]]:
    """(key, params, train bpt, valid bpt) rows in MODEL_KEYS order, for printing."""
    return [(k, v["params"], v["train_bpt"], v["valid_bpt"]) for k, v in sorted(
        summary.items(), key=lambda kv: MODEL_KEYS.index(kv[0]))]
