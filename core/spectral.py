"""The top eigenvalue of a weight matrix's Gram matrix as it changes step by step: the stable
rank's denominator (metrics.stable_rank), recorded at every step of a run.

A full symmetric eigensolver costs ~110-140 us at 64 x 64, most of a step of a small network.
Between two records the weights barely move, so the last top eigenvector is an excellent start:
one Rayleigh-quotient-iteration step (a linear solve; the error in the vector is cubed) brings the
Rayleigh quotient theta to the top eigenvalue's neighbourhood, and a Cholesky factorization of
sigma I - G with sigma = theta (1 + SLACK) certifies it: the factorization exists only when every
eigenvalue of G lies below sigma (up to its rounding, ~n^2 eps relative: 5e-13 at n = 64), while
theta, a Rayleigh quotient, is below the top eigenvalue. So theta is within ~SLACK + n^2 eps of
it, relative, whatever the spectrum: a close or crossing second eigenvalue can only make the
certificate fail, and then the full solver answers (and restarts the vector).
"""

from __future__ import annotations

import numpy as np

from .blas import one_threaded_pool

SLACK = 1e-13
SMALLEST = 24  # below this size the full solver is as quick as the warm path's few calls


class TopEigenvalue:
    """lambda_max of a symmetric positive semi-definite matrix, warm-started from the last call."""

    __slots__ = ("vector", "warm_hits", "cold")

    def __init__(self):
        self.vector = None
        self.warm_hits = 0  # how many calls the certificate accepted (tests, benchmarks)
        self.cold = 0  # how many needed the full solver

    def __call__(self, G: np.ndarray) -> float:
        k = G.shape[0]
        if k < SMALLEST:
            return float(np.linalg.eigvalsh(G)[-1])
        v = self.vector
        if v is not None and v.shape[0] == k:
            top = _certified(G, v)
            if top is not None:
                self.warm_hits += 1
                self.vector = top[1]
                return top[0]
        self.cold += 1
        values, vectors = np.linalg.eigh(G)
        self.vector = vectors[:, -1].copy()
        return float(values[-1])


def _lapack():
    """scipy's LAPACK wrappers, imported on first use (the window's process never needs them):
    ~3 us a call where numpy.linalg's checks and wrapping take ~10."""
    from scipy.linalg import lapack

    one_threaded_pool()  # scipy's OpenBLAS pool beside numpy's: see core/blas.py
    return lapack


def _certified(G: np.ndarray, v: np.ndarray) -> tuple[float, np.ndarray] | None:
    """(theta, its vector) after one Rayleigh-quotient-iteration step from ``v``, when the
    Cholesky certificate says theta is the top eigenvalue to SLACK; None otherwise."""
    lapack = _lapack()
    k = G.shape[0]
    diagonal = slice(None, None, k + 1)
    theta = float(v @ (G @ v))
    shifted = G.copy()
    shifted.flat[diagonal] -= theta
    # (G - theta I)^-1 v: nearly singular on purpose, its direction is what counts; an exactly
    # singular pivot (info > 0) means theta is an eigenvalue to working precision, v its vector
    _lu, _pivots, w, info = lapack.dgesv(shifted, v, overwrite_a=1)
    if info != 0:
        w = v
    norm = float(np.sqrt(w @ w))
    if not np.isfinite(norm) or norm == 0:
        return None
    w = w / norm
    theta = float(w @ (G @ w))
    if not theta > 0:
        return None
    shifted = np.negative(G)
    shifted.flat[diagonal] += theta * (1 + SLACK)
    _factor, info = lapack.dpotrf(shifted, lower=1, clean=0, overwrite_a=1)
    if info != 0:  # not positive definite: an eigenvalue above theta (1 + SLACK), not the top one yet
        return None
    return theta, w
