"""Influence, "what did it remember" (docs/design.md section 5): for each note of a continuation, the
earlier notes it drew on, with weights >= 0 that sum to at most 1.

Which output predicts a note. Tokens are one per 16th step (engine/music/tokens.py) and the output at step t
predicts token t + 1, so note i (onset o_i) is predicted at step o_i - 1: p(note i) = p(x_{o_i} =
its pitch token | x_0 .. x_{o_i - 1}). Both methods look from that step back over steps 0 .. o_i - 1.

Which steps belong to a note. Note j owns steps o_j .. o_j + d_j - 1: its pitch token and the HOLDs
that sustain it (d_j as decode() reads it, up to the next pitch or REST token). A REST token and the
HOLDs after it (a rest), and the steps before the first note, belong to no note. The weight that falls
there is reported per note as `rest` and given to no note, so the note weights sum to 1 - rest <= 1: a
model that times its next note from the length of a rest shows that as rest weight, not as a note.

Methods:
- `gradient` (every model): g_t = || d log p(note i) / d e_t ||_2, e_t the input embedding of step t,
  normalised over t < o_i to sum to 1; note j's weight is the sum over its steps. The exact gradient
  (float32 autograd, no sampling); it says what the prediction is locally sensitive to, not what caused it.
  All targets of a continuation go through one batched forward/backward per chunk of rows: row n is the
  piece up to the chunk's last target and its output is log p of its own note; rows do not interact, so
  the gradient with respect to row n's embeddings is note n's gradient alone.
- `attention` (the attention RNN and the Transformer): the attention row of query step o_i - 1 (the step
  whose output predicts note i, as above), averaged over heads and layers; it sums to 1 over the keys in
  the window, and note j's weight is the sum over its steps. Raw weights, no rollout: a Transformer's
  upper layers attend to positions whose residual stream already mixes earlier ones.

Distances: note j lies (o_i - o_j) / S bars before note i (S = steps per bar). A note's influence
distance is its weighted mean over the notes it drew on, sum_j w_ij d_ij / sum_j w_ij (dividing by the
note weights, so that rest weight does not pull the distance towards 0); undefined when all weight is
on rests. The chance level beside it: the distance if the weight were spread evenly over all earlier
steps. The human reference: for the real continuation, how far back the nearest earlier repeat of each
note lies (repeat_distances), a different quantity from an attribution, computed for model output too.

Captum (PyTorch's attribution library) computes the gradient: LayerGradientXActivation on the input
embedding with multiply_by_inputs=False is exactly d log p / d e_t (checked bit for bit against plain
torch.autograd, at the same speed); the per-step norm, the note spans and the normalisation are ours.
Captum has nothing for attention weights: those come from the models' attention_weights().
"""

from __future__ import annotations

import numpy as np

from engine.core.errors import UserError
from engine.memory.gradient import denormals_flushed, differentiable

# The two ways to ask what a note drew on; ATTENTION (the attention weights) only where the model has them.
GRADIENT, ATTENTION = "gradient", "attention"
METHODS = (GRADIENT, ATTENTION)
ROWS_PER_BATCH = 16  # the gradient method's targets per forward and backward (copies of the piece at a time)
HISTOGRAM_MAX_BARS = 32  # the distance histogram's last bin holds everything this far back or further


# --- the sequence the model saw -----------------------------------------------------------------------


def continuation_tokens(primer, continuation, token_config) -> tuple[np.ndarray, int]:
    """(tokens of primer + continuation, primer steps): the sequence the model generated from.

    The primer is folded into the vocabulary as generate() does; the continuation's sampled tokens come
    from meta["tokens"] when generate() made it (they hold what decoding cannot restore, e.g. a REST
    after a REST), otherwise from encoding its notes.
    """
    from engine.generation.generate import fold_into_range
    from engine.music.tokens import encode

    primer_tokens = encode(fold_into_range(primer, token_config), token_config)
    sampled = continuation.meta.get("tokens")
    if sampled is None:
        sampled = encode(fold_into_range(continuation, token_config), token_config)
    return np.concatenate([primer_tokens, np.asarray(sampled, dtype=np.int64)]), len(primer_tokens)


def note_spans(tokens, token_config) -> tuple[np.ndarray, np.ndarray]:
    """(notes [n, 3] onset/pitch/duration as decode() reads the tokens, owner [T]: the note each step
    belongs to, -1 for rests and the steps before the first note)."""
    from engine.music.tokens import decode

    notes = decode(np.asarray(tokens), None, token_config).note_array()
    owner = np.full(len(tokens), -1, dtype=np.int64)
    for j, (onset, _pitch, duration) in enumerate(notes):
        owner[onset : onset + duration] = j
    return notes, owner


# --- the two methods: weights over steps --------------------------------------------------------------


def methods_for(model) -> tuple[str, ...]:
    return METHODS if model.has_attention else ("gradient",)


def check_method(method: str, model_key: str, model=None) -> None:
    """UserError for an unknown method, or `attention` for a model without attention weights."""
    if method not in METHODS:
        raise UserError(f"unknown influence method {method!r}: choose from {', '.join(METHODS)}")
    from engine.models import models_with_attention

    attending = models_with_attention()
    has = methods_for(model) if model is not None else (METHODS if model_key in attending else ("gradient",))
    if method not in has:
        raise UserError(f"the {model_key} model has no attention weights: its influence method is "
                        f"{' or '.join(has)} (attention is for {' and '.join(attending)})")


def _gradient_step_weights(model, tokens, onsets: np.ndarray, rows_per_batch: int) -> np.ndarray:
    """[n, L] gradient norms per target (row) and input step, L = the last onset."""
    import torch
    from captum.attr import LayerGradientXActivation

    device = next(model.parameters()).device
    x = torch.as_tensor(tokens, dtype=torch.long, device=device)

    def log_probs(batch, at):  # row n: log p(. | x_0 .. x_at[n]), the distribution its note came from
        return torch.log_softmax(model(batch)[torch.arange(len(at), device=device), at], dim=-1, dtype=torch.float64)

    # multiply_by_inputs=False: the gradient at the embedding layer's output itself, not gradient x input.
    attribution = LayerGradientXActivation(log_probs, model.embedding_tap, multiply_by_inputs=False)
    norms = np.zeros((len(onsets), int(onsets.max())), dtype=np.float64)
    with differentiable(device), denormals_flushed():
        # Onsets ascend, so each chunk runs only as far as its own last target.
        for start in range(0, len(onsets), rows_per_batch):
            chunk = onsets[start : start + rows_per_batch]
            rows, length = len(chunk), int(chunk.max())
            batch = x[:length].expand(rows, length).contiguous()
            targets = x[torch.as_tensor(chunk, device=device)].tolist()  # each row's note: its pitch token
            grad = attribution.attribute(batch, target=targets,
                                         additional_forward_args=(torch.as_tensor(chunk - 1, device=device),))
            norms[start : start + rows, :length] = grad.double().norm(dim=-1).cpu().numpy()
    return norms


def _attention_step_weights(model, tokens, onsets: np.ndarray) -> np.ndarray:
    """[n, L] attention of query step onset - 1 over steps, averaged over layers and heads."""
    import torch

    device = next(model.parameters()).device
    length = int(onsets.max())
    x = torch.as_tensor(tokens[:length], dtype=torch.long, device=device)[None]
    with torch.no_grad():
        weights = model.attention_weights(x).double().mean(dim=(0, 2))[0]  # [L, L]
    return weights[torch.as_tensor(onsets - 1, device=device)].cpu().numpy()


# --- influence of one continuation --------------------------------------------------------------------


def influence(model, tokens, primer_steps: int, token_config, method: str = "gradient",
              model_key: str | None = None, rows_per_batch: int = ROWS_PER_BATCH) -> dict:
    """What each continuation note drew on, for `tokens` = primer + continuation (1-D int array) of
    which the first `primer_steps` are the primer.

    Returns {"model", "method", "notes": [[onset, pitch, duration], ...] (primer then continuation),
    "primer_notes", "primer_steps", "influence": [{"note": i, "sources": [[j, weight], ...],
    "rest": weight on rests}, ...]} with one entry per continuation note (onset >= primer_steps),
    sources in ascending j < i with weight > 0, weights summing to 1 - rest <= 1.
    """
    key = model_key or getattr(getattr(model, "config", None), "key", None) or type(model).__name__
    check_method(method, key, model)
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.ndim != 1 or not 1 <= primer_steps <= len(tokens):
        raise UserError(f"influence needs a primer of 1..{len(tokens)} steps, not {primer_steps}")
    notes, owner = note_spans(tokens, token_config)
    first = int(np.searchsorted(notes[:, 0], primer_steps)) if len(notes) else 0
    result = {"model": key, "method": method, "notes": notes.tolist(), "primer_notes": first,
              "primer_steps": int(primer_steps), "influence": []}
    if first == len(notes):
        return result
    onsets = notes[first:, 0]
    was_training = model.training
    model.eval()
    try:
        if method == "gradient":
            step_w = _gradient_step_weights(model, tokens, onsets, rows_per_batch)
        else:
            step_w = _attention_step_weights(model, tokens, onsets)
    finally:
        model.train(was_training)
    length = step_w.shape[1]
    step_w[np.arange(length)[None, :] >= onsets[:, None]] = 0.0  # only steps before the note's onset
    totals = step_w.sum(axis=1, keepdims=True)
    step_w = np.divide(step_w, totals, out=np.zeros_like(step_w), where=totals > 0)
    steps = np.flatnonzero(owner[:length] >= 0)
    belongs = np.zeros((length, len(notes)))
    belongs[steps, owner[steps]] = 1.0
    note_w = step_w @ belongs  # [targets, notes]: each note's steps summed
    for n, i in enumerate(range(first, len(notes))):
        sources = [[int(j), float(note_w[n, j])] for j in np.flatnonzero(note_w[n, :i] > 0)]
        rest = 1.0 - note_w[n, :i].sum() if totals[n, 0] > 0 else 0.0
        result["influence"].append({"note": i, "sources": sources, "rest": max(0.0, float(rest))})
    return result


def melody_influence(model, primer, continuation, token_config, method: str = "gradient",
                     model_key: str | None = None) -> dict:
    """influence() of a continuation generate() made from `primer` (Melody objects, as the app holds
    them); adds "steps_per_bar" and the summary's "mean_distance_bars"."""
    tokens, primer_steps = continuation_tokens(primer, continuation, token_config)
    result = influence(model, tokens, primer_steps, token_config, method, model_key)
    spb = primer.steps_per_bar
    result["steps_per_bar"] = spb
    result["mean_distance_bars"] = influence_summary(result, spb)["mean_distance_bars"]
    return result


# --- distances ------------------------------------------------------------------------------------------


def influence_distances(result: dict, steps_per_bar: int) -> np.ndarray:
    """Per continuation note, the weighted mean distance in bars back to the notes it drew on (NaN where
    all its weight is on rests)."""
    onsets = np.array([n[0] for n in result["notes"]], dtype=np.float64)
    out = np.full(len(result["influence"]), np.nan)
    for k, entry in enumerate(result["influence"]):
        if entry["sources"]:
            j, w = np.array(entry["sources"]).T
            out[k] = float(w @ (onsets[entry["note"]] - onsets[j.astype(int)])) / w.sum() / steps_per_bar
    return out


def uniform_distances(result: dict, steps_per_bar: int) -> np.ndarray:
    """The chance level: per continuation note, the distance if its weight were spread evenly over all
    earlier steps (each earlier note weighted by its length; rests count as weight on no note)."""
    notes = np.array(result["notes"], dtype=np.float64).reshape(-1, 3)
    out = np.full(len(result["influence"]), np.nan)
    for k, entry in enumerate(result["influence"]):
        i = entry["note"]
        lengths = notes[:i, 2]
        if lengths.sum() > 0:
            out[k] = float(lengths @ (notes[i, 0] - notes[:i, 0])) / lengths.sum() / steps_per_bar
    return out


def _mean_or_none(values: np.ndarray):
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def influence_summary(result: dict, steps_per_bar: int) -> dict:
    """{"mean_distance_bars", "uniform_distance_bars" (chance level), "n_notes" (notes with a
    distance), "distances": per continuation note (None where undefined)}."""
    d = influence_distances(result, steps_per_bar)
    return {
        "mean_distance_bars": _mean_or_none(d),
        "uniform_distance_bars": _mean_or_none(uniform_distances(result, steps_per_bar)),
        "n_notes": int(np.isfinite(d).sum()),
        "distances": [None if not np.isfinite(v) else float(v) for v in d],
    }


def repeat_distances(notes, first: int, steps_per_bar: int) -> np.ndarray:
    """Human reference: for each note i >= first, how many bars back the nearest earlier repeat of it
    lies (NaN where none). Note i repeats note j when j lies a whole number k >= 1 of bars earlier with
    the same pitch and duration, and the notes before each (i - 1, j - 1) match too, k bars apart: a
    repeated two-note figure at the same place in the bar, not a pitch that merely recurs."""
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
    out = np.full(max(0, len(notes) - first), np.nan)
    for i in range(max(first, 1), len(notes)):
        for j in range(i - 1, 0, -1):
            shift = notes[i, 0] - notes[j, 0]
            if shift % steps_per_bar or shift == 0:
                continue
            if (notes[i, 1:] == notes[j, 1:]).all() and (notes[i - 1, 1:] == notes[j - 1, 1:]).all() \
                    and notes[i - 1, 0] - notes[j - 1, 0] == shift:
                out[i - first] = shift / steps_per_bar
                break
    return out


def distance_distribution(distances: list, max_bars: int = HISTOGRAM_MAX_BARS) -> dict:
    """Pooled per-note distances of many continuations -> {"n_continuations", "n_notes", "mean",
    "median", "q10", "q90", "per_continuation_mean" (for a bootstrap over continuations),
    "histogram": {"bars": bin starts 0..max_bars, "share": share of notes per 1-bar bin; the last bin
    holds everything >= max_bars}}. NaN distances are left out and counted in "undefined"."""
    per = [np.asarray(d, dtype=np.float64) for d in distances]
    pooled = np.concatenate(per) if per else np.zeros(0)
    finite = pooled[np.isfinite(pooled)]
    counts = np.bincount(np.minimum(np.floor(finite), max_bars).astype(int), minlength=max_bars + 1)
    quantile = (lambda q: float(np.quantile(finite, q))) if len(finite) else (lambda q: None)
    return {
        "n_continuations": len(per),
        "n_notes": len(finite),
        "undefined": int(len(pooled) - len(finite)),
        "mean": _mean_or_none(finite),
        "median": quantile(0.5),
        "q10": quantile(0.1),
        "q90": quantile(0.9),
        "per_continuation_mean": [_mean_or_none(d) for d in per],
        "histogram": {"bars": list(range(max_bars + 1)),
                      "share": (counts / len(finite)).tolist() if len(finite) else [0.0] * (max_bars + 1)},
    }


def influence_distribution(model, cases, token_config, method: str = "gradient", model_key: str | None = None,
                           bars: int | None = 16, progress=None) -> dict:
    """The distribution of influence distance over many continuations (e.g. the evaluation's).

    `cases`: (tokens primer + continuation, primer_steps, steps_per_bar) per continuation; only the
    first `bars` bars of each continuation are attributed (None = all; cost grows with the square of
    the length). Returns distance_distribution() of the model's distances, plus "method", "uniform" (the
    chance level, same shape), "repeat" (repeat_distribution() of the model's own notes, to set
    beside the human one), and per continuation "previous_note" (mean distance to the note just before)
    and "share_on_primer" (mean share of weight on primer notes; influence_references.py).
    `progress(done, total)` after each continuation.
    """
    from engine.memory.influence_references import per_continuation_means, previous_note_distances, primer_shares

    cases = list(cases)
    found, chance, repeats, previous, on_primer = [], [], [], [], []
    for n, (tokens, primer_steps, spb) in enumerate(cases):
        tokens = np.asarray(tokens)
        if bars is not None:
            tokens = tokens[: primer_steps + bars * spb]
        result = influence(model, tokens, primer_steps, token_config, method, model_key)
        found.append(influence_distances(result, spb))
        chance.append(uniform_distances(result, spb))
        repeats.append(repeat_distances(result["notes"], result["primer_notes"], spb))
        previous.append(previous_note_distances(result, spb))
        on_primer.append(primer_shares(result))
        if progress is not None:
            progress(n + 1, len(cases))
    return {**distance_distribution(found), "method": method, "uniform": distance_distribution(chance),
            "repeat": _with_no_repeat_share(distance_distribution(repeats)),
            # the references of issue 24: per continuation, the previous-note distance and the share on the primer
            "previous_note": per_continuation_means(previous), "share_on_primer": per_continuation_means(on_primer)}


def repeat_distribution(cases, bars: int | None = 16) -> dict:
    """The human reference over many tunes: `cases` = (notes [n, 3] primer + real continuation, primer
    steps, steps per bar); notes of the first `bars` continuation bars. distance_distribution() shape,
    plus "no_repeat_share" (notes with no earlier repeat: left out of the distances)."""
    per = []
    for notes, primer_steps, spb in cases:
        notes = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
        if bars is not None:
            notes = notes[notes[:, 0] < primer_steps + bars * spb]
        per.append(repeat_distances(notes, int(np.searchsorted(notes[:, 0], primer_steps)), spb))
    return _with_no_repeat_share(distance_distribution(per))


def _with_no_repeat_share(out: dict) -> dict:
    total = out["n_notes"] + out["undefined"]
    return {**out, "no_repeat_share": out["undefined"] / total if total else None}
