"""MIDI file -> melodies on the 16th grid, and a melody -> pretty_midi object (docs/design.md section 4).

Reading works on MIDI ticks (via mido, the parser pretty_midi itself uses), never on seconds: a tick
divided by the file's ticks-per-quarter is a position in beats, so tempo changes cannot move notes off
the grid. Every way a file can fail ends in `UserError("<file>: <reason>")` with a short reason that the
corpus report and the GUI show as is ("not a MIDI file", "drums only", "too short (3 bars < 4)", ...).
"""

from __future__ import annotations

import bisect
import io
import math
import os
import re
import stat
import struct
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from engine.core import quiet_imports
from engine.core.errors import UserError
from engine.music.melody import STEPS_PER_QUARTER, Melody, Note, steps_per_bar_for
from engine.music.scales import SCALES
from engine.music.tokens import TokenConfig

DRUM_CHANNEL = 9  # General MIDI channel 10, counted from 0
MELODY_NAME = re.compile(r"melod|lead|voice|vocal|tune|sing|solo|theme|air\b", re.IGNORECASE)
MAX_STEPS_PER_BAR = 64  # 16/4; anything longer is not a bar a folk tune has
# 1/8, 1/16, 3/16 ...: shorter than a quarter note, such a "meter" marks an odd bar, not a way to count
MIN_STEPS_PER_BAR = 4
MAX_METER_CHANGES = 512  # more is a damaged or machine-made file, and each change costs a pass
# The longest a file's melodies may be together, in 16th steps: 16,384 bars of 4/4, over 9 hours at 120
# qpm, far beyond any tune, yet it bounds what a file can make the app allocate (its tokens, and the
# per-bar metrics of `main.py metrics`) whatever its notes' positions or the rest that splits melodies.
MAX_FILE_STEPS = 262_144
# A track is chords, not a melody, when more than half of its onsets start this many notes at once
# (block chords). Two (a fiddle's double stops, a tune doubled in thirds) still reads as a tune.
CHORD_SIZE = 3
MAX_CHORD_SHARE = 0.5
PLAUSIBLE_QPM = (20.0, 480.0)
DEFAULT_QPM = 120.0


@dataclass(frozen=True)
class ExtractSettings:
    """How MIDI files become melodies; every field is part of the corpus cache key."""

    min_bars: int = 4  # melodies shorter than this are dropped
    split_rest_bars: float = 1.0  # a rest at least this many bars long splits a melody; 0 = never split
    # Larger files are refused before parsing: mido is pure Python (~2 s per MB), and a folk tune is a
    # few kB, so 8 MB is generous for any melody file and bounds the wait to seconds, not minutes.
    max_file_mb: float = 8.0
    max_note_bars: int = 8  # a note held longer is a lost note-off; it is cut to this length
    token_config: TokenConfig = field(default_factory=TokenConfig)

    def __post_init__(self):
        if self.min_bars < 1:
            raise UserError(f"the minimum melody length must be at least 1 bar, not {self.min_bars}")
        if self.split_rest_bars < 0:
            raise UserError(f"the rest that splits melodies must be 0 (never) or more bars, not {self.split_rest_bars:g}")
        if self.max_file_mb <= 0 or self.max_note_bars < 1:
            raise UserError("the file size limit and the longest note must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ExtractSettings:
        d = dict(d)
        d["token_config"] = TokenConfig(**d.get("token_config", {}))
        return cls(**d)


# ---------------------------------------------------------------------------------------------------
# Reading a file into tracks of notes in ticks


@dataclass
class _Track:
    name: str
    channel: int
    notes: list  # (start_tick, end_tick, pitch)

    @property
    def is_drum(self) -> bool:
        return self.channel == DRUM_CHANNEL


@dataclass
class _Score:
    ticks_per_quarter: int
    tracks: list
    time_signatures: list  # (tick, numerator, denominator)
    tempos: list  # (tick, microseconds per quarter)
    keys: list  # (tick, mido key string)
    title: str
    zero_length_notes: int
    bad_key_signature: bool = False


class UnusableFile(UserError):
    """A file that gives no melody: `path` (printable) and the short `reason` the reports show."""

    def __init__(self, path, reason: str):
        self.path = printable(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def printable(path) -> str:
    """A file name as text that can always be shown, printed and written as UTF-8 JSON, on one line.

    POSIX file names are bytes; Python hands a name that is not valid UTF-8 over with its stray bytes as
    lone surrogates (surrogateescape), which the file system accepts back but no UTF-8 encoder, JSON
    reader or Qt label does. Those bytes, and control characters (a newline is a legal name character),
    are shown as \\xNN escapes: 'caf\\xe9.mid' for b'caf\\xe9.mid'.
    """
    raw = os.fspath(path)
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", "backslashreplace")
    else:
        try:
            text = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a lone surrogate that no OS name decodes to: show it as \\udXXX
            text = raw.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}",
                        text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # C0, DEL, C1 and the Unicode line breaks


def _fail(path, reason: str):
    raise UnusableFile(path, reason)


def _read_bytes(path: Path, settings: ExtractSettings) -> bytes:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        _fail(path, "does not exist")
    except OSError as exc:
        _fail(path, f"unreadable ({exc.strerror or exc})")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device named .mid would block the read forever
        _fail(path, "not a regular file")
    if st.st_size == 0:
        _fail(path, "empty file")
    limit = settings.max_file_mb * 1024 * 1024
    if st.st_size > limit:
        _fail(path, f"too large ({st.st_size / 2**20:.0f} MB > {settings.max_file_mb:g} MB)")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        _fail(path, f"unreadable ({exc.strerror or exc})")


def _unwrap_rmid(data: bytes) -> bytes:
    """The standard MIDI file inside a RIFF "RMID" container (Windows' .rmi, sometimes named .mid)."""
    if not (data[:4] == b"RIFF" and data[8:12] == b"RMID"):
        return data
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        if chunk == b"data":
            return data[offset + 8 : offset + 8 + size]
        offset += 8 + size + (size & 1)
    return data


def _check_header(path, data: bytes) -> None:
    """The header checks mido does not do (or does with an unhelpful exception)."""
    if not data.startswith(b"MThd"):
        head = data[:512]
        looks_text = all(b in b"\t\n\r" or 32 <= b < 127 for b in head)
        _fail(path, "not a MIDI file (it is text)" if looks_text else "not a MIDI file (no MThd header)")
    if len(data) < 14:
        _fail(path, "truncated MIDI file (incomplete header)")
    _length, fmt, n_tracks, division = struct.unpack(">IHHH", data[4:14])
    if fmt > 2:
        _fail(path, f"not a MIDI file (unknown format {fmt})")
    if n_tracks == 0:
        _fail(path, "no tracks")
    if division == 0:
        _fail(path, "corrupted MIDI (division of zero ticks per quarter note)")
    if division & 0x8000:
        _fail(path, "SMPTE time division is not supported (only ticks per quarter note)")


_VARLEN_BOUNDED = False


def _bound_mido_varlen() -> None:
    """Make mido refuse variable-length numbers longer than the 4 bytes the MIDI spec allows.

    mido 1.3 reads them without a limit, shifting an ever larger integer: a few MB of 0xFF bytes in a
    crafted file take hours (quadratic), which is a hang. Only mido's reader is replaced, once, by the
    same loop with the spec's bound; valid files read exactly as before.
    """
    global _VARLEN_BOUNDED
    if _VARLEN_BOUNDED:
        return
    from mido.midifiles import midifiles

    read_byte = midifiles.read_byte

    def read_variable_int(infile):
        value = 0
        for _ in range(4):
            byte = read_byte(infile)
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                return value
        raise OSError("variable-length number longer than 4 bytes")

    midifiles.read_variable_int = read_variable_int
    _VARLEN_BOUNDED = True


def _parse(path: Path, data: bytes):
    import mido

    _bound_mido_varlen()
    from mido.midifiles.meta import KeySignatureError

    try:
        return mido.MidiFile(file=io.BytesIO(data)), False
    except KeySignatureError:
        # A key signature mido cannot decode (e.g. 20 sharps) says nothing about the notes: retry with
        # every key signature neutralised and estimate the key from the notes instead.
        try:
            return mido.MidiFile(file=io.BytesIO(_neutralise_key_signatures(data))), True
        except Exception as exc:
            _fail(path, f"corrupted MIDI ({_first_line(exc)})")
    except EOFError:
        _fail(path, "truncated MIDI file")
    except Exception as exc:  # mido raises OSError, ValueError, KeyError, ... on damaged data
        _fail(path, f"corrupted MIDI ({_first_line(exc)})")


def _neutralise_key_signatures(data: bytes) -> bytes:
    return re.sub(rb"\xff\x59\x02..", b"\xff\x59\x02\x00\x00", data, flags=re.DOTALL)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:80] if text else type(exc).__name__


def _read_track(mtrack, time_sigs: list, tempos: list, keys: list) -> tuple[str, dict[int, list]]:
    """A track's name and its notes (start tick, end tick, pitch) by channel; its meter, tempo and key
    events are appended to the score-wide lists."""
    tick = 0
    name = ""
    # (channel, pitch) -> start ticks of the notes still sounding. A note-off ends the oldest one
    # (first in, first out): legato repeats of a pitch often overlap its next note-on. A deque, so
    # that a hostile file of a million overlapping note-ons costs a million steps, not a million².
    open_notes: dict[tuple[int, int], deque[int]] = {}
    by_channel: dict[int, list] = {}
    for msg in mtrack:
        tick += msg.time
        kind = msg.type
        if kind == "note_on" and msg.velocity > 0:
            key = (msg.channel, msg.note)
            starts = open_notes.get(key)
            if starts is None:
                starts = open_notes[key] = deque()
            starts.append(tick)
        elif kind == "note_off" or kind == "note_on":
            starts = open_notes.get((msg.channel, msg.note))
            if starts:
                by_channel.setdefault(msg.channel, []).append((starts.popleft(), tick, msg.note))
        elif kind == "time_signature":
            time_sigs.append((tick, msg.numerator, msg.denominator))
        elif kind == "set_tempo":
            tempos.append((tick, msg.tempo))
        elif kind == "key_signature":
            keys.append((tick, msg.key))
        elif kind == "track_name" and not name:
            name = msg.name.strip()
    for (channel, pitch), starts in open_notes.items():  # never released: ends with the track
        by_channel.setdefault(channel, []).extend((start, tick, pitch) for start in starts)
    return name, by_channel


def _channel_tracks(index: int, name: str, by_channel: dict[int, list]) -> tuple[list[_Track], int]:
    """One track of the file as a _Track per channel that has notes, and how many zero-length notes it dropped."""
    tracks: list[_Track] = []
    zero_length = 0
    for channel in sorted(by_channel):
        notes = [n for n in by_channel[channel] if n[1] > n[0]]
        zero_length += len(by_channel[channel]) - len(notes)
        if not notes:
            continue
        label = name or f"track {index + 1}"
        if len(by_channel) > 1:
            label += f" (channel {channel + 1})"
        tracks.append(_Track(label, channel, sorted(notes)))
    return tracks, zero_length


def _read_score(path: Path, settings: ExtractSettings) -> _Score:
    data = _unwrap_rmid(_read_bytes(path, settings))
    _check_header(path, data)
    midi, bad_keys = _parse(path, data)
    tracks: list[_Track] = []
    time_sigs, tempos, keys = [], [], []
    title = ""
    zero_length = 0
    for index, mtrack in enumerate(midi.tracks):
        name, by_channel = _read_track(mtrack, time_sigs, tempos, keys)
        if index == 0 and name and not by_channel:
            title = name  # a conductor track's name is the sequence's title
        channel_tracks, dropped = _channel_tracks(index, name, by_channel)
        tracks += channel_tracks
        zero_length += dropped
    if bad_keys:
        keys = []
    return _Score(midi.ticks_per_beat, tracks, time_sigs, tempos, keys, title, zero_length, bad_keys)


# ---------------------------------------------------------------------------------------------------
# Choosing the melody track


def _monophony(notes, tpq: int) -> float:
    """Share of notes that start after the previous notes of the track have ended (1.0 = one voice).
    Legato playing overlaps notes a little; an overlap up to a 32nd note does not count."""
    if len(notes) < 2:
        return 1.0
    arr = np.asarray(notes)
    latest_end = np.maximum.accumulate(arr[:-1, 1])
    return float(np.mean(arr[1:, 0] + tpq / 8 >= latest_end))


def chord_share(notes, tpq: int) -> float:
    """Share of a track's onset steps (16th grid) at which CHORD_SIZE or more different pitches start."""
    if not len(notes):
        return 0.0
    arr = np.asarray(notes, dtype=np.int64)
    steps = _to_step(arr[:, 0], tpq)  # integer arithmetic: works on arrays too
    onsets = np.unique(np.stack([steps, arr[:, 2]], axis=1), axis=0)[:, 0]  # one row per (step, pitch)
    _, per_step = np.unique(onsets, return_counts=True)
    return float(np.mean(per_step >= CHORD_SIZE))


def _choose_track(path, score: _Score) -> tuple[_Track, str]:
    if not score.tracks:
        if score.zero_length_notes:
            _fail(path, f"no notes (all {score.zero_length_notes} notes have zero length)")
        _fail(path, "no notes")
    pitched = [t for t in score.tracks if not t.is_drum]
    if not pitched:
        _fail(path, "drums only")
    # Block chords are an accompaniment: their top notes are not a tune, however high they sound.
    shares = [chord_share(t.notes, score.ticks_per_quarter) for t in pitched]
    melodic = [t for t, share in zip(pitched, shares) if share <= MAX_CHORD_SHARE]
    if not melodic:
        at_once = f"start {CHORD_SIZE} or more notes at once"
        _fail(path, f"chords, not a melody ({shares[0]:.0%} of the onsets {at_once})" if len(pitched) == 1 else
              f"chords, not a melody (in each of its {len(pitched)} pitched tracks, over {MAX_CHORD_SHARE:.0%} "
              f"of the onsets {at_once})")
    chordal = len(pitched) - len(melodic)
    pitched = melodic
    if len(pitched) == 1:
        return pitched[0], "the only pitched track" + (" that is not chords" if chordal else "")
    named = [t for t in pitched if MELODY_NAME.search(t.name)]
    if named:
        best = max(named, key=lambda t: len(t.notes))
        return best, f"named '{best.name}'"
    # A melody is one voice, above the accompaniment; tracks with a handful of notes (a fill, a
    # count-in) are not candidates however high they are. "Most monophonic" leaves some slack: a fiddle
    # tune with a few double stops is still the tune, and should beat a strictly one-voice bass line.
    most = max(len(t.notes) for t in pitched)
    candidates = [t for t in pitched if len(t.notes) >= 0.1 * most]
    mono = {id(t): _monophony(t.notes, score.ticks_per_quarter) for t in candidates}
    best_mono = max(mono.values())
    candidates = [t for t in candidates if mono[id(t)] >= best_mono - 0.25]
    best = max(candidates, key=lambda t: float(np.mean([n[2] for n in t.notes])))
    return best, f"most monophonic and highest of {len(pitched)} pitched tracks"


# ---------------------------------------------------------------------------------------------------
# Quantizing, reducing to one voice, splitting into melodies


def _to_step(tick: int, tpq: int) -> int:
    """Nearest 16th-note step, halves rounded up (exact integer arithmetic, no float drift)."""
    return (2 * STEPS_PER_QUARTER * tick + tpq) // (2 * tpq)


def _skyline(notes, tpq: int) -> list[tuple[int, int, int]]:
    """Quantized (onset, pitch, end) of the highest voice: a new onset under a held higher note is
    dropped; otherwise the highest note starting at a step cuts whatever sounds before it."""
    by_onset: dict[int, tuple[int, int]] = {}
    for start, end, pitch in notes:
        onset = _to_step(start, tpq)
        stop = max(_to_step(end, tpq), onset + 1)  # a grace note still sounds for one step
        if onset not in by_onset or pitch > by_onset[onset][0]:
            by_onset[onset] = (pitch, stop)
    line: list[list[int]] = []
    for onset in sorted(by_onset):
        pitch, stop = by_onset[onset]
        if line:
            prev = line[-1]
            if prev[2] > onset and prev[1] > pitch:
                continue
            prev[2] = min(prev[2], onset)
        line.append([onset, pitch, stop])
    return [tuple(n) for n in line]


def _meter_segments(score: _Score, tpq: int) -> list[list]:
    """[anchor, start, end, numerator, denominator] spans of one meter (steps; 4/4 before any signature).
    Notes with onsets in [start, end) belong to the span; its bar lines are at anchor + k * bar."""
    at_step: dict[int, tuple[int, int]] = {}
    for tick, num, den in sorted(score.time_signatures, key=lambda t: t[0]):
        at_step[_to_step(tick, tpq)] = (num, den)  # several at one step: the last one counts
    if 0 not in at_step:
        at_step[0] = (4, 4)
    spans: list[list] = []
    for step in sorted(at_step):
        meter = at_step[step]
        if spans and (spans[-1][3], spans[-1][4]) == meter:
            continue  # a restated signature is not a change
        if spans:
            spans[-1][2] = step
        spans.append([step, step, math.inf, *meter])
    return spans


def _bar_steps(span) -> int | None:
    return None if _meter_problem(span[3], span[4]) else steps_per_bar_for(span[3], span[4])


def _shift_from(line: np.ndarray, at: int, shift: int, bar_start: int) -> None:
    """Move everything from step `at` by `shift` steps (in place, vectorised: a file may hold a million
    notes). Removing steps cuts the note sounding in them; inserting steps holds the last note begun
    before `at` through them when it sounds into the irregular bar."""
    onset, end = line[:, 0], line[:, 2]
    after = onset >= at
    n_before = int(np.count_nonzero(~after))  # the line is sorted by onset
    if shift < 0:
        cut = ~after & (end > at + shift)
        end[cut] = np.maximum(end[cut] + shift, at + shift)
    elif n_before:
        last = n_before - 1
        if end[last] >= bar_start:
            end[last] = max(int(end[last]), at) + shift
    onset[after] += shift
    end[after] += shift


def _shift_to_bar_line(line: np.ndarray, at: int, over: int, bar: int) -> int:
    """Steps to add at `at` (negative: to remove) so the music after it lands on the bar lines again;
    `over` is how many steps `at` lies past the last bar line of the meter around it."""
    if over and not np.any((line[:, 0] >= at - over) & (line[:, 0] < at)):
        return -over  # those steps hold no note onset: drop them, nothing is lost
    return (bar - over) % bar  # insert steps; the note sounding there is held


def _absorb_irregular_bars(line: list, spans: list[list]) -> tuple[list, list[list], list[str]]:
    """Keep a tune whole across the odd short bar that notation programs write as a meter change.

    A span shorter than a bar of its neighbours is not a new meter but an irregular bar:
    - between two spans of the same meter: the steps past the bar line are dropped when no note starts
      in them, else steps are inserted (the note sounding there is held) so that the music after it
      lands on the bar lines again, and the tune goes on as one melody;
    - before a span of another meter (or at the start): it is that span's pickup;
    - at the end: the previous span's last, incomplete bar.
    """
    line = np.array(line, dtype=np.int64).reshape(-1, 3)
    warnings: list[str] = []
    i = 0
    while i < len(spans):
        _anchor, start, end, num, den = spans[i]
        if end == math.inf:  # the last span is as long as what sounds in it
            tail = line[line[:, 0] >= start]
            length = int(tail[:, 2].max()) - start if len(tail) else 0
        else:
            length = end - start
        prev = spans[i - 1] if i > 0 else None
        nxt = spans[i + 1] if i + 1 < len(spans) else None
        prev_bar = _bar_steps(prev) if prev else None
        next_bar = _bar_steps(nxt) if nxt else None
        same_around = prev and nxt and (prev[3], prev[4]) == (nxt[3], nxt[4])
        if same_around and prev_bar and length < prev_bar:
            at = nxt[1]
            shift = _shift_to_bar_line(line, at, (at - prev[0]) % prev_bar, prev_bar)
            if shift:
                _shift_from(line, at, shift, start)
                for later in spans[i + 1 :]:
                    later[0] += shift
                    later[1] += shift
                    later[2] += shift
            prev[2] = nxt[2]
            del spans[i : i + 2]
            warnings.append(f"an irregular bar ({num}/{den}) was evened out to the bars around it")
            continue
        if nxt and next_bar and length < next_bar and not same_around:
            nxt[1] = start  # a pickup: the next span's bar lines extend back over it
            del spans[i]
            continue
        if prev and not nxt and prev_bar and length < prev_bar:
            prev[2] = end
            del spans[i]
            continue
        i += 1
    return line, spans, warnings


def _meter_problem(num: int, den: int) -> str | None:
    # MIDI stores the denominator as a power of two: a corrupt byte can make it astronomically large.
    meter = f"{num}/{den}" if den < 10**6 else f"{num}/2^{den.bit_length() - 1}"
    if num <= 0 or den <= 0:
        return f"meter {meter} is invalid"
    spb = steps_per_bar_for(num, den)
    if spb is None:
        return f"meter {meter} is off the 16th grid"
    if spb < MIN_STEPS_PER_BAR:
        return f"meter {meter} has bars too short for a melody ({spb} step{'s' if spb != 1 else ''} < {MIN_STEPS_PER_BAR})"
    if spb > MAX_STEPS_PER_BAR:
        return f"meter {meter} has bars too long ({spb} steps > {MAX_STEPS_PER_BAR})"
    return None


class _Timeline:
    """(tick, value) events sorted once, so that each melody's lookup is a binary search: a file with
    a hundred thousand tempo changes and as many melodies must not cost their product."""

    def __init__(self, events):
        ordered = sorted(events, key=lambda e: e[0])  # stable: of several at one tick, the last counts
        self._ticks = [tick for tick, _ in ordered]
        self._values = [value for _, value in ordered]

    def at(self, tick: int, default):
        """The value of the last event at or before `tick` (the first one if none precedes it)."""
        if not self._values:
            return default
        return self._values[max(0, bisect.bisect_right(self._ticks, tick) - 1)]


def estimate_key(notes) -> int:
    """pretty_midi key number whose scale holds the most note duration; ties go to the key whose tonic
    sounds longest, then to major (the first candidate). Used only when a file has no key signature."""
    hist = np.zeros(12)
    for n in notes:
        hist[n.pitch % 12] += n.duration
    tonic = hist[np.arange(24) % 12]
    score = SCALES @ hist + 1e-3 * tonic
    return int(np.argmax(score >= score.max() - 1e-9))  # the first candidate within rounding of the best


def _key_number(mido_key: str) -> int | None:
    pretty_midi = quiet_imports.pretty_midi()

    try:
        return pretty_midi.key_name_to_key_number(mido_key)
    except Exception:
        return None


def _passages(line: np.ndarray, spans: list[list], settings: ExtractSettings,
              warnings: dict[str, None]) -> tuple[list[tuple], list[str]]:
    """The line cut into (anchor, numerator, denominator, notes) passages: one per meter span, split again at
    rests of settings.split_rest_bars bars; notes held over settings.max_note_bars bars are cut (and
    warned about). Also the reasons spans were skipped (meters that cannot be written)."""
    onsets = line[:, 0]
    pieces, reasons = [], []
    for anchor, seg_start, seg_end, num, den in spans:
        lo = int(np.searchsorted(onsets, seg_start, "left"))
        hi = len(onsets) if seg_end == math.inf else int(np.searchsorted(onsets, seg_end, "left"))
        seg_notes = line[lo:hi].tolist()
        if not seg_notes:
            continue
        problem = _meter_problem(num, den)
        if problem:
            reasons.append(problem)
            continue
        spb = steps_per_bar_for(num, den)
        longest = settings.max_note_bars * spb
        gap = settings.split_rest_bars * spb if settings.split_rest_bars > 0 else math.inf
        group: list = []
        for onset, pitch, end in seg_notes:
            if end - onset > longest:
                warnings[f"a note held over {settings.max_note_bars} bars was cut (lost note-off?)"] = None
            end = min(end, seg_end, onset + longest)
            if group and onset - group[-1][2] >= gap:
                pieces.append((anchor, num, den, group))
                group = []
            group.append((onset, pitch, end))
        pieces.append((anchor, num, den, group))
    return pieces, reasons


def _too_long_reason(settings: ExtractSettings) -> str:
    if settings.split_rest_bars:
        return (f"too long for a melody (over {MAX_FILE_STEPS} steps: rests of "
                f"{settings.split_rest_bars:g} bars or more split melodies)")
    return f"too long for a melody (over {MAX_FILE_STEPS} steps, never split at rests)"


def _folded_notes(group: list, bar0: int, cfg: TokenConfig) -> tuple[list[Note], int]:
    """The passage's notes from its first bar line, pitches folded by octaves into the token range; and how
    many were folded."""
    notes, folded = [], 0
    for onset, pitch, end in group:
        p = cfg.fold(pitch)
        folded += p != pitch
        notes.append(Note(onset - bar0, p, end - onset))
    return notes, folded


def _tempo_qpm(tempos: _Timeline, tick: int) -> tuple[float, str | None]:
    """The tempo at `tick` in quarters per minute, and a warning when the file's is implausible (then replaced)."""
    uspq = tempos.at(tick, 500_000)
    qpm = 60_000_000 / uspq if uspq > 0 else math.inf
    if PLAUSIBLE_QPM[0] <= qpm <= PLAUSIBLE_QPM[1]:
        return qpm, None
    shown = f"{qpm:.4g} qpm" if uspq > 0 else "of zero microseconds per quarter"
    return DEFAULT_QPM, f"tempo {shown} is implausible; using {DEFAULT_QPM:g} qpm"


def _key_and_source(keys: _Timeline, tick: int, notes: list[Note], bad_key_signature: bool) -> tuple[int, str]:
    """The file's key signature at `tick`, else the key estimated from the notes; and which of the two."""
    key_str = keys.at(tick, None)
    key = _key_number(key_str) if key_str else None
    if key is not None:
        return key, "file"
    why_estimated = "invalid key signature" if bad_key_signature else "no key signature"
    return estimate_key(notes), f"estimated ({why_estimated})"


def _attach_warnings(melodies: list[Melody], own_warnings: list[str | None], warnings: dict[str, None],
                     base_id: str, base_title: str) -> None:
    """The file's warnings once (on its first melody), not once per melody: a file can hold thousands of
    melodies and hundreds of distinct warnings; each melody's own beside them. Parts numbered when several."""
    for i, (m, own) in enumerate(zip(melodies, own_warnings)):
        mine = (set(warnings) if i == 0 else set()) | ({own} if own else set())
        if mine:
            m.meta["warnings"] = sorted(mine)
        if len(melodies) > 1:
            m.meta["part"] = i + 1
            if i:
                melodies[i] = replace(m, tune_id=f"{base_id}#{i + 1}", title=f"{base_title} ({i + 1})")


def load_midi_melodies(
    path, settings: ExtractSettings = ExtractSettings(), tune_id: str | None = None, title: str | None = None
) -> list[Melody]:
    """The melodies of one MIDI file: one per meter span and per passage between long rests.

    Raises UnusableFile (a UserError "<path>: <reason>") when the file yields none. Melody step 0 is
    always a downbeat (the bar holding the first note); pitches outside the token range are folded by
    octaves. Every step costs time and memory near-linear in the file's size; the melodies together are
    at most MAX_FILE_STEPS long. The file's warnings are in the first melody's meta["warnings"] (each
    once), a melody's own (its tempo) in its own.
    """
    path = Path(path)
    score = _read_score(path, settings)
    track, why = _choose_track(path, score)
    tpq = score.ticks_per_quarter
    line = _skyline(track.notes, tpq)
    if len(line) > MAX_FILE_STEPS:  # each note of the line takes a step of its own
        _fail(path, f"too long for a melody ({len(line)} notes > {MAX_FILE_STEPS} steps)")

    # an ordered set: a file may repeat one warning a million times (a million stuck notes)
    warnings: dict[str, None] = {"invalid key signature ignored": None} if score.bad_key_signature else {}
    spans = _meter_segments(score, tpq)
    if len(spans) > MAX_METER_CHANGES:
        _fail(path, f"too many meter changes ({len(spans) - 1} > {MAX_METER_CHANGES})")
    line, spans, bar_warnings = _absorb_irregular_bars(line, spans)
    warnings.update(dict.fromkeys(bar_warnings))
    pieces, reasons = _passages(line, spans, settings, warnings)

    melodies: list[Melody] = []
    own_warnings: list[str | None] = []
    short = None
    tempos, keys = _Timeline(score.tempos), _Timeline(score.keys)
    base_id = tune_id if tune_id is not None else printable(path.stem)
    base_title = title or score.title or printable(path.stem)
    total_steps = 0
    for anchor, num, den, group in pieces:
        spb = steps_per_bar_for(num, den)
        bar0 = anchor + (group[0][0] - anchor) // spb * spb  # may precede the anchor: a pickup
        n_steps = -(-(group[-1][2] - bar0) // spb) * spb
        n_bars = n_steps // spb
        if n_bars < settings.min_bars:
            short = n_bars if short is None else max(short, n_bars)
            continue
        total_steps += n_steps
        if total_steps > MAX_FILE_STEPS:  # checked before anything of that size is built
            _fail(path, _too_long_reason(settings))
        notes, folded = _folded_notes(group, bar0, settings.token_config)
        tick0 = max(0, bar0) * tpq // STEPS_PER_QUARTER
        qpm, own = _tempo_qpm(tempos, tick0)
        own_warnings.append(own)
        key, key_source = _key_and_source(keys, tick0, notes, score.bad_key_signature)
        meta = {
            "track": track.name,
            "track_choice": why,
            "tracks": len(score.tracks),
            "folded_notes": folded,
            "key_source": key_source,
            "start_bar": (bar0 - anchor) // spb,  # bars from the meter's first bar line; -1: a pickup
        }
        melodies.append(
            Melody(
                notes=tuple(notes),
                n_steps=n_steps,
                numerator=num,
                denominator=den,
                tempo_qpm=round(qpm, 3),
                key_number=key,
                tune_id=base_id,
                title=base_title,
                source=printable(path),
                meta=meta,
            )
        )
    too_short = f"too short ({short} bar{'s' if short != 1 else ''} < {settings.min_bars})" if short is not None else ""
    if not melodies:
        _fail(path, too_short or (reasons[0] if reasons else "no notes"))
    # parts dropped beside the melodies kept are reported, not silently lost
    warnings.update((f"a part was skipped: {r}", None) for r in reasons)
    if too_short:
        warnings[f"a part was skipped: {too_short}"] = None
    _attach_warnings(melodies, own_warnings, warnings, base_id, base_title)
    return melodies


# ---------------------------------------------------------------------------------------------------
# Writing


def melody_to_pretty_midi(melody: Melody, program: int = 73, track_name: str | None = None, velocity: int = 90):
    """A one-track pretty_midi object with the melody's tempo, time signature and key signature.

    General MIDI program 73 is the flute (numbered from 0), a folk-tune voice. Resolution 480 ticks per
    quarter: every 16th step is a whole number of ticks, so reading the file back gives the same melody.
    """
    pretty_midi = quiet_imports.pretty_midi()

    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=float(melody.tempo_qpm))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(melody.numerator, melody.denominator, 0.0))
    pm.key_signature_changes.append(pretty_midi.KeySignature(int(melody.key_number), 0.0))
    seconds_per_step = 60.0 / (float(melody.tempo_qpm) * STEPS_PER_QUARTER)
    inst = pretty_midi.Instrument(program=int(program), name=track_name or melody.title or "Melody")
    for n in melody.notes:
        inst.notes.append(
            pretty_midi.Note(
                velocity=velocity,
                pitch=int(n.pitch),
                start=n.onset * seconds_per_step,
                end=n.end * seconds_per_step,
            )
        )
    pm.instruments.append(inst)
    return pm
