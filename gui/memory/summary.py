"""The Memory tab's summary table: one row per model (all the report has, in the registry's order), the
human reference and the floor, every figure with its interval and the number of cases it rests on
(docs/design.md section 5); each model's memory horizon from recall by distance leads, per seed too."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from .. import style
from . import controls_data, recall_data, report_data

MISSING = "-"
FAILS_COLOUR = "#b00020"


def interval_text(value: dict | None, fmt: str = "{:.3f}") -> str:
    """ "0.218 [0.192, 0.246]\\nn 135", "-\\nn 4 < 10" (no mean from too few), or "-"."""
    if not isinstance(value, dict):
        return MISSING
    n = value.get("n")
    if value.get("mean") is None:
        return MISSING if n is None else f"{MISSING}\nn {n}"
    text = fmt.format(value["mean"])
    if value.get("lo") is not None and value.get("hi") is not None:
        text += f" [{fmt.format(value['lo'])}, {fmt.format(value['hi'])}]"
    return text if n is None else f"{text}\nn {n}"


class SummaryTable(QTableWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setMinimumHeight(200)
        self.setWordWrap(False)  # a cell's lines are its own ("value [interval]", "n ...")
        self.horizontalScrollBar().rangeChanged.connect(self._fit_height)
        self.columns: list[tuple[str, str, str]] = []  # (field, header, tooltip)
        self._natural: list[int] = []  # each column's width for its widest line
        self._matched: dict = {}
        self._horizons: dict = {}
        self._seed_horizons: dict = {}

    def column(self, field: str) -> int:
        """The column index of a summary field (ValueError when it is not shown)."""
        return [c[0] for c in self.columns].index(field)

    def cell(self, source: str, field: str) -> str:
        """What the table shows for a source (a model key, "human" or "floor") and a field."""
        for r in range(self.rowCount()):
            if self.item(r, 0).data(Qt.ItemDataRole.UserRole) == source:
                return self.item(r, self.column(field)).text()
        raise KeyError(source)

    def fill(self, report: dict, temperature: str | None) -> None:
        first, last = report_data.first_last_bars(report)
        influence = report_data.influence(report)
        tolerance = next((em.get("length_tolerance_bits") for em in (report.get("effective_memory") or {}).values()
                          if em.get("length_tolerance_bits") is not None), 0.005)
        self._matched, _at = controls_data.distinct_matched(report, temperature)
        self._horizons = recall_data.horizons(report)
        self._seed_horizons = {s: recall_data.horizons(report, s) for s in recall_data.seeds(report)}
        recall = [
            ("memory_horizon", "memory\nhorizon", "recall by distance: the farthest distance bucket whose interval lies "
             "above 0 (every nearer one too), mean over the training seeds, and each seed's"),
            ("half_recall", "half recall\n(steps)", "recall by distance: where the excess falls below half its "
             "short-range value"),
        ] if self._horizons else []  # a report made before recall by distance: no such columns
        self.columns = [
            ("source", "Source", ""),
            *recall,
            ("valid_bpt", "valid\nbits/token", "bits per token on the validation tunes (teacher-forced)"),
            ("effective_memory_bars", "effective\nmemory\n(bars)",
             "the shortest context (in bars) within 1% of the loss with all the context"),
            ("length", "length check\nfull - best\n(bits)",
             f"NLL with all the context minus the best NLL with only the last k steps; it passes within "
             f"{tolerance} bits. A model that fails gets worse with more context than it was trained on."),
            ("repeat_gain_bits", "repeat\ngain (bits)", "bits saved on bars that repeat an earlier bar"),
            ("TR_excess_first", f"TR excess\nbars {first}",
             "theme recall minus the source's own matched floor (0 = chance), mean [95% interval] over primers"),
            ("TR_excess_last", f"TR excess\nbars {last}", "the same over the last bars of the continuation"),
            *([("distinct_bar_rate_matched", "distinct-bar\nrate, matched",
                "distinct non-empty bars / non-empty bars, model and human over the same bars per primer")]
              if self._matched else []),
            ("distinct_bar_rate", f"distinct-bar\nrate, {report['settings']['bars']} bars",
             "the same over every bar composed (the human continuation is often shorter); a low rate means looping"),
        ]
        if influence:
            self.columns.append(("influence_distance_bars", "influence\ndistance\n(bars)",
                                 "how far back (in bars) a generated note's sources lie, weighted by influence; "
                                 "chance = the mean distance if every earlier note weighed the same"))
            self.columns.append(("share_on_primer", "influence\non primer",
                                 "share of a generated note's influence that falls on primer notes"))
        self.columns += [
            ("RR_first", f"RR\nbars {first}", "rhythm recall, mean over primers"),
            ("RR_last", f"RR\nbars {last}", "rhythm recall, mean over primers"),
            ("downbeat_rate", "downbeat\nrate", "share of bars with a note on the downbeat"),
            ("in_key_rate", "in-key\nrate", "share of notes in the primer's key"),
            ("n", f"n primers\nbars {first}\n/ {last}", "the primers that reach those bars"),
        ]
        order = {k: i for i, k in enumerate([*report_data.models(report), "human", "floor"])}
        rows = sorted(report_data.summary_rows(report, temperature), key=lambda r: order.get(r["source"], len(order)))
        self.clear()
        self.setColumnCount(len(self.columns))
        self.setRowCount(len(rows))
        self.setHorizontalHeaderLabels([c[1] for c in self.columns])
        for c, (_field, _header, tip) in enumerate(self.columns):
            self.horizontalHeaderItem(c).setToolTip(tip)
        for r, row in enumerate(rows):
            src = row["source"]
            for c, (field, _header, tip) in enumerate(self.columns):
                item = QTableWidgetItem(self._text(report, row, field, influence))
                item.setToolTip(tip)
                if field == "source":
                    item.setForeground(pg.mkColor(style.model_colour(src)))
                    item.setToolTip(style.model_label(src))
                    item.setData(Qt.ItemDataRole.UserRole, src)
                else:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if field == "length" and row.get("length_ok") is False:
                    item.setForeground(pg.mkColor(FAILS_COLOUR))
                self.setItem(r, c, item)
        # Every column as wide as its widest line (a cell is never cut to "0.21..."), the room left over
        # shared out evenly; a narrow window scrolls the table sideways instead.
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.resizeColumnsToContents()
        self._natural = [self.horizontalHeader().sectionSize(c) for c in range(self.columnCount())]
        self._share_width()
        self.resizeRowsToContents()
        self._fit_height()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._share_width()

    def _share_width(self) -> None:
        natural = self._natural
        if not natural or len(natural) != self.columnCount():
            return
        spare = max(0, self.viewport().width() - sum(natural))
        for c, width in enumerate(natural):  # the last column takes the pixels the division leaves
            extra = spare // len(natural) + (spare % len(natural) if c == len(natural) - 1 else 0)
            self.horizontalHeader().resizeSection(c, width + extra)

    def _text(self, report: dict, row: dict, field: str, influence: dict | None) -> str:
        src = row["source"]
        if field in ("memory_horizon", "half_recall", "distinct_bar_rate_matched", "share_on_primer"):
            return self._new_text(src, field, influence)
        if field == "source":
            return style.model_label(src).split(" (")[0]  # the legend above says what human and floor are
        if field == "length":
            gap = row.get("full_minus_best_bits")
            if gap is None:
                return MISSING
            verdict = "passes" if row.get("length_ok") else "fails"
            return f"{gap:+.4f} {verdict}\nbest k {row.get('best_k')} steps"
        if field == "influence_distance_bars":
            figures = report_data.influence_sources(influence or {}).get(src)
            value = row.get(field) or figures
            text = interval_text(value, "{:.2f}")
            if figures and figures.get("chance") is not None and text != MISSING:
                text += f", chance {figures['chance']:.2f}"
            return text
        if field == "n":
            return MISSING if "n_first" not in row else f"{row['n_first']} / {row['n_last']}"
        value = row.get(field)
        if isinstance(value, dict):
            return interval_text(value)
        if value is None:
            return MISSING
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    def _new_text(self, src: str, field: str, influence: dict | None) -> str:
        """The columns of recall by distance and of issue 24's controls."""
        if field == "distinct_bar_rate_matched":
            return interval_text(self._matched.get(src))
        if field == "share_on_primer":
            figures = report_data.influence_sources(influence or {}).get(src) or {}
            return interval_text(controls_data.influence_references(figures).share_on_primer, "{:.1%}")
        if src not in self._horizons:
            return MISSING
        h = self._horizons[src]
        if field == "half_recall":
            return MISSING if h.half_steps is None else f"{h.half_steps:.0f}"
        text = recall_data.horizon_text(h)
        per_seed = [recall_data.horizon_text(s.get(src)) for s in self._seed_horizons.values()]
        if len(per_seed) >= 2:  # one seed: the figure above is that seed's
            text += "\nseeds: " + ", ".join(t.split(" (")[0].replace(" steps", "") for t in per_seed)
        return text

    def _fit_height(self) -> None:
        """Every row shown without a vertical scroll bar; room for the horizontal one only when the
        window is too narrow for the columns."""
        rows_height = sum(self.rowHeight(r) for r in range(self.rowCount()))
        bar = self.horizontalScrollBar()
        scrollbar = bar.sizeHint().height() if bar.maximum() > 0 else 0
        height = self.horizontalHeader().sizeHint().height() + rows_height + scrollbar + 2 * self.frameWidth()
        if height != self.height():
            self.setFixedHeight(height)


class SummaryGroup(QWidget):
    """The table with its title (the temperature shown) and a caption saying what each figure rests on."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("<b>Summary</b>")
        self.table = SummaryTable()
        self.caption = style.caption("")
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.table)
        layout.addWidget(self.caption)

    def show_report(self, report: dict, temperature: str | None) -> None:
        self.table.fill(report, temperature)
        first, last = report_data.first_last_bars(report)
        least = report_data.min_n(report)
        floor = "rhythm-matched" if report_data.primary_floor(report) == report_data.RHYTHM_MATCHED else "random-partner"
        self.title.setText(f"<b>Summary</b> (continuations at temperature {temperature}, all meters; TR excess over "
                           f"the {floor} floor)" if temperature else "<b>Summary</b>")
        self.caption.setText(
            f"TR excess: theme recall minus the source's own floor (0 = chance), each primer's mean over "
            f"bars {first} or {last}, then the mean [95% interval] over primers; n = the primers it rests on"
            + (f" ('-' where fewer than min_n = {least} reach those bars)" if least else "")
            + ". A big drop from first to last is forgetting. Distinct-bar rate: a low rate means looping. "
            "Length check: 'fails' = the model's loss is worse with all the context than with its best k steps."
            + _horizon_sentence(report) + _model_side_sentence(report))

    def clear(self) -> None:
        self.table.clear()
        self.table.setRowCount(0)


def _horizon_sentence(report: dict) -> str:
    if not recall_data.has_recall(report):
        return (" Memory horizon: this report was made before recall by distance; evaluate again to measure it.")
    seeds = recall_data.seeds(report)
    return (" Memory horizon: the farthest distance at which removing the resembling bars still costs the model "
            "bits (interval above 0), from recall by distance" + (f", mean over {len(seeds)} seeds and each seed."
                                                                 if seeds else "."))


def _model_side_sentence(report: dict) -> str:
    """What the model-side columns rest on: " Effective memory and the length check: 384 test tokens at
    positions >= 256 of the 209 test tunes." ("" when the report does not say)."""
    found = next((em for em in (report.get("effective_memory") or {}).values() if em.get("n_targets")), None)
    if found is None:
        return ""
    tunes = (report.get("corpus") or {}).get("test_tunes")
    return (f" Effective memory and the length check: {found['n_targets']} test tokens at positions >= "
            f"{found.get('min_position')}" + (f" of the {tunes} test tunes." if tunes else "."))
