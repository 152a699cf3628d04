"""The decision-boundary view for 2-D data: a heatmap of f(x), the zero level set, the margin
level sets f(x) = +-q_min, and the points with support vectors ringed."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt

from .palette import NEGATIVE, POSITIVE


def _diverging_map() -> pg.ColorMap:
    # orange (f < 0, class -1) through white to blue (f > 0, class +1): Okabe-Ito hues
    return pg.ColorMap([0.0, 0.5, 1.0], [(213, 94, 0), (255, 255, 255), (0, 114, 178)])


class BoundaryView(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("boundary-view")
        self.setAspectLocked(True)
        self.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(_diverging_map().getLookupTable(nPts=256))
        self.image.setOpacity(0.6)
        self.addItem(self.image)
        self.zero = pg.IsocurveItem(level=0.0, pen=pg.mkPen("k", width=2))
        self.plus = pg.IsocurveItem(level=1.0, pen=pg.mkPen(POSITIVE, width=1, style=Qt.DashLine))
        self.minus = pg.IsocurveItem(level=-1.0, pen=pg.mkPen(NEGATIVE, width=1, style=Qt.DashLine))
        for iso in (self.zero, self.plus, self.minus):
            iso.setParentItem(self.image)
        self.points = pg.ScatterPlotItem(size=8, pxMode=True, pen=pg.mkPen("w", width=0.5))
        self.support = pg.ScatterPlotItem(size=16, pxMode=True, pen=pg.mkPen("k", width=1.5), brush=None)
        self.addItem(self.points)
        self.addItem(self.support)
        self.note = pg.TextItem("", color="#555", anchor=(0, 0))
        self.addItem(self.note, ignoreBounds=True)
        self.setToolTip("Heatmap: f(x). Black: f(x) = 0, the decision boundary. Dashed: f(x) = +-q_min, the margin "
                        "level sets. Ringed: support vectors, samples with q_i <= q_min (1 + tol).")
        self._X = None

    def set_points(self, X: np.ndarray, y: np.ndarray) -> None:
        self._X = X
        if X.shape[1] != 2:
            self.points.setData(pos=np.zeros((0, 2)))
            self.image.clear()
            self.note.setText(f"d = {X.shape[1]}: no boundary view for data beyond 2-D")
            return
        self.note.setText("")
        brushes = [pg.mkBrush(POSITIVE if v > 0 else NEGATIVE) for v in y]
        self.points.setData(pos=X, brush=brushes, symbol=["o" if v > 0 else "s" for v in y])

    def set_grid(self, values: np.ndarray, rect, q_min: float | None) -> None:
        """``values``: f on a grid (rows = y), float32; ``rect``: (x, y, width, height)."""
        values = np.ascontiguousarray(values, dtype=np.float32)
        scale = float(np.nanmax(np.abs(values))) or 1.0
        self.image.setImage(values, levels=(-scale, scale), autoLevels=False)
        self.image.setRect(QRectF(*rect))
        self.zero.setData(values)
        show_margin = bool(q_min is not None and q_min > 0)
        for iso, level in ((self.plus, q_min), (self.minus, -q_min if q_min else None)):
            iso.setVisible(show_margin)
            if show_margin:
                iso.setLevel(level)
                iso.setData(values)

    def set_support(self, X: np.ndarray, sample_margins: np.ndarray | None, tolerance: float = 0.01) -> None:
        if sample_margins is None or X.shape[1] != 2 or not np.all(np.isfinite(sample_margins)):
            self.support.setData(pos=np.zeros((0, 2)))
            return
        q_min = float(np.min(sample_margins))
        mask = sample_margins <= q_min + tolerance * abs(q_min)
        self.support.setData(pos=X[mask])
