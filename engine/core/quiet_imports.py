"""Third-party modules that print on import, imported without printing.

pyfluidsynth (which pretty_midi imports when it is there) prints "'fluidsynth' was found at ..." to stdout
whenever the CI environment variable is set. On stdout that line would corrupt `--json` output and the
tables the CLI prints, so every import of pretty_midi or fluidsynth in the project goes through here.
"""

from __future__ import annotations

import contextlib
import io


def pretty_midi():
    with contextlib.redirect_stdout(io.StringIO()):
        import pretty_midi
    return pretty_midi


def fluidsynth():
    """The pyfluidsynth module; ImportError or OSError when the system libfluidsynth is missing."""
    with contextlib.redirect_stdout(io.StringIO()):
        import fluidsynth
    return fluidsynth
