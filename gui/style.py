"""Colours, fonts and small look-and-feel helpers shared by every tab.

The colours, labels and line styles of the models and of the reference sources (the human continuation,
the floor) come from the engine's one table of them (engine.metrics.table.source_style, which reads
the model registry), so that plots, legends and files agree everywhere.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QWidget

PRIMER_SHADE = (120, 120, 120, 40)  # the primer region behind a piano roll
PLAYHEAD_COLOUR = "#e377c2"
BAR_LINE_COLOUR = (0, 0, 0, 45)
BACKGROUND = "w"
FOREGROUND = "#222222"


def model_colour(key: str) -> str:
    """A model's or a reference source's colour (engine.metrics.table: the one table of them)."""
    from engine.metrics.table import source_style

    return source_style(key).colour


def model_label(key: str) -> str:
    """A model's or a reference source's label ("human reference", "floor (another tune)")."""
    from engine.metrics.table import source_style

    return source_style(key).label


def configure_pyqtgraph() -> None:
    """White plots with dark axes read better in a classroom projector than pyqtgraph's black default."""
    import pyqtgraph as pg

    pg.setConfigOptions(background=BACKGROUND, foreground=FOREGROUND, antialias=True)


# the metric table names line styles as matplotlib does; Qt's pens name them so
_QT_LINE_STYLES = {"solid": "SolidLine", "dashed": "DashLine", "dotted": "DotLine", "dashdot": "DashDotLine"}


def qt_line_style(name: str):
    """Qt's pen style for a matplotlib line-style name of the metric table ("dashed" -> DashLine)."""
    return getattr(Qt.PenStyle, _QT_LINE_STYLES.get(name, "SolidLine"))


def pen(key: str, width: float = 2.0, line_style: str | None = None):
    """The pen of a source in its colour and line style (the human reference dashed, the floor dotted);
    `line_style` overrides the style ("dotted" for a model's own matched floor)."""
    import pyqtgraph as pg

    from engine.metrics.table import source_style

    source = source_style(key)
    return pg.mkPen(source.colour, width=width, style=qt_line_style(line_style or source.line_style))


def legend_entry(key: str) -> str:
    """A source in a legend written as rich text: its colour and line style ("- - -" dashed, "···"
    dotted, a square for solid) and its label."""
    from engine.metrics.table import source_style

    source = source_style(key)
    glyph = {"dashed": "- - -", "dotted": "&middot;&middot;&middot;"}.get(source.line_style, "&#9632;")
    return f"<span style='color:{source.colour}'>{glyph}</span> {source.label}"


def caption(text: str):
    """A one-line grey caption under a plot saying what to look for."""
    from PySide6.QtWidgets import QLabel

    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet("color: #555555; font-size: 11px;")
    return label


def swatch_icon(colour: str, size: int = 12):
    """A small filled square in a model's colour, for checkboxes and list rows."""
    from PySide6.QtGui import QColor, QIcon, QPixmap

    pix = QPixmap(size, size)
    pix.fill(QColor(colour))
    return QIcon(pix)


def spin_box(lo: int, hi: int, value: int, tip: str):
    """An integer box with its range, starting value and a tooltip that says what it sets."""
    from .number_box import IntField

    box = IntField(lo, hi)
    box.setValue(int(value))
    box.setToolTip(tip)
    return box


def on_click(control, slot) -> None:
    """Run `slot()` when a button is clicked or an action triggered.

    Qt sends `clicked(bool checked)` / `triggered(bool checked)`, and PySide passes that bool to any
    slot that can take an argument: connected directly, `export_midi(folder=None)` received False as
    its folder and failed with a TypeError. Every button and menu action of the app is connected
    through here, so no slot ever receives the checked flag (tests/gui/test_controls.py enforces it)."""
    signal = control.triggered if hasattr(control, "triggered") else control.clicked
    signal.connect(lambda *_checked: slot())


def button(text: str, slot=None, tip: str = "", bold: bool = False):
    """A push button with its text, what it does (tooltip) and the slot it runs (called with no arguments)."""
    from PySide6.QtWidgets import QPushButton

    widget = QPushButton(text)
    if tip:
        widget.setToolTip(tip)
    if bold:
        widget.setStyleSheet("font-weight: 600; padding: 4px 12px;")
    if slot is not None:
        on_click(widget, slot)
    return widget


def pass_focus(button, target) -> None:
    """Call before a focused button disables itself: Qt would hand the focus to the next field in the tab
    order (after Generate, the Temperature box, where the next key changed the value); `target` (what the
    person acts on next: Stop, Cancel, the composed rows) takes it instead (issue 25 item 2)."""
    if button.hasFocus():
        target.setFocus(Qt.FocusReason.OtherFocusReason)


class ElidedLabel(QLabel):
    """A one-line plain-text label that gives way to its neighbours: it shortens its text with "..." in
    the middle (a path keeps its start and its end) and shows the whole text as its tooltip."""

    elide_mode = Qt.TextElideMode.ElideMiddle  # a subclass whose text starts with what matters elides at the right

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)
        self.update()

    def minimumSizeHint(self) -> QSize:
        return QSize(self.minimumWidth(), super().minimumSizeHint().height())

    def is_elided(self) -> bool:
        return self.fontMetrics().horizontalAdvance(self.text()) > self.contentsRect().width()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), self.elide_mode, rect.width())
        painter.drawText(rect, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), text)


def _form_labels(root) -> dict:
    """Each widget in a form row under `root` -> the row's label text (without its & shortcut marker)."""
    from PySide6.QtWidgets import QFormLayout

    labels = {}
    for form in root.findChildren(QFormLayout):
        for row in range(form.rowCount()):
            label = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            field = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            if label is not None and field is not None and isinstance(label.widget(), QLabel):
                widgets = [field.widget()] if field.widget() else [field.layout().itemAt(i).widget()
                                                                    for i in range(field.layout().count())]
                for widget in widgets:
                    if widget is not None:
                        labels[widget] = label.widget().text().replace("&", "")
    return labels


def name_for_screen_readers(root) -> None:
    """Give every control under `root` that has no accessible name one a screen reader can announce (not
    "button"): a button its words (or, without words, "...", its tooltip), a field the label of its form row
    or its tooltip, a plot its title, any other control that takes the keyboard focus its tooltip or a word
    for what it is. A button whose words change (Play / Stop) is named where it is made."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QAbstractButton, QAbstractItemView, QAbstractSpinBox, QComboBox, QLineEdit, QTabBar, QTabWidget

    labels = _form_labels(root)
    for widget in root.findChildren(QWidget):
        if widget.accessibleName():
            continue
        if isinstance(widget, QAbstractButton):
            words = widget.text().replace("&", "").strip(". ")
            widget.setAccessibleName(words if any(c.isalpha() for c in words)
                                     else widget.toolTip() or labels.get(widget, ""))
        elif isinstance(widget, (QAbstractSpinBox, QComboBox, QLineEdit)):
            if isinstance(widget, QLineEdit) and isinstance(widget.parent(), (QAbstractSpinBox, QComboBox)):
                continue  # the field's own editor: its parent carries the name
            name = labels.get(widget) or widget.toolTip() or getattr(widget, "placeholderText", lambda: "")()
            if name:
                widget.setAccessibleName(name)
        elif isinstance(widget, pg.GraphicsView):
            widget.setAccessibleName(_plot_name(widget))
        elif isinstance(widget, (QTabBar, QTabWidget)):
            widget.setAccessibleName("tabs")
        elif isinstance(widget, QAbstractItemView):
            widget.setAccessibleName(widget.toolTip() or "table")
        elif widget.focusPolicy() != Qt.FocusPolicy.NoFocus and widget.toolTip():
            widget.setAccessibleName(widget.toolTip())


def _plot_name(view) -> str:
    """A plot's name: the title of the captioned plot it belongs to (its object name), else "plot"."""
    import re

    parent = view.parentWidget()
    while parent is not None:
        title = getattr(parent, "title", None)
        if isinstance(title, QLabel) and title.text():
            words = re.sub(r"<[^>]+>", "", title.text())
            return f"plot: {words}"
        parent = parent.parentWidget()
    return "plot"
