"""Memory tab (placeholder while engine/evaluate.py is being written)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class MemoryTab(QWidget):
    def __init__(self, state, main_window=None, parent=None):
        super().__init__(parent)
        self.state, self.main_window = state, main_window
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Memory plots appear here once the models are evaluated."))

    def export_report(self) -> None:
        pass

    def stop_events(self):
        return []
