"""The one exception type that carries a message meant for the user.

The CLI prints it as ``error: <message>`` and exits non-zero; the GUI shows it in a dialog. Anything
else that escapes is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input or a failed operation the user can act on; the message names the file and the reason."""
