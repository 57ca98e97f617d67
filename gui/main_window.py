"""The main window: four tabs (Corpus, Train, Listen, Memory), menus, shortcuts and the status bar.

It owns the shared AppState and the one Playback, starts the background loads at start-up, and on
close stops training (which keeps its last checkpoint) and waits for every background job.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSize, Qt, QThreadPool, Signal
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget

from . import focus_keys, settings, style, workers
from .corpus_tab import CorpusTab
from .listen_tab import ListenTab
from .loading import bundled_run_dir, is_bundled, load_corpus_job, load_run_models
from .memory import MemoryTab
from .menus import build_menus
from .number_box import number_fields
from .playback import Playback
from .state import AppState
from .status_area import BusyIndicator, MessageArea
from .train.unstarted import models_meanwhile, offered_message
from .train_tab import TrainTab

TAB_NAMES = ("corpus", "train", "listen", "memory")


def default_size(widget) -> QSize:
    """1280x800 where the screen allows, else the screen's free area (a 1024x768 projector)."""
    screen = widget.screen().availableGeometry() if widget.screen() is not None else None
    if screen is None or screen.isEmpty():
        return QSize(1280, 800)
    return QSize(min(1280, screen.width()), min(800, screen.height()))


def breakable(text: str) -> str:
    """A long path may break after each of its slashes (a zero-width space), so that a message naming one
    wraps inside its dialog instead of running off it in one line."""
    return " ".join(word.replace("/", "/\u200b").replace("\\", "\\\u200b") if len(word) > 40 else word
                    for word in text.split(" "))


class MainWindow(QMainWindow):
    startupFinished = Signal()  # corpus and start-up models are loaded (or failed with a message)

    def __init__(self, parent=None):
        super().__init__(parent)
        style.configure_pyqtgraph()
        # Jobs wait on I/O or torch most of the time; with the default (one thread per core) a sound
        # render could queue behind training on a 2-core machine. Never queue: allow a few more.
        pool = QThreadPool.globalInstance()
        pool.setMaxThreadCount(max(pool.maxThreadCount(), 8))
        self.setWindowTitle("Melody Memory")
        self.state = AppState(self)
        self.playback = Playback(self)
        self.tabs = QTabWidget()
        self.corpus_tab = CorpusTab(self.state, self.playback)
        self.train_tab = TrainTab(self.state, self)
        self.listen_tab = ListenTab(self.state, self.playback, self)
        self.memory_tab = MemoryTab(self.state, self)
        self.tabs.addTab(self.corpus_tab, "Corpus")
        self.tabs.addTab(self.train_tab, "Train")
        self.tabs.addTab(self.listen_tab, "Listen")
        self.tabs.addTab(self.memory_tab, "Memory")
        self.setCentralWidget(self.tabs)
        self.listen_tab.trainRequested.connect(lambda: self.show_tab("train"))
        self.listen_tab.corpusMelodyRequested.connect(self.show_corpus_melody)
        build_menus(self)
        focus_keys.install(self)  # Space and Ctrl+E work whatever has focus, unless a text is being edited
        self._build_status_bar()
        self._pending = 0
        self._load_numbers = itertools.count(1)  # tells overlapping loads apart in AppState.loading
        self._closing = False
        self.state.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.playback.message.connect(self._playback_message)
        self.adopt(self)  # before the last tab is chosen: a Memory tab built then adopts its own views
        self.tabs.setCurrentIndex(settings.read("ui/tab", 0, int))
        self.tabs.currentChanged.connect(lambda i: settings.write("ui/tab", i))
        geometry = settings.app_settings().value("ui/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(default_size(self))
        self.fit_on_screen()

    # ---- construction --------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        from engine.core.device import resolve_device

        self.state.device = resolve_device("auto")
        self.device_label = QLabel(f"device: {self.state.device.type}")
        from engine.music.synth import fluidsynth_status

        ok, _reason = fluidsynth_status()
        self.synth_label = QLabel("synth: FluidSynth" if ok else "synth: built-in")
        self.audio_label = QLabel()
        self._update_audio_label()
        self.models_label = style.ElidedLabel("no models")
        # A run's folder can be long: the label gives way (elided, full text in its tooltip) rather than
        # widening the window past a small screen; the message area keeps the free width.
        self.models_label.setMinimumWidth(100)
        self.models_label.setMaximumWidth(280)
        self.message_area = MessageArea(self.statusBar())
        self.busy_indicator = BusyIndicator(self.state)
        self.statusBar().addPermanentWidget(self.message_area, 1)
        self.statusBar().addPermanentWidget(self.busy_indicator)
        for label in (self.models_label, self.device_label, self.synth_label, self.audio_label):
            label.setStyleSheet("padding: 0 8px;")
            self.statusBar().addPermanentWidget(label)
        self.state.modelsChanged.connect(self._update_models_label)
        self._jobs_shown: set[str] = set()
        self.state.busyChanged.connect(self._new_job_replaces_the_message)

    def _new_job_replaces_the_message(self) -> None:
        """A job that starts makes the last message old news: it gives the busy line its room (at 1024 px the
        two squeezed each other unreadable); a message the job itself then posts stays."""
        jobs = set(self.state.busy)
        if jobs - self._jobs_shown:
            self.statusBar().clearMessage()
        self._jobs_shown = jobs

    def _update_audio_label(self) -> None:
        text = self.playback.audio_text
        self.audio_label.setText(f"audio: {text}" if self.playback.audio_ok else text)
        self.audio_label.setToolTip(self.playback.audio_detail)
        self.audio_label.setStyleSheet("padding: 0 8px;" + ("" if self.playback.audio_ok else "color: #b00;"))

    def _update_models_label(self) -> None:
        """Short enough to read beside the busy line at 1024 px ("7 bundled models", "5 models of run-..."); the
        run's whole folder in the tooltip."""
        n, run_dir = len(self.state.models), self.state.run_dir
        bundled = self.state.models_label == "bundled models"
        models = "model" if n == 1 else "models"  # a run with one healthy model left said "1 models"
        self.models_label.setText("no models" if not n else f"{n} bundled {models}" if bundled or run_dir is None
                                  else f"{n} {models} of {Path(run_dir).name}")
        self.models_label.setToolTip(f"{n} {models} from {self.state.models_label}" if n else "no models open")

    def _playback_message(self, text: str) -> None:
        if text.startswith("synth: "):
            self.synth_label.setText(text)
        else:
            self._update_audio_label()
            self.statusBar().showMessage(text, 8000)

    # ---- start-up ------------------------------------------------------------------------------
    def start(self, run_dir=None) -> None:
        """Load the corpus (bundled or the last one opened) and the models, in the background: `run_dir`
        when given, else the run the user last trained or opened (the bundled models when it no longer
        loads, saying so), else the bundled models."""
        self.playback.warm_up()
        sources = settings.app_settings().value("corpus/sources")
        if isinstance(sources, str):
            sources = [sources]
        sources = [s for s in (sources or []) if Path(s).exists()] or None
        self.load_corpus(sources)
        last = settings.read("run/last", "")
        if run_dir is not None:
            self.open_run(run_dir, origin="user")
        elif last:
            self.open_run(last, origin="startup", fall_back_to_bundled=True)
        elif bundled_run_dir() is not None:
            self.open_run(bundled_run_dir(), origin="startup")
        else:
            self.listen_tab.show_no_models()

    def _job_started(self) -> None:
        self._pending += 1

    def _job_done(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self.startupFinished.emit()

    @property
    def busy_loading(self) -> bool:
        return self._pending > 0

    def load_corpus(self, sources) -> None:
        label = "bundled corpus" if not sources else (
            sources[0] if len(sources) == 1 else f"{len(sources)} MIDI files"
        )
        key = f"corpus#{next(self._load_numbers)}"  # the busy line says what loads and how far
        loading = f"Loading the {label}" if not sources else f"Loading {label}"
        self.state.set_loading(key, loading)
        self._job_started()
        progress = workers.progress_relay(lambda done, total: self._corpus_progress(key, loading, done, total), self)
        workers.start_job(
            load_corpus_job,
            sources,
            progress,
            on_return=lambda corpus: self._corpus_loaded(corpus, label, sources),
            on_error=lambda exc: self.show_error(f"Could not load {label}", exc),
            on_finish=lambda: (self.state.set_loading(key, None), self._job_done()),
            owner=self,
            lasting=True,
        )

    def _corpus_progress(self, key: str, loading: str, done: int, total: int) -> None:
        if key in self.state.loading:  # a late progress report must not bring back a finished load
            self.state.set_loading(key, f"{loading}: {done}/{total} files", done, total)

    def _corpus_loaded(self, corpus, label, sources) -> None:
        if not len(corpus):
            # Nothing usable: keep the corpus in use, and show every file skipped and why.
            self.corpus_tab.show_failed_load(corpus, label)
            kept = f" The {self.state.corpus_label} stays in use." if self.state.corpus is not None else ""
            from engine.data.corpus import MIDI_SUFFIXES

            looked = (f"Looked for MIDI files ({', '.join(MIDI_SUFFIXES)}) in {label}"
                      + (" and its subfolders" if any(Path(s).is_dir() for s in sources or []) else ""))
            found = (f"{len(corpus.files)} found, {len(corpus.skipped)} skipped: the Corpus tab's extraction report "
                     "lists every file and the reason." if corpus.files else "none was found.")
            self.show_error(
                f"Could not load {label}",
                f"No usable melody in {label}. {looked}: {found}{kept}",
                details="\n".join(f"{s.path}: {s.reason}" for s in corpus.skipped),
            )
            return
        self.state.set_corpus(corpus, label, sources)
        settings.write("corpus/sources", list(sources or []))
        self.statusBar().showMessage(f"{label}: {len(corpus.melodies)} melodies", 5000)

    def open_run(self, run_dir, label: str | None = None, origin: str = "user",
                 fall_back_to_bundled: bool = False) -> None:
        """Load a run's models in the background. origin: "user", "trained" or "startup" (see AppState).
        With fall_back_to_bundled, a run that no longer loads gives way to the bundled models."""
        if self._closing:
            return
        run_dir = Path(run_dir)
        label = label or ("bundled models" if is_bundled(run_dir) else f"run {run_dir}")
        self._job_started()
        key = f"models#{next(self._load_numbers)}"
        self.state.set_loading(key, f"Loading the {label}" if is_bundled(run_dir) else f"Loading the models of {label}")

        def failed(reason) -> None:
            bundled = bundled_run_dir()
            if fall_back_to_bundled and bundled is not None and not is_bundled(run_dir):
                text = workers.error_text(reason) if isinstance(reason, BaseException) else str(reason)
                self.show_error("Could not reopen your last run",
                                f"{run_dir}: {text}. The bundled models are open instead.")
                self.open_run(bundled, origin="startup")
            else:
                self.show_error(f"Could not open {run_dir}", reason)
                if not self.state.models:
                    self.listen_tab.show_no_models()

        def loaded(found) -> None:
            damaged = "; ".join(f"{key}: {why}" for key, why in found.damaged.items())
            if not found.models and origin == "startup" and self.train_tab.offer_resume(run_dir):
                # the last run was stopped before its first checkpoint: the Train tab offers to resume it, and
                # the message says so once start-up is over (the corpus's own message would replace it)
                def say() -> None:
                    self.statusBar().showMessage(offered_message(run_dir), 15000)

                self.startupFinished.connect(say, Qt.ConnectionType.SingleShotConnection)
                instead = models_meanwhile(run_dir)  # Listen and Memory keep models that can be opened
                if instead is not None:
                    self.open_run(instead, origin="startup", fall_back_to_bundled=True)
                else:
                    self.listen_tab.show_no_models()
                return
            if not found.models:
                failed(f"no model could be opened ({damaged})" if damaged else "the folder holds no trained models")
                return
            self._models_loaded(found.models, run_dir, label, origin)
            if damaged:  # the healthy models are open; the damaged ones are named
                self.show_error(f"Some models of {run_dir} could not be opened",
                                f"Opened {', '.join(found.models)}. Not opened: {damaged}")

        workers.start_job(
            load_run_models,
            run_dir,
            self.state.device,
            on_return=loaded,
            on_error=failed,
            on_finish=lambda: (self.state.set_loading(key, None), self._job_done()),
            owner=self,
        )

    def _models_loaded(self, models, run_dir, label, origin) -> None:
        self.state.set_models(models, run_dir, label, origin)
        if origin != "startup":  # what the user trained or opened is what the next launch reopens
            settings.write("run/last", str(run_dir))
            settings.write("run/models", str(run_dir))  # and the models it opens while the last run has none

    # ---- menu actions --------------------------------------------------------------------------
    def open_midi_folder(self) -> None:
        folder = settings.ask_folder(self, "Open a folder of MIDI files", "dirs/midi")
        if folder:
            self.load_corpus([folder])

    def open_midi_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open MIDI files", settings.read("dirs/midi", ""), "MIDI files (*.mid *.midi);;All files (*)"
        )
        if files:
            settings.write("dirs/midi", str(Path(files[0]).parent))
            self.load_corpus(files)

    def open_run_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a training run", settings.read("run/last", ""))
        if folder:
            self.open_run(folder)

    def open_bundled_models(self) -> None:
        bundled = bundled_run_dir()
        if bundled is None:
            self.show_error("No bundled models", "this installation has no bundled models: train some on the Train tab")
            return
        self.open_run(bundled)

    def adopt(self, root) -> None:
        """The window's ways for the controls under `root`: a typed number a field cannot take says why where
        messages show, and every control has a name a screen reader announces. (The Memory tab calls it for
        the views it builds when first shown.)"""
        for field in number_fields(root):
            field.refused.connect(lambda text: self.statusBar().showMessage(text, 10000))
        style.name_for_screen_readers(root)

    def show_tab(self, name: str) -> None:
        self.tabs.setCurrentIndex(TAB_NAMES.index(name))

    def show_corpus_melody(self, position: int) -> None:
        self.corpus_tab.show_corpus_melody(position)
        self.show_tab("corpus")

    def play_stop(self) -> None:
        current = self.tabs.currentWidget()
        if current is self.corpus_tab:
            self.corpus_tab.play_stop()
        elif current is self.listen_tab:
            self.listen_tab.play_stop()
        elif self.playback.is_playing():
            self.playback.stop()

    def generate(self) -> None:
        self.show_tab("listen")
        self.listen_tab.generate()

    def export(self) -> None:
        """Ctrl+E: what the tab shows (the Memory tab's report, the Corpus tab's selected tunes, else the
        Listen tab's compositions)."""
        current = self.tabs.currentWidget()
        if current is self.memory_tab:
            self.memory_tab.export_report()
        elif current is self.corpus_tab:
            self.corpus_tab.export_selected()
        else:
            self.listen_tab.export_midi()

    def show_help(self, anchor: str = "") -> None:
        from .help import show_why_rnns_forget

        show_why_rnns_forget(self, anchor)

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About Melody Memory",
            "<b>Melody Memory</b><p>Train five sequence models on folk melodies side by side, hear what each "
            "composes from the same opening, and see how long each keeps the theme.</p>",
        )

    def show_error(self, title: str, exc, details: str = "") -> None:
        """A warning dialog; `details` (every reason, one a line) goes behind its Show Details button."""
        text = workers.error_text(exc) if isinstance(exc, BaseException) else str(exc)
        self.statusBar().showMessage(f"{title}: {text}", 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, title, breakable(text), QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorDialog")
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # window-modal but non-blocking: the event loop (and tests) keep running

    def fit_on_screen(self, size: tuple[int, int] | None = None) -> None:
        """Resize to `size` (default: the size it has), cut to the screen's free area: a size saved on a larger
        monitor, or asked for with gui --size, never leaves the window running off a projector. On a screen
        narrower than the controls' natural width the controls are squeezed, not the window widened."""
        width, height = size or (self.width(), self.height())
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        if screen is not None and not screen.isEmpty():
            width, height = min(width, screen.width()), min(height, screen.height())
            hint = self.minimumSizeHint()
            if hint.width() > width or hint.height() > height:
                self.setMinimumSize(min(hint.width(), screen.width()), min(hint.height(), screen.height()))
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)

    # ---- shutdown ------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop everything running; training writes its last checkpoint before its worker returns."""
        settings.write("ui/geometry", self.saveGeometry())
        self.playback.stop()
        events = self.train_tab.stop_events() + self.listen_tab.stop_events() + self.memory_tab.stop_events()
        self._closing = True
        # Every job stopped and its last signals delivered while the widgets exist: none runs on into a window
        # that is gone (a corpus load, lasting, is not waited for).
        workers.stop_all(events, timeout_s=20.0)
        QCoreApplication.processEvents()
