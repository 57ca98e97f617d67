"""The Train tab as a person uses it (issue 25 items 3, 5, 6, 7, 12, 13, 14): what they type is taken or refused
visibly, the ETA counts down, the run interrupted by closing is the one offered next time, a resume on other
tunes offers to load the run's own, a blank folder is refused, progress of another preset's run is not shown
beside this preset's sizes, the app asks before a run replaces the compositions on screen, and the processes and
threads are shown and can be set."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.gui.driving import compose, open_window


def _tiny(tab, steps=400, models=None):
    tab.preset.setCurrentText("tiny")
    tab.steps.setValue(steps)
    for key, box in tab.model_boxes.items():
        box.setChecked(models is None or key in models)


def _start_tiny(user, tab, runs_folder, steps, models) -> None:
    """Tick the models, choose the tiny preset and the steps, the folder for the run, and press Start."""
    _tiny(tab, steps=steps, models=models)
    user.show_tab("Train")
    user.answer(runs_folder)
    user.click("...")
    user.click("Start training", wait=False)


def _type(qtbot, box, text: str) -> None:
    """Select what the field holds and type over it, then Enter, as a person does."""
    box.setFocus()
    box.lineEdit().selectAll()
    QTest.keyClicks(box.lineEdit(), text)
    QTest.keyClick(box, Qt.Key.Key_Return)


def test_the_learning_rate_takes_scientific_notation_and_refuses_visibly(window, user, qtbot):
    user.show_tab("Train")
    box = window.train_tab.learning_rate
    _type(qtbot, box, "1e-3")
    assert box.value() == 0.001 and box.text() == "0.001"
    _type(qtbot, box, "5")  # out of range: not clamped to 1.0, refused with a message the person sees
    assert box.value() == 0.001 and box.text() == "0.001"
    assert window.message_area.text() == "Learning rate: '5' is outside 1e-12 to 1; kept 0.001"  # the table's (0, 1]
    assert window.message_area.isVisible()
    _type(qtbot, box, "2E-4")
    assert box.value() == 0.0002


def test_every_number_field_takes_what_is_typed_or_says_why_not(window, user, qtbot):
    """No field reads 1e-3 as 13, 0.5 as 5 or clamps 10^9 to its maximum without a word: each number field of
    every tab takes a typed number in range (1e3 in a whole-number field too), and otherwise keeps its value and
    the message area says which field, what was typed and why."""
    from PySide6.QtWidgets import QAbstractSpinBox, QSpinBox

    seen = 0
    for page in ("Corpus", "Train", "Listen", "Memory"):
        user.show_tab(page)
        for box in window.tabs.currentWidget().findChildren(QAbstractSpinBox):
            if not box.isVisible() or not box.isEnabled() or box.maximum() - box.minimum() < 2:
                continue
            seen += 1
            name = box.accessibleName()
            for typed in ("1e-3", "0.5", "1000000000", "-1"):
                before = box.value()
                window.statusBar().clearMessage()
                _type(qtbot, box, typed)
                if box.value() == before:  # refused: kept as it was, and said where the person sees messages
                    said = window.message_area.text()
                    assert said.startswith(f"{name}: '{typed}' is ") and said.endswith(f"; kept {box.cleanText()}"), \
                        (name, typed, said)
                else:  # taken as typed, not as what Qt's validator once made of it (13, 5, a clamped maximum)
                    assert box.value() == float(typed), (name, typed, box.value())
            if isinstance(box, QSpinBox) and box.minimum() <= 1000 <= box.maximum():
                _type(qtbot, box, "1e3")
                assert box.value() == 1000, name
    assert seen >= 10
    assert window.message_area.isVisible()


def test_the_eta_counts_down_and_a_model_that_finished_first_does_not_hold_it(window, qtbot, monkeypatch):
    import time
    from types import SimpleNamespace

    import gui.train_progress
    from engine.training.loop import TrainEvent

    later_by = [0.0]  # the countdown's clock, moved on by the test rather than waited for
    monkeypatch.setattr(gui.train_progress, "time", SimpleNamespace(monotonic=lambda: time.monotonic() + later_by[0]))
    tab = window.train_tab
    # what the engine sends: model A ends early with the job's estimate then (30 s); B goes on, its estimate
    # falling; nothing arrives for two seconds
    tab._job, tab._stop, tab._run_dir = object(), threading.Event(), Path("/tmp/run")
    try:
        tab._events([TrainEvent(kind="step", step=100, total_steps=100, model="rnn", eta_s=30.0),
                     TrainEvent(kind="step", step=60, total_steps=200, model="lstm", eta_s=12.0)])
        tab._redraw()
        first = tab.run_label.text()
        assert "160 of 300 steps over 2 models (1 done), about 0:12 left" in first, first
        later_by[0] = 2.1
        tab._redraw()
        later = tab.run_label.text()
        assert "about 0:10 left" in later or "about 0:09 left" in later, later
        assert window.busy_indicator.isVisible()
        assert window.busy_indicator.label.text() in (f"Training, about 0:{s:02d} left: 160 of 300 steps" for s in (9, 10))
    finally:
        tab._job = tab._stop = None
        window.state.set_busy("train", None)


def test_a_real_run_counts_down_to_zero_after_its_first_model_ends(window, user, qtbot, tmp_path):
    """Item 5 through a run the person starts: two models in two processes, the LSTM about twice as fast as the
    GRU, so one ends first; from then on the time left keeps falling, to the last seconds, and the steps
    counted are the run's whole total."""
    import re

    from PySide6.QtCore import QTimer

    user.show_tab("Train")
    tab = window.train_tab
    _tiny(tab, steps=60, models=["lstm", "gru"])
    for box, presses in ((tab.workers.processes, 2), (tab.workers.threads, 1)):  # auto -> 1 -> 2
        box.setFocus()
        for _ in range(presses):
            QTest.keyClick(box, Qt.Key.Key_Up)
    user.answer(tmp_path / "runs")
    user.click("...")
    seen: list[str] = []
    sampler = QTimer()
    sampler.timeout.connect(lambda: seen.append(tab.run_label.text()))
    sampler.start(100)
    try:
        user.click("Start training", wait=False)
        qtbot.waitUntil(lambda: tab.running, timeout=30000)
        qtbot.waitUntil(lambda: not tab.running, timeout=120000)
    finally:
        sampler.stop()
    after_one = [line for line in seen if "(1 done)" in line]
    assert after_one, seen  # one model ended while the other trained on
    left = [int(m[1]) * 60 + int(m[2]) for m in (re.search(r"about (\d+):(\d\d) left", x) for x in after_one) if m]
    assert left and left[-1] <= 2 and max(left) > left[-1], after_one  # counts down, not frozen at the first end
    assert all("of 120 steps over 2 models" in line for line in after_one), after_one
    assert "finished" in tab.run_label.text()


def test_a_blank_folder_and_too_few_primers_are_refused_before_anything_starts(window, user, qtbot, tiny_run):
    user.show_tab("Train")
    tab = window.train_tab
    tab.out_dir.setFocus()
    tab.out_dir.selectAll()
    QTest.keyClicks(tab.out_dir, "   ")
    user.click("Start training")
    assert not tab.running
    (warning,) = user.warnings()
    assert warning.title == "No folder for the run" and "Save runs in" in warning.text

    user.answer(tiny_run)
    user.trigger("File > Open run ...")
    user.show_tab("Memory")
    window.memory_tab.primers.setValue(3)  # fewer than the 10 a mean needs
    user.click("Evaluate models")
    assert window.memory_tab._job is None
    too_few = user.warnings()[-1]
    assert too_few.title == "Too few primers" and "fewer than the 10" in too_few.text
    # enough primers asked for, but too few test tunes long enough for a primer of 8 bars and 16 more
    tab = window.memory_tab
    _type(qtbot, tab.primers, "16")
    _type(qtbot, tab.primer_bars, "8")
    busy = []
    window.state.busyChanged.connect(lambda: busy.append(window.busy_indicator.label.text()))
    user.click("Evaluate models")
    assert not any(text.startswith("Evaluating") for text in busy), busy  # refused before any work
    long_enough = user.warnings()[-1]
    assert long_enough.title == "Too few primers", long_enough
    assert long_enough.text.startswith("Only ") and "have the 24 bars a primer of 8 bars needs" in long_enough.text
    assert "fewer than the 10 every mean of the report needs" in long_enough.text
    assert long_enough.text.endswith("nothing was started.")


def test_rows_hide_the_progress_of_a_run_of_another_preset(window, user, qtbot, tiny_run):
    user.answer(tiny_run)
    user.trigger("File > Open run ...")
    user.show_tab("Train")
    tab = window.train_tab
    assert tab.preset.currentText() == "tiny" and tab.rates["rnn"].text() == "6/6" and tab.rates["rnn"].isVisible()
    tab.preset.setCurrentText("small")
    assert not tab.rates["rnn"].isVisible() and not tab.bars["rnn"].isVisible()
    tab.preset.setCurrentText("tiny")
    assert tab.rates["rnn"].isVisible() and tab.rates["rnn"].text() == "6/6"


def test_processes_and_threads_are_shown_set_and_used(window, user, qtbot, tmp_path):
    user.show_tab("Train")
    tab = window.train_tab
    _tiny(tab, steps=20, models=["rnn", "gru"])
    plan = tab.workers.plan
    assert plan.isVisible() and " process" in plan.text() and " thread" in plan.text() and "cores)" in plan.text()
    for box in (tab.workers.processes, tab.workers.threads):
        assert box.text() == "auto"
        box.setFocus()
        QTest.keyClick(box, Qt.Key.Key_Up)
    assert plan.text().startswith("= 1 process x 1 thread")
    user.answer(tmp_path / "runs")
    user.click("...")
    user.click("Start training")
    (run,) = (tmp_path / "runs").iterdir()
    training = json.loads((run / "run.json").read_text())["training"]
    assert training["processes"] == 1 and training["threads"] == 1


def test_training_asks_before_it_replaces_the_compositions_on_screen(window, user, qtbot, tiny_run, tmp_path):
    user.answer(tiny_run)
    user.trigger("File > Open run ...")
    compose(user, window)
    user.show_tab("Train")
    tab = window.train_tab
    _tiny(tab, steps=10, models=["rnn"])
    user.answer(tmp_path / "runs")
    user.click("...")
    user.click("Start training", wait=False)
    assert not tab.running
    question = user.answer_question("Cancel")
    assert "compositions on the Listen tab are cleared" in question
    assert not tab.running and not (tmp_path / "runs").exists()
    user.click("Start training", wait=False)
    user.answer_question("Train")
    assert tab.running
    user.wait_idle()


def test_the_run_interrupted_by_closing_is_offered_for_resume_at_the_next_launch(window, qtbot, tmp_path, tiny_run):
    tab = window.train_tab
    window.open_run(tiny_run)  # the previous run: what a launch reopened before
    qtbot.waitUntil(lambda: window.state.run_dir == tiny_run, timeout=20000)
    _tiny(tab, steps=5000, models=["rnn"])
    tab.start(tmp_path / "run")
    qtbot.waitUntil(lambda: bool(tab.rates["rnn"].text()), timeout=60000)  # its first step is shown
    window.close()
    again = open_window(qtbot)
    try:
        assert again.state.run_dir == tmp_path / "run"
        assert again.train_tab.resume_button.isEnabled()
    finally:
        again.close()


def test_resume_on_other_tunes_offers_to_load_the_runs_own(window, user, qtbot, tmp_path, midi_folder):
    tab = window.train_tab
    _start_tiny(user, tab, tmp_path / "runs", steps=400, models=["rnn"])
    qtbot.waitUntil(lambda: bool(tab.rates["rnn"].text()), timeout=60000)
    user.click("Stop")
    assert tab.resume_button.isEnabled()
    other = tmp_path / "other tunes"
    shutil.copytree(midi_folder, other)
    for extra in sorted(other.glob("*.mid"))[:3]:
        extra.unlink()
    user.answer(other)
    user.trigger("File > Open MIDI folder ...")
    assert window.state.corpus_label == str(other)
    user.show_tab("Train")
    user.click("Resume", wait=False)
    question = user.answer_question("Load and resume")
    assert f"trained on {midi_folder}" in question and "--source" not in question
    qtbot.waitUntil(lambda: window.state.corpus_label == str(midi_folder) and tab.running, timeout=60000)
    assert "resuming rnn" in tab.run_label.text()
    user.click("Stop")  # it resumed on its own tunes; no need to wait for the end
    assert not user.warnings()


def test_model_group_headings_keep_their_capitals(window, user):
    """The Train tab's group headings read as the registry writes them, first letter raised ('Modern parallel
    RNNs', not 'Modern parallel rnns')."""
    user.show_tab("Train")
    shown = {label.text() for label in window.train_tab.group_headings.values() if label.isVisible()}
    assert "Modern parallel RNNs" in shown and "The seed's five" in shown


@pytest.fixture
def slow_start(window, monkeypatch):
    """Models that are still starting when the person stops: in one process (in this one, where the patch
    reaches), the first step waits for the Stop (or the window's closing), so that no checkpoint exists."""
    import engine.training.train

    real = engine.training.train.train_models
    slow = {"on": True}  # the test turns it off for a run that starts as any does

    def waits_for_the_stop(job, cfg, models, stop):
        if slow["on"]:
            stop.wait(20)
        yield from real(job, cfg, models, stop)

    monkeypatch.setattr(engine.training.train, "train_models", waits_for_the_stop)
    window.train_tab.workers.processes.setValue(1)
    return slow


def test_a_run_closed_before_its_first_checkpoint_is_the_one_offered_next_launch(window, user, qtbot, tmp_path,
                                                                                 tiny_run, slow_start):
    """Closed while its models were still starting, nothing of the run was saved: the next launch still offers
    that run (not the previous one) for Resume, says so, and Resume trains it with its settings."""
    from engine.training.checkpoint import list_run_models
    from gui import settings

    user.answer(tiny_run)
    user.trigger("File > Open run ...")  # the previous run: what the next launch reopened before
    tab = window.train_tab
    _start_tiny(user, tab, tmp_path / "runs", steps=5000, models=["rnn"])
    window.close()  # at once: before any checkpoint
    (run,) = (tmp_path / "runs").iterdir()
    assert not list_run_models(run), "the run got a checkpoint: this test needs one that did not"
    assert settings.read("run/last", "") == str(run)
    again = open_window(qtbot)
    try:
        again.show_tab("train")
        button = again.train_tab.resume_button
        assert button.isVisible() and button.isEnabled(), button.toolTip()
        assert "Continue rnn" in button.toolTip()
        shown = again.train_tab.run_label.text()
        assert f"The run in {run} was stopped before its first checkpoint (rnn)" in shown, shown
        assert again.message_area.text().startswith(f"Your last run, {run}, was stopped before its first checkpoint")
        assert again.state.run_dir == tiny_run  # Listen and Memory keep the models open before
        slow_start["on"] = False  # the resumed run starts as any does
        again.train_tab.workers.processes.setValue(1)  # one process: a quick start on a shared machine
        QTest.mouseClick(button, Qt.MouseButton.LeftButton, pos=button.rect().center())
        assert again.train_tab.running and f"resuming rnn in {run}" in again.train_tab.run_label.text()
        qtbot.waitUntil(lambda: bool(again.train_tab.rates["rnn"].text()), timeout=60000)
    finally:
        again.close()
    assert list_run_models(run) == ["rnn"]  # the resumed run, stopped by closing, saved its model


def test_a_run_stopped_before_its_first_checkpoint_stays_offered_for_resume(window, user, qtbot, tmp_path,
                                                                            slow_start):
    from engine.training.checkpoint import list_run_models

    tab = window.train_tab
    _start_tiny(user, tab, tmp_path / "runs", steps=5000, models=["rnn"])
    user.click("Stop")
    (run,) = (tmp_path / "runs").iterdir()
    assert not list_run_models(run)
    assert tab.resume_button.isEnabled() and "Continue rnn" in tab.resume_button.toolTip()
    assert "was stopped before its first checkpoint (rnn)" in tab.run_label.text()
    assert not user.warnings()
