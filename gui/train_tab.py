"""Train tab: pick models and settings, train them side by side, watch the curves grow together.

Training is the engine's generator (engine/training.py) run in a superqt worker. The worker forwards
events in small batches, the tab stores them, and a 10 Hz timer redraws what changed, so the event
loop stays responsive however fast the steps come. Stop (or closing the window) sets a
threading.Event that the engine checks every step; it saves the last checkpoint before returning.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from . import settings, style, workers
from .state import PROJECT_ROOT

REDRAW_MS = 100  # at most 10 redraws a second: smooth enough, cheap for the event loop
BATCH_SECONDS = 0.05  # the worker forwards events at most 20 times a second


def _format_eta(seconds) -> str:
    if seconds is None or not np.isfinite(seconds):
        return ""
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


class _Series:
    """Growing arrays of one model's curve points (amortised appends, no copies on redraw)."""

    def __init__(self):
        self.x: list[float] = []
        self.y: list[float] = []

    def add(self, x, y) -> None:
        self.x.append(float(x))
        self.y.append(float(y))


class TrainTab(QWidget):
    def __init__(self, state, main_window=None, parent=None):
        super().__init__(parent)
        self.state = state
        self.main_window = main_window
        self._stop: threading.Event | None = None
        self._job = None
        self._dirty: set[str] = set()
        self._train: dict[str, _Series] = {}
        self._valid: dict[str, _Series] = {}
        self._progress: dict[str, dict] = {}
        self._run_dir: Path | None = None
        self._failed = False

        from engine.models.registry import MODEL_KEYS, PRESETS

        # ---- settings column -------------------------------------------------------------------
        self.model_boxes: dict[str, QCheckBox] = {}
        models_group = QGroupBox("Models")
        grid = QGridLayout(models_group)
        chosen = settings.read("train/models", ",".join(MODEL_KEYS)).split(",")
        for i, key in enumerate(MODEL_KEYS):
            box = QCheckBox(style.model_label(key))
            box.setIcon(style.swatch_icon(style.model_colour(key)))
            box.setChecked(key in chosen)
            box.setStyleSheet(f"QCheckBox {{ color: {style.model_colour(key)}; font-weight: 600; }}")
            self.model_boxes[key] = box
            grid.addWidget(box, i, 0)
        self.param_labels = {key: QLabel("") for key in MODEL_KEYS}
        for i, key in enumerate(MODEL_KEYS):
            self.param_labels[key].setStyleSheet("color: #555555;")
            grid.addWidget(self.param_labels[key], i, 1)

        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.setCurrentText(settings.read("train/preset", "small"))
        self.preset.setToolTip("Model size; within a preset every model has about the same number of parameters")
        self.steps = QSpinBox(minimum=1, maximum=1_000_000, singleStep=100)
        self.steps.setValue(settings.read("train/steps", 2000))
        self.steps.setToolTip("Optimizer steps per model (all models get the same budget and the same batches)")
        self.learning_rate = QDoubleSpinBox(minimum=1e-5, maximum=1.0, decimals=5, singleStep=1e-4)
        self.learning_rate.setValue(settings.read("train/lr", 3e-3))
        self.window_len = QSpinBox(minimum=16, maximum=4096, singleStep=16)
        self.window_len.setToolTip("Training crop in 16th-note steps (16 per 4/4 bar); also the attention span")
        self.seed = QSpinBox(minimum=0, maximum=999_999)
        self.seed.setValue(settings.read("train/seed", 0))
        self.out_dir = QLineEdit(settings.read("train/out", str(PROJECT_ROOT / "runs")))
        self.out_dir.setToolTip("Each run is saved in a new folder here; reopen it with File > Open run")
        browse = QPushButton("...")
        browse.setFixedWidth(30)
        browse.clicked.connect(self._browse)
        out_line = QHBoxLayout()
        out_line.addWidget(self.out_dir)
        out_line.addWidget(browse)

        form = QFormLayout()
        form.addRow("Preset", self.preset)
        form.addRow("Steps", self.steps)
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Window (steps)", self.window_len)
        form.addRow("Seed", self.seed)
        form.addRow("Save runs in", out_line)

        self.start_button = QPushButton("Start training")
        self.start_button.setStyleSheet("font-weight: 600; padding: 4px 12px;")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop after the current step; the last checkpoint is kept")
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)

        self.bars: dict[str, QProgressBar] = {}
        self.rates: dict[str, QLabel] = {}
        progress_group = QGroupBox("Progress")
        pgrid = QGridLayout(progress_group)
        for i, key in enumerate(MODEL_KEYS):
            name = QLabel(style.model_label(key))
            name.setStyleSheet(f"color: {style.model_colour(key)}; font-weight: 600;")
            bar = QProgressBar()
            bar.setTextVisible(True)
            bar.setFormat("%p%")
            bar.setStyleSheet(
                f"QProgressBar {{ max-height: 14px; }} QProgressBar::chunk {{ background: {style.model_colour(key)}; }}"
            )
            rate = QLabel("")
            rate.setStyleSheet("color: #555555; font-size: 11px;")
            rate.setMinimumWidth(150)
            pgrid.addWidget(name, i, 0)
            pgrid.addWidget(bar, i, 1)
            pgrid.addWidget(rate, i, 2)
            self.bars[key], self.rates[key] = bar, rate

        self.run_label = QLabel("")
        self.run_label.setWordWrap(True)
        self.run_label.setStyleSheet("color: #555555;")

        left = QVBoxLayout()
        left.addWidget(models_group)
        left.addLayout(form)
        left.addLayout(buttons)
        left.addWidget(progress_group)
        left.addWidget(self.run_label)
        left.addStretch(1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setFixedWidth(430)

        # ---- plot ------------------------------------------------------------------------------
        self.plot = pg.PlotWidget()
        self.plot.setLabel("left", "bits per token")
        self.plot.setLabel("bottom", "training step")
        # No grid: pyqtgraph's alpha-blended grid costs tens of ms a repaint while training runs, which
        # the user feels as a sluggish window (gui_latency_ms in bench). Reference lines do the job.
        for level in (1, 2, 3, 4, 5):
            self.plot.addItem(pg.InfiniteLine(pos=level, angle=0, pen=pg.mkPen(0, 0, 0, 25)), ignoreBounds=True)
        self.plot.addLegend(offset=(-10, 10), labelTextSize="9pt")
        self.train_curves: dict[str, pg.PlotDataItem] = {}
        self.valid_curves: dict[str, pg.PlotDataItem] = {}
        for key in MODEL_KEYS:
            colour = pg.mkColor(style.model_colour(key))
            faint = pg.mkColor(colour)
            faint.setAlpha(110)
            self.train_curves[key] = self.plot.plot([], [], pen=pg.mkPen(faint, width=1), name=None, antialias=False)
            self.valid_curves[key] = self.plot.plot(
                [], [], pen=pg.mkPen(colour, width=2.5), symbol="o", symbolSize=5, symbolBrush=colour,
                symbolPen=None, name=f"{style.model_label(key)}", antialias=False,
            )
        self.hover = pg.TextItem("", color="#222222", anchor=(0, 1), fill=pg.mkBrush(255, 255, 255, 220))
        self.hover.setZValue(50)
        self.plot.addItem(self.hover, ignoreBounds=True)
        self.plot.scene().sigMouseMoved.connect(self._hover)

        right = QVBoxLayout()
        right.addWidget(self.plot, 1)
        right.addWidget(style.caption(
            "Thin lines: training loss; thick lines with dots: validation loss on tunes the models never see. "
            "Lower is better; the gap between red and the others is what memory is worth."
        ))

        layout = QHBoxLayout(self)
        layout.addWidget(left_widget)
        layout.addLayout(right, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self.preset.currentTextChanged.connect(self._preset_changed)
        self._preset_changed(self.preset.currentText(), keep_window=True)
        state.modelsChanged.connect(self._show_loaded_run)

    # ---- settings ------------------------------------------------------------------------------
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save training runs in", self.out_dir.text())
        if folder:
            self.out_dir.setText(folder)

    def _preset_changed(self, preset: str, keep_window: bool = False) -> None:
        from engine.models.registry import MODEL_KEYS, PRESETS, build_model
        from engine.tokens import TokenConfig

        vocab = (self.state.corpus.token_config if self.state.corpus is not None else TokenConfig()).vocab_size
        for key in MODEL_KEYS:
            n = build_model(key, preset, vocab).num_params()
            self.param_labels[key].setText(f"{n / 1000:.1f}k parameters" if n < 1e6 else f"{n / 1e6:.2f}M parameters")
        window = PRESETS[preset]["rnn"].window
        saved = settings.read("train/window", 0, int) if keep_window else 0
        self.window_len.setValue(saved or window)

    def chosen_models(self) -> list[str]:
        return [k for k, box in self.model_boxes.items() if box.isChecked()]

    def _save_settings(self) -> None:
        for key, value in (
            ("train/models", ",".join(self.chosen_models())),
            ("train/preset", self.preset.currentText()),
            ("train/steps", self.steps.value()),
            ("train/lr", self.learning_rate.value()),
            ("train/window", self.window_len.value()),
            ("train/seed", self.seed.value()),
            ("train/out", self.out_dir.text()),
        ):
            settings.write(key, value)

    # ---- running -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._job is not None

    def start(self, run_dir: str | Path | None = None):
        """Start training the chosen models; returns the worker (None when nothing could start)."""
        if self._job is not None:
            return None
        keys = self.chosen_models()
        if not keys:
            self.main_window.show_error("Nothing to train", "tick at least one model")
            return None
        if self.state.corpus is None:
            self.main_window.show_error("Nothing to train on", "the corpus is still loading, or none is open")
            return None
        self._save_settings()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path(run_dir) if run_dir else Path(self.out_dir.text()).expanduser() / f"run-{stamp}"
        from engine.errors import UserError
        from engine.run_plan import plan_new_run
        from engine.train_config import TrainConfig

        # Checked before anything runs: the settings, the folder (writable, not a file, not holding a run)
        # and the corpus (big enough to validate on). The plan holds the run's lock until training ends.
        device = getattr(self.state.device, "type", self.state.device) or "auto"
        config = TrainConfig(preset=self.preset.currentText(), steps=self.steps.value(),
                             lr=self.learning_rate.value(), window=self.window_len.value(), seed=self.seed.value(),
                             device=str(device))
        plan = None
        try:
            plan = plan_new_run(run_dir, keys, config, sources=self.state.corpus_sources)
            job = plan.job(self.state.corpus)
        except UserError as exc:
            if plan is not None:
                plan.release()
            self.main_window.show_error("Cannot start training", str(exc))
            return None
        self._run_dir = run_dir
        self._reset_curves(keys)
        self._stop = threading.Event()
        self._failed = False
        from .training_job import training_job

        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.run_label.setText(f"training into {self._run_dir}")
        self._job = workers.start_job(
            training_job,
            plan,
            job,
            self._stop,
            BATCH_SECONDS,
            generator=True,
            cancel=self._stop,
            on_yield=self._events,
            on_error=self._error,
            on_finish=self._finished,
        )
        self._timer.start()
        return self._job

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self.stop_button.setEnabled(False)
            self.run_label.setText("stopping after this step; the last checkpoint is kept ...")

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
            if f["train_bpt"] is not None:
                self._train.setdefault(key, _Series()).add(f["step"], f["train_bpt"])
            if f["valid_bpt"] is not None:
                self._valid.setdefault(key, _Series()).add(f["step"], f["valid_bpt"])
            self._progress[key] = f
            self._dirty.add(key)

    def _redraw(self) -> None:
        for key in self._dirty:
            if key in self._train:
                s = self._train[key]
                self.train_curves[key].setData(s.x, s.y)
            if key in self._valid:
                s = self._valid[key]
                self.valid_curves[key].setData(s.x, s.y)
            f = self._progress.get(key)
            if f:
                total = max(1, f["total_steps"] or self.steps.value())
                self.bars[key].setValue(int(100 * f["step"] / total))
                rate = f"{f['tokens_per_s']:,.0f} tok/s" if f["tokens_per_s"] else ""
                eta = _format_eta(f["eta_s"])
                self.rates[key].setText(f"step {f['step']}/{total}  {rate}" + (f"  ETA {eta}" if eta else ""))
        self._dirty.clear()

    def _reset_curves(self, keys) -> None:
        self._train, self._valid, self._progress = {}, {}, {}
        self._dirty.clear()
        for key in self.train_curves:
            self.train_curves[key].setData([], [])
            self.valid_curves[key].setData([], [])
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
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        if self._failed:
            self.run_label.setText(f"training failed; what was saved is in {self._run_dir}")
        else:
            self.run_label.setText(
                f"{'stopped' if stopped else 'finished'}; saved in {self._run_dir}. The Listen tab now uses these models."
            )
        # Open what was saved, so that Listen and Memory use the new models at once.
        if self.main_window is not None and self._run_dir is not None and self._run_dir.is_dir():
            from engine.checkpoint import list_run_models

            if list_run_models(self._run_dir):
                self.main_window.open_run(self._run_dir)

    # ---- an opened run -------------------------------------------------------------------------
    def _show_loaded_run(self) -> None:
        """When a run is opened, draw its saved training history (unless a job is drawing live)."""
        if self._job is not None or self.state.run_dir is None:
            return
        from engine.checkpoint import read_history

        keys = self.state.ordered_model_keys()
        self._reset_curves(keys)
        for key in keys:
            try:
                rows = read_history(Path(self.state.run_dir) / key)
            except Exception:  # noqa: BLE001 - a missing history only means no curve
                rows = []
            for r in rows:
                if r.get("train_bpt") is not None:
                    self._train.setdefault(key, _Series()).add(r["step"], r["train_bpt"])
                if r.get("valid_bpt") is not None:
                    self._valid.setdefault(key, _Series()).add(r["step"], r["valid_bpt"])
            loaded = self.state.models.get(key)
            total = loaded.record.training.steps if loaded is not None and loaded.record is not None else None
            last = rows[-1]["step"] if rows else 0
            self._progress[key] = {
                "step": last, "total_steps": total or last or 1, "tokens_per_s": None, "eta_s": None,
            }
            self._dirty.add(key)
        self._redraw()
        self._show_run_settings(keys)
        self.run_label.setText(f"showing the {self.state.models_label}" if self.state.models_label == "bundled models"
                               else f"showing the run in {self.state.run_dir}")

    def _show_run_settings(self, keys) -> None:
        """Put the opened run's settings in the form, so that Start repeats (or extends) what it did."""
        first = self.state.models.get(keys[0]) if keys else None
        training = (first.config.get("training") or {}) if first is not None else {}
        if training.get("preset") in [self.preset.itemText(i) for i in range(self.preset.count())]:
            self.preset.setCurrentText(training["preset"])
        for box, name in ((self.steps, "steps"), (self.window_len, "window"), (self.seed, "seed")):
            if isinstance(training.get(name), int):
                box.setValue(training[name])
        if isinstance(training.get("lr"), (int, float)):
            self.learning_rate.setValue(float(training["lr"]))
        for key, box in self.model_boxes.items():
            box.setChecked(key in keys)

    # ---- hover ---------------------------------------------------------------------------------
    def _hover(self, scene_pos) -> None:
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(scene_pos):
            self.hover.setText("")
            return
        point = vb.mapSceneToView(scene_pos)
        lines = []
        for key, series in self._valid.items():
            if series.x:
                i = int(np.argmin(np.abs(np.asarray(series.x) - point.x())))
                lines.append(f"{style.model_label(key)}: {series.y[i]:.3f} bits (step {series.x[i]:.0f})")
        self.hover.setText("\n".join(lines))
        self.hover.setPos(point.x(), point.y())
