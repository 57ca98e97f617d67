"""The span index of a corpus's training tunes: every two-bar span key (engine.music.span_keys) and where
it occurs, for the originality meter (issue 27; the measure itself is engine.metrics.originality).

The tunes indexed are the ones a run trains on (`training_indices`, the rule of
engine.training.run_plan.RunPlan.job): the corpus's train split, less every 10th of them when the corpus
has no validation split (those are held out to validate on, never trained on).

The index is three arrays sorted by key: key (uint64), tune (position in the indexed tunes), bar (where
the span starts in that tune). Looking up the ~63 spans of a 64-bar melody is two binary searches each.
Building it for the bundled corpus takes a fraction of a second; it is cached beside the corpus cache
(cache_root()/originality, .npz without pickle, written atomically), keyed by the indexed notes and by
the code that makes the keys, so a changed corpus or key never reads a stale entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core.atomic import atomic_write, remove_stale_temporaries
from engine.core.errors import UserError
from engine.data.cache import KEEP_ENTRIES, STALE_TEMPORARY_S, cache_key, cache_root
from engine.music.span_keys import span_keys_flat

INDEX_FORMAT = 1
HOLDOUT_EVERY = 10  # RunPlan.job: a corpus without validation tunes validates on every 10th training tune
_ARRAYS = ("keys", "tune", "bar", "corpus_index")


def training_indices(corpus) -> list[int]:
    """Positions in `corpus` of the tunes a run trains on (the module docstring's rule).

    `corpus` is an engine.data.corpus.Corpus, or anything with `melodies` whose meta["split"] says the
    split (the evaluation's tests pass such stand-ins)."""
    splits = _splits(corpus)
    train = [i for i, s in enumerate(splits) if s == "train"]
    if "valid" not in splits:
        train = [i for n, i in enumerate(train) if n % HOLDOUT_EVERY]
    return train


def _splits(corpus) -> list[str]:
    packed = getattr(corpus, "packed", None)
    if packed is not None:
        return [rec["meta"].get("split", "") for rec in packed.records]
    return [m.meta.get("split", "") for m in corpus.melodies]


@dataclass(frozen=True)
class IndexedTune:
    """A training tune as the meter names it: its corpus id, title, collection and file, as the corpus's
    manifest records them (to_dict gives the file as both `source`, the manifest's name for it, and `path`)."""

    tune_id: str
    title: str
    collection: str
    path: str

    def to_dict(self) -> dict:
        return {"tune_id": self.tune_id, "title": self.title, "collection": self.collection, "source": self.path,
                "path": self.path}


@dataclass
class SpanIndex:
    keys: np.ndarray  # uint64 [spans], sorted
    tune: np.ndarray  # int32 [spans]: position in `tunes`
    bar: np.ndarray  # int32 [spans]: the bar the span starts on in that tune
    tunes: list[IndexedTune]
    corpus_index: np.ndarray  # int64 [tunes]: each tune's position in the corpus it came from
    cache_status: str = "built"  # "built", "hit" or "off"

    @property
    def n_spans(self) -> int:
        return len(self.keys)

    def find(self, keys) -> tuple[np.ndarray, np.ndarray]:
        """For each key, the range [lo, hi) of its occurrences in tune/bar (empty when absent)."""
        keys = np.asarray(keys, dtype=np.uint64)
        return np.searchsorted(self.keys, keys, "left"), np.searchsorted(self.keys, keys, "right")


def build_span_index(corpus, indices: list[int] | None = None) -> SpanIndex:
    """The index of the tunes at `indices` of `corpus` (default: training_indices(corpus)), uncached."""
    indices = training_indices(corpus) if indices is None else list(indices)
    notes, offsets, spb, n_bars = _note_arrays(corpus)
    keys, _counts, span_offsets = span_keys_flat(notes, offsets, spb, n_bars)
    return _assemble(corpus, indices, keys, span_offsets, "built")


def _assemble(corpus, indices, keys, span_offsets, status) -> SpanIndex:
    idx = np.asarray(indices, dtype=np.int64)
    lengths = span_offsets[idx + 1] - span_offsets[idx]
    starts = np.repeat(span_offsets[idx], lengths)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    tune = np.repeat(np.arange(len(idx), dtype=np.int32), lengths)
    picked = keys[starts + within]
    order = np.lexsort((within, tune, picked))  # by key, then tune, then bar: lookups find runs in order
    return SpanIndex(picked[order], tune[order], within[order].astype(np.int32), _tunes(corpus, idx), idx, status)


def _note_arrays(corpus):
    """(notes [N, 3], note_offsets [M + 1], steps_per_bar [M], n_bars [M]) of every melody of `corpus`."""
    packed = getattr(corpus, "packed", None)
    if packed is not None:
        a = packed.arrays
        spb = a["numerator"].astype(np.int64) * 16 // np.maximum(a["denominator"].astype(np.int64), 1)
        return a["notes"], a["note_offsets"], spb, -(-a["n_steps"].astype(np.int64) // spb)
    melodies = list(corpus.melodies)
    arrays = [m.note_array() for m in melodies]
    notes = np.concatenate(arrays) if arrays else np.zeros((0, 3), dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in arrays], dtype=np.int64)])
    return (notes, offsets, np.array([m.steps_per_bar for m in melodies], dtype=np.int64),
            np.array([m.n_bars for m in melodies], dtype=np.int64))


def _tunes(corpus, idx: np.ndarray) -> list[IndexedTune]:
    packed = getattr(corpus, "packed", None)
    if packed is not None:
        recs = [packed.records[i] for i in idx.tolist()]
        return [IndexedTune(r["tune_id"], r["title"], r["meta"].get("collection", ""), r["source"]) for r in recs]
    melodies = corpus.melodies
    return [IndexedTune(m.tune_id, m.title, m.meta.get("collection", ""), m.source)
            for m in (melodies[i] for i in idx.tolist())]


# --- the cache --------------------------------------------------------------------------------------


def span_index_for(corpus, indices: list[int] | None = None, cache: bool = True, cache_dir=None) -> SpanIndex:
    """build_span_index, read from the cache when the same notes were indexed before (a real Corpus only:
    a stand-in has no packed arrays to key the entry by)."""
    indices = training_indices(corpus) if indices is None else list(indices)
    if not cache or getattr(corpus, "packed", None) is None:
        index = build_span_index(corpus, indices)
        index.cache_status = "off"
        return index
    folder = Path(cache_dir) if cache_dir else cache_root() / "originality"
    key = _entry_key(corpus, indices)
    path = folder / f"{key}.npz"
    loaded = _load(path, len(indices))
    if loaded is not None:
        keys, tune, bar, corpus_index = loaded
        return SpanIndex(keys, tune, bar, _tunes(corpus, corpus_index), corpus_index, "hit")
    index = build_span_index(corpus, indices)
    _save(folder, path, index)
    return index


def _entry_key(corpus, indices: list[int]) -> str:
    notes, offsets, spb, n_bars = _note_arrays(corpus)
    h = hashlib.sha256()
    for array, dtype in ((notes, "<i4"), (offsets, "<i8"), (spb, "<i8"), (n_bars, "<i8"),
                         (np.asarray(indices), "<i8")):
        h.update(np.ascontiguousarray(array, dtype=dtype).tobytes())
    code = hashlib.sha256()
    engine = Path(__file__).resolve().parents[1]
    for name in ("music/span_keys.py", "data/span_index.py"):
        code.update((engine / name).read_bytes())
    return cache_key({"format": INDEX_FORMAT, "notes": h.hexdigest(), "code": code.hexdigest()})


def _load(path: Path, n_tunes: int):
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = tuple(z[name] for name in _ARRAYS)
    except (OSError, ValueError, KeyError, EOFError):
        return None
    keys, tune, bar, corpus_index = arrays
    if not (keys.dtype == np.uint64 and len(keys) == len(tune) == len(bar) and len(corpus_index) == n_tunes):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used entries survive pruning
    return keys, tune.astype(np.int32), bar.astype(np.int32), corpus_index.astype(np.int64)


def _save(folder: Path, path: Path, index: SpanIndex) -> None:
    arrays = {"keys": index.keys, "tune": index.tune, "bar": index.bar, "corpus_index": index.corpus_index}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: np.savez(fh, **arrays))
        entries = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP_ENTRIES:]:
            if old != path:
                old.unlink(missing_ok=True)
        remove_stale_temporaries(folder, min_age_s=STALE_TEMPORARY_S)
    except (OSError, UserError):
        pass  # a read-only checkout still works, just without the speed-up
