"""Near-copies: the same tune written twice with a triplet or a grace note quantised differently.

Exact duplicates share their tokens (corpus.content_key). Folk collections also hold the same jig twice where
one transcriber's triplet landed on other 16th steps, or one wrote a grace note the other left out; their
tokens differ, so exact matching keeps both, and a copy can sit in train while its twin validates. Two
melodies are near-copies when they share a *tolerant form*: every note's onset snapped to its quarter-note
beat, with its pitch relative to the first note (rests and durations left out). Each melody has up to two:
- all its notes: a triplet quantised as 2+1+1 or 1+1+2 steps keeps its three pitches in the same beat;
- without its ornaments: the first note of every run of one-step notes (a grace note written as a 16th
  before its main note, which it shortens to a 16th too), only when those are a few of its notes, so that
  a run of 16ths is never thrown away as "ornaments".
A melody with fewer than MIN_NOTES notes has no tolerant form: short fragments match too easily.

`first_copies` keeps the first of each group in load order and reports every later one, naming the kept
melody. Dropping the later copies is what keeps near-copies in one split: only one of them is left.
"""

from __future__ import annotations

import hashlib
import itertools

import numpy as np

from engine.music.tokens import FIRST_PITCH_TOKEN, HOLD, PAD

BEAT_STEPS = 4  # a quarter note on the 16th grid: the grid onsets are snapped to
MIN_NOTES = 8  # fewer notes than this: no tolerant form (only exact copies are caught)
ORNAMENT_STEPS = 1  # a note this short may be a grace note
MAX_ORNAMENT_SHARE = 0.25  # more one-step notes than this: they are the tune, not ornaments


def _notes(tokens) -> list[tuple[int, int, int]]:
    """(onset step, pitch token, steps until the next event) of every note the tokens spell."""
    t = np.asarray(tokens, dtype=np.int64)
    events = np.flatnonzero((t != HOLD) & (t != PAD))
    ends = np.append(events[1:], len(t))
    return [(int(s), int(t[s]), int(e - s)) for s, e in zip(events, ends) if t[s] >= FIRST_PITCH_TOKEN]


def _form(notes) -> str:
    first = notes[0][1]
    data = np.array([(onset // BEAT_STEPS, pitch - first) for onset, pitch, _ in notes], dtype="<i4")
    return hashlib.sha1(data.tobytes()).hexdigest()[:16]


def tolerant_forms(tokens) -> list[str]:
    """The melody's tolerant forms (module docstring): none, one, or two (with and without ornaments)."""
    notes = _notes(tokens)
    if len(notes) < MIN_NOTES:
        return []
    forms = [_form(notes)]
    ornaments = {i for i, (a, b) in enumerate(itertools.pairwise(notes))
                 if a[2] <= ORNAMENT_STEPS and b[0] == a[0] + a[2] and (i == 0 or notes[i - 1][2] > ORNAMENT_STEPS
                                                                        or notes[i - 1][0] + notes[i - 1][2] < a[0])}
    plain = [n for i, n in enumerate(notes) if i not in ornaments]
    if len(notes) - len(plain) <= MAX_ORNAMENT_SHARE * len(notes) and len(plain) >= MIN_NOTES and plain != notes:
        forms.append(_form(plain))
    return forms


def first_copies(records: list[dict], tokens_of, tolerant: bool = True) -> tuple[list[int], list[tuple[int, str]]]:
    """Indices to keep (the first of each exact or near copy, in load order), and (index, why) for every
    later copy: "<tune id>" for an exact copy, "<tune id> (a near-copy: ...)" for a tolerant match.
    `records[i]["meta"]["content"]` is melody i's exact content key; `tokens_of(i)` its tokens. Without
    `tolerant`, exact copies only (the bundled corpus keeps the split its models were trained on)."""
    owner: dict[str, str] = {}  # exact key or tolerant form -> the tune id kept for it
    keep, copies = [], []
    for i, rec in enumerate(records):
        exact = "exact:" + rec["meta"]["content"]
        forms = tolerant_forms(tokens_of(i)) if tolerant else []
        if exact in owner:
            copies.append((i, owner[exact]))
            kept = owner[exact]
        else:
            near = next((owner[f] for f in forms if f in owner), None)
            if near is not None:
                copies.append((i, f"{near} (a near-copy: the same notes on the beat grid)"))
                kept = near
            else:
                keep.append(i)
                kept = rec["tune_id"]
        for key in (exact, *forms):  # a copy's own forms lead to the kept one too
            owner.setdefault(key, kept)
    return keep, copies
