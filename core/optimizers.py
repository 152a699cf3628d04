"""Optimizers as update rules on a flat parameter vector (THEORY.md, claim 5 for the
steepest-descent flavors).

Every rule receives the direction source ``d``: with the constant step rule d = grad L, with
the loss-normalized rule d = grad L / L = grad log L (eta_t = eta / L(theta_t), a fixed step on
log L, computed without ever forming L), with the lyu_li rule d = grad log L / log(1/L)^(2-2/M)
(see core/trainer.py). The rules:

- gd:            theta -= eta d
- normalized_gd: theta -= eta d / ||d||_2
- sgd:           gd on a minibatch's loss (the trainer feeds the batch gradient)
- sign:          theta -= eta ||d||_1 sign(d)          (steepest descent w.r.t. l_inf)
- coordinate:    theta -= eta ||d||_inf sign(d_j) e_j, j = argmax |d_j|   (w.r.t. l1)
- momentum:      v = beta v + d; theta -= eta v        (heavy ball)
- adam:          Kingma and Ba with bias correction
"""

from __future__ import annotations

import numpy as np

from .level1 import subtract_scaled

KINDS = ("gd", "normalized_gd", "sgd", "sign", "coordinate", "momentum", "adam")


class UpdateRule:
    def __init__(self, kind: str, lr: float, momentum: float = 0.9, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8):
        self.kind, self.lr = kind, lr
        self.momentum, self.beta1, self.beta2, self.eps = momentum, beta1, beta2, eps
        self.velocity = None
        self.m = self.v = None
        self.t = 0

    def apply(self, theta: np.ndarray, d: np.ndarray, factor: float = 1.0) -> None:
        """Update theta in place from direction source ``factor * d`` (the factor, e.g. L for the
        constant rule, multiplies the scalar step where it can, not the vector)."""
        kind, lr = self.kind, self.lr
        if kind in ("gd", "sgd"):
            subtract_scaled(theta, lr * factor, d)
            return
        if factor != 1.0:
            d = factor * d
        if kind == "normalized_gd":
            norm = float(np.sqrt(np.dot(d, d)))
            if norm > 0:
                subtract_scaled(theta, lr / norm, d)
        elif kind == "sign":
            theta -= (lr * float(np.sum(np.abs(d)))) * np.sign(d)
        elif kind == "coordinate":
            j = int(np.argmax(np.abs(d)))
            theta[j] -= lr * abs(float(d[j])) * np.sign(d[j])
        elif kind == "momentum":
            if self.velocity is None:
                self.velocity = np.zeros_like(theta)
            self.velocity *= self.momentum
            self.velocity += d
            subtract_scaled(theta, lr, self.velocity)
        elif kind == "adam":
            if self.m is None:
                self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)
            self.t += 1
            self.m = self.beta1 * self.m + (1 - self.beta1) * d
            self.v = self.beta2 * self.v + (1 - self.beta2) * d * d
            m_hat = self.m / (1 - self.beta1 ** self.t)
            v_hat = self.v / (1 - self.beta2 ** self.t)
            theta -= lr * m_hat / (np.sqrt(v_hat) + self.eps)
        else:
            raise KeyError(kind)

    def state(self) -> dict:
        """Arrays and counters to continue a run exactly (stored in snapshots)."""
        return {"velocity": self.velocity, "m": self.m, "v": self.v, "t": self.t}
