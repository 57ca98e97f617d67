"""A number field that takes what a person types: 0.001, 1e-3 or 1E-3 alike, and refuses a value out of
range visibly (the field keeps its value and says why) instead of changing it silently.

QDoubleSpinBox's own validator drops the "e" of 1e-3 and reads "13", which it then clamps to its maximum:
the learning rate became 1.0 without a word (issue 25 item 6)."""

from __future__ import annotations

import math
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox

_PARTIAL = re.compile(r"[+-]?(\d*\.?\d*)([eE][+-]?\d*)?")  # what typing a number passes through


class ScientificSpinBox(QDoubleSpinBox):
    refused = Signal(str)  # why a typed value was not taken, in words

    def __init__(self, lo: float, hi: float, value: float, name: str, tip: str = "", parent=None):
        super().__init__(parent)
        self.name = name
        self.setKeyboardTracking(False)  # "1" on the way to "1e-3" is not a value
        self.setDecimals(12)  # the value keeps what was typed; the text shows it short (textFromValue)
        self.setRange(lo, hi)
        self.setValue(value)
        self.setSingleStep(10 ** math.floor(math.log10(max(value, lo, 1e-12))) if value > 0 else 1e-4)
        self.setToolTip(tip + (" " if tip else "") + f"({_short(lo)} to {_short(hi)}; 1e-3 means 0.001)")
        self.setAccessibleName(name)

    def textFromValue(self, value: float) -> str:
        return _short(value)

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        stripped = text.strip()
        try:
            value = float(stripped)
        except ValueError:
            partial = bool(_PARTIAL.fullmatch(stripped))
            return (QValidator.State.Intermediate if partial else QValidator.State.Invalid), text, pos
        if not math.isfinite(value):
            return QValidator.State.Invalid, text, pos
        ok = self.minimum() <= value <= self.maximum()
        return (QValidator.State.Acceptable if ok else QValidator.State.Intermediate), text, pos

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.take_typed()
        super().keyPressEvent(event)

    def focusOutEvent(self, event) -> None:
        self.take_typed()
        super().focusOutEvent(event)

    def take_typed(self) -> None:
        """Editing finished: take the typed number, or put the value back and say why (never clamp)."""
        typed = self.lineEdit().text().strip()
        shown = self.textFromValue(self.value())
        if typed == shown:
            return
        try:
            value = float(typed)
        except ValueError:
            value = None
        if value is not None and math.isfinite(value) and self.minimum() <= value <= self.maximum():
            self.setValue(value)
            return
        why = "is not a number" if value is None else f"is outside {_short(self.minimum())} to {_short(self.maximum())}"
        self.lineEdit().setText(shown)
        self.refused.emit(f"{self.name}: {typed!r} {why}; kept {shown}")


def _short(value: float) -> str:
    """0.006, 0.0001, 1e-05: the shortest text that reads back as the same number."""
    return f"{value:.10g}"
