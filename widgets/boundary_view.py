"""The decision-boundary view for 2-D data: a heatmap of f(x), the zero level set, the margin
level sets f(x) = +-q_min, and the points with support vectors ringed."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal

from .contours import level_segments
from .palette import NEGATIVE, POSITIVE, ink


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
        self.setToolTip("Heatmap: f(x). Black: f(x) = 0, the decision boundary. Dashed: f(x) = +-q_min, the margin "
                        "level sets. Ringed: support vectors, samples with q_i <= q_min (1 + tol).")
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
        self._shown.pop("set_grid", None)
        self.colour_bar.setVisible(False)
        for curve in (self.zero, self.plus, self.minus):
            curve.setData([], [])
        self._support_mask = None
        self._shown.pop("set_support", None)
        self.support.setData(pos=np.zeros((0, 2)))

    def set_points(self, X: np.ndarray, y: np.ndarray) -> None:
        self._shown["set_points"] = (X, y)
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
        brushes = [pg.mkBrush(POSITIVE if v > 0 else NEGATIVE) for v in y]
        self.points.setData(pos=X, brush=brushes, symbol=["o" if v > 0 else "s" for v in y])

    def set_grid(self, values: np.ndarray, rect, q_min: float | None) -> None:
        """``values``: f on a grid (rows = y), float32; ``rect``: (x, y, width, height)."""
        self._shown["set_grid"] = (values, rect, q_min)
        values = np.ascontiguousarray(values, dtype=np.float32)
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
