"""The Listen tab's originality meter (issue 27 item 5), through the user's path: a model that replays a
training tune gets a meter that says so, gold bands over the copied bars that name the tune when pointed
at, a right-click that offers to play it, and the plain statement that it mostly replays its tunes."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


def point_at(viewport, pos) -> None:
    """The mouse moves onto `pos` (a move event as the window system sends one)."""
    event = QMouseEvent(QEvent.Type.MouseMove, QPointF(pos), QPointF(viewport.mapToGlobal(pos)),
                        Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, event)


@pytest.fixture
def replaying(window, qtbot, tiny_run, monkeypatch):
    """The tiny run open; its first model "composes" the continuation of a training tune bar for bar
    (a model that learned that tune by heart: the copy is certain), the others compose as trained."""
    import engine.generation.generate as generation
    from engine.data.span_index import training_indices

    with qtbot.waitSignal(window.state.modelsChanged, timeout=20000):
        window.open_run(tiny_run)
    window.show_tab("listen")
    tab = window.listen_tab
    tab.primer_bars.setValue(4)
    tab.bars.setValue(8)
    corpus = window.state.corpus
    spb = tab.primer.steps_per_bar
    source = next(corpus.melodies[i] for i in training_indices(corpus) if corpus.melodies[i].steps_per_bar == spb)
    copier = window.state.ordered_model_keys()[0]
    real = generation.generate

    def generate(model, primer, settings, token_config, **kwargs):
        if model is window.state.models[copier].model:
            return [source.bars(2, 2 + settings.bars)] * settings.variations
        return real(model, primer, settings, token_config, **kwargs)

    monkeypatch.setattr(generation, "generate", generate)
    qtbot.waitUntil(lambda: tab.originality.tunes.status == "ready", timeout=20000)
    with qtbot.waitSignal(tab.generationFinished, timeout=30000):
        qtbot.mouseClick(tab.generate_button, Qt.MouseButton.LeftButton)
    return tab, tab.row(copier), source


def test_a_replayed_tune_shows_on_the_meter_and_in_marked_bars(replaying, window, qtbot):
    tab, row, _source = replaying
    assert row.meter.isVisible()
    assert row.meter.text == "copied 100% of 7, run 8 bars"
    assert "n = 7" in row.meter.toolTip() and "tunes the models trained on" in row.meter.toolTip()
    # the copied bars are bars 5-12 of the piece (after the 4-bar primer), shaded on the roll
    assert row.roll.marked_bands == [(4.0, 12.0)]
    # the plain statement, naming the model
    assert tab.originality.note.isVisible()
    assert "mostly replays its training tunes" in tab.originality.note.text()
    assert "your folder" in tab.originality.note.text()  # the tiny run was trained on the person's own folder
    # what a person sees: the grab of the row shows gold over the copied bars, not over the primer
    image = row.roll.grab().toImage()
    inside, before = row.roll.view_pos(8.0, None), row.roll.view_pos(2.0, None)
    gold = image.pixelColor(inside.x(), 4 + image.height() // 8)
    assert gold.red() > gold.blue() + 30, gold.name()
    grey = image.pixelColor(before.x(), 4 + image.height() // 8)
    assert abs(grey.red() - grey.blue()) < 20, grey.name()


def test_pointing_at_a_marked_bar_names_the_tune_and_a_right_click_plays_it(replaying, window, qtbot, monkeypatch):
    tab, row, source = replaying
    viewport = row.roll.viewport()
    point_at(viewport, row.roll.view_pos(6.5))
    qtbot.waitUntil(lambda: source.title in row.roll.toolTip(), timeout=3000)
    assert "bars 5-12 copy" in row.roll.toolTip() and "its bars 3-10" in row.roll.toolTip()
    # outside the marked bars the tooltip names no tune
    qtbot.wait(100)  # pyqtgraph drops mouse moves closer together than a screen refresh
    point_at(viewport, row.roll.view_pos(2.5))
    assert "copy" not in row.roll.toolTip() and "bar 3" in row.roll.toolTip()

    # a left click on a marked bar names the tune too, in the tab's message line
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=row.roll.view_pos(6.5))
    qtbot.waitUntil(lambda: source.title in tab.status.text(), timeout=3000)
    assert "bars 5-12 copy" in tab.status.text() and "right-click to hear it" in tab.status.text()

    played = []
    monkeypatch.setattr(tab.playback, "play", lambda owner, melody, *a, **k: played.append(melody))
    QTest.mouseClick(viewport, Qt.MouseButton.RightButton, pos=row.roll.view_pos(6.5))
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None, timeout=3000)
    menu = QApplication.activePopupWidget()
    hear = [a for a in menu.actions() if a.text().startswith("Hear") and source.title in a.text()]
    assert hear, [a.text() for a in menu.actions()]
    hear[0].trigger()
    menu.close()
    assert played and played[0].notes == source.bars(2, 10).notes
    assert source.title in tab.status.text()

    # the same menu finds the tune in the Corpus tab, even behind a search that hid it
    window.corpus_tab.search.setText("no tune is called this")
    menu = tab.originality.open_menu(row, 6.5, viewport.mapToGlobal(row.roll.view_pos(6.5)))
    show = [a for a in menu.actions() if a.text().startswith("Show") and source.title in a.text()]
    assert show, [a.text() for a in menu.actions()]
    show[0].trigger()
    menu.close()
    assert window.tabs.currentWidget() is window.corpus_tab
    assert window.corpus_tab.current_melody.tune_id == source.tune_id
    assert window.corpus_tab.search.text() == ""


def test_own_music_is_not_called_a_copier_and_each_melody_is_measured_once(replaying, monkeypatch):
    tab, row, _source = replaying
    for other in tab.rows:
        if other is not row and other.key != "human":
            assert "mostly replays" not in other.meter.toolTip()
    # redrawing the rows (Show variation, a baseline arriving) reads the figures kept for each melody: measuring
    # every model's melodies again for every row stalled the window (0.4-0.7 s with 7 models x 8 variations)
    import engine.metrics.originality as engine_originality

    measured = []
    real = engine_originality.measure_continuation
    monkeypatch.setattr(engine_originality, "measure_continuation", lambda *a: measured.append(a) or real(*a))
    tab.originality.show_all()
    tab.variation.setValue(1)
    tab.originality.show_all()
    assert measured == []
    assert tab.row(row.key).meter.text == "copied 100% of 7, run 8 bars"
