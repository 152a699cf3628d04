"""The step rule: the scalar factor that turns grad log L into the direction source an update
rule receives (core/optimizers.py), in numpy (one run, a float) and in torch (a row per run),
side by side. THEORY.md, Numerics and the step rules:

- loss_normalized: factor 1, d = grad log L = grad L / L (eta_t = eta / L, a fixed step on log L);
- constant: factor L, d = grad L; L = exp(log L) overflows past LOG_MAX, which ends the run;
- lyu_li: factor log(1/L)^-(2 - 2/M) once log(1/L) > 1 (polynomial norm growth), of the SUMMED
  loss whatever the reduction;
- loss_based: Lyu and Li's experiments' rate (LossBasedRate below): eta_t = alpha_t / L(theta_t),
  alpha adapted, a step that does not lower the loss undone. d = grad log L, the factor
  alpha_t / alpha_0 with alpha_0 = the configured lr, so that lr * factor = alpha_t.

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


# Lyu and Li's values (vfleaking/max-margin, models/lr_schedulers.py LossBasedLRv1: lr=0.1,
# alpha1=2 ** (1 / 5), alpha2=2 ** (1 / 10), eps=0; exper-final-mnist-cnn-loss-based-lr.py passes
# the same three); alpha_0 is the run's optimizer.lr
LOSS_BASED_UP = 2.0 ** (1 / 5)
LOSS_BASED_DOWN = 2.0 ** (1 / 10)
# only plain gradient descent: an undone step must leave no trace in an optimizer's state
LOSS_BASED_OPTIMIZERS = ("gd",)


def rate_layout(step_rule: str) -> dict:
    """name -> (shape, dtype) of the step rule's state in a run file (``rate_state``): the
    loss_based rule's alpha and last verdict; the other rules keep none."""
    return {"step_alpha": ((), np.float64), "step_taken": ((), np.float64)} if step_rule == "loss_based" else {}


def rate_state(alpha: float, taken: bool) -> dict:
    """The loss_based rule's state as an engine hands it to the run file (rate_layout's names)."""
    return {"step_alpha": np.float64(alpha), "step_taken": np.float64(taken)}


def rate_values(state: dict) -> tuple[float, bool] | None:
    """(alpha, taken) from ``rate_state``'s dict, or None where it holds no loss_based state."""
    if "step_alpha" not in state:
        return None
    return float(state["step_alpha"]), bool(state["step_taken"])


class LossBasedRate:
    """Lyu and Li's loss-based learning rate as they ran it (LossBasedLRv1 with core.py's rollback),
    for one run (numpy): the step from theta_t is theta_t - alpha_t grad L / L = theta_t - alpha_t
    grad log L (their "frame" divides the loss by the last accepted loss; in log space the same
    step is alpha_t grad log L, and L is never formed). At the next point the step is judged:
    log L(theta_{t+1}) <= log L(theta_t) (their ``loss <= 1 + eps`` in the frame, eps = 0: a tie
    counts as a decrease; a NaN as none) keeps it and alpha_{t+1} = alpha_t r_u; otherwise
    the step is undone, theta_{t+1} = theta_t exactly (their model.restore), and
    alpha_{t+1} = alpha_t / r_d. Every attempt is a step of the run: the undone ones are recorded
    (step_taken 0), so the loss curve shows where the rate overshot.

    The point a step starts from is kept (theta, q, log L, grad; ``start``): ``judge`` gives it
    back, bit for bit, when the step is undone."""

    def __init__(self, alpha0: float, up: float = LOSS_BASED_UP, down: float = LOSS_BASED_DOWN):
        self.alpha0 = self.alpha = float(alpha0)
        self.up, self.down = up, down
        self.kept = None  # (theta, q, log_l, grad) where the next step starts
        self.taken = True  # whether the last step was kept (the first state: nothing undone)

    def start(self, theta: np.ndarray, q: np.ndarray, log_l: float, grad: np.ndarray) -> None:
        """Keep the point the next step starts from (copies)."""
        self.kept = (theta.copy(), q.copy(), float(log_l), grad.copy())

    def judge(self, theta: np.ndarray, q: np.ndarray, log_l: float, grad: np.ndarray) -> float:
        """Judge the step from the kept point into ``theta`` (whose q, log L and grad are given) and
        return the log L of the point the run is at now: the step kept (alpha *= r_u), ``log_l``;
        undone (alpha /= r_d), the kept point's, with theta, q and grad overwritten in place by it."""
        start = self.kept
        if log_l <= start[2]:  # a decrease or a tie; a rise or NaN is not
            self.alpha *= self.up
            self.taken = True
            self.start(theta, q, log_l, grad)
            return log_l
        theta[...], q[...], grad[...] = start[0], start[1], start[3]
        self.alpha /= self.down
        self.taken = False
        return start[2]

    def state(self) -> dict:
        """What continuing exactly needs (saved with the run's final parameters, rate_layout): alpha
        for the next step and whether the last step was kept (the next record's step_taken). The
        point the next step starts from is the run's final parameters (an undone step restored them)."""
        return rate_state(self.alpha, self.taken)

    def load_state(self, state: dict) -> None:
        """Continue from ``state()`` (values checked by the caller)."""
        self.alpha, self.taken = rate_values(state)

    def factor(self) -> float:
        """alpha_t / alpha_0: the update rule's lr (alpha_0) times it is the step alpha_t on grad log L."""
        return self.alpha / self.alpha0


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
