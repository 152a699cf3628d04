"""File > Open sweep and the Sweep dock: a sweep's phase diagram (widgets/sweep_view.py), followed
while the sweep runs (its index re-read when it changes), a click on a cell opening the cell's
runs in the Runs tab, and the heatmap (PNG, SVG) and the table (CSV) exported."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QFileDialog, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from margin_explorer.core.errors import MarginExplorerError
from margin_explorer.core.sweep import Sweep
from margin_explorer.core.sweep_index import SweepIndex, index_path, is_sweep_folder
from margin_explorer.widgets.file_places import remember as remember_folder
from margin_explorer.widgets.file_places import start_folder
from margin_explorer.widgets.sweep_view import SweepView

POLL_MS = 1000  # a running sweep's index is looked at once a second (it is rewritten at most twice a second)


class SweepActions(QObject):
    def __init__(self, window, file_menu):
        super().__init__(window)
        self.window = window
        self.folder: Path | None = None
        self.index: SweepIndex | None = None
        self._stamp = None
        self.view: SweepView | None = None
        self.dock: QDockWidget | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        action = window.add_action(file_menu, "Open s&weep…", self.open_dialog, tip="Open a sweep's folder: its phase "
                                "diagram, filled in as the sweep runs")
        separators = [a for a in file_menu.actions() if a.isSeparator()]
        if separators:  # beside Open runs, not after Quit
            file_menu.removeAction(action)
            file_menu.insertAction(separators[0], action)

    def open_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Open sweep", start_folder(self.window.settings))
        if folder:
            remember_folder(self.window.settings, os.path.join(folder, "sweep.h5"))
            self.open(folder)

    def open_paths(self, paths) -> bool:
        """`main.py open`: sweep folders open here, the rest as runs."""
        sweeps = [p for p in paths if is_sweep_folder(p)]
        runs = [p for p in paths if p not in sweeps]
        ok = all([self.open(p) for p in sweeps])
        return (self.window.open_runs(runs) if runs else True) and ok

    def open(self, folder) -> bool:
        try:
            index = SweepIndex.read(folder)
        except MarginExplorerError as exc:
            self.window.show_error(str(exc))
            return False
        self.folder = Path(folder)
        self._ensure_dock()
        self._show(index)
        self.dock.show()
        self.dock.raise_()
        if index.state == "running":
            self.timer.start()
        return True

    def _ensure_dock(self) -> None:
        if self.dock is not None:
            return
        self.view = SweepView()
        self.view.cell_clicked.connect(self.open_cell)
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, stretch=1)
        buttons = QHBoxLayout()
        for text, slot in (("Export PNG…", lambda: self.export_dialog("png")),
                           ("Export SVG…", lambda: self.export_dialog("svg")),
                           ("Export CSV…", self.export_csv_dialog)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.dock = QDockWidget("Sweep", self.window)
        self.dock.setObjectName("dock-sweep")
        self.dock.setWidget(panel)
        self.window.addDockWidget(Qt.RightDockWidgetArea, self.dock)
        plots = self.window.findChild(QDockWidget, "dock-plots")
        if plots is not None:
            self.window.tabifyDockWidget(plots, self.dock)

    def _show(self, index: SweepIndex) -> None:
        self.index = index
        self._stamp = self._index_stamp()
        self.dock.setWindowTitle(f"Sweep: {self.folder.name}")
        self.view.set_index(index)

    def _index_stamp(self):
        try:
            st = index_path(self.folder).stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns

    def poll(self) -> None:
        """Re-read the index when the client has replaced it (a rename: a new inode)."""
        if self.folder is None:
            self.timer.stop()
            return
        stamp = self._index_stamp()
        if stamp is None or stamp == self._stamp:
            return
        try:
            index = SweepIndex.read(self.folder)
        except MarginExplorerError:
            return  # replaced while we read: the next poll reads the new one
        self._show(index)
        if index.state != "running":
            self.timer.stop()

    def close_sweep(self) -> None:
        self.timer.stop()
        if self.dock is not None:
            self.dock.hide()

    def open_cell(self, runs: list) -> None:
        """The cell's runs whose files exist, opened (overlaid) in the Runs tab."""
        paths = [self.folder / str(self.index.file[r]) for r in runs]
        present = [str(p) for p in paths if p.is_file()]
        if not present:
            self.window.statusBar().showMessage("No run of this cell has finished yet.", 5000)
            return
        if self.window.open_runs(present):
            runs_dock = self.window.findChild(QDockWidget, "dock-runs")
            if runs_dock is not None:
                runs_dock.raise_()

    # --- exports ----------------------------------------------------------------------------
    def export_image(self, path) -> None:
        from .export import export_scene

        export_scene(self.view.plot.getPlotItem(), path)

    def export_csv(self, path) -> None:
        Sweep(self.index).to_csv(path)

    def export_dialog(self, kind: str) -> None:
        path, _ = self.window.files.ask_save(f"Export the phase diagram as {kind.upper()}", "phase-diagram",
                                             f".{kind}", f"{kind.upper()} (*.{kind})")
        if path:
            self.window.files.run(lambda: self.export_image(path), path)

    def export_csv_dialog(self) -> None:
        path, _ = self.window.files.ask_save("Export the sweep's table as CSV", "sweep", ".csv", "CSV (*.csv)")
        if path:
            self.window.files.run(lambda: self.export_csv(path), path)
