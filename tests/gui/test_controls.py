"""Every control does what it says when a person uses it: each button and menu action is found by its
visible text and clicked (or chosen), file dialogs are answered, and the test checks what the person
would see: files written, a message, a state. One test walks every enabled control of every tab and
every menu action after a Generate, and fails on any exception raised in a slot or any error dialog.
"""

from __future__ import annotations

import ast
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractSpinBox, QCheckBox, QComboBox, QDialog

from gui import style
from tests.gui import fake_report
from tests.gui.driving import compose, set_small_evaluation, shown_text

GUI = Path(__file__).resolve().parents[2] / "gui"


def _generate(user, window, primer_bars=4, bars=4):
    """Open the Listen tab, ask for a short continuation and press Generate."""
    compose(user, window, primer_bars, bars)
    assert all(row.melody is not None for row in window.listen_tab.rows)


def _open_run(user, window, run_dir):
    user.answer(run_dir)
    user.trigger("File > Open run ...")
    assert window.state.run_dir == Path(run_dir) and window.state.models


# ---- the class of bug, statically ----------------------------------------------------------------
def test_no_button_or_action_hands_its_checked_flag_to_a_slot():
    """clicked(bool) and triggered(bool) arrive as the first argument of a slot that can take one
    (export_midi(folder=None) got False as its folder): the app connects every button and action
    through style.on_click, and no method connected directly to a signal has optional parameters."""
    problems = []
    for path in sorted(GUI.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
            methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
            for call in [n for n in ast.walk(cls) if isinstance(n, ast.Call)]:
                func = call.func
                if not (isinstance(func, ast.Attribute) and func.attr == "connect" and call.args):
                    continue
                signal = func.value.attr if isinstance(func.value, ast.Attribute) else ""
                where = f"{path.name}:{call.lineno}"
                if signal in ("clicked", "triggered", "toggled") and path.name != "style.py":
                    problems.append(f"{where}: {signal}.connect(...) instead of style.on_click")
                target = call.args[0]
                if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and target.value.id == "self" and target.attr in methods):
                    args = methods[target.attr].args
                    if args.defaults or any(d is not None for d in args.kw_defaults):
                        problems.append(f"{where}: slot {target.attr}() has optional parameters")
    assert not problems, "\n".join(problems)


# ---- exports -------------------------------------------------------------------------------------
def test_export_all_midi_and_wav_buttons_write_a_file_per_row(window, user, qtbot, tiny_run):
    _open_run(user, window, tiny_run)
    _generate(user, window)
    rows = window.listen_tab.rows
    midi = user.new_folder()
    user.answer(midi)
    user.click("Export all MIDI ...")
    assert sorted(p.suffix for p in midi.iterdir()) == [".mid"] * len(rows)
    assert f"wrote {len(rows)} MIDI files" in window.listen_tab.status.text()
    wav = user.new_folder()
    user.answer(wav)
    user.click("Export all WAV ...", wait=False)  # renders in the background: the busy line says so meanwhile
    busy = window.busy_indicator
    assert busy.isVisible() and busy.label.text() == f"Rendering {len(rows)} WAV files into {wav} ..."
    user.wait_idle()
    # the line goes with the job (the job's end and the callback that clears its line are two queued events;
    # the attribution that follows the Generate may still have a line of its own)
    qtbot.waitUntil(lambda: not busy.isVisible() or "Rendering" not in busy.toolTip(), timeout=5000)
    assert sorted(p.suffix for p in wav.iterdir()) == [".wav"] * len(rows)
    assert all(p.stat().st_size > 1000 for p in wav.iterdir())
    assert f"wrote {len(rows)} WAV files" in window.listen_tab.status.text()
    # one row's export names the row it writes; a cancelled dialog says nothing was written
    user.answer("")
    user.click(rows[1].midi_button)
    assert window.message_area.text() == "Export cancelled: nothing was written."
    n = len(rows)
    assert user.asked == ["Open a training run", f"Export all {n} rows (each with its primer) as MIDI into",
                          f"Export all {n} rows (each with its primer) as WAV into",
                          f"Export the {style.model_label(rows[1].key)}'s continuation (with its primer) as MIDI"]
    assert not user.warnings()


def test_file_menu_exports_and_ctrl_e_write_files(window, user, tiny_run):
    _open_run(user, window, tiny_run)
    _generate(user, window)
    n = len(window.listen_tab.rows)
    wav = user.new_folder()
    user.answer(wav)
    user.trigger("File > Export WAV ...")
    assert len(list(wav.glob("*.wav"))) == n
    midi = user.new_folder()
    user.answer(midi)
    user.trigger("File > Export MIDI ...")
    assert len(list(midi.glob("*.mid"))) == n
    again = user.new_folder()
    user.answer(again)
    user.press_keys(Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert len(list(again.glob("*.mid"))) == n


def test_a_row_exports_its_own_midi_and_wav(window, user, tiny_run):
    _open_run(user, window, tiny_run)
    _generate(user, window)
    target = user.new_folder()
    user.answer(target / "mine.mid", target / "mine.wav")
    user.click(user.button("MIDI", index=1))  # the second row (LSTM)
    user.click(user.button("WAV", index=1))
    assert (target / "mine.mid").stat().st_size > 50 and (target / "mine.wav").stat().st_size > 1000
    assert "wrote" in window.listen_tab.status.text()


def test_cancelling_the_folder_writes_nothing_and_before_generate_only_the_real_tune_is_written(
        window, user, tiny_run):
    _open_run(user, window, tiny_run)
    user.show_tab("Listen")
    folder = user.new_folder()
    user.answer("")  # the user cancels the folder dialog
    user.trigger("File > Export WAV ...")
    assert list(folder.iterdir()) == [] and not user.warnings()
    user.answer(folder)
    user.trigger("File > Export WAV ...")
    assert [p.name.endswith("-human.wav") for p in folder.iterdir()] == [True]


def test_memory_export_report_button_and_menu_ask_for_the_same_export(bundled, window, user, qtbot):
    # the bundled models' shipped report is on show (an evaluation in the tab is tested in test_memory_tab.py)
    qtbot.waitUntil(lambda: window.state.models_label == "bundled models", timeout=20000)
    user.show_tab("Memory")
    tab = window.memory_tab
    assert tab.report is not None and tab.export_button.isEnabled()
    # The button, the menu item and Ctrl+E are one export (MemoryTab.export_report): test_memory_tab.py follows
    # Ctrl+E to the files written and opens them again. Writing it all costs seconds of plotting, so here the
    # person sees each ask its question and cancels.
    user.answer("")
    user.click("Export report ...")
    assert user.asked[-1].startswith("Export the memory report (7 models, 3 primers, shipped with the models"), user.asked
    assert tab.status.text() == "Export cancelled: nothing was written."
    tab.say("")
    user.answer("")
    user.trigger("File > Export memory report ...")
    assert user.asked[-1] == user.asked[-2], user.asked
    assert tab.status.text() == "Export cancelled: nothing was written."
    assert not user.warnings()


# ---- everything ----------------------------------------------------------------------------------
# (Resume too: the run Start training began and Stop ended before its first checkpoint is offered for resume)
LONG_RUNNING = {"Start training": "Stop", "Resume": "Stop", "Evaluate models": "Cancel", "Run probe": "Cancel"}
# Writing a whole report takes seconds of plotting; test_memory_tab.py's Ctrl+E writes it (the button and the menu
# item are the same export: test_memory_export_report_button_and_menu_ask_for_the_same_export). The walk opens its
# dialog and cancels it.
CANCELLED = {"Export report ..."}  # and "File > Export memory report ..." in the menu walk


def _press(user, window, qtbot, button, pressed: list) -> None:
    """Use one control as a person would; long jobs are started and then stopped by their own button."""
    text = shown_text(button)
    pressed.append(text)
    if text in LONG_RUNNING:
        user.click(button, wait=False)
        if text == "Start training" and user.question_shown():  # compositions on screen: it asks first
            user.answer_question("Train")
        stop = LONG_RUNNING[text]
        qtbot.waitUntil(lambda: any(shown_text(b) == stop and b.isEnabled() for b in user.buttons()), timeout=60000)
        user.click(next(b for b in user.buttons() if shown_text(b) == stop and b.isEnabled()))
        pressed.append(stop)
    elif isinstance(button, QCheckBox):
        user.click(button)
        user.click(button)  # and back, so the walk leaves the form as it found it
    else:
        if text in CANCELLED:
            user.answer("")  # the person cancels the dialog: what the export writes is tested on its own
        user.click(button)
        if text == "Play" and window.playback.is_playing():
            user.click(button)  # it reads "Stop" now


def _walk_tab(user, window, qtbot, name: str, pressed: list) -> None:
    user.show_tab(name)
    page = window.tabs.currentWidget()
    done: set[tuple[str, int]] = set()
    while True:
        # Buttons are found again after every click: a click may rebuild a row or enable another.
        count: dict[str, int] = {}
        todo = []
        for button in user.buttons(page):
            text = shown_text(button)
            key = (text, count.setdefault(text, 0))
            count[text] += 1
            if key not in done and button.isEnabled() and text not in LONG_RUNNING.values():
                todo.append((key, button))
        if not todo:
            break
        key, button = todo[0]
        done.add(key)
        _press(user, window, qtbot, button, pressed)
    # value fields: one step up and back down, through the keyboard
    for box in [b for b in page.findChildren(QAbstractSpinBox) if b.isVisible() and b.isEnabled()]:
        with qtbot.captureExceptions() as errors:
            QTest.keyClick(box, Qt.Key.Key_Up)
            QTest.keyClick(box, Qt.Key.Key_Down)
            user.wait_idle()
        assert not errors, f"stepping {box.toolTip() or box.objectName()!r} raised in a slot"
    for combo in [c for c in page.findChildren(QComboBox) if c.isVisible() and c.isEnabled() and c.count() > 1]:
        with qtbot.captureExceptions() as errors:
            before = combo.currentIndex()
            combo.setCurrentIndex((before + 1) % combo.count())
            combo.setCurrentIndex(before)
            user.wait_idle()
        assert not errors, f"choosing in {combo.toolTip()!r} raised in a slot"


def test_every_control_of_every_tab_and_menu_works_after_a_generate(
        bundled, window, user, qtbot, tiny_run, midi_folder, small_evaluations, monkeypatch):
    import engine.data.corpus

    # "Use the bundled corpus" loads the test tunes here (the real one is 4,000 files).
    monkeypatch.setattr(engine.data.corpus, "BUNDLED_DIR", midi_folder)
    _open_run(user, window, tiny_run)
    _generate(user, window)
    user.show_tab("Memory")
    set_small_evaluation(window)  # the walk starts an evaluation (and cancels it)
    # a report of these seven models with two temperatures and two meters, so that the report's controls are
    # enabled too (an evaluation in the tab is tested in test_memory_tab.py)
    user.answer(fake_report.write_report(user.new_folder()))
    user.click("Open report ...")
    assert window.memory_tab.report is not None
    user.show_tab("Train")
    window.train_tab.preset.setCurrentText("tiny")  # a short run, as for a quick look
    window.train_tab.steps.setValue(300)

    pressed: list[str] = []
    for name in ("Listen", "Memory", "Corpus", "Train"):
        _walk_tab(user, window, qtbot, name, pressed)
    assert {"Generate", "Export all MIDI ...", "Export all WAV ...", "Play", "MIDI", "WAV", "Evaluate models",
            "Cancel", "Open report ...", "Export report ...", "Run probe", "...", "Start training", "Stop",
            "vanilla RNN", "TR over its floor", "raw TR, own floor", "1.0", "0.7"} <= set(pressed)
    assert window.memory_tab.view_bar.meter_box.count() > 1  # the meter filter was among the lists walked

    # the menus: music first, so that the exports have something to write
    user.trigger("Listen > Generate with all models")
    answers = {"File > Open MIDI folder ...": midi_folder,
               "File > Open MIDI files ...": sorted(midi_folder.glob("*.mid"))[:6],
               "File > Open run ...": tiny_run, "File > Export memory report ...": ""}
    chosen = []
    for path, action in user.menu_actions():
        if path == "File > Quit" or not action.isEnabled():
            continue
        if path in answers:
            user.answer(answers[path])
        user.trigger(path)
        chosen.append(path)
    assert len(chosen) >= 12, chosen
    assert window.state.corpus_label == "bundled corpus"  # the last corpus chosen is in use
    assert [m.title for m in user.messages if m.title.startswith("About")] == ["About Melody Memory"]
    # Help > Why RNNs forget and Help > Glossary show the same help window, opened once (issue 25 item 9)
    help_items = [p for p in chosen if p.startswith("Help >") and not p.startswith("Help > About")]
    assert len(help_items) >= 2 and any(m.title == "Why RNNs forget" for m in user.messages), help_items
    assert len([d for d in window.findChildren(QDialog) if d.objectName() == "helpDialog"]) == 1
    assert not user.warnings(), [(m.title, m.text) for m in user.warnings()]
    user.trigger("File > Quit")
    assert not window.isVisible()
