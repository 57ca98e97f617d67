"""The training engine the CLI and the GUI share: a generator of progress events, Qt-free.

One job trains several models side by side. At every step all models see the same batch (the same
crops, the same transpositions), in turn, so their curves grow together; they share the step budget,
the optimizer (AdamW, linear warm-up then cosine decay, gradient clipping) and the seed (each model's
initial weights come from torch.manual_seed(seed)). Any difference is the architecture.

    for event in train(TrainJob(...), stop=threading.Event()):
        ...   # TrainEvent: kind "step" | "eval" | "checkpoint" | "done" | "stopped"

A "step" event follows every model's optimizer step, so a consumer (the GUI's worker thread) gets
control back often, and `stop` is looked at before each model's step: it takes effect within one step,
after which every model is checkpointed. The engine stays overhead-free: the loss is read back from
the device only every `log_every` steps; batches are drawn with vectorised numpy (engine/batches.py).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from . import checkpoint as ckpt
from . import distributed
from .batches import CropSampler, validation_windows
from .device import resolve_device
from .errors import UserError
from .models import MODEL_KEYS, MODEL_LABELS, PRESETS, SequenceModel, build_model
from .tokens import PAD, TokenConfig

LN2 = math.log(2.0)
# Data-parallel only: how often (in steps) the ranks agree on whether to stop; one tiny all-reduce each.
STOP_CHECK_EVERY = 4


@dataclass
class TrainConfig:
    preset: str = "small"
    steps: int = 3000
    batch_size: int = 32
    window: int | None = None  # None: the preset's window
    lr: float = 3e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * this
    warmup_steps: int = 100
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    transpose: int = 5  # random transposition of each crop by -5..+5 semitones (kept in range)
    seed: int = 0
    eval_every: int = 100
    save_every: int = 500
    log_every: int = 10
    max_valid_windows: int = 256  # caps validation cost; a fixed, evenly spaced subset
    device: str = "auto"
    threads: int | None = None  # torch CPU threads; None leaves torch's default

    def resolved_window(self) -> int:
        return self.window or PRESETS[self.preset]["rnn"].window

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        cfg = cls(**{k: v for k, v in doc.items() if k in names})
        cfg.betas = tuple(cfg.betas)
        return cfg


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
    summary: dict | None = None  # on done/stopped: {model: {"valid_bpt", "train_bpt", "step"}}


@dataclass
class TrainJob:
    models: Sequence[str]
    train_tokens: list  # token arrays of the training tunes
    valid_tokens: list
    token_config: TokenConfig
    corpus_fingerprint: str
    out_dir: str | Path
    config: TrainConfig = field(default_factory=TrainConfig)
    resume: bool = False


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warm-up, then cosine to min_lr."""
    warmup = min(cfg.warmup_steps, cfg.steps // 10)  # short runs (tests, demos) keep most of their budget
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    span = max(1, cfg.steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


def loss_nats(model: SequenceModel, batch: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of a [B, W+1] batch, PAD targets ignored."""
    logits = model(batch[:, :-1])  # [B, W, V]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), ignore_index=PAD)


def loss_sum_nats(model, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed next-token cross-entropy in nats, number of non-PAD targets) of a [B, W+1] batch."""
    logits = model(batch[:, :-1])
    targets = batch[:, 1:].reshape(-1)
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets, ignore_index=PAD, reduction="sum")
    return total, (targets != PAD).sum()


@torch.no_grad()
def evaluate_bpt(model: SequenceModel, windows: torch.Tensor, batch_size: int = 32) -> float:
    """Bits per token over the fixed validation windows (each token weighted equally).
    In a data-parallel session each rank scores its share of the windows and the sums are all-reduced."""
    dp = distributed.current()
    if dp is not None:
        windows = windows[dp.rank :: dp.world]
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=windows.device)
    count = 0
    for i in range(0, len(windows), batch_size):
        chunk = windows[i : i + batch_size]
        logits = model(chunk[:, :-1])
        total += F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1), ignore_index=PAD, reduction="sum"
        ).double()
        count += int((chunk[:, 1:] != PAD).sum())
    model.train(was_training)
    if dp is not None:
        sums = distributed.all_sum(torch.stack([total, torch.tensor(float(count), dtype=torch.float64,
                                                                      device=total.device)]))
        total, count = sums[0], float(sums[1])
    return float(total) / max(count, 1) / LN2


def make_optimizer(model: SequenceModel, cfg: TrainConfig) -> torch.optim.AdamW:
    # Weight decay on matrices only (nanoGPT's rule): not on biases, norms' gains or embeddings.
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and "embed" not in name else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


class _Slot:
    """One model in the job, with its optimizer and running figures."""

    def __init__(self, key, model, optimizer, step, history):
        self.key, self.model, self.optimizer = key, model, optimizer
        self.forward = model  # what the training step calls: the model, or its DistributedDataParallel wrapper
        self.params = [p for p in model.parameters()]
        self.step, self.history = step, history
        self.loss_sum: torch.Tensor | None = None
        self.loss_steps = 0
        self.busy_s = 0.0  # time spent in this model's steps this session
        self.tokens = 0
        self.last_train = history[-1]["train_bpt"] if history else None
        self.last_valid = next((r["valid_bpt"] for r in reversed(history) if r.get("valid_bpt") is not None), None)
        self.elapsed_before = history[-1]["elapsed_s"] if history and history[-1].get("elapsed_s") else 0.0


def train(job: TrainJob, stop: threading.Event | None = None) -> Iterator[TrainEvent]:
    """Train job.models together; yields TrainEvents. See the module docstring."""
    cfg = job.config
    stop = stop or threading.Event()
    unknown = [k for k in job.models if k not in MODEL_KEYS]
    if unknown or not job.models:
        raise UserError(f"unknown model(s) {unknown}: choose from {', '.join(MODEL_KEYS)}")
    if cfg.preset not in PRESETS:
        raise UserError(f"unknown preset {cfg.preset!r}: choose from {', '.join(PRESETS)}")
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise UserError("steps and batch size must be at least 1")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dp = distributed.current()  # None unless launched by torchrun (see engine/distributed.py)
    rank, world = (dp.rank, dp.world) if dp else (0, 1)
    device = dp.device if dp else resolve_device(cfg.device)
    window = cfg.resolved_window()
    out_dir = Path(job.out_dir)
    try:
        sampler = CropSampler(job.train_tokens, window, job.token_config, cfg.transpose, cfg.seed)
        valid_np = validation_windows(job.valid_tokens, window, cfg.max_valid_windows)
    except ValueError as exc:
        raise UserError(f"cannot train: {exc}") from None
    valid = torch.from_numpy(valid_np).to(device)
    vocab = job.token_config.vocab_size

    slots = [_make_slot(key, job, cfg, window, vocab, device, out_dir) for key in job.models]
    if dp is not None:
        from torch.nn.parallel import DistributedDataParallel

        for slot in slots:  # the wrapper broadcasts rank 0's weights, then all-reduces gradients in backward
            slot.forward = DistributedDataParallel(slot.model, device_ids=[device] if device.type == "cuda" else None)
    start_step = min(s.step for s in slots)
    session_start = time.perf_counter()
    steps_to_run = sum(max(0, cfg.steps - s.step) for s in slots)
    done_model_steps = 0

    def eta() -> float | None:
        if done_model_steps == 0:
            return None
        return (time.perf_counter() - session_start) / done_model_steps * (steps_to_run - done_model_steps)

    def elapsed(slot) -> float:
        return slot.elapsed_before + time.perf_counter() - session_start

    def event(kind, slot, **kw) -> TrainEvent:
        return TrainEvent(kind=kind, step=slot.step, total_steps=cfg.steps, model=slot.key,
                          elapsed_s=elapsed(slot), **kw)

    stopped = False
    for step in range(start_step, cfg.steps):
        if dp is not None and (step - start_step) % STOP_CHECK_EVERY == 0 and distributed.any_rank(stop.is_set()):
            stopped = True  # every rank leaves at the same step, so no rank waits in a collective
            break
        if dp is None:
            batch_np = sampler.batch(step, cfg.batch_size)
        else:
            # --batch-size is per rank: the global batch has batch_size x world rows; this rank takes
            # every world-th. Every rank draws it whole (cheap) to count the global batch's targets.
            full = sampler.batch(step, cfg.batch_size * world)
            global_targets = max(1, int((full[:, 1:] != PAD).sum()))
            batch_np = full[rank::world]
        batch = torch.from_numpy(batch_np).to(device, non_blocking=True)
        lr = lr_at(step, cfg)
        for slot in slots:
            if slot.step != step:
                continue  # resumed ahead of the others (killed between two models' checkpoints)
            if dp is None and stop.is_set():
                stopped = True
                break
            t0 = time.perf_counter()
            for group in slot.optimizer.param_groups:
                group["lr"] = lr
            if dp is None:
                loss = loss_nats(slot.forward, batch)
            else:
                # DDP averages gradients over the ranks; scaling this rank's summed loss by
                # world / (targets in the global batch) makes that average the gradient of the global
                # batch's mean loss: exactly what one process with the whole batch computes, PAD or not.
                total, _ = loss_sum_nats(slot.forward, batch)
                loss = total * (world / global_targets)
            slot.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(slot.params, cfg.grad_clip, foreach=True)
            slot.optimizer.step()
            slot.loss_sum = loss.detach() if slot.loss_sum is None else slot.loss_sum + loss.detach()
            slot.loss_steps += 1
            slot.step += 1
            slot.busy_s += time.perf_counter() - t0
            slot.tokens += batch.shape[0] * world * (batch.shape[1] - 1)  # the whole job's tokens
            done_model_steps += 1

            last = slot.step == cfg.steps
            logging = slot.step % cfg.log_every == 0 or slot.step % cfg.eval_every == 0 or last
            train_bpt = None
            if logging:
                if dp is not None:  # each rank's loss is its share x world: the mean over ranks is the loss
                    slot.loss_sum = distributed.all_sum(slot.loss_sum) / world
                train_bpt = float(slot.loss_sum) / slot.loss_steps / LN2  # the one device sync per log
                slot.loss_sum, slot.loss_steps = None, 0
                slot.last_train = train_bpt
            tps = slot.tokens / slot.busy_s if slot.busy_s > 0 else None
            yield event("step", slot, train_bpt=train_bpt, lr=lr, tokens_per_s=tps, eta_s=eta())

            valid_bpt = None
            if slot.step % cfg.eval_every == 0 or last:
                valid_bpt = evaluate_bpt(slot.model, valid)
                slot.last_valid = valid_bpt
                yield event("eval", slot, train_bpt=slot.last_train, valid_bpt=valid_bpt, lr=lr,
                            tokens_per_s=tps, eta_s=eta())
            if logging:
                slot.history.append({"step": slot.step, "train_bpt": train_bpt, "valid_bpt": valid_bpt, "lr": lr,
                                     "tokens_per_s": tps, "elapsed_s": elapsed(slot)})
            if slot.step % cfg.save_every == 0 or last:
                paths = _save(slot, job, cfg, window, out_dir, device) if rank == 0 else []
                yield event("checkpoint", slot, paths=[str(p) for p in paths])
        if stopped:
            break

    if stopped or stop.is_set():
        for slot in slots:
            if slot.step < cfg.steps:
                paths = _save(slot, job, cfg, window, out_dir, device) if rank == 0 else []
                yield event("checkpoint", slot, paths=[str(p) for p in paths])
    distributed.barrier()  # data-parallel: "done" once rank 0's last checkpoints are on disk
    final_step = min(s.step for s in slots)
    summary = {s.key: {"valid_bpt": s.last_valid, "train_bpt": s.last_train, "step": s.step,
                       "params": s.model.num_params()} for s in slots}
    kind = "done" if final_step >= cfg.steps else "stopped"
    yield TrainEvent(kind=kind, step=final_step, total_steps=cfg.steps,
                     elapsed_s=time.perf_counter() - session_start, summary=summary)


def _make_slot(key, job: TrainJob, cfg: TrainConfig, window, vocab, device, out_dir: Path) -> _Slot:
    model_dir = out_dir / key
    if job.resume and (model_dir / ckpt.STATE_FILE).exists():
        model, doc, opt_tensors = ckpt.load_train_state(model_dir, key)
        saved = TrainConfig.from_dict(doc.get("training", {}))
        # The batch that matters is the global one (--batch-size x ranks): a run may resume on another
        # number of ranks if the per-rank batch makes up the same global batch.
        saved_world, world = int(doc.get("training", {}).get("ranks", 1)), _world()
        if (saved.seed, saved.batch_size * saved_world, saved.resolved_window()) != (
                cfg.seed, cfg.batch_size * world, window):
            ranks = f" over {saved_world} ranks" if saved_world > 1 else ""
            raise UserError(f"{model_dir / ckpt.STATE_FILE}: was trained with seed {saved.seed}, batch "
                            f"{saved.batch_size}{ranks}, window {saved.resolved_window()}; resume with the same "
                            f"(a global batch of {saved.batch_size * saved_world} crops)")
        if doc.get("corpus") != job.corpus_fingerprint:
            raise UserError(f"{model_dir / ckpt.STATE_FILE}: was trained on a different corpus "
                            f"(hash {doc.get('corpus')}, now {job.corpus_fingerprint})")
        model.to(device).train()
        optimizer = make_optimizer(model, cfg)
        ckpt.restore_optimizer(optimizer, opt_tensors, model_dir / ckpt.STATE_FILE)
        step = int(doc["step"])
        return _Slot(key, model, optimizer, step, ckpt.read_history(model_dir, up_to_step=step))
    if not job.resume and (model_dir / ckpt.CONFIG_FILE).exists():
        raise UserError(f"{model_dir} already holds a trained model: use --resume, or another --out")
    torch.manual_seed(cfg.seed)  # same seed for every model's initial weights
    model = build_model(key, cfg.preset, vocab, window=window).to(device).train()
    return _Slot(key, model, make_optimizer(model, cfg), 0, [])


def _world() -> int:
    dp = distributed.current()
    return dp.world if dp else 1


def _save(slot: _Slot, job: TrainJob, cfg: TrainConfig, window, out_dir: Path, device) -> list[Path]:
    doc = {
        "format": ckpt.FORMAT,
        "key": slot.key,
        "label": MODEL_LABELS[slot.key],
        "model": slot.model.config.to_dict(),
        "params": slot.model.num_params(),
        "tokens": {**job.token_config.to_dict(), "vocab_size": job.token_config.vocab_size},
        "corpus": job.corpus_fingerprint,
        "training": {**cfg.to_dict(), "window": window, "ranks": _world()},
        "step": slot.step,
        "train_bpt": slot.last_train,
        "valid_bpt": slot.last_valid,
        "device": str(device),
        "torch": torch.__version__,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return ckpt.save_checkpoint(out_dir / slot.key, slot.model, slot.optimizer, doc, slot.history)


def final_table(summary: dict) -> list[tuple[str, int, float | None, float | None]]:
    """(key, params, train bpt, valid bpt) rows in MODEL_KEYS order, for printing."""
    return [(k, v["params"], v["train_bpt"], v["valid_bpt"]) for k, v in sorted(
        summary.items(), key=lambda kv: MODEL_KEYS.index(kv[0]))]

