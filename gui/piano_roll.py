"""A piano roll of one or more melodies on a time axis in bars, with bar lines, a shaded primer and a
playhead. Built on pyqtgraph: all notes of a part are one BarGraphItem, all bar lines one curve, so a
4,000-note tune redraws in a few milliseconds.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFontMetrics

from . import style

_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def pitch_name(pitch: int) -> str:
    return f"{_NAMES[pitch % 12]}{pitch // 12 - 1}"


class _PitchAxis(pg.AxisItem):
    """Left axis labelled with note names on the Cs (and every pitch when zoomed in)."""

    def tickStrings(self, values, scale, spacing):
        return [pitch_name(int(round(v))) if abs(v - round(v)) < 1e-6 else "" for v in values]

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
        return [str(int(round(v)) + 1) if abs(v - round(v)) < 1e-6 else "" for v in values]


class PianoRoll(pg.PlotWidget):
    """set_parts() draws melodies; set_playhead() moves the playhead (in bars); hover shows the note."""

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
        self._total_bars = 0.0

    # ---- content -------------------------------------------------------------------------------
    def clear_parts(self, message: str = "", reset_view: bool = True) -> None:
        for item in self._note_items:
            self.removeItem(item)
        self._note_items.clear()
        self._parts.clear()
        self._bar_lines.setData([], [])
        self._shade.hide()
        self._playhead.hide()
        self._message.setText(message)
        if reset_view:
            self.setXRange(0, 8, padding=0)
            self.setYRange(60, 84, padding=0)
        x0, x1 = self.getPlotItem().vb.viewRange()[0]
        y0, y1 = self.getPlotItem().vb.viewRange()[1]
        self._message.setPos((x0 + x1) / 2, (y0 + y1) / 2)

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
        self.setYRange(lo_p - 1.5, hi_p + 1.5, padding=0)
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

    # ---- hover ---------------------------------------------------------------------------------
    def _hover(self, scene_pos) -> None:
        vb = self.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(scene_pos):
            return
        point = vb.mapSceneToView(scene_pos)
        x, y = point.x(), point.y()
        text = f"bar {int(np.floor(x)) + 1}"
        for notes, spb, label in self._parts:
            hit = (notes[:, 0] <= x) & (x < notes[:, 0] + notes[:, 2]) & (np.abs(notes[:, 1] - y) <= 0.5)
            if hit.any():
                onset, pitch, dur = notes[np.argmax(hit)]
                beats = dur * spb / 4
                text = f"{label}: {pitch_name(int(pitch))}, bar {int(np.floor(onset)) + 1}, {beats:g} beats"
                break
        self.setToolTip(text)
