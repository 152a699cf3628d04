"""The architecture built as a torch nn.Module: the autograd reference for the mathematics,
and the path for cuda and mps devices. Parameter order matches core/architecture.py's
flattening, so ``load_flat`` and ``flat`` move a flat theta in and out."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import activations
from .architecture import (Activation, ArchitectureSpec, Conv2d, Dense, Ensemble, Flatten, Pool, Residual,
                           frozen_weight, output_shape, weight_slices)


class _Act(nn.Module):
    def __init__(self, kind, param):
        super().__init__()
        self.kind, self.param = kind, param

    def forward(self, x):
        return activations.torch_forward(self.kind, self.param, x)


class _Residual(nn.Module):
    def __init__(self, inner, scale):
        super().__init__()
        self.inner, self.scale = inner, scale

    def forward(self, x):
        return x + self.scale * self.inner(x)


class _Ensemble(nn.Module):
    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x):
        outs = [m(x) for m in self.members]
        total = outs[0]
        for o in outs[1:]:
            total = total + o
        return total


class _Pool(nn.Module):
    def __init__(self, kind, kernel, stride):
        super().__init__()
        self.pool = torch.nn.functional.max_pool2d if kind == "max_pool" else torch.nn.functional.avg_pool2d
        self.kernel, self.stride = kernel, stride

    def forward(self, x):
        return self.pool(x, self.kernel, self.stride)


class _FrozenLinear(nn.Module):
    """A frozen dense layer: its W is a buffer, not a parameter, so it is not in theta (load_flat,
    flat and autograd's gradient skip it) but moves with .to(dtype, device)."""

    def __init__(self, W):
        super().__init__()
        self.register_buffer("weight", torch.as_tensor(W))

    def forward(self, x):
        return x @ self.weight.T


def _build(blocks, shape):
    """The modules of ``blocks`` on an input of ``shape`` ((width,) or (channels, height, width))."""
    layers = []
    for block in blocks:
        if isinstance(block, Dense) and block.frozen is not None:
            layers.append(_FrozenLinear(frozen_weight(block, shape[0])))
        elif isinstance(block, Dense):
            layers.append(nn.Linear(shape[0], block.width, bias=block.bias))
        elif isinstance(block, Conv2d):  # weight (out, in, k, k): row-major, the layout's out x (in k k)
            layers.append(nn.Conv2d(shape[0], block.channels, block.kernel, block.stride, block.padding, bias=block.bias))
        elif isinstance(block, Pool):
            layers.append(_Pool(block.type, block.kernel, block.step))
        elif isinstance(block, Flatten):
            layers.append(nn.Flatten())
        elif isinstance(block, Activation):
            layers.append(_Act(block.kind, block.value))
        elif isinstance(block, Residual):
            inner, _ = _build(block.blocks, shape)
            layers.append(_Residual(inner, block.scale))
        elif isinstance(block, Ensemble):
            built = [_build(m, shape) for m in block.members]
            layers.append(_Ensemble([b[0] for b in built]))
        shape = output_shape([block], shape, "")
    return nn.Sequential(*layers), shape


class TorchNetwork(nn.Module):
    """nn.Module for a spec: forward(X) -> f of shape (n,), or (n, C) for C outputs."""

    def __init__(self, spec: ArchitectureSpec, dtype=torch.float64, device="cpu"):
        super().__init__()
        self.in_shape = spec.in_shape
        self.body, _ = _build(spec.blocks, self.in_shape)
        self.weight_slices = weight_slices(spec)  # (name, slice, matrix shape), as NumpyNetwork's
        self.to(dtype=dtype, device=device)

    def forward(self, X):
        if len(self.in_shape) == 3:  # each row an image, channel by channel, row-major
            X = X.reshape((X.shape[0],) + self.in_shape)
        out = self.body(X)
        return out[:, 0] if out.shape[1] == 1 else out  # (n,) for a scalar output, (n, C) for C

    def load_flat(self, theta) -> "TorchNetwork":
        theta = torch.as_tensor(np.asarray(theta) if not torch.is_tensor(theta) else theta)
        offset = 0
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(theta[offset: offset + p.numel()].reshape(p.shape))
                offset += p.numel()
        return self

    def flat(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.parameters()])


class AutogradNetwork:
    """A TorchNetwork behind the numpy network's interface (numpy in, numpy out: ``outputs``,
    ``backward``, ``jacobian``, ``size``, ``weight_slices``, ``step_threads``), on any torch
    device and in float32 or float64: the network of the specs the numpy network does not build
    (image blocks: core/architecture.py needs_autograd), and a Trainer's ``net`` for them."""

    ensembles = ()  # no ensemble shares recorded through this path

    def __init__(self, spec: ArchitectureSpec, dtype=np.float64, device="cpu"):
        self.device = torch.device(device)
        self.tdtype = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
        self.module = TorchNetwork(spec, self.tdtype, self.device)
        self.params = list(self.module.parameters())
        self.size = sum(p.numel() for p in self.params)
        self.weight_slices = self.module.weight_slices
        self._X = self._Xt = self._out = None

    def step_threads(self):
        """One torch thread while it steps on the CPU (core/blas.py): each step's ops are small
        and read back at once."""
        from contextlib import nullcontext

        from .blas import one_torch_thread

        return nullcontext() if self.device.type != "cpu" else one_torch_thread(torch)

    def _inputs(self, X):
        if self._X is not X:  # the data go to the device once
            self._X, self._Xt = X, torch.as_tensor(X, dtype=self.tdtype, device=self.device)
        return self._Xt

    def outputs(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """f(theta; x_i) for every row of X; keeps the graph for ``backward``."""
        self.module.load_flat(torch.as_tensor(theta, device=self.device))
        self._out = self.module(self._inputs(X))
        return self._out.detach().cpu().numpy().astype(theta.dtype)

    def backward(self, theta: np.ndarray, grad_outputs: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """sum_i grad_outputs[i] grad_theta f(theta; x_i) for the X of the last ``outputs`` call."""
        g = torch.as_tensor(grad_outputs, dtype=self.tdtype, device=self.device)
        grads = torch.autograd.grad(self._out, self.params, grad_outputs=g, retain_graph=True)
        flat = torch.cat([gr.reshape(-1) for gr in grads]).cpu().numpy()
        if out is None:
            return flat.astype(theta.dtype)
        out[...] = flat
        return out

    def jacobian(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        from .network import per_sample_jacobian

        return per_sample_jacobian(self, theta, X)

    def member_outputs(self):
        return None
