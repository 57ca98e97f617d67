"""The paired-differences table (issue 24 item 4): for every pair of models and each model against the
human continuation, the per-primer difference of their theme-recall means over a bar window, with a
paired bootstrap interval and n. Comparisons come from here, never from two overlapping intervals; a
difference whose interval excludes 0 is set in bold and its tooltip says which is higher."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from .. import style
from . import controls_data, report_data
from .summary import MISSING, interval_text

CAPTION = ("Each primer's mean theme recall over the bar window for the first source minus the second's, then the "
           "mean [95% paired bootstrap interval] over primers and n primers. Bold: the interval excludes 0.")


class PairedTable(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("<b>Paired differences</b>")
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        self.table.setAccessibleName("paired differences")
        self.caption = style.caption(CAPTION)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.table)
        layout.addWidget(self.caption)
        self.windows: list[str] = []

    def clear(self) -> None:
        self.table.clear()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)

    def cell(self, a: str, b: str, window: str) -> str:
        """What the table shows for the pair a - b in a window."""
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) == (a, b):
                return self.table.item(r, 1 + self.windows.index(window)).text()
        raise KeyError((a, b))

    def show_report(self, report: dict, temperature: str | None) -> None:
        keys = report_data.models(report)
        pairs, at = controls_data.paired(report, keys, temperature)
        self.windows = controls_data.pair_windows(pairs)
        self.clear()
        when = f"temperature {at}" if at else "the report's temperature"
        self.title.setText(f"<b>Paired differences of theme recall over the floor</b> ({when})")
        if not pairs:
            self.caption.setText("This report has no paired differences: it was made before they existed, so no "
                                 "two sources can be compared here (overlapping intervals are not a test).")
            self.table.hide()
            return
        self.table.show()
        note = "" if at is None or at == temperature else f" The report gives them at temperature {at} only."
        self.caption.setText(CAPTION + note)
        self.table.setColumnCount(1 + len(self.windows))
        self.table.setHorizontalHeaderLabels(["first - second", *self.windows])
        self.table.setRowCount(len(pairs))
        bold = QFont(self.table.font())
        bold.setBold(True)
        for r, pair in enumerate(pairs):
            name = QTableWidgetItem(f"{_short(pair.a)} - {_short(pair.b)}")
            name.setData(Qt.ItemDataRole.UserRole, (pair.a, pair.b))
            name.setForeground(pg.mkColor(style.model_colour(pair.a)))
            name.setToolTip(f"{style.model_label(pair.a)} minus {style.model_label(pair.b)}")
            self.table.setItem(r, 0, name)
            for c, window in enumerate(self.windows, start=1):
                figure = pair.windows.get(window)
                text = interval_text(figure, "{:+.3f}") if figure else MISSING
                item = QTableWidgetItem(text.replace("\n", ", "))  # one line a pair: 28 pairs stay readable
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                verdict = _verdict(pair, figure, window)
                item.setToolTip(verdict)
                if "higher" in verdict:
                    item.setFont(bold)
                self.table.setItem(r, c, item)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.resizeRowsToContents()
        rows = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height() + rows + 2 * self.table.frameWidth())


def _short(key: str) -> str:
    return style.model_label(key).split(" (")[0]


def _verdict(pair, figure: dict | None, window: str) -> str:
    """In words: which is higher in that window, or that the interval holds 0 (no difference shown)."""
    if not figure or figure.get("mean") is None:
        return f"no difference: too few primers reach {window}"
    lo, hi = figure.get("lo"), figure.get("hi")
    if lo is None or hi is None:
        return f"no interval (fewer than 2 primers) in {window}"
    if lo > 0 or hi < 0:
        higher, lower = (pair.a, pair.b) if lo > 0 else (pair.b, pair.a)
        return f"{style.model_label(higher)} higher than {style.model_label(lower)} in {window} (the interval excludes 0)"
    return f"no difference shown in {window}: the interval holds 0"
