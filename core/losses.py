"""Losses in log space (THEORY.md, Numerics): L itself is never formed.

For margins q_i = y_i f(x_i), ``log_loss_and_weights(q)`` returns log L and the weights
w_i = d log L / d q_i, so that grad log L = sum_i w_i grad q_i. With L the sum:

- exponential, l(q) = exp(-q):  log L = LSE(-q),  w = -softmax(-q);
- logistic, l(q) = log(1 + exp(-q)):  log l(q) computed stably for every q (switching to
  -q - exp(-q)/2 once exp(-q) < 1e-13), w_i = -exp(log sigmoid(-q_i) - log L).

With the mean, log L drops by log n and w is unchanged (grad log L does not depend on it).
``log_loss_and_weights`` is the numpy form (one run), ``torch_log_loss_and_weights`` the torch
form (a row of margins per run, the batched engine's), side by side.
"""

from __future__ import annotations

import math

import numpy as np

EXPONENTIAL, LOGISTIC = "exponential", "logistic"


def logsumexp(a: np.ndarray) -> float:
    m = float(np.max(a))
    if not np.isfinite(m):
        return m
    return m + math.log(float(np.sum(np.exp(a - m))))


def log_sample_losses(kind: str, q, xp=np):
    """log l(q_i), elementwise, without underflow; ``xp``: the arrays' library, numpy or torch
    (the batched engine's records on its device, core/batched_records.py)."""
    if kind == EXPONENTIAL:
        return -q
    # log softplus(-q); once exp(-q) < 1e-13 (q > 30), log(log1p(u)) = -q - u/2 + O(u^2) exactly
    # enough and it never underflows (softplus itself does past q ~ 745)
    with np.errstate(divide="ignore", over="ignore"):
        return xp.where(q > 30.0, -q - 0.5 * xp.exp(-q), xp.log(xp.logaddexp(xp.zeros_like(q), -q)))


def log_loss_and_weights(kind: str, q: np.ndarray, mean: bool = False) -> tuple[float, np.ndarray]:
    """(log L, d log L / d q) for margins q; see the module docstring."""
    if kind == EXPONENTIAL:
        neg = -q
        m = float(np.max(neg))
        e = np.exp(neg - m)
        s = float(np.sum(e))
        log_l = m + math.log(s)
        weights = e * (-1.0 / s)
    else:
        # while the summed loss is comfortably representable, the direct formulas are exact to
        # machine precision (a term that underflows is < 1e-308, negligible beside a sum > 1e-250)
        # and take 4 numpy calls instead of 10; below that, log space
        terms = np.logaddexp(0.0, -q)
        total = float(terms.sum())
        if 1e-250 < total < 1e300:
            log_l = math.log(total)
            # d l / d q = -sigmoid(-q), and sigmoid(-q) = 1 - exp(-l(q)) = -expm1(-l(q)): exact from the
            # terms already made, and no scipy imports on the window's start-up
            weights = np.expm1(-terms) * (1.0 / total)
        else:
            log_terms = log_sample_losses(kind, q)
            log_l = logsumexp(log_terms)
            log_sig = -np.logaddexp(0.0, q)  # log sigmoid(-q)
            weights = -np.exp(log_sig - log_l)
    if mean:
        log_l -= math.log(q.shape[0])
    return log_l, weights


def torch_log_loss_and_weights(kind: str, q):
    """torch: (log L, d log L / d q) per row of margins q (S, n), summed, in log space as above
    (no branch on values: nothing is read back to the host)."""
    import torch

    if kind == EXPONENTIAL:
        return torch.logsumexp(-q, dim=1), -torch.softmax(-q, dim=1)
    zero = torch.zeros_like(q)
    log_l = torch.logsumexp(log_sample_losses(kind, q, torch), dim=1)
    return log_l, -torch.exp(-torch.logaddexp(zero, q) - log_l.unsqueeze(1))


def inverse_loss(kind: str, log_l_sum: float) -> float:
    """l^{-1}(L) for the summed loss L = exp(log_l_sum) (THEORY.md, smoothed normalized margin).

    exponential: log(1/L) = -log L.  logistic: -log(expm1(L)), evaluated in three regimes."""
    if kind == EXPONENTIAL:
        return -log_l_sum
    if log_l_sum < -30.0:
        # expm1(L) = L (1 + L/2 + ...): -log expm1(L) = -log L - L/2 + O(L^2)
        return -log_l_sum - 0.5 * math.exp(log_l_sum)
    big_l = math.exp(log_l_sum)
    if big_l > 30.0:
        # -log(e^L - 1) = -L - log1p(-e^-L)
        return -big_l - math.log1p(-math.exp(-big_l))
    return -math.log(math.expm1(big_l))


def inverse_losses(kind: str, log_l_sum, xp=np):
    """``inverse_loss`` elementwise over an array of log L (numpy or torch, ``xp`` its library),
    NaN where log L is not finite: the records' smoothed margins, a block of steps of S runs at once."""
    if kind == EXPONENTIAL:
        return -log_l_sum
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # the regimes not taken
        big_l = xp.exp(log_l_sum)
        out = xp.where(log_l_sum < -30.0, -log_l_sum - 0.5 * big_l,
                       xp.where(big_l > 30.0, -big_l - xp.log1p(-xp.exp(-big_l)), -xp.log(xp.expm1(big_l))))
        return xp.where(xp.isfinite(log_l_sum), out, float("nan"))
