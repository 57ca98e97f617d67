"""Fixtures for the app's tests: a small folder of MIDI tunes, a tiny trained run, and the main window
with temporary settings, a temporary cache and no bundled models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.built_once import built_once
from tests.gui.driving import SMALL_EVALUATION


@pytest.fixture(scope="session")
def tiny_run(midi_folder, corpus_cache, tmp_path_factory) -> Path:
    """Five tiny models trained for a few steps, headless (the engine, no Qt), saved as a run (built once per
    test run and shared by the xdist workers: tests only read it)."""
    import os

    os.environ["MELODY_MEMORY_CACHE"] = str(corpus_cache)
    return built_once(tmp_path_factory, "run", lambda out: _train_tiny_run(out, midi_folder))


def _train_tiny_run(out: Path, midi_folder: Path) -> None:
    from engine.data.corpus import load_corpus
    from engine.models.registry import MODEL_KEYS
    from engine.training.run_plan import TrainJob
    from engine.training.train import train
    from engine.training.train_config import TrainConfig

    corpus = load_corpus([midi_folder])
    job = TrainJob(
        models=list(MODEL_KEYS),
        train_tokens=corpus.tokens("train"),
        valid_tokens=corpus.tokens("valid"),
        token_config=corpus.token_config,
        corpus_fingerprint=corpus.fingerprint,
        out_dir=out,
        config=TrainConfig(preset="tiny", steps=6, batch_size=8, eval_every=3, save_every=6, log_every=1,
                           warmup_steps=1, device="cpu", processes=1, threads=1),  # in this process: no workers to start
    )
    for _event in train(job):
        pass


@pytest.fixture
def app_env(qsettings_tmp, corpus_cache, tmp_path, monkeypatch):
    """No bundled models, a temporary corpus cache, settings and data folder, and runs saved under
    tmp_path: each test starts as a new user and writes nothing outside its temporary folder."""
    import gui.loading
    from gui import settings

    monkeypatch.setenv("MELODY_MEMORY_CACHE", str(corpus_cache))
    monkeypatch.setenv(settings.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setattr(gui.loading, "PRETRAINED_DIR", tmp_path / "no-pretrained")
    settings.write("train/out", str(tmp_path / "runs"))
    return tmp_path


@pytest.fixture
def window(qtbot, app_env, midi_folder):
    """The main window with the test tunes loaded as its corpus (waits until they are in)."""
    from gui import settings
    from gui.main_window import MainWindow

    settings.write("corpus/sources", [str(midi_folder)])
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    with qtbot.waitSignal(win.state.corpusChanged, timeout=30000):
        win.start()
    yield win
    win.close()


@pytest.fixture(scope="session")
def shipped_models(tiny_run, midi_folder, corpus_cache, tmp_path_factory) -> Path:
    """A copy of the tiny run standing in for pretrained/: its models and the memory report shipped
    with them (made headless with small settings), read-only to the app as the real ones are. Built once
    per test run and shared by the xdist workers."""
    import os

    os.environ["MELODY_MEMORY_CACHE"] = str(corpus_cache)
    return built_once(tmp_path_factory, "shipped", lambda out: _ship(tiny_run, midi_folder, out)) / "pretrained"


def _ship(tiny_run: Path, midi_folder: Path, out: Path) -> None:
    import json
    import shutil

    from engine.data.corpus import load_corpus
    from engine.evaluation.evaluate import EvalSettings, evaluate

    folder = out / "pretrained"
    shutil.copytree(tiny_run, folder)
    report = evaluate(folder, None, EvalSettings(**{**SMALL_EVALUATION, "recall": True}),
                      corpus=load_corpus([midi_folder]))
    report.pop("timings", None)
    (folder / "memory-report.json").write_text(json.dumps(report), encoding="utf-8")


@pytest.fixture
def bundled(app_env, shipped_models, monkeypatch) -> Path:
    """The app sees `shipped_models` as its bundled models (pretrained/)."""
    import gui.loading

    monkeypatch.setattr(gui.loading, "PRETRAINED_DIR", shipped_models)
    return shipped_models


@pytest.fixture
def small_evaluations(monkeypatch):
    """Evaluate in the Memory tab with small internal sizes (the button still starts it as a user does,
    with the primers and bars of the tab's fields, which tests set small as a user would)."""
    from dataclasses import replace

    from gui.memory import MemoryTab

    internal = {k: v for k, v in SMALL_EVALUATION.items() if k not in ("primers", "primer_bars", "bars")}
    original = MemoryTab.eval_settings
    monkeypatch.setattr(MemoryTab, "eval_settings", lambda tab: replace(original(tab), **internal))


@pytest.fixture
def user(window, qtbot, monkeypatch, tmp_path):
    """The person at the window: clicks controls by their text, answers file dialogs (see driving.py)."""
    from tests.gui.driving import User

    person = User(window, qtbot, monkeypatch, tmp_path / "answers")
    yield person
    person.stop()


@pytest.fixture(scope="session", autouse=True)
def quick_double_click(qapp):
    """A double-click interval of 100 ms instead of the platform's 400 ms. An open drop-down list ignores a
    click that comes sooner than that (memory_driving.choose waits it out: 24 times in one test), and two
    clicks of a test further apart than 100 ms are no double click a person made."""
    qapp.styleHints().setMouseDoubleClickInterval(100)


@pytest.fixture(scope="module", autouse=True)
def gui_thread_garbage_collection(qapp):
    """As in the app (gui/app.py create_app): garbage is collected only in the GUI thread, or a worker
    job may free an earlier test's widgets and deadlock with Qt. Python's own collection comes back
    after each module, for the engine tests."""
    from gui.app import collect_garbage_in_gui_thread, stop_collecting_in_gui_thread

    collect_garbage_in_gui_thread()
    yield
    stop_collecting_in_gui_thread()
