"""The numpy network's image nodes: conv2d, max- and average-pooling, flatten, and the input
that reads each row of X as an image (core/network.py's NodeBuilder builds them, issue #21).

Inside the network an image is held channel-last, (n, height, width, channels): a conv layer is
then ONE matrix product over all samples and positions, (n Ho Wo, C k k) x (C k k, out), whose
output is already channel-last, and so is its weight gradient (out, n Ho Wo) x (n Ho Wo, C k k).
The (n, Ho, Wo, C, k, k) windows are a strided view of the (padded) input (im2col: one copy
when reshaped); their adjoint adds back k^2 strided slices of the image, one per offset in the
window (``_slices``), as pooling reads them. The input (rows channel
by channel, row-major) and flatten (channel by channel, row-major, as torch's nn.Flatten on
(n, C, H, W)) transpose at the edges, so theta's layout is core/architecture.py's: each kernel
(out, in, k, k) row-major, the matrix out x (in k k).

Every node has the interface of core/network.py's nodes: ``forward(theta, h) -> (out, cache)``
and ``backward(theta, g, cache, grad)``, where ``grad`` is the flat gradient (P,) summed over
samples, or the per-sample Jacobian (n, P) whose row i is sample i's own gradient (samples
never mix before a weight gradient). Any float dtype: the arrays keep theta's and X's.

Max-pooling's ties: the gradient goes to the FIRST maximum of a window in row-major order
(np.argmax), the convention of torch's max_pool2d on the CPU (tests/test_conv_numpy.py checks it
on tied windows).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .architecture import Conv2d, Flatten, Pool


def _side(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


def _windows(x: np.ndarray, kernel: int, stride: int, out_h: int, out_w: int) -> np.ndarray:
    """The read-only view (n, Ho, Wo, C, k, k) of x (n, H, W, C): window (i, j) of channel c."""
    sn, sh, sw, sc = x.strides
    return as_strided(x, (x.shape[0], out_h, out_w, x.shape[3], kernel, kernel),
                      (sn, stride * sh, stride * sw, sc, sh, sw), writeable=False)


def _slices(shape: tuple, kernel: int, stride: int, out_h: int, out_w: int):
    """((a, b), index) of each offset in a window, row-major, with the strided index of an
    (n, H, W, C) image that offset (a, b) of every window reads: the image seen as k^2 pieces."""
    rows, columns = stride * (out_h - 1) + 1, stride * (out_w - 1) + 1
    for a in range(kernel):
        for b in range(kernel):
            yield (a, b), (slice(None), slice(a, a + rows, stride), slice(b, b + columns, stride), slice(None))


class ImageInput:
    """Rows of X (channel by channel, row-major) as channel-last images (a view). No gradient below it."""

    __slots__ = ("shape",)

    def __init__(self, shape: tuple):
        self.shape = shape  # (channels, height, width)

    def forward(self, theta, X):
        return X.reshape((X.shape[0],) + self.shape).transpose(0, 2, 3, 1), None

    def backward(self, theta, g, cache, grad):
        return None


class ConvNode:
    """h -> conv2d(h, W) (+ b) on channel-last images; W is theta's (out, in, k, k) slice."""

    __slots__ = ("w_slice", "b_slice", "out_channels", "kernel", "stride", "padding", "first", "in_shape", "out_hw")

    def __init__(self, offset: int, block: Conv2d, in_shape: tuple, first: bool):
        channels, height, width = in_shape
        k = block.kernel
        size = block.channels * channels * k * k
        self.w_slice = slice(offset, offset + size)
        self.b_slice = slice(offset + size, offset + size + block.channels) if block.bias else None
        self.out_channels, self.kernel, self.stride, self.padding = block.channels, k, block.stride, block.padding
        self.first = first  # the input needs no gradient
        self.in_shape = in_shape
        self.out_hw = (_side(height + 2 * block.padding, k, block.stride),
                       _side(width + 2 * block.padding, k, block.stride))

    def _columns(self, h: np.ndarray) -> np.ndarray:
        """(n Ho Wo, C k k): each output position's window, row-major in (C, k, k) as W's rows."""
        p = self.padding
        if p:
            h = np.pad(h, ((0, 0), (p, p), (p, p), (0, 0)))
        out_h, out_w = self.out_hw
        return _windows(h, self.kernel, self.stride, out_h, out_w).reshape(h.shape[0] * out_h * out_w, -1)

    def forward(self, theta, h):
        cols = self._columns(h)  # not kept between calls: a caller may refill the same X
        W = theta[self.w_slice].reshape(self.out_channels, -1)
        out = cols @ W.T
        if self.b_slice is not None:
            out += theta[self.b_slice]
        return out.reshape((h.shape[0],) + self.out_hw + (self.out_channels,)), cols

    def backward(self, theta, g, cols, grad):
        n, o = g.shape[0], self.out_channels
        g = g.reshape(-1, o)  # (n Ho Wo, out); a copy where g is a transposed view (below flatten)
        if grad.ndim == 2:  # per sample: sample i's own (out, C k k) sum over its positions
            per = g.reshape(n, -1, o)
            grad[:, self.w_slice] = np.matmul(per.transpose(0, 2, 1), cols.reshape(n, per.shape[1], -1)).reshape(n, -1)
            if self.b_slice is not None:
                grad[:, self.b_slice] = per.sum(axis=1)
        else:
            np.matmul(g.T, cols, out=grad[self.w_slice].reshape(o, -1))  # straight into the flat gradient
            if self.b_slice is not None:
                grad[self.b_slice] = g.sum(axis=0)
        if self.first:
            return None
        channels, height, width = self.in_shape
        p, k = self.padding, self.kernel
        W = theta[self.w_slice].reshape(o, channels, k, k)
        dx = np.zeros((n, height + 2 * p, width + 2 * p, channels), dtype=g.dtype)
        part = (n,) + self.out_hw + (channels,)
        # the windows' adjoint, offset by offset: k^2 products (n Ho Wo, out) x (out, C), each added
        # where that offset of every window read (overlapping windows add up)
        for (a, b), index in _slices(dx.shape, k, self.stride, *self.out_hw):
            dx[index] += (g @ W[:, :, a, b]).reshape(part)
        return dx[:, p:p + height, p:p + width, :] if p else dx


class _PoolNode:
    """A pooling window's geometry: its kernel, stride and the output's height and width."""

    __slots__ = ("kernel", "stride", "out_hw")

    def __init__(self, block: Pool, in_shape: tuple):
        self.kernel, self.stride = block.kernel, block.step
        self.out_hw = (_side(in_shape[1], block.kernel, block.step), _side(in_shape[2], block.kernel, block.step))


class MaxPoolNode(_PoolNode):
    """The largest value of each window, channel by channel; its gradient goes to the first
    maximum of the window in row-major order, as torch's max_pool2d (a later offset takes over
    only where it is strictly larger)."""

    __slots__ = ()

    def forward(self, theta, h):
        pieces = _slices(h.shape, self.kernel, self.stride, *self.out_hw)
        _offset, index = next(pieces)
        best = h[index].copy()
        # the offset a k + b of each window's maximum
        where = np.zeros(best.shape, dtype=np.uint8 if self.kernel < 16 else np.int32)
        for j, (_offset, index) in enumerate(pieces, start=1):
            piece = h[index]
            np.copyto(where, j, where=piece > best)
            np.maximum(best, piece, out=best)
        return best, (where, h.shape)

    def backward(self, theta, g, cache, grad):
        where, shape = cache
        dx = np.zeros(shape, dtype=g.dtype)
        overlapping = self.stride < self.kernel
        for j, (_offset, index) in enumerate(_slices(shape, self.kernel, self.stride, *self.out_hw)):
            if overlapping:
                dx[index] += g * (where == j)
            else:  # each input in at most one window: written in place
                np.multiply(g, where == j, out=dx[index])
        return dx


class AvgPoolNode(_PoolNode):
    """The mean of each window, channel by channel."""

    __slots__ = ()

    def forward(self, theta, h):
        pieces = _slices(h.shape, self.kernel, self.stride, *self.out_hw)
        _offset, index = next(pieces)
        out = h[index].copy()
        for _offset, index in pieces:
            out += h[index]
        out /= self.kernel * self.kernel
        return out, h.shape

    def backward(self, theta, g, shape, grad):
        share = g / (self.kernel * self.kernel)
        dx = np.zeros(shape, dtype=g.dtype)
        for _offset, index in _slices(shape, self.kernel, self.stride, *self.out_hw):
            dx[index] += share
        return dx


class FlattenNode:
    """A channel-last image as the vector channel by channel, row-major (torch's order)."""

    __slots__ = ()

    def forward(self, theta, h):
        if not isinstance(h, np.ndarray) or h.ndim == 2:  # a vector (or core/network.py's Product) stays as it is
            return h, None
        return h.transpose(0, 3, 1, 2).reshape(h.shape[0], -1), h.shape

    def backward(self, theta, g, shape, grad):
        if shape is None:
            return g
        if not isinstance(g, np.ndarray):  # a dense output layer's RankOne gradient (core/network.py)
            g = g.full()
        n, height, width, channels = shape
        return g.reshape(n, channels, height, width).transpose(0, 2, 3, 1)


def image_node(block, shape: tuple, offset: int, first: bool):
    """(node, output shape, parameters it holds) for an image block on an input of ``shape``
    ((channels, height, width), or a width for a flatten of a vector); NodeBuilder's hook."""
    if isinstance(block, Conv2d):
        node = ConvNode(offset, block, shape, first)
        size = block.channels * shape[0] * block.kernel ** 2 + (block.channels if block.bias else 0)
        return node, (block.channels,) + node.out_hw, size
    if isinstance(block, Pool):
        node = (MaxPoolNode if block.type == "max_pool" else AvgPoolNode)(block, shape)
        return node, (shape[0],) + node.out_hw, 0
    if isinstance(block, Flatten):
        return FlattenNode(), (shape if isinstance(shape, int) else int(np.prod(shape))), 0
    raise TypeError(f"not an image block: {block!r}")
