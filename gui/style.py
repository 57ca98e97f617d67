"""Colours, fonts and small look-and-feel helpers shared by every tab.

Model colours come from the engine's registry so that plots, legends and files agree everywhere.
"""

from __future__ import annotations

HUMAN_COLOUR = "#333333"  # the real continuation: dashed
FLOOR_COLOUR = "#999999"  # bars of a different tune: dotted
PRIMER_SHADE = (120, 120, 120, 40)  # the primer region behind a piano roll
PLAYHEAD_COLOUR = "#e377c2"
BAR_LINE_COLOUR = (0, 0, 0, 45)
BACKGROUND = "w"
FOREGROUND = "#222222"


def model_colour(key: str) -> str:
    from engine.models.registry import MODEL_COLOURS

    if key == "human":
        return HUMAN_COLOUR
    if key == "floor":
        return FLOOR_COLOUR
    return MODEL_COLOURS.get(key, "#555555")


def model_label(key: str) -> str:
    from engine.models.registry import MODEL_LABELS

    if key == "human":
        return "human (the real continuation)"
    if key == "floor":
        return "floor (a different tune)"
    return MODEL_LABELS.get(key, key)


def configure_pyqtgraph() -> None:
    """White plots with dark axes read better in a classroom projector than pyqtgraph's black default."""
    import pyqtgraph as pg

    pg.setConfigOptions(background=BACKGROUND, foreground=FOREGROUND, antialias=True)


def pen(key: str, width: float = 2.0):
    """The pen for a series: models solid, the human reference dashed, the floor dotted."""
    import pyqtgraph as pg
    from PySide6.QtCore import Qt

    style = {"human": Qt.PenStyle.DashLine, "floor": Qt.PenStyle.DotLine}.get(key, Qt.PenStyle.SolidLine)
    return pg.mkPen(model_colour(key), width=width, style=style)


def caption(text: str):
    """A one-line grey caption under a plot saying what to look for."""
    from PySide6.QtWidgets import QLabel

    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet("color: #555555; font-size: 11px;")
    return label


def swatch_icon(colour: str, size: int = 12):
    """A small filled square in a model's colour, for checkboxes and list rows."""
    from PySide6.QtGui import QColor, QIcon, QPixmap

    pix = QPixmap(size, size)
    pix.fill(QColor(colour))
    return QIcon(pix)


def spin_box(lo: int, hi: int, value: int, tip: str):
    """An integer box with its range, starting value and a tooltip that says what it sets."""
    from PySide6.QtWidgets import QSpinBox

    box = QSpinBox(minimum=lo, maximum=hi)
    box.setValue(int(value))
    box.setToolTip(tip)
    return box
