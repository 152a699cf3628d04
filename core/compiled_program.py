"""An architecture spec as a small program for the compiled engine (core/compiled_kernels.py).

The network becomes a list of operations on buffers, each buffer one representation of all n
samples held feature-major, (width, n) row-major, so that every inner loop of a product or an
activation runs over the n samples, contiguous. Buffer 0 is the data X^T. Operations:

- DENSE:  out = W in (+ b), W (out x in) at ``w_off`` in theta, b at ``b_off`` (-1: none);
- ACT:    out = s(in), with s'(in) kept in ``extra`` for the backward;
- ADD:    out = in + scale * extra (a residual block's skip sum; an ensemble's members' sum, scale 1).

The backward walks the list in reverse, adding each operation's input gradients into gradient
buffers laid out like the value buffers; buffers that no parameter reaches (the data, an
activation of it) get none. Below the scalar output a buffer's gradient is rank one, u (x) g with g
the output's gradient row, until an activation scales it sample by sample (core/network.py
RankOne): such a buffer keeps only u (``rank_one``, its offset in a vector workspace), so that a
dense layer above it costs matrix-vector products in the backward, not matrix products. Parameters follow core/architecture.py's flattening order, so the
program reads the same flat theta as core/network.py's NumpyNetwork, whose arithmetic (and, in
order of operations, rounding) it repeats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .architecture import Activation, ArchitectureSpec, Dense, Ensemble, Residual

DENSE, ACT, ADD = 0, 1, 2
# activation codes, shared with the kernels
ACTIVATION_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "abs": 3, "relu_k": 4, "gelu": 5, "silu": 6,
                    "softplus": 7, "elu": 8, "tanh": 9, "sigmoid": 10, "leaky_softplus": 11}
# columns of Program.ops; IN_MODE, EXTRA_MODE: how the backward writes that input's gradient
CODE, IN, OUT, EXTRA, W_OFF, B_OFF, KIND, IN_MODE, EXTRA_MODE = range(9)
NO_GRAD, ASSIGN, ACCUMULATE = 0, 1, 2  # the first writer in the backward assigns: no zeroing a step
# columns of Program.values
PARAM, SCALE = range(2)


@dataclass
class Program:
    ops: np.ndarray  # int64 (n_ops, 9): the columns above
    values: np.ndarray  # float64 (n_ops, 2): the activation's parameter, the ADD's scale
    buffers: np.ndarray  # int64 (n_buffers, 2): offset (in units of n) and width of each buffer
    needs_grad: np.ndarray  # bool (n_buffers,): a parameter lies upstream of it
    rows: int  # sum of the buffers' widths: the workspace holds rows x n numbers
    output: int  # the buffer of f (width 1)
    size: int  # the number of parameters
    rank_one: np.ndarray  # int64 (n_buffers,): where the buffer's gradient is u (x) g, u's offset; else -1
    vector_rows: int  # the u's widths summed


def compile_program(spec: ArchitectureSpec) -> Program:
    """The program of ``spec``'s blocks (see the module docstring)."""
    builder = _Builder()
    data = builder.buffer(spec.input_dim, False)
    output = builder.blocks(spec.blocks, data)
    ops = np.array(builder.ops, dtype=np.int64).reshape(-1, 9)
    _gradient_modes(ops, builder.needs_grad)
    values = np.array(builder.values, dtype=np.float64).reshape(-1, 2)
    buffers = np.array(builder.buffers, dtype=np.int64).reshape(-1, 2)
    rank_one = _rank_one(ops, buffers, builder.needs_grad, output)
    widths = np.where(rank_one >= 0, buffers[:, 1], 0)
    return Program(ops, values, buffers, np.array(builder.needs_grad, dtype=bool), builder.rows, output,
                   builder.offset, rank_one, int(widths.sum()))


def _rank_one(ops: np.ndarray, buffers: np.ndarray, needs_grad: list, output: int) -> np.ndarray:
    """Each buffer's offset in the vector workspace where its gradient is rank one, else -1: the
    scalar output's, and a buffer whose every reader is a dense layer or a sum whose output's
    gradient is rank one (W^T (u (x) g) = (W^T u) (x) g); an activation's reader makes it full.
    Readers come after a buffer in the list, so one walk from the last buffer decides."""
    readers = [[] for _ in range(len(buffers))]
    for row in ops:
        readers[int(row[IN])].append(row)
        if row[CODE] == ADD:
            readers[int(row[EXTRA])].append(row)
    rank_one = np.full(len(buffers), -1, dtype=np.int64)
    offset = 0
    for buf in range(len(buffers) - 1, -1, -1):
        if buf == output:
            one = buffers[buf, 1] == 1
        else:
            one = needs_grad[buf] and bool(readers[buf]) and all(
                row[CODE] in (DENSE, ADD) and rank_one[int(row[OUT])] >= 0 for row in readers[buf])
        if one:
            rank_one[buf] = offset
            offset += int(buffers[buf, 1])
    return rank_one


class _Builder:
    def __init__(self):
        self.ops, self.values, self.buffers, self.needs_grad = [], [], [], []
        self.rows = 0
        self.offset = 0  # into theta

    def buffer(self, width: int, needs_grad: bool) -> int:
        self.buffers.append((self.rows, width))
        self.needs_grad.append(needs_grad)
        self.rows += width
        return len(self.buffers) - 1

    def op(self, code, inp, out, extra=-1, w_off=-1, b_off=-1, kind=-1, param=0.0, scale=0.0):
        self.ops.append([code, inp, out, extra, w_off, b_off, kind, NO_GRAD, NO_GRAD])
        self.values.append((param, scale))

    def width(self, buf: int) -> int:
        return int(self.buffers[buf][1])

    def blocks(self, blocks, buf: int) -> int:
        for block in blocks:
            if isinstance(block, Dense):
                inp = self.width(buf)
                out = self.buffer(block.width, True)
                w_off = self.offset
                self.offset += block.width * inp
                b_off = -1
                if block.bias:
                    b_off = self.offset
                    self.offset += block.width
                self.op(DENSE, buf, out, w_off=w_off, b_off=b_off)
                buf = out
            elif isinstance(block, Activation):
                width, grad = self.width(buf), self.needs_grad[buf]
                out, slope = self.buffer(width, grad), self.buffer(width, False)
                self.op(ACT, buf, out, extra=slope, kind=ACTIVATION_CODES[block.kind], param=block.value)
                buf = out
            elif isinstance(block, Residual):
                branch = self.blocks(block.blocks, buf)
                out = self.buffer(self.width(buf), self.needs_grad[buf] or self.needs_grad[branch])
                self.op(ADD, buf, out, extra=branch, scale=float(block.scale))
                buf = out
            elif isinstance(block, Ensemble):
                ends = [self.blocks(member, buf) for member in block.members]
                total = ends[0]  # ((m0 + m1) + m2) + ...: NumpyNetwork's order
                for end in ends[1:]:
                    out = self.buffer(self.width(end), self.needs_grad[total] or self.needs_grad[end])
                    self.op(ADD, total, out, extra=end, scale=1.0)
                    total = out
                buf = total
        return buf


def _gradient_modes(ops: np.ndarray, needs_grad: list) -> None:
    """Fill IN_MODE and EXTRA_MODE: in the backward (the ops reversed) the first operation to reach
    a buffer's gradient assigns it, the later ones add to it."""
    written = set()
    for row in ops[::-1]:
        columns = [(IN, IN_MODE)] + ([(EXTRA, EXTRA_MODE)] if row[CODE] == ADD else [])
        for buf_column, mode_column in columns:
            buf = int(row[buf_column])
            if not needs_grad[buf]:
                continue
            row[mode_column] = ACCUMULATE if buf in written else ASSIGN
            written.add(buf)
