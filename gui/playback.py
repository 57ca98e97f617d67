"""One playback at a time for the whole app: render a melody in the background, play it through
gui/audio_player.py, and move the playhead of the piano roll it belongs to.

Without an audio device nothing crashes: the status bar says so and Export WAV still works.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from . import workers
from .audio_player import AudioPlayer


class Playback(QObject):
    stateChanged = Signal()  # playing started or stopped (for Play/Stop button texts)
    message = Signal(str)  # a note for the status bar (no audio device, synth used, errors)
    audioStarted = Signal()  # sound is going out
    audioReady = Signal()  # sound was handed to the player (also without a device: first_note_s)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.player = AudioPlayer(self)
        self.player.positionChanged.connect(self._position)
        self.player.finished.connect(self._finished)
        self.player.unavailable.connect(self._unavailable)
        self.synth_name = ""
        self._owner = None  # the widget whose Play button started this (None = idle)
        self._roll = None
        self._start_bar = 0.0
        self._bars_per_ms = 0.0
        self._job = None
        self._token = 0  # discards a render that finishes after the user already pressed Stop

    def warm_up(self) -> None:
        """Render one short note in the background so that the synth (FluidSynth loads its SoundFont)
        is ready before the user first presses Play."""
        from engine.music.melody import Melody, Note
        from engine.music.synth import render_audio

        note = Melody(notes=(Note(0, 60, 1),), n_steps=1)
        workers.start_job(render_audio, note, on_error=lambda exc: None)

    @property
    def audio_ok(self) -> bool:
        return self.player.available

    @property
    def audio_text(self) -> str:
        return self.player.message if self.player.available else "no audio - use Export WAV"

    @property
    def audio_detail(self) -> str:
        """Why there is no sound (no device, or Qt's audio library missing), for a tooltip."""
        return self.player.message

    def is_playing(self, owner=None) -> bool:
        return self._owner is not None and (owner is None or owner is self._owner)

    def play(self, owner, melody, roll=None, start_bar: float = 0.0) -> None:
        """Play `melody`; its step 0 is drawn at `start_bar` on `roll`."""
        from engine.music.synth import render_audio

        self.stop()
        self._owner, self._roll, self._start_bar = owner, roll, start_bar
        # ms -> bars: qpm quarters a minute, 4 steps a quarter, steps_per_bar steps a bar.
        self._bars_per_ms = melody.tempo_qpm / 60000.0 * 4 / melody.steps_per_bar
        self._token += 1
        token = self._token
        self.stateChanged.emit()
        self._job = workers.start_job(
            render_audio,
            melody,
            on_return=lambda result: self._rendered(token, result),
            on_error=lambda exc: self._failed(token, exc),
            owner=self,
        )

    def play_samples(self, owner, samples, sample_rate: int) -> bool:
        self.stop()
        self._owner = owner
        self.stateChanged.emit()
        self.player.load(samples, sample_rate)
        if not self.player.play():
            self._finished()
            return False
        self.audioStarted.emit()
        return True

    def stop(self) -> None:
        self._token += 1
        if self.player.is_playing():
            self.player.stop()  # emits finished -> _finished
        else:
            self._finished()

    # ---- callbacks -----------------------------------------------------------------------------
    def _rendered(self, token, result) -> None:
        if token != self._token:
            return
        samples, rate, synth = result
        if synth != self.synth_name:
            self.synth_name = synth
            self.message.emit(f"synth: {synth}")
        self.player.load(samples, rate)
        started = self.player.play()
        self.audioReady.emit()
        if not started:
            self._finished()
            return
        if self._roll is not None:
            self._roll.set_playhead(self._start_bar)
        self.audioStarted.emit()

    def _failed(self, token, exc) -> None:
        if token == self._token:
            self.message.emit(f"could not render the sound: {workers.error_text(exc)}")
            self._finished()

    def _position(self, ms: int) -> None:
        if self._roll is not None:
            self._roll.set_playhead(self._start_bar + ms * self._bars_per_ms)

    def _unavailable(self, text: str) -> None:
        self.message.emit("no audio - use Export WAV")

    def _finished(self) -> None:
        was = self._owner is not None
        if self._roll is not None:
            self._roll.set_playhead(None)
        self._owner = self._roll = None
        if was:
            self.stateChanged.emit()
