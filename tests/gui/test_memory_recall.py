"""The Memory tab opens on recall by distance (issue 23): a report with seven models and three training
seeds, opened with the Open report button; what the plot draws, its axes and marks, the seed switch, the
control toggle, the hover readout and the horizons in the summary."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPoint

from gui import style
from tests.gui import fake_report
from tests.gui.memory_driving import drawn, hover, nan, open_report, shown_rich_text, tick_labels, visible_names


@pytest.fixture
def seven():
    with fake_report.stand_ins_registered() as keys:
        yield keys


@pytest.fixture
def fake(tmp_path, seven):
    return fake_report.write_report(tmp_path)


def test_the_tab_opens_on_recall_by_distance_with_every_model(window, user, fake, seven):
    open_report(user, window, fake)
    tab = window.memory_tab
    report = json.loads(fake.read_text())
    plot = tab.recall.plot
    # the first thing in the tab, in view without scrolling
    assert tab.scroll.verticalScrollBar().value() == 0
    assert plot.isVisible() and plot.mapTo(tab.scroll.widget(), QPoint(0, 0)).y() < 40
    assert "Recall by distance" in plot.title.text() and "mean over 3 training seeds" in plot.title.text()
    # one line per model, the seven of the report in the registry's order, with their labels and colours
    labels = [style.model_label(k) for k in seven]
    assert [n for n in visible_names(plot) if ": control" not in n] == labels
    for key in seven:
        line = plot.lines[style.model_label(key)]
        assert line.curve.opts["pen"].color().name() == style.model_colour(key)
        x, y = drawn(plot, style.model_label(key))
        stats = report["recall_by_distance_steps"][key]
        np.testing.assert_allclose(x, stats["distance_mean"])  # each point at its targets' mean distance
        np.testing.assert_allclose(y, nan(stats["mean"]), equal_nan=True)
        assert np.isnan(y[-1])  # fewer than min_n tunes at 512-1023 steps: nothing drawn there
    # the band stops where the line stops: never drawn from the null bucket
    stretches = plot.band_stretches("LSTM")
    assert len(stretches) == 1 and stretches[0][1] == pytest.approx(fake_report.STEP_DISTANCE[5], rel=1e-3)
    # log axis in steps with n tunes under each bucket; bars of 4/4 on top
    assert plot.plot.getPlotItem().getAxis("bottom").logMode
    assert tick_labels(plot, "bottom")[1] == "16-31\nn 60" and tick_labels(plot, "bottom")[-1] == "512-1023\nn 6"
    assert tick_labels(plot, "top")[:4] == ["1", "2", "4", "8"]
    # where each context ends: the attention span, the Transformer's reach, the training crop
    marks = {(x, label) for x, label, _tip in plot.marks}
    assert marks == {(fake_report.SPAN, "span"), (fake_report.REACH, "reach"), (fake_report.CROP, "crop")}
    tips = " ".join(tip for _x, _l, tip in plot.marks)
    assert "reach through its layers of Transformer: 126 steps" in tips and "training crop" in tips
    # the legend names all seven
    assert all(label in shown_rich_text(tab.legend) for label in labels)


def test_the_control_is_drawn_beside_and_toggles(window, user, fake):
    open_report(user, window, fake)
    tab = window.memory_tab
    control = json.loads(fake.read_text())["recall_by_distance_steps"]["transformer"]["control"]
    plot = tab.recall.plot
    _x, y = drawn(plot, "Transformer: control")
    np.testing.assert_allclose(y, nan(control), equal_nan=True)
    assert plot.lines["Transformer: control"].curve.opts["pen"].style() == style.qt_line_style("dotted")
    user.click(tab.recall.control_box)
    assert not tab.recall.control_box.isChecked()
    assert not any(": control" in n for n in visible_names(plot))
    user.click(tab.recall.control_box)
    assert "Transformer: control" in visible_names(plot)


def test_the_seed_switch_shows_each_seed_or_the_mean(window, user, fake, seven):
    open_report(user, window, fake)
    tab = window.memory_tab
    report = json.loads(fake.read_text())
    plot = tab.recall.plot
    item = plot.lines["LSTM"].curve
    user.click("seed 2")
    assert "seed 2" in plot.title.text() and tab.recall.seed_buttons["2"].isChecked()
    _x, y = drawn(plot, "LSTM")
    np.testing.assert_allclose(y, nan(report["seeds"]["2"]["recall_by_distance_steps"]["lstm"]["mean"]), equal_nan=True)
    assert plot.lines["LSTM"].curve is item  # updated in place, not a new item
    user.click("each seed")
    names = visible_names(plot)
    assert len(names) == 3 * len(seven) and "LSTM, seed 3" in names and "LSTM" not in names
    assert plot.band_stretches("LSTM, seed 1") == []  # overlaid seeds: lines only
    _x, y = drawn(plot, "GRU, seed 3")
    np.testing.assert_allclose(y, nan(report["seeds"]["3"]["recall_by_distance_steps"]["gru"]["mean"]), equal_nan=True)
    user.click("mean over seeds")
    _x, y = drawn(plot, "LSTM")
    np.testing.assert_allclose(y, nan(report["recall_by_distance_steps"]["lstm"]["mean"]), equal_nan=True)


def test_hovering_the_recall_plot_reads_each_model_with_its_interval_and_n(window, user, qtbot, fake):
    open_report(user, window, fake)
    tab = window.memory_tab
    stats = json.loads(fake.read_text())["recall_by_distance_steps"]["lstm"]
    plot = tab.recall.plot
    text = hover(qtbot, tab, plot, np.log10(fake_report.STEP_DISTANCE[3]), 0.5)
    lines = text.splitlines()
    assert lines[0] == "distance 64-127 steps (4-8 bars in 4/4)"
    i = 3
    assert (f"LSTM: {stats['mean'][i]:.3f} [{stats['lo'][i]:.3f}, {stats['hi'][i]:.3f}], n {stats['n_tunes'][i]} "
            f"({stats['n'][i]} target bars; control {stats['control'][i]:.3f})") in lines
    text = hover(qtbot, tab, plot, np.log10(fake_report.STEP_DISTANCE[6]), 0.5)
    assert "LSTM: not drawn: n 6 < 10" in text  # the null is said, with its n
    # the box stays inside the plot, even at its right edge with seven models' lines to show
    vb = plot.plot.getPlotItem().vb
    assert vb.sceneBoundingRect().contains(plot.hover.scene_rect())


def test_the_summary_gives_each_models_horizon_per_seed(window, user, fake, seven):
    open_report(user, window, fake)
    table = window.memory_tab.table
    report = json.loads(fake.read_text())
    assert table.rowCount() == len(seven) + 2  # seven models, the human reference, the floor
    assert [table.item(r, 0).text() for r in range(len(seven))] == [style.model_label(k).split(" (")[0] for k in seven]
    steps, bars = report["memory_horizon_steps"]["lstm"], report["memory_horizon_bars"]["lstm"]
    seeds = ", ".join(f"{report['seeds'][s]['memory_horizon_steps']['lstm']:g}" for s in fake_report.SEEDS)
    assert table.cell("lstm", "memory_horizon") == f"{steps:g} steps ({bars:g} bars)\nseeds: {seeds}"
    assert table.cell("rnn", "half_recall") == f"{report['half_recall_steps']['rnn']:g}"
    assert table.cell("human", "memory_horizon") == "-"
    assert "Memory horizon" in window.memory_tab.table_caption.text()
    # the length check in the generation regime names the model that gets worse past its training crop
    assert "worse past the training crop: Transformer." in window.memory_tab.model_side.length_plot.caption.text()


def test_a_report_made_before_recall_by_distance_says_so(window, user, tmp_path, seven):
    old = fake_report.before_recall(fake_report.build_report())
    path = tmp_path / "older.json"
    path.write_text(json.dumps(old))
    open_report(user, window, path)
    tab = window.memory_tab
    assert "no recall by distance" in tab.recall.plot.notice_text and "made before" in tab.recall.plot.notice_text
    assert visible_names(tab.recall.plot) == []
    assert "memory_horizon" not in [c[0] for c in tab.table.columns]
    assert "before recall by distance" in tab.table_caption.text()
    assert not tab.recall.seed_label.isVisible()


def test_a_damaged_recall_block_is_refused_and_the_last_report_stays(window, user, fake, tmp_path):
    open_report(user, window, fake)
    tab = window.memory_tab
    shown = tab.report
    broken = fake_report.build_report()
    broken["recall_by_distance_steps"]["lstm"]["buckets"] = ["near", "far"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    user.answer(path)
    user.click("Open report ...")
    message = window.statusBar().currentMessage()
    assert message.startswith("Could not open the report") and str(path) in message, message
    assert tab.report is shown and "LSTM" in visible_names(tab.recall.plot)


def test_one_training_seed_has_no_seed_switch_and_a_failing_first_bucket_has_no_horizon(window, user, tmp_path, seven):
    report = fake_report.build_report()
    report["seeds"] = {"1": report["seeds"]["1"]}  # what evaluate writes for a run without --seeds
    report["memory_horizon_steps"]["rnn"] = report["memory_horizon_bars"]["rnn"] = 0
    path = tmp_path / "one-seed.json"
    path.write_text(json.dumps(report))
    open_report(user, window, path)
    tab = window.memory_tab
    assert not tab.recall.seed_label.isVisible() and not tab.recall.seed_buttons
    assert "one training seed" in tab.recall.plot.title.text()
    lstm = f"{report['memory_horizon_steps']['lstm']:g} steps ({report['memory_horizon_bars']['lstm']:g} bars)"
    assert tab.table.cell("lstm", "memory_horizon") == lstm  # no per-seed line for one seed
    assert tab.table.cell("rnn", "memory_horizon") == "none"
