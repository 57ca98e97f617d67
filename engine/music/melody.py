"""A monophonic melody on the 16th-note grid, with the metadata needed to write it back out.

Steps are 16th notes (4 per quarter note). Notes never overlap: a melody is what one voice sings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

STEPS_PER_QUARTER = 4

# pretty_midi key numbers: 0-11 are C major .. B major, 12-23 are C minor .. B minor.
_PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def key_name(key_number: int) -> str:
    """'G major', 'E minor', ... for a pretty_midi key number."""
    return f"{_PITCH_NAMES[key_number % 12]} {'minor' if key_number >= 12 else 'major'}"


def steps_per_bar_for(numerator: int, denominator: int) -> int | None:
    """Steps per bar of a time signature on the 16th grid, or None when it does not fit the grid."""
    if numerator <= 0 or denominator <= 0:
        return None
    steps = numerator * 16
    if steps % denominator:
        return None
    return steps // denominator


@dataclass(frozen=True)
class Note:
    onset: int  # step at which the note starts
    pitch: int  # MIDI pitch
    duration: int  # in steps, >= 1

    @property
    def end(self) -> int:
        return self.onset + self.duration


@dataclass(frozen=True)
class Melody:
    notes: tuple[Note, ...]  # sorted by onset, non-overlapping
    n_steps: int  # length of the piece in steps (>= last note end); trailing rest included
    numerator: int = 4
    denominator: int = 4
    tempo_qpm: float = 120.0
    key_number: int = 0  # pretty_midi key number; see key_name()
    tune_id: str = ""
    title: str = ""
    source: str = ""  # the file it came from
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def steps_per_bar(self) -> int:
        spb = steps_per_bar_for(self.numerator, self.denominator)
        assert spb is not None, f"time signature {self.numerator}/{self.denominator} off the 16th grid"
        return spb

    @property
    def n_bars(self) -> int:
        return -(-self.n_steps // self.steps_per_bar)

    @property
    def key(self) -> str:
        return key_name(self.key_number)

    @property
    def meter(self) -> str:
        return f"{self.numerator}/{self.denominator}"

    def bars(self, start: int, stop: int | None = None) -> Melody:
        """Bars [start, stop) as a new melody starting at step 0; notes cut at the right edge."""
        spb = self.steps_per_bar
        lo = start * spb
        hi = self.n_steps if stop is None else min(self.n_steps, stop * spb)
        notes = tuple(
            Note(n.onset - lo, n.pitch, min(n.end, hi) - n.onset)
            for n in self.notes
            if lo <= n.onset < hi
        )
        return replace(self, notes=notes, n_steps=max(0, hi - lo))

    def note_array(self):
        """notes as an int array of shape [n, 3]: onset step, pitch, duration in steps."""
        import numpy as np

        if not self.notes:
            return np.zeros((0, 3), dtype=np.int64)
        return np.array([(n.onset, n.pitch, n.duration) for n in self.notes], dtype=np.int64)
