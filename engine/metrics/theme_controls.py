"""The theme measures' companions and floors for one continuation (docs/design.md section 5, "Controls of
the sampled per-bar measures"; issue 24).

For a model's or the human continuation, per bar:
- PTR (pitch-only recall, engine/metrics/pitch_recall.py) and TR_phase (phase-robust theme recall,
  engine/metrics/phase.py) against the primer, beside TR and RR;
- for each theme measure M of TR, PTR and TR_phase, its floor M_floor: the same measure of the same
  continuation against the primer bars of the rhythm-matched partner (engine/metrics/rhythm_floor.py),
  and M_excess = M - M_floor, paired per primer;
- the random-partner floor as a second line for TR: TR_floor_random and TR_excess_random.
"""

from __future__ import annotations

import numpy as np

from engine.metrics.bars import bar_sets, transposed_similarity
from engine.metrics.phase import phase_theme_recall
from engine.metrics.pitch_recall import pitch_recall

THEME_MEASURES = ("TR", "PTR", "TR_phase")
COMPANIONS = ("PTR", "TR_phase")
CONTROL_SERIES = (
    "PTR", "TR_phase",
    *(f"{m}_{part}" for m in THEME_MEASURES for part in ("floor", "excess")),
    "TR_floor_random", "TR_excess_random",
)


def _theme(measure: str, reference_notes, notes, S: int, n: int, P: int, beat: int) -> np.ndarray:
    """One theme measure of the continuation's n bars against the first P bars of `reference_notes`."""
    if measure == "PTR":
        return pitch_recall(reference_notes, notes, S, n, P)
    reference = bar_sets(reference_notes, S, P)
    if measure == "TR_phase":
        return phase_theme_recall(reference, notes, S, n, beat)
    return transposed_similarity(bar_sets(notes, S, n), reference).max(axis=1).astype(float)


def control_series(primer_notes, notes, steps_per_bar: int, bars: int, n: int, primer_bars: int, beat: int,
                   tr: np.ndarray, partner_primer_notes=None, random_partner_primer_notes=None) -> dict[str, np.ndarray]:
    """{series: float [bars]} of CONTROL_SERIES (NaN past bar n and where a partner is missing); `tr` is
    the continuation's TR against its own primer ([bars])."""
    S, P = int(steps_per_bar), int(primer_bars)
    out = {k: np.full(bars, np.nan) for k in CONTROL_SERIES}
    own = {"TR": np.asarray(tr, dtype=float)}
    if n and P > 0:
        for m in COMPANIONS:
            out[m][:n] = _theme(m, primer_notes, notes, S, n, P, beat)
            own[m] = out[m]
    else:
        own.update({m: out[m] for m in COMPANIONS})
    for m in THEME_MEASURES:
        if n and P > 0 and partner_primer_notes is not None:
            out[f"{m}_floor"][:n] = _theme(m, partner_primer_notes, notes, S, n, P, beat)
        out[f"{m}_excess"] = own[m] - out[f"{m}_floor"]
    if n and P > 0 and random_partner_primer_notes is not None:
        out["TR_floor_random"][:n] = _theme("TR", random_partner_primer_notes, notes, S, n, P, beat)
    out["TR_excess_random"] = own["TR"] - out["TR_floor_random"]
    return out
