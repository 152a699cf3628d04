"""The architecture built as a torch nn.Module: the autograd reference for the mathematics,
and the path for cuda and mps devices. Parameter order matches core/architecture.py's
flattening, so ``load_flat`` and ``flat`` move a flat theta in and out."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import activations
from .architecture import Activation, ArchitectureSpec, Dense, Ensemble, Residual


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


def _build(blocks, width):
    layers = []
    for block in blocks:
        if isinstance(block, Dense):
            layers.append(nn.Linear(width, block.width, bias=block.bias))
            width = block.width
        elif isinstance(block, Activation):
            layers.append(_Act(block.kind, block.value))
        elif isinstance(block, Residual):
            inner, _ = _build(block.blocks, width)
            layers.append(_Residual(inner, block.scale))
        elif isinstance(block, Ensemble):
            built = [_build(m, width) for m in block.members]
            layers.append(_Ensemble([b[0] for b in built]))
            width = built[0][1]
    return nn.Sequential(*layers), width


class TorchNetwork(nn.Module):
    """nn.Module for a spec: forward(X) -> f of shape (n,)."""

    def __init__(self, spec: ArchitectureSpec, dtype=torch.float64, device="cpu"):
        super().__init__()
        self.body, _ = _build(spec.blocks, spec.input_dim)
        self.to(dtype=dtype, device=device)

    def forward(self, X):
        return self.body(X)[:, 0]

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
