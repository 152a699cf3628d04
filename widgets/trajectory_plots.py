"""The live trajectory plots: a grid of pyqtgraph plots sharing the step axis.

A source is anything with ``get(name) -> 1-D or 2-D array`` (a view, not a copy),
``snapshot_steps.view()``, ``snapshot_metrics[name].view()``, ``info`` and ``version``: the
window's RunSession, live or loaded. Redraws are driven by the owner's timer through
``refresh()``, which skips plots whose sources have not changed, and by zooming. Each curve is
decimated to the min and max per pixel of the visible step range before pyqtgraph sees it,
so a redraw of 10^6 records costs a few numpy passes (DESIGN.md, Plots); pens are width 1.
"""

from __future__ import annotations

import functools
import html
import json
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics
from PySide6.QtWidgets import QGraphicsSimpleTextItem, QVBoxLayout, QWidget

from margin_explorer.core.metrics import DEFINITIONS

from .decimate import BlockCache, bin_starts, peaks, range_from
from .legend import GRID, MARGIN_PX, PLACES, AutoLegend, cells_under, elide, occupied_cells
from .palette import color, ink


@dataclass
class PlotSpec:
    key: str
    title: str
    curves: list  # (series name, legend label)
    log_y: bool = False
    kind: str = "records"  # records | samples | columns | snapshots
    reference: str | None = None  # an info key drawn as a dashed horizontal line
    columns: str | None = None
    extra: dict = field(default_factory=dict)


# KKT eps is relative to ||theta~||: below this it is 0 to float64 precision (a linear model at its
# SVM direction), and a log axis would drop it; it is drawn on this labeled floor instead
ZERO_FLOOR = 1e-15

PLOTS = [
    PlotSpec("loss", "log L", [("log_loss", "log L")], extra={"y_label": "log L"}),
    PlotSpec("margin", "Normalized margin", [("normalized_margin", "γ = q_min / ‖θ‖^M"),
                                             ("smoothed_margin", "γ̃ = ℓ⁻¹(L) / ‖θ‖^M")],
             reference="reference_margin",
             # steepest descent in l_inf (sign) or l1 (coordinate) maximizes the margin in its own
             # norm: those runs also show both, the matching one with its max-margin line
             extra={"separated_range": True, "y_label": "normalized margin", "y_short": "margin",
                    "steepest": {"sign": [("normalized_margin_linf", "γ∞ = q_min / ‖θ‖∞^M"),
                                          ("normalized_margin_l1", "γ₁ = q_min / ‖θ‖₁^M")],
                                 "coordinate": [("normalized_margin_l1", "γ₁ = q_min / ‖θ‖₁^M"),
                                                ("normalized_margin_linf", "γ∞ = q_min / ‖θ‖∞^M")]}}),
    PlotSpec("norm", "Parameter norm ‖θ‖", [("param_norm", "‖θ‖₂")], log_y=True, extra={"y_label": "‖θ‖₂"}),
    # direction change is recorded per record; records thin out (log-spaced after the every-step
    # phase, a shorter last interval): drawn per step, so neither shows as a jump or a dip
    PlotSpec("angles", "Angles", [("alignment_gap", "1 − cos(θ, −∇L)"),
                                  ("direction_change", "direction change / step"),
                                  ("angle_to_reference", "angle to max-margin")], log_y=True,
             extra={"y_label": "angle (rad), 1 − cos", "y_short": "angle (rad)", "per_step": ("direction_change",),
                    "round_off": ("direction_change",)}),
    PlotSpec("samples", "Sample normalized margins", [("sample_margins", "q_i / ‖θ‖^M")], kind="samples",
             extra={"y_label": "q_i / ‖θ‖^M"}),
    PlotSpec("stable_rank", "Stable rank", [("stable_rank", "‖W‖_F² / ‖W‖₂²")], kind="columns",
             extra={"y_label": "stable rank"}),
    PlotSpec("ensemble", "Ensemble members' output share", [("ensemble_share", "share")], kind="columns",
             extra={"column_label": "member", "empty": "the network has no ensemble", "y_label": "output share",
                    "y_short": "share"}),
    # delta is negative where q_min(theta~) < 1, which only a non-homogeneous network allows (a GELU
    # network's late snapshots): a log axis draws |delta|, the readout keeps the sign
    PlotSpec("kkt", "KKT residual and Euler defect", [("kkt_eps", "KKT ε"), ("kkt_delta", "|KKT δ|"),
                                                      ("euler_defect", "Euler defect")],
             log_y=True, kind="snapshots", extra={"absolute": {"kkt_delta": "KKT δ"}, "y_label": "residual",
                                                  "floor": {"kkt_eps": ZERO_FLOOR}, "round_off": ("euler_defect",)}),
]
PLOT_KEYS = [p.key for p in PLOTS]
# presentation mode shows these, large (2 x 2 at 1280 x 720), unless the presenter chose others:
# eight plots gave each about 61 px of height, too little to read from a room
PRESENTATION_PLOTS = ["loss", "margin", "norm", "angles"]
PRESENTATION_SETTING = "presentation_plots"  # where the presenter's choice is remembered
# what the shared horizontal axis shows: runs with different step sizes compare best at equal loss
X_AXES = {"step": "step", "wall_time": "wall time (s)", "neg_log_loss": "−log L"}
# the record series each x axis is drawn from (TrajectoryPlots._x_of)
X_SERIES = {"step": "step", "wall_time": "wall_time", "neg_log_loss": "log_loss"}


def series_needed(keys) -> tuple[set[str], bool]:
    """What the plots ``keys`` draw of a run: (the record series, whether its snapshots), with
    the series of every x axis; a reader loads only these (`main.py render`)."""
    specs = [p for p in PLOTS if p.key in keys]
    names = set(X_SERIES.values())
    for spec in specs:
        names.update(name for name, _label in spec.curves if spec.kind != "snapshots")
        for curves in spec.extra.get("steepest", {}).values():
            names.update(name for name, _label in curves)
    return names, any(spec.kind == "snapshots" for spec in specs)
WAITING = "No run yet: press Run (Space),\nor open saved runs (Ctrl+O)"  # two lines: one overran the plot at 1.6x type
READOUT_RUNS = 4  # the hover readout's lines at most, one a run
SAMPLE_LINES_UP_TO = 40  # more samples than this: a min / median / max band
LEGEND_POINTS, AXIS_LABEL_POINTS = 8, 9  # type sizes at font scale 1 (presentation mode scales them)
REDRAW_BUDGET_MS = 12.0  # per refresh call; the rest of the plots follow at the next timer tick
# direction change and the Euler defect are normalized (radians; a defect relative to ||theta||^M):
# below this they are float64 round-off (~1e-16 at the start of a run, ~1e-17 for a homogeneous
# network), and on a log axis they stretched the range to 1e-20, flattening the curves that matter
ROUND_OFF = 1e-13
ROUND_OFF_NOTE = f"< {ROUND_OFF:.0e}: round-off, not drawn"
# where the round-off note may go (legend.py PLACES): the bottom corners first, where it says
# what is missing below the curves, then the top ones and the sides
NOTE_PLACES = ((1, 1), (0, 1), (1, 0), (0, 0), (1, 0.5), (0, 0.5), (1, 0.75), (0, 0.75), (1, 0.25), (0, 0.25))
# a legend in a plot lower than this (pixels at type scale 1) takes short labels ("γ", not its
# definition) and one more column: at 1280 x 720 the full ones covered half of every plot
COMPACT_BELOW_PX = 130
# follow mode's room above and below the data on a log y axis, in decades: 30% of the span, which
# it is on a linear axis, was ~1.7 empty decades over curves spanning six (x 10^1.7 = x 50)
LOG_HEADROOM_DECADES = 0.2
LOG_BAND_MOST = 0.35  # the most of a log plot's height a band for the legend may take
SHORT_LABELS = {"alignment_gap": "1 − cos", "direction_change": "turn / step", "angle_to_reference": "∠ w*",
                "kkt_eps": "ε", "kkt_delta": "|δ|", "euler_defect": "Euler"}
MULTI_BAND_ALPHA = 35  # of 255: the sample-margin bands of several runs
KEY_COLOUR = "#777777"  # the line-style key's samples: neither run's colour
RUN_KEY_PER_LINE = 4  # runs named on one line of the run key above the plots


STYLES = [Qt.SolidLine, Qt.DashLine, Qt.DotLine, Qt.DashDotLine]


NICER = {1: 2, 2: 5, 5: 10}  # the next wider tick spacing after 1, 2 or 5 x 10^k


class SparseLogAxis(pg.AxisItem):
    """On a log axis, label only 1, 2 and 5 x 10^k: pyqtgraph labels every minor tick when a range
    spans about a decade, and the labels overlap. On a vertical axis, major ticks no closer than
    their labels are tall: pyqtgraph spaces them by the axis length alone, and presentation mode's
    large type piled the labels on each other in a short plot."""

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph's names)
        levels = super().tickSpacing(minVal, maxVal, size)
        if self.orientation not in ("left", "right") or not levels or size <= 0:
            return levels
        label_px = 1.15 * QFontMetrics(self.style["tickFont"] or QFont()).height()
        span = abs(maxVal - minVal)
        major = levels[0][0]
        widened = major
        while span / widened * label_px > size:  # more labels than fit
            exponent = math.floor(math.log10(widened) + 1e-9)
            mantissa = round(widened / 10 ** exponent)
            widened = NICER.get(mantissa, 10) * 10 ** exponent
        if widened == major:
            return levels
        return [(widened, 0)] + [level for level in levels if level[0] < widened]

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        strings = super().logTickStrings(values, scale, spacing)
        low, high = self.range
        if high - low < 1.0:  # under a decade pyqtgraph places plain ticks: keep all their labels
            return strings
        keep = []
        for value, text in zip(values, strings):
            mantissa = round(10 ** (value - np.floor(value + 1e-9)), 6)
            keep.append(text if mantissa in (1.0, 2.0, 5.0) else "")
        return keep


def _short(name, label: str) -> str:
    """A curve's label in a compact legend: its symbol, without the definition."""
    return SHORT_LABELS.get(name, label.split(" = ")[0])


def _note_style(note: QGraphicsSimpleTextItem, font_scale: float) -> None:
    """A plot's note (why it is blank) in the theme's guide colour and the type scale."""
    note.setBrush(QColor(ink("guide")))
    font = note.font()
    font.setPointSizeF(AXIS_LABEL_POINTS * font_scale)
    note.setFont(font)


@functools.lru_cache(maxsize=256)
def _make_pen(colour: str, style: int, width: int):
    """Pens are immutable here: make each once (pg.mkPen per curve per redraw showed in profiles).
    ``style`` tells a run's curves apart when colours tell the runs apart."""
    return pg.mkPen(colour, width=width, style=STYLES[int(style) % len(STYLES)])


def _tooltip(spec: PlotSpec) -> str:
    lines = [f"<b>{spec.title}</b>"]
    styles = ["solid", "dashed", "dotted", "dash-dot"]
    for i, (name, label) in enumerate(spec.curves):
        style = f" ({styles[i % 4]} when several runs are shown)" if len(spec.curves) > 1 else ""
        lines.append(f"{label}{style}: {DEFINITIONS.get(name, '')}")
    if spec.kind == "columns":
        lines.append("A line per layer (ensemble member), named in the legend; several runs: a colour per run, "
                     "and solid, dashed, dotted, dash-dot for its layers in order")
    if spec.reference:
        lines.append("dashed (linear models): the normalized margin of the max-margin direction the optimizer tends "
                     "to (l2 SVM for gradient descent, l_inf for sign descent, l1 for coordinate descent), through "
                     "the origin for a model without bias: at most the Dataset panel's SVM margin, which allows a bias")
    if spec.extra.get("separated_range"):
        lines.append("The y range follows the records past the loss threshold L < l(0) (where γ̃ > 0); "
                     "zoom to see the start, press A (bottom left) to follow again.")
    if spec.log_y:
        floors = spec.extra.get("floor", {})
        zero = (f" ({', '.join(label for name, label in spec.curves if name in floors)} at 0 to float precision "
                f"is drawn on the dotted floor line)") if floors else ""
        lines.append(f"Log axis: values <= 0 are not drawn{zero}.")
    if spec.extra.get("per_step"):
        lines.append("Direction change is recorded between records; drawn divided by the steps between them "
                     "(records are log-spaced later in a run), an angle per step.")
    if spec.extra.get("round_off"):
        lines.append(f"Values below {ROUND_OFF:.0e} are float64 round-off and are not drawn (they would stretch "
                     "a log axis to 1e-20).")
    lines.append("Right-click: log or linear y axis. Ctrl+0: every plot's zoom back to the data.")
    for name, signed in spec.extra.get("absolute", {}).items():
        lines.append(f"{signed} is drawn as its absolute value: it is negative where the rescaled point is not "
                     f"feasible (q_min(θ~) < 1, a network that is not homogeneous); the readout gives its sign.")
    return "<br>".join(lines)


class _Plot:
    """One PlotItem and its curves for every source."""

    def __init__(self, spec: PlotSpec, item: pg.PlotItem):
        self.spec = spec
        self.item = item
        self.curves: dict = {}  # (source index, name or column) -> PlotDataItem
        self.bands: dict = {}
        self.reference_line = None
        self.floor_line = None  # the labeled floor where a value at 0 to float precision is drawn
        self.steepest_line = None  # the l_inf or l1 max-margin line of a steepest-descent run
        self.event_lines: list = []  # a run's health events (core/health.py), marked where they happened
        self.events_key = None
        self.seen_versions: tuple = ()
        self.drawn = False
        # decimation is ours (widgets/decimate.py): pyqtgraph gets ~2 points per pixel already
        item.setClipToView(False)
        item.setDownsampling(auto=False)
        # no grid: pyqtgraph draws it as alpha-blended lines across the plot, which made one
        # repaint of the grid of plots 144 ms instead of 15 ms in Qt's raster engine (measured);
        # the crosshair readout gives exact values instead
        self.log_y = spec.log_y  # the user may switch it per plot (the view box's right-click menu)
        item.setLogMode(False, self.log_y)
        for side in ("left", "bottom"):
            # label major (decade) ticks and one minor level only: pyqtgraph's log axes otherwise
            # print overlapping 2·10¹ 3·10¹ ... labels when a range spans about a decade
            item.getAxis(side).setStyle(textFillLimits=[(0, 0.8), (2, 0.3)])
            item.getAxis(side).enableAutoSIPrefix(False)
        item.setTitle(spec.title, size="10pt")
        item.titleLabel.setToolTip(_tooltip(spec))
        item.setToolTip(_tooltip(spec))
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
            _note_style(self.empty_note, font_scale)
        _note_style(self.round_off_note, font_scale * 0.85)
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


def sticky_range(view: tuple, low: float, high: float, headroom: float = 0.15,
                 most: float = math.inf) -> tuple | None:
    """A new (lo, hi) when [low, high] left the view or the view is far too wide, else None:
    ``headroom`` times the span on each side, at most ``most`` (view units: decades on a log axis)."""
    span = high - low
    if span <= 0:
        span = abs(high) * 0.1 or 1.0
    lo, hi = view
    if low >= lo and high <= hi and (hi - lo) <= 4 * span:
        return None
    pad = min(headroom * span, most)
    return low - pad, high + pad


class TrajectoryPlots(QWidget):
    """The grid of plots. ``set_sources`` takes (source, label) pairs; the first is the live one."""

    hoveredStep = Signal(float)

    def __init__(self, parent=None, columns: int = 2):
        super().__init__(parent)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("trajectory-plots")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.columns = columns
        self.plots: dict[str, _Plot] = {}
        self.sources: list = []
        self.visible = list(PLOT_KEYS)  # the plots chosen for the desk (the window saves them)
        self.presentation_visible = list(PRESENTATION_PLOTS)  # those chosen for presentation mode
        self.presenting = False
        self.settings = None  # a QSettings where the presentation choice is remembered, if given
        self.log_x = False
        self._next_plot = 0
        self._blocks = BlockCache()
        self._windows: dict = {}
        self._thresholds: dict = {}  # source id -> (first record past the loss threshold, records searched)
        self.live = False  # a run is growing: leave room ahead on the step axis
        self.x_mode = "step"
        self._xcache: dict = {}
        self.pen_width = 1
        self.font_scale = 1.0
        self.waiting_note = None
        self._log_y: dict = {}  # plot key -> log y, where the user switched it
        self._derived: dict = {}  # (source id, name, version, band) -> a series drawn per step
        self._has_values: set = set()  # (source id, name) of series with a finite value
        # pyqtgraph's own right-click Export drew the screen's view as it is (the dark theme's
        # pale text on white): File > Export draws a figure of its own (app/export.py)
        self.view.scene().contextMenu = []
        self._mouse_proxy = pg.SignalProxy(self.view.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved)
        self._zoom_timer = QTimer(self)  # coalesces zoom and pan into one redraw at the new resolution
        self._zoom_timer.setSingleShot(True)
        self._zoom_timer.setInterval(30)
        self._zoom_timer.timeout.connect(lambda: self.refresh(force=True))
        self._build()

    # --------------------------------------------------------------- layout
    def _build(self) -> None:
        self.view.clear()
        self.plots = {}
        self.waiting_note = None
        # several runs: one key of their colours above the grid (in the scene, so exports have it),
        # instead of every plot's legend naming every run again, which covered the small plots
        self.run_key = pg.LabelItem("", justify="left")
        self.view.addItem(self.run_key, row=0, col=0, colspan=self.columns)
        self._show_run_key()
        first = None
        for i, key in enumerate(self.shown):
            spec = next(p for p in PLOTS if p.key == key)
            item = self.view.addPlot(row=1 + i // self.columns, col=i % self.columns,
                                     axisItems={"left": SparseLogAxis("left"), "bottom": SparseLogAxis("bottom")})
            plot = _Plot(spec, item)
            plot.log_y = self._log_y.get(key, spec.log_y)
            plot.log_action.setChecked(plot.log_y)
            plot.restyle(self.font_scale)
            plot.on_zoom = self._zoom_timer.start
            plot.on_log_y = functools.partial(self.set_log_y, key)
            item.vb.sigResized.connect(lambda *_args, p=plot: self._fit_y_label(p))
            plot.item.setLogMode(self.log_x, plot.log_y)
            self._label_axes(plot)
            if first is None:
                first = item
                # the first thing a new user sees is eight empty plots: say what fills them
                self.waiting_note = QGraphicsSimpleTextItem(WAITING, item.vb)
                _note_style(self.waiting_note, self.font_scale)
                self.waiting_note.setPos(10, 8)
            else:
                item.setXLink(first)
            self.plots[key] = plot
        self._show_waiting()

    def _show_run_key(self) -> None:
        """The run key's text: a line in each shown run's colour and its name (elided; all of them
        in full in the tooltip), RUN_KEY_PER_LINE to a line; nothing for a single run."""
        multi = len(self.sources) > 1
        entries = [f"<span style='color:{color(c)}'>━━</span>&nbsp;{html.escape(elide(label))}"
                   for _source, label, c in self.sources] if multi else []
        lines = ["&nbsp;&nbsp;&nbsp;".join(entries[i:i + RUN_KEY_PER_LINE])
                 for i in range(0, len(entries), RUN_KEY_PER_LINE)]
        self.run_key.setText("<br>".join(lines), color=ink("text"), size=f"{LEGEND_POINTS * self.font_scale + 1:.0f}pt")
        self.run_key.setToolTip("<br>".join(html.escape(label) for _s, label, _c in self.sources) if multi else "")
        self.run_key.setVisible(multi)
        self.run_key.setMaximumHeight(1e4 if multi else 0)  # no empty row above the plots for one run
        self.run_key.setMinimumHeight(0)

    def restyle(self, font_scale: float = 1.0) -> None:
        """The theme's colours and type scale on every plot (app/theme.py), and on plots built later."""
        self.font_scale = font_scale
        self._show_run_key()
        for plot in self.plots.values():
            plot.restyle(font_scale)
            self._fit_y_label(plot)  # measured in the new type
        if self.waiting_note is not None:
            _note_style(self.waiting_note, font_scale)

    def _show_waiting(self) -> None:
        """The note in the first plot, shown while no source has a record."""
        if self.waiting_note is not None:
            steps = (s[0].get("step") for s in self.sources)
            self.waiting_note.setVisible(not any(v is not None and len(v) for v in steps))

    @property
    def shown(self) -> list[str]:
        """The keys of the plots in the grid: the presentation choice while presenting."""
        return list(self.presentation_visible if self.presenting else self.visible)

    def set_visible_plots(self, keys: list[str]) -> None:
        """The plots to show (View menu), for the mode the grid is in: presentation mode keeps a
        choice of its own, remembered in ``settings``."""
        keys = [k for k in PLOT_KEYS if k in keys]
        if self.presenting:
            self.presentation_visible = keys
            if self.settings is not None:
                self.settings.setValue(PRESENTATION_SETTING, json.dumps(keys))
        else:
            self.visible = keys
        self._build()
        self.refresh(force=True)

    def set_presentation(self, on: bool) -> list[str]:
        """Presentation mode: fewer, larger plots (PRESENTATION_PLOTS or the presenter's choice,
        read back from ``settings``) and thick lines; off, the desk's plots and width-1 pens.
        Returns the keys now shown, for the View menu's check marks."""
        if on and self.settings is not None:
            try:
                saved = json.loads(str(self.settings.value(PRESENTATION_SETTING, "")))
            except (json.JSONDecodeError, TypeError):
                saved = None
            if isinstance(saved, list) and saved:
                self.presentation_visible = [k for k in PLOT_KEYS if k in saved]
        changed = bool(on) != self.presenting
        self.presenting = bool(on)
        self.pen_width = 3 if on else 1
        if changed:
            self._build()
        self.set_sources(list(self.sources))
        return self.shown

    def _label_axes(self, plot: _Plot) -> None:
        """Axis labels with their units, and "(log)" on a log axis."""
        log = " (log)"
        plot.item.setLabel("bottom", X_AXES[self.x_mode] + (log if self.log_x else ""))
        plot.y_label_text = None
        self._fit_y_label(plot)

    @staticmethod
    def _fit_y_label(plot: _Plot) -> None:
        """The y label in the longest of its forms that fits beside the plot (with "(log)", the
        short name with and without it, then cut): a label longer than its plot is tall ran
        into the labels of the plots above and below ("normalized marg" into "angle (rad)")."""
        y_label = plot.spec.extra.get("y_label")
        if not y_label:
            return
        short = plot.spec.extra.get("y_short", y_label)
        log = " (log)" if plot.log_y else ""
        label = plot.item.getAxis("left").label
        room = plot.item.vb.height() - 2 * label.document().documentMargin() - 2  # the text's box has margins
        metrics = QFontMetrics(label.font())
        forms = [y_label + log, short + log, short]
        text = next((f for f in forms if room <= 0 or metrics.horizontalAdvance(f) <= room), None)
        if text is None:
            text = metrics.elidedText(short, Qt.ElideRight, int(room))
        if text != plot.y_label_text:
            plot.y_label_text = text
            plot.item.setLabel("left", text)
            plot.item.getAxis("left").resizeEvent()  # centred again: pyqtgraph centres it only on a resize

    def set_log_y(self, key: str, on: bool) -> None:
        """Log or linear y on plot ``key`` (its right-click menu)."""
        plot = self.plots.get(key)
        self._log_y[key] = bool(on)
        if plot is None or plot.log_y == bool(on):
            return
        plot.log_y = bool(on)
        plot.log_action.setChecked(plot.log_y)
        plot.item.setLogMode(self.log_x, plot.log_y)
        self._label_axes(plot)
        plot.follow, plot.y_fitted = True, False
        self.refresh(force=True)

    def reset_zoom(self) -> None:
        """Every plot back to following its data (View > Reset zoom, Ctrl+0)."""
        for plot in self.plots.values():
            plot.follow, plot.y_fitted = True, False
            plot.item.disableAutoRange()
        self.refresh(force=True)

    def copy_for_export(self, pen_width: int | None = None) -> "TrajectoryPlots":
        """A new grid showing what this one shows (plots, columns, axes, runs), not shown on
        screen, in the colours of the ink at the time of the call: an export draws it at the
        figure's size and style (app/export.py). ``apply_zoom_of`` then takes this one's zoom."""
        other = TrajectoryPlots(columns=self.columns)
        other.visible, other._log_y = self.shown, dict(self._log_y)
        other.x_mode, other.log_x = self.x_mode, self.log_x
        other.pen_width = self.pen_width if pen_width is None else pen_width
        other._build()
        other.set_sources(list(self.sources))
        return other

    def apply_zoom_of(self, original: "TrajectoryPlots") -> None:
        """The ranges of the plots the user zoomed or panned in ``original`` (the rest follow their data)."""
        for key, plot in original.plots.items():
            mine = self.plots.get(key)
            if mine is not None and not plot.follow:
                mine.follow = False
                (x0, x1), (y0, y1) = plot.item.vb.viewRange()
                mine.item.vb.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        self.refresh(force=True)

    def set_x_axis(self, mode: str) -> None:
        """step, wall_time or neg_log_loss (-log L)."""
        if mode not in X_AXES:
            raise ValueError(mode)
        self.x_mode = mode
        for plot in self.plots.values():
            self._label_axes(plot)
            plot.follow = True
        self._blocks.clear()
        self.refresh(force=True)

    def _x_of(self, source):
        """(x values of every record, whether they are sorted) for the current x mode."""
        steps = source.get("step")
        if steps is None:
            return None, True
        key = (id(source), self.x_mode, len(steps))
        if key not in self._xcache:
            if self.x_mode == "step":
                self._xcache[key] = (steps, True)
            else:
                values = source.get("wall_time") if self.x_mode == "wall_time" else -source.get("log_loss")
                ordered = bool(np.all(np.diff(values) >= 0)) if len(values) > 1 else True
                self._xcache[key] = (values, ordered)
        return self._xcache[key]

    def _step_to_x(self, source, step_values):
        steps = source.get("step")
        x, _ordered = self._x_of(source)
        if self.x_mode == "step" or steps is None or not len(steps):
            return np.asarray(step_values, dtype=np.float64)
        return np.interp(step_values, steps, x)

    def set_pen_width(self, width: int) -> None:
        """Line width of every curve: 1 live (thick pens are slow in pyqtgraph), 3 for talks."""
        self.pen_width = width
        self.set_sources(list(self.sources))

    def _pen(self, colour: str, style: int = 0):
        return _make_pen(colour, int(style), self.pen_width)

    def set_live(self, live: bool) -> None:
        """While live the step axis keeps room ahead; when the run ends it fits the data."""
        if live != self.live:
            self.live = live
            self.refresh(force=True)

    def set_log_x(self, on: bool) -> None:
        self.log_x = on
        for plot in self.plots.values():
            plot.item.setLogMode(on, plot.log_y)
            self._label_axes(plot)
        self.refresh(force=True)

    def set_sources(self, sources: list) -> None:
        """``sources``: (source, label) or (source, label, colour index); a run keeps its colour
        when others are hidden. Curves of dropped sources are removed."""
        self.sources = [(s[0], s[1], s[2] if len(s) > 2 else i) for i, s in enumerate(sources)]
        self._show_run_key()
        self._blocks.clear()
        self._thresholds.clear()
        self._derived.clear()
        self._has_values.clear()
        for plot in self.plots.values():
            for c in list(plot.curves.values()) + [b for pair in plot.bands.values() for b in pair]:
                plot.item.removeItem(c)
            plot.curves, plot.bands = {}, {}
            plot.legend.clear()
            plot.key_names = []
            for line in ("reference_line", "steepest_line"):
                if getattr(plot, line) is not None:
                    plot.item.removeItem(getattr(plot, line))
                    setattr(plot, line, None)
            plot.follow, plot.drawn, plot.y_fitted = True, False, False
        self.refresh(force=True)

    # --------------------------------------------------------------- drawing
    def refresh(self, force: bool = False, budget_ms: float | None = REDRAW_BUDGET_MS) -> None:
        """Redraw the plots whose sources changed. Unless forced, stop once ``budget_ms`` is
        spent (after at least one plot) and go on round-robin at the next call, so that one
        redraw and its paint never block the event loop for long."""
        versions = tuple((id(s[0]), s[0].version) for s in self.sources)
        self._show_waiting()
        plots = list(self.plots.values())
        if not plots:
            return
        start = time.perf_counter()
        self._windows = {}
        self._xcache = {}
        order = plots[self._next_plot % len(plots):] + plots[: self._next_plot % len(plots)]
        for i, plot in enumerate(order):
            if not force and plot.seen_versions == versions:
                continue
            self._draw(plot)
            plot.seen_versions = versions
            if not force and budget_ms is not None and (time.perf_counter() - start) * 1e3 > budget_ms:
                self._next_plot = (self._next_plot + i + 1) % len(plots)
                return



    def _stride(self, plot: _Plot, n: int):
        """For an x that is not sorted (-log L can rise): every k-th record, ~1 per pixel."""
        bins = max(int(plot.item.vb.width()), 100)
        if n <= 2 * bins:
            return 0, n, None
        return 0, n, ("stride", np.unique(np.linspace(0, n - 1, 2 * bins).astype(np.int64)))

    def _window(self, plot: _Plot, steps: np.ndarray):
        """The visible slice of ``steps`` and its screen bins (widgets/decimate.py), shared by
        the linked plots of one refresh."""
        vb = plot.item.vb
        bins = max(int(vb.width()) // 2, 100)  # each bin keeps its min and max: one point per pixel
        if plot.follow or not plot.drawn:
            first = max(float(steps[0]), 1.0) if self.log_x else float(steps[0])
            last = max(float(steps[-1]), first)
            lo, hi = (np.log10(first), np.log10(last)) if self.log_x else (first, last)
        else:
            lo, hi = vb.viewRange()[0]
        key = (steps.__array_interface__["data"][0], len(steps), lo, hi, bins, self.log_x)
        if key not in self._windows:
            self._windows[key] = bin_starts(steps, lo, hi, bins, self.log_x)
        return self._windows[key]

    def _clean(self, plot, x, y):
        """Drop what a log axis cannot show (step 0 on log x, values <= 0 on log y)."""
        if self.log_x:
            keep = x > 0
            x, y = x[keep], y[keep]
        if plot.log_y:
            y = np.where(y > 0, y, np.nan)
        return x, y

    def _draw(self, plot: _Plot) -> None:
        plot.bounds = None
        if plot.floor_line is not None:
            plot.floor_line.setVisible(False)
        self._draw_curves(plot)
        self._mark_events(plot)
        if plot.follow:
            self._follow(plot)
        if not plot.legend_hidden:  # no entries (one quantity, several runs): no empty box
            plot.legend.setVisible(plot.spec.kind != "samples" and bool(plot.legend.items))
        plot.legend.set_compact(plot.item.vb.height() < COMPACT_BELOW_PX * self.font_scale)
        plot.place_legend()
        if plot.follow:
            self._legend_band(plot)
        if plot.empty_note is not None:  # say why a plot stays blank through a whole run
            plot.empty_note.setVisible(bool(self.sources) and plot.bounds is None)
        self._place_round_off_note(plot)

    @staticmethod
    def _place_round_off_note(plot: _Plot) -> None:
        """The round-off note where it covers no curve and not the legend: the first place of
        NOTE_PLACES whose cells no drawn line crosses; none free, hidden (the title's tooltip says
        it too). In the KKT plot it sat on the |δ| curve."""
        note, vb = plot.round_off_note, plot.item.vb
        box, width, height = note.boundingRect(), vb.width(), vb.height()
        note.setVisible(False)
        if not (plot.dropped_round_off and plot.log_y) or box.width() + 12 > width or box.height() + 4 > height:
            return
        grid = occupied_cells(plot.curve_data(), vb.viewRange())
        rows, columns = grid.shape
        # whole cells: the note's rectangle lies inside the cells counted free
        wide, high = math.ceil(box.width() / width * columns), math.ceil(box.height() / height * rows)
        under = cells_under(grid, (wide / columns, high / rows))
        legend = plot.legend.mapRectToParent(plot.legend.boundingRect()) if plot.legend.isVisible() else None
        for place in NOTE_PLACES:
            left = round(place[0] * (columns - wide)) * width / columns
            top = round(place[1] * (rows - high)) * height / rows
            spot = QRectF(left, top, box.width(), box.height())
            if under[PLACES.index(place)] == 0 and (legend is None or not legend.intersects(spot)):
                note.setPos(left, top)
                note.setVisible(True)
                return

    def _legend_band(self, plot: _Plot) -> None:
        """Where the legend covers a curve wherever it goes, raise the top of the y range until a
        band as tall as the legend is free above the data (the Angles legend covered its curves):
        first as tall as its flattest layout, then, if the layout it took still covers a curve,
        as tall as it is. A band left far taller than the flattest layout needs (the legend was
        taller before: a larger type, a narrower plot) shrinks back."""
        legend, vb = plot.legend, plot.item.vb
        if not (legend.isVisible() and legend.items and plot.bounds is not None and vb.height() > 0):
            return
        # on a log axis a band takes at most LOG_BAND_MOST of the plot's height: a band as tall as
        # a tall legend ran the Angles axis of sign descent at 1280x720 up to 1e5..1e9 for curves
        # ending near 1 (meaningless decades, the curves squeezed into the lower part)
        most = LOG_BAND_MOST if plot.log_y else 0.6
        for flattest in (True, False):
            legend_px = legend.flattest_height(vb.width()) if flattest else legend.boundingRect().height()
            fraction = (legend_px + MARGIN_PX) / vb.height() + 1.0 / GRID[1]  # a grid cell to spare
            if fraction >= most:  # a plot too short to give the legend a band: leave it where it is
                break
            y0, y1 = vb.viewRange()[1]
            needed = y0 + (plot.bounds[3] - y0) / (1.0 - fraction)
            if plot.legend_covers():
                if needed <= y1:
                    continue
            elif not (flattest and plot.banded and y1 - needed > 0.25 * (needed - y0)):
                return
            vb.setYRange(y0, needed, padding=0)
            plot.banded = True
            plot.place_legend()
        if plot.log_y and plot.legend_covers():
            # no band of a sensible height frees it: hidden rather than over the curves (the hover
            # readout names the curves; the plot's tooltip says what each one is)
            legend.setVisible(False)

    def _follow(self, plot: _Plot) -> None:
        if plot.bounds is None:
            if not plot.y_fitted:  # nothing drawn since the sources changed: no earlier run's range either
                self._empty_range(plot)
            return
        xmin, xmax, ymin, ymax = plot.bounds
        if plot.spec.extra.get("separated_range") and self.sources:
            # every shown run's separated phase: the first source's alone (a continued run, nearly
            # flat) squeezed the axis to 0.23501-0.23503 and pushed the other runs off the plot
            separated = [b for b in (self._separated_bounds(plot, s[0]) for s in self.sources) if b is not None]
            if separated:
                ymin, ymax = min(b[0] for b in separated), max(b[1] for b in separated)
        vb = plot.item.vb
        if not plot.y_fitted:
            plot.banded = False
        (x0, x1), (y0, y1) = vb.viewRange()
        new_x = sticky_range((x0, x1), xmin, xmax, headroom=0.0) if plot is self._first_plot() else None
        if new_x is not None or (not self.live and x1 - x0 > 1.05 * (xmax - xmin) + 1e-9
                                 and plot is self._first_plot()):
            # while live, steps only grow: double the room ahead (+0.3 decade on a log axis), so
            # that the linked axes re-layout their text a handful of times per run, not every frame
            ahead = (0.3 if self.log_x else (xmax - xmin)) if self.live else 0.0
            vb.setXRange(xmin, xmax + ahead, padding=0)
        # the first fit ignores the view: pyqtgraph's empty default [0, 1] held data inside it
        # (ensemble shares), with no headroom, and a share near 1 ran along the clipped top edge
        view = (y0, y1) if plot.y_fitted else (math.inf, -math.inf)
        new_y = sticky_range(view, ymin, ymax, headroom=0.3, most=LOG_HEADROOM_DECADES if plot.log_y else math.inf)
        if new_y is not None:
            vb.setYRange(*new_y, padding=0)
            plot.y_fitted = True

    def _empty_range(self, plot: _Plot) -> None:
        """pyqtgraph's empty default, [0, 1] (the step axis too when no run is shown at all)."""
        vb = plot.item.vb
        (x0, x1), (y0, y1) = vb.viewRange()
        if (y0, y1) != (0.0, 1.0):
            vb.setYRange(0.0, 1.0, padding=0)
        if not self.sources and (x0, x1) != (0.0, 1.0):
            vb.setXRange(0.0, 1.0, padding=0)

    def _first_plot(self):
        return next(iter(self.plots.values()), None)

    def curves_of(self, plot: _Plot, source) -> list:
        """(series name, label) of the curves ``plot`` draws for ``source``: its spec's, and for a
        steepest-descent run the margins in that optimizer's norm (PlotSpec extra "steepest")."""
        steepest = plot.spec.extra.get("steepest")
        if steepest:
            config = getattr(source, "config", None)
            kind = getattr(getattr(config, "optimizer", None), "kind", None)
            return plot.spec.curves + steepest.get(kind, [])
        return plot.spec.curves

    def _series(self, plot: _Plot, source, name: str, band: bool = False):
        """What ``plot`` draws of ``source``'s series ``name`` (its band's (low, high) with ``band``):
        round-off values dropped and per-step angles where the spec says (ROUND_OFF, "per_step")."""
        if band:
            values = source.band(name) if hasattr(source, "band") else None
        else:
            values = source.get(name)
        extra = plot.spec.extra
        if values is None or (name not in extra.get("per_step", ()) and name not in extra.get("round_off", ())):
            return values
        # series only grow (DESIGN.md): the records seen before are kept, only new ones transformed
        key = (id(source), name, band)
        arrays = values if band else (values,)
        n = len(arrays[0])
        done, parts, dropped = self._derived.get(key, (0, None, False))
        if parts is None or done > n:  # new, or a different, shorter series under the same key
            done, parts, dropped = 0, [np.empty(0)] * len(arrays), False
        if n > done:
            steps = source.get("step")
            new = [self._transform(plot.spec, steps, name, a, done) for a in arrays]
            parts = [np.concatenate([old, fresh]) for old, (fresh, _d) in zip(parts, new)]
            dropped = dropped or any(d for _fresh, d in new)
            self._derived[key] = (n, parts, dropped)
        plot.dropped_round_off |= dropped
        return tuple(parts) if band else parts[0]

    @staticmethod
    def _transform(spec: PlotSpec, steps, name: str, values, start: int = 0):
        """(values[start:] as drawn, whether round-off values were dropped) of one series."""
        out = np.asarray(values[start:], dtype=np.float64)
        dropped = False
        if name in spec.extra.get("round_off", ()):
            with np.errstate(invalid="ignore"):
                small = out < ROUND_OFF  # NaN compares False
            dropped = bool(small.any())
            out = np.where(small, np.nan, out)
        if name in spec.extra.get("per_step", ()) and steps is not None:
            index = np.arange(start, start + len(out))
            known = (index >= 1) & (index < len(steps))  # record 0 has no interval before it
            gaps = np.full(len(out), np.nan)
            gaps[known] = steps[index[known]] - steps[index[known] - 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                out = out / np.where(gaps > 0, gaps, np.nan)
        return out, dropped

    def _drawable(self, source, name: str, values) -> bool:
        """Whether a series has a finite value yet: a curve that cannot exist (the angle to the
        max-margin direction of a network) gets no curve and no legend entry."""
        key = (id(source), name)
        if key not in self._has_values and values is not None and np.isfinite(values).any():
            self._has_values.add(key)
        return key in self._has_values

    def _draw_curves(self, plot: _Plot) -> None:
        spec = plot.spec
        multi = len(self.sources) > 1
        plot.dropped_round_off = False
        styled = {}  # several runs: line style -> what it draws (the legend's key)
        for s_index, (source, label, colour_index) in enumerate(self.sources):
            if spec.kind == "snapshots":
                snap_x = self._step_to_x(source, source.snapshot_steps.view())
                for c_index, (name, curve_label) in enumerate(spec.curves):
                    values = source.snapshot_metrics[name].view()
                    if name in spec.extra.get("round_off", ()):
                        values, dropped = self._transform(spec, None, name, values)
                        plot.dropped_round_off |= dropped
                    if name in spec.extra.get("absolute", ()):
                        values = np.abs(values)
                    floor = spec.extra.get("floor", {}).get(name)
                    if floor is not None:
                        values = self._on_floor(plot, values, floor)
                    pen = self._pen(color(colour_index if multi else c_index), c_index if multi else 0)
                    x, y = self._clean(plot, snap_x, values)
                    if (s_index, name) not in plot.curves and not np.isfinite(y).any():
                        continue  # nothing to draw (an exact 0 or round-off only on a log axis): no entry
                    legend = None if multi else curve_label  # several runs: the run key names them
                    styled.setdefault(c_index, (name, curve_label))
                    self._set(plot, plot.curve((s_index, name), pen, legend, self._short_of(name, legend)), x, y)
                continue
            steps, ordered = self._x_of(source)  # "steps": the x values, whatever the x mode
            if steps is None or not len(steps):
                continue
            window = self._window(plot, steps) if ordered else self._stride(plot, len(steps))
            if spec.kind == "records":
                for c_index, (name, curve_label) in enumerate(self.curves_of(plot, source)):
                    values = self._series(plot, source, name)
                    if values is None or not self._drawable(source, name, values):
                        continue
                    pen = self._pen(color(colour_index if multi else c_index), c_index if multi else 0)
                    x, y = self._clean(plot, *self._peaks(steps, values, window, (id(source), name)))
                    # several runs: a colour per run, named in the run key above the plots; a line
                    # style per quantity, named in the legend (solid, dashed, dotted, dash-dot)
                    legend = None if multi else curve_label  # several runs: the run key names them
                    styled.setdefault(c_index, (name, curve_label))
                    self._set(plot, plot.curve((s_index, name), pen, legend, self._short_of(name, legend)), x, y)
                    band = self._series(plot, source, name, band=True)
                    if band is not None:  # a family: its median drawn above, the quartiles around it
                        rows = self._rows(window)
                        colour = color(colour_index if multi else c_index)
                        self._band(plot, (s_index, name, "band"), steps[rows].astype(np.float64), band[0][rows],
                                   band[1][rows], colour, alpha=45, edge_alpha=90)
                if spec.reference and s_index == 0:
                    self._reference(plot, source)
            elif spec.kind == "columns":
                values = source.get(spec.curves[0][0])
                if values is None or values.ndim != 2:
                    continue
                label_prefix = spec.extra.get("column_label")
                names = ([f"{label_prefix} {k + 1}" for k in range(values.shape[1])] if label_prefix
                         else source.info.get("layer_names", []))
                for col in range(values.shape[1]):
                    # several runs: a colour per run (the run key) and a line style per layer
                    # (member), named in the legend, as the records plots do with their curves
                    pen = self._pen(color(colour_index if multi else col), col if multi else 0)
                    x, y = self._clean(plot, *self._peaks(steps, values, window, (id(source), spec.curves[0][0]), col))
                    name = names[col] if col < len(names) else f"layer {col}"
                    legend = None if multi else name  # several runs: the run key names them
                    styled.setdefault(col, (col, name))
                    self._set(plot, plot.curve((s_index, col), pen, legend, self._short_of(None, legend)), x, y)
            elif spec.kind == "samples":
                self._draw_samples(plot, s_index, source, steps, window, multi, colour_index)
        if multi and len(styled) > 1:
            self._style_key(plot, styled)
        plot.drawn = True

    def _style_key(self, plot: _Plot, styled: dict) -> None:
        """Several runs: legend entries in grey that say which line style is which quantity (it was
        only in a tooltip, also in `render`'s figures)."""
        names = [styled[k] for k in sorted(styled)]
        if names == plot.key_names:
            return
        for sample, _label in list(plot.legend.items):
            if getattr(sample.item, "style_key", False):
                plot.legend.removeItem(sample.item)
        for style in sorted(styled):
            name, label = styled[style]
            sample = pg.PlotDataItem(pen=_make_pen(KEY_COLOUR, style, max(self.pen_width, 2)))
            sample.style_key = True
            plot.legend.add_entry(sample, label.split(" = ")[0], _short(name, label))  # "γ", not its definition
        plot.key_names = names

    @staticmethod
    def _short_of(name, legend):
        """A legend entry's compact label: a quantity's symbol, a layer's name cut short."""
        if legend is None:
            return None
        return elide(legend, 14) if name is None else _short(name, legend)

    def _peaks(self, x, y, window, key, column=None):
        """Decimate series ``y`` (or column ``column`` of a 2-D series, cached whole under ``key``)."""
        i0, i1, starts = window
        if column is not None:
            y2d, y = y, y[:, column]
        if isinstance(starts, tuple):  # stride over an unsorted x
            idx = starts[1]
            return x[idx].astype(np.float64), y[idx]
        if column is not None:
            if starts is None:
                return peaks(x, y, i0, i1, None)
            low, high = self._blocks.blocks(key, y2d)
            return peaks(x, y, i0, i1, starts, blocks=(low[:, column], high[:, column]))
        return peaks(x, y, i0, i1, starts, self._blocks, key)

    def _threshold_index(self, source, smoothed: np.ndarray) -> int | None:
        """The first record with gamma~ > 0, searched only in records not seen before."""
        found, searched = self._thresholds.get(id(source), (None, 0))
        if found is None and len(smoothed) > searched:
            positive = np.flatnonzero(smoothed[searched:] > 0)
            found = searched + int(positive[0]) if len(positive) else None
            self._thresholds[id(source)] = (found, len(smoothed))
        return found

    def _set(self, plot: _Plot, curve, x, y) -> None:
        finite = bool(np.isfinite(y).all())
        curve.setData(x, y, connect="all" if finite else "finite", skipFiniteCheck=finite)
        plot.note(x, y, self.log_x, plot.log_y)

    def _separated_bounds(self, plot, source):
        """y bounds of the records past the loss threshold L < l(0) (where gamma~ > 0): before it
        the margins are large and negative and would flatten the phase the theory is about."""
        smoothed = source.get("smoothed_margin")
        if smoothed is None or not len(smoothed):
            return None
        start = self._threshold_index(source, smoothed)
        if start is None or len(smoothed) - start < 2:
            return None
        lows, highs = [], []
        for name, _label in self.curves_of(plot, source):
            values = source.get(name)
            if values is not None:
                low, high = range_from(self._blocks, (id(source), name), values, start)
                lows.append(low)
                highs.append(high)
        references = [source.info.get(plot.spec.reference) if plot.spec.reference else None,
                      source.info.get("reference_margin_steepest") if plot.spec.extra.get("steepest") else None]
        for reference in references:
            if reference is not None:
                lows.append(reference)
                highs.append(reference)
        return float(min(lows)), float(max(highs))

    def _mark_events(self, plot) -> None:
        """A red dotted line at each health event of the shown run (the first source): where it
        collapsed or got stuck, the message in its tooltip-like label."""
        source = self.sources[0][0] if self.sources else None
        events = list(getattr(source, "events", ())) if source is not None else []
        key = (id(source), len(events), self.log_x, self.x_mode)
        if key == plot.events_key:
            return
        plot.events_key = key
        for line in plot.event_lines:
            plot.item.removeItem(line)
        plot.event_lines = []
        if not events:
            return
        x = self._step_to_x(source, np.array([e["step"] for e in events], dtype=np.float64))
        for event, at in zip(events, x):
            if self.log_x:
                if at <= 0:
                    continue
                at = math.log10(at)
            line = pg.InfiniteLine(pos=at, angle=90, movable=False, pen=pg.mkPen("#c0392b", width=1, style=Qt.DotLine),
                                   label=event["kind"], labelOpts={"position": 0.92, "color": "#c0392b"})
            line.setToolTip(event["message"])
            plot.item.addItem(line, ignoreBounds=True)
            plot.event_lines.append(line)

    def _on_floor(self, plot, values, floor):
        """``values`` with those in [0, floor) raised to ``floor``, and the floor's labeled line shown
        while any sits on it (a value of exactly 0 is a result, not a gap)."""
        low = (values >= 0) & (values < floor)  # NaN compares False: an undefined value stays a gap
        if plot.floor_line is None:
            plot.floor_line = pg.InfiniteLine(pos=math.log10(floor), angle=0, movable=False,
                                              pen=pg.mkPen(ink("muted"), width=1, style=Qt.DotLine),
                                              label=f"0 (below {floor:.0e})",
                                              labelOpts={"position": 0.1, "color": ink("muted")})
            plot.item.addItem(plot.floor_line, ignoreBounds=True)
        if low.any():
            plot.floor_line.setVisible(True)  # hidden again at each draw's start (_draw)
        return np.where(low, floor, values)

    def _reference(self, plot, source):
        self._steepest_reference(plot, source)
        value = source.info.get(plot.spec.reference) if hasattr(source, "info") else None
        if value is None:
            if plot.reference_line is not None:
                plot.reference_line.setVisible(False)
            return
        if plot.reference_line is None:
            plot.reference_line = pg.InfiniteLine(pos=value, angle=0, movable=False,
                                                  pen=pg.mkPen(ink("muted"), width=1, style=Qt.DashLine))
            plot.item.addItem(plot.reference_line)
        plot.reference_line.setValue(value)
        plot.reference_line.setVisible(True)

    def _steepest_reference(self, plot, source) -> None:
        """A steepest-descent run's max-margin line in its own norm (l_inf for sign descent, l1
        for coordinate descent), dashed in the colour of that margin's curve."""
        value = source.info.get("reference_margin_steepest") if hasattr(source, "info") else None
        curves = self.curves_of(plot, source)
        if value is None or len(curves) == len(plot.spec.curves):
            if plot.steepest_line is not None:
                plot.steepest_line.setVisible(False)
            return
        colour = color(len(plot.spec.curves)) if len(self.sources) == 1 else ink("muted")
        pen = pg.mkPen(colour, width=1, style=Qt.DashLine)
        if plot.steepest_line is None:
            plot.steepest_line = pg.InfiniteLine(pos=value, angle=0, movable=False, pen=pen)
            plot.item.addItem(plot.steepest_line)
        plot.steepest_line.setPen(pen)
        plot.steepest_line.setValue(value)
        plot.steepest_line.setVisible(True)

    def _draw_samples(self, plot, s_index, source, steps, window, multi, colour_index):
        values = source.get("sample_margins")
        if values is None or values.ndim != 2 or not len(values):
            return
        n = values.shape[1]
        if n <= SAMPLE_LINES_UP_TO and not multi:
            labels = source.dataset.y if hasattr(source, "dataset") else np.ones(n)
            for i in range(n):
                pen = self._pen(color(0 if labels[i] > 0 else 1))
                x, y = self._clean(plot, *self._peaks(steps, values, window, (id(source), "sample_margins"), i))
                self._set(plot, plot.curve((s_index, i), pen), x, y)
            return
        # the band: min / median / max over samples, at one record per screen bin
        rows = self._rows(window)
        picked = values[rows]
        with warnings.catch_warnings():  # records where every margin is undefined (theta = 0) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, mid, hi = np.nanmin(picked, axis=1), np.nanmedian(picked, axis=1), np.nanmax(picked, axis=1)
        base = color(colour_index)
        x_rows = steps[rows].astype(np.float64)
        x, mid = self._clean(plot, x_rows, mid)
        plot.curve((s_index, "median"), self._pen(base, 1)).setData(x, mid, connect="finite")
        # several runs' bands overlap: fainter fills, so that each one's edges show through the others
        self._band(plot, (s_index, "band"), x_rows, lo, hi, base, alpha=MULTI_BAND_ALPHA if multi else 70)

    @staticmethod
    def _rows(window) -> np.ndarray:
        """The records a window shows, one per screen bin (for bands: min/max pairs would zigzag)."""
        i0, i1, starts = window
        if isinstance(starts, tuple):
            return starts[1]
        if starts is None:
            return np.arange(i0, i1)
        rows = i0 + starts
        return rows if not len(rows) or rows[-1] == i1 - 1 else np.append(rows, i1 - 1)  # end where the line ends

    def _band(self, plot, key, x_rows, lo, hi, base, alpha=70, edge_alpha=255) -> None:
        """A translucent band between ``lo`` and ``hi`` (samples' min/max, a family's quartiles)."""
        x, lo = self._clean(plot, x_rows, lo)
        _, hi = self._clean(plot, x_rows, hi)
        edge = pg.mkColor(base)
        edge.setAlpha(edge_alpha)
        low_curve = plot.curve(key + ("low",), pg.mkPen(edge, width=self.pen_width))
        high_curve = plot.curve(key + ("high",), pg.mkPen(edge, width=self.pen_width))
        self._set(plot, low_curve, x, lo)
        self._set(plot, high_curve, x, hi)
        if key not in plot.bands:
            fill_colour = pg.mkColor(base)
            fill_colour.setAlpha(alpha)  # translucent: bands of several runs stay visible
            fill = pg.FillBetweenItem(low_curve, high_curve, brush=pg.mkBrush(fill_colour))
            plot.item.addItem(fill)
            plot.bands[key] = (fill,)

    # --------------------------------------------------------------- cursor and crosshair
    def set_marker(self, step: float | None) -> None:
        """The replay cursor: a dashed vertical line at ``step`` on every plot (None hides it)."""
        x = None
        if step is not None and self.sources:
            x = float(self._step_to_x(self.sources[0][0], [step])[0])
        for plot in self.plots.values():
            if x is None:
                plot.marker.setVisible(False)
            else:
                plot.marker.setValue(np.log10(max(x, 1e-12)) if self.log_x else x)
                plot.marker.setVisible(True)

    def _mouse_moved(self, event) -> None:
        pos = event[0]
        for plot in self.plots.values():
            if plot.item.sceneBoundingRect().contains(pos):
                x = plot.item.vb.mapSceneToView(pos).x()
                self.show_crosshair(10 ** x if self.log_x else x)
                return

    def show_crosshair(self, x_value: float) -> None:
        """A vertical line at ``x_value`` (in x-axis units) and each plot's values there: of each
        run shown, at its record nearest the line."""
        nearest = [self._nearest_record(source, x_value) for source, _label, _colour in self.sources]
        if nearest and nearest[0] is not None:
            self.hoveredStep.emit(float(self.sources[0][0].get("step")[nearest[0]]))
        for plot in self.plots.values():
            plot.cross.setValue(np.log10(max(x_value, 1e-12)) if self.log_x else x_value)
            plot.cross.setVisible(True)
            self._place_readout(plot, self._readout(plot, nearest))

    @staticmethod
    def _place_readout(plot: _Plot, lines: list) -> None:
        """The readout (``lines``: (colour or None, text)) inside its plot and off the legend: lines
        too wide for the plot are broken at their double spaces, lines past its height left out
        ("…"), and it takes the first corner the legend leaves free (it ran past the right
        edge, the bottom and over legends)."""
        vb, readout = plot.item.vb, plot.readout
        width, height = vb.width(), vb.height()

        def show(rows):
            # pre: the double spaces between values and the line breaks stay as they are
            readout.setHtml("<div style='white-space:pre'>" + "\n".join(
                f"<span style='color:{c}'>{html.escape(t)}</span>" if c else html.escape(t) for c, t in rows) + "</div>")
            return readout.textItem.boundingRect()

        box = show(lines)
        if not lines or width <= 0 or height <= 0:
            return
        if box.width() > width - 8:
            lines = [(c, t.replace(":  ", ":\n").replace("  ", "\n")) for c, t in lines]
            box = show(lines)
        for keep in range(len(lines) - 1, 0, -1):  # taller than the plot: the first lines, then "…"
            if box.height() <= height - 8:
                break
            box = show(lines[:keep] + [(None, "…")])
        legend = plot.legend
        shown = plot.legend_hidden or legend.isVisible()
        taken = legend.mapRectToParent(legend.boundingRect()) if shown and legend.items else None
        corners = [(4, 4), (width - box.width() - 4, 4), (4, height - box.height() - 4),
                   (width - box.width() - 4, height - box.height() - 4)]
        free = [(cx, cy) for cx, cy in corners
                if taken is None or not taken.intersects(QRectF(max(cx, 0), max(cy, 0), box.width(), box.height()))]
        x, y = (free or corners)[0]
        # no corner clear of the legend: the readout, which names the runs too, stands in for it
        # while the pointer is on the plots
        plot.legend_hidden = shown and not free and taken is not None
        legend.setVisible(shown and not plot.legend_hidden)
        readout.setPos(vb.mapToView(QPointF(max(x, 0), max(y, 0))))

    def _nearest_record(self, source, x_value: float) -> int | None:
        x, ordered = self._x_of(source)
        if x is None or not len(x):
            return None
        if ordered:
            i = int(np.clip(np.searchsorted(x, x_value), 0, len(x) - 1))
            if i > 0 and abs(x[i - 1] - x_value) < abs(x[i] - x_value):
                i -= 1
            return i
        return int(np.nanargmin(np.abs(x - x_value)))

    def _readout(self, plot: _Plot, nearest: list) -> list:
        """(colour, text) lines. One run: "step N  name value ...". Several: a line per run in its
        colour, with its label (none in a compact plot: the colour says which) and step. Nothing
        where a plot has no value at that step."""
        lines = []
        compact = plot.legend.compact
        for (source, label, colour), i in zip(self.sources, nearest):
            found = None if i is None else self._values(plot, source, i, compact)
            if found is not None:
                step, text = found
                if len(self.sources) == 1:
                    lines.append((None, f"step {step}  {text}"))
                else:
                    lines.append((color(colour), f"step {step}:  {text}" if compact
                                  else f"{elide(label)}, step {step}:  {text}"))
        if len(lines) > READOUT_RUNS:  # a readout taller than that would hide the plot it reads
            lines = lines[:READOUT_RUNS] + [(None, f"… and {len(lines) - READOUT_RUNS} more runs")]
        return lines

    def _values(self, plot: _Plot, source, i: int, compact: bool = False):
        """(step, "name value  name value") of ``source``'s record ``i`` in ``plot``, or None."""
        spec = plot.spec
        steps = source.get("step")
        if spec.kind == "snapshots":
            snaps = source.snapshot_steps.view()
            if not len(snaps):
                return None
            j = int(np.clip(np.searchsorted(snaps, steps[i]), 1, len(snaps) - 1)) if len(snaps) > 1 else 0
            if j and steps[i] - snaps[j - 1] <= snaps[j] - steps[i]:  # the nearest snapshot, not the next
                j -= 1
            signed = spec.extra.get("absolute", {})  # read with its sign: not |δ|

            def name_of(n, lbl):
                if compact:
                    return _short(n, lbl).strip("|")
                return signed.get(n, lbl)
            return snaps[j], "  ".join(f"{name_of(n, lbl)} {source.snapshot_metrics[n].view()[j]:.4g}"
                                       for n, lbl in spec.curves)
        parts = []
        for name, label in self.curves_of(plot, source):
            values = self._series(plot, source, name)
            if values is None or not self._drawable(source, name, values):
                continue
            if values.ndim == 1:
                parts.append(f"{_short(name, label) if compact else label.split(' = ')[0]} {values[i]:.5g}")
            else:
                parts.append(f"min {np.nanmin(values[i]):.4g} max {np.nanmax(values[i]):.4g}")
        return (steps[i], "  ".join(parts)) if parts else None  # no value: nothing to read there

    def leaveEvent(self, event):  # noqa: N802 (Qt's name)
        for plot in self.plots.values():
            plot.cross.setVisible(False)
            plot.readout.setText("")
            if plot.legend_hidden:
                plot.legend.setVisible(True)
                plot.legend_hidden = False
        super().leaveEvent(event)
