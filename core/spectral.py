"""The top eigenvalue of a weight matrix's Gram matrix as it changes step by step: the stable
rank's denominator (metrics.stable_rank), recorded at every step of a run.

A full symmetric eigensolver costs ~115 us at 64 x 64 and ~510 at 128, more than a step of the
network. Between two records the weights barely move, so a run keeps the last top eigenvector v
and certifies the new value with Temple's inequality: for a unit vector v with Rayleigh quotient
theta = v'Gv and residual r = Gv - theta v, if every eigenvalue but the top one lies at or below
alpha < theta, then

    theta <= lambda_1 <= theta + |r|^2 / (theta - alpha).

alpha comes from the last full solve (the anchor, G_a) by Weyl's inequality: lambda_2(G) <=
lambda_2(G_a) + |G - G_a|_2 <= lambda_2(G_a) + |G - G_a|_F. When v is not yet close enough, the
bound itself gives a shift sigma just above lambda_1, at which sigma I - G is positive definite:
its Cholesky factor takes v one or two steps of inverse iteration, each shrinking v's error by
(sigma - lambda_1) / (sigma - lambda_2), ~1e-4 or less. theta is then within SLACK of lambda_1,
relative, whatever the spectrum does: a second eigenvalue that rises towards the top leaves the
bound unproven (theta <= alpha), and the full solver answers and anchors anew.

One Cholesky factorization and a few matrix-vector products a record: ~2x quicker than the
Rayleigh-quotient step with a Cholesky certificate this replaced (an LU solve and a Cholesky
factorization), ~3-6x quicker than the full solver.
"""

from __future__ import annotations

import math

import numpy as np

from .blas import one_threaded_pool

SLACK = 1e-13
SMALLEST = 24  # below this size the full solver is as quick as the warm path's few calls
ANCHOR_MARGIN = 1e-12  # relative to lambda_1: the full solver's eigenvalues are exact for a matrix ~k eps |G| away
SHIFT_MARGIN = 1e-10  # sigma's relative distance above Temple's upper bound: room for the factorization's rounding


class TopEigenvalue:
    """lambda_max of a symmetric positive semi-definite matrix, warm-started from the last call."""

    __slots__ = ("vector", "anchor", "second", "warm_hits", "cold")

    def __init__(self):
        self.vector = None
        self.anchor = None  # G at the last full solve
        self.second = 0.0  # an upper bound on lambda_2(anchor)
        self.warm_hits = 0  # how many calls the certificate accepted (tests, benchmarks)
        self.cold = 0  # how many needed the full solver

    def __call__(self, G: np.ndarray) -> float:
        k = G.shape[0]
        if k < SMALLEST:
            return float(np.linalg.eigvalsh(G)[-1])
        if self.anchor is not None and self.anchor.shape == G.shape:
            top = self._warm(G)
            if top is not None:
                self.warm_hits += 1
                return top
        self.cold += 1
        values, vectors = np.linalg.eigh(G)
        self.vector = vectors[:, -1].copy()
        self.anchor = G.copy()
        self.second = float(values[-2]) + ANCHOR_MARGIN * abs(float(values[-1]))
        return float(values[-1])

    def _warm(self, G: np.ndarray) -> float | None:
        """lambda_1 certified to SLACK from the kept vector, or None where it cannot be."""
        drift = float(np.linalg.norm(G - self.anchor))  # Frobenius: at least the spectral norm
        alpha = self.second + drift * (1 + ANCHOR_MARGIN)
        v = self.vector
        theta, rr = _rayleigh(G, v)
        if not (theta > alpha and math.isfinite(rr)):
            return None
        if rr <= SLACK * theta * (theta - alpha):
            return theta
        lapack = _lapack()
        k = G.shape[0]
        sigma = (theta + rr / (theta - alpha)) * (1 + SHIFT_MARGIN)  # above lambda_1, by Temple
        shifted = np.negative(G)
        shifted.flat[::k + 1] += sigma
        factor, info = lapack.dpotrf(shifted, lower=1, clean=0, overwrite_a=1)
        if info != 0:
            return None
        for _ in range(2):
            x, info = lapack.dpotrs(factor, v, lower=1)
            norm = float(np.sqrt(x @ x))
            if info != 0 or not math.isfinite(norm) or norm == 0:
                return None
            v = x / norm
            theta, rr = _rayleigh(G, v)
            if theta > alpha and rr <= SLACK * theta * (theta - alpha):
                self.vector = v
                return theta
        return None


def _rayleigh(G: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """(v'Gv, |Gv - (v'Gv) v|^2) for a unit vector v."""
    Gv = G @ v
    theta = float(v @ Gv)
    r = Gv - theta * v
    return theta, float(r @ r)


def _lapack():
    """scipy's LAPACK wrappers, imported on first use (the window's process never needs them):
    ~3 us a call where numpy.linalg's checks and wrapping take ~10."""
    from scipy.linalg import lapack

    one_threaded_pool()  # scipy's OpenBLAS pool beside numpy's: see core/blas.py
    return lapack
