"""Small pyqtgraph helpers the Memory tab shares: a titled plot with a caption, mean lines with
confidence bands, and a hover readout that shows every series' value under the mouse."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from . import style


class CaptionedPlot(QWidget):
    """A plot with a bold title above and a one-line caption below (what to look for)."""

    def __init__(self, title: str, caption: str, x_label: str, y_label: str, parent=None,
                 log_x: bool = False, log_y: bool = False, height: int = 230):
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
        self.series: dict[str, tuple[np.ndarray, np.ndarray, str]] = {}  # name -> (x, y, unit)
        self._items: list = []
        self._readout = pg.TextItem("", color="#222222", anchor=(0, 1), fill=pg.mkBrush(255, 255, 255, 225))
        self._readout.setZValue(100)
        self.plot.addItem(self._readout, ignoreBounds=True)
        self._readout.hide()  # an empty TextItem still paints its white box
        self.plot.scene().sigMouseMoved.connect(self._hover)
        clear_on_leave(self.plot, self.clear_readout)
        self.value_format = "{:.3g}"
        self.hover_by = "x"  # "y" for horizontal bars: the readout lists each bar's length

    def clear(self) -> None:
        for item in self._items:
            self.plot.removeItem(item)
        self._items.clear()
        self.series.clear()
        self.clear_readout()

    def clear_readout(self) -> None:
        self._readout.setText("")
        self._readout.hide()

    @property
    def readout_text(self) -> str:
        """What the hover box shows ("" when it is hidden)."""
        return self._readout.toPlainText() if self._readout.isVisible() else ""

    def add(self, item) -> None:
        self.plot.addItem(item)
        self._items.append(item)

    def line(self, key: str, x, y, lo=None, hi=None, name: str | None = None, symbol=None) -> None:
        """A series in the colour and dash style of `key`, with an optional shaded 95% band."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if lo is not None and hi is not None and len(x):
            colour = pg.mkColor(style.model_colour(key))
            colour.setAlpha(40)
            lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
            ok = np.isfinite(lo) & np.isfinite(hi)  # a band cannot span missing bars
            lo_c = pg.PlotCurveItem(x[ok], lo[ok], pen=pg.mkPen(None))
            hi_c = pg.PlotCurveItem(x[ok], hi[ok], pen=pg.mkPen(None))
            band = pg.FillBetweenItem(lo_c, hi_c, brush=pg.mkBrush(colour))
            for item in (lo_c, hi_c, band):
                self.add(item)
        curve = pg.PlotDataItem(
            x, y, pen=style.pen(key), connect="finite", symbol=symbol, symbolSize=6,
            symbolBrush=style.model_colour(key), symbolPen=None,
        )
        self.add(curve)
        self.series[name or style.model_label(key)] = (x, y, key)

    def marker(self, key: str, x: float, y: float, tip: str) -> None:
        """A large dot in the key's colour (through PlotDataItem, so that log axes place it right)."""
        dot = pg.PlotDataItem([x], [y], pen=None, symbol="o", symbolSize=15,
                              symbolBrush=style.model_colour(key), symbolPen=pg.mkPen("k", width=1.5))
        dot.setToolTip(tip)
        self.add(dot)

    def power_of_two_ticks(self, axis: str, top: int) -> None:
        """Label a log axis 1, 2, 4, ... instead of pyqtgraph's crowded minor decades."""
        values = [2 ** i for i in range(int(np.log2(max(2, top))) + 1)]
        self.plot.getAxis(axis).setTicks([[(np.log10(v), str(v)) for v in values], []])

    def _hover(self, scene_pos) -> None:
        vb = self.plot.getPlotItem().vb
        if not self.series or not vb.sceneBoundingRect().contains(scene_pos):
            self.clear_readout()
            return
        point = vb.mapSceneToView(scene_pos)
        x = 10 ** point.x() if self.log_x else point.x()
        lines = []
        for name, (xs, ys, _key) in self.series.items():
            if self.hover_by == "y":
                lines.append(f"{name}: {self.value_format.format(xs[0])}")
                continue
            ok = np.isfinite(ys)
            if not ok.any():
                continue
            i = int(np.argmin(np.abs(np.where(ok, xs, np.inf) - x)))
            lines.append(f"{name}: {self.value_format.format(ys[i])}  (at {xs[i]:g})")
        self._readout.setText("\n".join(lines))
        self._readout.setPos(point.x(), point.y())
        self._readout.setVisible(bool(lines))



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
