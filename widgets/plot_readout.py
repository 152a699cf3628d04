"""The replay cursor and the hover crosshair of the trajectory plots, with a readout of each
plot's values at the pointer that stays inside its plot and off the legend."""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import QPointF, QRectF

from .legend import elide
from .palette import color
from .plot_item import Plot
from .plot_specs import short_label

READOUT_RUNS = 4  # the hover readout's lines at most, one a run


class HoverReadout:
    """TrajectoryPlots' cursor and readout (a mixin: it reads ``plots``, ``sources``, ``log_x``)."""

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
    def _place_readout(plot: Plot, lines: list) -> None:
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

    def _readout(self, plot: Plot, nearest: list) -> list:
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

    def _values(self, plot: Plot, source, i: int, compact: bool = False):
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
                    return short_label(n, lbl).strip("|")
                return signed.get(n, lbl)
            return snaps[j], "  ".join(f"{name_of(n, lbl)} {source.snapshot_metrics[n].view()[j]:.4g}"
                                       for n, lbl in spec.curves)
        parts = []
        for name, label in self.curves_of(plot, source):
            values = self._series(plot, source, name)
            if values is None or not self._drawable(source, name, values):
                continue
            if values.ndim == 1:
                parts.append(f"{short_label(name, label) if compact else label.split(' = ')[0]} {values[i]:.5g}")
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
