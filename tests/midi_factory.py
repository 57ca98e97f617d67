"""Helpers that write MIDI files for the tests: everyday multi-track files and hostile ones.

Positions are given in 16th-note steps and written in ticks (480 per quarter) with mido, so that the
tests know exactly which melody the pipeline should find, whatever the tempo map says.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import mido

TPQ = 480
TICKS_PER_STEP = TPQ // 4


def tune_notes(bars: int, steps_per_bar: int = 16, seed: int = 0, low: int = 62, high: int = 84,
               start: int = 0) -> list[tuple[int, int, int]]:
    """A deterministic monophonic line filling `bars` bars: (onset, pitch, duration) in steps."""
    rng = random.Random(seed)
    notes, step, pitch = [], start, (low + high) // 2
    end = start + bars * steps_per_bar
    while step < end:
        duration = min(rng.choice([2, 2, 4, 4, 4, 6, 8]), end - step)
        pitch = min(high, max(low, pitch + rng.choice([-4, -2, -1, 1, 2, 3, 5])))
        notes.append((step, pitch, duration))
        step += duration
    return notes


def chord_notes(bars: int, steps_per_bar: int = 16, root: int = 55) -> list[tuple[int, int, int]]:
    """Block triads, two per bar: a polyphonic accompaniment."""
    notes = []
    half = steps_per_bar // 2
    for b in range(bars * 2):
        r = root + (0, 5, 7, 3)[b % 4]
        for p in (r, r + 4, r + 7):
            notes.append((b * half, p, half))
    return notes


def drum_notes(bars: int, steps_per_bar: int = 16) -> list[tuple[int, int, int]]:
    return [(s, 36 if s % 8 == 0 else 42, 1) for s in range(0, bars * steps_per_bar, 2)]


def track(notes, name: str | None = None, channel: int = 0, program: int = 0, velocity: int = 80,
          jitter: int = 0, seed: int = 0) -> mido.MidiTrack:
    """A track of (onset, pitch, duration) notes in steps; `jitter` moves each event by up to that
    many ticks, like a human player."""
    rng = random.Random(seed)
    events = []
    for onset, pitch, duration in notes:
        on = onset * TICKS_PER_STEP + (rng.randint(-jitter, jitter) if jitter else 0)
        off = (onset + duration) * TICKS_PER_STEP + (rng.randint(-jitter, 0) if jitter else 0)
        events.append((max(0, on), 1, mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)))
        events.append((max(0, off), 0, mido.Message("note_off", note=pitch, velocity=0, channel=channel)))
    return _to_track(events, name, channel, program)


def _to_track(events, name, channel, program) -> mido.MidiTrack:
    t = mido.MidiTrack()
    if name is not None:
        t.append(mido.MetaMessage("track_name", name=name, time=0))
    if channel != 9:
        t.append(mido.Message("program_change", program=program, channel=channel, time=0))
    now = 0
    for tick, _order, msg in sorted(events, key=lambda e: (e[0], e[1])):
        t.append(msg.copy(time=tick - now))
        now = tick
    t.append(mido.MetaMessage("end_of_track", time=0))
    return t


def conductor(tempos=((0, 120.0),), meters=((0, 4, 4),), key: str | None = "G", title: str | None = None):
    """Track 0: title, tempo map, time signatures and key, positions in steps."""
    events = []
    for step, qpm in tempos:
        events.append((step * TICKS_PER_STEP, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(qpm))))
    for step, num, den in meters:
        events.append((step * TICKS_PER_STEP, 0, mido.MetaMessage("time_signature", numerator=num, denominator=den)))
    if key:
        events.append((0, 0, mido.MetaMessage("key_signature", key=key)))
    t = mido.MidiTrack()
    if title:
        t.append(mido.MetaMessage("track_name", name=title, time=0))
    now = 0
    for tick, _o, msg in sorted(events, key=lambda e: e[0]):
        t.append(msg.copy(time=tick - now))
        now = tick
    t.append(mido.MetaMessage("end_of_track", time=0))
    return t


def write(path, *tracks, conductor_track=None, fmt: int = 1) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mid = mido.MidiFile(type=fmt, ticks_per_beat=TPQ)
    mid.tracks.append(conductor_track if conductor_track is not None else conductor())
    mid.tracks.extend(tracks)
    mid.save(path)
    return path


def write_format0(path, *tracks, conductor_track=None) -> Path:
    """All tracks merged into one (format 0), channels kept apart."""
    path = Path(path)
    merged = mido.merge_tracks([conductor_track or conductor(), *tracks])
    mid = mido.MidiFile(type=0, ticks_per_beat=TPQ)
    mid.tracks.append(merged)
    mid.save(path)
    return path


def simple_tune(path, bars: int = 8, meter=(4, 4), seed: int = 0, **conductor_args) -> Path:
    spb = meter[0] * 16 // meter[1]
    return write(path, track(tune_notes(bars, spb, seed), name="Melody"),
                 conductor_track=conductor(meters=((0, *meter),), **conductor_args))


# ---------------------------------------------------------------------------------------------------
# Hostile files


def raw_midi(division: int = TPQ, fmt: int = 0, tracks_bytes: list[bytes] | None = None) -> bytes:
    """A MIDI file assembled by hand, for headers and events mido refuses to write."""
    tracks_bytes = tracks_bytes or []
    out = b"MThd" + struct.pack(">IHHH", 6, fmt, max(1, len(tracks_bytes)), division)
    for body in tracks_bytes:
        out += b"MTrk" + struct.pack(">I", len(body)) + body
    return out


def note_track_bytes(notes, ticks_per_step: int = TICKS_PER_STEP, meta: bytes = b"") -> bytes:
    """Track chunk body: optional raw meta events at tick 0, then notes (delta times < 128 steps)."""
    body = bytearray(meta)
    now = 0
    events = []
    for i, (onset, pitch, duration) in enumerate(notes):
        # order: at one tick, earlier notes' note-offs, then note-ons, then zero-length notes' offs
        events.append((onset * ticks_per_step, 1, i, 0x90, pitch, 80))
        events.append(((onset + duration) * ticks_per_step, 0 if duration else 2, i, 0x80, pitch, 0))
    for tick, _order, _i, status, pitch, vel in sorted(events):
        body += _varlen(tick - now) + bytes([status, pitch, vel])
        now = tick
    body += b"\x00\xff\x2f\x00"
    return bytes(body)


def meta_event(kind: int, data: bytes) -> bytes:
    return b"\x00\xff" + bytes([kind]) + _varlen(len(data)) + data


def tempo_meta(microseconds_per_quarter: int) -> bytes:
    return meta_event(0x51, microseconds_per_quarter.to_bytes(3, "big"))


def time_signature_meta(numerator: int, denominator_power: int) -> bytes:
    return meta_event(0x58, bytes([numerator, denominator_power, 24, 8]))


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))
