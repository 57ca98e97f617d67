"""Bench: training throughput, model FLOPs utilisation and the engine's overhead (docs/design.md section 6).

- matmul_gflops: the fp32 GEMM rate of this machine (1024 x 1024 matrices), at the thread count the
  models train with, measured beside every model (the machine is shared: the load drifts) and reported
  as the median; each model's mfu uses the GEMM rate measured around it.
- per model (small preset, the engine's default batch and window):
  params; train_tokens_per_s through the engine (engine.training.train, the same generator the CLI and
  the GUI run); mfu = train_flops_per_token x tokens/s / GEMM rate, where train_flops_per_token is the
  analytic count of SequenceModel.train_flops_per_token (3 x forward matmul FLOPs; per family:
    recurrent  2 x [gates x (E + H) x H + H x V]               gates: rnn 1, gru 3, lstm 4
    attention  2 x [(E + H) H + H^2 + 2 H^2 + H V] + 4 H x window/2   (rnn, W_a, W_c, head, scores+mix)
    transformer 2 x [L (12 D^2 + 2 D x window/2) + D V]        (qkv, proj, 4x MLP, causal attention)
  ); engine_vs_bare = the engine's throughput / a bare PyTorch loop (forward, cross-entropy, backward,
  AdamW step on a fixed batch) of the same model and batch, measured in alternating rounds, best of each.
Threads: 1 by default (MELODY_MEMORY_BENCH_THREADS to change): on a shared 2-core machine more threads
than free cores make OpenMP spin at every small op and a step gets 20x slower.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..batches import CropSampler
from ..models import MODEL_KEYS, build_model
from ..tokens import FIRST_PITCH_TOKEN, TokenConfig
from ..training import TrainConfig, TrainJob, train

PRESET = "small"


def matmul_gflops(seconds: float = 0.5, n: int = 1024) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2.0 * n**3 * count / (time.perf_counter() - start) / 1e9


def _synthetic_tunes(n=200, seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, FIRST_PITCH_TOKEN + 40, size=int(rng.integers(200, 800))) for _ in range(n)]


def _bare_loop(key: str, cfg: TrainConfig, vocab: int, batch: torch.Tensor):
    """Yields after each plain training step: the reference the engine is compared with."""
    torch.manual_seed(cfg.seed)
    model = build_model(key, cfg.preset, vocab, window=cfg.resolved_window())
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    inputs, targets = batch[:, :-1], batch[:, 1:].reshape(-1)
    while True:
        loss = F.cross_entropy(model(inputs).reshape(-1, vocab), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        yield


def _engine_steps(key: str, cfg: TrainConfig, tokens: TokenConfig, tunes, out_dir):
    job = TrainJob([key], tunes, tunes[:10], tokens, "bench", out_dir, cfg)
    for event in train(job):
        if event.kind == "step":
            yield


def _rate(steps_iter, n: int, tokens_per_step: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        next(steps_iter)
    return n * tokens_per_step / (time.perf_counter() - start)


def measure(quick: bool = False, report: dict | None = None) -> dict:
    threads = int(os.environ.get("MELODY_MEMORY_BENCH_THREADS", "1"))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _measure(quick, threads)
    finally:
        torch.set_num_threads(previous)


def _measure(quick: bool, threads: int) -> dict:
    tokens = TokenConfig()
    vocab = tokens.vocab_size
    rounds, steps_per_round = (2, 1) if quick else (5, 2)  # many short alternations: load drifts
    gemm_seconds = 0.2 if quick else 0.5
    cfg = TrainConfig(preset=PRESET, steps=10**6, eval_every=10**7, save_every=10**7, log_every=10, processes=1,
                      device="cpu", seed=0)
    window = cfg.resolved_window()
    tokens_per_step = cfg.batch_size * window
    tunes = _synthetic_tunes()
    batch = torch.from_numpy(CropSampler(tunes, window, tokens, cfg.transpose, cfg.seed).batch(0, cfg.batch_size))

    models, gemm_rates = {}, []
    with tempfile.TemporaryDirectory(prefix="mm-train-bench-") as tmp:
        for key in MODEL_KEYS:
            rates_here = [matmul_gflops(gemm_seconds)]
            engine = _engine_steps(key, cfg, tokens, tunes, os.path.join(tmp, key))
            bare = _bare_loop(key, cfg, vocab, batch)
            next(engine), next(bare)  # warm-up: first-call allocations and lazy init
            engine_rates, bare_rates = [], []
            for _ in range(rounds):
                engine_rates.append(_rate(engine, steps_per_round, tokens_per_step))
                bare_rates.append(_rate(bare, steps_per_round, tokens_per_step))
            engine.close()
            rates_here.append(matmul_gflops(gemm_seconds))
            gemm_rates += rates_here
            model = build_model(key, PRESET, vocab)
            flops = model.train_flops_per_token(window)
            tps = max(engine_rates)
            models[key] = {
                "params": model.num_params(),
                "train_tokens_per_s": tps,
                "train_flops_per_token": flops,
                "mfu": flops * tps / (statistics.mean(rates_here) * 1e9),
                "engine_vs_bare": tps / max(bare_rates),
            }
    return {
        "matmul_gflops": statistics.median(gemm_rates),
        "train_bench": {"preset": PRESET, "batch_size": cfg.batch_size, "window": window, "threads": threads},
        "models": models,
    }
