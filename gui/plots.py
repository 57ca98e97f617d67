"""Small pyqtgraph helpers the Memory tab shares: a titled plot with a caption, mean lines with
confidence bands, horizontal bars with intervals, and a hover readout that shows every series' value
under the mouse, with its interval and the number of cases it rests on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from . import style


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


@dataclass
class Bar:
    """One horizontal bar: a source's value with its interval, and what it rests on."""

    key: str
    value: float
    lo: float | None = None
    hi: float | None = None
    n: int | None = None
    note: str = ""


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
        self.series: dict[str, Series] = {}  # the name the readout gives it -> what is drawn
        self.marks: list[tuple[float, str, str]] = []  # vertical lines drawn: (x, label, tooltip)
        self._items: list = []
        self._readout = pg.TextItem("", color="#222222", anchor=(0, 1), fill=pg.mkBrush(255, 255, 255, 225))
        self._readout.setZValue(100)
        self.plot.addItem(self._readout, ignoreBounds=True)
        self._readout.hide()  # an empty TextItem still paints its white box
        # what the plot says when it has nothing to draw ("too little data ..."), in the middle of the view
        self._notice = pg.TextItem("", color="#8a4b00", anchor=(0.5, 0.5), fill=pg.mkBrush(255, 255, 255, 235),
                                   border=pg.mkPen("#cccccc"))
        self._notice.setZValue(90)
        self.plot.addItem(self._notice, ignoreBounds=True)
        self._notice.hide()
        self.plot.getPlotItem().vb.sigRangeChanged.connect(self._place_notice)
        self.plot.scene().sigMouseMoved.connect(self._hover)
        clear_on_leave(self.plot, self.clear_readout)
        self.value_format = value_format
        self.hover_by = "x"  # "y" for horizontal bars: the readout lists each bar's length
        # per-bar plots: the readout names the bar under the mouse and reads every series there (a null
        # is said, with its n, rather than skipped); other plots read each series' nearest value
        self.hover_point_name = hover_point_name
        self.min_n: int | None = None  # below it a report leaves a mean out: the readout says so

    def clear(self) -> None:
        for item in self._items:
            self.plot.removeItem(item)
        self._items.clear()
        self.series.clear()
        self.marks.clear()
        self.clear_readout()
        self.set_notice("")

    def clear_readout(self) -> None:
        self._readout.setText("")
        self._readout.hide()

    @property
    def readout_text(self) -> str:
        """What the hover box shows ("" when it is hidden)."""
        return self._readout.toPlainText() if self._readout.isVisible() else ""

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
             line_style: str | None = None, width: float = 2.0) -> None:
        """A series in the colour and line style of `key` (or `line_style`), with a shaded 95% band
        where the interval exists (a report leaves it null where fewer than 2 values stand behind it)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if lo is not None and hi is not None:
            lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
            colour = pg.mkColor(style.model_colour(key))
            colour.setAlpha(40)
            for run in _finite_runs(np.isfinite(lo) & np.isfinite(hi)):  # a band never spans a gap
                lo_c = pg.PlotCurveItem(x[run], lo[run], pen=pg.mkPen(None))
                hi_c = pg.PlotCurveItem(x[run], hi[run], pen=pg.mkPen(None))
                for item in (lo_c, hi_c, pg.FillBetweenItem(lo_c, hi_c, brush=pg.mkBrush(colour))):
                    self.add(item)
        curve = pg.PlotDataItem(
            x, y, pen=style.pen(key, width, line_style), connect="finite", symbol=symbol, symbolSize=6,
            symbolBrush=style.model_colour(key), symbolPen=None,
        )
        self.add(curve)
        self.series[name or style.model_label(key)] = Series(
            x, y, key, lo, hi, None if n is None else np.asarray(n, dtype=float))

    def marker(self, key: str, x: float, y: float, tip: str) -> None:
        """A large dot in the key's colour (through PlotDataItem, so that log axes place it right)."""
        dot = pg.PlotDataItem([x], [y], pen=None, symbol="o", symbolSize=15,
                              symbolBrush=style.model_colour(key), symbolPen=pg.mkPen("k", width=1.5))
        dot.setToolTip(tip)
        self.add(dot)

    def vline(self, x: float, colour: str, label: str = "", line_style: str = "dashed", label_at: float = 0.95,
              tip: str = "") -> None:
        """A vertical marker line (a window edge, a threshold) with an optional label along it (label_at:
        0 = the bottom of the view, 1 = the top) and a tooltip saying what it marks."""
        line = pg.InfiniteLine(pos=x, angle=90, movable=False,
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

    def bars(self, bars: list[Bar]) -> np.ndarray:
        """Horizontal bars, the first on top, each in its source's colour with its interval as a
        whisker; the sources' names read along the left axis (five fit at any width, where names
        under vertical bars ran into each other in half a 1024-pixel window). Returns the bars' y."""
        from PySide6.QtGui import QFontMetrics

        self.hover_by = "y"
        self.plot.getPlotItem().invertY(True)
        ys = np.arange(len(bars), dtype=float)
        if not bars:
            return ys
        values = np.array([b.value for b in bars], dtype=float)
        self.add(pg.BarGraphItem(x0=0, y=ys, width=values, height=0.6,
                                 brushes=[pg.mkBrush(style.model_colour(b.key)) for b in bars],
                                 pens=[style.pen(b.key, 1.0) for b in bars]))
        ranged = [i for i, b in enumerate(bars) if b.lo is not None and b.hi is not None]
        if ranged:
            lo = np.array([bars[i].lo for i in ranged], dtype=float)
            hi = np.array([bars[i].hi for i in ranged], dtype=float)
            self.add(pg.ErrorBarItem(x=values[ranged], y=ys[ranged], left=values[ranged] - lo,
                                     right=hi - values[ranged], beam=0.25, pen=pg.mkPen("#222222", width=1.3)))
        left = self.plot.getAxis("left")
        labels = [style.model_label(b.key) for b in bars]
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
        fmt = self.value_format.format
        n = None if series.n is None or not np.isfinite(series.n[i]) else int(series.n[i])
        if not np.isfinite(series.y[i]):
            if n is not None and self.min_n is not None and n < self.min_n:
                return f"not drawn: n {n} < {self.min_n}"
            return "no value" + ("" if n is None else f" (n {n})")
        text = fmt(series.y[i])
        if series.lo is not None and series.hi is not None and np.isfinite(series.lo[i]) and np.isfinite(series.hi[i]):
            text += f" [{fmt(series.lo[i])}, {fmt(series.hi[i])}]"
        if n is not None:
            text += f", n {n}"
        if series.note:
            text += f" ({series.note})"
        return text

    def readout_lines(self, x: float) -> list[str]:
        """What the readout says with the mouse at x (in data units, not log)."""
        lines = []
        if self.hover_by == "y":
            return [f"{name}: {self.describe(s, 0)}" for name, s in self.series.items()]
        if self.hover_point_name is not None:
            every_x = np.concatenate([s.x for s in self.series.values()])
            point = every_x[int(np.argmin(np.abs(every_x - x)))]
            lines.append(f"{self.hover_point_name} {point:g}")
            for name, s in self.series.items():
                at = np.flatnonzero(s.x == point)
                if len(at):
                    lines.append(f"{name}: {self.describe(s, int(at[0]))}")
            return lines
        for name, s in self.series.items():
            ok = np.isfinite(s.y)
            if ok.any():
                i = int(np.argmin(np.abs(np.where(ok, s.x, np.inf) - x)))
                lines.append(f"{name}: {self.describe(s, i)}  (at {s.x[i]:g})")
        return lines

    def _hover(self, scene_pos) -> None:
        vb = self.plot.getPlotItem().vb
        if not self.series or not vb.sceneBoundingRect().contains(scene_pos):
            self.clear_readout()
            return
        point = vb.mapSceneToView(scene_pos)
        lines = self.readout_lines(10 ** point.x() if self.log_x else point.x())
        self._readout.setText("\n".join(lines))
        # the box opens away from the nearer edges, so that a long readout stays inside the plot
        inside = vb.sceneBoundingRect()
        right = scene_pos.x() > inside.center().x()
        low = scene_pos.y() > inside.center().y()
        self._readout.setAnchor((1 if right else 0, 1 if low else 0))
        self._readout.setPos(point.x(), point.y())
        self._readout.setVisible(bool(lines))


def _finite_runs(ok: np.ndarray) -> list[slice]:
    """The contiguous stretches where `ok` holds, as slices."""
    edges = np.diff(np.concatenate([[0], ok.astype(int), [0]]))
    return [slice(a, b) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


class _LeaveFilter(QObject):
    def __init__(self, callback, parent):
        super().__init__(parent)
        self._callback = callback

    def eventFilter(self, _watched, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Leave:
            self._callback()
        return False


def clear_on_leave(view, callback) -> None:
    """Call `callback` when the mouse leaves a plot: a hover readout must not stay behind, showing
    values for a place the mouse is no longer at."""
    watcher = _LeaveFilter(callback, view)
    view.installEventFilter(watcher)
    view.viewport().installEventFilter(watcher)
