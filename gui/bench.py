"""Bench section for the app (docs/design.md section 6): gui_latency_ms, gui_vs_headless, first_note_s.

- gui_latency_ms {p50, p99, max}: how late a 10 ms QTimer fires while every model trains in the
  Train tab's worker with live plots (0 = on time). Lateness is what a user feels as a stall.
- gui_vs_headless: training throughput in the app / the same training headless (same job, same process,
  the same torch thread count: the app trains on all cores but one). The two take turns, ALTERNATIONS times
  (engine.bench.ratios): the figure is the median of the turns' ratios with their min-max; each turn trains
  every model 40 steps of the small preset (--quick, a smoke run of every section within a minute: 1 step of
  the registry's first two models in the tiny preset, so a turn is mostly the workers' start and the checkpoints).
- gui_stop_s: from pressing Stop to the worker having saved every model and returned.
- first_note_s: from launching `python main.py gui` to the first generated melody being handed to the
  audio output, with the bundled models (or, when pretrained/ is empty, the run trained here).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from engine.bench.ratios import ALTERNATIONS, ratio_fields

from .state import PROJECT_ROOT

TIMER_MS = 10


QUICK_MODELS = 2  # --quick trains the registry's first two: a turn of all seven is 1.9 s, of two 0.5 s here


def _job_settings(quick: bool) -> dict:
    from engine.models.registry import MODEL_KEYS

    return {"preset": "tiny" if quick else "small", "steps": 1 if quick else 40,
            "models": list(MODEL_KEYS[:QUICK_MODELS] if quick else MODEL_KEYS)}


def _headless_seconds(corpus, settings: dict, out_dir: Path, steps: int | None = None) -> float:
    """Wall time of one training job run directly through the engine, as the app plans it."""
    from engine.training.run_plan import plan_new_run
    from engine.training.train import train
    from engine.training.train_config import TrainConfig

    config = TrainConfig(preset=settings["preset"], steps=steps or settings["steps"],
                         window=_window(settings), seed=0)
    start = time.perf_counter()
    with plan_new_run(out_dir, settings["models"], config) as plan:
        for _event in train(plan.job(corpus), stop=threading.Event()):
            pass
    return time.perf_counter() - start


def _window(settings: dict) -> int:
    from engine.models.registry import PRESET_WINDOWS

    return PRESET_WINDOWS[settings["preset"]]


def _gui_runs(corpus, settings: dict, out_dir: Path, turns: int) -> dict:
    """The same job started from the Train tab, with a 10 ms timer measuring the event loop, in turns with
    the headless job (one window for all turns: the app is opened once, as a person does)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    from .app import create_app
    from .main_window import MainWindow

    app = create_app()
    window = MainWindow()
    window.resize(1280, 800)
    window.show()
    window.state.set_corpus(corpus, "bench corpus")
    tab = window.train_tab
    window.show_tab("train")
    tab.preset.setCurrentText(settings["preset"])
    tab.steps.setValue(settings["steps"])
    tab.window_len.setValue(_window(settings))
    tab.learning_rate.setValue(3e-3)
    tab.seed.setValue(0)
    for key, box in tab.model_boxes.items():
        box.setChecked(key in settings["models"])
    # "auto", as the headless job plans it: never what the person's settings last held (a 1 there once made
    # the app's run single-process and gui_vs_headless 0.54)
    for box in (tab.workers.processes, tab.workers.threads):
        box.setValue(box.minimum())

    lateness: list[float] = []
    clock = QElapsedTimer()
    last = [0]

    def tick():
        now = clock.elapsed()
        lateness.append(max(0.0, now - last[0] - TIMER_MS))
        last[0] = now

    timer = QTimer()
    timer.setInterval(TIMER_MS)
    timer.timeout.connect(tick)
    out_dir.mkdir(parents=True, exist_ok=True)
    headless, in_app = [], []
    for turn in range(turns):
        headless.append(_headless_seconds(corpus, settings, out_dir / f"headless-{turn}"))
        loop = QEventLoop()
        start = time.perf_counter()
        worker = tab.start(out_dir / f"app-{turn}", confirmed=True)  # a bench replaces no person's melodies
        worker.finished.connect(loop.quit)
        last[0] = 0
        clock.start()
        timer.start()
        loop.exec()
        in_app.append(time.perf_counter() - start)
        timer.stop()
        app.processEvents()  # the finished run's last signals, before the next turn starts

    # Stop: a second, long job, stopped once it runs; time until the worker has saved and returned.
    tab.steps.setValue(settings["steps"] * 100)
    worker = tab.start(out_dir / "stopped", confirmed=True)
    first = QEventLoop()
    worker.yielded.connect(first.quit)
    first.exec()
    done = QEventLoop()
    worker.finished.connect(done.quit)
    stop_start = time.perf_counter()
    tab.stop()
    done.exec()
    stop_s = time.perf_counter() - stop_start
    window.close()
    window.deleteLater()
    app.processEvents()
    return {"headless": headless, "in_app": in_app, "lateness": lateness, "stop_s": stop_s}


def _first_note(run_dir: Path | None) -> float | None:
    """Launch the app in a fresh process that generates and plays at once; seconds to the first note."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               "MELODY_MEMORY_SETTINGS": str(Path(tmp) / "settings.ini")}
        cmd = [sys.executable, str(PROJECT_ROOT / "main.py"), "gui", "--first-note", "--quit-after", "60"]
        if run_dir is not None:
            cmd += ["--run", str(run_dir)]
        start = time.time()
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=PROJECT_ROOT)
    for line in run.stdout.splitlines():
        if line.startswith("first_note_at "):
            return float(line.split()[1]) - start
    print(f"first_note: no note ({run.stderr.strip()[-400:]})", file=sys.stderr)
    return None


def measure(quick: bool = False, report: dict | None = None) -> dict:
    from engine.data.corpus import load_corpus
    from engine.training.checkpoint import list_run_models

    from .state import PRETRAINED_DIR

    corpus = load_corpus(None)
    settings = _job_settings(quick)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _headless_seconds(corpus, settings, tmp / "warm-up", steps=1)  # first-use costs out of the way
        # the app's run with settings of its own: the person's (their Train tab, their last run) are neither
        # read nor changed by a bench
        saved = os.environ.get("MELODY_MEMORY_SETTINGS")
        os.environ["MELODY_MEMORY_SETTINGS"] = str(tmp / "bench-settings.ini")
        try:
            gui = _gui_runs(corpus, settings, tmp / "runs", ALTERNATIONS)
        finally:
            if saved is None:
                os.environ.pop("MELODY_MEMORY_SETTINGS", None)
            else:
                os.environ["MELODY_MEMORY_SETTINGS"] = saved
        late = np.asarray(gui["lateness"] or [0.0])
        bundled = PRETRAINED_DIR.is_dir() and list_run_models(PRETRAINED_DIR)
        first_note = _first_note(None if bundled else tmp / "runs" / "app-0")
    return {
        "gui_latency_ms": {
            "p50": float(np.percentile(late, 50)),
            "p99": float(np.percentile(late, 99)),
            "max": float(late.max()),
        },
        **ratio_fields("gui_vs_headless", [h / g for h, g in zip(gui["headless"], gui["in_app"])]),
        "gui_stop_s": gui["stop_s"],
        "gui_train_s": gui["in_app"],
        "headless_train_s": gui["headless"],
        "first_note_s": first_note,
    }
