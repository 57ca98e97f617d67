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


DATA_ENV = "MELODY_MEMORY_DATA"


def data_dir():
    """Where the app keeps what it makes for the user (memory reports, runs): "Melody Memory" in the user's
    data folder (~/.local/share/Melody Memory on Linux), or the folder MELODY_MEMORY_DATA names (tests set
    it, as they set MELODY_MEMORY_SETTINGS). Never inside the installation: the files shipped with the app
    (pretrained/memory-report.json) are read-only to it. Qt's AppDataLocation would repeat the name
    (.../Melody Memory/Melody Memory, organisation and application); a folder an earlier version made
    there and the new one not yet is still used, so nothing the person made goes missing."""
    from pathlib import Path

    path = os.environ.get(DATA_ENV)
    if path:
        return Path(path)
    from PySide6.QtCore import QStandardPaths

    generic = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    if not generic:
        return Path.home() / ".melody-memory"
    folder = Path(generic) / ORGANISATION
    earlier = folder / APPLICATION
    if earlier.is_dir() and not any(p for p in folder.iterdir() if p != earlier):
        return earlier
    return folder
