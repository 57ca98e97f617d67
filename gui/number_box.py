"""The app's number fields: they take what a person types (0.001, 1e-3 or 1E-3 alike; 1e3 in a whole-number
field) and refuse what they cannot take visibly (the field keeps its value and `refused` says why, which the
window shows in its message area) instead of changing it silently (issue 25 item 6).

Qt's own validators drop a key they cannot place: the "e" of 1e-3 vanished and "13" was read, which a
QDoubleSpinBox clamped to its maximum (the learning rate became 1.0 without a word), a whole-number field kept
13, and a number past the maximum lost its last digits. Here every keystroke is let through while the text
can still become a number, and the text is judged once, when editing ends (Enter or leaving the field).

The same holds for precision: a QDoubleSpinBox with 2 decimals made 0.123 into 0.12 without a word. A float
field keeps what is typed to KEPT_DECIMALS places, as the learning-rate box keeps 1e-3, and shows it (0.123,
not 0.12; 1.00 still shows its usual places); a number with more places than that is refused, visibly.
"""

from __future__ import annotations

import math
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QAbstractSpinBox, QDoubleSpinBox, QSpinBox

KEPT_DECIMALS = 12  # what a float field keeps of a typed number (the learning rate's 1e-12 included)
_PARTIAL = re.compile(r"[+-]?(\d*\.?\d*)([eE][+-]?\d*)?")  # what typing a number passes through


def _short(value: float) -> str:
    """0.006, 0.0001, 1e-05: the shortest text that reads back as the same number."""
    return f"{value:.10g}"


class _TypedNumber:
    """What QSpinBox and QDoubleSpinBox share here (a mixin placed before the Qt class)."""

    whole = False  # a whole-number field

    def _typed_setup(self) -> None:
        self.setKeyboardTracking(False)  # "1" on the way to "1e-3" is not a value

    def _bare(self, text: str) -> str:
        """The typed text without the field's prefix and unit."""
        text = text.strip()
        prefix, suffix = self.prefix().strip(), self.suffix().strip()
        if prefix and text.startswith(prefix):
            text = text[len(prefix):]
        if suffix and text.endswith(suffix):
            text = text[: -len(suffix)]
        return text.strip()

    def _special(self, text: str) -> bool:
        """The text is the field's word for its minimum ("auto")."""
        special = self.specialValueText()
        return bool(special) and text.casefold() == special.casefold()

    def _number(self, text: str):
        """The number typed, or None when the text is not one."""
        bare = self._bare(text)
        if self._special(bare):
            return self.minimum()
        try:
            value = float(bare)
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    def _refusal(self, value) -> str:
        """Why `value` (None: not a number) cannot be taken; "" when it can."""
        if value is None:
            return "is not a number"
        if self.whole and value != int(value):
            return "is not a whole number"
        if not self.whole and round(value, self.decimals()) != value:
            return f"has more than {self.decimals()} decimals"
        if not self.minimum() <= value <= self.maximum():
            return f"is outside {self._range_text()}"
        return ""

    def _range_text(self) -> str:
        lo, hi = self.minimum(), self.maximum()
        if self.specialValueText():
            return f"{_short(lo + 1)} to {_short(hi)} (or {self.specialValueText()})"
        return f"{_short(lo)} to {_short(hi)}"

    def valueFromText(self, text: str):
        value = self._number(text)
        if value is None or self._refusal(value):
            return self.value()
        return int(value) if self.whole else value

    def validate(self, text: str, pos: int):
        bare = self._bare(text)
        special = self.specialValueText()
        if special and special.casefold().startswith(bare.casefold()) and bare:
            state = QValidator.State.Acceptable if self._special(bare) else QValidator.State.Intermediate
            return state, text, pos
        value = self._number(text)
        if value is None:
            partial = bool(_PARTIAL.fullmatch(bare))
            return (QValidator.State.Intermediate if partial else QValidator.State.Invalid), text, pos
        # out of range or not whole: let it stand while typing; judged when editing ends (take_typed)
        return (QValidator.State.Intermediate if self._refusal(value) else QValidator.State.Acceptable), text, pos

    def fixup(self, text: str) -> str:
        return text  # never rewritten behind the person's back: take_typed decides

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
        shown = self.textFromValue(self.value()) if not (self.specialValueText() and self.value() == self.minimum()) \
            else self.specialValueText()
        if self._bare(typed) == shown:
            return
        value = self._number(typed)
        why = self._refusal(value)
        if not why:
            self.setValue(int(value) if self.whole else value)
            return
        self.lineEdit().setText(self.prefix() + shown + self.suffix())
        name = self.accessibleName() or "This field"
        self.refused.emit(f"{name}: {self._bare(typed)!r} {why}; kept {shown}")


class IntField(_TypedNumber, QSpinBox):
    """A whole-number field (1e3 is 1000; 0.5 and 1e-3 are refused, not read as 5 and 13)."""

    refused = Signal(str)  # why a typed value was not taken, in words
    whole = True

    def __init__(self, lo: int, hi: int, parent=None):
        super().__init__(parent)
        self._typed_setup()
        self.setRange(lo, hi)


class FloatField(_TypedNumber, QDoubleSpinBox):
    """A number field showing at least `decimals` places and as many more as the value has (it keeps
    KEPT_DECIMALS: 0.123 stays 0.123), written with a point whatever the locale (what float() reads back)."""

    refused = Signal(str)

    def __init__(self, lo: float, hi: float, decimals: int = 2, parent=None):
        super().__init__(parent)
        self._typed_setup()
        self._shown_decimals = decimals
        self.setDecimals(KEPT_DECIMALS)  # Qt rounds every value to this: nothing typed within it is lost
        self.setRange(lo, hi)

    def textFromValue(self, value: float) -> str:
        text = f"{value:.{self._shown_decimals}f}"
        return text if float(text) == value else _short(value)


class ScientificSpinBox(FloatField):
    """A number spanning decades (the learning rate): kept to 12 decimals, shown short (0.006, 1e-05)."""

    def __init__(self, lo: float, hi: float, value: float, name: str, tip: str = "", parent=None):
        super().__init__(lo, hi, decimals=KEPT_DECIMALS, parent=parent)
        self.setValue(value)
        self.setSingleStep(10 ** math.floor(math.log10(max(value, lo, 1e-12))) if value > 0 else 1e-4)
        self.setToolTip(tip + (" " if tip else "") + f"({_short(lo)} to {_short(hi)}; 1e-3 means 0.001)")
        self.setAccessibleName(name)

    def textFromValue(self, value: float) -> str:
        return _short(value)


def number_fields(root) -> list:
    """Every number field under `root` (the window connects their refusals to its message area)."""
    return [w for w in root.findChildren(QAbstractSpinBox) if isinstance(w, _TypedNumber)]
