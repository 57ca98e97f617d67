"""`python main.py originality --run RUN_DIR FILE.mid ...`: how much of each melody replays the run's
training tunes, two bars at a time and in any key (issue 27; the definitions are in
engine/metrics/originality.py, the span keys in engine/music/span_keys.py).

Each file goes through the melody pipeline (like `metrics`); a file can give several melodies, each
measured on its own. What counts as primer: the first --primer-bars bars of each melody (default 8, the
primer `generate` writes before its continuation with the default --primer-mode inline). Those bars are
not scored, and a later span that restates one of their spans (or the seam of the primer played again: its
last bar, then its first) is recall, not a copy. --primer-bars 0
scores the whole melody (a file written with --primer-mode none, or any tune of your own). A melody
no longer than its primer plus two bars has no span to score: its copy rate is null (shown as '-').

The training tunes are the run's (its run.json names its corpus; the bundled models' is the bundled
corpus), indexed once and cached beside the corpus cache.
"""

from __future__ import annotations

from .common import emit_json, say
from .flags import add_flags, check_flags

SHOWN_RUNS = 8  # the text output's lines per melody


def add_arguments(parser) -> None:
    import argparse

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("paths", nargs="+", metavar="FILE.mid", help="MIDI file, or folder searched recursively")
    parser.add_argument("--run", required=True, metavar="RUN_DIR",
                        help="run directory of `main.py train`; 'pretrained' means the bundled models")
    add_flags(parser, "originality_primer_bars")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def run(args) -> int:
    from engine.core.errors import UserError
    from engine.metrics.originality import MIN_SPAN_NOTES, measure_piece, run_tunes
    from engine.music.midi_io import printable
    from engine.training.checkpoint import resolve_run_dir

    # reading files is shared with `metrics`: the same pipeline, the same rules for named files and folders
    from .metrics import _find_files, _load

    check_flags(args, "originality_primer_bars")
    args.primer_bars = args.originality_primer_bars
    files, skipped = _find_files(args.paths)
    pieces = []  # every melody of every file, read before the run's tunes are indexed: a bad file fails fast
    for path, explicit in files:
        try:
            pieces += [(printable(path), index, melody) for index, melody in enumerate(_load(path))]
        except UserError as exc:
            if explicit:
                raise
            skipped.append({"path": printable(path), "reason": str(exc)})
            say(f"skipped: {exc}")
    if not pieces:
        reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped) or "no MIDI files"
        raise UserError(f"no melody to measure ({reasons})")
    tunes = run_tunes(resolve_run_dir(args.run))
    if tunes.warning:
        say(f"warning: {tunes.warning}")
    say(f"originality: {len(tunes.index.tunes)} training tunes, {tunes.index.n_spans} two-bar spans "
        f"(index: {tunes.index.cache_status})")
    measured = []
    for name, index, melody in pieces:
        result = measure_piece(tunes.index, melody.note_array(), melody.steps_per_bar, melody.n_bars,
                               args.primer_bars)
        measured.append({"path": name, "index": index, "title": melody.title, "meter": melody.meter,
                         **result.to_dict(tunes.index)})
    if args.json:
        emit_json({"run": str(args.run), "corpus": tunes.summary(), "primer_bars": args.primer_bars,
                   "min_span_notes": MIN_SPAN_NOTES, "melodies": measured, "skipped": skipped})
    else:
        for entry in measured:
            _print(entry)
    return 0


def _print(entry: dict) -> None:
    name = entry["path"] + (f" #{entry['index'] + 1}" if entry["index"] else "")
    P = entry["primer_bars"]
    rate = entry["copy_rate"]
    said = "-" if rate is None else f"{100 * rate:.1f}%"
    print(f"{name}: {entry['meter']}, {entry['bars']} bars after {P} primer bars: {entry['copied_spans']} of "
          f"{entry['spans']} two-bar spans copied ({said}), longest run {entry['longest_run_bars']} bars"
          + (f"; {entry['primer_spans']} restate the primer" if entry["primer_spans"] else ""))
    for run in entry["runs"][:SHOWN_RUNS]:
        first = P + run["start_bar"] + 1  # bars of the file, counted from 1
        tune = run["tunes"][0]
        others = run["n_tunes"] - 1
        more = f" (and {others} other tune{'s' * (others != 1)})" if others else ""
        print(f"  bars {first}-{first + run['bars'] - 1}: {tune['title'] or tune['tune_id']} ({tune['tune_id']}, "
              f"{tune['collection']}), from its bar {tune['bar'] + 1}{more}")
    if len(entry["runs"]) > SHOWN_RUNS:
        left = len(entry["runs"]) - SHOWN_RUNS
        print(f"  ... and {left} shorter run{'s' * (left != 1)} (--json lists them all)")
