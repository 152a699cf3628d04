"""The step rule: the scalar factor that turns grad log L into the direction source an update
rule receives (core/optimizers.py), in numpy (one run, a float) and in torch (a row per run),
side by side. THEORY.md, Numerics and the step rules:

- loss_normalized: factor 1, d = grad log L = grad L / L (eta_t = eta / L, a fixed step on log L);
- constant: factor L, d = grad L; L = exp(log L) overflows past LOG_MAX, which ends the run;
- lyu_li: factor log(1/L)^-(2 - 2/M) once log(1/L) > 1 (polynomial norm growth), of the SUMMED
  loss whatever the reduction.

``log_step`` is log L of the configured reduction (the mean's is log L_sum - log n).
"""

from __future__ import annotations

import math

import numpy as np

LOG_MAX = 700.0  # exp() of more overflows float64


def lyu_li_power(order: float | None) -> float:
    """2 - 2/M; a network with no positive order takes M = 1 (the factor is then 1)."""
    return 2.0 - 2.0 / (order or 1.0)


def norm_limit(order: float | None, dtype) -> float:
    """The parameter norm past which ||theta||^M (or ||theta||^2) overflows ``dtype``, with room:
    a run whose norm reaches it has diverged."""
    top = float(np.finfo(dtype).max)
    return top ** (1.0 / order) / 1e3 if order is not None else top ** 0.5


def factor(rule: str, log_l: float, log_step: float, power: float) -> float | None:
    """numpy: the factor for one run at summed log loss ``log_l``; None when the constant rule's
    L = exp(log_step) overflows."""
    if rule == "loss_normalized":
        return 1.0
    if rule == "lyu_li":
        return (-log_l) ** -power if log_l < -1.0 else 1.0
    if log_step > LOG_MAX:
        return None
    return math.exp(log_step)


def torch_factor(rule: str, log_l, log_step, power: float):
    """torch: (factor (S,), overflow mask (S,) or None) for rows of summed log losses; the
    overflowing rows get exp(LOG_MAX), and the caller freezes them (a mask, not a branch)."""
    import torch

    if rule == "loss_normalized":
        return torch.ones_like(log_l), None
    if rule == "lyu_li":
        return torch.where(log_l < -1.0, (-log_l).clamp(min=1.0) ** -power, 1.0), None
    return torch.exp(log_step.clamp(max=LOG_MAX)), log_step > LOG_MAX
