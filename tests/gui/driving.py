"""Drive the app's window the way a person does, and read what the person would see.

`User` finds buttons and menu actions by their visible text, clicks them with the mouse (QTest) or
triggers them as the menu does, answers the file dialogs the app opens (Qt's static QFileDialog
functions are replaced by answers the test queues, or sensible defaults), and closes message boxes
and dialogs after noting what they said. Every click fails the test, naming the control, when a
slot raised an exception: the class of bug where a button "does nothing" and a traceback goes to
the terminal.

`clipped_texts(window)` lists every visible label, button, check box, tab and spin box whose text
does not fit its widget, for the layout tests.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QFontMetrics, QTextDocument
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QDialog,
    QFileDialog,
    QGroupBox,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QTabBar,
    QWidget,
)

# An evaluation small enough for the test tunes and a few seconds (the tab's fields set the first three).
# Recall by distance is left to the shipped-models fixture (which turns it on) and to its own tests: it is
# half of a quick evaluation's time.
SMALL_EVALUATION = dict(primers=3, primer_bars=4, bars=8, probe=None, device="cpu", memory_targets=16,
                        gradient_positions=4, gradient_max_k=64, bootstrap=50, nll_bars=16, influence_primers=2,
                        recall=False, temperatures=(1.0, 0.7),  # a sweep of two: every view of it, half the sampling
                        min_n=2)  # three primers are below the default min_n of 10, where every mean is left out


def set_small_evaluation(window, primers=3):
    """What a user types into the Memory tab's fields for a quick evaluation of the test tunes."""
    tab = window.memory_tab
    tab.primers.setValue(primers)
    tab.primer_bars.setValue(SMALL_EVALUATION["primer_bars"])
    tab.bars.setValue(SMALL_EVALUATION["bars"])


def compose(user, window, primer_bars=4, bars=4) -> None:
    """On the Listen tab, ask for a short continuation and press Generate (waits until it is composed)."""
    user.show_tab("Listen")
    window.listen_tab.primer_bars.setValue(primer_bars)
    window.listen_tab.bars.setValue(bars)
    user.click("Generate")


def open_window(qtbot, size=(1280, 800)):
    """Another launch of the app (same settings and data folder): waits until its start-up is done."""
    from gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    with qtbot.waitSignal(win.startupFinished, timeout=60000):
        win.start()
    return win


def offscreen_screen(tmp_path: Path, width: int, height: int) -> str:
    """QT_QPA_PLATFORM value for an offscreen screen of this size."""
    config = tmp_path / f"screen-{width}x{height}.json"
    config.write_text(json.dumps({"screens": [{"name": "screen", "x": 0, "y": 0, "width": width, "height": height,
                                               "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    return f"offscreen:configfile={config}"


def shown_text(widget) -> str:
    """A control's text as the user reads it (without the & of its keyboard shortcut)."""
    return widget.text().replace("&&", "\0").replace("&", "").replace("\0", "&")


@dataclass
class Message:
    """A message box or dialog the app showed: what the user read before it was closed."""

    title: str
    text: str
    warning: bool  # shown with the warning icon (an error the user is told about)
    details: str = ""


class User:
    def __init__(self, window, qtbot, monkeypatch, folder: Path):
        self.window, self.qtbot = window, qtbot
        self.folder = Path(folder)
        self.answers: list = []  # what the next file dialogs are answered (None: the default answer)
        self.asked: list[str] = []  # the title of every file dialog the app opened
        self.messages: list[Message] = []
        self._fresh = itertools.count(1)
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(self._folder_dialog))
        monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(self._save_dialog))
        monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(self._open_dialog))
        monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(self._open_files_dialog))
        # Message boxes: a blocking one (About) runs its own event loop, where this timer still fires.
        self._closer = QTimer()
        self._closer.setInterval(50)
        self._closer.timeout.connect(self.close_dialogs)
        self._closer.start()

    def stop(self) -> None:
        self._closer.stop()

    # ---- file dialogs --------------------------------------------------------------------------
    def answer(self, *answers) -> None:
        """Queue the answers of the next file dialogs: a path (str/Path), a list of paths for a
        multi-file dialog, "" to cancel, None for the default (a new folder / the suggested name)."""
        self.answers.extend(answers)

    def _next(self, title: str):
        self.asked.append(title)
        return self.answers.pop(0) if self.answers else None

    def new_folder(self) -> Path:
        path = self.folder / f"answer-{next(self._fresh)}"
        path.mkdir(parents=True)
        return path

    def _folder_dialog(self, _parent=None, title="", _start="", *_rest):
        answer = self._next(title)
        return str(self.new_folder() if answer is None else answer)

    def _save_dialog(self, _parent=None, title="", suggested="", *_rest):
        answer = self._next(title)
        if answer is None:  # the user accepts the suggested file name, in a folder of their own
            answer = self.new_folder() / Path(suggested).name
        return str(answer), ""

    def _open_dialog(self, _parent=None, title="", *_rest):
        answer = self._next(title)
        return ("" if answer is None else str(answer)), ""

    def _open_files_dialog(self, _parent=None, title="", *_rest):
        answer = self._next(title)
        return ([] if answer is None else [str(p) for p in answer]), ""

    # ---- finding controls ----------------------------------------------------------------------
    def buttons(self, within: QWidget | None = None) -> list[QAbstractButton]:
        """Every button a user can see (in the current tab, the menus aside), in layout order."""
        root = within or self.window
        return [b for b in root.findChildren(QAbstractButton) if b.isVisible() and shown_text(b)
                and not isinstance(b.parent(), QTabBar)]

    def button(self, text: str, within: QWidget | None = None, index: int = 0) -> QAbstractButton:
        found = [b for b in self.buttons(within) if shown_text(b) == text]
        if len(found) <= index:
            seen = sorted({shown_text(b) for b in self.buttons(within)})
            raise AssertionError(f"no visible button {text!r} (#{index}); the user sees {seen}")
        return found[index]

    def action(self, path: str) -> QAction:
        """A menu action by its path as read on screen: "File > Export WAV ..."."""
        *menus, name = [part.strip() for part in path.split(">")]
        actions = self.window.menuBar().actions()
        for menu_name in menus:
            menu = next((a.menu() for a in actions if shown_text(a) == menu_name), None)
            assert menu is not None, f"no menu {menu_name!r} in {[shown_text(a) for a in actions]}"
            actions = menu.actions()
        found = next((a for a in actions if shown_text(a) == name), None)
        assert found is not None, f"no action {name!r} in {path!r}: {[shown_text(a) for a in actions]}"
        return found

    def menu_actions(self) -> list[tuple[str, QAction]]:
        """("Menu > Action", action) for every action of every menu, in menu order."""
        out = []
        for top in self.window.menuBar().actions():
            for action in top.menu().actions():
                if not action.isSeparator():
                    out.append((f"{shown_text(top)} > {shown_text(action)}", action))
        return out

    # ---- acting --------------------------------------------------------------------------------
    def show_tab(self, name: str) -> None:
        """Click the tab with this title."""
        bar = self.window.tabs.tabBar()
        titles = [bar.tabText(i).replace("&", "") for i in range(bar.count())]
        assert name in titles, f"no tab {name!r}: {titles}"
        QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(titles.index(name)).center())
        assert self.window.tabs.currentIndex() == titles.index(name)

    def click(self, control, within: QWidget | None = None, wait: bool = True) -> None:
        """Click a button (or its text) with the mouse; fail, naming it, when a slot raised."""
        button = self.button(control, within) if isinstance(control, str) else control
        name = shown_text(button)
        assert button.isEnabled(), f"{name!r} is disabled"
        for area in _ancestors(button, QScrollArea):  # scroll it into view first, as a person would
            area.ensureWidgetVisible(button)
        with self.qtbot.captureExceptions() as errors:
            QTest.mouseClick(button, Qt.MouseButton.LeftButton, pos=button.rect().center())
            if wait:
                self.wait_idle()
        _fail_on(errors, f"clicking {name!r}")

    def trigger(self, path: str, wait: bool = True) -> None:
        """Choose a menu action, as clicking it in its menu does."""
        action = self.action(path)
        assert action.isEnabled(), f"{path!r} is disabled"
        with self.qtbot.captureExceptions() as errors:
            action.trigger()
            if wait:
                self.wait_idle()
        _fail_on(errors, f"choosing {path!r}")

    def press_keys(self, key, modifier=Qt.KeyboardModifier.NoModifier, wait: bool = True) -> None:
        """Type a shortcut into the window (focused first, as the window a person types into is)."""
        focus(self.qtbot, self.window)
        with self.qtbot.captureExceptions() as errors:
            QTest.keyClick(self.window, key, modifier)
            if wait:
                self.wait_idle()
        _fail_on(errors, f"pressing {key} with {modifier}")

    def wait_idle(self, timeout: int = 120000) -> None:
        """Until no background job runs and nothing loads (what the user waits for)."""
        from gui import workers

        state = self.window.state

        def idle():
            return workers.running_jobs() == 0 and not state.loading

        self.qtbot.waitUntil(idle, timeout=timeout)
        QApplication.processEvents()

    def question_shown(self) -> bool:
        return any(isinstance(w, QMessageBox) and w.isVisible() for w in QApplication.topLevelWidgets())

    def answer_question(self, button_text: str) -> str:
        """Click a button of the question the app shows now (before the closer timer dismisses it); returns
        the question's text."""
        boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
        assert boxes, f"no question on screen to answer {button_text!r}"
        box = boxes[-1]
        found = [b for b in box.buttons() if shown_text(b) == button_text]
        assert found, f"the question {box.text()!r} has no button {button_text!r}: {[shown_text(b) for b in box.buttons()]}"
        text = box.text()
        self.messages.append(Message(box.windowTitle(), text, False))
        with self.qtbot.captureExceptions() as errors:
            QTest.mouseClick(found[0], Qt.MouseButton.LeftButton, pos=found[0].rect().center())
        _fail_on(errors, f"answering {button_text!r}")
        return text

    def close_dialogs(self) -> None:
        """Close every message box and dialog on screen, noting what it said."""
        for widget in QApplication.topLevelWidgets():
            if not (isinstance(widget, QDialog) and widget.isVisible()):
                continue
            if isinstance(widget, QMessageBox):
                # a long path in a message may break after its slashes (zero-width spaces): read without them
                self.messages.append(Message(widget.windowTitle(), widget.text().replace("\u200b", ""),
                                             widget.icon() == QMessageBox.Icon.Warning, widget.detailedText()))
            else:
                self.messages.append(Message(widget.windowTitle(), "", False))
            widget.close()

    def warnings(self) -> list[Message]:
        self.close_dialogs()
        return [m for m in self.messages if m.warning]

    def status_bar(self) -> str:
        return self.window.statusBar().currentMessage()


def focus(qtbot, window) -> None:
    """Make the window the active one, as the window a person types into is: keyboard shortcuts
    (Ctrl+G, Space) only reach an active window. Offscreen every window is; under a real X server
    without a window manager it must be asked for."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def drawn_in_the_status_bar(window, widget) -> bool:
    """The widget (the busy line, the message area) is shown inside the window's status bar and nothing hides
    it: the window's own pixels there, grabbed as the person sees them, are the widget's."""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QImage

    def rect_of(w) -> QRect:
        return QRect(w.mapTo(window, w.rect().topLeft()), w.size())

    rect = rect_of(widget)
    if not (widget.isVisible() and rect_of(window.statusBar()).contains(rect)):
        return False
    shown, own = (grab.toImage().convertToFormat(QImage.Format.Format_RGB32) for grab in (window.grab(rect),
                                                                                        widget.grab()))
    return shown == own


def _ancestors(widget, kind) -> list:
    out, parent = [], widget.parent()
    while parent is not None:
        if isinstance(parent, kind):
            out.append(parent)
        parent = parent.parent()
    return out


def _fail_on(errors, doing: str) -> None:
    if errors:
        import traceback

        text = "".join("".join(traceback.format_exception(*e)) for e in errors)
        raise AssertionError(f"{doing} raised in a slot:\n{text}")


# ---- layout ------------------------------------------------------------------------------------
def _label_needs(label: QLabel) -> tuple[int, int] | None:
    """(width, height) the label's text needs in its contents rectangle; None for empty labels."""
    text = label.text()
    if not text or (label.pixmap() is not None and not label.pixmap().isNull()):
        return None
    rect = label.contentsRect()
    margin = 2 * label.margin()
    rich = label.textFormat() == Qt.TextFormat.RichText or (
        label.textFormat() == Qt.TextFormat.AutoText and Qt.mightBeRichText(text))
    if rich:
        doc = QTextDocument()
        doc.setDefaultFont(label.font())
        doc.setDocumentMargin(0)
        doc.setHtml(text)
        if label.wordWrap():
            doc.setTextWidth(max(1, rect.width() - margin))
            return 0, int(doc.size().height()) + margin
        return int(doc.idealWidth()) + margin, 0
    metrics = QFontMetrics(label.font())
    if label.wordWrap():
        return 0, label.heightForWidth(label.width()) - (label.height() - rect.height())
    return max(metrics.horizontalAdvance(line) for line in text.split("\n")) + margin, 0


def _check_buttons(window, check) -> None:
    """clipped_texts for check boxes and push buttons (a tab bar's buttons are its tabs: _check_tabs)."""
    for button in window.findChildren(QAbstractButton):
        if not button.isVisible() or not button.text() or isinstance(button.parent(), QTabBar):
            continue
        metrics = QFontMetrics(button.font())
        text = shown_text(button)
        if isinstance(button, QCheckBox):
            check("check box", text, button.sizeHint().width(), button.width())
        elif isinstance(button, QPushButton):
            icon = button.iconSize().width() + 4 if not button.icon().isNull() else 0
            check("button", text, metrics.horizontalAdvance(text) + icon + 8, button.width())


def _check_tabs(window, check) -> None:
    for bar in window.findChildren(QTabBar):
        if bar.isVisible():
            for i in range(bar.count()):
                text = bar.tabText(i).replace("&", "")
                check("tab", text, QFontMetrics(bar.font()).horizontalAdvance(text), bar.tabRect(i).width())


def clipped_texts(window) -> list[str]:
    """Every visible text in the window that its widget cuts off: "kind 'text': needs N px, has M"."""
    from gui.style import ElidedLabel

    problems = []

    def check(kind, text, need, have):
        if need > have + 1:  # a pixel of rounding
            problems.append(f"{kind} {text!r}: needs {need} px, has {have}")

    for label in window.findChildren(QLabel):
        if not label.isVisible() or isinstance(label, ElidedLabel):  # an elided label shortens on purpose
            continue
        needs = _label_needs(label)
        if needs is None:
            continue
        rect = label.contentsRect()
        check("label", label.text()[:60], needs[0], rect.width())
        check("label (height)", label.text()[:60], needs[1], rect.height())
    _check_buttons(window, check)
    _check_tabs(window, check)
    for group in window.findChildren(QGroupBox):
        if group.isVisible() and group.title():
            check("group", group.title(), QFontMetrics(group.font()).horizontalAdvance(group.title()), group.width())
    for box in window.findChildren(QAbstractSpinBox):
        if box.isVisible():
            edit = box.lineEdit()
            text = edit.text()
            check("spin box", text, QFontMetrics(edit.font()).horizontalAdvance(text), edit.contentsRect().width())
    return problems


def tab_names(window) -> list[str]:
    return [window.tabs.tabText(i).replace("&", "") for i in range(window.tabs.count())]


def find_object(window, name: str) -> QObject | None:
    return window.findChild(QObject, name)
