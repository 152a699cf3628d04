"""BLAS level-1 operations on parameter-sized vectors, each one pass with no temporary.

numpy makes ``scale * d`` or ``abs(theta)`` as a new array as large as theta before it
subtracts, sums or takes a maximum: at 33,000 parameters (residual GELU, width 128) that
temporary doubles the cost of an update and of a record's l1 and l_inf norms. scipy's BLAS
wrappers read the vectors once (figures: docs/performance.md). For arrays BLAS cannot take as they are,
numpy's way gives the same numbers.
"""

from __future__ import annotations

import math

import numpy as np

from .blas import scipy_wrappers

_ROUTINES: dict = {}  # dtype -> (axpy, asum, iamax) of scipy's BLAS for it, or None


def _routines(dtype):
    """scipy's BLAS routines for ``dtype`` (None for a dtype BLAS has none for)."""
    if dtype not in _ROUTINES:
        prefix = {np.dtype(np.float64): "d", np.dtype(np.float32): "s"}.get(np.dtype(dtype))
        blas = scipy_wrappers("blas") if prefix else None
        _ROUTINES[dtype] = None if blas is None else (
            getattr(blas, prefix + "axpy"), getattr(blas, prefix + "asum"), getattr(blas, "i" + prefix + "amax"))
    return _ROUTINES[dtype]


def _blas_ready(*arrays):
    """The BLAS routines when every array is contiguous and of the first one's dtype."""
    first = arrays[0]
    if not all(a.flags.c_contiguous and a.dtype == first.dtype and a.ndim == 1 for a in arrays):
        return None
    return _routines(first.dtype)


def subtract_scaled(theta: np.ndarray, scale: float, d: np.ndarray) -> None:
    """theta -= scale * d in place (axpy: no temporary scale * d)."""
    routines = _blas_ready(theta, d)
    if routines is None:
        theta -= scale * d
        return
    out = routines[0](d, theta, a=-scale)
    if out is not theta:  # f2py copied after all: keep the update, never lose it
        theta[...] = out


def abs_sum_and_max(theta: np.ndarray) -> tuple[float, float]:
    """(||theta||_1, ||theta||_inf) (asum and iamax: no temporary |theta|). NaN
    or inf anywhere makes both NaN or inf, as numpy's would."""
    if not len(theta):
        return 0.0, 0.0
    routines = _blas_ready(theta)
    if routines is None:
        a = np.abs(theta)
        return float(a.sum()), float(a.max())
    total = float(routines[1](theta))
    largest = abs(float(theta[routines[2](theta)]))
    if not math.isfinite(total):  # iamax may skip a NaN that asum has already carried
        return total, float(np.max(np.abs(theta)))
    return total, largest
