"""The per-bar plots of the sampled continuations: theme recall on the bar grid and phase-robust, pitch-only
recall and rhythm recall (which of pitch and rhythm is kept), and the in-key rate; every one for the
temperature, meter and floor the view bar shows, with n per bar, nothing drawn below min_n, and where the
primer leaves each attention window marked."""

from __future__ import annotations

import numpy as np

from engine.metrics.table import PER_BAR, series_info

from .. import style
from ..plots import CaptionedPlot
from . import report_data
from .report_data import floats
from .view_bar import EXCESS, FLOOR_WORDS, View

THEME = ("TR", "TR_phase", "PTR")  # measures of the theme: each has a floor, and an excess where the report gives it
# What the report's companions of TR are, where the metric table does not list them (yet)
COMPANIONS = {
    "TR_phase": ("Phase-robust theme recall", "TR, best over shifts of whole beats"),
    "PTR": ("Pitch-only recall", "PTR: pitch sequence kept, onsets ignored"),
}
ORDER = ["TR", "TR_phase", "PTR", "RR", "IK"]  # side by side: bar grid | phase-robust, pitch | rhythm
LOOK_FOR = {
    "TR": "How much more each bar resembles some bar of the primer (any transposition) than the same source's "
          "output resembles its floor partner's opening: 0 (dotted) is chance for that source. A model that keeps "
          "the theme stays above 0, like the dashed human line; one that forgets sinks to 0.",
    "TR_raw": "Theme recall of each source (the human reference dashed) and, dotted in the same colour, its own "
              "floor: its output scored against the floor partner's opening. The gap between the two is the excess.",
    "TR_phase": "Theme recall with each bar also compared at shifts of whole beats (the best shift counts): a "
                "continuation that drifts by a beat is not scored as forgetting. Compare with the bar-grid plot.",
    "PTR": "Bars compared by their pitch sequence alone (any transposition, onsets ignored). Beside rhythm recall "
           "it tells which of pitch and rhythm a model keeps.",
    "RR": "How closely each bar's rhythm matches some primer bar. Watch which models keep the primer's rhythm to "
          "the end and which drift towards the dotted floor (another tune's opening).",
    "IK": "Share of notes in the primer's key. A fall late in the piece means the model has forgotten the key "
          "it started in.",
}


def label(metric: str) -> str:
    if metric in PER_BAR:
        return PER_BAR[metric].label
    return COMPANIONS.get(metric, (metric, metric))[0]


def plotted() -> list[str]:
    """TR, RR and IK (the metric table says which it plots), the companions beside them."""
    table = [k for k, m in PER_BAR.items() if m.plot]
    return [m for m in ORDER if m in table or m in COMPANIONS] + [m for m in table if m not in ORDER]


class PerBarPlots:
    """The plots, built once; draw() fills them for a report and a view."""

    def __init__(self):
        self.plots = {
            metric: CaptionedPlot(f"{label(metric)} per bar", LOOK_FOR.get(metric, metric), "bar of the continuation",
                                  metric, value_format="{:.3f}", hover_point_name="bar")
            for metric in plotted()
        }

    def clear(self) -> None:
        for plot in self.plots.values():
            plot.clear()

    def draw(self, report: dict, view: View, words: str) -> None:
        block = report_data.per_bar(report, view.temperature, view.meter)
        keys = report_data.models(report)
        G = int(report["settings"]["bars"])
        least = report_data.min_n(report)
        marks = report_data.window_marks(report, view.meter)
        for metric, plot in self.plots.items():
            plot.clear()
            plot.min_n = least
            if metric in THEME:
                drawn, excess = self._draw_theme(plot, metric, report, block, keys, view, words)
            else:
                plot.title.setText(f"<b>{label(metric)} per bar</b> ({words})")
                plot.plot.setLabel("left", metric)
                drawn = [_series(plot, src, block.get(metric, {}).get(src), least)
                         for src in [*keys, "human", "floor"]]
                excess = False
            for i, mark in enumerate(marks):  # labels at staggered heights: lines 5 bars apart stay readable
                plot.vline(mark.after_bars + 0.5, mark.colour, mark.short, mark.line_style,
                           label_at=0.95 - 0.12 * (i % 3), tip=mark.tip)
            plot.plot.setXRange(0.5, G + 0.5, padding=0.01)
            values = [v for d in drawn if d is not None for v in d]
            empty = not any(np.isfinite(v).any() for v in values)
            if excess:
                low, high = (-0.1, 0.5) if empty else _padded_range([*values, np.zeros(1)],
                                                                     series_info("TR_excess").value_range)
                plot.plot.setYRange(low, high, padding=0)
            else:
                plot.plot.setYRange(_lower_limit(values), 1.02, padding=0)
            if empty:
                plot.set_notice(_nothing_drawn(report, view, block, metric, least))
        self._caption_windows(marks, view)

    def _draw_theme(self, plot: CaptionedPlot, metric: str, report: dict, block: dict, keys: list[str], view: View,
                    words: str) -> tuple[list, bool]:
        """A theme measure over the chosen floor (0 = chance), or raw with each source's own floor dotted;
        a measure the report gives no floor for is drawn raw, and its title says so."""
        least = report_data.min_n(report)
        floor_key = report_data.floor_key(metric, view.floor, report)
        own_floor = floor_key in block
        excess_block, paired = report_data.excess(block, metric, view.floor, report)
        excess = view.theme == EXCESS and bool(excess_block)
        floor_words = FLOOR_WORDS.get(view.floor, view.floor) if (excess or own_floor) else ""
        if excess:
            title = f"{label(metric)} over the {floor_words} per bar"
            words += "" if paired else "; a difference of means, so no interval"
        else:
            title = label(metric) + " per bar" + (f", with each source's {floor_words} dotted" if own_floor else "")
            if view.theme == EXCESS or not own_floor:  # the floor chosen does not exist for this measure: said
                words += f"; this report has no {FLOOR_WORDS.get(view.floor, view.floor)} for it"
        plot.title.setText(f"<b>{title}</b> ({words})")
        plot.plot.setLabel("left", f"{metric} excess" if excess else metric)
        plot.caption.setText(LOOK_FOR.get(metric if excess or metric != "TR" else "TR_raw", ""))
        drawn = []
        if excess:
            plot.hline(0.0, "floor")
            for src in [*keys, "human"]:
                drawn.append(_series(plot, src, excess_block.get(src), least))
        elif own_floor:
            for src in [k for k in [*keys, "human"] if k in block[floor_key]]:
                drawn.append(_series(plot, src, block.get(metric, {}).get(src), least))
                drawn.append(_series(plot, src, block[floor_key][src], least, band=False, line_style="dotted",
                                     width=1.3, name=f"{style.model_label(src).split(' (')[0]}: own floor"))
        else:  # a report of the first format, or a companion without a floor: the one shared floor
            drawn = [_series(plot, src, block.get(metric, {}).get(src), least) for src in [*keys, "human", "floor"]]
        return drawn, excess

    def _caption_windows(self, marks, view: View) -> None:
        """The theme-recall caption says what the vertical lines are."""
        if not marks:
            return
        plot = self.plots["TR"]
        whats = list(dict.fromkeys(m.what for m in marks))
        where = "" if view.meter else ", at the bar written on it for each meter"
        plot.caption.setText(f"{plot.caption.text()} Vertical lines: the {'; the '.join(whats)}{where} "
                             "(hover a line for the bar).")


def _series(plot: CaptionedPlot, src: str, stats: dict | None, least: int | None, band: bool = True,
            **line) -> list | None:
    """Draw a report series {mean, lo, hi, n}: nothing where its mean is null (or n < min_n), a band
    only where lo and hi exist. Returns the values drawn (for the axis range)."""
    if not stats:
        return None
    mean = floats(stats["mean"])
    n = floats(stats["n"]) if stats.get("n") is not None else None
    if n is not None and least is not None:
        mean = np.where(n >= least, mean, np.nan)  # the report's rule, kept if a report broke it
    lo = floats(stats["lo"]) if band and stats.get("lo") is not None else None
    hi = floats(stats["hi"]) if band and stats.get("hi") is not None else None
    if lo is not None and hi is not None:
        drawn_band = np.isfinite(mean) & (n >= 2 if n is not None else True)  # never from fewer than 2 values
        lo, hi = np.where(drawn_band, lo, np.nan), np.where(drawn_band, hi, np.nan)
    plot.line(src, np.arange(1, len(mean) + 1), mean, lo, hi, n=n, **line)
    return [mean] + ([lo, hi] if lo is not None else [])


def _nothing_drawn(report: dict, view: View, block: dict, metric: str, least: int | None) -> str:
    """Why a per-bar plot is empty, in words."""
    if view.meter:
        n = report_data.meters(report).get(view.meter, 0)
        if least is not None and n < least:
            return f"Too little data: {n} primers in {view.meter},\nfewer than min_n = {least}: nothing is drawn."
    if not block:
        return "This report has no figures for this view."
    if metric not in block:
        return f"This report has no {label(metric).lower()}:\nit was made before the measure existed."
    return f"Nothing to draw: fewer than min_n = {least} primers reach any bar."


def _lower_limit(series) -> float:
    """The bottom of a 0..1 axis: just below the lowest value drawn (rhythm recall and in-key rate stay
    near 1, and a 0..1 axis would squeeze them into its top fifth), on a step of 0.1."""
    values = np.concatenate([np.asarray(s, dtype=float).ravel() for s in series]) if series else np.array([])
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0
    return float(max(0.0, np.floor((values.min() - 0.02) * 10) / 10))


def _padded_range(series, limits: tuple[float, float]) -> tuple[float, float]:
    """An axis range around every value drawn (a little room above and below), within the series' limits."""
    values = np.concatenate([np.asarray(s, dtype=float).ravel() for s in series])
    values = values[np.isfinite(values)]
    low, high = float(values.min()), float(values.max())
    pad = 0.08 * max(high - low, 0.1)
    return max(limits[0], low - pad), min(limits[1], high + pad)
