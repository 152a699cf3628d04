"""Phase diagrams of a sweep: a final metric over two of its axes, the other axes and the seeds
aggregated (median, with the quartiles and the range as the spread) or fixed at one value. The
Sweep view (widgets/sweep_view.py) draws what this computes; Qt-free, so that it is tested and
used from Python alike."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .sweep_index import SweepIndex

DIVERGED = "diverged (share)"  # a metric of the status: the share of a cell's runs that diverged


@dataclass
class PhaseGrid:
    """``values`` (len(y), len(x)): the median of each cell's runs (NaN where none has a value);
    ``low``/``high``: the quartiles, ``least``/``most``: the range; ``counts``: runs with a value;
    ``runs``: each cell's run numbers (list of lists, [y][x]); the axes' values in ``x``, ``y``."""

    metric: str
    x: list
    y: list
    values: np.ndarray
    low: np.ndarray
    high: np.ndarray
    least: np.ndarray
    most: np.ndarray
    counts: np.ndarray
    runs: list


def metrics(index: SweepIndex) -> list[str]:
    """The metrics a phase diagram can show: the final scalar metrics, then the diverged share."""
    names = [n for n in index.metrics if n not in ("step", "wall_time")]
    return ["normalized_margin"] * ("normalized_margin" in names) + \
        [n for n in names if n != "normalized_margin"] + ["final_step", DIVERGED]


def phase_grid(index: SweepIndex, metric: str, x: int, y: int, fixed: dict | None = None) -> PhaseGrid:
    """``metric`` over axes ``x`` and ``y`` (axis numbers of index.plan.axes); ``fixed`` maps
    other axis numbers to the index of the value they are held at; the rest are aggregated."""
    plan = index.plan
    n_axes = len(plan.axes)
    if not (0 <= x < n_axes and 0 <= y < n_axes) or x == y:
        raise ConfigError(f"phase diagram: two different axes among 0..{n_axes - 1}, got {x} and {y}")
    fixed = dict(fixed or {})
    if metric == DIVERGED:
        column = np.where(index.status == "diverged", 1.0,
                          np.where(np.isin(index.status, ("finished",)), 0.0, np.nan))
    elif metric == "final_step":
        column = np.where(np.isin(index.status, ("finished", "diverged")), index.final_step.astype(float), np.nan)
    elif metric in index.metrics:
        column = index.metrics[metric]
    else:
        raise ConfigError(f"phase diagram: no metric {metric!r} in the sweep (there: {', '.join(metrics(index))})")
    where = np.stack(np.unravel_index(np.arange(plan.size), plan.shape), axis=1)  # (runs, axes)
    keep = np.ones(plan.size, dtype=bool)
    for axis, value in fixed.items():
        if axis in (x, y):
            continue
        keep &= where[:, axis] == value
    nx, ny = plan.shape[x], plan.shape[y]
    shape = (ny, nx)
    out = {name: np.full(shape, np.nan) for name in ("values", "low", "high", "least", "most")}
    counts = np.zeros(shape, dtype=np.int64)
    runs = [[[] for _ in range(nx)] for _ in range(ny)]
    for point in np.flatnonzero(keep):
        runs[where[point, y]][where[point, x]].append(int(point))
    for j in range(ny):
        for i in range(nx):
            cell = column[runs[j][i]] if runs[j][i] else np.zeros(0)
            cell = cell[np.isfinite(cell)]
            counts[j, i] = len(cell)
            if len(cell):
                if metric == DIVERGED:  # a share, not a median
                    out["values"][j, i] = cell.mean()
                else:
                    out["values"][j, i] = np.median(cell)
                out["low"][j, i], out["high"][j, i] = np.percentile(cell, [25, 75])
                out["least"][j, i], out["most"][j, i] = cell.min(), cell.max()
    return PhaseGrid(metric, list(plan.axes[x].values), list(plan.axes[y].values), counts=counts, runs=runs, **out)
