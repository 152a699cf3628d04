"""The arithmetic of a block of records (K steps of S members), written once for numpy and torch.

The recorder (core/recorder.py) makes every record of every run from it. Where an engine left
a block's quantities on its device (the batched engine, core/engines/batched_engine.py: a
family's parameters, margins and gradients as torch tensors on the CPU or a GPU), the same
formulas run there on the whole block at once, and only what a record keeps comes back to the
host: the (K, S) scalars, the samples' normalized margins, the layers' norms, the test metrics
and each member's last direction; the parameters and gradients never do (a family of 1,024 on
a GPU read them back and recorded member by member: issue #22). Where the numpy arrays are the
block (every CPU engine, a family's final record), the same formulas run in numpy.

What stays on the host, member by member, either way: the warm top eigenvalue of each layer of
at least spectral.SMALLEST on its smaller side (spectral.TopEigenvalue: sequential per member,
certified to ~1e-13; those layers' weights are read back), the ensembles' shares (a host forward
per record) and the snapshots (KKT residual, Euler defect, health checks: the driver's).

``ops`` below is NUMPY or a TorchOps: the few calls in which numpy and torch differ; everything
else is the library module itself (``ops.xp``), whose names the two share (where, sqrt, einsum, ...).
Definitions: THEORY.md (Quantities), core/metrics.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import losses, multiclass
from .metrics import SUPPORT_STEPS, TEST_QUANTILES


class NumpyOps:
    """numpy's forms of the calls numpy and torch spell differently."""

    xp = np

    @staticmethod
    def asarray(a):
        return np.asarray(a)

    @staticmethod
    def to_host(a) -> np.ndarray:
        return np.asarray(a)

    @staticmethod
    def full(shape, value):
        return np.full(shape, value)

    @staticmethod
    def count(mask, axis):
        """How many are True along ``axis``, as float64 (a rate or a count in a record)."""
        return np.count_nonzero(mask, axis=axis).astype(np.float64)

    @staticmethod
    def dot(a, b):
        """<a, b> along the last axis."""
        return np.einsum("...i,...i->...", a, b)

    @staticmethod
    def sort(a, axis):
        return np.sort(a, axis=axis)

    @staticmethod
    def gram(W):
        """W'W or WW', the smaller, of each matrix in a stack."""
        rows, cols = W.shape[-2:]
        return np.swapaxes(W, -1, -2) @ W if cols <= rows else W @ np.swapaxes(W, -1, -2)


NUMPY = NumpyOps()


class TorchOps:
    """torch's forms, on ``device``; ``to_host`` is the one read-back."""

    def __init__(self, torch, device):
        self.xp, self.device = torch, device

    def asarray(self, a):
        return self.xp.as_tensor(a, device=self.device)

    @staticmethod
    def to_host(a) -> np.ndarray:
        return a.detach().cpu().numpy()

    def full(self, shape, value):
        return self.xp.full(shape, value, dtype=self.xp.float64, device=self.device)

    def count(self, mask, axis):
        return mask.sum(dim=axis, dtype=self.xp.float64)  # count_nonzero: 1.5-3x slower on the CPU

    def dot(self, a, b):
        return self.xp.linalg.vecdot(a, b)  # einsum's batched products: 7x slower on the CPU

    def sort(self, a, axis):
        return self.xp.sort(a, dim=axis).values

    @staticmethod
    def gram(W):
        rows, cols = W.shape[-2:]
        return W.transpose(-1, -2) @ W if cols <= rows else W @ W.transpose(-1, -2)


@dataclass
class DeviceBlock:
    """A StepBlock's kept quantities where the engine left them, as tensors on its device (the
    same shapes as StepBlock's theta, q, log_l, grad), and the engine's forward for the test set:
    ``outputs(theta, X)`` -> f(theta_r; X) (R, m) for parameters theta (R, P) on the device."""

    ops: TorchOps
    theta: object
    q: object
    log_l: object
    grad: object
    outputs: object


def angles(u, v, ops=NUMPY):
    """metrics.unit_angle along the last axis."""
    d, s = u - v, u + v
    return 2.0 * ops.xp.arctan2(ops.xp.sqrt(ops.dot(d, d)), ops.xp.sqrt(ops.dot(s, s)))


def exact_stable_ranks(W, ops=NUMPY):
    """metrics.stable_rank of each matrix in a stack (..., rows, cols) by the full symmetric
    eigensolver (a closed form for a 2 x 2 Gram matrix); 1 for a vector."""
    xp = ops.xp
    rows, cols = W.shape[-2:]
    if min(rows, cols) == 1:
        return ops.full(W.shape[:-2], 1.0)
    G = ops.gram(W)
    frobenius = G.diagonal(0, -2, -1).sum(-1)
    if G.shape[-1] == 2:
        a, b, d = G[..., 0, 0], G[..., 0, 1], G[..., 1, 1]
        top = 0.5 * frobenius + xp.sqrt(0.25 * (a - d) ** 2 + b * b)
    else:
        top = xp.linalg.eigvalsh(G)[..., -1]
    return xp.where(top > 0, frobenius / top, math.nan)


@dataclass
class RecordSetting:
    """What a record needs besides the block: the loss, the homogeneity order M (None: none), the
    reference direction (linear models; None), the support tolerance, the weight matrices'
    (name, slice, shape) in the parameter vector, and log n."""

    loss_kind: str
    mean: bool
    order: float | None
    reference: object
    support_tol: float
    weight_slices: list
    log_n: float


def block_quantities(ops, setting: RecordSetting, theta, q, log_l, grad, previous) -> dict:
    """The records' quantities of a block, every (k, s) at once, from theta, grad (K, S, P), q
    (K, S, n), log L (K, S, summed) and each member's previous direction (S, P; NaN: none):
    name -> array in the block's library. Rows the caller does not record may hold anything."""
    xp, order, nan = ops.xp, setting.order, math.nan
    K, S = log_l.shape
    n = q.shape[2]
    sq = ops.dot(theta, theta)
    norm = xp.sqrt(sq)
    abs_theta = xp.abs(theta)
    norm_l1, norm_linf = abs_theta.sum(axis=2), xp.amax(abs_theta, axis=2)
    q_min = xp.amin(q, axis=2)
    out = {"norm": norm, "norm_l1": norm_l1, "norm_linf": norm_linf, "q_min": q_min,
           "log_loss": log_l - setting.log_n if setting.mean else log_l, "accuracy": ops.count(q > 0, 2) / n}
    if order is not None:
        scale = xp.where(norm > 0, norm ** order, nan)
        smoothed = losses.inverse_losses(setting.loss_kind, log_l, xp)
        out["margins"] = [q_min / scale, smoothed / scale, xp.where(norm > 0, q_min / norm_l1 ** order, nan),
                          xp.where(norm > 0, q_min / norm_linf ** order, nan)]
        out["sample_margins"] = q / scale[..., None]
    else:
        out["margins"] = [ops.full((K, S), nan)] * 4
        out["sample_margins"] = ops.full(tuple(q.shape), nan)
    gnorm = xp.sqrt(ops.dot(grad, grad))
    has_u = (norm > 0) & (gnorm > 0)  # the direction is defined (else the record's angles are NaN)
    u = theta / xp.where(has_u, norm, nan)[..., None]
    diff = u + grad / gnorm[..., None]
    out["gap"] = 0.5 * ops.dot(diff, diff)  # 1 - cos without cancellation
    out["u"], out["has_u"] = u, has_u
    ref = setting.reference
    out["to_reference"] = angles(u, ops.asarray(ref), ops) if ref is not None else ops.full((K, S), nan)
    out["support"] = ops.count(q <= (q_min + setting.support_tol * xp.abs(q_min))[..., None], 2)
    weights, layer_norms = [], []
    for _name, sl, shape in setting.weight_slices:
        w = theta[:, :, sl]
        squared = ops.dot(w, w)
        layer_norms.append(xp.sqrt(squared))
        weights.append((w.reshape(K, S, *shape), squared))
    out["weights"] = weights  # each layer's matrices and ||W||_F^2, for the stable ranks
    out["layer_norms"] = layer_norms = xp.stack(layer_norms, axis=2)
    product = xp.prod(layer_norms, axis=2)  # Lyu and Li's normalization
    out["by_layers"] = xp.where(product > 0, q_min / product, nan) if order is not None else ops.full((K, S), nan)
    # one threshold at a time: a (K, S, 7, n) mask would be 7 times the block's margins
    out["counts"] = xp.stack([ops.count(q < (q_min + t)[..., None], 2) for t in SUPPORT_STEPS], axis=2)
    # the direction change: each record against the one before it (a member's first record here
    # against its last direction); an undefined direction (NaN) makes the angle NaN either side
    before = xp.concatenate([previous[None], u[:-1]], axis=0)
    out["change"] = angles(u, before, ops)
    return out


def test_margins(ops, loss_kind: str, f, y, lead: int):
    """(q, log l) of the test outputs f on m test samples after ``lead`` leading axes: the margins
    q_i and each sample's log loss, (..., m) each. One output (f (..., m), y +-1): q = y f, l(q).
    C outputs (f (..., m, C), y the classes 0..C-1; numpy only: the batched engine, the one that
    leaves a block on its device, has a scalar output): q_i = f_{y_i} - max_{j != y_i} f_j and
    l_i the binary loss of the soft margin z_i (core/multiclass.py)."""
    if f.ndim == lead + 1:
        q = ops.asarray(y) * f
        return q, losses.log_sample_losses(loss_kind, q, ops.xp)
    if ops.xp is not np:
        raise NotImplementedError("the test metrics of C outputs are made on the host (numpy) only")
    shape, classes = f.shape[:-1], f.shape[-1]
    labels = np.tile(np.asarray(y).astype(np.intp), int(np.prod(shape[:-1], dtype=np.int64)))
    flat = f.reshape(-1, classes)  # every (record, sample) a row: the margins are per sample
    q = multiclass.sample_margins(flat, labels).reshape(shape)
    z = multiclass.soft_margins(flat, labels)[0].reshape(shape)
    return q, losses.log_sample_losses(loss_kind, z)


def test_quantities(ops, loss_kind: str, f, y, norm, order: float | None):
    """The test metrics (core/metrics.py TEST_METRICS) from the test outputs f = f(X_test)
    (..., m), or (..., m, C) for C outputs, the test labels y (m,) and the parameters' norms (...):
    (..., 4 + quantiles), the columns TEST_SCALARS then TEST_QUANTILES (the arithmetic of
    core/multiclass.test_metrics)."""
    xp = ops.xp
    q, log_l = test_margins(ops, loss_kind, f, y, norm.ndim)  # log l_i; the mean's log by log-sum-exp
    m = q.shape[-1]
    top = xp.amax(log_l, axis=-1)
    finite = xp.isfinite(top)
    safe = xp.where(finite, top, 0.0)
    log_mean = safe + xp.log(xp.exp(log_l - safe[..., None]).sum(axis=-1)) - math.log(m)
    log_mean = xp.where(finite, log_mean, top)
    scale = norm ** order if order is not None else ops.full(tuple(norm.shape), math.nan)
    ordered = ops.sort(q / scale[..., None], -1)  # NaN (no order) sorts last: the row stays NaN below
    # the quantiles by numpy's linear interpolation, from one sort (np.quantile's per-call cost was 3x)
    at = np.asarray(TEST_QUANTILES) * (m - 1)
    lo = np.floor(at).astype(np.int64)
    hi, weight = ops.asarray(np.minimum(lo + 1, m - 1)), ops.asarray(at - lo)
    lo = ops.asarray(lo)  # indices in the block's library (on its device)
    quantiles = ordered[..., lo] + weight * (ordered[..., hi] - ordered[..., lo])
    if order is None:
        quantiles = ops.full(tuple(quantiles.shape), math.nan)
    scalars = xp.stack([ops.count(q > 0, -1) / m, log_mean, ordered[..., 0], ops.count(q < 0, -1) / m], axis=-1)
    return xp.concatenate([scalars, quantiles], axis=-1)
