"""The 24 major and natural-minor scales, and the key a set of notes sits in (MusPy's rule).

Candidate order is MusPy 0.5's `scale_consistency` loop: C..B major, then C..B minor, and a later
candidate replaces the best only when its share is strictly higher. So the index of a candidate is
also its pretty_midi key number (0-11 major, 12-23 minor; see engine.music.melody.key_name).

A natural-minor scale holds the same pitch classes as its relative major (A minor = C major), so the
tie-break always names the major key; for in-key rates only the scale's pitch classes matter.
"""

from __future__ import annotations

import numpy as np

from engine.music.scales import SCALES


def scale_rates(pitches) -> np.ndarray:
    """Share of the given notes (one pitch per note) in each of the 24 scales; NaNs when there are none."""
    pitches = np.asarray(pitches, dtype=np.int64).reshape(-1)
    if pitches.size == 0:
        return np.full(len(SCALES), np.nan)
    counts = np.bincount(pitches % 12, minlength=12)
    return SCALES.astype(np.int64) @ counts / pitches.size


def best_key(pitches) -> int | None:
    """Key number of the scale holding the most notes (first of equals, as MusPy), None without notes."""
    rates = scale_rates(pitches)
    if np.isnan(rates[0]):
        return None
    return int(np.argmax(rates))  # argmax returns the first maximum: MusPy's strict '>' tie-break


def in_key(pitches, key: int | None) -> np.ndarray:
    """Boolean per pitch: is it in the scale of `key` (all False when key is None)."""
    pitches = np.asarray(pitches, dtype=np.int64)
    if key is None:
        return np.zeros(pitches.shape, dtype=bool)
    return SCALES[key][pitches % 12]
