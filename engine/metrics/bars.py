"""Bar note sets and the building blocks of the per-bar metrics of docs/design.md section 5.

The metrics themselves (TR, RR, GC, downbeat, IK, PC, empty) are rows of engine/metrics/table.py,
built from the functions here; distinct_bar_rate is the loop check of the revised protocol.

Notes are int arrays [n, 3] (onset step, pitch, duration in steps); S = steps per bar; bar b covers
steps [bS, (b+1)S) and holds the notes whose onset falls in it (a note belongs to the bar it starts in).

Conventions where the design leaves a choice (each is what the evaluation plots):
- GC of the continuation's bar 0 compares it with the primer's last bar (the bar just before it).
- Downbeat is 1 when a note starts at step 0 of the bar, else 0 (empty bars too): its mean is the rate.
- A bar is empty when no note starts in it (a note held over from the bar before does not fill it).
- IK of an empty bar is NaN (no notes to count); aggregate with nanmean. TR and RR of an empty bar are
  defined (TR = 0: sim is 0 with an empty set; RR compares all-zero onset vectors).
- PC(b) uses continuation bars max(0, b-3)..b only: bars 0-2 have a shorter window rather than one that
  reaches back into the primer. Histograms weight each note by its duration capped at one bar (as in
  N_b), so one held note cannot outweigh the whole window. PC is NaN when the window or the primer has
  no notes.
- With no primer bars (P = 0) TR and RR are NaN and so is GC of bar 0; with a silent primer the key is
  None, so IK is NaN, and PC is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.metrics.keys import best_key, in_key
from engine.metrics.piece import as_note_array

MAX_SHIFT = 11  # sim_T tries transpositions of -11..+11 semitones


@dataclass(frozen=True)
class BarSets:
    """The note sets N_b of n bars as dense arrays, so that set operations become array operations.

    A (bar, position) slot holds up to L notes in "layers" (L = 1 for a melody; more only for
    chords), each with its pitch and its duration capped at one bar.
    """

    steps_per_bar: int
    pitch: np.ndarray  # [n, S, L] int64
    duration: np.ndarray  # [n, S, L] int64, min(duration, S)
    valid: np.ndarray  # [n, S, L] bool: a note sits in this slot and layer
    size: np.ndarray  # [n] |N_b|

    @property
    def n_bars(self) -> int:
        return len(self.size)

    @property
    def onsets(self) -> np.ndarray:
        """[n, S] bool onset vectors o_b."""
        return self.valid.any(axis=2)


def bar_sets(notes, steps_per_bar: int, n_bars: int) -> BarSets:
    """N_b = {(onset - bS, pitch, min(duration, S))} for bars 0..n_bars-1 (notes outside are ignored)."""
    S = int(steps_per_bar)
    notes = as_note_array(notes)
    notes = notes[(notes[:, 0] >= 0) & (notes[:, 0] < n_bars * S)]
    bar, pos = np.divmod(notes[:, 0], S)
    # A set: identical (bar, position, pitch, duration) entries count once. unique also sorts them.
    rows = np.unique(np.stack([bar, pos, notes[:, 1], np.minimum(notes[:, 2], S)], axis=1), axis=0)
    slot = rows[:, 0] * S + rows[:, 1]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = slot[1:] != slot[:-1]
    index = np.arange(len(rows))
    layer = index - np.maximum.accumulate(np.where(first, index, 0))
    L = int(layer.max()) + 1 if len(rows) else 1
    pitch = np.zeros((n_bars, S, L), dtype=np.int64)
    duration = np.zeros((n_bars, S, L), dtype=np.int64)
    valid = np.zeros((n_bars, S, L), dtype=bool)
    pitch[rows[:, 0], rows[:, 1], layer] = rows[:, 2]
    duration[rows[:, 0], rows[:, 1], layer] = rows[:, 3]
    valid[rows[:, 0], rows[:, 1], layer] = True
    size = np.bincount(rows[:, 0], minlength=n_bars)
    return BarSets(S, pitch, duration, valid, size)


def transposed_similarity(a: BarSets, b: BarSets, max_shift: int = MAX_SHIFT) -> np.ndarray:
    """[na, nb] sim_T: Jaccard similarity of bar i of `a` and bar j of `b`, best of -11..+11 semitones.

    With max_shift = 0 it is the plain `sim` (no transposition), which repeat gain uses.

    Two notes can match under some transposition only when they share position and duration; the
    transposition is then their pitch difference. So |T_k(N_i) ∩ N_j| is the number of such note pairs
    whose difference is k (within a set, a note meets at most one partner per k), counted for every
    (i, j, k) at once with one bincount. Jaccard grows with the intersection for fixed set sizes, so
    the largest count gives sim_T.
    """
    na, nb = a.n_bars, b.n_bars
    n_shifts = 2 * max_shift + 1
    counts = np.zeros(na * nb * n_shifts, dtype=np.int64)
    for la in range(a.valid.shape[2]):
        for lb in range(b.valid.shape[2]):
            diff = b.pitch[None, :, :, lb] - a.pitch[:, None, :, la]  # [na, nb, S]
            match = (
                a.valid[:, None, :, la]
                & b.valid[None, :, :, lb]
                & (a.duration[:, None, :, la] == b.duration[None, :, :, lb])
                & (np.abs(diff) <= max_shift)
            )
            i, j, _ = np.nonzero(match)
            counts += np.bincount((i * nb + j) * n_shifts + diff[match] + max_shift, minlength=counts.size)
    inter = counts.reshape(na, nb, n_shifts).max(axis=2)
    union = a.size[:, None] + b.size[None, :] - inter
    both = (a.size[:, None] > 0) & (b.size[None, :] > 0)
    return np.where(both, inter / np.maximum(union, 1), 0.0)


def self_similarity(notes, steps_per_bar: int, n_bars: int) -> np.ndarray:
    """SSM[i, j] = sim_T(i, j) over bars 0..n_bars-1: symmetric, 1 on the diagonal of non-empty bars."""
    bars = bar_sets(notes, steps_per_bar, n_bars)
    return transposed_similarity(bars, bars)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[na, nb] Hamming distances between the rows of two boolean matrices."""
    return np.count_nonzero(a[:, None, :] != b[None, :, :], axis=2)


def pitch_class_histograms(notes, steps_per_bar: int, n_bars: int) -> np.ndarray:
    """[n_bars, 12] pitch-class histograms weighted by duration (capped at one bar), by onset bar."""
    S = int(steps_per_bar)
    notes = as_note_array(notes)
    notes = notes[(notes[:, 0] >= 0) & (notes[:, 0] < n_bars * S)]
    hist = np.zeros(n_bars * 12)
    np.add.at(hist, notes[:, 0] // S * 12 + notes[:, 1] % 12, np.minimum(notes[:, 2], S))
    return hist.reshape(n_bars, 12)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Base-2 Jensen-Shannon divergence between rows of p and q (unnormalised; NaN for an all-zero row)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = p / p.sum(axis=-1, keepdims=True)
        q = q / q.sum(axis=-1, keepdims=True)
        m = (p + q) / 2

        def kl(x):
            return np.where(x > 0, x * np.log2(x / m), 0.0).sum(axis=-1)

        out = (kl(p) + kl(q)) / 2
    bad = np.isnan(p).any(axis=-1) | np.isnan(q).any(axis=-1)
    return np.where(bad, np.nan, np.clip(out, 0.0, 1.0))


def in_key_rates(notes, steps_per_bar: int, n_bars: int, key: int | None) -> np.ndarray:
    """[n_bars] share of each bar's notes in the scale of `key`; NaN for an empty bar or no key."""
    S = int(steps_per_bar)
    notes = as_note_array(notes)
    notes = notes[(notes[:, 0] >= 0) & (notes[:, 0] < n_bars * S)]
    bar = notes[:, 0] // S
    total = np.bincount(bar, minlength=n_bars)
    inside = np.bincount(bar, weights=in_key(notes[:, 1], key), minlength=n_bars)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = inside / total
    if key is None:
        rate[:] = np.nan
    return rate


def infer_bars(notes, steps_per_bar: int) -> int:
    """Bars up to and including the one where the last note starts (0 without notes)."""
    notes = as_note_array(notes)
    return int(notes[:, 0].max()) // int(steps_per_bar) + 1 if len(notes) else 0


def primer_key(primer_notes, steps_per_bar: int, primer_bars: int | None = None) -> int | None:
    """Key number (0-23) of the primer: most primer notes in its scale, MusPy's tie-break; None if empty."""
    notes = as_note_array(primer_notes)
    if primer_bars is not None:
        notes = notes[(notes[:, 0] >= 0) & (notes[:, 0] < primer_bars * steps_per_bar)]
    return best_key(notes[:, 1])


def distinct_bar_rate(notes, steps_per_bar: int, n_bars: int) -> float:
    """Distinct non-empty bar note sets / non-empty bars (NaN without a non-empty bar).

    1 = no bar repeats exactly; 1/n = one bar looped n times. Identical sets give identical rows of
    the BarSets arrays (bar_sets orders the notes of a slot), so counting distinct rows counts sets.
    Exact equality, no transposition: a sequence moved up a step is new material here.
    """
    bars = bar_sets(notes, steps_per_bar, n_bars)
    filled = bars.size > 0
    if not filled.any():
        return float("nan")
    rows = np.concatenate([np.where(bars.valid, bars.pitch, -1), np.where(bars.valid, bars.duration, -1)], axis=2)
    return len(np.unique(rows[filled].reshape(int(filled.sum()), -1), axis=0)) / int(filled.sum())
