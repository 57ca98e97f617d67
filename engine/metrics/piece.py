"""Whole-piece metrics that share a name with MusPy 0.5's, computing the same value, quirks included.

Input is a note array [n, 3] (onset step, pitch, duration in steps) on the 16th grid, which is a MusPy
`Music` with one track at resolution 4 (time steps per quarter note). Published figures that used MusPy
compare with these because each function follows MusPy's code, not just its documentation:

- the length of a piece is the end of its last note (a trailing rest does not count);
- `groove_consistency` and `empty_beat_rate` count `length // unit + 1` measures or beats, so a piece
  ending exactly on a bar line gets one extra, empty measure (and beat);
- `empty_beat_rate` marks every beat from the note's start beat to its end beat *inclusive*, so a note
  ending on a beat line also fills the following beat;
- pitch-class entropy and scale consistency count notes, not durations; all return NaN where MusPy does
  (no notes, or fewer than two measures for groove consistency).
"""

from __future__ import annotations

import math

import numpy as np

from engine.metrics.keys import scale_rates

MUSPY_RESOLUTION = 4  # time steps per quarter note: our 16th-note grid


def as_note_array(notes) -> np.ndarray:
    """Any [n, 3] sequence of (onset, pitch, duration) as an int64 array (empty -> shape [0, 3])."""
    return np.asarray(notes, dtype=np.int64).reshape(-1, 3)


def _length(notes: np.ndarray) -> int:
    """MusPy's track end time: the latest note end, 0 without notes."""
    return int((notes[:, 0] + notes[:, 2]).max()) if len(notes) else 0


def pitch_class_entropy(notes) -> float:
    """Shannon entropy (bits) of the note-count pitch-class histogram; NaN without notes."""
    notes = as_note_array(notes)
    if len(notes) == 0:
        return math.nan
    prob = np.bincount(notes[:, 1] % 12, minlength=12) / len(notes)
    with np.errstate(divide="ignore", invalid="ignore"):
        # nansum drops the 0 * log 0 terms, as MusPy; + 0.0 turns its -0.0 for a single pitch class into 0.0
        return float(-np.nansum(prob * np.log2(prob))) + 0.0


def scale_consistency(notes) -> float:
    """Largest share of notes in one of the 24 major/minor scales; NaN without notes."""
    return float(np.max(scale_rates(as_note_array(notes)[:, 1])))


def groove_consistency(notes, measure_resolution: int) -> float:
    """1 - mean Hamming distance between the onset vectors of neighbouring measures (MusPy's rule)."""
    notes = as_note_array(notes)
    if measure_resolution < 1:
        raise ValueError("Measure resolution must be a positive integer.")
    n_measures = _length(notes) // measure_resolution + 1
    if n_measures < 2:
        return math.nan
    patterns = np.zeros((n_measures, measure_resolution), dtype=bool)
    measure, position = np.divmod(notes[:, 0], measure_resolution)
    patterns[measure, position] = True
    distance = np.count_nonzero(patterns[:-1] != patterns[1:])
    return float(1 - distance / (measure_resolution * (n_measures - 1)))


def empty_beat_rate(notes, resolution: int = MUSPY_RESOLUTION) -> float:
    """Share of beats (quarter notes) where no note sounds, MusPy's way; NaN for a zero-length piece."""
    notes = as_note_array(notes)
    length = _length(notes)
    if length < 1:
        return math.nan
    n_beats = length // resolution + 1
    # Coverage of the beat ranges [start, end] (inclusive) by a difference array: +1 at start, -1 after end.
    delta = np.zeros(n_beats + 1, dtype=np.int64)
    np.add.at(delta, notes[:, 0] // resolution, 1)
    np.add.at(delta, (notes[:, 0] + notes[:, 2]) // resolution + 1, -1)
    filled = np.count_nonzero(np.cumsum(delta[:-1]) > 0)
    return float(1 - filled / n_beats)


def piece_metrics(notes, steps_per_bar: int) -> dict[str, float]:
    """The four MusPy-named whole-piece metrics of docs/design.md section 5."""
    return {
        "pitch_class_entropy": pitch_class_entropy(notes),
        "scale_consistency": scale_consistency(notes),
        "groove_consistency": groove_consistency(notes, steps_per_bar),
        "empty_beat_rate": empty_beat_rate(notes),
    }
