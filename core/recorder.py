"""The recorder: every record of every run, made from a StepBlock (core/step_block.py) for a
block of K steps of S members at once (K = 1 and S = 1 included), as array operations.

A record is defined by THEORY.md (Quantities) and core/metrics.py: the scalars, each sample's
normalized margin, the layers' norms and stable ranks (with a warm TopEigenvalue per member and
layer), Lyu and Li's support counts, the ensemble shares, and the direction change against the
member's previous record, and, where the dataset has a test set, the test metrics
(core/metrics.py TEST_METRICS: one forward over X_test per record, the metrics then made for
the block's records at once). Made one by one a record costs ~30 small numpy calls (~150 us): 32
members recorded every step would spend more time recording than training. The arithmetic is
core/batched_records.py's, written once for numpy and torch: where the batched engine left a
block on its device (StepBlock.device) the records are made there, for all S members at once,
and only what they keep comes back. The recorder holds each member's rows until the driver
drains them into a chunk; nothing else reaches into it.
"""

from __future__ import annotations

import math

import numpy as np

from .batched_records import NUMPY, RecordSetting, block_quantities, exact_stable_ranks, test_quantities
from .metrics import RATE_SCALARS, SUPPORT_DECADES, TEST_SCALARS, stable_rank
from .spectral import SMALLEST, TopEigenvalue
from .step_block import StepBlock

SCALARS = ("step", "wall_time", "log_loss", "accuracy", "q_min", "param_norm", "param_norm_l1",
           "param_norm_linf", "normalized_margin", "smoothed_margin", "normalized_margin_l1",
           "normalized_margin_linf", "alignment", "alignment_gap", "direction_change", "angle_to_reference",
           "support_vectors", "normalized_margin_layers")


def stable_ranks(W, tops=None, steps=None, squared_norms=None, ops=NUMPY) -> np.ndarray:
    """metrics.stable_rank of each matrix in a stack (K steps, S members, rows, cols); ``tops``:
    each member's spectral.TopEigenvalue for this layer, which take the matrices in step order
    (warm, ~5-20x quicker than a batched eigvalsh where the full solver is slow), at ``steps``
    (K), with ``squared_norms`` (K, S) the matrices' ||W||_F^2 where the caller has them; W in
    ``ops``'s library (core/batched_records.py; the warm solvers' weights are read back to the host)."""
    rows, cols = W.shape[-2:]
    if tops is not None and min(rows, cols) >= SMALLEST:
        K, S = W.shape[:2]
        W, squared_norms = ops.to_host(W), None if squared_norms is None else ops.to_host(squared_norms)
        ranks = np.empty((K, S))
        for s, top in enumerate(tops):
            for k in range(K):
                ranks[k, s] = stable_rank(W[k, s], top, None if steps is None else int(steps[k]),
                                          None if squared_norms is None else float(squared_norms[k, s]))
        return ranks
    with np.errstate(divide="ignore", invalid="ignore"):
        return ops.to_host(exact_stable_ranks(W, ops))


class _Rows:
    """One member's records since the last drain, and what its next record compares against."""

    def __init__(self, layers: int):
        # per block, the member's rows as arrays (a row per record), joined when drained
        self.scalars: list = []  # (R, SCALARS)
        self.samples: list = []
        self.layers: list = []  # (norms, stable ranks), each (R, layers)
        self.support: list = []
        self.shares: list = []  # one row per record
        self.tests: list = []  # (R, TEST_SCALARS and the quantiles) (test set only)
        self.rates: list = []  # (R, 2): alpha and taken (the loss_based step rule only)
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
        self.setting = RecordSetting(loss_kind, mean, order, reference, support_tol, net.weight_slices, self.log_n)
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
        # the engine's tensors where it left them on its device (core/batched_records.py), else the block's arrays
        source = block if block.device is None else block.device
        theta, q, log_l, grad = (source.theta[block_rows], source.q[block_rows], source.log_l[block_rows],
                                 source.grad[block_rows])
        if block.device is None:
            self._record(steps, walls, theta, q, log_l, grad, rows_of)
        else:
            self._record(steps, walls, theta, q, log_l, grad, rows_of, block.device.ops, block.device.outputs)
        if self.rates:  # alpha and taken are the host's (K, S) arrays, whatever the device
            K, S = len(steps), len(rows_of)
            alpha, taken = (np.full((K, S), np.nan) if a is None else np.asarray(a, dtype=np.float64)[block_rows]
                            for a in (block.alpha, block.taken))
            for s, rows in enumerate(rows_of):
                if len(rows):
                    self.members[s].rates.append(np.column_stack([alpha[rows, s], taken[rows, s]]))

    def _record(self, steps, walls, theta, q, log_l, grad, rows_of, ops=NUMPY, outputs=None) -> None:
        """The block's records, made in ``ops``'s library (core/batched_records.py: numpy, or torch
        on the engine's device with its forward ``outputs`` for the test set); the members' rows
        then taken on the host."""
        K, S = log_l.shape
        members = self.members
        previous = np.stack([np.full(theta.shape[2], np.nan) if m.previous_direction is None else m.previous_direction
                             for m in members])
        with np.errstate(all="ignore"):
            r = block_quantities(ops, self.setting, theta, q, log_l, grad, ops.asarray(previous))
            ranks = np.stack([self._ranks(w, [m.tops[layer] for m in members], steps, squared, rows_of, ops)
                              for layer, (w, squared) in enumerate(r["weights"])], axis=2)
            tests = None if self.X_test is None else self._tests(theta, r["norm"], rows_of, ops, outputs)
        host = {name: ops.to_host(r[name]) for name in ("norm", "norm_l1", "norm_linf", "q_min", "log_loss", "accuracy",
                                                        "gap", "has_u", "change", "to_reference", "support",
                                                        "by_layers", "sample_margins", "layer_norms", "counts")}
        margins = [ops.to_host(m) for m in r["margins"]]
        recorded = np.array([s for s in range(S) if len(rows_of[s])], dtype=np.intp)
        lasts = np.array([rows_of[s][-1] for s in recorded], dtype=np.intp)
        last_directions = ops.to_host(r["u"][ops.asarray(lasts), ops.asarray(recorded)])  # one read-back
        columns = [np.broadcast_to(steps[:, None], (K, S)), np.broadcast_to(walls[:, None], (K, S)),
                   *[host[name] for name in ("log_loss", "accuracy", "q_min", "norm", "norm_l1", "norm_linf")],
                   *margins, 1.0 - host["gap"], *[host[name] for name in ("gap", "change", "to_reference", "support",
                                                                          "by_layers")]]
        table = np.stack(columns, axis=2).astype(np.float64, copy=False)  # (K, S, SCALARS): every member's rows
        theta_host = None
        for i, s in enumerate(recorded.tolist()):
            rows, last = rows_of[s], lasts[i]
            member = members[s]
            member.previous_direction = last_directions[i].copy() if host["has_u"][last, s] else None
            at = slice(None) if len(rows) == K else rows  # a member's rows: all of the block's, or a prefix
            member.scalars.append(table[at, s])
            member.samples.append(host["sample_margins"][at, s])
            member.layers.append((host["layer_norms"][at, s], ranks[at, s]))
            member.support.append(host["counts"][at, s])
            member.last_step = int(steps[last])
            if self.net.ensembles:  # the shares need each record's forward on the host
                if theta_host is None:
                    theta_host = ops.to_host(theta)
                for k in rows:
                    member.shares.append(self._shares(theta_host[k, s]))
            if tests is not None:
                member.tests.append(tests[at, s])

    @staticmethod
    def _ranks(W, tops, steps, squared, rows_of, ops=NUMPY):
        """stable_ranks; the warm solvers see only the rows their member records (in step order)."""
        if any(t is None for t in tops):
            return stable_ranks(W, ops=ops)
        if all(len(rows) == W.shape[0] for rows in rows_of):
            return stable_ranks(W, tops, steps, squared, ops)
        ranks = np.full(W.shape[:2], np.nan)
        for s, rows in enumerate(rows_of):
            if len(rows):
                ranks[rows, s] = stable_ranks(W[rows, s:s + 1], [tops[s]], steps[rows], squared[rows, s:s + 1], ops)[:, 0]
        return ranks

    def _shares(self, theta) -> np.ndarray:
        self.net.outputs(theta, self.X)
        sizes = np.array([float(np.linalg.norm(m)) for m in self.net.member_outputs()])
        total = sizes.sum()
        return sizes / total if total > 0 else np.full(len(sizes), np.nan)

    def _tests(self, theta, norm, rows_of, ops=NUMPY, outputs=None) -> np.ndarray:
        """The test metrics (core/metrics.py TEST_METRICS) of the block, (K, S, 4 + quantiles) on
        the host: the forward over X_test of every recorded (k, s), by the host network one record
        at a time, or by ``outputs`` (the engine's, on its device) a step of all S at once; then the
        metrics of the whole block at once (batched_records.test_quantities)."""
        K, S, P = theta.shape
        if outputs is None:
            f = None
            for s, rows in enumerate(rows_of):
                for k in rows:
                    out = self.net.outputs(theta[k, s], self.X_test)
                    if f is None:
                        f = np.full((K, S) + out.shape, np.nan)  # (K, S, m), or (K, S, m, C) for C outputs
                    f[k, s] = out
        else:
            f = ops.xp.stack([outputs(theta[k], self.X_test) for k in range(K)])
        return ops.to_host(test_quantities(ops, self.loss_kind, f, self.y_test, norm, self.order))

    def drain(self, s: int) -> dict:
        """Member s's records since the last drain: name -> array, one row per record."""
        member = self.members[s]
        records = {}
        if member.scalars:
            table = np.concatenate(member.scalars).astype(np.float64, copy=False)
            for i, name in enumerate(SCALARS):
                records[name] = table[:, i].astype(np.int64) if name in ("step", "support_vectors") else table[:, i].copy()
            records["sample_margins"] = np.concatenate(member.samples).astype(np.float64)
            records["layer_norms"] = np.concatenate([r[0] for r in member.layers]).astype(np.float64)
            records["stable_rank"] = np.concatenate([r[1] for r in member.layers]).astype(np.float64)
            if member.shares:
                records["ensemble_share"] = np.array(member.shares, dtype=np.float64)
            records["support_counts"] = np.concatenate(member.support).astype(np.float64).reshape(-1, SUPPORT_DECADES)
            if member.tests:
                tests = np.concatenate(member.tests).astype(np.float64)
                for i, name in enumerate(TEST_SCALARS):
                    records[name] = tests[:, i].copy()
                records["test_margin_quantiles"] = tests[:, len(TEST_SCALARS):].copy()
            if member.rates:
                rates = np.concatenate(member.rates)
                for i, name in enumerate(RATE_SCALARS):
                    records[name] = rates[:, i].copy()
        member.rates = []
        member.scalars, member.samples, member.layers, member.support, member.shares = [], [], [], [], []
        member.tests = []
        return records
