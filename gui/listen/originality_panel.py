"""The Listen tab's originality, put together (issue 27 item 5): each row's meter and copied bars, the
note that says plainly when a model mostly replays its training tunes, and the right-click menu that
plays the training tune a marked bar comes from.

The figures come from gui/listen/originality.py (TrainingTunes: the index, built in the background);
the widgets from gui/listen/originality_view.py. The tab calls `show_row` whenever a row's music
changes and `show_all` when the index or a baseline arrives.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMenu

from .. import style
from .originality import REPLAY_RUN_BARS, REPLAY_SHARE, TrainingTunes, replays
from .originality_view import baseline_text, copy_marks, meter_texts, passage_text, passages_at, percent


class OriginalityPanel:
    def __init__(self, tab):
        self.tab = tab
        self.tunes = TrainingTunes(tab.state, tab)
        self.tunes.changed.connect(self.show_all)
        self.note = QLabel()  # the plain statement when a model replays its training tunes
        self.note.setWordWrap(True)
        self.note.setStyleSheet("background: #fde8ea; border: 1px solid #d08090; padding: 6px;")
        self.note.hide()
        self.menu: QMenu | None = None  # the last right-click menu (tests read its actions)
        self.source = None  # the training tune passage playing: the owner of that playback
        tab.state.modelsChanged.connect(self.tunes.refresh)
        tab.state.corpusChanged.connect(self.tunes.refresh)

    # ---- rows ------------------------------------------------------------------------------------
    def connect_row(self, row) -> None:
        row.roll.markMenuRequested.connect(lambda bar, pos, r=row: self.open_menu(r, bar, pos))
        row.roll.picked.connect(lambda bar, r=row: self.name_at(r, bar))

    def name_at(self, row, bar: float) -> None:
        """A left click on a marked bar names its training tune in the tab's message line (the click also pins
        what the notes drew on, as anywhere on the roll)."""
        here = passages_at(row.passages, bar)
        if here:
            names = "; ".join(passage_text(p, self.tunes.tune_name(p.tune)) for p in here)
            self.tab.say(f"{names} (right-click to hear it or show it in the Corpus tab)")

    def show_all(self) -> None:
        for row in self.tab.rows:
            self.show_row(row)

    def _lengths(self) -> tuple[int, int]:
        return self.tab.primer_bars.value(), self.tab.bars.value()

    def show_row(self, row) -> None:
        """The row's meter and copied bars for the melody it shows (hidden when it shows none)."""
        primer = self.tab.primer
        if row.melody is None or primer is None or not self._composed(row):
            row.meter.hide()
            row.roll.set_marks([])
            self.update_note()
            return
        row.meter.show()
        tunes = self.tunes
        if tunes.status != "ready":
            text = {"indexing": "originality: indexing the training tunes ...",
                    "failed": "originality: not available", "none": "originality: no run open"}[tunes.status]
            row.meter.set_result(None, text, tunes.reason or "The originality meter compares the melody with the "
                                 "tunes the models trained on; they are being indexed.")
            row.roll.set_marks([])
            self.update_note()
            return
        result = tunes.measure(primer, row.melody)
        baseline = tunes.baseline(*self._lengths())
        flagged = row.key in self._replaying()
        line, tip = meter_texts(result, baseline, tunes.n_tunes, flagged)
        if tunes.reason:  # the run's corpus changed since it was trained: say so where the figure is
            tip += f"\n\nNote: {tunes.reason}."
        row.meter.set_result(result, line, tip, baseline, flagged)
        bands, row.passages = copy_marks(result)
        row.roll.set_marks(bands, lambda bar, r=row: self._describe(r, bar))
        self.update_note()

    def _composed(self, row) -> bool:
        """A model's row once composed, or the human row (the real continuation is measured the same way)."""
        return row.key == "human" or row.key in self.tab.results

    def _describe(self, row, bar: float) -> str:
        here = passages_at(row.passages, bar)
        if not here:
            return ""
        lines = [passage_text(p, self.tunes.tune_name(p.tune)) for p in here]
        return "\n".join(lines) + "\n(right-click to hear it or show it in the Corpus tab; click: what the notes drew on)"

    # ---- the plain statement ---------------------------------------------------------------------
    def _replaying(self) -> list[str]:
        """The models whose melodies of the last Generate mostly replay training tunes."""
        if self.tunes.status != "ready" or self.tab.primer is None:
            return []
        return [key for key, melodies in self.tab.results.items()
                if replays([self.tunes.measure(self.tab.primer, m) for m in melodies])]

    def update_note(self) -> None:
        flagged = self._replaying()
        if not flagged:
            self.note.hide()
            return
        names = [style.model_label(k) for k in flagged]
        who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        verb = "replays" if len(names) == 1 else "replay"
        own = not self.tunes.tunes.bundled  # trained on the person's own folder, not the bundled corpus
        where = "the tunes of your folder it learned from" if own else "the tunes it learned from"
        text = (f"<b>The {who} mostly {verb} its training tunes</b>: {where} come back bar for bar (at least "
                f"{percent(REPLAY_SHARE)} of the two-bar spans copied, or runs of {REPLAY_RUN_BARS} bars or more; "
                f"the shaded bars show where). For comparison, {baseline_text(self.tunes.baseline(*self._lengths()))}.")
        if own:
            text += (" A model trained long on few tunes learns them by heart: train for fewer steps or with a "
                     "smaller preset, or add tunes to the folder.")
        self.note.setText(text)
        self.note.show()

    # ---- hearing the training tune ---------------------------------------------------------------
    def open_menu(self, row, bar: float, global_pos) -> QMenu | None:
        """Right-click on a marked bar: hear the training tune's passage it copies, or the whole tune."""
        here = passages_at(row.passages, bar)
        if not here:
            return None
        menu = QMenu(self.tab)
        listed = self.tunes.tunes.corpus is self.tab.state.corpus  # the Corpus tab lists the training tunes
        for p in here:
            name = self.tunes.tune_name(p.tune)
            hear = menu.addAction(f"Hear {name}, bars {p.tune_bar + 1}-{p.tune_bar + p.bars} (what "
                                  f"bars {p.start + 1}-{p.start + p.bars} copy)")
            hear.triggered.connect(lambda _=False, p=p: self.play_passage(p, whole=False))
            whole = menu.addAction(f"Hear all of {name}")
            whole.triggered.connect(lambda _=False, p=p: self.play_passage(p, whole=True))
            if listed:
                show = menu.addAction(f"Show {name} in the Corpus tab")
                position = int(self.tunes.tunes.index.corpus_index[p.tune])
                show.triggered.connect(lambda _=False, i=position: self.tab.corpusMelodyRequested.emit(i))
        self.menu = menu
        menu.popup(global_pos)
        return menu

    def play_passage(self, passage, whole: bool = False) -> None:
        melody = self.tunes.tune_melody(passage.tune)
        if not whole:
            melody = melody.bars(passage.tune_bar, passage.tune_bar + passage.bars)
        self.source = melody
        self.tab.playback.play(self, melody)
        where = "" if whole else f", bars {passage.tune_bar + 1}-{passage.tune_bar + passage.bars}"
        self.tab.say(f"playing the training tune {self.tunes.tune_name(passage.tune)}{where} (Space stops)")
