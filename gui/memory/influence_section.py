"""The influence distance ("what did it remember"): how far back the earlier notes that each generated note
drew on lie, as a distribution per source, and the mean per source drawn between its two references:
all weight on the previous note (the short extreme) and every earlier note weighed the same (the uniform
spread, the long extreme). Hidden when the report has no influence figures."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QWidget

from .. import style
from ..plots import Bar, CaptionedPlot
from . import controls_data, report_data

PREVIOUS_NOTE_COLOUR = "#222222"
MEAN_CAPTION = ("Mean distance in bars with its 95% interval over primers, between its two references: the dark "
                "tick puts all weight on the previous note, the grey tick spreads it evenly over the past. A bar "
                "near the dark tick draws on what it just played; near the grey one, on everything alike.")


class InfluenceSection(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.histogram_plot = CaptionedPlot(
            "Influence distance", "How far back, in bars, the earlier notes that each generated note drew on lie "
            "(gradient influence, share of notes per bin). Dotted verticals: each source's uniform spread, the mean "
            "distance if every earlier note weighed the same.", "bars back", "share of notes", value_format="{:.1%}",
            hover_point_name="bars back")
        self.mean_plot = CaptionedPlot("Mean influence distance between its references", MEAN_CAPTION, "bars back",
                                       "", height=260, value_format="{:.2f}")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.histogram_plot)
        row.addWidget(self.mean_plot)
        self.hide()  # until a report has the influence distance

    def clear(self) -> None:
        for plot in (self.histogram_plot, self.mean_plot):
            plot.clear()
        self.hide()

    def show_report(self, report: dict) -> None:
        block = report_data.influence(report)
        for plot in (self.histogram_plot, self.mean_plot):
            plot.clear()
        self.setVisible(block is not None)
        if block is None:
            return
        keys = report_data.models(report)
        found = report_data.influence_sources(block)
        sources = [s for s in [*keys, "human"] if s in found] + [s for s in found if s not in (*keys, "human")]
        words = (f"{block.get('method', 'gradient')}, {block.get('bars')}-bar continuations of "
                 f"{block.get('primers')} primers, temperature {block.get('temperature')}")
        self.histogram_plot.title.setText(f"<b>Influence distance</b> ({words})")
        self._histograms(found, sources)
        self._means(found, sources)

    def _histograms(self, found: dict, sources: list[str]) -> None:
        plot = self.histogram_plot
        for src in sources:
            d = found[src]
            hist = d.get("histogram") or {}
            edges, counts = np.asarray(hist.get("edges", []), float), np.asarray(hist.get("counts", []), float)
            note = f"{d.get('n_notes')} notes of {d.get('n')} continuations"
            if len(counts) and len(edges) == len(counts) + 1 and counts.sum() > 0:
                share = counts / counts.sum()
                plot.line(src, (edges[:-1] + edges[1:]) / 2, share, edges=edges)
                plot.series[style.model_label(src)].note = note
            refs = controls_data.influence_references(d)
            if refs.uniform is not None:
                plot.vline(refs.uniform, style.model_colour(src), "", "dotted",
                           tip=f"{style.model_label(src)}: uniform spread {refs.uniform:.2f} bars")
        tallest = max((float(np.nanmax(s.y)) for s in plot.series.values()), default=1.0)
        plot.plot.setYRange(0, tallest * 1.1, padding=0)

    def _means(self, found: dict, sources: list[str]) -> None:
        plot = self.mean_plot
        bars = [Bar(src, found[src]["mean"], found[src].get("lo"), found[src].get("hi"), found[src].get("n"),
                    _note(found[src])) for src in sources if found[src].get("mean") is not None]
        ys = plot.bars(bars)
        for symbol_colour, pick in ((style.model_colour("floor"), lambda r: r.uniform),
                                    (PREVIOUS_NOTE_COLOUR, lambda r: r.previous_note)):
            ticks = [(y, pick(controls_data.influence_references(found[b.key]))) for y, b in zip(ys, bars)]
            ticks = [(y, x) for y, x in ticks if x is not None]
            if ticks:
                plot.add(pg.ScatterPlotItem(x=[x for _y, x in ticks], y=[y for y, _x in ticks], symbol="|", size=28,
                                            pen=pg.mkPen(None), brush=pg.mkBrush(symbol_colour)))
        if not any(controls_data.influence_references(found[b.key]).previous_note is not None for b in bars):
            plot.caption.setText(MEAN_CAPTION.replace("the dark tick puts all weight on the previous note, ", "")
                                 + " (This report has no previous-note reference: only the uniform spread.)")
        else:
            plot.caption.setText(MEAN_CAPTION)


def _note(d: dict) -> str:
    refs = controls_data.influence_references(d)
    parts = []
    if refs.previous_note is not None:
        parts.append(f"previous note {refs.previous_note:.2f}")
    if refs.uniform is not None:
        parts.append(f"uniform {refs.uniform:.2f}")
    if d.get("median") is not None:
        parts.append(f"median {d['median']:.2f}")
    if d.get("q10") is not None and d.get("q90") is not None:
        parts.append(f"10-90% {d['q10']:.2f}-{d['q90']:.2f}")
    if d.get("n_notes") is not None:
        parts.append(f"{d['n_notes']} notes")
    share = refs.share_on_primer
    if share and share.get("mean") is not None:
        n = f", n {share['n']}" if share.get("n") is not None else ""
        parts.append(f"on the primer {share['mean']:.0%}{n}")
    return ", ".join(parts)
