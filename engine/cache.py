"""The on-disk cache of a tokenized corpus: one .npz of arrays (allow_pickle=False) and one JSON file.

Entries are named by a key that hashes everything the result depends on; a changed file, setting or
pipeline source gives a new key, so a stale entry is never read, only pruned. Writes go to a temporary
name first and are renamed into place: a crash mid-write leaves no half entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .melody import Melody, Note

KEEP_ENTRIES = 6  # a few settings or source sets side by side; older entries are removed


def cache_root() -> Path:
    """$MELODY_MEMORY_CACHE, else .cache/ in the checkout."""
    env = os.environ.get("MELODY_MEMORY_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / ".cache"


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
        """(melodies, tokens, skipped) or None when absent or unreadable (then the caller rebuilds)."""
        from .corpus import Skipped

        npz_path, json_path = self._paths(key)
        if not (npz_path.is_file() and json_path.is_file()):
            return None
        try:
            with open(json_path, encoding="utf-8") as fh:
                doc = json.load(fh)
            with np.load(npz_path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
            if doc.get("key") != key:
                return None
            melodies, tokens = _unpack(arrays, doc["melodies"])
            skipped = [Skipped(s["path"], s["reason"]) for s in doc["skipped"]]
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
            return None
        os.utime(json_path)  # recently used entries survive pruning
        return melodies, tokens, skipped

    def save(self, key: str, melodies: list[Melody], tokens: list[np.ndarray], skipped) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            npz_path, json_path = self._paths(key)
            arrays = _pack(melodies, tokens)
            doc = {
                "key": key,
                "melodies": [
                    {"tune_id": m.tune_id, "title": m.title, "source": m.source, "meta": m.meta} for m in melodies
                ],
                "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
            }
            _atomic_write(npz_path, lambda fh: np.savez(fh, **arrays))
            _atomic_write(json_path, lambda fh: fh.write(json.dumps(doc).encode("utf-8")))
            self._prune(keep={key})
        except OSError:
            pass  # a read-only checkout still works, just without the speed-up

    def _prune(self, keep: set[str]) -> None:
        entries = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP_ENTRIES:]:
            if old.stem in keep:
                continue
            for path in (old, old.with_suffix(".npz")):
                try:
                    path.unlink()
                except OSError:
                    pass


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _pack(melodies: list[Melody], tokens: list[np.ndarray]) -> dict[str, np.ndarray]:
    note_counts = [len(m.notes) for m in melodies]
    notes = np.zeros((sum(note_counts), 3), dtype=np.int32)
    row = 0
    for m in melodies:
        for n in m.notes:
            notes[row] = (n.onset, n.pitch, n.duration)
            row += 1
    return {
        "notes": notes,
        "note_offsets": np.concatenate([[0], np.cumsum(note_counts)]).astype(np.int64),
        "n_steps": np.array([m.n_steps for m in melodies], dtype=np.int64),
        "numerator": np.array([m.numerator for m in melodies], dtype=np.int32),
        "denominator": np.array([m.denominator for m in melodies], dtype=np.int32),
        "tempo_qpm": np.array([m.tempo_qpm for m in melodies], dtype=np.float64),
        "key_number": np.array([m.key_number for m in melodies], dtype=np.int32),
        "tokens": np.concatenate(tokens).astype(np.int16) if tokens else np.zeros(0, np.int16),
    }


def _unpack(arrays: dict, records: list[dict]):
    offsets = arrays["note_offsets"].tolist()
    n_steps = arrays["n_steps"].tolist()
    if len(records) != len(n_steps) or len(offsets) != len(n_steps) + 1:
        raise ValueError("cache entry is inconsistent")
    note_rows = arrays["notes"].tolist()
    numerators = arrays["numerator"].tolist()
    denominators = arrays["denominator"].tolist()
    tempos = arrays["tempo_qpm"].tolist()
    keys = arrays["key_number"].tolist()
    all_tokens = arrays["tokens"].astype(np.int64)
    if len(all_tokens) != sum(n_steps):
        raise ValueError("cache entry is inconsistent")
    melodies, tokens = [], []
    step = 0
    for i, rec in enumerate(records):
        notes = tuple(Note(o, p, d) for o, p, d in note_rows[offsets[i] : offsets[i + 1]])
        melodies.append(
            Melody(
                notes=notes,
                n_steps=n_steps[i],
                numerator=numerators[i],
                denominator=denominators[i],
                tempo_qpm=tempos[i],
                key_number=keys[i],
                tune_id=rec["tune_id"],
                title=rec["title"],
                source=rec["source"],
                meta=rec["meta"],
            )
        )
        tokens.append(all_tokens[step : step + n_steps[i]])
        step += n_steps[i]
    return melodies, tokens
