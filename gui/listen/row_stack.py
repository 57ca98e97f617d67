"""The Listen tab's rows, one above the other, and the keyboard's way through them (issue 25 item 14).

The stack takes the keyboard focus (Tab reaches it; clicking a row or pressing Generate puts it there):
Up and Down (Home and End) choose the current row, framed in blue, and Space plays it (the window's
Space shortcut asks ListenTab.play_stop). While a row plays, choosing another plays that one: the
arrows go from model to model, hearing each.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

_MOVES = {Qt.Key.Key_Up: -1, Qt.Key.Key_Down: 1, Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1}


class RowStack(QWidget):
    currentChanged = Signal(int)  # the index of the new current row, chosen with the keys or a click

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("model rows: Up and Down choose a row, Space plays it")
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.layout_.setSpacing(2)
        self.rows: list = []
        self.current = 0

    def set_rows(self, rows: list) -> None:
        while self.layout_.count():
            item = self.layout_.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.rows = list(rows)
        for row in self.rows:
            self.layout_.addWidget(row, 1)  # equal stretch: the rows share the height
        self.current = 0
        self._frame()

    def set_current(self, index: int, notify: bool = True) -> None:
        """Make row `index` the current one; notify=False: without currentChanged (a row's own Play)."""
        if not self.rows:
            return
        index = max(0, min(index, len(self.rows) - 1))
        changed = index != self.current
        self.current = index
        self._frame()
        scroll = self.parentWidget().parentWidget() if self.parentWidget() is not None else None
        if hasattr(scroll, "ensureWidgetVisible"):
            scroll.ensureWidgetVisible(self.rows[index], 0, 0)
        if changed and notify:
            self.currentChanged.emit(index)

    def current_row(self):
        return self.rows[self.current] if self.rows else None

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key in _MOVES and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            self.set_current(self.current + _MOVES[key])
        elif key == Qt.Key.Key_Home:
            self.set_current(0)
        elif key == Qt.Key.Key_End:
            self.set_current(len(self.rows) - 1)
        else:
            super().keyPressEvent(event)

    def focusInEvent(self, event) -> None:
        super().focusInEvent(event)
        self._frame()

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        self._frame()

    def _frame(self) -> None:
        """The current row is framed: blue while the keys move it (the stack has the focus), else grey."""
        for i, row in enumerate(self.rows):
            row.set_current("focus" if i == self.current and self.hasFocus() else i == self.current)
