"""The main window: dock panels for the dataset, architecture, run controls, plots and decision
boundary, wired to a TrainingController (a child process) and a RunSession."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QHBoxLayout, QLabel, QMainWindow,
                               QMessageBox, QPushButton, QToolBar, QWidget)

from core.config import DatasetConfig, RunConfig
from core.errors import MarginExplorerError
from core.presets import load_preset, preset_names
from core.runfile import RunReader
from widgets.architecture_builder import ArchitectureBuilder
from widgets.boundary_view import BoundaryView
from widgets.dataset_editor import DatasetEditor
from widgets.run_controls import RunControls
from widgets.trajectory_plots import PLOTS, TrajectoryPlots

from .controller import TrainingController
from .session import RunSession

DEMO_PRESET = "relu2-blobs"
REDRAW_MS = 40  # 25 Hz: redraws are paced, never one per step
ENDED = ("finished", "stopped", "diverged", "failed")


def _format(value, digits=5) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if value != value else f"{value:.{digits}g}"


class MessageBanner(QWidget):
    """A dismissable line at the top of the window for errors and warnings (never a dialog)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel()
        self.label.setObjectName("message-banner")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        close = QPushButton("✕")
        close.setFlat(True)
        close.setFixedWidth(28)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 2, 8, 2)
        layout.addWidget(self.label, stretch=1)
        layout.addWidget(close)
        self.setStyleSheet("background: #fdecea; color: #7a0012;")
        self.hide()

    def show_message(self, text: str, kind: str = "error") -> None:
        self.setStyleSheet("background: #fdecea; color: #7a0012;" if kind == "error"
                           else "background: #fff4e0; color: #5a3b00;")
        self.label.setText(text)
        self.show()

    def clear(self) -> None:
        self.label.setText("")
        self.hide()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


class MainWindow(QMainWindow):
    devicesFound = Signal(list)

    def __init__(self, settings: QSettings | None = None, load_demo: bool = True):
        super().__init__()
        self.setWindowTitle("Margin Explorer")
        self.settings = settings or QSettings("MarginExplorer", "MarginExplorer")
        self.session: RunSession | None = None
        self.controller = TrainingController(self)
        self._run_started = None
        self._status = "idle"
        self._config_changed_during_run = False

        self.dataset_editor = DatasetEditor()
        self.builder = ArchitectureBuilder()
        self.controls = RunControls()
        self.plots = TrajectoryPlots()
        self.boundary = BoundaryView()
        self.banner = MessageBanner()
        self._docks = {}
        for key, title, widget, area in [
            ("dataset", "Dataset", self.dataset_editor, Qt.LeftDockWidgetArea),
            ("architecture", "Architecture", self.builder, Qt.LeftDockWidgetArea),
            ("run", "Run", self.controls, Qt.RightDockWidgetArea),
            ("plots", "Plots", self.plots, Qt.RightDockWidgetArea),
            ("boundary", "Decision boundary", self.boundary, Qt.RightDockWidgetArea),
        ]:
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock-{key}")
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self._docks[key] = dock
        self.setDockNestingEnabled(True)
        self.tabifyDockWidget(self._docks["dataset"], self._docks["architecture"])
        self._docks["dataset"].raise_()
        self.splitDockWidget(self._docks["plots"], self._docks["run"], Qt.Horizontal)
        self.splitDockWidget(self._docks["run"], self._docks["boundary"], Qt.Vertical)
        self.resizeDocks([self._docks["dataset"], self._docks["plots"], self._docks["run"]], [330, 900, 300],
                         Qt.Horizontal)
        self.setCentralWidget(None)
        banner_bar = QToolBar("Messages")
        banner_bar.setObjectName("toolbar-messages")
        banner_bar.setMovable(False)
        banner_bar.addWidget(self.banner)
        self.addToolBar(Qt.TopToolBarArea, banner_bar)
        self._build_status_bar()
        self._build_menus()

        self.dataset_editor.model.changed.connect(self._inputs_changed)
        self.dataset_editor.error.connect(self.show_error)
        self.builder.specChanged.connect(self._inputs_changed)
        self.controls.settingsChanged.connect(self._inputs_changed)
        self.controls.runToggled.connect(self.toggle_run)
        self.controls.stepRequested.connect(self.step)
        self.controls.stopRequested.connect(self.stop)
        self.controls.resetRequested.connect(self.reset)
        self.controller.started.connect(self._on_started)
        self.controller.chunkReceived.connect(self._on_chunk)
        self.controller.boundaryReceived.connect(self._on_boundary)
        self.controller.statusChanged.connect(self._on_status)
        self.controller.errorOccurred.connect(self._on_worker_error)
        self.devicesFound.connect(self.controls.add_devices)

        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_MS)
        self.redraw_timer.timeout.connect(self._redraw)
        self.redraw_timer.start()
        self._drawn_version = -1

        self._restore_settings()
        if load_demo:
            self._load_startup_config()
        self._inputs_changed()

    # ================================================================== building
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_fields = {}
        for key, tip in [("status", "Run state"), ("step", "Steps taken"), ("rate", "Training steps per second"),
                         ("elapsed", "Training time"), ("margin", "Normalized margin gamma = q_min / ||theta||^M"),
                         ("loss", "log L (the loss itself underflows; its log does not)")]:
            label = QLabel("-")
            label.setObjectName(f"status-{key}")
            label.setToolTip(tip)
            label.setMinimumWidth(90)
            bar.addPermanentWidget(label)
            self.status_fields[key] = label

    def _action(self, menu, text, slot, shortcut=None, tip="", checkable=False):
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setToolTip(tip)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)  # shortcuts work with the menu bar hidden (presentation, full screen)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_action = self._action(file_menu, "&Open run…", self.open_dialog, "Ctrl+O", "Open a saved run (.h5)")
        self.save_action = self._action(file_menu, "&Save run…", self.save_dialog, "Ctrl+S", "Save the run as an HDF5 file")
        file_menu.addSeparator()
        self._action(file_menu, "Import dataset…", self.dataset_editor.import_dialog, tip="CSV or NPZ")
        self._action(file_menu, "Export dataset…", self.dataset_editor.export_dialog, tip="CSV or NPZ")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, "Ctrl+Q")

        edit_menu = bar.addMenu("&Edit")
        stack = self.dataset_editor.model.undo_stack
        undo = stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence("Ctrl+Z"))
        redo = stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for a in (undo, redo):
            edit_menu.addAction(a)
            self.addAction(a)
        self.undo_action, self.redo_action = undo, redo

        run_menu = bar.addMenu("&Run")
        self.run_action = self._action(run_menu, "Run / Pause", self.toggle_run, "Space", "Start, pause or resume")
        self._action(run_menu, "Step", lambda: self.step(self.controls.step_size.value()), "S", "Take k steps")
        self._action(run_menu, "Stop", self.stop, tip="End the run")
        self._action(run_menu, "Reset", self.reset, "R", "Back to the initialization")

        view_menu = bar.addMenu("&View")
        self.plot_actions = {}
        for spec in PLOTS:
            action = self._action(view_menu, spec.title, self._plots_chosen, tip=f"Show the {spec.title} plot",
                                  checkable=True)
            action.setChecked(True)
            self.plot_actions[spec.key] = action
        view_menu.addSeparator()
        self.log_x_action = self._action(view_menu, "Log step axis", lambda on: self.plots.set_log_x(on), "Ctrl+L",
                                         "Logarithmic step axis", checkable=True)
        self.fullscreen_action = self._action(view_menu, "Full screen", self.toggle_full_screen, "F11", checkable=True)
        view_menu.addSeparator()
        for dock in self._docks.values():
            view_menu.addAction(dock.toggleViewAction())

        preset_menu = bar.addMenu("&Presets")
        for name in preset_names():
            try:
                title = load_preset(name).name or name
            except MarginExplorerError:
                continue
            self._action(preset_menu, title, lambda _=False, n=name: self.load_preset(n), tip=name)

    # ================================================================== inputs and config
    def current_config(self) -> RunConfig:
        """The config the panels describe; raises MarginExplorerError naming what is wrong."""
        dataset = self.dataset_editor.model.dataset()
        data = {"architecture": self.builder.spec_dict(), "dataset": DatasetConfig.inline(dataset).to_dict(),
                **self.controls.sections(), "name": self._config_name()}
        return RunConfig.from_dict(data)

    def _config_name(self) -> str:
        return getattr(self, "_preset_title", "") or "untitled run"

    def problem(self) -> str | None:
        for problem in (self.dataset_editor.problem(), self.builder.problem(), self.controls.problem()):
            if problem:
                return problem
        return None

    def _inputs_changed(self) -> None:
        model = self.dataset_editor.model
        if model.n:
            self.builder.set_input_dim(model.dim)
        if self._status in ("idle",) or self._status in ENDED:
            self.boundary.set_points(model.X if model.n else model.X.reshape(0, 2), model.y)
        if self.controller.state == "paused" and self.session is not None and self.session.n_records <= 1:
            self._config_changed_during_run = True
        self._update_controls()

    def _update_controls(self) -> None:
        state = self.controller.state
        self.controls.set_state("idle" if state == "ended" else state, self.problem())

    def load_config(self, config: RunConfig) -> None:
        """Show a config in the panels (dataset, architecture, training settings)."""
        try:
            dataset = config.dataset.build()
        except MarginExplorerError as exc:
            self.show_error(str(exc))
            return
        self.dataset_editor.load(dataset)
        if config.dataset.kind == "generator":
            self.dataset_editor.show_generator(config.dataset.generator, config.dataset.params)
        self.builder.set_spec(config.architecture.to_dict())
        self.controls.set_sections(config)
        self._preset_title = config.name
        self._inputs_changed()

    def load_preset(self, name: str) -> None:
        if not self._may_discard("Load the preset and discard the current run?"):
            return
        try:
            config = load_preset(name)
        except MarginExplorerError as exc:
            self.show_error(str(exc))
            return
        self._stop_and_forget()
        self.load_config(config)
        if config.description:
            self.banner.show_message(f"{config.name}: {config.description}", kind="info")

    def _load_startup_config(self) -> None:
        text = self.settings.value("last_config", "")
        if text:
            try:
                self.load_config(RunConfig.from_json(str(text)))
                return
            except MarginExplorerError:
                pass  # a config from an older version: fall back to the demo
        self.load_config(load_preset(DEMO_PRESET))

    # ================================================================== run control
    def toggle_run(self) -> None:
        state = self.controller.state
        if state == "running":
            self.controller.pause()
        elif state == "paused" and not self._config_changed_during_run:
            self.controller.resume()
        else:
            self.start_run()
        self._update_controls()

    def start_run(self, run: bool = True) -> bool:
        problem = self.problem()
        if problem:
            self.show_error(problem)
            return False
        try:
            config = self.current_config()
        except MarginExplorerError as exc:
            self.show_error(str(exc))
            return False
        if not self._may_discard("Start a new run and discard the current one?"):
            return False
        self._stop_and_forget()
        self.banner.clear() if self.banner.label.text().startswith(("diverged", "Training", "Dataset")) else None
        dataset = self.dataset_editor.model.dataset()
        self.session = RunSession(config, dataset, name=config.name)
        self.plots.set_live(True)
        self.plots.set_sources([(self.session, self.session.name)])
        self.boundary.set_points(dataset.X, dataset.y)
        self._run_started = time.perf_counter()
        self._config_changed_during_run = False
        self._status = "running" if run else "paused"
        self.controller.start(config.to_json(), run=run)
        self.settings.setValue("last_config", config.to_json())
        self._update_controls()
        return True

    def step(self, k: int) -> None:
        if self.controller.state == "running":
            return
        if self.controller.state != "paused" or self._config_changed_during_run:
            if not self.start_run(run=False):
                return
        self.controller.step(k)
        self._update_controls()

    def stop(self) -> None:
        self.controller.stop()

    def reset(self) -> None:
        """Discard the run and show the initialization (a prepared, paused run at step 0)."""
        if not self._may_discard("Reset and discard the current run?"):
            return
        self._stop_and_forget()
        self.start_run(run=False)

    def _stop_and_forget(self) -> None:
        if self.controller.state in ("running", "paused"):
            self.controller.stop()
        self.session = None
        self.plots.set_sources([])
        self._status = "idle"

    # ================================================================== worker messages
    def _on_started(self, info: dict) -> None:
        if self.session is None:
            return
        self.session.info = info
        self.session.homogeneity = info.get("homogeneity", {})
        if info.get("homogeneity", {}).get("verdict") == "none":
            self.banner.show_message("This network is not homogeneous (" + info["homogeneity"]["explanation"]
                                     + "): the margin plots stay empty.", kind="info")

    def _on_chunk(self, payload: dict) -> None:
        if self.session is None:
            return
        self.session.append(payload["records"], payload["snapshot_steps"], payload["snapshot_params"],
                            payload["snapshot_metrics"], params=payload["params"], step=payload["step"])

    def _on_boundary(self, grid: dict) -> None:
        if self.session is None:
            return
        self.boundary.set_grid(grid["values"], grid["rect"], self.session.last("q_min", None))

    def _on_status(self, status: str, reason: str) -> None:
        self._status = status
        if self.session is not None and status != "running":
            self.session.status, self.session.reason = status, reason
        if status == "diverged":
            self.show_error(reason)
        if status in ENDED:
            self.plots.refresh(force=True)  # the last chunk, before the axes fit the data
            self.plots.set_live(False)
        self._update_controls()
        self._update_status_bar()

    def _on_worker_error(self, message: str) -> None:
        self._status = "failed"
        if self.session is not None:
            self.session.status, self.session.reason = "failed", message.splitlines()[0]
        self.show_error(message.splitlines()[0] if not message.startswith("internal") else message)
        self._update_controls()

    def show_error(self, message: str) -> None:
        self.banner.show_message(message, kind="error")

    # ================================================================== drawing
    def _redraw(self) -> None:
        session = self.session
        if session is None:
            return
        self.plots.refresh()  # budgeted: stale plots are redrawn a few per tick
        if session.version == self._drawn_version:
            return
        self._drawn_version = session.version
        margins = session.get("sample_margins")
        if margins is not None and len(margins):
            self.boundary.set_support(session.dataset.X, margins[-1], session.config.recording.support_tolerance)
        self._update_status_bar()

    def _update_status_bar(self) -> None:
        session = self.session
        fields = self.status_fields
        fields["status"].setText(self._status)
        if session is None:
            for key in ("step", "rate", "elapsed", "margin", "loss"):
                fields[key].setText("-")
            return
        elapsed = float(session.last("wall_time", 0.0))
        fields["step"].setText(f"step {session.step:,}")
        fields["rate"].setText(f"{session.step / elapsed:,.0f} steps/s" if elapsed > 0 else "-")
        fields["elapsed"].setText(f"{elapsed:.1f} s")
        fields["margin"].setText(f"γ {_format(session.last('normalized_margin'))}")
        fields["loss"].setText(f"log L {_format(session.last('log_loss'))}")

    # ================================================================== files
    def save_dialog(self) -> None:
        if self.session is None or self.session.n_records == 0:
            self.show_error("Nothing to save yet: run first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save run", f"{self.session.name or 'run'}.h5", "Runs (*.h5)")
        if path:
            self.save_run(path)

    def save_run(self, path: str) -> bool:
        if self.session is None or self.session.n_records == 0:
            self.show_error("Nothing to save yet: run first.")
            return False
        try:
            self.session.save(path, device=self.session.info.get("device", "cpu"))
        except (MarginExplorerError, OSError) as exc:
            self.show_error(f"Could not save {path}: {exc}")
            return False
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def open_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open runs", "", "Runs (*.h5);;All files (*)")
        if paths:
            self.open_runs(paths)

    def open_runs(self, paths: list[str]) -> bool:
        """Open a saved run: its setup fills the panels and its trajectories the plots (comparing
        several runs arrives with the saved-runs issue; the first one is shown)."""
        if not self._may_discard("Open the run and discard the current one?"):
            return False
        try:
            with RunReader(paths[0]) as reader:
                session = RunSession.from_reader(reader)
        except MarginExplorerError as exc:
            self.show_error(str(exc))
            return False
        self._stop_and_forget()
        self.load_config(session.config)
        self.session = session
        self._status = session.status
        self.plots.set_live(False)
        self.plots.set_sources([(session, session.name)])
        self.boundary.set_points(session.dataset.X, session.dataset.y)
        if session.dataset.dim == 2 and session.params is not None:
            from core.network import NumpyNetwork

            from .worker import boundary_grid

            grid = boundary_grid(NumpyNetwork(session.config.architecture), session.params, session.dataset.X)
            self.boundary.set_grid(grid["values"], grid["rect"], session.last("q_min", None))
        if len(paths) > 1:
            self.banner.show_message("Comparing several runs arrives with the saved-runs feature; showing the first.",
                                     kind="info")
        self._drawn_version = -1
        self._redraw()
        self._update_controls()
        return True

    # ================================================================== closing and asking
    def confirm(self, title: str, text: str) -> bool:
        """Ask a yes/no question (tests replace this)."""
        return QMessageBox.question(self, title, text, QMessageBox.Yes | QMessageBox.No,
                                    QMessageBox.No) == QMessageBox.Yes

    def _may_discard(self, question: str) -> bool:
        session = self.session
        if session is None:
            return True
        if self.controller.state in ("running", "paused") and session.n_records > 1 and session.saved_path is None:
            return self.confirm("Run in progress", f"A run is in progress and not saved. {question}")
        if session.has_unsaved_results and session.status in ENDED:
            return self.confirm("Unsaved run", f"The run has not been saved. {question}")
        return True

    def closeEvent(self, event):  # noqa: N802
        if self.controller.state in ("running", "paused") and self.session is not None and self.session.n_records > 1:
            if not self.confirm("Quit", "A run is in progress. Stop it and quit?"):
                event.ignore()
                return
        elif self.session is not None and self.session.has_unsaved_results and self.session.status in ENDED:
            if not self.confirm("Quit", "The run has not been saved. Quit anyway?"):
                event.ignore()
                return
        self.redraw_timer.stop()
        self.controller.shutdown()
        self._save_settings()
        super().closeEvent(event)

    # ================================================================== settings and view
    def _save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("window_state", self.saveState())
        s.setValue("visible_plots", json.dumps(self.plots.visible))
        s.setValue("log_x", bool(self.log_x_action.isChecked()))
        try:
            s.setValue("last_config", self.current_config().to_json())
        except MarginExplorerError:
            pass
        s.sync()

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 920)
        state = s.value("window_state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        try:
            visible = json.loads(str(s.value("visible_plots", "")))
        except (json.JSONDecodeError, TypeError):
            visible = None
        if isinstance(visible, list) and visible:
            for key, action in self.plot_actions.items():
                action.setChecked(key in visible)
            self.plots.set_visible_plots(visible)
        if str(s.value("log_x", "false")).lower() == "true":
            self.log_x_action.setChecked(True)
            self.plots.set_log_x(True)

    def _plots_chosen(self) -> None:
        self.plots.set_visible_plots([k for k, a in self.plot_actions.items() if a.isChecked()])

    def toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()
        self.fullscreen_action.setChecked(self.isFullScreen())

    def detect_devices(self) -> None:
        """Find cuda / mps without blocking start-up (importing torch takes a second or two)."""
        def probe():
            devices = []
            try:
                import torch

                if torch.cuda.is_available():
                    devices += [f"cuda:{i}" if i else "cuda" for i in range(torch.cuda.device_count())]
                if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
                    devices.append("mps")
            except Exception:  # no torch, or a broken driver: the cpu stays
                pass
            self.devicesFound.emit(devices)

        threading.Thread(target=probe, name="device-probe", daemon=True).start()


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(background="w", foreground="#222", antialias=False, useOpenGL=False)


def make_application(argv=None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or sys.argv)
    app.setApplicationName("Margin Explorer")
    app.setOrganizationName("MarginExplorer")
    configure_pyqtgraph()
    return app


def launch(open_paths: list[str] | None = None) -> int:
    app = make_application()
    window = MainWindow()
    window.show()
    window.controller.warm_up()
    window.detect_devices()
    if open_paths:
        QTimer.singleShot(0, lambda: window.open_runs(open_paths))
    return app.exec()


def demo(preset: str, steps: int, screenshot: str, timeout: float = 300.0) -> int:
    """Open the window on a preset, run ``steps`` steps, save a screenshot of the whole window, exit."""
    app = make_application()
    settings = QSettings(os.devnull, QSettings.IniFormat)  # a demo neither reads nor changes the user's settings
    window = MainWindow(settings=settings, load_demo=False)
    window.load_config(load_preset(preset))
    window.banner.clear()
    window.show()
    result = {"code": 0}

    def shoot():
        window.plots.refresh(force=True)
        app.processEvents()
        if not window.grab().save(screenshot):
            print(f"error: could not write {screenshot}", file=sys.stderr)
            result["code"] = 1
        window.session = None  # a demo's run is not the user's: close without asking
        window.close()

    if steps <= 0:
        QTimer.singleShot(0, shoot)
    else:
        window.controls.steps.setValue(steps)
        deadline = time.monotonic() + timeout

        def wait_for_end():
            if window._status in ENDED or time.monotonic() > deadline:
                QTimer.singleShot(300, shoot)  # let the last chunk and boundary arrive
            else:
                QTimer.singleShot(50, wait_for_end)

        QTimer.singleShot(0, lambda: (window.start_run(), wait_for_end()))
    app.exec()
    return result["code"]
