"""The largest normalized margin a small two-layer network with a frozen output layer can have
(THEORY.md, Quantities: the limit of gamma for claims 2 and 4), found numerically.

f(theta; x) = sum_j a_j s(w_j . x) with the output weights a_j frozen (core/architecture.py
Dense.frozen) is near-1-homogeneous in theta = (w_1, ..., w_m) for the activations below; its
homogenized network (THEORY.md) is f_H = sum_j a_j h(w_j . x) with h(z) = z for z > 0 and
slope * z below (h = lim_r s(r z) / r). Gradient descent's normalized margin tends to the margin of
a KKT point of max_{||theta||_2 = 1} min_i y_i f_H(theta; x_i) (Cai et al. 2024, 2025); the global
maximum, found here by SLSQP on the epigraph form (max t s.t. y_i f_H(x_i) >= t, ||theta||^2 <= 1)
from many seeded random starts, is the line the Normalized margin plot draws dashed.
"""

from __future__ import annotations

import json

import numpy as np

from .architecture import Activation, ArchitectureSpec, Dense, frozen_weight

# the homogenized activation's slope below 0 (1 above), per activation kind; param is read where it has one
NEGATIVE_SLOPE = {"identity": lambda p: 1.0, "relu": lambda p: 0.0, "leaky_relu": lambda p: p,
                  "leaky_softplus": lambda p: p, "softplus": lambda p: 0.0, "gelu": lambda p: 0.0,
                  "silu": lambda p: 0.0}
MAX_TRAINED = 64  # parameters: beyond this the restarts cost more than a run's start should wait
RESTARTS = 30  # the five-point network: each seed 0-9 finds its optimum; ~0.05-0.2 s a start on a loaded machine


def frozen_two_layer(spec: ArchitectureSpec):
    """(output weights a (m,), negative slope of h) when ``spec`` is [dense m, activation, dense 1
    frozen] with no biases and a homogenized activation, else None."""
    blocks = spec.blocks
    if (spec.input_shape is not None or len(blocks) != 3 or not isinstance(blocks[0], Dense)
            or not isinstance(blocks[1], Activation) or not isinstance(blocks[2], Dense)):
        return None
    hidden, act, out = blocks
    if hidden.bias or hidden.frozen is not None or out.frozen is None or out.width != 1 or act.kind not in NEGATIVE_SLOPE:
        return None
    return frozen_weight(out, hidden.width)[0], float(NEGATIVE_SLOPE[act.kind](act.value))


def homogenized_margins(theta: np.ndarray, X: np.ndarray, y: np.ndarray, a: np.ndarray, slope: float) -> np.ndarray:
    """y_i f_H(theta; x_i) for every sample."""
    z = X @ theta.reshape(len(a), X.shape[1]).T  # (n, m)
    return y * (np.where(z > 0, z, slope * z) @ a)


def max_normalized_margin(spec: ArchitectureSpec, X, y, restarts: int = RESTARTS, seed: int = 0) -> float | None:
    """max over ||theta||_2 = 1 of min_i y_i f_H(theta; x_i) for a frozen two-layer ``spec`` of at
    most MAX_TRAINED trained weights (None for any other network). The last few answers are kept:
    the trainer (the plot's line) and the claim ask for the same one."""
    key = (json.dumps(spec.to_dict(), sort_keys=True), np.asarray(X, dtype=np.float64).tobytes(),
           np.asarray(y, dtype=np.float64).tobytes(), np.shape(X), restarts, seed)
    return _cached_max(key, spec, X, y, restarts, seed) if frozen_two_layer(spec) is not None else None


_ANSWERS: dict = {}


def _cached_max(key, spec, X, y, restarts, seed):
    if key not in _ANSWERS:
        if len(_ANSWERS) >= 8:
            _ANSWERS.pop(next(iter(_ANSWERS)))
        _ANSWERS[key] = _max_normalized_margin(spec, X, y, restarts, seed)
    return _ANSWERS[key]


def _max_normalized_margin(spec, X, y, restarts, seed):
    found = frozen_two_layer(spec)
    if found is None:
        return None
    a, slope = found
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    size = len(a) * X.shape[1]
    if size > MAX_TRAINED:
        return None
    from scipy.optimize import minimize  # only for the networks it serves

    def normalized(theta):
        return float(np.min(homogenized_margins(theta, X, y, a, slope)) / np.linalg.norm(theta))

    m, d = len(a), X.shape[1]

    def margins_jacobian(v):
        """d/dv of y_i f_H(x_i) - t: row i is y_i a_j h'(w_j . x_i) x_i for each j, then -1."""
        z = X @ v[:-1].reshape(m, d).T  # (n, m)
        slopes = np.where(z > 0, 1.0, slope) * a * y[:, None]
        return np.column_stack([(slopes[:, :, None] * X[:, None, :]).reshape(len(y), m * d), -np.ones(len(y))])

    constraints = [{"type": "ineq", "fun": lambda v: homogenized_margins(v[:-1], X, y, a, slope) - v[-1],
                    "jac": margins_jacobian},
                   {"type": "ineq", "fun": lambda v: 1.0 - v[:-1] @ v[:-1], "jac": lambda v: np.append(-2.0 * v[:-1], 0.0)}]
    objective_gradient = np.append(np.zeros(size), -1.0)
    rng = np.random.default_rng(seed)
    best = -np.inf
    for _ in range(restarts):
        start = rng.normal(size=size)
        start /= np.linalg.norm(start)
        result = minimize(lambda v: -v[-1], np.append(start, normalized(start)), jac=lambda v: objective_gradient,
                          constraints=constraints, method="SLSQP", options={"maxiter": 300, "ftol": 1e-13})
        theta = result.x[:-1]
        if np.linalg.norm(theta) > 0:
            best = max(best, normalized(theta))
    return float(best) if np.isfinite(best) else None


def neuron_margins(spec: ArchitectureSpec, theta: np.ndarray, X, y) -> np.ndarray | None:
    """Each hidden neuron's own normalized margin min_i y_i a_j s(w_j . x_i) / ||w_j|| (the network
    with that neuron alone, with the activation s itself, not homogenized), for a frozen two-layer
    ``spec``; None for any other network."""
    found = frozen_two_layer(spec)
    if found is None:
        return None
    from .activations import forward

    a, _slope = found
    act = spec.blocks[1]
    W = np.asarray(theta, dtype=np.float64).reshape(len(a), -1)
    s, _derivative = forward(act.kind, act.value, np.asarray(X, dtype=np.float64) @ W.T)
    norms = np.linalg.norm(W, axis=1)
    return np.min(np.asarray(y, dtype=np.float64)[:, None] * s * a[None, :], axis=0) / np.where(norms > 0, norms, np.nan)
