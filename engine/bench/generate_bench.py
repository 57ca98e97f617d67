"""Bench: per model `generate_s` (64 bars x 8 variations, small preset), `influence_s` (what every note of a
16-bar continuation drew on, as the Listen tab computes it after Generate; target: within 2 s per model,
docs/design.md section 5 "Influence"; `influence_attention_s` where the model has attention) and the
Transformer's `kv_speedup` (incremental decoding with its key/value cache vs recomputing the window).

Untrained weights are fine: the time of a step does not depend on what the weights have learnt.
Decoding runs on one thread, as the engine does: a chain of tiny ops gains nothing from more.
"""

from __future__ import annotations

import statistics
import time

from engine.bench.ratios import ALTERNATIONS, ratio_fields

BARS, VARIATIONS, PRIMER_BARS = 64, 8, 8
INFLUENCE_BARS = 16
KV_STEPS = 1024


def _primer():
    from engine.music.melody import Melody, Note

    # 8 bars of 4/4: a scale figure in quarters and eighths, like a reel's opening
    notes, step = [], 0
    pitches = [67, 69, 71, 72, 74, 72, 71, 69]
    while step < PRIMER_BARS * 16:
        duration = 4 if (step // 16) % 2 == 0 else 2
        notes.append(Note(step, pitches[len(notes) % len(pitches)], duration))
        step += duration
    return Melody(tuple(notes), PRIMER_BARS * 16, 4, 4, 112.0, 7, tune_id="bench-primer")


def _time_generate(models: dict, primer, cfg, repeats: int) -> dict[str, tuple[float, float]]:
    """{key: (best wall seconds, CPU seconds of that run)} for 64 bars x 8 variations.

    The models take turns (round r times every model once, then round r + 1), so that a slow spell of a shared
    machine falls on all of them rather than on whichever ran then: their ratios are what the bench quotes.
    The CPU time (this thread only) shows the cost apart from waiting for a core.
    """
    from engine.generation.generate import SampleSettings, generate

    for model in models.values():
        generate(model, primer, SampleSettings(bars=2, variations=VARIATIONS), cfg)  # warm-up
    best = {key: (float("inf"), float("inf")) for key in models}
    for seed in range(repeats):
        settings = SampleSettings(bars=BARS, variations=VARIATIONS, seed=seed)
        for key, model in models.items():
            start, cpu = time.perf_counter(), time.thread_time()
            generate(model, primer, settings, cfg)
            best[key] = min(best[key], (time.perf_counter() - start, time.thread_time() - cpu))
    return best


def time_influence(model, key: str, primer, cfg, repeats: int) -> dict:
    """Best wall seconds to attribute every note of one 16-bar continuation, per method the model has."""
    from engine.generation.generate import SampleSettings, generate
    from engine.memory.influence import melody_influence, methods_for

    continuation = generate(model, primer, SampleSettings(bars=INFLUENCE_BARS, variations=1, seed=0), cfg)[0]
    out = {"influence_notes": len(continuation.notes)}
    for method in methods_for(model):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            melody_influence(model, primer, continuation, cfg, method, key)
            best = min(best, time.perf_counter() - start)
        out["influence_s" if method == "gradient" else f"influence_{method}_s"] = best
    return out


def kv_speedup(model, steps: int = KV_STEPS, recompute_samples: int = 128,
               alternations: int = ALTERNATIONS) -> dict:
    """Seconds per step of incremental decoding vs recomputing the last `window` tokens each step, the two
    taking turns `alternations` times (engine.bench.ratios): kv_speedup is the median of the turns' ratios.

    An incremental turn decodes all `steps` steps with the cache. Recomputing step t costs a forward pass over
    min(t + 1, window) tokens, which depends only on t's context length: a recompute turn times
    `recompute_samples` evenly spaced steps and takes their mean, an estimate of the whole run's per-step
    cost without waiting minutes for it.
    """
    import torch

    from engine.music.tokens import HOLD

    batch = VARIATIONS
    model.eval()
    tokens = torch.full((batch, steps + 1), HOLD, dtype=torch.long)
    window = model.window
    chosen = [round(i * (steps - 1) / (recompute_samples - 1)) for i in range(recompute_samples)]
    incremental, recompute = [], []
    with torch.inference_mode():

        def incremental_turn() -> float:
            state = model.init_state(batch, torch.device("cpu"))
            token = tokens[:, 0]
            start = time.perf_counter()
            for t in range(steps):
                logits, state = model.step(token, state)
                token = torch.argmax(logits, dim=-1)
                tokens[:, t + 1] = token
            return (time.perf_counter() - start) / steps

        def recompute_turn() -> float:
            start = time.perf_counter()
            for t in chosen:
                logits = model(tokens[:, max(0, t + 1 - window) : t + 1])[:, -1]
                torch.argmax(logits, dim=-1)
            return (time.perf_counter() - start) / len(chosen)

        incremental_turn()  # warm-up, and the tokens the recompute turns read
        model(tokens[:, :window])
        for _ in range(alternations):
            incremental.append(incremental_turn())
            recompute.append(recompute_turn())
    return {"incremental_step_ms": 1000 * statistics.median(incremental),
            "recompute_step_ms": 1000 * statistics.median(recompute),
            **ratio_fields("kv_speedup", [r / i for r, i in zip(recompute, incremental)])}


def measure(quick: bool = False, report: dict | None = None, preset: str | None = None) -> dict:
    """The figures of the `small` preset (the bench's); `--quick` (a smoke run of every section within a minute)
    and the tests run the same code on `tiny` models."""
    preset = preset or ("tiny" if quick else "small")
    import torch

    from engine.models.registry import MODEL_KEYS, build_model
    from engine.music.tokens import TokenConfig

    cfg = TokenConfig()
    primer = _primer()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    models: dict[str, dict] = {}
    try:
        built = {}
        for key in MODEL_KEYS:
            torch.manual_seed(0)
            built[key] = build_model(key, preset, cfg.vocab_size)
        timed = _time_generate(built, primer, cfg, repeats=1 if quick else 5)
        for key, model in built.items():
            wall, cpu = timed[key]
            models[key] = {"generate_s": wall, "generate_cpu_s": cpu}
            models[key].update(time_influence(model, key, primer, cfg, repeats=1 if quick else 3))
            if model.has_attention and model.reach is not None:  # a KV cache: the Transformer
                kv = kv_speedup(model, 256 if quick else KV_STEPS, recompute_samples=16 if quick else 128)
                models[key].update({k: v for k, v in kv.items() if k.startswith("kv_")},
                                   kv_incremental_step_ms=kv["incremental_step_ms"],
                                   kv_recompute_step_ms=kv["recompute_step_ms"])
    finally:
        torch.set_num_threads(threads)
    return {"models": models}
