"""How the Listen tab shows originality (issue 27 item 5): a meter beside each row and the copied bars.

- `OriginalityMeter`: a small bar filled to the copied share of the melody's two-bar spans, with a tick
  at the level of real tunes of the corpus (its 95% interval shaded), and "copied 20% of 15, run 4 bars"
  beside it; the tooltip says everything with its n.
- `copy_marks`: the bands the piano roll shades over copied bars, each with the text its hover shows
  (which training tune, where in it) and the passages a right-click offers to play.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

COPY_COLOUR = "#c98a00"  # the copied share and the bands: no model's colour (registry: red, blue, green, purple, orange)
REPLAY_COLOUR = "#b00020"
BAR_WIDTH = 44  # the meter's bar in pixels
SHOWN_PASSAGES = 3  # a right-click menu offers at most this many training tunes


@dataclass
class Passage:
    """A copied run: bars [start, start + bars) of the piece (0 = the primer's first bar), found in
    training tune `tune` from its bar `tune_bar` on."""

    start: int
    bars: int
    tune: int
    tune_bar: int


def percent(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def baseline_text(baseline: dict | None) -> str:
    """"real tunes of the corpus copy 6% (4-8%, n = 138 test tunes), longest run 0.9 bars" or why not."""
    if baseline is None:
        return "the level of real tunes of the corpus is being measured"
    rate, run = baseline.get("copy_rate") or {}, baseline.get("longest_run_bars") or {}
    if rate.get("mean") is None:
        return (f"too few test tunes (n = {rate.get('n', 0)}) long enough to measure the level of real tunes "
                "of this corpus")
    return (f"real tunes of this corpus copy {percent(rate['mean'])} (95% interval {percent(rate['lo'])}-"
            f"{percent(rate['hi'])}, n = {rate['n']} test tunes), longest run {run.get('mean', 0):.1f} bars on average")


class OriginalityMeter(QWidget):
    """One row's meter. set_result(None, text) shows a message instead (indexing, unavailable)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.result = None
        self.baseline_mean = self.baseline_lo = self.baseline_hi = None
        self.replays = False
        self.text = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        font = self.font()
        font.setPixelSize(11)
        self.setFont(font)

    def sizeHint(self) -> QSize:
        return QSize(BAR_WIDTH + 8 + self.fontMetrics().horizontalAdvance("copied 100% of 255, run 256 bars"),
                     self.fontMetrics().height() + 2)

    def minimumSizeHint(self) -> QSize:
        return QSize(BAR_WIDTH, self.fontMetrics().height() + 2)

    def set_result(self, result, text: str, tip: str, baseline: dict | None = None, replays: bool = False) -> None:
        self.result, self.text, self.replays = result, text, replays
        rate = (baseline or {}).get("copy_rate") or {}
        self.baseline_mean, self.baseline_lo, self.baseline_hi = rate.get("mean"), rate.get("lo"), rate.get("hi")
        self.setToolTip(tip)
        self.setAccessibleName(f"originality: {text}")
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        h = self.height()
        x = 0
        if self.result is not None and self.result.copy_rate is not None:
            box = QRectF(0.5, 2.5, BAR_WIDTH - 1, h - 5)
            p.setPen(QPen(QColor("#999999"), 1))
            p.setBrush(QColor("#f4f4f4"))
            p.drawRect(box)
            if self.baseline_lo is not None:
                p.fillRect(QRectF(box.x() + box.width() * self.baseline_lo, box.y(),
                                  max(1.0, box.width() * (self.baseline_hi - self.baseline_lo)), box.height()),
                           QColor(0, 0, 0, 40))
            p.fillRect(QRectF(box.x(), box.y(), box.width() * self.result.copy_rate, box.height()),
                       QColor(REPLAY_COLOUR if self.replays else COPY_COLOUR))
            if self.baseline_mean is not None:
                tick = box.x() + box.width() * self.baseline_mean
                p.setPen(QPen(QColor("#000000"), 2))
                p.drawLine(int(tick), 0, int(tick), h)
            x = BAR_WIDTH + 6
        p.setPen(QColor(REPLAY_COLOUR if self.replays else "#555555"))
        p.setFont(self.font())
        text = self.fontMetrics().elidedText(self.text, Qt.TextElideMode.ElideRight, self.width() - x)
        p.drawText(QRectF(x, 0, self.width() - x, h), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)


def meter_texts(result, baseline: dict | None, n_tunes: int, replays: bool) -> tuple[str, str]:
    """(the meter's line, its tooltip) for one melody's Originality."""
    if result.copy_rate is None:
        return "no two-bar span to score", (f"No span of two bars after the primer has {_min_notes()} or more "
                                            "notes: nothing to compare with the training tunes.")
    line = f"copied {percent(result.copy_rate)} of {result.spans}, run {result.longest_run_bars} bars"
    tip = [f"Copied: {result.copied_spans} of the {result.spans} two-bar spans after the primer (n = {result.spans}) "
           f"occur, in some key, in the {n_tunes} tunes the models trained on; the longest stretch replayed bar "
           f"for bar from one tune is {result.longest_run_bars} bars."]
    if result.primer_spans:
        tip.append(f"{result.primer_spans} more restate the primer: recall of the opening, not counted as copies.")
    tip.append(f"The tick: {baseline_text(baseline)}.")
    if replays:
        tip.append(f"This mostly replays training tunes (at least {percent(_share())} of its spans copied, or a run "
                   f"of {_run_bars()} bars or more).")
    tip.append("Shaded bars in the roll are the copied ones: point at one to see which tune, right-click to hear it.")
    return line, "\n".join(tip)


def _min_notes() -> int:
    from engine.metrics.originality import MIN_SPAN_NOTES

    return MIN_SPAN_NOTES


def _share() -> float:
    from .originality import REPLAY_SHARE

    return REPLAY_SHARE


def _run_bars() -> int:
    from .originality import REPLAY_RUN_BARS

    return REPLAY_RUN_BARS


def copy_marks(result) -> tuple[list[tuple[float, float]], list[Passage]]:
    """(bands [(first bar, end bar)] of the piece to shade, passages [Passage] the runs come from), in
    bars from the primer's first bar (the roll's axis)."""
    P = result.primer_bars
    bands, start = [], None
    for bar, copied in enumerate([*result.copied_bars, False]):
        if copied and start is None:
            start = bar
        elif not copied and start is not None:
            bands.append((float(P + start), float(P + bar)))
            start = None
    passages = [Passage(P + run.start_bar, run.bars, tune, tune_bar)
                for run in result.runs for tune, tune_bar in run.tunes[:SHOWN_PASSAGES]]
    return bands, passages


def passages_at(passages: list[Passage], bar: float) -> list[Passage]:
    """The copied passages over this bar of the piece, longest run first (as the engine orders runs)."""
    return [p for p in passages if p.start <= bar < p.start + p.bars][:SHOWN_PASSAGES]


def passage_text(passage: Passage, name: str) -> str:
    """"bars 11-14 copy <tune>, its bars 3-6" with bars counted from 1, as on the roll's axis."""
    first = passage.start + 1
    return (f"bars {first}-{first + passage.bars - 1} copy {name}, its bars {passage.tune_bar + 1}-"
            f"{passage.tune_bar + passage.bars}")
