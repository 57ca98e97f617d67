"""The Train tab's settings column: one row per model (tick it, its size in the preset, its progress while it
trains) and the run's settings, each field built from the engine's table (TRAIN_SETTINGS, gui/setting_fields.py).
The form is remembered as it is edited (gui/settings.py): the next launch shows it."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from .. import settings, style
from ..setting_fields import setting_field
from ..train_progress import WorkersRow

WINDOW_STEP = 16  # the window's arrows move a 4/4 bar (16 steps) at a time
STEPS_STEP = 100


class TrainForm(QWidget):
    changed = Signal()  # a field the run's plan depends on (the processes line is redrawn)

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        from engine.training.train_config import TRAIN_SETTINGS, classroom_config

        classroom = classroom_config()
        table = TRAIN_SETTINGS
        models_group = self._model_rows()
        self.preset = setting_field(table["preset"], settings.read("train/preset", classroom.preset))
        self.steps = setting_field(table["steps"], settings.read("train/steps", classroom.steps), step=STEPS_STEP)
        self.learning_rate = setting_field(table["lr"], settings.read("train/lr", classroom.lr), scientific=True)
        # Never unset here: a preset change fills in the preset's window, which the person sees and can change.
        self.window_len = setting_field(table["window"], classroom.window, step=WINDOW_STEP)
        self.seed = setting_field(table["seed"], settings.read("train/seed", classroom.seed))
        # Not inside the installation (read-only once installed): the user's data folder, unless chosen.
        self.out_dir = QLineEdit(settings.read("train/out", str(settings.data_dir() / "runs")))
        self.out_dir.setToolTip("Each run is saved in a new folder here; reopen it with File > Open run")
        self.out_dir.setAccessibleName("Save runs in")
        browse = style.button("...", self._browse, "Choose the folder that new runs are saved in")
        browse.setFixedWidth(browse.fontMetrics().horizontalAdvance("...") + 24)
        out_line = QHBoxLayout()
        out_line.addWidget(self.out_dir)
        out_line.addWidget(browse)
        self.workers = WorkersRow()

        form = QFormLayout()
        for name, field in (("preset", self.preset), ("steps", self.steps), ("lr", self.learning_rate),
                            ("window", self.window_len), ("seed", self.seed)):
            form.addRow(table[name].label, field)
        form.addRow("Save runs in", out_line)
        form.addRow("Processes", self.workers)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(models_group)
        layout.addLayout(form)

        self.preset.currentTextChanged.connect(lambda preset: self.show_preset(preset, keep_window=False))
        self.workers.changed.connect(self.changed)
        for box in self.model_boxes.values():
            box.stateChanged.connect(lambda _state: self.changed.emit())
        self.show_preset(self.preset.currentText(), keep_window=True)
        for signal in (self.preset.currentTextChanged, self.steps.valueChanged, self.learning_rate.valueChanged,
                       self.window_len.valueChanged, self.seed.valueChanged, self.out_dir.editingFinished,
                       *(box.toggled for box in self.model_boxes.values())):
            signal.connect(self.save)

    def _model_rows(self) -> QGroupBox:
        """One row per model: tick it, its size in the preset, and (while it trains) its progress. The seed's
        five are ticked by default; the other groups sit one click away under their own heading."""
        from engine.models.registry import GROUPS, MODEL_KEYS, default_selection, spec

        self.model_boxes: dict[str, QCheckBox] = {}
        self.param_labels: dict[str, QLabel] = {}
        self.bars: dict[str, QProgressBar] = {}
        self.rates: dict[str, QLabel] = {}
        self.group_headings: dict[str, QLabel] = {}
        group_box = QGroupBox("Models")
        grid = QGridLayout(group_box)
        grid.setVerticalSpacing(4)
        grid.setColumnStretch(2, 1)
        chosen = settings.read("train/models", ",".join(default_selection())).split(",")
        i = -1
        for key in MODEL_KEYS:
            i += 1
            group = spec(key).group
            if group not in self.group_headings:
                name = GROUPS.get(group, group)
                heading = QLabel(name[:1].upper() + name[1:])  # not str.capitalize: "RNNs" keeps its case
                heading.setStyleSheet("color: #555555; font-size: 11px; font-weight: 600;")
                grid.addWidget(heading, i, 0, 1, 4)
                self.group_headings[group] = heading
                i += 1
            # the label without its parenthesis fits the form at 1024 px; the heading and tooltip say the rest
            box = QCheckBox(style.model_label(key).split(" (")[0])
            box.setToolTip(style.model_label(key))
            box.setIcon(style.swatch_icon(style.model_colour(key)))
            box.setChecked(key in chosen)
            box.setStyleSheet(f"QCheckBox {{ color: {style.model_colour(key)}; font-weight: 600; }}")
            params = QLabel("")
            params.setStyleSheet("color: #555555; font-size: 11px;")
            bar = QProgressBar()
            bar.setTextVisible(True)
            bar.setFormat("%p%")
            bar.setMinimumWidth(60)
            bar.setAlignment(Qt.AlignmentFlag.AlignCenter)
            bar.setStyleSheet(f"QProgressBar {{ max-height: 14px; font-size: 10px; }} "
                              f"QProgressBar::chunk {{ background: {style.model_colour(key)}; }}")
            rate = QLabel("")
            rate.setStyleSheet("color: #555555; font-size: 11px;")
            for column, widget in enumerate((box, params, bar, rate)):
                grid.addWidget(widget, i, column)
            self.model_boxes[key], self.param_labels[key], self.bars[key], self.rates[key] = box, params, bar, rate
        return group_box

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save training runs in", self.out_dir.text())
        if folder:
            self.out_dir.setText(folder)
            self.save()

    def show_preset(self, preset: str, keep_window: bool) -> None:
        """Each model's size in this preset; the window becomes the preset's (or the saved one)."""
        from engine.models.registry import MODEL_KEYS, PRESET_WINDOWS, model_config
        from engine.music.tokens import TokenConfig
        from engine.training.footprint import weights

        corpus = self.state.corpus
        vocab = (corpus.token_config if corpus is not None else TokenConfig()).vocab_size
        for key in MODEL_KEYS:
            n = weights(model_config(key, preset, vocab)).needs.params  # counted on shapes alone, once per size
            self.param_labels[key].setText(f"{n / 1000:.1f}k parameters" if n < 1e6 else f"{n / 1e6:.2f}M parameters")
        saved = settings.read("train/window", 0, int) if keep_window else 0
        self.window_len.setValue(saved or PRESET_WINDOWS[preset])

    def chosen_models(self) -> list[str]:
        return [k for k, box in self.model_boxes.items() if box.isChecked()]

    def config(self, device: str):
        """The run's settings from the form; what it does not show (batch, precision, whole tunes) comes from
        the classroom settings."""
        from engine.training.train_config import classroom_config

        return replace(classroom_config(), preset=self.preset.currentText(), steps=self.steps.value(),
                       lr=self.learning_rate.value(), window=self.window_len.value(), seed=self.seed.value(),
                       device=device, **self.workers.values())

    def save(self) -> None:
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

    def use_classroom_settings(self) -> None:
        """Put the classroom defaults back in the form (the default selection of models ticked, as at first
        launch: the seed's five; the modern models stay one click away)."""
        from engine.models.registry import default_selection
        from engine.training.train_config import classroom_config

        classroom = classroom_config()
        self.preset.setCurrentText(classroom.preset)
        self.show_preset(classroom.preset, keep_window=False)
        self.steps.setValue(classroom.steps)
        self.learning_rate.setValue(classroom.lr)
        self.seed.setValue(classroom.seed)
        chosen = default_selection()
        for key, box in self.model_boxes.items():
            box.setChecked(key in chosen)

    def show_run_settings(self, training: dict, keys) -> None:
        """Put an opened run's settings in the form, so that Start repeats (or extends) what it did."""
        if training.get("preset") in [self.preset.itemText(i) for i in range(self.preset.count())]:
            self.preset.setCurrentText(training["preset"])
        for box, name in ((self.steps, "steps"), (self.window_len, "window"), (self.seed, "seed")):
            if isinstance(training.get(name), int):
                box.setValue(training[name])
        if isinstance(training.get("lr"), (int, float)):
            self.learning_rate.setValue(float(training["lr"]))
        for key, box in self.model_boxes.items():
            box.setChecked(key in keys)
