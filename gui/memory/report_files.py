"""The Memory tab's report files (issue 25 items 8, 10, 11): the list of reports made on the loaded models
(each with its date and primer count, the shipped one always among them), Open report for a report file
of any name, and Export, which asks where, names what it exports, writes in a background job with
visible progress (the window stays responsive) and says where the files went."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog

from .. import loading, settings, style, workers
from . import saved_reports

PROGRESS_MS = 200
OPEN_FILTER = "Memory reports (*.json);;All files (*)"


class ReportFiles(QObject):
    exported = Signal(str)  # the folder the report was written to

    def __init__(self, tab):
        super().__init__(tab)
        self.tab = tab
        self.listed: list[saved_reports.Listed] = []
        self.box = QComboBox()
        self.box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.box.setToolTip("The reports made on the loaded models, newest first; the shipped report stays here "
                            "after any Evaluate")
        self.box.setAccessibleName("reports of these models")
        self.box.activated.connect(self._chosen)
        self.open_button = style.button("Open report ...", self.open_dialog, "Show a report file made earlier")
        self.export_button = style.button("Export report ...", self.export,
                                          "Write the report shown (JSON, CSV, PNG plots, summary) into a folder")
        self.export_button.setEnabled(False)
        self._job = None
        self._timer = QTimer(self)
        self._timer.setInterval(PROGRESS_MS)
        self._timer.timeout.connect(self._progress)
        self._export_started = 0.0
        self._export_folder: Path | None = None
        self._files_written: list = []

    # ---- the list of reports --------------------------------------------------------------------
    def refresh(self, shown: Path | None = None) -> list:
        """List the reports made on the loaded models (each read once, to check it was made on them and count
        its primers); `shown` is selected. Returns [(Listed, report)]."""
        state = self.tab.state
        found = []
        if state.run_dir is not None and state.models:
            found = saved_reports.listed_reports(state.run_dir, state.models, loading.is_bundled(state.run_dir))
        self.listed = [entry for entry, _report in found]
        self.box.blockSignals(True)
        self.box.clear()
        for entry in self.listed:
            self.box.addItem(entry.text(), str(entry.path))
        self.box.blockSignals(False)
        self.select(shown)
        return found

    def select(self, path: Path | None) -> None:
        """Show `path` as the report chosen; one opened from elsewhere is added on top of the list."""
        self.box.blockSignals(True)
        for i in reversed(range(self.box.count())):  # an earlier "opened ..." entry gives way
            if self.box.itemText(i).startswith("opened ") and self.box.itemData(i) != str(path):
                self.box.removeItem(i)
        index = self.box.findData(str(path)) if path is not None else -1
        if index < 0 and path is not None:
            self.box.insertItem(0, f"opened {Path(path).name}", str(path))
            index = 0
        self.box.setCurrentIndex(max(index, 0))
        self.box.setVisible(self.box.count() > 0)
        self.box.blockSignals(False)

    def _chosen(self, index: int) -> None:
        path = self.box.itemData(index)
        entry = next((e for e in self.listed if str(e.path) == path), None)
        if entry is None:
            return
        try:
            report = saved_reports.read_report(entry.path)
        except Exception as exc:  # removed or damaged since it was listed
            self.tab.main_window.show_error("Could not open the report", exc)
            return
        self.tab.show_listed(entry, report)

    # ---- opening ---------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.tab, "Open a memory report", settings.read("dirs/report", ""),
                                              OPEN_FILTER)
        if path:
            settings.write("dirs/report", str(Path(path).parent))
            self.tab.open_report(path)

    # ---- exporting -------------------------------------------------------------------------------
    @property
    def exporting(self) -> bool:
        return self._job is not None

    def export(self, folder: str | None = None):
        """Ask where (naming the report), then write it in the background; returns the job."""
        report = self.tab.report
        if report is None:
            self.tab.say("Nothing to export yet: press Evaluate or open a report first.")
            return None
        if self._job is not None:
            self.tab.say(f"Already exporting the report into {self._export_folder}.")
            return None
        what = self.tab.report_words()
        if folder is None:
            folder = settings.ask_folder(self.tab, f"Export the memory report ({what}) into a folder", "dirs/report")
            if not folder:
                self.tab.say("Export cancelled: nothing was written.")
                return None
        from engine.core.errors import UserError
        from engine.evaluation.report import write_report
        from engine.evaluation.report_folder import check_report_folder, report_bytes_of, write_whole

        try:  # a folder that cannot take the report is said now, not after half of it is written
            check_report_folder(folder, report_bytes_of(report))
        except UserError as exc:
            self.tab.say(f"Export cancelled: {exc}", status_bar=True)
            return None
        self._export_folder = Path(folder)
        self._export_started = time.monotonic()
        self._files_written = []  # appended by write_report in the worker thread, as each file is written
        self.export_button.setEnabled(False)
        self.tab.busy(True)
        self.tab.say(f"Exporting the memory report ({what}) into {folder} ...", status_bar=True)
        self.tab.state.set_busy("export", f"Exporting the memory report into {folder} ...")
        self._timer.start()
        # Written whole or not at all: a full disk mid-way leaves the folder as it was
        self._job = workers.start_job(write_whole, report, Path(folder),
                                      lambda doc, staging: write_report(doc, staging, self._files_written.append),
                                      on_return=self._written,
                                      on_error=self._failed, on_finish=self._done, owner=self.tab)
        return self._job

    def _progress(self) -> None:
        seconds = time.monotonic() - self._export_started
        files = len(self._files_written)  # the report's own files: the folder may hold thousands of others
        self.tab.say(f"Exporting the memory report into {self._export_folder}: {files} files written "
                     f"({seconds:.0f} s) ...")
        self.tab.state.set_busy("export", f"Exporting the memory report: {files} files written ({seconds:.0f} s)")

    def _written(self, written: list) -> None:
        paths = [Path(p) for p in written]
        plots = sum(p.suffix == ".png" for p in paths)
        tables = sum(p.suffix == ".csv" for p in paths)
        folder = self._export_folder
        self.tab.say(f"Report written to {folder}: {len(paths)} files (report.json, summary.md, {plots} plots, "
                     f"{tables} CSV tables).", status_bar=True)
        self.exported.emit(str(folder))

    def _failed(self, exc) -> None:
        self.tab.say(f"Exporting the report into {self._export_folder} failed (see the message).")
        self.tab.main_window.show_error("Export failed", exc)

    def _done(self) -> None:
        self._timer.stop()
        self._job = None
        self.tab.state.set_busy("export", None)
        self.tab.busy(False)
        self.export_button.setEnabled(self.tab.report is not None)
