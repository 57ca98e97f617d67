"""Phase-robust theme recall TR_phase (docs/design.md section 5, "Controls of the sampled per-bar measures").

TR compares bars on the bar grid, so a continuation that restates the theme one beat late scores as
forgetting. TR_phase(b) is the best TR of the S-step window that starts k whole beats after bar b's
start, k = -(beats - 1) .. beats - 1 (k = 0 is bar b itself, so TR_phase >= TR). Only windows that lie
inside the continuation count: a window reaching back into the primer would compare the primer with
itself.

Beats of a meter: compound meters (numerator 6, 9, 12 ... over 8 or 16) count dotted beats of three
units; every other meter counts its numerator's units (4/4: 4 beats of 4 steps; 6/8: 2 beats of 6 steps;
2/2: 2 beats of 8 steps; 3/4: 3 beats of 4 steps).
"""

from __future__ import annotations

import numpy as np

from engine.metrics.bars import BarSets, bar_sets, transposed_similarity
from engine.metrics.piece import as_note_array


def beat_steps(numerator: int, denominator: int) -> int:
    """Steps (16ths) in one beat of the meter."""
    unit = 16 // int(denominator) if 16 % int(denominator) == 0 else 1
    if numerator % 3 == 0 and numerator > 3 and denominator >= 8:
        return 3 * unit
    return max(1, unit)


def phase_theme_recall(primer: BarSets, notes, steps_per_bar: int, n_bars: int, beat: int) -> np.ndarray:
    """[n_bars] TR_phase of a continuation (notes from its bar 0) against primer bar sets; NaN without a
    primer bar."""
    S = int(steps_per_bar)
    if primer.n_bars <= 0:
        return np.full(n_bars, np.nan)
    notes = as_note_array(notes)
    beats = max(1, S // max(1, int(beat)))
    best = np.full(n_bars, -np.inf)
    bars = np.arange(n_bars)
    for k in range(-(beats - 1), beats):
        shift = k * beat
        moved = notes.copy()
        moved[:, 0] -= shift  # the window starting `shift` steps after bar b is bar b of the moved notes
        tr = transposed_similarity(bar_sets(moved, S, n_bars), primer).max(axis=1)
        inside = (bars * S + shift >= 0) & ((bars + 1) * S + shift <= n_bars * S)
        best = np.where(inside, np.maximum(best, tr), best)
    return best.astype(float)
