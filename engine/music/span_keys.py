"""Two-bar span keys: what "the same two bars, in any key" means for the originality meter (issue 27).

Every span of two consecutive bars, starting on each bar line (bars b and b + 1, steps [bS, (b + 2)S)),
gets a key made of exactly this:
- the steps per bar S (a 6/8 span never matches a 2/4 one; 3/4 and 6/8 share the 12-step grid);
- the notes that START in the span, in onset order, each as (onset - bS, duration cut at the span's
  end, interval in semitones from the previous note of the span);
- how many such notes there are.

Choices, and why:
- Transposition-invariant: only intervals between successive notes of the span enter; the first note's
  pitch does not (its interval slot is empty), nor does the interval from the note before the span.
  The same two bars in another key or octave have the same key.
- Rests are not tokens here: they are the gaps between one note's end and the next onset, so they enter
  through the onsets and (cut) durations. A note held over from the bar before the span does not start in
  it, so it is not part of the span: a span that opens with a held note and one that opens with a rest
  have the same key (the sound inside the span differs only in what came before it).
- Durations are cut at the span's end, so a span does not depend on what follows it.
- Spans are aligned to bar lines (a copy shifted by a beat is a different key).

A key is a 64-bit hash of that content (splitmix64 mixing, numpy uint64 arithmetic, deterministic on
every machine): two different spans share a key with probability about 1e-19 each, under 1e-9 over
every pair the bundled corpus's ~110,000 spans can make. Everything is vectorised over many melodies
at once (`span_keys_flat`), which is what makes indexing the whole corpus take a fraction of a second.
"""

from __future__ import annotations

import numpy as np

SPAN_BARS = 2
_U = np.uint64


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (wraps modulo 2**64, as intended)."""
    x = x ^ (x >> _U(30))
    x = x * _U(0xBF58476D1CE4E5B9)
    x = x ^ (x >> _U(27))
    x = x * _U(0x94D049BB133111EB)
    return x ^ (x >> _U(31))


def _u64(values) -> np.ndarray:
    """int64 values (negative ones too) as their two's-complement uint64 bits."""
    return np.asarray(values, dtype=np.int64).view(np.uint64)


def span_keys_flat(notes, note_offsets, steps_per_bar, n_bars) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keys of every two-bar span of many melodies at once.

    notes [N, 3] (onset step, pitch, duration) of all melodies one after the other, each melody's sorted
    by onset; note_offsets [M + 1] where each melody's notes start; steps_per_bar [M]; n_bars [M].
    Melody m has max(n_bars - 1, 0) spans, starting at bars 0, 1, ...

    Returns (keys uint64 [spans], note counts int64 [spans], span_offsets int64 [M + 1]): melody m's
    span starting at bar b is at span_offsets[m] + b.
    """
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
    offsets = np.asarray(note_offsets, dtype=np.int64)
    spb = np.asarray(steps_per_bar, dtype=np.int64)
    n_spans = np.maximum(np.asarray(n_bars, dtype=np.int64) - (SPAN_BARS - 1), 0)
    span_offsets = np.concatenate([[0], np.cumsum(n_spans)]).astype(np.int64)
    total = int(span_offsets[-1])
    melody = np.repeat(np.arange(len(spb)), np.diff(offsets))
    onset, pitch, duration = notes[:, 0], notes[:, 1], notes[:, 2]
    S = spb[melody]
    bar = onset // S
    # Each note belongs to the span starting at its bar (its first bar) and to the one starting a bar
    # earlier (its second bar). First-bar entries go first: a stable sort by span then puts each span's
    # first-bar notes before its second-bar notes, each in onset order.
    starts = np.concatenate([bar, bar - 1])
    note_of = np.concatenate([np.arange(len(notes)), np.arange(len(notes))])
    owner = np.concatenate([melody, melody])
    keep = (starts >= 0) & (starts < n_spans[owner])
    starts, note_of, owner = starts[keep], note_of[keep], owner[keep]
    span = span_offsets[owner] + starts
    order = np.argsort(span, kind="stable")
    span, note_of, starts, owner = span[order], note_of[order], starts[order], owner[order]

    counts = np.bincount(span, minlength=total).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(counts)])[:-1]  # each span's first entry
    rank = np.arange(len(span)) - first[span]
    S_entry = spb[owner]
    rel_onset = onset[note_of] - starts * S_entry
    cut = np.minimum(duration[note_of], SPAN_BARS * S_entry - rel_onset)
    interval = np.zeros(len(span), dtype=np.int64)
    if len(span) > 1:
        step = pitch[note_of[1:]] - pitch[note_of[:-1]]
        interval[1:] = np.where(rank[1:] > 0, step, 0)

    h = _mix(_u64(interval) + _U(0x9E3779B97F4A7C15))
    h = _mix(h + _u64(cut))
    h = _mix(h + _u64(rel_onset) * _U(0x100000001B3))
    h = _mix(h ^ _u64(rank))
    sums = np.zeros(total, dtype=np.uint64)
    if len(span):
        nonempty = np.flatnonzero(counts)
        sums[nonempty] = np.add.reduceat(h, first[nonempty])
    span_spb = np.repeat(spb, n_spans)
    keys = _mix(sums + _mix(_u64(counts) + _mix(_u64(span_spb) + _U(0xD6E8FEB86659FD93))))
    return keys, counts, span_offsets


def span_keys(notes, steps_per_bar: int, n_bars: int) -> tuple[np.ndarray, np.ndarray]:
    """(keys uint64 [n_bars - 1], note counts) of one melody's spans; notes [n, 3] in any order."""
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
    notes = notes[np.argsort(notes[:, 0], kind="stable")]
    keys, counts, _ = span_keys_flat(notes, [0, len(notes)], [steps_per_bar], [n_bars])
    return keys, counts
