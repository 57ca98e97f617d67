"""What each composed note drew on, for the Listen tab: after Generate a background job attributes the
continuations the rows show (gui/influence_view.py), one lookup table per row as each is done; a newer
Generate or another variation cancels it. A mixin of ListenTab (its rows, primer, results and model lock)."""

from __future__ import annotations

import threading

from .. import workers
from ..influence_view import compute_all, summary_text


class NoteSources:
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
        from engine.memory.influence import methods_for

        # one table per model and method (gradient; attention where the model has it), and the human row's
        total = sum(len(methods_for(m.model)) for m in models.values())
        self._influence_progress = [0, total + (human is not None and human.melody is not None)]
        self._say_influence_progress()
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
        self.state.set_busy("influence", None)

    def _say_influence_progress(self) -> None:
        done, total = self._influence_progress
        self.state.set_busy("influence", f"Finding what each note drew on: {done} of {total} rows", done, total)

    def _influence_ready(self, result) -> None:
        key, method, table = result
        self.influence.add(key, method, table)
        self._influence_progress[0] += 1
        self._say_influence_progress()
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
        self.state.set_busy("influence", None)
        if self.influence.ready():
            self.status.setText(self._influence_text)
        self.influenceFinished.emit()
