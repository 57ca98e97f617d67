"""The Corpus tab's last mile (issue 25 items 13 and 14): search finds a tune by its file name, the table keeps
titles readable at 1024x640 and the extraction report has room, the summary says what is loading, an empty
folder's message says what was looked for, selected tunes export as MIDI files, and near-copies in a folder are
listed as duplicates (item 4)."""

from __future__ import annotations

import mido
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtTest import QTest

import tests.midi_factory as mf


def test_search_finds_a_tune_by_its_file_name(window, user, qtbot, tmp_path):
    folder = tmp_path / "session"
    mf.write(folder / "ryans_0042.mid", mf.track(mf.tune_notes(8, seed=4), name="Melody"),
             conductor_track=mf.conductor(title="The Kesh"))
    mf.write(folder / "other.mid", mf.track(mf.tune_notes(8, seed=9), name="Melody"),
             conductor_track=mf.conductor(title="Banish Misfortune"))
    user.answer(folder)
    user.trigger("File > Open MIDI folder ...")
    user.show_tab("Corpus")
    tab = window.corpus_tab
    tab.search.setFocus()
    QTest.keyClicks(tab.search, "ryans_0042")
    assert tab.proxy.rowCount() == 1 and tab.proxy.index(0, 0).data() != "ryans_0042.mid"


def test_titles_stay_readable_and_the_report_has_room_at_1024x640(window, user, qtbot):
    window.resize(1024, 640)
    user.show_tab("Corpus")
    qtbot.wait(100)
    tab = window.corpus_tab
    header = tab.table.horizontalHeader()
    title, collection = header.sectionSize(0), header.sectionSize(1)
    assert title >= 2 * collection, (title, collection)
    assert title >= QFontMetrics(tab.table.font()).horizontalAdvance("The Humours of Glynn") + 8
    assert tab.report.isVisible() and tab.report.height() >= 110


def test_the_summary_says_which_corpus_is_loading_and_an_empty_folder_what_was_looked_for(
        window, user, qtbot, tmp_path, midi_folder, monkeypatch):
    import shutil

    import engine.data.corpus

    fresh = tmp_path / "fresh"
    shutil.copytree(midi_folder, fresh)
    user.answer(fresh)
    user.trigger("File > Open MIDI folder ...", wait=False)
    assert window.corpus_tab.summary.text().startswith(f"Loading {fresh}")
    user.wait_idle()
    assert window.corpus_tab.summary.text().startswith(f"<b>{fresh}</b>: 40 melodies")
    # the bundled corpus (here a copy of the test tunes, not yet in the cache) is named as such while it loads
    shipped = tmp_path / "shipped tunes"
    shutil.copytree(midi_folder, shipped)
    monkeypatch.setattr(engine.data.corpus, "BUNDLED_DIR", shipped)
    user.trigger("File > Use the bundled corpus", wait=False)
    assert window.corpus_tab.summary.text().startswith("Loading the bundled corpus")
    assert window.busy_indicator.label.text().startswith("Loading the bundled corpus")
    user.wait_idle()
    assert window.state.corpus_label == "bundled corpus"
    assert not window.corpus_tab.summary.text().startswith("Loading")

    empty = tmp_path / "empty"
    (empty / "notes").mkdir(parents=True)
    (empty / "readme.txt").write_text("no tunes here")
    user.answer(empty)
    user.trigger("File > Open MIDI folder ...")
    (warning,) = user.warnings()
    assert "Looked for MIDI files (.mid, .midi, .kar, .smf) in" in warning.text
    assert "and its subfolders: none was found" in warning.text


def test_selected_tunes_export_as_midi_files(window, user, qtbot):
    user.show_tab("Corpus")
    tab = window.corpus_tab
    view = tab.table
    first = view.visualRect(tab.proxy.index(0, 0)).center()
    third = view.visualRect(tab.proxy.index(2, 0)).center()
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=first)
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, third)
    assert len(tab.selected_melodies()) == 3
    folder = user.new_folder()
    user.answer(folder)
    user.click("Export MIDI ...")
    written = sorted(folder.glob("*.mid"))
    assert len(written) == 3
    names = {m.tune_id.removesuffix(".mid") for m in tab.selected_melodies()}
    assert {p.stem for p in written} == names
    assert all(mido.MidiFile(p).length > 0 for p in written)
    assert window.message_area.text() == f"Wrote 3 MIDI files to {folder}"
    # Ctrl+E on the Corpus tab exports the selected tunes too (not the Listen tab's compositions)
    view.setFocus()
    again = user.new_folder()
    user.answer(again)
    user.press_keys(Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert user.asked[-1] == "Export 3 selected tune(s) as MIDI into"
    assert {p.name for p in again.glob("*.mid")} == {p.name for p in written}


def test_near_copies_in_an_opened_folder_are_listed_as_duplicates(window, user, qtbot, tmp_path):
    """Issue 25 item 4 through the Corpus tab: a folder holding one jig three times (a triplet quantised two
    ways, a grace note) shows the jig once, and the extraction report names the two near-copies and why."""
    from tests.test_near_copies import write_near_copies

    folder = tmp_path / "nottingham"
    write_near_copies(folder)
    user.answer(folder)
    user.trigger("File > Open MIDI folder ...")
    user.show_tab("Corpus")
    tab = window.corpus_tab
    assert tab.proxy.rowCount() == 2
    report = {tab.report.item(r, 0).text(): tab.report.item(r, 2).text() for r in range(tab.report.rowCount())}
    for name in ("b jig triplet.mid", "c jig grace.mid"):
        assert report[name] == "duplicate of a jig.mid (a near-copy: the same notes on the beat grid)", report
    assert "2 skipped" in tab.report_summary.text()
