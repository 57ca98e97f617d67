"""The one table of per-bar metrics and of the reference sources: names, labels, ranges, colours.

Adding a per-bar metric is one function plus one row of PER_BAR:

    def my_metric(ctx: BarContext) -> np.ndarray:      # float [ctx.n_bars], NaN where undefined
        ...
    PER_BAR["MY"] = PerBarMetric("MY", "My metric", "MY: what the axis shows", (0.0, 1.0), True, my_metric)

continuation_metrics, the evaluation (every source, temperature and meter, with n and intervals),
the report's CSVs, plots and summary, and `python main.py metrics` all read the table. The report's
matched-floor series (TR_floor, TR_excess) are derived from TR and described in DERIVED.

Sources: model colours and labels stay in engine/models/registry.py; the human reference and the
shared floor are REFERENCES (docs/design.md section 3). `source_style(key)` answers for either.
Line styles use matplotlib's names ("solid", "dashed", "dotted"); a Qt front end maps them to
Qt.PenStyle.SolidLine / DashLine / DotLine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from engine.metrics.bars import (
    BarSets,
    bar_sets,
    hamming,
    in_key_rates,
    infer_bars,
    jensen_shannon,
    pitch_class_histograms,
    primer_key,
    transposed_similarity,
)
from engine.metrics.keys import best_key
from engine.metrics.piece import as_note_array


@dataclass(frozen=True)
class BarContext:
    """What a per-bar metric reads: the primer and the continuation, as notes and as bar sets.

    Primer onsets count from the primer's first step, continuation onsets from the first step after
    the primer (its bar 0). The bar sets and the key are computed once and shared by every metric.
    """

    primer_notes: np.ndarray
    notes: np.ndarray
    steps_per_bar: int
    n_bars: int
    primer_bars: int  # P

    @cached_property
    def primer(self) -> BarSets:
        return bar_sets(self.primer_notes, self.steps_per_bar, self.primer_bars)

    @cached_property
    def bars(self) -> BarSets:
        return bar_sets(self.notes, self.steps_per_bar, self.n_bars)

    @cached_property
    def key(self) -> int | None:
        return primer_key(self.primer_notes, self.steps_per_bar, self.primer_bars)


@dataclass(frozen=True)
class SeriesInfo:
    key: str
    label: str  # "Theme recall"
    axis_label: str  # what the y axis of its plot says
    value_range: tuple[float, float]
    higher_remembers: bool | None  # True: higher = more of the primer kept; False: lower; None: no direction


@dataclass(frozen=True)
class PerBarMetric(SeriesInfo):
    compute: Callable[[BarContext], np.ndarray] | None = None  # ctx -> float [n_bars]
    plot: bool = False  # the report draws per_bar_<key>.png
    # whole-piece form for `main.py metrics` (notes, steps_per_bar, n_bars) -> [n_bars]; None = the
    # continuation form after the piece's first reference bars, NaN before them
    piece: Callable[[np.ndarray, int, int], np.ndarray] | None = None


# --- the metric functions (docs/design.md section 5; conventions in bars.py's docstring) ----------


def theme_recall(ctx: BarContext) -> np.ndarray:
    """TR(b) = max over primer bars p of sim_T(b, p)."""
    if ctx.primer_bars <= 0:
        return np.full(ctx.n_bars, np.nan)
    return transposed_similarity(ctx.bars, ctx.primer).max(axis=1).astype(float)


def rhythm_recall(ctx: BarContext) -> np.ndarray:
    """RR(b) = max over primer bars p of 1 - Hamming(o_b, o_p) / S."""
    if ctx.primer_bars <= 0:
        return np.full(ctx.n_bars, np.nan)
    return 1 - hamming(ctx.bars.onsets, ctx.primer.onsets).min(axis=1) / ctx.steps_per_bar


def groove(ctx: BarContext) -> np.ndarray:
    """GC(b) = 1 - Hamming(o_b, o_{b-1}) / S; bar 0 against the primer's last bar."""
    on, S = ctx.bars.onsets, ctx.steps_per_bar
    if ctx.primer_bars > 0:
        previous = np.concatenate([ctx.primer.onsets[-1:], on[:-1]])
    else:
        previous = np.concatenate([np.zeros((1, S), dtype=bool), on[:-1]])
    gc = 1 - np.count_nonzero(on != previous[: ctx.n_bars], axis=1) / S
    if ctx.primer_bars <= 0 and ctx.n_bars:
        gc[0] = np.nan
    return gc


def downbeat(ctx: BarContext) -> np.ndarray:
    return ctx.bars.onsets[:, 0].astype(float)


def in_key(ctx: BarContext) -> np.ndarray:
    """IK(b): share of bar b's notes in the primer's key (NaN for an empty bar or no key)."""
    return in_key_rates(ctx.notes, ctx.steps_per_bar, ctx.n_bars, ctx.key)


def tonal_drift(ctx: BarContext) -> np.ndarray:
    """PC(b): JS divergence of the pitch classes of continuation bars max(0, b-3)..b against the primer's."""
    hist = pitch_class_histograms(ctx.notes, ctx.steps_per_bar, ctx.n_bars)
    cumulative = np.concatenate([np.zeros((1, 12)), np.cumsum(hist, axis=0)])
    b = np.arange(ctx.n_bars)
    window = cumulative[b + 1] - cumulative[np.maximum(b - 3, 0)]
    primer_hist = pitch_class_histograms(ctx.primer_notes, ctx.steps_per_bar, ctx.primer_bars).sum(axis=0)
    return jensen_shannon(window, np.broadcast_to(primer_hist, window.shape))


def empty(ctx: BarContext) -> np.ndarray:
    return (ctx.bars.size == 0).astype(float)


# whole-piece forms (no primer): GC against the bar before (none for bar 0), IK in the piece's own key


def _piece_groove(notes, S, n_bars):
    on = bar_sets(notes, S, n_bars).onsets
    gc = np.full(n_bars, np.nan)
    gc[1:] = 1 - np.count_nonzero(on[1:] != on[:-1], axis=1) / S
    return gc


def _piece_downbeat(notes, S, n_bars):
    return bar_sets(notes, S, n_bars).onsets[:, 0].astype(float)


def _piece_in_key(notes, S, n_bars):
    return in_key_rates(notes, S, n_bars, best_key(as_note_array(notes)[:, 1]))


def _piece_empty(notes, S, n_bars):
    return (bar_sets(notes, S, n_bars).size == 0).astype(float)


# --- the table ------------------------------------------------------------------------------------

PER_BAR: dict[str, PerBarMetric] = {
    m.key: m
    for m in (
        PerBarMetric("TR", "Theme recall", "TR: best transposed match with a primer bar", (0.0, 1.0), True,
                     theme_recall, plot=True),
        PerBarMetric("RR", "Rhythm recall", "RR: best onset-pattern match with a primer bar", (0.0, 1.0), True,
                     rhythm_recall, plot=True),
        PerBarMetric("GC", "Groove consistency", "GC: onset pattern kept from the bar before", (0.0, 1.0), None,
                     groove, piece=_piece_groove),
        PerBarMetric("downbeat", "Downbeat rate", "share of bars with a note on the downbeat", (0.0, 1.0), None,
                     downbeat, piece=_piece_downbeat),
        PerBarMetric("IK", "In-key rate", "share of notes in the primer's key", (0.0, 1.0), True,
                     in_key, plot=True, piece=_piece_in_key),
        PerBarMetric("PC", "Tonal drift", "PC: JS divergence of pitch classes from the primer's (bits)", (0.0, 1.0),
                     False, tonal_drift),
        PerBarMetric("empty", "Empty-bar rate", "share of bars where no note starts", (0.0, 1.0), None,
                     empty, piece=_piece_empty),
    )
}

DERIVED: dict[str, SeriesInfo] = {
    s.key: s
    for s in (
        SeriesInfo("TR_floor", "Matched floor", "TR of the continuation against another tune's primer",
                   (0.0, 1.0), None),
        SeriesInfo("TR_excess", "Theme recall over the matched floor",
                   "TR - matched floor (0 = chance for this source)", (-1.0, 1.0), True),
    )
}


def series_info(key: str) -> SeriesInfo:
    """Label, axis label, range and direction of any per-bar series of a report."""
    return PER_BAR[key] if key in PER_BAR else DERIVED[key]


@dataclass(frozen=True)
class SourceStyle:
    label: str
    colour: str
    line_style: str  # matplotlib's name: "solid", "dashed", "dotted"


REFERENCES: dict[str, SourceStyle] = {
    "human": SourceStyle("human reference", "#333333", "dashed"),  # the real continuation of the tune
    "floor": SourceStyle("floor (another tune)", "#999999", "dotted"),  # bars of a different tune, same meter
}


def source_style(key: str) -> SourceStyle:
    """The label, colour and line style of a model key or a reference source."""
    if key in REFERENCES:
        return REFERENCES[key]
    from engine.models.registry import MODEL_COLOURS, MODEL_LABELS

    return SourceStyle(MODEL_LABELS.get(key, key), MODEL_COLOURS.get(key, "#000000"), "solid")


# --- evaluating every row -------------------------------------------------------------------------


def continuation_metrics(
    primer_notes,
    continuation_notes,
    steps_per_bar: int,
    n_bars: int,
    primer_bars: int | None = None,
) -> dict[str, np.ndarray]:
    """Every PER_BAR metric of a continuation, each a float array [n_bars] (NaN where undefined).

    `primer_bars` is P (default: up to the bar of the primer's last onset).
    """
    S = int(steps_per_bar)
    primer_notes = as_note_array(primer_notes)
    P = infer_bars(primer_notes, S) if primer_bars is None else int(primer_bars)
    ctx = BarContext(primer_notes, as_note_array(continuation_notes), S, int(n_bars), P)
    return {key: np.asarray(m.compute(ctx), dtype=float) for key, m in PER_BAR.items()}


def piece_bar_metrics(notes, steps_per_bar: int, n_bars: int, reference_bars: int = 8) -> dict[str, np.ndarray]:
    """Every PER_BAR metric of a whole piece with no primer split, each a float array [n_bars].

    A metric with a whole-piece form (GC, downbeat, IK, empty) is computed over every bar; the others
    (TR, RR, PC) treat the first `reference_bars` bars as the primer, so they are NaN there and for
    every bar when the piece is no longer than that.
    """
    S = int(steps_per_bar)
    notes = as_note_array(notes)
    R = int(reference_bars)
    tail = {}
    if n_bars > R > 0:
        split = R * S
        rest = notes[notes[:, 0] >= split] - np.array([split, 0, 0])
        tail = continuation_metrics(notes[notes[:, 0] < split], rest, S, n_bars - R, primer_bars=R)
    out = {}
    for key, m in PER_BAR.items():
        if m.piece is not None:
            out[key] = np.asarray(m.piece(notes, S, n_bars), dtype=float)
            continue
        out[key] = np.full(n_bars, np.nan)
        if tail:
            out[key][R:] = tail[key]
    return out
