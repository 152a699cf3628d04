"""A plot's companion axis: a second y axis on the right for one series of the first run, in
its own view box that shares the plot's x (pyqtgraph's MultiplePlotAxes recipe). The loss plot
draws Lyu and Li's adaptive rate alpha there (core/step_rule.py LossBasedRate), on a log scale,
thin and muted so that the loss stays the plot's subject."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from .palette import ink


class Companion:
    def __init__(self, item: pg.PlotItem, label: str):
        self.item = item
        self.view = pg.ViewBox(enableMenu=False)
        self.view.setMouseEnabled(False, False)
        item.showAxis("right")
        self.axis = item.getAxis("right")
        self.axis.setLabel(label)
        self.axis.enableAutoSIPrefix(False)  # "(x0.001)" beside decade ticks read as a factor of alpha
        # linked first: setLogMode tells the axis's view box, which was the plot's own, and a log
        # plot view box clamps its range to +-308 (log L of a loss-based run stopped at -308)
        self.axis.linkToView(self.view)
        self.axis.setLogMode(False, True)  # the values drawn are log10(alpha): decades on the axis
        self.view.setXLink(item.vb)
        # a child of the plot item, not of the scene: it goes when the plot goes (TrajectoryPlots._build)
        self.view.setParentItem(item)
        self.curve = pg.PlotDataItem(pen=pg.mkPen(ink("muted"), width=1, style=Qt.DashLine), connect="finite")
        self.view.addItem(self.curve)
        item.vb.sigResized.connect(self._fit)
        self._fit()

    def _fit(self, *_args) -> None:
        self.view.setGeometry(self.item.vb.geometry())  # both in the plot item's coordinates

    def set_data(self, x: np.ndarray, values: np.ndarray) -> None:
        """``values`` > 0 at ``x`` (view units of the plot's x axis); drawn as log10."""
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.where(values > 0, np.log10(values), np.nan)
        self.curve.setData(x, y)
        finite = y[np.isfinite(y)]
        if len(finite):
            lo, hi = float(finite.min()), float(finite.max())
            pad = max(0.05 * (hi - lo), 0.1)
            self.view.setYRange(lo - pad, hi + pad, padding=0)

    def hide(self) -> None:
        self.curve.setData([], [])
        self.item.hideAxis("right")

    def show(self) -> None:
        self.item.showAxis("right")
