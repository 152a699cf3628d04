"""The File menu's work: open and save runs, recent files, exports (plots, window, CSV) and
recording the window or a panel to MP4 / GIF with a visible indicator and a stop button."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QLabel, QPushButton, QSpinBox)

from margin_explorer.core.errors import MarginExplorerError
from margin_explorer.core.output_path import existing
from margin_explorer.core.runner import member_paths
from margin_explorer.widgets.file_places import proposal, start_folder
from margin_explorer.widgets.file_places import remember as remember_folder

from .export import (CSV_LAYOUTS, SCREEN_DPI, export_boundary, export_metrics_csv, export_plots, export_runs_csv,
                     export_widget_png)
from .recorder import Recorder

MAX_RECENT = 8


class ImageOptions(QDialog):
    """Style, size and resolution of an exported figure. The size is the figure's own (as on
    screen, or in pixels or inches), not the dock's; DPI / 96 scales type and lines together."""

    def __init__(self, parent=None, screen_size=(800, 600), figure: bool = True, vector: bool = False):
        super().__init__(parent)
        self.setWindowTitle("Export options")
        self.screen_size = screen_size
        self.vector = vector
        form = QFormLayout(self)
        self.style = QComboBox()
        self.style.addItem("Print: dark text on white", "print")
        self.style.addItem("The screen theme's colours", "theme")
        self.style.setToolTip("Print style whatever the screen theme, or the colours on screen")
        self.size_mode = QComboBox()
        for text, mode in (("As on screen", "screen"), ("Pixels", "px"), ("Inches", "in")):
            self.size_mode.addItem(text, mode)
        self.width_box, self.height_box = QDoubleSpinBox(), QDoubleSpinBox()
        for box in (self.width_box, self.height_box):
            box.setRange(0.5, 20000)
            box.setDecimals(1)
        self.dpi = QSpinBox()
        self.dpi.setRange(48, 1200)
        self.dpi.setValue(2 * SCREEN_DPI)
        self.dpi.setToolTip(f"Type and lines scale by DPI / {SCREEN_DPI}: {2 * SCREEN_DPI} doubles them, as a "
                            "screen at twice the pixel density would")
        self.transparent = QCheckBox("transparent background (PNG)")
        self.size_mode.currentIndexChanged.connect(self._size_mode_changed)
        if figure:
            form.addRow("Style", self.style)
            form.addRow("Size", self.size_mode)
            form.addRow("Width", self.width_box)
            form.addRow("Height", self.height_box)
        if not vector:
            form.addRow("DPI", self.dpi)
            form.addRow("", self.transparent)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._size_mode_changed()

    def _size_mode_changed(self, *_args) -> None:
        mode = self.size_mode.currentData()
        w, h = self.screen_size
        factor = {"screen": 1.0, "px": 1.0, "in": 1.0 / SCREEN_DPI}[mode]
        for box, value in ((self.width_box, w), (self.height_box, h)):
            box.setEnabled(mode != "screen")
            box.setDecimals(2 if mode == "in" else 0)
            box.setSuffix({"screen": " px", "px": " px", "in": " in"}[mode])
            box.setValue(value * factor)

    def scale(self) -> float:
        return 1.0 if self.vector else self.dpi.value() / SCREEN_DPI  # SVG: lines as on screen

    def figure(self) -> dict:
        """The keyword arguments of export_plots and export_boundary: scale, size (in screen
        pixels, which the scale multiplies), style, transparent."""
        scale = self.scale()
        mode = self.size_mode.currentData()
        w, h = self.width_box.value(), self.height_box.value()
        if mode == "screen":
            size = self.screen_size
        elif mode == "px":  # the figure's pixels: the layout is that divided by the scale
            size = (w / scale, h / scale)
        else:  # inches at DPI: w * DPI pixels, laid out at 96 per inch
            size = (w * SCREEN_DPI, h * SCREEN_DPI)
        return {"scale": scale, "size": size, "style": self.style.currentData(),
                "transparent": self.transparent.isChecked()}


class CsvOptions(QDialog):
    """Several runs to CSV: one table with a run column, or a file per run."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export metrics")
        self.layout_box = QComboBox()
        self.layout_box.addItem("One file, a 'run' column first", CSV_LAYOUTS[0])
        self.layout_box.addItem("One file per run (NAME-RUN.csv)", CSV_LAYOUTS[1])
        form = QFormLayout(self)
        form.addRow("Layout", self.layout_box)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
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
        w.add_action(menu, "&Open runs…", self.open_dialog, "Ctrl+O", "Open saved runs (.h5) to compare them")
        self.recent_menu = menu.addMenu("Open &recent")
        self._fill_recent()
        w.add_action(menu, "&Save run…", self.save_dialog, "Ctrl+S", "Save the live run as an HDF5 file")
        menu.addSeparator()
        export = menu.addMenu("&Export")
        w.add_action(export, "Plots as PNG…", lambda: self.export_plots_dialog("png"), tip="All visible plots, as an image")
        w.add_action(export, "Plots as SVG…", lambda: self.export_plots_dialog("svg"), tip="All visible plots, as vectors")
        w.add_action(export, "Decision boundary as PNG…", self.export_boundary_dialog)
        w.add_action(export, "Window as PNG…", self.export_window_dialog, tip="The whole window, as it looks")
        w.add_action(export, "Metrics as CSV…", self.export_csv_dialog,
                  tip="Every scalar metric of the selected run, or of every run shown (one file or one per run)")
        record = menu.addMenu("Re&cord")
        w.add_action(record, "Record window…", lambda: self.record_dialog(w), tip="MP4 or GIF of the whole window")
        w.add_action(record, "Record plots…", lambda: self.record_dialog(w.plots), tip="MP4 or GIF of the plots")
        w.add_action(record, "Record decision boundary…", lambda: self.record_dialog(w.boundary))
        menu.addSeparator()
        w.add_action(menu, "Import dataset…", w.dataset_editor.import_dialog, tip="CSV or NPZ")
        w.add_action(menu, "Export dataset…", w.dataset_editor.export_dialog, tip="CSV or NPZ")
        menu.addSeparator()
        w.add_action(menu, "&Quit", w.close, "Ctrl+Q")

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
        # the dialog asks before replacing the file chosen (QFileDialog's default); a family writes
        # RUN-00.h5, RUN-01.h5, ... instead, so those are asked about here
        path, _ = self.ask_save("Save run", session.name or "run", ".h5", "Runs (*.h5)")
        if not path:
            return
        if session.size > 1:
            taken = existing(member_paths(path, session.size))
            if taken and not self.window.confirm("Replace runs?", f"{len(taken)} of the family's run files exist "
                                                 f"({taken[0].name}, ...). Replace them?"):
                return
        self.window.save_run(path, overwrite=True)

    def export_plots_dialog(self, kind: str) -> None:
        plots = self.window.plots
        options = ImageOptions(self.window, (plots.width(), plots.height()), vector=kind == "svg")
        if not options.exec():
            return
        path, _ = self.ask_save("Export plots", "plots", f".{kind}", f"{kind.upper()} (*.{kind})")
        if path:
            self.run(lambda: export_plots(plots, path, **options.figure()), path)

    def export_boundary_dialog(self) -> None:
        boundary = self.window.boundary
        options = ImageOptions(self.window, (boundary.width(), boundary.height()))
        if not options.exec():
            return
        path, _ = self.ask_save("Export decision boundary", "boundary", ".png", "PNG (*.png)")
        if path:
            self.run(lambda: export_boundary(boundary, path, **options.figure()), path)

    def export_window_dialog(self) -> None:
        options = ImageOptions(self.window, figure=False)
        options.transparent.hide()
        if not options.exec():
            return
        path, _ = self.ask_save("Export window", "window", ".png", "PNG (*.png)")
        if path:
            self.run(lambda: export_widget_png(self.window, path, options.scale()), path)

    def export_csv_dialog(self) -> None:
        """The run selected in the Runs tab, or with several runs shown, those (a layout to choose)."""
        shown = [(e.name, e.session) for e in self.window.runs.entries if e.visible and e.session.n_records]
        if len(shown) > 1:
            options = CsvOptions(self.window)
            if not options.exec():
                return
            path, _ = QFileDialog.getSaveFileName(self.window, "Export metrics", "runs.csv", "CSV (*.csv)")
            if path:
                self.run(lambda: export_runs_csv(shown, path, options.layout_box.currentData()), path)
            return
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
