"""Train tab: pick models and settings, train them side by side, watch the curves grow together.

Training is the engine's generator (engine/training/train.py) run in a superqt worker. The worker forwards
events in small batches, the tab stores them, and a 10 Hz timer redraws what changed, so the event
loop stays responsive however fast the steps come. Stop (or closing the window) sets a
threading.Event that the engine checks every step; it saves the last checkpoint before returning.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine.core.errors import UserError

from . import settings, style, workers
from .train.curves import TrainCurves
from .train.form import TrainForm
from .train_progress import Countdown, busy_line, row_texts, run_line, saved_progress
from .train_questions import ask_to_replace, compositions, offer_own_corpus

REDRAW_MS = 100  # at most 10 redraws a second: smooth enough, cheap for the event loop
BATCH_SECONDS = 0.05  # the worker forwards events at most 20 times a second


class TrainTab(QWidget):
    def __init__(self, state, main_window=None, parent=None):
        super().__init__(parent)
        self.state = state
        self.main_window = main_window
        self._stop: threading.Event | None = None
        self._job = None
        self._dirty: set[str] = set()
        self._progress: dict[str, dict] = {}
        self._run_dir: Path | None = None
        self._failed = False
        self._finish_message = ""  # "stopped at step 120 of 300; saved in ...": kept when the run reopens
        self._finish_run: Path | None = None
        self._countdown = Countdown()
        self._shown_preset: str | None = None  # the preset of the run whose progress the rows show
        self._offered: Path | None = None  # a run stopped before its first checkpoint: Resume starts it (unstarted.py)

        # ---- settings column: the models and the run's settings (gui/train/form.py) ------------------
        self.form = TrainForm(state)
        form = self.form
        self.model_boxes, self.param_labels, self.bars, self.rates = form.model_boxes, form.param_labels, form.bars, form.rates
        self.group_headings = form.group_headings
        self.preset, self.steps, self.learning_rate = form.preset, form.steps, form.learning_rate
        self.window_len, self.seed, self.out_dir, self.workers = form.window_len, form.seed, form.out_dir, form.workers

        self.start_button = style.button("Start training", self.start, "Train the ticked models into a new run folder",
                                         bold=True)
        self.stop_button = style.button("Stop", self.stop, "Stop after the current step; the last checkpoint is kept")
        self.stop_button.setEnabled(False)
        self.resume_button = style.button("Resume", self.resume, "Open a run to continue it")
        self.resume_button.setEnabled(False)
        self.classroom_button = style.button(
            "Classroom settings", form.use_classroom_settings,
            "The defaults: the seed's five models at the small size, settings that show the answer fastest on this computer")
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.resume_button)
        buttons.addStretch(1)
        buttons.addWidget(self.classroom_button)

        self.run_label = QLabel("")
        self.run_label.setWordWrap(True)
        self.run_label.setStyleSheet("color: #555555;")

        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(form)
        left.addLayout(buttons)
        left.addWidget(self.run_label)
        left.addStretch(1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setFixedWidth(470)
        # While Stop saves the last checkpoint no button of the tab can act: the column holds the keyboard
        # focus (a key there changes nothing) until Start is enabled again (issue 25: not Classroom settings).
        self._focus_holder = left_widget

        # ---- the curves (gui/train/curves.py) --------------------------------------------------------
        self.curves = TrainCurves()
        self.train_curves, self.valid_curves = self.curves.train_curves, self.curves.valid_curves

        layout = QHBoxLayout(self)
        layout.addWidget(left_widget)
        layout.addWidget(self.curves, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self.preset.currentTextChanged.connect(self._show_progress_columns)
        form.changed.connect(self._show_workers)
        self._show_workers()
        state.modelsChanged.connect(self._show_loaded_run)

    def _show_progress_columns(self) -> None:
        """The rows' progress belongs to the run shown: hidden while the form's preset is another one, whose
        parameter counts the rows show (a 1500/1500 beside another preset's sizes misleads)."""
        same = self._job is not None or self._shown_preset in (None, self.preset.currentText())
        for key in self.bars:
            self.bars[key].setVisible(same)
            self.rates[key].setVisible(same)

    def _show_workers(self) -> None:
        self.workers.show_plan(self._config(), self.chosen_models(), getattr(self.state.device, "type", "cpu") or "cpu")

    def _config(self):
        return self.form.config(str(getattr(self.state.device, "type", self.state.device) or "auto"))

    def chosen_models(self) -> list[str]:
        return self.form.chosen_models()

    def use_classroom_settings(self) -> None:
        self.form.use_classroom_settings()

    # ---- running -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._job is not None

    def start(self, run_dir: str | Path | None = None, confirmed: bool = False):
        """Start training the chosen models; returns the worker (None when nothing could start, or when the
        person is first asked whether the compositions on the Listen tab may be replaced)."""
        if self._job is not None:
            return None
        keys = self.chosen_models()
        if not keys:
            self.main_window.show_error("Nothing to train", "tick at least one model")
            return None
        if self.state.corpus is None:
            self.main_window.show_error("Nothing to train on", "the corpus is still loading, or none is open")
            return None
        if run_dir is None and not self.out_dir.text().strip():
            self.main_window.show_error("No folder for the run", "\"Save runs in\" is empty: type or choose (...) the "
                                        "folder that new runs are saved in. Nothing was started.")
            return None
        if not confirmed and self.main_window is not None and compositions(self.main_window):
            ask_to_replace(self, lambda: self.start(run_dir, confirmed=True))
            return None
        self.form.save()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path(run_dir) if run_dir else Path(self.out_dir.text().strip()).expanduser() / f"run-{stamp}"
        from engine.training.run_plan import plan_new_run
        from engine.training.train_config import TRAIN_SETTINGS

        # Checked before anything runs: the settings, the folder (writable, not a file, not holding a run)
        # and the corpus (big enough to validate on). The plan holds the run's lock until training ends.
        config = self._config()
        # the settings as the person meets them: the form's labels (the memory check names batch x window too)
        names = {s.name: s.label for s in TRAIN_SETTINGS}
        return self._run(lambda: plan_new_run(run_dir, keys, config, sources=self.state.corpus_sources,
                                              names=names), keys, f"training into {run_dir}", resumed=False)

    def resume(self):
        """Continue the opened run: every model that has not finished, from its last checkpoint, with the
        run's own settings. Finished and bundled models are never touched. Returns the worker (or None)."""
        run_dir = self._resume_dir()
        if self._job is not None or run_dir is None:
            return None
        from engine.training.run_plan import plan_resume

        try:
            peek = plan_resume(run_dir, lock=False)
        except UserError as exc:
            self.main_window.show_error("Cannot resume", exc)
            return None
        if peek.nothing_to_do:
            self.main_window.show_error("Nothing to resume", "\n".join([*peek.notes, "Nothing was changed."]))
            return None
        if offer_own_corpus(self, run_dir):  # trained on other tunes: the person is asked to load them
            return None
        if run_dir == self._offered:  # its curves start afresh, not on those of the models open meanwhile
            self._reset_curves(peek.models)
        return self._run(lambda: plan_resume(run_dir), peek.models, f"resuming {', '.join(peek.models)} in {run_dir}",
                         resumed=True)

    def _run(self, make_plan, keys, message: str, resumed: bool):
        """Plan (checks and the run's lock), make the job from the loaded corpus, train it in a worker."""
        plan = None
        try:
            plan = make_plan()
            job = plan.job(self.state.corpus)
        except UserError as exc:
            if plan is not None:
                plan.release()
            self.main_window.show_error("Cannot resume training" if resumed else "Cannot start training", exc)
            return None
        self._run_dir = Path(plan.out_dir)
        if not resumed:
            self._reset_curves(keys)  # a resume goes on drawing the curves the opened run has so far
        self._stop = threading.Event()
        self._failed = False
        from .training_job import training_job

        self.stop_button.setEnabled(True)
        for button in (self.start_button, self.resume_button):
            style.pass_focus(button, self.stop_button)
            button.setEnabled(False)
        self.run_label.setText(message + ("\n" + "\n".join(job.notes) if job.notes else ""))
        self._countdown = Countdown()
        self._show_progress_columns()
        self.state.set_busy("train", f"Starting training: {len(keys)} model{'s' if len(keys) != 1 else ''} ...")
        self.state.status.emit(f"Starting training ({message})")
        self._job = workers.start_job(
            training_job,
            plan,
            job,
            self._stop,
            BATCH_SECONDS,
            generator=True,
            cancel=self._stop,
            owner=self,
            on_yield=self._events,
            on_error=self._error,
            on_finish=self._finished,
        )
        self._timer.start()
        return self._job

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
            style.pass_focus(self.stop_button, self._focus_holder)
            self.stop_button.setEnabled(False)
            self.run_label.setText("stopping after this step; the last checkpoint is kept ...")
            self.state.set_busy("train", "Stopping training: saving the last checkpoint ...")
            self.state.status.emit("Stopping training after this step; the last checkpoint is kept ...")

    def stop_events(self) -> list[threading.Event]:
        return [self._stop] if self._stop is not None and self._job is not None else []

    def _events(self, batch) -> None:
        """A list of engine TrainEvents (see gui/training_job.py): store them; the timer draws."""
        from .training_job import event_fields

        for event in batch:
            f = event_fields(event)
            key = f["model"]
            if key is None:
                continue
            self.curves.add(key, f["step"], f["train_bpt"], f["valid_bpt"])
            self._progress[key] = f
            self._countdown.note(f["eta_s"])
            self._dirty.add(key)

    def _redraw(self) -> None:
        for key in self._dirty:
            self.curves.draw(key)
            f = self._progress.get(key)
            if f:
                total = max(1, f["total_steps"] or self.steps.value())
                self.bars[key].setValue(int(100 * f["step"] / total))
                text, tip = row_texts(f, total)
                self.rates[key].setText(text)
                self.rates[key].setToolTip(tip)
        if self._job is not None and self._progress and not self._stop.is_set():
            self._show_overall_progress()  # every tick, not only on news: the ETA counts down between events
        self._dirty.clear()

    def _show_overall_progress(self) -> None:
        """One line for the whole run while it trains (train_progress.run_line), in the tab and the status bar."""
        line = run_line(self._progress, self._countdown)
        self.run_label.setText(f"training into {self._run_dir}: {line}")
        done = sum(f["step"] for f in self._progress.values())
        total = sum(f["total_steps"] or 0 for f in self._progress.values())
        self.state.set_busy("train", busy_line(self._progress, self._countdown), done, total)

    def _reset_curves(self, keys) -> None:
        self._progress = {}
        self._dirty.clear()
        self.curves.reset()
        for key in self.train_curves:
            self.bars[key].setValue(0)
            self.rates[key].setText("" if key in keys else "not trained")

    def _error(self, exc) -> None:
        self._failed = True
        self.main_window.show_error("Training failed", exc)

    def _finished(self) -> None:
        self._redraw()
        self._timer.stop()
        stopped = self._stop is not None and self._stop.is_set()
        self._job = None
        self._stop = None
        self.state.set_busy("train", None)
        self.start_button.setEnabled(True)
        style.pass_focus(self.stop_button, self.start_button)  # a run that ends by itself, Stop focused
        if self._focus_holder.hasFocus():  # stopped: the focus waited in the column
            self.start_button.setFocus(Qt.FocusReason.OtherFocusReason)
        self.stop_button.setEnabled(False)
        self._update_resume()
        steps = [f["step"] for f in self._progress.values()]
        total = max((f["total_steps"] or 0 for f in self._progress.values()), default=0)
        at = f" at step {min(steps)} of {total}" if stopped and steps else ""
        if self._failed:
            self._finish_message = f"training failed; what was saved is in {self._run_dir}"
        else:
            self._finish_message = (f"{'stopped' if stopped else 'finished'}{at}; saved in {self._run_dir}. "
                                    "The Listen tab now uses these models.")
        self._finish_run = self._run_dir
        self.run_label.setText(self._finish_message)
        self.state.status.emit(self._finish_message)
        # Open what was saved, so that Listen and Memory use the new models at once; and it is the run the next
        # launch reopens (and offers to resume), also when the window is closing and does not open it now.
        if self.main_window is not None and self._run_dir is not None and self._run_dir.is_dir():
            from engine.training.checkpoint import list_run_models

            if list_run_models(self._run_dir):
                settings.write("run/last", str(self._run_dir))
                self.main_window.open_run(self._run_dir)
            elif self.offer_resume(self._run_dir):  # stopped before its first checkpoint: still the run to resume
                settings.write("run/last", str(self._run_dir))

    # ---- an opened run -------------------------------------------------------------------------
    def _show_loaded_run(self) -> None:
        """When a run is opened, draw its saved training history (unless a job is drawing live)."""
        if self.state.models_origin != "startup":  # the person opened other models: no longer the run offered
            self._offered = None
        if self._job is not None or self.state.run_dir is None:
            return
        from engine.training.checkpoint import read_history

        keys = self.state.ordered_model_keys()
        self._reset_curves(keys)
        first = self.state.models.get(keys[0]) if keys else None
        self._shown_preset = ((first.config.get("training") or {}).get("preset") if first is not None else None)
        for key in keys:
            try:
                rows = read_history(Path(self.state.run_dir) / key)
            except Exception:  # a missing history only means no curve
                rows = []
            for r in rows:
                self.curves.add(key, r["step"], r.get("train_bpt"), r.get("valid_bpt"))
            loaded = self.state.models[key]
            # "step" is where the checkpoint stands, training.steps what was asked for (a stopped run
            # stands short of it).
            self._progress[key] = saved_progress(loaded.record, rows[-1]["step"] if rows else 0)
            self._dirty.add(key)
        self._redraw()
        self._update_resume()
        if self.state.models_origin != "startup":  # at launch the form shows what the user saved
            first = self.state.models.get(keys[0]) if keys else None
            self.form.show_run_settings((first.config.get("training") or {}) if first is not None else {}, keys)
        self._show_progress_columns()
        if self._finish_run is not None and Path(self.state.run_dir) == Path(self._finish_run):
            self.run_label.setText(self._finish_message)  # the run just trained: keep what happened
        elif self._offered is not None:  # the models open meanwhile: the line still offers the run
            self.offer_resume(self._offered)
        elif self.state.models_label == "bundled models":
            self.run_label.setText("showing the bundled models")
        else:
            unfinished = [k for k in keys if self._progress[k]["step"] < self._progress[k]["total_steps"]]
            self.run_label.setText(f"showing the run in {self.state.run_dir}"
                                   + (f" ({len(unfinished)} of {len(keys)} models stopped before their last step)"
                                      if unfinished else ""))

    def _update_resume(self) -> None:
        """Resume is offered when the opened run has models that can continue (unfinished, with training
        state); the tooltip says why not otherwise."""
        from engine.training.run_plan import plan_resume

        why = "Open a run to continue it"
        can = False
        if self._job is None and self._resume_dir() is not None:
            try:
                peek = plan_resume(self._resume_dir(), lock=False)
                can = not peek.nothing_to_do
                why = (f"Continue {', '.join(peek.models)} from their last checkpoints, with the run's settings"
                       if can else "Nothing to resume: " + "; ".join(peek.notes))
            except UserError as exc:
                why = f"Cannot resume: {workers.error_text(exc)}"
        self.resume_button.setEnabled(can)
        self.resume_button.setToolTip(why)

    # ---- a run stopped before its first checkpoint (gui/train/unstarted.py) ---------------------------
    def _resume_dir(self) -> Path | None:
        return self._offered or (Path(self.state.run_dir) if self.state.run_dir is not None else None)

    def offer_resume(self, run_dir) -> bool:
        """Offer Resume for a run none of whose models has a checkpoint yet; False when it is no such run."""
        from .train.unstarted import offered_text, unstarted_models

        if not (keys := unstarted_models(run_dir)):
            return False
        self._offered = Path(run_dir)
        self._update_resume()
        self.run_label.setText(offered_text(run_dir, keys))
        return True
