"""A piano roll of one or more melodies on a time axis in bars, with bar lines, a shaded primer and a
playhead. Built on pyqtgraph: all notes of a part are one BarGraphItem, all bar lines one curve, so a
4,000-note tune redraws in a few milliseconds.

show_influence() draws what one note drew on (gui/influence_view.py decides which): the other notes
fade, each source note is lit in the row's colour, the more opaque the more weight, the strongest get
an arc to the note, and the note itself is outlined.

set_marks() shades bars of the piece (the Listen tab's copied bars, issue 27): pointing at a marked bar
puts its description first in the tooltip, and a right-click on one emits `markMenuRequested`.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainterPath
from PySide6.QtWidgets import QGraphicsPathItem

from . import style

_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def pitch_name(pitch: int) -> str:
    return f"{_NAMES[pitch % 12]}{pitch // 12 - 1}"


class _PitchAxis(pg.AxisItem):
    """Left axis labelled with note names on the Cs (and every pitch when zoomed in)."""

    def tickStrings(self, values, scale, spacing):
        return [pitch_name(round(v)) if abs(v - round(v)) < 1e-6 else "" for v in values]

    def tickValues(self, minVal, maxVal, size):
        """The Cs; the Gs too when there is room for them, every pitch when zoomed in. A label never
        overlaps another, nor hangs over an end of the axis (a short row once showed "C6" cut in half)."""
        if size <= 0 or maxVal <= minVal:
            return []
        text = QFontMetrics(self.style.get("tickFont") or self.font()).height()
        per = size / (maxVal - minVal)  # pixels per semitone
        half = 0.5 * text / per
        lo, hi = int(np.ceil(minVal + half)), int(np.floor(maxVal - half))
        cs = [p for p in range(lo, hi + 1) if p % 12 == 0]
        if per >= text:
            minor = [p for p in range(lo, hi + 1) if p % 12]
        elif 5 * per >= text:  # G is 5 semitones below the next C
            minor = [p for p in range(lo, hi + 1) if p % 12 == 7]
        else:
            minor = []
        return [(12, cs), (1, minor)]


class _BarAxis(pg.AxisItem):
    """Bottom axis numbering bars from 1, as musicians do: the line at x = 0 is where bar 1 starts."""

    def tickStrings(self, values, scale, spacing):
        return [str(round(v) + 1) if abs(v - round(v)) < 1e-6 else "" for v in values]

    def tickSpacing(self, minVal, maxVal, size):  # pyqtgraph's name
        """Every bar where its number fits, else every 2nd, 4th, 8th ... bar (1, 5, 9: phrases of four)."""
        if size <= 0 or maxVal <= minVal:
            return super().tickSpacing(minVal, maxVal, size)
        widest = str(int(abs(maxVal)) + 1)  # the longest number shown
        room = QFontMetrics(self.style.get("tickFont") or self.font()).horizontalAdvance(widest) + 8
        per_bar = size / (maxVal - minVal)
        step = 1
        while step * per_bar < room:
            step *= 2
        return [(float(step), 0.0)]


ARCS = 6  # arcs to the strongest sources; every source is shaded
FADED = 0.25  # the opacity of the notes as drawn while sources are lit over them


class PianoRoll(pg.PlotWidget):
    """set_parts() draws melodies; set_playhead() moves the playhead (in bars); hover shows the note.

    Signals, in bars of the time axis: `pointed` (the mouse moved over the plot), `picked` (a left
    click on it), `left` (the mouse left the widget) and `markMenuRequested` (a right-click on a marked bar)."""

    pointed = Signal(float)
    picked = Signal(float)
    left = Signal()
    markMenuRequested = Signal(float, QPoint)  # a right-click on a marked bar: (bar, global position)

    def __init__(self, parent=None, show_x_axis="label", min_height: int = 120):
        super().__init__(parent, axisItems={"left": _PitchAxis("left"), "bottom": _BarAxis("bottom")})
        self.setMinimumHeight(min_height)
        self.setMenuEnabled(False)
        self.hideButtons()
        plot = self.getPlotItem()
        plot.setMouseEnabled(x=True, y=False)
        plot.showGrid(x=False, y=False)
        plot.getAxis("left").setWidth(42)
        if show_x_axis == "label":
            plot.setLabel("bottom", "bar")
        elif not show_x_axis:
            plot.getAxis("bottom").setStyle(showValues=False)
        self._parts: list[tuple[np.ndarray, int, str]] = []  # (note array in bars, spb, label)
        self._note_items: list[pg.BarGraphItem] = []
        self._bar_lines = pg.PlotCurveItem(pen=pg.mkPen(style.BAR_LINE_COLOUR, width=1), connect="pairs")
        self.addItem(self._bar_lines)
        self._shade = pg.LinearRegionItem(
            values=(0, 0), movable=False, brush=pg.mkBrush(*style.PRIMER_SHADE), pen=pg.mkPen(None)
        )
        self._shade.setZValue(-10)
        self._shade.hide()
        self.addItem(self._shade)
        self._playhead = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(style.PLAYHEAD_COLOUR, width=2))
        self._playhead.setZValue(20)
        self._playhead.hide()
        self.addItem(self._playhead)
        self._message = pg.TextItem("", color="#777777", anchor=(0.5, 0.5))
        self.addItem(self._message)
        self.scene().sigMouseMoved.connect(self._hover)
        self.scene().sigMouseClicked.connect(self._clicked)
        self._total_bars = 0.0
        self._influence_items: list = []
        self.influence_shown: dict | None = None  # {"target": (onset, pitch, length), "sources": [...]} in bars
        self._influence_end = pg.InfiniteLine(angle=90, movable=False,
                                              pen=pg.mkPen("#777777", width=1, style=Qt.PenStyle.DashLine))
        self._influence_end.hide()
        self.addItem(self._influence_end)
        self._pitch_view = (60.0, 72.0)  # the pitch range shown, for bands that span it
        self.marked_bands: list[tuple[float, float]] = []
        self._mark_item = None
        self._describe_mark = None

    # ---- content -------------------------------------------------------------------------------
    def clear_parts(self, message: str = "", reset_view: bool = True) -> None:
        self.clear_influence()
        self.set_influence_end(None)
        for item in self._note_items:
            self.removeItem(item)
        self._note_items.clear()
        self._parts.clear()
        self._bar_lines.setData([], [])
        self._shade.hide()
        self._playhead.hide()
        self.set_marks([])
        self._message.setText(message)
        self._wrap_message()
        if reset_view:
            self.setXRange(0, 8, padding=0)
            self.setYRange(60, 84, padding=0)
        x0, x1 = self.getPlotItem().vb.viewRange()[0]
        y0, y1 = self.getPlotItem().vb.viewRange()[1]
        self._message.setPos((x0 + x1) / 2, (y0 + y1) / 2)

    def _wrap_message(self) -> None:
        """A message in the roll (why it is empty) wraps within the plot's width instead of running off it."""
        self._message.setTextWidth(max(80, self.width() - int(self.getPlotItem().getAxis("left").width()) - 24))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if getattr(self, "_message", None) is not None and self._message.toPlainText():  # resized while built too
            self._wrap_message()

    def set_parts(self, parts, shade_bars: float = 0.0, total_bars: float | None = None) -> None:
        """parts: (melody, colour, start_bar, label) tuples, each drawn from start_bar on.

        The time axis is in bars of the first part's meter; shade_bars shades [0, shade_bars) (the primer).
        """
        self.clear_parts(reset_view=False)
        self._message.setText("")
        if not parts:
            return
        spb = parts[0][0].steps_per_bar
        lo_p, hi_p, end = 127, 0, 0.0
        for melody, colour, start_bar, label in parts:
            notes = melody.note_array().astype(float)
            if len(notes):
                item = pg.BarGraphItem(
                    x0=notes[:, 0] / spb + start_bar,
                    y0=notes[:, 1] - 0.42,
                    width=notes[:, 2] / spb,
                    height=0.84,
                    brush=pg.mkBrush(colour),
                    pen=pg.mkPen(pg.mkColor(colour).darker(140), width=0.5),
                )
                self.addItem(item)
                self._note_items.append(item)
                lo_p, hi_p = min(lo_p, int(notes[:, 1].min())), max(hi_p, int(notes[:, 1].max()))
                converted = notes.copy()
                converted[:, 0] = notes[:, 0] / spb + start_bar
                converted[:, 2] = notes[:, 2] / spb
                self._parts.append((converted, spb, label))
            end = max(end, start_bar + melody.n_steps / spb)
        if lo_p > hi_p:
            lo_p, hi_p = 60, 72
        end = float(total_bars) if total_bars is not None else end
        self._total_bars = end
        n = int(np.ceil(end))
        xs = np.repeat(np.arange(n + 1, dtype=float), 2)
        ys = np.tile([lo_p - 2.0, hi_p + 2.0], n + 1)
        self._bar_lines.setData(xs, ys)
        if shade_bars > 0:
            self._shade.setRegion((0, shade_bars))
            self._shade.show()
        self._pitch_view = (lo_p - 1.5, hi_p + 1.5)
        self.setYRange(*self._pitch_view, padding=0)
        self.setXRange(0, max(end, 1.0), padding=0.01)
        self.getPlotItem().vb.setLimits(xMin=-1, xMax=max(end, 1.0) + 1)

    def show_bars(self, start: float, stop: float) -> None:
        """Zoom the time axis to bars [start, stop) (clipped to the piece)."""
        stop = min(stop, max(self._total_bars, 1.0))
        self.setXRange(start, stop, padding=0.01)

    @property
    def total_bars(self) -> float:
        return self._total_bars

    def playhead_bar(self) -> float:
        """Where the playhead is, in bars (-1 when hidden)."""
        return float(self._playhead.value()) if self._playhead.isVisible() else -1.0

    def set_playhead(self, bar: float | None) -> None:
        if bar is None:
            self._playhead.hide()
            return
        self._playhead.setValue(bar)
        self._playhead.show()

    # ---- marked bars ---------------------------------------------------------------------------
    def set_marks(self, bands, describe=None, colour=(201, 138, 0, 70)) -> None:
        """Shade bars [first, end) of each band over the whole pitch range, behind the notes (drawn after
        set_parts). describe(bar) -> the text a pointer on that bar shows first (None: no text)."""
        if self._mark_item is not None:
            self.removeItem(self._mark_item)
            self._mark_item = None
        self.marked_bands = [(float(a), float(b)) for a, b in bands]
        self._describe_mark = describe
        if not self.marked_bands:
            return
        lo, hi = self._pitch_view
        self._mark_item = pg.BarGraphItem(x0=[a for a, _ in self.marked_bands], width=[b - a for a, b in self.marked_bands],
                                          y0=lo, height=hi - lo, brush=pg.mkBrush(*colour),
                                          pen=pg.mkPen(pg.mkColor(*colour[:3]), width=1))
        self._mark_item.setZValue(-9)  # over the primer's shade, under bar lines and notes
        self.addItem(self._mark_item)

    def mark_at(self, bar: float) -> bool:
        return any(a <= bar < b for a, b in self.marked_bands)

    def view_pos(self, bar: float, pitch: float | None = None) -> QPoint:
        """Widget coordinates of a point of the plot (a test or a menu aims at a bar this way)."""
        vb = self.getPlotItem().vb
        if pitch is None:
            pitch = sum(vb.viewRange()[1]) / 2
        return self.mapFromScene(vb.mapViewToScene(QPointF(bar, pitch)))

    # ---- influence -----------------------------------------------------------------------------
    def show_influence(self, target, sources, colour: str, dashed: bool = False) -> None:
        """Draw what one note drew on. target = (onset, pitch, length) and sources = [(onset, pitch,
        length, weight), ...], in bars and with the engine's weights; opacity and arc width are in
        proportion to each weight relative to the strongest (weights say where a note drew, not how strongly: they are
        normalised per note). dashed: the human row's repeat, not an attribution."""
        self.clear_influence()
        self.influence_shown = {"target": tuple(target), "sources": [tuple(s) for s in sources]}
        for item in self._note_items:
            item.setOpacity(FADED)
        base = pg.mkColor(colour)
        strongest = max((s[3] for s in sources), default=0.0)
        lit = [s for s in sources if s[3] > 0]
        if lit and strongest > 0:
            brushes = []
            for *_rest, weight in lit:
                c = QColor(base)
                c.setAlphaF(float(weight / strongest))
                brushes.append(pg.mkBrush(c))
            shade = pg.BarGraphItem(x0=[s[0] for s in lit], y0=[s[1] - 0.42 for s in lit], width=[s[2] for s in lit],
                                    height=0.84, brushes=brushes, pen=pg.mkPen(None))
            self._add_influence_item(shade, 15)
            for onset, pitch, length, weight in sorted(lit, key=lambda s: -s[3])[:ARCS]:
                self._add_influence_item(self._arc((onset + length / 2, pitch), (target[0], target[1]),
                                                   base, weight / strongest, dashed), 16)
        outline = pg.BarGraphItem(x0=[target[0]], y0=[target[1] - 0.42], width=[target[2]], height=0.84,
                                  brush=pg.mkBrush(base), pen=pg.mkPen("#000000", width=2))
        self._add_influence_item(outline, 17)

    def clear_influence(self) -> None:
        for item in self._influence_items:
            self.removeItem(item)
        self._influence_items.clear()
        self.influence_shown = None
        for item in self._note_items:
            item.setOpacity(1.0)

    def set_influence_end(self, bar: float | None) -> None:
        """A dashed line where the attributed bars end (None: no line)."""
        if bar is None:
            self._influence_end.hide()
        else:
            self._influence_end.setValue(bar)
            self._influence_end.show()

    def _add_influence_item(self, item, z: float) -> None:
        item.setZValue(z)
        self.addItem(item)
        self._influence_items.append(item)

    def _arc(self, start, end, colour: QColor, strength: float, dashed: bool) -> QGraphicsPathItem:
        """A curve from a source note up and over to the note it fed, kept below the top of the view."""
        top = self.getPlotItem().vb.viewRange()[1][1]
        peak = min(max(start[1], end[1]) + 2.0 + 0.5 * abs(end[0] - start[0]), top - 0.3)
        path = QPainterPath(QPointF(*start))
        # a quadratic curve peaks halfway between its ends' level and its control point
        path.quadTo(QPointF((start[0] + end[0]) / 2, 2 * peak - (start[1] + end[1]) / 2), QPointF(*end))
        c = QColor(colour)
        c.setAlphaF(0.35 + 0.65 * strength)
        pen = pg.mkPen(c, width=1.0 + 2.5 * strength,
                       style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
        item = QGraphicsPathItem(path)
        item.setPen(pen)
        return item

    # ---- mouse ---------------------------------------------------------------------------------
    def leaveEvent(self, event) -> None:
        super().leaveEvent(event)
        self.left.emit()

    def _clicked(self, event) -> None:
        vb = self.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        x = vb.mapSceneToView(event.scenePos()).x()
        if event.button() == Qt.MouseButton.LeftButton:
            self.picked.emit(x)
        elif event.button() == Qt.MouseButton.RightButton and self.mark_at(x):
            self.markMenuRequested.emit(x, event.screenPos().toPoint())

    def _hover(self, scene_pos) -> None:
        vb = self.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(scene_pos):
            return
        point = vb.mapSceneToView(scene_pos)
        x, y = point.x(), point.y()
        self.pointed.emit(x)
        text = f"bar {int(np.floor(x)) + 1}"
        for notes, spb, label in self._parts:
            hit = (notes[:, 0] <= x) & (x < notes[:, 0] + notes[:, 2]) & (np.abs(notes[:, 1] - y) <= 0.5)
            if hit.any():
                onset, pitch, dur = notes[np.argmax(hit)]
                beats = dur * spb / 4
                text = f"{label}: {pitch_name(int(pitch))}, bar {int(np.floor(onset)) + 1}, {beats:g} beats"
                break
        if self._describe_mark is not None and self.mark_at(x):
            text = f"{self._describe_mark(x)}\n{text}"
        self.setToolTip(text)
