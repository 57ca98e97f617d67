"""Turn a melody into sound: FluidSynth with the General MIDI SoundFont pretty_midi ships, or a small
built-in additive synth (numpy only) where FluidSynth is missing.

Both return mono float32 samples peak-normalised to -1 dBFS, so the WAV never clips.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from engine.core import quiet_imports
from engine.core.errors import UserError
from engine.music.export import DEFAULT_PROGRAM, check_program
from engine.music.melody import STEPS_PER_QUARTER, Melody

FLUIDSYNTH_NAME = "FluidSynth (TimGM6mb)"
BUILTIN_NAME = "built-in synth"
PEAK = 10 ** (-1 / 20)  # -1 dBFS
TAIL_S = 1.0  # room after the last note for its release to ring out
PREFER = ("auto", "fluidsynth", "builtin")


def soundfont_path() -> str:
    return os.path.join(os.path.dirname(quiet_imports.pretty_midi().__file__), "TimGM6mb.sf2")


@functools.lru_cache(maxsize=1)
def fluidsynth_status() -> tuple[bool, str]:
    """(usable, reason): pyfluidsynth must import (it needs the system libfluidsynth) and the
    SoundFont must be there."""
    try:
        quiet_imports.fluidsynth()  # loads libfluidsynth
    except (ImportError, OSError) as exc:
        return False, f"pyfluidsynth/libfluidsynth not available ({exc})"
    if not os.path.isfile(soundfont_path()):
        return False, f"SoundFont missing at {soundfont_path()}"
    return True, "ok"


def to_pretty_midi(melody_or_pm, program: int = DEFAULT_PROGRAM):
    if isinstance(melody_or_pm, Melody):
        check_program(program)
        from engine.music.midi_io import melody_to_pretty_midi

        return melody_to_pretty_midi(melody_or_pm, program, melody_or_pm.title or "Melody")
    return melody_or_pm


def duration_s(melody_or_pm, pm) -> float:
    """A melody lasts its n_steps, trailing rest included; a MIDI file lasts until its last event."""
    if isinstance(melody_or_pm, Melody):
        return melody_or_pm.n_steps * 60.0 / (melody_or_pm.tempo_qpm * STEPS_PER_QUARTER)
    return pm.get_end_time()


def render_audio(melody_or_pm, sample_rate: int = 44100, prefer: str = "auto", program: int = DEFAULT_PROGRAM):
    """-> (float32 mono samples, sample_rate, synth_name).

    prefer: "auto" (FluidSynth where it works, else built-in), "fluidsynth" (UserError if missing)
    or "builtin". The length is the piece (a melody's n_steps) plus TAIL_S seconds for the last release.
    """
    if prefer not in PREFER:
        raise UserError(f"synth must be one of {', '.join(PREFER)}, not {prefer!r}")
    pm = to_pretty_midi(melody_or_pm, program)
    n_samples = int(np.ceil((duration_s(melody_or_pm, pm) + TAIL_S) * sample_rate))
    use_fluid = prefer == "fluidsynth" or (prefer == "auto" and fluidsynth_status()[0])
    if use_fluid:
        ok, reason = fluidsynth_status()
        if not ok:
            raise UserError(f"FluidSynth cannot be used: {reason}")
        samples = _render_fluidsynth(pm, sample_rate)
        name = FLUIDSYNTH_NAME
    else:
        samples = _render_builtin(pm, sample_rate)
        name = BUILTIN_NAME
    samples = _fit_length(samples, n_samples)
    return _normalise(samples), sample_rate, name


def _render_fluidsynth(pm, sample_rate: int) -> np.ndarray:
    if not any(inst.notes for inst in pm.instruments):
        return np.zeros(0, dtype=np.float32)
    return np.asarray(pm.fluidsynth(fs=sample_rate, synthesizer=soundfont_path(), normalize=False), np.float32)


# Built-in voice: a soft reed/organ-like spectrum whose upper harmonics fade faster than the
# fundamental, so notes have a bright onset and a mellow sustain, like a plucked or blown instrument.
HARMONICS = np.array([1.0, 0.55, 0.35, 0.22, 0.14, 0.08])
ATTACK_S, DECAY_S, SUSTAIN, RELEASE_S = 0.008, 0.12, 0.6, 0.12


def _render_builtin(pm, sample_rate: int) -> np.ndarray:
    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    end = max((n.end for n in notes), default=0.0)
    out = np.zeros(int(np.ceil((end + RELEASE_S) * sample_rate)) + 1, dtype=np.float64)
    for note in notes:
        start = round(note.start * sample_rate)
        held = max(1, round((note.end - note.start) * sample_rate))
        voice = _voice(note.pitch, held, sample_rate) * (note.velocity / 127.0)
        stop = min(len(out), start + len(voice))
        out[start:stop] += voice[: stop - start]
    return out.astype(np.float32)


def _voice(pitch: int, held: int, sample_rate: int) -> np.ndarray:
    """One note: harmonics under an ADSR envelope; attack and release are ramps, so no clicks."""
    release = int(RELEASE_S * sample_rate)
    n = held + release
    t = np.arange(n) / sample_rate
    freq = 440.0 * 2 ** ((pitch - 69) / 12)
    wave = np.zeros(n)
    for h, amp in enumerate(HARMONICS, start=1):
        if freq * h >= sample_rate / 2:
            break
        wave += amp * np.exp(-t * 2.0 * (h - 1)) * np.sin(2 * np.pi * freq * h * t)
    attack = max(1, int(ATTACK_S * sample_rate))
    decay = max(1, int(DECAY_S * sample_rate))
    env = np.full(n, SUSTAIN)
    env[: min(attack, n)] = np.linspace(0, 1, attack, endpoint=False)[: min(attack, n)]
    d_end = min(attack + decay, n)
    env[attack:d_end] = np.linspace(1, SUSTAIN, decay)[: max(0, d_end - attack)]
    # Release starts from wherever the envelope is when the note is let go (short notes never
    # reach the sustain level), and ends exactly at zero.
    level = env[held - 1] if held <= n else SUSTAIN
    env[held:] = level * np.linspace(1, 0, release)
    return wave * env


def _fit_length(samples: np.ndarray, n_samples: int) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32).ravel()
    if len(samples) >= n_samples:
        return samples[:n_samples]
    return np.concatenate([samples, np.zeros(n_samples - len(samples), dtype=np.float32)])


def _normalise(samples: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak > 0:
        samples = samples * (PEAK / peak)
    return samples.astype(np.float32)
