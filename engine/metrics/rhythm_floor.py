"""The rhythm-matched floor's partner (docs/design.md section 5, "Controls of the sampled per-bar measures").

A model that keeps the style of a tune's rhythm scores above a floor built from a random same-meter tune
even when it remembers nothing of the theme. So each primer's partner is the same-meter test tune whose
primer has the closest onset pattern: the mean over the P primer bars of the Jaccard index of the two
bars' onset sets (two empty bars agree fully; one empty bar against a filled one scores 0). Ties go to
a seeded pick among the best, so that a report reproduces exactly.
"""

from __future__ import annotations

import numpy as np

from engine.metrics.bars import bar_sets


def onset_sets(notes, steps_per_bar: int, bars: int) -> np.ndarray:
    """[bars, S] bool: where a note starts in each of the first `bars` bars."""
    return bar_sets(notes, steps_per_bar, bars).onsets


def onset_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over bars of the Jaccard index of two [bars, S] onset patterns (1 where both bars are empty)."""
    inter = np.count_nonzero(a & b, axis=1)
    union = np.count_nonzero(a | b, axis=1)
    return float(np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean())


def rhythm_matched_partner(primer_tune, test: list, primer_bars: int, seed: int, index: int):
    """The same-meter test tune (not the primer's own, with notes) whose first `primer_bars` bars have the
    onset pattern closest to the primer's; ties broken by a seeded pick; None when there is no candidate."""
    same = sorted((m for m in test if m.meter == primer_tune.meter and m.tune_id != primer_tune.tune_id and m.notes),
                  key=lambda m: m.tune_id)
    if not same:
        return None
    S = primer_tune.steps_per_bar
    own = onset_sets(primer_tune.note_array(), S, primer_bars)
    scores = np.array([onset_similarity(own, onset_sets(m.note_array(), S, primer_bars)) for m in same])
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    pick = best[int(np.random.default_rng([seed, 17, index]).integers(len(best)))]
    return same[pick]
