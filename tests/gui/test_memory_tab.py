"""The Memory tab: evaluate a tiny run, draw every plot from the report, run the probe, export."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture
def memory(window, qtbot, tiny_run):
    with qtbot.waitSignal(window.state.modelsChanged, timeout=20000):
        window.open_run(tiny_run)
    window.show_tab("memory")
    return window.memory_tab


def _small_settings(tab):
    from dataclasses import replace

    tab.primers.setValue(3)
    tab.primer_bars.setValue(4)
    tab.bars.setValue(8)
    # min_n=2: three primers are below the default of 10, where the report leaves every mean out
    return replace(tab.eval_settings(), memory_targets=16, gradient_positions=4, gradient_max_k=64, bootstrap=50,
                   nll_bars=16, min_n=2)


def test_without_models_evaluate_is_disabled_and_says_why(window):
    tab = window.memory_tab
    assert not tab.evaluate_button.isEnabled()
    assert "No models" in tab.status.text()


def test_evaluate_draws_every_memory_plot(memory, window, qtbot, tmp_path):
    tab = memory
    worker = tab.evaluate(_small_settings(tab))
    assert worker is not None
    with qtbot.waitSignal(tab.evaluated, timeout=120000):
        pass
    keys = window.state.ordered_model_keys()
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
    plot = tab.per_bar_plots["TR"].plot
    vb = plot.getPlotItem().vb
    scene_point = vb.mapViewToScene(__import__("PySide6.QtCore", fromlist=["QPointF"]).QPointF(2.0, 0.5))
    tab.per_bar_plots["TR"]._hover(scene_point)
    assert "human" in tab.per_bar_plots["TR"]._readout.toPlainText()

    written = tab.export_report(str(tmp_path))
    report = json.loads((tmp_path / "report.json").read_text())
    assert written and report["models"] == keys
    assert np.isfinite(report["summary"][0]["TR_first"])


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
