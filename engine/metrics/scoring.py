"""Score one continuation for the evaluation protocol (docs/design.md section 5, revised).

Per bar: every PER_BAR metric against the continuation's own primer; with `matched=True` also the
controls of engine/metrics/theme_controls.py: pitch-only and phase-robust theme recall, and for TR and
both companions the floor (the same continuation against the primer bars of the primer's rhythm-matched
partner) and the excess over it; TR's random-partner floor beside. Per continuation: the
distinct-bar rate. Everything is NaN past the continuation's end, so that a tune's real continuation
that stops at bar 20 counts towards n only up to bar 20.
"""

from __future__ import annotations

import numpy as np

from engine.metrics.bars import distinct_bar_rate
from engine.metrics.piece import as_note_array
from engine.metrics.table import PER_BAR, continuation_metrics
from engine.metrics.theme_controls import CONTROL_SERIES, control_series

MATCHED = CONTROL_SERIES  # TR_floor and TR_excess (over the rhythm-matched partner) among them


def score_continuation(
    primer_notes,
    notes,
    steps_per_bar: int,
    bars: int,
    primer_bars: int,
    length: int | None = None,
    partner_primer_notes=None,
    matched: bool = False,
    random_partner_primer_notes=None,
    beat: int | None = None,
) -> tuple[dict[str, np.ndarray], float]:
    """({series: float [bars]}, distinct-bar rate) of one continuation of `length` bars (default `bars`).

    `notes` start at the continuation's bar 0. With `matched`, the CONTROL_SERIES are added (NaN where
    there is no partner tune); `partner_primer_notes` is the rhythm-matched partner's primer,
    `random_partner_primer_notes` the random one's, `beat` the meter's beat in steps (default: a
    quarter note).
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
        out.update(control_series(primer_notes, notes, steps_per_bar, bars, n, primer_bars, beat or 4, out["TR"],
                                  partner_primer_notes, random_partner_primer_notes))
    distinct = distinct_bar_rate(notes, steps_per_bar, n) if n else float("nan")
    return out, distinct
