"""The main window: dock panels for the dataset, architecture, run controls, plots and decision
boundary, wired to a TrainingController (a child process) and a RunSession."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoGroup
from PySide6.QtWidgets import (QApplication, QCheckBox, QDockWidget, QInputDialog, QMainWindow, QMessageBox, QSplitter,
                               QTabWidget, QVBoxLayout, QWidget)

from margin_explorer.core.config import MODIFIABLE, DatasetConfig, RunConfig
from margin_explorer.core.errors import MarginExplorerError
from margin_explorer.core.presets import load_preset, preset_names
from margin_explorer.widgets.architecture_builder import ArchitectureBuilder
from margin_explorer.widgets.boundary_view import BoundaryView
from margin_explorer.widgets.claims_panel import ClaimsPanel
from margin_explorer.widgets.compare_table import CompareTable
from margin_explorer.widgets.dataset_editor import DatasetEditor
from margin_explorer.widgets.message_banner import MessageBanner
from margin_explorer.widgets.replay_bar import ReplayBar
from margin_explorer.widgets.run_controls import RunControls
from margin_explorer.widgets.run_list import RunList
from margin_explorer.widgets.trajectory_plots import PLOTS, X_AXES, TrajectoryPlots

from .controller import TrainingController
from .family_session import FamilySession
from . import help_menu
from .dock_focus import DockFocus
from .file_actions import FileActions
from .run_manager import RunManager
from .scratch_settings import scratch_settings
from .session import RunSession
from .status_bar import RunStatus
from .sweep_actions import SweepActions
from .theme import THEMES, apply_theme

DEMO_PRESET = "relu2-blobs"
REDRAW_MS = 40  # 25 Hz: redraws are paced, never one per step
ENDED = ("finished", "stopped", "diverged", "failed")


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None, load_demo: bool = True):
        super().__init__()
        self.setWindowTitle("Margin Explorer")
        self.settings = settings or QSettings("MarginExplorer", "MarginExplorer")
        self.session: RunSession | None = None
        self.controller = TrainingController(self)
        self._status = "idle"
        self._config_changed_during_run = False

        self.dataset_editor = DatasetEditor()
        self.builder = ArchitectureBuilder()
        self.controls = RunControls()
        self.plots = TrajectoryPlots()
        self.boundary = BoundaryView()
        self.replay_bar = ReplayBar()
        self.run_list = RunList()
        self.compare_table = CompareTable()
        self.claims_panel = ClaimsPanel()
        self.banner = MessageBanner()
        boundary_panel = QWidget()
        boundary_layout = QVBoxLayout(boundary_panel)
        boundary_layout.setContentsMargins(0, 0, 0, 0)
        boundary_layout.addWidget(self.boundary, stretch=1)
        boundary_layout.addWidget(self.replay_bar)
        # the claims sit under the run controls, always visible beside the run (tabifying a
        # separate dock there left Qt's orphan tab bar painted over the plots)
        run_panel = QSplitter(Qt.Vertical)
        run_panel.addWidget(self.controls)
        run_panel.addWidget(self.claims_panel)
        run_panel.setSizes([400, 230])
        runs_panel = QTabWidget()
        runs_panel.addTab(self.run_list, "Runs")
        runs_panel.addTab(self.compare_table, "Compare")
        self._docks = {}
        for key, title, widget, area in [
            ("dataset", "Dataset", self.dataset_editor, Qt.LeftDockWidgetArea),
            ("architecture", "Architecture", self.builder, Qt.LeftDockWidgetArea),
            ("runs", "Runs", runs_panel, Qt.LeftDockWidgetArea),
            ("run", "Run", run_panel, Qt.RightDockWidgetArea),
            ("plots", "Plots", self.plots, Qt.RightDockWidgetArea),
            ("boundary", "Decision boundary", boundary_panel, Qt.RightDockWidgetArea),
        ]:
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock-{key}")
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self._docks[key] = dock
        self.setDockNestingEnabled(True)
        self.tabifyDockWidget(self._docks["dataset"], self._docks["architecture"])
        self.tabifyDockWidget(self._docks["architecture"], self._docks["runs"])
        self._docks["dataset"].raise_()
        self.splitDockWidget(self._docks["plots"], self._docks["run"], Qt.Horizontal)
        self.splitDockWidget(self._docks["run"], self._docks["boundary"], Qt.Vertical)
        # the boundary is about square: height beyond its width is better spent on the claims
        self.resizeDocks([self._docks["run"], self._docks["boundary"]], [620, 300], Qt.Vertical)
        self.resizeDocks([self._docks["dataset"], self._docks["plots"], self._docks["run"]], [330, 900, 300],
                         Qt.Horizontal)
        self.setCentralWidget(None)
        self.addToolBar(Qt.TopToolBarArea, self.banner)
        self._build_status_bar()
        self.runs = RunManager(self)
        self.files = FileActions(self)
        self.dataset_editor.settings = self.settings
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

    # ================================================================== building
    def _build_status_bar(self) -> None:
        self.run_status = RunStatus(self.statusBar())
        self.status_fields = self.run_status.fields
        self.run_status.show(self._status, None)  # "idle" from the start, not a row of dashes

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
        self.files.build(file_menu)
        self.sweeps = SweepActions(self, file_menu)  # File > Open sweep, the Sweep dock (app/sweep_actions.py)

        edit_menu = bar.addMenu("&Edit")
        # each editor keeps its own history; Undo acts on the one whose tab is in front
        self.undo_group = QUndoGroup(self)
        stacks = {"dataset": self.dataset_editor.model.undo_stack, "architecture": self.builder.undo_stack}
        for key, stack in stacks.items():
            self.undo_group.addStack(stack)
            self._docks[key].visibilityChanged.connect(
                lambda shown, s=stack: shown and self.undo_group.setActiveStack(s))
        self.undo_group.setActiveStack(self.dataset_editor.model.undo_stack)
        undo = self.undo_group.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence("Ctrl+Z"))
        redo = self.undo_group.createRedoAction(self, "&Redo")
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
        self._action(view_menu, "Reset zoom", lambda: (self.plots.reset_zoom(), self.boundary.autoRange()), "Ctrl+0",
                     "Every plot and the decision boundary back to their data (right-click a plot: log or linear y)")
        self.dock_focus = DockFocus(self, self._docks)
        self.boundary_focus_action = self._action(
            view_menu, "Enlarge decision boundary", lambda on: self.dock_focus.toggle("boundary", on), "Ctrl+B",
            "The decision boundary takes the room of the plots and the Run panel (again: back)", checkable=True)
        axis_menu = view_menu.addMenu("Horizontal axis")
        self.x_axis_group = QActionGroup(self)
        self.x_axis_actions = {}
        for mode, label in X_AXES.items():
            action = self._action(axis_menu, label, lambda _=False, m=mode: self.set_x_axis(m), checkable=True,
                                  tip="Runs with different step sizes compare best at equal loss (-log L)")
            self.x_axis_group.addAction(action)
            self.x_axis_actions[mode] = action
        self.x_axis_actions["step"].setChecked(True)
        self.fullscreen_action = self._action(view_menu, "Full screen", self.toggle_full_screen, "F11", checkable=True)
        self.presentation_action = self._action(view_menu, "Presentation mode", self.toggle_presentation, "F5",
                                                "Large type and lines, editors hidden, full screen: for talks",
                                                checkable=True)
        theme_menu = view_menu.addMenu("Theme")
        self.theme_group = QActionGroup(self)
        self.theme_actions = {}
        for theme in THEMES:
            action = self._action(theme_menu, theme.capitalize(), lambda _=False, t=theme: self.set_theme(t),
                                  checkable=True, tip="Light suits projectors")
            self.theme_group.addAction(action)
            self.theme_actions[theme] = action
        self.theme_actions["light"].setChecked(True)
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

        self.help_actions = help_menu.build(self, bar.addMenu("&Help"))

    # ================================================================== inputs and config
    def current_config(self) -> RunConfig:
        """The config the panels describe; raises MarginExplorerError naming what is wrong. A
        config loaded into the panels and then edited is named "... (modified)" and lists the
        sections that changed in ``modified``."""
        dataset = self.dataset_editor.model.dataset()
        data = {"architecture": self.builder.spec_dict(), "dataset": DatasetConfig.inline(dataset).to_dict(),
                **self.controls.sections(), "name": self._config_name(),
                "description": getattr(self, "_preset_description", ""), "claims": getattr(self, "_preset_claims", [])}
        config = RunConfig.from_dict(data)
        modified = self._modified_sections(config, dataset)
        if modified:
            config.modified = modified
            config.name = f"{config.name} (modified)"
            base = getattr(self, "_base", None)
            if "dataset" in modified and base is not None and dataset.name == base[1].name:
                config.dataset.name = f"{dataset.name}, edited"  # hand edits keep the model's name
        return config

    def _modified_sections(self, config: RunConfig, dataset) -> list[str]:
        """The sections of ``config`` that differ from the config last loaded into the panels
        (a preset, a run's setup), plus what that config already listed as modified."""
        base = getattr(self, "_base", None)
        if base is None:
            return []
        loaded, loaded_data = base
        changed = set(loaded.modified)
        if not (np.array_equal(dataset.X, loaded_data.X) and np.array_equal(dataset.y, loaded_data.y)):
            changed.add("dataset")
        ours, theirs = config.to_dict(), loaded.to_dict()
        for key in ("architecture", "loss", "optimizer", "family"):
            if ours.get(key) != theirs.get(key):
                changed.add(key)
        # the step count and the device change how long and where, not the trajectory
        if {k: v for k, v in ours["run"].items() if k not in ("steps", "device")} != \
                {k: v for k, v in theirs["run"].items() if k not in ("steps", "device")}:
            changed.add("run")
        return [key for key in MODIFIABLE if key in changed]

    def _config_name(self) -> str:
        return getattr(self, "_preset_title", "") or "untitled run"

    def problem(self) -> str | None:
        for problem in (self.dataset_editor.problem(), self.builder.problem(), self.controls.problem()):
            if problem:
                return problem
        return None

    def _dataset_changed(self) -> None:
        """New points (Clear, Generate, an edit, a preset): a finished run's heatmap, contours and
        support-vector rings no longer describe them."""
        if self.controller.state not in ("running", "paused"):
            self.boundary.clear_run()

    def _network_changed(self) -> None:
        """The "not homogeneous" message is taken back once the network is homogeneous again."""
        if self.builder.badge.property("verdict") != "none":
            self.banner.drop("homogeneity")

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

    def load_config(self, config: RunConfig, dataset=None) -> None:
        """Show a config in the panels (dataset, architecture, training settings). A saved run
        passes its own ``dataset`` (the file's dataset/X and y): its config's dataset is never
        built, since a "file" dataset there names a path the run file chose."""
        if dataset is None:
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
        self._preset_title = config.name.removesuffix(" (modified)")
        self._preset_description, self._preset_claims = config.description, list(config.claims)
        self._base = (config, dataset)  # what "modified" is measured against
        self._inputs_changed()
        self.update_claims()

    def load_preset(self, name: str) -> None:
        if not self._may_discard("Load the preset and discard the current run?"):
            return
        try:
            config = load_preset(name)
        except MarginExplorerError as exc:
            self.show_error(str(exc))
            return
        self._stop_and_forget()
        self.banner.clear()  # the last preset's or run's message is about something else
        self.load_config(config)
        self.set_x_axis_scale(config.view.x_axis if config.view is not None else "log")
        if config.description:
            self.banner.show_message(f"{config.name}: {config.description}", kind="info", topic="preset")

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

    def start_run(self, run: bool = True, *, config: RunConfig | None = None, params=None, start_step: int = 0,
                  parent: str = "", optimizer_state: dict | None = None) -> bool:
        """Start a live run from the editors (or from ``config``; ``params`` and ``start_step``
        continue the run in file ``parent``)."""
        if config is not None:
            return self._start(config, config.dataset.build(), run, params, start_step, parent, optimizer_state)
        problem = self.problem()
        if problem:
            self.show_error(problem)
            return False
        try:
            config = self.current_config()
        except MarginExplorerError as exc:
            self.show_error(str(exc))
            return False
        return self._start(config, self.dataset_editor.model.dataset(), run)

    def _start(self, config, dataset, run, params=None, start_step=0, parent="", optimizer_state=None) -> bool:
        if not self._may_discard("Start a new run and discard the current one?"):
            return False
        self._stop_and_forget()
        self.banner.drop("", "run", "homogeneity")  # errors and notes of earlier runs and files; a preset's text stays
        if config.family is not None:
            self.session = FamilySession(config, dataset)
        else:
            self.session = RunSession(config, dataset, name=config.name)
            self.session.parent, self.session.start_step = parent, start_step
        self.plots.set_live(True)
        self.runs.set_live(self.session)
        self.run_list.table.setCurrentCell(0, 0)
        self.boundary.set_points(dataset.X, dataset.y)
        self._config_changed_during_run = False
        # a new session counts its versions from 0 again: one that reached the last run's final
        # version within a redraw tick was never drawn (no rings, an old status bar)
        self._drawn_version = -1
        self._status = "running" if run else "paused"
        self.controller.start(config.to_json(), run=run, params=params, start_step=start_step,
                              optimizer_state=optimizer_state)
        if params is None:
            self.settings.setValue("last_config", config.to_json())
        self._update_controls()
        return True

    def use_setup(self, config: RunConfig, dataset=None) -> None:
        """Put a run's dataset, network and settings into the editors, ready for a new run."""
        self.load_config(config, dataset)
        self.statusBar().showMessage("The run's setup is in the editors: press Run to start a new run from it", 6000)

    def continue_run(self, entry) -> bool:
        """Train on from ``entry``'s last parameters as a new live run that records its parent."""
        session = entry.session
        if session.params is None:
            self.show_error(f"{entry.name} has no saved parameters to continue from.")
            return False
        if entry.live:
            self.show_error("Continue a saved run; the live run continues with Run / Resume.")
            return False
        if hasattr(session, "members"):
            self.show_error("Continue works on one run: open one member's file on its own to continue it.")
            return False
        more = self.ask_steps("Continue the run", f"Train {entry.name} on from step {session.step:,}: how many more "
                              "steps?", default=max(session.step - getattr(session, "start_step", 0), 100))
        if more is None:
            return False
        config = session.config.copy()
        config.dataset = DatasetConfig.inline(session.dataset)  # the run's own points, never a path from its file
        config.run.steps = session.step + more
        config.name = f"{entry.name} (continued)"
        return self.start_run(config=config, params=session.params, start_step=session.step,
                              parent=entry.path or "", optimizer_state=session.optimizer_state)

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
        self.runs.set_live(None)
        self._status = "idle"
        self._update_status_bar()  # no old run's numbers beside the next preset

    # ================================================================== worker messages
    def _on_started(self, info: dict) -> None:
        if self.session is None:
            return
        self.session.info = info
        self.session.homogeneity = info.get("homogeneity", {})
        for member in getattr(self.session, "members", ()):
            member.info, member.homogeneity = info, self.session.homogeneity
        if info.get("engine_note"):
            self.banner.show_message(f"Family of {info['family_size']}: {info['engine_note']}.", kind="info",
                                     topic="run")
        if info.get("homogeneity", {}).get("verdict") == "none":
            # the explanation starts "not homogeneous: ..." itself
            self.banner.show_message(f"This network is {info['homogeneity']['explanation']}; the margin plots stay "
                                     "empty.", kind="info", topic="homogeneity")

    def _on_chunk(self, payload: dict) -> None:
        if self.session is None:
            return
        if "members" in payload:
            self.session.append_members(payload["members"])
            return
        self.session.append(payload["records"], payload["snapshot_steps"], payload["snapshot_params"],
                            payload["snapshot_metrics"], params=payload["params"], step=payload["step"],
                            events=payload.get("events", ()), optimizer_state=payload.get("optimizer_state"))
        if payload.get("events"):  # a collapse or a stuck run: said where the user looks (core/health.py)
            self.banner.show_message(payload["events"][-1]["message"], kind="warning")
            self._update_status_bar()

    def _on_boundary(self, grid: dict) -> None:
        if self.session is None or self.runs.replaying is not None or self.runs.current() is not self.runs.live_entry():
            return  # the boundary shows a replayed snapshot or another run
        self.boundary.set_grid(grid["values"], grid["rect"], self.session.last("q_min", None))

    def _on_status(self, status: str, reason: str) -> None:
        self._status = status
        if self.session is not None:  # "running" too: the run list said "ready" while a run ran
            self.session.status, self.session.reason = status, reason
        if status == "diverged":
            self.banner.show_message(reason, kind="error", topic="run")
        if status in ENDED:
            if self.plots.live:
                self.plots.set_live(False)  # redraws every plot with the last chunk, axes fitted
            else:
                self.plots.refresh(force=True)
            self._follow_live_snapshots()
            self.runs.refresh_list()
            self.update_claims()
        self._update_controls()
        self._update_status_bar()

    def _on_worker_error(self, message: str) -> None:
        self._status = "failed"
        if self.session is not None:
            self.session.status, self.session.reason = "failed", message.splitlines()[0]
        self.banner.show_message(message.splitlines()[0] if not message.startswith("internal") else message,
                                 kind="error", topic="run")
        self._update_controls()
        self._update_status_bar()  # "failed", not "running ... left" of a process that is gone

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
        margins = getattr(session, "lead", session).get("sample_margins")  # a family's boundary is member 0's
        showing_live = self.runs.replaying is None and self.runs.current() is self.runs.live_entry()
        if margins is not None and len(margins) and showing_live:
            self.boundary.set_support(session.dataset.X, margins[-1], session.config.recording.support_tolerance)
        now = time.perf_counter()
        if now - self._claims_checked > 1.0:
            self.update_claims()
        if now - self._list_refreshed > 0.5:  # steps and status in the run list, twice a second
            self._list_refreshed = now
            self.runs.refresh_list()
            self._follow_live_snapshots()
        self._update_status_bar()

    def _update_status_bar(self) -> None:
        self.run_status.show(self._status, self.session)

    # ================================================================== files
    def save_run(self, path: str, overwrite: bool = False) -> bool:
        """Save the live run; ``overwrite`` (the user confirmed) may replace run files, nothing
        else (core/output_path.py): a refusal goes to the banner."""
        if self.session is None or self.session.n_records == 0:
            self.show_error("Nothing to save yet: run first.")
            return False
        try:
            written = self.session.save(path, device=self.session.info.get("device", "cpu"), overwrite=overwrite) or [path]
        except (MarginExplorerError, OSError) as exc:
            self.show_error(f"Could not save: {exc}")  # the message names the file
            return False
        live = self.runs.live_entry()
        if live is not None:
            live.path = str(written[0])
        self.files.remember(written)
        more = f" .. {Path(written[-1]).name} ({len(written)} runs of the family)" if len(written) > 1 else ""
        self.statusBar().showMessage(f"Saved {written[0]}{more}", 5000)
        return True

    def open_runs(self, paths: list[str]) -> bool:
        """Add saved runs to the plots, beside whatever is there. The first run's setup fills the
        editors unless a live run is using them; a bad file gets its message and costs nothing."""
        try:
            return self._open_runs(paths)
        except Exception as exc:  # a bug, not the user's file: the window says so, not only stderr
            import traceback

            traceback.print_exc()
            self.show_error(f"Could not open {', '.join(map(str, paths))[:500]}: unexpected {type(exc).__name__}: {exc}")
            return False

    def _open_runs(self, paths: list[str]) -> bool:
        opened = self.runs.open([str(p) for p in paths])
        if not opened:
            return False
        self.files.remember([e.path for e in opened])
        if self.controller.state not in ("running", "paused"):
            self.load_config(opened[0].session.config, opened[0].session.dataset)
            self.runs.show_final(opened[0])  # loading its points cleared the boundary's run picture
            if not self.banner.text.startswith(opened[0].name):
                self.banner.clear()
        self.plots.set_live(False)
        self.plots.refresh(force=True)
        self._update_controls()
        return True

    def _follow_live_snapshots(self) -> None:
        """Offer the live run's snapshots on the replay bar unless another run or a replay is shown."""
        live = self.runs.live_entry()
        current = self.runs.current() or live
        if live is not None and current is live and self.runs.replaying is None:
            self.replay_bar.set_steps(live.session.snapshot_steps.view())

    def update_claims(self) -> None:
        """Judge the selected run (or the live one) by the claims its preset makes."""
        self._claims_checked = time.perf_counter()
        from margin_explorer.core.claims import Verdict, judge, judge_family, parse_claims

        entry = self.runs.current() or self.runs.live_entry()
        if entry is None or (entry.live and entry.session.n_records == 0):
            # nothing run yet: the claims of the preset in the editors, waiting to be judged
            claims = parse_claims(getattr(self, "_preset_claims", []))
            waiting = ("judged on the run as it goes: waiting for its first records" if entry is not None
                       else "judged on the run: press Run (Space)")
            pending = [Verdict(c.check, c.statement, None, waiting) for c in claims]
            self.claims_panel.show_verdicts(self._config_name() if pending else "", pending)
            return
        if not entry.session.config.claims or entry.session.n_records == 0:
            self.claims_panel.show_verdicts("", [])
            return

        session = entry.session
        specs = session.config.claim_specs()
        if hasattr(session, "members"):
            verdicts = judge_family([judge(data, specs) for data in session.run_datas()])
        else:
            verdicts = judge(session.run_data(), specs)
        self.claims_panel.show_verdicts(session.config.name or entry.name, verdicts)

    def set_x_axis_scale(self, scale: str) -> None:
        """``log`` or ``linear`` steps (View > Log step axis); a preset opens on its own."""
        on = scale == "log"
        self.log_x_action.setChecked(on)
        self.plots.set_log_x(on)

    def set_x_axis(self, mode: str) -> None:
        self.plots.set_x_axis(mode)
        self.x_axis_actions[mode].setChecked(True)
        self.settings.setValue("x_axis", mode)

    # ================================================================== drag and drop
    def dragEnterEvent(self, event):  # noqa: N802
        if any(url.toLocalFile().endswith(".h5") for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event):  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.toLocalFile().endswith(".h5")]
        if paths:
            self.open_runs(paths)
            event.acceptProposedAction()

    # ================================================================== presentation
    def set_theme(self, theme: str) -> None:
        self.theme = theme
        self.theme_actions[theme].setChecked(True)
        apply_theme(self, theme, self._base_font, 1.6 if self.presentation_action.isChecked() else 1.0)
        self.settings.setValue("theme", theme)

    def toggle_presentation(self, on: bool | None = None) -> None:
        """For talks: large type and lines, the editors hidden, full screen."""
        on = self.presentation_action.isChecked() if on is None else on
        self.presentation_action.setChecked(on)
        editors = ("dataset", "architecture", "runs", "run")
        if on:
            if not self.isFullScreen():  # the layout to come back to, before the editors are hidden
                self._layout_before_full_screen, self._geometry_before_full_screen = self.saveState(), self.geometry()
            self._editor_visibility = {k: self._docks[k].isVisible() for k in editors}
            for k in editors:
                self._docks[k].hide()
            self.plots.set_pen_width(3)
            self._enter_full_screen(keep_layout=False)
        else:
            for k in editors:
                self._docks[k].setVisible(getattr(self, "_editor_visibility", {}).get(k, True))
            self.plots.set_pen_width(1)
            apply_theme(self, getattr(self, "theme", "light"), self._base_font, 1.0)  # the type first: the
            self._leave_full_screen()  # layout restored on the way back is measured in it
        if on:
            apply_theme(self, getattr(self, "theme", "light"), self._base_font, 1.6)
        self.settings.setValue("presentation", on)

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

    def _may_discard(self, question: str) -> bool:
        session = self.session
        if session is None or getattr(self, "_discard_without_asking", False):
            return True
        if self.controller.state in ("running", "paused") and session.n_records > 1 and session.saved_path is None:
            return self.confirm("Run in progress", f"A run is in progress and not saved. {question}", True)
        if session.has_unsaved_results and session.status in ENDED:
            return self.confirm("Unsaved run", f"The run has not been saved. {question}", True)
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
        self.files.stop_recording()
        self.runs.close()
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
        restored = isinstance(geometry, QByteArray) and not geometry.isEmpty() and self.restoreGeometry(geometry)
        if not (restored and self._fits_screen()):
            self._fit_screen()
        state = s.value("window_state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
            self.banner.sync()
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
        mode = str(s.value("x_axis", "step"))
        if mode in X_AXES and mode != "step":
            self.set_x_axis(mode)
        theme = str(s.value("theme", "light"))
        if theme in THEMES and theme != "light":
            self.set_theme(theme)
        if str(s.value("presentation", "false")).lower() == "true":
            QTimer.singleShot(0, lambda: self.toggle_presentation(True))

    def _plots_chosen(self) -> None:
        self.plots.set_visible_plots([k for k, a in self.plot_actions.items() if a.isChecked()])

    def _available(self):
        screen = self.screen() or QApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else None

    def _fits_screen(self) -> bool:
        """A saved geometry is kept only if the window fits the screen it opens on now."""
        available = self._available()
        return available is None or (self.width() <= available.width() and self.height() <= available.height())

    def _fit_screen(self) -> None:
        """1500x920 where there is room; else the available screen (a 1280x720 projector)."""
        available = self._available()
        if available is None:
            self.resize(1500, 920)
            return
        frame = self.frameGeometry().size() - self.geometry().size()  # the window manager's title and borders
        self.resize(min(1500, available.width() - frame.width()), min(920, available.height() - frame.height()))
        self.move(available.topLeft())

    def _enter_full_screen(self, keep_layout: bool = True) -> None:
        if not self.isFullScreen():
            if keep_layout:  # full screen re-shares the docks' room: remember it as it is
                self._layout_before_full_screen, self._geometry_before_full_screen = self.saveState(), self.geometry()
            self.showFullScreen()
        self.fullscreen_action.setChecked(True)

    def _leave_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
            # restored once the normal size is back (resizeEvent): at the full screen's size the
            # docks' shares came out wrong (the Dataset panel 60% wider, the plots squeezed)
            self._layout_to_restore = getattr(self, "_layout_before_full_screen", None)
            geometry = getattr(self, "_geometry_before_full_screen", None)
            if geometry is not None:  # without a window manager, showNormal alone kept the screen's size
                self.setGeometry(geometry)
            QTimer.singleShot(100, self._restore_layout)  # in case no resize comes (same size)
        self.fullscreen_action.setChecked(False)

    def _restore_layout(self) -> None:
        state = getattr(self, "_layout_to_restore", None)
        if state is not None and not self.isFullScreen():
            self._layout_to_restore = None
            self.restoreState(state)
            self.banner.sync()

    def resizeEvent(self, event):  # noqa: N802
        super().resizeEvent(event)
        self._restore_layout()

    def toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self._leave_full_screen()
        else:
            self._enter_full_screen()

    def detect_devices(self) -> None:
        """Offer cuda / mps in the Device list once the training process says it sees them:
        importing torch here would add ~220 MB to the window's process for a list of names."""
        self.controller.request_devices()


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
        QTimer.singleShot(0, lambda: window.sweeps.open_paths(open_paths))  # sweep folders and run files
    return app.exec()


def demo(preset: str, steps: int, screenshot: str, timeout: float = 300.0, family: str | None = None) -> int:
    """Open the window on a preset (as a family: ``family`` in the command line's form), run
    ``steps`` steps, save a screenshot of the whole window, exit."""
    app = make_application()
    window = MainWindow(settings=scratch_settings(), load_demo=False)  # a demo neither reads nor changes the user's settings
    config = load_preset(preset)
    if family:
        from margin_explorer.core.config import FamilyConfig

        config.family = FamilyConfig.parse(family)
    window.load_config(config)
    window.set_x_axis_scale(config.view.x_axis if config.view is not None else "log")
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
