"""Pointwise activations: value, derivative, and their homogeneity class (THEORY.md, Homogeneity).

``HOMOGENEITY`` sorts them: exactly 1-homogeneous (identity, ReLU, leaky ReLU, |x|);
ReLU^k, exactly k-homogeneous; near-1-homogeneous (GELU, SiLU, softplus, leaky softplus, ELU:
s(x) - x s'(x) is bounded); bounded (tanh, sigmoid: no positive homogeneity order at all).
"""

from __future__ import annotations

import numpy as np

EXACT, POWER, NEAR, BOUNDED = "exact", "power", "near", "bounded"

HOMOGENEITY = {
    "identity": EXACT, "relu": EXACT, "leaky_relu": EXACT, "abs": EXACT,
    "relu_k": POWER,
    "gelu": NEAR, "silu": NEAR, "softplus": NEAR, "leaky_softplus": NEAR, "elu": NEAR,
    "tanh": BOUNDED, "sigmoid": BOUNDED,
}

# The parameter each activation takes, with its default (none for the others).
PARAMETERS = {"leaky_relu": ("slope", 0.1), "relu_k": ("k", 2.0), "softplus": ("beta", 1.0), "elu": ("alpha", 1.0),
              "leaky_softplus": ("c", 0.5)}  # Cai et al. 2024's c

DESCRIPTIONS = {
    "identity": "x", "relu": "max(x, 0)", "leaky_relu": "x if x > 0 else slope * x", "abs": "|x|",
    "relu_k": "max(x, 0)^k", "gelu": "x * Phi(x) (exact, erf)", "silu": "x * sigmoid(x)",
    "softplus": "log(1 + exp(beta x)) / beta",
    "leaky_softplus": "c x + (1 - c) log(1 + exp(x))", "elu": "x if x > 0 else alpha (exp(x) - 1)",
    "tanh": "tanh(x)", "sigmoid": "1 / (1 + exp(-x))",
}

_SQRT1_2 = np.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / np.sqrt(2 * np.pi)


def _special():
    """scipy.special, imported on first use: the window's start-up need not wait for it."""
    from scipy import special

    return special


def scipy_erf(z: np.ndarray) -> np.ndarray:
    """erf(z) in place: scipy's Cephes erf, one element at a time."""
    return _special().erf(z, out=z)


_torch = None


def torch_module():
    """torch, imported on first use (it is slow to import and large), or None where it is not installed."""
    global _torch
    if _torch is None:
        try:
            import torch
        except (ImportError, OSError):  # not installed, or its shared libraries are broken
            _torch = False
        else:
            _torch = torch
    return _torch or None


def vectorized_erf(z: np.ndarray) -> np.ndarray:
    """erf(z) in place with torch's vectorized kernel, quicker than scipy's one element at a time
    (docs/performance.md): erf is the largest cost of a GELU network's step. It agrees with
    scipy's to 2 ulp. A training process steps with one torch thread around it
    (NumpyNetwork.step_threads). The window's process has torch already (its device probe) and
    so needs no scipy for a GELU network's decision boundary. Without torch, scipy's."""
    torch = torch_module()
    if torch is None:
        return scipy_erf(z)
    t = torch.from_numpy(z)
    torch.special.erf(t, out=t)
    return z


def forward(kind: str, param: float, x: np.ndarray, erf=vectorized_erf) -> tuple[np.ndarray, np.ndarray]:
    """Return (s(x), s'(x)) elementwise. At a kink the right derivative is taken for ReLU and
    sign(0) = 0 for |x|, the conventions torch autograd uses too. ``erf`` computes erf in place
    (GELU only): ``scipy_erf`` or ``vectorized_erf``."""
    if kind == "relu":
        mask = x > 0  # a boolean derivative: g * mask is g's dtype, and one call is saved per step
        return x * mask, mask
    if kind == "identity":
        return x, np.ones_like(x)
    if kind == "leaky_relu":
        slope = np.where(x > 0, 1.0, param).astype(x.dtype, copy=False)
        return x * slope, slope
    if kind == "abs":
        return np.abs(x), np.sign(x)
    if kind == "relu_k":
        pos = np.maximum(x, 0)
        powk1 = pos ** (param - 1)
        return powk1 * pos, param * powk1
    if kind == "gelu":  # in place where it can: a GELU layer was a fifth of a residual network's step
        cdf = erf(x * _SQRT1_2)
        cdf += 1
        cdf *= 0.5
        with np.errstate(over="ignore"):  # x*x overflows only where exp(-x*x/2) is 0 anyway
            slope = np.square(x)
        slope *= -0.5
        np.exp(slope, out=slope)
        slope *= _INV_SQRT_2PI
        slope *= x
        slope += cdf
        return x * cdf, slope
    if kind == "silu":
        sig = _special().expit(x)
        return x * sig, sig * (1 + x * (1 - sig))
    if kind == "softplus":
        bx = param * x
        return np.logaddexp(0, bx) / param, _special().expit(bx)
    if kind == "leaky_softplus":
        return param * x + (1 - param) * np.logaddexp(0, x), param + (1 - param) * _special().expit(x)
    if kind == "elu":
        neg = x <= 0
        em1 = np.expm1(np.minimum(x, 0))
        return np.where(neg, param * em1, x), np.where(neg, param * (em1 + 1), 1.0).astype(x.dtype, copy=False)
    if kind == "tanh":
        t = np.tanh(x)
        return t, 1 - t * t
    if kind == "sigmoid":
        s = _special().expit(x)
        return s, s * (1 - s)
    raise KeyError(kind)


def torch_forward(kind: str, param: float, x):
    """The same activations in torch, for the autograd reference network."""
    import torch
    import torch.nn.functional as F

    if kind == "relu":
        return torch.relu(x)
    if kind == "identity":
        return x
    if kind == "leaky_relu":
        return F.leaky_relu(x, negative_slope=param)
    if kind == "abs":
        return torch.abs(x)
    if kind == "relu_k":
        return torch.relu(x) ** param
    if kind == "gelu":
        return F.gelu(x)
    if kind == "silu":
        return F.silu(x)
    if kind == "softplus":
        return F.softplus(x, beta=param, threshold=1e6)
    if kind == "leaky_softplus":
        return param * x + (1 - param) * F.softplus(x, threshold=1e6)
    if kind == "elu":
        return F.elu(x, alpha=param)
    if kind == "tanh":
        return torch.tanh(x)
    if kind == "sigmoid":
        return torch.sigmoid(x)
    raise KeyError(kind)


def torch_value_and_derivative(kind: str, param: float, x):
    """(s(x), s'(x)) in torch, for the batched engine's hand-written backward (core/batched.py);
    the same formulas and kink conventions as ``forward``."""
    import torch

    if kind == "relu":
        value = torch.relu(x)
        return value, torch.gt(x, 0, out=torch.empty_like(x))  # a float 0/1: a bool mask costs a cast per use
    if kind == "identity":
        return x, torch.ones_like(x)
    if kind == "leaky_relu":
        # 1 where x > 0, else slope; built on the device (a tensor made from a number would be a host copy)
        slope = torch.gt(x, 0, out=torch.empty_like(x)).mul_(1.0 - param).add_(param)
        return x * slope, slope
    if kind == "abs":
        return torch.abs(x), torch.sign(x)
    if kind == "relu_k":
        pos = torch.clamp(x, min=0)
        powk1 = pos ** (param - 1)
        return powk1 * pos, param * powk1
    if kind == "gelu":
        cdf = 0.5 * (1 + torch.special.erf(x * float(_SQRT1_2)))
        return x * cdf, cdf + x * float(_INV_SQRT_2PI) * torch.exp(-0.5 * x * x)
    if kind == "silu":
        sig = torch.sigmoid(x)
        return x * sig, sig * (1 + x * (1 - sig))
    if kind == "softplus":
        bx = param * x
        return torch.logaddexp(torch.zeros_like(bx), bx) / param, torch.sigmoid(bx)
    if kind == "leaky_softplus":
        return (param * x + (1 - param) * torch.logaddexp(torch.zeros_like(x), x),
                param + (1 - param) * torch.sigmoid(x))
    if kind == "elu":
        neg = x <= 0
        em1 = torch.expm1(torch.clamp(x, max=0))
        return torch.where(neg, param * em1, x), torch.where(neg, param * (em1 + 1), 1.0)
    if kind == "tanh":
        t = torch.tanh(x)
        return t, 1 - t * t
    if kind == "sigmoid":
        s = torch.sigmoid(x)
        return s, s * (1 - s)
    raise KeyError(kind)
