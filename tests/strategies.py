"""Shared generators of hostile input for property tests: MIDI bytes and command-line values.

Plain builders (hostile MIDI files of a given size, for scaling tests) and Hypothesis strategies
(random and mutated MIDI files; any value a user could type for an option). Every test module that
attacks a reader or a command takes them from here.
"""

from __future__ import annotations

import math
import struct

import midi_factory as mf
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

varlen = mf._varlen  # a MIDI variable-length number (the factory's own encoder)


def examples(n: int) -> int:
    """A property test's own number of cases, or the profile's when that is larger: `make fuzz`
    (HYPOTHESIS_PROFILE=deep, tests/conftest.py) gives every property test at least 500."""
    return max(n, hypothesis_settings.default.max_examples)


# ---------------------------------------------------------------------------------------------------
# MIDI files built byte by byte


def smf(track_bodies: list[bytes], division: int = 96) -> bytes:
    """A standard MIDI file of these track bodies (each without its end-of-track event)."""
    return mf.raw_midi(division, 0 if len(track_bodies) == 1 else 1, [body + b"\x00\xff\x2f\x00" for body in track_bodies])


def overlapping_note_ons(n: int, ticks_apart: int = 24) -> bytes:
    """n note-ons of one pitch on one channel, each still sounding when the next starts, then n
    note-offs: every note-off must find the oldest of up to n open notes (a quadratic trap)."""
    body = bytearray(b"\x00\x90\x3c\x50")  # running status from here on
    body += (varlen(ticks_apart) + b"\x3c\x50") * (n - 1)
    body += (varlen(ticks_apart) + b"\x3c\x00") * n  # velocity 0: note-off
    return smf([bytes(body)])


def many_melodies(n: int) -> bytes:
    """n one-bar melodies (4 quarter notes) two bars apart, each after a tempo change of its own, every
    one implausible: n melodies that each look up their tempo among n changes, and n distinct warnings."""
    bar = 4 * 96
    body = bytearray()
    now = 0
    for i in range(n):
        start = i * 3 * bar
        events = [(start, b"\xff\x51\x03" + (1 + i).to_bytes(3, "big"))]  # 1+i microseconds per quarter
        events += [(start + q * 96, bytes([0x90, 60 + q, 80])) for q in range(4)]
        events += [(start + q * 96 + 90, bytes([0x80, 60 + q, 0])) for q in range(4)]
        for tick, data in sorted(events, key=lambda e: e[0]):
            body += varlen(tick - now) + data
            now = tick
    return smf([bytes(body)])


def valid_midi(seed: int = 0, bars: int = 6) -> bytes:
    """A small valid one-melody file (4/4, quarter and eighth notes)."""
    body = bytearray(b"\x00\xff\x58\x04\x04\x02\x18\x08")
    now, tick = 0, 0
    x = seed * 7919 + 1
    while tick < bars * 4 * 96:
        x = (x * 1103515245 + 12345) % 2**31
        pitch, length = 60 + x % 17, 48 if x % 3 else 96
        body += varlen(tick - now) + bytes([0x90, pitch, 80])
        body += varlen(length) + bytes([0x80, pitch, 0])
        now = tick = tick + length
    return smf([bytes(body)])


@st.composite
def mutated_midi(draw) -> bytes:
    """A valid file with some bytes changed, inserted or cut: what damage looks like."""
    data = bytearray(valid_midi(draw(st.integers(0, 50))))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "flip", "insert", "delete", "truncate"]))
        # mostly in the events (past the header and track header), sometimes anywhere
        first = draw(st.sampled_from([0, 22, 22, 22]))
        at = draw(st.integers(min(first, max(0, len(data) - 1)), max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return bytes(data)


def midi_bytes() -> st.SearchStrategy[bytes]:
    """Random bytes, random bytes behind a MIDI header, and mutated valid files."""
    header = st.builds(lambda fmt, n, div, rest: b"MThd" + struct.pack(">IHHH", 6, fmt, n, div) + rest,
                       st.integers(0, 3), st.integers(0, 4), st.integers(0, 0xFFFF), st.binary(max_size=200))
    return st.one_of(st.binary(max_size=300), header, mutated_midi())


# ---------------------------------------------------------------------------------------------------
# Command-line values


def number_texts() -> st.SearchStrategy[str]:
    """What a user might type where a number is expected: small and huge, negative, fractional,
    not finite, not a number at all."""
    special = st.sampled_from(["0", "-0", "-1", "1", "nan", "inf", "-inf", "1e400", "1e-400", "9" * 40, "9" * 400, "9" * 5000, "0x10",
                               "", " ", "1_000", "one", "2.5", "-2.5", "1e9", "4294967296", "\u0663"])
    ints = st.integers(-(2**70), 2**70).map(str)
    floats = st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f) if not math.isnan(f) else "nan")
    return st.one_of(special, ints, floats, st.text(max_size=12))


def path_texts() -> st.SearchStrategy[str]:
    """Path arguments: missing, odd and very long names (no NUL byte: no OS argument can hold one)."""
    chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    return st.one_of(st.text(chars, max_size=20), st.just("x" * 5000), st.just("/nonexistent/a.mid"), st.just("."))


# --- JSON documents (config.json, run.json, report.json): any value at any key --------------------------

def json_leaves(doc, path=()):
    """The key paths of every leaf of a JSON document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from json_leaves(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from json_leaves(v, (*path, i))
    else:
        yield path


def set_leaf(doc, path, value):
    """Put value at the leaf; returns the value it replaced (to put back: a 6 MB report is not copied per example)."""
    for k in path[:-1]:
        doc = doc[k]
    old, doc[path[-1]] = doc[path[-1]], value
    return old


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                        st.lists(st.integers(-5, 5), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
