"""Melody metrics (docs/design.md section 5): known answers on hand-made melodies, and MusPy as the oracle."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from engine.metrics import (
    continuation_metrics,
    piece_bar_metrics,
    piece_metrics,
    primer_key,
    self_similarity,
)
from engine.metrics.bars import bar_sets, transposed_similarity

S = 16  # 4/4 on the 16th grid
ROOT = Path(__file__).resolve().parent.parent


def bars_to_notes(bars: list[list[tuple[int, int, int]]], steps_per_bar: int = S) -> np.ndarray:
    """Bars of (position, pitch, duration) -> note array with absolute onsets."""
    rows = [(b * steps_per_bar + pos, pitch, dur) for b, bar in enumerate(bars) for pos, pitch, dur in bar]
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


# Two rhythms: A = four quarters, B = four eighths then two quarters. Pitches all in C major.
BAR_A = [(0, 60, 4), (4, 62, 4), (8, 64, 4), (12, 65, 4)]
BAR_B = [(0, 67, 2), (2, 65, 2), (4, 64, 2), (6, 62, 2), (8, 60, 4), (12, 59, 4)]
BAR_C = [(0, 72, 8), (8, 71, 4), (12, 69, 4)]
PRIMER = bars_to_notes([BAR_A, BAR_B, BAR_A, BAR_C, BAR_B, BAR_A, BAR_B, BAR_C])


def test_exact_repeat_of_the_primer_recalls_theme_and_rhythm_fully():
    m = continuation_metrics(PRIMER, PRIMER, S, 8, primer_bars=8)
    np.testing.assert_array_equal(m["TR"], 1.0)
    np.testing.assert_array_equal(m["RR"], 1.0)
    np.testing.assert_array_equal(m["IK"], 1.0)  # every note is in C major
    np.testing.assert_array_equal(m["downbeat"], 1.0)
    np.testing.assert_array_equal(m["empty"], 0.0)
    assert set(m) == {"TR", "RR", "GC", "downbeat", "IK", "PC", "empty"}
    assert all(v.shape == (8,) for v in m.values())


def test_transposed_repeat_keeps_theme_recall_at_one():
    up_a_fourth = PRIMER + np.array([0, 5, 0])
    m = continuation_metrics(PRIMER, up_a_fourth, S, 8, primer_bars=8)
    np.testing.assert_array_equal(m["TR"], 1.0)  # sim_T undoes the transposition
    np.testing.assert_array_equal(m["RR"], 1.0)
    assert not set(map(tuple, up_a_fourth.tolist())) & set(map(tuple, PRIMER.tolist()))  # no note in common
    assert np.nanmean(m["PC"]) > 0.05  # the pitch classes moved, so the tonal drift shows it


def test_shifting_every_onset_by_one_step_gives_the_hand_computed_rhythm_recall():
    shifted = PRIMER + np.array([1, 0, 0])
    m = continuation_metrics(PRIMER, shifted, S, 8, primer_bars=8)
    # By hand, with primer onset vectors A = {0,4,8,12}, B = {0,2,4,6,8,12}, C = {0,8,12}:
    # (the steps where exactly one of the two bars has an onset; no shifted onset meets an old one)
    #  A+1 = {1,5,9,13}:     vs A 4+4 = 8, vs B 4+6 = 10, vs C 4+3 = 7  -> best 7  -> RR = 1 - 7/16
    #  B+1 = {1,3,5,7,9,13}: vs A 6+4 = 10, vs B 12, vs C 6+3 = 9       -> best 9  -> RR = 1 - 9/16
    #  C+1 = {1,9,13}:       vs A 3+4 = 7, vs B 3+6 = 9, vs C 6         -> best 6  -> RR = 1 - 6/16
    rr_a, rr_b, rr_c = 1 - 7 / 16, 1 - 9 / 16, 1 - 6 / 16
    np.testing.assert_allclose(m["RR"], [rr_a, rr_b, rr_a, rr_c, rr_b, rr_a, rr_b, rr_c])
    # Nothing starts on the downbeat any more, and no shifted note shares a position with a primer note.
    np.testing.assert_array_equal(m["downbeat"], 0.0)
    np.testing.assert_array_equal(m["TR"], 0.0)


def test_theme_recall_is_the_jaccard_share_of_the_best_primer_bar():
    # A variation of bar A: two of its four notes kept, two changed -> 2 notes shared, 6 in the union -> 1/3.
    varied = bars_to_notes([[(0, 60, 4), (4, 62, 4), (8, 67, 4), (12, 69, 2)]])
    m = continuation_metrics(PRIMER, varied, S, 1, primer_bars=8)
    assert m["TR"][0] == pytest.approx(2 / 6)
    # The duration is capped at one bar: a 3-bar note matches the same note held for one bar.
    long = continuation_metrics(bars_to_notes([[(0, 72, 16)]]), bars_to_notes([[(0, 72, 48)]]), S, 1)
    assert long["TR"][0] == 1.0


def test_groove_consistency_of_bar_0_compares_with_the_primers_last_bar():
    m = continuation_metrics(PRIMER, bars_to_notes([BAR_C, BAR_A]), S, 2, primer_bars=8)
    assert m["GC"][0] == 1.0  # primer ends with C, continuation starts with C
    assert m["GC"][1] == pytest.approx(1 - 1 / 16)  # C -> A: only step 4 differs


def test_empty_bars_are_counted_and_undefined_rates_are_nan():
    cont = bars_to_notes([BAR_A, [], BAR_B])
    m = continuation_metrics(PRIMER, cont, S, 4, primer_bars=8)  # bar 3 is empty too
    np.testing.assert_array_equal(m["empty"], [0, 1, 0, 1])
    assert np.isnan(m["IK"][1]) and np.isnan(m["IK"][3])
    assert m["IK"][0] == 1.0
    np.testing.assert_array_equal(m["TR"], [1, 0, 1, 0])
    np.testing.assert_array_equal(m["downbeat"], [1, 0, 1, 0])
    # An empty bar still has a rhythm: silence, compared with the primer bar of fewest onsets (C).
    assert m["RR"][1] == pytest.approx(1 - 3 / 16)
    # PC looks back over the window, so it stays defined after an empty bar.
    assert not np.isnan(m["PC"]).any()
    # A whole continuation of silence: nothing to drift, nothing in key.
    silent = continuation_metrics(PRIMER, np.zeros((0, 3)), S, 3, primer_bars=8)
    assert np.isnan(silent["PC"]).all() and np.isnan(silent["IK"]).all()
    np.testing.assert_array_equal(silent["empty"], 1.0)


def test_in_key_rate_counts_notes_outside_the_primer_key():
    m = continuation_metrics(PRIMER, bars_to_notes([[(0, 61, 4), (4, 62, 4), (8, 63, 4), (12, 64, 4)]]), S, 1)
    assert m["IK"][0] == 0.5  # C# and D# are outside C major
    assert primer_key(PRIMER, S) == 0  # C major (A minor holds the same notes; MusPy names the first)
    g_major = bars_to_notes([[(0, 67, 4), (4, 66, 4), (8, 62, 4), (12, 71, 4)], [(0, 60, 16)]])
    assert primer_key(g_major, S) == 7


def test_tonal_drift_is_zero_for_the_same_histogram_and_one_for_disjoint_pitch_classes():
    primer = bars_to_notes([BAR_A] * 4)
    same = continuation_metrics(primer, bars_to_notes([BAR_A] * 6), S, 6)
    np.testing.assert_allclose(same["PC"], 0.0, atol=1e-12)
    # Same pitch classes, an octave up and twice as long in total: the normalised histogram is the same.
    octave = continuation_metrics(primer, bars_to_notes([[(p, n + 12, d) for p, n, d in BAR_A]] * 2), S, 2)
    np.testing.assert_allclose(octave["PC"], 0.0, atol=1e-12)
    # F# G# A# C# share no pitch class with C D E F: the divergence is its maximum, 1 bit.
    far = continuation_metrics(primer, bars_to_notes([[(0, 66, 4), (4, 68, 4), (8, 70, 4), (12, 73, 4)]]), S, 1)
    assert far["PC"][0] == pytest.approx(1.0)


def test_tonal_drift_window_covers_the_last_four_bars():
    primer = bars_to_notes([BAR_A])
    off = [(0, 66, 16)]
    m = continuation_metrics(primer, bars_to_notes([off, BAR_A, BAR_A, BAR_A, BAR_A]), S, 5)
    assert m["PC"][0] == pytest.approx(1.0)  # only the off-key bar so far
    assert 0 < m["PC"][3] < m["PC"][0]  # the off-key bar is still in the window of bar 3 ...
    assert m["PC"][4] == pytest.approx(0.0, abs=1e-12)  # ... and has left it at bar 4


def test_self_similarity_is_symmetric_with_ones_on_the_diagonal_of_non_empty_bars():
    notes = np.concatenate([PRIMER, bars_to_notes([[], BAR_A]) + np.array([8 * S, 7, 0])])
    ssm = self_similarity(notes, S, 10)
    assert ssm.shape == (10, 10)
    np.testing.assert_array_equal(ssm, ssm.T)
    np.testing.assert_array_equal(np.diag(ssm), [1] * 8 + [0, 1])
    assert ssm[0, 9] == 1.0  # bar 9 is bar A a fifth up
    assert ssm[0, 2] == 1.0 and (ssm[8] == 0).all()
    # Bars A and B share position and duration only at steps 8 and 12 (pitches 64, 65 vs 60, 59): the
    # differences -4 and -6 differ, so one transposition matches one note: 1 / (4 + 6 - 1).
    assert ssm[0, 1] == pytest.approx(1 / 9)


def _brute_sim_t(bar_i: set, bar_j: set) -> float:
    if not bar_i or not bar_j:
        return 0.0
    best = 0.0
    for k in range(-11, 12):
        moved = {(pos, pitch + k, dur) for pos, pitch, dur in bar_i}
        best = max(best, len(moved & bar_j) / len(moved | bar_j))
    return best


def _random_notes(rng, n_bars: int, steps_per_bar: int, chords: bool = False) -> np.ndarray:
    rows, t = [], 0
    while t < n_bars * steps_per_bar:
        dur = int(rng.choice([1, 2, 2, 3, 4, 4, 6, 8, 12, 20]))
        if rng.random() < 0.85:
            rows.append((t, int(rng.integers(60, 68)), dur))
            if chords and rng.random() < 0.3:  # a second note (or the same one twice) at the same step
                rows.append((t, int(rng.integers(60, 68)), dur if rng.random() < 0.5 else 2))
        t += dur
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


@pytest.mark.parametrize("chords", [False, True])
def test_similarity_matches_the_set_definition(chords):
    rng = np.random.default_rng(3)
    spb = 12  # 3/4
    a_notes, b_notes = _random_notes(rng, 12, spb, chords), _random_notes(rng, 9, spb, chords)

    def sets(notes, n):
        out = [set() for _ in range(n)]
        for onset, pitch, dur in notes.tolist():
            if onset < n * spb:
                out[onset // spb].add((onset % spb, pitch, min(dur, spb)))
        return out

    got = transposed_similarity(bar_sets(a_notes, spb, 12), bar_sets(b_notes, spb, 9))
    want = [[_brute_sim_t(x, y) for y in sets(b_notes, 9)] for x in sets(a_notes, 12)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    assert got.max() > 0  # the random bars do share something, so the check has teeth
    # max_shift = 0 is the plain sim (repeat gain's), also against the set definition
    plain = transposed_similarity(bar_sets(a_notes, spb, 12), bar_sets(b_notes, spb, 9), max_shift=0)
    want_plain = [[len(x & y) / len(x | y) if x and y else 0.0 for y in sets(b_notes, 9)] for x in sets(a_notes, 12)]
    np.testing.assert_allclose(plain, want_plain, rtol=0, atol=1e-15)
    assert (plain <= got).all() and (plain < got).any()


def test_distinct_bar_rate_counts_distinct_note_sets_of_non_empty_bars():
    from engine.metrics import distinct_bar_rate

    looped = bars_to_notes([BAR_A] * 8)
    assert distinct_bar_rate(looped, S, 8) == 1 / 8
    assert distinct_bar_rate(PRIMER, S, 8) == 3 / 8  # A, B, C
    up = bars_to_notes([BAR_A, [(p, n + 2, d) for p, n, d in BAR_A]])
    assert distinct_bar_rate(up, S, 2) == 1.0  # exact sets: a transposed bar is new material
    gaps = bars_to_notes([BAR_A, [], BAR_A, [], BAR_B])
    assert distinct_bar_rate(gaps, S, 5) == 2 / 3  # empty bars are left out of both counts
    assert np.isnan(distinct_bar_rate(np.zeros((0, 3)), S, 4))
    held = bars_to_notes([[(0, 60, 4), (4, 62, 4)], [(0, 60, 4), (4, 62, 12)]])
    assert distinct_bar_rate(held, S, 2) == 1.0  # same onsets and pitches, another duration


def test_the_metric_table_describes_every_metric_continuation_metrics_returns():
    from engine.metrics import PER_BAR, REFERENCES, source_style

    m = continuation_metrics(PRIMER, PRIMER, S, 8, primer_bars=8)
    assert list(m) == list(PER_BAR)
    for key, row in PER_BAR.items():
        lo, hi = row.value_range
        values = m[key][~np.isnan(m[key])]
        assert row.label and row.axis_label and ((lo <= values) & (values <= hi)).all(), key
    assert REFERENCES["human"].colour == "#333333" and REFERENCES["human"].line_style == "dashed"
    assert REFERENCES["floor"].colour == "#999999" and REFERENCES["floor"].line_style == "dotted"
    assert source_style("rnn").colour == "#d62728" and source_style("rnn").label == "vanilla RNN"


def test_whole_piece_per_bar_metrics_use_the_first_bars_as_reference():
    piece = np.concatenate([PRIMER, PRIMER + np.array([8 * S, 0, 0])])
    m = piece_bar_metrics(piece, S, 16, reference_bars=8)
    assert all(v.shape == (16,) for v in m.values())
    assert np.isnan(m["TR"][:8]).all() and np.isnan(m["GC"][0])
    np.testing.assert_array_equal(m["TR"][8:], 1.0)
    np.testing.assert_array_equal(m["IK"], 1.0)
    short = piece_bar_metrics(PRIMER, S, 8)
    assert np.isnan(short["TR"]).all() and not np.isnan(short["GC"][1:]).any()


# ---- whole-piece metrics against MusPy 0.5 -------------------------------------------------------


def _muspy_values(notes: np.ndarray, steps_per_bar: int) -> dict[str, float]:
    muspy = pytest.importorskip("muspy")
    track = muspy.Track(notes=[muspy.Note(time=int(o), pitch=int(p), duration=int(d)) for o, p, d in notes])
    music = muspy.Music(resolution=4, tracks=[track])
    return {
        "pitch_class_entropy": muspy.pitch_class_entropy(music),
        "scale_consistency": muspy.scale_consistency(music),
        "groove_consistency": muspy.groove_consistency(music, steps_per_bar),
        "empty_beat_rate": muspy.empty_beat_rate(music),
    }


def _assert_same(ours: dict, theirs: dict) -> None:
    for name, want in theirs.items():
        got = ours[name]
        if math.isnan(want):
            assert math.isnan(got), name
        else:
            assert got == pytest.approx(want, abs=1e-9), name


def _edge_cases():
    yield "empty", np.zeros((0, 3), dtype=np.int64), 16
    yield "one short note", np.array([[0, 60, 1]]), 16
    yield "ends on the bar line", np.array([[0, 60, 8], [8, 62, 8]]), 16  # MusPy adds an empty measure
    yield "note ends on a beat", np.array([[2, 60, 2], [13, 61, 3], [40, 62, 1]]), 12
    yield "rest then note", np.array([[30, 71, 2]]), 8
    yield "one pitch class", np.array([[0, 60, 4], [4, 72, 4]]), 16


@pytest.mark.parametrize("case", list(_edge_cases()), ids=lambda c: c[0])
def test_whole_piece_metrics_equal_muspy_on_edge_cases(case):
    _, notes, spb = case
    _assert_same(piece_metrics(notes, spb), _muspy_values(notes, spb))


def test_whole_piece_metrics_equal_muspy_on_random_melodies():
    rng = np.random.default_rng(7)
    for spb, n_bars in itertools.product([8, 12, 16, 24], [1, 3, 17]):
        notes = _random_notes(rng, n_bars, spb)
        _assert_same(piece_metrics(notes, spb), _muspy_values(notes, spb))


def _bundled_melodies(limit: int = 40):
    """Melodies of the bundled corpus, a spread sample across its collections (skip if not built)."""
    manifest = ROOT / "midi_data" / "manifest.csv"
    if not manifest.exists():
        pytest.skip("the bundled corpus (midi_data/) is not built")
    midi_io = pytest.importorskip("engine.music.midi_io")
    files = sorted((ROOT / "midi_data").rglob("*.mid"))
    picked = files[:: max(1, len(files) // limit)][:limit]
    melodies = []
    for path in picked:
        melodies.extend(midi_io.load_midi_melodies(path, midi_io.ExtractSettings()))
    assert melodies
    return melodies


def test_whole_piece_metrics_equal_muspy_on_bundled_melodies():
    pytest.importorskip("muspy")
    for melody in _bundled_melodies():
        notes = melody.note_array()
        _assert_same(piece_metrics(notes, melody.steps_per_bar), _muspy_values(notes, melody.steps_per_bar))


# ---- `python main.py metrics` ---------------------------------------------------------------------


def _write_midi(path: Path, notes: np.ndarray, n_steps: int) -> Path:
    from engine.music.melody import Melody, Note
    from engine.music.midi_io import melody_to_pretty_midi

    melody = Melody(tuple(Note(*map(int, row)) for row in notes), n_steps)
    melody_to_pretty_midi(melody).write(str(path))
    return path


def _strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_metrics_command_reports_whole_piece_and_per_bar_metrics(tmp_path, capsys):
    from main import main

    # 12 bars: the 8-bar primer, then its first 4 bars again a tone higher.
    notes = np.concatenate([PRIMER, PRIMER[PRIMER[:, 0] < 4 * S] + np.array([8 * S, 2, 0])])
    path = _write_midi(tmp_path / "tune.mid", notes, 12 * S)
    assert main(["metrics", str(path), "--json", "--self-similarity"]) == 0
    doc = _strict_json(capsys.readouterr().out)
    (entry,) = doc["melodies"]
    assert entry["path"] == str(path) and entry["steps_per_bar"] == S and entry["n_bars"] == 12
    assert entry["scale"] == "C major" and entry["meter"] == "4/4"
    np.testing.assert_array_equal(entry["notes"], notes)
    want = piece_metrics(notes, S)
    for name in want:
        assert entry[name] == pytest.approx(want[name], abs=1e-12)
    per_bar = entry["per_bar"]
    assert set(per_bar) == {"TR", "RR", "GC", "downbeat", "IK", "PC", "empty"}
    assert per_bar["TR"] == [None] * 8 + [1.0] * 4  # reference bars have none; the repeat recalls fully
    assert per_bar["GC"][0] is None and per_bar["IK"][:8] == [1.0] * 8
    assert len(entry["self_similarity"]) == 12 and entry["self_similarity"][0][8] == 1.0


def test_metrics_command_prints_a_table_and_rejects_bad_paths(tmp_path, capsys):
    from main import main

    path = _write_midi(tmp_path / "short.mid", bars_to_notes([BAR_A, BAR_B]), 2 * S)
    assert main(["metrics", str(path)]) == 0
    out = capsys.readouterr().out
    assert "groove_consistency" in out and "downbeat" in out and "mean" in out

    assert main(["metrics", str(tmp_path / "missing.mid")]) == 2
    assert "error:" in capsys.readouterr().err
    (tmp_path / "notes.mid").write_text("not a midi file")
    assert main(["metrics", str(tmp_path / "notes.mid")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "notes.mid" in err
    # In a folder, an unreadable file is skipped with its reason and the others are measured.
    assert main(["metrics", str(tmp_path), "--json"]) == 0
    doc = _strict_json(capsys.readouterr().out)
    assert [m["path"] for m in doc["melodies"]] == [str(path)]
    assert doc["skipped"][0]["path"].endswith("notes.mid")
