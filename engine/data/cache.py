"""The on-disk cache of a tokenized corpus: one .npz of arrays (allow_pickle=False) and one JSON file.

Entries are named by a key that hashes everything the result depends on; a changed file, setting or
pipeline source gives a new key, so a stale entry is never read, only pruned. Writes go to a temporary
name first and are renamed into place: a crash mid-write leaves no half entry behind (and the next save
removes a killed writer's temporaries once they are an hour old).

ShippedCache is the bundled corpus's tokenized form that ships inside midi_data/: the same two files,
keyed by the content of the corpus's files rather than their paths and times, with paths stored
relative to the corpus folder so that any clone or install can use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from engine.core import resources
from engine.core.atomic import atomic_write, remove_stale_temporaries
from engine.core.errors import UserError
from engine.data.skipped import Skipped
from engine.music.melody import Melody, Note, key_name

KEEP_ENTRIES = 6  # a few settings or source sets side by side; older entries are removed
# The cache has no lock (several processes may fill it at once), so a temporary is only taken for a
# killed writer's leftover when it is older than any save takes.
STALE_TEMPORARY_S = 3600.0
SHIPPED_FORMAT = 1


def cache_root() -> Path:
    """$MELODY_MEMORY_CACHE, else .cache/ in a checkout, else the user's cache folder (engine.core.resources)."""
    return resources.user_cache_dir()


def cache_key(parts: dict) -> str:
    """A short hash of everything a cached result depends on."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:24]


class CorpusCache:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.npz", self.folder / f"{key}.json"

    def load(self, key: str):
        """(PackedMelodies, skipped) or None when absent or unreadable (then the caller rebuilds)."""

        npz_path, json_path = self._paths(key)
        if not (npz_path.is_file() and json_path.is_file()):
            return None
        try:
            with open(json_path, encoding="utf-8") as fh:
                doc = json.load(fh)
            if doc.get("key") != key:
                return None
            with np.load(npz_path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
            packed = PackedMelodies(arrays, doc["melodies"])
            skipped = [Skipped(s["path"], s["reason"]) for s in doc["skipped"]]
        except (OSError, ValueError, KeyError, TypeError, EOFError, json.JSONDecodeError):
            return None
        with contextlib.suppress(OSError):
            os.utime(json_path)  # recently used entries survive pruning
        return packed, skipped

    def save(self, key: str, packed: PackedMelodies, skipped) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            npz_path, json_path = self._paths(key)
            doc = {
                "key": key,
                "melodies": packed.records,
                "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
            }
            atomic_write(npz_path, lambda fh: np.savez(fh, **packed.arrays))
            atomic_write(json_path, json.dumps(doc).encode("utf-8"))
            self._prune(keep={key})
            remove_stale_temporaries(self.folder, min_age_s=STALE_TEMPORARY_S)
        except (OSError, UserError):
            pass  # a read-only checkout still works, just without the speed-up

    def _prune(self, keep: set[str]) -> None:
        entries = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP_ENTRIES:]:
            if old.stem in keep:
                continue
            for path in (old, old.with_suffix(".npz")):
                with contextlib.suppress(OSError):
                    path.unlink()


class PackedMelodies:
    """Many melodies as a few flat arrays plus one JSON-able record each (ids, titles, meta).

    This is what the cache stores and what a corpus keeps: building hundreds of thousands of Note
    objects costs more than reading the whole cache, so `melody(i)` builds one melody when asked.
    """

    ARRAY_NAMES = ("notes", "note_offsets", "n_steps", "numerator", "denominator", "tempo_qpm", "key_number",
                   "tokens", "token_offsets")

    def __init__(self, arrays: dict[str, np.ndarray], records: list[dict]):
        missing = [name for name in self.ARRAY_NAMES if name not in arrays]
        if missing:
            raise ValueError(f"cache entry lacks {missing}")
        self.arrays = arrays
        self.records = records
        n = len(records)
        if not (len(arrays["n_steps"]) == n and len(arrays["note_offsets"]) == len(arrays["token_offsets"]) == n + 1
                and arrays["note_offsets"][-1] == len(arrays["notes"])
                and arrays["token_offsets"][-1] == len(arrays["tokens"])
                and np.array_equal(np.diff(arrays["token_offsets"]), arrays["n_steps"])):
            raise ValueError("cache entry is inconsistent")
        self._note_offsets = arrays["note_offsets"].tolist()
        self._token_offsets = arrays["token_offsets"].tolist()

    @classmethod
    def from_melodies(cls, melodies: list[Melody], tokens: list[np.ndarray]) -> PackedMelodies:
        note_counts = [len(m.notes) for m in melodies]
        flat = [(n.onset, n.pitch, n.duration) for m in melodies for n in m.notes]
        arrays = {
            "notes": np.array(flat, dtype=np.int32).reshape(-1, 3),
            "note_offsets": np.concatenate([[0], np.cumsum(note_counts, dtype=np.int64)]).astype(np.int64),
            "n_steps": np.array([m.n_steps for m in melodies], dtype=np.int64),
            "numerator": np.array([m.numerator for m in melodies], dtype=np.int32),
            "denominator": np.array([m.denominator for m in melodies], dtype=np.int32),
            "tempo_qpm": np.array([m.tempo_qpm for m in melodies], dtype=np.float64),
            "key_number": np.array([m.key_number for m in melodies], dtype=np.int32),
            "tokens": np.concatenate(tokens).astype(np.int16) if tokens else np.zeros(0, np.int16),
            "token_offsets": np.concatenate([[0], np.cumsum([len(t) for t in tokens], dtype=np.int64)]).astype(np.int64),
        }
        records = [{"tune_id": m.tune_id, "title": m.title, "source": m.source, "meta": m.meta} for m in melodies]
        return cls(arrays, records)

    def __len__(self) -> int:
        return len(self.records)

    def subset(self, indices: list[int]) -> PackedMelodies:
        """The melodies at `indices` (in that order) as a new PackedMelodies."""
        a = self.arrays
        idx = np.asarray(indices, dtype=np.int64)
        arrays = {name: a[name][idx] for name in ("n_steps", "numerator", "denominator", "tempo_qpm", "key_number")}
        for flat, offsets in (("notes", "note_offsets"), ("tokens", "token_offsets")):
            starts, ends = a[offsets][idx], a[offsets][idx + 1]
            lengths = ends - starts
            # positions of every kept element in the flat array, without a Python loop per melody
            within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            arrays[flat] = a[flat][np.repeat(starts, lengths) + within]
            arrays[offsets] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return PackedMelodies(arrays, [self.records[i] for i in indices])

    def tokens(self, i: int) -> np.ndarray:
        """Melody i's tokens as int64 (what torch embeddings take), copied from the packed int16 array:
        a loaded corpus keeps its tokens once, at 2 bytes each, and only what is asked for is widened."""
        return self.arrays["tokens"][self._token_offsets[i] : self._token_offsets[i + 1]].astype(np.int64)

    def table(self) -> list[dict]:
        a = self.arrays
        rows = []
        for rec, num, den, steps, key in zip(self.records, a["numerator"].tolist(), a["denominator"].tolist(),
                                             a["n_steps"].tolist(), a["key_number"].tolist()):
            rows.append({
                "tune_id": rec["tune_id"],
                "title": rec["title"],
                "collection": rec["meta"].get("collection", ""),
                "meter": f"{num}/{den}",
                "key": key_name(key),
                "bars": -(-steps // (num * 16 // den)),
                "split": rec["meta"].get("split", ""),
                "source": rec["source"],
            })
        return rows

    def melody(self, i: int) -> Melody:
        a = self.arrays
        rec = self.records[i]
        rows = a["notes"][self._note_offsets[i] : self._note_offsets[i + 1]].tolist()
        return Melody(
            notes=tuple(Note(o, p, d) for o, p, d in rows),
            n_steps=int(a["n_steps"][i]),
            numerator=int(a["numerator"][i]),
            denominator=int(a["denominator"][i]),
            tempo_qpm=float(a["tempo_qpm"][i]),
            key_number=int(a["key_number"][i]),
            tune_id=rec["tune_id"],
            title=rec["title"],
            source=rec["source"],
            meta=rec["meta"],
        )


class ShippedCache:
    """The tokenized bundled corpus that ships in the package: `<name>.npz` + `<name>.json`.

    The JSON holds the key (a hash of the corpus files' content and the settings), the records and the
    skipped files, every path relative to the corpus folder. tests/test_corpus.py checks that it is
    exactly what a fresh parse gives; scripts/build_corpus_cache.py (`make corpus-cache`) rebuilds it.
    """

    def __init__(self, npz_path: Path, json_path: Path, corpus_dir: Path):
        self.npz_path, self.json_path = Path(npz_path), Path(json_path)
        self._prefix = str(Path(corpus_dir)) + os.sep

    def key(self) -> str | None:
        """The key it was built for, or None when it is absent or unreadable."""
        doc = self._doc()
        return doc.get("key") if doc else None

    def _doc(self) -> dict | None:
        try:
            with open(self.json_path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) and doc.get("format") == SHIPPED_FORMAT else None

    def load(self, key: str):
        """(PackedMelodies, skipped) with absolute paths, or None when absent, damaged or built for another key."""

        doc = self._doc()
        if not doc or doc.get("key") != key:
            return None
        try:
            with np.load(self.npz_path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
            records = [dict(rec, source=self._prefix + rec["source"]) for rec in doc["melodies"]]
            skipped = [Skipped(self._prefix + s["path"], s["reason"]) for s in doc["skipped"]]
            return PackedMelodies(arrays, records), skipped
        except (OSError, ValueError, KeyError, TypeError, EOFError):
            return None

    def save(self, key: str, packed: PackedMelodies, skipped) -> None:
        """Write it (compressed: it is committed to the repository); every path must lie in the corpus folder."""
        def relative(path: str) -> str:
            if not path.startswith(self._prefix):
                raise ValueError(f"{path} is not inside {self._prefix}")
            return path[len(self._prefix):]

        doc = {
            "format": SHIPPED_FORMAT,
            "key": key,
            "melodies": [dict(rec, source=relative(rec["source"])) for rec in packed.records],
            "skipped": [{"path": relative(s.path), "reason": s.reason} for s in skipped],
        }
        atomic_write(self.npz_path, lambda fh: np.savez_compressed(fh, **packed.arrays))
        atomic_write(self.json_path, (json.dumps(doc, indent=0, sort_keys=True) + "\n").encode("utf-8"))
