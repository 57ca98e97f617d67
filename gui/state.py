"""What the tabs share: the corpus, the loaded models and where they came from.

Tabs never hold their own copy; they listen to the change signals. Loading itself happens in
background jobs (gui/workers.py); this object only stores results, on the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.training.checkpoint import PRETRAINED_DIR  # noqa: F401 - the tabs import it from here

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class AppState(QObject):
    corpusChanged = Signal()
    modelsChanged = Signal()
    loadingChanged = Signal()  # something started or finished loading, or its progress changed
    busyChanged = Signal()  # a job (export, evaluation, training) started, moved on or ended
    status = Signal(str)  # a short message for the status bar

    def __init__(self, parent=None):
        super().__init__(parent)
        self.corpus = None  # engine.data.corpus.Corpus
        self.corpus_label = ""  # "bundled corpus" or the folder / files the user opened
        self.corpus_sources: list[str] | None = None  # what it was loaded from (None: the bundled corpus)
        self.models: dict = {}  # key -> engine.training.checkpoint.LoadedModel
        self.run_dir: Path | None = None
        self.models_label = ""  # "bundled models" / "run <dir>" / ""
        self.models_origin = ""  # "startup" (opened at launch), "user" (File > Open run) or "trained"
        self.device = None
        self.loading: dict[str, str] = {}  # "corpus" / "models" -> what the user reads while it loads
        self.loading_progress: dict[str, tuple[int, int]] = {}  # the same keys -> (done, total) when known
        # Other jobs the person waits for (not startup loads: Generate waits for those): key -> (text, done,
        # total); the status bar's busy indicator shows them (gui/status_area.py).
        self.busy: dict[str, tuple[str, int, int]] = {}

    def set_corpus(self, corpus, label: str, sources=None) -> None:
        self.corpus, self.corpus_label = corpus, label
        self.corpus_sources = [str(s) for s in sources] if sources else None
        self.corpusChanged.emit()

    def set_models(self, models: dict, run_dir: Path | None, label: str, origin: str = "user") -> None:
        self.models, self.run_dir, self.models_label = dict(models), run_dir, label
        self.models_origin = origin
        self.modelsChanged.emit()

    def set_loading(self, what: str, text: str | None, done: int = 0, total: int = 0) -> None:
        """`text` says what is loading ("Loading the bundled corpus: 1200/4029 files"); None: done.
        `what` is "corpus" or "models", with "#n" for the n-th job of that kind when several overlap."""
        if text is None:
            self.loading_progress.pop(what, None)
            if self.loading.pop(what, None) is None:
                return
        else:
            self.loading[what] = text
            self.loading_progress[what] = (done, total)
        self.loadingChanged.emit()

    def set_busy(self, what: str, text: str | None, done: int = 0, total: int = 0) -> None:
        """A job the person waits for: what it does and how far (total 0: not known); None: it ended."""
        if text is None:
            if self.busy.pop(what, None) is None:
                return
        else:
            self.busy[what] = (text, done, total)
        self.busyChanged.emit()

    def is_loading(self, what: str) -> bool:
        """Whether anything of this kind ("corpus", "models") is loading (keys may carry a job number)."""
        return any(key.split("#")[0] == what for key in self.loading)

    def loading_text(self) -> str:
        return "; ".join(self.loading.values())

    def ordered_model_keys(self) -> list[str]:
        from engine.models.registry import MODEL_KEYS

        return [k for k in MODEL_KEYS if k in self.models]
