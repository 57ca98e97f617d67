"""Loading folders of MIDI files: the per-file report, splits, the cache, `main.py corpus`, the bundled corpus."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import midi_factory as mf
import numpy as np
import pytest

from engine.corpus import BUNDLED_DIR, ExtractSettings, load_corpus, split_of
from engine.errors import UserError
from engine.tokens import decode, encode


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MELODY_MEMORY_CACHE", str(folder))
    return folder


def everyday_folder(root: Path) -> Path:
    """What a user's MIDI folder looks like: band arrangements, a format-0 file, tempo and meter changes,
    a subfolder, plus a few files that give no melody and a file that is not MIDI at all."""
    bars = 8
    mf.write(root / "band.mid",
             mf.track(mf.chord_notes(bars), name="Piano"),
             mf.track(mf.tune_notes(bars, seed=1, low=36, high=48), name="Bass", channel=1, program=33),
             mf.track(mf.drum_notes(bars), name="Drums", channel=9),
             mf.track(mf.tune_notes(bars, seed=2, low=67, high=84), name="Fiddle", channel=2, program=40, jitter=15))
    mf.write_format0(root / "type0.mid", mf.track(mf.chord_notes(bars), channel=0),
                     mf.track(mf.tune_notes(bars, seed=3, low=72, high=86), channel=1))
    mf.write(root / "reels" / "rubato.mid", mf.track(mf.tune_notes(12, seed=4), name="Tin whistle"),
             conductor_track=mf.conductor(tempos=((0, 100.0), (40, 132.0), (90, 80.0))))
    mf.write(root / "reels" / "medley.mid", mf.track(mf.tune_notes(6, seed=5) + mf.tune_notes(8, 12, seed=6, start=96),
                                                     name="Melody"),
             conductor_track=mf.conductor(meters=((0, 4, 4), (96, 3, 4))))
    mf.write(root / "drums.mid", mf.track(mf.drum_notes(8), name="Kit", channel=9))
    mf.simple_tune(root / "short.mid", bars=2)
    (root / "broken.mid").write_text("this is not MIDI\n")
    (root / "README.txt").write_text("my tunes\n")
    return root


def reasons(corpus) -> dict[str, str]:
    return {Path(s.path).name: s.reason for s in corpus.skipped}


def test_everyday_folder_loads_and_reports_each_skipped_file(tmp_path, cache_dir):
    root = everyday_folder(tmp_path / "tunes")
    corpus = load_corpus([root])
    assert len(corpus.files) == 7  # README.txt is not a MIDI file name: not examined, not reported
    ids = sorted(m.tune_id for m in corpus.melodies)
    assert ids == ["band.mid", "reels/medley.mid", "reels/medley.mid#2", "reels/rubato.mid", "type0.mid"]
    by_id = {m.tune_id: m for m in corpus.melodies}
    assert by_id["band.mid"].meta["track"] == "Fiddle"
    assert by_id["band.mid"].n_bars == 8
    assert by_id["reels/medley.mid#2"].meter == "3/4"
    assert by_id["reels/medley.mid#2"].meta["split"] == by_id["reels/medley.mid"].meta["split"]
    assert all(m.meta["collection"] == "tunes" for m in corpus.melodies)
    assert reasons(corpus) == {"drums.mid": "drums only", "short.mid": "too short (2 bars < 4)",
                               "broken.mid": "not a MIDI file (it is text)"}
    summary = corpus.summary()
    assert summary["melodies"] == 5 and summary["files"] == 7
    assert summary["bars"] == 8 + 6 + 8 + 12 + 8
    assert summary["tokens"] == sum(len(t) for t in corpus.tokens())
    assert sum(summary["splits"].values()) == 5
    json.dumps(summary)  # the GUI and --json show it as is


def test_missing_path_and_empty_folder_are_reported_and_the_rest_loads(tmp_path, cache_dir):
    good = mf.simple_tune(tmp_path / "good" / "a.mid", bars=8)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing here")
    corpus = load_corpus([good.parent, empty, tmp_path / "missing"])
    assert len(corpus.melodies) == 1
    assert {(Path(s.path).name, s.reason) for s in corpus.skipped} == {
        ("empty", "no MIDI files (.mid, .midi) in this folder"),
        ("missing", "does not exist"),
    }


def test_an_unexpected_failure_on_one_file_is_reported_and_the_rest_loads(tmp_path, cache_dir, monkeypatch):
    import engine.corpus as corpus_module

    mf.simple_tune(tmp_path / "fine.mid", bars=8)
    mf.simple_tune(tmp_path / "strange.mid", bars=8)
    real = corpus_module.load_midi_melodies

    def flaky(path, *args, **kwargs):
        if Path(path).name == "strange.mid":
            raise IndexError("list index out of range")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(corpus_module, "load_midi_melodies", flaky)
    corpus = load_corpus([tmp_path], cache=False)
    assert [m.tune_id for m in corpus.melodies] == ["fine.mid"]
    assert reasons(corpus) == {"strange.mid": "could not be read (internal error: IndexError: list index out of range)"}


def test_nothing_usable_is_an_error_naming_the_reasons(tmp_path, cache_dir):
    (tmp_path / "bad.mid").write_bytes(b"")
    with pytest.raises(UserError, match=r"no usable melodies .*bad\.mid: empty file"):
        load_corpus([tmp_path])
    corpus = load_corpus([tmp_path], allow_empty=True)
    assert corpus.melodies == [] and reasons(corpus) == {"bad.mid": "empty file"}


def test_unreadable_folders_are_reported_and_the_rest_loads(tmp_path, cache_dir, monkeypatch):
    root = tmp_path / "root"
    mf.simple_tune(root / "ok.mid", bars=8)
    locked = root / "private"
    mf.simple_tune(locked / "hidden.mid", bars=8)
    other = tmp_path / "other"
    mf.simple_tune(other / "b.mid", bars=8)
    # Tests run as root in CI, where chmod 000 does not stop reading: the refusal is simulated where the
    # loader meets it (listing a subfolder, checking a source folder).
    real_scandir, real_access = os.scandir, os.access

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    def access(path, mode, **kwargs):
        return False if Path(path) == other else real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "access", access)
    corpus = load_corpus([root, other], cache=False)
    assert [m.tune_id for m in corpus.melodies] == ["ok.mid"]
    assert {(s.path, s.reason) for s in corpus.skipped} == {
        (str(locked), "unreadable folder (permission denied)"),
        (str(other), "unreadable folder (permission denied)"),
    }


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="running as root: chmod 000 does not stop root from reading (simulated above)")
def test_really_unreadable_folder(tmp_path, cache_dir):
    mf.simple_tune(tmp_path / "ok.mid", bars=8)
    locked = tmp_path / "locked"
    mf.simple_tune(locked / "x.mid", bars=8)
    locked.chmod(0)
    try:
        corpus = load_corpus([tmp_path], cache=False)
    finally:
        locked.chmod(0o755)
    assert [m.tune_id for m in corpus.melodies] == ["ok.mid"]
    assert reasons(corpus) == {"locked": "unreadable folder (permission denied)"}


def test_split_is_deterministic_balanced_and_stable_when_files_are_added(tmp_path, cache_dir):
    ids = [f"collection/tune_{i:05d}" for i in range(6000)]
    counts = {name: 0 for name in ("train", "valid", "test")}
    for tune_id in ids:
        counts[split_of(tune_id)] += 1
    assert 0.88 < counts["train"] / 6000 < 0.92
    assert 0.035 < counts["valid"] / 6000 < 0.065 and 0.035 < counts["test"] / 6000 < 0.065
    assert split_of("a/b.mid#3") == split_of("a/b.mid")

    root = tmp_path / "tunes"
    for i in range(12):
        mf.simple_tune(root / f"t{i:02d}.mid", bars=4, seed=i)
    before = {m.tune_id: m.meta["split"] for m in load_corpus([root]).melodies}
    for i in range(12, 30):
        mf.simple_tune(root / f"t{i:02d}.mid", bars=4, seed=i)
    after = {m.tune_id: m.meta["split"] for m in load_corpus([root]).melodies}
    assert len(after) == 30
    assert {k: after[k] for k in before} == before


def test_cache_hits_and_rebuilds_on_a_changed_file_or_setting(tmp_path, cache_dir):
    root = tmp_path / "tunes"
    for i in range(6):
        mf.simple_tune(root / f"t{i}.mid", bars=6, seed=i)
    (root / "bad.mid").write_text("not midi")
    first = load_corpus([root])
    assert first.cache_status == "built"
    assert sorted(p.suffix for p in cache_dir.rglob("*.*")) == [".json", ".npz"]  # no pickle anywhere
    np.load(next(cache_dir.rglob("*.npz")), allow_pickle=False).close()

    second = load_corpus([root])
    assert second.cache_status == "hit" and second.fingerprint == first.fingerprint
    assert second.melodies == first.melodies
    assert [m.meta for m in second.melodies] == [m.meta for m in first.melodies]
    assert all(np.array_equal(a, b) for a, b in zip(second.tokens(), first.tokens()))
    assert second.skipped == first.skipped

    target = root / "t0.mid"
    mf.simple_tune(target, bars=9, seed=99)
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new mtime even on coarse clocks
    third = load_corpus([root])
    assert third.cache_status == "built"
    assert third.find("t0.mid").n_bars == 9

    fourth = load_corpus([root], ExtractSettings(min_bars=7))
    assert fourth.cache_status == "built"
    assert [m.tune_id for m in fourth.melodies] == ["t0.mid"]
    assert load_corpus([root], ExtractSettings(min_bars=7)).cache_status == "hit"


def test_a_damaged_cache_entry_is_rebuilt(tmp_path, cache_dir):
    root = tmp_path / "tunes"
    mf.simple_tune(root / "a.mid", bars=6)
    first = load_corpus([root])
    for path in cache_dir.rglob("*.npz"):
        path.write_bytes(b"garbage")
    again = load_corpus([root])
    assert again.cache_status == "built" and again.melodies == first.melodies


def test_parallel_parse_gives_the_same_corpus(tmp_path, cache_dir, monkeypatch):
    import engine.corpus as corpus_module

    monkeypatch.setattr(corpus_module, "PARALLEL_MIN_FILES", 0)  # a small folder, parsed in processes anyway
    finished = []
    real = corpus_module._parse_in_processes

    def spy(*args):
        result = real(*args)  # raises if the pool broke (then the loader would fall back to serial)
        finished.append(len(result))
        return result

    monkeypatch.setattr(corpus_module, "_parse_in_processes", spy)
    root = everyday_folder(tmp_path / "tunes")
    for i in range(6):
        mf.simple_tune(root / "more" / f"m{i}.mid", bars=5, seed=i)
    serial = load_corpus([root], cache=False)
    seen = []
    parallel = load_corpus([root], cache=False, workers=2, progress=lambda done, total: seen.append(done))
    assert parallel.melodies == serial.melodies
    assert parallel.skipped == serial.skipped
    assert seen and seen[-1] == len(serial.files)
    assert finished == [len(serial.files)]  # the processes really did the work


def test_corpus_lookup_and_split_accessors(tmp_path, cache_dir):
    root = tmp_path / "tunes"
    for i in range(20):
        mf.simple_tune(root / f"t{i:02d}.mid", bars=4, seed=i, title=f"Reel number {i}")
    corpus = load_corpus([root])
    assert corpus.find("t03.mid").title == "Reel number 3"
    rows = corpus.table()
    assert corpus.melodies.table() == rows
    assert [r["tune_id"] for r in rows] == [m.tune_id for m in corpus.melodies]
    assert rows[3] | {"source": None} == {"tune_id": "t03.mid", "title": "Reel number 3", "collection": "tunes",
                                          "meter": "4/4", "key": "G major", "bars": 4,
                                          "split": corpus.melodies[3].meta["split"], "source": None}
    assert corpus.find("reel NUMBER 7").tune_id == "t07.mid"
    with pytest.raises(UserError, match="no tune 'nope'"):
        corpus.find("nope")
    total = 0
    for name in ("train", "valid", "test"):
        melodies, tokens = corpus.split(name), corpus.tokens(name)
        assert [len(t) for t in tokens] == [m.n_steps for m in melodies]
        assert all(m.meta["split"] == name for m in melodies)
        total += len(melodies)
    assert total == 20


# --- the command -----------------------------------------------------------------------------------


def test_corpus_command_json_and_exit_codes(tmp_path, cache_dir, capsys):
    from main import main

    root = everyday_folder(tmp_path / "tunes")
    assert main(["corpus", "--source", str(root), "--source", str(tmp_path / "missing"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"files", "melodies", "bars", "tokens", "skipped", "splits"} <= set(doc)
    assert doc["melodies"] == 5 and doc["files"] == 7
    assert {"path": str(tmp_path / "missing"), "reason": "does not exist"} in doc["skipped"]
    assert set(doc["splits"]) == {"train", "valid", "test"}

    assert main(["corpus", "--source", str(root)]) == 0
    out = capsys.readouterr().out
    assert "melodies:  5" in out and "drums.mid: drums only" in out

    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.mid").write_bytes(b"")
    assert main(["corpus", "--source", str(tmp_path / "junk")]) == 2
    err = capsys.readouterr().err
    assert "error: no usable melodies" in err and "x.mid: empty file" in err and "Traceback" not in err


# --- the bundled corpus ----------------------------------------------------------------------------

needs_bundled = pytest.mark.skipif(not (BUNDLED_DIR / "manifest.csv").is_file(),
                                   reason="midi_data/ (the bundled corpus) is not built yet")


@pytest.fixture(scope="module")
def bundled():
    # The default cache under .cache/ is used on purpose: after the first run this takes a second.
    return load_corpus(workers=os.cpu_count() or 1)


@needs_bundled
def test_bundled_corpus_size_splits_and_ids(bundled):
    summary = bundled.summary()
    assert summary["melodies"] >= 3500
    splits = summary["splits"]
    assert splits["valid"] > 0.03 * summary["melodies"] and splits["test"] > 0.03 * summary["melodies"]
    import csv

    with open(BUNDLED_DIR / "manifest.csv", newline="", encoding="utf-8") as fh:
        manifest_ids = {row["id"] for row in csv.DictReader(fh)}
    assert {m.tune_id.split("#")[0] for m in bundled.melodies} <= manifest_ids


@needs_bundled
def test_every_bundled_melody_round_trips_through_tokens(bundled):
    cfg = bundled.token_config
    for melody, tokens in zip(bundled.melodies, bundled.tokens()):
        assert np.array_equal(encode(melody, cfg), tokens), melody.tune_id
        assert decode(tokens, melody, cfg) == melody, melody.tune_id


@needs_bundled
def test_pitch_range_needs_folding_for_at_most_half_a_percent_of_bundled_notes(bundled):
    summary = bundled.summary()
    assert summary["folded_notes"] <= 0.005 * summary["notes"]


def test_the_fingerprint_follows_the_music_not_the_files(tmp_path, cache_dir):
    """A checkpoint records the corpus fingerprint; a fresh clone (other paths, other mtimes) must match
    it, and a changed tune must not."""
    import shutil

    here = tmp_path / "here"
    for i in range(6):
        mf.simple_tune(here / f"t{i}.mid", bars=6, seed=i)
    first = load_corpus([here])
    time.sleep(0.01)
    clone = shutil.copytree(here, tmp_path / "elsewhere" / "here")
    os.utime(clone / "t0.mid", (1_000_000_000, 1_000_000_000))
    assert load_corpus([clone]).fingerprint == first.fingerprint

    mf.simple_tune(clone / "t0.mid", bars=6, seed=99)
    assert load_corpus([clone]).fingerprint != first.fingerprint
