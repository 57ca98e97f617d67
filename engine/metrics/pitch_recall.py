"""Pitch-only recall PTR (docs/design.md section 5, "Controls of the sampled per-bar measures").

PTR(b) = max over primer bars p and transpositions k = -11..+11 of 1 - ED(pitches of b + k, pitches of p)
/ max(len), where a bar's pitches are its notes' pitches in onset order (ties by pitch) and ED is the
Levenshtein edit distance (insert, delete, substitute: cost 1 each). Onsets and durations are ignored,
so beside rhythm recall (RR, onsets only) it tells which of pitch and rhythm a continuation keeps.
0 when either bar is empty, as sim.

Exact and fast enough for every continuation of a report: the number of pitches two sequences share
as multisets, M_k, bounds the similarity from above (an alignment matches at most M_k pairs, so ED >=
max(len) - M_k). The edit distance is computed first for each bar's best bound, and then only for the
(primer bar, transposition) pairs whose bound beats what was found; the rest cannot win.
"""

from __future__ import annotations

import numpy as np

from engine.metrics.bars import MAX_SHIFT
from engine.metrics.piece import as_note_array


def bar_pitches(notes, steps_per_bar: int, n_bars: int) -> tuple[np.ndarray, np.ndarray]:
    """([n_bars, L] pitches in onset order padded with -1000, [n_bars] lengths) of bars 0..n_bars-1."""
    S = int(steps_per_bar)
    notes = as_note_array(notes)
    notes = notes[(notes[:, 0] >= 0) & (notes[:, 0] < n_bars * S)]
    notes = notes[np.lexsort((notes[:, 1], notes[:, 0]))]
    bar = notes[:, 0] // S
    lengths = np.bincount(bar, minlength=n_bars)
    L = max(1, int(lengths.max()) if len(lengths) else 1)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    out = np.full((n_bars, L), -1000, dtype=np.int64)
    out[bar, np.arange(len(notes)) - starts[bar]] = notes[:, 1]
    return out, lengths


def edit_distances(a: np.ndarray, la: np.ndarray, b: np.ndarray, lb: np.ndarray) -> np.ndarray:
    """[N] Levenshtein distances between a[n, :la[n]] and b[n, :lb[n]] (padded rows), all at once.

    Row by row of the DP table; within a row the insertions form a running minimum:
    D[i, j] = j + min over j' <= j of (T[j'] - j'), T = best of deletion and substitution.
    """
    N, La = a.shape
    Lb = b.shape[1]
    cols = np.arange(Lb + 1)
    D = np.broadcast_to(cols, (N, Lb + 1)).copy()
    out = np.zeros(N, dtype=np.int64)
    out[la == 0] = lb[la == 0]
    for i in range(1, La + 1):
        sub = D[:, :-1] + (a[:, i - 1, None] != b)
        T = np.empty_like(D)
        T[:, 0] = i
        T[:, 1:] = np.minimum(D[:, 1:] + 1, sub)
        D = cols + np.minimum.accumulate(T - cols, axis=1)
        done = la == i
        out[done] = D[done, lb[done]]
    return out


def _shared_counts(a: np.ndarray, la: np.ndarray, b: np.ndarray, lb: np.ndarray, max_shift: int) -> np.ndarray:
    """[na, nb, 2 max_shift + 1] size of the multiset intersection of bar i's pitches + k and bar j's.

    Counted per pitch class of the difference as min of the two multiplicities, via histograms over
    pitch: for each k, sum over pitches of min(count_a[pitch - k], count_b[pitch])."""
    lo = min(int(a[a > -1000].min(initial=0)), int(b[b > -1000].min(initial=0))) - max_shift
    hi = max(int(a.max(initial=0)), int(b.max(initial=0))) + max_shift + 1
    width = hi - lo
    ha = np.zeros((len(a), width), dtype=np.int64)
    hb = np.zeros((len(b), width), dtype=np.int64)
    ra, ca = np.nonzero(a > -1000)
    np.add.at(ha, (ra, a[ra, ca] - lo), 1)
    rb, cb = np.nonzero(b > -1000)
    np.add.at(hb, (rb, b[rb, cb] - lo), 1)
    out = np.zeros((len(a), len(b), 2 * max_shift + 1), dtype=np.int64)
    for s, k in enumerate(range(-max_shift, max_shift + 1)):
        shifted = np.roll(ha, k, axis=1)  # pitches + k; the margins of max_shift keep the roll from wrapping
        out[:, :, s] = np.minimum(shifted[:, None, :], hb[None, :, :]).sum(axis=2)
    return out


def pitch_recall(primer_notes, notes, steps_per_bar: int, n_bars: int, primer_bars: int,
                 max_shift: int = MAX_SHIFT) -> np.ndarray:
    """[n_bars] PTR of a continuation's bars against the primer's (NaN without primer bars)."""
    if primer_bars <= 0:
        return np.full(n_bars, np.nan)
    a, la = bar_pitches(notes, steps_per_bar, n_bars)
    b, lb = bar_pitches(primer_notes, steps_per_bar, primer_bars)
    longest = np.maximum(la[:, None], lb[None, :])
    both = (la[:, None] > 0) & (lb[None, :] > 0)
    shared = _shared_counts(a, la, b, lb, max_shift)
    bound = np.where(both[:, :, None], shared / np.maximum(longest, 1)[:, :, None], 0.0)  # [na, nb, K]
    flat = bound.reshape(n_bars, -1)
    found = np.zeros(n_bars)

    def run(rows, picks):
        p, s = np.divmod(picks, 2 * max_shift + 1)
        k = s - max_shift
        shifted = np.where(a[rows] > -1000, a[rows] + k[:, None], -1000)
        d = edit_distances(shifted, la[rows], b[p], lb[p])
        return 1 - d / np.maximum(longest[rows, p], 1)

    rows = np.flatnonzero(flat.max(axis=1) > 0)
    if len(rows):
        first = flat[rows].argmax(axis=1)
        found[rows] = run(rows, first)
        rows2, picks = np.nonzero(flat > found[:, None] + 1e-12)
        if len(rows2):
            sims = run(rows2, picks)
            np.maximum.at(found, rows2, sims)
    return found
