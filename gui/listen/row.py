"""One row of the Listen tab: a model (or the human) with its name, what its notes drew on, its
originality meter, Play / MIDI / WAV buttons and its piano roll."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.memory.influence import ATTENTION

from .. import style
from ..influence_view import SUMMARY_TEMPLATE
from ..piano_roll import PianoRoll
from .originality_view import OriginalityMeter

PRIMER_COLOUR = "#8c8c8c"


class ListenRow(QFrame):
    """One model (or the human) in the stack: name, Play / MIDI / WAV buttons, piano roll.

    Rows share the height of the tab (equal stretch): six rows fill a full-HD window and still fit
    a 1024x640 one; below their minimum the stack scrolls rather than squeezing text. The current row
    (the one Space plays, Up/Down move it) is framed."""

    pressed = Signal()  # a press on the row's panel (its labels pass presses on to it)

    def __init__(self, key: str, parent=None):
        super().__init__(parent)
        from engine.models import MODEL_KEYS

        self.setObjectName("listenRow")
        self.set_current(False)

        self.key = key
        self.melody = None  # the continuation (step 0 = first step after the primer)
        colour = style.model_colour(key)
        # The human row's plot label ("human (the real continuation)") is too long for the side panel.
        title = "human" if key == "human" else style.model_label(key)
        # Every row's panel is as wide as the one of the longest name, so that the rolls line up.
        self.name = QLabel(f"<b style='color:{colour}'>&#9632;</b> {title}")
        widest = QLabel(f"<b>&#9632;</b> {max(map(style.model_label, MODEL_KEYS), key=len)}")
        self.name.setToolTip(style.model_label(key))
        self.info = QLabel("")
        self.info.setStyleSheet("color: #666666; font-size: 11px;")
        self.info.ensurePolished()  # its font size, for the panel's width below
        self.play_button = QPushButton("Play")
        self.midi_button = QPushButton("MIDI")
        self.wav_button = QPushButton("WAV")
        # Ticked: the row draws the attention weights rather than the gradient (models with attention only).
        self.attention_box = QCheckBox(ATTENTION)  # the method's name
        policy = self.attention_box.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # the human row is as tall as the others: the rows stay equal
        self.attention_box.setSizePolicy(policy)
        if key == "human":  # hidden only: showing a box with no parent yet opens it as a window of its own,
            self.attention_box.hide()  # which takes the activation (and the keyboard focus) from the app's window
        self.set_attention_available(False)
        self.play_button.setToolTip("Play this row: primer then continuation (Space plays the current row, "
                                    "Up/Down choose it)")
        # named for a screen reader by the row's model (eight rows have a "Play"), and the same whether the button
        # says Play or Stop
        label = style.model_label(key)
        self.play_button.setAccessibleName(f"Play or stop {label}")
        self.midi_button.setAccessibleName(f"Export {label} as MIDI")
        self.wav_button.setAccessibleName(f"Export {label} as WAV")
        self.attention_box.setAccessibleName(f"{label}: draw the attention weights")
        self.meter = OriginalityMeter()
        self.meter.hide()
        self.midi_button.setToolTip("Export this row as a MIDI file (primer + continuation)")
        self.wav_button.setToolTip("Export this row as a WAV file")
        # Wide enough for the longest text each button can show, in the font in use.
        metrics = self.play_button.fontMetrics()
        width = max(metrics.horizontalAdvance(t) for t in ("Play", "Stop", "MIDI", "WAV")) + 20
        for b in (self.play_button, self.midi_button, self.wav_button):
            b.setEnabled(False)
            b.setFixedWidth(width)
        # name and attention box; the influence summary (or the size); Play / MIDI / WAV
        top = QHBoxLayout()
        top.addWidget(self.name)
        top.addStretch(1)
        top.addWidget(self.attention_box)
        buttons = QHBoxLayout()
        for b in (self.play_button, self.midi_button, self.wav_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        side = QVBoxLayout()
        side.setContentsMargins(4, 2, 4, 2)
        side.setSpacing(2)
        side.addLayout(top)
        side.addWidget(self.info)
        side.addWidget(self.meter)
        side.addLayout(buttons)
        side.addStretch(1)
        holder = QWidget()
        holder.setLayout(side)
        # Wide enough for the longest name beside the attention box, and for the influence summary.
        gap = buttons.spacing()
        holder.setFixedWidth(8 + max(3 * width + 2 * gap,
                                     widest.sizeHint().width() + gap + self.attention_box.sizeHint().width(),
                                     self.info.fontMetrics().horizontalAdvance(SUMMARY_TEMPLATE)))
        self.roll = PianoRoll(show_x_axis=True, min_height=60)
        self.roll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keys stay with the stack of rows (row_stack.py)
        self.total_bars: float | None = None  # the same extent on every row keeps them aligned
        self.meter.show()  # the panel's minimum height counts the meter's line, shown or not
        self.setMinimumHeight(max(holder.minimumSizeHint().height(), 60) + 4)
        self.meter.hide()
        self.passages: list = []  # the copied passages (gui/listen/originality_view.Passage) of the melody shown
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(holder)
        layout.addWidget(self.roll, 1)

    def mousePressEvent(self, event) -> None:
        super().mousePressEvent(event)
        self.pressed.emit()

    def set_attention_available(self, available: bool) -> None:
        self.attention_box.setEnabled(available)
        if available:
            self.attention_box.setToolTip("Ticked: draw the attention weights (where the attention looked from this "
                                          "note) instead of the gradient (what the note's probability is sensitive to)")
        else:
            self.attention_box.setToolTip(f"The {style.model_label(self.key)} has no attention weights: its row shows the "
                                          "gradient (the attention RNN and the Transformer have both)")

    def set_current(self, current) -> None:
        """True: the row Space plays; "focus": that, while the keys move it (a stronger frame)."""
        self.current = bool(current)
        border = {"focus": "#3a76d8", True: "#b8c8e0"}.get(current, "transparent")
        self.setStyleSheet(f"QFrame#listenRow {{ border: 2px solid {border}; border-radius: 3px; }}")

    def set_info(self, text: str, tip: str = "") -> None:
        self.info.setText(text)
        self.info.setToolTip(tip)

    def set_content(self, primer, continuation, info: str = "") -> None:
        self.melody = continuation
        self.passages = []
        self.meter.hide()
        primer_bars = primer.n_steps / primer.steps_per_bar
        parts = [(primer, PRIMER_COLOUR, 0, "primer")]
        if continuation is not None:
            parts.append((continuation, style.model_colour(self.key), primer_bars, style.model_label(self.key)))
        self.roll.set_parts(parts, shade_bars=primer_bars, total_bars=self.total_bars)
        self.info.setText(info)
        for b in (self.play_button, self.midi_button, self.wav_button):
            b.setEnabled(continuation is not None)

    def set_waiting(self, text: str) -> None:
        self.melody = None
        self.passages = []
        self.meter.hide()
        self.roll.clear_parts(text, reset_view=False)
        for b in (self.play_button, self.midi_button, self.wav_button):
            b.setEnabled(False)
