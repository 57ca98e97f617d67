"""The Corpus tab: the table, search, the extraction report and the piano roll of the chosen tune."""

from __future__ import annotations

from PySide6.QtCore import Qt


def test_corpus_table_lists_every_melody_and_search_filters(window, qtbot):
    tab = window.corpus_tab
    corpus = window.state.corpus
    assert tab.proxy.rowCount() == len(corpus.melodies) == 40
    assert "40 melodies" in tab.summary.text()
    qtbot.keyClicks(tab.search, "tune_00")
    shown = {tab.proxy.index(r, 0).data() for r in range(tab.proxy.rowCount())}
    assert shown and all("tune_00" in title for title in shown)
    assert len(shown) < 40
    tab.search.clear()
    assert tab.proxy.rowCount() == 40


def test_sorting_by_bars_is_numeric(window):
    tab = window.corpus_tab
    tab.table.sortByColumn(4, Qt.SortOrder.AscendingOrder)
    bars = [int(tab.proxy.index(r, 4).data()) for r in range(tab.proxy.rowCount())]
    assert bars == sorted(bars)


def report_rows(tab) -> list[tuple[str, str, str]]:
    """The extraction report as the user reads it: (file, skipped/warning, reason) per row."""
    table = tab.report
    return [tuple(table.item(r, c).text() for c in range(3)) for r in range(table.rowCount())]


def test_extraction_report_names_the_bad_file_and_why(window):
    rows = report_rows(window.corpus_tab)
    bad = [r for r in rows if r[0].endswith("broken.mid")]
    assert len(bad) == 1 and bad[0][1] == "skipped" and len(bad[0][2]) > 5  # a reason follows the name
    assert "1 skipped" in window.corpus_tab.report_summary.text()


def test_selecting_a_tune_draws_it_with_bar_lines(window, qtbot):
    tab = window.corpus_tab
    tab.select_tune(3)
    melody = tab.current_melody
    assert melody is not None
    assert tab.tune_title.text() == (melody.title or melody.tune_id)
    assert tab.play_button.isEnabled()
    assert tab.roll.total_bars == melody.n_steps / melody.steps_per_bar
    drawn = sum(len(item.opts["x0"]) for item in tab.roll._note_items)
    assert drawn == len(melody.notes)


def test_play_renders_and_either_plays_or_says_there_is_no_audio(window, qtbot):
    tab = window.corpus_tab
    tab.select_tune(0)
    with qtbot.waitSignal(window.playback.audioReady, timeout=20000):
        tab.play_stop()
    if window.playback.audio_ok and window.playback.is_playing(tab):
        assert tab.play_button.text() == "Stop"
        qtbot.waitUntil(lambda: tab.roll._playhead.isVisible() and tab.roll._playhead.value() > 0, timeout=5000)
        tab.play_stop()
    else:
        assert "no audio" in window.audio_label.text()
    assert not window.playback.is_playing()
    assert tab.play_button.text() == "Play"


def test_a_folder_of_only_broken_files_lists_every_one_and_keeps_the_corpus(window, user, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for i in range(12):
        (broken / f"bad_{i:02d}.mid").write_bytes(b"MThd" + bytes(i))  # truncated headers of every length
    user.answer(broken)
    user.trigger("File > Open MIDI folder ...")
    (message,) = user.warnings()
    assert message.title == f"Could not load {broken}" and "12 found, 12 skipped" in message.text
    assert "stays in use" in message.text
    assert sorted(line.split(":")[0] for line in message.details.splitlines()) == sorted(
        str(p) for p in broken.iterdir())  # every file, behind Show Details
    rows = report_rows(window.corpus_tab)
    assert sorted(r[0] for r in rows) == [f"bad_{i:02d}.mid" for i in range(12)]
    assert all(kind == "skipped" and reason for _path, kind, reason in rows)
    assert "no usable melody in 12 files" in window.corpus_tab.report_summary.text()
    assert len(window.state.corpus) == 40  # the corpus in use stays
