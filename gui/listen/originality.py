"""The training tunes of the models on screen, for the Listen tab's originality meter (issue 27 item 5).

`TrainingTunes` indexes the tunes the open run trained on (engine.metrics.originality.run_tunes: the
run's own corpus, checked against what its models recorded; the index is cached on disk by the engine)
in a background job whenever the models or the corpus change, and the human baseline (the real
continuations of the corpus's test tunes, measured the same way) for the primer and continuation
lengths in use. A continuation is then measured on the GUI thread (under 10 ms for 64 bars), once: its
figures are kept until the index changes.

When a model "mostly replays its training tunes" (docs/listen-originality.md says why these levels):
over the melodies it composed in one Generate, at least REPLAY_SHARE of their scored two-bar spans are
copies, or at least half of them hold a copied run of REPLAY_RUN_BARS bars or more. Real tunes of the
bundled corpus copy about 6% of their spans, with a longest run of about one bar.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from .. import workers

REPLAY_SHARE = 0.5
REPLAY_RUN_BARS = 8
BASELINE_MIN_BARS_AFTER = 16  # as the evaluation's primers: a test tune with this many bars after its primer
KEEP_MEASURED = 1024  # melodies whose figures are kept (a Generate makes at most models x variations)


def _index_job(run_dir: Path, corpus):
    from engine.metrics.originality import run_tunes

    return run_tunes(run_dir, corpus)


def _baseline_job(tunes, primer_bars: int, bars: int) -> dict:
    from engine.metrics.originality import human_baseline

    return human_baseline(tunes.index, tunes.corpus.split("test"), primer_bars=primer_bars, bars=bars,
                          min_bars_after=min(bars, BASELINE_MIN_BARS_AFTER))


class TrainingTunes(QObject):
    """status: "none" (no run open), "indexing", "ready" or "failed" (`reason` says why)."""

    changed = Signal()  # the index or a baseline arrived, or the run changed

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.status = "none"
        self.reason = ""
        self.tunes = None  # engine.metrics.originality.RunTunes
        self._key = None  # (run folder, corpus fingerprint) the index is for
        self._baselines: dict[tuple[int, int], dict] = {}
        self._baseline_wanted: set[tuple[int, int]] = set()
        # (id(primer), id(continuation)) -> (primer, continuation, figures): each melody is measured once, not
        # once per row redrawn (the note above the rows reads every model's melodies whenever a row changes)
        self._measured: dict[tuple[int, int], tuple] = {}

    def refresh(self) -> None:
        """Index the open run's training tunes in the background (nothing when it is already done)."""
        run_dir = self.state.run_dir
        if not self.state.models or run_dir is None:
            self._reset("none", "")
            return
        corpus = self.state.corpus
        key = (str(run_dir), getattr(corpus, "fingerprint", None))
        if key == self._key:
            return
        self._reset("indexing", "")
        self._key = key
        workers.start_job(_index_job, Path(run_dir), corpus,
                          on_return=lambda tunes: self._indexed(key, tunes),
                          on_error=lambda exc: self._failed(key, exc), owner=self)

    def _reset(self, status: str, reason: str) -> None:
        self.status, self.reason, self.tunes, self._key = status, reason, None, None
        self._baselines.clear()
        self._measured.clear()
        self._baseline_wanted.clear()
        self.changed.emit()

    def _indexed(self, key, tunes) -> None:
        if key != self._key:
            return  # the run or corpus changed while this one was indexed
        self.tunes, self.status = tunes, "ready"
        self.reason = tunes.warning or ""
        self.changed.emit()

    def _failed(self, key, exc) -> None:
        if key == self._key:
            self.status, self.reason = "failed", workers.error_text(exc)
            self.changed.emit()

    # ---- figures ---------------------------------------------------------------------------------
    def measure(self, primer, continuation):
        """engine.metrics.originality.Originality of one continuation (None until the index is in)."""
        if self.tunes is None or primer is None or continuation is None:
            return None
        key = (id(primer), id(continuation))
        kept = self._measured.get(key)
        if kept is not None and kept[0] is primer and kept[1] is continuation:
            return kept[2]
        from engine.metrics.originality import measure_continuation

        if len(self._measured) >= KEEP_MEASURED:
            self._measured.clear()
        result = measure_continuation(self.tunes.index, primer, continuation)
        self._measured[key] = (primer, continuation, result)  # the melodies held: their ids are not reused
        return result

    def baseline(self, primer_bars: int, bars: int) -> dict | None:
        """The human baseline for these lengths ({"copy_rate": {mean, lo, hi, n}, "longest_run_bars": ...}),
        or None while it is computed (it is started here; `changed` says when it is in)."""
        if self.tunes is None:
            return None
        wanted = (int(primer_bars), int(bars))
        if wanted in self._baselines:
            return self._baselines[wanted]
        if wanted not in self._baseline_wanted:
            self._baseline_wanted.add(wanted)
            tunes, key = self.tunes, self._key
            workers.start_job(_baseline_job, tunes, *wanted,
                              on_return=lambda b: self._baseline_in(key, wanted, b),
                              on_error=lambda exc: self._baseline_in(key, wanted, None), owner=self)
        return None

    def _baseline_in(self, key, wanted, baseline) -> None:
        if key == self._key:
            self._baselines[wanted] = baseline or {}
            self.changed.emit()

    def tune_name(self, tune: int) -> str:
        """"Title" (collection, file): a training tune as the person can find it again."""
        t = self.tunes.index.tunes[tune]
        where = ", ".join(x for x in (t.collection, Path(t.path).name if t.path else "") if x)
        return f"\u201c{t.title or t.tune_id}\u201d" + (f" ({where})" if where else "")

    def tune_melody(self, tune: int):
        """The training tune's melody, from the corpus the index was built from."""
        corpus = self.tunes.corpus
        return corpus.melodies[int(self.tunes.index.corpus_index[tune])]

    @property
    def n_tunes(self) -> int:
        return len(self.tunes.index.tunes) if self.tunes is not None else 0


def replays(results) -> bool:
    """Whether a model's melodies of one Generate mostly replay its training tunes (module docstring)."""
    scored = [r for r in results if r is not None and r.spans]
    if not scored:
        return False
    share = sum(r.copied_spans for r in scored) / sum(r.spans for r in scored)
    long_runs = sum(r.longest_run_bars >= REPLAY_RUN_BARS for r in scored)
    return share >= REPLAY_SHARE or 2 * long_runs >= len(scored)
