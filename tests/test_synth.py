"""Rendering melodies to sound: the length is right, it is not silent, it never clips, and the pitch
heard is the pitch written, with FluidSynth and with the built-in synth."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.errors import UserError
from engine.music import synth
from engine.music.melody import Melody, Note

SR = 22050
TEMPO = 120.0  # 8 steps per second


def one_note(pitch=69, steps=8) -> Melody:
    return Melody((Note(0, pitch, steps),), steps, tempo_qpm=TEMPO)


def tune() -> Melody:
    pitches = [67, 69, 71, 72, 74, 72, 71, 69]
    return Melody(tuple(Note(i * 4, p, 4) for i, p in enumerate(pitches)), 32 + 8, tempo_qpm=TEMPO)


def dominant_hz(samples: np.ndarray, sample_rate: int) -> float:
    window = samples * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(window, n=8 * len(window)))
    return float(np.argmax(spectrum) * sample_rate / (8 * len(window)))


def fundamental_hz(samples: np.ndarray, sample_rate: int, lo=80.0, hi=2000.0) -> float:
    """Pitch by autocorrelation: robust to a SoundFont voice whose 2nd harmonic is the loudest."""
    x = samples - samples.mean()
    corr = np.correlate(x, x, mode="full")[len(x) - 1 :]
    lags = np.arange(len(corr))
    ok = (lags >= sample_rate / hi) & (lags <= sample_rate / lo)
    lag = lags[ok][np.argmax(corr[ok])]
    return sample_rate / lag


def synths():
    ok, reason = synth.fluidsynth_status()
    return [
        "builtin",
        pytest.param("fluidsynth", marks=pytest.mark.skipif(not ok, reason=f"FluidSynth unavailable: {reason}")),
    ]


@pytest.mark.parametrize("prefer", synths())
def test_render_has_the_expected_length_is_audible_and_never_clips(prefer):
    melody = tune()  # 40 steps at 8 steps/s: 5 s (the last second a rest), then the release tail
    samples, rate, name = synth.render_audio(melody, SR, prefer=prefer)
    assert rate == SR and samples.dtype == np.float32
    assert name == (synth.BUILTIN_NAME if prefer == "builtin" else synth.FLUIDSYNTH_NAME)
    assert len(samples) == pytest.approx((5.0 + synth.TAIL_S) * SR, abs=2)
    peak = np.abs(samples).max()
    assert peak == pytest.approx(synth.PEAK, rel=1e-3)  # normalised to -1 dBFS: loud, never clipped
    # every note sounds: each half-second slot of the tune has real energy
    for i in range(8):
        slot = samples[int(i * 0.5 * SR) : int((i + 1) * 0.5 * SR)]
        assert np.sqrt(np.mean(slot**2)) > 0.02, f"note {i} is silent"


@pytest.mark.parametrize("prefer", synths())
def test_the_pitch_heard_is_the_pitch_written(prefer):
    for pitch, hz in ((69, 440.0), (62, 293.66)):
        samples, rate, _ = synth.render_audio(one_note(pitch), SR, prefer=prefer)
        middle = samples[int(0.2 * SR) : int(0.7 * SR)]
        assert fundamental_hz(middle, rate) == pytest.approx(hz, rel=0.02)
    if prefer == "builtin":
        assert dominant_hz(middle, rate) == pytest.approx(293.66, rel=0.01)


def test_builtin_notes_start_and_end_without_clicks():
    samples, _, _ = synth.render_audio(tune(), SR, prefer="builtin")
    # A click is a jump; the largest sample-to-sample step of a 880 Hz-ish tone at -1 dBFS is about
    # 2*pi*f/rate*peak ~ 0.25 plus its harmonics; a hard cut at a note boundary would reach ~1.
    assert np.abs(np.diff(samples)).max() < 0.5
    assert abs(samples[0]) < 1e-3 and np.abs(samples[-100:]).max() < 1e-3


def test_a_silent_melody_renders_silence_of_the_right_length():
    samples, _, _ = synth.render_audio(Melody((), 16, tempo_qpm=TEMPO), SR, prefer="builtin")
    assert len(samples) == pytest.approx((2.0 + synth.TAIL_S) * SR, abs=2)
    assert np.abs(samples).max() == 0.0


def test_asking_for_fluidsynth_where_it_is_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(synth, "fluidsynth_status", lambda: (False, "libfluidsynth not found"))
    with pytest.raises(UserError, match="libfluidsynth not found"):
        synth.render_audio(tune(), SR, prefer="fluidsynth")
    _, _, name = synth.render_audio(tune(), SR, prefer="auto")
    assert name == synth.BUILTIN_NAME  # auto falls back quietly, and says which synth it used
