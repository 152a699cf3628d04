"""The dataset editor: a 2-D canvas of points coloured by label, generator controls, CSV/NPZ
import and export, and live facts (counts, linear separability, the l2 SVM margin).

Mouse: left click adds a +1 point; right click or Shift+click adds a -1 point; dragging a
point moves it; dragging on empty space selects a rectangle; Ctrl+click removes a point.
Keys: Delete removes the selection, F flips its labels. Keys 1-9 (or the Draw picker) draw
classes 0-8 instead: any click adds a point of the picked class, F gives the selection that
class; -1/+1 points become classes 0 and 1. Data with d > 2 are shown as a read-only PCA
projection; image data (digits) also as a grid of samples, and after a run as the samples of the
smallest normalized margins (the support vectors) at the shown snapshot. A run of points loaded
from the Real data tab records them as that builtin dataset (dataset_config).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QPushButton,
                               QSizePolicy, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from margin_explorer.core import builtin_data, datasets, support_samples
from margin_explorer.core.config import DatasetConfig
from margin_explorer.core.errors import DatasetError
from margin_explorer.core.reference import dataset_geometry

from .dataset_model import DatasetModel
from .file_places import proposal, remember, start_folder
from .image_grid import ImageGrid
from .named_combo import NamedCombo
from .palette import CLASS_SYMBOLS, NEGATIVE, POSITIVE, class_color, ink

PICK_PIXELS = 8
_drag_ids = itertools.count(1)
DRAWN_CLASSES = 9  # keys 1-9 draw classes 0-8
CLASS_KEYS = {getattr(Qt, f"Key_{k}"): k - 1 for k in range(1, DRAWN_CLASSES + 1)}
GRID_SAMPLES = 32  # image data: the first samples the Dataset panel shows as images
# the scatter's height beside the image grid: at 1280 x 720 the grid's stretch left it ~60 px, a strip
CANVAS_MIN_WITH_IMAGES = 150
REMEMBERED_BUILTINS = 8  # builtin loads whose points a run still records by name (after undo and redo)
SUPPORT_SAMPLES = 12  # after a run: the samples of the smallest normalized margins, two rows of
SUPPORT_COLUMNS = 6  # six: wide enough tiles for a caption of class and margin
SWATCH = "\u25a0"  # a filled square in a class's colour before its count


FACTS_DELAY_MS = 60  # separability and SVM margin follow the edits after this pause
MAX_FACTS_POINTS = 5000  # above, the linear program would take seconds: counts only
WARN = "#b35900"  # a warning: the data defeat some models, not the app


def geometry_lines(result: dict) -> list[str]:
    """The panel's lines for core.reference.dataset_geometry: separability with a bias and through
    the origin (a model without biases needs that), and opposite-label pairs on nearly one ray,
    which no bias-free network separates (f(c x) = c^k f(x) for c > 0): said before the user runs."""
    lines = []
    margin = result.get("margin")
    if result["separable"]:
        lines.append("linearly separable with a bias" + (f", l2 SVM margin {margin:.4g}" if margin is not None else ""))
        if result.get("through_origin") is False:
            lines.append(f"<span style='color:{WARN}'>not separable through the origin: a linear model without "
                         "bias cannot separate them</span>")
        elif result.get("through_origin"):
            lines.append("separable through the origin too (a linear model without bias can)")
    else:
        lines.append("not linearly separable (with or without a bias)")
    rays = result.get("ray_pairs") or {}
    if rays.get("count"):
        i, j, angle = rays["pairs"][0]
        lines.append(f"<span style='color:{WARN}'>{rays['count']} opposite-label pair{'s' if rays['count'] > 1 else ''} "
                     f"within {rays['degrees']:g}° of one ray from the origin (closest: points {i} and {j}, "
                     f"{angle:.2g}°): a network without biases cannot separate points on one ray</span>")
    return lines

class EditViewBox(pg.ViewBox):
    """A ViewBox whose clicks and drags edit the model instead of panning."""

    def __init__(self, editor: "DatasetCanvas"):
        super().__init__(enableMenu=False)
        self.editor = editor
        self._drag_index = None
        self._drag_id = None
        self.band_item = pg.QtWidgets.QGraphicsRectItem()
        self.band_item.setPen(pg.mkPen("#666", style=Qt.DashLine))
        self.band_item.setBrush(pg.mkBrush(100, 100, 100, 30))
        self.band_item.setZValue(100)
        self.band_item.hide()
        self.addItem(self.band_item, ignoreBounds=True)

    def _radius(self) -> float:
        (x0, x1), _ = self.viewRange()
        return PICK_PIXELS * (x1 - x0) / max(self.width(), 1)

    def mouseClickEvent(self, ev):  # noqa: N802
        editor = self.editor
        if not editor.model.editable:
            ev.ignore()
            return
        p = self.mapSceneToView(ev.scenePos())
        mods = ev.modifiers()
        ev.accept()
        if mods & Qt.ControlModifier:
            index = editor.model.nearest((p.x(), p.y()), self._radius())
            if index is not None:
                editor.model.remove([index])
            return
        if editor.current_class is not None:
            if ev.button() in (Qt.LeftButton, Qt.RightButton):
                editor.model.add_point(p.x(), p.y(), editor.current_class)
        elif ev.button() == Qt.RightButton or (ev.button() == Qt.LeftButton and mods & Qt.ShiftModifier):
            editor.model.add_point(p.x(), p.y(), -1)
        elif ev.button() == Qt.LeftButton:
            editor.model.add_point(p.x(), p.y(), +1)

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802
        editor = self.editor
        if ev.button() != Qt.LeftButton or not editor.model.editable:
            super().mouseDragEvent(ev, axis)  # middle / right drag: pan and zoom as usual
            return
        ev.accept()
        start = self.mapSceneToView(ev.buttonDownScenePos())
        here = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            self._drag_index = editor.model.nearest((start.x(), start.y()), self._radius())
            self._drag_id = next(_drag_ids)
        if self._drag_index is not None:
            editor.model.move_point(self._drag_index, here.x(), here.y(), merge_id=self._drag_id)
            if ev.isFinish():
                self._drag_index = None
            return
        rect = QRectF(start, here).normalized()
        self.band_item.setRect(rect)
        self.band_item.setVisible(not ev.isFinish())
        if ev.isFinish():
            X = editor.model.X
            inside = ((X[:, 0] >= rect.left()) & (X[:, 0] <= rect.right()) &
                      (X[:, 1] >= rect.top()) & (X[:, 1] <= rect.bottom()))
            editor.set_selection(np.flatnonzero(inside))


def _same_points(a: datasets.Dataset, b: datasets.Dataset) -> bool:
    """The same points, labels, test set and image shape (the name aside)."""
    def same(u, v):
        return (u is None) == (v is None) and (u is None or (u.shape == v.shape and np.array_equal(u, v)))

    return (a.classes == b.classes and a.image_shape == b.image_shape and same(a.X, b.X) and same(a.y, b.y)
            and same(a.X_test, b.X_test) and same(a.y_test, b.y_test))


def _class_text(label, multiclass: bool) -> str:
    """A label as the panel writes it: the class number, or -1 / +1."""
    return f"{int(label)}" if multiclass else f"{int(label):+d}"


def import_message(path: str, reason: str) -> str:
    """One form for every import error: the file's name, then the reason (core's messages start
    with the stem, the name, the whole path or nothing)."""
    name = Path(path).name
    for prefix in (str(path), name, Path(path).stem):
        if reason.startswith(prefix + ": "):
            reason = reason[len(prefix) + 2:]
            break
    return f"Could not import {name}: {reason}"


class DatasetCanvas(pg.PlotWidget):
    selectionChanged = Signal()
    classPicked = Signal(object)  # the class clicks now draw (0-8), or None for -1/+1

    def __init__(self, model: DatasetModel, parent=None):
        self.vb = None
        self.model = model
        self.current_class: int | None = None
        super().__init__(parent, viewBox=EditViewBox(self))
        self.setObjectName("dataset-canvas")
        self.setAspectLocked(True)
        self.showGrid(x=True, y=True, alpha=0.15)
        self.selection = np.zeros(0, dtype=int)
        self.scatter = pg.ScatterPlotItem(size=9, pxMode=True)
        self.selected = pg.ScatterPlotItem(size=15, pxMode=True, pen=pg.mkPen("#000", width=1.5), brush=None)
        for item in (self.scatter, self.selected):
            item.mouseClickEvent = lambda ev: ev.ignore()  # clicks on a point are edits, not picks
            self.addItem(item)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setToolTip("Left click: add +1   Right or Shift+click: add -1   Drag a point: move it\n"
                        "Drag on empty space: select   Ctrl+click: remove   Delete: remove selection   F: flip labels\n"
                        "Keys 1-9: draw classes 0-8 (click adds the picked class, F gives it to the selection)")
        self.projection_note = pg.TextItem("", color=ink("muted"), anchor=(0, 0))
        self.addItem(self.projection_note, ignoreBounds=True)
        model.changed.connect(self._follow_labels)
        model.changed.connect(self.redraw)
        self.setRange(QRectF(-2, -2, 4, 4))
        self.redraw()

    def restyle(self, font_scale: float = 1.0) -> None:
        """The theme's colours (widgets/palette.py ink)."""
        self.projection_note.setColor(ink("muted"))

    def set_selection(self, indices) -> None:
        self.selection = np.asarray(indices, dtype=int)
        self._draw_selection()
        self.selectionChanged.emit()

    def _coords(self) -> np.ndarray:
        X = self.model.X
        if X.shape[1] == 2 or len(X) == 0:
            return X
        centered = X - X.mean(axis=0)
        _u, _s, vt = np.linalg.svd(centered, full_matrices=False)
        return centered @ vt[:2].T  # the first two principal components

    def set_current_class(self, label: int | None) -> bool:
        """Draw class ``label`` (0-8) with clicks, or -1/+1 with None. The first class turns the
        points' -1/+1 into classes 0/1 (one undo step); back to -1/+1 only while no point is of a
        class past 1. Returns whether the change was made."""
        if not self.model.set_multiclass(label is not None):
            return False
        self.current_class = label
        self.classPicked.emit(label)
        return True

    def _follow_labels(self) -> None:
        """Clicks draw what the points hold: a class once they are classes (a loaded C-class
        dataset, an undo), -1/+1 once they are -1/+1 again."""
        if self.model.multiclass and self.current_class is None:
            self.current_class = 0
        elif not self.model.multiclass and self.current_class is not None:
            self.current_class = None
        else:
            return
        self.classPicked.emit(self.current_class)

    def redraw(self) -> None:
        coords = self._coords()
        if self.model.multiclass:
            brushes = [pg.mkBrush(class_color(int(label))) for label in self.model.y]
            symbols = [CLASS_SYMBOLS[int(label) % len(CLASS_SYMBOLS)] for label in self.model.y]
        else:
            brushes = [pg.mkBrush(POSITIVE if label > 0 else NEGATIVE) for label in self.model.y]
            symbols = ["o" if label > 0 else "s" for label in self.model.y]
        self.scatter.setData(pos=coords, brush=brushes, symbol=symbols, pen=pg.mkPen("w", width=0.5))
        self.selection = self.selection[self.selection < self.model.n]
        self._draw_selection()
        if not self.model.editable:
            self.projection_note.setText(f"d = {self.model.dim}: PCA projection, read-only")
            self.projection_note.setPos(*(coords.min(axis=0) if len(coords) else (0, 0)))
        else:
            self.projection_note.setText("")

    def _draw_selection(self) -> None:
        coords = self._coords()
        self.selected.setData(pos=coords[self.selection] if len(self.selection) else np.zeros((0, 2)))

    def keyPressEvent(self, event):  # noqa: N802
        if event.key() in (Qt.Key_Delete, Qt.Key_Backspace) and len(self.selection) and self.model.editable:
            self.model.remove(self.selection)
            self.set_selection([])
        elif event.key() == Qt.Key_F and len(self.selection) and self.model.editable:
            self.model.relabel(self.selection, self.current_class)  # None: flip -1/+1
        elif event.key() in CLASS_KEYS and self.model.editable:
            self.set_current_class(CLASS_KEYS[event.key()])
        else:
            super().keyPressEvent(event)

    def fit(self) -> None:
        coords = self._coords()
        if len(coords):
            lo, hi = coords.min(axis=0), coords.max(axis=0)
            pad = 0.15 * np.maximum(hi - lo, 1e-3)
            self.setRange(QRectF(QPointF(*(lo - pad)), QPointF(*(hi + pad))), padding=0)


class PageHeightTabs(QTabWidget):
    """Tabs as tall as the shown page, not the tallest: a QTabWidget asks for its tallest page's
    height, and the Real data tab's three rows and a button took the Generate tab's eight rows'
    room from the canvas."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.currentChanged.connect(self._follow)

    def tabInserted(self, index: int) -> None:
        super().tabInserted(index)
        self._follow(self.currentIndex())

    def _follow(self, current: int) -> None:
        for i in range(self.count()):  # a page ignored in the layout counts for nothing in its minimum
            shown = QSizePolicy.Policy.Preferred if i == current else QSizePolicy.Policy.Ignored
            self.widget(i).setSizePolicy(QSizePolicy.Policy.Preferred, shown)
        self.updateGeometry()

    def sizeHint(self):
        hint, page = super().sizeHint(), self.currentWidget()
        if page is None:
            return hint
        # the minimum is the bar and the shown page's minimum: that page's own height instead
        hint.setHeight(self.minimumSizeHint().height() - page.minimumSizeHint().height() + page.sizeHint().height())
        return hint


class DatasetEditor(QWidget):
    """The Dataset panel: canvas, generators, files, facts."""

    error = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = DatasetModel(self)
        self.settings = None  # the window's QSettings: where the file dialogs last opened (widgets/file_places.py)
        self.canvas = DatasetCanvas(self.model)
        self.class_picker = QComboBox()
        self.class_picker.setObjectName("class-picker")
        self.class_picker.addItems(["−1 / +1 (left / right click)"]
                                   + [f"class {k} (key {k + 1})" for k in range(DRAWN_CLASSES)])
        self.class_picker.setToolTip("What a click draws: -1/+1, or one of up to nine classes (keys 1-9 on the canvas)")
        self.class_picker.activated.connect(self._pick_class)
        self.canvas.classPicked.connect(lambda label: self.class_picker.setCurrentIndex(0 if label is None else label + 1))
        self.images = ImageGrid()
        self.images.setMinimumHeight(120)
        self.images.hide()
        # image data: the first samples, or (after a run) those of the smallest normalized margins
        self.image_choice = QComboBox()
        self.image_choice.setObjectName("image-choice")
        self.image_choice.addItems([f"Images: first {GRID_SAMPLES} samples", "Images: smallest margins (run)"])
        self.image_choice.setToolTip("After a run: the training samples of the smallest normalized margins "
                                     "q_i / ||theta||^M at the shown snapshot (the support vectors), smallest first, "
                                     "each captioned with its class and normalized margin")
        self.image_choice.model().item(1).setEnabled(False)
        self.image_choice.hide()
        self.image_choice.activated.connect(lambda _i: self._show_images())
        self._margins: tuple | None = None  # (X, y, multiclass, margins, heading, shape) of the run shown
        self._builtins: list = []  # (name, params, Dataset) of the builtin datasets loaded lately (undo returns to them)
        self.shown_indices = np.zeros(0, dtype=int)  # the samples the grid shows, tile by tile
        self.facts = QLabel()
        self.facts.setObjectName("dataset-facts")
        self.facts.setWordWrap(True)
        self.facts.setToolTip("Linear separability is decided by a linear program; the margin is the l2 hard-margin "
                              "SVM's (with bias), the largest distance any separating line keeps from the points.")

        self.kind = NamedCombo(list(datasets.GENERATORS))  # "linearly separable" on screen
        self.kind.setToolTip("Dataset generator (seeded)")
        self.n = QSpinBox()
        self.n.setRange(2, 100000)
        self.n.setValue(100)
        self.noise = QDoubleSpinBox()
        self.noise.setRange(0, 10)
        self.noise.setDecimals(3)
        self.noise.setSingleStep(0.05)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.n_test = QSpinBox()
        self.n_test.setRange(0, 100000)
        self.n_test.setToolTip("Test points drawn from the same distribution with another seed (0: no test set); "
                               "the training points do not change")
        self.margin = QDoubleSpinBox()
        self.margin.setRange(0, 10)
        self.margin.setDecimals(3)
        self.margin.setSingleStep(0.05)
        self.margin.setValue(0.2)
        self.dim = QSpinBox()
        self.dim.setRange(2, 100000)
        self.dim.setValue(500)
        generate = QPushButton("Generate")
        generate.setToolTip("Replace the points with a generated dataset (undoable)")
        generate.clicked.connect(self.generate)
        self.kind.currentIndexChanged.connect(lambda _i: self._update_generator_fields(self.kind.name()))

        form = QFormLayout()
        form.addRow("Generator", self.kind)
        form.addRow("Points n", self.n)
        form.addRow("Noise", self.noise)
        form.addRow("Margin", self.margin)
        form.addRow("Dimension d", self.dim)
        form.addRow("Seed", self.seed)
        form.addRow("Test points", self.n_test)
        # a generator's parameters without a field of their own (blobs' separation, circles'
        # factor, ...): kept as loaded, so that Generate remakes the points the panel describes
        self._extra: dict = {}
        self.extra = QLabel()
        self.extra.setToolTip("The generator's other parameters, as the preset or config sets them")
        form.addRow("Also", self.extra)
        self._form = form
        box = QWidget()  # a tab of its own (self.sources)
        inner = QVBoxLayout(box)
        inner.addLayout(form)
        inner.addWidget(generate)

        files = QHBoxLayout()
        import_button = QPushButton("Import…")
        import_button.setToolTip("Load points from CSV (x1..xd,label) or NPZ (arrays X and y)")
        import_button.clicked.connect(self.import_dialog)
        export_button = QPushButton("Export…")
        export_button.setToolTip("Save the points as CSV or NPZ")
        export_button.clicked.connect(self.export_dialog)
        clear_button = QPushButton("Clear")
        clear_button.clicked.connect(lambda: self.model.remove(range(self.model.n)))
        for b in (import_button, export_button, clear_button):
            files.addWidget(b)

        # one row: what clicks draw (2-D data), or which images the grid shows (image data, read-only)
        picker = QHBoxLayout()
        self.draw_label = QLabel("Draw")
        picker.addWidget(self.draw_label)
        picker.addWidget(self.class_picker, stretch=1)
        picker.addWidget(self.image_choice, stretch=1)
        layout = QVBoxLayout(self)
        layout.addLayout(picker)
        layout.addWidget(self.canvas, stretch=1)
        # image data: as tall as the scatter (stretch 2 left the scatter a strip at 720 px high, and
        # the tiles room to spare at 920)
        layout.addWidget(self.images, stretch=1)
        layout.addWidget(self.facts)
        layout.addLayout(files)
        # generated or real data: one at a time, so the canvas keeps its height on a 720-pixel screen
        self.sources = PageHeightTabs()
        self.sources.addTab(box, "Generate")
        self.sources.addTab(self._real_data_box(), "Real data (offline)")
        layout.addWidget(self.sources)
        # separability is a linear program: computed once the edits pause (a drag edits at every
        # mouse move), and after the window is first shown rather than before
        self._facts_timer = QTimer(self)
        self._facts_timer.setSingleShot(True)
        self._facts_timer.setInterval(FACTS_DELAY_MS)
        self._facts_timer.timeout.connect(self.update_facts)
        self._geometry_service = None
        self._geometry_token = 0
        self.model.changed.connect(self._counts_now_geometry_soon)
        self.model.changed.connect(self.clear_margins)  # new points: a run's margins describe others
        self._update_generator_fields(self.kind.name())
        self._counts_now_geometry_soon()

    def _real_data_box(self) -> QWidget:
        """scikit-learn's bundled real datasets (core/builtin_data.py), offline, with a test set."""
        self.builtin = NamedCombo([(name, f"{name.replace('_', ' ')} ({entry[2][0]} x {entry[2][1]}, "
                                          f"{entry[3]} classes)") for name, entry in builtin_data.BUILTIN.items()])
        self.builtin.setToolTip("Real data shipped inside scikit-learn: nothing is downloaded")
        # two classes first: training takes two for now (core/trainer.py refuses more)
        self.builtin_classes = NamedCombo([("odd_even", "odd vs even (two classes)"),
                                           ("first_two", "the first two classes (0 vs 1)"), ("all", "all classes")])
        self.builtin_subsample = QSpinBox()
        self.builtin_subsample.setRange(0, 100000)
        self.builtin_subsample.setSpecialValueText("all")
        self.builtin_subsample.setToolTip("Training samples kept (stratified); the test set is a fifth of the data")
        load = QPushButton("Load")
        load.setToolTip("Replace the points with the real dataset, standardized, a fifth held out as the test set")
        load.clicked.connect(self.load_builtin)
        form = QFormLayout()
        form.addRow("Dataset", self.builtin)
        form.addRow("Classes", self.builtin_classes)
        form.addRow("Training samples", self.builtin_subsample)
        box = QWidget()  # a tab of its own (self.sources)
        inner = QVBoxLayout(box)
        inner.addLayout(form)
        inner.addWidget(load)
        return box

    def builtin_params(self) -> dict:
        """The builtin dataset's parameters the Real data box sets (core/builtin_data.load_builtin)."""
        classes = self.builtin_classes.name()
        return {"classes": [0, 1] if classes == "first_two" else classes, "subsample": self.builtin_subsample.value()}

    def load_builtin(self) -> None:
        name, params = self.builtin.name(), self.builtin_params()
        try:
            ds = builtin_data.load_builtin(name, **params)
        except DatasetError as exc:
            self.error.emit(str(exc))
            return
        self._remember_builtin(name, params, ds)
        self.model.replace(ds, f"load {ds.name}")
        self.canvas.fit()

    def show_builtin(self, name: str, params: dict, dataset: datasets.Dataset) -> None:
        """A config's builtin dataset (``dataset`` the points it made): its settings in the Real data
        tab where the tab can say them, and the config kept for runs of these points."""
        self._remember_builtin(name, dict(params), dataset)
        if name in builtin_data.BUILTIN:
            self.builtin.set_name(name)
        classes = params.get("classes", "all")
        choice = classes if isinstance(classes, str) else "first_two" if list(classes) == [0, 1] else None
        if choice in ("odd_even", "first_two", "all"):
            self.builtin_classes.set_name(choice)
        if isinstance(params.get("subsample"), int):
            self.builtin_subsample.setValue(params["subsample"])
        self.sources.setCurrentIndex(1)

    def dataset_config(self, dataset: datasets.Dataset) -> DatasetConfig:
        """How a run's config records ``dataset`` (the panel's points): as the builtin dataset they
        were loaded as (its name and parameters: the file says where its data came from), or, once
        edited or made otherwise, inline (the points themselves)."""
        for name, params, loaded in reversed(self._builtins):
            if _same_points(dataset, loaded):
                return DatasetConfig(kind="builtin", builtin=name, params=dict(params))
        return DatasetConfig.inline(dataset)

    def _remember_builtin(self, name: str, params: dict, dataset: datasets.Dataset) -> None:
        self._builtins = self._builtins[-(REMEMBERED_BUILTINS - 1):] + [(name, params, dataset)]

    def _pick_class(self, index: int) -> None:
        if not self.canvas.set_current_class(None if index == 0 else index - 1):
            self.class_picker.setCurrentIndex(self.canvas.current_class + 1)
            self.error.emit("the points hold classes past 1: they cannot be drawn as -1/+1 (remove those first)")

    def show_margins(self, dataset: datasets.Dataset, margins, heading: str, run: str = "the run") -> None:
        """Run ``run``'s ``dataset`` and its samples' normalized margins at the shown parameters: the
        grid shows the SUPPORT_SAMPLES smallest, each captioned with its class and margin (image
        data only); ``heading`` says where (e.g. "step 2,000")."""
        if dataset.image_shape is None or margins is None or not np.isfinite(margins).any():
            self.clear_margins()
            return
        self._margins = (dataset.X, dataset.y, dataset.multiclass, np.asarray(margins, dtype=np.float64), heading,
                         dataset.image_shape)
        self.image_choice.model().item(1).setEnabled(True)
        self.image_choice.setItemText(1, f"Images: smallest margins, {heading}")
        self.image_choice.setItemData(1, f"{run}: the {SUPPORT_SAMPLES} training samples of the smallest normalized "
                                      f"margins, {heading}", Qt.ToolTipRole)
        self.image_choice.setCurrentIndex(1)
        self._show_images()

    def clear_margins(self) -> None:
        """Back to the first samples (the points changed, or a new run starts)."""
        self._margins = None
        self.image_choice.setItemText(1, "Images: smallest margins (run)")
        self.image_choice.model().item(1).setEnabled(False)
        self.image_choice.setCurrentIndex(0)
        self._show_images()

    def _show_images(self) -> None:
        """Image data: the first GRID_SAMPLES samples as images, captioned with their classes; or a
        run's samples of the smallest normalized margins, with their classes and margins."""
        shape, m = self.model.image_shape, self.model
        runs = self._margins is not None and self.image_choice.currentIndex() == 1
        if runs:
            X, y, multiclass, margins, _heading, shape = self._margins
            indices = support_samples.smallest(margins, SUPPORT_SAMPLES)
            # three digits: the support vectors' margins are all close to the smallest
            captions = [f"{_class_text(y[i], multiclass)}\n{margins[i]:.3g}" for i in indices]
            self.shown_indices = indices
            self.images.set_images(X[indices], shape, captions, caption_lines=2, columns=SUPPORT_COLUMNS)
        elif shape is not None:
            self.shown_indices = np.arange(min(GRID_SAMPLES, m.n))
            captions = [_class_text(v, m.multiclass) for v in m.y[:GRID_SAMPLES]]
            self.images.set_images(m.X[:GRID_SAMPLES], shape, captions)
        self.images.setVisible(shape is not None)
        self.canvas.setMinimumHeight(CANVAS_MIN_WITH_IMAGES if shape is not None else 0)
        self.image_choice.setVisible(shape is not None)
        for widget in (self.draw_label, self.class_picker):  # the panel's image data are not drawn on
            widget.setVisible(m.image_shape is None)

    def _fields(self) -> dict:
        return {"n": self.n, "noise": self.noise, "margin": self.margin, "dim": self.dim, "seed": self.seed,
                "n_test": self.n_test}

    def _update_generator_fields(self, kind: str) -> None:
        """Another generator chosen: its own defaults (n and the seed stay as they are)."""
        params = datasets.generator_parameters(kind)
        self.noise.setEnabled("noise" in params)
        self.margin.setEnabled("margin" in params)
        self.dim.setEnabled("dim" in params)
        for name in ("noise", "margin", "dim"):
            if name in params:
                self._fields()[name].setValue(params[name])
        self._set_extra({k: v for k, v in params.items() if k not in self._fields()})

    def _set_extra(self, extra: dict) -> None:
        self._extra = dict(extra)
        self.extra.setText(", ".join(f"{k} {v:g}" for k, v in self._extra.items()))
        self._form.setRowVisible(self.extra, bool(self._extra))

    def generator_params(self) -> dict:
        params = datasets.generator_parameters(self.kind.name())
        values = {name: widget.value() for name, widget in self._fields().items()}
        return {**{k: v for k, v in values.items() if k in params}, **self._extra}

    def generate(self) -> None:
        try:
            ds = datasets.generate(self.kind.name(), **self.generator_params())
        except DatasetError as exc:
            self.error.emit(str(exc))
            return
        self.model.replace(ds, f"generate {ds.name}")
        self.canvas.fit()

    def show_generator(self, kind: str, params: dict) -> None:
        """Show a generator's settings (for a config whose dataset came from one)."""
        if kind not in datasets.GENERATORS:
            return
        self.kind.set_name(kind)
        full = {**datasets.generator_parameters(kind), **params}
        for name, widget in self._fields().items():
            if name in full:
                widget.setValue(full[name])
        self._set_extra({k: v for k, v in full.items() if k not in self._fields()})

    def load(self, ds: datasets.Dataset, undoable: bool = False) -> None:
        if undoable:
            self.model.replace(ds, f"load {ds.name}")
        else:
            self.model.reset(ds)
        self.canvas.fit()

    def import_file(self, path: str) -> bool:
        try:
            ds = datasets.load(path)
        except DatasetError as exc:
            self.error.emit(import_message(path, str(exc)))
            return False
        self.load(ds, undoable=True)
        return True

    def export_file(self, path: str) -> bool:
        try:
            datasets.save(self.model.dataset(), path)
        except (DatasetError, OSError) as exc:
            self.error.emit(f"cannot export: {exc}")
            return False
        return True

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import dataset", start_folder(self.settings),
                                              "Datasets (*.csv *.npz);;All files (*)")
        remember(self.settings, path)
        if path:
            self.import_file(path)

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export dataset", proposal(self.settings, self.model.name, ".csv"),
                                              "CSV (*.csv);;NumPy (*.npz)")
        remember(self.settings, path)
        if path:
            self.export_file(path)

    def problem(self) -> str | None:
        """Why the dataset cannot be trained on, or None."""
        try:
            self.model.dataset()
        except DatasetError as exc:
            return f"Dataset: {exc}"
        return None

    def _counts(self) -> list[str]:
        m = self.model
        if m.multiclass:
            counts = np.bincount(m.y.astype(int), minlength=1) if m.n else np.zeros(0, dtype=int)
            # the class's colour on a swatch, the words in the theme's ink: ten class colours cannot all
            # read as text on both backgrounds (class 7's wine on the dark theme did not)
            shown = ", ".join(f"<span style='color:{class_color(k)}'>{SWATCH}</span>&nbsp;{c} of class {k}"
                              for k, c in enumerate(counts) if c)
            return [f"<b>{m.n}</b> points{': ' + shown if shown else ''}; d = {m.dim}"]
        pos = int(np.sum(m.y > 0))
        return [f"<b>{m.n}</b> points: <span style='color:{POSITIVE}'>{pos} of +1</span>, "
                f"<span style='color:{NEGATIVE}'>{m.n - pos} of −1</span>; d = {m.dim}"]

    def _counts_now_geometry_soon(self) -> None:
        self.facts.setText(self._counts()[0])
        self._facts_timer.start()

    def set_geometry_service(self, request) -> None:
        """Have ``request(token, X, y)`` compute separability and margin elsewhere (the window's
        worker process), answering through ``show_geometry(token, result)``; without one the panel
        computes them itself, on the GUI thread."""
        self._geometry_service = request

    def update_facts(self) -> None:
        """Counts, and whether the data are linearly separable with their l2 SVM margin."""
        self._facts_timer.stop()
        self._geometry_token += 1
        m = self.model
        parts = self._counts()
        problem = self.problem()
        if problem:
            parts.append(f"<span style='color:#b00'>{problem.split(': ', 1)[1]}</span>")
        elif m.n <= MAX_FACTS_POINTS:
            data = m.dataset()  # -1/+1 labels, also for classes 0 and 1 drawn with the keys
            if data.classes > 2:
                pass  # separability and the SVM margin are the binary problem's: not shown for C classes
            elif self._geometry_service is not None:
                self._geometry_service(self._geometry_token, data.X, data.y)
                parts.append("<span style='color:#777'>checking separability…</span>")
            else:
                self.show_geometry(self._geometry_token, dataset_geometry(data.X, data.y))
                return
        self.facts.setText("<br>".join(parts))

    def show_geometry(self, token: int, result: dict) -> None:
        """The answer to the latest geometry request (older answers are for data since edited)."""
        if token != self._geometry_token:
            return
        parts = self._counts()
        if "error" in result:
            parts.append(f"<span style='color:#b00'>separability unknown: {result['error']}</span>")
        else:
            parts += geometry_lines(result)
        self.facts.setText("<br>".join(parts))
