"""The Train tab's questions before it acts: whether a new run may replace the compositions on screen, and
whether to load a run's own tunes before resuming it (each a non-blocking message box with a button that
goes ahead; closing it does nothing)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from engine.core.errors import UserError


def compositions(main_window) -> int:
    """How many continuations the Listen tab shows (what a new run's models would replace)."""
    return len(getattr(main_window.listen_tab, "_results", None) or {})


def ask_to_replace(tab, go) -> None:
    """Before training: its models will replace the ones whose compositions are on screen; `go` trains."""
    from PySide6.QtWidgets import QMessageBox

    n = compositions(tab.main_window)
    box = QMessageBox(QMessageBox.Icon.Question, "Train new models?",
                      f"When training ends, the new models are opened in place of the ones now loaded, and the "
                      f"{n} compositions on the Listen tab are cleared. Export them first (File > Export MIDI) "
                      f"to keep them.", QMessageBox.StandardButton.Cancel, tab)
    box.setObjectName("replaceCompositions")
    train = box.addButton("Train", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(train)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.buttonClicked.connect(lambda button: go() if button is train else None)
    box.open()


def offer_own_corpus(tab, run_dir: Path) -> bool:
    """A run trained on other tunes than the corpus loaded: offer to load its own corpus and resume, in the
    app's words (the engine's check speaks of --source). True when the person was asked or told."""
    from PySide6.QtWidgets import QMessageBox

    from engine.training.run_plan import read_manifest

    try:
        manifest = read_manifest(run_dir)
    except UserError:
        return False  # the resume itself reports a damaged run.json
    corpus = tab.state.corpus
    if manifest is None or not manifest.corpus or corpus is None or manifest.corpus == corpus.fingerprint:
        return False
    sources = manifest.sources
    words = "the bundled corpus" if not sources else (sources[0] if len(sources) == 1 else f"{len(sources)} MIDI files")
    missing = [s for s in sources or [] if not Path(s).exists()]
    if missing:
        tab.main_window.show_error("Cannot resume", f"This run was trained on {words}, not on the "
                                   f"{tab.state.corpus_label} loaded now, and {missing[0]} is no longer there. "
                                   "Put its tunes back to resume it.")
        return True
    box = QMessageBox(QMessageBox.Icon.Question, "Resume on the run's own tunes?",
                      f"This run was trained on {words}, not on the {tab.state.corpus_label} loaded now. A resume "
                      f"goes on with the tunes it started with. Load {words} and resume?",
                      QMessageBox.StandardButton.Cancel, tab)
    box.setObjectName("resumeOwnCorpus")
    load = box.addButton("Load and resume", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(load)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def chosen(button) -> None:
        if button is not load:
            return

        def loaded() -> None:
            tab.state.corpusChanged.disconnect(loaded)
            if tab.state.corpus is not None and tab.state.corpus.fingerprint == manifest.corpus:
                tab.resume()
            else:
                tab.main_window.show_error("Cannot resume", f"{words} no longer holds the tunes this run was trained "
                                           "on (its files have changed since).")

        tab.state.corpusChanged.connect(loaded)
        tab.main_window.load_corpus(sources)

    box.buttonClicked.connect(chosen)
    box.open()
    return True
