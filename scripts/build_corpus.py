"""Build the bundled folk-melody corpus (midi_data/) from music21's ABC collections.

Usage: python scripts/build_corpus.py [--out midi_data] [--workers 2] [--limit N]

Needs music21 (the `corpus` extra); the app and the tests only read the MIDI files this writes.
For every tune of O'Neill's Music of Ireland (oneills1850), Ryan's Mammoth Collection (ryansMammoth)
and Aird's Airs (airdsAirs) it writes one MIDI file with repeats and first/second endings expanded
(the AABB form is what the app measures), meter, key and tempo kept, and a single melody track.
Output is deterministic: a rerun writes byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import multiprocessing
import re
import shutil
import signal
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import mido

COLLECTIONS = ("oneills1850", "ryansMammoth", "airdsAirs")
# In these collections the X: number is the tune's number in the printed book, so a repeated X: (two
# transcribers' files covering the same pages) is the same tune twice: keep only the first conversion.
# In ryansMammoth every file restarts at X:1, so there the file name tells tunes apart.
X_IS_BOOK_NUMBER = {"oneills1850": True, "ryansMammoth": False, "airdsAirs": True}

MANIFEST_COLUMNS = ["id", "title", "collection", "meter", "key", "bars", "transcriber", "source_file", "x_number"]
TICKS_PER_QUARTER = 480  # divisible by 3 and 16, so triplets and 16ths land on exact ticks
PROGRAM = 73  # General MIDI flute: Aird's airs were "adapted to the Fife, Violin, or German-Flute"
VELOCITY = 90
TUNE_TIMEOUT_S = 60  # a tune music21 cannot finish in this time is reported, not waited for

MAJOR_BY_SHARPS = {-7: "Cb", -6: "Gb", -5: "Db", -4: "Ab", -3: "Eb", -2: "Bb", -1: "F", 0: "C",
                   1: "G", 2: "D", 3: "A", 4: "E", 5: "B", 6: "F#", 7: "C#"}
MINOR_BY_SHARPS = {-7: "Abm", -6: "Ebm", -5: "Bbm", -4: "Fm", -3: "Cm", -2: "Gm", -1: "Dm", 0: "Am",
                   1: "Em", 2: "Bm", 3: "F#m", 4: "C#m", 5: "G#m", 6: "D#m", 7: "A#m"}

TEMPO_WORDS = (  # multiplier of the meter's default tempo when the ABC has no usable Q: field
    ("very slow", 0.5), ("slow", 0.6), ("moderate", 0.85),
    ("lively", 1.15), ("quick", 1.15), ("brisk", 1.15), ("fast", 1.15),
)


@dataclass(frozen=True)
class Tune:
    collection: str
    source_file: str  # file name inside music21's corpus folder of the collection
    x_number: int
    text: str  # the tune's ABC, from its X: line to the next X: line


class ConversionError(Exception):
    pass


# ---------------------------------------------------------------- reading the ABC files


def corpus_files(collection: str) -> list[Path]:
    from music21 import corpus

    return sorted(Path(p) for p in corpus.getComposer(collection) if str(p).endswith(".abc"))


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def split_tunes(collection: str, path: Path) -> list[Tune]:
    text = read_text(path).replace("\r\n", "\n").replace("\r", "\n")
    starts = [m.start() for m in re.finditer(r"^X:", text, flags=re.MULTILINE)]
    tunes = []
    for i, start in enumerate(starts):
        chunk = text[start: starts[i + 1] if i + 1 < len(starts) else len(text)]
        x_match = re.match(r"X:\s*(\d+)", chunk)
        if not x_match:
            continue
        tunes.append(Tune(collection, path.name, int(x_match.group(1)), chunk))
    return tunes


def header_fields(text: str) -> dict[str, list[str]]:
    """All `F: value` lines of a tune (header and body), by field letter, in order."""
    fields: dict[str, list[str]] = {}
    for line in text.split("\n"):
        m = re.match(r"^([A-Za-z]):(.*)$", line)
        if m:
            fields.setdefault(m.group(1), []).append(m.group(2).strip())
    return fields


def strip_annotations(text: str) -> str:
    """Drop quoted chord symbols and fingering annotations ("G", "4") from music lines.

    We keep only the melody, and music21 chokes on some of these (fingerings parsed as chords).
    """
    out = []
    for line in text.split("\n"):
        if re.match(r"^[A-Za-z]:", line) or line.startswith("%"):
            out.append(line)
        else:
            out.append(re.sub(r'"[^"\n]*"', "", line))
    return "\n".join(out)


def clean_transcriber(values: list[str]) -> str:
    """The Z: lines without e-mail addresses (the names stay)."""
    parts = []
    for v in values:
        v = v.replace('"', "").strip()
        # "Transcribed by first.last@host": the address is the only name given, keep its name part
        v = re.sub(r"(?i)(\bby\s+)\(?([A-Za-z]+)[._]([A-Za-z]+)@\S+",
                   lambda m: f"{m.group(1)}{m.group(2).title()} {m.group(3).title()}", v)
        v = re.sub(r"<[^>]*>", "", v)  # <user@host>
        v = re.sub(r"\(?\S+@\S+\)?", "", v)  # user@host
        v = re.sub(r"\S+:\S+\.\S+", "", v)  # user:host.domain (address written to dodge spam)
        v = re.sub(r"https?://\S+", "", v)
        v = re.sub(r"\b\S+\.(nl|com|uk|org|net|se|dk|edu)\b", "", v) if "www." not in v else v
        v = re.sub(r"\s+", " ", v).strip(" ,;*")
        if v and v not in parts:
            parts.append(v)
    return "; ".join(parts)


# ---------------------------------------------------------------- one tune -> MIDI (runs in a worker)


def default_qpm(ts_num: int, ts_den: int, words: str) -> float:
    compound = ts_den == 8 and ts_num % 3 == 0 and ts_num > 3
    if compound:
        qpm = 150.0  # dotted quarter = 100
    elif ts_den == 2:
        qpm = 180.0  # half note = 90
    else:
        qpm = 120.0
    lowered = words.lower()
    for word, factor in TEMPO_WORDS:  # "very slow" comes before "slow": the first hit is the most specific
        if word in lowered:
            return round(qpm * factor)
    return qpm


def key_name_and_midi(key_obj) -> tuple[str, str | None]:
    """('G major' / 'A dorian' ..., mido key signature name or None)."""
    from music21 import key as m21key

    if key_obj is None:
        return "", None
    sharps = max(-7, min(7, int(key_obj.sharps)))
    if isinstance(key_obj, m21key.Key):
        name = f"{key_obj.tonic.name} {key_obj.mode}"
        midi = MINOR_BY_SHARPS[sharps] if key_obj.mode == "minor" else MAJOR_BY_SHARPS[sharps]
    else:
        name = f"{MAJOR_BY_SHARPS[sharps]} major"
        midi = MAJOR_BY_SHARPS[sharps]
    return name.replace("-", "b"), midi


def bar_quarters(ts) -> Fraction:
    return Fraction(ts.numerator * 4, ts.denominator)


def q(x) -> Fraction:
    """music21 offsets/durations (floats or Fractions) as exact fractions of a quarter note."""
    return Fraction(x).limit_denominator(96)


def written_meters(text: str) -> set[str]:
    """The meters the ABC writes (M: lines and inline [M:...] fields), as '4/4', '6/8', ..."""
    found = re.findall(r"^M:\s*(\S+)", text, flags=re.MULTILINE) + re.findall(r"\[M:\s*([^\]\s]+)", text)
    return {{"C": "4/4", "C|": "2/2"}.get(m, m) for m in found}


def _meter_change(m, segments: list, meters: set[str]):
    """The bar's TimeSignature when it changes the meter, else None."""
    from music21 import meter

    new_ts = next(iter(m.getElementsByClass(meter.TimeSignature)), None)
    if new_ts is not None and segments and segments[-1][1].ratioString == new_ts.ratioString:
        return None  # repeated bars carry a copy of the opening meter: not a change
    if new_ts is not None and segments and new_ts.ratioString not in meters:
        return None  # music21 invents meters (1/16, 1/6) for odd bars: only M: fields count
    return new_ts


def _bar_start(i: int, pos: Fraction, seg_start: Fraction, length: Fraction, bar: Fraction,
               next_full: bool) -> Fraction:
    """Where bar i (`length` quarters, written after `pos`) starts: layout's docstring."""
    on_downbeat = (pos - seg_start) % bar == 0
    if length >= bar:  # a full (or overfull) bar starts on the nearest downbeat
        k = (pos - seg_start) / bar
        return seg_start + bar * math.floor(k + Fraction(1, 2))
    if i == 0:
        return bar - length
    if on_downbeat and next_full and length <= bar / 2:
        return pos - length
    return pos


def _place_bar_notes(m, start: Fraction, notes: list[list], end: Fraction) -> Fraction:
    """Append the bar's notes at `start` (chords: the top note); returns the end of what sounds so far."""
    from music21 import harmony, note

    for el in m.flatten().notesAndRests:
        if isinstance(el, harmony.Harmony) or el.duration.isGrace or el.duration.quarterLength == 0:
            continue  # grace notes have no duration on the 16th grid
        onset, dur = start + q(el.offset), q(el.duration.quarterLength)
        end = max(end, onset + dur)
        if not isinstance(el, note.Rest):
            notes.append([onset, dur, max(p.midi for p in el.pitches)])  # chords: the top note
    return end


def _monophonic(notes: list[list]) -> list[tuple]:
    """One note at a time: of notes starting together the highest, each ending when the next starts."""
    notes.sort(key=lambda n: (n[0], n[2]))  # by onset, then pitch: the highest of a chord comes last
    mono = []
    for i, (onset, dur, pitch) in enumerate(notes):
        if i + 1 < len(notes) and notes[i + 1][0] == onset:
            continue  # several notes start together: keep only the highest (the last of them)
        if i + 1 < len(notes):
            dur = min(dur, notes[i + 1][0] - onset)  # monophonic: a note ends when the next starts
        if dur > 0:
            mono.append((onset, dur, pitch))
    return mono


def layout(measures, meters: set[str]) -> tuple[list, Fraction, list, int]:
    """Place the expanded bars on a time line whose downbeats are the ABC bar lines.

    A full bar starts on a downbeat. An incomplete bar is a pickup when it opens the tune (padded with
    a rest at the front) or when it sits, shorter than half a bar, between two full bars: then it
    overlaps the end of the previous bar, as players do when a section's last bar is written full and
    the next section starts with an upbeat. Any other incomplete bar (the closing bar that, with the
    next upbeat, makes a whole bar) just follows on. Returns (notes [(onset, duration, pitch)],
    end, time-signature segments [(start, TimeSignature)], number of bars that had to be moved).
    """
    notes: list[list] = []  # [onset, duration, pitch]
    segments: list = []
    pos, moved, end = Fraction(0), 0, Fraction(0)
    for i, m in enumerate(measures):
        new_ts = _meter_change(m, segments, meters)
        length = q(m.duration.quarterLength)
        ts = new_ts or (segments[-1][1] if segments else None)
        if ts is None:
            return [], Fraction(0), [], 0  # no meter: the caller reports it
        bar = bar_quarters(ts)
        next_full = i + 1 < len(measures) and q(measures[i + 1].duration.quarterLength) >= bar
        seg_start = segments[-1][0] if segments and new_ts is None else pos
        start = _bar_start(i, pos, seg_start, length, bar, next_full)
        if length >= bar and start != pos:
            moved += 1
        if new_ts is not None:
            # a meter change starts a new bar grid where this bar starts
            segments.append((start if segments else Fraction(0), new_ts))
        if start < pos:  # the bar overlaps the end of the previous one: cut what sounds there
            notes = [n for n in notes if n[0] < start]
            for n in notes:
                n[1] = min(n[1], start - n[0])
        end = _place_bar_notes(m, start, notes, end)
        pos = start + length
    return _monophonic(notes), max(end, pos), segments, moved


def is_repeat(barline, direction: str) -> bool:
    return barline is not None and getattr(barline, "direction", None) == direction


def add_missing_repeat_starts(part, measures) -> list:
    """Mark where each repeated section starts when the ABC leaves it implicit.

    `A :| B :|` means AABB, but music21 repeats a `:|` without a `|:` from the start of the tune
    (giving AABAAB). The section after a `:|` (past any second-ending bars) gets an explicit `|:`.
    """
    from music21 import bar, spanner

    in_bracket = set()
    for rb in part.spannerBundle.getByClass(spanner.RepeatBracket):
        in_bracket.update(id(m) for m in rb.getSpannedElements())
    previous_end, added = None, []
    for i, m in enumerate(measures):
        if is_repeat(m.leftBarline, "start"):
            previous_end = None  # this section says where it starts
        if is_repeat(m.rightBarline, "end"):
            if previous_end is not None:
                j = previous_end + 1
                while j < i and id(measures[j]) in in_bracket:
                    j += 1
                if not is_repeat(measures[j].leftBarline, "start"):
                    measures[j].leftBarline = bar.Repeat(direction="start")
                    added.append(measures[j])
            previous_end = i
    return added


def expand_repeats(part, measures):
    """The part with repeats and endings written out; music21's own reading if ours is malformed."""
    added = add_missing_repeat_starts(part, list(measures))
    try:
        return part.expandRepeats()
    except Exception:
        if not added:
            raise
        for m in added:
            m.leftBarline = None
        return part.expandRepeats()


def _melody_part(tune: Tune):
    """The tune's first voice (later V: voices are accompaniment) and its bars, parsed by music21."""
    from music21 import converter, stream

    try:
        score = converter.parse(strip_annotations(tune.text), format="abc")
    except Exception as exc:  # music21 raises many kinds on malformed ABC
        raise ConversionError(f"music21 could not parse the ABC ({type(exc).__name__}: {exc})") from None
    parts = score.parts if isinstance(score, stream.Score) else [score]
    if len(parts) == 0:
        raise ConversionError("no voice in the tune")
    part = parts[0]  # the melody voice; later V: voices are accompaniment
    measures = part.getElementsByClass(stream.Measure)
    if len(measures) == 0:
        raise ConversionError("no bars")
    return part, measures


def _bar_count(segments: list, end: Fraction) -> int:
    """Bars of the laid-out tune: each meter segment's length in its own bars, a partial bar counted whole."""
    bars = 0
    for i, (start, ts) in enumerate(segments):
        stop = segments[i + 1][0] if i + 1 < len(segments) else end
        if stop > start:
            bars += math.ceil((stop - start) / bar_quarters(ts) - Fraction(1, 1000))
    return bars


def _first_key_signature(part):
    from music21 import key

    return next(iter(part.recurse().getElementsByClass(key.KeySignature)), None)


def _tempo_qpm(part, fields: dict, title: str, segments: list) -> float:
    """The first plausible metronome mark, else the meter's default tempo shaded by the tune's tempo words."""
    from music21 import tempo

    for mm in part.recurse().getElementsByClass(tempo.MetronomeMark):
        try:
            bpm = mm.getQuarterBPM()
        except Exception:
            bpm = None
        if bpm and 20 <= bpm <= 400:
            return float(bpm)
    words = " ".join(fields.get("Q", []) + fields.get("N", []) + fields.get("R", []) + [title])
    ts0 = segments[0][1]
    return default_qpm(ts0.numerator, ts0.denominator, words)


def convert(tune: Tune) -> dict:
    """Parse, expand and render one tune. Returns {'row': ..., 'midi': bytes, 'warnings': [...]}."""
    from music21 import stream

    fields = header_fields(tune.text)
    title = fields.get("T", [""])[0] or f"{tune.collection} X:{tune.x_number}"
    part, measures = _melody_part(tune)
    try:
        expanded = expand_repeats(part, measures)
    except Exception as exc:
        raise ConversionError(f"repeats could not be expanded ({type(exc).__name__}: {exc})") from None
    expanded = expanded.stripTies()
    ex_measures = list(expanded.getElementsByClass(stream.Measure))

    notes, end, segments, moved = layout(ex_measures, written_meters(tune.text))
    if not segments:
        raise ConversionError("no time signature (M: missing or 'none')")
    if segments[0][1].denominator & (segments[0][1].denominator - 1):
        raise ConversionError(f"meter {segments[0][1].ratioString} cannot be written to MIDI")
    if not notes:
        raise ConversionError("no notes")
    warnings = []
    if moved:
        warnings.append(f"{moved} bars moved onto the downbeat grid (uneven bars in the ABC)")
    key_name, midi_key = key_name_and_midi(_first_key_signature(part))
    qpm = _tempo_qpm(part, fields, title, segments)

    midi = render_midi(title, notes, segments, midi_key, qpm)
    meter_str = segments[0][1].ratioString
    row = {
        "title": title, "collection": tune.collection, "meter": meter_str, "key": key_name,
        "bars": _bar_count(segments, end),
        "transcriber": clean_transcriber(fields.get("Z", [])), "source_file": tune.source_file,
        "x_number": tune.x_number,
    }
    return {"row": row, "midi": midi, "warnings": warnings}


def ticks(q: Fraction) -> int:
    return round(q * TICKS_PER_QUARTER)


def render_midi(title, notes, segments, midi_key, qpm) -> bytes:
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER)
    conductor = mido.MidiTrack()
    events = [(0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(qpm), time=0))]
    if midi_key:
        events.append((0, 1, mido.MetaMessage("key_signature", key=midi_key, time=0)))
    for start, ts in segments:
        events.append((ticks(start), 2, mido.MetaMessage(
            "time_signature", numerator=ts.numerator, denominator=ts.denominator, time=0)))
    conductor.extend(with_delta_times(events))
    conductor.append(mido.MetaMessage("end_of_track", time=0))

    melody = mido.MidiTrack()
    melody.append(mido.MetaMessage("track_name", name=title, time=0))
    melody.append(mido.Message("program_change", program=PROGRAM, channel=0, time=0))
    events = []
    for onset, dur, pitch in notes:
        on, off = ticks(onset), ticks(onset + dur)
        if off <= on:
            continue
        events.append((on, 1, mido.Message("note_on", note=pitch, velocity=VELOCITY, channel=0)))
        events.append((off, 0, mido.Message("note_off", note=pitch, velocity=0, channel=0)))
    melody.extend(with_delta_times(events))
    melody.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks.extend([conductor, melody])
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def with_delta_times(events):
    """(absolute tick, order, message) -> messages with delta times; note-offs sort before note-ons."""
    out, now = [], 0
    for at, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        out.append(msg.copy(time=at - now))
        now = at
    return out


def _timeout(signum, frame):
    raise TimeoutError


def convert_safely(tune: Tune) -> tuple[Tune, dict | None, str | None]:
    signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(TUNE_TIMEOUT_S)
    try:
        return tune, convert(tune), None
    except ConversionError as exc:
        return tune, None, str(exc)
    except TimeoutError:
        return tune, None, f"music21 took more than {TUNE_TIMEOUT_S} s"
    except Exception as exc:  # a music21 bug on one tune must not stop the build
        return tune, None, f"unexpected {type(exc).__name__}: {exc}"
    finally:
        signal.alarm(0)


# ---------------------------------------------------------------- the build


def tune_ids(tunes: list[Tune]) -> list[str]:
    """collection-XXXX, or collection-<file>-XXXX where the X: number does not name the tune."""
    ids, seen = [], {}
    for t in tunes:
        if X_IS_BOOK_NUMBER[t.collection]:
            base = f"{t.collection}-{t.x_number:04d}"
        else:
            stem = re.sub(r"[^A-Za-z0-9]+", "", Path(t.source_file).stem)
            base = f"{t.collection}-{stem}-{t.x_number:04d}"
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "midi_data")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="only the first N tunes of each collection (testing)")
    args = ap.parse_args(argv)

    tunes: list[Tune] = []
    for coll in COLLECTIONS:
        found = [t for path in corpus_files(coll) for t in split_tunes(coll, path)]
        tunes.extend(found[: args.limit] if args.limit else found)
    print(f"{len(tunes)} tunes in {len(COLLECTIONS)} collections", file=sys.stderr)

    results = []
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        for i, res in enumerate(pool.imap(convert_safely, tunes, chunksize=8), 1):
            results.append(res)
            if i % 100 == 0 or i == len(tunes):
                print(f"  {i}/{len(tunes)} converted", file=sys.stderr)

    for coll in COLLECTIONS:
        shutil.rmtree(args.out / coll, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)

    rows, failures, warnings, kept_book_numbers = [], [], [], {}
    ids = tune_ids([r[0] for r in results])
    for tune_id, (tune, res, err) in zip(ids, results):
        where = f"{tune.collection}/{tune.source_file} X:{tune.x_number}"
        if err is not None:
            failures.append(f"{where}: {err}")
            continue
        if X_IS_BOOK_NUMBER[tune.collection]:
            book_key = (tune.collection, tune.x_number)
            if book_key in kept_book_numbers:
                failures.append(f"{where}: duplicate transcription of the same tune, kept {kept_book_numbers[book_key]}")
                continue
            kept_book_numbers[book_key] = tune.source_file
            tune_id = f"{tune.collection}-{tune.x_number:04d}"
        (args.out / tune.collection).mkdir(exist_ok=True)
        (args.out / tune.collection / f"{tune_id}.mid").write_bytes(res["midi"])
        rows.append({"id": tune_id, **res["row"]})
        warnings.extend(f"{where} ({tune_id}): {w}" for w in res["warnings"])

    with open(args.out / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    report = [f"converted {len(rows)} of {len(tunes)} tunes", "", f"not converted ({len(failures)}):"]
    report += [f"  {f}" for f in failures]
    report += ["", f"converted with warnings ({len(warnings)}):"] + [f"  {w}" for w in warnings]
    (args.out / "build_report.txt").write_text("\n".join(report) + "\n", encoding="utf-8")
    print("\n".join(report[2:3] + report[3: 3 + len(failures)]), file=sys.stderr)
    print(f"converted {len(rows)} of {len(tunes)} tunes ({len(warnings)} with warnings, see "
          f"{args.out / 'build_report.txt'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
