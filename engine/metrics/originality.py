"""The originality meter (issue 27, docs/design.md section 5 "Originality"): how much of a continuation
is replayed from the training tunes.

Definitions (the span keys are engine.music.span_keys'; the index engine.data.span_index's):
- The piece is primer (its first P bars) + continuation. Every two-bar span starting on a bar line of
  the continuation (bars c and c + 1, both after the primer) is one span; a G-bar continuation has G - 1.
- A span is scored when at least MIN_SPAN_NOTES notes start in it: an empty or nearly empty span (a long
  held note, silence) has too little in it to be called a copy of anything.
- A scored span is copied when its key occurs in a training tune and not among the primer's own spans
  (restating the opening it was given is recall, not copying). The primer's own spans are its spans
  inside it and its loop span: its last bar then its first bar, the seam a continuation that plays the
  primer again and again crosses each time (without it, such a continuation of a training tune's
  opening counted a copy at every seam whenever the tune, as an AABB tune does, plays that seam too).
- copy_rate = copied spans / scored spans (None when no span is scored).
- A run is a stretch of consecutive copied spans that one training tune holds at consecutive bars (the
  tune replayed bar for bar); it covers its spans' bars, so k spans make a run of k + 1 bars.
  longest_run_bars is the longest run (0 when nothing is copied). Copies from different tunes side by
  side are separate runs.
- copied_bars: the bars of the continuation inside some copied span (what the piano roll marks).
- runs: the runs that cover every copied span, longest first (then in order), each with every tune that
  holds it (up to SHOWN_TUNES named, n_tunes counted) and where in that tune it starts; tunes: the
  training tunes the copied spans come from, by longest run, then by copied spans (to_dict names the
  first SHOWN_TUNES and counts them all in n_tunes).
Bars in the results count from 0 = the first bar of the continuation (bar P of the piece).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.core.errors import UserError
from engine.data.span_index import SpanIndex, span_index_for
from engine.music.melody import Melody
from engine.music.span_keys import span_keys

MIN_SPAN_NOTES = 3
SHOWN_TUNES = 5
_BAR_BITS = 24  # an occurrence as one int64: tune << _BAR_BITS | bar (a tune has far fewer than 2**24 bars)


@dataclass(frozen=True)
class CopiedRun:
    start_bar: int  # bar of the continuation where the run starts
    bars: int  # bars it covers (spans + 1)
    tunes: tuple[tuple[int, int], ...]  # (tune position in the index, bar of that tune where the run starts)


@dataclass
class Originality:
    """One continuation's figures (the module docstring defines each)."""

    steps_per_bar: int
    primer_bars: int
    bars: int  # bars of the continuation
    spans: int  # scored spans
    copied_spans: int
    primer_spans: int  # scored spans that restate a span of the primer (not copied, whatever the index says)
    longest_run_bars: int
    copied_bars: np.ndarray  # bool [bars]
    span_copied: np.ndarray  # bool [bars - 1]: span starting at each bar copied
    runs: list[CopiedRun] = field(default_factory=list)
    tunes: list[tuple[int, int, int]] = field(default_factory=list)  # every (tune, copied spans, longest run bars)

    @property
    def copy_rate(self) -> float | None:
        return self.copied_spans / self.spans if self.spans else None

    def to_dict(self, index: SpanIndex) -> dict:
        """JSON-ready, naming the training tunes (tune_id, title, collection, path)."""
        def tune(i: int, **extra) -> dict:
            return {**index.tunes[i].to_dict(), **extra}

        return {
            "steps_per_bar": self.steps_per_bar, "primer_bars": self.primer_bars, "bars": self.bars,
            "spans": self.spans, "copied_spans": self.copied_spans, "primer_spans": self.primer_spans,
            "copy_rate": None if self.copy_rate is None else round(self.copy_rate, 6),
            "longest_run_bars": self.longest_run_bars,
            "copied_bars": np.flatnonzero(self.copied_bars).tolist(),
            "runs": [{"start_bar": r.start_bar, "bars": r.bars, "n_tunes": len(r.tunes),
                      "tunes": [tune(t, bar=b) for t, b in r.tunes[:SHOWN_TUNES]]} for r in self.runs],
            "n_tunes": len(self.tunes),
            "tunes": [tune(t, copied_spans=n, longest_run_bars=longest) for t, n, longest in self.tunes[:SHOWN_TUNES]],
        }


def measure_piece(index: SpanIndex, notes, steps_per_bar: int, n_bars: int, primer_bars: int) -> Originality:
    """The originality of bars [primer_bars, n_bars) of a piece whose notes [n, 3] count steps from the
    primer's first bar line (primer_bars may be 0: then nothing is excluded as a restatement)."""
    S, P = int(steps_per_bar), int(primer_bars)
    G = max(0, int(n_bars) - P)
    keys, counts = span_keys(notes, S, max(int(n_bars), P))
    # spans starting on bars 0..P-2 lie inside the primer; then its loop span (module docstring)
    primer_keys = np.concatenate([keys[: max(P - 1, 0)], _loop_key(notes, S, P)])
    cont, cont_counts = keys[P:], counts[P:]
    scored = cont_counts >= MIN_SPAN_NOTES
    in_primer = np.isin(cont, primer_keys) & scored
    lo, hi = index.find(cont)
    copied = scored & (hi > lo) & ~in_primer
    copied_bars = np.zeros(G, dtype=bool)
    spans = np.flatnonzero(copied)
    copied_bars[spans] = True
    copied_bars[spans + 1] = True
    runs, tunes, longest = _runs(index, copied, lo, hi)
    return Originality(S, P, G, int(scored.sum()), int(copied.sum()), int(in_primer.sum()), longest,
                       copied_bars, copied, runs, tunes)


def _loop_key(notes, S: int, P: int) -> np.ndarray:
    """The key of the primer's last bar followed by its first bar (empty without a primer)."""
    if P < 1:
        return np.zeros(0, dtype=np.uint64)
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
    last = notes[(notes[:, 0] >= (P - 1) * S) & (notes[:, 0] < P * S)] - np.array([(P - 1) * S, 0, 0])
    first = notes[(notes[:, 0] >= 0) & (notes[:, 0] < S)] + np.array([S, 0, 0])
    keys, _ = span_keys(np.concatenate([last, first]), S, 2)
    return keys


def measure_continuation(index: SpanIndex, primer: Melody, continuation: Melody) -> Originality:
    """measure_piece for a continuation that starts at its own step 0 right after `primer` (what
    engine.generation.generate returns, and a test tune's bars(P, P + G))."""
    S = primer.steps_per_bar
    P = -(-primer.n_steps // S)
    shifted = continuation.note_array()
    shifted[:, 0] += P * S
    notes = np.concatenate([primer.note_array(), shifted])
    return measure_piece(index, notes, S, P + continuation.n_bars, P)


def _runs(index: SpanIndex, copied: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """(runs, tunes, longest_run_bars): every occurrence's chain length (consecutive spans of one tune at
    consecutive bars) by dynamic programming over the spans, then the maximal chains that cover the copies."""
    ends: list[np.ndarray] = []  # per span: [code, length] of the chains that stop there
    prev_codes = prev_len = None
    prev_extended = None
    per_span_tunes = []
    for s in range(len(copied)):
        if not copied[s]:
            if prev_codes is not None:
                ends.append(_stops(s - 1, prev_codes, prev_len, prev_extended))
            prev_codes = None
            continue
        codes = (index.tune[lo[s]:hi[s]].astype(np.int64) << _BAR_BITS) | index.bar[lo[s]:hi[s]]
        length = np.ones(len(codes), dtype=np.int64)
        if prev_codes is not None:
            j = np.minimum(np.searchsorted(prev_codes, codes - 1), len(prev_codes) - 1)
            match = prev_codes[j] == codes - 1
            length[match] += prev_len[j[match]]
            prev_extended[j[match]] = True
            ends.append(_stops(s - 1, prev_codes, prev_len, prev_extended))
        per_span_tunes.append(np.unique(codes >> _BAR_BITS))
        prev_codes, prev_len, prev_extended = codes, length, np.zeros(len(codes), dtype=bool)
    if prev_codes is not None:
        ends.append(_stops(len(copied) - 1, prev_codes, prev_len, prev_extended))
    if not ends:
        return [], [], 0
    stops = np.concatenate(ends)  # rows: end span, length, code
    runs = _cover(stops, len(copied))
    return runs, _tune_table(stops, per_span_tunes), int(stops[:, 1].max()) + 1


def _stops(span: int, codes, length, extended) -> np.ndarray:
    keep = ~extended
    return np.stack([np.full(int(keep.sum()), span), length[keep], codes[keep]], axis=1)


def _cover(stops: np.ndarray, n_spans: int) -> list[CopiedRun]:
    """The maximal chains, longest first, each kept while it covers a copied span no longer chain covers;
    chains with the same spans are one run held by several tunes."""
    covered = np.zeros(n_spans, dtype=bool)
    order = np.lexsort((stops[:, 2], stops[:, 0], -stops[:, 1]))
    stops = stops[order]
    groups = np.flatnonzero(np.r_[True, np.any(stops[1:, :2] != stops[:-1, :2], axis=1)])
    runs = []
    for g, start in enumerate(groups):
        end = groups[g + 1] if g + 1 < len(groups) else len(stops)
        last, length = int(stops[start, 0]), int(stops[start, 1])
        first = last - length + 1
        if covered[first : last + 1].all():
            continue
        covered[first : last + 1] = True
        codes = stops[start:end, 2]
        tunes = tuple(zip((codes >> _BAR_BITS).tolist(), ((codes & ((1 << _BAR_BITS) - 1)) - length + 1).tolist()))
        runs.append(CopiedRun(first, length + 1, tunes))
    return runs


def _tune_table(stops: np.ndarray, per_span_tunes: list[np.ndarray]) -> list[tuple[int, int, int]]:
    """(tune, copied spans it holds, its longest run in bars), by longest run, then spans, then tune."""
    tunes, spans = np.unique(np.concatenate(per_span_tunes), return_counts=True)
    longest = np.zeros(len(tunes), dtype=np.int64)
    np.maximum.at(longest, np.searchsorted(tunes, stops[:, 2] >> _BAR_BITS), stops[:, 1] + 1)
    order = np.lexsort((tunes, -spans, -longest))
    return [(int(tunes[i]), int(spans[i]), int(longest[i])) for i in order]


def human_baseline(index: SpanIndex, test_tunes, primer_bars: int = 8, bars: int = 64, min_bars_after: int = 16,
                   min_n: int = 10, seed: int = 0) -> dict:
    """What real tunes of the corpus borrow: each test tune with at least `min_bars_after` full bars after its
    primer (the evaluation's primers), its real continuation (up to `bars` bars) measured like a model's.
    {"copy_rate": {mean, lo, hi, n}, "longest_run_bars": {mean, lo, hi, n}} (engine.metrics.stats: null
    below min_n). The app sets a model's figures beside it; the report has the same under originality.human."""
    from engine.metrics.stats import scalar_stats

    rates, longest = [], []
    for tune in test_tunes:
        if tune.n_steps // tune.steps_per_bar < primer_bars + min_bars_after or not tune.bars(0, primer_bars).notes:
            continue
        result = measure_continuation(index, tune.bars(0, primer_bars), tune.bars(primer_bars, primer_bars + bars))
        if result.copy_rate is not None:
            rates.append(result.copy_rate)
            longest.append(result.longest_run_bars)
    return {"copy_rate": scalar_stats(rates, seed=seed, min_n=min_n),
            "longest_run_bars": scalar_stats(longest, seed=seed, min_n=min_n)}


# --- a run's training tunes -------------------------------------------------------------------------


@dataclass
class RunTunes:
    """The span index of the tunes a run trained on, and the corpus it was built from."""

    index: SpanIndex
    corpus: object  # engine.data.corpus.Corpus
    matches_run: bool  # the corpus loaded now is the one the run's models were trained on
    warning: str | None = None  # what to tell the user when it is not

    @property
    def bundled(self) -> bool:
        """The tunes indexed are the bundled corpus's (a run trained on a folder of the person's own: False)."""
        from engine.data.corpus import is_bundled

        return is_bundled(self.corpus)

    def summary(self) -> dict:
        return {"sources": self.corpus.sources, "fingerprint": self.corpus.fingerprint,
                "matches_run": self.matches_run, "training_tunes": len(self.index.tunes),
                "indexed_spans": self.index.n_spans}


def run_tunes(run_dir, corpus=None, cache: bool = True) -> RunTunes:
    """The training tunes of the run in `run_dir`: its run.json's sources (none, or no run.json as for the
    bundled models: the bundled corpus), checked against the corpus hash its models recorded. `corpus`
    is used when it is the run's (the app has one loaded); otherwise the run's own is loaded.
    UserError naming the folder when it holds no run."""
    from engine.data.corpus import load_corpus
    from engine.training.checkpoint import list_run_models, read_config
    from engine.training.run_plan import read_manifest

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    manifest = read_manifest(run_dir)
    models = list_run_models(run_dir)
    if manifest is None and not models:
        raise UserError(f"{run_dir}: not a run (no run.json and no trained model in it)")
    sources = manifest.sources if manifest is not None else None
    if manifest is not None and manifest.corpus:
        trained_on = {manifest.corpus}
    else:
        trained_on = {read_config(run_dir / k).get("corpus") for k in models} - {None, ""}
    if corpus is None or corpus.fingerprint not in trained_on:
        corpus = load_corpus(sources)
    matches = bool(trained_on) and trained_on == {corpus.fingerprint}
    warning = None
    if not matches:
        warning = (f"{run_dir}: its models were trained on corpus {', '.join(sorted(trained_on)) or '(not recorded)'}, "
                   f"the run's sources now give corpus {corpus.fingerprint}: their files have changed since, so "
                   f"the training tunes indexed are not exactly the ones it learned")
    return RunTunes(span_index_for(corpus, cache=cache), corpus, matches, warning)
