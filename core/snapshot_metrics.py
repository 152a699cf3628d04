"""What a snapshot measures at theta (THEORY.md): the Euler defect of homogeneity, the KKT
residual (binary, or one multiplier per pair (i, j != y_i) for C classes), and the rows
d f(x_i) / d theta the stuck-sample check (core/health.py) reads. The driver (core/trainer.py)
decides when; this module only computes, on the host network whatever the engine."""

from __future__ import annotations

import warnings

import numpy as np

from . import multiclass
from .metrics import kkt_residual

JACOBIAN_BLOCK = 1 << 22  # numbers of a multi-class stuck-sample check's Jacobian block (32 MB)


class SnapshotMetrics:
    """The snapshot quantities of one run's network ``net`` on inputs ``X``: labels ``y`` (+-1) for a
    binary run, or class indices ``labels`` (C >= 3, else None); ``order`` M (None: no positive
    order, so no Euler defect or KKT); ``kkt``: whether the KKT residual is computed."""

    def __init__(self, net, spec, X: np.ndarray, y: np.ndarray, labels, classes: int, order, kkt: bool):
        self.net, self.spec, self.X, self.y, self.labels = net, spec, X, y, labels
        self.classes, self.order, self.kkt = classes, order, kkt
        self._torch_twin = None  # (module, X) for a multi-class run's Euler defect, made at its first use

    def measure(self, theta: np.ndarray, f: np.ndarray) -> dict:
        """kkt_eps, kkt_delta, euler_defect at theta, whose outputs on X are ``f`` (NaN where not
        defined)."""
        metrics = {"kkt_eps": float("nan"), "kkt_delta": float("nan"), "euler_defect": float("nan")}
        if self.order is None:
            return metrics
        norm = float(np.linalg.norm(theta))
        if norm <= 0:
            return metrics
        if self.labels is not None:
            metrics["euler_defect"] = self._multiclass_euler_defect(theta, norm)
        else:
            jac = self.net.jacobian(theta, self.X)
            metrics["euler_defect"] = float(np.max(np.abs(jac @ theta - self.order * f)) / norm ** self.order)
        if self.kkt:
            metrics["kkt_eps"], metrics["kkt_delta"] = (
                kkt_residual(self.net, theta, self.X, self.y, self.order) if self.labels is None
                else multiclass.kkt_residual(self.net, theta, self.X, self.labels, self.order))
        return metrics

    def sample_margins(self, f: np.ndarray) -> np.ndarray:
        """q_i of the outputs ``f``: y_i f_i, or f_{y_i} - max_{j != y_i} f_j for C classes."""
        return self.y * f if self.labels is None else multiclass.sample_margins(f, self.labels)

    def jacobian_rows(self, theta, rows) -> np.ndarray:
        """The rows d f(x_i) / d theta of samples ``rows`` (the stuck-sample check); for C outputs
        max_c |d f_c(x_i) / d theta| elementwise, (rows, P), zero exactly where every output's
        gradient is, made a block of samples at a time (the n x P bound, not n x C x P)."""
        if self.labels is None:
            return self.net.jacobian(theta, self.X[rows])
        out = np.empty((len(rows), self.net.size), dtype=self.X.dtype)
        block = max(1, JACOBIAN_BLOCK // (self.classes * self.net.size))
        for start in range(0, len(rows), block):
            jac = self.net.jacobian(theta, self.X[rows[start:start + block]])
            out[start:start + block] = np.abs(jac).max(axis=1)
        return out

    def _multiclass_euler_defect(self, theta, norm: float) -> float:
        """max_ic |<grad f_c(x_i), theta> - M f_c(x_i)| / ||theta||^M of C outputs: <grad f_c(x_i),
        theta> for every i and c is ONE forward-mode derivative along theta (torch.func.jvp on the
        spec's torch module), not the n x C x P Jacobian (~1.7 s a snapshot for ten digit classes
        at width 128; the jvp ~3 forwards)."""
        import torch

        with warnings.catch_warnings():  # torch.func calls the deprecated torch.jit.script (torch 2.13)
            warnings.simplefilter("ignore", DeprecationWarning)
            from torch.func import functional_call, jvp

        if self._torch_twin is None:
            from .torch_network import TorchNetwork

            tdtype = torch.float64 if self.X.dtype == np.float64 else torch.float32
            self._torch_twin = (TorchNetwork(self.spec, tdtype), torch.as_tensor(self.X, dtype=tdtype))
        module, X = self._torch_twin
        flat = torch.as_tensor(np.ascontiguousarray(theta), dtype=X.dtype)
        params, offset = {}, 0
        for name, p in module.named_parameters():  # the flat layout's order (TorchNetwork.load_flat)
            params[name] = flat[offset:offset + p.numel()].reshape(p.shape)
            offset += p.numel()
        with torch.no_grad(), warnings.catch_warnings():  # its first call, too, scripts (deprecated) a helper
            warnings.simplefilter("ignore", DeprecationWarning)
            f, along = jvp(lambda ps: functional_call(module, ps, (X,)), (params,), (params,))
        return float(torch.max(torch.abs(along - self.order * f))) / norm ** self.order
