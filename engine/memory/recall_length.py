"""The length check in the generation regime (issue 23, item 4): does a model get worse past the length it was
trained on, when it reads a long piece from its start, as it does while composing?

Material: the test tunes played twice through (engine/memory/recall_plan.py's twice_through), teacher-forced
from their start. Per token two figures:
- warm: the full context, one forward over the whole twice-through tune (what the model composes with);
- cut: the context cut to the training crop. Each token sees between crop - crop / CUT_STRIDE_SHARE and
  crop - 1 earlier tokens: windows of `crop` tokens, started afresh every crop / CUT_STRIDE_SHARE steps, each
  scoring its last crop / CUT_STRIDE_SHARE tokens (the usual strided evaluation; a window per token would
  cost crop times more). Tokens within the first crop steps have nothing to cut: both figures agree there.
NLL per bar of both (bits per token, per tune, bootstrap over tunes), and over the tokens past the crop the
paired difference warm - cut per tune. A model is named worse when that difference's interval lies above 0
and its mean exceeds engine/memory/nll.py's LENGTH_TOLERANCE_BITS (`worse_past_crop`): more context made it
predict worse.
"""

from __future__ import annotations

import numpy as np

from engine.core.device import model_device
from engine.memory.nll import LENGTH_TOLERANCE_BITS, _bits_from_logits, bits_per_bar, token_bits

CUT_STRIDE_SHARE = 8  # a cut window is restarted every crop / 8 steps
BATCH_TOKENS = 1 << 16


def training_crop(model, config: dict) -> int | None:
    """The longest sequence the model was trained on (its config.json): the crop's window when it trained on
    crops, the cut length (max_len) when it trained on whole tunes."""
    window = int(getattr(model, "window", 0) or 0)
    training = config.get("training") or {}
    if training.get("sequences", "crops") == "tunes":  # runs saved before the field existed trained on crops
        return training.get("max_len")
    return training.get("window") or window or None


def cut_bits(model, tunes: list[np.ndarray], crop: int) -> list[np.ndarray]:
    """Per tune, each token's bits with the context cut to at most crop - 1 earlier tokens (NaN before crop)."""
    import torch

    stride = max(1, crop // CUT_STRIDE_SHARE)
    windows = []  # (tune, first scored position, window start)
    for i, tokens in enumerate(tunes):
        for first in range(crop, len(tokens), stride):
            windows.append((i, first, first + stride - crop))
    out = [np.full(len(t), np.nan) for t in tunes]
    device = model_device(model)
    rows = max(1, BATCH_TOKENS // crop)
    model.eval()
    with torch.inference_mode():
        for at in range(0, len(windows), rows):
            chunk = windows[at : at + rows]
            # every window is `crop` tokens long except where a tune ends: pad with its last token, unscored
            batch = np.stack([np.resize(tunes[i][start : start + crop], crop) if start + crop > len(tunes[i])
                              else tunes[i][start : start + crop] for i, _first, start in chunk])
            x = torch.from_numpy(batch).to(device)
            bits = _bits_from_logits(model(x[:, :-1]), x[:, 1:])  # bits[r, p - 1] is the bits of token p
            for r, (i, first, start) in enumerate(chunk):
                stop = min(first + stride, len(tunes[i]))
                out[i][first:stop] = bits[r, first - start - 1 : stop - start - 1]
    return out


def length_generation(model, materials, crop: int | None, bootstrap: int, seed: int, min_n: int,
                      max_bars: int) -> dict:
    """The report's `length_generation.<model>`: warm and cut NLL per bar, and past the crop their paired
    difference with its interval and verdict (`worse_past_crop`). `materials` are recall_plan.Material."""
    from engine.metrics.stats import per_bar_stats, scalar_stats

    tunes = [m.tokens for m in materials]
    warm = token_bits(model, tunes)
    if not crop:
        return {"training_crop_steps": None, "worse_past_crop": False}
    cut = cut_bits(model, tunes, crop)
    past = []
    for w, c in zip(warm, cut):
        past_crop = ~np.isnan(c)
        past.append(float(np.mean(w[past_crop] - c[past_crop])) if past_crop.any() else np.nan)
    for w, c in zip(warm, cut):
        c[np.isnan(c)] = w[np.isnan(c)]  # within the crop nothing is cut
    def per_bar(bits_list):
        matrix = np.full((len(materials), max_bars), np.nan)
        for row, (bits, m) in enumerate(zip(bits_list, materials)):
            values = bits_per_bar(bits, m.steps_per_bar)[:max_bars]
            matrix[row, : len(values)] = values
        return per_bar_stats(matrix, bootstrap, seed, min_n)

    difference = scalar_stats(past, bootstrap, seed, min_n)
    worse = bool(difference["lo"] is not None and difference["lo"] > 0
                 and difference["mean"] > LENGTH_TOLERANCE_BITS)
    return {"training_crop_steps": int(crop), "cut_stride_steps": max(1, crop // CUT_STRIDE_SHARE),
            "warm_per_bar": per_bar(warm), "cut_per_bar": per_bar(cut),
            "past_crop_warm_minus_cut_bits": difference, "tolerance_bits": LENGTH_TOLERANCE_BITS,
            "worse_past_crop": worse}
