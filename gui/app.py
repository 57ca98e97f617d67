"""The QApplication, set up once: names (QSettings reads them), a readable default font size."""

from __future__ import annotations


def create_app():
    from PySide6.QtWidgets import QApplication

    from .settings import APPLICATION, ORGANISATION

    app = QApplication.instance()
    if app is None:
        app = QApplication([APPLICATION])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    return app
