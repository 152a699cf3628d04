"""The main window: dock panels for the dataset, architecture, run controls, plots and decision
boundary, wired to a TrainingController (a child process) and a RunSession.

MainWindow is assembled from one part per responsibility, each in its own module:
window_layout (panels and docks), menus (actions), editors (the config in the panels),
run_control (the run state machine), live_run (the worker's events, redraws), run_files (save,
open), claims_view, presentation, window_settings and window_geometry; launch starts it.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QCheckBox, QInputDialog, QMainWindow, QMessageBox

from margin_explorer.core.run_status import RunStatus
from margin_explorer.widgets.dock_room import GiveWayWhenBlank

from .claims_view import ClaimsView
from .controller import TrainingController
from .editors import ConfigEditing
from .file_actions import FileActions
from .launch import configure_pyqtgraph, demo, launch, make_application
from .live_run import LiveRun
from .menus import MenuActions
from .presentation import Presentation
from .run_control import RunControl
from .run_files import RunFiles
from .run_manager import RunManager
from .session import RunSession
from .window_geometry import WindowGeometry
from .window_layout import build_panels
from .window_settings import WindowSettings

REDRAW_MS = 40  # 25 Hz: redraws are paced, never one per step
__all__ = ["MainWindow", "configure_pyqtgraph", "demo", "launch", "make_application"]  # the last four: app/launch.py


class MainWindow(ConfigEditing, RunControl, LiveRun, RunFiles, ClaimsView, MenuActions, Presentation, WindowSettings,
                 WindowGeometry, QMainWindow):
    def __init__(self, settings: QSettings | None = None, load_demo: bool = True):
        super().__init__()
        self.setWindowTitle("Margin Explorer")
        self.settings = settings or QSettings("MarginExplorer", "MarginExplorer")
        self.session: RunSession | None = None
        self.controller = TrainingController(self)
        self.status = RunStatus.IDLE  # the live run's, as the window last heard it
        self._config_changed_during_run = False
        self._discard_without_asking = False
        # what the editors were last loaded with (ConfigEditing): "modified" is measured against it
        self._base = None
        self._preset_title, self._preset_description, self._preset_claims = "", "", []
        self.theme = "light"
        self._editor_visibility: dict = {}  # the editors' docks before presentation mode hid them
        self._layout_before_full_screen = self._geometry_before_full_screen = self._layout_to_restore = None

        build_panels(self)
        self._update_status_bar()  # "idle" from the start, not a row of dashes
        self.runs = RunManager(self)
        self.files = FileActions(self)
        self.dataset_editor.settings = self.settings
        self.plots.settings = self.settings  # presentation mode's choice of plots
        self.boundary_room = GiveWayWhenBlank(self.docks["boundary"], self.boundary)  # d > 2: no room in a talk
        self._build_menus()
        self.setAcceptDrops(True)
        self._base_font = QApplication.font()
        self.runs.message.connect(lambda text, kind: self.banner.show_message(text, kind))
        self.runs.setupRequested.connect(self.use_setup)
        self.runs.continueRequested.connect(self.continue_run)
        self.runs.runsChanged.connect(self.update_claims)
        self.run_list.currentChanged.connect(lambda _row: self.update_claims())

        self.dataset_editor.model.changed.connect(self._dataset_changed)
        self.dataset_editor.model.changed.connect(self._inputs_changed)
        self.dataset_editor.error.connect(self.show_error)
        self.builder.specChanged.connect(self._network_changed)
        self.builder.specChanged.connect(self._inputs_changed)
        self.controls.settingsChanged.connect(self._inputs_changed)
        self.controls.runToggled.connect(self.toggle_run)
        self.controls.stepRequested.connect(self.step)
        self.controls.stopRequested.connect(self.stop)
        self.controls.resetRequested.connect(self.reset)
        self.controls.paceChanged.connect(self.controller.set_pace)
        self.controller.started.connect(self._on_started)
        self.controller.chunkReceived.connect(self._on_chunk)
        self.controller.boundaryReceived.connect(self._on_boundary)
        self.controller.statusChanged.connect(self._on_status)
        self.controller.errorOccurred.connect(self._on_worker_error)
        # separability's linear programs run in the worker: scipy stays out of the window's memory
        self.dataset_editor.set_geometry_service(self.controller.request_facts)
        self.controller.factsReceived.connect(self.dataset_editor.show_geometry)
        self.controller.devicesReceived.connect(self.controls.add_devices)

        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_MS)
        self.redraw_timer.timeout.connect(self._redraw)
        self.redraw_timer.start()
        self._drawn_version = -1
        self._list_refreshed = 0.0
        self._claims_checked = 0.0

        self._restore_settings()
        if load_demo:
            self._load_startup_config()
        self._inputs_changed()

    # ================================================================== drag and drop
    def dragEnterEvent(self, event):  # noqa: N802
        if any(url.toLocalFile().endswith(".h5") for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event):  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.toLocalFile().endswith(".h5")]
        if paths:
            self.open_runs(paths)
            event.acceptProposedAction()

    # ================================================================== closing and asking
    def confirm(self, title: str, text: str, offer_remember: bool = False) -> bool:
        """Ask a yes/no question (tests replace this). With ``offer_remember``, a "Don't ask again
        this session" box: ticked with Yes, discarding runs is not asked about again until the
        window closes (flipping through presets in a talk)."""
        box = QMessageBox(QMessageBox.Question, title, text, QMessageBox.Yes | QMessageBox.No, self)
        box.setDefaultButton(QMessageBox.No)
        remember = QCheckBox("Don't ask again this session", box)  # ours to read back (held here)
        if offer_remember:
            box.setCheckBox(remember)
        yes = box.exec() == QMessageBox.Yes
        if yes and offer_remember and remember.isChecked():
            self._discard_without_asking = True
        return yes

    def ask_steps(self, title: str, text: str, default: int) -> int | None:
        """Ask for a number of steps; None when cancelled (tests replace this)."""
        value, ok = QInputDialog.getInt(self, title, text, default, 1, 2_000_000_000, 100)
        return value if ok else None

    def closeEvent(self, event):  # noqa: N802
        if self.controller.state.going and self.session is not None and self.session.n_records > 1:
            if not self.confirm("Quit", "A run is in progress. Stop it and quit?"):
                event.ignore()
                return
        elif self.session is not None and self.session.has_unsaved_results and self.session.status.ended:
            if not self.confirm("Quit", "The run has not been saved. Quit anyway?"):
                event.ignore()
                return
        self.redraw_timer.stop()
        self.files.stop_recording()
        self.runs.close()
        self.controller.shutdown()
        self._save_settings()
        super().closeEvent(event)

    def detect_devices(self) -> None:
        """Offer cuda / mps in the Device list once the training process says it sees them:
        importing torch here would add ~220 MB to the window's process for a list of names."""
        self.controller.request_devices()
