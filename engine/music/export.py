"""Write continuations out: MIDI type 1 (tempo, meter, key, a General MIDI instrument) and 16-bit WAV.

Every write is atomic: the file is written under a temporary name in the target folder and renamed
into place, so a failed or interrupted export never leaves a half-written file that looks good.
"""

from __future__ import annotations

import numbers
import os
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.core.atomic import atomic_write
from engine.core.errors import UserError
from engine.music.melody import Melody, Note

PRIMER_MODES = ("inline", "track", "none")
DEFAULT_PROGRAM = 73  # General MIDI flute (numbered from 0): a folk-tune voice, as in engine.music.midi_io


def check_writable(path) -> Path:
    """UserError now, before any work, when `path` plainly cannot be written (no folder, a folder)."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder")
    if not folder.is_dir():
        raise UserError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UserError(f"cannot write {path}: folder {folder} is not writable")
    return path


def join_primer(primer: Melody, continuation: Melody) -> Melody:
    """One melody: the primer, then the continuation from the step after it."""
    shift = primer.n_steps
    notes = primer.notes + tuple(Note(n.onset + shift, n.pitch, n.duration) for n in continuation.notes)
    return replace(continuation, notes=notes, n_steps=shift + continuation.n_steps)


def shifted(melody: Melody, steps: int) -> Melody:
    """The melody starting `steps` later (silence before it)."""
    notes = tuple(Note(n.onset + steps, n.pitch, n.duration) for n in melody.notes)
    return replace(melody, notes=notes, n_steps=melody.n_steps + steps)


def check_program(program: int) -> int:
    if isinstance(program, bool) or not isinstance(program, numbers.Integral) or not 0 <= program <= 127:
        raise UserError(f"General MIDI program must be between 0 and 127, not {program}")
    return program


def build_midi(
    continuation: Melody,
    program: int = DEFAULT_PROGRAM,
    track_name: str = "Melody",
    primer: Melody | None = None,
    primer_mode: str = "inline",
):
    """A pretty_midi.PrettyMIDI of the continuation, its track named `track_name` (the model's label).

    primer_mode: "inline" puts the primer on the same track before the continuation, "track" gives
    it a track of its own (same instrument) with the continuation starting after it, "none" leaves it
    out. Tempo, time signature and key signature come from the continuation (= the primer's).
    """
    from engine.music.midi_io import melody_to_pretty_midi

    check_program(program)
    if primer_mode not in PRIMER_MODES:
        raise UserError(f"primer mode must be one of {', '.join(PRIMER_MODES)}, not {primer_mode!r}")
    name = track_name
    if primer is None or primer_mode == "none":
        return melody_to_pretty_midi(continuation, program, name)
    if primer_mode == "inline":
        return melody_to_pretty_midi(join_primer(primer, continuation), program, name)
    pm = melody_to_pretty_midi(shifted(continuation, primer.n_steps), program, name)
    primer_pm = melody_to_pretty_midi(primer, program, f"Primer: {primer.title or primer.tune_id or 'opening'}")
    pm.instruments = primer_pm.instruments + pm.instruments
    return pm


def write_midi(
    path,
    continuation: Melody,
    program: int = DEFAULT_PROGRAM,
    track_name: str = "Melody",
    primer: Melody | None = None,
    primer_mode: str = "inline",
) -> Path:
    """Write a MIDI type 1 file atomically; see build_midi() for the options."""
    pm = build_midi(continuation, program, track_name, primer, primer_mode)
    return atomic_write(check_writable(path), pm.write)


def to_pcm16(samples) -> bytes:
    """float samples in [-1, 1] -> little-endian 16-bit PCM bytes (clipped, never wrapped)."""
    samples = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return (samples * 32767.0).round().astype("<i2").tobytes()


def write_wav(path, samples, sample_rate: int) -> Path:
    """Write mono float samples as a 16-bit PCM WAV file, atomically."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError("write_wav takes mono samples [n]")

    def write(fh) -> None:
        with wave.open(fh, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(int(sample_rate))
            out.writeframes(to_pcm16(samples))

    return atomic_write(check_writable(path), write)


def variation_paths(out, count: int) -> list[Path]:
    """FILE.mid for one variation; FILE-1.mid, FILE-2.mid, ... for several."""
    out = Path(out)
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(1, count + 1)]
