"""A new user's first minute, with what a fresh clone ships: the bundled corpus and the five bundled
models load at launch, and Generate composes, then plays, a continuation from each model."""

from __future__ import annotations


def test_first_launch_generates_and_plays_every_bundled_model(qtbot, app_env, monkeypatch):
    import gui.loading
    from engine.models.registry import MODEL_KEYS
    from engine.training.checkpoint import PRETRAINED_DIR
    from gui.main_window import MainWindow

    monkeypatch.setattr(gui.loading, "PRETRAINED_DIR", PRETRAINED_DIR)  # app_env hides them; a user has them
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    with qtbot.waitSignal(win.startupFinished, timeout=180000):  # a cold parse of 4,029 tunes on CI
        win.start()
    # every model the wheel ships, in registry order (the modern models join when their bundled training ends)
    bundled = [k for k in MODEL_KEYS if (PRETRAINED_DIR / k / "config.json").is_file()]
    assert len(bundled) >= 5 and win.state.ordered_model_keys() == bundled
    assert "bundled models" in win.models_label.text()
    assert len(win.state.corpus.split("test")) > 100  # the bundled corpus, not a test folder

    win.show_tab("listen")
    tab = win.listen_tab
    assert tab.banner_widget.isHidden() and tab.generate_button.isEnabled()
    with qtbot.waitSignal(tab.generationFinished, timeout=60000):
        tab.generate_button.click()
    for index, key in enumerate(bundled):
        row = tab.rows[index]
        assert row.key == key and row.melody is not None
        # a real continuation, as long as asked for, with notes (not silence)
        assert row.melody.n_steps == tab.bars.value() * row.melody.steps_per_bar, key
        assert len(row.melody.notes) >= tab.bars.value(), key
        with qtbot.waitSignal(win.playback.audioReady, timeout=30000):
            row.play_button.click()
        if win.playback.audio_ok:
            assert win.playback.is_playing(row), key
        else:
            assert "no audio" in win.audio_label.text()
    win.playback.stop()
    win.close()
