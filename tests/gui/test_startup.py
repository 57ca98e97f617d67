"""What the app opens with: the run the user trained or opened last (the bundled models when it no
longer loads, saying so), the Train form as the user left it, and a Generate pressed while the corpus
and models still load that runs as soon as they are in."""

from __future__ import annotations

import threading

import pytest

from tests.gui.driving import User, open_window


def test_the_last_run_opened_is_reopened_at_the_next_launch(bundled, window, user, qtbot, tiny_run):
    qtbot.waitUntil(lambda: window.state.models_label == "bundled models", timeout=20000)
    user.answer(tiny_run)
    user.trigger("File > Open run ...")
    window.close()
    again = open_window(qtbot)
    assert again.state.run_dir == tiny_run and again.state.models_label == f"run {tiny_run}"
    assert str(tiny_run) in again.models_label.toolTip()
    again.close()


def test_a_last_run_that_no_longer_loads_gives_way_to_the_bundled_models_and_says_so(
        bundled, app_env, qtbot, midi_folder, tmp_path, held_corpus_load, monkeypatch):
    from gui import settings
    from gui.main_window import MainWindow

    settings.write("corpus/sources", [str(midi_folder)])
    settings.write("run/last", str(tmp_path / "deleted-run"))
    settings.write("listen/primer_bars", 4)
    settings.write("listen/bars", 4)
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    person = User(win, qtbot, monkeypatch, tmp_path / "answers")
    try:
        win.start()
        person.show_tab("Listen")
        person.click("Generate", wait=False)  # while the corpus loads and the last run fails to
        qtbot.waitUntil(lambda: win.state.models_label == "bundled models", timeout=20000)
        (message,) = person.warnings()
        assert message.title == "Could not reopen your last run"
        assert "deleted-run" in message.text and "bundled models are open instead" in message.text
        with qtbot.waitSignal(win.listen_tab.generationFinished, timeout=60000):
            held_corpus_load.set()
        assert all(row.melody is not None for row in win.listen_tab.rows)  # composed by the bundled models
    finally:
        held_corpus_load.set()
        person.stop()
        win.close()


def test_the_train_form_is_as_the_user_left_it(bundled, window, qtbot, user):
    tab = window.train_tab
    user.show_tab("Train")
    tab.preset.setCurrentText("tiny")
    tab.steps.setValue(1234)
    tab.learning_rate.setValue(0.002)
    tab.window_len.setValue(48)
    tab.seed.setValue(7)
    user.click("GRU")  # untick it
    window.close()
    again = open_window(qtbot)  # starts with the bundled models, which were trained otherwise
    assert again.state.models_label == "bundled models"
    form = again.train_tab
    assert (form.preset.currentText(), form.steps.value(), form.window_len.value(), form.seed.value()) == (
        "tiny", 1234, 48, 7)
    assert abs(form.learning_rate.value() - 0.002) < 1e-9
    assert form.chosen_models() == ["rnn", "lstm", "attention", "transformer"]
    again.close()


@pytest.fixture
def held_corpus_load(monkeypatch):
    """The corpus load (a first launch's cold parse) is held until the test sets the returned event."""
    import gui.main_window

    release = threading.Event()
    real = gui.main_window.load_corpus_job

    def slow_load(*args):
        release.wait(30)
        return real(*args)

    monkeypatch.setattr(gui.main_window, "load_corpus_job", slow_load)
    yield release
    release.set()


def test_generate_pressed_while_loading_says_so_and_runs_when_ready(
        app_env, qtbot, midi_folder, tiny_run, monkeypatch, tmp_path, held_corpus_load):
    from gui import settings
    from gui.listen_tab import WAITING_TEXT
    from gui.main_window import MainWindow

    settings.write("corpus/sources", [str(midi_folder)])
    settings.write("run/last", str(tiny_run))
    settings.write("listen/primer_bars", 4)
    settings.write("listen/bars", 4)
    release = held_corpus_load
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    person = User(win, qtbot, monkeypatch, tmp_path / "answers")
    try:
        win.start()
        person.show_tab("Listen")
        tab = win.listen_tab
        assert tab.generate_button.isEnabled()
        assert "Loading" in tab.status.text() and "Generate can be pressed now" in tab.status.text()
        person.click("Generate", wait=False)
        assert tab.generate_button.text() == WAITING_TEXT
        assert "Generate will compose as soon as they are in" in tab.status.text()
        with qtbot.waitSignal(tab.generationFinished, timeout=60000):
            release.set()
        assert all(row.melody is not None for row in tab.rows)
        assert tab.generate_button.text() == "Generate" and "composed 4 bars" in tab.status.text()
    finally:
        release.set()
        person.stop()
        win.close()
