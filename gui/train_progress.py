"""What the Train tab says about a run while it trains, and the processes and threads it will use.

The ETA: every engine event carries the whole job's estimate (engine/training/loop.py; merged over the
training processes in engine/training/train_workers.py). The tab keeps the newest one and counts it down
between events, so it reaches zero; taking the largest of each model's last estimate (as it once did) froze
it at the value a model had when it finished first. The steps are summed over the models, so the total is
right when models finish at different times (early stopping, a resume of some of them).
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from . import settings
from .setting_fields import setting_field


def format_eta(seconds) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


class Countdown:
    """The newest job-wide estimate and when it came: what is left now."""

    def __init__(self):
        self.eta: float | None = None
        self.at = 0.0

    def note(self, eta_s) -> None:
        if eta_s is not None and math.isfinite(eta_s):
            self.eta, self.at = float(eta_s), time.monotonic()

    def left(self) -> float | None:
        return None if self.eta is None else max(0.0, self.eta - (time.monotonic() - self.at))


def saved_progress(record, history_step: int) -> dict:
    """A saved model's row: where its checkpoint stands against the steps asked for (a stopped run stands
    short of them). A model that early stopping ended (its validation loss no longer improved) is finished:
    its bar is full, not at the share of a step budget it never needed (the bundled models stop at 45-70%
    of the converged recipe's step cap)."""
    total = record.training.steps if record is not None else None
    last = record.step if record is not None else history_step
    early = record is not None and record.stopped_early
    return {"step": last, "total_steps": last if early else (total or last or 1), "tokens_per_s": None,
            "eta_s": None, "stopped_early_of": total if early else None}


def row_texts(f: dict, total: int) -> tuple[str, str]:
    """A model row's progress text and its tooltip."""
    if f.get("stopped_early_of"):
        return (f"{f['step']} done", f"finished at step {f['step']} of at most {f['stopped_early_of']}: early "
                "stopping ended it when its validation loss no longer improved")
    speed = f", {f['tokens_per_s']:,.0f} tokens/s" if f.get("tokens_per_s") else ""
    return f"{f['step']}/{total}", f"step {f['step']} of {total}{speed}"


def run_line(progress: dict, countdown: Countdown) -> str:
    """"1,234 of 7,500 steps over 5 models (2 done), about 1:23 left"."""
    rows = list(progress.values())
    done = sum(min(f["step"], f["total_steps"] or f["step"]) for f in rows)
    total = sum(f["total_steps"] or 0 for f in rows) or 1
    finished = sum(1 for f in rows if f.get("finished") or (f["total_steps"] and f["step"] >= f["total_steps"]))
    left = countdown.left()
    parts = [f"{done:,} of {total:,} steps over {len(rows)} models"]
    if finished:
        parts.append(f" ({finished} done)")
    if left is not None:
        parts.append(f", about {format_eta(left)} left")
    return "".join(parts)


def busy_line(progress: dict, countdown: Countdown) -> str:
    """The status bar's short form, what matters first: "Training, about 1:23 left: 1,234 of 7,500 steps"."""
    done = sum(min(f["step"], f["total_steps"] or f["step"]) for f in progress.values())
    total = sum(f["total_steps"] or 0 for f in progress.values()) or 1
    left = countdown.left()
    return f"Training{f', about {format_eta(left)} left' if left is not None else ''}: {done:,} of {total:,} steps"


class WorkersRow(QWidget):
    """Training processes and torch threads per process: "auto" (0) or a number; beside them what auto
    means on this computer for the ticked models (engine/training/train.py plan_processes)."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        from engine.training.train_config import TRAIN_SETTINGS

        # unset (saved as 0) is "auto": the engine chooses from the cores and the ticked models
        self.processes = setting_field(TRAIN_SETTINGS["processes"], settings.read("train/processes", 0, int) or None,
                                       unset="auto")
        self.threads = setting_field(TRAIN_SETTINGS["threads"], settings.read("train/threads", 0, int) or None,
                                     unset="auto")
        self.plan = QLabel("")
        self.plan.setStyleSheet("color: #555555; font-size: 11px;")
        self.plan.setObjectName("workersPlan")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.processes)
        layout.addWidget(QLabel("x threads"))
        layout.addWidget(self.threads)
        layout.addWidget(self.plan, 1)
        for box, key in ((self.processes, "train/processes"), (self.threads, "train/threads")):
            box.valueChanged.connect(lambda value, key=key: settings.write(key, value))
            box.valueChanged.connect(self.changed)

    def values(self) -> dict:
        """The TrainConfig fields: None where auto."""
        return {"processes": self.processes.value() or None, "threads": self.threads.value() or None}

    def show_plan(self, config, keys, device) -> None:
        """What training will use with these settings and models, in words."""
        from engine.core.device import cpu_cores, resolve_device
        from engine.training.train import plan_processes

        if not keys:
            self.plan.setText("")
            return
        processes, threads = plan_processes(config, keys, resolve_device(str(device)))
        self.plan.setText(f"= {processes} process{'es' if processes != 1 else ''} x {threads} "
                          f"thread{'s' if threads != 1 else ''} ({cpu_cores()} cores)")
