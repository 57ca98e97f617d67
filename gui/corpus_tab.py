"""Corpus tab: the melodies the models learn from, the extraction report, and a piano roll to look at
and listen to any tune."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from . import settings, style
from .corpus_model import CorpusFilterProxy, CorpusTableModel
from .piano_roll import PianoRoll

TUNE_COLOUR = "#4c72b0"


class CorpusTab(QWidget):
    def __init__(self, state, playback, parent=None):
        super().__init__(parent)
        self.state, self.playback = state, playback
        self.model = CorpusTableModel(self)
        self.proxy = CorpusFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.summary = QLabel("Loading the bundled corpus ...")
        self.summary.setWordWrap(True)
        self.search = QLineEdit(placeholderText="Search titles, collections, meters, keys, file names ...")
        self.search.setAccessibleName("search the corpus")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.set_search)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        # several tunes can be selected (Shift/Ctrl+click) to export them; the piano roll shows the current one
        self.table.setSelectionMode(QTableView.SelectionMode.ExtendedSelection)
        self.table.setAccessibleName("melodies of the corpus")
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # The title is what people read: the other columns keep to what they need (a long collection name is
        # elided, whole in its tooltip) so that titles are not cut to "The ..." on a small screen.
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        for col, width in ((1, 74), (2, 42), (3, 62), (4, 38), (5, 44)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, width)
        self.table.selectionModel().currentRowChanged.connect(self._show_selected)

        # Every file skipped and every warning, one a row (a scrollable, sortable list).
        self.report = QTableWidget(0, 3)
        self.report.setHorizontalHeaderLabels(["File", "", "Reason"])
        self.report.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.report.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.report.verticalHeader().setVisible(False)
        self.report.setAccessibleName("extraction report")
        self.report.setMinimumHeight(110)
        self.report.verticalHeader().setDefaultSectionSize(20)  # more rows of the report in its pane
        self.report.setWordWrap(False)
        self.report.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        report_header = self.report.horizontalHeader()
        report_header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        report_header.resizeSection(0, 170)
        report_header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        report_header.setStretchLastSection(True)
        self.report_summary = QLabel("")
        self.report_summary.setWordWrap(True)
        report_box = QWidget()
        report_layout = QVBoxLayout(report_box)
        report_layout.setContentsMargins(2, 2, 2, 2)
        report_layout.addWidget(self.report_summary)
        report_layout.addWidget(self.report, 1)
        lower = QTabWidget()
        lower.addTab(report_box, "Extraction report")

        left = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.summary)
        top_layout.addWidget(self.table)
        self.export_button = style.button("Export MIDI ...", self.export_selected,
                                          "Write the selected tunes (Shift/Ctrl+click to select several) as MIDI files "
                                          "into a folder (Ctrl+E)")
        self.export_button.setEnabled(False)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        export_action = QAction("Export selected as MIDI ...", self.table)
        style.on_click(export_action, self.export_selected)
        self.table.addAction(export_action)
        search_line = QHBoxLayout()
        search_line.addWidget(self.search, 1)
        search_line.addWidget(self.export_button)
        top_layout.insertLayout(1, search_line)
        left.addWidget(top)
        left.addWidget(lower)
        # the extraction report gets room to be read (a third of the height), the list the rest
        left.setStretchFactor(0, 2)
        left.setStretchFactor(1, 1)
        left.setSizes([460, 260])

        self.tune_title = QLabel("Select a tune to see it as a piano roll.")
        self.tune_title.setStyleSheet("font-size: 15px; font-weight: 600;")
        self.tune_info = QLabel("")
        self.tune_info.setStyleSheet("color: #555555;")
        # both may wrap: the list beside them keeps its width for the titles on a small screen
        self.tune_title.setWordWrap(True)
        self.tune_info.setWordWrap(True)
        self.play_button = style.button("Play", self.play_stop, "Play or stop the selected tune (Space)")
        self.play_button.setEnabled(False)
        self.play_button.setAccessibleName("Play or stop the selected tune")  # its words change: Play, Stop
        self.roll = PianoRoll(min_height=260)
        self.roll.setAccessibleName("piano roll of the selected tune")
        self.roll.clear_parts("no tune selected")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        head = QHBoxLayout()
        titles = QVBoxLayout()
        titles.addWidget(self.tune_title)
        titles.addWidget(self.tune_info)
        head.addLayout(titles, 1)
        head.addWidget(self.play_button)
        right_layout.addLayout(head)
        right_layout.addWidget(self.roll, 1)
        right_layout.addWidget(
            style.caption("Each bar is a column between grey lines. Drag to scroll through the tune, use the "
                          "mouse wheel to zoom, hover a note for its name and length.")
        )

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([680, 600])  # the list (titles) and the roll share the width about evenly
        layout = QVBoxLayout(self)
        layout.addWidget(split)

        self._current = None
        self._summary_text = self.summary.text()
        state.corpusChanged.connect(self.refresh)
        state.loadingChanged.connect(self._loading_changed)
        self.table.selectionModel().selectionChanged.connect(
            lambda *_: self.export_button.setEnabled(bool(self.selected_melodies())))
        playback.stateChanged.connect(self._playback_changed)

    # ---- content -------------------------------------------------------------------------------
    def _loading_changed(self) -> None:
        """While a corpus loads, the summary says which one and how far (the one in use stays listed)."""
        loading = [text for key, text in self.state.loading.items() if key.split("#")[0] == "corpus"]
        if loading:
            kept = f" The {self.state.corpus_label} stays listed until it is in." if self.state.corpus else ""
            self.summary.setText(f"{loading[-1]} ...{kept}")
        else:  # done: the summary of the corpus in use (a failed load's report stays below it)
            self.summary.setText(self._summary_text)

    def refresh(self) -> None:
        corpus = self.state.corpus
        if corpus is None:
            self.model.set_melodies([])
            return
        self.model.set_melodies(corpus.melodies)
        s = corpus.summary()
        splits = s.get("splits", {})
        self._summary_text = (
            f"<b>{self.state.corpus_label}</b>: {s.get('melodies', len(corpus.melodies))} melodies from "
            f"{s.get('files', '?')} files, {s.get('bars', '?')} bars, {s.get('tokens', '?')} tokens "
            f"(train {splits.get('train', 0)}, valid {splits.get('valid', 0)}, test {splits.get('test', 0)}). "
            f"{len(corpus.skipped)} skipped."
        )
        self.summary.setText(self._summary_text)
        self._fill_report(s.get("skipped", []), s.get("warnings", []),
                          f"{self.state.corpus_label}: {s.get('files', '?')} files read", s.get("sources", ()))
        if self.proxy.rowCount():
            self.table.selectRow(0)

    def show_failed_load(self, corpus, label: str) -> None:
        """A load that gave no melody at all: every file it skipped, and why (the corpus in use stays)."""
        s = corpus.summary()
        kept = f"; still using the {self.state.corpus_label}" if self.state.corpus is not None else ""
        self._fill_report(s.get("skipped", []), s.get("warnings", []),
                          f"<b>{label}</b>: no usable melody in {s.get('files', '?')} files{kept}", s.get("sources", ()))

    def _fill_report(self, skipped: list[dict], warnings: list[dict], heading: str, sources=()) -> None:
        rows = [(d["path"], "skipped", d["reason"]) for d in skipped]
        rows += [(d["path"], "warning", d["warning"]) for d in warnings]
        self.report.setSortingEnabled(False)
        self.report.setRowCount(len(rows))
        for r, (path, kind, reason) in enumerate(rows):
            for c, text in enumerate((_relative(path, sources), kind, reason)):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{path}\n{reason}")
                self.report.setItem(r, c, item)
        self.report.setSortingEnabled(True)
        self.report_summary.setText(
            f"{heading}. {len(skipped)} skipped, {len(warnings)} warning{'s' if len(warnings) != 1 else ''}"
            + ("." if rows else ": every file gave at least one melody.")
        )

    def select_tune(self, row_in_proxy: int) -> None:
        self.table.selectRow(row_in_proxy)

    def show_corpus_melody(self, position: int) -> None:
        """Select the corpus's melody at `position` (its place in the corpus) and show it, clearing a search
        that hides it (the Listen tab's "Show in the Corpus tab" on a copied bar)."""
        index = self.proxy.mapFromSource(self.model.index(position, 0))
        if not index.isValid():
            self.search.clear()
            index = self.proxy.mapFromSource(self.model.index(position, 0))
        self.table.selectRow(index.row())
        self.table.scrollTo(index)

    def _show_selected(self, current, _previous) -> None:
        if not current.isValid():
            return
        if self.playback.is_playing(self):
            self.playback.stop()
        melody = self.model.melody(self.proxy.mapToSource(current).row())
        self._current = melody
        self.tune_title.setText(melody.title or melody.tune_id)
        meta = melody.meta
        self.tune_info.setText(
            f"{meta.get('collection', '')}  ·  {melody.meter}  ·  {melody.key}  ·  {melody.n_bars} bars  ·  "
            f"{melody.tempo_qpm:.0f} bpm  ·  {meta.get('split', '')} split  ·  {melody.tune_id}"
        )
        self.roll.set_parts([(melody, TUNE_COLOUR, 0, melody.title or "tune")])
        self.roll.show_bars(0, 16)  # a readable first view; the rest is a drag away
        self.play_button.setEnabled(True)

    @property
    def current_melody(self):
        return self._current

    def selected_melodies(self) -> list:
        rows = sorted({self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.melody(r) for r in rows]

    def export_selected(self, folder: str | None = None) -> list:
        """The selected tunes, one MIDI file each (named by tune id), into a folder asked for; says where."""
        from engine.music.export import write_midi

        melodies = self.selected_melodies()
        if not melodies:
            self.state.status.emit("Select one or more tunes in the list to export them.")
            return []
        if folder is None:
            folder = settings.ask_folder(self, f"Export {len(melodies)} selected tune(s) as MIDI into", "dirs/export")
            if not folder:
                self.state.status.emit("Export cancelled: nothing was written.")
                return []
        written = []
        for melody in melodies:
            stem = "".join(c if c.isalnum() or c in "-_. " else "_" for c in (melody.tune_id or "tune"))
            stem = stem.removesuffix(".mid").removesuffix(".midi")
            try:
                written.append(write_midi(Path(folder) / f"{stem}.mid", melody, track_name=melody.title or "Melody"))
            except Exception as exc:  # shown to the user; the rest would fail the same way
                self.window().show_error("Export failed", exc)
                break
        if written:
            self.state.status.emit(f"Wrote {len(written)} MIDI file{'s' if len(written) != 1 else ''} to {folder}")
        return written

    # ---- sound ---------------------------------------------------------------------------------
    def play_stop(self) -> None:
        if self.playback.is_playing(self):
            self.playback.stop()
        elif self._current is not None:
            self.playback.play(self, self._current, self.roll)

    def _playback_changed(self) -> None:
        self.play_button.setText("Stop" if self.playback.is_playing(self) else "Play")


def _relative(path: str, sources) -> str:
    """A file's path inside the folder the user opened (the full path stays in the tooltip)."""
    for source in sources or ():
        folder = Path(source)
        if folder.is_dir():
            try:
                return str(Path(path).relative_to(folder))
            except ValueError:
                continue
    return path
