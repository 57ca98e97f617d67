"""The app as a whole: the command line, help, shortcuts and settings that persist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt

from tests.gui.driving import focus, offscreen_screen

ROOT = Path(__file__).resolve().parents[2]


def test_gui_command_writes_a_screenshot_and_quits(tmp_path, midi_folder, corpus_cache):
    shot = tmp_path / "shots" / "train.png"
    from PySide6.QtCore import QSettings

    ini = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    ini.setValue("corpus/sources", [str(midi_folder)])
    ini.sync()
    env = {**os.environ, "QT_QPA_PLATFORM": offscreen_screen(tmp_path, 1920, 1080),
           "MELODY_MEMORY_SETTINGS": str(tmp_path / "s.ini"), "MELODY_MEMORY_CACHE": str(corpus_cache),
           "MELODY_MEMORY_DATA": str(tmp_path / "data")}
    run = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "gui", "--quit-after", "1", "--tab", "train", "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    from PySide6.QtGui import QImage

    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1280, 800)  # the first-use size on a full-HD screen


def test_screenshot_without_quit_after_is_a_clear_error(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "gui", "--screenshot", str(tmp_path / "x.png")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert run.returncode == 2
    assert run.stderr.startswith("error: ") and "Traceback" not in run.stderr


def test_window_title_status_bar_and_help(window, qtbot):
    assert window.windowTitle() == "Melody Memory"
    assert window.device_label.text().startswith("device: ")
    assert window.synth_label.text().startswith("synth: ")
    assert window.audio_label.text()
    from gui.help import show_why_rnns_forget

    dialog = show_why_rnns_forget(window)
    from PySide6.QtWidgets import QTextBrowser

    text = dialog.findChild(QTextBrowser).toPlainText()
    assert "Why RNNs forget" in text and "Gradient memory" in text
    dialog.close()


def test_listen_settings_persist_into_the_next_window(window, qtbot, tiny_run):
    from gui.main_window import MainWindow

    with qtbot.waitSignal(window.state.modelsChanged, timeout=20000):
        window.open_run(tiny_run)
    tab = window.listen_tab
    tab.primer_bars.setValue(4)
    tab.bars.setValue(3)
    tab.temperature.setValue(0.7)
    with qtbot.waitSignal(tab.generationFinished, timeout=30000):
        focus(qtbot, window)
        qtbot.keyClick(window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    window.close()
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.listen_tab.bars.value() == 3
    assert abs(again.listen_tab.temperature.value() - 0.7) < 1e-9
    again.close()


def test_generate_and_play_into_a_null_sink_moves_the_playhead(tmp_path, midi_folder, corpus_cache, tiny_run,
                                                                pulse_null_sink):
    """The whole path a user takes: start, Generate, Play the first row; sound goes to a real (null)
    audio device and the playhead follows it. In a fresh process, because Qt's audio backend binds to
    the sound server once per process."""
    from PySide6.QtCore import QSettings

    ini = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    ini.setValue("corpus/sources", [str(midi_folder)])
    ini.setValue("listen/primer_bars", 4)
    ini.setValue("listen/bars", 8)
    ini.sync()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MELODY_MEMORY_SETTINGS": str(tmp_path / "s.ini"),
           "MELODY_MEMORY_CACHE": str(corpus_cache)}
    run = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "gui", "--first-note", "--quit-after", "60", "--run", str(tiny_run)],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines() if line.startswith("first_note_"))
    assert "first_note_at" in lines, run.stdout + run.stderr[-1000:]
    assert lines.get("first_note_audio") == pulse_null_sink, lines
    # the playhead moves with the sound: a quarter of a bar (0.5 s at 120 bpm) within the 5 s allowed,
    # and not ahead of the time that passed
    bar, seconds = lines["first_note_playhead"].split(" after ")
    assert 0.25 <= float(bar) <= float(seconds.split()[0]) / 2 + 0.1, lines


def test_garbage_made_in_a_worker_thread_is_collected_in_the_gui_thread(qtbot):
    """A worker that frees a Qt widget deadlocks Qt; cyclic garbage (where old widgets end up) must
    therefore be collected by the GUI thread, whichever thread made it."""
    import threading
    import weakref

    from gui.app import create_app

    create_app()
    collected_in = []

    class Node:
        pass

    def make_garbage():
        for _ in range(2000):  # cycles: only the collector can free them, and enough to trigger it
            a, b = Node(), Node()
            a.other, b.other = b, a
        weakref.finalize(a, lambda: collected_in.append(threading.current_thread()))
        del a, b

    worker = threading.Thread(target=make_garbage)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: bool(collected_in), timeout=5000)
    assert collected_in == [threading.main_thread()]
