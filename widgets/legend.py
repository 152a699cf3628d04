"""A plot legend that moves to where its curves leave room.

pyqtgraph anchors a legend in one corner for good. Most curves here head for the top right as a
run goes on (margins climb, the norm grows), which is where a fixed legend sat: it covered the
newest records, the very thing a user watches. This legend counts the cells of a coarse grid
that the drawn lines cross under each place it could take (corners first) and moves to the
emptiest one, as a column or, where that fits better, a row; unless the user dragged it.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsGridLayout
from pyqtgraph.graphicsItems.LegendItem import ItemSample

# where the legend may sit: (x, y) of the point of the legend that is put on the same point of
# the view box, in fractions of each, y down as on screen. The corners first, then the sides' middle
# heights, which a horizontal band of empty space between two curves can leave free. On a tie the
# first wins: the top right (pyqtgraph's habit), the top left, the bottom corners.
PLACES = ((1, 0), (0, 0), (1, 1), (0, 1), (1, 0.5), (0, 0.5), (1, 0.25), (0, 0.25), (1, 0.75), (0, 0.75))
MAX_COLUMNS = 3  # a legend in a row: at most this many entries side by side
MARGIN_PX = 5  # between the legend and the view box's edge
GRID = (64, 32)  # cells across and down the view box: the unit the legend's cover is counted in
MAX_LABEL_CHARS = 24  # a longer entry (a run's file name) is elided; the tooltip has it whole
COMPACT_CHARS = 14  # the same in a compact legend (set_compact)
TOOLTIP = "Drag the legend to put it somewhere; double-click it to let it find room by itself"


def elide(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, its middle replaced by an ellipsis: run names differ at
    their ends (a preset's name, then a suffix) more often than in their middles."""
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 3
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def occupied_cells(curves, view_range, bands=()) -> np.ndarray:
    """A (rows, columns) = GRID[::-1] boolean grid over the view box, top row first: the cells the
    lines of ``curves`` ((x, y) arrays in view units, NaN breaking a line) pass through, and the
    cells between the edges of ``bands`` ((x, low, high) arrays: a family's quartiles). Lines,
    not points: a KKT curve has a point per snapshot, a few dozen, joined by long segments."""
    columns, rows = GRID
    grid = np.zeros((rows, columns), dtype=bool)
    for x, low, high in bands:
        _mark_band(grid, view_range, x, low, high)
    for x, y in curves:
        if x is not None and y is not None and len(x):
            _mark_line(grid, view_range, x, y)
    return grid


def _ramps(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, offset) of each of ``counts.sum()`` items: item j belongs to entry owner[j] and is
    that entry's offset[j]-th, for ranges laid end to end without a Python loop."""
    owner = np.repeat(np.arange(len(counts)), counts)
    return owner, np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)


def _mark_band(grid, view_range, x, low, high) -> None:
    """Every cell between a band's edges, column by column (x is sorted: steps)."""
    (x0, x1), (y0, y1) = view_range
    rows, columns = grid.shape
    x, low, high = (np.asarray(a, dtype=np.float64) for a in (x, low, high))
    drawn = np.isfinite(x) & np.isfinite(low) & np.isfinite(high)
    if np.count_nonzero(drawn) < 2:
        return
    # the edges at every column's middle, NaN beyond the band's ends
    centres = x0 + (np.arange(columns) + 0.5) / columns * (x1 - x0)
    lo = np.interp(centres, x[drawn], np.fmin(low, high)[drawn], left=np.nan, right=np.nan)
    hi = np.interp(centres, x[drawn], np.fmax(low, high)[drawn], left=np.nan, right=np.nan)
    top, bottom = (y1 - hi) / (y1 - y0) * rows, (y1 - lo) / (y1 - y0) * rows
    with np.errstate(invalid="ignore"):
        keep = (bottom >= 0) & (top <= rows)  # NaN (beyond the band) compares False
    first = np.clip(top[keep], 0, rows - 1).astype(np.intp)
    spans = np.clip(bottom[keep], 0, rows - 1).astype(np.intp) - first + 1
    owner, offset = _ramps(spans)
    grid[first[owner] + offset, np.flatnonzero(keep)[owner]] = True


def _mark_line(grid, view_range, x, y) -> None:
    """Every cell a polyline crosses: each drawn segment sampled at least once per cell."""
    (x0, x1), (y0, y1) = view_range
    rows, columns = grid.shape
    # in cells from the view box's top left, clipped a little outside it: a segment that
    # leaves the view still crosses the cells on its way out
    u = np.clip((np.asarray(x, dtype=np.float64) - x0) / (x1 - x0) * columns, -1.0, columns + 1.0)
    v = np.clip((y1 - np.asarray(y, dtype=np.float64)) / (y1 - y0) * rows, -1.0, rows + 1.0)
    du, dv = np.diff(u), np.diff(v)
    drawn = np.isfinite(du) & np.isfinite(dv)
    samples = np.where(drawn, np.ceil(np.maximum(np.abs(du), np.abs(dv))), 0).astype(np.intp) + drawn
    segment, offset = _ramps(samples)
    t = offset / np.maximum(samples - 1, 1)[segment]
    # the points themselves too: a curve of a single record has no segment
    u_all = np.concatenate([u[segment] + t * du[segment], u])
    v_all = np.concatenate([v[segment] + t * dv[segment], v])
    with np.errstate(invalid="ignore"):  # NaN compares False: a gap is nowhere
        inside = (u_all >= 0) & (u_all <= columns) & (v_all >= 0) & (v_all <= rows)
    # a point on the right or bottom edge belongs to the last cell
    cell_rows = np.minimum(v_all[inside].astype(np.intp), rows - 1)
    grid[cell_rows, np.minimum(u_all[inside].astype(np.intp), columns - 1)] = True


def cells_under(grid: np.ndarray, fraction) -> list[int]:
    """How many occupied cells of ``grid`` the legend would cover in each of PLACES, its size
    being ``fraction`` = (width, height) of the view box's."""
    rows, columns = grid.shape
    wide = max(1, min(columns, int(np.ceil(fraction[0] * columns))))
    high = max(1, min(rows, int(np.ceil(fraction[1] * rows))))
    counts = []
    for fx, fy in PLACES:
        left = round(fx * (columns - wide))
        top = round(fy * (rows - high))
        counts.append(int(np.count_nonzero(grid[top:top + high, left:left + wide])))
    return counts


def better(options, current):
    """The option to take among ``options`` ((cells covered, columns, index in PLACES), least
    first on a tie: fewer columns, then PLACES' order): the ``current`` one unless another
    covers clearly fewer cells (half or less, and at least a few fewer), so that a live curve
    near the threshold does not make the legend jump back and forth."""
    best = min(options)
    covered = next((o[0] for o in options if o[1:] == current[1:]), None)
    # a place that covers nothing always beats one that covers something
    if covered is None or (best[0] == 0 < covered) or (best[0] <= covered // 2 and covered - best[0] >= 3):
        return best
    return (covered,) + tuple(current[1:])


SAMPLE_HEIGHT = 12  # pixels: pyqtgraph's line samples are 20 tall, which made every row 21


class FlatSample(ItemSample):
    """A legend's line sample SAMPLE_HEIGHT pixels tall, its line in the middle."""

    def __init__(self, item):
        super().__init__(item)
        self.setMinimumSize(20, SAMPLE_HEIGHT)
        self.setMaximumSize(20, SAMPLE_HEIGHT)
        self.setPreferredSize(20, SAMPLE_HEIGHT)

    def boundingRect(self):  # noqa: N802 (Qt's name)
        return QRectF(0, 0, 20, SAMPLE_HEIGHT)

    def paint(self, painter, *args):
        painter.translate(0, SAMPLE_HEIGHT / 2 - 11)  # pyqtgraph draws the line at y = 11
        super().paint(painter, *args)


class AutoLegend(pg.LegendItem):
    """A LegendItem in one of PLACES, moved by ``place``; dragging it with the mouse pins it, a
    double click lets it go (``unpinned``: its plot places it again at once)."""

    unpinned = Signal()

    def __init__(self, **kwargs):
        super().__init__(offset=(-MARGIN_PX, MARGIN_PX), sampleType=FlatSample, **kwargs)
        self.where = 0  # index in PLACES
        self.pinned = False  # the user dragged it: it stays where they put it
        self.covered = 0  # cells of curves under the legend where ``place`` put it
        # pyqtgraph draws legends at a fixed size whatever the painter's scale: an export at scale 2
        # doubled titles and ticks but not the legend. Its parent, the view box, is never scaled
        # on screen, so the flag changes nothing there.
        self.setFlag(self.GraphicsItemFlag.ItemIgnoresTransformations, False)
        # pyqtgraph pads the entries by 9 pixels all round: a legend of one row was 39 pixels tall,
        # half of a plot at 1280 x 720
        self.layout.setContentsMargins(4, 1, 4, 1)
        self.full_names: list[str] = []
        self.short_names: list[str] = []
        self.compact = False  # short labels (set_compact): a plot too short for the full ones
        self.setToolTip(TOOLTIP)

    def addItem(self, item, name):  # noqa: N802 (pyqtgraph's name: PlotItem adds named curves here)
        self.add_entry(item, name)

    def add_entry(self, item, name, short=None) -> None:
        """An entry labelled ``name`` elided to MAX_LABEL_CHARS (the full one in the tooltip: a long
        run name covered half a plot, and a family's legend ran past the plot's left edge), or in
        a compact legend ``short`` (the symbol without its definition)."""
        self.full_names.append(str(name))
        self.short_names.append(str(short) if short else str(name))
        super().addItem(item, self._label(len(self.full_names) - 1))
        label = self.items[-1][1]
        label.item.document().setDocumentMargin(0)  # Qt's 4 pixels above and below each label's text
        label.updateMin()
        self.updateSize()
        self._name_tooltip()

    def setColumnCount(self, columnCount):  # noqa: N802, N803 (pyqtgraph's names)
        """As pyqtgraph's, in a fresh grid: its grid keeps the rows of the old arrangement, and the
        entries, added after them, sat under empty rows (a legend of one row was two rows tall)."""
        if columnCount != self.columnCount:
            self.columnCount = columnCount
            self._relayout()

    def _relayout(self) -> None:
        old = self.layout
        layout = QGraphicsGridLayout()
        layout.setVerticalSpacing(old.verticalSpacing())
        layout.setHorizontalSpacing(old.horizontalSpacing())
        layout.setContentsMargins(*old.getContentsMargins())
        for i in range(old.count() - 1, -1, -1):
            old.removeAt(i)  # the entries stay: only the grid goes
        self.setLayout(layout)  # Qt deletes the old one
        self.layout = layout
        self.rowCount = math.ceil(len(self.items) / self.columnCount)
        for sample, label in self.items:
            self._addItemToLayout(sample, label)
        self.updateSize()

    def _label(self, i: int) -> str:
        if self.compact:
            return elide(self.short_names[i], COMPACT_CHARS)
        return elide(self.full_names[i])

    def removeItem(self, item):  # noqa: N802 (pyqtgraph's name)
        for i, (sample, label) in enumerate(self.items):
            if sample.item is item or label.text == item:
                del self.full_names[i], self.short_names[i]
                break
        super().removeItem(item)
        self._name_tooltip()

    def clear(self):
        super().clear()
        self.full_names, self.short_names = [], []
        self._name_tooltip()

    def set_compact(self, on: bool) -> None:
        """Short labels and up to one more column: for a plot too short for the full legend."""
        if on == self.compact:
            return
        self.compact = on
        # entries made again: a label given shorter text keeps the width the layout gave it before
        entries = [(sample.item, full, short) for (sample, _label), full, short
                   in zip(self.items, self.full_names, self.short_names)]
        self.clear()
        for item, full, short in entries:
            self.add_entry(item, full, short)
        self._relayout()

    def _name_tooltip(self) -> None:
        elided = [n for i, n in enumerate(self.full_names) if self._label(i) != n]
        self.setToolTip("<br>".join(elided + [TOOLTIP]) if elided else TOOLTIP)

    def _max_columns(self) -> int:
        return MAX_COLUMNS + (1 if self.compact else 0)

    def flattest_height(self, width: float) -> float:
        """The legend's height in its flattest layout (the most columns, up to MAX_COLUMNS, that
        fit in ``width`` pixels)."""
        count = len(self.items)
        if not count:
            return 0.0
        sizes = [self.layout_size(c) for c in range(1, min(self._max_columns(), count) + 1)]
        return min((h for w, h in sizes if w + MARGIN_PX <= width), default=sizes[0][1])

    def layout_size(self, columns: int) -> tuple[float, float]:
        """(width, height) of the legend laid out in ``columns`` columns (entries row by row), from
        its entries' preferred sizes, the grid's spacing and margins."""
        count = len(self.items)
        if not count:
            return 0.0, 0.0
        columns = max(1, min(columns, count))
        rows = math.ceil(count / columns)
        spacing_x, spacing_y = self.layout.horizontalSpacing(), self.layout.verticalSpacing()
        left, top, right, bottom = self.layout.getContentsMargins()
        width = 0.0
        for j in range(columns):
            column = self.items[j::columns]
            width += max(s.preferredWidth() for s, _ in column) + max(label.preferredWidth() for _, label in column)
        width += (2 * columns - 1) * spacing_x + left + right
        row = max(max(label.preferredHeight(), s.preferredHeight()) for s, label in self.items)
        return width, rows * row + (rows - 1) * spacing_y + top + bottom

    def updateSize(self):  # noqa: N802 (pyqtgraph's name)
        """The legend as large as its entries need: pyqtgraph summed the entries' current heights,
        which the grid had stretched to the legend's previous size."""
        if self.size is None:
            width, height = self.layout_size(self.columnCount)
            self.setGeometry(0, 0, width, height)

    def restyle(self, brush, text_colour, size: str) -> None:
        """New colours and type size (a theme or presentation mode): pyqtgraph's setters store
        them for later entries only, so the labels are drawn again here."""
        self.setBrush(brush)
        self.opts["labelTextColor"] = pg.mkColor(text_colour)
        self.opts["labelTextSize"] = size
        for _sample, label in self.items:
            label.setText(label.text, color=self.opts["labelTextColor"], size=size)
        self.updateSize()

    def mouseDragEvent(self, ev):  # noqa: N802 (Qt's name)
        super().mouseDragEvent(ev)
        if ev.isAccepted():
            self.pinned = True

    def mouseDoubleClickEvent(self, event):  # noqa: N802 (Qt's name; pyqtgraph's scene leaves it to Qt)
        """A double click lets a dragged legend find room by itself again."""
        if event.button() == Qt.LeftButton:
            self.pinned = False
            self.where = -1  # no place yet: the next ``place`` anchors it wherever is best
            event.accept()
            self.unpinned.emit()

    def place(self, curves, view_range, view_size, bands=()) -> None:
        """Move to the place, and take the number of columns (a short wide plot has room for a
        legend in a row, not in a column), where the legend covers fewest cells of ``curves``
        and ``bands`` (view units, as occupied_cells takes them); ``view_size``: the view box's
        (width, height) in pixels."""
        width, height = view_size
        count = len(self.items)
        if self.pinned or not self.isVisible() or not count or width <= 0 or height <= 0:
            return
        (x0, x1), (y0, y1) = view_range
        if not (x1 > x0 and y1 > y0):
            return
        grid = occupied_cells(curves, view_range, bands)
        options = []
        for columns in range(1, min(self._max_columns(), count) + 1):
            size = tuple(v + MARGIN_PX for v in self.layout_size(columns))
            if columns > 1 and size[0] > width:
                break
            covered = cells_under(grid, (size[0] / width, size[1] / height))
            options += [(cells, columns, where) for where, cells in enumerate(covered)]
        self.covered, columns, where = better(options, (None, self.columnCount, self.where))
        if (columns, where) != (self.columnCount, self.where):
            self.setColumnCount(columns)
            self.where = where
            fx, fy = PLACES[where]
            # MARGIN_PX in from the edge it touches; none from a middle height's
            offset = (MARGIN_PX * (1 - 2 * fx), MARGIN_PX * (1 - 2 * fy))
            self.anchor(itemPos=(fx, fy), parentPos=(fx, fy), offset=offset)
