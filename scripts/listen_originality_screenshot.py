"""Screenshot of the Listen tab's originality meter with the bundled models (issue 27 item 5):
docs/screenshots/listen-originality-bundled.png.

    QT_QPA_PLATFORM=offscreen python scripts/listen_originality_screenshot.py

The primer is a test tune whose real continuation borrows eight bars from a training tune, so the human row
shows gold bands beside the models' continuations at temperature 0.7 (which copy nothing there). Uses
temporary settings and a temporary data folder: nothing of the user's is read or changed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PRIMER = "ryansMammoth-LittleHouseRoundTheCornerJig-0001"


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mm-shots-"))
    os.environ["MELODY_MEMORY_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["MELODY_MEMORY_DATA"] = str(tmp / "data")
    from gui.app import create_app
    from gui.main_window import MainWindow

    app = create_app()
    win = MainWindow()
    win.resize(1280, 900)
    win.show()
    win.start()
    wait(app, lambda: not win.busy_loading and win.state.corpus is not None and bool(win.state.models), 120)
    win.show_tab("listen")
    tab = win.listen_tab
    tab.primer_box.setCurrentIndex(tab.primer_box.findData(PRIMER))
    tab.temperature.setValue(0.7)
    wait(app, lambda: tab.originality.tunes.status == "ready", 60)
    tab.generate_button.click()
    wait(app, lambda: tab.status.text().startswith("composed"), 120)
    pause(app, 2)  # the human baseline's tick and the influence summaries arrive
    win.grab().save(str(ROOT / "docs" / "screenshots" / "listen-originality-bundled.png"))
    win.close()


def pause(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def wait(app, condition, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"timed out after {timeout} s")
        app.processEvents()
        time.sleep(0.02)


if __name__ == "__main__":
    main()
