"""Bench: training throughput, model FLOPs utilisation and the engine's overhead (docs/design.md section 6).

- matmul_gflops: the fp32 GEMM rate of this machine at the thread count the models train with: the best
  of square GEMMs of 256 to 2048 (a single size can sit below the peak, and then a model that runs near
  the peak shows an MFU above 1), measured beside every model (the machine is shared: the load drifts)
  and reported as the median; each model's mfu uses the peak measured around it.
- per model (small preset, the default training settings: whole tunes of the bundled corpus, batch 32):
  params; train_tokens_per_s (predicted tokens per second) through the engine (engine.training.train.train,
  the generator the CLI and the app run, in one process); train_flops_per_token counted by torch on those
  very batches (engine/training/flops.py, "flops_source": "counted"); mfu = counted FLOPs per token x tokens/s /
  GEMM peak; engine_vs_bare = the engine's throughput / a bare PyTorch loop (forward, cross-entropy,
  backward, AdamW step) of the same model on the same batches; bf16_speedup = the engine's throughput with
  bf16 autocast / fp32, where the CPU has native bf16. The sides take turns (engine, bare, bf16 engine) in
  ALTERNATIONS rounds: each ratio is the median of the rounds' ratios with their min-max (engine.bench.ratios),
  and train_tokens_per_s (and so mfu) the median of the engine's rounds.
- per_param_vs_gru (the modern models, issue 22's target of at least 0.5): tokens per second per parameter against
  the GRU's, timed side by side, not one model after the other, so that the machine's drift over the section does
  not enter the ratio: every round each of the GRU and the model takes one untimed step (the first step after a
  switch pays for caches the other model emptied) and then its timed steps, the order turning each round; the
  median of the rounds' ratios with their min-max.
Threads: 1 by default (MELODY_MEMORY_BENCH_THREADS to change): training runs one process per core with one
thread each, and on a shared 2-core machine more threads than free cores make OpenMP spin at every small op.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import torch

from engine.bench.ratios import ALTERNATIONS, ratio_fields
from engine.core.device import bf16_supported, torch_threads
from engine.models import MODEL_KEYS, SPEED_REFERENCE, build_model, models_in_group
from engine.training.flops import train_step_flops
from engine.training.loop import make_optimizer, make_sampler, next_token_nats
from engine.training.run_plan import TrainJob
from engine.training.train import train
from engine.training.train_config import TrainConfig

PRESET = "small"  # --quick: "tiny" (a smoke run of every section within a minute)
GEMM_SIZES = (256, 512, 1024, 2048)


def matmul_gflops(seconds: float = 0.5) -> float:
    """The best fp32 GEMM rate over a few square sizes, in GFLOP/s."""
    best = 0.0
    for n in GEMM_SIZES:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b  # warm-up
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / len(GEMM_SIZES):
            a @ b
            count += 1
        best = max(best, 2.0 * n**3 * count / (time.perf_counter() - start) / 1e9)
    return best


def _bare_loop(key: str, cfg: TrainConfig, vocab: int, batches: list[torch.Tensor]):
    """Yields after each plain training step on the same batches: the reference the engine is compared with."""
    torch.manual_seed(cfg.seed)
    model = build_model(key, cfg.preset, vocab, window=cfg.resolved_window())
    optimizer = make_optimizer(model, cfg)
    step = 0
    while True:
        batch = batches[step % len(batches)]
        total, targets = next_token_nats(model, batch)
        optimizer.zero_grad(set_to_none=True)
        (total / targets).backward()
        optimizer.step()
        step += 1
        yield int(targets)


def _engine_steps(key: str, cfg: TrainConfig, corpus, out_dir):
    job = TrainJob([key], corpus.tokens("train"), corpus.tokens("valid")[:10], corpus.token_config,
                   corpus.fingerprint, out_dir, cfg)
    for event in train(job):
        if event.kind == "step":
            yield event


def _engine_rate(steps, n: int, sampler, cfg, first_step: int) -> tuple[float, int]:
    """(predicted tokens per second over the next n engine steps, the step reached)."""
    tokens = sum(int((torch.from_numpy(sampler.batch(s, cfg.batch_size))[:, 1:] != 0).sum())
                 for s in range(first_step, first_step + n))
    start = time.perf_counter()
    for _ in range(n):
        next(steps)
    return tokens / (time.perf_counter() - start), first_step + n


def _bare_rate(steps, n: int) -> float:
    start = time.perf_counter()
    tokens = sum(next(steps) for _ in range(n))
    return tokens / (time.perf_counter() - start)


def measure(quick: bool = False, report: dict | None = None) -> dict:
    threads = int(os.environ.get("MELODY_MEMORY_BENCH_THREADS", "1"))
    with torch_threads(threads):
        return _measure(quick, threads)


def _measure(quick: bool, threads: int) -> dict:
    from engine.data.corpus import load_corpus

    corpus = load_corpus(None)
    vocab = corpus.token_config.vocab_size
    rounds, steps_per_round = ALTERNATIONS, (1 if quick else 3)  # many short alternations: load drifts
    gemm_seconds = 0.2 if quick else 1.0
    preset = "tiny" if quick else PRESET
    cfg = TrainConfig(preset=preset, steps=10**6, eval_every=10**7, save_every=10**7, log_every=10, processes=1,
                      threads=threads, device="cpu", seed=0).resolved()
    sampler = make_sampler(corpus.tokens("train"), cfg, corpus.token_config)
    n_batches = rounds * steps_per_round + 1
    batches = [torch.from_numpy(sampler.batch(s, cfg.batch_size)) for s in range(n_batches)]
    use_bf16 = bf16_supported(torch.device("cpu"))

    models, gemm_rates = {}, []
    with tempfile.TemporaryDirectory(prefix="mm-train-bench-") as tmp:
        for key in MODEL_KEYS:
            rates_here = [matmul_gflops(gemm_seconds)]
            engine = _engine_steps(key, cfg, corpus, os.path.join(tmp, key))
            bare = _bare_loop(key, cfg, vocab, batches)
            bf16 = _engine_steps(key, TrainConfig(**{**cfg.to_dict(), "precision": "bf16"}), corpus,
                                 os.path.join(tmp, key + "-bf16")) if use_bf16 else None
            for steps in (engine, bare, bf16):
                if steps is not None:
                    next(steps)  # warm-up: first-call allocations and lazy init
            engine_rates, bare_rates, bf16_rates, step = [], [], [], 1
            for _ in range(rounds):
                rate, next_step = _engine_rate(engine, steps_per_round, sampler, cfg, step)
                engine_rates.append(rate)
                bare_rates.append(_bare_rate(bare, steps_per_round))
                if bf16 is not None:
                    bf16_rates.append(_engine_rate(bf16, steps_per_round, sampler, cfg, step)[0])
                step = next_step
            for steps in (engine, bf16):
                if steps is not None:
                    steps.close()
            rates_here.append(matmul_gflops(gemm_seconds))
            gemm_rates += rates_here
            model = build_model(key, preset, vocab)
            counted = [train_step_flops(model, b) for b in batches[1:2 if quick else None]]  # one is a smoke test
            flops = sum(f for f, _ in counted) / sum(n for _, n in counted)
            tps = statistics.median(engine_rates)
            models[key] = {
                "params": model.num_params(),
                "train_tokens_per_s": tps,
                "train_flops_per_token": flops,
                "mfu": flops * tps / (max(rates_here) * 1e9),
                **ratio_fields("engine_vs_bare", [e / b for e, b in zip(engine_rates, bare_rates)]),
                **ratio_fields("bf16_speedup", [h / e for h, e in zip(bf16_rates, engine_rates)]),
            }
        params = {key: figures["params"] for key, figures in models.items()}
        for key, ratios in _per_param_vs_gru(cfg, corpus, sampler, tmp, rounds, steps_per_round, params).items():
            models[key].update(ratio_fields("per_param_vs_gru", ratios))
    return {
        "matmul_gflops": statistics.median(gemm_rates),
        "flops_source": "counted",
        "train_bench": {"preset": preset, "batch_size": cfg.batch_size, "window": cfg.window,
                        "sequences": cfg.sequences, "threads": threads, "bf16_native": use_bf16, "alternations": rounds},
        "models": models,
    }


def _per_param_vs_gru(cfg, corpus, sampler, tmp: str, rounds: int, steps_per_round: int,
                      params: dict[str, int]) -> dict[str, list[float]]:
    """model -> each round's (tokens/s per parameter) / the GRU's, the models' engine steps taking turns."""
    keys = [SPEED_REFERENCE, *(key for key in models_in_group("modern") if key in params)]
    if SPEED_REFERENCE not in params or len(keys) < 2:
        return {}
    steps = {key: _engine_steps(key, cfg, corpus, os.path.join(tmp, f"side-by-side-{key}")) for key in keys}
    reached = dict.fromkeys(keys, 0)
    rates: dict[str, list[float]] = {key: [] for key in keys}
    try:
        for turn in range(rounds):
            for key in keys[turn % len(keys):] + keys[:turn % len(keys)]:
                next(steps[key])  # untimed: the first step after another model's
                rate, reached[key] = _engine_rate(steps[key], steps_per_round, sampler, cfg, reached[key] + 1)
                rates[key].append(rate / params[key])
    finally:
        for generator in steps.values():
            generator.close()
    return {key: [mine / ref for mine, ref in zip(rates[key], rates[SPEED_REFERENCE])] for key in keys[1:]}
