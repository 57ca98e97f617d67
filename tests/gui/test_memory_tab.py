"""The Memory tab: evaluate a tiny run, draw every plot from the report, run the probe, export."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from gui.memory.per_bar_section import THEME
from tests.gui import fake_report
from tests.gui.driving import drawn_in_the_status_bar, focus, set_small_evaluation
from tests.gui.memory_driving import choose, hover, tick_labels, visible_names


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


def test_evaluate_draws_every_memory_plot(memory, window, user, qtbot, small_evaluations):
    tab = memory
    set_small_evaluation(window)
    user.click("Evaluate models")
    keys = window.state.ordered_model_keys()
    report = tab.report
    assert report["models"] == keys and np.isfinite(report["summary"][0]["TR_first"])
    for metric, plot in tab.per_bar_plots.items():
        if metric not in report["per_bar"]:  # a measure this engine does not give yet: the plot says so
            assert "no " in plot.notice_text, metric
            continue
        # every model and the human reference (the theme measures over their own floors), and the shared floor
        # on the other plots, 8 bars each
        assert len(visible_names(plot)) == len(keys) + (1 if metric in THEME else 2), metric
        assert all(len(x) == 8 for x, _y in plot.drawn.values())
    side = tab.model_side
    assert {s.key for s in side.context_plot.series.values()} == set(keys)
    assert {s.key for s in side.gradient_plot.series.values()} == set(keys)
    assert len(side.repeat_plot.series) == len(keys)
    assert {s.key for s in side.length_plot.series.values()} == set(keys)
    assert {s.key for s in tab.controls.all_bars_plot.series.values()} == set(keys) | {"human"}
    assert set(tab.self_similarity.views) == set(keys) | {"human"}
    assert tab.table.rowCount() == len(keys) + 2
    assert tab.table.item(0, 0).text() == "vanilla RNN"
    temperatures = [str(float(t)) for t in report["settings"]["temperatures"]]
    assert sorted(tab.view_bar.temperature_buttons) == sorted(temperatures)  # the switch covers the sweep
    if "recall_by_distance_steps" not in report:
        assert "no recall by distance" in tab.recall.plot.notice_text
    # hovering a plot reads out the values under the mouse
    text = hover(qtbot, tab, tab.per_bar_plots["TR"], 2.0, 0.0)
    assert "human" in text


def test_theme_recall_probe_runs_with_the_chosen_gaps(memory, qtbot):
    tab = memory
    probe = tab.probe
    probe.gaps.setText("1, 3")
    probe.steps.setValue(20)
    from dataclasses import replace

    probe_settings = replace(probe.probe_settings(), eval_sequences=8, batch_size=8)
    assert probe_settings.gaps == (1, 3)
    busy = tab.main_window.busy_indicator
    seen = []
    tab.state.busyChanged.connect(lambda: seen.append((busy.label.text(), busy.bar.value(), busy.bar.maximum())))
    with qtbot.waitSignal(probe.finished, timeout=120000):
        probe.run(probe_settings)
        assert busy.isVisible() and busy.label.text().startswith("Probe: training ")  # the status bar says so
    # which model of how many and how far it is, the bar over the whole probe (not one model's 20 steps)
    keys = tab.state.ordered_model_keys()
    n = len(keys)
    for i, key in enumerate(keys, 1):
        assert (f"Probe: training {key} ({i} of {n}), step 20/20", 20 * i, 20 * n) in seen, seen
    assert tab.status.text() == "probe finished"
    qtbot.waitUntil(lambda: not busy.isVisible(), timeout=5000)
    plot = probe.plot
    assert "chance" in plot.series
    assert list(plot.series["vanilla RNN"].x) == [1, 3]
    # a log axis labelled at the gaps themselves, so that 1, 2, 4 ... 32 spread evenly
    assert plot.plot.getPlotItem().getAxis("bottom").logMode
    assert tick_labels(plot, "bottom") == ["1", "3"]
    # hovering reads each model's accuracy at the gap under the mouse, and chance
    text = hover(qtbot, tab, plot, np.log10(3), 0.5)
    assert "vanilla RNN: " in text and "(at 3)" in text and f"chance: {plot.series['chance'].y[0]:.2f}" in text


def test_bad_probe_gaps_give_a_message_not_a_crash(memory, window, user):
    tab = memory
    tab.probe.gaps.setText("one, two")
    user.click("Run probe")
    said = [m.text for m in [*user.messages, *user.warnings()]]
    # named by the field's label, with the range of its one table (engine/memory/probe.PROBE_SETTINGS) and why
    assert any("Probe gaps must be 1 to 16 different whole numbers from 1 to 256" in t and "'one' is not a number" in t
               for t in said), said
    assert not tab.probe.running


# ---- where reports live --------------------------------------------------------------------------
def test_evaluating_the_bundled_models_keeps_the_shipped_report_one_click_away(
        bundled, window, user, qtbot, small_evaluations, app_env):
    """The shipped report is read-only to the app: an evaluation goes to the user's data folder, the
    next launch shows it, and without it the shipped report is shown again. Issue 25 item 8: after a quick
    Evaluate the list beside Report holds the new report and the shipped one, each with its date and primer
    count; choosing the shipped one shows it, at this launch and the next. (One evaluation serves both.)"""
    from tests.gui.driving import open_window

    shipped = bundled / "memory-report.json"
    before = shipped.read_bytes()
    qtbot.waitUntil(lambda: window.state.models_label == "bundled models", timeout=20000)
    tab = window.memory_tab
    assert "3 primers" in tab.status.text() and "shipped with these models" in tab.status.text()
    assert str(bundled) not in tab.status.text()  # not the folder the report was made in
    user.show_tab("Memory")
    box = tab.files.box
    assert [box.itemText(i) for i in range(box.count())] == [box.itemText(0)]
    assert box.itemText(0).startswith("shipped with the models") and box.itemText(0).endswith(", 3 primers")
    set_small_evaluation(window, primers=2)  # smaller than the shipped report's 3: which one is shown tells them apart
    focus(qtbot, window)
    busy = window.busy_indicator
    seen = []
    window.state.busyChanged.connect(lambda: seen.append((busy.label.text(), busy.bar.value(), busy.bar.maximum())))
    user.click("Evaluate models", wait=False)
    assert QApplication.focusWidget() is tab.cancel_button  # the focus goes where the next key acts, not a field
    # the status bar's busy line says what runs, drawn where the person looks, and how far it is as it goes
    assert busy.label.text() == "Evaluating 7 models ..."
    qtbot.wait(50)
    assert drawn_in_the_status_bar(window, busy.label) and drawn_in_the_status_bar(window, busy.bar)
    user.wait_idle()
    steps = [(done, total) for text, done, total in seen if text.startswith("Evaluating: ") and total > 1]
    assert steps and steps[-1][0] > steps[0][0], seen  # a bar that moves with the work done
    assert not busy.isVisible()
    assert len(tab.report["primers"]) == 2
    assert shipped.read_bytes() == before
    kept = list((app_env / "data" / "reports").rglob("report-*.json"))
    assert len(kept) == 1 and "kept in" in tab.status.text()
    items = [box.itemText(i) for i in range(box.count())]
    assert len(items) == 2 and items[0].startswith("evaluated 20") and items[0].endswith("UTC, 2 primers")
    assert box.isVisible() and box.currentIndex() == 0
    choose(user, box, items[1])
    assert len(tab.report["primers"]) == 3 and "shipped with these models" in tab.status.text()
    choose(user, box, items[0])
    assert len(tab.report["primers"]) == 2 and "evaluated" in tab.status.text()
    window.close()

    again = open_window(qtbot)
    assert len(again.memory_tab.report["primers"]) == 2  # the newest report on these models
    assert "evaluated" in again.memory_tab.status.text()
    again_box = again.memory_tab.files.box
    assert [again_box.itemText(i) for i in range(again_box.count())] == items  # the newest shown, both listed
    again.close()
    kept[0].unlink()
    third = open_window(qtbot)
    assert len(third.memory_tab.report["primers"]) == 3  # the shipped one again
    third.close()


def test_a_shipped_report_over_three_seeds_says_which_seed_its_date_is(shipped_models, app_env, qtbot, tmp_path,
                                                                      monkeypatch):
    """The bundled models are seed 1; their report also rests on seeds 2 and 3, trained on other days: the
    report list dates the seed it names, not the report."""
    import shutil

    import gui.loading
    from tests.gui.driving import open_window

    folder = tmp_path / "pretrained"
    shutil.copytree(shipped_models, folder)
    report_file = folder / "memory-report.json"
    report = json.loads(report_file.read_text(encoding="utf-8"))
    seed = {str(m["training"]["seed"]) for m in report["run"]["models"].values()}.pop()
    report["seeds"] = {seed: {}, "12": {}, "13": {}}
    report_file.write_text(json.dumps(report), encoding="utf-8")
    monkeypatch.setattr(gui.loading, "PRETRAINED_DIR", folder)
    win = open_window(qtbot)
    shown = win.memory_tab.files.box.itemText(0)
    assert re.search(rf"shipped with the models \(seed {seed} trained 20\d\d-\d\d-\d\d; 3 seeds\), 3 primers$",
                     shown), shown
    win.close()


def test_open_report_accepts_a_report_file_of_any_name(window, user, tmp_path, monkeypatch):
    """Issue 25 item 8: the file dialog offers every .json file (and all files), and a report saved under
    another name opens; the list beside Report says which file is shown."""
    from PySide6.QtWidgets import QFileDialog

    asked = []
    path = fake_report.write_report(tmp_path, "results of Tuesday.json")
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *args: (asked.append(args[3]), (str(path), ""))[1]))
    user.show_tab("Memory")
    user.click("Open report ...")
    assert "*.json" in asked[0] and "All files (*)" in asked[0]
    tab = window.memory_tab
    assert tab.report is not None and f"opened {path}" in tab.status.text()
    assert tab.files.box.currentText() == "opened results of Tuesday.json" and tab.files.box.isVisible()


def test_ctrl_e_asks_where_exports_in_the_background_and_says_where_it_went(window, user, qtbot, tmp_path):
    """Issue 25 items 10 and 11: Ctrl+E on the Memory tab asks for a folder in a dialog that names the report;
    the files are written by a background job while the window keeps answering, with a moving progress bar
    and a message saying how far it is; at the end the tab and the status bar say where the files went."""
    from gui import workers

    path = fake_report.write_report(tmp_path / "in")
    user.show_tab("Memory")
    user.answer(path)
    user.click("Open report ...")
    tab = window.memory_tab
    folder = user.new_folder()  # a folder that already holds the person's files (a crowded Documents)
    for i in range(60):
        (folder / f"project-{i % 6}").mkdir(exist_ok=True)
        (folder / f"project-{i % 6}" / f"note-{i}.txt").write_text("mine")
    user.answer(folder)
    user.press_keys(Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier, wait=False)
    assert user.asked[-1] == f"Export the memory report (7 models, 36 primers, opened from {path}) into a folder"
    # the job runs off the GUI thread: the event loop turns (the tab's message updates) while it writes
    assert workers.running_jobs() > 0 and tab.progress.isVisible() and not tab.export_button.isEnabled()
    # and the window's busy line says so, drawn in the status bar, with how far it is as it goes
    busy = window.busy_indicator
    assert busy.label.text() == f"Exporting the memory report into {folder} ..."
    qtbot.wait(50)
    assert drawn_in_the_status_bar(window, busy.label) and drawn_in_the_status_bar(window, busy.bar)
    seen, lines = [], []

    def finished() -> bool:
        seen.append(tab.status.text())
        lines.append(busy.label.text() if busy.isVisible() else "")
        return tab.status.text().startswith("Report written")

    try:
        qtbot.waitUntil(finished, timeout=60000)
    except qtbot.TimeoutError:  # say what the person saw, not only that the wait ran out
        pytest.fail(f"no 'Report written' after 60 s; the tab said {seen[-1]!r}, the status bar "
                    f"{window.statusBar().currentMessage()!r}, {workers.running_jobs()} jobs running")
    user.wait_idle()
    written = tab.status.text()
    assert written.startswith(f"Report written to {folder}: ") and "plots" in written, written
    # the progress line said how far it was, counting the report's files only, never the folder's others
    total = int(re.search(r": (\d+) files", written).group(1))
    counts = [int(m.group(1)) for t in seen if (m := re.search(r"(\d+) files written", t))]
    assert counts and all(str(folder) in t for t in seen if "files written" in t)
    assert max(counts) <= total, (max(counts), total)
    assert len(list(folder.rglob("note-*.txt"))) == 60  # and the person's files are untouched
    assert window.statusBar().currentMessage() == written
    assert any(re.fullmatch(r"Exporting the memory report: \d+ files written \(\d+ s\)", line) for line in lines), lines
    qtbot.waitUntil(lambda: not busy.isVisible(), timeout=5000)
    assert drawn_in_the_status_bar(window, window.message_area)
    assert (folder / "report.json").is_file() and (folder / "summary.md").is_file() and list(folder.glob("*.png"))
    assert not tab.progress.isVisible() and tab.export_button.isEnabled()
    # the report written out opens again
    user.answer(folder / "report.json")
    user.click("Open report ...")
    assert f"opened {folder / 'report.json'}" in tab.status.text() and not user.warnings()
    # and cancelling the dialog writes nothing, and says so
    user.answer("")
    user.press_keys(Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert tab.status.text() == "Export cancelled: nothing was written."


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

    qtbot.waitUntil(lambda: window.memory_tab.report is not None, timeout=20000)
    tab = window.memory_tab
    window.show_tab("memory")
    report = tab.report
    for metric, plot in tab.per_bar_plots.items():
        # the theme measures (TR and its companions) show their excess over the floor by default
        shown = f"{metric}_excess" if metric in THEME and f"{metric}_excess" in report["per_bar"] else metric
        if shown not in report["per_bar"]:
            continue
        values = [v for src in report["per_bar"][shown].values() for i, mean in enumerate(src["mean"])
                  if mean is not None for v in (mean, src["lo"][i], src["hi"][i]) if v is not None]
        bottom, top = plot.plot.getPlotItem().vb.viewRange()[1]
        if shown.endswith("_excess"):  # around every value and 0 (chance), with a little room
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
    lambda r: r.update(influence={"models": 3}),  # the layout before influence.<model>, damaged
    lambda r: r["influence"].update(rnn=[0.5]),  # a model's entry must be a table (or null: left out)
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


def test_the_memory_tab_chosen_last_time_opens_with_its_plots_drawn(bundled, midi_folder, qtbot):
    """The tab builds its plots when first shown (not at every launch): shown at launch, they are drawn."""
    from gui import settings
    from gui.main_window import TAB_NAMES
    from gui.plots import CaptionedPlot
    from tests.gui.driving import open_window

    settings.write("corpus/sources", [str(midi_folder)])
    settings.write("ui/tab", TAB_NAMES.index("memory"))
    win = open_window(qtbot)
    qtbot.waitUntil(lambda: win.memory_tab.report is not None, timeout=20000)
    assert win.tabs.currentWidget() is win.memory_tab
    shown = [p for p in win.findChildren(CaptionedPlot) if p.isVisible() and not p.visibleRegion().isEmpty()]
    assert shown and all(p.drawn for p in shown if p.objectName() != "Theme-recall probe"), [
        p.objectName() for p in shown if not p.drawn]
    win.close()
