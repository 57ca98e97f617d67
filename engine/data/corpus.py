"""A corpus: every melody of a set of MIDI files or folders, tokenized, de-duplicated, split and cached.

`load_corpus()` with no sources loads the bundled corpus in midi_data/. The first load parses every
file (optionally in several processes); the result goes to a cache (.npz arrays + JSON, never pickle)
keyed by the files' paths, sizes and mtimes, the extraction settings and the pipeline's source code, so
the second load only stats the files and reads two files back. The bundled corpus also ships its
tokenized form (midi_data/tokenized.*, engine.data.cache.ShippedCache), keyed by the files' content, so
that a fresh install's first load parses nothing.

Duplicates: two melodies are the same when their tokens are, after transposing both so that their
first notes coincide (content_key): the same notes on the same 16th grid from the first bar line,
whatever the tempo, key, octave, meter, title, instrument or file. The first in load order is kept
(sources in the order given; in a folder, its files before its subfolders, each sorted by name), every
later copy is reported as skipped, "duplicate of <id>". A file's split comes from the content of its
first melody, so copies cannot straddle splits. Near-copies (a triplet or a grace note quantised
differently, engine/data/near_copies.py) are duplicates too, so only one of them is left in any split;
except in the bundled corpus, which keeps the melodies and split its shipped models were trained on.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core import resources
from engine.core.errors import UserError
from engine.core.processes import (
    ParentLink,
    default_stop_signals,
    parent_link,
    worker_context,
)
from engine.data.cache import SHIPPED_FORMAT, CorpusCache, PackedMelodies, ShippedCache, cache_key, cache_root
from engine.data.near_copies import first_copies
from engine.data.skipped import Skipped
from engine.music.melody import Melody
from engine.music.midi_io import ExtractSettings, UnusableFile, load_midi_melodies, printable
from engine.music.tokens import FIRST_PITCH_TOKEN, TokenConfig, encode

BUNDLED_DIR = resources.bundled_corpus_dir()
MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".smf")
SPLITS = ("train", "valid", "test")
DUPLICATE = "duplicate of "  # the start of a copy's reason in Corpus.skipped
# Starting a process costs about a second (it imports numpy and mido); a few dozen files parse faster here.
PARALLEL_MIN_FILES = 64

# progress(done, total): called as files are parsed on a cold load (from the loading thread); a Qt
# signal's emit is fine. A warm load never calls it.
Progress = Callable[[int, int], None]


class NoUsableMelodies(UserError):
    """Nothing in the sources gave a melody. `skipped` holds every file's reason (the message shows a
    few; a report should list them all)."""

    def __init__(self, sources: list[str], skipped: list[Skipped]):
        self.sources = sources
        self.skipped = skipped
        super().__init__(_nothing_usable(sources, skipped))


def content_key(tokens) -> str:
    """A hash of a melody's tokens with every pitch taken relative to its first note: the same for a
    copy in another key, octave, tempo, meter or file (module docstring), different for other notes."""
    t = np.asarray(tokens, dtype=np.int64)
    is_pitch = t >= FIRST_PITCH_TOKEN
    if is_pitch.any():
        first = t[int(np.argmax(is_pitch))]
        t = np.where(is_pitch, t - first + 1000, t)  # intervals, in a range apart from HOLD/REST/PAD
    return hashlib.sha1(t.astype("<i4").tobytes()).hexdigest()[:16]


def split_of_content(key: str) -> str:
    """train/valid/test (90/5/5) from a content key: the same tune always lands in the same split,
    whatever its file is called and whatever else is in the corpus."""
    bucket = int(key[:8], 16) % 100
    return "train" if bucket < 90 else "valid" if bucket < 95 else "test"


def split_of_melody(melody: Melody, cfg: TokenConfig = TokenConfig()) -> str:
    """The split a file whose first melody is `melody` lands in (tests pick tunes for each split with it)."""
    return split_of_content(content_key(encode(melody, cfg)))


class MelodyList(Sequence):
    """The corpus's melodies, each built from the packed arrays on first access and then kept."""

    def __init__(self, packed: PackedMelodies, built: list[Melody] | None = None):
        self._packed = packed
        self._built: list[Melody | None] = list(built) if built is not None else [None] * len(packed)

    def __len__(self) -> int:
        return len(self._built)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        melody = self._built[index]
        if melody is None:
            melody = self._built[index] = self._packed.melody(index)
        return melody

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def table(self) -> list[dict]:
        """Rows for lists and tables without building any melody (see Corpus.table)."""
        return self._packed.table()

    def __repr__(self) -> str:
        return f"<{len(self)} melodies>"


class Corpus:
    """Melodies plus the report of what was skipped and why (the data behind `main.py corpus`)."""

    def __init__(self, packed: PackedMelodies, skipped, files, settings, sources, cache_status,
                 built: list[Melody] | None = None):
        self._packed = packed
        self.melodies: MelodyList = MelodyList(packed, built)
        self.skipped: list[Skipped] = skipped  # every file and copy left out, each with its reason
        self.files: list[str] = files  # every MIDI file examined (printable names)
        self.fingerprint: str = content_fingerprint(packed, settings)
        self.settings: ExtractSettings = settings
        self.sources: list[str] = sources
        self.cache_status: str = cache_status  # "hit", "shipped", "built" or "off"

    @property
    def token_config(self) -> TokenConfig:
        return self.settings.token_config

    @property
    def packed(self) -> PackedMelodies:
        """Every melody as flat arrays: for measures that read all the notes at once (the span index)."""
        return self._packed

    def __len__(self) -> int:
        return len(self._packed)

    def _indices(self, name: str | None) -> list[int]:
        if name is None:
            return list(range(len(self._packed)))
        _check_split(name)
        return [i for i, rec in enumerate(self._packed.records) if rec["meta"].get("split") == name]

    def split(self, name: str) -> list[Melody]:
        return [self.melodies[i] for i in self._indices(name)]

    def tokens(self, name: str | None = None) -> list[np.ndarray]:
        """Token arrays (int64) of a split, or of every melody when name is None."""
        return [self._packed.tokens(i) for i in self._indices(name)]

    def find(self, id_or_title: str) -> Melody:
        """The melody with this tune id, else the one with this title (case-insensitive)."""
        records = self._packed.records
        for i, rec in enumerate(records):
            if rec["tune_id"] == id_or_title:
                return self.melodies[i]
        wanted = id_or_title.casefold()
        for i, rec in enumerate(records):
            if rec["title"].casefold() == wanted:
                return self.melodies[i]
        raise UserError(f"no tune '{id_or_title}' in the corpus ({len(records)} melodies)")

    def table(self) -> list[dict]:
        """One row per melody for lists and tables (tune_id, title, collection, meter, key, bars, split,
        source), read from the packed arrays: showing 4,000 tunes builds none of their notes."""
        return self._packed.table()

    def summary(self) -> dict:
        """Computed from the packed arrays, so that reporting never builds every melody."""
        a, records = self._packed.arrays, self._packed.records
        splits = {name: 0 for name in SPLITS}
        meters: dict[str, int] = {}
        for rec, num, den in zip(records, a["numerator"].tolist(), a["denominator"].tolist()):
            splits[rec["meta"].get("split", "train")] += 1
            meters[f"{num}/{den}"] = meters.get(f"{num}/{den}", 0) + 1
        steps_per_bar = a["numerator"].astype(np.int64) * 16 // np.maximum(a["denominator"], 1)
        # every part of a file carries the file's warnings: list each once
        pairs = dict.fromkeys((rec["source"], w) for rec in records for w in rec["meta"].get("warnings", ()))
        warnings = [{"path": path, "warning": w} for path, w in pairs]
        return {
            "sources": self.sources,
            "files": len(self.files),
            "melodies": len(records),
            "bars": int((-(-a["n_steps"] // np.maximum(steps_per_bar, 1))).sum()),
            "tokens": int(a["n_steps"].sum()),
            "notes": len(a["notes"]),
            "folded_notes": sum(rec["meta"].get("folded_notes", 0) for rec in records),
            "splits": splits,
            "meters": dict(sorted(meters.items(), key=lambda kv: -kv[1])),
            "skipped": [s.to_dict() for s in self.skipped],
            "duplicates": sum(s.reason.startswith(DUPLICATE) for s in self.skipped),
            "warnings": warnings,
            "token_config": self.token_config.to_dict(),
            "settings": self.settings.to_dict(),
            "fingerprint": self.fingerprint,
            "cache": self.cache_status,
        }


def content_fingerprint(packed: PackedMelodies, settings: ExtractSettings) -> str:
    """A hash of what models learn from: every melody's tokens, tune id and split, and the token settings.

    Checkpoints record it, and evaluation compares it to keep test tunes unseen. Unlike the cache key
    it ignores where the files lie, when they were touched and the pipeline's source code, so a fresh
    clone of the bundled corpus has the fingerprint the bundled models were trained on."""
    h = hashlib.sha256()
    ids = [(rec["tune_id"], rec["meta"].get("split")) for rec in packed.records]
    h.update(json.dumps([settings.token_config.to_dict(), ids]).encode("utf-8"))
    h.update(np.asarray(packed.arrays["tokens"], dtype="<i2").tobytes())
    h.update(np.asarray(packed.arrays["token_offsets"], dtype="<i8").tobytes())
    return h.hexdigest()[:24]


def _check_split(name: str) -> None:
    if name not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {name!r}")


# ---------------------------------------------------------------------------------------------------
# Finding the files


@dataclass(frozen=True)
class _Source:
    path: str  # absolute path of the MIDI file as the OS gave it (undecodable bytes as surrogates)
    tune_id: str  # printable (midi_io.printable), like everything shown or written as JSON
    title: str | None
    collection: str


def _read_manifest(folder: Path, skipped: list[Skipped]) -> dict[str, dict]:
    """Manifest rows keyed by the file's path relative to the folder ("<collection>/<id>.mid").

    A folder's manifest.csv may be another tool's: one that is not UTF-8 CSV is reported and ignored
    (its files load under their own names)."""
    manifest = folder / "manifest.csv"
    try:
        if not manifest.is_file():
            return {}
        rows = {}
        with open(manifest, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                tune_id, collection = row.get("id"), row.get("collection")
                if isinstance(tune_id, str) and isinstance(collection, str) and tune_id and collection:
                    rows[f"{collection}/{tune_id}.mid"] = row
        return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        why = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else _first_line(exc)
        skipped.append(Skipped(printable(manifest), f"manifest ignored ({why}); its folder's files load by name"))
        return {}


def _first_line(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:80]


def path_kind(path: Path) -> str | None:
    """"dir", "file" (anything else that exists) or None when absent; a name the OS refuses (too long,
    a NUL byte) raises UserError naming it, which the scan reports as a skipped source."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot be read ({_first_line(exc)})") from None
    return "dir" if stat.S_ISDIR(st.st_mode) else "file"


def _scan(sources: Iterable, skipped: list[Skipped]) -> list[_Source]:
    found = _scan_all(sources, skipped)
    seen: set[str] = set()
    unique = []
    for src in found:  # a file reached twice (overlapping sources) counts once
        if src.path not in seen:
            seen.add(src.path)
            unique.append(src)
    return unique


def _scan_all(sources: Iterable, skipped: list[Skipped]) -> list[_Source]:
    found: list[_Source] = []
    for raw in sources:
        root = Path(os.fsdecode(raw)).expanduser()  # bytes from the OS are fine too
        try:
            kind = path_kind(root)
        except UserError as exc:
            skipped.append(Skipped(printable(root), str(exc)))
            continue
        if kind is None:
            skipped.append(Skipped(printable(root), "does not exist"))
            continue
        if kind == "file":  # a file (or a FIFO or device, which the reader refuses by name)
            found.append(_Source(str(root.resolve()), printable(root.name), None, printable(root.parent.name)))
            continue
        root = root.resolve()
        if not os.access(root, os.R_OK | os.X_OK):
            skipped.append(Skipped(printable(root), "unreadable folder (permission denied)"))
            continue
        manifest = _read_manifest(root, skipped)
        before = len(found)

        unreadable = []

        def onerror(exc: OSError, unreadable=unreadable, root=root) -> None:  # bound now: os.walk calls it in this pass
            why = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
            unreadable.append(Skipped(printable(exc.filename or root), f"unreadable folder ({why})"))

        root_str = str(root)
        for dirpath, dirnames, filenames in os.walk(root_str, onerror=onerror):
            dirnames.sort()
            # plain string paths: pathlib costs more than the rest of a warm load on a large corpus
            rel_dir = dirpath[len(root_str) + 1 :].replace(os.sep, "/")
            for name in sorted(filenames):
                if not name.lower().endswith(MIDI_SUFFIXES):
                    continue
                rel = f"{rel_dir}/{name}" if rel_dir else name
                full = os.path.join(dirpath, name)
                row = manifest.get(rel)
                if row:
                    found.append(_Source(full, row["id"], row.get("title") or None, row["collection"]))
                else:
                    found.append(_Source(full, printable(rel), None, printable(root.name)))
        skipped.extend(unreadable)
        if len(found) == before and not unreadable:
            skipped.append(Skipped(printable(root), "no MIDI files (.mid, .midi) in this folder"))
    return found


def _file_stamps(files: list[_Source]) -> list:
    stamps = []
    for src in files:
        try:
            st = os.stat(src.path)
            stamps.append([src.path, st.st_size, st.st_mtime_ns, st.st_mode])
        except OSError as exc:
            stamps.append([src.path, -1, 0, str(exc.errno)])
    return stamps


# ---------------------------------------------------------------------------------------------------
# Parsing (in this process or in several)


def _parse_one(src: _Source, settings: ExtractSettings):
    try:
        melodies = load_midi_melodies(src.path, settings, tune_id=src.tune_id, title=src.title)
    except UnusableFile as exc:
        return [], exc.reason
    except UserError as exc:
        return [], printable(str(exc))
    except MemoryError:
        return [], "too large to parse"
    except Exception as exc:  # a bug met on one strange file must not sink the folder
        return [], printable(f"could not be read (internal error: {type(exc).__name__}: {exc})")
    return melodies, None


def _parse_chunk(chunk: list[_Source], settings_dict: dict):
    """In a worker process: parse, tag and encode each file, and send back its melodies packed as arrays
    (a _Packed) rather than as Melody objects: unpickling ~700k Note objects cost the waiting parent more
    than a second of serial work on the bundled corpus, which capped the speed-up of two processes."""
    settings = ExtractSettings.from_dict(settings_dict)
    out = []
    for src in chunk:
        melodies, reason = _parse_one(src, settings)
        if reason is None:
            tokens = _tag_and_encode(melodies, src, settings)
            packed = PackedMelodies.from_melodies(melodies, tokens)
            melodies = _Packed(packed.arrays, packed.records)
        out.append((melodies, reason))
    return out


@dataclass(frozen=True)
class _Packed:
    """One file's melodies as PackedMelodies arrays and records (what a worker process returns)."""
    arrays: dict
    records: list


def _tag_and_encode(melodies: list[Melody], src: _Source, settings: ExtractSettings) -> list[np.ndarray]:
    """The tokens of one file's melodies; each melody's meta gets its content key, its collection and
    the file's split (from its first melody's content: the parts of a file stay together)."""
    tokens = [encode(m, settings.token_config) for m in melodies]
    keys = [content_key(t) for t in tokens]
    for melody, key in zip(melodies, keys):
        melody.meta["content"] = key
        melody.meta["split"] = split_of_content(keys[0])
        melody.meta["collection"] = src.collection
    return tokens


def _concat_packed(parts: list[_Packed]) -> PackedMelodies:
    """The PackedMelodies that from_melodies would give for all the parts' melodies, in order."""
    arrays = {}
    for name in PackedMelodies.ARRAY_NAMES:
        if name.endswith("_offsets"):
            continue
        arrays[name] = np.concatenate([p.arrays[name] for p in parts])
    for name, base in (("note_offsets", "notes"), ("token_offsets", "tokens")):
        shifted, total = [np.zeros(1, dtype=np.int64)], 0
        for p in parts:
            shifted.append(p.arrays[name][1:] + total)
            total += len(p.arrays[base])
        arrays[name] = np.concatenate(shifted).astype(np.int64)
    return PackedMelodies(arrays, [rec for p in parts for rec in p.records])


def _parse_all(files: list[_Source], settings: ExtractSettings, progress, workers: int):
    results = []
    total = len(files)
    if workers <= 1 or total < max(2 * workers, PARALLEL_MIN_FILES):
        for i, src in enumerate(files):
            results.append(_parse_one(src, settings))
            if progress:
                progress(i + 1, total)
        return results
    try:
        return _parse_in_processes(files, settings, progress, workers)
    except BrokenProcessPool:
        # A worker died (killed, out of memory, or no importable __main__ to spawn from): parse here.
        return _parse_all(files, settings, progress, 1)


def _start_parser(parent: ParentLink) -> None:
    """A parser process: the parent's environment; it ends with the parent (it holds nothing to save)."""
    parent.adopt()
    default_stop_signals()
    parent.exit_when_parent_dies()


def _parse_in_processes(files: list[_Source], settings: ExtractSettings, progress, workers: int):
    total = len(files)
    # Never a fork of this process (the GUI calls this from a worker thread of a Qt process): worker_context.
    n_chunks = min(total, workers * 8)
    chunks = [files[i::n_chunks] for i in range(n_chunks)]  # interleaved, so big folders spread evenly
    by_chunk: dict[int, list] = {}
    done = 0
    with parent_link() as parent, ProcessPoolExecutor(workers, mp_context=worker_context(),
                                                      initializer=_start_parser, initargs=(parent,)) as pool:
        futures = {pool.submit(_parse_chunk, chunk, settings.to_dict()): i for i, chunk in enumerate(chunks)}
        for fut in as_completed(futures):
            i = futures[fut]
            by_chunk[i] = fut.result()
            done += len(chunks[i])
            if progress:
                progress(done, total)
    results = [None] * total
    for i, chunk_results in by_chunk.items():
        for j, res in enumerate(chunk_results):
            results[i + j * n_chunks] = res
    return results


# ---------------------------------------------------------------------------------------------------
# Loading


def _pipeline_version() -> str:
    """Hash of the code that turns files into tokens: editing it invalidates every cache."""
    h = hashlib.sha256()
    engine = Path(__file__).resolve().parent.parent
    for name in ("music/midi_io.py", "data/corpus.py", "data/near_copies.py", "music/melody.py", "music/tokens.py", "data/cache.py",
                 "data/skipped.py"):
        h.update((engine / name).read_bytes())
    return h.hexdigest()[:16]


def load_corpus(
    sources=None,
    settings: ExtractSettings = ExtractSettings(),
    progress: Progress | None = None,
    workers: int = 1,
    cache: bool = True,
    cache_dir=None,
    allow_empty: bool = False,
    shipped: bool = True,
) -> Corpus:
    """Load MIDI files and folders (None: the bundled corpus) into a Corpus.

    A missing path, an unreadable folder, a bad file or a copy of a melody already loaded becomes a
    `Skipped` entry with its reason; the rest still loads. Raises NoUsableMelodies (a UserError) when
    nothing usable is found, unless allow_empty (the CLI's report). The bundled corpus comes from its
    shipped tokenized form when that matches the files' content (shipped=False parses them instead).
    """
    if sources is None:
        if not BUNDLED_DIR.is_dir():
            raise UserError(f"the bundled corpus is missing: {BUNDLED_DIR} does not exist")
        sources = [BUNDLED_DIR]
    if isinstance(sources, (str, bytes, os.PathLike)):
        sources = [sources]
    source_names = [_source_name(s) for s in sources]
    skipped: list[Skipped] = []
    files = _scan(sources, skipped)
    key_parts = {
        "version": _pipeline_version(),
        "settings": settings.to_dict(),
        "sources": source_names,
        "files": [[s.path, s.tune_id, s.title, s.collection] for s in files],
        "stamps": _file_stamps(files),
    }
    store = CorpusCache(Path(cache_dir) if cache_dir else cache_root() / "corpus") if cache else None
    key = cache_key(key_parts)

    loaded = store.load(key) if store else None
    built = None
    if loaded is not None:
        packed, parsed_skipped = loaded
        status = "hit"
    else:
        loaded = _load_shipped(source_names, files, settings) if shipped else None
        if loaded is not None:
            (packed, parsed_skipped), status = loaded, "shipped"
        else:
            bundled = source_names == [printable(BUNDLED_DIR.resolve())]
            packed, built, parsed_skipped = _build(files, settings, progress, workers, tolerant=not bundled)
            status = "off"
        if store and len(packed):  # the next load only stats the files; a command that found nothing writes nothing
            store.save(key, packed, parsed_skipped)
            status = "built" if status == "off" else status
    corpus = Corpus(packed, skipped + parsed_skipped, [printable(s.path) for s in files], settings,
                    source_names, status, built)
    if not len(corpus) and not allow_empty:
        raise NoUsableMelodies(source_names, corpus.skipped)
    return corpus


def is_bundled(corpus) -> bool:
    """Whether `corpus` is the bundled corpus (and not a folder or files of the person's own)."""
    return list(corpus.sources) == [_source_name(BUNDLED_DIR)]


def _source_name(raw) -> str:
    """A source as the reports show it: its absolute path when it exists, else as given (printable)."""
    path = Path(os.fsdecode(raw)).expanduser()
    try:
        return printable(path.resolve()) if path.exists() else printable(path)
    except (OSError, ValueError):  # a name the OS refuses: the scan reports it
        return printable(path)


def shipped_cache() -> ShippedCache:
    npz, json_path = resources.shipped_cache_paths()
    return ShippedCache(npz, json_path, BUNDLED_DIR)


def bundled_content_key(files: list[_Source], settings: ExtractSettings) -> str:
    """A hash of everything the bundled corpus's tokens depend on but the code: each file's place,
    manifest entry and bytes, and the settings. Not paths or times, which differ in every clone."""
    h = hashlib.sha256(json.dumps([SHIPPED_FORMAT, settings.to_dict()]).encode("utf-8"))
    for src in files:
        rel = Path(os.path.relpath(src.path, BUNDLED_DIR)).as_posix()
        h.update(json.dumps([rel, src.tune_id, src.title, src.collection]).encode("utf-8"))
        with open(src.path, "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()[:24]


def rebuild_shipped_cache(workers: int = 1, progress: Progress | None = None) -> Corpus:
    """Parse the bundled corpus afresh (default settings) and write its shipped tokenized form
    (scripts/build_corpus_cache.py, `make corpus-cache`). Returns the corpus it wrote."""
    settings = ExtractSettings()
    skipped: list[Skipped] = []
    files = _scan([BUNDLED_DIR], skipped)
    packed, built, parsed_skipped = _build(files, settings, progress, workers, tolerant=False)
    skipped += parsed_skipped
    shipped_cache().save(bundled_content_key(files, settings), packed, skipped)
    return Corpus(packed, skipped, [printable(s.path) for s in files], settings,
                  [printable(BUNDLED_DIR.resolve())], "off", built)


def _load_shipped(source_names: list[str], files: list[_Source], settings: ExtractSettings):
    """(PackedMelodies, skipped) of the bundled corpus from the shipped cache, or None when the sources
    are not the bundled corpus or the shipped cache was built from other files or settings."""
    if source_names != [printable(BUNDLED_DIR.resolve())]:
        return None
    store = shipped_cache()
    if store.key() is None:
        return None
    try:
        key = bundled_content_key(files, settings)
    except OSError:
        return None  # a file went missing or unreadable: the parse reports which
    return store.load(key)


def _build(files: list[_Source], settings: ExtractSettings, progress, workers: int, tolerant: bool = True):
    """(PackedMelodies, the Melody objects when parsed here else None, skipped files). `tolerant`: near-copies
    are duplicates too (every corpus but the bundled one, whose split its shipped models were trained on)."""
    results = _parse_all(files, settings, progress, workers)
    melodies: list[Melody] = []
    tokens: list[np.ndarray] = []
    parts: list[_Packed] = []
    skipped: list[Skipped] = []
    for src, (file_melodies, reason) in zip(files, results):
        if reason is not None:
            skipped.append(Skipped(printable(src.path), reason))
        elif isinstance(file_melodies, _Packed):  # parsed, tagged and encoded in a worker process
            parts.append(file_melodies)
        else:
            tokens.extend(_tag_and_encode(file_melodies, src, settings))
            melodies.extend(file_melodies)
    if parts:  # one path or the other: a fallback to serial parsing starts again from the first file
        packed, melodies = _concat_packed(parts), None
    else:
        packed = PackedMelodies.from_melodies(melodies, tokens)
    keep, duplicates = _first_copies(packed, tolerant)
    if duplicates:
        packed = packed.subset(keep)
        melodies = [melodies[i] for i in keep] if melodies is not None else None
    return packed, melodies, skipped + duplicates


def _first_copies(packed: PackedMelodies, tolerant: bool) -> tuple[list[int], list[Skipped]]:
    """Indices of the melodies to keep (the first of each content, or of each near-copy group with
    `tolerant`: engine/data/near_copies.py, in load order) and a Skipped entry for every later copy,
    naming the melody it repeats."""
    keep, copies = first_copies(packed.records, packed.tokens, tolerant)
    duplicates = []
    for i, of in copies:
        rec = packed.records[i]
        part = rec["meta"].get("part")
        where = rec["source"] + (f" (part {part})" if part else "")
        duplicates.append(Skipped(where, f"{DUPLICATE}{of}"))
    return keep, duplicates


def _nothing_usable(sources: list[str], skipped: list[Skipped]) -> str:
    where = ", ".join(sources) if sources else "no sources"
    if not skipped:
        return f"no usable melodies in {where}"
    shown = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    return f"no usable melodies in {where}: {shown}{more}"
