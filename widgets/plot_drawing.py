"""Drawing the trajectory plots' curves: each series decimated to the min and max per pixel of
the visible x range (widgets/decimate.py), sample margins as lines or a band, a family's
quartile bands, and the line-style key of several runs."""

from __future__ import annotations

import warnings

import numpy as np
import pyqtgraph as pg

from .decimate import bin_starts, peaks
from .legend import elide
from .palette import color
from .plot_item import Plot, make_pen
from .plot_specs import short_label

SAMPLE_LINES_UP_TO = 40  # more samples than this: a min / median / max band
# a legend in a plot lower than this (pixels at type scale 1) takes short labels ("γ", not its
# definition) and one more column: at 1280 x 720 the full ones covered half of every plot
COMPACT_BELOW_PX = 130
MULTI_BAND_ALPHA = 35  # of 255: the sample-margin bands of several runs
KEY_COLOUR = "#777777"  # the line-style key's samples: neither run's colour


class CurveDrawing:
    """TrajectoryPlots' drawing (a mixin: it reads ``plots``, ``sources``, ``log_x``, ``pen_width``)."""

    def _draw(self, plot: Plot) -> None:
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

    def _draw_curves(self, plot: Plot) -> None:
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
                if spec.extra.get("companion") and s_index == 0:
                    self._draw_companion(plot, source, steps, window)
            elif spec.kind == "columns":
                values = self._series(plot, source, spec.curves[0][0])  # recorded, or derived (the quantiles)
                if values is None or values.ndim != 2:
                    continue
                label_prefix = spec.extra.get("column_label")
                names = (spec.extra.get("column_names")
                         or ([f"{label_prefix} {k + 1}" for k in range(values.shape[1])] if label_prefix
                             else source.info.get("layer_names", [])))
                for col in range(values.shape[1]):
                    # several runs: a colour per run (the run key) and a line style per layer
                    # (member), named in the legend, as the records plots do with their curves
                    pen = self._pen(color(colour_index if multi else col), col if multi else 0)
                    x, y = self._clean(plot, *self._peaks(steps, values, window, (id(source), spec.curves[0][0]), col))
                    name = names[col] if col < len(names) else f"layer {col}"
                    legend = None if multi else name  # several runs: the run key names them
                    styled.setdefault(col, (col, name))
                    self._set(plot, plot.curve((s_index, col), pen, legend, self._short_of(None, legend)), x, y)
                for c_index, (name, curve_label) in enumerate(spec.curves[1:], start=values.shape[1]):
                    # a columns plot's further curves are records (the test margins' minimum)
                    extra = source.get(name)
                    if extra is None or not self._drawable(source, name, extra):
                        continue
                    pen = self._pen(color(colour_index if multi else c_index), c_index if multi else 0)
                    x, y = self._clean(plot, *self._peaks(steps, extra, window, (id(source), name)))
                    legend = None if multi else curve_label
                    styled.setdefault(c_index, (name, curve_label))
                    self._set(plot, plot.curve((s_index, name), pen, legend, self._short_of(name, legend)), x, y)
            elif spec.kind == "samples":
                self._draw_samples(plot, s_index, source, steps, window, multi, colour_index)
        if multi and len(styled) > 1:
            self._style_key(plot, styled)
        plot.drawn = True

    def _draw_companion(self, plot: Plot, source, steps, window) -> None:
        """The first run's companion series (PlotSpec extra "companion") on the right axis, where
        the run has it (widgets/plot_companion.py)."""
        name, label = plot.spec.extra["companion"]
        values = source.get(name)
        if values is None or not len(values):
            if plot.companion is not None:
                plot.companion.hide()
            return
        if plot.companion is None:
            from .plot_companion import Companion

            plot.companion = Companion(plot.item, label)
        plot.companion.show()
        x, y = self._peaks(steps, values[:len(steps)], window, (id(source), name))
        if self.log_x:
            keep = x > 0
            x, y = np.log10(x[keep]), y[keep]
        plot.companion.set_data(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))

    def _draw_samples(self, plot, s_index, source, steps, window, multi, colour_index):
        values = source.get("sample_margins")
        if values is None or values.ndim != 2 or not len(values):
            return
        n = values.shape[1]
        if n <= SAMPLE_LINES_UP_TO and not multi:
            labels = source.dataset.y
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

    def _style_key(self, plot: Plot, styled: dict) -> None:
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
            sample = pg.PlotDataItem(pen=make_pen(KEY_COLOUR, style, max(self.pen_width, 2)))
            sample.style_key = True
            plot.legend.add_entry(sample, label.split(" = ")[0], short_label(name, label))  # "γ", not its definition
        plot.key_names = names

    @staticmethod
    def _short_of(name, legend):
        """A legend entry's compact label: a quantity's symbol, a layer's name cut short."""
        if legend is None:
            return None
        return elide(legend, 14) if name is None else short_label(name, legend)

    def _stride(self, plot: Plot, n: int):
        """For an x that is not sorted (-log L can rise): every k-th record, ~1 per pixel."""
        bins = max(int(plot.item.vb.width()), 100)
        if n <= 2 * bins:
            return 0, n, None
        return 0, n, ("stride", np.unique(np.linspace(0, n - 1, 2 * bins).astype(np.int64)))

    def _window(self, plot: Plot, steps: np.ndarray):
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

    def _set(self, plot: Plot, curve, x, y) -> None:
        finite = bool(np.isfinite(y).all())
        curve.setData(x, y, connect="all" if finite else "finite", skipFiniteCheck=finite)
        plot.note(x, y, self.log_x, plot.log_y)

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
