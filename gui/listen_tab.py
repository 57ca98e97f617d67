"""Listen tab: give every model the same opening, see and hear what each composes next to the real tune.

One row per model plus the human continuation, all on one bar axis with the primer shaded. Generation
runs in a background job and fills the rows model by model. Then a second job finds what each composed
note drew on (gui/influence_view.py): pointing at a note draws its sources in every row at once.
Each melody's originality (how much replays the training tunes) is measured as it arrives
(gui/listen/originality_panel.py). The rows (gui/listen/row.py) sit in a stack the keys move through
(gui/listen/row_stack.py): Up/Down choose a row, Space plays it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from . import settings, style, workers
from .influence_view import InfluenceView, compute_all, summary_text
from .listen.originality_panel import OriginalityPanel
from .listen.row import PRIMER_COLOUR, ListenRow  # noqa: F401 - PRIMER_COLOUR: the tab's colours in one import
from .listen.row_stack import RowStack

WAITING_TEXT = "Generate when loaded"  # the Generate button after a press while the corpus or models load


def _generate_all(models: dict, primer, sample_settings, cancel: threading.Event, lock: threading.Lock):
    """Generator job: yields (key, [Melody, ...]) for each model in turn (holding `lock` while a model
    composes: an attribution still finishing with the same model is waited for)."""
    from engine.generation.generate import generate

    for key, loaded in models.items():
        if cancel.is_set():
            return
        with lock:
            melodies = generate(loaded.model, primer, sample_settings, loaded.token_config, cancel=cancel)
        yield key, melodies


class ListenTab(QWidget):
    trainRequested = Signal()
    generationFinished = Signal()
    rowReady = Signal(int)  # index of a row whose continuation just arrived
    influenceFinished = Signal()  # the influence job of the last Generate ended (done, failed or cancelled)

    def __init__(self, state, playback, parent=None):
        super().__init__(parent)
        self.state, self.playback = state, playback
        self._cancel: threading.Event | None = None
        self._job = None
        self._primer = None
        self._results: dict[str, list] = {}
        self.rows: list[ListenRow] = []
        # What each note drew on: computed after Generate, looked up when a note is pointed at.
        self.influence = InfluenceView(self.rows)
        self._influence_job = None
        self._influence_cancel: threading.Event | None = None
        self._influence_text = ""
        self._model_lock = threading.Lock()  # a model composes or is attributed, never both at once

        self._generate_pending = False  # Generate was pressed while something was still loading

        self.primer_box = QComboBox()
        self.primer_box.setEditable(True)
        self.primer_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.primer_box.completer().setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.primer_box.completer().setFilterMode(Qt.MatchFlag.MatchContains)
        self.primer_box.setMinimumWidth(220)  # a long title is elided; the field grows with the window
        self.primer_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.primer_box.setToolTip("Tunes of the test split: the models never trained on them")
        self.primer_bars = style.spin_box(1, 64, settings.read("listen/primer_bars", 8), "bars of the tune the models hear")
        self.bars = style.spin_box(1, 256, settings.read("listen/bars", 16), "bars each model composes")
        self.temperature = QDoubleSpinBox(minimum=0.05, maximum=3.0, singleStep=0.05, decimals=2)
        self.temperature.setValue(settings.read("listen/temperature", 1.0))
        self.temperature.setToolTip("Below 1: safer, more repetitive; above 1: more adventurous")
        self.top_p = QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, decimals=2)
        self.top_p.setValue(settings.read("listen/top_p", 1.0))
        self.top_p.setToolTip("Sample only from the most likely notes that add up to this probability (1 = all)")
        self.variations = style.spin_box(1, 16, settings.read("listen/variations", 1), "continuations per model")
        self.variation = style.spin_box(1, 1, 1, "which variation the rows show")
        self.variation.valueChanged.connect(self._redraw_rows)
        self.seed = style.spin_box(0, 999_999, settings.read("listen/seed", 0), "the same seed gives the same melodies")
        self.generate_button = style.button("Generate", self.generate, "Compose a continuation with every model (Ctrl+G)")
        self.generate_button.setStyleSheet("font-weight: 600; padding: 4px 16px;")
        # Wide enough for what it says while the corpus or the models load, so the row never jumps.
        bold = self.generate_button.font()
        bold.setWeight(QFont.Weight.DemiBold)
        self.generate_button.setMinimumWidth(QFontMetrics(bold).horizontalAdvance(WAITING_TEXT) + 40)
        self.export_all_button = style.button("Export all MIDI ...", self.export_midi,
                                              "One MIDI file per row into a folder (Ctrl+E)")
        self.export_wav_button = style.button("Export all WAV ...", self.export_wav, "One WAV file per row into a folder")

        # Two lines that fit a 1024-pixel-wide window: what to play and how long, then how to sample.
        first = QHBoxLayout()
        first.addWidget(QLabel("Primer tune"))
        first.addWidget(self.primer_box, 1)
        first.addSpacing(12)
        first.addWidget(QLabel("Primer bars"))
        first.addWidget(self.primer_bars)
        first.addWidget(QLabel("then compose"))
        first.addWidget(self.bars)
        first.addWidget(QLabel("bars"))
        first.addSpacing(12)
        first.addWidget(self.generate_button)
        second = QHBoxLayout()
        for text, box in (("Temperature", self.temperature), ("Top-p", self.top_p), ("Variations", self.variations),
                          ("Seed", self.seed), ("Show variation", self.variation)):
            second.addWidget(QLabel(text))
            second.addWidget(box)
            second.addSpacing(8)
        second.addStretch(1)
        second.addWidget(self.export_all_button)
        second.addWidget(self.export_wav_button)
        controls = QVBoxLayout()
        controls.addLayout(first)
        controls.addLayout(second)

        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background: #fff4d6; border: 1px solid #e0c060; padding: 8px;")
        self.banner_button = style.button("Go to Train", self.trainRequested.emit)
        banner_box = QHBoxLayout()
        banner_box.addWidget(self.banner, 1)
        banner_box.addWidget(self.banner_button)
        self.banner_widget = QWidget()
        self.banner_widget.setLayout(banner_box)
        self.banner_widget.hide()

        self.rows_widget = RowStack()
        self.rows_widget.currentChanged.connect(self._current_row_changed)
        self.rows_layout = self.rows_widget.layout_
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.rows_widget)
        self.scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keys go to the stack of rows inside
        self.originality = OriginalityPanel(self)

        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.banner_widget)
        layout.addWidget(self.originality.note)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(style.caption(
            "Grey: the primer every model heard; gold: bars copied from a training tune (point at one to see which, "
            "right-click to hear it). Point at a composed note to light up what it drew on (click pins, Esc clears). "
            "Up/Down choose a row, Space plays it."
        ))
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        state.corpusChanged.connect(self._fill_primers)
        state.modelsChanged.connect(self._models_changed)
        state.loadingChanged.connect(self._loading_changed)
        playback.stateChanged.connect(self._playback_changed)
        self.primer_box.currentIndexChanged.connect(self._primer_changed)
        self.primer_bars.valueChanged.connect(self._primer_changed)
        self.bars.valueChanged.connect(self._primer_changed)
        escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        escape.activated.connect(self.influence.clear)
        self._build_rows()

    # ---- rows ----------------------------------------------------------------------------------
    def _build_rows(self) -> None:
        keys = [*self.state.ordered_model_keys(), "human"]
        self.rows = []
        first_roll = None
        for key in keys:
            row = ListenRow(key)
            style.on_click(row.play_button, lambda r=row: self._play(r))
            style.on_click(row.midi_button, lambda r=row: self.export_row_midi(r))
            style.on_click(row.wav_button, lambda r=row: self.export_row_wav(r))
            style.on_click(row.attention_box, lambda r=row: self._method_changed(r))
            if key in self.state.models:
                from engine.memory.influence import methods_for

                row.set_attention_available("attention" in methods_for(self.state.models[key].model))
            row.roll.pointed.connect(self.influence.hover)
            row.roll.picked.connect(self.influence.click)
            row.roll.left.connect(self.influence.leave)
            # a click on a row makes it the current one (the one Space plays) and gives the keys to the stack
            row.roll.picked.connect(lambda _bar, r=row: self._choose_row(r))
            row.pressed.connect(lambda r=row: self._choose_row(r))
            self.originality.connect_row(row)
            if first_roll is None:
                first_roll = row.roll
            else:
                row.roll.setXLink(first_roll)
            self.rows.append(row)
        self.rows_widget.set_rows(self.rows)
        self.influence.reset(self.rows)
        self._primer_changed()

    def row(self, key: str) -> ListenRow | None:
        return next((r for r in self.rows if r.key == key), None)

    def show_no_models(self) -> None:
        from .state import PRETRAINED_DIR

        self.banner.setText(
            f"<b>No trained models yet.</b> The bundled models are not installed ({PRETRAINED_DIR} holds none) "
            "and no earlier run was found. Train the five models on the Train tab (the tiny preset takes "
            "about a minute), or open a run with File &gt; Open run."
        )
        self.banner_widget.show()
        self._update_generate_button()

    def _models_changed(self) -> None:
        self.banner_widget.setVisible(not self.state.models and not self.state.is_loading("models"))
        self._results = {}
        self._build_rows()
        self._update_generate_button()

    # ---- loading -------------------------------------------------------------------------------
    def _loading_changed(self) -> None:
        """While the corpus or the models load, say so; a Generate pressed meanwhile runs when they are in."""
        loading = self.state.loading_text()
        self._update_generate_button()
        if loading:
            then = ("Generate will compose as soon as they are in." if self._generate_pending
                    else "Generate can be pressed now: it composes as soon as they are in.")
            self.status.setText(f"{loading}. {then}")
            return
        self.status.setText("")
        if self._generate_pending:
            self._generate_pending = False
            self.generate()

    def _update_generate_button(self) -> None:
        waiting = self._generate_pending and bool(self.state.loading)
        self.generate_button.setText(WAITING_TEXT if waiting else "Generate")
        self.generate_button.setEnabled(self._job is None and (bool(self.state.models) or bool(self.state.loading)))

    # ---- primer --------------------------------------------------------------------------------
    def _fill_primers(self) -> None:
        corpus = self.state.corpus
        self.primer_box.blockSignals(True)
        self.primer_box.clear()
        if corpus is not None:
            from engine.data.primer import default_primer, primer_choices

            tunes = primer_choices(corpus)
            for m in tunes:
                self.primer_box.addItem(f"{m.title or m.tune_id}  ({m.meter}, {m.n_bars} bars)", m.tune_id)
            wanted = settings.read("listen/primer", "")
            index = self.primer_box.findData(wanted) if wanted else -1
            if index < 0 and tunes:  # the CLI's default too
                index = tunes.index(default_primer(tunes, self.primer_bars.value()))
            self.primer_box.setCurrentIndex(max(index, 0))
            self.primer_box.lineEdit().setCursorPosition(0)  # show the start of a long title
        self.primer_box.blockSignals(False)
        self._primer_changed()

    def current_tune(self):
        tune_id = self.primer_box.currentData()
        if self.state.corpus is None or tune_id is None:
            return None
        return self.state.corpus.find(tune_id)

    def _primer_changed(self, *_args) -> None:
        """Show the primer (and the real continuation) at once, before anything is generated."""
        self._results = {}
        self._stop_influence()
        tune = self.current_tune()
        self._primer = None
        if tune is None:
            why = "loading the corpus ..." if self.state.is_loading("corpus") else "no primer: load a corpus"
            for row in self.rows:
                row.set_waiting(why)
            return
        from engine.data.primer import take_primer

        try:
            self._primer = take_primer(tune, self.primer_bars.value())
        except Exception as exc:  # a too-short tune: say so in the rows
            for row in self.rows:
                row.set_waiting(workers.error_text(exc))
            return
        for row in self.rows:
            row.total_bars = self.primer_bars.value() + self.bars.value()
        for row in self.rows:
            if row.key == "human":
                row.set_content(self._primer, self._human_continuation(tune), "the real tune")
            else:
                row.set_content(self._primer, None, "press Generate")
        self.originality.show_all()

    def _human_continuation(self, tune):
        p = self.primer_bars.value()
        return tune.bars(p, p + self.bars.value())

    # ---- generation ----------------------------------------------------------------------------
    def generate(self) -> None:
        """Compose with every model; pressed while the corpus or models load, it runs once they are in."""
        if self._job is not None:
            return
        if self.state.loading:
            self._generate_pending = True
            self._loading_changed()
            return
        if not self.state.models:
            self._say("no trained models: train some on the Train tab or open a run (File > Open run)")
            return
        self._primer_changed()
        if self._primer is None:
            self._say("choose a primer tune at least as long as the primer bars")
            return
        from engine.generation.generate import SampleSettings

        self._stop_influence()
        sample_settings = SampleSettings(
            bars=self.bars.value(),
            temperature=self.temperature.value(),
            top_p=self.top_p.value(),
            variations=self.variations.value(),
            seed=self.seed.value(),
        )
        self._save_settings()
        models = {k: self.state.models[k] for k in self.state.ordered_model_keys()}
        for row in self.rows:
            if row.key != "human":
                row.set_waiting("composing ...")
        self.originality.show_all()
        if self.generate_button.hasFocus():
            # Disabling a focused button hands the focus to the next field (the temperature, where Space
            # then wiped the value): the rows take it instead, where Space and the arrows play them.
            self.rows_widget.setFocus(Qt.FocusReason.OtherFocusReason)
        self.generate_button.setEnabled(False)
        self.status.setText("composing ...")
        self._cancel = threading.Event()
        self._job = workers.start_job(
            _generate_all,
            models,
            self._primer,
            sample_settings,
            self._cancel,
            self._model_lock,
            generator=True,
            cancel=self._cancel,
            owner=self,
            on_yield=self._model_done,
            on_error=self._failed,
            on_finish=self._finished,
        )

    def _model_done(self, result) -> None:
        key, melodies = result
        self._results[key] = melodies
        self.variation.setMaximum(len(melodies))
        self._draw_row(key)
        row = self.row(key)
        if row is not None:
            self.rowReady.emit(self.rows.index(row))

    def _draw_row(self, key: str) -> None:
        row = self.row(key)
        melodies = self._results.get(key)
        if row is None or not melodies:
            return
        i = min(self.variation.value(), len(melodies)) - 1
        loaded = self.state.models.get(key)
        params = loaded.model.num_params() if loaded is not None and hasattr(loaded.model, "num_params") else None
        info = f"{params / 1000:.0f}k parameters" if params else ""
        row.info.setToolTip(info)
        if len(melodies) > 1:  # the side panel is narrow: the size stays in the tooltip
            info = f"variation {i + 1} of {len(melodies)}"
        row.set_content(self._primer, melodies[i], info)
        self.originality.show_row(row)

    def _redraw_rows(self) -> None:
        for key in self._results:
            self._draw_row(key)
        if self._results and self._job is None:  # another variation: attribute the one shown
            self._start_influence()

    def _failed(self, exc) -> None:
        from engine.generation.generate import GenerationCancelled

        if isinstance(workers.unwrap(exc), GenerationCancelled):
            return
        self.window().show_error("Generation failed", exc)

    def _finished(self) -> None:
        cancelled = self._cancel is not None and self._cancel.is_set()
        self._job = None
        self._cancel = None
        self._update_generate_button()
        self.status.setText(f"composed {self.bars.value()} bars with {len(self._results)} models" if self._results else "")
        self.generationFinished.emit()
        if self._results and not cancelled:
            self._start_influence()

    # ---- what each note drew on -------------------------------------------------------------------
    def _start_influence(self) -> None:
        """Attribute the continuations the rows show, in the background; a lookup table per row arrives
        as each is done."""
        from engine.evaluation.evaluate import INFLUENCE_BARS

        self._stop_influence()
        if self._primer is None:
            return
        shown = {r.key: r.melody for r in self.rows if r.key in self._results and r.melody is not None}
        models = {k: self.state.models[k] for k in shown if k in self.state.models}
        if not models:
            return
        human = self.row("human")
        bars = min(INFLUENCE_BARS, self.bars.value())
        end = self.primer_bars.value() + bars
        for row in self.rows:
            row.roll.set_influence_end(end if self.bars.value() > bars else None)
            if row.key in models:
                row.set_info("finding what it drew on ...", "")
        self._influence_text = (f"composed {self.bars.value()} bars with {len(self._results)} models; what the notes "
                                f"drew on: the first {bars} bars of each (the cost grows with the length squared)")
        self.status.setText(f"{self._influence_text}, finding it ...")
        cancel = self._influence_cancel = threading.Event()
        # Callbacks check that their job is still the current one: a cancelled job may still deliver.
        self._influence_job = workers.start_job(
            compute_all, models, self._primer, {k: shown[k] for k in models},
            human.melody if human is not None else None, bars, cancel, self._model_lock,
            generator=True, cancel=cancel, owner=self,
            on_yield=lambda result: self._influence_ready(result) if cancel is self._influence_cancel else None,
            on_error=lambda exc: self._influence_failed(exc) if cancel is self._influence_cancel else None,
            on_finish=lambda: self._influence_finished() if cancel is self._influence_cancel else None)

    def _stop_influence(self) -> None:
        """Cancel an attribution in progress and forget the tables (the rows' music changes)."""
        if self._influence_cancel is not None:
            self._influence_cancel.set()
        self._influence_job = None
        self._influence_cancel = None
        self.influence.reset()

    def _influence_ready(self, result) -> None:
        key, method, table = result
        self.influence.add(key, method, table)
        self._show_summary(key)

    def _show_summary(self, key: str) -> None:
        row, table = self.row(key), self.influence.table(key)
        if row is not None and table is not None:
            row.set_info(*summary_text(table))

    def _method_changed(self, row) -> None:
        self.influence.attention[row.key] = row.attention_box.isChecked()
        self._show_summary(row.key)
        self.influence.redraw()

    def _influence_failed(self, exc) -> None:
        self.window().show_error("Finding what the notes drew on failed", exc)

    def _influence_finished(self) -> None:
        self._influence_job = None
        self._influence_cancel = None
        if self.influence.ready():
            self.status.setText(self._influence_text)
        self.influenceFinished.emit()

    @property
    def primer(self):
        """The primer the rows show (None: no tune chosen, or too short)."""
        return self._primer

    @property
    def results(self) -> dict[str, list]:
        """Each model's melodies of the last Generate (every variation)."""
        return self._results

    def say(self, text: str) -> None:
        self._say(text)

    def _say(self, text: str) -> None:
        """A message in the tab (where the user is looking) and in the status bar."""
        self.status.setText(text)
        self.state.status.emit(text)

    def stop_events(self) -> list[threading.Event]:
        return [e for e in (self._cancel, self._influence_cancel) if e is not None]

    def _save_settings(self) -> None:
        for key, value in (
            ("listen/primer", self.primer_box.currentData() or ""),
            ("listen/primer_bars", self.primer_bars.value()),
            ("listen/bars", self.bars.value()),
            ("listen/temperature", self.temperature.value()),
            ("listen/top_p", self.top_p.value()),
            ("listen/variations", self.variations.value()),
            ("listen/seed", self.seed.value()),
        ):
            settings.write(key, value)

    # ---- sound ---------------------------------------------------------------------------------
    def _play(self, row: ListenRow) -> None:
        if self.playback.is_playing(row):
            self.playback.stop()
            return
        if row.melody is None or self._primer is None:
            return
        self.rows_widget.set_current(self.rows.index(row), notify=False)
        from engine.music.export import join_primer

        self.playback.play(row, join_primer(self._primer, row.melody), row.roll, 0.0)

    def play_row(self, index: int) -> None:
        if 0 <= index < len(self.rows):
            self._play(self.rows[index])

    def play_stop(self) -> None:
        """Space: stop what plays, else play the current row (the first with music when it has none)."""
        if self.playback.is_playing():
            self.playback.stop()
            return
        current = self.rows_widget.current_row()
        for row in ([current] if current is not None else []) + self.rows:
            if row.melody is not None:
                self.rows_widget.set_current(self.rows.index(row))
                self._play(row)
                return

    def _choose_row(self, row: ListenRow) -> None:
        self.rows_widget.set_current(self.rows.index(row))
        self.rows_widget.setFocus(Qt.FocusReason.MouseFocusReason)

    def _current_row_changed(self, index: int) -> None:
        """Chosen with the keys while a row plays: play the new one (the arrows go from row to row, hearing each)."""
        row = self.rows[index]
        if self.playback.is_playing() and row.melody is not None and not self.playback.is_playing(row):
            self._play(row)

    def _playback_changed(self) -> None:
        for row in self.rows:
            row.play_button.setText("Stop" if self.playback.is_playing(row) else "Play")

    # ---- export --------------------------------------------------------------------------------
    def _stem(self, row: ListenRow) -> str:
        tune = (self._primer.tune_id or "primer").replace("/", "_").replace("#", "-") if self._primer else "primer"
        return f"{tune}-{row.key}"

    def export_row_midi(self, row: ListenRow, path: str | None = None):
        if row.melody is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Export MIDI", str(Path(settings.read("dirs/export", str(Path.home()))) / f"{self._stem(row)}.mid"),
                "MIDI files (*.mid)",
            )
            if not path:
                return None
            settings.write("dirs/export", str(Path(path).parent))
        written = self._write_midi(row, Path(path))
        if written:
            self._say(f"wrote {written}")
        return written

    def _write_midi(self, row: ListenRow, path: Path):
        from engine.music.export import write_midi

        try:
            key = None if row.key == "human" else row.key
            written = write_midi(path, row.melody, track_name=style.model_label(key), primer=self._primer)
        except Exception as exc:  # shown to the user, the app carries on
            self.window().show_error("Export failed", exc)
            return None
        return written

    def export_midi(self, folder: str | None = None) -> list:
        """Every row with music, one MIDI file each, into a folder (asked for when not given)."""
        rows = [r for r in self.rows if r.melody is not None]
        if not rows:
            self._say("nothing to export yet: press Generate first")
            return []
        if folder is None:
            folder = settings.ask_folder(self, "Export all rows as MIDI into", "dirs/export")
            if not folder:
                return []
        written = []
        for row in rows:
            path = self._write_midi(row, Path(folder) / f"{self._stem(row)}.mid")
            if path is None:  # the error dialog says why; the other rows would fail the same way
                break
            written.append(path)
        if written:
            self._say(f"wrote {len(written)} MIDI files to {folder}")
        return written

    def export_row_wav(self, row: ListenRow, path: str | None = None):
        if row.melody is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Export WAV", str(Path(settings.read("dirs/export", str(Path.home()))) / f"{self._stem(row)}.wav"),
                "WAV files (*.wav)",
            )
            if not path:
                return None
            settings.write("dirs/export", str(Path(path).parent))
        return self._write_wavs([(row, Path(path))])

    def export_wav(self, folder: str | None = None):
        rows = [r for r in self.rows if r.melody is not None]
        if not rows:
            self._say("nothing to export yet: press Generate first")
            return None
        if folder is None:
            folder = settings.ask_folder(self, "Export all rows as WAV into", "dirs/export")
            if not folder:
                return None
        return self._write_wavs([(r, Path(folder) / f"{self._stem(r)}.wav") for r in rows])

    def _write_wavs(self, targets):
        """Render and write in the background (FluidSynth takes a moment for long pieces)."""
        from engine.music.export import join_primer, write_wav
        from engine.music.synth import render_audio

        jobs = [(join_primer(self._primer, r.melody), p) for r, p in targets]

        def work():
            written = []
            for melody, path in jobs:
                samples, rate, _synth = render_audio(melody)
                written.append(write_wav(path, samples, rate))
            return written

        self._say(f"rendering {len(jobs)} WAV file{'s' if len(jobs) > 1 else ''} ...")
        return workers.start_job(
            work,
            on_return=lambda paths: self._say(
                f"wrote {paths[0]}" if len(paths) == 1 else f"wrote {len(paths)} WAV files to {paths[0].parent}"),
            on_error=lambda exc: self.window().show_error("WAV export failed", exc),
            owner=self,
        )
