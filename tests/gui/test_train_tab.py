"""The Train tab: live training of tiny models, Stop in the middle, errors, reopening a run, closing."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QApplication, QComboBox, QLineEdit

from engine.models.registry import MODEL_KEYS
from engine.training.checkpoint import list_run_models, read_history
from tests.gui.driving import focus


def _tiny(tab, steps=400, models=None):
    tab.preset.setCurrentText("tiny")
    tab.steps.setValue(steps)
    tab.window_len.setValue(64)  # short windows: the tests watch the run, not the models' quality
    for key, box in tab.model_boxes.items():
        box.setChecked(models is None or key in models)


def test_models_show_their_parameter_counts_per_preset(window):
    tab = window.train_tab
    tab.preset.setCurrentText("tiny")
    tiny = {k: label.text() for k, label in tab.param_labels.items()}
    assert all("k parameters" in t for t in tiny.values())
    tab.preset.setCurrentText("small")
    assert all(tab.param_labels[k].text() != tiny[k] for k in tiny)
    assert tab.window_len.value() == 256


def test_training_draws_curves_and_stop_keeps_a_checkpoint(window, user, qtbot, app_env):
    tab = window.train_tab
    _tiny(tab, steps=300)  # a validation point every 15 steps
    user.show_tab("Train")
    user.click("Start training", wait=False)
    assert not tab.start_button.isEnabled()
    # a validation point of every model is drawn (they train in two processes); then Stop, long before the end.
    # (Waited for on the curves, not with waitSignal on the worker's progress signal: that signal keeps firing
    # after the wait, and PySide6 once called the finished blocker's slot on a freed object.)
    qtbot.waitUntil(lambda: all(_points(tab.valid_curves[k]) for k in tab.model_boxes), timeout=60000)
    user.click("Stop")
    assert tab.start_button.isEnabled() and not tab.stop_button.isEnabled()
    drawn = {k for k, c in tab.valid_curves.items() if _points(c)}
    assert drawn, "no validation curve was drawn"
    (run,) = (app_env / "runs").iterdir()  # a new folder in "Save runs in"
    keys = list_run_models(run)
    assert keys == list(tab.model_boxes)
    steps = {k: read_history(run / k)[-1]["step"] for k in keys}
    assert all(0 < s < 300 for s in steps.values())
    # the run is opened at once (Listen can use it) and the tab still says what happened, truly
    assert window.state.run_dir == run and set(window.state.models) == set(keys)
    stopped_at = min(window.state.models[k].config["step"] for k in keys)
    assert f"stopped at step {stopped_at} of 300; saved in {run}" in tab.run_label.text()
    for key in keys:
        step = window.state.models[key].config["step"]
        assert tab.rates[key].text() == f"{step}/300" and tab.bars[key].value() == int(100 * step / 300), key


def test_a_stopped_run_reopens_with_its_true_progress(window, user, qtbot, tmp_path):
    tab = window.train_tab
    _tiny(tab, steps=300, models=["rnn", "gru"])
    user.show_tab("Train")
    user.answer(tmp_path / "runs")
    user.click("...")  # "Save runs in": a folder of the user's choice
    user.click("Start training", wait=False)
    qtbot.waitUntil(lambda: all(tab.rates[k].text() for k in ("rnn", "gru")), timeout=60000)
    user.click("Stop")
    (run,) = (tmp_path / "runs").iterdir()
    from tests.gui.driving import open_window

    window.close()
    again = open_window(qtbot)  # the next launch reopens the run trained last
    assert again.state.run_dir == run
    again_tab = again.train_tab
    for key in ("rnn", "gru"):
        step = again.state.models[key].config["step"]
        assert 0 < step < 300
        assert again_tab.rates[key].text() == f"{step}/300", key
        assert again_tab.bars[key].value() < 100
    assert "2 of 2 models stopped before their last step" in again_tab.run_label.text()
    again.close()


def test_a_training_error_opens_a_dialog_and_the_app_stays_usable(window, qtbot, tmp_path, monkeypatch):

    def broken(job, stop=None):
        raise RuntimeError("simulated out-of-memory")
        yield

    monkeypatch.setattr("engine.training.train.train", broken)
    tab = window.train_tab
    _tiny(tab, steps=5)
    tab.start(tmp_path / "r")
    # the job fails at once, possibly before a signal could be waited on: wait for its visible outcome
    qtbot.waitUntil(lambda: not tab.running, timeout=10000)
    dialog = window.findChild(object, "errorDialog")
    assert dialog is not None and "simulated out-of-memory" in dialog.text()
    assert tab.start_button.isEnabled()
    dialog.close()


def test_open_run_draws_its_history(window, qtbot, tiny_run):
    with qtbot.waitSignal(window.state.modelsChanged, timeout=20000):
        window.open_run(tiny_run)
    tab = window.train_tab
    assert set(window.state.models) == set(tab.model_boxes)
    for key, curve in tab.valid_curves.items():
        xs, _ys = curve.getData()
        assert xs is not None and len(xs) >= 1, key
    assert str(tiny_run) in tab.run_label.text()
    assert window.models_label.text() == f"{len(MODEL_KEYS)} models of {tiny_run.name}"


def test_closing_the_window_during_training_stops_it_and_keeps_the_checkpoint(window, qtbot, tmp_path):
    tab = window.train_tab
    _tiny(tab, steps=5000, models=["rnn", "lstm"])
    tab.start(tmp_path / "run")
    qtbot.waitUntil(lambda: all(tab.rates[k].text() for k in ("rnn", "lstm")), timeout=60000)  # both stepped
    window.close()  # blocks until the worker has saved and returned
    assert not tab.running
    assert list_run_models(tmp_path / "run") == ["rnn", "lstm"]


def test_a_closed_terminal_or_kill_closes_the_app_as_its_close_button_does(window, qtbot, tmp_path):
    """SIGHUP (and SIGTERM, SIGINT: the same handler) to the app while it trains: the window closes, so
    training stops and checkpoints; the default ended the app at once, losing the steps since the last save."""
    import os
    import signal

    from commands.gui import _close_on_stop_signals
    from engine.core.processes import STOP_SIGNALS

    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        received = _close_on_stop_signals(QApplication.instance(), window)
        tab = window.train_tab
        _tiny(tab, steps=5000, models=["rnn"])
        tab.start(tmp_path / "run")
        qtbot.waitUntil(lambda: bool(tab.rates["rnn"].text()), timeout=60000)  # it stepped
        os.kill(os.getpid(), signal.SIGHUP)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=60000)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert received == [signal.SIGHUP] and not tab.running
    assert list_run_models(tmp_path / "run") == ["rnn"]


def _points(curve) -> int:
    """How many points a pyqtgraph curve draws (its data is None before the first, an array after)."""
    xs = curve.getData()[0]
    return 0 if xs is None else len(xs)


def test_resume_continues_a_stopped_run_from_the_train_tab(window, user, qtbot, tmp_path):
    tab = window.train_tab
    _tiny(tab, steps=80, models=["rnn", "gru"])
    user.show_tab("Train")
    user.answer(tmp_path / "runs")
    user.click("...")
    assert not tab.resume_button.isEnabled()  # nothing opened that could continue
    focus(qtbot, window)  # the active window, as the one a person types into: its keyboard focus is real
    user.click("Start training", wait=False)
    qtbot.waitUntil(lambda: all(tab.rates[k].text() for k in ("rnn", "gru")), timeout=60000)
    user.click("Stop", wait=False)
    # While the checkpoint is saved, the focus waits where no key changes anything: not on the next control
    # in the tab order, "Classroom settings" (issue 25), nor any other button or field
    held = QApplication.focusWidget()
    assert held is not None and not isinstance(held, (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit))
    user.wait_idle()
    (run,) = (tmp_path / "runs").iterdir()
    stopped = {k: window.state.models[k].config["step"] for k in ("rnn", "gru")}
    assert all(0 < s < 80 for s in stopped.values())
    assert tab.resume_button.isEnabled() and "rnn, gru" in tab.resume_button.toolTip()
    drawn_before = _points(tab.train_curves["rnn"])

    # then the focus is on Start again (the window still active once the run's models are loaded: a Listen
    # row's box flashed up as a window of its own and took the activation), and Tab reaches Resume
    assert window.isActiveWindow() and QApplication.focusWidget() is tab.start_button
    QTest.keyClick(tab.start_button, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is tab.resume_button
    user.click("Resume", wait=False)
    assert "resuming rnn, gru" in tab.run_label.text()
    qtbot.waitUntil(lambda: not tab.running, timeout=120000)
    # the finished run is opened again (in the background), so Listen uses the resumed models
    qtbot.waitUntil(lambda: all(window.state.models[k].config["step"] == 80 for k in ("rnn", "gru")), timeout=20000)
    assert window.state.run_dir == run
    for key in ("rnn", "gru"):
        assert tab.rates[key].text() == "80/80"
        rows = read_history(run / key)
        assert [r["step"] for r in rows] == sorted({r["step"] for r in rows})  # one history, no restart
    assert _points(tab.train_curves["rnn"]) > drawn_before  # the curves went on
    assert not tab.resume_button.isEnabled() and "finished" in tab.resume_button.toolTip()
    assert not user.warnings()


def test_the_bundled_models_cannot_be_resumed_and_the_tab_says_why(qtbot, qsettings_tmp, monkeypatch, tmp_path):
    from tests.gui.driving import open_window

    monkeypatch.setenv("MELODY_MEMORY_DATA", str(tmp_path / "data"))
    window = open_window(qtbot)  # a first launch: the bundled models
    assert window.state.models_label == "bundled models"
    button = window.train_tab.resume_button
    assert not button.isEnabled() and "never overwritten" in button.toolTip()
    # the bundled models were trained to convergence: early stopping ended them short of the recipe's step cap,
    # and their rows say they are done (full bars), not "45%" of a budget they never needed
    tab = window.train_tab
    early = {k: m.record.step for k, m in window.state.models.items() if m.record.stopped_early}
    assert early, "the bundled models are the converged recipe's, which early stopping ends"
    for key, step in early.items():
        assert tab.rates[key].text() == f"{step} done" and tab.bars[key].value() == 100, key
        assert "early stopping" in tab.rates[key].toolTip()
    window.close()


def test_classroom_settings_are_the_defaults_and_come_back_at_a_click(window, user):
    from engine.training.train_config import classroom_config

    tab = window.train_tab
    classroom = classroom_config()
    tab.steps.setValue(7)
    tab.learning_rate.setValue(0.01)
    tab.model_boxes["gru"].setChecked(False)
    user.show_tab("Train")
    user.click("Classroom settings")
    assert tab.steps.value() == classroom.steps and tab.learning_rate.value() == classroom.lr
    from engine.models.registry import default_selection

    ticked = [k for k, b in tab.model_boxes.items() if b.isChecked()]
    assert tab.preset.currentText() == classroom.preset and ticked == default_selection()
