"""Level sets of a gridded function by vectorized marching squares, as line segments.

pyqtgraph's IsocurveItem traces in Python, far slower (docs/performance.md):
this keeps the GUI responsive while the boundary updates.
"""

from __future__ import annotations

import numpy as np


def level_segments(values: np.ndarray, level: float, rect) -> np.ndarray:
    """Segments of {f = level} for ``values`` (rows = y) spread over ``rect`` = (x, y, w, h).
    Returns a (2k, 2) array of segment end points, consecutive pairs forming one segment."""
    v = np.asarray(values, dtype=np.float64) - level
    ny, nx = v.shape
    x0, y0, w, h = rect
    xs = x0 + w * np.arange(nx) / (nx - 1)
    ys = y0 + h * np.arange(ny) / (ny - 1)
    a, b = v[:-1, :-1], v[:-1, 1:]  # bottom-left, bottom-right
    c, d = v[1:, 1:], v[1:, :-1]  # top-right, top-left
    X, Y = np.meshgrid(xs[:-1], ys[:-1])
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]

    def t(p, q):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.clip(p / (p - q), 0.0, 1.0)

    # crossing points on the four edges, in the order bottom, right, top, left
    points = np.stack([
        np.stack([X + t(a, b) * dx, Y], -1),
        np.stack([X + dx, Y + t(b, c) * dy], -1),
        np.stack([X + t(d, c) * dx, Y + dy], -1),
        np.stack([X, Y + t(a, d) * dy], -1),
    ])
    crosses = np.stack([(a > 0) != (b > 0), (b > 0) != (c > 0), (d > 0) != (c > 0), (a > 0) != (d > 0)])
    count = crosses.sum(axis=0)
    segments = []
    two = count == 2
    if two.any():
        first = np.argmax(crosses, axis=0)[two]
        second = 3 - np.argmax(crosses[::-1], axis=0)[two]
        cells = np.nonzero(two)
        p = points[:, cells[0], cells[1]]  # (4, m, 2)
        m = np.arange(p.shape[1])
        segments.append(np.stack([p[first, m], p[second, m]], axis=1))
    four = count == 4
    if four.any():  # saddles: split by the sign of the centre
        cells = np.nonzero(four)
        p = points[:, cells[0], cells[1]]
        centre = (a + b + c + d)[four] / 4
        same = (centre > 0) == (a[four] > 0)
        # centre like a and c: cut off corners b (edges 0-1) and d (2-3); else corners a (0-3) and c (2-1)
        segments.append(np.stack([p[0], np.where(same[:, None], p[1], p[3])], axis=1))
        segments.append(np.stack([p[2], np.where(same[:, None], p[3], p[1])], axis=1))
    if not segments:
        return np.zeros((0, 2))
    return np.concatenate(segments).reshape(-1, 2)


def class_regions(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """C outputs on a grid (rows = y, shape (ny, nx, C)): the predicted class argmax_k f_k at each
    node, and the gap f_top - f_runner-up >= 0 (the margin q the node would have in that class)."""
    v = np.asarray(values, dtype=np.float64)
    regions = np.argmax(v, axis=2)
    top_two = np.partition(v, v.shape[2] - 2, axis=2)[..., -2:]
    return regions, top_two[..., 1] - top_two[..., 0]


def class_lead(values: np.ndarray, k: int) -> np.ndarray:
    """h_k = f_k - max_{j != k} f_j on a grid (ny, nx, C): positive in class k's region, zero on its
    boundary, and h_k = q on the points that class k holds with margin q (THEORY.md, Multi-class)."""
    v = np.asarray(values, dtype=np.float64)
    others = np.delete(v, k, axis=2)
    return v[..., k] - others.max(axis=2)


def class_level_segments(values: np.ndarray, k: int, level: float, rect) -> np.ndarray:
    """Segments of {h_k = level} (class_lead): ``level`` 0 is the boundary of class k's region,
    ``level`` q_min the points class k holds with the smallest sample margin."""
    return level_segments(class_lead(values, k), level, rect)
