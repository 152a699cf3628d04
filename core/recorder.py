"""The recorder: every record of every run, made from a StepBlock (core/step_block.py) for a
block of K steps of S members at once (K = 1 and S = 1 included), as array operations.

A record is defined by THEORY.md (Quantities) and core/metrics.py: the scalars, each sample's
normalized margin, the layers' norms and stable ranks (with a warm TopEigenvalue per member and
layer), Lyu and Li's support counts, the ensemble shares, and the direction change against the
member's previous record, and, where the dataset has a test set, the test metrics
(core/metrics.py TEST_METRICS: one forward of the host network over X_test per record, the
metrics then made for the block's records at once). Made one by one a record costs ~30 small numpy calls (~150 us): 32
members recorded every step would spend more time recording than training. The recorder holds
each member's rows until the driver drains them into a chunk; nothing else reaches into it.
"""

from __future__ import annotations

import math

import numpy as np

from . import losses, multiclass
from .metrics import RATE_SCALARS, SUPPORT_DECADES, SUPPORT_STEPS, TEST_QUANTILES, TEST_SCALARS, stable_rank
from .spectral import SMALLEST, TopEigenvalue
from .step_block import StepBlock

SCALARS = ("step", "wall_time", "log_loss", "accuracy", "q_min", "param_norm", "param_norm_l1",
           "param_norm_linf", "normalized_margin", "smoothed_margin", "normalized_margin_l1",
           "normalized_margin_linf", "alignment", "alignment_gap", "direction_change", "angle_to_reference",
           "support_vectors", "normalized_margin_layers")


def angles(u: np.ndarray, v: np.ndarray) -> np.ndarray:
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


def multiclass_test_margins(kind: str, outputs: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray]:
    """(q, log l) of R records' C outputs (R, m, C) on m test samples: the margins q_i (R, m) and
    each sample's log loss log l(z_i) (core/multiclass.py: l_i of C classes is the binary loss
    of the soft margin z_i)."""
    labels = np.asarray(labels).astype(np.intp)
    q = np.stack([multiclass.sample_margins(f, labels) for f in outputs])
    z = np.stack([multiclass.soft_margins(f, labels)[0] for f in outputs])
    return q, losses.log_sample_losses(kind, z)


class _Rows:
    """One member's records since the last drain, and what its next record compares against."""

    def __init__(self, layers: int):
        self.scalars: list = []  # one tuple of SCALARS per record
        self.samples: list = []
        self.layers: list = []
        self.support: list = []
        self.shares: list = []
        self.tests: list = []  # one row of TEST_SCALARS and the quantiles per record (test set only)
        self.rates: list = []  # (alpha, taken) per record (the loss_based step rule only)
        self.previous_direction = None
        self.last_step = -1
        self.tops = [TopEigenvalue() for _ in range(layers)]


class Recorder:
    """Records of S members trained on data X, y with the host network ``net`` (weight slices,
    and the ensembles' member outputs for their shares), and the test set X_test, y_test (labels
    +-1; None: the records have no test metrics)."""

    def __init__(self, net, X, y, loss_kind: str, mean: bool, order: float | None, reference, support_tol: float,
                 members: int, X_test=None, y_test=None):
        self.net, self.X, self.y = net, X, y
        self.X_test = None if X_test is None else np.ascontiguousarray(X_test, dtype=X.dtype)
        self.y_test = None if y_test is None else np.asarray(y_test, dtype=np.float64)
        self.loss_kind, self.mean, self.order = loss_kind, mean, order
        self.n = len(y)
        self.log_n = math.log(self.n)
        self.reference, self.support_tol = reference, support_tol
        self.members = [_Rows(len(net.weight_slices)) for _ in range(members)]
        # the loss_based step rule's alpha and step_taken per record (core/step_rule.py LossBasedRate);
        # a block without them (none was given) records NaN there
        self.rates = False

    def use_exact_ranks(self) -> None:
        """Every stable rank from here by the full symmetric eigensolver instead of the warm
        TopEigenvalue (the spectral tests' reference)."""
        for member in self.members:
            member.tops = [None] * len(member.tops)

    def top_eigenvalues(self, s: int) -> list:
        """Member s's warm solver of each layer (spectral.TopEigenvalue; None where exact)."""
        return list(self.members[s].tops)

    def last_step(self, s: int) -> int:
        """The step of member s's last record (-1: none yet)."""
        return self.members[s].last_step

    def record(self, block: StepBlock, valid: np.ndarray, wall_offset: float = 0.0) -> None:
        """The records of ``block``'s steps, member s at row k where ``valid[k, s]`` (a prefix of
        the rows per member: its records end where it failed); wall_time = wall_offset + walls."""
        if not valid.any():
            return
        rows_of = [np.flatnonzero(valid[:, s]) for s in range(valid.shape[1])]
        used = np.flatnonzero(valid.any(axis=1))
        if len(used) < valid.shape[0]:  # rows no member records (snapshots alone): left out of the arithmetic
            block_rows = used
            valid = valid[used]
            rows_of = [np.flatnonzero(valid[:, s]) for s in range(valid.shape[1])]
        else:
            block_rows = slice(None)
        steps = block.steps[block_rows]
        walls = wall_offset + block.walls[block_rows]
        theta, q, log_l, grad = (block.theta[block_rows], block.q[block_rows], block.log_l[block_rows],
                                 block.grad[block_rows])
        self._record(steps, walls, theta, q, log_l, grad, rows_of)
        if self.rates:
            nan = np.full(log_l.shape, np.nan)
            alpha = nan if block.alpha is None else block.alpha[block_rows]
            taken = nan if block.taken is None else block.taken[block_rows]
            for s, rows in enumerate(rows_of):
                self.members[s].rates.extend(zip(alpha[rows, s].tolist(), taken[rows, s].tolist()))

    def _record(self, steps, walls, theta, q, log_l, grad, rows_of) -> None:
        order, n, nan = self.order, self.n, np.nan
        K, S = log_l.shape
        members = self.members
        with np.errstate(all="ignore"):
            sq = np.einsum("ksp,ksp->ks", theta, theta)
            norm = np.sqrt(sq)
            abs_theta = np.abs(theta)
            norm_l1, norm_linf = abs_theta.sum(axis=2), abs_theta.max(axis=2)
            q_min = q.min(axis=2)
            log_loss = log_l - self.log_n if self.mean else log_l
            accuracy = np.count_nonzero(q > 0, axis=2) / n
            if order is not None:
                scale = np.where(norm > 0, norm ** order, nan)
                smoothed = np.array([losses.inverse_loss(self.loss_kind, v) if math.isfinite(v) else nan
                                     for v in log_l.ravel().tolist()]).reshape(K, S)
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
            gap = 0.5 * np.einsum("ksp,ksp->ks", diff, diff)  # 1 - cos without cancellation
            ref = self.reference
            to_reference = angles(u, ref) if ref is not None else np.full((K, S), nan)
            support = np.count_nonzero(q <= (q_min + self.support_tol * np.abs(q_min))[..., None], axis=2)
            layer_norms, ranks = [], []
            for layer, (_name, sl, shape) in enumerate(self.net.weight_slices):
                w = theta[:, :, sl]
                squared = np.einsum("ksp,ksp->ks", w, w)
                layer_norms.append(np.sqrt(squared))
                tops = [m.tops[layer] for m in members]
                ranks.append(self._ranks(w.reshape(K, S, *shape), tops, steps, squared, rows_of))
            layer_norms, ranks = np.stack(layer_norms, axis=2), np.stack(ranks, axis=2)
            product = np.prod(layer_norms, axis=2)  # Lyu and Li's normalization
            by_layers = np.where(product > 0, q_min / product, nan) if order is not None else np.full((K, S), nan)
            # one threshold at a time: a (K, S, 7, n) mask would be 7 times the block's margins
            counts = np.stack([np.count_nonzero(q < (q_min + t)[..., None], axis=2) for t in SUPPORT_STEPS], axis=2)
            # the direction change: each record against the one before it (a member's first record here
            # against its last direction); an undefined direction (NaN) makes the angle NaN either side
            previous = np.stack([np.full(theta.shape[2], nan) if m.previous_direction is None else m.previous_direction
                                 for m in members])
            before = np.concatenate([previous[None], u[:-1]], axis=0)
            change = angles(u, before)
        for s, member in enumerate(members):
            rows = rows_of[s]
            if not len(rows):
                continue
            last = rows[-1]
            member.previous_direction = u[last, s].copy() if has_u[last, s] else None
            table = np.column_stack([steps[rows], walls[rows], log_loss[rows, s], accuracy[rows, s], q_min[rows, s],
                                     norm[rows, s], norm_l1[rows, s], norm_linf[rows, s],
                                     *[m[rows, s] for m in margins], 1.0 - gap[rows, s], gap[rows, s],
                                     change[rows, s], to_reference[rows, s], support[rows, s], by_layers[rows, s]])
            member.scalars.extend(map(tuple, table.tolist()))
            member.samples.extend(sample_margins[rows, s])
            member.layers.extend(zip(layer_norms[rows, s].tolist(), ranks[rows, s].tolist()))
            member.support.extend(counts[rows, s])
            member.last_step = int(steps[last])
            if self.net.ensembles:  # the shares need each record's forward
                for k in rows:
                    member.shares.append(self._shares(theta[k, s]))
            if self.X_test is not None:
                member.tests.extend(self._tests(theta[rows, s], norm[rows, s]))

    @staticmethod
    def _ranks(W, tops, steps, squared, rows_of):
        """stable_ranks; the warm solvers see only the rows their member records (in step order)."""
        if any(t is None for t in tops):
            return stable_ranks(W)
        if all(len(rows) == W.shape[0] for rows in rows_of):
            return stable_ranks(W, tops, steps, squared)
        ranks = np.full(W.shape[:2], np.nan)
        for s, rows in enumerate(rows_of):
            if len(rows):
                ranks[rows, s] = stable_ranks(W[rows, s:s + 1], [tops[s]], steps[rows], squared[rows, s:s + 1])[:, 0]
        return ranks

    def _shares(self, theta) -> np.ndarray:
        self.net.outputs(theta, self.X)
        sizes = np.array([float(np.linalg.norm(m)) for m in self.net.member_outputs()])
        total = sizes.sum()
        return sizes / total if total > 0 else np.full(len(sizes), np.nan)

    def _tests(self, theta, norm) -> np.ndarray:
        """The test metrics (core/metrics.py TEST_METRICS) of R records of one member, (R, 4 +
        quantiles): one forward over X_test per record, then the metrics of all R at once (the
        arithmetic of core/multiclass.test_metrics, binary, row by row)."""
        R, m = theta.shape[0], self.y_test.shape[0]
        outputs = None
        for r in range(R):
            f = self.net.outputs(theta[r], self.X_test)
            if outputs is None:
                outputs = np.empty((R,) + f.shape)  # (R, m), or (R, m, C) for C outputs
            outputs[r] = f
        with np.errstate(all="ignore"):
            if outputs.ndim == 2:
                q = self.y_test * outputs
                log_l = losses.log_sample_losses(self.loss_kind, q)  # log l(q_i), the mean's log by log-sum-exp
            else:  # C outputs: q_i = f_{y_i} - max_{j != y_i} f_j, l_i = l(z_i) of the soft margin z_i
                q, log_l = multiclass_test_margins(self.loss_kind, outputs, self.y_test)
            top = log_l.max(axis=1)
            safe = np.where(np.isfinite(top), top, 0.0)
            log_mean = safe + np.log(np.exp(log_l - safe[:, None]).sum(axis=1)) - math.log(m)
            log_mean = np.where(np.isfinite(top), log_mean, top)
            scale = (np.asarray(norm, dtype=np.float64) ** self.order if self.order is not None
                     else np.full(R, np.nan))
            ordered = np.sort(q / scale[:, None], axis=1)  # NaN (no order) sorts last: the row stays NaN below
            # the quantiles by numpy's linear interpolation, from one sort (np.quantile's per-call cost was 3x)
            at = np.asarray(TEST_QUANTILES) * (m - 1)
            lo = np.floor(at).astype(np.intp)
            hi = np.minimum(lo + 1, m - 1)
            quantiles = ordered[:, lo] + (at - lo) * (ordered[:, hi] - ordered[:, lo])  # (R, 5)
            if self.order is None:
                quantiles[:] = np.nan
            return np.column_stack([np.count_nonzero(q > 0, axis=1) / m, log_mean, ordered[:, 0],
                                    np.count_nonzero(q < 0, axis=1) / m, quantiles])

    def drain(self, s: int) -> dict:
        """Member s's records since the last drain: name -> array, one row per record."""
        member = self.members[s]
        records = {}
        if member.scalars:
            table = np.array(member.scalars, dtype=np.float64)
            for i, name in enumerate(SCALARS):
                records[name] = table[:, i].astype(np.int64) if name in ("step", "support_vectors") else table[:, i].copy()
            records["sample_margins"] = np.array(member.samples, dtype=np.float64)
            records["layer_norms"] = np.array([r[0] for r in member.layers], dtype=np.float64)
            records["stable_rank"] = np.array([r[1] for r in member.layers], dtype=np.float64)
            if member.shares:
                records["ensemble_share"] = np.array(member.shares, dtype=np.float64)
            records["support_counts"] = np.array(member.support, dtype=np.float64).reshape(-1, SUPPORT_DECADES)
            if member.tests:
                tests = np.array(member.tests, dtype=np.float64)
                for i, name in enumerate(TEST_SCALARS):
                    records[name] = tests[:, i].copy()
                records["test_margin_quantiles"] = tests[:, len(TEST_SCALARS):].copy()
            if member.rates:
                rates = np.array(member.rates, dtype=np.float64)
                for i, name in enumerate(RATE_SCALARS):
                    records[name] = rates[:, i].copy()
        member.rates = []
        member.scalars, member.samples, member.layers, member.support, member.shares = [], [], [], [], []
        member.tests = []
        return records
