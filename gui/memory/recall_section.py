"""The tab's first plot: recall by distance (issue 23). Teacher-forced, no sampling and no temperature: how
many bits per token a model loses on a bar when the earlier bars that resemble it are replaced by foreign
bars of the same rhythm, minus the same replacement of unrelated bars (the control), against how far back
those bars are. One line per model with its interval band, the control dotted beside it (a toggle),
where each model's context ends (attention span, reach, training crop), n tunes under each bucket, and
bars of 4/4 on the top axis. The seed switch shows the mean over the training seeds, each seed overlaid,
or one seed."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QButtonGroup, QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .. import style
from ..plots import CaptionedPlot, Series
from . import recall_data, report_data
from .recall_data import EACH_SEED, MEAN_OVER_SEEDS, STEPS_PER_BAR_4_4
from .view_bar import switch

SEED_LINES = ("solid", "dashed", "dotted", "dashdot")  # each seed overlaid: one style per seed
CAPTION = (
    "Bits per token a model loses on a bar when the earlier bars that resemble it are replaced by foreign bars "
    "of the same rhythm, minus the loss when as many unrelated bars are replaced (the control, dotted): above 0, "
    "the model uses what it heard that far back. Band: 95% interval over tunes; nothing is drawn where fewer "
    "than min_n tunes reach a distance. Vertical lines: where a model's context ends (hover one).")


class RecallSection(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.report: dict | None = None
        self.seed = MEAN_OVER_SEEDS
        self.plot = CaptionedPlot("Recall by distance", CAPTION, "distance back to the resembling bar (16th-note "
                                  "steps, log scale; n tunes under each bucket)", "recall excess (bits/token)",
                                  log_x=True, height=280, value_format="{:.3f}", hover_point_name="distance")
        self.plot.setObjectName("recallByDistance")
        item = self.plot.plot.getPlotItem()
        item.showAxis("top")
        item.getAxis("top").setLabel("bars of 4/4")
        item.getAxis("top").enableAutoSIPrefix(False)
        self.seed_label = QLabel("training seeds")
        self.seed_group = QButtonGroup(self)
        self.seed_buttons: dict[str, object] = {}
        self.seed_row = QHBoxLayout()
        self.seed_row.setSpacing(2)
        self.control_box = QCheckBox("show the control")
        self.control_box.setChecked(True)
        self.control_box.setToolTip("The same replacement applied to as many unrelated bars: models with attention "
                                    "draw on unrelated bars too, so their control is not 0")
        self.control_box.toggled.connect(lambda _on: self.redraw())
        controls = QHBoxLayout()
        controls.addWidget(self.seed_label)
        controls.addLayout(self.seed_row)
        controls.addSpacing(16)
        controls.addWidget(self.control_box)
        controls.addStretch(1)
        self.plot.layout().insertLayout(1, controls)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def clear(self) -> None:
        self.report = None
        self.plot.clear()

    def show_report(self, report: dict) -> None:
        self.report = report
        self._build_seeds(recall_data.seeds(report))
        self.redraw()

    def _build_seeds(self, seeds: list[str]) -> None:
        for button in self.seed_buttons.values():
            self.seed_group.removeButton(button)
            self.seed_row.removeWidget(button)
            button.hide()
            button.deleteLater()
        self.seed_buttons = {}
        if len(seeds) >= 2:  # one seed: nothing to switch
            choices = {MEAN_OVER_SEEDS: ("mean over seeds", f"The mean over the {len(seeds)} training seeds"),
                       EACH_SEED: ("each seed", "Every seed's curve overlaid: solid, dashed, dotted")}
            choices.update({s: (f"seed {s}", f"The models trained with seed {s} only") for s in seeds})
            for seed, (text, tip) in choices.items():
                button = switch(text, tip)
                style.on_click(button, lambda s=seed: self.choose_seed(s))
                self.seed_group.addButton(button)
                self.seed_row.addWidget(button)
                self.seed_buttons[seed] = button
        if self.seed not in self.seed_buttons:
            self.seed = MEAN_OVER_SEEDS
        if self.seed in self.seed_buttons:
            self.seed_buttons[self.seed].setChecked(True)
        self.seed_label.setVisible(len(seeds) >= 2)

    def choose_seed(self, seed: str) -> None:
        self.seed = seed
        if seed in self.seed_buttons:
            self.seed_buttons[seed].setChecked(True)
        self.redraw()

    # ---- drawing ----------------------------------------------------------------------------------
    def redraw(self) -> None:
        plot = self.plot
        plot.clear()
        report = self.report
        if report is None:
            return
        keys = report_data.models(report)
        plot.min_n = report_data.min_n(report)
        if not recall_data.has_recall(report):
            plot.title.setText("<b>Recall by distance</b>")
            plot.set_notice("This report has no recall by distance:\nit was made before the measure existed. "
                            "Evaluate again to measure it.")
            return
        seeds = recall_data.seeds(report)
        if self.seed == EACH_SEED:
            shown = self._draw_each_seed(report, keys, seeds)
            which = f"each of {len(seeds)} seeds overlaid (no bands)"
        else:
            found = recall_data.curves(report, keys, self.seed)
            for curve in found.values():
                self._draw_curve(curve, style.model_label(curve.key), None, band=True)
                if self.control_box.isChecked() and curve.control is not None:
                    plot.line(curve.key, curve.x, curve.control, name=f"{style.model_label(curve.key)}: control",
                              line_style="dotted", width=1.3, in_readout=False)  # the model's line says it
            shown = list(found.values())
            which = (f"seed {self.seed}" if self.seed else
                     f"mean over {len(seeds)} training seeds" if len(seeds) >= 2 else "one training seed")
        plot.title.setText(f"<b>Recall by distance</b> (teacher-forced on the test tunes, {which})")
        plot.hline(0.0, "floor")
        self._axes(shown)
        if not shown:
            plot.set_notice("This report has recall by distance for none of its models.")
        elif not any(np.isfinite(c.mean).any() for c in shown):
            plot.set_notice(f"Nothing to draw: fewer than min_n = {plot.min_n} tunes at every distance.")

    def _draw_each_seed(self, report: dict, keys: list[str], seeds: list[str]) -> list:
        """Every seed's curve, a line style per seed; the readout gives one line per model with its seeds."""
        by_seed = {seed: recall_data.curves(report, keys, seed) for seed in seeds}
        for i, (seed, found) in enumerate(by_seed.items()):
            for curve in found.values():
                self._draw_curve(curve, f"{style.model_label(curve.key)}, seed {seed}", SEED_LINES[i % len(SEED_LINES)],
                                 band=False, in_readout=False)
        for key in keys:
            curves = [found[key] for found in by_seed.values() if key in found]
            if curves:
                texts = [", ".join("-" if not np.isfinite(c.mean[j]) else f"{c.mean[j]:.3f}" for c in curves)
                         for j in range(len(curves[0].mean))]
                n = curves[0].n_tunes
                self.plot.series[style.model_label(key)] = Series(
                    curves[0].x, curves[0].mean, key,
                    texts=[f"seeds {t}" + (f", n {int(n[j])}" if n is not None and np.isfinite(n[j]) else "")
                           for j, t in enumerate(texts)])
        return [c for found in by_seed.values() for c in found.values()]

    def _draw_curve(self, curve, name: str, line_style: str | None, band: bool, in_readout: bool = True) -> None:
        least = self.plot.min_n
        mean = curve.mean.copy()
        if curve.n_tunes is not None and least is not None:
            mean = np.where(curve.n_tunes >= least, mean, np.nan)  # the report's rule, kept if a report broke it
        lo = hi = None
        if band and curve.lo is not None and curve.hi is not None:
            enough = np.isfinite(mean) & (curve.n_tunes >= 2 if curve.n_tunes is not None else True)
            lo, hi = np.where(enough, curve.lo, np.nan), np.where(enough, curve.hi, np.nan)
        notes = None
        if curve.n is not None:
            notes = [f"{int(v)} target bars" if np.isfinite(v) else "" for v in curve.n]
            if curve.control is not None:
                notes = [f"{note}; control {c:.3f}" if np.isfinite(c) else note
                         for note, c in zip(notes, curve.control)]
        self.plot.line(curve.key, curve.x, mean, lo, hi, name=name, symbol="o", n=curve.n_tunes,
                       line_style=line_style, notes=notes, in_readout=in_readout)

    def _axes(self, shown: list) -> None:
        """Ticks at the buckets with n tunes under each, bars of 4/4 on top, the window marks, and an x
        range that holds every bucket and mark."""
        plot = self.plot
        buckets = shown[0].buckets if shown else []
        xs = shown[0].x if shown else []
        ticks = []
        for i, (b, x) in enumerate(zip(buckets, xs)):  # under each point: its bucket and n tunes
            n = recall_data.n_label(shown, i)
            ticks.append((np.log10(x), f"{b.label}\n{n}" if n else b.label))
            plot.point_names[float(x)] = f"distance {b.label} steps ({_bars_words(b)} in 4/4)"
        plot.plot.getAxis("bottom").setTicks([ticks, []])
        marks = recall_data.window_marks(self.report, report_data.models(self.report))
        for i, mark in enumerate(marks):
            plot.vline(mark.steps, mark.colour, mark.short, mark.line_style, label_at=0.95 - 0.1 * (i % 3),
                       tip=mark.tip)
        edges = [b.low for b in buckets] + [b.high for b in buckets] + list(xs) + [m.steps for m in marks]
        low, high = (min(edges), max(edges)) if edges else (8, 1024)
        plot.plot.setXRange(np.log10(low) - 0.05, np.log10(high) + 0.05, padding=0)
        top = [b for b in (1, 2, 4, 8, 16, 32, 64, 128) if low <= b * STEPS_PER_BAR_4_4 <= high * 1.05]
        plot.plot.getAxis("top").setTicks([[(np.log10(b * STEPS_PER_BAR_4_4), str(b)) for b in top], []])
        values = [v for s in plot.series.values() for v in (s.y, s.lo, s.hi) if v is not None]
        values += [y for _x, y in plot.drawn.values()]
        values = np.concatenate([np.asarray(v, dtype=float) for v in values]) if values else np.zeros(1)
        values = values[np.isfinite(values)]
        top_value = max(0.1, float(values.max())) if len(values) else 0.5
        bottom_value = min(-0.05, float(values.min())) if len(values) else -0.05
        plot.plot.setYRange(bottom_value - 0.02, top_value * 1.08, padding=0)


def _bars_words(b) -> str:
    return f"{b.low / STEPS_PER_BAR_4_4:g}-{(b.high + 1) / STEPS_PER_BAR_4_4:g} bars"
