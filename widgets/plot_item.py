"""One trajectory plot: its PlotItem, curves, legend, notes, replay marker and hover readout,
and the bounds of what was drawn (follow mode reads them)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsSimpleTextItem

from .legend import AutoLegend, occupied_cells
from .palette import ink
from .plot_specs import ROUND_OFF_NOTE, PlotSpec, tooltip


LEGEND_POINTS, AXIS_LABEL_POINTS = 8, 9  # type sizes at font scale 1 (presentation mode scales them)
STYLES = [Qt.SolidLine, Qt.DashLine, Qt.DotLine, Qt.DashDotLine]


def note_style(note: QGraphicsSimpleTextItem, font_scale: float) -> None:
    """A plot's note (why it is blank) in the theme's guide colour and the type scale."""
    note.setBrush(QColor(ink("guide")))
    font = note.font()
    font.setPointSizeF(AXIS_LABEL_POINTS * font_scale)
    note.setFont(font)


@functools.lru_cache(maxsize=256)
def make_pen(colour: str, style: int, width: int):
    """Pens are immutable here: make each once (pg.mkPen per curve per redraw showed in profiles).
    ``style`` tells a run's curves apart when colours tell the runs apart."""
    return pg.mkPen(colour, width=width, style=STYLES[int(style) % len(STYLES)])


class Plot:
    """One PlotItem and its curves for every source."""

    def __init__(self, spec: PlotSpec, item: pg.PlotItem):
        self.spec = spec
        self.item = item
        self.curves: dict = {}  # (source index, name or column) -> PlotDataItem
        self.bands: dict = {}
        self.reference_line = None
        self.floor_line = None  # the labeled floor where a value at 0 to float precision is drawn
        self.steepest_line = None  # the l_inf or l1 max-margin line of a steepest-descent run
        self.companion = None  # the right-hand axis of a series such as alpha (widgets/plot_companion.py), made at first use
        self.event_lines: list = []  # a run's health events (core/health.py), marked where they happened
        self.events_key = None
        self.seen_versions: tuple = ()
        self.drawn = False
        # decimation is ours (widgets/decimate.py): pyqtgraph gets ~2 points per pixel already
        item.setClipToView(False)
        item.setDownsampling(auto=False)
        # no grid: pyqtgraph draws it as alpha-blended lines across the plot, which made a repaint
        # of the plots far slower in Qt's raster engine; the crosshair readout gives exact values
        self.log_y = spec.log_y  # the user may switch it per plot (the view box's right-click menu)
        item.setLogMode(False, self.log_y)
        for side in ("left", "bottom"):
            # label major (decade) ticks and one minor level only: pyqtgraph's log axes otherwise
            # print overlapping 2·10¹ 3·10¹ ... labels when a range spans about a decade
            item.getAxis(side).setStyle(textFillLimits=[(0, 0.8), (2, 0.3)])
            item.getAxis(side).enableAutoSIPrefix(False)
        item.setTitle(spec.title, size="10pt")
        item.titleLabel.setToolTip(tooltip(spec))
        item.setToolTip(tooltip(spec))
        # where the curves leave room (widgets/legend.py); PlotItem adds named curves to it
        self.legend = item.legend = AutoLegend(labelTextSize=f"{LEGEND_POINTS}pt", verSpacing=0,
                                               brush=pg.mkBrush(*ink("legend")), labelTextColor=ink("text"))
        self.legend.setParentItem(item.vb)
        self.legend.unpinned.connect(self.place_legend)
        # follow mode: we set the ranges (sticky, with headroom) until the user zooms or pans;
        # pyqtgraph's autorange moved every frame and made every axis re-layout its text each paint
        self.follow = True
        self.bounds = None  # [xmin, xmax, ymin, ymax] of what was drawn, in view (log10 where log) units
        self.y_fitted = False  # the y range was set from data at least once
        self.banded = False  # the y range's top was raised to leave the legend a band (_legend_band)
        self.on_zoom = None  # set by TrajectoryPlots: redraw at the new resolution
        item.disableAutoRange()
        item.vb.sigRangeChangedManually.connect(self._manual_range)
        item.vb.sigXRangeChanged.connect(self._x_range_changed)
        item.autoBtn.clicked.connect(self._follow_again)
        # a legend names each curve; the samples plot has a line per sample (or a band): none there
        self.legend.setVisible(spec.kind != "samples")
        self.key_names: list = []  # the line-style key's entries now in the legend (several runs)
        self.legend_hidden = False  # the hover readout stands in for the legend (no room for both)
        self.y_label_text = None  # the form of the y label shown (TrajectoryPlots._fit_y_label)
        # pyqtgraph's own "Plot options" menu switches log mode behind our back: ours instead
        item.setMenuEnabled(False, enableViewBoxMenu=True)
        self.log_action = item.vb.menu.addAction("Log y axis")
        self.log_action.setCheckable(True)
        self.log_action.setChecked(self.log_y)
        self.on_log_y = None  # set by TrajectoryPlots
        self.log_action.toggled.connect(lambda on: self.on_log_y and self.on_log_y(on))
        self.round_off_note = QGraphicsSimpleTextItem(ROUND_OFF_NOTE, item.vb)  # styled by restyle
        self.round_off_note.setVisible(False)
        self.dropped_round_off = False
        self.marker = pg.InfiniteLine(angle=90, movable=False,
                                      pen=pg.mkPen(ink("guide"), width=1, style=Qt.DashLine))
        self.marker.setVisible(False)
        item.addItem(self.marker, ignoreBounds=True)
        self.cross = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#bbb", width=1))
        self.cross.setVisible(False)
        item.addItem(self.cross, ignoreBounds=True)
        self.readout = pg.TextItem("", color=ink("text"), anchor=(0, 0), fill=pg.mkBrush(*ink("legend")))
        self.readout.setZValue(50)
        item.addItem(self.readout, ignoreBounds=True)
        # in the view box's own pixels: neither the data's range nor the layout move it
        self.empty_note = None
        if spec.extra.get("empty"):
            self.empty_note = QGraphicsSimpleTextItem(spec.extra["empty"], item.vb)  # styled by restyle
            self.empty_note.setPos(10, 8)
            self.empty_note.setVisible(False)

    def restyle(self, font_scale: float) -> None:
        """Take the theme's colours (widgets/palette.py ink) and ``font_scale`` times the type size."""
        self.legend.restyle(pg.mkBrush(*ink("legend")), ink("text"), f"{LEGEND_POINTS * font_scale:.0f}pt")
        self.readout.setColor(ink("text"))
        self.readout.fill = pg.mkBrush(*ink("legend"))  # TextItem has no setter; it paints from this
        self.marker.setPen(pg.mkPen(ink("guide"), width=1, style=Qt.DashLine))
        if self.empty_note is not None:
            note_style(self.empty_note, font_scale)
        note_style(self.round_off_note, font_scale * 0.85)
        if self.reference_line is not None:
            self.reference_line.setPen(pg.mkPen(ink("muted"), width=1, style=Qt.DashLine))
        if self.floor_line is not None:
            self.floor_line.setPen(pg.mkPen(ink("muted"), width=1, style=Qt.DotLine))
        for side in ("left", "bottom"):
            label = self.item.getAxis(side).label
            font = label.font()
            font.setPointSizeF(AXIS_LABEL_POINTS * font_scale)
            label.setFont(font)

    def _manual_range(self, *_args):
        self.follow = False

    def _follow_again(self, *_args):
        self.follow = True
        self.item.disableAutoRange()
        if self.on_zoom is not None:
            self.on_zoom()

    def _x_range_changed(self, *_args):
        if self.on_zoom is not None and not self.follow:
            self.on_zoom()

    def note(self, x, y, log_x: bool, log_y: bool) -> None:
        """Widen ``bounds`` by a drawn curve (view units)."""
        if not len(x):
            return
        with np.errstate(divide="ignore", invalid="ignore"):
            xv = np.log10(x[x > 0]) if log_x else x
            yv = y[np.isfinite(y)]
            if log_y:
                yv = np.log10(yv[yv > 0])
        if not len(xv) or not len(yv):
            return
        b = [float(xv.min()), float(xv.max()), float(yv.min()), float(yv.max())]
        if self.bounds is None:
            self.bounds = b
        else:
            self.bounds = [min(self.bounds[0], b[0]), max(self.bounds[1], b[1]),
                           min(self.bounds[2], b[2]), max(self.bounds[3], b[3])]

    def legend_covers(self) -> bool:
        """Whether the legend, where it is, covers a cell of the placement grid that a curve crosses."""
        legend, vb = self.legend, self.item.vb
        if not legend.isVisible() or not legend.items or vb.width() <= 0 or vb.height() <= 0:
            return False
        grid = occupied_cells(self.curve_data(), vb.viewRange())
        rows, columns = grid.shape
        box = legend.mapRectToParent(legend.boundingRect())
        top, bottom = int(box.top() / vb.height() * rows), math.ceil(box.bottom() / vb.height() * rows)
        left, right = int(box.left() / vb.width() * columns), math.ceil(box.right() / vb.width() * columns)
        return bool(grid[max(top, 0):bottom, max(left, 0):right].any())

    def curve_data(self) -> list:
        """(x, y) of every drawn curve, in view units (log10 where an axis is log)."""
        return [c.getData() for c in self.curves.values() if c.isVisible()]

    def place_legend(self) -> None:
        """Move the legend off the drawn curves (widgets/legend.py), once the ranges are set."""
        vb = self.item.vb
        curves = self.curve_data()
        bands = []
        for key in self.bands:  # a band's fill counts, not only its two edges
            low, high = self.curves.get(key + ("low",)), self.curves.get(key + ("high",))
            if low is not None and high is not None and low.isVisible():
                (x, lo), hi = low.getData(), high.getData()[1]
                if x is not None and hi is not None and len(x) == len(hi):
                    bands.append((x, lo, hi))
        self.legend.place(curves, vb.viewRange(), (vb.width(), vb.height()), bands)

    def curve(self, key, pen, name=None, short=None):
        """The curve under ``key``, made at first use with a legend entry ``name`` (``short`` in a
        compact legend) when one is given."""
        c = self.curves.get(key)
        if c is None:
            c = self.item.plot([], [], pen=pen, connect="finite")
            if name is not None:
                self.legend.add_entry(c, name, short)
            self.curves[key] = c
        return c
