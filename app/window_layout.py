"""The window's panels and where they sit: dataset, architecture and runs tabbed on the left;
plots, the run controls with the claims, and the decision boundary with its replay bar on the
right; the message banner above and the run's fields in the status bar."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QSplitter, QTabWidget, QVBoxLayout, QWidget

from margin_explorer.widgets.architecture_builder import ArchitectureBuilder
from margin_explorer.widgets.boundary_view import BoundaryView
from margin_explorer.widgets.claims_panel import ClaimsPanel
from margin_explorer.widgets.compare_table import CompareTable
from margin_explorer.widgets.dataset_editor import DatasetEditor
from margin_explorer.widgets.message_banner import MessageBanner
from margin_explorer.widgets.replay_bar import ReplayBar
from margin_explorer.widgets.run_controls import RunControls
from margin_explorer.widgets.run_list import RunList
from margin_explorer.widgets.trajectory_plots import TrajectoryPlots

from .status_bar import StatusFields


def build_panels(window) -> None:
    """Make the window's widgets (as its attributes) and its docks (``window.docks``, by key)."""
    window.dataset_editor = DatasetEditor()
    window.builder = ArchitectureBuilder()
    window.controls = RunControls()
    window.plots = TrajectoryPlots()
    window.boundary = BoundaryView()
    window.replay_bar = ReplayBar()
    window.run_list = RunList()
    window.compare_table = CompareTable()
    window.claims_panel = ClaimsPanel()
    window.banner = MessageBanner()
    boundary_panel = QWidget()
    boundary_layout = QVBoxLayout(boundary_panel)
    boundary_layout.setContentsMargins(0, 0, 0, 0)
    boundary_layout.addWidget(window.boundary, stretch=1)
    boundary_layout.addWidget(window.replay_bar)
    # the claims sit under the run controls, always visible beside the run (tabifying a
    # separate dock there left Qt's orphan tab bar painted over the plots)
    run_panel = QSplitter(Qt.Vertical)
    run_panel.addWidget(window.controls)
    run_panel.addWidget(window.claims_panel)
    run_panel.setSizes([400, 230])
    runs_panel = QTabWidget()
    runs_panel.addTab(window.run_list, "Runs")
    runs_panel.addTab(window.compare_table, "Compare")
    docks = window.docks = {}
    for key, title, widget, area in [
        ("dataset", "Dataset", window.dataset_editor, Qt.LeftDockWidgetArea),
        ("architecture", "Architecture", window.builder, Qt.LeftDockWidgetArea),
        ("runs", "Runs", runs_panel, Qt.LeftDockWidgetArea),
        ("run", "Run", run_panel, Qt.RightDockWidgetArea),
        ("plots", "Plots", window.plots, Qt.RightDockWidgetArea),
        ("boundary", "Decision boundary", boundary_panel, Qt.RightDockWidgetArea),
    ]:
        dock = QDockWidget(title, window)
        dock.setObjectName(f"dock-{key}")
        dock.setWidget(widget)
        window.addDockWidget(area, dock)
        docks[key] = dock
    window.setDockNestingEnabled(True)
    window.tabifyDockWidget(docks["dataset"], docks["architecture"])
    window.tabifyDockWidget(docks["architecture"], docks["runs"])
    docks["dataset"].raise_()
    window.splitDockWidget(docks["plots"], docks["run"], Qt.Horizontal)
    window.splitDockWidget(docks["run"], docks["boundary"], Qt.Vertical)
    # the boundary is about square: height beyond its width is better spent on the claims
    window.resizeDocks([docks["run"], docks["boundary"]], [620, 300], Qt.Vertical)
    window.resizeDocks([docks["dataset"], docks["plots"], docks["run"]], [330, 900, 300], Qt.Horizontal)
    window.setCentralWidget(None)
    window.addToolBar(Qt.TopToolBarArea, window.banner)
    window.run_status = StatusFields(window.statusBar())
    window.status_fields = window.run_status.fields
