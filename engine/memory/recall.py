"""Recall by distance (docs/design.md section 5; issue 23): how many bits per token a model loses on a bar
when the earlier bars that resemble it are replaced by foreign bars of the same rhythm (engine/memory/
recall_plan.py), minus the loss when as many unrelated bars are replaced (the control), by distance.

Teacher-forced, no sampling and no temperature:
    recall_bits(b) = NLL(bar b | ablated past) - NLL(bar b | true past)   bits per token of bar b
    control(b)     = NLL(bar b | control past) - NLL(bar b | true past)
    recall_excess(b) = recall_bits(b) - control(b)                         paired per target bar
The true past is one forward over each twice-through tune (engine/memory/nll.py's token_bits); a model with
a finite reach (engine/models/base.py) is run from `reach` steps before the target bar only, which gives
the same numbers (nothing further back can change them) at a fraction of the cost.

Statistics: the unit is the tune. Per distance bucket, each tune's value is the mean over its target bars
in the bucket; the bucket's mean, 95% bootstrap interval and n tunes come from engine/metrics/stats.py's
per_bar_stats (buckets in place of bars), null where fewer than min_n tunes; n counts target bars.
"""

from __future__ import annotations

import numpy as np

from engine.memory.recall_forward import sequence_bits
from engine.memory.recall_plan import RecallPlan

# Distance buckets: in bars, and in 16th-note steps (the window's unit; steps per bar vary by meter).
BAR_BUCKETS = ((1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (17, 32), (33, 64))
STEP_BUCKETS = ((1, 15), (16, 31), (32, 63), (64, 127), (128, 255), (256, 511), (512, 1023))
SHORT_RANGE_BARS = 4  # the model's own short-range value: the excess over targets at d <= 4 bars
HORIZON_FLOOR_BITS = 0.05  # a bucket counts towards the horizon only with at least this much excess ...
HORIZON_SHARE = 0.10  # ... and at least this share of the short-range value


def bucket_label(low: int, high: int, unit: str) -> str:
    if unit == "steps" and low == 1:
        return f"<{high + 1}"
    return str(low) if low == high else f"{low}-{high}"


def bucket_index(distance: int, buckets) -> int:
    """The bucket holding `distance`, or -1 beyond the last."""
    return next((i for i, (lo, hi) in enumerate(buckets) if lo <= distance <= hi), -1)


def target_bits(model, plan: RecallPlan, progress=None) -> dict[str, np.ndarray]:
    """Per target: recall_bits, control_bits (both against the true past) and excess, in plan order."""
    return target_figures(plan, sequence_bits(model, plan, progress))


def target_figures(plan: RecallPlan, bits: np.ndarray) -> dict[str, np.ndarray]:
    """target_bits from the bits of every scored token, [targets, (true, ablated, control), S]."""
    found = {"ablated": np.full(len(plan.targets), np.nan), "control": np.full(len(plan.targets), np.nan)}
    for i, t in enumerate(plan.targets):
        S = plan.materials[t.material].steps_per_bar
        base = bits[i, 0, :S].astype(np.float64)
        for w, which in ((1, "ablated"), (2, "control")):
            found[which][i] = float(np.mean(bits[i, w, :S] - base))
    return {"recall_bits": found["ablated"], "control_bits": found["control"],
            "excess": found["ablated"] - found["control"]}


def per_tune_matrix(plan: RecallPlan, values: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """([tunes, buckets] each tune's mean value per bucket (NaN: no target there), n target bars per bucket,
    the targets' mean distance per bucket in the unit)."""
    buckets = BAR_BUCKETS if unit == "bars" else STEP_BUCKETS
    n_tunes = len(plan.materials)
    sums = np.zeros((n_tunes, len(buckets)))
    counts = np.zeros((n_tunes, len(buckets)))
    dist = np.zeros(len(buckets))
    for t, v in zip(plan.targets, values):
        d = t.distance_bars if unit == "bars" else t.distance_steps
        k = bucket_index(d, buckets)
        if k < 0 or not np.isfinite(v):
            continue
        sums[t.material, k] += v
        counts[t.material, k] += 1
        dist[k] += d
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        distance_mean = np.where(counts.sum(axis=0) > 0, dist / np.maximum(counts.sum(axis=0), 1), np.nan)
    return matrix, counts.sum(axis=0).astype(int), distance_mean


def short_range(plan: RecallPlan, excess: np.ndarray) -> np.ndarray:
    """Per tune, the mean excess over its targets at d <= SHORT_RANGE_BARS bars (NaN without one)."""
    sums = np.zeros(len(plan.materials))
    counts = np.zeros(len(plan.materials))
    for t, v in zip(plan.targets, excess):
        if t.distance_bars <= SHORT_RANGE_BARS and np.isfinite(v):
            sums[t.material] += v
            counts[t.material] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def curve(excess_matrix, control_matrix, n_targets, distance_mean, unit: str, bootstrap: int, seed: int,
          min_n: int) -> dict:
    """The report's {buckets, edges, mean, lo, hi, n, n_tunes, control, distance_mean} for one unit."""
    from engine.metrics.stats import per_bar_stats

    buckets = BAR_BUCKETS if unit == "bars" else STEP_BUCKETS
    st = per_bar_stats(excess_matrix, bootstrap, seed, min_n)
    control = per_bar_stats(control_matrix, bootstrap, seed, min_n)
    return {
        "buckets": [bucket_label(lo, hi, unit) for lo, hi in buckets],
        "edges": [[lo, hi] for lo, hi in buckets],
        "mean": st["mean"], "lo": st["lo"], "hi": st["hi"],
        "n": [int(v) for v in n_targets], "n_tunes": st["n"],
        "control": control["mean"],
        "distance_mean": [None if not np.isfinite(v) else round(float(v), 2) for v in distance_mean],
    }


def horizon(st: dict, reference: float | None) -> int | None:
    """The upper edge of the largest bucket that passes, every shorter bucket passing too: its interval lies
    above 0 and its mean is >= max(HORIZON_FLOOR_BITS, HORIZON_SHARE x the short-range value). Buckets
    without a value (fewer than min_n tunes: the shortest step bucket holds only meters with bars under 16
    steps, the longest only the longest tunes) neither pass nor fail. 0: the first bucket with a value
    fails; None: no bucket has a value."""
    need = max(HORIZON_FLOOR_BITS, HORIZON_SHARE * reference) if reference is not None else HORIZON_FLOOR_BITS
    edge, seen = 0, False
    for (_lo, hi), mean, low in zip(st["edges"], st["mean"], st["lo"]):
        if mean is None:
            continue
        seen = True
        if low is None or low <= 0 or mean < need:
            break
        edge = hi
    return edge if seen else None


def half_recall(st: dict, reference: float | None) -> float | None:
    """Where the excess falls below half its short-range value, in the unit of `st`: interpolated on the log
    distance between the last bucket above half and the first below. None without short-range recall
    (reference <= 0) or when no measured bucket falls below half."""
    if reference is None or reference <= 0:
        return None
    half = reference / 2
    previous = None
    for (lo, hi), mean, at in zip(st["edges"], st["mean"], st["distance_mean"]):
        if mean is None:
            continue
        x = at if at else float(np.sqrt(lo * hi))
        if mean < half:
            if previous is None:
                return round(x, 1)
            (x0, y0) = previous
            share = (y0 - half) / (y0 - mean)
            return round(float(np.exp(np.log(x0) + share * (np.log(x) - np.log(x0)))), 1)
        previous = (x, mean)
    return None
