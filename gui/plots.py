"""Small pyqtgraph helpers the Memory tab shares: a titled plot with a caption, mean lines with
confidence bands, horizontal bars with intervals, and a hover readout (gui/hover.py) that shows every
series' value under the mouse, with its interval and the number of cases it rests on.

A plot keeps its curves between redraws: drawing a series again (another temperature, another floor)
updates its items in place with setData, and clear() hides what the next drawing does not use."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from . import style
from .hover import HoverReadout, clear_on_leave  # noqa: F401 - clear_on_leave: the Train tab imports it here


@dataclass
class Series:
    """One drawn series as the hover readout reads it: values, their interval and n, per point."""

    x: np.ndarray
    y: np.ndarray
    key: str  # the source: a model key, "human" or "floor"
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    n: np.ndarray | None = None  # cases behind each point (primers); None when the report gives none
    note: str = ""  # said after the value, e.g. how many tokens a figure rests on
    notes: list[str] | None = None  # a note per point, said instead of `note` where it is not ""
    texts: list[str] | None = None  # what the readout says at each point, instead of the value


@dataclass
class Bar:
    """One horizontal bar: a source's value with its interval, and what it rests on."""

    key: str
    value: float
    lo: float | None = None
    hi: float | None = None
    n: int | None = None
    note: str = ""


class _Line:
    """A series' items, kept between redraws: the mean curve and its band (two edges and the fill)."""

    def __init__(self, plot: pg.PlotWidget):
        self.curve = pg.PlotDataItem([], [])
        # the band's edges: a PlotDataItem follows the plot's log axes as the mean curve does
        self.lo = pg.PlotDataItem([], [], pen=pg.mkPen(None), connect="finite")
        self.hi = pg.PlotDataItem([], [], pen=pg.mkPen(None), connect="finite")
        # FillBetweenItem pairs the edges' stretches between gaps: a band never spans a missing value
        self.fill = pg.FillBetweenItem(self.lo, self.hi)
        for item in (self.lo, self.hi, self.fill, self.curve):
            plot.addItem(item)

    def hide(self) -> None:
        for item in (self.curve, self.lo, self.hi):
            item.setData([], [])
        for item in (self.curve, self.fill):
            item.hide()


class CaptionedPlot(QWidget):
    """A plot with a bold title above and a one-line caption below (what to look for)."""

    def __init__(self, title: str, caption: str, x_label: str, y_label: str, parent=None,
                 log_x: bool = False, log_y: bool = False, height: int = 230, value_format: str = "{:.3g}",
                 hover_point_name: str | None = None):
        super().__init__(parent)
        self.setObjectName(title)
        self.title = QLabel(f"<b>{title}</b>")
        self.title.setWordWrap(True)  # two half-width plots fit a 1024-pixel window
        self.plot = pg.PlotWidget()
        self.plot.setFixedHeight(height)
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setLabel("bottom", x_label)
        self.plot.setLabel("left", y_label)
        self.plot.setLogMode(x=log_x, y=log_y)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)  # "bits (x0.001)" reads badly
        self.log_x, self.log_y = log_x, log_y
        self.caption = style.caption(caption)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.plot)
        layout.addWidget(self.caption)
        layout.addStretch(1)  # side by side, two plots line up at the top whatever their captions' lengths
        self.series: dict[str, Series] = {}  # the name the readout gives it -> what it reads
        self.drawn: dict[str, tuple] = {}  # every line drawn now: name -> (x, y)
        self.marks: list[tuple[float, str, str]] = []  # vertical lines drawn: (x, label, tooltip)
        self.lines: dict[str, _Line] = {}  # every series ever drawn here, by name; hidden when not in use
        self._bar_items: tuple | None = None  # (bars, whiskers) of a bar chart, updated in place
        self._items: list = []  # marks, markers and other items of one drawing: removed by clear()
        self.hover = HoverReadout(self.plot, self._readout_at)
        # what the plot says when it has nothing to draw ("too little data ..."), in the middle of the view
        self._notice = pg.TextItem("", color="#8a4b00", anchor=(0.5, 0.5), fill=pg.mkBrush(255, 255, 255, 235),
                                   border=pg.mkPen("#cccccc"))
        self._notice.setZValue(90)
        self.plot.addItem(self._notice, ignoreBounds=True)
        self._notice.hide()
        self.plot.getPlotItem().vb.sigRangeChanged.connect(self._place_notice)
        self.value_format = value_format
        self.hover_by = "x"  # "y" for horizontal bars: the readout lists each bar's length
        # per-bar plots: the readout names the bar under the mouse and reads every series there (a null
        # is said, with its n, rather than skipped); other plots read each series' nearest value
        self.hover_point_name = hover_point_name
        self.point_names: dict[float, str] = {}  # x -> what the readout calls that point ("64-127 steps")
        self.min_n: int | None = None  # below it a report leaves a mean out: the readout says so

    def clear(self) -> None:
        for item in self._items:
            self.plot.removeItem(item)
        self._items.clear()
        for line in self.lines.values():
            line.hide()
        if self._bar_items is not None:
            for item in self._bar_items:
                item.hide()
        self.series.clear()
        self.drawn.clear()
        self.marks.clear()
        self.point_names.clear()
        self.clear_readout()
        self.set_notice("")

    def clear_readout(self) -> None:
        self.hover.clear()

    @property
    def readout_text(self) -> str:
        """What the hover box shows ("" when it is hidden)."""
        return self.hover.text

    @property
    def notice_text(self) -> str:
        return self._notice.toPlainText() if self._notice.isVisible() else ""

    def set_notice(self, text: str) -> None:
        """Say in the middle of the plot why nothing (or not everything) is drawn; "" hides it."""
        self._notice.setText(text)
        self._notice.setVisible(bool(text))
        self._place_notice()

    def _place_notice(self, *_args) -> None:
        if self._notice.isVisible():
            (x0, x1), (y0, y1) = self.plot.getPlotItem().vb.viewRange()
            self._notice.setPos((x0 + x1) / 2, (y0 + y1) / 2)

    def add(self, item) -> None:
        self.plot.addItem(item)
        self._items.append(item)

    def line(self, key: str, x, y, lo=None, hi=None, name: str | None = None, symbol=None, n=None,
             line_style: str | None = None, width: float = 2.0, notes: list[str] | None = None,
             in_readout: bool = True, edges=None) -> None:
        """A series in the colour and line style of `key` (or `line_style`), with a shaded 95% band
        where the interval exists (a report leaves it null where fewer than 2 values stand behind it).
        Drawn into the items this name had before (setData), or new ones the first time. A series that
        another one's readout already tells (`in_readout=False`) keeps the hover box short. With `edges`
        (one more than y) the series is a histogram: steps over the bins, read at the bins' centres x."""
        name = name or style.model_label(key)
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        line = self.lines.get(name) or self.lines.setdefault(name, _Line(self.plot))
        shape = {"stepMode": "center"} if edges is not None else {"stepMode": None}
        line.curve.setData(x if edges is None else np.asarray(edges, dtype=float), y, pen=style.pen(key, width, line_style),
                           connect="finite", symbol=symbol, symbolSize=6, symbolBrush=style.model_colour(key),
                           symbolPen=None, **shape)
        line.curve.show()
        if lo is not None and hi is not None:
            lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
            both = np.isfinite(lo) & np.isfinite(hi)
            line.lo.setData(x, np.where(both, lo, np.nan))
            line.hi.setData(x, np.where(both, hi, np.nan))
            colour = pg.mkColor(style.model_colour(key))
            colour.setAlpha(40)
            line.fill.setBrush(pg.mkBrush(colour))
            line.fill.setVisible(bool(both.any()))
        else:
            line.lo.setData([], [])
            line.hi.setData([], [])
            line.fill.hide()
        self.drawn[name] = (x, y)
        if in_readout:
            self.series[name] = Series(x, y, key, lo, hi, None if n is None else np.asarray(n, dtype=float),
                                       notes=notes)

    def band_stretches(self, name: str) -> list[tuple[float, float]]:
        """(first x, last x) of each stretch of the series' band as drawn (data units)."""
        line = self.lines.get(name)
        if line is None or not line.fill.isVisible():
            return []
        out = []
        for polygon in line.fill.path().toSubpathPolygons():
            xs = [polygon.at(i).x() for i in range(polygon.size())]
            if xs:
                low, high = min(xs), max(xs)
                out.append((10 ** low, 10 ** high) if self.log_x else (low, high))
        return out

    def marker(self, key: str, x: float, y: float, tip: str) -> None:
        """A large dot in the key's colour (through PlotDataItem, so that log axes place it right)."""
        dot = pg.PlotDataItem([x], [y], pen=None, symbol="o", symbolSize=15,
                              symbolBrush=style.model_colour(key), symbolPen=pg.mkPen("k", width=1.5))
        dot.setToolTip(tip)
        self.add(dot)

    def vline(self, x: float, colour: str, label: str = "", line_style: str = "dashed", label_at: float = 0.95,
              tip: str = "") -> None:
        """A vertical marker line (a window edge, a threshold) at x in data units, with an optional label
        along it (label_at: 0 = the bottom of the view, 1 = the top) and a tooltip saying what it marks."""
        line = pg.InfiniteLine(pos=np.log10(x) if self.log_x else x, angle=90, movable=False,
                               pen=pg.mkPen(colour, width=1.3, style=style.qt_line_style(line_style)),
                               label=label or None,
                               labelOpts={"position": label_at, "color": colour, "anchors": [(0, 0.5), (0, 0.5)],
                                          "fill": pg.mkBrush(255, 255, 255, 200)})
        if tip:
            line.setToolTip(tip)
        self.add(line)
        self.marks.append((float(x), label, tip))

    def hline(self, y: float, key: str, line_style: str | None = None, width: float = 1.5):
        line = pg.InfiniteLine(pos=y, angle=0, movable=False, pen=style.pen(key, width, line_style))
        self.add(line)
        return line

    def bars(self, bars: list[Bar], labels: list[str] | None = None) -> np.ndarray:
        """Horizontal bars, the first on top, each in its source's colour with its interval as a
        whisker; the sources' names (or `labels`) read along the left axis (seven fit at any width,
        where names under vertical bars ran into each other in half a 1024-pixel window). Returns
        the bars' y."""
        from PySide6.QtGui import QFontMetrics

        self.hover_by = "y"
        self.plot.getPlotItem().invertY(True)
        ys = np.arange(len(bars), dtype=float)
        if not bars:
            return ys
        if self._bar_items is None:
            self._bar_items = (pg.BarGraphItem(x0=0, y=[0], width=[0], height=0.6),
                               pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), beam=0.25,
                                               pen=pg.mkPen("#222222", width=1.3)))
            for item in self._bar_items:
                self.plot.addItem(item)
        boxes, whiskers = self._bar_items
        values = np.array([b.value for b in bars], dtype=float)
        boxes.setOpts(x0=0, y=ys, width=values, height=0.6, brushes=[pg.mkBrush(style.model_colour(b.key)) for b in bars],
                      pens=[style.pen(b.key, 1.0) for b in bars])
        ranged = np.array([b.lo is not None and b.hi is not None for b in bars])
        lo = np.array([b.lo if r else np.nan for b, r in zip(bars, ranged)], dtype=float)
        hi = np.array([b.hi if r else np.nan for b, r in zip(bars, ranged)], dtype=float)
        whiskers.setData(x=values[ranged], y=ys[ranged], left=(values - lo)[ranged], right=(hi - values)[ranged])
        for item in self._bar_items:
            item.show()
        left = self.plot.getAxis("left")
        labels = labels or [style.model_label(b.key) for b in bars]
        left.setTicks([list(zip(ys, labels))])
        metrics = QFontMetrics(left.style.get("tickFont") or left.font())
        left.setWidth(max(metrics.horizontalAdvance(text) for text in labels) + 16)
        for y, b, label in zip(ys, bars, labels):  # x: where the bar sits; y: its value, as the readout reads it
            self.series[label] = Series(
                np.array([y]), np.array([b.value]), b.key,
                None if b.lo is None else np.array([b.lo]), None if b.hi is None else np.array([b.hi]),
                None if b.n is None else np.array([b.n]), b.note)
        return ys

    def power_of_two_ticks(self, axis: str, top: int) -> None:
        """Label a log axis 1, 2, 4, ... instead of pyqtgraph's crowded minor decades."""
        values = [2 ** i for i in range(int(np.log2(max(2, top))) + 1)]
        self.plot.getAxis(axis).setTicks([[(np.log10(v), str(v)) for v in values], []])

    # ---- the hover readout -------------------------------------------------------------------------
    def describe(self, series: Series, i: int) -> str:
        """One series at point i: "0.027 [0.011, 0.043], n 135", or why there is no value."""
        if series.texts is not None:
            return series.texts[i]
        fmt = self.value_format.format
        n = None if series.n is None or not np.isfinite(series.n[i]) else int(series.n[i])
        note = series.notes[i] if series.notes is not None and series.notes[i] else series.note
        if not np.isfinite(series.y[i]):
            if n is not None and self.min_n is not None and n < self.min_n:
                return f"not drawn: n {n} < {self.min_n}"
            return "no value" + ("" if n is None else f" (n {n})")
        text = fmt(series.y[i])
        if series.lo is not None and series.hi is not None and np.isfinite(series.lo[i]) and np.isfinite(series.hi[i]):
            text += f" [{fmt(series.lo[i])}, {fmt(series.hi[i])}]"
        if n is not None:
            text += f", n {n}"
        if note:
            text += f" ({note})"
        return text

    def readout_lines(self, x: float) -> list[str]:
        """What the readout says with the mouse at x (in data units, not log)."""
        if self.hover_by == "y":
            return [f"{name}: {self.describe(s, 0)}" for name, s in self.series.items()]
        if not self.series:
            return []
        if self.hover_point_name is not None:
            every_x = np.concatenate([s.x for s in self.series.values()])
            if self.log_x:
                every_x = every_x[every_x > 0]
            distance = np.abs(np.log10(every_x) - np.log10(x)) if self.log_x else np.abs(every_x - x)
            point = every_x[int(np.argmin(distance))]
            lines = [self.point_names.get(float(point), f"{self.hover_point_name} {point:g}")]
            for name, s in self.series.items():
                at = np.flatnonzero(s.x == point)
                if len(at):
                    lines.append(f"{name}: {self.describe(s, int(at[0]))}")
            return lines
        lines = []
        for name, s in self.series.items():
            ok = np.isfinite(s.y)
            if ok.any():
                i = int(np.argmin(np.abs(np.where(ok, s.x, np.inf) - x)))
                lines.append(f"{name}: {self.describe(s, i)}  (at {s.x[i]:g})")
        return lines

    def _readout_at(self, x: float, _y: float) -> list[str]:
        return self.readout_lines(10 ** x if self.log_x else x)


