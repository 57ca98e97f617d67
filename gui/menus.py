"""The main window's menus (File, Listen, Help) and its window-wide Space shortcut: every action calls a
method of the window (gui/main_window.py), so that a menu item and its button do one and the same thing."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut

from . import style


def build_menus(window) -> None:
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    _action(window, file_menu, "Open MIDI &folder ...", window.open_midi_folder, "Ctrl+Shift+O")
    _action(window, file_menu, "Open MIDI &files ...", window.open_midi_files, "Ctrl+O")
    _action(window, file_menu, "Use the &bundled corpus", lambda: window.load_corpus(None))
    file_menu.addSeparator()
    _action(window, file_menu, "Open &run ...", window.open_run_dialog, "Ctrl+R")
    _action(window, file_menu, "Use the bundled &models", window.open_bundled_models)
    file_menu.addSeparator()
    _action(window, file_menu, "&Export MIDI ...", window.export, "Ctrl+E")
    _action(window, file_menu, "Export &WAV ...", window.listen_tab.export_wav)
    _action(window, file_menu, "Export memory &report ...", window.memory_tab.export_report)
    file_menu.addSeparator()
    _action(window, file_menu, "&Quit", window.close, QKeySequence.StandardKey.Quit)
    listen_menu = bar.addMenu("&Listen")
    _action(window, listen_menu, "&Generate with all models", window.generate, "Ctrl+G")
    _action(window, listen_menu, "&Play / stop", window.play_stop)
    help_menu = bar.addMenu("&Help")
    _action(window, help_menu, "&Why RNNs forget", window.show_help, QKeySequence.StandardKey.HelpContents)
    _action(window, help_menu, "&Glossary", lambda: window.show_help("glossary"))
    _action(window, help_menu, "&About Melody Memory", window.show_about)
    # Space is a window-wide shortcut; text fields still get their spaces (they claim the key first).
    space = QShortcut(QKeySequence(Qt.Key.Key_Space), window)
    space.setContext(Qt.ShortcutContext.WindowShortcut)
    space.activated.connect(window.play_stop)


def _action(window, menu, text, slot, shortcut=None) -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    style.on_click(action, slot)
    menu.addAction(action)
    return action
