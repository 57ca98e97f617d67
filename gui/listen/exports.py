"""The Listen tab's exports: one row, or every row with music, as MIDI (at once) or WAV (rendered in the
background). A mixin of ListenTab: it uses the tab's rows, primer and messages."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from .. import settings, style, workers
from .row import ListenRow

CANCELLED = "Export cancelled: nothing was written."


class RowExports:
    def _stem(self, row: ListenRow) -> str:
        tune = (self._primer.tune_id or "primer").replace("/", "_").replace("#", "-") if self._primer else "primer"
        return f"{tune}-{row.key}"

    def _ask_file(self, row: ListenRow, kind: str) -> str:
        """A file name for one row's MIDI or WAV, asked in the last export folder ("" when cancelled)."""
        suffix = ".mid" if kind == "MIDI" else ".wav"
        start = Path(settings.read("dirs/export", str(Path.home()))) / f"{self._stem(row)}{suffix}"
        what = "the real continuation" if row.key == "human" else f"the {style.model_label(row.key)}'s continuation"
        path, _ = QFileDialog.getSaveFileName(self, f"Export {what} (with its primer) as {kind}", str(start),
                                              f"{kind} files (*{suffix})")
        if path:
            settings.write("dirs/export", str(Path(path).parent))
        else:
            self._say(CANCELLED)
        return path

    def export_row_midi(self, row: ListenRow, path: str | None = None):
        if row.melody is None:
            return None
        path = path or self._ask_file(row, "MIDI")
        if not path:
            return None
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
            folder = settings.ask_folder(self, f"Export all {len(rows)} rows (each with its primer) as MIDI into",
                                         "dirs/export")
            if not folder:
                self._say(CANCELLED)
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
        path = path or self._ask_file(row, "WAV")
        if not path:
            return None
        return self._write_wavs([(row, Path(path))])

    def export_wav(self, folder: str | None = None):
        rows = [r for r in self.rows if r.melody is not None]
        if not rows:
            self._say("nothing to export yet: press Generate first")
            return None
        if folder is None:
            folder = settings.ask_folder(self, f"Export all {len(rows)} rows (each with its primer) as WAV into",
                                         "dirs/export")
            if not folder:
                self._say(CANCELLED)
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

        what = f"{len(jobs)} WAV file{'s' if len(jobs) > 1 else ''}"
        self._say(f"rendering {what} ...")
        self.state.set_busy("wav", f"Rendering {what} into {targets[0][1].parent} ...")
        return workers.start_job(
            work,
            on_return=lambda paths: self._say(
                f"wrote {paths[0]}" if len(paths) == 1 else f"wrote {len(paths)} WAV files to {paths[0].parent}"),
            on_error=lambda exc: self.window().show_error("WAV export failed", exc),
            on_finish=lambda: self.state.set_busy("wav", None),
            owner=self,
        )
