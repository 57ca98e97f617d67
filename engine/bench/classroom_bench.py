"""Bench: the classroom figures (docs/design.md section 6): how soon the app's default training of all five
models gives a visible, correct answer, measured end to end on this machine.

The run is exactly what Start does in the Train tab with its defaults (engine.training.train_config.classroom_config:
the five small models, whole tunes of the bundled corpus, the worker processes the engine picks), timed
from the moment training is asked for (corpus already loaded, as in the app) to each validation point.

- separated_s: the first time the five validation curves are ordered like the bundled models' (the vanilla
  RNN worst, RNN + attention and the Transformer best) with the last three validations of each group not
  overlapping: every one of the RNN's above every other model's, every one of the attention models' below
  every one of the RNN's, LSTM's and GRU's.
- bundled_quality_s: the first time every model's validation is within 0.05 bits of its bundled model's
  (pretrained/<key>/config.json, validated on the same split the same way).
Both are None when the condition was never met; `--quick` skips the section (the run takes minutes).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

QUALITY_MARGIN_BITS = 0.05
LAST = 3  # validations per model that must not overlap


def separated(latest: dict[str, list[float]]) -> bool:
    """Whether the last LAST validations are ordered like the bundled models' (see the module docstring)."""
    from engine.models import BASELINE, default_selection, models_with_attention

    keys = default_selection()
    if any(len(latest.get(k, [])) < LAST for k in keys):
        return False
    last = {k: latest[k][-LAST:] for k in keys}
    attending = models_with_attention(keys)
    baseline_worst = all(min(last[BASELINE]) > max(last[k]) for k in keys if k != BASELINE)
    attention_best = all(max(last[a]) < min(last[k]) for a in attending for k in keys if k not in attending)
    return baseline_worst and attention_best


def reached_quality(latest: dict[str, list[float]], bundled: dict[str, float]) -> bool:
    return all(latest.get(k) and latest[k][-1] <= bundled[k] + QUALITY_MARGIN_BITS for k in bundled)


def measure(quick: bool = False, report: dict | None = None) -> dict:
    if quick:
        return {"classroom": None}
    from engine.core.console import say
    from engine.data.corpus import load_corpus
    from engine.models import MODEL_KEYS
    from engine.training.checkpoint import PRETRAINED_DIR, list_run_models, read_record
    from engine.training.run_plan import plan_new_run
    from engine.training.train import train
    from engine.training.train_config import classroom_config

    bundled = {k: read_record(PRETRAINED_DIR / k).valid_bpt for k in list_run_models(PRETRAINED_DIR)}
    corpus = load_corpus(None)
    config = classroom_config()
    latest: dict[str, list[float]] = {}
    curve: list[dict] = []
    separated_s = quality_s = None
    with tempfile.TemporaryDirectory(prefix="mm-classroom-") as tmp:
        start = time.perf_counter()
        with plan_new_run(Path(tmp) / "run", list(MODEL_KEYS), config) as plan:
            for event in train(plan.job(corpus), threading.Event()):
                if event.kind != "eval":
                    continue
                now = time.perf_counter() - start
                latest.setdefault(event.model, []).append(event.valid_bpt)
                curve.append({"t": round(now, 1), "model": event.model, "step": event.step,
                              "valid_bpt": round(event.valid_bpt, 4)})
                if separated_s is None and separated(latest):
                    separated_s = now
                    say(f"bench: classroom: curves separated after {now:.0f} s")
                if quality_s is None and bundled and reached_quality(latest, bundled):
                    quality_s = now
                    say(f"bench: classroom: bundled quality reached after {now:.0f} s")
        total = time.perf_counter() - start
    return {"classroom": {
        "separated_s": None if separated_s is None else round(separated_s, 1),
        "bundled_quality_s": None if quality_s is None else round(quality_s, 1),
        "total_s": round(total, 1),
        "settings": {k: v for k, v in config.to_dict().items() if k in (
            "preset", "steps", "batch_size", "lr", "warmup_steps", "sequences", "precision", "eval_every")},
        "bundled_valid_bpt": bundled,
        "final_valid_bpt": {k: v[-1] for k, v in latest.items()},
        "curve": curve,
    }}
