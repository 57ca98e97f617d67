"""The report's originality section (issue 27; the measure is engine.metrics.originality's).

    originality.<model|human>.<T> = {
        "copy_rate": {mean, lo, hi, n},
        "longest_run_bars": {mean, lo, hi, n, median, max, n_continuations,
                             histogram: {bars: [0, 2, 3, ...], continuations: [count, ...]}},
        "tunes": [{tune_id, title, collection, copied_spans, continuations}, ...],
    }

- copy_rate: per primer, the mean copy rate of its continuations (samples) with a scored span; mean
  and 95% bootstrap interval over primers (the independent units), n = primers with a value, null below
  min_n (engine.metrics.stats, as every summary figure).
- longest_run_bars: the same over the per-primer mean of each continuation's longest run; median and
  max are over every continuation (n_continuations of them), null below min_n like the mean. histogram:
  the distribution itself, how many continuations have each longest run (0 = nothing copied; a run is
  at least 2 bars), every count kept whatever min_n (counts need no interval).
- tunes: the training tunes copied from most (copied spans summed over the continuations, and how many
  continuations copy from each), up to five: what a reader checks by ear.
- human: the real continuation of each test tune (bars P .. P + G) against the same training tunes,
  the same figures; it has no temperature, so every temperature's entry holds the same values.
The index and its size are in settings.originality.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from engine.data.span_index import span_index_for
from engine.metrics.originality import MIN_SPAN_NOTES, SHOWN_TUNES, measure_continuation
from engine.metrics.stats import scalar_stats
from engine.music.melody import Melody
from engine.music.span_keys import SPAN_BARS

HUMAN = "human"


class _Figures:
    """Per primer, each continuation's copy rate and longest run; and the tunes copied from."""

    def __init__(self, n_primers: int):
        self.rates: list[list[float]] = [[] for _ in range(n_primers)]
        self.longest: list[list[float]] = [[] for _ in range(n_primers)]
        self.spans: Counter = Counter()
        self.continuations: Counter = Counter()

    def add(self, primer: int, result) -> None:
        if result.copy_rate is None:
            return  # nothing scored (a silent continuation): no value for this sample
        self.rates[primer].append(result.copy_rate)
        self.longest[primer].append(float(result.longest_run_bars))
        for tune, spans, _longest in result.tunes:
            self.spans[tune] += spans
            self.continuations[tune] += 1


class OriginalityMeter:
    """Collects the evaluation's continuations as they are sampled (measure_continuations' `observe`) and
    builds the report section. `corpus` is the evaluation's corpus: its training tunes are indexed."""

    def __init__(self, corpus, cases, settings):
        self.index = span_index_for(corpus)
        self.cases = cases
        self.settings = settings
        self.by_source: dict[str, dict[str, _Figures]] = {}
        self.human = self._measure([[c.tune.bars(settings.primer_bars, settings.primer_bars + settings.bars)]
                                    for c in cases])

    def _measure(self, continuations: list[list[Melody]]) -> _Figures:
        figures = _Figures(len(self.cases))
        for i, (case, conts) in enumerate(zip(self.cases, continuations)):
            for cont in conts:
                result = measure_continuation(self.index, case.primer, cont)
                figures.add(i, result)
        return figures

    def observe(self, temperature: str, model: str, continuations: list[list[Melody]]) -> None:
        """One model's continuations of every primer (a list of samples each) at one temperature."""
        self.by_source.setdefault(model, {})[temperature] = self._measure(continuations)

    def settings_entry(self) -> dict:
        return {"span_bars": SPAN_BARS, "min_span_notes": MIN_SPAN_NOTES, "training_tunes": len(self.index.tunes),
                "indexed_spans": self.index.n_spans}

    def report(self) -> dict:
        temperatures = list(dict.fromkeys(t for by_t in self.by_source.values() for t in by_t))  # as sampled
        section = {model: {t: self._entry(f) for t, f in by_t.items()} for model, by_t in self.by_source.items()}
        human = self._entry(self.human)
        section[HUMAN] = {t: human for t in temperatures}
        return section

    def _entry(self, f: _Figures) -> dict:
        s = self.settings
        rates = [np.mean(r) if r else np.nan for r in f.rates]
        longest = [np.mean(v) if v else np.nan for v in f.longest]
        pooled = np.array([v for per in f.longest for v in per], dtype=float)
        run = scalar_stats(longest, s.bootstrap, s.seed, s.min_n)
        enough = run["n"] >= s.min_n and len(pooled)
        run.update(median=float(np.median(pooled)) if enough else None, max=int(pooled.max()) if enough else None,
                   n_continuations=len(pooled), histogram=_histogram(pooled))
        tunes = sorted(f.spans, key=lambda t: (-f.spans[t], t))[:SHOWN_TUNES]
        return {
            "copy_rate": scalar_stats(rates, s.bootstrap, s.seed, s.min_n),
            "longest_run_bars": run,
            "tunes": [{**_named(self.index.tunes[t]), "copied_spans": f.spans[t], "continuations": f.continuations[t]}
                      for t in tunes],
        }


def _histogram(longest: np.ndarray) -> dict:
    """How many continuations have each longest run, in bars (only the lengths that occur)."""
    bars, counts = np.unique(longest.astype(int), return_counts=True)
    return {"bars": bars.tolist(), "continuations": counts.tolist()}


def _named(tune) -> dict:
    """A tune as a committed report names it: never the absolute path of the machine that made it."""
    return {"tune_id": tune.tune_id, "title": tune.title, "collection": tune.collection}
