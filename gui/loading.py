"""Small adapters from the engine's loaders to what the GUI needs (run off the GUI thread)."""

from __future__ import annotations

from pathlib import Path

from .state import PRETRAINED_DIR


def load_corpus_job(sources=None, progress=None):
    """The Corpus from `sources` (None = the bundled corpus). `progress(done, total)` may be a Qt
    signal's emit: it is called from the worker thread and Qt queues it to the GUI thread."""
    from engine.corpus import load_corpus

    return load_corpus(sources, progress=progress)


def load_run_models(run_dir: Path, device=None) -> dict:
    """Every model saved in a run directory: key -> LoadedModel. Empty when the folder has none."""
    from engine.checkpoint import list_run_models, load_model
    from engine.device import resolve_device

    device = device or resolve_device("auto")
    return {key: load_model(run_dir, key, device) for key in list_run_models(run_dir)}


def startup_run_dir(last_run: str | None) -> tuple[Path | None, str]:
    """Where the models at start come from: pretrained/ when it holds models, else the last run."""
    from engine.checkpoint import list_run_models

    candidates = [(PRETRAINED_DIR, "bundled models")]
    if last_run:
        candidates.append((Path(last_run), f"run {last_run}"))
    for path, label in candidates:
        try:
            if path.is_dir() and list_run_models(path):
                return path, label
        except Exception:  # noqa: BLE001 - an unreadable folder simply does not qualify
            continue
    return None, ""
