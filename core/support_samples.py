"""The training samples closest to the decision boundary at a run's shown parameters: the k
smallest normalized margins q_i / ||theta||^M (THEORY.md, Setting and Multi-class; the support
vectors are those with q_i near q_min), for the Dataset panel's support-vector images.

The margins come from the run's records (metrics ``sample_margins``, one row per record) when a
record is at the shown step, and otherwise from one forward pass (a snapshot between records).
Binary (outputs (n,), labels -1/+1) and C-class (outputs (n, C), labels 0..C-1) alike, through
core/multiclass.sample_margins.
"""

from __future__ import annotations

import numpy as np

from .multiclass import sample_margins


def recorded_margins(steps, margins, step: int) -> np.ndarray | None:
    """The row of ``margins`` (records x n) recorded at ``step`` (``steps`` the records' steps),
    or None when no record is at that step or the row holds no finite number (a network without
    a homogeneity order records NaN)."""
    if margins is None or steps is None or not len(steps) or len(margins) != len(steps):
        return None
    rows = np.flatnonzero(np.asarray(steps) == step)
    if not rows.size:
        return None
    row = np.asarray(margins[rows[-1]], dtype=np.float64)
    return row if np.isfinite(row).any() else None


def computed_margins(network, theta, X, y, order: float | None) -> np.ndarray:
    """q_i / ||theta||_2^M by a forward pass of ``network`` (its ``outputs(theta, X)``, (n,) or
    (n, C)); the plain q_i when the network has no homogeneity order (``order`` None)."""
    with np.errstate(over="ignore", invalid="ignore"):
        q = sample_margins(network.outputs(theta, X), y)
    if order is None:
        return q
    norm = float(np.linalg.norm(theta))
    return q / norm ** order if norm > 0 else np.full_like(q, np.nan)


def smallest(margins, k: int) -> np.ndarray:
    """The indices of the ``k`` smallest finite ``margins``, smallest first (ties by index)."""
    margins = np.asarray(margins, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(margins))
    return finite[np.argsort(margins[finite], kind="stable")][:k]
