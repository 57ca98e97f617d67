"""Screenshots of the window's feedback (issue 25): the busy indicator while training starts and runs, the
message area after an export, and the Help glossary, at one screen size per run (docs/screenshots/).

    xvfb-run -a -s "-screen 0 1024x640x24" python scripts/feedback_screenshots.py 1024 640
    QT_QPA_PLATFORM=offscreen python scripts/feedback_screenshots.py 1024 640

Under a real X server (xvfb-run, its screen the size asked for) the window is drawn as X draws it; without
one, Qt's offscreen platform gets a screen of that size.

Uses the bundled corpus and models, temporary settings and a temporary data folder (nothing of the user's
is read or changed); trains tiny models for a few seconds into that folder.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(width: int, height: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mm-shots-"))
    screen = tmp / "screen.json"
    screen.write_text(json.dumps({"screens": [{"name": "s", "x": 0, "y": 0, "width": width, "height": height,
                                               "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    if not os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM", "").startswith("offscreen"):
        os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={screen}"
    os.environ["MELODY_MEMORY_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["MELODY_MEMORY_DATA"] = str(tmp / "data")
    from PySide6.QtWidgets import QApplication

    from gui import settings
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    out = ROOT / "docs" / "screenshots"
    tag = f"{width}x{height}"
    win = MainWindow()
    win.resize(width, height)
    win.show()
    win.start()
    wait(app, lambda: not win.busy_loading and win.state.corpus is not None, 120)

    # busy: training tiny models (the status bar's progress and what it is doing)
    tab = win.train_tab
    win.show_tab("train")
    tab.preset.setCurrentText("tiny")
    tab.steps.setValue(20000)
    settings.write("train/out", str(tmp / "runs"))
    tab.out_dir.setText(str(tmp / "runs"))
    tab.start()
    wait(app, lambda: win.busy_indicator.label.text().startswith("Training, about"), 120)
    wait(app, lambda: False, 3)
    win.grab().save(str(out / f"feedback-busy-{tag}.png"))
    tab.stop()
    wait(app, lambda: not tab.running and not win.state.loading, 120)

    # the message area after an export of three tunes of the corpus
    win.show_tab("corpus")
    corpus = win.corpus_tab
    corpus.table.selectRow(0)
    for row in (1, 2):
        corpus.table.selectionModel().select(corpus.proxy.index(row, 0), corpus.table.selectionModel().SelectionFlag.Select
                                             | corpus.table.selectionModel().SelectionFlag.Rows)
    (tmp / "export").mkdir()
    corpus.export_selected(str(tmp / "export"))
    wait(app, lambda: False, 0.5)
    win.grab().save(str(out / f"feedback-message-{tag}.png"))

    # Help > Glossary, over the window
    win.show_help("glossary")
    wait(app, lambda: False, 0.5)
    from PySide6.QtWidgets import QDialog

    dialog = win.findChild(QDialog, "helpDialog")
    dialog.grab().save(str(out / f"help-glossary-{tag}.png"))
    win.show_help("plots")  # the same window (not a second one), at its glossary of plots
    wait(app, lambda: False, 0.5)
    dialog.grab().save(str(out / f"help-plots-{tag}.png"))
    dialog.close()
    win.close()


def wait(app, done, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
