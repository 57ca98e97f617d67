"""Score one continuation for the evaluation protocol (docs/design.md section 5, revised).

Per bar: every PER_BAR metric against the continuation's own primer; with `matched=True` also the
model-matched floor, TR of the same continuation against the primer bars of the primer's partner
tune (another test tune of the same meter), and the excess TR - floor of the same bars. Per
continuation: the distinct-bar rate. Everything is NaN past the continuation's end, so that a
tune's real continuation that stops at bar 20 counts towards n only up to bar 20.
"""

from __future__ import annotations

import numpy as np

from engine.metrics.bars import bar_sets, distinct_bar_rate, transposed_similarity
from engine.metrics.piece import as_note_array
from engine.metrics.table import PER_BAR, continuation_metrics

MATCHED = ("TR_floor", "TR_excess")


def matched_floor(partner_primer_notes, notes, steps_per_bar: int, n_bars: int, primer_bars: int) -> np.ndarray:
    """[n_bars] TR of the continuation's bars against the partner's primer bars (the chance level)."""
    partner = bar_sets(partner_primer_notes, steps_per_bar, primer_bars)
    return transposed_similarity(bar_sets(notes, steps_per_bar, n_bars), partner).max(axis=1).astype(float)


def score_continuation(
    primer_notes,
    notes,
    steps_per_bar: int,
    bars: int,
    primer_bars: int,
    length: int | None = None,
    partner_primer_notes=None,
    matched: bool = False,
) -> tuple[dict[str, np.ndarray], float]:
    """({series: float [bars]}, distinct-bar rate) of one continuation of `length` bars (default `bars`).

    `notes` start at the continuation's bar 0. With `matched`, TR_floor and TR_excess are added
    (NaN where there is no partner tune).
    """
    n = bars if length is None else max(0, min(bars, int(length)))
    notes = as_note_array(notes)
    out: dict[str, np.ndarray] = {}
    values = continuation_metrics(primer_notes, notes, steps_per_bar, n, primer_bars) if n else {}
    for key in PER_BAR:
        out[key] = np.full(bars, np.nan)
        if n:
            out[key][:n] = values[key]
    if matched:
        out["TR_floor"] = np.full(bars, np.nan)
        if n and partner_primer_notes is not None and primer_bars > 0:
            out["TR_floor"][:n] = matched_floor(partner_primer_notes, notes, steps_per_bar, n, primer_bars)
        out["TR_excess"] = out["TR"] - out["TR_floor"]
    distinct = distinct_bar_rate(notes, steps_per_bar, n) if n else float("nan")
    return out, distinct
