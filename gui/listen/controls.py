"""The Listen tab's controls: the primer tune, how long the primer and the continuation are, how to sample
(fields built from the engine's SAMPLE_SETTINGS, gui/setting_fields.py) and the buttons, in two lines that fit a
1024-pixel-wide window. The values are remembered (gui/settings.py) each time Generate is pressed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QComboBox, QCompleter, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout

from .. import settings, style
from ..setting_fields import label, setting_field

WAITING_TEXT = "Generate when loaded"  # the Generate button after a press while the corpus or models load
# Temperature and top-p move by this much per arrow press (two decimals shown).
SAMPLING_STEP = 0.05


class ListenControls(QVBoxLayout):
    def __init__(self, tab):
        super().__init__()
        from engine.data.primer import MAX_PRIMER_BARS
        from engine.generation.generate import SAMPLE_SETTINGS

        table = SAMPLE_SETTINGS
        self.primer_box = QComboBox()
        self.primer_box.setEditable(True)
        self.primer_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.primer_box.completer().setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.primer_box.completer().setFilterMode(Qt.MatchFlag.MatchContains)
        self.primer_box.setMinimumWidth(220)  # a long title is elided; the field grows with the window
        self.primer_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.primer_box.setToolTip("Tunes of the test split: the models never trained on them")
        # The primer is a tune's opening, not a sampling setting (SAMPLE_SETTINGS has none): the engine's primer limit.
        self.primer_bars = style.spin_box(1, MAX_PRIMER_BARS, settings.read("listen/primer_bars", 8),
                                          "bars of the tune the models hear")
        self.primer_bars.setAccessibleName("Primer bars")
        self.bars = setting_field(table["bars"], settings.read("listen/bars", 16))
        self.temperature = setting_field(table["temperature"], settings.read("listen/temperature", 1.0),
                                         step=SAMPLING_STEP)
        self.top_p = setting_field(table["top_p"], settings.read("listen/top_p", 1.0), step=SAMPLING_STEP)
        self.variations = setting_field(table["variations"], settings.read("listen/variations", 1))
        self.variation = style.spin_box(1, 1, 1, "which variation the rows show")
        self.variation.setAccessibleName("Show variation")
        self.seed = setting_field(table["seed"], settings.read("listen/seed", 0))
        self.generate_button = style.button("Generate", tab.generate, "Compose a continuation with every model (Ctrl+G)")
        self.generate_button.setStyleSheet("font-weight: 600; padding: 4px 16px;")
        # Wide enough for what it says while the corpus or the models load, so the row never jumps.
        bold = self.generate_button.font()
        bold.setWeight(QFont.Weight.DemiBold)
        self.generate_button.setMinimumWidth(QFontMetrics(bold).horizontalAdvance(WAITING_TEXT) + 40)
        self.export_all_button = style.button("Export all MIDI ...", tab.export_midi,
                                              "One MIDI file per row into a folder (Ctrl+E)")
        self.export_wav_button = style.button("Export all WAV ...", tab.export_wav, "One WAV file per row into a folder")

        # What to play and how long, then how to sample.
        first = QHBoxLayout()
        first.addWidget(QLabel("Primer tune"))
        first.addWidget(self.primer_box, 1)
        first.addSpacing(12)
        first.addWidget(QLabel("Primer bars"))
        first.addWidget(self.primer_bars)
        compose = QLabel("then compose")  # a sentence, not the table's label: it reads on into the unit, "16 bars"
        compose.setBuddy(self.bars)
        first.addWidget(compose)
        first.addWidget(self.bars)
        first.addSpacing(12)
        first.addWidget(self.generate_button)
        second = QHBoxLayout()
        for name, box in (("temperature", self.temperature), ("top_p", self.top_p), ("variations", self.variations),
                          ("seed", self.seed)):
            second.addWidget(label(table[name], box))
            second.addWidget(box)
            second.addSpacing(8)
        second.addWidget(QLabel("Show variation"))
        second.addWidget(self.variation)
        second.addStretch(1)
        second.addWidget(self.export_all_button)
        second.addWidget(self.export_wav_button)
        self.addLayout(first)
        self.addLayout(second)

    def sample_settings(self):
        from engine.generation.generate import SampleSettings

        return SampleSettings(bars=self.bars.value(), temperature=self.temperature.value(), top_p=self.top_p.value(),
                              variations=self.variations.value(), seed=self.seed.value())

    def save(self) -> None:
        for key, value in (
            ("listen/primer", self.primer_box.currentData() or ""),
            ("listen/primer_bars", self.primer_bars.value()),
            ("listen/bars", self.bars.value()),
            ("listen/temperature", self.temperature.value()),
            ("listen/top_p", self.top_p.value()),
            ("listen/variations", self.variations.value()),
            ("listen/seed", self.seed.value()),
        ):
            settings.write(key, value)
