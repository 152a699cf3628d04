"""Min/max decimation of a sorted series for drawing: per pixel column of the visible range,
keep the smallest and largest value (the 'peak' method), so a redraw costs O(visible points)
in numpy and pyqtgraph only ever sees about two points per pixel."""

from __future__ import annotations

import numpy as np


def bin_starts(x: np.ndarray, lo: float, hi: float, bins: int, log_x: bool) -> tuple[int, int, np.ndarray | None]:
    """(i0, i1, starts): the visible slice x[i0:i1] (one point of margin on each side) and the
    start index of each non-empty screen bin within it, or None when the slice is short enough
    to draw whole. ``lo``/``hi`` are in screen units (log10 of x on a log axis)."""
    to_x = (lambda v: 10.0 ** v) if log_x else (lambda v: v)
    i0 = max(int(np.searchsorted(x, to_x(lo), "left")) - 1, 0)
    i1 = min(int(np.searchsorted(x, to_x(hi), "right")) + 1, len(x))
    if i1 - i0 <= 2 * bins:
        return i0, i1, None
    edges = to_x(np.linspace(lo, hi, bins + 1)[:-1])
    starts = np.searchsorted(x[i0:i1], edges, "left")
    starts = np.unique(np.concatenate([[0], starts[starts < i1 - i0]]))
    return i0, i1, starts


def peaks(x: np.ndarray, y: np.ndarray, i0: int, i1: int, starts: np.ndarray | None):
    """The decimated (x, y) for one series: min and max of each bin, NaNs ignored."""
    xs, ys = x[i0:i1], y[i0:i1]
    if starts is None:
        return xs.astype(np.float64), ys
    with np.errstate(invalid="ignore"):
        low = np.fmin.reduceat(ys, starts)
        high = np.fmax.reduceat(ys, starts)
    xb = xs[starts].astype(np.float64)
    return np.repeat(xb, 2), np.column_stack([low, high]).ravel()
