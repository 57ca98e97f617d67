"""Persistent settings (QSettings, organisation "Melody Memory").

MELODY_MEMORY_SETTINGS names an INI file to use instead of the user's settings: tests set it to a
temporary path so that they never read or change what a real user chose.
"""

from __future__ import annotations

import os

ORGANISATION = "Melody Memory"
APPLICATION = "Melody Memory"


def app_settings():
    from PySide6.QtCore import QSettings

    path = os.environ.get("MELODY_MEMORY_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(ORGANISATION, APPLICATION)


def read(key: str, default, kind=None):
    """A setting, converted to the type of `default` (QSettings returns strings from INI files)."""
    value = app_settings().value(key, default)
    kind = kind or type(default)
    if value is None:
        return default
    try:
        if kind is bool:
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        return kind(value)
    except (TypeError, ValueError):
        return default


def write(key: str, value) -> None:
    s = app_settings()
    s.setValue(key, value)
    s.sync()


def ask_folder(parent, title: str, key: str) -> str:
    """Ask for a folder, starting where the user last chose one for `key`; remember the answer.

    Returns "" when the user cancels."""
    from PySide6.QtWidgets import QFileDialog

    folder = QFileDialog.getExistingDirectory(parent, title, read(key, ""))
    if folder:
        write(key, folder)
    return folder
