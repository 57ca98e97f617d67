"""Bench section: loading the bundled corpus cold (parse every file) and warm (from the cache).

Cold uses a fresh cache folder in a temporary directory, so it never depends on (or disturbs) the
user's .cache/; warm is the best of three loads after it, each one what a second `main.py corpus`
does: scan and stat the files, read the cache entry back. Both use the same worker count as the CLI.
"""

from __future__ import annotations

import os
import tempfile
import time

from engine.corpus import load_corpus
from engine.errors import UserError


def measure(quick: bool = False, report: dict | None = None) -> dict:
    from commands.common import say

    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="mm-corpus-bench-") as cache_dir:
        start = time.perf_counter()
        try:
            corpus = load_corpus(cache_dir=cache_dir, workers=workers)
        except UserError as exc:  # no bundled corpus yet: the other sections still run
            say(f"bench: corpus figures not measured: {exc}")
            return {"corpus_cold_s": None, "corpus_warm_s": None}
        cold = time.perf_counter() - start
        warm_runs = []
        for _ in range(3):
            start = time.perf_counter()
            again = load_corpus(cache_dir=cache_dir, workers=workers)
            warm_runs.append(time.perf_counter() - start)
            if again.cache_status != "hit":
                say("bench: corpus: warning: the second load did not come from the cache")
    warm = min(warm_runs)
    say(f"bench: corpus: {len(corpus.files)} files, {len(corpus)} melodies; cold {cold:.2f} s with {workers} "
        f"worker(s), warm {warm:.3f} s ({cold / warm:.0f}x)")
    return {"corpus_cold_s": round(cold, 3), "corpus_warm_s": round(warm, 4)}
