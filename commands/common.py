"""Small helpers every command shares: progress on stderr, one JSON document on stdout."""

from __future__ import annotations

import json
import sys
import time

from engine.core.console import say  # the commands' progress line; re-exported
from engine.core.console import write as _write


def emit_json(document) -> None:
    from engine.core.jsonable import json_ready

    json.dump(json_ready(document), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")
    sys.stdout.flush()  # a reader that went away is found here, inside the command (main.py says so), not at exit


# Into a log or a pipe the bar is a line every this many seconds (a terminal redraws it 5 times a second).
QUIET_EVERY_S = 5.0


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most every 0.2 s."""

    def __init__(self, total: int, label: str = "", width: int = 30):
        self.total, self.label, self.width = max(1, total), label, width
        self._last = 0.0
        self.interactive = sys.stderr.isatty()

    def update(self, done: int, suffix: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.2 if self.interactive else QUIET_EVERY_S) and done < self.total:
            return
        self._last = now
        filled = int(self.width * min(done, self.total) / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"{self.label} [{bar}] {done}/{self.total} {suffix}"
        if self.interactive:
            _write(sys.stderr, "\r" + line[:200].ljust(100))
        else:
            say(line)

    def close(self) -> None:
        if self.interactive:
            _write(sys.stderr, "\n")


def add_composer_arguments(parser) -> None:
    """--run, --model, --primer and --primer-bars: which trained model continues which opening (generate,
    influence)."""
    from engine.models import MODEL_KEYS

    parser.add_argument("--run", required=True, metavar="RUN_DIR",
                        help="run directory of `main.py train`; 'pretrained' means the bundled models")
    parser.add_argument("--model", required=True, choices=MODEL_KEYS, help="which model composes")
    parser.add_argument("--primer", default=None, metavar="TUNE_ID|FILE.mid",
                        help="a tune id or title of the bundled corpus, or a MIDI file "
                             "(default: the tune the app's Listen tab starts on: the first test tune by title that is at "
                             "least twice the primer's length)")
    from .flags import add_flags

    add_flags(parser, "primer_bars")
