"""`python main.py gui [--quit-after SECONDS] [--screenshot FILE.png] [--tab NAME] [--generate [--pin BAR]]`: the app.

With --quit-after the window loads the bundled models, closes itself after that many seconds and, when
--screenshot is given, saves a picture of the main window first (works with QT_QPA_PLATFORM=offscreen).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from engine.core.errors import UserError
from engine.core.validation import Limit

from .flags import add_flags, check_flags

TABS = ("corpus", "train", "listen", "memory")


def add_arguments(parser) -> None:
    add_flags(parser, "quit_after")
    parser.add_argument("--screenshot", metavar="FILE.png", help="with --quit-after: save the window as PNG first")
    parser.add_argument("--tab", choices=TABS, help="open on this tab")
    parser.add_argument("--size", help="window size WIDTHxHEIGHT (default: the last size used, 1280x800 on first use; "
                                        "never larger than the screen)")
    parser.add_argument("--run", metavar="RUN_DIR", help="open the models of this training run")
    parser.add_argument("--generate", action="store_true", help="press Generate once everything is loaded")
    add_flags(parser, "pin")
    # bench: generate with the start-up models, play the first melody, print when it starts, quit.
    parser.add_argument("--first-note", action="store_true", help=argparse.SUPPRESS)


# --size is text (WIDTHxHEIGHT), not one number: its sides' range is here; the window is then cut to the screen
WINDOW_SIDE = Limit("int", 1, 100_000)  # pixels


def run(args) -> int:
    _check_flags(args)
    size = _size(args.size) if args.size else None
    _choose_platform(args)
    from PySide6.QtWidgets import QApplication

    from gui.app import create_app
    from gui.main_window import MainWindow

    app = create_app()
    # Qt's own quit on the last window closed is skipped while something holds an event-loop lock: one launch
    # in three stayed alive with no window (seen with --quit-after). Closing the window ends the app.
    app.lastWindowClosed.connect(app.quit)
    window = MainWindow()
    if size is not None:
        window.fit_on_screen(size)  # before it is first shown: never larger than the screen
    if args.tab:
        window.show_tab(args.tab)
    window.show()
    window.start(args.run)
    _schedule(window, args)
    stopped = _close_on_stop_signals(app, window)
    code = app.exec() or (2 if getattr(args, "failed", False) else 0)
    if stopped:
        code = 130
    window.deleteLater()
    QApplication.processEvents()
    from gui import workers

    if workers.running_jobs():
        # Only jobs that cannot be interrupted are left (a first, cold corpus load): training and
        # generation were stopped by closing the window. Do not keep a closed app alive for them;
        # everything they write is written atomically.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _close_on_stop_signals(app, window) -> list:
    """Ctrl-C in the terminal, `kill` and a closed terminal or ssh session close the window as its close
    button does: training stops after its current step and checkpoints (MainWindow.shutdown), then the app
    ends with 130. Without this, SIGTERM and SIGHUP ended the app at once, losing the steps since the last
    checkpoint, and Ctrl-C waited for a click. Python runs a handler only between bytecodes, never inside
    Qt's event loop: a timer hands it the chance five times a second. Returns the signals received."""
    import signal

    from PySide6.QtCore import QTimer

    from engine.core.processes import STOP_SIGNALS

    received: list = []

    def handler(signum, frame):
        if not received:
            QTimer.singleShot(0, window.close)
        received.append(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(200)
    return received


def _check_flags(args) -> None:
    check_flags(args, "quit_after", "pin")
    if args.screenshot and args.quit_after is None:
        raise UserError("--screenshot needs --quit-after SECONDS (the picture is taken just before closing)")
    if args.screenshot:
        _check_screenshot(args.screenshot)
    if args.pin is not None and not args.generate:
        raise UserError("--pin BAR needs --generate (it clicks the notes that Generate composed)")


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        width, height = (int(v) for v in parts)
    except ValueError:
        raise UserError(f"--size must look like 1280x800, not {text!r}") from None
    return WINDOW_SIDE.check(width, "--size width"), WINDOW_SIDE.check(height, "--size height")


def _schedule(window, args) -> None:
    """What the flags ask of the running app: generate, pin a bar, take a screenshot and quit."""
    from PySide6.QtCore import QTimer

    if args.generate or args.first_note:
        _generate_when_ready(window, play=args.first_note)
    if args.pin is not None:
        window.listen_tab.influenceFinished.connect(lambda: window.listen_tab.influence.click(args.pin - 1))
    if args.quit_after is not None:
        def finish():
            if args.screenshot and not _save_screenshot(window, args.screenshot):
                args.failed = True  # the exit code says so
            window.close()

        QTimer.singleShot(int(args.quit_after * 1000), finish)


def _choose_platform(args) -> None:
    """Without a display, a timed run (screenshots, bench) draws offscreen; an interactive one says why
    it cannot open rather than letting Qt abort."""
    import os

    from engine.core.errors import UserError

    if os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    if args.quit_after is not None or args.first_note:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return
    raise UserError(
        "no display to open the window on: run it on a desktop, under xvfb-run, or with "
        "QT_QPA_PLATFORM=offscreen --quit-after SECONDS --screenshot FILE.png"
    )


def _generate_when_ready(window, play: bool) -> None:
    """Press Generate as soon as the corpus and models are in; with play, play the first result."""
    from PySide6.QtCore import QTimer

    def go():
        listen = window.listen_tab
        if not window.state.models or listen.current_tune() is None:
            why = "no models were loaded" if not window.state.models else "no primer tune (no corpus loaded)"
            print(f"first_note_failed {why}", flush=True)
            if play:
                window.close()
            return
        window.generate()

    played = []

    def row_ready(index):
        # The first model's melody plays while the others are still composing.
        if play and not played:
            played.append(index)
            window.listen_tab.play_row(index)

    def sounding():
        if not play:
            return
        # Wall-clock time, so that a parent process can subtract its own launch time.
        print(f"first_note_at {time.time():.6f}", flush=True)
        if not window.playback.is_playing():
            print("first_note_audio none", flush=True)
            window.close()
            return
        print(f"first_note_audio {window.playback.audio_text}", flush=True)
        row = window.listen_tab.rows[played[0]]

        started = time.monotonic()

        def report_playhead():
            # Wait (up to 5 s) until the playhead has moved a quarter of a bar with the sound, then say
            # where it is: tests check that it follows the audio device.
            bar = row.roll.playhead_bar()
            if bar < 0.25 and time.monotonic() - started < 5.0 and window.playback.is_playing():
                QTimer.singleShot(100, report_playhead)
                return
            print(f"first_note_playhead {bar:.3f} after {time.monotonic() - started:.2f} s", flush=True)
            window.close()

        QTimer.singleShot(100, report_playhead)

    window.listen_tab.rowReady.connect(row_ready)
    window.playback.audioReady.connect(sounding)
    if window.busy_loading:
        window.startupFinished.connect(go)
    else:
        go()


def _check_screenshot(path: str) -> None:
    """The screenshot can be written, said before the app starts (it is taken seconds later, at the end):
    not a folder, under a folder that exists or can be made, writable."""
    from engine.core.atomic import nearest_existing

    target = Path(path)
    if target.is_dir():
        raise UserError(f"--screenshot {target}: a folder, not a file to write")
    existing = nearest_existing(target.parent)
    if not existing.is_dir():
        raise UserError(f"--screenshot {target}: cannot be written, {existing} is a file")
    if not os.access(existing, os.W_OK):
        raise UserError(f"--screenshot {target}: cannot be written, folder {existing} is not writable")


def _save_screenshot(window, path: str) -> bool:
    """Save the window as PNG; False, with the reason on stderr, when it cannot be written (this runs in the
    event loop: an exception here would leave the window open, and the app running, for ever)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        saved = window.grab().save(str(target))
    except OSError as exc:
        saved, why = False, exc.strerror or str(exc)
    else:
        why = "Qt could not write it"
    if not saved:
        print(f"error: could not write the screenshot {target} ({why})", file=sys.stderr)
        return False
    print(f"screenshot: {target}", file=sys.stderr)
    return True
