"""A run stopped before its first checkpoint (the window closed, or Stop pressed, while the models were still
starting): no model of it can be opened, yet it is the run the person was training, so it is the one Resume
offers, now and at the next launch (issue 25 item 3), while Listen and Memory keep models that can be opened."""

from __future__ import annotations

from pathlib import Path

from engine.core.errors import UserError


def unstarted_models(run_dir) -> list[str]:
    """The models a resume of `run_dir` would start from scratch, when none of them has a checkpoint yet;
    [] for any other folder (one with trained models, a damaged one, no run at all)."""
    from engine.training.checkpoint import list_run_models
    from engine.training.run_plan import plan_resume, read_manifest

    run_dir = Path(run_dir)
    try:
        if not run_dir.is_dir() or read_manifest(run_dir) is None or list_run_models(run_dir):
            return []
        peek = plan_resume(run_dir, lock=False)
    except (UserError, OSError):
        return []
    return [] if peek.nothing_to_do else list(peek.models)


def offered_text(run_dir, keys: list[str]) -> str:
    return (f"The run in {run_dir} was stopped before its first checkpoint ({', '.join(keys)}): nothing of it was "
            "saved. Resume starts it again with its settings.")


def offered_message(run_dir) -> str:
    """The window's message at the launch that offers it."""
    return f"Your last run, {run_dir}, was stopped before its first checkpoint: Resume (Train tab) starts it again"


def models_meanwhile(run_dir) -> Path | None:
    """The models a launch opens while it offers `run_dir`: those the person last trained or opened (if still
    there), else the bundled ones, else none."""
    from .. import settings
    from ..loading import bundled_run_dir, is_bundled

    earlier = settings.read("run/models", "")
    if earlier and Path(earlier) != Path(run_dir) and Path(earlier).is_dir():
        return Path(earlier)
    bundled = bundled_run_dir()
    return bundled if bundled is not None and not is_bundled(run_dir) else None
