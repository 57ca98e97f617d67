"""The QtMultimedia player: real playback into a PulseAudio null sink advances the playhead and ends;
with no audio device it says so and never crashes.

The null sink is a real PulseAudio output that discards the sound at real-time pace, so the position
the player reports is paced by an actual audio server. Where no server can be started, the playback
tests are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Where libpulse (which QtMultimedia links) is missing, importing it raises a plain ImportError, which
# pytest.importorskip no longer turns into a skip: skip these tests with the loader's own reason.
try:
    import PySide6.QtMultimedia  # noqa: F401
except ImportError as exc:
    pytest.skip(f"Qt's audio library cannot be loaded here: {exc}", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]


def tone(seconds: float, rate: int = 44100) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


# Qt's PulseAudio backend connects once per process: if an earlier test in this process already used
# QtMultimedia before the server was up, it never sees the sink. The same check then runs in a fresh
# interpreter with this script.
_SUBPROCESS_CHECK = r"""
import json, sys, time
import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gui.audio_player import AudioPlayer
seconds, stop_at_ms = float(sys.argv[1]), int(sys.argv[2])  # stop_at_ms 0: play to the end
p = AudioPlayer()
rate = 44100
p.load((0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32), rate)
positions, result = [], {"finished": False, "unavailable": None}
def on_position(ms):
    positions.append((ms, time.monotonic()))
    if stop_at_ms and ms > stop_at_ms and p.is_playing():
        p.stop()
p.positionChanged.connect(on_position)
p.finished.connect(lambda: (result.update(finished=True, playing_after=p.is_playing()), app.quit()))
p.unavailable.connect(lambda m: (result.update(unavailable=m), app.quit()))
t0 = time.monotonic()
result["played"] = p.play()
QTimer.singleShot(int(seconds * 1000) + 5000, app.quit)
app.exec()
result["positions"] = [(ms, round(t - t0, 3)) for ms, t in positions]
result["device"] = p.message
print(json.dumps(result))
"""


def _sink_visible(qtbot, description: str) -> bool:
    from PySide6.QtMultimedia import QMediaDevices
    from pytestqt.exceptions import TimeoutError as WaitTimeout

    try:
        qtbot.waitUntil(lambda: QMediaDevices.defaultAudioOutput().description() == description, timeout=3000)
        return True
    except WaitTimeout:
        return False


def test_playback_into_a_null_sink_advances_the_position_and_finishes(qtbot, pulse_null_sink):
    if not _sink_visible(qtbot, pulse_null_sink):
        return _check_in_fresh_process(pulse_null_sink)
    from gui.audio_player import AudioPlayer

    player = AudioPlayer()
    assert player.available, player.message
    player.load(tone(1.0), 44100)
    assert player.duration_ms() == 1000
    positions = []
    player.positionChanged.connect(positions.append)
    with qtbot.waitSignal(player.started, timeout=2000):
        assert player.play()
    qtbot.waitUntil(lambda: bool(positions) and positions[-1] >= 300, timeout=5000)
    assert player.is_playing()
    with qtbot.waitSignal(player.finished, timeout=5000):
        pass
    assert not player.is_playing()
    assert positions == sorted(positions) and positions[-1] == 1000
    # the position moves with the audio, in many small steps, not in one jump at the end
    assert len(set(positions)) >= 10


def _run_fresh_process(description: str, seconds: float, stop_at_ms: int) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", _SUBPROCESS_CHECK, str(seconds), str(stop_at_ms)],
                         capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["device"] == description and result["played"], result
    assert result["finished"] and result["unavailable"] is None and not result["playing_after"], result
    return result


def _check_in_fresh_process(description: str) -> None:
    ms = [p[0] for p in _run_fresh_process(description, 1.0, 0)["positions"]]
    assert ms == sorted(ms) and ms[-1] == 1000 and len(set(ms)) >= 10


def test_stop_ends_playback_early(qtbot, pulse_null_sink):
    if not _sink_visible(qtbot, pulse_null_sink):
        ms = [p[0] for p in _run_fresh_process(pulse_null_sink, 5.0, 100)["positions"]]
        assert 100 < ms[-1] < 2000  # stopped early, not played to the end
        return
    from gui.audio_player import AudioPlayer

    player = AudioPlayer()
    player.load(tone(5.0), 44100)
    assert player.play()
    qtbot.waitUntil(lambda: player.position_ms() > 100, timeout=5000)
    with qtbot.waitSignal(player.finished, timeout=1000):
        player.stop()
    assert not player.is_playing() and player.position_ms() == 0


def test_no_audio_device_is_reported_not_crashed(qtbot, monkeypatch):
    from PySide6.QtMultimedia import QAudioDevice

    import gui.audio_player as audio_player

    # What Qt returns on a machine without any audio output: a null device and an empty list.
    monkeypatch.setattr(audio_player.QMediaDevices, "defaultAudioOutput", staticmethod(lambda: QAudioDevice()))
    monkeypatch.setattr(audio_player.QMediaDevices, "audioOutputs", staticmethod(lambda: []))
    player = audio_player.AudioPlayer()
    assert not player.available and "WAV" in player.message
    player.load(tone(0.2), 44100)
    with qtbot.waitSignal(player.unavailable, timeout=1000) as signal:
        assert player.play() is False
    assert "No audio output" in signal.args[0]
    assert not player.is_playing()
    player.stop()  # harmless when nothing plays
