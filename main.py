"""Melody Memory: `python main.py` opens the app; the subcommands below run the same engine headless."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import threading

# command name -> module with add_arguments(parser) and run(args) -> int. Imported only when chosen,
# so that `python main.py corpus` never loads Qt and `python main.py` never loads what it does not use.
COMMANDS = {
    "gui": ("commands.gui", "open the app (the default)"),
    "corpus": ("commands.corpus", "load a corpus of MIDI files and report what it holds"),
    "train": ("commands.train", "train one or more models"),
    "generate": ("commands.generate", "continue a primer with a trained model"),
    "evaluate": ("commands.evaluate", "measure how long each model keeps the theme and rhythm"),
    "influence": ("commands.influence", "show which earlier notes each generated note drew on"),
    "metrics": ("commands.metrics", "melody metrics of any MIDI files"),
    "originality": ("commands.originality", "how much of each MIDI file replays the run's training tunes"),
    "bench": ("commands.bench", "performance figures of this machine"),
}


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error format: one line `error: ...` on stderr and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = _Parser(prog="main.py", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), "gui")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == wanted:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["gui", *argv]
    args = build_parser(argv).parse_args(argv)
    if args.command is None:
        args = build_parser(["gui"]).parse_args(["gui"])
    from engine.core.errors import UserError

    wants_json = bool(getattr(args, "json", False))
    try:
        if wants_json and _stdout_closed():  # refused before any work: the document would have nowhere to go
            raise UserError("--json writes one JSON document on stdout, and stdout is closed: send it to a file or "
                            "a pipe (> out.json), or leave out --json. Nothing was done.")
        with _stops_as_ctrl_c(args.command):
            return importlib.import_module(COMMANDS[args.command][0]).run(args) or 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`... | head`). Text output stops quietly, as Unix tools do; a JSON
        # document cut short is of no use to anyone, so that is said in one line (and the exit is not 0).
        _silence_stdout()
        if wants_json:
            _tell("error: the reader of stdout went away before the JSON document was written whole (broken pipe): "
                  "what it received is incomplete")
        return 1


@contextlib.contextmanager
def _stops_as_ctrl_c(command: str):
    """`kill` (SIGTERM) and a closed terminal or ssh session (SIGHUP) stop a command as Ctrl-C does: through
    its own clean-up, so that its worker processes are ended and their semaphores released (killed by the
    signal's default, an evaluation left multiprocessing's resource tracker warning of leaked semaphores).
    `train` has its own handlers (a stop there checkpoints first); the app's are Qt's."""
    import signal

    from engine.core.processes import STOP_SIGNALS

    signals = [sig for sig in STOP_SIGNALS if sig != signal.SIGINT]  # Ctrl-C is already a KeyboardInterrupt
    if command in ("train", "gui") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _stdout_closed() -> bool:
    """Whether stdout is closed (`>&-`): Python then starts with sys.stdout None. A stream with no descriptor
    of its own (a test's buffer) is open."""
    import os

    if sys.stdout is None:
        return True
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return False
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def _silence_stdout() -> None:
    """Point stdout's descriptor at /dev/null, so that Python's flush at exit cannot fail on the dead pipe."""
    import os

    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):  # no descriptor of its own: nothing to point
        pass


def _tell(message: str) -> None:
    """One line on stderr, unless stderr is gone as well (`2>&1 | head`)."""
    import contextlib

    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
