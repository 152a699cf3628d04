"""The hand-written numpy network: forward, backward (vector-Jacobian product) and per-sample
Jacobian for every block type, on a flat parameter vector in spec order.

This is the fast CPU path. Torch autograd (core/torch_network.py) is the single reference for
the mathematics: tests check this file against it and against finite differences, block by
block. Parameters are views into the flat vector, so an update never copies a layer.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import numpy as np

from . import activations
from .blas import one_blas_thread, one_torch_thread
from . import conv_nodes
from .architecture import (IMAGE_BLOCKS, WEIGHT_BLOCKS, Activation, ArchitectureSpec, Conv2d, Dense, Ensemble, Residual,
                           frozen_weight, needs_autograd, output_shape, parameter_layout, weight_slices)
from .errors import TrainingError


class RankOne:
    """The gradient a b^T (column a: n x 1, row b: 1 x k) kept as its two factors. Below a scalar
    output every dense layer's incoming gradient has this form until an activation scales it
    sample by sample, so such a layer's two products (n k^2 multiplications each) become a
    vector-matrix product and an outer product: two of a residual block's six products.
    Sums and scalings stay factored where they can; anything else gets the full matrix."""

    __slots__ = ("a", "b")
    __array_ufunc__ = None  # ndarray + RankOne must come here, not become an object array

    def __init__(self, a, b):
        self.a, self.b = a, b

    def full(self):
        return self.a * self.b

    def __mul__(self, other):
        if isinstance(other, (int, float)):
            return RankOne(self.a, other * self.b)
        out = self.full()
        out *= other
        return out

    __rmul__ = __mul__

    def __add__(self, other):
        if isinstance(other, RankOne):
            if other.a is self.a:  # the same output's weights: still rank one
                return RankOne(self.a, self.b + other.b)
            other = other.full()
        out = self.full()
        out += other
        return out

    __radd__ = __add__


class Product:
    """coef_1 A_1 W_1^T + ... + D: dense layers' outputs, not multiplied out yet. A scalar output
    layer needs only (A W^T) w^T = A (W^T w^T), a vector product, so below it the residual
    branch's last layer costs no n x k x k product (docs/performance.md). An activation or a
    wide layer takes ``full()``, the same product as before, computed once however many take it.
    The forward's mirror of RankOne."""

    __slots__ = ("dense", "terms", "value")
    __array_ufunc__ = None  # ndarray + Product must come here

    def __init__(self, dense, terms):
        self.dense = dense  # an (n, k) array or None
        self.terms = terms  # [(coef, A, W)]: coef * A @ W.T
        self.value = None  # full(), once asked for

    def full(self) -> np.ndarray:
        if self.value is None:
            out = None
            for coef, A, W in self.terms:
                term = A @ W.T
                if coef != 1.0:
                    term *= coef
                if out is None:
                    out = term  # a new array: the sums below may go into it
                else:
                    out += term
            if self.dense is not None:
                out += self.dense
            self.value = out
        return self.value

    def times(self, Wt: np.ndarray) -> np.ndarray:
        """self @ Wt for a narrow Wt (k x 1): vector products only."""
        if self.value is not None:
            return self.value @ Wt
        out = self.dense @ Wt if self.dense is not None else 0.0
        for coef, A, W in self.terms:
            out = out + coef * (A @ (W.T @ Wt))
        return out

    def left(self, B: np.ndarray) -> np.ndarray:
        """B @ self for a short B (1 x n): vector products only."""
        if self.value is not None:
            return B @ self.value
        out = B @ self.dense if self.dense is not None else 0.0
        for coef, A, W in self.terms:
            out = out + coef * ((B @ A) @ W.T)
        return out

    def _parts(self):
        return (self.value, []) if self.value is not None else (self.dense, self.terms)

    def __add__(self, other):
        dense, terms = self._parts()
        other_dense, other_terms = other._parts() if type(other) is Product else (other, [])
        if other_dense is not None:
            dense = other_dense if dense is None else dense + other_dense
        return Product(dense, terms + other_terms) if terms or other_terms else dense

    __radd__ = __add__

    def __mul__(self, scale):
        if scale == 1.0:
            return self
        dense, terms = self._parts()
        return Product(None if dense is None else scale * dense, [(scale * c, A, W) for c, A, W in terms])

    __rmul__ = __mul__


def full(h):
    """An array, whether ``h`` is one or a Product."""
    return h.full() if type(h) is Product else h


# multiplications below which a branch end's product is cheaper than the Product bookkeeping
# (residual GELU on 100 samples: width 16 was slower deferred, 64 gains; docs/performance.md)
DEFER_PRODUCTS_FROM = 1 << 16


class _DenseNode:
    __slots__ = ("w_slice", "b_slice", "shape", "first", "defer")

    def __init__(self, offset: int, out: int, inp: int, bias: bool, first: bool):
        self.shape = (out, inp)
        self.w_slice = slice(offset, offset + out * inp)
        self.b_slice = slice(offset + out * inp, offset + out * inp + out) if bias else None
        self.first = first  # the input needs no gradient
        self.defer = False  # output as a Product: set where a sum takes it (NumpyNetwork), not for a torch twin

    def forward(self, theta, h):
        W = theta[self.w_slice].reshape(self.shape)
        if type(h) is Product:
            if self.shape[0] == 1:  # a scalar output: vector products
                out = h.times(W.T)
                if self.b_slice is not None:
                    out = out + theta[self.b_slice]
                return out, h
            h = h.full()
        if self.defer and self.b_slice is None and h.shape[0] * W.size >= DEFER_PRODUCTS_FROM:
            return Product(None, [(1.0, h, W)]), h
        out = h @ W.T
        if self.b_slice is not None:
            out += theta[self.b_slice]
        return out, h

    def backward(self, theta, g, h, grad):
        if type(g) is RankOne:
            if grad.ndim == 1:
                return self._backward_rank_one(theta, g, h, grad)
            g = g.full()
        if grad.ndim == 2:  # per sample (n, P): row i is sample i's own outer product, not the sum
            h = full(h)
            grad[:, self.w_slice] = (g[:, :, None] * h[:, None, :]).reshape(len(g), -1)
            if self.b_slice is not None:
                grad[:, self.b_slice] = g
        else:
            if type(h) is Product:  # a scalar output layer's input: vector products for one column
                grad[self.w_slice] = (h.left(g.T) if g.shape[1] == 1 else g.T @ h.full()).reshape(-1)
            else:
                np.matmul(g.T, h, out=grad[self.w_slice].reshape(self.shape))  # straight into the flat gradient
            if self.b_slice is not None:
                grad[self.b_slice] = g.sum(axis=0)
        if self.first:
            return None
        if self.shape[0] == 1:  # an output layer: the gradient below is g w, rank one
            return RankOne(g, theta[self.w_slice][None, :])
        return g @ theta[self.w_slice].reshape(self.shape)

    def _backward_rank_one(self, theta, g, h, grad):
        """(a b)^T h = b^T (a^T h) and (a b) W = a (b W): outer and vector products only."""
        a_h = h.left(g.a.T) if type(h) is Product else g.a.T @ h
        np.multiply(g.b.T, a_h, out=grad[self.w_slice].reshape(self.shape))
        if self.b_slice is not None:
            grad[self.b_slice] = g.b[0] * g.a.sum()
        if self.first:
            return None
        return RankOne(g.a, g.b @ theta[self.w_slice].reshape(self.shape))


class _FrozenDenseNode:
    """A frozen dense layer h -> W h with a fixed W (core/architecture.py Dense.frozen): no slice
    of theta, nothing written to the gradient; only the gradient below passes through W."""

    __slots__ = ("W", "first")

    def __init__(self, W: np.ndarray, first: bool):
        self.W, self.first = W, first

    def forward(self, theta, h):
        if type(h) is Product and self.W.shape[0] == 1:
            return h.times(self.W.T), None
        return full(h) @ self.W.T, None

    def backward(self, theta, g, h, grad):
        if self.first:
            return None
        if type(g) is RankOne:
            return RankOne(g.a, g.b @ self.W)
        if self.W.shape[0] == 1:  # an output layer: the gradient below is g w, rank one
            return RankOne(g, self.W)
        return g @ self.W


class ActivationNode:
    __slots__ = ("kind", "param", "erf")

    def __init__(self, kind: str, param: float, erf=activations.vectorized_erf):
        self.kind, self.param, self.erf = kind, param, erf

    def forward(self, theta, h):
        return activations.forward(self.kind, self.param, full(h), self.erf)

    def backward(self, theta, g, derivative, grad):
        return g * derivative


class _SequenceNode:
    __slots__ = ("nodes",)

    def __init__(self, nodes):
        self.nodes = nodes

    def forward(self, theta, h):
        caches = []
        for node in self.nodes:
            h, cache = node.forward(theta, h)
            caches.append(cache)
        return h, caches

    def backward(self, theta, g, caches, grad):
        for node, cache in zip(reversed(self.nodes), reversed(caches)):
            g = node.backward(theta, g, cache, grad)
            if g is None:
                return None
        return g


class _ResidualNode:
    __slots__ = ("inner", "scale")

    def __init__(self, inner: _SequenceNode, scale: float):
        self.inner, self.scale = inner, scale

    def forward(self, theta, h):
        branch, caches = self.inner.forward(theta, h)
        return h + self.scale * branch, caches

    def backward(self, theta, g, caches, grad):
        g_branch = self.inner.backward(theta, self.scale * g, caches, grad)
        return g if g_branch is None else g + g_branch


class _EnsembleNode:
    __slots__ = ("members", "outputs")

    def __init__(self, members: list[_SequenceNode]):
        self.members = members
        self.outputs = None  # each member's output at the last forward (ensemble shares)

    def forward(self, theta, h):
        results = [m.forward(theta, h) for m in self.members]
        self.outputs = [r[0] for r in results]
        return sum(self.outputs[1:], self.outputs[0]), [r[1] for r in results]  # new arrays: no copy needed

    def backward(self, theta, g, caches, grad):
        total = None
        for member, cache in zip(self.members, caches):
            gi = member.backward(theta, g, cache, grad)
            if gi is not None:
                total = gi if total is None else total + gi
        return total


class NodeBuilder:
    """The node tree of a spec's blocks. ``dense(offset, out, in, bias, first)`` and
    ``activation(kind, value)`` make the leaves (numpy here, torch in core/batched.py), and
    ``image(block, shape, offset, first) -> (node, shape, size)`` the conv2d, pooling and flatten
    ones (core/conv_nodes.py; None: refused); the sequence, residual and ensemble nodes only add
    and chain, so all share them. ``width``: a vector's width, or an image's (channels, height, width)."""

    def __init__(self, dense, activation, image=None, frozen=None):
        """``frozen(W, first)``: the node of a frozen dense layer; None where the engine has none."""
        self.dense, self.activation, self.image, self.frozen = dense, activation, image, frozen
        self.offset, self.first = 0, True  # first: no parameter before this point needs an input gradient
        self.ensembles: list[_EnsembleNode] = []

    def build(self, blocks, width) -> _SequenceNode:
        nodes = []
        for block in blocks:
            if isinstance(block, Dense) and block.frozen is not None:
                if self.frozen is None:
                    raise TrainingError("frozen dense layers train on the numpy and autograd engines only")
                node = self.frozen(frozen_weight(block, width), self.first)  # no parameter: ``first`` unchanged
                width = block.width
            elif isinstance(block, Dense):
                node = self.dense(self.offset, block.width, width, block.bias, self.first)
                self.offset += block.width * width + (block.width if block.bias else 0)
                self.first = False
                width = block.width
            elif isinstance(block, Activation):
                node = self.activation(block.kind, block.value)
            elif isinstance(block, Residual):
                first = self.first
                node = _ResidualNode(self.build(block.blocks, width), block.scale)
                # the skip path still carries the input, but no gradient is needed before any parameter
                self.first = first and not _has_dense(block.blocks)
            elif isinstance(block, Ensemble):
                first = self.first
                members = []
                for member in block.members:
                    self.first = first
                    members.append(self.build(member, width))
                self.first = first and not any(_has_dense(m) for m in block.members)
                node = _EnsembleNode(members)
                self.ensembles.append(node)
                end = output_shape(block.members[0], width if isinstance(width, tuple) else (width,), "")
                width = end[0] if len(end) == 1 else end
            elif isinstance(block, IMAGE_BLOCKS):
                if self.image is None:  # core/batched.py
                    raise TrainingError(f"{block.type} blocks do not train on the batched engine: "
                                        "use run.backend 'numpy' (on the cpu) or 'torch'")
                node, width, size = self.image(block, width, self.offset, self.first)
                self.offset += size
                self.first = self.first and not isinstance(block, Conv2d)
            nodes.append(node)
        return _SequenceNode(nodes)


class NumpyNetwork:
    """f(theta; X) for a spec, with hand-written backward. Not thread-safe: it keeps the
    caches of the last forward for the following backward."""

    def __init__(self, spec: ArchitectureSpec, erf=activations.vectorized_erf):
        """``erf``: GELU's erf in place (core/activations.py): torch's vectorized one, quicker
        than scipy's, or ``scipy_erf``. Image blocks are core/conv_nodes.py's."""
        reason = needs_autograd(spec)
        if reason is not None:
            raise TrainingError(reason)
        self.spec = spec
        self.layout = parameter_layout(spec)
        self.size = sum(s for _n, s, _sh in self.layout)
        self.erf = erf
        self.kinds = set()  # the activations it computes

        def activation(kind, param):
            self.kinds.add(kind)
            return ActivationNode(kind, param, erf)

        builder = NodeBuilder(_DenseNode, activation, image=conv_nodes.image_node, frozen=_FrozenDenseNode)
        self.root = builder.build(spec.blocks, spec.input_dim if spec.input_shape is None else spec.in_shape)
        if spec.input_shape is not None:  # rows of X as images
            self.root.nodes.insert(0, conv_nodes.ImageInput(spec.in_shape))
        _defer_branch_ends(self.root)
        self.ensembles: list[_EnsembleNode] = builder.ensembles
        self._cache = None
        self.weight_slices = weight_slices(spec)  # (name, slice, shape) of each weight matrix, for stable ranks and layer norms

    def step_threads(self):
        """One BLAS thread while it steps, whatever its products' sizes (core/blas.py
        ``one_blas_thread`` says why), and one torch thread where its GELUs call torch's erf."""
        torch = activations.torch_module() if "gelu" in self.kinds and self.erf is activations.vectorized_erf else None
        return _both(one_blas_thread(), nullcontext() if torch is None else one_torch_thread(torch))

    def outputs(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """f(theta; x_i) for every row of X: shape (n,) for a scalar output, (n, C) for C outputs.
        Keeps the caches for ``backward``."""
        out, self._cache = self.root.forward(theta, X)
        out = full(out)
        return out[:, 0] if out.shape[1] == 1 else out

    def backward(self, theta: np.ndarray, grad_outputs: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """sum_i grad_outputs[i] * grad_theta f(theta; x_i), for the X of the last ``outputs`` call
        (grad_outputs (n,) for a scalar output, (n, C): sum_ic grad_outputs[i, c] grad f_c(x_i))."""
        grad = np.empty(self.size, dtype=theta.dtype) if out is None else out
        seed = grad_outputs[:, None] if grad_outputs.ndim == 1 else grad_outputs
        self.root.backward(theta, seed, self._cache, grad)  # may return a RankOne: unused
        return grad

    def jacobian(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The per-sample gradients, (n, P) for a scalar output and (n, C, P) for C outputs, in one
        backward pass per output: samples never mix before the weight gradients, so each dense
        block keeps sample i's outer product in row i instead of summing them (n times cheaper
        than ``per_sample_jacobian``'s n passes)."""
        f = self.outputs(theta, X)
        n = X.shape[0]
        if f.ndim == 1:
            jac = np.zeros((n, self.size), dtype=theta.dtype)  # parameters a sample never reaches stay 0
            self.root.backward(theta, np.ones((n, 1), dtype=theta.dtype), self._cache, jac)
            return jac
        classes = f.shape[1]
        jac = np.zeros((n, classes, self.size), dtype=theta.dtype)
        for c in range(classes):  # output c's rows: a one-hot seed, written into jac[:, c] (a view)
            seed = np.zeros((n, classes), dtype=theta.dtype)
            seed[:, c] = 1.0
            self.root.backward(theta, seed, self._cache, jac[:, c])
        return jac

    def member_outputs(self) -> list[np.ndarray] | None:
        """Each member's output of the first ensemble at the last forward, or None."""
        if not self.ensembles or self.ensembles[0].outputs is None:
            return None
        outputs = [full(o) for o in self.ensembles[0].outputs]
        return [o[:, 0] if o.shape[1] == 1 else o for o in outputs]


@contextmanager
def _both(first, second):
    with first, second:
        yield


def evaluation_network(spec: ArchitectureSpec):
    """A network that evaluates ``spec`` outside the training loop (decision boundaries, a saved
    run's analyses): the numpy one, or torch autograd's where the numpy one has not its blocks
    (needs_autograd: none today)."""
    if needs_autograd(spec) is None:
        return NumpyNetwork(spec)
    from .torch_network import AutogradNetwork  # torch only where it is needed

    return AutogradNetwork(spec)


def per_sample_jacobian(net, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The per-sample gradients grad_theta f(theta; x_i), (n, P) for a scalar output and (n, C, P)
    for C outputs: one backward pass per sample and output, for any network with ``outputs``,
    ``backward(theta, w, out=)`` and ``size``."""
    f = net.outputs(theta, X)
    jac = np.empty(f.shape + (net.size,), dtype=theta.dtype)
    seed = np.zeros(f.shape, dtype=theta.dtype)
    for index in np.ndindex(*f.shape):
        seed[index] = 1.0
        net.backward(theta, seed, out=jac[index])
        seed[index] = 0.0
    return jac


def _defer_branch_ends(sequence: _SequenceNode) -> None:
    """A residual branch's or an ensemble member's last dense layer feeds a sum only, which a
    scalar output layer takes as vector products: there its output stays a Product. Elsewhere
    a Product would only add bookkeeping."""
    for node in sequence.nodes:
        branches = [node.inner] if isinstance(node, _ResidualNode) else getattr(node, "members", [])
        for branch in branches:
            if branch.nodes and isinstance(branch.nodes[-1], _DenseNode):
                branch.nodes[-1].defer = True
            _defer_branch_ends(branch)


def _has_dense(blocks) -> bool:
    """Whether ``blocks`` hold a weight layer (dense or conv2d)."""
    for b in blocks:
        if isinstance(b, WEIGHT_BLOCKS) and not (isinstance(b, Dense) and b.frozen is not None):
            return True
        if isinstance(b, Residual) and _has_dense(b.blocks):
            return True
        if isinstance(b, Ensemble) and any(_has_dense(m) for m in b.members):
            return True
    return False


def initial_parameters(spec: ArchitectureSpec, seed: int, dtype=np.float64) -> np.ndarray:
    """Draw theta_0 with the spec's init scheme and scale from a seeded numpy generator, so
    every backend and device starts from the same bits."""
    rng = np.random.default_rng(seed)
    init = spec.init
    parts = []
    for name, size, shape in parameter_layout(spec):
        if name.endswith(".bias") or init.scheme == "zeros":
            parts.append(np.zeros(size))
            continue
        fan_in = shape[1]
        std = {"he": np.sqrt(2.0 / fan_in), "lecun": np.sqrt(1.0 / fan_in), "normal": init.std}[init.scheme]
        parts.append(rng.normal(0.0, std, size=size))
    theta = np.concatenate(parts) * init.scale
    return theta.astype(dtype)
