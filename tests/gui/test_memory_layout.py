"""The Memory tab with seven models on a 1024x640 projector: the window fits the screen, the tab opens on
the recall plot, the rest scrolls, and in every view no text is cut off; and on a 1280x800 laptop, where
the screenshots of docs/screenshots/ are taken (MELODY_MEMORY_SHOTS=folder, under xvfb-run with
QT_QPA_PLATFORM=xcb for a real X server)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QApplication

from gui import style
from tests.gui import fake_report
from tests.gui.driving import clipped_texts
from tests.gui.memory_driving import choose, open_report, shown_rich_text

SIZE = (1024, 640)
SHOTS = os.environ.get("MELODY_MEMORY_SHOTS")


@pytest.fixture
def seven():
    with fake_report.stand_ins_registered() as keys:
        yield keys


def _settle(window, qtbot, size=SIZE) -> None:
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=5000)
    for _ in range(3):  # layouts settle over a few passes (word-wrapped labels, scroll areas)
        QApplication.processEvents()


def test_seven_models_fit_1024_by_640_in_every_view(window, user, qtbot, tmp_path, seven):
    open_report(user, window, fake_report.write_report(tmp_path))
    _settle(window, qtbot)
    tab = window.memory_tab
    minimum = window.minimumSizeHint()
    assert (minimum.width(), minimum.height()) <= SIZE, minimum
    # it opens on recall by distance: the plot's whole drawing area is in view before any scrolling
    viewport = tab.scroll.viewport()
    plot = tab.recall.plot.plot
    top_left, bottom_right = plot.mapTo(viewport, QPoint(0, 0)), plot.mapTo(viewport, QPoint(plot.width(), plot.height()))
    assert top_left.y() >= 0 and bottom_right.y() <= viewport.height() and bottom_right.x() <= viewport.width()
    assert tab.scroll.verticalScrollBar().isVisible()  # the rest scrolls
    assert not tab.scroll.horizontalScrollBar().isVisible()  # never sideways: the panels share the width
    # every model in the legend, readable
    assert all(style.model_label(k) in shown_rich_text(tab.legend) for k in seven)
    views = [("mean over seeds", "rhythm-matched", "TR over its floor", "1.0", 0), ("each seed", "random partner",
             "raw TR, own floor", "0.7", 1), ("seed 3", "rhythm-matched", "TR over its floor", "0.9", 2)]
    for seed, floor, theme, temperature, meter in views:
        tab.scroll.verticalScrollBar().setValue(0)
        for button in (seed, floor, theme, temperature):
            user.click(button)
        choose(user, tab.view_bar.meter_box, tab.view_bar.meter_box.itemText(meter))
        QApplication.processEvents()
        problems = clipped_texts(window)
        assert not problems, (seed, floor, theme, temperature, meter, problems)
        # the heatmaps, four to a row, and the paired table stay inside the window's width
        for widget in (tab.self_similarity, tab.paired, tab.table):
            assert widget.mapTo(tab.scroll.widget(), QPoint(widget.width(), 0)).x() <= viewport.width() + 1


def _shoot(window, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        window.grab().save(str(Path(SHOTS) / name))


def test_on_a_laptop_screen_the_recall_plot_the_floor_choice_and_the_sweep_show_whole(window, user, qtbot, tmp_path,
                                                                                     seven):
    open_report(user, window, fake_report.write_report(tmp_path))
    _settle(window, qtbot, (1280, 800))
    tab = window.memory_tab
    viewport = tab.scroll.viewport()

    def in_view(widget) -> bool:
        top = widget.mapTo(viewport, QPoint(0, 0)).y()
        return top >= 0 and top + widget.height() <= viewport.height()

    assert in_view(tab.recall.plot) and not clipped_texts(window)
    _shoot(window, "memory-recall-by-distance.png")
    user.click("random partner")  # the floor choice: scrolled to the controls and the theme-recall plots
    tab.scroll.ensureWidgetVisible(tab.per_bar_plots["TR"], 0, 0)
    tab.scroll.verticalScrollBar().setValue(tab.sampled_header.mapTo(tab.scroll.widget(), QPoint(0, 0)).y())
    QApplication.processEvents()
    assert in_view(tab.view_bar) and in_view(tab.per_bar_plots["TR"].plot) and not clipped_texts(window)
    _shoot(window, "memory-floor-choice.png")
    user.click("rhythm-matched")
    sweep = tab.controls.sweep_plot
    tab.scroll.verticalScrollBar().setValue(sweep.mapTo(tab.scroll.widget(), QPoint(0, 0)).y() - 40)
    QApplication.processEvents()
    assert in_view(sweep) and not clipped_texts(window)
    _shoot(window, "memory-temperature-sweep.png")
