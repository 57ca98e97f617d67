"""The bundled corpus in midi_data/ (built by scripts/build_corpus.py) is complete and readable.

These tests read only the committed files: no music21.
"""

import csv
import struct
from pathlib import Path

import pretty_midi
import pytest

MIDI_DATA = Path(__file__).resolve().parent.parent / "midi_data"
COLUMNS = ["id", "title", "collection", "meter", "key", "bars", "transcriber", "source_file", "x_number"]
COLLECTIONS = {"oneills1850", "ryansMammoth", "airdsAirs"}


@pytest.fixture(scope="module")
def manifest():
    with open(MIDI_DATA / "manifest.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def midi_path(row):
    return MIDI_DATA / row["collection"] / f"{row['id']}.mid"


def bar_and_beat_notes(pm, bar_quarters):
    """{bar index: sorted [(quarters into the bar, pitch)]} of the only instrument."""
    res = pm.resolution
    bars = {}
    for n in pm.instruments[0].notes:
        quarters = pm.time_to_tick(n.start) / res
        bar = int(quarters // bar_quarters)
        bars.setdefault(bar, []).append((round(quarters - bar * bar_quarters, 3), n.pitch))
    return {b: sorted(v) for b, v in bars.items()}


def test_manifest_has_the_promised_columns_and_size(manifest):
    fieldnames, rows = manifest
    assert fieldnames == COLUMNS
    assert len(rows) >= 3500
    assert len({r["id"] for r in rows}) == len(rows), "tune ids must be unique"
    assert {r["collection"] for r in rows} == COLLECTIONS
    for r in rows:
        assert r["title"] and r["source_file"].endswith(".abc"), r
        assert int(r["bars"]) >= 2 and int(r["x_number"]) >= 0, r


def test_every_manifest_file_is_a_two_track_midi_file(manifest):
    _, rows = manifest
    on_disk = {p.relative_to(MIDI_DATA) for p in MIDI_DATA.glob("*/*.mid")}
    listed = {midi_path(r).relative_to(MIDI_DATA) for r in rows}
    assert on_disk == listed, "midi_data/ holds exactly the files of the manifest"
    for row in rows:
        head = midi_path(row).read_bytes()[:14]
        # MThd, header length 6, format 1, two tracks (tempo/meter/key, then the melody)
        assert head[:4] == b"MThd" and struct.unpack(">IHH", head[4:12]) == (6, 1, 2), row["id"]


def test_manifest_files_load_as_one_monophonic_melody_in_their_meter(manifest):
    # Every 8th tune (about 500 files): loading all 4,000 with pretty_midi takes half a minute, and
    # the engine's corpus tests load every bundled tune anyway.
    _, rows = manifest
    for row in rows[::8]:
        pm = pretty_midi.PrettyMIDI(str(midi_path(row)))
        assert len(pm.instruments) == 1, row["id"]
        inst = pm.instruments[0]
        assert inst.notes and not inst.is_drum and inst.name == row["title"], row["id"]
        ts = pm.time_signature_changes[0]
        assert f"{ts.numerator}/{ts.denominator}" == row["meter"], row["id"]
        starts = [n.start for n in inst.notes]
        assert len(set(starts)) == len(starts), f"{row['id']} is not monophonic"


def test_aabb_tune_is_written_out_with_both_repeats():
    # Aird's book 1 X:4 "I'll Touzle your Kurchy" (6/8): upbeat + 8 bars :| upbeat + 8 bars :|,
    # i.e. 16 bars in the ABC. Checked by hand against the ABC text.
    pm = pretty_midi.PrettyMIDI(str(MIDI_DATA / "airdsAirs" / "airdsAirs-0004.mid"))
    ts = pm.time_signature_changes[0]
    assert (ts.numerator, ts.denominator) == (6, 8)
    bar_q = 3.0
    bars = bar_and_beat_notes(pm, bar_q)
    # The upbeat (an eighth, B) is padded so that bar 1 starts on the file's second downbeat.
    assert bars[0] == [(2.5, 71)]
    full_bars = [b for b in bars if b >= 1]
    assert max(full_bars) == 32, "16 bars in the ABC, each part played twice"
    # AABB, not AABAAB: bars 1-7 come back as 9-15, bars 17-23 as 25-31, and the parts differ.
    assert [bars[b] for b in range(1, 8)] == [bars[b] for b in range(9, 16)]
    assert [bars[b] for b in range(17, 24)] == [bars[b] for b in range(25, 32)]
    assert bars[18] != bars[2]


def test_manifest_row_of_the_hand_checked_tune(manifest):
    _, rows = manifest
    row = next(r for r in rows if r["id"] == "airdsAirs-0004")
    assert row["title"] == "I'll Touzle your Kurchy."
    assert (row["meter"], row["key"], row["source_file"], row["x_number"]) == ("6/8", "E minor", "book1.abc", "4")
    assert int(row["bars"]) == 33  # the upbeat's bar + 32 full bars
    assert "Jack Campin" in row["transcriber"]


def test_sources_name_the_collections_and_how_to_rebuild():
    text = (MIDI_DATA / "SOURCES.md").read_text(encoding="utf-8")
    for name in ("O'Neill", "Ryan's Mammoth", "Aird", "music21", "make corpus"):
        assert name in text
