"""The autograd engine: the numpy engine's loop (core/engines/numpy_engine.py) with torch autograd
as the network (core/torch_network.py), numpy in and numpy out: the reference for the
mathematics (backend 'torch'), and sgd's engine off the CPU."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from ..blas import one_torch_thread
from ..architecture import weight_slices
from ..network import per_sample_jacobian
from . import check_device
from .numpy_engine import NumpyEngine


class TorchEvaluator:
    """The NumpyNetwork interface on torch autograd. It synchronizes every step."""

    def __init__(self, spec, dtype, device):
        import torch

        from ..torch_network import TorchNetwork

        self.torch = torch
        self.device = torch.device(device)
        self.tdtype = torch.float64 if dtype == np.float64 else torch.float32
        self.module = TorchNetwork(spec, self.tdtype, self.device)
        self.params = list(self.module.parameters())
        self.size = sum(p.numel() for p in self.params)
        self.weight_slices = weight_slices(spec)
        self.ensembles = []
        self._X = None
        self._Xt = None
        self._out = None

    def step_threads(self):
        """One torch thread while it steps on the CPU (core/blas.py): each step's ops are small
        and read back at once."""
        return nullcontext() if self.device.type != "cpu" else one_torch_thread(self.torch)

    def _inputs(self, X):
        if self._X is not X:
            self._X, self._Xt = X, self.torch.as_tensor(X, dtype=self.tdtype, device=self.device)
        return self._Xt

    def outputs(self, theta, X):
        torch = self.torch
        self.module.load_flat(torch.as_tensor(theta, device=self.device))
        self._out = self.module(self._inputs(X))
        return self._out.detach().cpu().numpy().astype(theta.dtype)

    def backward(self, theta, grad_outputs, out=None):
        torch = self.torch
        g = torch.as_tensor(grad_outputs, dtype=self.tdtype, device=self.device)
        grads = torch.autograd.grad(self._out, self.params, grad_outputs=g, retain_graph=True)
        flat = torch.cat([gr.reshape(-1) for gr in grads]).cpu().numpy()
        if out is not None:
            out[...] = flat
            return out
        return flat.astype(theta.dtype)

    def jacobian(self, theta, X):
        return per_sample_jacobian(self, theta, X)

    def member_outputs(self):
        return None


class AutogradEngine(NumpyEngine):
    def __init__(self, config, X, y, thetas, lrs, seeds, order):
        check_device(config.run.device)
        net = TorchEvaluator(config.architecture, np.asarray(thetas).dtype, config.run.device)
        super().__init__(config, X, y, thetas, lrs, seeds, order, net=net)
