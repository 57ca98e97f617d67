"""A machine without libpulse, simulated: a libpulse.so.0 that cannot be loaded comes first on the
library path, so importing QtMultimedia (which links it) fails exactly as it does there. Such a Debian
machine has no libfluidsynth either (libfluidsynth3 depends on libpulse0), so pyfluidsynth is replaced
by a module that fails as it does when it finds no library. Then the audio tests are skipped with the
loader's reason instead of stopping the whole collection, and the app starts and says it has no audio.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def no_libpulse(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("no-libpulse")
    (folder / "libpulse.so.0").write_bytes(b"")  # "file too short": the dynamic loader refuses it
    # pyfluidsynth's own words when the system has no libfluidsynth
    (folder / "fluidsynth.py").write_text('raise ImportError("Couldn\'t find the FluidSynth library.")\n')

    def first(name, value):
        return os.pathsep.join(p for p in (value, os.environ.get(name, "")) if p)

    return {**os.environ, "LD_LIBRARY_PATH": first("LD_LIBRARY_PATH", str(folder)),
            "PYTHONPATH": first("PYTHONPATH", str(folder)), "QT_QPA_PLATFORM": "offscreen"}


def _python(env, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def test_the_simulation_is_real(no_libpulse):
    run = _python(no_libpulse, "-c", "import PySide6.QtMultimedia")
    assert run.returncode != 0 and "ImportError" in run.stderr and "libpulse.so.0" in run.stderr


def test_the_audio_tests_are_skipped_with_the_reason_and_collection_goes_on(no_libpulse):
    # one collection of the whole suite: the audio module is skipped with the loader's reason (-rs), the rest
    # is collected, and pytest ends normally (0, not 2, "interrupted")
    collect = _python(no_libpulse, "-m", "pytest", "-q", "-rs", "--collect-only", "-p", "no:cacheprovider", "tests")
    lines = collect.stdout.strip().splitlines()
    skipped = [line for line in lines if line.startswith("SKIPPED [1] tests/test_audio_player.py")]
    assert collect.returncode == 0 and skipped and "libpulse.so.0" in skipped[0], collect.stdout[-3000:]
    summary = lines[-1]
    assert "collected" in summary and "error" not in summary, collect.stdout[-3000:]


def test_the_app_starts_and_says_it_has_no_audio(no_libpulse, tmp_path, midi_folder, corpus_cache):
    env = {**no_libpulse, "MELODY_MEMORY_SETTINGS": str(tmp_path / "s.ini"), "MELODY_MEMORY_DATA": str(tmp_path / "d"),
           "MELODY_MEMORY_CACHE": str(corpus_cache)}
    shot = tmp_path / "no-audio.png"
    run = _python(env, str(ROOT / "main.py"), "gui", "--quit-after", "2", "--screenshot", str(shot), timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    # what the status bar says, and why (its tooltip)
    probe = ("import sys; sys.path.insert(0, '.');"
             "from gui.app import create_app; from gui.main_window import MainWindow;"
             "app = create_app(); w = MainWindow();"
             "print(w.audio_label.text()); print(w.audio_label.toolTip())")
    shown = _python(env, "-c", probe, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    label, tooltip = shown.stdout.strip().splitlines()[-2:]
    assert label == "no audio - use Export WAV"
    assert "libpulse.so.0" in tooltip and "export a WAV file" in tooltip
