"""Min/max decimation of a sorted series for drawing: per pixel column of the visible range,
keep the smallest and largest value (the 'peak' method), so pyqtgraph only ever sees about two
points per pixel.

Series only grow (a live run appends, a loaded run is fixed), so ``BlockCache`` keeps the min
and max of every full block of BLOCK records, extended incrementally; screen bins that span
several blocks are reduced over those instead of the raw records. A redraw of 10^6 records
then reads ~1/64 of them.
"""

from __future__ import annotations

import numpy as np

BLOCK = 64


def bin_starts(x: np.ndarray, lo: float, hi: float, bins: int, log_x: bool) -> tuple[int, int, np.ndarray | None]:
    """(i0, i1, starts): the visible slice x[i0:i1] (one point of margin on each side) and the
    start index of each non-empty screen bin within it, or None when the slice is short enough
    to draw whole. ``lo``/``hi`` are in screen units (log10 of x on a log axis)."""
    to_x = (lambda v: 10.0 ** v) if log_x else (lambda v: v)
    integer = x.dtype.kind in "iu"
    # on integer steps search with integer keys: float keys make numpy cast the whole array
    first, last = to_x(lo), to_x(hi)
    if integer:
        first, last = int(np.clip(np.ceil(first), -2**62, 2**62)), int(np.clip(np.floor(last), -2**62, 2**62))
    i0 = max(int(np.searchsorted(x, first, "left")) - 1, 0)
    i1 = min(int(np.searchsorted(x, last, "right")) + 1, len(x))
    if i1 - i0 <= 2 * bins:
        return i0, i1, None
    edges = to_x(np.linspace(lo, hi, bins + 1)[:-1])
    if integer:
        edges = np.ceil(np.clip(edges, -2**62, 2**62)).astype(x.dtype)
    starts = np.searchsorted(x[i0:i1], edges, "left")
    starts = np.unique(np.concatenate([[0], starts[starts < i1 - i0]]))
    return i0, i1, starts


class BlockCache:
    """Per-series min and max of each full block of BLOCK records, grown as the series grows."""

    def __init__(self):
        self._store: dict = {}

    def clear(self) -> None:
        self._store.clear()

    def blocks(self, key, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) per block; for a 2-D series (records x columns) one row per block, all
        columns reduced in one contiguous pass (a column slice would be gathered per column)."""
        n_blocks = len(y) // BLOCK
        empty = np.empty((0,) + y.shape[1:])
        low, high, done = self._store.get(key, (empty, empty, 0))
        if done > n_blocks:  # a different, shorter series under the same key: start over
            low, high, done = empty, empty, 0
        if n_blocks > done:
            chunk = y[done * BLOCK: n_blocks * BLOCK].reshape((-1, BLOCK) + y.shape[1:])
            with np.errstate(invalid="ignore"):
                low = np.concatenate([low, np.fmin.reduce(chunk, axis=1)])
                high = np.concatenate([high, np.fmax.reduce(chunk, axis=1)])
            self._store[key] = (low, high, n_blocks)
        return low, high


def range_from(cache: BlockCache, key, y: np.ndarray, start: int) -> tuple[float, float]:
    """(nanmin, nanmax) of y[start:], reading whole blocks from the cache."""
    block_lo, block_hi = cache.blocks(key, y)
    first = -(-start // BLOCK)  # first whole block at or after start
    head_end = min(first * BLOCK, len(y))
    tail_start = len(block_lo) * BLOCK
    parts = [y[start:head_end], y[max(tail_start, head_end):], block_lo[first:], block_hi[first:]]
    parts = [p for p in parts if len(p)]
    if not parts:
        return float("nan"), float("nan")
    with np.errstate(invalid="ignore"):
        return (float(min(np.fmin.reduce(p) for p in parts)), float(max(np.fmax.reduce(p) for p in parts)))


def peaks(x: np.ndarray, y: np.ndarray, i0: int, i1: int, starts: np.ndarray | None,
          cache: BlockCache | None = None, key=None, blocks: tuple | None = None):
    """The decimated (x, y) for one series: min and max of each bin, NaNs ignored. Block
    extremes come from ``blocks`` (min, max arrays) or from ``cache`` under ``key``."""
    xs, ys = x[i0:i1], y[i0:i1]
    if starts is None:
        return xs.astype(np.float64), ys
    sizes = np.diff(np.append(starts, i1 - i0))
    big = sizes >= 4 * BLOCK
    # bins grow left to right on a log axis and are equal on a linear one: blocks serve from
    # the first bin after which every bin spans at least four blocks
    small = np.flatnonzero(~big)
    split = 0 if not len(small) else int(small[-1]) + 1
    parts_x, parts_lo, parts_hi = [], [], []
    if split > 0:
        raw_end = starts[split] if split < len(starts) else len(ys)
        with np.errstate(invalid="ignore"):
            parts_lo.append(np.fmin.reduceat(ys[:raw_end], starts[:split]))
            parts_hi.append(np.fmax.reduceat(ys[:raw_end], starts[:split]))
        parts_x.append(xs[starts[:split]])
    if split < len(starts) and (cache is not None or blocks is not None):
        block_lo, block_hi = blocks if blocks is not None else cache.blocks(key, y)
        first = (i0 + starts[split:] + BLOCK - 1) // BLOCK  # first whole block of each bin
        end = min(i1 // BLOCK, len(block_lo))
        first = np.unique(first[first < end])
        if len(first):
            offsets = first - first[0]
            with np.errstate(invalid="ignore"):
                parts_lo.append(np.fmin.reduceat(block_lo[first[0]:end], offsets))
                parts_hi.append(np.fmax.reduceat(block_hi[first[0]:end], offsets))
            parts_x.append(x[first * BLOCK])
    elif split < len(starts):
        with np.errstate(invalid="ignore"):
            parts_lo.append(np.fmin.reduceat(ys, starts[split:]))
            parts_hi.append(np.fmax.reduceat(ys, starts[split:]))
        parts_x.append(xs[starts[split:]])
    xb = np.concatenate(parts_x).astype(np.float64)
    low, high = np.concatenate(parts_lo), np.concatenate(parts_hi)
    # end on the exact last record, so a live curve ends at the current value
    return (np.append(np.repeat(xb, 2), float(xs[-1])),
            np.append(np.column_stack([low, high]).ravel(), ys[-1]))
