"""Shortcuts act whatever widget has focus, unless a text field is being edited (issue 25 item 2).

A spin box is a text field to Qt: with the focus in one, the window's Space (play / stop) became a
space typed into the number, which wiped it, and under X11 Ctrl+E (Export) became "go to the end of
the line". A number field has no use for a space nor for Ctrl+letter editing commands other than the
clipboard's and undo's, so `ShortcutsOverNumberFields` lets those keys reach the window's shortcuts.
Editable text (a combo box one can type a title into, a line edit) keeps every key.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QLineEdit

# what a number field still does with Ctrl held: the clipboard, undo and select-all
_EDITING = (QKeySequence.StandardKey.Copy, QKeySequence.StandardKey.Paste, QKeySequence.StandardKey.Cut,
            QKeySequence.StandardKey.Undo, QKeySequence.StandardKey.Redo, QKeySequence.StandardKey.SelectAll)


def _number_field(obj) -> bool:
    """A spin box, or the line edit inside one (which of the two gets the key depends on the platform)."""
    return isinstance(obj, QAbstractSpinBox) or isinstance(obj.parent() if isinstance(obj, QObject) else None,
                                                            QAbstractSpinBox)


def passes_to_shortcut(event) -> bool:
    """Whether a key pressed in a number field is the window's rather than the field's."""
    modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    if event.key() == Qt.Key.Key_Space and modifiers == Qt.KeyboardModifier.NoModifier:
        return True
    if modifiers & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
        return Qt.Key.Key_A <= event.key() <= Qt.Key.Key_Z and not any(event.matches(k) for k in _EDITING)
    return False


def _inside(widget, owner) -> bool:
    """Whether `widget` is `owner` or lies in it, dialogs included (parentWidget crosses into the window
    that owns a dialog)."""
    while widget is not None:
        if widget is owner:
            return True
        widget = widget.parentWidget()
    return False


class ShortcutsOverNumberFields(QObject):
    """An event filter on every number field that gets the focus: it never claims a shortcut's key (module
    docstring). Put on each field as it first gets the focus rather than on the whole application, so that
    the many events of plots and progress bars do not each pass through Python."""

    def watch(self, _old, new) -> None:
        """QApplication.focusChanged: filter the keys of a number field from the moment it has the focus."""
        if new is None or not _number_field(new):
            return
        field = new if isinstance(new, QAbstractSpinBox) else new.parent()
        if not _inside(field, self.parent()):  # another window's field: its own filter takes it
            return
        if field.property("shortcutsOverField") is not True:
            field.setProperty("shortcutsOverField", True)
            for target in (field, field.findChild(QLineEdit)):
                if target is not None:
                    target.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and _number_field(obj) and passes_to_shortcut(event):
            field = obj if isinstance(obj, QAbstractSpinBox) else obj.parent()
            if hasattr(field, "take_typed"):  # what was typed counts (or is refused, visibly) before the key acts
                field.take_typed()
            event.ignore()
            return True  # not offered to the field: the shortcut map runs the window's shortcut
        return False


def install(owner: QObject) -> ShortcutsOverNumberFields:
    """Filter the keys of every number field that gets the focus from now on; the filter (and its connection
    to the application's focus changes) lives as long as `owner` (the main window)."""
    keys = ShortcutsOverNumberFields(owner)
    QApplication.instance().focusChanged.connect(keys.watch)
    return keys
