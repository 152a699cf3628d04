"""The decision-boundary view for 2-D data: a heatmap of f(x), the zero level set, the margin
level sets f(x) = +-q_min, and the points with support vectors ringed.

C classes (outputs (ny, nx, C) on the grid): each class's region (argmax_k f_k) in the class's
colour, stronger where the top output leads the runner-up by more; the boundaries between
classes (where the top two outputs tie, h_k = f_k - max_{j != k} f_j = 0) in black; and the
margin level sets h_k = q_min, dashed in each class's colour: the multi-class form of the binary
picture, where h_{+1} = f and h_{-1} = -f."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal

from .contours import class_level_segments, class_regions, level_segments
from .palette import CLASS_SYMBOLS, NEGATIVE, POSITIVE, class_color, ink

BINARY_TIP = ("Heatmap: f(x). Black: f(x) = 0, the decision boundary. Dashed: f(x) = +-q_min, the margin "
              "level sets. Ringed: support vectors, samples with q_i <= q_min (1 + tol).")
CLASSES_TIP = ("Regions: the predicted class argmax_k f_k(x), in the class's colour, paler where the top two "
               "outputs are close. Black: boundaries between classes (the top two outputs tie). Dashed: "
               "f_k - max_(j != k) f_j = q_min, the margin level sets. Ringed: support vectors, samples with "
               "q_i <= q_min (1 + tol).")
PALEST = 0.25  # a region's colour strength where the top two outputs tie (1: the class colour itself)


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)


def class_image(regions: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """RGBA (ny, nx, 4) uint8: each node in its class's colour mixed with white, the class colour's
    share from PALEST (a tie) to 1 (the largest gap on the grid)."""
    scale = float(np.max(gap)) if gap.size and np.max(gap) > 0 else 1.0
    share = PALEST + (1 - PALEST) * np.clip(gap / scale, 0.0, 1.0)
    colours = np.array([_rgb(class_color(k)) for k in range(int(regions.max()) + 1)])
    rgb = 255.0 + share[..., None] * (colours[regions] - 255.0)
    rgba = np.empty(regions.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = np.round(rgb)
    rgba[..., 3] = 255
    return rgba


def is_classes(y: np.ndarray) -> bool:
    """Labels 0..C-1 (classes drawn with the keys, or a C-class dataset) rather than -1/+1: a
    class 0 or a class past 1 (points all of label 1 stay +1, the first clicks' label)."""
    y = np.asarray(y)
    return bool(len(y)) and bool(np.any(y == 0) or np.any(y >= 2))


def _diverging_map() -> pg.ColorMap:
    # orange (f < 0, class -1) through white to blue (f > 0, class +1): Okabe-Ito hues
    return pg.ColorMap([0.0, 0.5, 1.0], [(213, 94, 0), (255, 255, 255), (0, 114, 178)])


class BoundaryView(pg.PlotWidget):
    blankChanged = Signal(bool)  # whether the view has nothing to show (data beyond 2-D)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.blank = False
        self.setObjectName("boundary-view")
        self.setAspectLocked(True)
        self.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setOpacity(0.6)
        self.addItem(self.image)
        self.regions_image = pg.ImageItem(axisOrder="row-major")  # C classes: the class of each region
        self.regions_image.setOpacity(0.6)
        self.addItem(self.regions_image)
        self.regions = None  # C classes: the predicted class at each grid node, (ny, nx)
        self.class_margins: list = []  # C classes: class k's dashed level set h_k = q_min, by k
        # f(x)'s scale beside the view: the heatmap's colours alone said nothing of its values
        self.colour_bar = pg.ColorBarItem(values=(-1.0, 1.0), colorMap=_diverging_map(), interactive=False,
                                          width=12, label="f(x)")
        self.colour_bar.setImageItem(self.image, insert_in=self.getPlotItem())
        self.colour_bar.setVisible(False)
        self.zero = pg.PlotCurveItem(pen=pg.mkPen("k", width=2), connect="pairs")
        self.plus = pg.PlotCurveItem(pen=pg.mkPen(POSITIVE, width=1, style=Qt.DashLine), connect="pairs")
        self.minus = pg.PlotCurveItem(pen=pg.mkPen(NEGATIVE, width=1, style=Qt.DashLine), connect="pairs")
        for curve in (self.zero, self.plus, self.minus):
            self.addItem(curve)
        self.points = pg.ScatterPlotItem(size=8, pxMode=True, pen=pg.mkPen("w", width=0.5))
        self.support = pg.ScatterPlotItem(size=16, pxMode=True, pen=pg.mkPen("k", width=1.5), brush=None)
        self.addItem(self.points)
        self.addItem(self.support)
        self.note = pg.TextItem("", color=ink("muted"), anchor=(0.5, 0.5))
        self.addItem(self.note, ignoreBounds=True)
        self.setToolTip(BINARY_TIP)
        self._X = None
        self._support_mask = None
        self._pen_scale = 1  # an export's copy draws its lines this many times as wide
        self._shown: dict = {}  # the arguments of the last set_points, set_grid, set_support: an export's copy replays them

    def restyle(self, font_scale: float = 1.0) -> None:
        """The theme's colours (widgets/palette.py ink)."""
        self.note.setColor(ink("muted"))
        for side in ("left", "right"):  # the bar's scale, and its label
            axis = self.colour_bar.getAxis(side)
            axis.setPen(pg.mkPen(ink("muted"), width=self._pen_scale))
            axis.setTextPen(ink("text"))

    def copy_for_export(self, pen_scale: int = 1) -> "BoundaryView":
        """A new view showing what this one shows, in the colours of the ink at the time of the
        call, its lines ``pen_scale`` times as wide: an export draws it (app/export.py)."""
        other = BoundaryView()
        other._pen_scale = pen_scale
        for pen_of in (other.zero, other.plus, other.minus):
            pen = pg.mkPen(pen_of.opts["pen"])
            pen.setWidthF(pen.widthF() * pen_scale)
            pen_of.setPen(pen)
        other.points.setSize(8 * pen_scale)
        other.support.setSize(16 * pen_scale)
        other.support.setPen(pg.mkPen("k", width=1.5 * pen_scale))
        for name in ("set_points", "set_grid", "set_support"):
            if name in self._shown:
                getattr(other, name)(*self._shown[name])
        return other

    def clear_run(self) -> None:
        """Forget the run's picture (heatmap, level sets, support-vector rings); the points stay."""
        self.image.clear()
        self.regions_image.clear()
        self.regions = None
        self._shown.pop("set_grid", None)
        self.colour_bar.setVisible(False)
        for curve in (self.zero, self.plus, self.minus, *self.class_margins):
            curve.setData([], [])
        self._support_mask = None
        self._shown.pop("set_support", None)
        self.support.setData(pos=np.zeros((0, 2)))

    def set_points(self, X: np.ndarray, y: np.ndarray, classes: bool | None = None) -> None:
        """The points, coloured by label: -1/+1, or classes 0..C-1 (``classes``; None: told by
        the labels, is_classes)."""
        self._shown["set_points"] = (X, y, classes)
        self._X = X
        if (X.shape[1] != 2) != self.blank:
            self.blank = X.shape[1] != 2
            self.blankChanged.emit(self.blank)
        if X.shape[1] != 2:
            self.points.setData(pos=np.zeros((0, 2)))
            self.clear_run()  # the note alone, not over an earlier run's contours
            self.note.setText(f"d = {X.shape[1]}: no boundary view\nfor data beyond 2-D")
            self.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)  # nothing to show: the note in the middle
            self.note.setPos(0, 0)
            return
        if self.note.textItem.toPlainText():  # back from d > 2: fit the data again, not the note's [-1, 1]
            self.enableAutoRange()
        self.note.setText("")
        if is_classes(y) if classes is None else classes:
            brushes = [pg.mkBrush(class_color(int(v))) for v in y]
            symbols = [CLASS_SYMBOLS[int(v) % len(CLASS_SYMBOLS)] for v in y]
        else:
            brushes = [pg.mkBrush(POSITIVE if v > 0 else NEGATIVE) for v in y]
            symbols = ["o" if v > 0 else "s" for v in y]
        self.points.setData(pos=X, brush=brushes, symbol=symbols)

    def set_grid(self, values: np.ndarray, rect, q_min: float | None) -> None:
        """``values``: f on a grid (rows = y), float32, (ny, nx) for one output or (ny, nx, C) for
        C classes; ``rect``: (x, y, width, height); ``q_min`` the run's smallest sample margin."""
        self._shown["set_grid"] = (values, rect, q_min)
        values = np.ascontiguousarray(values, dtype=np.float32)
        classes = values.ndim == 3 and values.shape[2] >= 2
        self.setToolTip(CLASSES_TIP if classes else BINARY_TIP)
        self.image.setVisible(not classes)
        self.regions_image.setVisible(classes)
        self.plus.setVisible(False)
        self.minus.setVisible(False)
        for curve in self.class_margins:
            curve.setVisible(False)
        if classes:
            self._set_class_grid(values, rect, q_min)
            return
        self.regions = None
        if values.ndim == 3:  # one output as (ny, nx, 1)
            values = values[..., 0]
        scale = float(np.nanmax(np.abs(values))) or 1.0
        self.image.setImage(values, levels=(-scale, scale), autoLevels=False)
        self.colour_bar.setLevels((-scale, scale))
        self.colour_bar.setVisible(True)
        self.image.setRect(QRectF(*rect))
        self._draw_level(self.zero, values, 0.0, rect)
        show_margin = bool(q_min is not None and q_min > 0)
        for curve, level in ((self.plus, q_min), (self.minus, -q_min if q_min else None)):
            curve.setVisible(show_margin)
            if show_margin:
                self._draw_level(curve, values, level, rect)

    def _set_class_grid(self, values: np.ndarray, rect, q_min: float | None) -> None:
        """C outputs: regions in class colours, the boundaries between them, the margin level sets."""
        self.colour_bar.setVisible(False)
        self.regions, gap = class_regions(values)
        self.regions_image.setImage(class_image(self.regions, gap), levels=(0, 255), autoLevels=False)
        self.regions_image.setRect(QRectF(*rect))
        present = np.unique(self.regions)
        segments = [class_level_segments(values, int(k), 0.0, rect) for k in present]
        boundary = np.concatenate(segments) if segments else np.zeros((0, 2))
        self.zero.setData(boundary[:, 0], boundary[:, 1], connect="pairs")
        if not (q_min is not None and q_min > 0):
            return
        while len(self.class_margins) < values.shape[2]:
            k = len(self.class_margins)
            curve = pg.PlotCurveItem(pen=pg.mkPen(class_color(k), width=self._pen_scale, style=Qt.DashLine), connect="pairs")
            self.addItem(curve)
            self.class_margins.append(curve)
        for k in range(values.shape[2]):
            segments = class_level_segments(values, k, q_min, rect)
            self.class_margins[k].setData(segments[:, 0], segments[:, 1], connect="pairs")
            self.class_margins[k].setVisible(True)

    @staticmethod
    def _draw_level(curve, values, level, rect) -> None:
        segments = level_segments(values, level, rect)
        curve.setData(segments[:, 0], segments[:, 1], connect="pairs")

    def set_support(self, X: np.ndarray, sample_margins: np.ndarray | None, tolerance: float = 0.01) -> None:
        self._shown["set_support"] = (X, sample_margins, tolerance)
        if sample_margins is None or X.shape[1] != 2 or not np.all(np.isfinite(sample_margins)):
            self._support_mask = None
            self.support.setData(pos=np.zeros((0, 2)))
            return
        q_min = float(np.min(sample_margins))
        mask = sample_margins <= q_min + tolerance * abs(q_min)
        if self._support_mask is not None and np.array_equal(mask, self._support_mask):
            return  # unchanged: no repaint
        self._support_mask = mask
        self.support.setData(pos=X[mask])
