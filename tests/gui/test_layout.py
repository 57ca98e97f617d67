"""The window on a 1024x640 projector, a 1280x800 laptop and a full-HD screen: it fits the screen, no
text is cut off (every label's, button's, check box's, tab's and spin box's text fits its widget),
and the Listen rows share the height. Run offscreen here; the same tests run under Xvfb
(QT_QPA_PLATFORM=xcb xvfb-run ...) and the screenshots were looked at.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from engine.models.registry import MODEL_KEYS
from tests.gui import fake_report
from tests.gui.driving import clipped_texts, offscreen_screen, tab_names

ROOT = Path(__file__).resolve().parents[2]
SIZES = [(1024, 640), (1280, 800), (1920, 1080)]


def _settle(window, qtbot, size) -> None:
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=5000)
    for _ in range(3):  # layouts settle over a few passes (word-wrapped labels, scroll areas)
        QApplication.processEvents()


SHOTS = os.environ.get("MELODY_MEMORY_SHOTS")  # a folder: save every tab at every size, to look at


def _clipped_on_every_tab(window, user, tag: str = "") -> list[str]:
    problems = []
    for name in tab_names(window):
        user.show_tab(name)
        QApplication.processEvents()
        problems += [f"{name}: {p}" for p in clipped_texts(window)]
        if SHOTS and tag:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            window.grab().save(str(Path(SHOTS) / f"{name.lower()}-{tag}.png"))
    return sorted(set(problems))


def test_nothing_is_cut_off_at_three_screen_sizes(bundled, window, user, qtbot):
    """The bundled models with their report, after a Generate, and while five models train."""
    user.show_tab("Listen")
    window.listen_tab.primer_bars.setValue(4)
    window.listen_tab.bars.setValue(8)
    user.click("Generate")
    assert window.memory_tab.report is not None
    minimum = window.minimumSizeHint()
    assert (minimum.width(), minimum.height()) <= (1024, 640), minimum
    for size in SIZES:
        _settle(window, qtbot, size)
        problems = _clipped_on_every_tab(window, user, f"{size[0]}x{size[1]}")
        assert not problems, (size, problems)

    # training: per-model progress and the run's ETA are the longest texts of the Train tab
    user.show_tab("Train")
    tab = window.train_tab
    tab.preset.setCurrentText("tiny")
    tab.steps.setValue(100_000)
    user.click("Start training", wait=False)
    user.answer_question("Train")  # the compositions of the Generate above are on screen: the app asks first
    qtbot.waitUntil(lambda: "left" in tab.run_label.text() and all(r.text() for r in tab.rates.values()),
                    timeout=60000)
    try:
        for size in SIZES:
            _settle(window, qtbot, size)
            assert not clipped_texts(window), (size, clipped_texts(window))
            if SHOTS:
                window.grab().save(str(Path(SHOTS) / f"train-training-{size[0]}x{size[1]}.png"))
    finally:
        user.click("Stop")


def test_the_memory_tab_fits_with_every_panel_and_view(window, user, qtbot, tmp_path):
    """A report with two temperatures, two meters (one with too few primers) and the influence
    distance: every view of the Memory tab at the three sizes, nothing cut off."""
    path = fake_report.write_report(tmp_path)
    user.show_tab("Memory")
    user.answer(path)
    user.click("Open report ...")
    tab = window.memory_tab
    assert tab.influence.isVisible() and tab.view_bar.isVisible()
    for size in SIZES:
        _settle(window, qtbot, size)
        for view, temperature, meter in (("TR over its floor", "1.0", 0), ("raw TR, own floor", "0.7", 1),
                                         ("TR over its floor", "0.7", 2)):
            user.click(view)
            user.click(temperature)
            tab.view_bar.meter_box.setCurrentIndex(meter)
            QApplication.processEvents()
            problems = clipped_texts(window)
            assert not problems, (size, view, temperature, tab.view_bar.meter_box.currentText(), problems)
            if SHOTS:
                window.grab().save(str(Path(SHOTS) / f"memory-{view.split()[0]}-{temperature}-{meter}-{size[0]}x{size[1]}.png"))
        assert tab.per_bar_plots["TR"].notice_text  # the last meter has too few primers: the plot says so


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_listen_rows_share_the_height(window, user, qtbot, tiny_run, size):
    user.answer(tiny_run)
    user.trigger("File > Open run ...")
    user.show_tab("Listen")
    _settle(window, qtbot, size)
    tab = window.listen_tab
    heights = [row.height() for row in tab.rows]
    assert len(heights) == len(MODEL_KEYS) + 1 and max(heights) - min(heights) <= 1, heights
    viewport = tab.scroll.viewport().height()
    used = sum(heights) + tab.rows_layout.spacing() * (len(heights) - 1)
    if viewport >= sum(r.minimumHeight() for r in tab.rows):
        assert used >= viewport - 2, (used, viewport)  # they fill the space: no empty half screen
    else:
        assert tab.scroll.verticalScrollBar().isVisible()  # too small: the stack scrolls, rows keep their size
    assert min(heights) >= tab.rows[0].minimumHeight()


def _launch(tmp_path, platform: str, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": platform, "MELODY_MEMORY_SETTINGS": str(tmp_path / "s.ini"),
           "MELODY_MEMORY_DATA": str(tmp_path / "data")}
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "gui", "--quit-after", "1", *args],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def _image_size(path: Path) -> tuple[int, int]:
    from PySide6.QtGui import QImage

    image = QImage(str(path))
    return image.width(), image.height()


def test_the_window_fits_a_small_screen_even_after_a_large_one(tmp_path, midi_folder, corpus_cache, monkeypatch):
    """First use on a 1024x640 projector: the window is the screen's size. A size saved on a
    full-HD monitor is cut down to the projector's when the app next opens there."""
    from PySide6.QtCore import QSettings

    ini = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    ini.setValue("corpus/sources", [str(midi_folder)])
    ini.sync()
    monkeypatch.setenv("MELODY_MEMORY_CACHE", str(corpus_cache))
    small, large = offscreen_screen(tmp_path, 1024, 640), offscreen_screen(tmp_path, 1920, 1080)
    run = _launch(tmp_path, small, "--screenshot", str(tmp_path / "first.png"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert _image_size(tmp_path / "first.png") == (1024, 640)
    run = _launch(tmp_path, large, "--size", "1900x1050")
    assert run.returncode == 0, run.stderr[-2000:]
    run = _launch(tmp_path, small, "--screenshot", str(tmp_path / "again.png"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert _image_size(tmp_path / "again.png") == (1024, 640)
