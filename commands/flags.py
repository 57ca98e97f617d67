"""The numeric flags that belong to one command alone (the settings shared with the app are in their own
tables: TRAIN_SETTINGS, SAMPLE_SETTINGS, EVAL_SETTINGS, PROBE_SETTINGS), in one table like theirs: the flag,
its range, its default and its help are written once, `--help` shows the range, and `check` refuses a value
out of it (nan, inf, 1e400 and 2**70 included) before the command does any work.

Two commands may give the same flag different ranges (`--primer-bars` is 1..256 where a model hears the
primer, 0..256 in `originality`; `--workers` may be 0 for `corpus` only): each is its own row, named for its
command, with the flag it is typed as.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.core.settings import Setting, Settings
from engine.core.validation import Limit
from engine.data.primer import MAX_PRIMER_BARS
from engine.generation.generate import MAX_BARS

MAX_INFLUENCE_BARS = 64  # attribution cost grows with the square of the length
MAX_REFERENCE_BARS = 32
MAX_PARSE_WORKERS = 64  # processes are spawned, each with its own interpreter: more only exhausts the machine
MAX_QUIT_AFTER_S = 7 * 24 * 3600  # a week: a number of seconds, never nan or inf


@dataclass
class CommandFlags:
    primer_bars: int = 8
    program: int = 73
    influence_bars: int = 16
    originality_primer_bars: int = 8
    reference_bars: int = 8
    min_bars: int = 4
    split_rest_bars: float = 1.0
    corpus_workers: int = 0
    train_workers: int | None = None
    quit_after: float | None = None
    pin: float | None = None


COMMAND_FLAGS = Settings(
    CommandFlags,
    Setting("primer_bars", "Primer bars (generate, influence)", Limit("int", 1, MAX_PRIMER_BARS), "bars of the primer the model hears",
            flag="--primer-bars"),
    Setting("program", "Instrument (generate)", Limit("int", 0, 127), "General MIDI instrument (73 = flute)"),
    Setting("influence_bars", "Bars (influence)", Limit("int", 1, MAX_INFLUENCE_BARS),
            "bars to generate and attribute (the cost grows with the square of the length)", flag="--bars"),
    Setting("originality_primer_bars", "Primer bars (originality)", Limit("int", 0, MAX_PRIMER_BARS),
            "bars at the start of each melody that are its primer (0 = none)", flag="--primer-bars"),
    Setting("reference_bars", "Reference bars (metrics)", Limit("int", 1, MAX_REFERENCE_BARS),
            "bars that TR, RR and PC compare with"),
    Setting("min_bars", "Shortest melody (corpus)", Limit("int", 1, 4096), "drop melodies shorter than this"),
    Setting("split_rest_bars", "Split at rests (corpus)", Limit("float", 0, 1024),
            "split a melody at a rest of at least this many bars; 0 = never"),
    Setting("corpus_workers", "Workers (corpus)", Limit("int", 0, MAX_PARSE_WORKERS),
            "processes for the first parse; 0 = one per CPU core", flag="--workers"),
    Setting("train_workers", "Workers (train)", Limit("int", 1, 256),
            "processes that parse a corpus on its first load", flag="--workers", unset="one per CPU core"),
    Setting("quit_after", "Quit after (gui)", Limit("float", 0, MAX_QUIT_AFTER_S),
            "close the app after this many seconds", unset="stay open"),
    # A bar as numbered on the Listen rows' axis: the longest primer and continuation have this many.
    Setting("pin", "Pin (gui)", Limit("float", 1, MAX_PRIMER_BARS + MAX_BARS + 1),
            "with --generate: once the influence is in, click the composed notes sounding at this point of the "
            "Listen rows (a bar as numbered on the axis, 12.5 = the middle of bar 12), to show what they drew on "
            "(for screenshots)", unset="none"),
)


def add_flags(parser, *names: str) -> None:
    """The named rows as options of `parser`, with their defaults."""
    COMMAND_FLAGS.add_arguments(parser, only=names, defaults=True)


def check_flags(args, *names: str) -> None:
    """Each named flag of the parsed `args` in its range (converted in place); SettingError naming the flag.
    A flag whose default is None may be left out: it asks for nothing (no --pin, no --quit-after)."""
    for name in names:
        if getattr(args, name) is None and COMMAND_FLAGS.default(name) is None:
            continue
        setattr(args, name, COMMAND_FLAGS[name].check(getattr(args, name)))
