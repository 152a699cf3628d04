"""The top eigenvalue of a weight matrix's Gram matrix, ||W||_2^2, as training changes W step by
step: the stable rank's denominator (metrics.stable_rank), recorded at every step of a run.

A full symmetric eigensolver costs more than a step of the network (docs/performance.md). Between two records the weights barely move, so a run keeps the top eigenvector v of
G = W'W and certifies each new value with Temple's inequality: for a unit vector v with Rayleigh
quotient theta = v'Gv = |Wv|^2 and residual r = Gv - theta v = W'(Wv) - theta v, if every
eigenvalue but the top one lies at or below alpha < theta, then

    theta <= lambda_1 <= theta + |r|^2 / (theta - alpha).

The guess. The top eigenvector moves smoothly with the weights, so the first guess for v is the
cubic through the last four well-certified vectors (Lagrange, in the step). While a run records
every step it is ~1e-10 off where the last vector alone is ~1e-4 off, and most records take a few
matrix-vector products with W and never form G.

The bound alpha on lambda_2 comes from an anchor W_a, without G: by interlacing, lambda_2(G) is
at most the top of G compressed to v's orthogonal complement, which a triangle inequality bounds
by W_a's (known at the anchor) and D = W - W_a's Frobenius norm off v (three dot products); see
_second_bound. Where that is too loose, G is formed: Weyl's lambda_2(G_a) + |G - G_a|_F may be
tighter, and where both have loosened past a quarter of the gap, one Cholesky factorization of
beta I - G + theta vv' proves lambda_2 <= beta (beta halfway up the gap) and anchors there
(_reanchor). The full solver anchors only where that fails: a few times in 2,000 records.

Where the guess is not close enough, Temple's bound gives a shift sigma just above lambda_1, at
which sigma I - G is positive definite: its Cholesky factor takes v one or two steps of inverse
iteration, each shrinking v's error by (sigma - lambda_1) / (sigma - lambda_2), ~1e-4 or less.
theta is then within SLACK of lambda_1, relative, whatever the spectrum does: a second eigenvalue
that rises towards the top leaves the bound unproven (theta <= alpha), and the full solver answers
and anchors anew.
"""

from __future__ import annotations

import math

import numpy as np

from .blas import scipy_wrappers

SLACK = 1e-13
SMALLEST = 24  # below this size the full solver is as quick as the warm path's few calls
ANCHOR_MARGIN = 1e-12  # relative to lambda_1: the full solver's eigenvalues are exact for a matrix ~k eps |G| away
SHIFT_MARGIN = 1e-10  # sigma's relative distance above Temple's upper bound: room for the factorization's rounding
GUESSES = 4  # certified vectors the next guess extrapolates from: a cubic
NODE_QUALITY = 1e-4  # a vector is kept to guess from when its residual is this far inside the certificate
HOPELESS, RETRY = 1e4, 64  # a guess this far outside the certificate: guess again only every RETRY-th record


class TopEigenvalue:
    """lambda_max(W'W) = ||W||_2^2 of one layer's weights, warm-started from the earlier calls."""

    __slots__ = ("vectors", "steps", "stacked", "anchor", "anchor_gram", "anchor_sq", "anchor_vector", "anchor_top",
                 "second", "solved_second", "calls", "misses", "warm_hits", "guessed", "cold", "reanchored")

    def __init__(self):
        self.vectors: list = []  # the last GUESSES certified top eigenvectors, oldest first, signs aligned
        self.steps: list = []  # the steps they belong to
        self.stacked = None  # the vectors as one array, made when first needed
        self.anchor = None  # W at the last anchor (full solve or _reanchor; smaller side second), its G, |W_a|_F^2
        self.anchor_gram = None
        self.anchor_sq = 0.0
        self.anchor_vector = None  # G_a's top eigenvector and eigenvalue (_reanchor: its v and weight)
        self.anchor_top = 0.0
        self.second = 0.0  # an upper bound on lambda_2(G_a)
        self.solved_second = 0.0  # lambda_2 at the last full solve
        self.calls = 0  # the step stand-in when none is given
        self.misses = 0  # records since the guess last missed hopelessly (0: it did not)
        self.warm_hits = 0  # how many calls the certificate accepted (tests, benchmarks)
        self.guessed = 0  # how many of those from the guess alone, without forming G
        self.cold = 0  # how many needed the full solver
        self.reanchored = 0  # how many anchors _reanchor proved instead

    def __call__(self, W: np.ndarray, step: int | None = None, squared_norm: float | None = None) -> float:
        """||W||_2^2 for the weights at ``step`` (calls in step order are what the guess is
        quickest for; any order is still exact); ``squared_norm``: ||W||_F^2 where the caller
        has it."""
        if W.shape[0] < W.shape[1]:
            W = W.T  # the eigenvector lives on the smaller side: G = W'W is k x k
        k = W.shape[1]
        if k < SMALLEST:
            return float(np.linalg.eigvalsh(W.T @ W)[-1])
        step = self.calls if step is None else step
        self.calls += 1
        sq = float(np.vdot(W, W)) if squared_norm is None else squared_norm
        G = None
        if self.anchor is not None and self.anchor.shape == W.shape:
            top, G = self._warm(W, step, sq)
            if top is not None:
                self.warm_hits += 1
                return top
        self.cold += 1
        if G is None:
            G = W.T @ W
        values, vectors = np.linalg.eigh(G)
        top = float(values[-1])
        v = vectors[:, -1].copy()
        if self.vectors and (self.vectors[-1].shape != v.shape or abs(float(v @ self.vectors[-1])) < 0.5):
            self.vectors, self.steps = [], []  # another eigenvector (or matrix) now: the old path guesses nothing
        self._remember(step, v)
        self.anchor, self.anchor_gram, self.anchor_sq = W.copy(), G, sq
        self.anchor_vector, self.anchor_top = v, top
        self.second = float(values[-2]) + ANCHOR_MARGIN * abs(top) + _gram_rounding(W, sq)
        self.solved_second = float(values[-2])
        return top

    def _warm(self, W: np.ndarray, step: int, sq: float):
        """(lambda_1 certified to SLACK, or None where it cannot be; G where it was formed)."""
        # Guess while it pays: where the weights move in jumps (a ReLU network's activation
        # patterns flip step by step) the cubic misses by orders of magnitude record after record,
        # and its bound and the second inverse iteration it asks for cost more than the last vector
        # alone; then it is tried again every RETRY-th record only.
        guessing = not self.misses or self.misses % RETRY == 0
        v = self._guess(step) if guessing else self.vectors[-1]
        theta, rr, u = _rayleigh(W, v)
        if guessing:
            alpha = self._second_bound(W, sq, v, u)
            if theta > alpha and _certified(theta, rr, alpha):
                self._remember(step, v, theta, rr, alpha)
                self.guessed += 1
                self.misses = 0
                return theta, None
            # theta <= alpha is the bound's fault, not the guess's
            hopeless = theta > alpha and not _certified(theta, rr / HOPELESS, alpha)
            self.misses = self.misses + 1 if hopeless else 0
        else:
            self.misses += 1
        G = W.T @ W
        if not guessing:
            alpha = self._weyl_bound(W, G, sq)
        gap = theta - self.solved_second  # lambda_2 moves far less than the bounds on it loosen
        if gap > 0 and alpha > theta - 0.25 * gap and self._reanchor(W, G, sq, v, theta, theta - 0.5 * gap):
            alpha = self.second  # _second_bound's at v = v_a
        elif guessing:
            alpha = min(alpha, self._weyl_bound(W, G, sq))  # if tighter
        if not (theta > alpha and math.isfinite(rr)):
            return None, G
        if _certified(theta, rr, alpha):
            self._remember(step, v, theta, rr, alpha)
            return theta, G
        lapack = _lapack()
        sigma = (theta + rr / (theta - alpha)) * (1 + SHIFT_MARGIN)  # above lambda_1, by Temple
        factor, info = lapack.dpotrf(_shifted(G, sigma), lower=1, clean=0, overwrite_a=1)
        if info != 0:
            return None, G
        certified = None
        for _ in range(2):
            x, info = lapack.dpotrs(factor, v, lower=1)
            norm = float(np.sqrt(x @ x))
            if info != 0 or not math.isfinite(norm) or norm == 0:
                break
            v = x / norm
            theta, rr, _ = _rayleigh(W, v)
            if theta > alpha and _certified(theta, rr, alpha):
                certified = theta, rr, v
                if not guessing or _certified(theta, rr / NODE_QUALITY, alpha):
                    break  # good enough to guess from, too; else one more solve makes it so
        if certified is None:
            return None, G
        theta, rr, v = certified
        self._remember(step, v, theta, rr, alpha)
        return theta, G

    def _weyl_bound(self, W: np.ndarray, G: np.ndarray, sq: float) -> float:
        """Weyl's bound on lambda_2(G): lambda_2(G_a) + |G - G_a|_F, with both Gram matrices' rounding."""
        drift = float(np.linalg.norm(G - self.anchor_gram)) * (1 + ANCHOR_MARGIN)  # Frobenius >= spectral
        return self.second + drift + _gram_rounding(W, sq) + ANCHOR_MARGIN * self.anchor_top

    def _reanchor(self, W: np.ndarray, G: np.ndarray, sq: float, v: np.ndarray, weight: float, beta: float) -> bool:
        """Anchor at W without the full solver where lambda_2(G) <= beta can be proven: by one
        Cholesky factorization of beta I - G + weight vv', which succeeds only if the top
        eigenvalue of G - weight vv' is below beta, and lambda_2(G) is at most that (a rank-one
        downdate interlaces). _second_bound then reads weight and v as the anchor's top pair."""
        shifted = _shifted(G, beta)
        shifted += np.outer(weight * v, v)
        _factor, info = _lapack().dpotrf(shifted, lower=1, clean=0, overwrite_a=1)
        if info != 0:
            return False
        self.anchor, self.anchor_gram, self.anchor_sq = W.copy(), G, sq
        self.anchor_vector, self.anchor_top = v, weight
        self.second = beta * (1 + ANCHOR_MARGIN) + ANCHOR_MARGIN * weight + _gram_rounding(W, sq)
        self.reanchored += 1
        return True

    def _second_bound(self, W: np.ndarray, sq: float, v: np.ndarray, u: np.ndarray) -> float:
        """An upper bound on lambda_2(W'W) from the anchor, for a unit vector v and u = Wv.

        Interlacing: lambda_2(G) <= the top eigenvalue of G compressed to v's orthogonal
        complement, |W P|_2^2 with P = I - vv'. |W P|_2 <= |W_a P|_2 + |D P|_F (D = W - W_a), where
        |W_a P|_2^2 <= lambda_2(G_a) + lambda_1(G_a) (1 - <v, v_a>^2) (or, for an anchor proven by
        _reanchor, beta + weight (1 - <v, v_a>^2)), and |D P|_F^2 = |D|_F^2 -
        |Dv|^2, with |D|_F^2 = |W|^2 + |W_a|^2 - 2 <W, W_a> (D is never formed). While the weights
        move mostly along the top direction, as they do in training, this is far tighter than
        Weyl's lambda_2(G_a) + |G - G_a|_2. Rounding: the three dot products of n terms are off
        by at most (2n + 8) eps (|W|^2 + |W_a|^2), |Dv| by (k + 4) eps (|W|_F + |W_a|_F); the
        rest is within ANCHOR_MARGIN."""
        eps = float(np.finfo(W.dtype).eps)
        k = W.shape[1]
        both = sq + self.anchor_sq
        d2 = both - 2.0 * float(np.vdot(W, self.anchor)) + (2 * W.size + 8) * eps * both  # >= |D|_F^2
        Dv = u - self.anchor @ v
        dv = math.sqrt(float(Dv @ Dv)) * (1 - 4 * k * eps) - (k + 4) * eps * (math.sqrt(sq) + math.sqrt(self.anchor_sq))
        off = max(d2 - max(dv, 0.0) ** 2, 0.0)  # >= |D P|_F^2
        c = float(v @ self.anchor_vector)
        compressed = self.second + self.anchor_top * (max(0.0, 1.0 - c * c) + 4 * eps)  # >= |W_a P|_2^2
        return (math.sqrt(compressed) + math.sqrt(off)) ** 2 * (1 + ANCHOR_MARGIN) + ANCHOR_MARGIN * self.anchor_top

    def _guess(self, step: int) -> np.ndarray:
        """The unit vector the polynomial through the kept vectors gives at ``step``."""
        nodes, vectors = self.steps, self.vectors
        if step in nodes:
            return vectors[nodes.index(step)]
        weights = []  # Lagrange's, a few Python multiplications: numpy's calls would cost more
        for i, node in enumerate(nodes):
            weight = 1.0
            for j, other in enumerate(nodes):
                if j != i:
                    weight *= (step - other) / (node - other)
            weights.append(weight)
        if self.stacked is None:
            self.stacked = np.array(vectors)
        guess = np.dot(weights, self.stacked)
        norm = math.sqrt(float(guess @ guess))
        if not (math.isfinite(norm) and norm > 0):
            return vectors[-1]
        guess /= norm
        return guess

    def _remember(self, step: int, v: np.ndarray, theta=None, rr=0.0, alpha=0.0) -> None:
        """Keep v to guess from, unless its residual says it is only just within the certificate:
        the cubic's weights (-1, 4, -6, 4) carry a kept vector's error into the next four guesses,
        and such a vector would fail them (and pass its error on)."""
        if theta is not None and not _certified(theta, rr / NODE_QUALITY, alpha):
            return
        if self.vectors:
            if v @ self.vectors[-1] < 0:
                v = -v  # an eigenvector's sign is arbitrary; the guess needs a continuous path
            if step == self.steps[-1]:  # the same step again (a run's final record): the newer vector
                del self.vectors[-1], self.steps[-1]
            elif step < self.steps[-1]:  # out of order (a run resumed from a file, a test): start over
                self.vectors, self.steps = [], []
        self.vectors.append(v)
        self.steps.append(step)
        if len(self.vectors) > GUESSES:
            del self.vectors[0], self.steps[0]
        self.stacked = None


def _gram_rounding(W: np.ndarray, sq: float) -> float:
    """How far G = W'W as computed, with a factorization's or the full solver's backward error, can
    be from the exact Gram matrix in the 2-norm: each entry is a dot product of ``rows`` terms,
    off by at most rows eps |w_i| |w_j|, and LAPACK's backward errors are ~k eps |G|; |W|_F^2
    bounds both scales."""
    rows, k = W.shape
    return (rows + 2 * k + 8) * float(np.finfo(W.dtype).eps) * sq


def _shifted(G: np.ndarray, sigma: float) -> np.ndarray:
    """sigma I - G, a new array (the factorizations overwrite it)."""
    shifted = np.negative(G)
    shifted.flat[::G.shape[0] + 1] += sigma
    return shifted


def _certified(theta: float, rr: float, alpha: float) -> bool:
    """Temple's bound puts lambda_1 within SLACK of theta, relative."""
    return rr <= SLACK * theta * (theta - alpha)


def _rayleigh(W: np.ndarray, v: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(v'Gv, |Gv - (v'Gv) v|^2, Wv) for a unit vector v and G = W'W, without forming G."""
    u = W @ v
    theta = float(u @ u)
    r = W.T @ u
    r -= theta * v
    return theta, float(r @ r), u


def _lapack():
    """scipy's LAPACK wrappers (core/blas.py), imported on first use."""
    return scipy_wrappers("lapack")
