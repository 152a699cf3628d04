"""Homogeneity analysis of an architecture spec (THEORY.md, Homogeneity).

``analyze(spec)`` walks the blocks tracking the order d of the hidden representation in
theta (the input has order 0): a dense or conv layer adds 1 (both are linear in their weights),
ReLU^k multiplies by k, 1-homogeneous activations keep it, and so do max- and average-pooling
(1-homogeneous in their input for c > 0), flatten, and a frozen dense layer (its fixed
weights are not in theta: Kou et al.'s +-1/m output layer leaves a 1-homogeneous network). It returns one of three verdicts with the order M and a sentence:

- exact: f(c theta) = c^M f(theta) for all c > 0;
- near: near-M-homogeneous in the sense of Cai et al. 2025 (residual blocks, GELU/SiLU/
  softplus/ELU, a bias past the first layer, an ensemble of different orders);
- none: a bounded activation (tanh, sigmoid) acts on a parameter-dependent representation,
  so no positive order exists and normalized margins are undefined.

A block acting on an order-0 representation (the raw input) is a fixed feature map and keeps
exactness; a first-layer bias is an extra input coordinate fixed to 1 and keeps it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import activations
from .architecture import WEIGHT_BLOCKS, Activation, ArchitectureSpec, Ensemble, Residual, is_frozen

EXACT, NEAR, NONE = "exact", "near", "none"


@dataclass
class Homogeneity:
    verdict: str  # exact | near | none
    order: float | None  # M, None when not homogeneous
    reasons: list[str] = field(default_factory=list)

    @property
    def explanation(self) -> str:
        """One line a user can read beside the badge."""
        if self.verdict == EXACT:
            return f"exactly {format_order(self.order)}-homogeneous: f(c theta) = c^{format_order(self.order)} f(theta)"
        if self.verdict == NEAR:
            return f"near-{format_order(self.order)}-homogeneous: " + "; ".join(self.reasons)
        return "not homogeneous: " + "; ".join(self.reasons) + " (normalized margins are undefined)"

    @property
    def badge(self) -> str:
        if self.verdict == EXACT:
            return f"exact, M = {format_order(self.order)}"
        if self.verdict == NEAR:
            return f"near, M = {format_order(self.order)}"
        return "not homogeneous"

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "order": self.order, "reasons": list(self.reasons),
                "explanation": self.explanation}


def format_order(order: float | None) -> str:
    if order is None:
        return "-"
    return str(int(order)) if float(order).is_integer() else f"{order:g}"


class _State:
    def __init__(self):
        self.near: list[str] = []
        self.bounded: list[str] = []

    def note(self, target: list, text: str):
        if text not in target:
            target.append(text)


def _walk(blocks, degree: float, state: _State) -> float:
    for block in blocks:
        if is_frozen(block):
            continue  # fixed weights, not in theta: linear in its input, it adds no order
        if isinstance(block, WEIGHT_BLOCKS):  # dense or conv2d; pooling and flatten change no order
            if block.bias and degree > 0:
                state.note(state.near, "a bias past the first layer adds lower-order terms")
            degree += 1
        elif isinstance(block, Activation):
            kind = activations.HOMOGENEITY[block.kind]
            if degree == 0:
                continue  # a fixed feature map of the input
            if kind == activations.POWER:
                degree *= block.value
            elif kind == activations.NEAR:
                state.note(state.near, f"{block.kind} is 1-homogeneous only up to a bounded correction")
            elif kind == activations.BOUNDED:
                state.note(state.bounded, f"{block.kind} is bounded")
        elif isinstance(block, Residual):
            inner = _walk(block.blocks, degree, state)
            if inner != degree:
                state.note(state.near, f"a residual block adds paths of orders {format_order(degree)} and {format_order(inner)}")
            degree = max(degree, inner)
        elif isinstance(block, Ensemble):
            orders = [_walk(m, degree, state) for m in block.members]
            if len(set(orders)) > 1:
                state.note(state.near, "an ensemble sums sub-networks of orders "
                           + ", ".join(format_order(o) for o in orders) + " (the lower orders fade)")
            degree = max(orders)
    return degree


def analyze(spec: ArchitectureSpec) -> Homogeneity:
    """The homogeneity verdict of ``spec`` (see the module docstring)."""
    state = _State()
    order = _walk(spec.blocks, 0.0, state)
    if state.bounded:
        return Homogeneity(NONE, None, state.bounded)
    if state.near:
        return Homogeneity(NEAR, order, state.near)
    return Homogeneity(EXACT, order, [])


def numeric_check(network, theta: np.ndarray, X: np.ndarray, order: float, scales=(2.0, 3.0)) -> dict:
    """Check homogeneity on actual parameters: for each c, max_i |f(c theta; x_i) - c^M f(theta; x_i)|
    relative to max_i |c^M f(theta; x_i)|, and the Euler defect max_i |<grad f(x_i), theta> - M f(x_i)|
    relative to ||theta||^M (THEORY.md, Euler defect)."""
    f = network.outputs(theta, X)
    out = {}
    for c in scales:
        fc = network.outputs(c * theta, X)
        target = c ** order * f
        out[f"scale_error_c{c:g}"] = float(np.max(np.abs(fc - target)) / max(np.max(np.abs(target)), 1e-300))
    out["euler_defect"] = float(euler_defect(network, theta, X, order))
    return out


def euler_defect(network, theta: np.ndarray, X: np.ndarray, order: float) -> float:
    """max_i |<grad_theta f(theta; x_i), theta> - M f(theta; x_i)| / ||theta||^M."""
    f = network.outputs(theta, X)
    jac = network.jacobian(theta, X)
    norm_m = float(np.linalg.norm(theta)) ** order
    return float(np.max(np.abs(jac @ theta - order * f)) / norm_m)
