"""The paired-differences table (issue 24 item 4): for every pair of models and each model against the
human continuation, the per-primer difference of their theme-recall means over a bar window, with a
paired bootstrap interval and n. Comparisons come from here, never from two overlapping intervals; a
difference whose interval excludes 0 is set in bold and its tooltip says which is higher."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .. import style
from . import controls_data, report_data
from .summary import MISSING, interval_text

SERIES_WORDS = {"TR_excess": "theme recall over the floor", "PTR_excess": "pitch-only recall over its floor",
                "TR_phase_excess": "phase-robust theme recall over its floor",
                "TR_excess_random": "theme recall over the random-partner floor"}
CAPTION = ("Each primer's mean theme recall over the bar window for the first source minus the second's, then the "
           "mean [95% paired bootstrap interval] over primers and n primers. Bold: the interval excludes 0.")


class PairedTable(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("<b>Paired differences</b>")
        self.title.setWordWrap(True)
        self.series_box = QComboBox()
        self.series_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.series_box.setToolTip("Which measure the differences compare")
        self.series_box.setAccessibleName("paired differences of")
        self.series_box.activated.connect(lambda _i: self._redraw())
        self._shown: tuple[dict, str | None] | None = None
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        self.table.setAccessibleName("paired differences")
        self.caption = style.caption(CAPTION)
        heading = QHBoxLayout()
        heading.addWidget(self.title, 1)
        heading.addWidget(self.series_box)
        layout = QVBoxLayout(self)
        layout.addLayout(heading)
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
        chosen = self.series_box.currentData()
        self.series_box.clear()
        for series in controls_data.paired_series(report):
            self.series_box.addItem(SERIES_WORDS.get(series, series), series)
        found = self.series_box.findData(chosen)
        self.series_box.setCurrentIndex(max(found, 0))
        self.series_box.setVisible(self.series_box.count() > 1)
        self._shown = (report, temperature)
        self._redraw()

    def _redraw(self) -> None:
        if self._shown is None:
            return
        report, temperature = self._shown
        keys = report_data.models(report)
        series = self.series_box.currentData()
        pairs, at = controls_data.paired(report, keys, temperature, series)
        self.windows = controls_data.pair_windows(pairs)
        self.clear()
        when = f"temperature {at}" if at else "the report's temperature"
        what = SERIES_WORDS.get(series or "TR_excess", series)
        self.title.setText(f"<b>Paired differences of {what}</b> ({when})")
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
