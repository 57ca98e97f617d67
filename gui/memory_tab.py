"""Memory tab: the measures of docs/design.md section 5 as plots, from the report engine/evaluate.py makes.

Evaluate runs the protocol on the open run's models in a background job (cancellable); the probe has
its own Run button because it trains fresh models. Every plot has a caption saying what to look for;
hovering a plot shows each series' value under the mouse.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import loading, saved_reports, settings, style, workers
from .plots import CaptionedPlot

PER_BAR = (
    ("TR", "Theme recall per bar", "How much each bar resembles some bar of the primer (any transposition). "
     "A model that keeps the theme stays up with the dashed human line; one that forgets sinks to the dotted floor."),
    ("RR", "Rhythm recall per bar", "How closely each bar's rhythm matches some primer bar. Watch which models keep "
     "the primer's rhythm to the end and which drift towards the floor."),
    ("IK", "In-key rate per bar", "Share of notes in the primer's key. A fall late in the piece means the model "
     "has forgotten the key it started in."),
)


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

        # ---- plots -----------------------------------------------------------------------------
        self.per_bar_plots = {
            metric: CaptionedPlot(title, caption, "bar of the continuation", metric) for metric, title, caption in PER_BAR
        }
        self.nll_bar_plot = CaptionedPlot(
            "Loss per bar (teacher-forced, test tunes)",
            "Bits per token in each bar of a tune. A model with memory gets better as the tune repeats itself; "
            "a forgetful one stays flat.", "bar of the tune", "bits per token")
        self.context_plot = CaptionedPlot(
            "Context curve: loss when only the last k steps are visible",
            "Each model's loss with k steps of context. The large dot is its effective memory: more context "
            "than that no longer helps (within 1%).", "context k (16th-note steps)", "bits per token", log_x=True)
        self.gradient_plot = CaptionedPlot(
            "Gradient memory G(k)",
            "How strongly a prediction still depends on the note k steps back (log scale). A steep fall is the "
            "vanishing gradient: the model cannot learn from far back.", "steps back k", "G(k) / G(1)",
            log_x=True, log_y=True)
        self.repeat_plot = CaptionedPlot(
            "Repeat gain",
            "Bits saved on bars that repeat an earlier bar. High = the model notices and exploits repetition.",
            "bits per token", "")
        self.repeat_plot.plot.getPlotItem().invertY(True)  # the first model on top, as in the legend
        self.repeat_plot.hover_by = "y"
        self.probe_plot = CaptionedPlot(
            "Theme-recall probe",
            "A motif, g bars of random filler, the motif again: accuracy on the repeat. Grey line = chance. "
            "Which models still recall the motif across long gaps?", "gap g (bars)", "accuracy",
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
        ssm_v.addWidget(QLabel("<b>Self-similarity of primer + continuation</b>"))
        ssm_v.addWidget(self.ssm_box)
        ssm_v.addWidget(style.caption(
            "Bright squares off the diagonal are bars that repeat earlier bars. The human tune shows a "
            "grid of repeats; a model with memory shows it too, a forgetful one only the diagonal. "
            "The primer is the top-left block."))

        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(200)
        self.table.horizontalScrollBar().rangeChanged.connect(self._fit_table_height)
        table_group = QWidget()
        table_v = QVBoxLayout(table_group)
        table_v.addWidget(QLabel("<b>Summary</b>"))
        table_v.addWidget(self.table)
        table_v.addWidget(style.caption(
            "TR/RR first and last: mean theme and rhythm recall over the first and the last 8 bars of the "
            "continuation. A big drop from first to last is forgetting."))

        grid = QGridLayout()
        grid.addWidget(self.per_bar_plots["TR"], 0, 0)
        grid.addWidget(self.per_bar_plots["RR"], 0, 1)
        grid.addWidget(table_group, 1, 0, 1, 2)
        grid.addWidget(self.context_plot, 2, 0)
        grid.addWidget(self.gradient_plot, 2, 1)
        grid.addWidget(self.per_bar_plots["IK"], 3, 0)
        grid.addWidget(self.nll_bar_plot, 3, 1)
        grid.addWidget(self.repeat_plot, 4, 0)
        grid.addWidget(self.probe_plot, 4, 1)
        grid.addWidget(ssm_group, 5, 0, 1, 2)
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
        layout.addWidget(scroll, 1)
        state.modelsChanged.connect(self._models_changed)
        self._models_changed()

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
        parts = [f"<span style='color:{style.model_colour(k)}'>&#9632;</span> {style.model_label(k)}" for k in keys]
        parts.append("<span style='color:#333333'>- - -</span> human (the real continuation)")
        parts.append("<span style='color:#999999'>&middot;&middot;&middot;</span> floor (a different tune)")
        self.legend.setText("&nbsp;&nbsp;&nbsp;".join(parts))

    # ---- evaluation ----------------------------------------------------------------------------
    def eval_settings(self):
        from engine.evaluate import EvalSettings

        return EvalSettings(
            primers=self.primers.value(), primer_bars=self.primer_bars.value(), bars=self.bars.value(),
            probe=None, device=getattr(self.state.device, "type", "auto") or "auto",
        )

    def evaluate(self, eval_settings=None):
        """Run engine.evaluate on the open run in the background; returns the worker."""
        if self._job is not None or self.state.run_dir is None:
            return None
        from engine.evaluate import evaluate

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
        from engine.evaluate import EvaluationCancelled

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
        sources = [*keys, "human", "floor"]
        for metric, plot in self.per_bar_plots.items():
            plot.clear()
            drawn = []
            for src in sources:
                stats = report["per_bar"].get(metric, {}).get(src)
                if stats:
                    mean = _floats(stats["mean"])
                    x = np.arange(1, len(mean) + 1)
                    band = src not in ("human", "floor")
                    lo, hi = (_floats(stats["lo"]), _floats(stats["hi"])) if band else (None, None)
                    plot.line(src, x, mean, lo, hi)
                    drawn += [mean] + ([lo] if band else [])
            plot.plot.setYRange(_lower_limit(drawn), 1.02, padding=0)
        self._draw_nll_per_bar(report, keys)
        self._draw_context(report, keys)
        self._draw_gradient(report, keys)
        self._draw_repeat_gain(report, keys)
        self._draw_ssm(report, keys)
        self._fill_table(report)
        if report.get("probe"):
            self.show_probe(report["probe"])
        self.status.setText(self._describe(report))
        self.export_button.setEnabled(True)
        self.evaluated.emit()

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
        for plot in (*self.per_bar_plots.values(), self.nll_bar_plot, self.context_plot, self.gradient_plot,
                     self.repeat_plot, self.probe_plot):
            plot.clear()
        self._clear_ssm()
        self.table.clear()
        self.table.setRowCount(0)
        self.export_button.setEnabled(False)

    def _draw_nll_per_bar(self, report, keys) -> None:
        plot = self.nll_bar_plot
        plot.clear()
        for key in keys:
            stats = report.get("nll_per_bar", {}).get(key)
            if stats:
                mean = _floats(stats["mean"])
                plot.line(key, np.arange(1, len(mean) + 1), mean, _floats(stats["lo"]), _floats(stats["hi"]))

    def _draw_context(self, report, keys) -> None:
        plot = self.context_plot
        plot.clear()
        plot.value_format = "{:.3f} bits"
        for key in keys:
            em = report.get("effective_memory", {}).get(key)
            if not em or not em.get("nll_k"):
                continue
            ks, curve = np.asarray(em["ks"], dtype=float), _floats(em["nll_k"])
            plot.line(key, ks, curve, symbol="o")
            if em.get("steps"):
                i = int(np.argmin(np.abs(ks - em["steps"])))
                plot.marker(key, ks[i], curve[i], f"{style.model_label(key)}: effective memory {em['steps']} steps"
                            + (f" = {em['bars']:.1f} bars" if em.get("bars") else ""))
            plot.power_of_two_ticks("bottom", int(ks.max()))

    def _draw_gradient(self, report, keys) -> None:
        plot = self.gradient_plot
        plot.clear()
        lowest = 1.0
        for key in keys:
            gm = report.get("gradient_memory", {}).get(key)
            if gm and gm.get("g"):
                g = _floats(gm["g"])
                g = np.where(g > 0, g, np.nan)  # log axis: zero means "no dependence at all"
                plot.line(key, np.asarray(gm["ks"], dtype=float), g)
                plot.power_of_two_ticks("bottom", int(max(gm["ks"])))
                lowest = min(lowest, float(np.nanmin(g)) if np.isfinite(g).any() else 1.0)
        # A curve that falls to 1e-20 would flatten every other one; below 1e-8 is "gone" anyway.
        plot.plot.setYRange(np.log10(max(lowest, 1e-8)), 0.2, padding=0.02)

    def _draw_repeat_gain(self, report, keys) -> None:
        plot = self.repeat_plot
        plot.clear()
        plot.value_format = "{:.3f} bits"
        gains = [(k, report.get("repeat_gain", {}).get(k, {}).get("gain")) for k in keys]
        gains = [(k, g) for k, g in gains if g is not None]
        if not gains:
            return
        # Horizontal bars: the models' names read along the left axis, where five fit at any width
        # (under vertical bars they ran into each other in half a 1024-pixel window).
        ys = np.arange(len(gains), dtype=float)
        bars = pg.BarGraphItem(x0=0, y=ys, width=[g for _, g in gains], height=0.6,
                               brushes=[pg.mkBrush(style.model_colour(k)) for k, _ in gains])
        plot.add(bars)
        left = plot.plot.getAxis("left")
        left.setTicks([[(y, style.model_label(k)) for y, (k, _) in zip(ys, gains)]])
        metrics = QFontMetrics(left.style.get("tickFont") or left.font())
        left.setWidth(max(metrics.horizontalAdvance(style.model_label(k)) for k, _ in gains) + 16)
        for y, (k, g) in zip(ys, gains):
            plot.series[style.model_label(k)] = (np.array([g]), np.array([y]), k)

    def _clear_ssm(self) -> None:
        while self.ssm_layout.count():
            item = self.ssm_layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.ssm_views = {}

    def _draw_ssm(self, report, keys) -> None:
        self._clear_ssm()
        primer_bars = report.get("settings", {}).get("primer_bars", 0)
        cmap = pg.colormap.get("viridis")
        self.ssm_views = {}
        for src in [*keys, "human"]:
            matrix = report.get("ssm", {}).get(src)
            if not matrix:
                continue
            m = _floats(matrix)
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

    def _fill_table(self, report) -> None:
        columns = [
            ("source", "Model"), ("valid_bpt", "valid\nbits/token"), ("effective_memory_bars", "effective\nmemory\n(bars)"),
            ("repeat_gain_bits", "repeat\ngain (bits)"), ("TR_first", "TR\nfirst 8"), ("TR_last", "TR\nlast 8"),
            ("RR_first", "RR\nfirst 8"), ("RR_last", "RR\nlast 8"), ("downbeat_rate", "downbeat\nrate"),
            ("in_key_rate", "in-key\nrate"),
        ]
        rows = report.get("summary", [])
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels([c[1] for c in columns])
        for r, row in enumerate(rows):
            for c, (field, _title) in enumerate(columns):
                value = row.get(field)
                if field == "source":  # the legend above says what human and floor are
                    text = style.model_label(value).split(" (")[0]
                elif value is None:
                    text = "-"
                else:
                    text = f"{value:.3f}" if isinstance(value, float) else str(value)
                item = QTableWidgetItem(text)
                if field == "source":
                    item.setForeground(pg.mkColor(style.model_colour(value)))
                    item.setToolTip(style.model_label(value))
                else:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        header = self.table.horizontalHeader()
        # Columns share the width but never shrink below their longest header line (a narrow window
        # scrolls the table instead of cutting "memory" to "memo").
        metrics = header.fontMetrics()
        widest = max(metrics.horizontalAdvance(line) for _f, title in columns for line in title.split("\n"))
        header.setMinimumSectionSize(widest + 16)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.resizeRowsToContents()
        self._fit_table_height()

    def _fit_table_height(self) -> None:
        """Every row shown without a vertical scroll bar; room for the horizontal one only when the
        window is too narrow for the columns."""
        rows_height = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        bar = self.table.horizontalScrollBar()
        scrollbar = bar.sizeHint().height() if bar.maximum() > 0 else 0
        height = self.table.horizontalHeader().sizeHint().height() + rows_height + scrollbar + 2 * self.table.frameWidth()
        if height != self.table.height():
            self.table.setFixedHeight(height)

    # ---- theme-recall probe --------------------------------------------------------------------
    def probe_settings(self):
        from engine.errors import UserError
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
        plot.value_format = "{:.2f}"
        gaps = np.asarray(probe["gaps"], dtype=float)
        chance = pg.InfiniteLine(pos=probe["chance"], angle=0, pen=pg.mkPen(style.FLOOR_COLOUR, width=1.5,
                                                                            style=Qt.PenStyle.DotLine))
        plot.add(chance)
        for key, record in probe.get("models", {}).items():
            plot.line(key, gaps, _floats(record["accuracy"]), symbol="o")
        plot.series["chance"] = (gaps, np.full(len(gaps), probe["chance"]), "floor")
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
            from engine.report import write_report

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
        self.show_report(report)
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


def _floats(values) -> np.ndarray:
    """A report's numbers (None for NaN after JSON cleaning) as a float array with NaN."""
    return np.array([[np.nan if v is None else v for v in row] if isinstance(row, list) else (np.nan if row is None else row)
                     for row in values], dtype=float)


def _lower_limit(series) -> float:
    """The bottom of a 0..1 axis: just below the lowest value drawn (rhythm recall and in-key rate stay
    near 1, and a 0..1 axis would squeeze them into its top fifth), on a step of 0.1."""
    values = np.concatenate([np.asarray(s, dtype=float).ravel() for s in series]) if series else np.array([])
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0
    return float(max(0.0, np.floor((values.min() - 0.02) * 10) / 10))


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
