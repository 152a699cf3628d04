"""The records of many family members at many steps at once, as array operations.

A member's record is defined by Trainer._record (core/trainer.py) and THEORY.md. Making it
member by member costs ~150 us each: 32 members recorded every step would spend more time
recording than training. This computes the same scalars, sample margins, layer norms and stable
ranks for a (K steps x S members) block in a few numpy calls and appends them to each member's
rows, so the member files are exactly what single runs would write. tests/test_family.py holds
the two to 1e-12 relative.
"""

from __future__ import annotations

import numpy as np

from . import losses
from .metrics import SUPPORT_STEPS, stable_rank
from .spectral import SMALLEST


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """metrics.unit_angle along the last axis."""
    d, s = u - v, u + v
    return 2.0 * np.arctan2(np.sqrt(np.einsum("...i,...i->...", d, d)), np.sqrt(np.einsum("...i,...i->...", s, s)))


def stable_ranks(W: np.ndarray, tops=None, steps=None, squared_norms=None) -> np.ndarray:
    """metrics.stable_rank of each matrix in a stack (K steps, S members, rows, cols); ``tops``:
    each member's spectral.TopEigenvalue for this layer, which take the matrices in step order
    (warm, ~5-20x quicker than a batched eigvalsh where the full solver is slow), at ``steps``
    (K), with ``squared_norms`` (K, S) the matrices' ||W||_F^2 where the caller has them."""
    rows, cols = W.shape[-2:]
    if min(rows, cols) == 1:
        return np.ones(W.shape[:-2])
    if tops is not None and min(rows, cols) >= SMALLEST:
        K, S = W.shape[:2]
        ranks = np.empty((K, S))
        for s, top in enumerate(tops):
            for k in range(K):
                ranks[k, s] = stable_rank(W[k, s], top, None if steps is None else int(steps[k]),
                                          None if squared_norms is None else float(squared_norms[k, s]))
        return ranks
    G = np.swapaxes(W, -1, -2) @ W if cols <= rows else W @ np.swapaxes(W, -1, -2)
    frobenius = np.trace(G, axis1=-2, axis2=-1)
    if G.shape[-1] == 2:
        a, b, d = G[..., 0, 0], G[..., 0, 1], G[..., 1, 1]
        top = 0.5 * frobenius + np.sqrt(0.25 * (a - d) ** 2 + b * b)
    else:
        top = np.linalg.eigvalsh(G)[..., -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(top > 0, frobenius / top, np.nan)


def append_records(members, valid: np.ndarray, steps, walls, theta, q, log_l, grad) -> None:
    """Append to each member the records of steps ``steps`` (K) from the arrays the batched
    engine kept: theta and grad (K, S, P), q (K, S, n), log_l (K, S) (the summed loss), walls
    (K). ``valid`` (K, S) says which records a member makes (not after it diverged)."""
    first = members[0]
    order, n, nan = first.order, first.n, np.nan
    K, S = valid.shape
    with np.errstate(all="ignore"):
        sq = np.einsum("ksp,ksp->ks", theta, theta)
        norm = np.sqrt(sq)
        abs_theta = np.abs(theta)
        norm_l1, norm_linf = abs_theta.sum(axis=2), abs_theta.max(axis=2)
        q_min = q.min(axis=2)
        log_loss = log_l - first.log_n if first.mean else log_l
        accuracy = np.count_nonzero(q > 0, axis=2) / n
        if order is not None:
            scale = np.where(norm > 0, norm ** order, nan)
            smoothed = np.array([losses.inverse_loss(first.loss_kind, v) for v in log_l.ravel().tolist()]).reshape(K, S)
            margins = [q_min / scale, smoothed / scale, np.where(norm > 0, q_min / norm_l1 ** order, nan),
                       np.where(norm > 0, q_min / norm_linf ** order, nan)]
            sample_margins = q / scale[..., None]
        else:
            margins = [np.full((K, S), nan)] * 4
            sample_margins = np.full(q.shape, nan)
        gnorm = np.sqrt(np.einsum("ksp,ksp->ks", grad, grad))
        has_u = (norm > 0) & (gnorm > 0)  # the direction is defined (else the record's angles are NaN)
        u = theta / np.where(has_u, norm, nan)[..., None]
        diff = u + grad / gnorm[..., None]
        gap = 0.5 * np.einsum("ksp,ksp->ks", diff, diff)
        ref = first.reference
        to_reference = _angle(u, ref) if ref is not None else np.full((K, S), nan)
        support = np.count_nonzero(q <= (q_min + first.support_tol * np.abs(q_min))[..., None], axis=2)
        layer_norms, ranks = [], []
        for layer, (_name, sl, shape) in enumerate(first.net.weight_slices):
            w = theta[:, :, sl]
            squared = np.einsum("ksp,ksp->ks", w, w)
            layer_norms.append(np.sqrt(squared))
            ranks.append(stable_ranks(w.reshape(K, S, *shape), [m._top_eigenvalues[layer] for m in members], steps,
                                      squared))
        layer_norms, ranks = np.stack(layer_norms, axis=2), np.stack(ranks, axis=2)
        product = np.prod(layer_norms, axis=2)  # Lyu and Li's normalization (Trainer._record)
        by_layers = np.where(product > 0, q_min / product, nan) if order is not None else np.full((K, S), nan)
        # one threshold at a time: a (K, S, 7, n) mask would be 7 times the block's margins
        counts = np.stack([np.count_nonzero(q < (q_min + t)[..., None], axis=2) for t in SUPPORT_STEPS], axis=2)
        # the direction change: each record against the one before it (a member's first record here
        # against its last direction); an undefined direction (NaN) makes the angle NaN either side
        previous = np.stack([np.full(theta.shape[2], nan) if m._previous_direction is None else m._previous_direction
                             for m in members])
        before = np.concatenate([previous[None], u[:-1]], axis=0)
        change = _angle(u, before)
    for s, member in enumerate(members):
        rows = np.flatnonzero(valid[:, s])  # a prefix: a member's records end where it diverged
        if not len(rows):
            continue
        last = rows[-1]
        member._previous_direction = u[last, s].copy() if has_u[last, s] else None
        table = np.column_stack([steps[rows], walls[rows], log_loss[rows, s], accuracy[rows, s], q_min[rows, s],
                                 norm[rows, s], norm_l1[rows, s], norm_linf[rows, s],
                                 *[m[rows, s] for m in margins], 1.0 - gap[rows, s], gap[rows, s], change[rows, s],
                                 to_reference[rows, s], support[rows, s], by_layers[rows, s]])
        member._rows.extend(map(tuple, table.tolist()))
        member._sample_rows.extend(sample_margins[rows, s])
        member._layer_rows.extend(zip(layer_norms[rows, s].tolist(), ranks[rows, s].tolist()))
        member._support_rows.extend(counts[rows, s])
        member._last_recorded = int(steps[last])
        member._wall = float(walls[last])


class PendingRecords:
    """A single run's records deferred by its step loop (Trainer.run), copied once into buffers
    of the (K steps, 1 member) shapes append_records takes, and made together when full or when
    the chunk ends."""

    def __init__(self, capacity: int, size: int, n: int, dtype):
        self.capacity, self.count = capacity, 0
        self._shapes = (capacity, size, n, dtype)
        self.steps = None  # the buffers come with the first record: a family's members never use them

    def _allocate(self) -> None:
        capacity, size, n, dtype = self._shapes
        self.steps = np.empty(capacity, dtype=np.int64)
        self.walls = np.empty(capacity)
        self.log_l = np.empty((capacity, 1))
        self.theta = np.empty((capacity, 1, size), dtype=dtype)
        self.q = np.empty((capacity, 1, n), dtype=dtype)
        self.grad = np.empty((capacity, 1, size), dtype=dtype)

    def add(self, step, wall, theta, q, log_l, grad) -> bool:
        """Keep one step's quantities; True once the buffers are full."""
        if self.steps is None:
            self._allocate()
        i = self.count
        self.steps[i], self.walls[i], self.log_l[i, 0] = step, wall, log_l
        self.theta[i, 0], self.q[i, 0], self.grad[i, 0] = theta, q, grad
        self.count = i + 1
        return self.count == self.capacity

    def flush(self, member) -> None:
        """Append the kept steps' records to ``member`` (a Trainer) and empty the buffers."""
        k, self.count = self.count, 0
        append_records([member], np.ones((k, 1), dtype=bool), self.steps[:k], self.walls[:k], self.theta[:k],
                       self.q[:k], self.log_l[:k], self.grad[:k])
