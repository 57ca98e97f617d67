"""Near-copies (issue 25 item 4): the same jig with a triplet or a grace note quantised differently is a
duplicate in a folder the user opens, and only one copy is left, so no copy straddles the splits; the
bundled corpus keeps the melodies and split its shipped models were trained on."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.midi_factory as mf
from engine.data.corpus import BUNDLED_DIR, load_corpus
from engine.data.near_copies import tolerant_forms


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MELODY_MEMORY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _jig(seed: int = 5) -> list[tuple[int, int, int]]:
    # 6/8 in 16ths: eighth notes (2 steps), one dotted quarter per bar end
    notes, step, pitch = [], 0, 67
    for bar in range(8):
        for i, move in enumerate((2, -1, 3, -2, 1) if bar % 2 else (-2, 2, 1, -3, 4)):
            pitch += move + (seed if i == 0 and bar == 0 else 0) % 3
            notes.append((step, pitch, 2))
            step += 2
        step += 2  # a rest on the last eighth
    return notes


def write_near_copies(root: Path) -> list[tuple[int, int, int]]:
    """A folder as a Nottingham-style transcription gives it: one jig three times (its triplet quantised two
    ways, a grace note added) and another tune; returns the jig's notes."""
    jig = _jig()
    # bar 2's second beat (steps 12-15) holds a triplet: one transcription rounds it to 2+1+1 steps, another
    # to 1+1+2; a third adds a grace note that steals a 16th from a main note
    (o0, p0, _), (_, p1, _) = jig[5:7]
    triplet_a = [*jig[:5], (o0, p0, 2), (o0 + 2, p1, 1), (o0 + 3, p1 + 2, 1), *jig[7:]]
    triplet_b = [*jig[:5], (o0, p0, 1), (o0 + 1, p1, 1), (o0 + 2, p1 + 2, 2), *jig[7:]]
    i = next(n for n, note in enumerate(triplet_a) if note[0] == 24)
    o, p, d = triplet_a[i]
    grace = [*triplet_a[:i], (o, p + 2, 1), (o + 1, p, d - 1), *triplet_a[i + 1:]]
    other = mf.tune_notes(8, seed=11)
    for name, notes in (("a jig.mid", triplet_a), ("b jig triplet.mid", triplet_b), ("c jig grace.mid", grace),
                        ("d other.mid", other)):
        mf.write(root / name, mf.track(notes, name="Melody"))
    return jig


def test_triplet_and_grace_note_variants_are_duplicates_and_stay_out_of_other_splits(tmp_path, cache_dir):
    root = tmp_path / "nottingham"
    jig = write_near_copies(root)
    corpus = load_corpus([root])
    assert [m.tune_id for m in corpus.melodies] == ["a jig.mid", "d other.mid"]
    reasons = {Path(s.path).name: s.reason for s in corpus.skipped}
    assert reasons == {name: "duplicate of a jig.mid (a near-copy: the same notes on the beat grid)"
                       for name in ("b jig triplet.mid", "c jig grace.mid")}
    assert corpus.summary()["duplicates"] == 2
    # a different tune with the same pitches but other beats is not a copy
    shifted = [(o + (4 if i == 3 else 0), p, d) for i, (o, p, d) in enumerate(jig)]
    assert not set(tolerant_forms(_tokens(shifted))) & set(tolerant_forms(_tokens(jig)))


def test_a_tune_of_sixteenths_is_not_reduced_to_its_ornaments():
    run = [(i, 60 + (i * 5) % 12, 1) for i in range(64)]
    other = [(i, 60 + (i * 7) % 12, 1) for i in range(64)]
    assert not set(tolerant_forms(_tokens(run))) & set(tolerant_forms(_tokens(other)))


def test_the_bundled_corpus_keeps_its_shipped_melodies_and_split(cache_dir):
    if not (BUNDLED_DIR / "manifest.csv").is_file():
        pytest.skip("midi_data/ is not built")
    corpus = load_corpus()
    assert corpus.cache_status == "shipped"
    # its near-copies stay (the rule would drop a few, changing what the shipped models were trained on)
    assert not any("near-copy" in s.reason for s in corpus.skipped)


def _tokens(notes):
    from engine.music.melody import Melody, Note
    from engine.music.tokens import encode

    end = max(o + d for o, _, d in notes)
    return encode(Melody(notes=tuple(Note(*n) for n in notes), n_steps=end, numerator=6, denominator=8,
                         tempo_qpm=120.0, key_number=0, tune_id="t", title="t", source="t", meta={}))
