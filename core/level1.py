"""BLAS level-1 operations on parameter-sized vectors, each one pass with no temporary.

numpy makes ``scale * d`` or ``abs(theta)`` as a new array as large as theta before it
subtracts, sums or takes a maximum: at 33,000 parameters (residual GELU, width 128) that
temporary doubles the cost of an update and of a record's l1 and l_inf norms. scipy's BLAS
wrappers read the vectors once (figures: docs/performance.md). For arrays BLAS cannot take as they are,
numpy's way gives the same numbers.

Each routine is called on slices of at most ``CHUNK`` entries: OpenBLAS hands a level-1 call of
more than 10,000 entries to its thread pool (interface/axpy.c, dot.c), and for a parameter vector
that handoff costs far more than the work. On the shared 2-core machine one daxpy of 16,000
doubles took 3 us on one thread and 0.9-16 ms on two (the kou-frozen presets' numpy steps: 10 ms,
mostly that one call); np.dot of two such vectors 78 us against 3 us. Slices keep every call on
the calling thread, whoever set the pools' threads (a library call leaves them alone, and a pool
loaded after a threadpool_limits block opened keeps its threads).
"""

from __future__ import annotations

import math

import numpy as np

from .blas import scipy_wrappers

_ROUTINES: dict = {}  # dtype -> (axpy, asum, iamax, dot) of scipy's BLAS for it, or None
CHUNK = 8192  # entries per BLAS call: below OpenBLAS's 10,000 from which level 1 goes threaded


def _routines(dtype):
    """scipy's BLAS routines for ``dtype`` (None for a dtype BLAS has none for)."""
    if dtype not in _ROUTINES:
        prefix = {np.dtype(np.float64): "d", np.dtype(np.float32): "s"}.get(np.dtype(dtype))
        blas = scipy_wrappers("blas") if prefix else None
        _ROUTINES[dtype] = None if blas is None else (
            getattr(blas, prefix + "axpy"), getattr(blas, prefix + "asum"), getattr(blas, "i" + prefix + "amax"),
            getattr(blas, prefix + "dot"))
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
    axpy = routines[0]
    for i in range(0, len(theta), CHUNK):
        part = theta[i:i + CHUNK]
        out = axpy(d[i:i + CHUNK], part, a=-scale)
        if out is not part:  # f2py copied after all: keep the update, never lose it
            part[...] = out


def squared_norm(a: np.ndarray) -> float:
    """sum a_i^2 (np.dot(a, a), in slices of CHUNK on the calling thread); NaN or inf anywhere
    makes it NaN or inf."""
    routines = _blas_ready(a)
    if routines is None or len(a) <= CHUNK:
        return float(np.dot(a, a))
    dot = routines[3]
    return float(sum(dot(a[i:i + CHUNK], a[i:i + CHUNK]) for i in range(0, len(a), CHUNK)))


def abs_sum_and_max(theta: np.ndarray) -> tuple[float, float]:
    """(||theta||_1, ||theta||_inf) (asum and iamax: no temporary |theta|). NaN
    or inf anywhere makes both NaN or inf, as numpy's would."""
    if not len(theta):
        return 0.0, 0.0
    routines = _blas_ready(theta)
    if routines is None:
        a = np.abs(theta)
        return float(a.sum()), float(a.max())
    asum, iamax = routines[1], routines[2]
    total = float(sum(asum(theta[i:i + CHUNK]) for i in range(0, len(theta), CHUNK)))
    largest = max(abs(float(theta[i + iamax(theta[i:i + CHUNK])])) for i in range(0, len(theta), CHUNK))
    if not math.isfinite(total):  # iamax may skip a NaN that asum has already carried
        return total, float(np.max(np.abs(theta)))
    return total, largest
