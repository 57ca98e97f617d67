"""Memory tab: the measures of docs/design.md section 5 as plots, from the report engine/evaluation/evaluate.py makes.

Evaluate runs the protocol on the open run's models in a background job (cancellable); the probe has
its own Run button because it trains fresh models. Every plot has a caption saying what to look for;
hovering a plot shows each series' value under the mouse with its interval and n.

The view controls choose what the per-bar plots, the distinct-bar rate and the summary show: theme
recall over each source's matched floor (the default) or raw with each source's own floor, one of the
report's temperatures, and all meters or one. Labels, colours and line styles come from the metric
table (engine.metrics.table) through gui.style.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.metrics.table import DERIVED, PER_BAR, series_info

from . import loading, memory_report, saved_reports, settings, style, workers
from . import memory_model_plots as model_plots
from .memory_report import floats
from .memory_summary import SummaryTable
from .plots import Bar, CaptionedPlot, Series

EXCESS, RAW = "excess", "raw"  # the two views of theme recall
# What to look for in each per-bar plot; a metric the table adds later gets its axis label instead.
LOOK_FOR = {
    "TR_excess": "How much more each bar resembles some bar of the primer (any transposition) than the same "
                 "source's output resembles another tune's opening: 0 (dotted) is chance for that source. A model "
                 "that keeps the theme stays above 0, like the dashed human line; one that forgets sinks to 0.",
    "TR": "Theme recall of each source (the human reference dashed) and, dotted in the same colour, its own "
          "matched floor: its output scored against another tune's opening. The gap between the two is the excess.",
    "RR": "How closely each bar's rhythm matches some primer bar. Watch which models keep the primer's rhythm to "
          "the end and which drift towards the dotted floor (another tune's opening).",
    "IK": "Share of notes in the primer's key. A fall late in the piece means the model has forgotten the key "
          "it started in.",
}
PLOTTED = [key for key, metric in PER_BAR.items() if metric.plot]  # TR, RR, IK: the table says which


class MemoryTab(QWidget):
    evaluated = Signal()  # a report is shown
    probeFinished = Signal()

    def __init__(self, state, main_window=None, parent=None):
        super().__init__(parent)
        self.state, self.main_window = state, main_window
        self.report: dict | None = None
        self._cancel: threading.Event | None = None
        self._probe_cancel: threading.Event | None = None
        self._job = None
        self._probe_job = None
        self.view = EXCESS
        self.temperature: str | None = None
        self.meter = memory_report.ALL_METERS

        # ---- controls --------------------------------------------------------------------------
        self.primers = style.spin_box(1, 500, settings.read("memory/primers", 16), "test tunes used as primers")
        self.primer_bars = style.spin_box(1, 64, settings.read("memory/primer_bars", 8), "bars of each primer")
        self.bars = style.spin_box(4, 256, settings.read("memory/bars", 32), "bars each model composes per primer")
        self.evaluate_button = style.button("Evaluate models", self.evaluate,
                                            "Measure the loaded models (the report is kept in your data folder)", bold=True)
        self.cancel_button = style.button("Cancel", self.cancel, "Stop the evaluation or the probe")
        self.cancel_button.setEnabled(False)
        self.open_button = style.button("Open report ...", self.open_report_dialog, "Show a report.json made earlier")
        self.export_button = style.button("Export report ...", self.export_report,
                                          "Write the report (JSON, CSV, PNG plots, summary) into a folder")
        self.export_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(False)
        self.progress.hide()  # shown while something runs
        self.status = QLabel("Press Evaluate to measure how long each model keeps the theme and rhythm.")
        self.status.setStyleSheet("color: #555555;")
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        for text, box in (("Primers", self.primers), ("primer bars", self.primer_bars), ("bars", self.bars)):
            top.addWidget(QLabel(text))
            top.addWidget(box)
        top.addWidget(self.evaluate_button)
        top.addWidget(self.cancel_button)
        top.addWidget(self.progress)
        top.addStretch(1)
        top.addWidget(self.open_button)
        top.addWidget(self.export_button)

        self.legend = QLabel("")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)  # one line on a wide screen, two on a projector

        # ---- what the report's views show: theme recall's view, temperature, meter -----------------
        self.excess_button = self._switch("TR over its floor", "Theme recall minus each source's own matched floor: "
                                          "0 is chance for that source (the default view)")
        self.raw_button = self._switch("raw TR, own floor", "Theme recall as measured, with each source's own "
                                       "matched floor dotted in its colour")
        style.on_click(self.excess_button, lambda: self.set_view(EXCESS))
        style.on_click(self.raw_button, lambda: self.set_view(RAW))
        self.view_group = QButtonGroup(self)
        for b in (self.excess_button, self.raw_button):
            self.view_group.addButton(b)
        self.excess_button.setChecked(True)
        self.temperature_group = QButtonGroup(self)
        self.temperature_buttons: dict[str, QPushButton] = {}
        self.temperature_row = QHBoxLayout()
        self.temperature_row.setSpacing(2)
        self.temperature_label = QLabel("temperature")
        self.meter_box = QComboBox()
        self.meter_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.meter_box.setToolTip("Show the per-bar plots for every meter or one (meters differ in steps per bar)")
        self.meter_box.currentIndexChanged.connect(self._meter_chosen)
        views = QHBoxLayout()
        views.setContentsMargins(0, 0, 0, 0)
        views.addWidget(QLabel("Theme recall"))
        views.addWidget(self.excess_button)
        views.addWidget(self.raw_button)
        views.addSpacing(16)
        views.addWidget(self.temperature_label)
        views.addLayout(self.temperature_row)
        views.addSpacing(16)
        views.addWidget(QLabel("meter"))
        views.addWidget(self.meter_box)
        views.addStretch(1)
        self.view_bar = QWidget()
        self.view_bar.setLayout(views)
        self.view_bar.hide()  # until a report is shown

        # ---- plots -----------------------------------------------------------------------------
        self.per_bar_plots = {
            metric: CaptionedPlot(f"{PER_BAR[metric].label} per bar", LOOK_FOR.get(metric, PER_BAR[metric].axis_label),
                                  "bar of the continuation", metric, value_format="{:.3f}", hover_point_name="bar")
            for metric in PLOTTED
        }
        self.distinct_plot = CaptionedPlot(
            "Distinct-bar rate", "", "distinct bars / bars", "", height=190, value_format="{:.3f}")
        self.influence_plot = CaptionedPlot(
            "Influence distance", "How far back, in bars, the earlier notes that each generated note drew on lie "
            "(gradient influence, share of notes per bin). Dotted verticals: each source's chance level, the mean "
            "distance if every earlier note weighed the same.", "bars back", "share of notes", value_format="{:.1%}",
            hover_point_name="bars back")
        self.influence_mean_plot = CaptionedPlot(
            "Mean influence distance against chance",
            "Mean distance in bars with its 95% interval over primers; the grey tick is the source's chance "
            "level. A bar well beyond its tick reaches further back than chance: the model drew on the opening.",
            "bars back", "", value_format="{:.2f}")
        self.influence_group = QWidget()
        influence_row = QHBoxLayout(self.influence_group)
        influence_row.setContentsMargins(0, 0, 0, 0)
        influence_row.addWidget(self.influence_plot)
        influence_row.addWidget(self.influence_mean_plot)
        self.influence_group.hide()  # until a report has the influence distance
        self.nll_bar_plot = CaptionedPlot(
            "Loss per bar (teacher-forced, test tunes)",
            "Bits per token in each bar of a tune. A model with memory gets better as the tune repeats itself; "
            "a forgetful one stays flat.", "bar of the tune", "bits per token", value_format="{:.3f}",
            hover_point_name="bar")
        self.context_plot = CaptionedPlot(
            "Context curve: loss when only the last k steps are visible",
            "Each model's loss with k steps of context. The large dot is its effective memory: more context "
            "than that no longer helps (within 1%).", "context k (16th-note steps)", "bits per token", log_x=True,
            value_format="{:.3f} bits")
        self.length_plot = CaptionedPlot(
            "Length check: NLL with all the context minus the best NLL_k",
            "Does a model get worse with more context? A bar beyond the red line fails: with everything it has "
            "heard its loss is higher than with only its best k steps, so part of its 'forgetting' over a long "
            "continuation may be length generalisation, not memory.", "bits", "", height=190,
            value_format="{:+.4f} bits")
        self.gradient_plot = CaptionedPlot(
            "Gradient memory G(k)",
            "How strongly a prediction still depends on the note k steps back (log scale). A steep fall is the "
            "vanishing gradient: the model cannot learn from far back.", "steps back k", "G(k) / G(1)",
            log_x=True, log_y=True)
        self.repeat_plot = CaptionedPlot(
            "Repeat gain",
            "Bits saved on bars that repeat an earlier bar. High = the model notices and exploits repetition.",
            "bits per token", "", value_format="{:.3f} bits")
        self.probe_plot = CaptionedPlot(
            "Theme-recall probe",
            "A motif, g bars of random filler, the motif again: accuracy on the repeat. Dotted line = chance. "
            "Which models still recall the motif across long gaps?", "gap g (bars)", "accuracy", value_format="{:.2f}",
            log_x=True)  # gaps double (1, 2, 4 ... 32): on a linear axis the short ones pile up at the left
        self.probe_gaps = QLineEdit(settings.read("memory/probe_gaps", "1, 2, 4, 8"))
        self.probe_gaps.setToolTip("Gaps in bars between the motif and its repeat, separated by commas")
        self.probe_gaps.setMaximumWidth(140)
        self.probe_steps = style.spin_box(20, 5000, settings.read("memory/probe_steps", _default_probe_steps()), "training steps per model")
        self.probe_button = style.button("Run probe", self.run_probe, "Train fresh models on the synthetic probe")
        probe_controls = QHBoxLayout()
        probe_controls.addWidget(QLabel("gaps"))
        probe_controls.addWidget(self.probe_gaps)
        probe_controls.addWidget(QLabel("steps"))
        probe_controls.addWidget(self.probe_steps)
        probe_controls.addWidget(self.probe_button)
        probe_controls.addStretch(1)
        self.probe_plot.layout().insertLayout(1, probe_controls)

        self.ssm_box = QWidget()
        self.ssm_layout = QHBoxLayout(self.ssm_box)
        self.ssm_layout.setContentsMargins(0, 0, 0, 0)
        ssm_group = QWidget()
        ssm_v = QVBoxLayout(ssm_group)
        self.ssm_title = QLabel("<b>Self-similarity of primer + continuation</b>")
        ssm_v.addWidget(self.ssm_title)
        ssm_v.addWidget(self.ssm_box)
        ssm_v.addWidget(style.caption(
            "Bright squares off the diagonal are bars that repeat earlier bars. The human tune shows a "
            "grid of repeats; a model with memory shows it too, a forgetful one only the diagonal. "
            "The primer is the top-left block."))

        self.table = SummaryTable()
        self.table_title = QLabel("<b>Summary</b>")
        self.table_caption = style.caption("")
        table_group = QWidget()
        table_v = QVBoxLayout(table_group)
        table_v.addWidget(self.table_title)
        table_v.addWidget(self.table)
        table_v.addWidget(self.table_caption)

        # Half-width panels two to a row; the table, the influence pair and the heatmaps span the width.
        halves = [self.per_bar_plots[m] for m in PLOTTED]
        grid = QGridLayout()
        grid.addWidget(halves[0], 0, 0)
        if len(halves) > 1:
            grid.addWidget(halves[1], 0, 1)
        grid.addWidget(table_group, 1, 0, 1, 2)
        row = 2
        rest = [*halves[2:], self.distinct_plot]
        for i in range(0, len(rest), 2):
            for j, widget in enumerate(rest[i:i + 2]):
                grid.addWidget(widget, row, j)
            row += 1
        grid.addWidget(self.influence_group, row, 0, 1, 2)
        row += 1
        for i, pair in enumerate(((self.context_plot, self.length_plot), (self.gradient_plot, self.nll_bar_plot),
                                  (self.repeat_plot, self.probe_plot))):
            grid.addWidget(pair[0], row + i, 0)
            grid.addWidget(pair[1], row + i, 1)
        grid.addWidget(ssm_group, row + 3, 0, 1, 2)
        body = QWidget()
        body.setLayout(grid)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.scroll = scroll

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.legend)
        layout.addWidget(self.view_bar)
        layout.addWidget(scroll, 1)
        state.modelsChanged.connect(self._models_changed)
        self._models_changed()

    @staticmethod
    def _switch(text: str, tip: str) -> QPushButton:
        """A checkable button of an exclusive group (one of the views, one of the temperatures)."""
        button = QPushButton(text)
        button.setCheckable(True)
        button.setToolTip(tip)
        return button

    def _models_changed(self) -> None:
        """Other models are loaded: show the newest report made on them (or the shipped one), if any."""
        has = self.state.run_dir is not None and bool(self.state.models)
        found = saved_reports.newest_report(self.state.run_dir, self.state.models) if has else None
        if found is not None:
            self._show_saved(*found)
        elif self._job is None:
            self._clear_report()
        self._update_controls()

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
        parts = [style.legend_entry(k) for k in [*keys, "human", "floor"]]
        self.legend.setText("&nbsp;&nbsp;&nbsp;".join(parts))

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

        for key, box in (("memory/primers", self.primers), ("memory/primer_bars", self.primer_bars),
                         ("memory/bars", self.bars)):
            settings.write(key, box.value())
        self._cancel = threading.Event()
        progress = workers.progress_relay(self._progress_value, self)
        messages = _MessageRelay(self)
        messages.message.connect(self.status.setText)

        def on_progress(info: dict) -> None:
            messages.message.emit(info.get("message", ""))
            progress(info.get("done", 0), info.get("total", 0))

        self.evaluate_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.show()
        self.status.setText("evaluating ...")
        self._job = workers.start_job(
            evaluate,
            self.state.run_dir,
            self.state.ordered_model_keys(),
            eval_settings or self.eval_settings(),
            on_progress,
            self._cancel,
            corpus=self.state.corpus,
            cancel=self._cancel,
            on_return=self._evaluated,
            on_error=self._error,
            on_finish=self._finished,
        )
        self._job.finished.connect(lambda: messages.deleteLater())
        return self._job

    def _evaluated(self, report: dict) -> None:
        self.show_report(report)
        self._remember(report)

    def cancel(self) -> None:
        for event in (self._cancel, self._probe_cancel):
            if event is not None:
                event.set()

    def _progress_value(self, done, total) -> None:
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(done)

    def _error(self, exc) -> None:
        from engine.evaluation.evaluate import EvaluationCancelled

        if isinstance(workers.unwrap(exc), EvaluationCancelled):
            self.status.setText("evaluation cancelled")
            return
        self.main_window.show_error("Evaluation failed", exc)

    def _finished(self) -> None:
        self._job = None
        self._cancel = None
        self.cancel_button.setEnabled(self._probe_job is not None)
        self.progress.setValue(0)
        self.progress.hide()
        self._update_controls()

    def stop_events(self):
        return [e for e in (self._cancel, self._probe_cancel) if e is not None]

    # ---- drawing -------------------------------------------------------------------------------
    def show_report(self, report: dict) -> None:
        self.report = report
        keys = list(report.get("models", []))
        self._draw_legend(keys)
        self._build_view_controls(report)
        self._draw_view()
        self._draw_influence(report, keys)
        model_plots.draw_nll_per_bar(self.nll_bar_plot, report, keys)
        model_plots.draw_context(self.context_plot, report, keys)
        model_plots.draw_length_check(self.length_plot, report, keys)
        model_plots.draw_gradient(self.gradient_plot, report, keys)
        model_plots.draw_repeat_gain(self.repeat_plot, report, keys)
        self._draw_ssm(report, keys)
        if report.get("probe"):
            self.show_probe(report["probe"])
        self.status.setText(self._describe(report))
        self.export_button.setEnabled(True)
        self.evaluated.emit()

    # -- the view controls
    def _build_view_controls(self, report: dict) -> None:
        """The temperatures and meters of this report; the user's choices are kept where they still exist."""
        temps = memory_report.temperatures(report)
        if self.temperature not in temps:
            self.temperature = temps[0] if temps else None
        for button in self.temperature_buttons.values():  # out of the row now, not when Qt deletes them
            self.temperature_group.removeButton(button)
            self.temperature_row.removeWidget(button)
            button.hide()
            button.deleteLater()
        self.temperature_buttons = {}
        for t in temps:
            button = self._switch(t, f"Show the continuations sampled at temperature {t}")
            style.on_click(button, lambda t=t: self.set_temperature(t))
            self.temperature_group.addButton(button)
            self.temperature_row.addWidget(button)
            self.temperature_buttons[t] = button
        if self.temperature in self.temperature_buttons:
            self.temperature_buttons[self.temperature].setChecked(True)
        self.temperature_label.setVisible(bool(temps))

        has_excess = "TR_excess" in report.get("per_bar", {})
        self.excess_button.setEnabled(has_excess)
        self.excess_button.setToolTip(self.excess_button.toolTip() if has_excess else
                                      "This report predates the matched floor: only raw theme recall")
        if not has_excess:
            self.view = RAW
        (self.excess_button if self.view == EXCESS else self.raw_button).setChecked(True)

        counts, least = memory_report.meters(report), memory_report.min_n(report)
        self.meter_box.blockSignals(True)
        self.meter_box.clear()
        self.meter_box.addItem(f"all meters ({len(report.get('primers', []))} primers)", memory_report.ALL_METERS)
        for meter, n in counts.items():
            few = least is not None and n < least
            self.meter_box.addItem(f"{meter} ({n} primers{': too few' if few else ''})", meter)
        found = self.meter_box.findData(self.meter)
        if found < 0:
            self.meter, found = memory_report.ALL_METERS, 0
        self.meter_box.setCurrentIndex(found)
        self.meter_box.setEnabled(bool(counts))
        self.meter_box.blockSignals(False)
        self.view_bar.show()

    def set_view(self, view: str) -> None:
        """Theme recall over the matched floor (EXCESS) or raw with each source's own floor (RAW)."""
        self.view = view
        (self.excess_button if view == EXCESS else self.raw_button).setChecked(True)
        if self.report is not None:
            self._draw_per_bar()

    def set_temperature(self, temperature: str) -> None:
        self.temperature = temperature
        if temperature in self.temperature_buttons:
            self.temperature_buttons[temperature].setChecked(True)
        if self.report is not None:
            self._draw_view()

    def _meter_chosen(self, index: int) -> None:
        self.meter = self.meter_box.itemData(index) or memory_report.ALL_METERS
        if self.report is not None:
            self._draw_per_bar()

    def _draw_view(self) -> None:
        """Everything that depends on the temperature and meter shown."""
        self._draw_per_bar()
        self._draw_distinct()
        self.table.fill(self.report, self.temperature)
        first, last = memory_report.first_last_bars(self.report)
        least = memory_report.min_n(self.report)
        self.table_title.setText(f"<b>Summary</b> (continuations at temperature {self.temperature}, all meters)"
                                 if self.temperature else "<b>Summary</b>")
        self.table_caption.setText(
            f"TR excess: theme recall minus the source's own matched floor (0 = chance), each primer's mean over "
            f"bars {first} or {last}, then the mean [95% interval] over primers; n = the primers it rests on"
            + (f" ('-' where fewer than min_n = {least} reach those bars)" if least else "")
            + ". A big drop from first to last is forgetting. Distinct-bar rate: a low rate means looping. "
            "Length check: 'fails' = the model's loss is worse with all the context than with its best k steps."
            + _model_side_sentence(self.report))

    def _view_words(self) -> str:
        """"temperature 1.0, all meters" / "temperature 0.7, 6/8 (54 primers)"."""
        parts = [f"temperature {self.temperature}"] if self.temperature else []
        if self.meter:
            parts.append(f"{self.meter} ({memory_report.meters(self.report).get(self.meter, 0)} primers)")
        else:
            parts.append("all meters")
        return ", ".join(parts)

    # -- per-bar plots
    def _draw_per_bar(self) -> None:
        report = self.report
        block = memory_report.per_bar(report, self.temperature, self.meter)
        keys = list(report.get("models", []))
        G = int(report["settings"]["bars"])
        least = memory_report.min_n(report)
        marks = memory_report.window_marks(report, self.meter)
        for metric, plot in self.per_bar_plots.items():
            plot.clear()
            plot.min_n = least
            if metric == "TR":
                drawn = self._draw_theme_recall(plot, block, keys)
            else:
                info = series_info(metric)
                plot.title.setText(f"<b>{info.label} per bar</b> ({self._view_words()})")
                plot.plot.setLabel("left", metric)
                drawn = [self._series(plot, src, block.get(metric, {}).get(src), least)
                         for src in [*keys, "human", "floor"]]
            for i, mark in enumerate(marks):  # labels at staggered heights: lines 5 bars apart stay readable
                plot.vline(mark.after_bars + 0.5, mark.colour, mark.short, mark.line_style,
                           label_at=0.95 - 0.12 * (i % 3), tip=mark.tip)
            plot.plot.setXRange(0.5, G + 0.5, padding=0.01)
            values = [v for d in drawn if d is not None for v in d]
            empty = not any(np.isfinite(v).any() for v in values)
            if metric == "TR" and self.view == EXCESS and "TR_excess" in block:
                low, high = (-0.1, 0.5) if empty else _padded_range([*values, np.zeros(1)],
                                                                     series_info("TR_excess").value_range)
                plot.plot.setYRange(low, high, padding=0)
            else:
                plot.plot.setYRange(_lower_limit(values), 1.02, padding=0)
            if empty:
                plot.set_notice(self._nothing_drawn(block, least))
        self._caption_windows(marks)

    def _draw_theme_recall(self, plot: CaptionedPlot, block: dict, keys: list[str]) -> list:
        """TR over each source's matched floor (with 0 = chance), or raw TR with each one's own floor."""
        least = memory_report.min_n(self.report)
        excess = self.view == EXCESS and "TR_excess" in block
        info = DERIVED["TR_excess"] if excess else PER_BAR["TR"]
        own_floor = "TR_floor" in block
        title = info.label + " per bar" + ("" if excess or not own_floor else ", with each source's own floor")
        plot.title.setText(f"<b>{title}</b> ({self._view_words()})")
        plot.plot.setLabel("left", "TR excess" if excess else "TR")
        plot.caption.setText(LOOK_FOR["TR_excess" if excess else "TR"])
        drawn = []
        if excess:
            plot.hline(0.0, "floor")
            for src in [*keys, "human"]:
                drawn.append(self._series(plot, src, block["TR_excess"].get(src), least))
        elif own_floor:
            for src in [k for k in [*keys, "human"] if k in block["TR_floor"]]:
                drawn.append(self._series(plot, src, block.get("TR", {}).get(src), least))
                drawn.append(self._series(plot, src, block["TR_floor"][src], least, band=False, line_style="dotted",
                                          width=1.3, name=f"{style.model_label(src).split(' (')[0]}: own floor"))
        else:  # a report of the first format: the one shared floor
            drawn = [self._series(plot, src, block.get("TR", {}).get(src), least) for src in [*keys, "human", "floor"]]
        return drawn

    @staticmethod
    def _series(plot: CaptionedPlot, src: str, stats: dict | None, least: int | None, band: bool = True,
                **line) -> list | None:
        """Draw a report series {mean, lo, hi, n}: nothing where its mean is null (or n < min_n), a
        band only where lo and hi exist. Returns the values drawn (for the axis range)."""
        if not stats:
            return None
        mean = floats(stats["mean"])
        n = floats(stats["n"]) if stats.get("n") is not None else None
        if n is not None and least is not None:
            mean = np.where(n >= least, mean, np.nan)  # the report's rule, kept if a report broke it
        lo = floats(stats["lo"]) if band and stats.get("lo") is not None else None
        hi = floats(stats["hi"]) if band and stats.get("hi") is not None else None
        if lo is not None and hi is not None:
            drawn_band = np.isfinite(mean)
            lo, hi = np.where(drawn_band, lo, np.nan), np.where(drawn_band, hi, np.nan)
        plot.line(src, np.arange(1, len(mean) + 1), mean, lo, hi, n=n, **line)
        return [mean] + ([lo, hi] if lo is not None else [])

    def _nothing_drawn(self, block: dict, least: int | None) -> str:
        """Why a per-bar plot is empty, in words."""
        if self.meter:
            n = memory_report.meters(self.report).get(self.meter, 0)
            if least is not None and n < least:
                return f"Too little data: {n} primers in {self.meter},\nfewer than min_n = {least}: nothing is drawn."
        if not block:
            return "This report has no figures for this view."
        return f"Nothing to draw: fewer than min_n = {least} primers reach any bar."

    def _caption_windows(self, marks) -> None:
        """The theme-recall caption says what the vertical lines are."""
        if not marks:
            return
        plot = self.per_bar_plots["TR"]
        whats = list(dict.fromkeys(m.what for m in marks))
        where = "" if self.meter else ", at the bar written on it for each meter"
        plot.caption.setText(f"{plot.caption.text()} Vertical lines: the {'; the '.join(whats)}{where} "
                             "(hover a line for the bar).")

    # -- distinct-bar rate and influence
    def _draw_distinct(self) -> None:
        plot = self.distinct_plot
        plot.clear()
        rates = memory_report.distinct_bar_rates(self.report, self.temperature)
        bars = [Bar(src, st["mean"], st.get("lo"), st.get("hi"), st.get("n"))
                for src in [*self.report.get("models", []), "human"]
                if (st := rates.get(src)) and st.get("mean") is not None]
        plot.title.setText("<b>Distinct-bar rate</b>" + (f" (temperature {self.temperature}, all meters)"
                                                         if self.temperature else " (all meters)"))
        plot.bars(bars)
        plot.plot.setXRange(0, 1.02, padding=0)
        G = self.report["settings"]["bars"]
        plot.caption.setText(
            "Distinct non-empty bars / non-empty bars of each continuation, mean over primers with its 95% interval "
            f"(hover for n). 1 = no bar repeats exactly; a low rate means looping (one bar looped for {G} bars "
            f"gives 1/{G}). Real tunes repeat many of their bars. High theme recall with a low rate is copying by "
            "looping.")
        if not bars:
            plot.set_notice("This report has no distinct-bar rate.")

    def _draw_influence(self, report: dict, keys: list[str]) -> None:
        """The influence distance's distribution per source and its mean against chance; hidden when the
        report has none."""
        block = memory_report.influence(report)
        for plot in (self.influence_plot, self.influence_mean_plot):
            plot.clear()
        self.influence_group.setVisible(block is not None)
        if block is None:
            return
        found = memory_report.influence_sources(block)
        sources = [s for s in [*keys, "human"] if s in found] + [s for s in found if s not in (*keys, "human")]
        words = (f"{block.get('method', 'gradient')}, {block.get('bars')}-bar continuations of "
                 f"{block.get('primers')} primers, temperature {block.get('temperature')}")
        self.influence_plot.title.setText(f"<b>Influence distance</b> ({words})")
        bars = []
        for src in sources:
            d = found[src]
            hist = d.get("histogram") or {}
            edges, counts = np.asarray(hist.get("edges", []), float), np.asarray(hist.get("counts", []), float)
            note = f"{d.get('n_notes')} notes of {d.get('n')} continuations"
            if len(counts) and len(edges) == len(counts) + 1 and counts.sum() > 0:
                share = counts / counts.sum()
                self.influence_plot.add(pg.PlotDataItem(edges, share, stepMode="center", pen=style.pen(src)))
                self.influence_plot.series[style.model_label(src)] = _histogram_series(src, edges, share, note)
            if d.get("chance") is not None:
                self.influence_plot.vline(d["chance"], style.model_colour(src), "", "dotted",
                                          tip=f"{style.model_label(src)}: chance {d['chance']:.2f} bars")
            if d.get("mean") is not None:
                bars.append(Bar(src, d["mean"], d.get("lo"), d.get("hi"), d.get("n"), _influence_note(d)))
        ys = self.influence_mean_plot.bars(bars)
        chance = [(y, found[b.key]["chance"]) for y, b in zip(ys, bars) if found[b.key].get("chance") is not None]
        if chance:
            self.influence_mean_plot.add(pg.ScatterPlotItem(
                x=[c for _y, c in chance], y=[y for y, _c in chance], symbol="|", size=28,
                pen=pg.mkPen(None), brush=pg.mkBrush(style.model_colour("floor"))))
        tallest = max((float(np.nanmax(s.y)) for s in self.influence_plot.series.values()), default=1.0)
        self.influence_plot.plot.setYRange(0, tallest * 1.1, padding=0)

    def _describe(self, report: dict) -> str:
        """What the report covers, in words: the models by the name the app gives them (a report
        records the folder of the machine it was made on, which means nothing on this one)."""
        n = len(report.get("primers", []))
        run_dir = (report.get("run") or {}).get("dir", "")
        same = self.state.run_dir is not None and run_dir and Path(run_dir).name == Path(self.state.run_dir).name
        whose = self.state.models_label if same and self.state.models_label else f"run {Path(run_dir).name}"
        return f"{len(report.get('models', []))} models of the {whose}, {n} primers"

    def _show_saved(self, path: Path, report: dict) -> None:
        self.show_report(report)
        if path.parent == Path(self.state.run_dir):
            where = "the report shipped with these models" if loading.is_bundled(self.state.run_dir) else f"saved report {path}"
        else:
            where = f"evaluated {_stamp_text(path)}, kept in {path.parent}"
        self.status.setText(f"{self.status.text()} ({where})")

    def _clear_report(self) -> None:
        """No report for the loaded models: empty plots rather than another run's figures."""
        self.report = None
        for plot in (*self.per_bar_plots.values(), self.distinct_plot, self.influence_plot, self.influence_mean_plot,
                     self.nll_bar_plot, self.context_plot, self.length_plot, self.gradient_plot, self.repeat_plot,
                     self.probe_plot):
            plot.clear()
        self._clear_ssm()
        self.table.clear()
        self.table.setRowCount(0)
        self.view_bar.hide()
        self.influence_group.hide()
        self.export_button.setEnabled(False)

    def _clear_ssm(self) -> None:
        while self.ssm_layout.count():
            item = self.ssm_layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.ssm_views = {}

    def _draw_ssm(self, report, keys) -> None:
        self._clear_ssm()
        primer_bars = report.get("settings", {}).get("primer_bars", 0)
        t = report.get("settings", {}).get("per_bar_temperature")
        self.ssm_title.setText("<b>Self-similarity of primer + continuation</b>"
                               + (f" (temperature {t}, all meters)" if t is not None else ""))
        cmap = pg.colormap.get("viridis")
        self.ssm_views = {}
        for src in [*keys, "human"]:
            matrix = report.get("ssm", {}).get(src)
            if not matrix:
                continue
            m = floats(matrix)
            view = pg.PlotWidget()
            # The heatmaps share the row's width (six fit a 1024-pixel window) and stay square.
            view.setMinimumWidth(110)
            view.setMaximumWidth(230)
            view.setFixedHeight(200)
            view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            view.getPlotItem().setAspectLocked(True)
            view.setMenuEnabled(False)
            view.setMouseEnabled(False, False)
            view.hideButtons()
            view.setTitle(f"<span style='color:{style.model_colour(src)}'>{style.model_label(src).split(' (')[0]}</span>",
                          size="9pt")
            view.getPlotItem().invertY(True)
            view.getPlotItem().hideAxis("left")
            view.getPlotItem().hideAxis("bottom")
            image = pg.ImageItem(np.nan_to_num(m.T, nan=0.0))
            image.setLookupTable(cmap.getLookupTable(0.0, 1.0, 256))
            image.setLevels((0, 1))
            view.addItem(image)
            if primer_bars:
                box = pg.QtWidgets.QGraphicsRectItem(0, 0, primer_bars, primer_bars)
                box.setPen(pg.mkPen("w", width=1, style=Qt.PenStyle.DashLine))
                view.addItem(box)
            view.scene().sigMouseMoved.connect(lambda pos, v=view, mm=m, s=src: self._ssm_hover(v, mm, s, pos))
            self.ssm_layout.addWidget(view)
            self.ssm_views[src] = view
        if self.ssm_views:
            self.ssm_layout.addWidget(_colour_scale(cmap, "similarity"))
        self.ssm_layout.addStretch(1)

    @staticmethod
    def _ssm_hover(view, matrix, src, scene_pos) -> None:
        point = view.getPlotItem().vb.mapSceneToView(scene_pos)
        i, j = int(np.floor(point.y())), int(np.floor(point.x()))
        if 0 <= i < matrix.shape[0] and 0 <= j < matrix.shape[1]:
            view.setToolTip(f"{style.model_label(src)}: bars {i + 1} and {j + 1}, similarity {matrix[i, j]:.2f}")


    # ---- theme-recall probe --------------------------------------------------------------------
    def probe_settings(self):
        from engine.core.errors import UserError
        from engine.memory.probe import ProbeSettings

        try:
            gaps = tuple(sorted({int(g) for g in self.probe_gaps.text().replace(";", ",").split(",") if g.strip()}))
        except ValueError:
            raise UserError(f"gaps must be whole numbers of bars separated by commas, not {self.probe_gaps.text()!r}") from None
        if not gaps or min(gaps) < 1 or max(gaps) > 64:
            raise UserError("give between one and a few gaps, each from 1 to 64 bars")
        return ProbeSettings(gaps=gaps, train_steps=self.probe_steps.value())

    def run_probe(self, probe_settings=None):
        if self._probe_job is not None:
            return None
        from engine.memory.probe import run_probe

        try:
            probe_settings = probe_settings or self.probe_settings()
        except Exception as exc:  # noqa: BLE001 - a typo in the gaps field
            self.main_window.show_error("Theme-recall probe", exc)
            return None
        settings.write("memory/probe_gaps", self.probe_gaps.text())
        settings.write("memory/probe_steps", self.probe_steps.value())
        from engine.models.registry import MODEL_KEYS

        keys = self.state.ordered_model_keys() or list(MODEL_KEYS)
        self._probe_cancel = threading.Event()
        messages = _MessageRelay(self)
        messages.message.connect(self.status.setText)

        def progress(event: dict) -> None:
            if event.get("step", 0) % 20 == 0:
                messages.message.emit(f"probe: training {event.get('model')} step {event.get('step')}/{event.get('steps')}")

        self.probe_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._probe_job = workers.start_job(
            run_probe, keys, probe_settings, progress, self._probe_cancel,
            cancel=self._probe_cancel,
            on_return=self.show_probe,
            on_error=self._probe_error,
            on_finish=self._probe_finished,
        )
        self._probe_job.finished.connect(lambda: messages.deleteLater())
        return self._probe_job

    def show_probe(self, probe: dict) -> None:
        plot = self.probe_plot
        plot.clear()
        gaps = np.asarray(probe["gaps"], dtype=float)
        plot.hline(probe["chance"], "floor")  # chance in the floor's colour and line style
        for key, record in probe.get("models", {}).items():
            plot.line(key, gaps, floats(record["accuracy"]), symbol="o")
        plot.series["chance"] = Series(gaps, np.full(len(gaps), probe["chance"]), "floor")
        plot.plot.setYRange(0, 1.02, padding=0)
        plot.plot.getAxis("bottom").setTicks([[(np.log10(g), f"{g:g}") for g in gaps], []])
        if self.report is not None:
            self.report["probe"] = probe
        self.status.setText("probe finished")
        self.probeFinished.emit()

    def _probe_error(self, exc) -> None:
        from engine.memory.probe import ProbeCancelled

        if isinstance(workers.unwrap(exc), ProbeCancelled):
            self.status.setText("probe cancelled")
            return
        self.main_window.show_error("Theme-recall probe failed", exc)

    def _probe_finished(self) -> None:
        self._probe_job = None
        self._probe_cancel = None
        self.probe_button.setEnabled(True)
        self.cancel_button.setEnabled(self._job is not None)

    # ---- files ---------------------------------------------------------------------------------
    def export_report(self, folder: str | None = None):
        if self.report is None:
            self.state.status.emit("nothing to export yet: press Evaluate first")
            return None
        if folder is None:
            folder = settings.ask_folder(self, "Export the memory report into", "dirs/report")
            if not folder:
                return None
        try:
            from engine.evaluation.report import write_report

            written = write_report(self.report, Path(folder))
        except Exception as exc:  # noqa: BLE001
            self.main_window.show_error("Export failed", exc)
            return None
        self.state.status.emit(f"report written to {folder}")
        return written

    def open_report_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a memory report", settings.read("dirs/report", ""),
                                              "Report (report.json)")
        if path:
            self.open_report(path)

    def open_report(self, path) -> None:
        try:
            report = saved_reports.read_report(path)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.main_window.show_error("Could not open the report", exc)
            return
        shown, status = self.report, self.status.text()
        try:
            self.show_report(report)
        except Exception as exc:  # noqa: BLE001 - a part the checks do not cover: keep what was shown
            self.main_window.show_error("Could not open the report", f"{path}: {workers.error_text(exc)}")
            if shown is not None:
                self.show_report(shown)
            self.status.setText(status)
            return
        self.status.setText(f"{self.status.text()} (opened {path})")

    def _remember(self, report: dict) -> None:
        """Keep the report in the user's data folder, so that reopening the run shows it again. Never in
        the run folder: the bundled models' shipped report must stay as shipped."""
        run_dir = (report.get("run") or {}).get("dir")
        if not run_dir:
            return
        try:
            path = saved_reports.save_report(report, run_dir)
        except Exception as exc:  # noqa: BLE001 - a full disk: the report is still shown, say it is not kept
            self.status.setText(f"{self.status.text()} (not kept: {workers.error_text(exc)})")
            return
        self.status.setText(f"{self.status.text()} (kept in {path.parent})")



class _MessageRelay(pg.QtCore.QObject):
    message = Signal(str)


def _lower_limit(series) -> float:
    """The bottom of a 0..1 axis: just below the lowest value drawn (rhythm recall and in-key rate stay
    near 1, and a 0..1 axis would squeeze them into its top fifth), on a step of 0.1."""
    values = np.concatenate([np.asarray(s, dtype=float).ravel() for s in series]) if series else np.array([])
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0
    return float(max(0.0, np.floor((values.min() - 0.02) * 10) / 10))


def _padded_range(series, limits: tuple[float, float]) -> tuple[float, float]:
    """An axis range around every value drawn (a little room above and below), within the series' limits."""
    values = np.concatenate([np.asarray(s, dtype=float).ravel() for s in series])
    values = values[np.isfinite(values)]
    low, high = float(values.min()), float(values.max())
    pad = 0.08 * max(high - low, 0.1)
    return max(limits[0], low - pad), min(limits[1], high + pad)


def _model_side_sentence(report: dict) -> str:
    """What the model-side columns rest on: " Effective memory and the length check: 384 test tokens at
    positions >= 256 of the 209 test tunes." ("" when the report does not say)."""
    found = next((em for em in (report.get("effective_memory") or {}).values() if em.get("n_targets")), None)
    if found is None:
        return ""
    tunes = (report.get("corpus") or {}).get("test_tunes")
    return (f" Effective memory and the length check: {found['n_targets']} test tokens at positions >= "
            f"{found.get('min_position')}" + (f" of the {tunes} test tunes." if tunes else "."))


def _histogram_series(src: str, edges: np.ndarray, share: np.ndarray, note: str):
    """A histogram as the hover reads it: each bin's share at the bin's centre."""
    return Series((edges[:-1] + edges[1:]) / 2, share, src, note=note)


def _influence_note(d: dict) -> str:
    parts = []
    if d.get("chance") is not None:
        parts.append(f"chance {d['chance']:.2f}")
    if d.get("median") is not None:
        parts.append(f"median {d['median']:.2f}")
    if d.get("q10") is not None and d.get("q90") is not None:
        parts.append(f"10-90% {d['q10']:.2f}-{d['q90']:.2f}")
    if d.get("n_notes") is not None:
        parts.append(f"{d['n_notes']} notes")
    return ", ".join(parts)


def _colour_scale(cmap, label: str):
    """A vertical colour bar from 0 to 1 in the heatmaps' colours: what a colour means."""
    widget = pg.GraphicsLayoutWidget()
    widget.setFixedSize(90, 200)
    bar = pg.ColorBarItem(values=(0, 1), colorMap=cmap, interactive=False, width=14, label=label)
    bar.getAxis("right").setStyle(tickLength=4)
    widget.addItem(bar)
    widget.setObjectName("colourScale")
    return widget


def _stamp_text(path: Path) -> str:
    """"2026-11-24 05:00 UTC" from a saved report's name (report-20261124T050054123456Z.json)."""
    stamp = path.stem.removeprefix("report-")
    try:
        from datetime import datetime

        return datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return stamp


def _default_probe_steps() -> int:
    """The probe's own default budget: its recipe (engine/memory/probe.py) is tuned for it."""
    from engine.memory.probe import ProbeSettings

    return ProbeSettings.train_steps
