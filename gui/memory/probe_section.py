"""The theme-recall probe: a random motif, g bars of random filler, the motif again; accuracy on the repeat
against the gap, with chance drawn. The report's probe runs three seeds per model in real bars of the
meter (16 steps in 4/4): the plot draws the mean over seeds with the seeds' spread as a band. Its Run
button trains fresh small models in the background (one seed: the app's quick look)."""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel

from .. import settings, style, workers
from ..plots import CaptionedPlot, Series
from ..setting_fields import setting_field
from . import controls_data, report_data
from .report_data import floats

CAPTION = ("A motif, g bars of random filler, the motif again: accuracy on the repeat. Dotted line = chance. "
           "Which models still recall the motif across long gaps?")


class _MessageRelay(QObject):
    message = Signal(str, int, int)  # what the probe does, the steps done over every model, of how many


class ProbeSection(QObject):
    finished = Signal()

    def __init__(self, tab):
        super().__init__(tab)
        self.tab = tab
        self._job = None
        self._cancel: threading.Event | None = None
        self.plot = CaptionedPlot("Theme-recall probe", CAPTION, "gap g (bars)", "accuracy", value_format="{:.2f}",
                                  log_x=True)  # gaps double (1, 2, 4 ... 32): on a linear axis the short ones pile up
        from engine.memory.probe import PROBE_SETTINGS

        self.gaps = setting_field(PROBE_SETTINGS["gaps"], settings.read("memory/probe_gaps", "1, 2, 4, 8"))
        self.gaps.setMaximumWidth(140)
        self.steps = setting_field(PROBE_SETTINGS["train_steps"], settings.read("memory/probe_steps", _default_steps()))
        self.button = style.button("Run probe", self.run, "Train fresh models on the synthetic probe")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("gaps"))
        controls.addWidget(self.gaps)
        controls.addWidget(QLabel("steps"))
        controls.addWidget(self.steps)
        controls.addWidget(self.button)
        controls.addStretch(1)
        self.plot.layout().insertLayout(1, controls)

    @property
    def running(self) -> bool:
        return self._job is not None

    def stop_event(self):
        return self._cancel

    def probe_settings(self):
        """The fields' settings, checked by their table (a refusal names the field by its label)."""
        from engine.memory.probe import ProbeSettings

        probe = ProbeSettings(gaps=self.gaps.text(), train_steps=self.steps.value(), seeds=1)  # one seed: the quick look
        probe.validate()
        return probe

    def run(self, probe_settings=None):
        if self._job is not None:
            return None
        from engine.memory.probe import progress_done, progress_line, run_probe

        try:
            probe_settings = probe_settings or self.probe_settings()
        except Exception as exc:  # a typo in the gaps field
            self.tab.main_window.show_error("Theme-recall probe", exc)
            return None
        settings.write("memory/probe_gaps", self.gaps.text())
        settings.write("memory/probe_steps", self.steps.value())
        from engine.models.registry import MODEL_KEYS

        keys = self.tab.state.ordered_model_keys() or list(MODEL_KEYS)
        self._cancel = threading.Event()
        messages = _MessageRelay(self)
        messages.message.connect(self._progress)

        def progress(event: dict) -> None:  # which model of how many and how far, the bar over the whole probe
            if event["step"] % 20 == 0 or event["step"] == event["steps"]:
                messages.message.emit(f"training {progress_line(event)}", *progress_done(event))

        self.tab.cancel_button.setEnabled(True)
        style.pass_focus(self.button, self.tab.cancel_button)
        self.button.setEnabled(False)
        self.tab.state.set_busy("probe", f"Probe: training {len(keys)} models on the synthetic task ...")
        self._job = workers.start_job(
            run_probe, keys, probe_settings, progress, self._cancel,
            cancel=self._cancel, on_return=self._returned, on_error=self._error, on_finish=self._finished,
            owner=self.tab,
        )
        self._job.finished.connect(lambda: messages.deleteLater())
        return self._job

    def _progress(self, text: str, step: int, steps: int) -> None:
        self.tab.status.setText(f"probe: {text}")
        self.tab.state.set_busy("probe", f"Probe: {text}", step, steps)

    def _returned(self, probe: dict) -> None:
        self.show_probe(probe)
        if self.tab.report is not None:
            self.tab.report["probe"] = probe
        self.tab.status.setText("probe finished")
        self.finished.emit()

    def show_probe(self, probe: dict, report: dict | None = None) -> None:
        plot = self.plot
        plot.clear()
        gaps = np.asarray(probe["gaps"], dtype=float)
        seeds = controls_data.probe_seeds(probe, report)
        plot.hline(probe["chance"], "floor")  # chance in the floor's colour and line style
        keys = report_data.models({"models": list(probe.get("models", {}))})
        for key in keys:
            record = probe["models"][key]
            spread = seeds.spread.get(key)
            if spread is not None:  # the seeds' range: no band from one seed
                lo, hi, n = spread
                plot.line(key, gaps, floats(record["accuracy"]), lo, hi, symbol="o", n=np.full(len(gaps), n))
                plot.series[style.model_label(key)].note = "seeds' range in brackets, n seeds"
            else:
                plot.line(key, gaps, floats(record["accuracy"]), symbol="o")
        plot.series["chance"] = Series(gaps, np.full(len(gaps), probe["chance"]), "floor")
        plot.plot.setYRange(0, 1.02, padding=0)
        plot.plot.getAxis("bottom").setTicks([[(np.log10(g), f"{g:g}") for g in gaps], []])
        bar = f"bars of {seeds.steps_per_bar} steps" if seeds.steps_per_bar else "bars"
        runs = f"{len(seeds.seeds)} seeds per model, band = their range" if len(seeds.seeds) >= 2 else "one seed"
        plot.title.setText(f"<b>Theme-recall probe</b> (gaps in {bar}, {runs})")
        plot.caption.setText(CAPTION + (" Its figures move with the seed and the platform (threads, CPU): "
                                        "read the spread, not one run." if len(seeds.seeds) >= 2 else
                                        " One seed: its figures can move with the seed and the platform."))

    def _error(self, exc) -> None:
        from engine.memory.probe import ProbeCancelled

        if isinstance(workers.unwrap(exc), ProbeCancelled):
            self.tab.status.setText("probe cancelled")
            return
        self.tab.main_window.show_error("Theme-recall probe failed", exc)

    def _finished(self) -> None:
        self._job = None
        self._cancel = None
        self.tab.state.set_busy("probe", None)
        self.button.setEnabled(True)
        self.tab.job_finished()


def _default_steps() -> int:
    """The probe's own default budget: its recipe (engine/memory/probe.py) is tuned for it."""
    from engine.memory.probe import ProbeSettings

    return ProbeSettings.train_steps
