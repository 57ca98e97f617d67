"""The window's one message area and its busy indicator (the status bar's left part).

QStatusBar paints its message under its widgets, so a widget that stretches hides it: the message is shown
by a label of its own that takes the free width (elided in the middle, the whole text in its tooltip), fed
by QStatusBar.messageChanged, so that showMessage and its timeout keep working. Beside it, while anything
runs (a load, an export, an evaluation, training), a progress bar and a line saying what is being done and
how far: AppState.loading and AppState.busy, with their numbers when the job reports them.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QWidget

from .style import ElidedLabel


class MessageArea(ElidedLabel):
    def __init__(self, status_bar, parent=None):
        super().__init__(parent)
        self.setObjectName("messageArea")
        self.setAccessibleName("message")
        self.setStyleSheet("padding: 0 6px;")
        status_bar.messageChanged.connect(self.setText)
        self.setText("")

    def setText(self, text: str) -> None:
        # room for a message while there is one; none taken from the busy line beside it otherwise
        self.setMinimumWidth(240 if text else 0)
        super().setText(text)


class _BusyLabel(ElidedLabel):
    elide_mode = Qt.TextElideMode.ElideRight  # "Training, about 2:10 left: ..." reads from its start


class BusyIndicator(QWidget):
    """A progress bar and what is running, shown only while something runs."""

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.setObjectName("busyIndicator")
        self.state = state
        self.bar = QProgressBar()
        self.bar.setFixedWidth(110)
        self.bar.setMaximumHeight(16)
        self.bar.setTextVisible(True)
        self.bar.setAccessibleName("progress")
        self.label = _BusyLabel("")
        self.label.setMinimumWidth(280)  # what is running is read before the static labels beside it
        self.label.setMaximumWidth(380)
        self.label.setAccessibleName("what is running")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.label, 1)
        state.loadingChanged.connect(self.refresh)
        state.busyChanged.connect(self.refresh)
        self.refresh()

    def jobs(self) -> list[tuple[str, int, int]]:
        """(text, done, total) of everything running: loads first, then the other jobs."""
        loads = [(text, *self.state.loading_progress.get(key, (0, 0))) for key, text in self.state.loading.items()]
        return loads + list(self.state.busy.values())

    def refresh(self) -> None:
        jobs = self.jobs()
        self.setVisible(bool(jobs))
        if not jobs:
            return
        text, done, total = jobs[0]
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
            self.bar.setFormat(f"{100 * min(done, total) // total}%")
        else:  # no numbers yet: a moving bar says it is alive
            self.bar.setRange(0, 0)
        more = f" (and {len(jobs) - 1} more)" if len(jobs) > 1 else ""
        self.label.setText(text + more)
        self.setToolTip("\n".join(j[0] + (f": {j[1]}/{j[2]}" if j[2] else "") for j in jobs))
