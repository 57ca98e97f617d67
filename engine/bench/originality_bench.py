"""Bench section: the originality meter's speed (issue 27).

- `originality_index_s`: building the span index of the bundled corpus's training tunes from the loaded
  corpus, uncached (best of 3; target under 2 s); `originality_index_cached_s`: reading it back from the
  cache (best of 3), in a temporary cache folder so that the user's cache is never touched.
- `originality_query_ms`: measuring one 64-bar continuation after an 8-bar primer, the median per query
  (target under 10 ms); `originality_query_n` says how many queries it rests on. The continuations are
  the test tunes' own (those with 16 bars or more after the primer), played again from bar 8 until they
  fill 64 bars: hardly any real tune is 72 bars long. `originality_query_copied_ms`: the same for training
  tunes, whose continuations are copied almost throughout (the slowest case: every span is looked up
  and chained).
"""

from __future__ import annotations

import tempfile
import time

import numpy as np

from engine.core.console import say
from engine.core.errors import UserError

PRIMER_BARS, BARS = 8, 64


def measure(quick: bool = False, report: dict | None = None) -> dict:
    from engine.data.corpus import load_corpus
    from engine.data.span_index import build_span_index, span_index_for
    from engine.metrics.originality import measure_continuation

    try:
        corpus = load_corpus()
    except UserError as exc:
        say(f"bench: originality figures not measured: {exc}")
        return {"originality_index_s": None, "originality_query_ms": None}
    build = []
    for _ in range(3):
        start = time.perf_counter()
        index = build_span_index(corpus)
        build.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory(prefix="mm-originality-bench-") as folder:
        span_index_for(corpus, cache_dir=folder)
        cached = []
        for _ in range(3):
            start = time.perf_counter()
            span_index_for(corpus, cache_dir=folder)
            cached.append(time.perf_counter() - start)
    limit = 20 if quick else 200
    test = [m for m in corpus.split("test") if m.n_steps // m.steps_per_bar >= PRIMER_BARS + 16][:limit]
    train = [m for m in corpus.split("train") if m.n_steps // m.steps_per_bar >= PRIMER_BARS + 16][:limit]
    query_ms, n = _median_ms(index, test, measure_continuation)
    copied_ms, n_copied = _median_ms(index, train, measure_continuation)
    say(f"bench: originality: index of {len(index.tunes)} training tunes ({index.n_spans} spans) built in "
        f"{min(build):.3f} s, read from the cache in {min(cached):.3f} s; one {BARS}-bar continuation in "
        f"{query_ms} ms (median of {n} test tunes), {copied_ms} ms when it replays a training tune "
        f"(median of {n_copied})")
    return {"originality_index_s": round(min(build), 4), "originality_index_cached_s": round(min(cached), 4),
            "originality_query_ms": query_ms, "originality_query_n": n,
            "originality_query_copied_ms": copied_ms, "originality_query_copied_n": n_copied}


def _median_ms(index, tunes, measure_continuation) -> tuple[float | None, int]:
    """(median ms, queries) of measuring each tune's continuation after its own primer."""
    pairs = [(m.bars(0, PRIMER_BARS), _continuation(m)) for m in tunes]
    if not pairs:
        return None, 0
    measure_continuation(index, *pairs[0])  # the first call pays numpy's lazy set-up
    times = []
    for primer, continuation in pairs:
        start = time.perf_counter()
        measure_continuation(index, primer, continuation)
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1000, 3), len(times)


def _continuation(tune):
    """The tune's bars from PRIMER_BARS on, repeated until they fill BARS bars."""
    from dataclasses import replace

    from engine.music.melody import Note

    full = tune.n_steps // tune.steps_per_bar
    part = tune.bars(PRIMER_BARS, full)
    steps = part.n_steps
    copies = -(-BARS * tune.steps_per_bar // steps)
    notes = tuple(Note(n.onset + k * steps, n.pitch, n.duration) for k in range(copies) for n in part.notes)
    return replace(part, notes=notes, n_steps=copies * steps).bars(0, BARS)
