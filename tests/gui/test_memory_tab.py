"""The Memory tab: evaluate a tiny run, draw every plot from the report, run the probe, export."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from tests.gui.driving import set_small_evaluation


@pytest.fixture
def memory(window, qtbot, tiny_run):
    with qtbot.waitSignal(window.state.modelsChanged, timeout=20000):
        window.open_run(tiny_run)
    window.show_tab("memory")
    return window.memory_tab


def test_without_models_evaluate_is_disabled_and_says_why(window):
    tab = window.memory_tab
    assert not tab.evaluate_button.isEnabled()
    assert "No models" in tab.status.text()


def test_evaluate_draws_every_memory_plot(memory, window, user, small_evaluations):
    tab = memory
    set_small_evaluation(window)
    user.click("Evaluate models")
    keys = window.state.ordered_model_keys()
    assert tab.report["models"] == keys and np.isfinite(tab.report["summary"][0]["TR_first"])
    for metric, plot in tab.per_bar_plots.items():
        # every model, the human reference and the floor, 8 bars each
        assert len(plot.series) == len(keys) + 2, metric
        assert all(len(x) == 8 for x, _y, _k in plot.series.values())
    assert {k for _x, _y, k in tab.context_plot.series.values()} == set(keys)
    assert {k for _x, _y, k in tab.gradient_plot.series.values()} == set(keys)
    assert len(tab.repeat_plot.series) == len(keys)
    assert set(tab.ssm_views) == set(keys) | {"human"}
    assert tab.table.rowCount() == len(keys) + 2
    assert tab.table.item(0, 0).text() == "vanilla RNN"
    # hovering a plot reads out the values under the mouse
    plot = tab.per_bar_plots["TR"]
    plot._hover(plot.plot.getPlotItem().vb.mapViewToScene(QPointF(2.0, 0.5)))
    assert "human" in plot.readout_text


def test_theme_recall_probe_runs_with_the_chosen_gaps(memory, qtbot):
    tab = memory
    tab.probe_gaps.setText("1, 3")
    tab.probe_steps.setValue(20)
    from dataclasses import replace

    probe_settings = replace(tab.probe_settings(), eval_sequences=8, batch_size=8)
    assert probe_settings.gaps == (1, 3)
    with qtbot.waitSignal(tab.probeFinished, timeout=120000):
        tab.run_probe(probe_settings)
    assert "chance" in tab.probe_plot.series
    xs, _ys, _k = tab.probe_plot.series["vanilla RNN"]
    assert list(xs) == [1, 3]
    # a log axis labelled at the gaps themselves, so that 1, 2, 4 ... 32 spread evenly
    assert tab.probe_plot.plot.getPlotItem().getAxis("bottom").logMode
    assert [label for _x, label in tab.probe_plot.plot.getAxis("bottom")._tickLevels[0]] == ["1", "3"]


def test_bad_probe_gaps_give_a_message_not_a_crash(memory, window, qtbot):
    tab = memory
    tab.probe_gaps.setText("one, two")
    assert tab.run_probe() is None
    dialog = window.findChild(object, "errorDialog")
    assert dialog is not None and "whole numbers" in dialog.text()
    dialog.close()


# ---- where reports live --------------------------------------------------------------------------
def test_evaluating_the_bundled_models_keeps_the_shipped_report_and_shows_the_newest(
        bundled, window, user, qtbot, small_evaluations, app_env):
    """The shipped report is read-only to the app: an evaluation goes to the user's data folder, the
    next launch shows it, and without it the shipped report is shown again."""
    from tests.gui.driving import open_window

    shipped = bundled / "memory-report.json"
    before = shipped.read_bytes()
    qtbot.waitUntil(lambda: window.state.models_label == "bundled models", timeout=20000)
    tab = window.memory_tab
    assert "3 primers" in tab.status.text() and "shipped with these models" in tab.status.text()
    assert str(bundled) not in tab.status.text()  # not the folder the report was made in
    user.show_tab("Memory")
    tab.primers.setValue(2)  # smaller than the shipped report's 3: which one is shown tells them apart
    tab.primer_bars.setValue(4)
    tab.bars.setValue(8)
    user.click("Evaluate models")
    assert len(tab.report["primers"]) == 2
    assert shipped.read_bytes() == before
    kept = list((app_env / "data" / "reports").rglob("report-*.json"))
    assert len(kept) == 1 and "kept in" in tab.status.text()
    window.close()

    again = open_window(qtbot)
    assert len(again.memory_tab.report["primers"]) == 2  # the newest report on these models
    assert "evaluated" in again.memory_tab.status.text()
    again.close()
    kept[0].unlink()
    third = open_window(qtbot)
    assert len(third.memory_tab.report["primers"]) == 3  # the shipped one again
    third.close()


def test_a_report_on_other_models_is_not_shown(bundled, window, qtbot, tiny_run):
    """Another run has no report: the Memory tab is empty rather than showing the bundled figures."""
    qtbot.waitUntil(lambda: window.memory_tab.report is not None, timeout=20000)
    with qtbot.waitSignal(window.state.modelsChanged, timeout=20000):
        window.open_run(tiny_run)
    assert window.memory_tab.report is None
    assert "Press Evaluate" in window.memory_tab.status.text()
    assert not window.memory_tab.export_button.isEnabled()


# ---- what the plots show -------------------------------------------------------------------------
def test_plots_use_their_height_show_a_colour_scale_and_clear_readouts_on_leave(bundled, window, qtbot):
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    qtbot.waitUntil(lambda: window.memory_tab.report is not None, timeout=20000)
    tab = window.memory_tab
    window.show_tab("memory")
    report = tab.report
    for metric, plot in tab.per_bar_plots.items():
        lowest = min(v for src in report["per_bar"][metric].values() for key in ("mean", "lo")
                     for v in (src.get(key) or []) if v is not None)
        bottom, top = plot.plot.getPlotItem().vb.viewRange()[1]
        # the axis starts just below the lowest value drawn, not at 0 with the curves in the top fifth
        assert bottom <= lowest and lowest - bottom <= 0.12 + 1e-9 and top >= 1.0, (metric, bottom, lowest)
    assert window.findChild(object, "colourScale") is not None  # the heatmaps' colour bar
    # hover a plot with the mouse: a readout appears; move the mouse off it: it goes
    plot = tab.per_bar_plots["TR"]
    tab.scroll.ensureWidgetVisible(plot)
    view = plot.plot.viewport()
    centre = plot.plot.mapFromScene(plot.plot.getPlotItem().vb.sceneBoundingRect().center())
    QTest.mouseMove(view, centre)
    qtbot.waitUntil(lambda: "human" in plot.readout_text, timeout=3000)
    QTest.mouseMove(tab.status, QPoint(5, 5))
    qtbot.waitUntil(lambda: plot.readout_text == "", timeout=3000)
