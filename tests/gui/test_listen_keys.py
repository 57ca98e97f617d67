"""Keys on the Listen tab (issue 25 items 2 and 14): after Generate the focus is where Space plays (not
in the Temperature box, whose value Space used to wipe); Up/Down choose a row and Space plays it; the
window's shortcuts (Space, Ctrl+E) act whatever widget has the focus, a number field included."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.gui.driving import focus


@pytest.fixture
def composed(window, qtbot, tiny_run, monkeypatch):
    """The tiny run's rows composed by a mouse click on Generate; Play records which row it plays."""
    with qtbot.waitSignal(window.state.modelsChanged, timeout=20000):
        window.open_run(tiny_run)
    window.show_tab("listen")
    focus(qtbot, window)
    tab = window.listen_tab
    tab.primer_bars.setValue(2)
    tab.bars.setValue(2)
    tab.temperature.setValue(0.85)
    played = []
    monkeypatch.setattr(tab.playback, "play", lambda owner, melody, *args, **kwargs: played.append(owner))
    with qtbot.waitSignal(tab.generationFinished, timeout=30000):
        qtbot.mouseClick(tab.generate_button, Qt.MouseButton.LeftButton)
    return tab, played


def test_after_generate_space_plays_and_leaves_the_temperature_alone(composed, qtbot):
    tab, played = composed
    focused = QApplication.focusWidget()
    assert focused in (tab.generate_button, tab.rows_widget), type(focused).__name__
    qtbot.keyClick(focused, Qt.Key.Key_Space)
    assert abs(tab.temperature.value() - 0.85) < 1e-9
    assert played == [tab.rows[0]]


def test_arrow_keys_choose_the_row_space_plays(composed, qtbot):
    tab, played = composed
    stack = tab.rows_widget
    assert stack.hasFocus()
    qtbot.keyClick(stack, Qt.Key.Key_Down)
    qtbot.keyClick(stack, Qt.Key.Key_Down)
    qtbot.keyClick(stack, Qt.Key.Key_Space)
    assert played == [tab.rows[2]]
    assert tab.rows[2].current and not tab.rows[0].current
    qtbot.keyClick(stack, Qt.Key.Key_End)
    qtbot.keyClick(stack, Qt.Key.Key_Space)
    assert played[-1] is tab.row("human")
    qtbot.keyClick(stack, Qt.Key.Key_Up)
    qtbot.keyClick(stack, Qt.Key.Key_Space)
    assert played[-1] is tab.rows[-2]


def test_shortcuts_act_whatever_has_focus(composed, window, qtbot, monkeypatch):
    tab, played = composed
    exports = []
    monkeypatch.setattr(tab, "export_midi", lambda *args: exports.append(QApplication.focusWidget()))
    for widget in (tab.temperature, tab.seed, tab.generate_button, tab.rows_widget, tab.rows[1].midi_button):
        widget.setFocus(Qt.FocusReason.TabFocusReason)  # as Tab gives it: a number field's text all selected
        qtbot.waitUntil(widget.hasFocus, timeout=2000)
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
        assert exports and exports[-1] is QApplication.focusWidget(), type(widget).__name__
        before = len(played)
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Space)
        assert len(played) == before + 1, type(widget).__name__
    assert abs(tab.temperature.value() - 0.85) < 1e-9 and tab.seed.value() == 0
    # a number field still takes its own keys
    tab.seed.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.keyClick(tab.seed, Qt.Key.Key_Up)
    assert tab.seed.value() == 1


def test_a_number_typed_without_enter_counts_when_a_shortcut_acts(composed, window, qtbot):
    """Typed 3 in Bars, then Ctrl+G without Enter: the composition has 3 bars, not the field's old value."""
    tab, _played = composed
    tab.bars.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(tab.bars.hasFocus, timeout=2000)
    tab.bars.lineEdit().selectAll()
    qtbot.keyClicks(tab.bars.lineEdit(), "3")
    with qtbot.waitSignal(tab.generationFinished, timeout=30000):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert tab.bars.value() == 3 and tab.status.text().startswith("composed 3 bars")


def test_generate_from_the_temperature_field_hands_the_focus_to_the_rows(composed, window, user, qtbot):
    """The person clicks into Temperature, types 0.9 and presses Ctrl+G there (or chooses the menu): the focus
    goes to the rows, not back into the field nor on to the next one, so that a Space plays a row and leaves
    the value alone, and Ctrl+E asks where to export the compositions."""
    tab, played = composed
    edit = tab.temperature.lineEdit()
    qtbot.mouseClick(edit, Qt.MouseButton.LeftButton, pos=edit.rect().center())
    qtbot.waitUntil(tab.temperature.hasFocus, timeout=2000)
    edit.selectAll()
    qtbot.keyClicks(edit, "0.9")
    with qtbot.waitSignal(tab.generationFinished, timeout=30000):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is tab.rows_widget, type(QApplication.focusWidget()).__name__
    assert abs(tab.temperature.value() - 0.9) < 1e-9  # what was typed counts, and stays
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Space)
    assert played == [tab.rows[0]] and abs(tab.temperature.value() - 0.9) < 1e-9
    user.answer("")  # the person sees the export dialog, then cancels it
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert user.asked and user.asked[-1].startswith("Export all ")

    tab.seed.setFocus(Qt.FocusReason.MouseFocusReason)  # and from the menu, with the Seed field focused
    with qtbot.waitSignal(tab.generationFinished, timeout=30000):
        user.trigger("Listen > Generate with all models", wait=False)
    assert QApplication.focusWidget() is tab.rows_widget


def test_a_text_field_being_edited_keeps_its_space(composed, window, user, qtbot):
    """The one exception: in a text field (the Corpus tab's search, the Train tab's folder) Space types a space
    and plays nothing."""
    _tab, played = composed
    for page, field in (("Corpus", window.corpus_tab.search), ("Train", window.train_tab.out_dir)):
        user.show_tab(page)
        qtbot.mouseClick(field, Qt.MouseButton.LeftButton, pos=field.rect().center())
        qtbot.waitUntil(field.hasFocus, timeout=2000)
        field.selectAll()
        qtbot.keyClicks(field, "a b")
        qtbot.keyClick(field, Qt.Key.Key_Space)
        assert field.text() == "a b ", page
    assert played == []
