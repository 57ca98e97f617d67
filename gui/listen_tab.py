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

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from engine.memory.influence import ATTENTION

from . import settings, style, workers
from .influence_view import InfluenceView
from .listen.controls import WAITING_TEXT, ListenControls
from .listen.exports import RowExports
from .listen.note_sources import NoteSources
from .listen.originality_panel import OriginalityPanel
from .listen.playing import RowPlaying
from .listen.row import ListenRow
from .listen.row_stack import RowStack

__all__ = ["WAITING_TEXT", "ListenTab"]


def _generate_all(models: dict, primer, sample_settings, cancel: threading.Event, lock: threading.Lock):
    """Generator job: yields (key, [Melody, ...]) for each model in turn (holding `lock` while a model
    composes: an attribution still finishing with the same model is waited for). The memory estimate comes
    first: refused above the machine's share, naming the fields to lower by their labels."""
    from engine.generation.generate import SAMPLE_SETTINGS, generate
    from engine.generation.memory_check import check_generation_memory

    check_generation_memory([m.record.model for m in models.values() if m.record is not None], sample_settings,
                            {s.name: s.label for s in SAMPLE_SETTINGS})
    for key, loaded in models.items():
        if cancel.is_set():
            return
        with lock:
            melodies = generate(loaded.model, primer, sample_settings, loaded.token_config, cancel=cancel)
        yield key, melodies


class ListenTab(RowExports, RowPlaying, NoteSources, QWidget):
    trainRequested = Signal()
    corpusMelodyRequested = Signal(int)  # show the corpus's melody at this position in the Corpus tab
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
        self._composing = 0  # models composing (the status bar's busy line counts them done)
        self.rows: list[ListenRow] = []
        # What each note drew on: computed after Generate, looked up when a note is pointed at.
        self.influence = InfluenceView(self.rows)
        self._influence_job = None
        self._influence_cancel: threading.Event | None = None
        self._influence_text = ""
        self._influence_progress = [0, 0]  # tables arrived, tables expected
        self._model_lock = threading.Lock()  # a model composes or is attributed, never both at once

        self._generate_pending = False  # Generate was pressed while something was still loading
        self._primer_problem = ""  # why the chosen tune gives no primer ("" when it gives one)

        self.controls = ListenControls(self)
        c = self.controls
        self.primer_box, self.primer_bars, self.bars, self.seed = c.primer_box, c.primer_bars, c.bars, c.seed
        self.temperature, self.top_p, self.variations, self.variation = c.temperature, c.top_p, c.variations, c.variation
        self.generate_button, self.export_all_button, self.export_wav_button = (c.generate_button, c.export_all_button,
                                                                               c.export_wav_button)
        self.variation.valueChanged.connect(self._redraw_rows)

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
        layout.addLayout(self.controls)
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

                row.set_attention_available(ATTENTION in methods_for(self.state.models[key].model))
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

        try:  # named by its title: the file's whole path made the message a line longer than the rows
            self._primer = take_primer(tune, self.primer_bars.value(), name=tune.title or tune.tune_id)
        except Exception as exc:  # a too-short tune: say so in the rows and, in full, in the tab's own line
            self._primer_problem = workers.error_text(exc)
            for row in self.rows:
                row.set_waiting(self._primer_problem)
            self.status.setText(self._primer_problem)
            return
        if self.status.text() == self._primer_problem:
            self.status.setText("")
        self._primer_problem = ""
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
            self._say(self._primer_problem or "choose a primer tune at least as long as the primer bars")
            return
        self._stop_influence()
        sample_settings = self.controls.sample_settings()
        self.controls.save()
        models = {k: self.state.models[k] for k in self.state.ordered_model_keys()}
        for row in self.rows:
            if row.key != "human":
                row.set_waiting("composing ...")
        self.originality.show_all()
        # The focus goes to the rows, where Space and the arrows play them, however Generate was pressed (its
        # button, Ctrl+G from a field, the menu): not left in a number field, nor passed on to the next one.
        # (Not while the person is on another tab: a Generate pressed during loading runs when they are in.)
        if self.isVisible():
            self.rows_widget.setFocus(Qt.FocusReason.OtherFocusReason)
        self.generate_button.setEnabled(False)
        self.status.setText("composing ...")
        self._composing = len(models)
        self.state.set_busy("generate", f"Composing with {len(models)} models ...", 0, len(models))
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
        self.state.set_busy("generate", f"Composing: {len(self._results)} of {self._composing} models done",
                            len(self._results), self._composing)
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
        self.state.set_busy("generate", None)
        self._cancel = None
        self._update_generate_button()
        self.status.setText(f"composed {self.bars.value()} bars with {len(self._results)} models" if self._results else "")
        self.generationFinished.emit()
        if self._results and not cancelled:
            self._start_influence()

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
