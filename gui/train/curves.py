"""The Train tab's loss curves: each model's training loss (thin) and validation loss (thick, with dots) as
growing series, drawn on demand (the tab's timer redraws only what changed) and read out under the mouse."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from .. import style
from ..hover import HoverReadout


class Series:
    """Growing arrays of one model's curve points (amortised appends, no copies on redraw)."""

    def __init__(self):
        self.x: list[float] = []
        self.y: list[float] = []

    def add(self, x, y) -> None:
        self.x.append(float(x))
        self.y.append(float(y))


class TrainCurves(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        from engine.models.registry import MODEL_KEYS

        self.train: dict[str, Series] = {}
        self.valid: dict[str, Series] = {}
        self.plot = pg.PlotWidget()
        self.plot.setAccessibleName("plot: training and validation loss of each model against the training step")
        self.plot.setLabel("left", "bits per token")
        self.plot.setLabel("bottom", "training step")
        # No grid: pyqtgraph's alpha-blended grid costs tens of ms a repaint while training runs, which
        # the user feels as a sluggish window (gui_latency_ms in bench). Reference lines do the job.
        for level in (1, 2, 3, 4, 5):
            self.plot.addItem(pg.InfiniteLine(pos=level, angle=0, pen=pg.mkPen(0, 0, 0, 25)), ignoreBounds=True)
        self.plot.addLegend(offset=(-10, 10), labelTextSize="9pt")
        self.train_curves: dict[str, pg.PlotDataItem] = {}
        self.valid_curves: dict[str, pg.PlotDataItem] = {}
        for key in MODEL_KEYS:
            colour = pg.mkColor(style.model_colour(key))
            faint = pg.mkColor(colour)
            faint.setAlpha(110)
            self.train_curves[key] = self.plot.plot([], [], pen=pg.mkPen(faint, width=1), name=None, antialias=False)
            self.valid_curves[key] = self.plot.plot(
                [], [], pen=pg.mkPen(colour, width=2.5), symbol="o", symbolSize=5, symbolBrush=colour,
                symbolPen=None, name=f"{style.model_label(key)}", antialias=False,
            )
        # the app's one hover readout: it opens away from the nearer edges and stays inside the plot
        self.hover = HoverReadout(self.plot, self._hover_lines, z=50)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(style.caption(
            "Thin lines: training loss; thick lines with dots: validation loss on tunes the models never see. "
            "Lower is better; the gap between red and the others is what memory is worth."
        ))

    def add(self, key: str, step, train_bpt, valid_bpt) -> None:
        """A point of either curve (None: that curve has none at this step)."""
        if train_bpt is not None:
            self.train.setdefault(key, Series()).add(step, train_bpt)
        if valid_bpt is not None:
            self.valid.setdefault(key, Series()).add(step, valid_bpt)

    def draw(self, key: str) -> None:
        if key in self.train:
            self.train_curves[key].setData(self.train[key].x, self.train[key].y)
        if key in self.valid:
            self.valid_curves[key].setData(self.valid[key].x, self.valid[key].y)

    def reset(self) -> None:
        self.train, self.valid = {}, {}
        for key in self.train_curves:
            self.train_curves[key].setData([], [])
            self.valid_curves[key].setData([], [])

    def _hover_lines(self, x: float, _y: float) -> list[str]:
        """Each model's validation loss at the point nearest the mouse's step."""
        lines = []
        for key, series in self.valid.items():
            if series.x:
                i = int(np.argmin(np.abs(np.asarray(series.x) - x)))
                lines.append(f"{style.model_label(key)}: {series.y[i]:.3f} bits (step {series.x[i]:.0f})")
        return lines
