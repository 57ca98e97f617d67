"""The controls of the sampled measures' views: the floor, theme recall over its floor or raw, the
temperature of the sweep and the meter. They sit above the plots they change; every choice is kept
when another report is opened, where that report still offers it."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QComboBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QWidget

from .. import style
from . import report_data
from .report_data import ALL_METERS, RANDOM, RHYTHM_MATCHED

EXCESS, RAW = "excess", "raw"  # the two views of theme recall
FLOOR_WORDS = {RHYTHM_MATCHED: "rhythm-matched floor", RANDOM: "random-partner floor"}
FLOOR_BUTTONS = {RHYTHM_MATCHED: "rhythm-matched", RANDOM: "random partner"}
FLOOR_TIPS = {
    RHYTHM_MATCHED: "Each primer's partner is the same-meter test tune whose opening has the closest rhythm: "
                    "a model that only keeps the style of the rhythm scores no more than its floor (the default)",
    RANDOM: "Each primer's partner is a random same-meter test tune: any model that keeps the rhythm's style "
            "scores above it, so this floor flatters (shown as a second line)",
}


@dataclass
class View:
    """What the sampled plots show."""

    floor: str = RHYTHM_MATCHED
    theme: str = EXCESS
    temperature: str | None = None
    meter: str = ALL_METERS


def switch(text: str, tip: str) -> QPushButton:
    """A checkable button of an exclusive group (one of the views, one of the temperatures)."""
    button = QPushButton(text)
    button.setCheckable(True)
    button.setToolTip(tip)
    button.setAccessibleName(text)
    return button


class ViewBar(QWidget):
    changed = Signal(str)  # the user chose another view: what changed ("floor", "theme", "temperature", "meter")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view = View()
        self.floor_buttons = {f: switch(text, FLOOR_TIPS[f]) for f, text in FLOOR_BUTTONS.items()}
        self.excess_button = switch("TR over its floor", "Theme recall minus each source's own floor: 0 is "
                                    "chance for that source (the default view)")
        self.raw_button = switch("raw TR, own floor", "Theme recall as measured, with each source's own floor "
                                 "dotted in its colour")
        groups = []
        for buttons in (self.floor_buttons.values(), (self.excess_button, self.raw_button)):
            group = QButtonGroup(self)
            for b in buttons:
                group.addButton(b)
            groups.append(group)
        for floor, button in self.floor_buttons.items():
            style.on_click(button, lambda f=floor: self.choose(floor=f))
        style.on_click(self.excess_button, lambda: self.choose(theme=EXCESS))
        style.on_click(self.raw_button, lambda: self.choose(theme=RAW))
        self.temperature_group = QButtonGroup(self)
        self.temperature_buttons: dict[str, QPushButton] = {}
        self.temperature_row = QHBoxLayout()
        self.temperature_row.setSpacing(2)
        self.temperature_label = QLabel("temperature")
        self.meter_box = QComboBox()
        self.meter_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.meter_box.setToolTip("Show the per-bar plots for every meter or one (meters differ in steps per bar)")
        self.meter_box.setAccessibleName("meter")
        self.meter_box.currentIndexChanged.connect(self._meter_chosen)

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        first, second = QHBoxLayout(), QHBoxLayout()
        first.addWidget(QLabel("Floor"))
        for button in self.floor_buttons.values():
            first.addWidget(button)
        first.addSpacing(16)
        first.addWidget(QLabel("Theme recall"))
        first.addWidget(self.excess_button)
        first.addWidget(self.raw_button)
        first.addStretch(1)
        second.addWidget(self.temperature_label)
        second.addLayout(self.temperature_row)
        second.addSpacing(16)
        second.addWidget(QLabel("meter"))
        second.addWidget(self.meter_box)
        second.addStretch(1)
        grid.addLayout(first, 0, 0)
        grid.addLayout(second, 1, 0)  # two rows: the four temperatures and the floors fit 1024 pixels

    def choose(self, floor: str | None = None, theme: str | None = None, temperature: str | None = None) -> None:
        if floor is not None:
            self.view.floor = floor
        if theme is not None:
            self.view.theme = theme
        if temperature is not None:
            self.view.temperature = temperature
        self._check()
        self.changed.emit("temperature" if temperature is not None else "floor" if floor is not None else "theme")

    def _check(self) -> None:
        if self.view.floor in self.floor_buttons:
            self.floor_buttons[self.view.floor].setChecked(True)
        (self.excess_button if self.view.theme == EXCESS else self.raw_button).setChecked(True)
        if self.view.temperature in self.temperature_buttons:
            self.temperature_buttons[self.view.temperature].setChecked(True)

    def _meter_chosen(self, index: int) -> None:
        self.view.meter = self.meter_box.itemData(index) or ALL_METERS
        self.changed.emit("meter")

    def build(self, report: dict) -> None:
        """The floors, temperatures and meters of this report; the user's choices are kept where they
        still exist (no signal: the tab draws once afterwards)."""
        self._build_floors(report)
        self._build_temperatures(report)
        self._build_meters(report)
        self._check()

    def _build_floors(self, report: dict) -> None:
        offered = report_data.floors(report)
        for floor, button in self.floor_buttons.items():
            button.setEnabled(floor in offered)
            button.setToolTip(FLOOR_TIPS[floor] if floor in offered else
                              f"This report has no {FLOOR_WORDS[floor]} (it was made before it existed)")
        if self.view.floor not in offered:
            self.view.floor = offered[0]
        has_excess = "TR_excess" in (report.get("per_bar") or {})
        self.excess_button.setEnabled(has_excess)
        self.excess_button.setToolTip("Theme recall minus each source's own floor: 0 is chance for that source"
                                      if has_excess else "This report predates the matched floor: only raw theme recall")
        if not has_excess:
            self.view.theme = RAW

    def _build_temperatures(self, report: dict) -> None:
        temps = report_data.temperatures(report)
        if self.view.temperature not in temps:
            self.view.temperature = report_data.default_temperature(report)
        for button in self.temperature_buttons.values():  # out of the row now, not when Qt deletes them
            self.temperature_group.removeButton(button)
            self.temperature_row.removeWidget(button)
            button.hide()
            button.deleteLater()
        self.temperature_buttons = {}
        for t in sorted(temps, key=float):
            button = switch(t, f"Show the continuations sampled at temperature {t}")
            button.setAccessibleName(f"temperature {t}")  # made per report, after the window named its controls
            style.on_click(button, lambda t=t: self.choose(temperature=t))
            self.temperature_group.addButton(button)
            self.temperature_row.addWidget(button)
            self.temperature_buttons[t] = button
        self.temperature_label.setVisible(bool(temps))

    def _build_meters(self, report: dict) -> None:
        counts, least = report_data.meters(report), report_data.min_n(report)
        self.meter_box.blockSignals(True)
        self.meter_box.clear()
        self.meter_box.addItem(f"all meters ({len(report.get('primers', []))} primers)", ALL_METERS)
        for meter, n in counts.items():
            few = least is not None and n < least
            self.meter_box.addItem(f"{meter} ({n} primers{': too few' if few else ''})", meter)
        found = self.meter_box.findData(self.view.meter)
        if found < 0:
            self.view.meter, found = ALL_METERS, 0
        self.meter_box.setCurrentIndex(found)
        self.meter_box.setEnabled(bool(counts))
        self.meter_box.blockSignals(False)

    def words(self, report: dict, meter: bool = True) -> str:
        """"temperature 1.0, all meters" / "temperature 0.7, 6/8 (54 primers)"."""
        parts = [f"temperature {self.view.temperature}"] if self.view.temperature else []
        if not meter:
            return ", ".join(parts)
        if self.view.meter:
            parts.append(f"{self.view.meter} ({report_data.meters(report).get(self.view.meter, 0)} primers)")
        else:
            parts.append("all meters")
        return ", ".join(parts)
