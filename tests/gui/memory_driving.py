"""Driving the Memory tab as a person does, and reading what it draws: open a report with the Open report
button, pick from a drop-down list with the mouse, hover a plot, and read a visible plot item's data."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


def open_report(user, window, path) -> None:
    """Open a report as the user does: the Memory tab's Open report button and the file dialog."""
    user.show_tab("Memory")
    user.answer(path)
    user.click("Open report ...")
    assert f"opened {path}" in window.memory_tab.status.text()


def choose(user, combo, text: str) -> None:
    """Pick an item of a drop-down list with the mouse: open it, click the item."""
    qtbot = user.qtbot
    index = combo.findText(text)
    assert index >= 0, f"no item {text!r} in {[combo.itemText(i) for i in range(combo.count())]}"
    for area in _scroll_areas(combo):
        area.ensureWidgetVisible(combo)
    with qtbot.captureExceptions() as errors:
        QTest.mouseClick(combo, Qt.MouseButton.LeftButton)
        view = combo.view()
        qtbot.waitUntil(view.isVisible, timeout=3000)
        qtbot.wait(QApplication.doubleClickInterval() + 50)  # a release this soon after opening is ignored
        rect = view.visualRect(combo.model().index(index, 0))
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.waitUntil(lambda: not view.isVisible(), timeout=3000)
    assert not errors, errors
    assert combo.currentText() == text


def choose_by_keyboard(combo, text: str) -> None:
    """Pick an item of a closed drop-down list as a keyboard user does: focus it, then the arrow keys (each
    press takes the next item at once; no list opens, so there is no double-click interval to wait out)."""
    index = combo.findText(text)
    assert index >= 0, f"no item {text!r} in {[combo.itemText(i) for i in range(combo.count())]}"
    combo.setFocus()
    key = Qt.Key.Key_Down if index > combo.currentIndex() else Qt.Key.Key_Up
    for _ in range(combo.count()):
        if combo.currentIndex() == index:
            break
        QTest.keyClick(combo, key)
    assert combo.currentText() == text


def _scroll_areas(widget):
    from PySide6.QtWidgets import QScrollArea

    parent = widget.parent()
    while parent is not None:
        if isinstance(parent, QScrollArea):
            yield parent
        parent = parent.parent()


def nan(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def drawn(plot, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the visible curve `name` as the plot item holds it (x in data units, also on a log axis)."""
    line = plot.lines[name]
    assert line.curve.isVisible(), f"{name} is not drawn"
    x, y = line.curve.getOriginalDataset()
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def visible_names(plot) -> list[str]:
    """The series drawn now, in the order they were drawn."""
    return [name for name in plot.drawn if plot.lines[name].curve.isVisible()]


def assert_drawn(plot, name: str, stats: dict) -> None:
    """The visible curve `name` is the report's series: the same means, NaN (nothing drawn) where the
    report has null, and the report's n for the hover."""
    _x, y = drawn(plot, name)
    np.testing.assert_allclose(y, nan(stats["mean"]), equal_nan=True, err_msg=name)
    assert list(plot.series[name].n) == stats["n"], name


def hover(qtbot, tab, plot, x: float, y: float) -> str:
    """Move the mouse over a plot at view point (x, y) (log10 on a log axis); what the readout says."""
    tab.scroll.ensureWidgetVisible(plot)
    point = plot.plot.mapFromScene(plot.plot.getPlotItem().vb.mapViewToScene(QPointF(x, y)))
    plot.clear_readout()  # what an earlier hover left must not pass for this one's
    # pyqtgraph drops a mouse move that comes within 1/60 s of the one before (its scene's rate limit)
    qtbot.wait(40)
    QTest.mouseMove(plot.plot.viewport(), point)
    qtbot.waitUntil(lambda: plot.readout_text != "", timeout=3000)
    return plot.readout_text


def tick_labels(plot, axis: str) -> list[str]:
    return [label for _x, label in plot.plot.getAxis(axis)._tickLevels[0]]


def shown_rich_text(label) -> str:
    """A rich-text label's text as read on screen (no markup, non-breaking spaces as spaces)."""
    from PySide6.QtGui import QTextDocument

    doc = QTextDocument()
    doc.setHtml(label.text())
    return doc.toPlainText().replace("\xa0", " ")
