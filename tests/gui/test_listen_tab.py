"""The Listen tab: no models -> a clear way to Train; with a run: generate, play, export and read back."""

from __future__ import annotations

import pretty_midi
import pytest
from PySide6.QtCore import Qt

from tests.gui.driving import focus


@pytest.fixture
def listening(window, qtbot, tiny_run):
    with qtbot.waitSignal(window.state.modelsChanged, timeout=20000):
        window.open_run(tiny_run)
    window.show_tab("listen")
    tab = window.listen_tab
    tab.primer_bars.setValue(4)
    tab.bars.setValue(4)
    return tab


def test_without_models_the_tab_says_so_and_offers_training(window, qtbot):
    tab = window.listen_tab
    assert not tab.banner_widget.isHidden()
    assert "No trained models" in tab.banner.text()
    assert not tab.generate_button.isEnabled()
    tab.banner_button.click()
    assert window.tabs.currentWidget() is window.train_tab


def test_primers_are_test_split_tunes_and_the_human_row_shows_the_real_tune(window):
    tab = window.listen_tab
    test_ids = {m.tune_id for m in window.state.corpus.split("test")}
    offered = {tab.primer_box.itemData(i) for i in range(tab.primer_box.count())}
    assert offered == test_ids
    human = tab.row("human")
    assert human is not None and human.melody is not None and human.melody.notes


def test_the_tab_starts_on_the_primer_the_command_line_uses_by_default(window):
    """`generate` and `influence` without --primer compose from the tune the Listen tab starts on."""
    from engine.data.primer import load_primer_melody

    tab = window.listen_tab
    assert tab.primer_box.count() > 0
    assert tab.primer_box.currentData() == load_primer_melody(None, lambda: window.state.corpus).tune_id


def test_generate_fills_one_row_per_model_aligned_by_bar(listening, window, qtbot):
    tab = listening
    with qtbot.waitSignal(tab.generationFinished, timeout=30000):
        focus(qtbot, window)
        qtbot.keyClick(window, "g", modifier=Qt.KeyboardModifier.ControlModifier)
    keys = window.state.ordered_model_keys()
    assert [r.key for r in tab.rows] == [*keys, "human"]
    for row in tab.rows:
        assert row.melody is not None, row.key
        assert row.melody.n_steps == 4 * row.melody.steps_per_bar
        assert row.roll._shade.isVisible() and row.roll._shade.getRegion() == (0, 4)
        assert row.roll.total_bars == 8
    # the same seed gives the same music
    before = {r.key: r.melody.notes for r in tab.rows}
    with qtbot.waitSignal(tab.generationFinished, timeout=30000):
        tab.generate()
    assert {r.key: r.melody.notes for r in tab.rows} == before


def test_export_all_midi_reads_back_with_primer_and_continuation(listening, user, tmp_path):
    tab = listening
    user.click("Generate")
    user.answer(tmp_path)
    user.click("Export all MIDI ...")
    paths = sorted(tmp_path.glob("*.mid"))
    assert len(paths) == len(tab.rows)
    for row in tab.rows:
        pm = pretty_midi.PrettyMIDI(str(tmp_path / f"{tab._stem(row)}.mid"))
        notes = [n for inst in pm.instruments for n in inst.notes]
        assert len(notes) == len(tab._primer.notes) + len(row.melody.notes), row.key
        assert pm.time_signature_changes[0].numerator == tab._primer.numerator


def test_play_a_row_moves_its_playhead_or_reports_no_audio(listening, window, qtbot):
    tab = listening
    with qtbot.waitSignal(tab.generationFinished, timeout=30000):
        tab.generate()
    row = tab.rows[0]
    with qtbot.waitSignal(window.playback.audioReady, timeout=20000):
        row.play_button.click()
    if window.playback.audio_ok and window.playback.is_playing(row):
        assert row.play_button.text() == "Stop"
        qtbot.waitUntil(lambda: row.roll._playhead.value() > 0.2, timeout=5000)
        focus(qtbot, window)
        qtbot.keyClick(window, " ")
        qtbot.waitUntil(lambda: not window.playback.is_playing(), timeout=2000)
    else:
        assert "no audio" in window.audio_label.text()
    assert row.play_button.text() == "Play"
