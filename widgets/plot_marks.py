"""What the trajectory plots mark besides curves: max-margin reference lines, the floor of values
at 0, health events, and the notes that say why something is blank or not drawn."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt

from .legend import PLACES, cells_under, occupied_cells
from .palette import color, ink
from .plot_item import Plot

# where the round-off note may go (legend.py PLACES): the bottom corners first, where it says
# what is missing below the curves, then the top ones and the sides
NOTE_PLACES = ((1, 1), (0, 1), (1, 0), (0, 0), (1, 0.5), (0, 0.5), (1, 0.75), (0, 0.75), (1, 0.25), (0, 0.25))


class PlotMarks:
    """TrajectoryPlots' lines and notes (a mixin: it reads ``plots``, ``sources``, ``log_x``)."""

    def _show_waiting(self) -> None:
        """The note in the first plot, shown while no source has a record."""
        if self.waiting_note is not None:
            steps = (s[0].get("step") for s in self.sources)
            self.waiting_note.setVisible(not any(v is not None and len(v) for v in steps))

    @staticmethod
    def _place_round_off_note(plot: Plot) -> None:
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

    def _mark_events(self, plot) -> None:
        """A red dotted line at each health event of the shown run (the first source): where it
        collapsed or got stuck, the message in its tooltip-like label."""
        source = self.sources[0][0] if self.sources else None
        events = list(source.events) if source is not None else []
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
        value = source.info.get(plot.spec.reference)
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
        value = source.info.get("reference_margin_steepest")
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
