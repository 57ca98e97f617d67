"""What the Memory tab draws, in the order it shows it: recall by distance, the sampled continuations under
their controls (the view bar, the per-bar plots, the summary, the sweep and the matched plots, the paired
differences), influence, the model-side measures, the probe and the self-similarity heatmaps.

Seventeen plots take about a second to build (pyqtgraph makes each plot's menus and axes), so the tab
builds them when they are first needed (the tab is first shown, or something asks for a view) rather than
at every launch: a person who never opens the Memory tab never waits for it.
"""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from . import report_data
from .controls_section import ControlPlots
from .influence_section import InfluenceSection
from .model_side import ModelSidePlots
from .paired_table import PairedTable
from .per_bar_section import PerBarPlots
from .probe_section import ProbeSection
from .recall_section import RecallSection
from .self_similarity_section import SelfSimilarity
from .summary import SummaryGroup
from .view_bar import ViewBar


class MemoryViews(QWidget):
    """The tab's scrolling body: every view of a report, drawn by show_report and emptied by clear."""

    def __init__(self, tab):
        super().__init__()
        self.recall = RecallSection()
        self.view_bar = ViewBar()
        self.sampled_title = QLabel("<b>What the models compose</b>: sampled continuations of the test tunes' "
                                    "openings, scored bar by bar against the opening and against a floor")
        self.sampled_title.setWordWrap(True)
        self.sampled_header = QWidget()
        header = QVBoxLayout(self.sampled_header)
        header.setContentsMargins(4, 12, 4, 0)
        header.addWidget(self.sampled_title)
        header.addWidget(self.view_bar)
        self.sampled_header.hide()  # until a report is shown
        self.per_bar = PerBarPlots()
        self.controls = ControlPlots()
        self.paired = PairedTable()
        self.influence = InfluenceSection()
        self.model_side = ModelSidePlots()
        self.probe = ProbeSection(tab)
        self.self_similarity = SelfSimilarity()
        self.summary = SummaryGroup()
        self._tab = tab  # its report is the one drawn (a view-bar choice redraws it)
        self.view_bar.changed.connect(self.draw_view)
        self.setLayout(self._grid())

    def _grid(self) -> QGridLayout:
        """Half-width panels two to a row; recall by distance, the tables, the influence pair and the
        heatmaps span the width."""
        halves = list(self.per_bar.plots.values())
        grid = QGridLayout()
        grid.addWidget(self.recall, 0, 0, 1, 2)
        grid.addWidget(self.sampled_header, 1, 0, 1, 2)
        grid.addWidget(halves[0], 2, 0)
        grid.addWidget(halves[1], 2, 1)
        grid.addWidget(self.summary, 3, 0, 1, 2)
        rest = [*halves[2:], self.controls.sweep_plot, self.controls.matched_plot, self.controls.all_bars_plot]
        row = 4
        for i in range(0, len(rest), 2):
            for j, widget in enumerate(rest[i:i + 2]):
                grid.addWidget(widget, row, j)
            row += 1
        for widget in (self.paired, self.influence):
            grid.addWidget(widget, row, 0, 1, 2)
            row += 1
        for left, right in [*self.model_side.pairs, (self.model_side.repeat_plot, self.probe.plot)]:
            grid.addWidget(left, row, 0)
            grid.addWidget(right, row, 1)
            row += 1
        grid.addWidget(self.self_similarity, row, 0, 1, 2)
        return grid

    def show_report(self, report: dict) -> None:
        """Draw the tab's report (`report` is the tab's own, set before this is called)."""
        keys = report_data.models(report)
        self.recall.show_report(report)
        self.view_bar.build(report)
        self.sampled_header.show()
        self.draw_view()
        self.influence.show_report(report)
        self.model_side.draw(report, keys)
        self.self_similarity.show_report(report)
        if report.get("probe"):
            self.probe.show_probe(report["probe"], report)
        else:
            self.probe.plot.clear()

    def draw_view(self, changed: str = "temperature") -> None:
        """What depends on the view bar: the per-bar plots on every choice; the temperature's other views
        (the sweep, the distinct-bar rates, the paired differences, the summary) when it changes."""
        report, view = self._tab.report, self.view_bar.view
        if report is None:
            return
        self.per_bar.draw(report, view, self.view_bar.words(report))
        if changed != "temperature":
            return
        self.controls.draw(report, view)
        self.paired.show_report(report, view.temperature)
        self.summary.show_report(report, view.temperature)

    def clear(self) -> None:
        """No report: empty plots rather than another run's figures."""
        self.recall.clear()
        self.per_bar.clear()
        self.controls.clear()
        self.paired.clear()
        self.influence.clear()
        for plot in [*self.model_side.all(), self.probe.plot]:
            plot.clear()
        self.self_similarity.clear()
        self.summary.clear()
        self.sampled_header.hide()
