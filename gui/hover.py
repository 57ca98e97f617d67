"""The one hover readout of the app's plots: a text box that follows the mouse over a pyqtgraph plot.

A plot gives `HoverReadout` a function from the point under the mouse (view coordinates: log10 on a log
axis) to the lines to show; the readout places the box beside the mouse, opening away from the nearer
edges and then pushed back inside the plot, so that a long readout never runs off the plot's edge
(issue 25 item 13), and hides it when the mouse leaves the plot. Every tab's plots can use it (the
Memory tab's line plots, bar charts and heatmaps do).
"""

from __future__ import annotations

from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF

LinesAt = Callable[[float, float], list[str]]


class HoverReadout:
    def __init__(self, view: pg.PlotWidget, lines_at: LinesAt, z: float = 100):
        self.view = view
        self.lines_at = lines_at
        self.box = pg.TextItem("", color="#222222", anchor=(0, 0), fill=pg.mkBrush(255, 255, 255, 230),
                               border=pg.mkPen("#bbbbbb"))
        self.box.setZValue(z)
        view.addItem(self.box, ignoreBounds=True)
        self.box.hide()  # an empty TextItem still paints its white box
        self._placed = QRectF()
        view.scene().sigMouseMoved.connect(self.move_to)
        clear_on_leave(view, self.clear)

    @property
    def text(self) -> str:
        """What the box shows ("" when it is hidden)."""
        return self.box.toPlainText() if self.box.isVisible() else ""

    def clear(self) -> None:
        self.box.setText("")
        self.box.hide()

    def move_to(self, scene_pos) -> None:
        """The mouse is at scene_pos: show what lies under it, or nothing outside the plot."""
        vb = self.view.getPlotItem().vb
        inside = vb.sceneBoundingRect()
        if not inside.contains(scene_pos):
            self.clear()
            return
        point = vb.mapSceneToView(scene_pos)
        lines = self.lines_at(point.x(), point.y())
        if not lines:
            self.clear()
            return
        self.box.setText("\n".join(lines))
        self.box.show()
        size = self.box.textItem.boundingRect()  # in pixels: the box ignores the view's scaling
        if size.height() > inside.height() and len(lines) > 2:  # taller than the plot: the first lines that fit
            keep = max(1, int(inside.height() / (size.height() / len(lines))) - 1)
            self.box.setText("\n".join([*lines[:keep], f"... and {len(lines) - keep} more"]))
            size = self.box.textItem.boundingRect()
        gap = 12.0
        right = scene_pos.x() > inside.center().x()
        low = scene_pos.y() > inside.center().y()
        left = scene_pos.x() - gap - size.width() if right else scene_pos.x() + gap
        top = scene_pos.y() - gap - size.height() if low else scene_pos.y() + gap
        # pushed back inside the plot: a readout wider than the room beside the mouse covers the mouse
        left = min(max(left, inside.left()), max(inside.left(), inside.right() - size.width()))
        top = min(max(top, inside.top()), max(inside.top(), inside.bottom() - size.height()))
        self.box.setPos(vb.mapSceneToView(QPointF(left, top)))
        self._placed = QRectF(left, top, size.width(), size.height())

    def scene_rect(self) -> QRectF:
        """Where the box is drawn, in scene coordinates (for the test that it stays inside the plot)."""
        return QRectF(self._placed)


class _LeaveFilter(QObject):
    def __init__(self, callback, parent):
        super().__init__(parent)
        self._callback = callback

    def eventFilter(self, _watched, event) -> bool:
        if event.type() == QEvent.Type.Leave:
            self._callback()
        return False


def clear_on_leave(view, callback) -> None:
    """Call `callback` when the mouse leaves a plot: a hover readout must not stay behind, showing
    values for a place the mouse is no longer at."""
    watcher = _LeaveFilter(callback, view)
    view.installEventFilter(watcher)
    view.viewport().installEventFilter(watcher)
