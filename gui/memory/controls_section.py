"""Readings under their controls (issue 24): the late-bar theme-recall excess of every model against the
temperature of the sweep, and the distinct-bar rate at matched length (model and human scored over the
same bars) beside the rate over all the bars a model composed."""

from __future__ import annotations

import itertools

import numpy as np

from .. import style
from ..plots import Bar, CaptionedPlot
from . import controls_data, report_data
from .summary import interval_text
from .view_bar import FLOOR_WORDS, View

SWEEP_CAPTION = ("Theme recall over the floor in the last bars of the continuation, mean [95% interval] over "
                 "primers, at each temperature sampled. Where two lines cross, their order depends on the "
                 "temperature: a reading made at one temperature holds there only.")


class ControlPlots:
    def __init__(self):
        self.sweep_plot = CaptionedPlot("Late-bar theme recall against temperature", SWEEP_CAPTION,
                                        "sampling temperature", "TR excess", value_format="{:.3f}",
                                        hover_point_name="temperature")
        self.matched_plot = CaptionedPlot("Distinct-bar rate at matched length", "", "distinct bars / bars", "",
                                          height=260, value_format="{:.3f}")
        self.all_bars_plot = CaptionedPlot("Distinct-bar rate over all bars", "", "distinct bars / bars", "",
                                           height=260, value_format="{:.3f}")

    def all(self) -> list[CaptionedPlot]:
        return [self.sweep_plot, self.matched_plot, self.all_bars_plot]

    def clear(self) -> None:
        for plot in self.all():
            plot.clear()

    def draw(self, report: dict, view: View) -> None:
        self.draw_sweep(report)
        self.draw_distinct(report, view)

    def draw_sweep(self, report: dict) -> None:
        plot = self.sweep_plot
        plot.clear()
        keys = report_data.models(report)
        _first, last = report_data.first_last_bars(report)
        floor = FLOOR_WORDS.get(report_data.primary_floor(report), "floor")
        plot.title.setText(f"<b>Late-bar theme recall against temperature</b> (bars {last}, over the {floor})")
        plot.plot.setLabel("left", f"TR excess, bars {last}")
        found = controls_data.sweep(report, [*keys, "human"])
        for src, s in found.items():
            plot.line(src, s.temperatures, s.mean, s.lo, s.hi, n=s.n, symbol="o")
        temps = sorted({float(t) for t in report_data.temperatures(report)})
        plot.plot.getAxis("bottom").setTicks([[(t, f"{t:g}") for t in temps], []])
        if temps:
            plot.plot.setXRange(min(temps) - 0.03, max(temps) + 0.03, padding=0)
        plot.hline(0.0, "floor")
        crossings = _crossings({k: s for k, s in found.items() if k != "human"})
        plot.caption.setText(SWEEP_CAPTION + (" Means that change order here: " + "; ".join(crossings)
                                              + " (the paired table tests a difference)."
                                              if crossings else ""))
        if len(temps) < 2:
            plot.set_notice("This report has one temperature:\nno sweep to draw." if temps else
                            "This report has no temperatures.")

    def draw_distinct(self, report: dict, view: View) -> None:
        sources = [*report_data.models(report), "human"]
        G = report["settings"]["bars"]
        matched, at = controls_data.distinct_matched(report, view.temperature)
        plot = self.matched_plot
        plot.clear()
        when = f"temperature {at}" if at else "one temperature"
        plot.title.setText(f"<b>Distinct-bar rate at matched length</b> ({when}, all meters)")
        against_human = report.get("distinct_bar_rate_matched_paired") or {}
        bars = _bars(matched, sources)
        for bar in bars:  # the paired difference with the human continuation, where the report gives it
            if (d := against_human.get(f"{bar.key}-human")) and d.get("mean") is not None:
                bar.note = "minus human " + interval_text(d, "{:+.3f}").replace("\n", ", ")
        plot.bars(bars)
        plot.plot.setXRange(0, 1.02, padding=0)
        plot.caption.setText(
            "Distinct non-empty bars / non-empty bars, with model and human scored over the same number of bars "
            "for each primer (the shorter continuation's): the fair comparison with real tunes. Mean over primers "
            "with its 95% interval (hover for n). A low rate means looping."
            + (f" The report gives it at temperature {at} only." if at and at != view.temperature else ""))
        if not matched:
            plot.set_notice("This report has no distinct-bar rate at matched\nlength: it was made before it existed.")
        plot = self.all_bars_plot
        plot.clear()
        plot.title.setText(f"<b>Distinct-bar rate over all {G} bars</b> (temperature {view.temperature}, all meters)"
                           if view.temperature else f"<b>Distinct-bar rate over all {G} bars</b> (all meters)")
        rates = report_data.distinct_bar_rates(report, view.temperature)
        plot.bars(_bars(rates, sources))
        plot.plot.setXRange(0, 1.02, padding=0)
        plot.caption.setText(
            f"The same rate over every bar a model composed ({G}) and over the whole human continuation, which is "
            f"often shorter: not a like-for-like comparison. One bar looped for {G} bars gives 1/{G}. High theme "
            "recall with a low rate is copying by looping.")
        if not rates:
            plot.set_notice("This report has no distinct-bar rate.")


def _bars(rates: dict, sources: list[str]) -> list[Bar]:
    return [Bar(src, st["mean"], st.get("lo"), st.get("hi"), st.get("n")) for src in sources
            if (st := rates.get(src)) and st.get("mean") is not None]


def _crossings(found: dict) -> list[str]:
    """Pairs of models whose means change order across the temperatures ("Transformer and LSTM")."""
    out = []
    for a, b in itertools.combinations(found, 2):
        diff = found[a].mean - found[b].mean
        diff = diff[np.isfinite(diff) & (diff != 0)]
        if len(diff) and diff.min() < 0 < diff.max():
            out.append(f"{style.model_label(a)} and {style.model_label(b)}")
    return out
