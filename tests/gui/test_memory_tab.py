"""The Memory tab: evaluate a tiny run, draw every plot from the report, run the probe, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from gui import style
from tests.gui import fake_report
from tests.gui.driving import set_small_evaluation, shown_text


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
        # every model and the human reference (theme recall over their own floors), and the shared floor
        # on the other plots, 8 bars each
        assert len(plot.series) == len(keys) + (1 if metric == "TR" else 2), metric
        assert all(len(s.x) == 8 for s in plot.series.values())
    assert {s.key for s in tab.context_plot.series.values()} == set(keys)
    assert {s.key for s in tab.gradient_plot.series.values()} == set(keys)
    assert len(tab.repeat_plot.series) == len(keys)
    assert {s.key for s in tab.length_plot.series.values()} == set(keys)
    assert {s.key for s in tab.distinct_plot.series.values()} == set(keys) | {"human"}
    assert set(tab.ssm_views) == set(keys) | {"human"}
    assert tab.table.rowCount() == len(keys) + 2
    assert tab.table.item(0, 0).text() == "vanilla RNN"
    assert list(tab.temperature_buttons) == ["1.0", "0.7"]  # the evaluation's default temperatures
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
    assert list(tab.probe_plot.series["vanilla RNN"].x) == [1, 3]
    # a log axis labelled at the gaps themselves, so that 1, 2, 4 ... 32 spread evenly
    assert tab.probe_plot.plot.getPlotItem().getAxis("bottom").logMode
    assert [label for _x, label in tab.probe_plot.plot.getAxis("bottom")._tickLevels[0]] == ["1", "3"]
    # hovering reads each model's accuracy at the gap under the mouse, and chance
    text = _hover(qtbot, tab, tab.probe_plot, np.log10(3), 0.5)
    assert "vanilla RNN: " in text and "(at 3)" in text and f"chance: {tab.probe_plot.series['chance'].y[0]:.2f}" in text


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
        shown = "TR_excess" if metric == "TR" else metric  # theme recall shows its excess by default
        values = [v for src in report["per_bar"][shown].values() for i, mean in enumerate(src["mean"])
                  if mean is not None for v in (mean, src["lo"][i], src["hi"][i]) if v is not None]
        bottom, top = plot.plot.getPlotItem().vb.viewRange()[1]
        if metric == "TR":  # around every value and 0 (chance), with a little room
            assert bottom < min(0, *values) and top >= max(values), (bottom, top)
            continue
        # the axis starts just below the lowest value drawn, not at 0 with the curves in the top fifth
        lowest = min(values)
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


# ---- the views of a report: theme recall's view, temperature, meter --------------------------------
REPO = Path(__file__).resolve().parents[2]


def _open(user, window, path) -> None:
    """Open a report as the user does: the Memory tab's Open report button and the file dialog."""
    user.show_tab("Memory")
    user.answer(path)
    user.click("Open report ...")
    assert f"opened {path}" in window.memory_tab.status.text()


def _choose(user, combo, text: str) -> None:
    """Pick an item of a drop-down list with the mouse: open it, click the item."""
    qtbot = user.qtbot
    index = combo.findText(text)
    assert index >= 0, f"no item {text!r} in {[combo.itemText(i) for i in range(combo.count())]}"
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


def _nan(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _assert_drawn(plot, name: str, stats: dict) -> None:
    """The series `name` of the plot is the report's series: the same means, NaN (nothing drawn)
    where the report has null, and the report's n for the hover."""
    series = plot.series[name]
    np.testing.assert_allclose(series.y, _nan(stats["mean"]), equal_nan=True, err_msg=name)
    assert list(series.n) == stats["n"], name


def _hover(qtbot, tab, plot, x: float, y: float) -> str:
    """Move the mouse over a plot at data point (x, y); what the readout says."""
    tab.scroll.ensureWidgetVisible(plot)
    point = plot.plot.mapFromScene(plot.plot.getPlotItem().vb.mapViewToScene(QPointF(x, y)))
    plot.clear_readout()  # what an earlier hover left must not pass for this one's
    # pyqtgraph drops a mouse move that comes within 1/60 s of the one before (its scene's rate limit)
    qtbot.wait(40)
    QTest.mouseMove(plot.plot.viewport(), point)
    qtbot.waitUntil(lambda: plot.readout_text != "", timeout=3000)
    return plot.readout_text


@pytest.fixture
def fake(tmp_path):
    return fake_report.write_report(tmp_path)


def test_theme_recall_shows_the_excess_over_each_sources_floor_by_default(window, user, fake):
    _open(user, window, fake)
    tab = window.memory_tab
    report = json.loads(fake.read_text())
    plot = tab.per_bar_plots["TR"]
    assert tab.excess_button.isChecked() and "over the matched floor" in plot.title.text()
    assert "temperature 1.0, all meters" in plot.title.text()
    block = report["by_temperature"]["1.0"]
    assert set(plot.series) == {"vanilla RNN", "RNN + attention", "human reference"}
    _assert_drawn(plot, "vanilla RNN", block["TR_excess"]["rnn"])
    _assert_drawn(plot, "human reference", block["TR_excess"]["human"])
    assert np.isnan(plot.series["human reference"].y[fake_report.HUMAN_REACHES:]).all()  # n < min_n: not drawn
    # the chance line is 0 and inside the axis
    bottom, top = plot.plot.getPlotItem().vb.viewRange()[1]
    assert bottom < 0 < top
    # the band (the paired interval) stops where the human line stops: never drawn from too few primers
    human = plot.series["human reference"]
    assert np.isnan(human.lo[fake_report.HUMAN_REACHES:]).all() and np.isfinite(human.lo[:fake_report.HUMAN_REACHES]).all()
    bands = [i for i in plot._items if isinstance(i, pg.FillBetweenItem)]
    human_colour = pg.mkColor(style.model_colour("human"))
    reach = [max(item.curves[0].getData()[0]) for item in bands if item.brush().color().rgb() == human_colour.rgb()]
    assert reach == [fake_report.HUMAN_REACHES]


def test_raw_view_draws_each_sources_own_floor(window, user, fake):
    _open(user, window, fake)
    tab = window.memory_tab
    block = json.loads(fake.read_text())["by_temperature"]["1.0"]
    user.click("raw TR, own floor")
    plot = tab.per_bar_plots["TR"]
    assert tab.raw_button.isChecked() and "own floor" in plot.title.text()
    _assert_drawn(plot, "vanilla RNN", block["TR"]["rnn"])
    _assert_drawn(plot, "vanilla RNN: own floor", block["TR_floor"]["rnn"])
    _assert_drawn(plot, "human reference: own floor", block["TR_floor"]["human"])
    assert "floor (another tune)" not in plot.series  # the shared floor is no yardstick here
    user.click("TR over its floor")
    _assert_drawn(plot, "vanilla RNN", block["TR_excess"]["rnn"])


def test_the_temperature_switch_redraws_the_curves_the_rates_and_the_table(window, user, fake):
    _open(user, window, fake)
    tab = window.memory_tab
    report = json.loads(fake.read_text())
    assert list(tab.temperature_buttons) == fake_report.TEMPERATURES
    user.click("0.7")
    assert tab.temperature_buttons["0.7"].isChecked() and not tab.temperature_buttons["1.0"].isChecked()
    block = report["by_temperature"]["0.7"]
    _assert_drawn(tab.per_bar_plots["TR"], "RNN + attention", block["TR_excess"]["attention"])
    _assert_drawn(tab.per_bar_plots["RR"], "floor (another tune)", block["RR"]["floor"])
    _assert_drawn(tab.per_bar_plots["IK"], "vanilla RNN", block["IK"]["rnn"])
    rates = report["distinct_bar_rate_by_temperature"]["0.7"]
    for label, src in (("vanilla RNN", "rnn"), ("human reference", "human")):
        assert tab.distinct_plot.series[label].y[0] == rates[src]["mean"]
    rnn = rates["rnn"]
    assert tab.table.cell("rnn", "distinct_bar_rate") == f"{rnn['mean']:.3f} [{rnn['lo']:.3f}, {rnn['hi']:.3f}]\nn {rnn['n']}"
    assert "temperature 0.7" in tab.table_title.text() and "temperature 0.7" in tab.distinct_plot.title.text()
    # the view and the temperature stay as chosen when the same report is opened again, and its
    # temperatures replace the last report's at once (not when Qt gets round to deleting the old buttons)
    user.click("raw TR, own floor")
    tab.open_report(fake)
    assert tab.temperature_row.count() == 2
    QApplication.processEvents()  # new buttons show on the next turn of the event loop
    assert sorted(shown_text(b) for b in user.buttons() if shown_text(b) in ("1.0", "0.7")) == ["0.7", "1.0"]
    assert tab.raw_button.isChecked() and tab.temperature_buttons["0.7"].isChecked()
    _assert_drawn(tab.per_bar_plots["TR"], "vanilla RNN", block["TR"]["rnn"])


def test_the_meter_filter_draws_one_meter_and_says_when_it_has_too_few_primers(window, user, fake):
    _open(user, window, fake)
    tab = window.memory_tab
    report = json.loads(fake.read_text())
    items = [tab.meter_box.itemText(i) for i in range(tab.meter_box.count())]
    assert items == ["all meters (36 primers)", "6/8 (30 primers)", "2/4 (6 primers: too few)"]
    # every meter: the primer leaves the attention window at a different bar in each
    assert sorted(x for x, _label, _tip in tab.per_bar_plots["TR"].marks) == [5.8333, 8.5]
    _choose(user, tab.meter_box, "6/8 (30 primers)")
    block = report["by_temperature_and_meter"]["1.0"]["6/8"]
    _assert_drawn(tab.per_bar_plots["TR"], "vanilla RNN", block["TR_excess"]["rnn"])
    _assert_drawn(tab.per_bar_plots["RR"], "human reference", block["RR"]["human"])
    assert "6/8 (30 primers)" in tab.per_bar_plots["RR"].title.text()
    for plot in tab.per_bar_plots.values():  # the window and the training crop of 6/8, on every per-bar plot
        marks = {label: x for x, label, _tip in plot.marks}
        assert marks == {"window": 5.8333, "crop": 1.8333}
        assert plot.notice_text == ""
    assert any("RNN + attention" in tip for _x, _l, tip in tab.per_bar_plots["TR"].marks)
    user.click("0.7")  # the meter stays chosen
    _assert_drawn(tab.per_bar_plots["TR"], "vanilla RNN", report["by_temperature_and_meter"]["0.7"]["6/8"]["TR_excess"]["rnn"])

    _choose(user, tab.meter_box, "2/4 (6 primers: too few)")
    for metric, plot in tab.per_bar_plots.items():
        assert not any(np.isfinite(s.y).any() for s in plot.series.values()), metric  # nothing drawn ...
        assert "6 primers in 2/4" in plot.notice_text and "min_n = 10" in plot.notice_text  # ... and it says why
    _choose(user, tab.meter_box, "all meters (36 primers)")
    assert all(plot.notice_text == "" for plot in tab.per_bar_plots.values())


def test_hovering_a_bar_shows_each_value_its_interval_and_n(window, user, qtbot, fake):
    _open(user, window, fake)
    tab = window.memory_tab
    block = json.loads(fake.read_text())["by_temperature"]["1.0"]["TR_excess"]
    plot = tab.per_bar_plots["TR"]
    text = _hover(qtbot, tab, plot, 2.0, 0.2)
    rnn = block["rnn"]
    assert text.splitlines()[0] == "bar 2"
    assert f"vanilla RNN: {rnn['mean'][1]:.3f} [{rnn['lo'][1]:.3f}, {rnn['hi'][1]:.3f}], n 36" in text
    text = _hover(qtbot, tab, plot, 9.0, 0.2)  # the human reference rests on 8 primers there
    assert "bar 9" in text and "human reference: not drawn: n 8 < 10" in text and "vanilla RNN: " in text
    # the distinct-bar rate says its n too
    text = _hover(qtbot, tab, tab.distinct_plot, 0.5, 1.0)
    human = json.loads(fake.read_text())["distinct_bar_rate_by_temperature"]["1.0"]["human"]
    assert f"human reference: {human['mean']:.3f} [{human['lo']:.3f}, {human['hi']:.3f}], n 36" in text


def test_the_summary_gives_every_figure_with_its_interval_n_and_length_check(window, user, fake):
    _open(user, window, fake)
    tab = window.memory_tab
    table = tab.table
    assert table.rowCount() == 4  # two models, the human reference, the floor
    assert table.cell("rnn", "TR_excess_first") == "0.050 [0.030, 0.070]\nn 36"
    assert table.cell("human", "TR_excess_last") == "-\nn 8"  # too few primers reach the last bars: no mean
    assert table.cell("rnn", "length") == "+0.0106 fails\nbest k 4 steps"
    assert table.cell("attention", "length") == "+0.0012 passes\nbest k 8 steps"
    assert "min_n = 10" in tab.table_caption.text() and "looping" in tab.table_caption.text()
    # the length check as a chart, with the tolerance it must stay within
    assert tab.length_plot.series["vanilla RNN"].y[0] == 0.0106
    assert (0.005, "0.005 bits", "") in tab.length_plot.marks
    assert "looping" in tab.distinct_plot.caption.text()


def test_the_influence_panel_shows_the_reports_figures_and_hides_without_them(window, user, qtbot, fake, tmp_path):
    _open(user, window, fake)
    tab = window.memory_tab
    block = fake_report.INFLUENCE
    assert tab.influence_group.isVisible()
    assert "gradient, 16-bar continuations of 30 primers, temperature 1.0" in tab.influence_plot.title.text()
    counts = np.array(block["models"]["rnn"]["histogram"]["counts"], dtype=float)
    np.testing.assert_allclose(tab.influence_plot.series["vanilla RNN"].y, counts / counts.sum())
    assert set(tab.influence_plot.series) == {"vanilla RNN", "RNN + attention", "human reference"}
    # each source's chance level is drawn on the distribution ...
    assert sorted(x for x, _l, _t in tab.influence_plot.marks) == [5.0, 5.5, 6.0]
    # ... and said beside its mean, with the interval and n
    text = _hover(qtbot, tab, tab.influence_mean_plot, 1.0, 1.0)
    attention = block["models"]["attention"]
    assert (f"RNN + attention: {attention['mean']:.2f} [{attention['lo']:.2f}, {attention['hi']:.2f}], n 30 "
            f"(chance 5.50, median 2.80") in text
    assert tab.table.cell("rnn", "influence_distance_bars") == "0.80 [0.60, 1.10]\nn 30, chance 5.00"

    without = fake_report.write_report(tmp_path / "none", influence=False)
    _open(user, window, without)
    assert not tab.influence_group.isVisible()
    assert "influence_distance_bars" not in [c[0] for c in tab.table.columns]


def test_a_report_of_the_first_format_shows_raw_theme_recall_with_the_shared_floor(window, user, tmp_path):
    old = fake_report.first_format(fake_report.build_report())
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    _open(user, window, path)
    tab = window.memory_tab
    assert not tab.excess_button.isEnabled() and tab.raw_button.isChecked()
    assert "floor (another tune)" in tab.per_bar_plots["TR"].series
    assert not tab.temperature_buttons and tab.meter_box.count() == 1
    assert not tab.influence_group.isVisible()


def test_the_shipped_report_draws_its_numbers_in_every_view(window, user, qtbot):
    """docs/report.json, the report the bundled models ship with: every temperature and meter."""
    path = REPO / "docs" / "report.json"
    report = json.loads(path.read_text())
    _open(user, window, path)
    tab = window.memory_tab
    least = report["settings"]["min_n"]
    for t in report["settings"]["temperatures"]:
        key = str(float(t))
        user.click(key)
        for meter, info in report["meters"].items():
            few = info["primers"] < least
            _choose(user, tab.meter_box, f"{meter} ({info['primers']} primers{': too few' if few else ''})")
            block = report["by_temperature_and_meter"][key][meter]
            for src in report["models"]:
                _assert_drawn(tab.per_bar_plots["TR"], style.model_label(src), block["TR_excess"][src])
            assert bool(tab.per_bar_plots["TR"].notice_text) == few, (key, meter)
        _choose(user, tab.meter_box, f"all meters ({len(report['primers'])} primers)")
        _assert_drawn(tab.per_bar_plots["TR"], "human reference", report["by_temperature"][key]["TR_excess"]["human"])


@pytest.mark.parametrize("damage", [
    lambda r: r.update(per_bar="not a table"),
    lambda r: r["per_bar"]["TR"].update(rnn={"mean": "x"}),
    lambda r: r["per_bar"]["TR"]["rnn"].update(lo=[0.1]),  # lo shorter than mean
    lambda r: r["settings"].update(bars="64"),
    lambda r: r["settings"].update(min_n=-3),
    lambda r: r.update(summary=[{"no source": 1}]),
    lambda r: r.update(meters={"6/8": {"primers": "many"}}),
    lambda r: r.update(windows={"rnn": [1, 2]}),
    lambda r: r.update(format="melody-memory-report/99"),
    lambda r: r.update(by_temperature={"1.0": {"TR": {"rnn": {"mean": [1e400]}}}}),
    lambda r: r.update(effective_memory={"rnn": "x"}),  # past the checks: drawing fails, the last report stays
    lambda r: r.update(influence={"models": 3}),
])
def test_a_damaged_report_is_refused_with_a_message_naming_it(window, user, tmp_path, damage):
    """Open report on a report.json that is JSON but not a report the app can draw: a message naming the
    file and what is wrong, the report shown before stays (no half-drawn tab, no exception in a slot)."""
    report = fake_report.build_report()
    damage(report)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report).replace("Infinity", "1e400"))
    tab = window.memory_tab
    before = tab.status.text()
    user.show_tab("Memory")
    user.answer(path)
    user.click("Open report ...")
    message = window.statusBar().currentMessage()
    assert message.startswith("Could not open the report") and str(path) in message, message
    assert tab.status.text() == before
