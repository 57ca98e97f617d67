"""What the person sees is what happened (issue 25 items 1, 9, 13): the window's message area is drawn and
readable, a busy indicator with progress shows every long job, Help opens once and fits a small screen with
its glossary, controls have names a screen reader can announce, a long path in a message wraps, and the data
folder does not repeat the app's name."""

from __future__ import annotations

import re
import shutil

from PySide6.QtCore import QRect, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QTextBrowser

from tests.gui.driving import compose, drawn_in_the_status_bar


def _pixels(window, rect: QRect):
    """The window as drawn, inside rect (window coordinates)."""
    return window.grab(rect).toImage()


def _status_rect(window, widget) -> QRect:
    top_left = widget.mapTo(window, widget.rect().topLeft())
    return QRect(top_left, widget.size())


def test_a_message_is_drawn_in_the_status_bar_at_1024x640(window, user, qtbot):
    window.resize(1024, 640)
    qtbot.wait(100)
    area = window.message_area
    rect = _status_rect(window, area)
    window.statusBar().clearMessage()
    qtbot.wait(50)
    blank = _pixels(window, rect)
    window.statusBar().showMessage("Report written to /tmp/some/folder: 14 files", 8000)
    qtbot.wait(50)
    drawn = _pixels(window, rect)
    assert area.isVisible() and area.text() == "Report written to /tmp/some/folder: 14 files"
    assert window.rect().contains(rect) and rect.width() >= 250 and rect.height() >= 12
    assert drawn != blank, "the message is set but nothing is drawn where the person looks"
    # the rest of the status bar (models, device, synth, audio) leaves the message its room
    assert area.fontMetrics().horizontalAdvance(area.text()) <= area.contentsRect().width()


def test_loading_a_folder_shows_what_loads_and_how_far_then_the_result(window, user, qtbot, midi_folder, tmp_path):
    fresh = tmp_path / "new tunes"  # another folder: not in the cache, so every file is read
    shutil.copytree(midi_folder, fresh)
    busy = window.busy_indicator
    assert not busy.isVisible()
    seen = []

    def record():
        if busy.isVisible():
            seen.append((busy.label.text(), busy.bar.maximum(), busy.bar.value()))

    window.state.loadingChanged.connect(record)
    user.answer(fresh)
    user.trigger("File > Open MIDI folder ...", wait=False)
    assert busy.isVisible() and busy.label.text().startswith(f"Loading {fresh}")
    assert busy.geometry().width() > 100 and window.rect().contains(_status_rect(window, busy))
    qtbot.wait(20)
    assert drawn_in_the_status_bar(window, busy.label) and drawn_in_the_status_bar(window, busy.bar)
    assert "oading" not in window.message_area.text()  # said once, in the busy line, not again beside it
    user.wait_idle()
    assert any("files" in text and total > 0 for text, total, _ in seen), seen  # "n/40 files" with a bar
    assert not busy.isVisible()
    assert window.message_area.text() == f"{fresh}: 40 melodies"


def test_training_start_and_stop_show_in_the_busy_indicator_and_the_message_area(window, user, qtbot, tmp_path):
    tab = window.train_tab
    tab.preset.setCurrentText("tiny")
    tab.steps.setValue(3000)
    for key, box in tab.model_boxes.items():
        box.setChecked(key == "rnn")
    user.show_tab("Train")
    user.answer(tmp_path / "runs")
    user.click("...")
    user.click("Start training", wait=False)
    busy = window.busy_indicator
    assert busy.isVisible() and busy.label.text() == "Starting training: 1 model ..."
    qtbot.wait(20)
    assert drawn_in_the_status_bar(window, busy.label) and drawn_in_the_status_bar(window, busy.bar)
    from PySide6.QtWidgets import QApplication

    assert QApplication.focusWidget() is tab.stop_button  # not the next field, where a key would change a value
    qtbot.waitUntil(lambda: busy.label.text().startswith("Training, about "), timeout=60000)
    assert " left: " in busy.label.text() and busy.label.text().endswith(" of 3,000 steps")
    assert busy.bar.maximum() == 3000 and 0 < busy.bar.value() < 3000
    user.click("Stop", wait=False)
    assert "Stopping training" in window.message_area.text()
    assert drawn_in_the_status_bar(window, window.message_area)
    user.wait_idle()
    assert not busy.isVisible() and window.message_area.text().startswith("stopped at step")


def test_help_opens_once_fits_a_small_screen_and_has_a_glossary(window, user, qtbot):
    window.resize(1024, 640)
    user.stop()  # the person reads the help: no closing of dialogs behind their back
    user.trigger("Help > Why RNNs forget")
    user.trigger("Help > Glossary")
    from PySide6.QtWidgets import QApplication, QDialog

    shown = [w for w in QApplication.topLevelWidgets() if isinstance(w, QDialog) and w.objectName() == "helpDialog"
             and w.isVisible()]
    assert len(shown) == 1, "a second press opened a second copy"
    dialog = shown[0]
    assert dialog.height() <= window.screen().availableGeometry().height() - 40
    # a 640-px-high screen holds it with its title bar and a panel, whatever screen it opens on
    assert dialog.frameGeometry().height() <= 600 and dialog.height() <= 570, dialog.frameGeometry()
    text = " ".join(dialog.findChild(QTextBrowser).toPlainText().split())
    for term in ("TR, theme recall", "RR, rhythm recall", "Floor", "Excess", "Bits per token", "Influence", "Window"):
        assert term in text, term
    assert "the last 64 steps (4 bars of 4/4) in the tiny preset" in text  # what the attention RNN's window is
    browser = dialog.findChild(QTextBrowser)
    assert browser.verticalScrollBar().value() > 0  # Glossary scrolled to it
    dialog.close()


def _plot_name(title: str) -> str:
    """A plot's name in its title, without what the current choices add: "(temperature 1.0, all meters)", the
    floor the recall is measured over, the number of bars."""
    name = re.sub(r"<[^>]+>", "", title).split(" (")[0].replace(" over the rhythm-matched floor", "")
    return re.sub(r"over all \d+ bars", "over all bars", name)


def test_the_help_explains_every_plot_of_the_memory_tab_by_its_title(window, user, qtbot, tmp_path):
    """Every plot a report draws is named in Help's glossary of plots, by the title the tab shows above it."""
    from PySide6.QtWidgets import QDialog

    from gui.plots import CaptionedPlot
    from tests.gui import fake_report

    user.answer(fake_report.write_report(tmp_path))
    user.show_tab("Memory")
    user.click("Open report ...")
    titles = {_plot_name(plot.title.text()) for plot in window.memory_tab.findChildren(CaptionedPlot)}
    assert len(titles) >= 15, titles
    user.stop()
    user.trigger("Help > Glossary")
    dialog = window.findChild(QDialog, "helpDialog")
    text = " ".join(dialog.findChild(QTextBrowser).toPlainText().split())
    assert "The plots" in text
    missing = sorted(title for title in titles if title not in text)
    assert not missing, missing
    for term in ("Training curves", "Piano rolls", "Originality meter", "Self-similarity", "Summary"):
        assert term in text, term
    dialog.close()


def test_every_control_has_a_name_a_screen_reader_can_announce(window, user, qtbot, tiny_run, tmp_path):
    """Every control that takes the keyboard focus (buttons, fields, lists, tables, plots, tab bars), with the
    rows composed and a report open, has a name to announce, not just "button": the eight Play buttons of the
    Listen rows each say which row they play."""
    from PySide6.QtWidgets import QAbstractScrollArea, QWidget

    from tests.gui import fake_report

    user.answer(tiny_run)
    user.trigger("File > Open run ...")
    compose(user, window, primer_bars=2, bars=2)
    user.answer(fake_report.write_report(tmp_path))
    user.show_tab("Memory")
    user.click("Open report ...")
    unnamed, seen = [], 0
    for page_name in ("Corpus", "Train", "Listen", "Memory"):
        user.show_tab(page_name)
        qtbot.wait(20)
        for widget in window.findChildren(QWidget):
            if not widget.isVisible() or widget.focusPolicy() == Qt.FocusPolicy.NoFocus:
                continue
            parent = widget.parentWidget()
            if isinstance(parent, (QAbstractSpinBox, QComboBox)) or (
                    isinstance(parent, QAbstractScrollArea) and widget is parent.viewport()):
                continue  # a field's own editor, a scroll area's viewport: the field, the area carries the name
            seen += 1
            words = widget.accessibleName()
            if not any(c.isalpha() for c in words):
                unnamed.append(f"{page_name}: {type(widget).__name__} {widget.toolTip()[:40]!r}")
    assert seen > 60 and not unnamed, unnamed
    plays = [row.play_button.accessibleName() for row in window.listen_tab.rows]
    assert len(set(plays)) == len(plays) and all(name.startswith("Play or stop ") for name in plays), plays


def test_a_message_naming_a_long_path_wraps_inside_its_dialog(window, user, qtbot):
    window.resize(1024, 640)
    user.stop()  # the dialog stays open while it is measured
    path = "/home/someone/" + "/".join(["a folder with a long name"] * 8) + "/tune.mid"
    window.show_error("Cannot use the primer", f"{path}: the primer needs 8 bars but the melody has only 4")
    from PySide6.QtWidgets import QApplication, QMessageBox

    (box,) = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    qtbot.wait(50)
    assert box.width() <= 1024
    assert box.text().replace("\u200b", "") == f"{path}: the primer needs 8 bars but the melody has only 4"
    box.close()


def test_the_default_data_folder_does_not_repeat_the_apps_name(qsettings_tmp, monkeypatch, tmp_path):
    from gui import settings

    monkeypatch.delenv(settings.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = settings.data_dir()
    assert folder.name == "Melody Memory" and folder.parent.name != "Melody Memory"


def test_composing_and_attributing_show_in_the_busy_indicator(window, user, qtbot, tiny_run):
    """Generate and the attribution after it take seconds with real models: the busy line says what runs and
    how far (models composed, rows attributed), drawn in the status bar, and goes when they are done."""
    user.answer(tiny_run)
    user.trigger("File > Open run ...")
    user.show_tab("Listen")
    tab = window.listen_tab
    tab.primer_bars.setValue(2)
    tab.bars.setValue(2)
    busy = window.busy_indicator
    seen = []
    window.state.busyChanged.connect(lambda: seen.append((busy.label.text(), busy.bar.value(), busy.bar.maximum())))
    window.resize(1024, 640)
    window.statusBar().showMessage("Wrote 3 MIDI files to /home/someone/music/exports", 8000)
    qtbot.wait(50)
    bar = _status_rect(window, window.statusBar())
    idle = _pixels(window, bar)
    user.click("Generate", wait=False)
    n = len(window.state.models)
    assert busy.isVisible() and busy.label.text() == f"Composing with {n} models ..."
    qtbot.wait(50)
    # the last message is old news: the busy line gets its room and reads whole, at 1024 px too
    assert window.message_area.text() == "" and not busy.label.is_elided()
    assert not window.models_label.is_elided()
    assert bar.contains(_status_rect(window, busy)) and _pixels(window, bar) != idle  # drawn where one looks
    with qtbot.waitSignal(tab.influenceFinished, timeout=30000):
        pass
    user.wait_idle()
    assert (f"Composing: {n} of {n} models done", n, n) in seen
    attributed = [(text, done, total) for text, done, total in seen if text.startswith("Finding what each note")]
    assert attributed and attributed[-1][1] == attributed[-1][2] > n  # every model, the human row, attention too
    assert attributed[-1][0] == f"Finding what each note drew on: {attributed[-1][1]} of {attributed[-1][2]} rows"
    assert not busy.isVisible()


def test_a_primer_too_long_for_its_tune_is_said_by_title_and_wraps_inside_each_roll(window, user, qtbot, tiny_run,
                                                                                     tmp_path):
    """Primer bars typed above the tune's length: each row's roll says why in lines that fit its width (the
    message ran off the plot), naming the tune by its title, not its file's path; Generate says it again."""
    window.resize(1024, 640)
    user.answer(tiny_run)
    user.trigger("File > Open run ...")
    user.show_tab("Listen")
    tab = window.listen_tab
    tune = tab.current_tune()
    box = tab.primer_bars
    box.setFocus()
    box.lineEdit().selectAll()
    QTest.keyClicks(box.lineEdit(), "60")
    QTest.keyClick(box, Qt.Key.Key_Return)
    qtbot.wait(50)
    said = f"{tune.title}: the primer needs 60 bars but the melody has only"
    assert tab.status.text().startswith(said) and str(tune.source) not in tab.status.text(), tab.status.text()
    for row in tab.rows:
        message = row.roll._message
        assert message.toPlainText().startswith(said)
        width = message.textItem.boundingRect().width()
        assert width <= row.roll.viewport().width(), (row.key, width, row.roll.viewport().width())
    user.click("Generate")
    assert tab.status.text().startswith(said)

    # tunes with long titles: the message wraps, whole, within each roll
    import tests.midi_factory as mf

    title = "The Humours of " + " and ".join(["the Long Road Home from the Fair"] * 4)
    for i in range(3):
        mf.write(tmp_path / "long" / f"t{i}.mid", mf.track(mf.tune_notes(8, seed=i), name="Melody"),
                 conductor_track=mf.conductor(title=f"{title} {i}"))
    user.answer(tmp_path / "long")
    user.trigger("File > Open MIDI folder ...")
    user.show_tab("Listen")
    tune = tab.current_tune()
    assert tune.title.startswith(title)
    for row in tab.rows:
        message = row.roll._message
        assert message.toPlainText().startswith(f"{tune.title}: the primer needs 60 bars")
        rect = message.textItem.boundingRect()
        assert rect.width() <= row.roll.viewport().width(), (row.key, rect.width(), row.roll.viewport().width())
        assert rect.height() >= 2 * message.textItem.font().pointSize(), "not wrapped"
