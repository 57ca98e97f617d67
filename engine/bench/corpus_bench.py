"""Bench section: loading the bundled corpus cold (parse every file), at first launch and warm.

Cold uses a fresh cache folder in a temporary directory and ignores the shipped tokenized form, so it
never depends on (or disturbs) the user's .cache/ and measures the parse; first launch is what a new
install does (`corpus_first_launch_s`: a fresh cache folder, the shipped form checked against the files'
content and copied into the cache); warm is the best of three loads after it, each one what a second
`main.py corpus` does: scan and stat the files, read the cache entry back. All use the CLI's workers.

Parallel parsing: two more cold loads, each into its own fresh cache, with exactly one and
exactly two worker processes: `corpus_cold_1proc_s`, `corpus_cold_2proc_s` and their ratio
`parse_speedup_2proc` (skipped with --quick: each is a full parse of the corpus).

--quick (a smoke run within a minute) parses every QUICK_STRIDE-th file of the corpus cold, not all of them.
"""

from __future__ import annotations

import os
import tempfile
import time

from engine.core.console import say
from engine.core.errors import UserError
from engine.data.corpus import BUNDLED_DIR, load_corpus

QUICK_STRIDE = 10  # --quick: a tenth of the files, evenly spread over the collections


def _quick_sources() -> list | None:
    files = sorted(BUNDLED_DIR.rglob("*.mid")) if BUNDLED_DIR.is_dir() else []
    return files[::QUICK_STRIDE] or None


def measure(quick: bool = False, report: dict | None = None) -> dict:
    workers = os.cpu_count() or 1
    sources = _quick_sources() if quick else None  # None: the bundled corpus
    with tempfile.TemporaryDirectory(prefix="mm-corpus-bench-") as cache_dir:
        start = time.perf_counter()
        try:
            corpus = load_corpus(sources, cache_dir=cache_dir, workers=workers,
                                 shipped=False)
        except UserError as exc:  # no bundled corpus yet: the other sections still run
            say(f"bench: corpus figures not measured: {exc}")
            return {"corpus_cold_s": None, "corpus_warm_s": None, "corpus_first_launch_s": None}
        cold = time.perf_counter() - start
        warm_runs = []
        for _ in range(3):
            start = time.perf_counter()
            again = load_corpus(sources, cache_dir=cache_dir, workers=workers)
            warm_runs.append(time.perf_counter() - start)
            if again.cache_status != "hit":
                say("bench: corpus: warning: the second load did not come from the cache")
    warm = min(warm_runs)
    first = _first_launch_s(workers)
    say(f"bench: corpus: {len(corpus.files)} files, {len(corpus)} melodies; cold {cold:.2f} s with {workers} "
        f"worker(s), first launch {first:.2f} s (shipped tokens), warm {warm:.3f} s ({cold / warm:.0f}x)")
    figures = {"corpus_cold_s": round(cold, 3), "corpus_warm_s": round(warm, 4), "corpus_first_launch_s": round(first, 3)}
    if not quick:
        figures.update(_parse_speedup(say))
    return figures


def _cold_load_s(workers: int, shipped: bool = False) -> float:
    with tempfile.TemporaryDirectory(prefix="mm-corpus-bench-") as cache_dir:
        start = time.perf_counter()
        corpus = load_corpus(cache_dir=cache_dir, workers=workers, shipped=shipped)
        elapsed = time.perf_counter() - start
    if shipped and corpus.cache_status != "shipped":
        say("bench: corpus: warning: the first launch parsed the files (midi_data/tokenized.* is stale)")
    return elapsed


def _first_launch_s(workers: int) -> float:
    return _cold_load_s(workers, shipped=True)


def _parse_speedup(say) -> dict:
    one = _cold_load_s(1)
    two = _cold_load_s(2)
    say(f"bench: corpus: cold load with 1 process {one:.2f} s, with 2 processes {two:.2f} s "
        f"({one / two:.2f}x)")
    return {"corpus_cold_1proc_s": round(one, 3), "corpus_cold_2proc_s": round(two, 3),
            "parse_speedup_2proc": round(one / two, 2)}
