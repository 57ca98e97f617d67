"""Play rendered PCM through QtMultimedia (QAudioSink, pull mode from a QBuffer of 16-bit samples).

The player reports its position for a playhead and says plainly when there is no audio device
(a headless machine, a container, Qt's "Dummy Output"): it then emits `unavailable` with a message and
stays silent, so the app can offer WAV export instead of crashing.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QTimer, Signal

# QtMultimedia links libpulse on Linux: where that library is missing the import fails, and the app
# must still start (without sound, saying so) rather than stop with an ImportError.
try:
    from PySide6.QtMultimedia import QAudioFormat, QAudioSink, QMediaDevices

    try:  # Qt 6.7 renamed the QAudio namespace to QtAudio; the old name's enums no longer compare equal.
        from PySide6.QtMultimedia import QtAudio as QAudio
    except ImportError:  # pragma: no cover - older PySide6
        from PySide6.QtMultimedia import QAudio
    MULTIMEDIA_ERROR = ""
except ImportError as exc:
    QAudioFormat = QAudioSink = QMediaDevices = QAudio = None
    MULTIMEDIA_ERROR = str(exc)  # e.g. "libpulse.so.0: cannot open shared object file: ..."

POSITION_INTERVAL_MS = 25  # playhead refresh: smooth at 40 fps, cheap for the event loop


def audio_output_status() -> tuple[bool, str]:
    """(usable, message) for the system's default audio output."""
    if MULTIMEDIA_ERROR:
        return False, (f"No audio: Qt's audio library could not be loaded ({MULTIMEDIA_ERROR}); "
                       "export a WAV file to listen instead.")
    device = QMediaDevices.defaultAudioOutput()
    if device.isNull() or not QMediaDevices.audioOutputs():
        return False, "No audio output device was found; export a WAV file to listen instead."
    if "dummy" in device.description().lower():
        return False, f"The only audio output is {device.description()!r}; export a WAV file to listen instead."
    return True, device.description()


class AudioPlayer(QObject):
    positionChanged = Signal(int)  # milliseconds of audio played so far
    started = Signal()
    finished = Signal()  # the end was reached or stop() was called
    unavailable = Signal(str)  # a message for the user: why nothing can be played

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._sink: QAudioSink | None = None
        self._buffer: QBuffer | None = None
        self._pcm = QByteArray()
        self._sample_rate = 44100
        self._frames = 0
        self._timer = QTimer(self)
        self._timer.setInterval(POSITION_INTERVAL_MS)
        # The sink's state is polled on the playhead timer rather than through stateChanged, whose
        # QAudio::State argument PySide 6.8+ cannot convert for a Python slot.
        self._timer.timeout.connect(self._tick)
        self.available, self.message = audio_output_status()

    # -- loading ---------------------------------------------------------------------------------
    def load(self, samples, sample_rate: int) -> None:
        """Mono float samples in [-1, 1] (as render_audio returns); stops what is playing."""
        self.stop()
        samples = np.clip(np.asarray(samples, dtype=np.float32).ravel(), -1.0, 1.0)
        self._pcm = QByteArray((samples * 32767.0).round().astype("<i2").tobytes())
        self._sample_rate = int(sample_rate)
        self._frames = len(samples)

    def duration_ms(self) -> int:
        return int(1000 * self._frames / self._sample_rate) if self._frames else 0

    # -- transport -------------------------------------------------------------------------------
    def play(self) -> bool:
        """Start from the beginning. False (and `unavailable` emitted) when nothing can be played."""
        self.stop()
        self.available, self.message = audio_output_status()
        if not self.available:
            self.unavailable.emit(self.message)
            return False
        if not self._frames:
            return False
        fmt = QAudioFormat()
        fmt.setSampleRate(self._sample_rate)
        fmt.setChannelCount(1)
        fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16)
        device = QMediaDevices.defaultAudioOutput()
        if not device.isFormatSupported(fmt):
            self.message = f"{device.description()} cannot play {self._sample_rate} Hz 16-bit mono audio."
            self.unavailable.emit(self.message)
            return False
        self._buffer = QBuffer(self)
        self._buffer.setData(self._pcm)
        self._buffer.open(QIODevice.OpenModeFlag.ReadOnly)
        self._sink = QAudioSink(device, fmt, self)
        self._sink.start(self._buffer)
        if self._sink.error() != QAudio.Error.NoError:
            self.message = f"The audio output {device.description()!r} refused to play ({self._sink.error().name})."
            self._teardown()
            self.unavailable.emit(self.message)
            return False
        self._timer.start()
        self.started.emit()
        return True

    def stop(self) -> None:
        if self._sink is None:
            return
        self._report_position()
        self._teardown()
        self.finished.emit()

    def is_playing(self) -> bool:
        return self._sink is not None

    def position_ms(self) -> int:
        """Audio handed to the device so far, in ms (the device's buffer is a few ms ahead of the ear)."""
        if self._sink is None:
            return 0
        return min(self.duration_ms(), self._sink.processedUSecs() // 1000)

    # -- internals -------------------------------------------------------------------------------
    def _report_position(self) -> None:
        if self._sink is not None:
            self.positionChanged.emit(self.position_ms())

    def _tick(self) -> None:
        if self._sink is None:
            return
        state = self._sink.state()
        # In pull mode the sink goes idle once the buffer is drained: that is the end of the piece.
        if state == QAudio.State.IdleState and self._buffer is not None and self._buffer.atEnd():
            self.positionChanged.emit(self.duration_ms())
            self._teardown()
            self.finished.emit()
        elif state == QAudio.State.StoppedState and self._sink.error() != QAudio.Error.NoError:
            self.message = f"Playback stopped: audio device error {self._sink.error().name}."
            self._teardown()
            self.unavailable.emit(self.message)
        else:
            self._report_position()

    def _teardown(self) -> None:
        self._timer.stop()
        sink, buffer = self._sink, self._buffer
        self._sink = self._buffer = None
        if sink is not None:
            sink.stop()
            sink.deleteLater()
        if buffer is not None:
            buffer.close()
            buffer.deleteLater()
