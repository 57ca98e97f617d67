"""Teacher-forced likelihood measures: NLL per bar, effective memory (NLL_k), repeat gain.

Context rule (docs/design.md section 5, "all earlier context the model can use"): the models define what
they may look back on once, by their `window`, and their `forward` obeys it at any length
(engine/models/base.py): rnn/lstm/gru read the full prefix through their state; the attention RNN
reads the full prefix through its state and attends to the last `window` states; the Transformer
attends to a sliding `window` per layer. So the full-context figure is one `forward` over the whole
tune, the same numbers its incremental decoder gives while composing. "Only the last k tokens" means
running the model on those k tokens from an empty state (NLL_k below).

Token 0 of a tune is never scored: nothing precedes it (the models have no start token).
"""

from __future__ import annotations

import math

import numpy as np

from engine.core.device import model_device
from engine.music.tokens import PAD

LN2 = math.log(2.0)
DEFAULT_KS = tuple(2**i for i in range(11))  # 1, 2, 4, ... 1024
# docs/design.md s.5 "Length": NLL_full must be within this many bits of the best NLL_k, or the model
# gets worse with more context (it does not generalise beyond its training crop)
LENGTH_TOLERANCE_BITS = 0.005


def reach(model) -> int | None:
    """How many tokens back the model can see at all (its declared reach, engine/models/base.py), or None
    when a recurrent state carries everything. For k beyond it, NLL_k equals the full-context NLL exactly
    and need not be computed."""
    return model.reach


def _pad_batch(tunes: list[np.ndarray]) -> np.ndarray:
    length = max(len(t) for t in tunes)
    batch = np.full((len(tunes), length), PAD, dtype=np.int64)
    for i, t in enumerate(tunes):
        batch[i, : len(t)] = t
    return batch


def _bits_from_logits(logits, targets):
    """bits of each target under its logits; logits [..., V], targets [...] (torch)."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    return (-logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1) / LN2).cpu().numpy()


def token_bits(model, tunes: list[np.ndarray], batch_size: int = 16) -> list[np.ndarray]:
    """Per tune, the bits of every token given its full usable context; NaN at position 0."""
    import torch

    device = model_device(model)
    order = sorted(range(len(tunes)), key=lambda i: len(tunes[i]))  # similar lengths share a batch
    out: list[np.ndarray | None] = [None] * len(tunes)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            # Right padding is harmless: the models are causal, padded positions are never scored.
            batch = torch.from_numpy(_pad_batch([tunes[i] for i in idx])).to(device)
            bits = _bits_from_logits(model(batch[:, :-1]), batch[:, 1:])
            for row, i in enumerate(idx):
                full = np.full(len(tunes[i]), np.nan)
                full[1:] = bits[row, : len(tunes[i]) - 1]
                out[i] = full
    return out  # type: ignore[return-value]


# --- NLL per bar ---------------------------------------------------------------------------------


def bits_per_bar(bits: np.ndarray, steps_per_bar: int) -> np.ndarray:
    """Mean bits per token of each bar of one tune (NaN for a bar with no scored token)."""
    n_bars = -(-len(bits) // steps_per_bar)
    padded = np.full(n_bars * steps_per_bar, np.nan)
    padded[: len(bits)] = bits
    rows = padded.reshape(n_bars, steps_per_bar)
    counts = np.sum(~np.isnan(rows), axis=1)
    sums = np.nansum(rows, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def nll_per_bar_matrix(bits_list: list[np.ndarray], steps_per_bar: list[int], max_bars: int) -> np.ndarray:
    """[tunes, max_bars] bits per token per bar, NaN where a tune has ended."""
    out = np.full((len(bits_list), max_bars), np.nan)
    for i, (bits, spb) in enumerate(zip(bits_list, steps_per_bar)):
        per_bar = bits_per_bar(bits, spb)[:max_bars]
        out[i, : len(per_bar)] = per_bar
    return out


def mean_bits(bits_list: list[np.ndarray]) -> float:
    """Bits per token over all scored tokens of all tunes (the validation-loss figure)."""
    flat = np.concatenate([b[~np.isnan(b)] for b in bits_list]) if bits_list else np.zeros(0)
    return float(flat.mean()) if flat.size else float("nan")


# --- effective memory (Khandelwal et al. 2018) ----------------------------------------------------


def sample_targets(lengths: list[int], min_position: int, n_targets: int, seed: int) -> list[tuple[int, int]]:
    """A fixed, seeded subset of (tune, position) pairs with position >= min_position."""
    pairs = [(i, t) for i, n in enumerate(lengths) for t in range(max(min_position, 1), n)]
    if len(pairs) <= n_targets:
        return pairs
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pairs), size=n_targets, replace=False)
    return sorted(pairs[j] for j in chosen)


def truncated_bits(model, tunes, targets, k: int, max_tokens: int = 65536) -> np.ndarray:
    """bits of each target token when the model sees only tokens[t-k .. t-1] (a fresh state/window).

    All targets with t >= k are batched as [N, k] windows through `forward`; targets with t < k have
    nothing to truncate and are returned as NaN (the caller uses their full-context value).
    """
    import torch

    device = model_device(model)
    out = np.full(len(targets), np.nan)
    usable = [j for j, (i, t) in enumerate(targets) if t >= k]
    rows = max(1, max_tokens // k)
    with torch.inference_mode():
        for start in range(0, len(usable), rows):
            chunk = usable[start : start + rows]
            windows = np.stack([tunes[targets[j][0]][targets[j][1] - k : targets[j][1]] for j in chunk])
            goal = np.array([tunes[targets[j][0]][targets[j][1]] for j in chunk])
            logits = model(torch.from_numpy(windows).to(device))[:, -1]
            out[chunk] = _bits_from_logits(logits, torch.from_numpy(goal).to(device))
    return out


def effective_memory(
    model,
    tunes: list[np.ndarray],
    bits_list: list[np.ndarray],
    steps_per_bar: list[int],
    ks=DEFAULT_KS,
    min_position: int = 256,
    n_targets: int = 192,
    tolerance: float = 1.01,
    seed: int = 0,
) -> dict:
    """The NLL_k curve and the smallest k with NLL_k <= tolerance x NLL_full, in steps and bars.

    With it the length check: `full_minus_best_bits` = NLL_full - min_k NLL_k (positive when some
    shorter context predicts better than everything), `best_k`, and `length_ok` = that gap is at most
    LENGTH_TOLERANCE_BITS.

    NLL_full is each target's full-context bits from `bits_list` (token_bits); a target with t <= k
    has nothing to cut, so its NLL_k is its full value. Bars = steps / the mean steps per bar of the
    sampled targets' tunes (the test split mixes meters).
    """
    targets = sample_targets([len(t) for t in tunes], min_position, n_targets, seed)
    if not targets:
        return {"ks": list(ks), "nll_k": [], "nll_full": float("nan"), "steps": None, "bars": None,
                "n_targets": 0, "min_position": min_position, "full_minus_best_bits": None, "best_k": None,
                "length_ok": None, "length_tolerance_bits": LENGTH_TOLERANCE_BITS}
    full = np.array([bits_list[i][t] for i, t in targets])
    nll_full = float(full.mean())
    model.eval()
    bound = reach(model)
    curve, per_target = [], []
    for k in ks:
        if bound is not None and k > bound:
            bits = full  # beyond the model's reach: the same inputs as the full context
        else:
            bits = truncated_bits(model, tunes, targets, k)
            bits = np.where(np.isnan(bits), full, bits)
        per_target.append(bits)
        curve.append(float(bits.mean()))
    steps = next((k for k, v in zip(ks, curve) if v <= tolerance * nll_full), None)
    mean_spb = float(np.mean([steps_per_bar[i] for i, _ in targets]))
    best = int(np.argmin(curve))
    gap = nll_full - curve[best]
    # The same targets scored twice: the interval of the paired difference says how much of the gap is
    # the sample of targets (the best k is picked on the same sample, so the gap leans optimistic).
    from engine.metrics.stats import bootstrap_interval

    _, gap_lo, gap_hi = bootstrap_interval(full - per_target[best], seed=seed)
    return {
        "ks": list(ks),
        "nll_k": curve,
        "nll_full": nll_full,
        "steps": steps,
        "bars": None if steps is None else steps / mean_spb,
        "n_targets": len(targets),
        "min_position": min_position,
        "tolerance": tolerance,
        "full_minus_best_bits": gap,
        "full_minus_best_lo": gap_lo,
        "full_minus_best_hi": gap_hi,
        "best_k": ks[best],
        "length_ok": bool(gap <= LENGTH_TOLERANCE_BITS),
        "length_tolerance_bits": LENGTH_TOLERANCE_BITS,
    }


# --- repeat gain ---------------------------------------------------------------------------------


def copyable_bars(note_array: np.ndarray, steps_per_bar: int, n_bars: int, threshold: float = 0.9,
                  min_distance: int = 4) -> np.ndarray:
    """bool [n_bars]: bar b has sim >= threshold to some bar at least `min_distance` bars earlier.

    sim is the untransposed Jaccard similarity of the bar note sets (engine.metrics.bars.bar_sets).
    """
    from engine.metrics.bars import bar_sets, transposed_similarity

    bars = bar_sets(note_array, steps_per_bar, n_bars)
    sim = transposed_similarity(bars, bars, max_shift=0)  # 0 when either bar is empty
    earlier = np.tril(np.ones((n_bars, n_bars), dtype=bool), k=-min_distance)  # j <= b - min_distance
    return ((sim >= threshold) & earlier).any(axis=1)


def repeat_gain(bits_list: list[np.ndarray], note_arrays: list[np.ndarray], steps_per_bar: list[int]) -> dict:
    """NLL(other tokens) - NLL(copyable tokens) in bits, pooled over tunes' scored tokens."""
    copy_bits, other_bits = [], []
    for bits, notes, spb in zip(bits_list, note_arrays, steps_per_bar):
        n_bars = -(-len(bits) // spb)
        mask = np.repeat(copyable_bars(notes, spb, n_bars), spb)[: len(bits)]
        scored = ~np.isnan(bits)
        copy_bits.append(bits[mask & scored])
        other_bits.append(bits[~mask & scored])
    copy = np.concatenate(copy_bits) if copy_bits else np.zeros(0)
    other = np.concatenate(other_bits) if other_bits else np.zeros(0)
    copy_mean = float(copy.mean()) if copy.size else float("nan")
    other_mean = float(other.mean()) if other.size else float("nan")
    return {
        "gain": other_mean - copy_mean,
        "copyable_bits": copy_mean,
        "other_bits": other_mean,
        "n_copyable": int(copy.size),
        "n_other": int(other.size),
    }
