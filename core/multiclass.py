"""Multi-class margins, losses, smoothed margin, KKT residual and test-set metrics (THEORY.md,
Multi-class; Lyu and Li 2020, their code's models/simple_sequential.py), numpy and torch forms
side by side.

Labels y_i in {0..C-1}, outputs f (n, C). With d_ij = f_j(x_i) - f_{y_i}(x_i) for j != y_i:

- sample margin            q_i = f_{y_i} - max_{j != y_i} f_j = -max_j d_ij
- per-sample soft margin   z_i = -LSE_{j != y_i} d_ij  (z_i <= q_i <= z_i + log(C - 1))
- exponential loss         l_i = sum_{j != y_i} exp(d_ij) = exp(-z_i)
- cross-entropy            l_i = log(1 + sum_{j != y_i} exp(d_ij)) = log(1 + exp(-z_i))

so each multi-class loss is the binary loss of the same name (core/losses.py: exponential,
logistic) applied to z, and log L = LSE_i log l(z_i): for the exponential loss that is the
log-sum-exp over all n (C - 1) pairs (i, j). Nothing is formed outside log space: log L stays
finite with L far below 1e-308. For C = 2, z_i = q_i exactly and every quantity here is the
binary one of f = f_1 - f_0 with y = +1 for class 1 and -1 for class 0.

Binary inputs (outputs of shape (n,), labels +-1) are accepted by the margin, loss and test
functions and give exactly today's binary quantities: a binary run stays binary.
"""

from __future__ import annotations

import math

import numpy as np

from . import losses
from .metrics import TEST_QUANTILES  # the test margins' quantiles test_metrics reports (the records' too)

EXPONENTIAL, LOGISTIC = losses.EXPONENTIAL, losses.LOGISTIC  # LOGISTIC is the cross-entropy for C >= 3


# --------------------------------------------------------------------------- numpy

def _pair_differences(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """d_ij = f_j - f_{y_i}, with -inf in each sample's own class (so it drops out of max and LSE)."""
    rows = np.arange(outputs.shape[0])
    d = outputs - outputs[rows, labels][:, None]
    d[rows, labels] = -np.inf
    return d


def _as_labels(labels) -> np.ndarray:
    return np.asarray(labels).astype(np.intp)


def sample_margins(outputs, labels) -> np.ndarray:
    """q_i = f_{y_i}(x_i) - max_{j != y_i} f_j(x_i), shape (n,). Binary (outputs (n,), labels +-1):
    q_i = y_i f(x_i)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 1:
        return np.asarray(labels, dtype=np.float64) * outputs
    return -np.max(_pair_differences(outputs, _as_labels(labels)), axis=1)


def margin_gradient(outputs, labels) -> np.ndarray:
    """d q_i / d f, shape (n, C): +1 at y_i, -1 at the runner-up j* = argmax_{j != y_i} f_j, 0
    elsewhere (a subgradient where two runners-up tie: the first is taken). The gradient in theta
    is then grad q_i = grad f_{y_i} - grad f_{j*}."""
    outputs = np.asarray(outputs, dtype=np.float64)
    labels = _as_labels(labels)
    rows = np.arange(outputs.shape[0])
    grad = np.zeros_like(outputs)
    grad[rows, labels] = 1.0
    grad[rows, np.argmax(_pair_differences(outputs, labels), axis=1)] -= 1.0
    return grad


def soft_margins(outputs, labels) -> tuple[np.ndarray, np.ndarray]:
    """(z, p): z_i = -LSE_{j != y_i} (f_j - f_{y_i}), and p_ij = softmax_{j != y_i}(f_i)_j (0 at
    y_i), so that d z_i / d f_i = e_{y_i} - p_i."""
    outputs = np.asarray(outputs, dtype=np.float64)
    d = _pair_differences(outputs, _as_labels(labels))
    top = np.max(d, axis=1, keepdims=True)  # -q_i: finite for C >= 2
    e = np.exp(d - top)
    s = np.sum(e, axis=1, keepdims=True)
    return -(top[:, 0] + np.log(s[:, 0])), e / s


def log_loss_and_weights(kind: str, outputs, labels, mean: bool = False) -> tuple[float, np.ndarray]:
    """(log L, d log L / d f) for outputs f (n, C) and labels 0..C-1, L the sum (or, with
    ``mean``, the mean) of the exponential loss or the cross-entropy (``kind`` exponential or
    logistic); the weights are (n, C): the backward of log L is sum_ij W_ij grad f_j(x_i).
    Binary (outputs (n,), labels +-1): core/losses.py's log L of q = y f, weights (n,) d log L / d f."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 1:
        y = np.asarray(labels, dtype=np.float64)
        log_l, w = losses.log_loss_and_weights(kind, y * outputs, mean)
        return log_l, w * y
    labels = _as_labels(labels)
    z, p = soft_margins(outputs, labels)
    log_l, w = losses.log_loss_and_weights(kind, z, mean)  # w_i = d log L / d z_i
    weights = -w[:, None] * p
    weights[np.arange(outputs.shape[0]), labels] = w
    return log_l, weights


def smoothed_margin(kind: str, log_l_sum: float, norm: float, order: float) -> float:
    """gamma~ = l^{-1}(L) / ||theta||^M, L the SUM of the losses (THEORY.md): log(1/L) for the
    exponential loss, -log(expm1(L)) for the cross-entropy (core/losses.inverse_loss). For the
    exponential loss gamma~ <= gamma <= gamma~ + log(n (C - 1)) / ||theta||^M; for the
    cross-entropy gamma~ <= gamma, and the upper side holds up to O(L) as L -> 0."""
    return losses.inverse_loss(kind, log_l_sum) / norm ** order


def kkt_residual(network, theta: np.ndarray, X: np.ndarray, labels: np.ndarray, order: float) -> tuple[float, float]:
    """(eps, delta) of the multi-class max-margin problem min 1/2 ||theta||^2 s.t.
    f_{y_i}(theta; x_i) - f_j(theta; x_i) >= 1 for every pair (i, j != y_i), with one multiplier
    per pair from ONE joint nonnegative least-squares fit, as core/metrics.kkt_residual does for
    the binary problem (THEORY.md, KKT residual and Multi-class): at theta~ = theta / q_min^(1/M),
    lambda >= 0 minimizes ||theta~ - sum_ij lambda_ij grad s_ij||^2 + (sum_ij lambda_ij (s_ij - 1)
    / ||theta~||)^2 with s_ij = f_{y_i} - f_j at theta~. eps = ||theta~ - sum lambda grad s|| /
    ||theta~||, delta = sum lambda (s - 1). ``network``: outputs(theta, X) -> (n, C) and
    jacobian(theta, X) -> (n, C, P). Memory: the pair Jacobian holds n (C - 1) P numbers (the caller
    bounds it). Undefined (nan) while q_min <= 0."""
    from scipy.optimize import nnls  # here, not at the top: ~0.3 s off the window's start-up

    labels = _as_labels(labels)
    q_min = float(np.min(sample_margins(network.outputs(theta, X), labels)))
    if not q_min > 0:
        return float("nan"), float("nan")
    scaled = theta / q_min ** (1.0 / order)
    scale = float(np.linalg.norm(scaled))
    jac = network.jacobian(scaled, X)  # (n, C, P); outputs at theta~ next (a network may cache the forward)
    outputs = np.asarray(network.outputs(scaled, X), dtype=np.float64)
    n, classes = outputs.shape
    rows = np.arange(n)
    other = np.ones((n, classes), dtype=bool)
    other[rows, labels] = False
    pair_i, pair_j = np.nonzero(other)  # the n (C - 1) pairs, sample by sample
    grads = jac[pair_i, labels[pair_i]] - jac[pair_i, pair_j]  # row ij: grad s_ij(theta~)
    slack = outputs[pair_i, labels[pair_i]] - outputs[pair_i, pair_j] - 1.0  # >= 0 at theta~
    system = np.vstack([grads.T, slack[None, :] / scale])
    lam, _joint = nnls(system, np.append(scaled, 0.0), maxiter=50 * grads.shape[0])
    eps = float(np.linalg.norm(scaled - grads.T @ lam)) / scale
    return eps, float(np.dot(lam, slack))


def test_metrics(outputs_test, y_test, norm: float, order: float, *, kind: str = EXPONENTIAL,
                 quantiles=TEST_QUANTILES) -> dict:
    """Generalization on a test set (THEORY.md, Quantities): outputs (m, C) with labels 0..C-1,
    or binary outputs (m,) with labels +-1.

    test_accuracy: fraction with q_i > 0 (a tie counts as an error, as in training's accuracy);
    test_log_loss: log of the MEAN test loss of ``kind`` (log space: a misclassified test point's
        exponential loss overflows float64 long before its log does);
    test_cross_entropy: the mean cross-entropy in nats (the usual "log loss"), whatever ``kind``;
    test_margin_min, test_margin_quantiles (at ``quantiles``), test_margin_below_zero: the test
        samples' normalized margins q_i / ||theta||^M (nan when ``order`` is nan: not homogeneous);
    test_sample_margins: all m of them."""
    outputs = np.asarray(outputs_test, dtype=np.float64)
    q = sample_margins(outputs, y_test)
    count = q.shape[0]
    log_loss, _w = log_loss_and_weights(kind, outputs, y_test, mean=True)
    z = q if outputs.ndim == 1 else soft_margins(outputs, y_test)[0]
    cross_entropy = float(np.mean(np.logaddexp(0.0, -z)))  # l_i = log(1 + exp(-z_i)), no overflow
    scale = norm ** order if math.isfinite(order) else float("nan")
    normalized = q / scale
    levels = np.asarray(quantiles, dtype=np.float64)
    return {
        "test_accuracy": float(np.count_nonzero(q > 0)) / count,
        "test_log_loss": float(log_loss),
        "test_cross_entropy": cross_entropy,
        "test_margin_min": float(np.min(normalized)),
        "test_margin_quantiles": np.quantile(normalized, levels) if math.isfinite(scale) else np.full(levels.size, np.nan),
        "test_margin_below_zero": float(np.count_nonzero(q < 0)) / count,
        "test_sample_margins": normalized,
    }


test_metrics.__test__ = False  # a library function, not a test: pytest must not collect it where imported


# --------------------------------------------------------------------------- torch
# The same mathematics for tensors with leading batch dimensions (S runs): outputs (..., n, C),
# labels (n,) of dtype long, shared by the batch.

def _pair_differences_torch(outputs, labels):
    import torch

    f_y = torch.gather(outputs, -1, labels.expand(outputs.shape[:-1]).unsqueeze(-1))
    own = torch.nn.functional.one_hot(labels, outputs.shape[-1]).bool()
    return (outputs - f_y).masked_fill(own, -math.inf), own


def sample_margins_torch(outputs, labels):
    """q_i = f_{y_i} - max_{j != y_i} f_j, shape (..., n) (sample_margins' torch form)."""
    d, _own = _pair_differences_torch(outputs, labels)
    return -d.amax(dim=-1)


def log_loss_and_weights_torch(kind: str, outputs, labels, mean: bool = False):
    """(log L (...), d log L / d f (..., n, C)): log_loss_and_weights' torch form, per batch row."""
    import torch

    d, own = _pair_differences_torch(outputs, labels)
    lse = torch.logsumexp(d, dim=-1)  # -z_i
    p = torch.exp(d - lse.unsqueeze(-1))  # softmax over j != y_i; exp(-inf) = 0 at y_i
    log_l, w = margin_log_loss_and_weights_torch(kind, -lse)
    weights = torch.where(own, w.unsqueeze(-1), -w.unsqueeze(-1) * p)
    if mean:
        log_l = log_l - math.log(outputs.shape[-2])
    return log_l, weights


def margin_log_loss_and_weights_torch(kind: str, q):
    """(log L, d log L / d q) of the summed binary loss of margins q (..., n), in log space
    (core/losses.py's formulas; the same as core/batched.py's for (S, n))."""
    import torch

    if kind == EXPONENTIAL:
        return torch.logsumexp(-q, dim=-1), -torch.softmax(-q, dim=-1)
    zero = torch.zeros_like(q)
    # log softplus(-q); past q = 30, -q - exp(-q)/2 (softplus itself underflows past q ~ 745)
    log_terms = torch.where(q > 30.0, -q - 0.5 * torch.exp(-q), torch.log(torch.logaddexp(zero, -q)))
    log_l = torch.logsumexp(log_terms, dim=-1)
    return log_l, -torch.exp(-torch.logaddexp(zero, q) - log_l.unsqueeze(-1))
