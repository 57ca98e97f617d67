"""The exceptions that carry a message meant for the user.

The CLI prints it as ``error: <message>`` and exits non-zero; the GUI shows `for_app()` in a dialog or
its message area. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a failed operation the user can act on; the message names the file and the reason."""

    def for_app(self) -> str:
        """The message as the app shows it (a SettingError names the field's label, not the CLI flag)."""
        return str(self)


class SettingError(UserError):
    """A setting out of its range. It carries the setting, so each front end words it as the person met it:
    the command line names the flag (``--lr``), a file its field (``training.lr``), the app the label
    ("Learning rate")."""

    def __init__(self, setting, detail: str, where: str | None = None, name: str | None = None):
        self.setting, self.detail, self.where = setting, detail, where
        self.name = name or setting.flag  # how the source that gave the value names it
        super().__init__(self._worded(self.name))

    def _worded(self, name: str) -> str:
        return f"{self.where}: {name} {self.detail}" if self.where else f"{name} {self.detail}"

    def for_app(self) -> str:
        return self._worded(self.setting.label)
