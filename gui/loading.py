"""Small adapters from the engine's loaders to what the GUI needs (run off the GUI thread)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .state import PRETRAINED_DIR


def load_corpus_job(sources=None, progress=None):
    """The Corpus from `sources` (None = the bundled corpus). `progress(done, total)` may be a Qt
    signal's emit: it is called from the worker thread and Qt queues it to the GUI thread.

    A folder with nothing usable gives an empty Corpus (not an error), so that the app can list
    every file it skipped and why."""
    from engine.data.corpus import load_corpus

    return load_corpus(sources, progress=progress, allow_empty=True)


@dataclass
class RunModels:
    """A run's models that loaded, and the ones that did not with the reason (a damaged file)."""

    models: dict = field(default_factory=dict)  # key -> LoadedModel
    damaged: dict = field(default_factory=dict)  # key -> why it did not load


def load_run_models(run_dir: Path, device=None) -> RunModels:
    """Every model saved in a run directory: one damaged model does not keep the healthy ones out."""
    from engine.core.device import resolve_device
    from engine.core.errors import UserError
    from engine.training.checkpoint import load_model, run_model_keys

    device = device or resolve_device("auto")
    found = RunModels()
    for key in run_model_keys(run_dir):
        try:
            found.models[key] = load_model(run_dir, key, device)
        except UserError as exc:
            found.damaged[key] = str(exc)
    return found


def bundled_run_dir() -> Path | None:
    """pretrained/ when it holds models (a checkout or wheel without them has none)."""
    from engine.training.checkpoint import list_run_models

    try:
        return PRETRAINED_DIR if PRETRAINED_DIR.is_dir() and list_run_models(PRETRAINED_DIR) else None
    except Exception:  # an unreadable folder simply does not qualify
        return None


def is_bundled(run_dir) -> bool:
    """Whether `run_dir` is the bundled models' folder (whose report is shipped and read-only)."""
    try:
        return run_dir is not None and Path(run_dir).resolve() == PRETRAINED_DIR.resolve()
    except OSError:
        return False
