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

``UpdateRule`` is the numpy form (one run, updated in place), ``BatchedRule`` the torch form (a
row per run, a step size per run: the batched engine's), side by side. sgd is numpy's alone: its
minibatches are drawn per run.
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

    def state(self, size: int) -> dict:
        """What continuing exactly needs, as arrays (saved with the run's final parameters,
        docs/run-format.md): momentum's velocity; Adam's moments and step count. Before the first
        step they are zeros, which is what the first step starts from."""
        if self.kind == "momentum":
            return {"velocity": _or_zeros(self.velocity, size)}
        if self.kind == "adam":
            return {"m": _or_zeros(self.m, size), "v": _or_zeros(self.v, size), "t": np.array(self.t, dtype=np.int64)}
        return {}

    def load_state(self, state: dict, dtype) -> None:
        """Continue from ``state`` (as ``state`` made it; shapes checked by the caller)."""
        if self.kind == "momentum":
            self.velocity = np.array(state["velocity"], dtype=dtype)
        elif self.kind == "adam":
            self.m, self.v = np.array(state["m"], dtype=dtype), np.array(state["v"], dtype=dtype)
            self.t = int(state["t"])


class BatchedRule:
    """The rules above on S rows at once, in torch. The state of momentum and Adam lives in
    tensors made up front and updated in place (the step count too, on the device), so that a
    step can be captured as a CUDA graph and replayed."""

    def __init__(self, kind: str, lrs, like, momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8):
        import torch

        self.torch = torch
        self.kind, self.lr = kind, lrs.unsqueeze(1)
        self.momentum, self.beta1, self.beta2, self.eps = momentum, beta1, beta2, eps
        self.velocity = torch.zeros_like(like) if kind == "momentum" else None  # 0.9 * 0 + d is d: the first step's
        self.m = torch.zeros_like(like) if kind == "adam" else None
        self.v = torch.zeros_like(like) if kind == "adam" else None
        self.t = torch.zeros((), dtype=like.dtype, device=like.device) if kind == "adam" else None

    def tensors(self) -> list:
        """The tensors the rule changes in place (saved and restored around a graph's warm-up)."""
        return [t for t in (self.velocity, self.m, self.v, self.t) if t is not None]

    def state(self) -> list[dict]:
        """UpdateRule.state of each row (one read-back, for momentum and Adam only)."""
        rows = {name: getattr(self, name).cpu().numpy().astype(np.float64) for name in ("velocity", "m", "v")
                if getattr(self, name) is not None}
        S = self.lr.shape[0]
        extra = {"t": np.array(int(self.t.item()), dtype=np.int64)} if self.t is not None else {}
        return [{**{name: rows[name][s].copy() for name in rows}, **extra} for s in range(S)]

    def load_state(self, states: list[dict]) -> None:
        """Continue from ``state()``'s rows (shapes checked by the caller); the step count is shared."""
        for name in ("velocity", "m", "v"):
            tensor = getattr(self, name)
            if tensor is not None:
                tensor.copy_(self.torch.as_tensor(np.stack([s[name] for s in states]), dtype=tensor.dtype))
        if self.t is not None:
            self.t.fill_(int(states[0]["t"]))

    def apply(self, theta, d, factor):
        """The updated parameters (a new tensor) from direction source ``factor * d`` per row."""
        torch, kind, lr = self.torch, self.kind, self.lr
        factor = factor.unsqueeze(1)
        if kind == "gd":
            return theta - (lr * factor) * d
        d = factor * d
        if kind == "normalized_gd":
            norm = torch.sqrt((d * d).sum(dim=1, keepdim=True))
            return theta - torch.where(norm > 0, lr / norm, torch.zeros_like(norm)) * d
        if kind == "sign":
            return theta - (lr * d.abs().sum(dim=1, keepdim=True)) * torch.sign(d)
        if kind == "coordinate":
            j = d.abs().argmax(dim=1, keepdim=True)
            dj = d.gather(1, j)
            return theta.scatter_add(1, j, -lr * dj.abs() * torch.sign(dj))
        if kind == "momentum":
            self.velocity.mul_(self.momentum).add_(d)
            return theta - lr * self.velocity
        if kind == "adam":
            self.t.add_(1)
            self.m.mul_(self.beta1).add_((1 - self.beta1) * d)
            self.v.mul_(self.beta2).add_((1 - self.beta2) * d * d)
            m_hat = self.m / (1 - self.beta1 ** self.t)
            v_hat = self.v / (1 - self.beta2 ** self.t)
            return theta - lr * m_hat / (torch.sqrt(v_hat) + self.eps)
        raise KeyError(kind)


def _or_zeros(array, size: int) -> np.ndarray:
    return np.zeros(size) if array is None else np.asarray(array, dtype=np.float64).copy()


RNG_WORDS = 6  # numpy's PCG64 state as uint64 words: state (2), increment (2), has_uint32, uinteger


def state_layout(kind: str, size: int, step_rule: str = "") -> dict:
    """name -> (shape, numpy dtype) of the optimizer state a run file keeps for ``kind`` with
    ``size`` parameters: the rule's (``UpdateRule.state``), for sgd the minibatch generator's
    (the trainer's, ``rng_state``), and for the loss_based step rule its alpha and whether the last
    step was kept (core/step_rule.py LossBasedRate.state). The other rules (and the other step
    rules: lyu_li's factor is a function of the current loss alone) have no state."""
    from .step_rule import rate_layout

    layout = {"momentum": {"velocity": ((size,), np.float64)},
              "adam": {"m": ((size,), np.float64), "v": ((size,), np.float64), "t": ((), np.int64)},
              "sgd": {"minibatch_rng": ((RNG_WORDS,), np.uint64)}}.get(kind, {})
    return {**layout, **rate_layout(step_rule)}


def rng_state(rng: np.random.Generator) -> np.ndarray:
    """A PCG64 generator's full state as RNG_WORDS uint64 words (arrays only in a run file)."""
    state = rng.bit_generator.state
    if state["bit_generator"] != "PCG64":
        raise ValueError(f"{state['bit_generator']}: only PCG64 generators are saved")
    mask = (1 << 64) - 1
    words = [state["state"]["state"] >> 64, state["state"]["state"] & mask, state["state"]["inc"] >> 64,
             state["state"]["inc"] & mask, state["has_uint32"], state["uinteger"]]
    return np.array(words, dtype=np.uint64)


def set_rng_state(rng: np.random.Generator, words) -> None:
    """Put ``rng_state``'s words back into a PCG64 generator."""
    w = [int(x) for x in np.asarray(words, dtype=np.uint64)]
    rng.bit_generator.state = {"bit_generator": "PCG64",
                               "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
                               "has_uint32": w[4], "uinteger": w[5]}
