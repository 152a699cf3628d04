"""The Sweep view: a phase diagram of a sweep (core/sweep_phase.py), a final metric over two of
its axes as a heatmap with a colour bar; the other axes aggregated by the median or held at one
value by a slider; the spread of a cell in its tooltip; a click on a cell emits its runs."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from margin_explorer.core.sweep_phase import PhaseGrid, metrics, phase_grid

ALL = "all (median)"
MAX_TICKS = 12


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class SweepView(QWidget):
    cell_clicked = Signal(list)  # the run numbers of the clicked cell

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("sweep-view")
        self.index = None
        self.grid: PhaseGrid | None = None
        self.metric_choice = QComboBox()
        self.x_axis = QComboBox()
        self.y_axis = QComboBox()
        for combo in (self.metric_choice, self.x_axis, self.y_axis):
            combo.currentIndexChanged.connect(self._choice_changed)
        choices = QHBoxLayout()
        for text, combo in (("Metric", self.metric_choice), ("x", self.x_axis), ("y", self.y_axis)):
            choices.addWidget(QLabel(text))
            choices.addWidget(combo, stretch=1)
        self.fixed_form = QFormLayout()
        self.sliders: dict[int, QSlider] = {}
        self.slider_labels: dict[int, QLabel] = {}
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colour_bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.colormap.get("viridis"), interactive=False,
                                          width=12)
        self.colour_bar.setImageItem(self.image, insert_in=self.plot.getPlotItem())
        self.colour_bar.getAxis("right").enableAutoSIPrefix(False)  # "(x0.001)" beside a margin misleads
        self.summary = QLabel()
        self.summary.setObjectName("sweep-summary")
        layout = QVBoxLayout(self)
        layout.addLayout(choices)
        layout.addLayout(self.fixed_form)
        layout.addWidget(self.plot, stretch=1)
        layout.addWidget(self.summary)
        self.plot.scene().sigMouseMoved.connect(self._hover)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self._filling = False

    # --- data ---------------------------------------------------------------------------
    def set_index(self, index) -> None:
        """Show the sweep ``index`` (core/sweep_index.py SweepIndex), keeping the choices made
        when it is the same sweep read again (a running sweep, polled)."""
        same = self.index is not None and self.index.plan.grid_dict() == index.plan.grid_dict()
        self.index = index
        self._filling = True
        try:
            chosen = self.metric_choice.currentText()
            self.metric_choice.clear()
            self.metric_choice.addItems(metrics(index))
            if chosen and self.metric_choice.findText(chosen) >= 0:
                self.metric_choice.setCurrentText(chosen)
            if not same:
                self._fill_axes()
        finally:
            self._filling = False
        self.redraw()

    def _fill_axes(self) -> None:
        axes = self.index.plan.axes
        labels = [a.label + (" (log)" if a.log else "") for a in axes]
        for combo in (self.x_axis, self.y_axis):
            combo.clear()
            combo.addItems(labels)
        wide = [i for i, a in enumerate(axes) if len(a.values) > 1] or [0]
        self.x_axis.setCurrentIndex(wide[0])
        self.y_axis.setCurrentIndex(wide[1] if len(wide) > 1 else (1 if len(axes) > 1 and wide[0] == 0 else 0))
        self._fill_sliders()

    def _fill_sliders(self) -> None:
        while self.fixed_form.rowCount():
            self.fixed_form.removeRow(0)
        self.sliders.clear()
        self.slider_labels.clear()
        if self.index is None:
            return
        for i, axis in enumerate(self.index.plan.axes):
            if i in (self.x_axis.currentIndex(), self.y_axis.currentIndex()) or len(axis.values) < 2:
                continue
            slider = QSlider(Qt.Horizontal)
            slider.setRange(0, len(axis.values))  # 0: all values, aggregated; k: the k-th value
            label = QLabel(ALL)
            slider.valueChanged.connect(self._slider_moved)
            row = QWidget()
            row_layout = QHBoxLayout(row)
            row_layout.setContentsMargins(0, 0, 0, 0)
            row_layout.addWidget(slider, stretch=1)
            row_layout.addWidget(label)
            self.fixed_form.addRow(axis.label, row)
            self.sliders[i], self.slider_labels[i] = slider, label

    def _slider_moved(self, _value) -> None:
        for i, slider in self.sliders.items():
            k = slider.value()
            self.slider_labels[i].setText(ALL if k == 0 else _shown(self.index.plan.axes[i].values[k - 1]))
        self.redraw()

    def _choice_changed(self, _index) -> None:
        if self._filling or self.index is None:
            return
        if self.sender() in (self.x_axis, self.y_axis):
            self._fill_sliders()
        self.redraw()

    def fixed(self) -> dict:
        """{axis number: value index} of the axes held by their sliders."""
        return {i: s.value() - 1 for i, s in self.sliders.items() if s.value() > 0}

    # --- drawing ------------------------------------------------------------------------
    def redraw(self) -> None:
        index = self.index
        x, y = self.x_axis.currentIndex(), self.y_axis.currentIndex()
        if index is None or x < 0 or y < 0 or not self.metric_choice.currentText():
            return
        if x == y:
            self.summary.setText("Choose two different axes.")
            self.image.clear()
            return
        self.grid = grid = phase_grid(index, self.metric_choice.currentText(), x, y, self.fixed())
        values = np.ascontiguousarray(grid.values, dtype=np.float32)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        if high <= low:
            high = low + (abs(low) * 1e-6 or 1.0)
        self.image.setImage(values, levels=(low, high), autoLevels=False)
        self.image.setRect(QRectF(0, 0, len(grid.x), len(grid.y)))
        self.colour_bar.setLevels((low, high))
        # the metric as the title: as the bar's label it overlapped the bar's numbers in an export
        what = "share" if grid.metric.endswith("(share)") else "median"
        held = ", ".join(f"{index.plan.axes[a].label} = {_shown(index.plan.axes[a].values[k])}"
                         for a, k in sorted(self.fixed().items()))
        self.plot.setTitle(f"{grid.metric} ({what} of each cell's runs{'; ' + held if held else ''})")
        axes = index.plan.axes
        for side, axis, values_ in (("bottom", axes[x], grid.x), ("left", axes[y], grid.y)):
            item = self.plot.getAxis(side)
            every = max(1, int(np.ceil(len(values_) / MAX_TICKS)))  # labels that fit, not one per value
            item.setTicks([[(k + 0.5, _shown(v)) for k, v in enumerate(values_) if k % every == 0]])
            item.setLabel(axis.label + (" (log scale)" if axis.log else ""))
        self.plot.setRange(xRange=(0, len(grid.x)), yRange=(0, len(grid.y)), padding=0)
        counts = index.counts()
        self.summary.setText(f"{index.done} of {index.size} runs done ("
                             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f"); sweep {index.state}")

    def cell_at(self, scene_pos) -> tuple[int, int] | None:
        """(column, row) of the cell under a scene position, or None."""
        if self.grid is None:
            return None
        point = self.plot.getPlotItem().vb.mapSceneToView(scene_pos)
        i, j = int(np.floor(point.x())), int(np.floor(point.y()))
        if 0 <= i < len(self.grid.x) and 0 <= j < len(self.grid.y):
            return i, j
        return None

    def cell_centre(self, i: int, j: int) -> QPointF:
        """The scene position of cell (i, j)'s centre (for tests and for keyboard use)."""
        return self.plot.getPlotItem().vb.mapViewToScene(QPointF(i + 0.5, j + 0.5))

    def describe(self, i: int, j: int) -> str:
        grid = self.grid
        x, y = self.index.plan.axes[self.x_axis.currentIndex()], self.index.plan.axes[self.y_axis.currentIndex()]
        head = f"{x.label} = {_shown(grid.x[i])}, {y.label} = {_shown(grid.y[j])}"
        runs = len(grid.runs[j, i])
        if not grid.counts[j, i]:
            return f"{head}\nno value yet ({runs} runs)"
        what = "share" if grid.metric.endswith("(share)") else "median"
        return (f"{head}\n{grid.metric}: {what} {grid.values[j, i]:.4g} of {grid.counts[j, i]} runs\n"
                f"quartiles {grid.low[j, i]:.4g} .. {grid.high[j, i]:.4g}, range {grid.least[j, i]:.4g} .. "
                f"{grid.most[j, i]:.4g}\nclick: open the cell's runs")

    def _hover(self, scene_pos) -> None:
        cell = self.cell_at(scene_pos)
        self.plot.setToolTip(self.describe(*cell) if cell else "")

    def _clicked(self, event) -> None:
        if event.button() != Qt.LeftButton:
            return
        cell = self.cell_at(event.scenePos())
        if cell is not None:
            i, j = cell
            self.cell_clicked.emit([int(r) for r in self.grid.runs[j, i]])
