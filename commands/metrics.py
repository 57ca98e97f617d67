"""`python main.py metrics PATH ...`: the melody metrics of docs/design.md section 5 for any MIDI files.

Each file goes through the same melody pipeline as the corpus (engine.music.midi_io), so a file can give
several melodies (one per meter span or passage between long rests). Whole-piece metrics equal MusPy's.

Memory is bounded: the reader caps a file at 262,144 steps; --reference-bars at 32 bars (the per-bar
recall metrics compare every bar with each reference bar); the self-similarity matrix (--self-similarity) compares
every bar with every bar, so it covers at most a melody's first MAX_SSM_BARS bars (the JSON says how
many in "self_similarity_bars", and stderr says when it is fewer than the melody has).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .common import emit_json, say
from .flags import add_flags, check_flags

# 512 x 512 bars: about 0.2 GB while computing in 4/4 (0.5 GB at 64 steps per bar) and a 4 MB matrix;
# a 4,000-bar file took 9.5 GB. Far longer than any tune, whose SSM is what the plots show.
MAX_SSM_BARS = 512

PER_BAR_HELP = """\
per-bar metrics of a whole piece (there is no primer/continuation split here):
  GC        1 - Hamming(onsets of bar b, of bar b-1) / steps per bar; none for bar 0
  downbeat  1 when a note starts on the bar's first step
  empty     1 when no note starts in the bar
  IK        share of the bar's notes in the piece's own key (the major/minor scale holding most of
            its notes, MusPy's rule); none for an empty bar
  TR, RR    theme and rhythm recall of each bar after the first --reference-bars bars (default 8)
            against those bars, as if they were the primer; none for the reference bars themselves,
            and none at all when the piece is no longer than that
  PC        tonal drift: Jensen-Shannon divergence (bits) of the pitch classes of bars b-3..b
            (after the reference) against the reference bars
Undefined values are null in --json and '-' in the table."""


def add_arguments(parser) -> None:
    import argparse

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = "Whole-piece and per-bar melody metrics of MIDI files (docs/design.md section 5)."
    parser.epilog = PER_BAR_HELP
    parser.add_argument("paths", nargs="+", metavar="PATH", help="MIDI file, or folder searched recursively")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    add_flags(parser, "reference_bars")
    parser.add_argument("--self-similarity", action="store_true",
                        help=f"add each melody's self-similarity matrix to --json (its first {MAX_SSM_BARS} bars at most)")


def run(args) -> int:
    from engine.core.errors import UserError
    from engine.metrics import piece_bar_metrics, piece_metrics, self_similarity
    from engine.metrics.keys import best_key
    from engine.music.melody import key_name
    from engine.music.midi_io import printable

    check_flags(args, "reference_bars")
    files, skipped = _find_files(args.paths)
    melodies_out = []
    for path, explicit in files:
        try:
            melodies = _load(path)
        except UserError as exc:
            if explicit:
                raise
            skipped.append({"path": printable(path), "reason": str(exc)})
            say(f"skipped: {exc}")
            continue
        for index, melody in enumerate(melodies):
            notes = melody.note_array()
            spb = melody.steps_per_bar
            key = best_key(notes[:, 1])
            entry = {
                "path": printable(path),
                "index": index,
                "tune_id": melody.tune_id,
                "title": melody.title,
                "meter": melody.meter,
                "steps_per_bar": spb,
                "n_bars": melody.n_bars,
                "key": melody.key,  # as the file says
                # the major/minor scale holding most notes (MusPy's rule): what IK measures against
                "scale": None if key is None else key_name(key),
                "notes": notes.tolist(),
                **piece_metrics(notes, spb),
                "per_bar": {
                    name: values.tolist()
                    for name, values in piece_bar_metrics(notes, spb, melody.n_bars, args.reference_bars).items()
                },
            }
            if args.self_similarity:
                bars = min(melody.n_bars, MAX_SSM_BARS)
                if bars < melody.n_bars:
                    say(f"metrics: {entry['path']}: --self-similarity covers the first {bars} of {melody.n_bars} bars "
                        f"(at most {MAX_SSM_BARS}: the matrix grows with the square of the bars)")
                entry["self_similarity_bars"] = bars
                entry["self_similarity"] = self_similarity(notes[notes[:, 0] < bars * spb], spb, bars).tolist()
            melodies_out.append(entry)
    if not melodies_out:
        reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped) or "no MIDI files"
        raise UserError(f"no melody to measure ({reasons})")
    if args.json:
        emit_json(_nan_to_null({"melodies": melodies_out, "skipped": skipped}))
    else:
        for entry in melodies_out:
            _print_melody(entry)
    return 0


def _find_files(paths) -> tuple[list[tuple[Path, bool]], list[dict]]:
    """(file, named explicitly) pairs: a file named on the command line must load; one found in a folder
    that does not is skipped with its reason."""
    from engine.core.errors import UserError
    from engine.data.corpus import MIDI_SUFFIXES, path_kind
    from engine.music.midi_io import printable

    files: list[tuple[Path, bool]] = []
    skipped: list[dict] = []
    for raw in paths:
        path = Path(raw).expanduser()
        try:
            kind = path_kind(path)  # the corpus's own look: anything not a folder is read as a file
        except UserError as exc:  # a name the OS refuses (too long, ...)
            raise UserError(f"{printable(raw)}: {exc}") from None
        if kind == "file":  # the reader says what else it is (a FIFO, a device: "not a regular file")
            files.append((path, True))
        elif kind == "dir":
            named = sorted(p for p in path.rglob("*") if p.name.lower().endswith(MIDI_SUFFIXES) and not p.is_dir())
            found = [p for p in named if p.is_file()]
            # A FIFO or a device under a MIDI name is said as what it is (it was "no MIDI files" before)
            skipped += [{"path": printable(p), "reason": "not a regular file"} for p in named if not p.is_file()]
            if not named:
                skipped.append({"path": printable(path), "reason": "no MIDI files (.mid, .midi) in this folder"})
            files.extend((p, False) for p in found)
        else:
            raise UserError(f"{printable(raw)}: no such file or folder")
    return files, skipped


def _load(path: Path):
    from engine.music.midi_io import ExtractSettings, load_midi_melodies

    # min_bars=1: measure whatever melody a file has, however short (the corpus drops short ones).
    return load_midi_melodies(path, ExtractSettings(min_bars=1))


def _nan_to_null(value):
    """JSON has no NaN: undefined values become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_null(v) for v in value]
    return value


def _fmt(value: float, width: int = 6) -> str:
    return "-".rjust(width) if value is None or math.isnan(value) else f"{value:{width}.3f}"


def _print_melody(entry: dict) -> None:
    name = entry["path"] + (f" #{entry['index'] + 1}" if entry["index"] else "")
    print(
        f"{name}: {entry['meter']}, {entry['n_bars']} bars, {len(entry['notes'])} notes, "
        f"key {entry['key']}, best-fitting scale {entry['scale']}"
    )
    for metric in ("pitch_class_entropy", "scale_consistency", "groove_consistency", "empty_beat_rate"):
        print(f"  {metric:20s} {_fmt(entry[metric], 8)}")
    per_bar = entry["per_bar"]
    columns = list(per_bar)
    print("  " + "bar".rjust(4) + "".join(c.rjust(9) for c in columns))
    for b in range(entry["n_bars"]):
        print("  " + str(b).rjust(4) + "".join(_fmt(per_bar[c][b], 9) for c in columns))
    means = {c: np.nanmean(per_bar[c]) if not np.isnan(per_bar[c]).all() else math.nan for c in columns}
    print("  " + "mean".rjust(4) + "".join(_fmt(means[c], 9) for c in columns))
    print()
