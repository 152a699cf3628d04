"""The batched network: S networks of one architecture stepped together in torch, on the CPU
or a GPU, with a hand-written backward on a (S, P) parameter matrix (one row per run).

Every block type is covered: dense (with or without bias), the 11 activations, residual and
ensemble blocks. Each step is a handful of batched matrix products whatever S is, and nothing
here reads a value back to the host (the batched engine, core/engines/batched_engine.py, reads
once per advance). The loss and the update rules' torch forms live beside their numpy forms
(core/losses.py, core/optimizers.py). Torch autograd (core/torch_network.py) stays the reference
for the mathematics; tests/test_family.py checks this file against it block by block.
"""

from __future__ import annotations

import torch

from . import activations
from .architecture import ArchitectureSpec, parameter_layout
from .network import NodeBuilder, ActivationNode


class _Dense:
    """Activations are held feature-major, (S, width, n): the first layer's product and its weight
    gradient are then one (S * out, in) x (in, n) matrix product each instead of S small ones."""

    def __init__(self, offset: int, out: int, inp: int, bias: bool, first: bool):
        self.shape = (out, inp)
        self.w = slice(offset, offset + out * inp)
        self.b = slice(offset + out * inp, offset + out * inp + out) if bias else None
        self.first = first  # the input is the data: shared by every run, and needs no gradient

    def weight(self, theta):
        return theta[:, self.w].view(theta.shape[0], *self.shape)

    def forward(self, theta, h):
        S, (out, inp) = theta.shape[0], self.shape
        if h.dim() == 2:  # the data X^T (in, n), the same for every run
            z = (theta[:, self.w].reshape(S * out, inp) @ h).view(S, out, -1)
        else:
            z = self.weight(theta) @ h
        if self.b is not None:
            z = z + theta[:, self.b].unsqueeze(2)
        return z, h

    def backward(self, theta, g, h, grad):
        S = theta.shape[0]
        if h.dim() == 2:
            grad[:, self.w] = (g.reshape(S * self.shape[0], -1) @ h.T).view(S, -1)
        else:
            grad[:, self.w] = (g @ h.transpose(1, 2)).reshape(S, -1)
        if self.b is not None:
            grad[:, self.b] = g.sum(dim=2)
        if self.first:
            return None
        if self.shape[0] == 1:  # an output layer: an outer product, cheaper broadcast than as S products
            return theta[:, self.w].unsqueeze(2) * g
        return self.weight(theta).transpose(1, 2) @ g


class _Activation(ActivationNode):
    """The numpy node's backward (g times the derivative), with the torch forward."""

    __slots__ = ()

    def forward(self, theta, h):
        return activations.torch_value_and_derivative(self.kind, self.param, h)


class _ReLU:
    """ReLU keeps its output and masks the gradient in one pass (the kernel autograd uses):
    a third of the cost of forming the 0/1 derivative and multiplying by it."""

    def forward(self, theta, h):
        value = torch.relu(h)
        return value, value

    def backward(self, theta, g, value, grad):
        return torch.ops.aten.threshold_backward(g, value, 0)


class BatchedNetwork:
    """f(theta_s; X) for the S rows theta_s of a (S, P) tensor, and the batched vector-Jacobian
    product. Not thread-safe: the caches of the last forward feed the next backward."""

    def __init__(self, spec: ArchitectureSpec):
        self.size = sum(size for _name, size, _shape in parameter_layout(spec))
        builder = NodeBuilder(_Dense, lambda kind, value: _ReLU() if kind == "relu" else _Activation(kind, value))
        self.root = builder.build(spec.blocks, spec.input_dim)
        self._cache = None

    def outputs(self, theta, XT):
        """(S, n): f(theta_s; x_i) for the data given transposed, XT = X^T (d, n). Keeps the caches
        for ``backward``."""
        out, self._cache = self.root.forward(theta, XT)
        return out[:, 0, :]

    def backward(self, theta, grad_outputs, grad):
        """Fill ``grad`` (S, P) with sum_i grad_outputs[s, i] grad f(theta_s; x_i)."""
        self.root.backward(theta, grad_outputs.unsqueeze(1), self._cache, grad)
        return grad
