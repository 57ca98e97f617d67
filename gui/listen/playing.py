"""Playing the Listen tab's rows: a row's Play button, Space (the current row, or the first with music) and the
arrows, which go from row to row playing each while something plays. A mixin of ListenTab."""

from __future__ import annotations

from PySide6.QtCore import Qt

from .row import ListenRow


class RowPlaying:
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
