"""The QApplication, set up once: names (QSettings reads them), a readable default font size."""

from __future__ import annotations

_collector = None


def collect_garbage_in_gui_thread() -> None:
    """Run Python's cyclic garbage collector only in the GUI thread.

    Left automatic, it runs in whichever thread happens to allocate. When that is a worker (a corpus
    load, training) and the garbage holds a Qt widget (an old plot's menu, a closed window), the widget
    is destroyed off the GUI thread and Qt can deadlock: seen here as a worker freeing a pyqtgraph
    menu while the GUI thread built a QLineEdit, each waiting for the other forever. pyqtgraph's
    GarbageCollector turns automatic collection off and collects from a GUI-thread timer instead."""
    global _collector
    if _collector is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _collector = GarbageCollector(interval=0.5)


def stop_collecting_in_gui_thread() -> None:
    """Give collection back to Python (tests that leave the app)."""
    import gc

    global _collector
    if _collector is not None:
        _collector.timer.stop()
        _collector = None
        gc.enable()
        gc.collect()


def create_app():
    from PySide6.QtWidgets import QApplication

    from .settings import APPLICATION, ORGANISATION

    app = QApplication.instance()
    if app is None:
        app = QApplication([APPLICATION])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    collect_garbage_in_gui_thread()
    return app
