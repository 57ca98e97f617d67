"""Self-similarity heatmaps of primer + continuation, one per source (every model of the report and the
human tune), four to a row so that seven models and the human fit a 1024-pixel window, with one colour
scale. A heatmap is kept between reports and its image updated in place; hovering one reads the two
bars and their similarity through the shared hover readout."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from .. import style
from ..hover import HoverReadout
from . import report_data
from .report_data import floats

PER_ROW = 4
TITLE = "<b>Self-similarity of primer + continuation</b>"


class Heatmap:
    def __init__(self, cmap):
        self.matrix = np.zeros((0, 0))
        self.source = ""
        self.view = pg.PlotWidget()
        view = self.view
        view.setMinimumWidth(110)
        view.setMaximumWidth(230)
        view.setFixedHeight(200)
        view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        view.getPlotItem().setAspectLocked(True)
        view.setMenuEnabled(False)
        view.setMouseEnabled(False, False)
        view.hideButtons()
        view.getPlotItem().invertY(True)
        view.getPlotItem().hideAxis("left")
        view.getPlotItem().hideAxis("bottom")
        self.image = pg.ImageItem()
        self.image.setLookupTable(cmap.getLookupTable(0.0, 1.0, 256))
        view.addItem(self.image)
        self.box = pg.QtWidgets.QGraphicsRectItem(0, 0, 0, 0)
        self.box.setPen(pg.mkPen("w", width=1, style=Qt.PenStyle.DashLine))
        view.addItem(self.box)
        self.hover = HoverReadout(view, self._lines_at)

    def show(self, source: str, matrix: np.ndarray, primer_bars: int) -> None:
        self.source, self.matrix = source, matrix
        self.view.setTitle(f"<span style='color:{style.model_colour(source)}'>"
                           f"{style.model_label(source).split(' (')[0]}</span>", size="9pt")
        self.view.setAccessibleName(f"self-similarity heatmap of {style.model_label(source)}")
        self.image.setImage(np.nan_to_num(matrix.T, nan=0.0), levels=(0, 1))
        self.box.setRect(0, 0, primer_bars, primer_bars)
        self.box.setVisible(primer_bars > 0)
        self.view.getPlotItem().autoRange()

    def _lines_at(self, x: float, y: float) -> list[str]:
        i, j = int(np.floor(y)), int(np.floor(x))
        if 0 <= i < self.matrix.shape[0] and 0 <= j < self.matrix.shape[1]:
            return [f"{style.model_label(self.source)}", f"bars {i + 1} and {j + 1}: similarity {self.matrix[i, j]:.2f}"]
        return []


class SelfSimilarity(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.cmap = pg.colormap.get("viridis")
        self.title = QLabel(TITLE)
        self.grid = QGridLayout()
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.pool: list[Heatmap] = []
        self.views: dict[str, pg.PlotWidget] = {}  # source -> its heatmap, as shown now
        self.scale = _colour_scale(self.cmap, "similarity")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addLayout(self.grid, 1)
        row.addWidget(self.scale)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(row)
        layout.addWidget(style.caption(
            "Bright squares off the diagonal are bars that repeat earlier bars. The human tune shows a "
            "grid of repeats; a model with memory shows it too, a forgetful one only the diagonal. "
            "The primer is the top-left block."))
        self.scale.hide()

    def clear(self) -> None:
        for heatmap in self.pool:
            heatmap.view.hide()
        self.views = {}
        self.scale.hide()

    def show_report(self, report: dict) -> None:
        self.clear()
        settings = report.get("settings", {})
        t = settings.get("per_bar_temperature")
        self.title.setText(TITLE + (f" (temperature {t}, all meters)" if t is not None else ""))
        found = report.get("self_similarity") or {}
        sources = [s for s in [*report_data.models(report), "human"] if found.get(s)]
        while len(self.pool) < len(sources):
            heatmap = Heatmap(self.cmap)
            self.pool.append(heatmap)
            self.grid.addWidget(heatmap.view, (len(self.pool) - 1) // PER_ROW, (len(self.pool) - 1) % PER_ROW)
        for heatmap, src in zip(self.pool, sources):
            heatmap.show(src, floats(found[src]), int(settings.get("primer_bars", 0)))
            heatmap.view.show()
            self.views[src] = heatmap.view
        self.scale.setVisible(bool(sources))

    def heatmap(self, source: str) -> Heatmap:
        return next(h for h in self.pool if h.source == source and h.view.isVisible())


def _colour_scale(cmap, label: str):
    """A vertical colour bar from 0 to 1 in the heatmaps' colours: what a colour means."""
    widget = pg.GraphicsLayoutWidget()
    widget.setFixedSize(90, 200)
    bar = pg.ColorBarItem(values=(0, 1), colorMap=cmap, interactive=False, width=14, label=label)
    bar.getAxis("right").setStyle(tickLength=4)
    widget.addItem(bar)
    widget.setObjectName("colourScale")
    return widget
