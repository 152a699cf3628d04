"""The File menu's work: open and save runs, recent files, exports (plots, window, CSV) and
recording the window or a panel to MP4 / GIF with a visible indicator and a stop button."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QLabel, QPushButton)

from core.errors import MarginExplorerError
from widgets.file_places import proposal, start_folder
from widgets.file_places import remember as remember_folder

from .export import export_metrics_csv, export_scene, export_widget_png
from .recorder import Recorder

MAX_RECENT = 8


class ImageOptions(QDialog):
    """Scale and background for a PNG export."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export options")
        self.scale = QDoubleSpinBox()
        self.scale.setRange(0.25, 8.0)
        self.scale.setSingleStep(0.5)
        self.scale.setValue(2.0)
        self.scale.setToolTip("Image size relative to the screen (2 = twice as many pixels each way)")
        self.transparent = QCheckBox("transparent background (PNG)")
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Scale", self.scale)
        form.addRow("", self.transparent)
        form.addRow(buttons)


class FileActions(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.recorder: Recorder | None = None
        self.recent_menu = None
        self.rec_label = QLabel()
        self.rec_label.setObjectName("recording-indicator")
        self.rec_label.setStyleSheet("color: #c00; font-weight: bold;")
        self.rec_stop = QPushButton("Stop recording")
        self.rec_stop.clicked.connect(self.stop_recording)
        for w in (self.rec_label, self.rec_stop):
            w.hide()
            window.statusBar().addWidget(w)

    # --------------------------------------------------------------- menus
    def build(self, menu) -> None:
        w = self.window
        w._action(menu, "&Open runs…", self.open_dialog, "Ctrl+O", "Open saved runs (.h5) to compare them")
        self.recent_menu = menu.addMenu("Open &recent")
        self._fill_recent()
        w._action(menu, "&Save run…", self.save_dialog, "Ctrl+S", "Save the live run as an HDF5 file")
        menu.addSeparator()
        export = menu.addMenu("&Export")
        w._action(export, "Plots as PNG…", lambda: self.export_plots_dialog("png"), tip="All visible plots, as an image")
        w._action(export, "Plots as SVG…", lambda: self.export_plots_dialog("svg"), tip="All visible plots, as vectors")
        w._action(export, "Decision boundary as PNG…", self.export_boundary_dialog)
        w._action(export, "Window as PNG…", self.export_window_dialog, tip="The whole window, as it looks")
        w._action(export, "Metrics as CSV…", self.export_csv_dialog, tip="Every scalar metric of the selected run")
        record = menu.addMenu("Re&cord")
        w._action(record, "Record window…", lambda: self.record_dialog(w), tip="MP4 or GIF of the whole window")
        w._action(record, "Record plots…", lambda: self.record_dialog(w.plots), tip="MP4 or GIF of the plots")
        w._action(record, "Record decision boundary…", lambda: self.record_dialog(w.boundary))
        menu.addSeparator()
        w._action(menu, "Import dataset…", w.dataset_editor.import_dialog, tip="CSV or NPZ")
        w._action(menu, "Export dataset…", w.dataset_editor.export_dialog, tip="CSV or NPZ")
        menu.addSeparator()
        w._action(menu, "&Quit", w.close, "Ctrl+Q")

    # --------------------------------------------------------------- recent files
    def recent(self) -> list[str]:
        try:
            value = json.loads(str(self.window.settings.value("recent_runs", "[]")))
        except json.JSONDecodeError:
            return []
        return [p for p in value if isinstance(p, str)]

    def remember(self, paths) -> None:
        recent = [str(Path(p).resolve()) for p in paths] + self.recent()
        unique = list(dict.fromkeys(recent))[:MAX_RECENT]
        self.window.settings.setValue("recent_runs", json.dumps(unique))
        self._fill_recent()

    def _fill_recent(self) -> None:
        if self.recent_menu is None:
            return
        self.recent_menu.clear()
        for path in self.recent():
            action = QAction(Path(path).name, self.recent_menu)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.window.open_runs([p]))
            self.recent_menu.addAction(action)
        self.recent_menu.setEnabled(bool(self.recent()))

    # --------------------------------------------------------------- dialogs
    def open_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Open runs", start_folder(self.window.settings),
                                                "Runs (*.h5);;All files (*)")
        if paths:
            remember_folder(self.window.settings, paths[0])
            self.window.open_runs(paths)

    def save_dialog(self) -> None:
        session = self.window.session
        if session is None or session.n_records == 0:
            self.window.show_error("Nothing to save yet: run first.")
            return
        path, _ = self.ask_save("Save run", session.name or "run", ".h5", "Runs (*.h5)")
        if path:
            self.window.save_run(path)

    def export_plots_dialog(self, kind: str) -> None:
        options = ImageOptions(self.window) if kind == "png" else None
        if options is not None and not options.exec():
            return
        path, _ = self.ask_save("Export plots", "plots", f".{kind}", f"{kind.upper()} (*.{kind})")
        if path:
            self.run(lambda: export_scene(self.window.plots.view.scene(), path,
                                          options.scale.value() if options else 1.0,
                                          options.transparent.isChecked() if options else False), path)

    def export_boundary_dialog(self) -> None:
        options = ImageOptions(self.window)
        if not options.exec():
            return
        path, _ = self.ask_save("Export decision boundary", "boundary", ".png", "PNG (*.png)")
        if path:
            self.run(lambda: export_scene(self.window.boundary.plotItem, path, options.scale.value(),
                                          options.transparent.isChecked()), path)

    def export_window_dialog(self) -> None:
        options = ImageOptions(self.window)
        options.transparent.hide()
        if not options.exec():
            return
        path, _ = self.ask_save("Export window", "window", ".png", "PNG (*.png)")
        if path:
            self.run(lambda: export_widget_png(self.window, path, options.scale.value()), path)

    def export_csv_dialog(self) -> None:
        entry = self.window.runs.current() or self.window.runs.live_entry()
        if entry is None:
            self.window.show_error("No run to export: run or open one first.")
            return
        path, _ = self.ask_save("Export metrics", entry.name, ".csv", "CSV (*.csv)")
        if path:
            self.run(lambda: export_metrics_csv(entry.session, path), path)

    def ask_save(self, title: str, name: str, suffix: str, filters: str) -> tuple[str, str]:
        """A save dialog in the last folder used (else the documents folder), proposing ``name``
        as a slug; the chosen folder is remembered."""
        path, chosen = QFileDialog.getSaveFileName(self.window, title, proposal(self.window.settings, name, suffix),
                                                   filters)
        remember_folder(self.window.settings, path)
        return path, chosen

    def run(self, work, path) -> bool:
        try:
            work()
        except (MarginExplorerError, OSError) as exc:
            self.window.show_error(f"Export failed: {exc}")
            return False
        self.window.statusBar().showMessage(f"Wrote {path}", 5000)
        return True

    # --------------------------------------------------------------- recording
    def record_dialog(self, widget) -> None:
        path, _ = self.ask_save("Record", "recording", ".mp4", "Video (*.mp4);;GIF (*.gif)")
        if path:
            self.start_recording(widget, path)

    def start_recording(self, widget, path: str, fps: int = 12) -> bool:
        if self.recorder is not None:
            self.window.show_error("Already recording: stop the current recording first.")
            return False
        try:
            self.recorder = Recorder(widget, path, fps)
        except MarginExplorerError as exc:
            self.window.show_error(str(exc))
            return False
        self.recorder.frameWritten.connect(lambda n: self.rec_label.setText(f"● REC {n / fps:.1f} s"))
        self.rec_label.setText("● REC")
        self.rec_label.show()
        self.rec_stop.show()
        self.recorder.start()
        return True

    def stop_recording(self) -> str | None:
        if self.recorder is None:
            return None
        path = self.recorder.stop()
        frames = self.recorder.frames
        self.recorder = None
        self.rec_label.hide()
        self.rec_stop.hide()
        self.window.statusBar().showMessage(f"Recorded {frames} frames to {path}", 8000)
        return path
