"""The influence distance's two reference lines and the share on the primer (issue 24 item 6; docs/design.md
section 5, "Controls of the sampled per-bar measures").

The uniform spread (every earlier step weighed the same, engine/memory/influence.uniform_distances) is the
long extreme: no model spreads its weight evenly over the whole past, so a model far below it is not thereby
shown to forget. The previous-note reference is the short extreme: all weight on the note just before. A
model's mean distance is read between the two. `share_on_primer`: of each note's weight on notes (rests
left out), the share that falls on primer notes.
"""

from __future__ import annotations

import numpy as np


def previous_note_distances(result: dict, steps_per_bar: int) -> np.ndarray:
    """Per continuation note of an influence() result, the distance in bars to the note just before it
    (NaN for a note with none)."""
    onsets = np.array([n[0] for n in result["notes"]], dtype=np.float64)
    out = np.full(len(result["influence"]), np.nan)
    for k, entry in enumerate(result["influence"]):
        i = entry["note"]
        if i > 0:
            out[k] = (onsets[i] - onsets[i - 1]) / steps_per_bar
    return out


def primer_shares(result: dict) -> np.ndarray:
    """Per continuation note, the share of its note weight on primer notes (NaN where all weight is on rests)."""
    first = int(result["primer_notes"])
    out = np.full(len(result["influence"]), np.nan)
    for k, entry in enumerate(result["influence"]):
        if entry["sources"]:
            j, w = np.array(entry["sources"], dtype=np.float64).T
            if w.sum() > 0:
                out[k] = float(w[j < first].sum() / w.sum())
    return out


def real_note_previous_distances(notes: np.ndarray, primer_steps: int, bars: int, steps_per_bar: int) -> np.ndarray:
    """The previous-note reference for a real continuation (notes of primer + continuation, first `bars`
    continuation bars): per continuation note, the distance in bars to the note before it."""
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
    notes = notes[notes[:, 0] < primer_steps + bars * steps_per_bar]
    first = max(1, int(np.searchsorted(notes[:, 0], primer_steps)))
    return (notes[first:, 0] - notes[first - 1:-1, 0]) / steps_per_bar if len(notes) > first else np.zeros(0)


def per_continuation_means(values: list[np.ndarray]) -> list[float]:
    """Each continuation's mean (NaN where it has no finite value): one unit of a bootstrap over continuations."""
    out = []
    for v in values:
        v = np.asarray(v, dtype=np.float64)
        v = v[np.isfinite(v)]
        out.append(float(v.mean()) if len(v) else float("nan"))
    return out
