"""`python main.py corpus [--source PATH ...] [--json]`: load a corpus and report what it holds.

Every file that gives no melody, and every copy of a melody already loaded, is listed with its reason.
The command fails (exit 2, `error: ...`) only when nothing usable is found or an option is out of
range; a folder with some bad files is a normal, successful load.
"""

from __future__ import annotations

import os

from .common import ProgressBar, emit_json, say
from .flags import add_flags, check_flags


def add_arguments(parser) -> None:
    parser.add_argument("--source", action="extend", nargs="+", metavar="PATH", default=None,
                        help="MIDI files or folders searched recursively (several after one flag, or the flag repeated); "
                             "default: the bundled corpus")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    add_flags(parser, "min_bars", "split_rest_bars", "corpus_workers")
    parser.add_argument("--no-cache", action="store_true", help="parse every file again, ignore the cache")


def run(args) -> int:
    from engine.data.corpus import ExtractSettings, NoUsableMelodies, load_corpus

    check_flags(args, "min_bars", "split_rest_bars", "corpus_workers")
    settings = ExtractSettings(min_bars=args.min_bars, split_rest_bars=args.split_rest_bars)
    workers = args.corpus_workers or (os.cpu_count() or 1)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = ProgressBar(total, "parsing")
        bar.update(done, "files")

    say("loading " + (", ".join(args.source) if args.source else "the bundled corpus") + " ...")
    corpus = load_corpus(args.source, settings, progress=progress, workers=workers,
                         cache=not args.no_cache, allow_empty=True)
    if bar is not None:
        bar.close()
    summary = corpus.summary()
    if args.json:
        emit_json(summary)
    else:
        _print_report(summary)
    if not corpus.melodies:
        raise NoUsableMelodies(corpus.sources, corpus.skipped)
    return 0


def _print_report(s: dict) -> None:
    splits = s["splits"]
    print(f"sources:   {', '.join(s['sources'])}")
    print(f"files:     {s['files']}  (cache: {s['cache']})")
    print(f"melodies:  {s['melodies']}  (train {splits['train']}, valid {splits['valid']}, test {splits['test']}; "
          f"{s['duplicates']} duplicate{'s' if s['duplicates'] != 1 else ''} left out)")
    print(f"bars:      {s['bars']}")
    print(f"tokens:    {s['tokens']}  (vocabulary {s['token_config']['min_pitch']}..{s['token_config']['max_pitch']})")
    if s["notes"]:
        print(f"notes:     {s['notes']}  ({s['folded_notes']} folded by octaves into the range)")
    if s["meters"]:
        print("meters:    " + ", ".join(f"{k} ({v})" for k, v in s["meters"].items()))
    warnings = s["warnings"]
    if warnings:
        print(f"warnings:  {len(warnings)} (kept, with a change worth knowing)")
        for item in warnings[:10]:
            print(f"  {item['path']}: {item['warning']}")
        if len(warnings) > 10:
            print(f"  ... and {len(warnings) - 10} more (--json lists them all)")
    skipped = s["skipped"]
    print(f"skipped:   {len(skipped)}")
    for item in skipped:
        print(f"  {item['path']}: {item['reason']}")
