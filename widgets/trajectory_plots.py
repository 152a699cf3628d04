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
import time

import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QGraphicsSimpleTextItem, QVBoxLayout, QWidget

from .decimate import BlockCache
from .legend import elide
from .palette import color, ink
from .plot_axes import SparseLogAxis, fit_y_label
from .plot_drawing import KEY_COLOUR, SAMPLE_LINES_UP_TO, CurveDrawing
from .plot_follow import LOG_HEADROOM_DECADES, FollowRanges, sticky_range
from .plot_item import LEGEND_POINTS, Plot, make_pen, note_style
from .plot_marks import PlotMarks
from .plot_readout import HoverReadout
from .plot_series import DerivedSeries
from .plot_specs import (OPTIONAL_PLOTS, TEST_PLOTS, PLOT_KEYS, PLOTS, PRESENTATION_PLOTS, PRESENTATION_SETTING, X_AXES, X_SERIES, ZERO_FLOOR,
                         PlotSpec, series_needed)

# the names its callers import from here (app/, tests/, benchmarks/)
__all__ = ["KEY_COLOUR", "LOG_HEADROOM_DECADES", "PLOT_KEYS", "PLOTS", "PRESENTATION_PLOTS", "SAMPLE_LINES_UP_TO", "X_AXES",
           "X_SERIES", "ZERO_FLOOR", "PlotSpec", "SparseLogAxis", "TrajectoryPlots", "series_needed", "sticky_range"]

WAITING = "No run yet: press Run (Space),\nor open saved runs (Ctrl+O)"  # two lines: one overran the plot at 1.6x type
REDRAW_BUDGET_MS = 12.0  # per refresh call; the rest of the plots follow at the next timer tick
RUN_KEY_PER_LINE = 4  # runs named on one line of the run key above the plots


class TrajectoryPlots(CurveDrawing, FollowRanges, PlotMarks, DerivedSeries, HoverReadout, QWidget):
    """The grid of plots. ``set_sources`` takes (source, label) pairs; the first is the live one.
    What it draws and how lives in the mixins' modules: plot_drawing (curves), plot_follow
    (ranges), plot_marks (lines and notes), plot_series (derived series), plot_readout (cursor)."""

    hoveredStep = Signal(float)

    def __init__(self, parent=None, columns: int = 2):
        super().__init__(parent)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("trajectory-plots")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.columns = columns
        self.plots: dict[str, Plot] = {}
        self.sources: list = []
        self.visible = [k for k in PLOT_KEYS if k not in OPTIONAL_PLOTS]  # the desk's plots (the window saves them)
        self.presentation_visible = list(PRESENTATION_PLOTS)  # those chosen for presentation mode
        self.presenting = False
        self.test_set = False  # a shown run has a test set: the test plots (TEST_PLOTS) join the grid
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
            plot = Plot(spec, item)
            plot.log_y = self._log_y.get(key, spec.log_y)
            plot.log_action.setChecked(plot.log_y)
            plot.restyle(self.font_scale)
            plot.on_zoom = self._zoom_timer.start
            plot.on_log_y = functools.partial(self.set_log_y, key)
            item.vb.sigResized.connect(lambda *_args, p=plot: fit_y_label(p))
            plot.item.setLogMode(self.log_x, plot.log_y)
            self._label_axes(plot)
            if first is None:
                first = item
                # the first thing a new user sees is eight empty plots: say what fills them
                self.waiting_note = QGraphicsSimpleTextItem(WAITING, item.vb)
                note_style(self.waiting_note, self.font_scale)
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
            fit_y_label(plot)  # measured in the new type
        if self.waiting_note is not None:
            note_style(self.waiting_note, font_scale)

    @property
    def shown(self) -> list[str]:
        """The keys of the plots in the grid: the presentation choice while presenting."""
        keys = self.presentation_visible if self.presenting else self.visible
        return [k for k in keys if self.test_set or k not in TEST_PLOTS]

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
        # the choice, test plots included (shown only with a test set), so the View menu keeps them
        return list(self.presentation_visible if self.presenting else self.visible)

    def _label_axes(self, plot: Plot) -> None:
        """Axis labels with their units, and "(log)" on a log axis."""
        log = " (log)"
        plot.item.setLabel("bottom", X_AXES[self.x_mode] + (log if self.log_x else ""))
        plot.y_label_text = None
        fit_y_label(plot)


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

    def set_pen_width(self, width: int) -> None:
        """Line width of every curve: 1 live (thick pens are slow in pyqtgraph), 3 for talks."""
        self.pen_width = width
        self.set_sources(list(self.sources))

    def _pen(self, colour: str, style: int = 0):
        return make_pen(colour, int(style), self.pen_width)

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
        """``sources``: (source, label) or (source, label, colour index), each source a PlotSource
        (widgets/plot_source.py); a run keeps its colour when others are hidden. Curves of dropped sources are removed."""
        self.sources = [(s[0], s[1], s[2] if len(s) > 2 else i) for i, s in enumerate(sources)]
        test_set = any(getattr(s[0].dataset, "X_test", None) is not None for s in self.sources)
        if test_set != self.test_set:  # the test plots are shown only for runs that have a test set
            self.test_set = test_set
            self._build()
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
