"""Memory tab: the measures of docs/design.md section 5 as plots, from the report engine/evaluation/evaluate.py makes.

It opens on recall by distance (teacher-forced, no sampling: how far back each model uses what it heard),
then the sampled continuations under their controls (the floor, the temperature sweep, the companions of
theme recall, paired differences, the distinct-bar rate at matched length), influence, the model-side
measures, the probe and the self-similarity heatmaps. Every per-model view lists all the models of the
report in the registry's order with their colours and labels.

Evaluate runs the protocol on the open run's models in a background job (cancellable); the probe has
its own Run button because it trains fresh models. Every plot has a caption saying what to look for;
hovering a plot shows each series' value under the mouse with its interval and n.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QScrollArea, QVBoxLayout, QWidget

from .. import loading, settings, style, workers
from ..setting_fields import label, setting_field
from . import report_data, saved_reports
from .report_files import ReportFiles
from .views import MemoryViews


class _MessageRelay(QObject):
    message = Signal(str)


class MemoryTab(QWidget):
    evaluated = Signal()  # a report is shown

    def __init__(self, state, main_window=None, parent=None):
        super().__init__(parent)
        self.state, self.main_window = state, main_window
        self.report: dict | None = None
        self.report_origin = ""  # where the report shown comes from, in words
        self._cancel: threading.Event | None = None
        self._job = None

        # ---- controls --------------------------------------------------------------------------
        from engine.evaluation.settings import EVAL_SETTINGS

        # Always a number here (the table's "unset" means every eligible test tune: hundreds, minutes of work).
        self.primers = setting_field(EVAL_SETTINGS["primers"], settings.read("memory/primers", 16))
        self.primer_bars = setting_field(EVAL_SETTINGS["primer_bars"], settings.read("memory/primer_bars", 8))
        self.bars = setting_field(EVAL_SETTINGS["bars"], settings.read("memory/bars", 32))
        self.evaluate_button = style.button("Evaluate models", self.evaluate,
                                            "Measure the loaded models (the report is kept in your data folder)", bold=True)
        self.cancel_button = style.button("Cancel", self.cancel, "Stop the evaluation or the probe")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(False)
        self.progress.hide()  # shown while something runs
        self.files = ReportFiles(self)
        self.open_button, self.export_button = self.files.open_button, self.files.export_button
        self.status = QLabel("Press Evaluate to measure how long each model keeps the theme and rhythm.")
        self.status.setStyleSheet("color: #555555;")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # a path to copy
        self.status.setAccessibleName("Memory tab status")
        top = QHBoxLayout()
        for name, box in (("primers", self.primers), ("primer_bars", self.primer_bars), ("bars", self.bars)):
            top.addWidget(label(EVAL_SETTINGS[name], box))
            top.addWidget(box)
        top.addWidget(self.evaluate_button)
        top.addWidget(self.cancel_button)
        top.addWidget(self.progress)
        top.addStretch(1)
        reports = QHBoxLayout()
        reports.addWidget(QLabel("Report"))
        reports.addWidget(self.files.box)
        reports.addWidget(self.open_button)
        reports.addWidget(self.export_button)
        reports.addStretch(1)
        self.legend = QLabel("")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)  # one line on a wide screen, two on a projector

        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setAccessibleName("the memory plots")
        self._views: MemoryViews | None = None  # built on first use (views.py says why)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(reports)
        layout.addWidget(self.status)
        layout.addWidget(self.legend)
        layout.addWidget(self.scroll, 1)
        state.modelsChanged.connect(self._models_changed)
        self._models_changed()

    # ---- the views, built on first use ------------------------------------------------------------
    @property
    def views(self) -> MemoryViews:
        """Every view of the tab; built (and given the report shown) the first time anything needs them."""
        if self._views is None:
            self._views = MemoryViews(self)
            self.scroll.setWidget(self._views)
            if self.main_window is not None:
                self.main_window.adopt(self._views)
            if self.report is not None:
                self._views.show_report(self.report)
            else:
                self._views.clear()
        return self._views

    def setVisible(self, visible: bool) -> None:
        if visible:  # built before the page is shown (whichever way it is chosen), so that it is shown laid out
            self.views  # noqa: B018
        super().setVisible(visible)

    def showEvent(self, event) -> None:
        self.views  # noqa: B018 - shown with its window (the tab was current at launch): setVisible is not called
        super().showEvent(event)

    recall = property(lambda self: self.views.recall)
    view_bar = property(lambda self: self.views.view_bar)
    sampled_header = property(lambda self: self.views.sampled_header)
    per_bar = property(lambda self: self.views.per_bar)
    per_bar_plots = property(lambda self: self.views.per_bar.plots)
    controls = property(lambda self: self.views.controls)
    paired = property(lambda self: self.views.paired)
    influence = property(lambda self: self.views.influence)
    model_side = property(lambda self: self.views.model_side)
    probe = property(lambda self: self.views.probe)
    self_similarity = property(lambda self: self.views.self_similarity)
    summary = property(lambda self: self.views.summary)
    table = property(lambda self: self.views.summary.table)
    table_title = property(lambda self: self.views.summary.title)
    table_caption = property(lambda self: self.views.summary.caption)

    # ---- the loaded models and their reports ------------------------------------------------------
    def _models_changed(self) -> None:
        """Other models are loaded: show the newest report made on them (or the shipped one), if any."""
        found = self.files.refresh()
        if found:
            entry, report = found[0]
            self.show_listed(entry, report)
        elif self._job is None:
            self._clear_report()
        self._update_controls()

    def show_listed(self, entry: saved_reports.Listed, report: dict) -> None:
        """A report of the list (made on these models): shown, and said where it comes from."""
        self.show_report(report)
        if entry.beside_run and loading.is_bundled(self.state.run_dir):
            where = "the report shipped with these models"
        elif entry.beside_run:
            where = f"saved report {entry.path}"
        else:
            where = f"{entry.when}, kept in {entry.path.parent}"
        self.report_origin = entry.when
        self.files.select(entry.path)
        self.status.setText(f"{self.status.text()} ({where})")

    def _update_controls(self) -> None:
        has = self.state.run_dir is not None and bool(self.state.models)
        self.evaluate_button.setEnabled(has and self._job is None)
        if not has:
            self.status.setText("No models yet: train some on the Train tab or open a run; then press Evaluate.")
        elif self.report is None and self._job is None:
            self.status.setText(f"Press Evaluate to measure how long each of the {len(self.state.models)} models "
                                "keeps the theme and rhythm (about a minute for small models).")
        if self.report is None:
            self._draw_legend(self.state.ordered_model_keys() if has else [])

    def _draw_legend(self, keys) -> None:
        # an entry never breaks across lines: seven models wrap between entries
        parts = [f"<span style='white-space:nowrap'>{style.legend_entry(k)}</span>" for k in [*keys, "human", "floor"]]
        self.legend.setText(" &nbsp; ".join(parts))

    def say(self, text: str, status_bar: bool = False) -> None:
        """Tell the person what is happening in the tab's message line (and the window's status bar)."""
        self.status.setText(text)
        if status_bar:
            self.state.status.emit(text)

    def busy(self, on: bool) -> None:
        """A moving progress bar while a job of unknown length runs (an export)."""
        if on:
            self.progress.setRange(0, 0)
            self.progress.show()
        elif self._job is None:
            self.progress.setRange(0, 1)
            self.progress.hide()

    def report_words(self) -> str:
        """The report shown, in words: "7 models, 36 primers, evaluated 2026-12-04 10:22 UTC"."""
        report = self.report or {}
        words = f"{len(report.get('models', []))} models, {len(report.get('primers', []))} primers"
        return f"{words}, {self.report_origin}" if self.report_origin else words

    # ---- evaluation ----------------------------------------------------------------------------
    def eval_settings(self):
        from engine.evaluation.evaluate import EvalSettings

        return EvalSettings(
            primers=self.primers.value(), primer_bars=self.primer_bars.value(), bars=self.bars.value(),
            probe=None, device=getattr(self.state.device, "type", "auto") or "auto",
        )

    def evaluate(self, eval_settings=None):
        """Run engine.evaluation.evaluate on the open run in the background; returns the worker."""
        if self._job is not None or self.state.run_dir is None:
            return None
        from engine.evaluation.evaluate import evaluate
        from engine.evaluation.settings import EVAL_SETTINGS

        for key, box in (("memory/primers", self.primers), ("memory/primer_bars", self.primer_bars),
                         ("memory/bars", self.bars)):
            settings.write(key, box.value())
        eval_settings = eval_settings or self.eval_settings()
        refusal = self._too_few_primers(eval_settings)
        if refusal:
            self.main_window.show_error("Too few primers", refusal)
            return None
        self._cancel = threading.Event()
        progress = workers.progress_relay(self._progress_value, self)
        messages = _MessageRelay(self)
        messages.message.connect(self.status.setText)

        def on_progress(info: dict) -> None:
            messages.message.emit(info.get("message", ""))
            progress(info.get("done", 0), info.get("total", 0))

        self.cancel_button.setEnabled(True)
        style.pass_focus(self.evaluate_button, self.cancel_button)
        self.evaluate_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.show()
        self.status.setText("evaluating ...")
        self.state.set_busy("evaluate", f"Evaluating {len(self.state.models)} models ...")
        labels = {s.name: s.label for s in EVAL_SETTINGS}  # a memory refusal names the fields to lower
        self._job = workers.start_job(
            evaluate, self.state.run_dir, self.state.ordered_model_keys(), eval_settings,
            on_progress, self._cancel, corpus=self.state.corpus, names=labels, cancel=self._cancel,
            on_return=self._evaluated, on_error=self._error, on_finish=self._finished, owner=self,
        )
        self._job.finished.connect(lambda: messages.deleteLater())
        return self._job

    def _too_few_primers(self, eval_settings) -> str:
        """Why the evaluation would draw nothing ("" when it would not): fewer primers asked for, or fewer test
        tunes long enough, than the min_n every mean of the report needs. Said before any work starts."""
        least = eval_settings.min_n
        if eval_settings.primers is not None and eval_settings.primers < least:
            return (f"{eval_settings.primers} primers is fewer than the {least} every mean of the report needs: every "
                    f"plot would be empty. Set Primers to {least} or more; nothing was started.")
        corpus = self.state.corpus
        if corpus is None:
            return ""
        from engine.evaluation.continuations import MIN_EXTRA_BARS, eligible_primers

        bars = eval_settings.primer_bars
        eligible = len(eligible_primers(corpus.split("test"), bars))
        if eligible >= least:
            return ""
        return (f"Only {eligible} test tune{'s' if eligible != 1 else ''} of the {self.state.corpus_label} "
                f"{'have' if eligible != 1 else 'has'} the {bars + MIN_EXTRA_BARS} bars a primer of {bars} bars "
                f"needs (the primer and {MIN_EXTRA_BARS} more), fewer than the {least} every mean of the report "
                "needs: every plot would be empty. Set fewer Primer bars or open a corpus with more long tunes; "
                "nothing was started.")

    def _evaluated(self, report: dict) -> None:
        self.show_report(report)
        self._remember(report)

    def cancel(self) -> None:
        for event in self.stop_events():
            event.set()

    def _progress_value(self, done, total) -> None:
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(done)
        if self._job is not None:  # a late report must not bring back a finished evaluation
            self.state.set_busy("evaluate", f"Evaluating: {self.status.text()}", done, total)

    def _error(self, exc) -> None:
        from engine.evaluation.evaluate import EvaluationCancelled

        if isinstance(workers.unwrap(exc), EvaluationCancelled):
            self.status.setText("evaluation cancelled")
            return
        self.main_window.show_error("Evaluation failed", exc)

    def _finished(self) -> None:
        self._job = None
        self._cancel = None
        self.state.set_busy("evaluate", None)
        self.job_finished()
        self.progress.setValue(0)
        self.busy(self.files.exporting)
        self._update_controls()

    def job_finished(self) -> None:
        """The evaluation or the probe ended: Cancel stays for the other one."""
        self.cancel_button.setEnabled(self._job is not None or (self._views is not None and self._views.probe.running))

    def stop_events(self):
        probe = self._views.probe.stop_event() if self._views is not None else None  # no views, no probe ran
        return [e for e in (self._cancel, probe) if e is not None]

    def _remember(self, report: dict) -> None:
        """Keep the report in the user's data folder, so that reopening the run shows it again. Never in
        the run folder: the bundled models' shipped report must stay as shipped."""
        run_dir = (report.get("run") or {}).get("dir")
        if not run_dir:
            return
        try:
            path = saved_reports.save_report(report, run_dir)
        except Exception as exc:  # a full disk: the report is still shown, say it is not kept
            self.status.setText(f"{self.status.text()} (not kept: {workers.error_text(exc)})")
            return
        self.report_origin = f"evaluated {saved_reports.stamp_text(path)}"
        self.files.refresh(path)
        self.status.setText(f"{self.status.text()} (kept in {path.parent}; the list beside Report holds the "
                            "earlier ones)")

    # ---- drawing -------------------------------------------------------------------------------
    def show_report(self, report: dict) -> None:
        self.report = report
        self.report_origin = ""
        keys = report_data.models(report)
        self._draw_legend(keys)
        if self._views is not None:
            self._views.show_report(report)
        self.status.setText(self._describe(report))
        self.export_button.setEnabled(not self.files.exporting)
        self.evaluated.emit()

    def _describe(self, report: dict) -> str:
        """What the report covers, in words: the models by the name the app gives them (a report
        records the folder of the machine it was made on, which means nothing on this one)."""
        n = len(report.get("primers", []))
        run_dir = (report.get("run") or {}).get("dir", "")
        same = self.state.run_dir is not None and run_dir and Path(run_dir).name == Path(self.state.run_dir).name
        whose = self.state.models_label if same and self.state.models_label else f"run {Path(run_dir).name}"
        return f"{len(report.get('models', []))} models of the {whose}, {n} primers"

    def _clear_report(self) -> None:
        """No report for the loaded models: empty plots rather than another run's figures."""
        self.report = None
        self.report_origin = ""
        if self._views is not None:
            self._views.clear()
        self.export_button.setEnabled(False)

    # ---- files ---------------------------------------------------------------------------------
    def export_report(self, folder: str | None = None):
        return self.files.export(folder)

    def open_report(self, path) -> None:
        try:
            report = saved_reports.read_report(path)
        except Exception as exc:  # shown to the user
            self.main_window.show_error("Could not open the report", exc)
            return
        shown, status, origin = self.report, self.status.text(), self.report_origin
        try:
            self.views  # noqa: B018 - drawn now, so that a part the checks do not cover fails here, not later
            self.show_report(report)
        except Exception as exc:  # a part the checks do not cover: keep what was shown
            self.main_window.show_error("Could not open the report", f"{path}: {workers.error_text(exc)}")
            if shown is not None:
                self.show_report(shown)
            self.status.setText(status)
            self.report_origin = origin
            return
        self.report_origin = f"opened from {path}"
        self.files.select(Path(path))
        self.status.setText(f"{self.status.text()} (opened {path})")
