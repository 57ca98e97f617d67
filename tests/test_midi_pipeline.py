"""MIDI file -> melodies: track choice, grid, meters, splitting, folding, writing back, and bad files."""

from __future__ import annotations

import os
from pathlib import Path

import midi_factory as mf
import pytest
import strategies
from hypothesis import HealthCheck, given, settings
from strategies import examples

from engine.core.errors import UserError
from engine.music.melody import Melody, Note
from engine.music.midi_io import (
    ExtractSettings,
    UnusableFile,
    estimate_key,
    load_midi_melodies,
    melody_to_pretty_midi,
    printable,
)
from engine.music.tokens import TokenConfig, decode, encode


def triples(melody: Melody):
    return [(n.onset, n.pitch, n.duration) for n in melody.notes]


def only(path, **settings) -> Melody:
    melodies = load_midi_melodies(path, ExtractSettings(**settings))
    assert len(melodies) == 1, [m.tune_id for m in melodies]
    return melodies[0]


def reason(path, **settings) -> str:
    with pytest.raises(UserError) as info:
        load_midi_melodies(path, ExtractSettings(**settings))
    message, name = str(info.value), printable(path)
    assert message.startswith(f"{name}: "), message  # the reason always names the file, printably
    return message[len(f"{name}: "):]


# --- everyday files -------------------------------------------------------------------------------


def test_band_file_picks_the_melody_over_chords_bass_and_drums(tmp_path):
    bars = 8
    tune = mf.tune_notes(bars, seed=2, low=67, high=84)
    path = mf.write(
        tmp_path / "band.mid",
        mf.track(mf.chord_notes(bars), name="Piano", channel=0),
        mf.track(mf.tune_notes(bars, seed=3, low=36, high=48), name="Bass", channel=1, program=33),
        mf.track(mf.drum_notes(bars), name="Drums", channel=9),
        # a human player: every event up to 20 ticks (a 24th of a quarter) early or late, legato overlaps
        mf.track(tune, name="Flute", channel=2, program=73, jitter=20, seed=5),
    )
    m = only(path)
    assert m.meta["track"] == "Flute"
    assert triples(m) == tune
    assert (m.numerator, m.denominator, m.tempo_qpm, m.key) == (4, 4, 120.0, "G major")


def test_a_tune_with_double_stops_beats_a_one_voice_bass_line(tmp_path):
    bars = 8
    tune = mf.tune_notes(bars, seed=6, low=69, high=86)
    double_stops = [(o, p - 7, d) for i, (o, p, d) in enumerate(tune) if i % 5 == 0]  # a fifth below, now and then
    path = mf.write(
        tmp_path / "session.mid",
        mf.track(mf.tune_notes(bars, seed=7, low=40, high=52), name="Bass"),
        mf.track(tune + double_stops, name="Fiddle", channel=1),
        mf.track(mf.chord_notes(bars, root=60), name="Guitar", channel=2),
    )
    m = only(path)
    assert m.meta["track"] == "Fiddle"
    assert triples(m) == tune  # the top note of each double stop


def test_a_track_named_like_the_melody_wins_over_a_higher_one(tmp_path):
    bars = 8
    vocal = mf.tune_notes(bars, seed=4, low=55, high=67)
    path = mf.write(
        tmp_path / "song.mid",
        mf.track(mf.tune_notes(bars, seed=5, low=72, high=90), name="Strings"),
        mf.track(vocal, name="Lead Vocal", channel=1),
    )
    m = only(path)
    assert m.meta["track"] == "Lead Vocal"
    assert triples(m) == vocal


def test_polyphony_is_reduced_to_the_highest_note(tmp_path):
    # a tune with a block chord under every fourth note (a pianist's right hand): the top voice is the tune
    tune = mf.tune_notes(4, seed=3, low=72, high=84)
    chords = [(o, p, d) for i, (o, _, d) in enumerate(tune) if i % 4 == 0 for p in (55, 59, 62)]
    m = only(mf.write(tmp_path / "voiced.mid", mf.track(tune + chords, name="Piano")))
    assert triples(m) == tune


def test_a_chord_only_file_is_no_melody(tmp_path):
    path = mf.write(tmp_path / "chords.mid", mf.track(mf.chord_notes(8), name="Organ"))
    assert reason(path) == "chords, not a melody (100% of the onsets start 3 or more notes at once)"
    two = mf.write(tmp_path / "two.mid", mf.track(mf.chord_notes(8), name="Organ"),
                   mf.track(mf.chord_notes(8, root=48), name="Strings", channel=1))
    assert reason(two) == ("chords, not a melody (in each of its 2 pitched tracks, over 50% of the onsets start "
                           "3 or more notes at once)")


def test_a_chord_track_named_like_the_melody_is_passed_over(tmp_path):
    tune = mf.tune_notes(8, seed=8, low=60, high=72)
    path = mf.write(tmp_path / "band.mid", mf.track(mf.chord_notes(8, root=76), name="Lead"),
                    mf.track(tune, name="Recorder", channel=1))
    m = only(path)
    assert m.meta["track"] == "Recorder" and m.meta["track_choice"] == "the only pitched track that is not chords"
    assert triples(m) == tune


def test_a_lower_note_under_a_held_high_note_is_not_the_melody(tmp_path):
    notes = [(0, 79, 16), (4, 60, 4), (16, 76, 48)]
    m = only(mf.write(tmp_path / "held.mid", mf.track(notes, name="Piano")))
    assert triples(m) == [(0, 79, 16), (16, 76, 48)]


def test_format0_file_splits_channels_into_tracks(tmp_path):
    bars = 6
    tune = mf.tune_notes(bars, seed=7, low=72, high=86)
    path = mf.write_format0(
        tmp_path / "type0.mid",
        mf.track(mf.chord_notes(bars), channel=0),
        mf.track(tune, channel=1),
        mf.track(mf.drum_notes(bars), channel=9),
    )
    m = only(path)
    assert "channel 2" in m.meta["track"]
    assert triples(m) == tune


def test_tempo_changes_do_not_move_notes_off_the_grid(tmp_path):
    tune = mf.tune_notes(12, seed=8)
    tempos = ((0, 96.0), (32, 140.0), (64, 61.5), (100, 200.0))  # changes mid-bar too
    path = mf.write(tmp_path / "rubato.mid", mf.track(tune, name="Melody"), conductor_track=mf.conductor(tempos=tempos))
    m = only(path)
    assert triples(m) == tune
    assert m.tempo_qpm == 96.0  # the tempo at the start of the melody


def test_meter_change_splits_into_melodies_with_their_own_meter(tmp_path):
    first = mf.tune_notes(6, 16, seed=9)
    second = mf.tune_notes(8, 12, seed=10, start=96)
    path = mf.write(
        tmp_path / "meters.mid",
        mf.track(first + second, name="Melody"),
        conductor_track=mf.conductor(meters=((0, 4, 4), (96, 3, 4))),
    )
    a, b = load_midi_melodies(path)
    assert (a.meter, a.n_bars, b.meter, b.n_bars) == ("4/4", 6, "3/4", 8)
    assert triples(a) == first
    assert triples(b) == [(o - 96, p, d) for o, p, d in second]
    assert (a.tune_id, b.tune_id) == ("meters", "meters#2")
    assert b.steps_per_bar == 12


def test_pickup_keeps_step_zero_on_a_downbeat(tmp_path):
    # 6/8: a one-eighth pickup (2 steps) before the first full bar, padded with a rest, as the bundled
    # corpus writes them
    pickup = [(10, 67, 2)]
    body = mf.tune_notes(8, 12, seed=11, start=12)
    path = mf.write(tmp_path / "jig.mid", mf.track(pickup + body, name="Melody"),
                    conductor_track=mf.conductor(meters=((0, 6, 8),)))
    m = only(path)
    assert m.meter == "6/8" and m.steps_per_bar == 12
    assert m.notes[0] == Note(10, 67, 2)  # step 0 is the downbeat of the pickup's bar
    assert m.n_bars == 9


def test_pickup_written_as_its_own_short_meter_stays_with_the_tune(tmp_path):
    # notation programs write a pickup as a 1/4 bar followed by the real meter
    pickup = [(0, 67, 2), (2, 69, 2)]
    body = mf.tune_notes(6, 16, seed=15, start=4)
    path = mf.write(tmp_path / "anacrusis.mid", mf.track(pickup + body, name="Melody"),
                    conductor_track=mf.conductor(meters=((0, 1, 4), (4, 4, 4))))
    m = only(path)
    assert m.meter == "4/4" and m.n_bars == 7
    assert m.notes[0] == Note(12, 67, 2)  # the pickup ends on the downbeat of bar 1
    assert triples(m)[2:] == [(o + 12, p, d) for o, p, d in body]


def test_irregular_bar_inside_a_tune_does_not_split_it(tmp_path):
    # 2/4 tune, then a one-16th bar written as 1/16, then 2/4 again (as the ABC conversions do)
    first = mf.tune_notes(8, 8, seed=16)
    odd = [(64, 81, 1)]
    second = mf.tune_notes(8, 8, seed=17, start=65)
    path = mf.write(tmp_path / "odd.mid", mf.track(first + odd + second, name="Melody"),
                    conductor_track=mf.conductor(meters=((0, 2, 4), (64, 1, 16), (65, 2, 4))))
    m = only(path)
    assert m.meter == "2/4" and m.n_bars == 17
    # the note of the odd bar is held to the bar line; the music after it keeps its downbeats
    assert Note(64, 81, 8) in m.notes
    assert triples(m)[len(first) + 1:] == [(o + 7, p, d) for o, p, d in second]
    assert m.meta["warnings"] == ["an irregular bar (1/16) was evened out to the bars around it"]
    # an odd bar with no note starting in it is dropped instead of padded
    empty_odd = mf.write(tmp_path / "odd2.mid", mf.track(first + second, name="M"),
                         conductor_track=mf.conductor(meters=((0, 2, 4), (64, 1, 16), (65, 2, 4))))
    m2 = only(empty_odd)
    assert m2.n_bars == 16 and triples(m2) == first + [(o - 1, p, d) for o, p, d in second]
    # a short odd bar at the very end belongs to the tune's last bar
    tail = mf.write(tmp_path / "odd3.mid", mf.track(first + odd, name="M"),
                    conductor_track=mf.conductor(meters=((0, 2, 4), (64, 1, 16))))
    m3 = only(tail)
    assert m3.meter == "2/4" and triples(m3) == first + odd and m3.n_bars == 9


def test_melody_starting_late_begins_at_the_bar_of_its_first_note(tmp_path):
    tune = mf.tune_notes(6, seed=12, start=16 * 3 + 4)  # after three bars and a beat of silence
    m = only(mf.write(tmp_path / "late.mid", mf.track(tune, name="Melody")))
    assert m.notes[0].onset == 4
    assert m.meta["start_bar"] == 3


def test_long_rest_splits_and_the_setting_changes_it(tmp_path):
    first = mf.tune_notes(5, seed=13)
    second = mf.tune_notes(5, seed=14, start=7 * 16)  # two bars of rest between
    path = mf.write(tmp_path / "rest.mid", mf.track(first + second, name="Melody"))
    assert [m.n_bars for m in load_midi_melodies(path)] == [5, 5]
    assert [m.n_bars for m in load_midi_melodies(path, ExtractSettings(split_rest_bars=3))] == [12]
    assert [m.n_bars for m in load_midi_melodies(path, ExtractSettings(split_rest_bars=0))] == [12]


def test_short_melodies_are_dropped_with_a_settable_minimum(tmp_path):
    path = mf.simple_tune(tmp_path / "short.mid", bars=3)
    assert reason(path) == "too short (3 bars < 4)"
    assert only(path, min_bars=3).n_bars == 3
    # a short passage beside a kept melody is reported on the melody
    tail = mf.tune_notes(2, seed=2, start=8 * 16)
    m = only(mf.write(tmp_path / "coda.mid", mf.track(mf.tune_notes(6, seed=1) + tail, name="Melody")))
    assert m.n_bars == 6
    assert m.meta["warnings"] == ["a part was skipped: too short (2 bars < 4)"]
    with pytest.raises(UserError, match="at least 1 bar"):
        ExtractSettings(min_bars=0)


def test_pitches_outside_the_range_fold_by_octaves(tmp_path):
    notes = [(0, 30, 4), (4, 60, 4), (8, 110, 8), *mf.tune_notes(4, seed=1, start=16)]
    m = only(mf.write(tmp_path / "wide.mid", mf.track(notes, name="Melody")))
    cfg = TokenConfig()
    assert [n.pitch for n in m.notes[:3]] == [54, 60, 86]
    assert all(cfg.min_pitch <= n.pitch <= cfg.max_pitch for n in m.notes)
    assert m.meta["folded_notes"] == 2


def test_key_signature_and_title_are_kept_and_a_missing_key_is_estimated(tmp_path):
    a = only(mf.simple_tune(tmp_path / "a.mid", key="Em", title="The Kesh"))
    assert (a.key, a.title, a.meta["key_source"]) == ("E minor", "The Kesh", "file")
    d_major = [(i * 4, p, 4) for i, p in enumerate([62, 66, 69, 74, 73, 71, 69, 66] * 3)]
    b = only(mf.write(tmp_path / "b.mid", mf.track(d_major, name="Melody"), conductor_track=mf.conductor(key=None)))
    assert b.key == "D major"
    assert b.meta["key_source"].startswith("estimated")
    assert estimate_key([Note(0, 57, 8), Note(8, 60, 4), Note(12, 64, 4), Note(16, 57, 8)]) in (9 + 12, 0)


# --- round trips -----------------------------------------------------------------------------------


def test_tokens_round_trip_on_read_melodies(tmp_path):
    for seed, meter in enumerate([(4, 4), (3, 4), (6, 8), (2, 4), (9, 8)]):
        spb = meter[0] * 16 // meter[1]
        m = only(mf.write(tmp_path / f"t{seed}.mid", mf.track(mf.tune_notes(6, spb, seed), name="Melody"),
                          conductor_track=mf.conductor(meters=((0, *meter),))))
        tokens = encode(m)
        assert len(tokens) == m.n_steps == 6 * spb
        assert decode(tokens, m) == m


def test_melody_to_midi_and_back_gives_the_same_melody(tmp_path):
    m = only(mf.write(tmp_path / "src.mid", mf.track([(10, 67, 2), *mf.tune_notes(8, 12, seed=3, start=12)], name="M"),
                      conductor_track=mf.conductor(tempos=((0, 104.0),), meters=((0, 6, 8),), key="D")))
    pm = melody_to_pretty_midi(m, program=73, track_name="Flute")
    assert pm.instruments[0].program == 73 and pm.instruments[0].name == "Flute"
    assert [(ts.numerator, ts.denominator) for ts in pm.time_signature_changes] == [(6, 8)]
    assert [ks.key_number for ks in pm.key_signature_changes] == [2]
    out = tmp_path / "out.mid"
    pm.write(str(out))
    back = only(out)
    assert triples(back) == triples(m)
    assert (back.meter, back.key, back.n_steps) == (m.meter, m.key, m.n_steps)
    assert back.tempo_qpm == pytest.approx(104.0, abs=0.01)


# --- bad files -------------------------------------------------------------------------------------


@pytest.fixture
def good_bytes(tmp_path):
    return mf.simple_tune(tmp_path / "good.mid", bars=8).read_bytes()


def test_not_midi_empty_and_truncated_files(tmp_path, good_bytes):
    text = tmp_path / "notes.mid"
    text.write_text("X:1\nT:Not a MIDI file\nK:G\n|:GABc dedB:|\n")
    assert reason(text) == "not a MIDI file (it is text)"
    binary = tmp_path / "image.mid"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert reason(binary) == "not a MIDI file (no MThd header)"
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    assert reason(empty) == "empty file"
    for cut in (10, 30, len(good_bytes) // 2):
        truncated = tmp_path / f"cut{cut}.mid"
        truncated.write_bytes(good_bytes[:cut])
        assert reason(truncated).startswith("truncated MIDI file")


def test_riff_wrapped_midi_loads(tmp_path, good_bytes):
    import struct

    body = b"RMID" + b"data" + struct.pack("<I", len(good_bytes)) + good_bytes
    path = tmp_path / "windows.rmi.mid"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert only(path).n_bars == 8


def test_corrupted_event_data(tmp_path, good_bytes):
    bad = tmp_path / "noise.mid"
    bad.write_bytes(good_bytes[:22] + bytes(range(256)) * 4)
    assert reason(bad).startswith("corrupted MIDI (")


@pytest.mark.timeout(60)
def test_endless_variable_length_number_fails_fast(tmp_path):
    # 4 MB of continuation bytes: an unbounded reader takes hours on this (quadratic big-integer shifts)
    path = tmp_path / "endless.mid"
    path.write_bytes(mf.raw_midi(tracks_bytes=[b"\xff" * (4 * 2**20) + b"\x00\x90\x40\x50"]))
    assert reason(path) == "corrupted MIDI (variable-length number longer than 4 bytes)"


def test_division_of_zero_and_smpte_timing(tmp_path):
    notes = mf.tune_notes(8)
    zero = tmp_path / "div0.mid"
    zero.write_bytes(mf.raw_midi(0, tracks_bytes=[mf.note_track_bytes(notes)]))
    assert "division of zero" in reason(zero)
    smpte = tmp_path / "smpte.mid"
    smpte.write_bytes(mf.raw_midi(0xE728, tracks_bytes=[mf.note_track_bytes(notes)]))
    assert "SMPTE" in reason(smpte)


def test_zero_length_notes(tmp_path):
    notes = mf.tune_notes(8)
    all_zero = tmp_path / "zero.mid"
    all_zero.write_bytes(mf.raw_midi(tracks_bytes=[mf.note_track_bytes([(o, p, 0) for o, p, _ in notes])]))
    assert reason(all_zero) == f"no notes (all {len(notes)} notes have zero length)"
    some_zero = tmp_path / "some.mid"
    ghosts = [(o, p + 1, 0) for o, p, _ in notes]
    some_zero.write_bytes(mf.raw_midi(tracks_bytes=[mf.note_track_bytes(notes + ghosts)]))
    assert triples(only(some_zero)) == notes


@pytest.mark.parametrize("uspq, shown", [(1, "6e+07 qpm"), (0, "of zero microseconds per quarter"),
                                         (2**24 - 1, "3.576 qpm")])
def test_absurd_tempo_loads_with_a_warning(tmp_path, uspq, shown):
    path = tmp_path / "tempo.mid"
    notes = mf.tune_notes(8)
    path.write_bytes(mf.raw_midi(tracks_bytes=[mf.note_track_bytes(notes, meta=mf.tempo_meta(uspq))]))
    m = only(path)
    assert triples(m) == notes  # the grid is in beats: the tempo cannot break it
    assert m.tempo_qpm == 120.0
    assert m.meta["warnings"] == [f"tempo {shown} is implausible; using 120 qpm"]


@pytest.mark.parametrize(
    "numerator, power, expected",
    [
        (7, 5, "meter 7/32 is off the 16th grid"),
        (0, 2, "meter 0/4 is invalid"),
        (255, 2, "meter 255/4 has bars too long (1020 steps > 64)"),
        (4, 200, "meter 4/2^200 is off the 16th grid"),
        (1, 4, "meter 1/16 has bars too short for a melody (1 step < 4)"),
        (3, 4, "meter 3/16 has bars too short for a melody (3 steps < 4)"),
    ],
)
def test_absurd_time_signatures(tmp_path, numerator, power, expected):
    path = tmp_path / "meter.mid"
    meta = mf.time_signature_meta(numerator, power)
    path.write_bytes(mf.raw_midi(tracks_bytes=[mf.note_track_bytes(mf.tune_notes(8), meta=meta)]))
    assert reason(path) == expected


def test_a_storm_of_meter_changes_is_refused(tmp_path):
    meters = ((0, 2, 4), *((k, 1 + k % 3, 4) for k in range(1, 600)))  # k=1 restates 2/4
    path = mf.write(tmp_path / "storm.mid", mf.track(mf.tune_notes(8), name="M"),
                    conductor_track=mf.conductor(meters=meters))
    assert reason(path) == "too many meter changes (598 > 512)"


def test_undecodable_key_signature_is_ignored(tmp_path):
    path = tmp_path / "key.mid"
    meta = mf.meta_event(0x59, bytes([20, 5]))  # "20 sharps, mode 5"
    path.write_bytes(mf.raw_midi(tracks_bytes=[mf.note_track_bytes(mf.tune_notes(8), meta=meta)]))
    m = only(path)
    assert m.meta["key_source"] == "estimated (invalid key signature)"


def test_stuck_note_is_cut_and_a_far_away_note_does_not_blow_up(tmp_path):
    notes = mf.tune_notes(8)
    body = mf.note_track_bytes(notes)[:-4]
    # a note-on whose note-off comes 2^28 ticks later, then a lone note another 2^28 ticks on
    body += b"\x00\x90\x40\x50" + b"\xff\xff\xff\x7f\x80\x40\x00" + b"\xff\xff\xff\x7f\x90\x41\x50\x10\x80\x41\x00"
    path = tmp_path / "stuck.mid"
    path.write_bytes(mf.raw_midi(tracks_bytes=[body + b"\x00\xff\x2f\x00"]))
    m = only(path)
    assert m.notes[-1] == Note(128, 64, 8 * 16)
    assert any("cut" in w for w in m.meta["warnings"])


def test_drums_only_and_no_notes(tmp_path):
    drums = mf.write(tmp_path / "drums.mid", mf.track(mf.drum_notes(8), name="Kit", channel=9))
    assert reason(drums) == "drums only"
    silent = mf.write(tmp_path / "silent.mid", mf.track([], name="Melody"))
    assert reason(silent) == "no notes"


def test_too_large_is_refused_without_reading(tmp_path):
    big = tmp_path / "huge.mid"
    with open(big, "wb") as fh:  # sparse: 42 MB on paper, nothing on disk
        fh.write(b"MThd")
        fh.truncate(42 * 2**20)
    assert reason(big) == "too large (42 MB > 8 MB)"
    assert reason(big, max_file_mb=20) == "too large (42 MB > 20 MB)"


def test_missing_fifo_and_unreadable_files(tmp_path, monkeypatch, good_bytes):
    assert reason(tmp_path / "nope.mid") == "does not exist"
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.mid"
        os.mkfifo(fifo)
        assert reason(fifo) == "not a regular file"  # reading it would block forever
    locked = tmp_path / "locked.mid"
    locked.write_bytes(good_bytes)
    real_open = open

    def refusing_open(file, *args, **kwargs):
        if Path(file) == locked:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    # root reads anything whatever chmod says, so the refusal is simulated where the reader opens files
    monkeypatch.setattr("builtins.open", refusing_open)
    assert reason(locked) == "unreadable (Permission denied)"


# --- hostile files: every reader step near-linear ---------------------------------------------------


def reader_work(data: bytes, tmp_path, **settings) -> int:
    """Work done reading a file: Python lines and calls run (a deterministic count, unlike time), with a
    call that shifts a list (list.pop(0), insert, remove, index) counted as one unit per element."""
    import sys

    path = tmp_path / f"hostile{len(data)}.mid"
    path.write_bytes(data)
    load_midi_melodies(path, ExtractSettings(**settings))  # once untraced: imports and first-call caches
    count = 0

    def trace(frame, event, arg):
        nonlocal count
        count += 1
        return trace

    def profile(frame, event, arg):
        nonlocal count
        if event == "c_call":
            owner = getattr(arg, "__self__", None)
            shifts = isinstance(owner, list) and arg.__name__ in ("pop", "insert", "remove", "index")
            count += len(owner) if shifts else 1

    sys.setprofile(profile)
    sys.settrace(trace)
    try:
        load_midi_melodies(path, ExtractSettings(**settings))
    finally:
        sys.settrace(None)
        sys.setprofile(None)
    return count


@pytest.mark.parametrize("build, settings", [
    (strategies.overlapping_note_ons, {"min_bars": 1}),  # a million overlapping note-ons took 70 s
    (strategies.many_melodies, {"min_bars": 1}),  # a tempo lookup per melody among all tempo changes
])
def test_reading_a_hostile_file_costs_work_in_proportion_to_its_size(tmp_path, build, settings):
    small, large = build(300), build(1200)
    ratio = reader_work(large, tmp_path, **settings) / reader_work(small, tmp_path, **settings)
    size_ratio = len(large) / len(small)
    assert ratio < 1.25 * size_ratio, f"4x the file, {ratio:.1f}x the work: something is quadratic"


def test_a_hostile_file_reads_into_bounded_memory(tmp_path):
    import tracemalloc

    def peak(n: int) -> int:
        path = tmp_path / f"h{n}.mid"
        path.write_bytes(strategies.overlapping_note_ons(n))
        tracemalloc.start()
        try:
            load_midi_melodies(path, ExtractSettings(min_bars=1))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(8000) < 1.25 * 4 * peak(2000)


def test_each_melody_of_a_many_melody_file_carries_only_its_own_warning(tmp_path):
    path = tmp_path / "many.mid"
    path.write_bytes(strategies.many_melodies(50))
    melodies = load_midi_melodies(path, ExtractSettings(min_bars=1))
    assert len(melodies) == 50
    assert [m.meta["warnings"] for m in melodies[:2]] == [["tempo 6e+07 qpm is implausible; using 120 qpm"],
                                                          ["tempo 3e+07 qpm is implausible; using 120 qpm"]]


def test_a_file_too_long_for_a_melody_is_refused_before_anything_is_built(tmp_path):
    # two notes 2^27 ticks apart: never split at rests, that is 2^25 steps (a 256 MB token array)
    body = b"\x00\x90\x3c\x50\x60\x80\x3c\x00" + strategies.varlen(2**27) + b"\x90\x3e\x50\x60\x80\x3e\x00"
    path = tmp_path / "far.mid"
    path.write_bytes(strategies.smf([body]))
    assert reason(path, split_rest_bars=0, min_bars=1) == (
        "too long for a melody (over 262144 steps, never split at rests)")
    assert [m.n_bars for m in load_midi_melodies(path, ExtractSettings(min_bars=1))] == [1, 1]  # split: two


def test_a_file_name_that_is_not_utf8_loads_and_its_name_prints(tmp_path, good_bytes):
    name = os.fsdecode(b"caf\xe9 \xff.mid")  # as the OS hands it over: stray bytes as surrogates
    path = tmp_path / name
    path.write_bytes(good_bytes)
    m = only(path)
    assert m.tune_id == "caf\\xe9 \\xff" and m.title == "caf\\xe9 \\xff"
    assert m.source == str(tmp_path / "caf\\xe9 \\xff.mid")
    m.source.encode("utf-8")  # printable: every encoder takes it
    bad = tmp_path / os.fsdecode(b"bro\xefken.mid")
    bad.write_bytes(b"not midi")
    assert reason(bad) == "not a MIDI file (it is text)"


# --- property: any bytes at all ---------------------------------------------------------------------


@pytest.mark.timeout(300)  # a hang fails here instead of stalling the suite
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=strategies.midi_bytes())
def test_any_bytes_give_melodies_or_a_reason_naming_the_file(tmp_path, data):
    path = tmp_path / "random.mid"
    path.write_bytes(data)
    try:
        melodies = load_midi_melodies(path, ExtractSettings(min_bars=1))
    except UnusableFile as exc:
        assert exc.path == str(path) and exc.reason and str(exc) == f"{path}: {exc.reason}"
        return
    cfg = TokenConfig()
    for m in melodies:  # what loads is a well-formed melody
        assert m.n_steps > 0 and all(0 <= n.onset < m.n_steps and n.duration >= 1 for n in m.notes)
        assert all(cfg.min_pitch <= n.pitch <= cfg.max_pitch for n in m.notes)
        assert decode(encode(m, cfg), m, cfg) == m
