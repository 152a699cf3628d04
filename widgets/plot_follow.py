"""Follow mode of the trajectory plots: the ranges track the data (sticky, with modest headroom,
a band for the legend where it would cover a curve) until the user zooms or pans; reset zoom."""

from __future__ import annotations

import math

import numpy as np

from .decimate import range_from
from .legend import GRID, MARGIN_PX
from .plot_item import Plot

# follow mode's room above and below the data on a log y axis, in decades: 30% of the span, which
# it is on a linear axis, was ~1.7 empty decades over curves spanning six (x 10^1.7 = x 50)
LOG_HEADROOM_DECADES = 0.2
LOG_BAND_MOST = 0.35  # the most of a log plot's height a band for the legend may take


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


class FollowRanges:
    """TrajectoryPlots' follow mode (a mixin: it reads ``plots``, ``sources``, ``live``, ``log_x``)."""

    def reset_zoom(self) -> None:
        """Every plot back to following its data (View > Reset zoom, Ctrl+0)."""
        for plot in self.plots.values():
            plot.follow, plot.y_fitted = True, False
            plot.item.disableAutoRange()
        self.refresh(force=True)

    def apply_zoom_of(self, original) -> None:
        """The ranges of the plots the user zoomed or panned in ``original``, another grid (the rest
        follow their data)."""
        for key, plot in original.plots.items():
            mine = self.plots.get(key)
            if mine is not None and not plot.follow:
                mine.follow = False
                (x0, x1), (y0, y1) = plot.item.vb.viewRange()
                mine.item.vb.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        self.refresh(force=True)

    def _follow(self, plot: Plot) -> None:
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

    def _empty_range(self, plot: Plot) -> None:
        """pyqtgraph's empty default, [0, 1] (the step axis too when no run is shown at all)."""
        vb = plot.item.vb
        (x0, x1), (y0, y1) = vb.viewRange()
        if (y0, y1) != (0.0, 1.0):
            vb.setYRange(0.0, 1.0, padding=0)
        if not self.sources and (x0, x1) != (0.0, 1.0):
            vb.setXRange(0.0, 1.0, padding=0)

    def _first_plot(self):
        return next(iter(self.plots.values()), None)

    def _legend_band(self, plot: Plot) -> None:
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

    def _threshold_index(self, source, smoothed: np.ndarray) -> int | None:
        """The first record with gamma~ > 0, searched only in records not seen before."""
        found, searched = self._thresholds.get(id(source), (None, 0))
        if found is None and len(smoothed) > searched:
            positive = np.flatnonzero(smoothed[searched:] > 0)
            found = searched + int(positive[0]) if len(positive) else None
            self._thresholds[id(source)] = (found, len(smoothed))
        return found
