"""The compiled engine's kernels (numba): K steps of a program (core/compiled_program.py) with no
Python in the loop. Imported by the training process only (core/engines/compiled_engine.py imports this
module when an engine is made): the window's process never loads numba.

Every function repeats core/ arithmetic in the same order of operations: the network's forward
and backward (core/network.py, with the activations of core/activations.py), the loss in log
space (core/losses.py), the update rules (core/optimizers.py), the step rules and the finiteness
test (core/trainer.py Trainer._steps and _finite). Arrays are in the run's dtype; scalars, as in
the numpy engine, in float64. Only the products and dot products may reassociate their sums
(``_SUMS``), as BLAS does.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .compiled_program import (ACCUMULATE, ACT, ASSIGN, B_OFF, CODE, DENSE, EXTRA, EXTRA_MODE, IN, IN_MODE, KIND,
                               OUT, PARAM, SCALE, W_OFF)

# products and dot products: their sums may be reassociated (vectorized) and multiply-adds fused, as
# BLAS does; never 'nnan' or 'ninf', which would let LLVM drop the finiteness tests
_SUMS = {"reassoc", "contract", "nsz"}


def _jit(fastmath=False):
    """numba.njit with its on-disk cache (NUMBA_CACHE_DIR, else __pycache__ beside this file, else
    the user's cache folder). Where none of them can be written, numba refuses cache=True when the
    function is defined: then the kernels compile in memory in each process instead."""
    def wrap(fn):
        try:
            return numba.njit(cache=True, fastmath=fastmath, error_model="numpy", nogil=True)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(cache=False, fastmath=fastmath, error_model="numpy", nogil=True)(fn)
    return wrap


@intrinsic
def _clock_ns(typingctx, clock):
    """clock_gettime(clock) in nanoseconds, called from compiled code (a declared C symbol, so the
    functions that use it stay cacheable, where a ctypes pointer would not)."""
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        spec = cgutils.alloca_once(builder, ir.ArrayType(i64, 2))
        fnty = ir.FunctionType(i32, [i32, spec.type])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "clock_gettime")
        builder.call(fn, [builder.trunc(args[0], i32), spec])
        zero = ir.Constant(i32, 0)
        seconds = builder.load(builder.gep(spec, [zero, zero]))
        nanoseconds = builder.load(builder.gep(spec, [zero, ir.Constant(i32, 1)]))
        return builder.add(builder.mul(seconds, ir.Constant(i64, 1_000_000_000)), nanoseconds)

    return sig, codegen


def _vector_library() -> tuple[int, str]:
    """(width, symbol prefix) of glibc's vector math library (libmvec) on this CPU: erf and exp on
    4 doubles at once with AVX2 (_ZGVdN4v_), 2 with SSE2 (_ZGVbN2v_); (1, "") without it (not
    Linux x86-64 with glibc 2.35+), where GELU calls the scalar erf and exp. Its functions are
    within 4 ulp. numba's cache is keyed by the CPU, so a cached kernel never meets another choice."""
    import platform
    import sys

    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        return 1, ""
    try:
        from llvmlite import binding

        binding.load_library_permanently("libmvec.so.1")
        avx2 = "+avx2" in binding.get_host_cpu_features().flatten().split(",")
    except Exception:  # noqa: BLE001 - no libmvec (musl, old glibc): the scalar functions
        return 1, ""
    return (4, "_ZGVdN4v_") if avx2 else (2, "_ZGVbN2v_")


VECTOR_WIDTH, _VECTOR_PREFIX = _vector_library()


def _vector_function(name: str):
    """An intrinsic f(array, i) that replaces array[i:i + VECTOR_WIDTH] by name(array[...]) in one
    libmvec call (float32 arrays through doubles), or by VECTOR_WIDTH scalar calls without libmvec."""
    @intrinsic
    def apply(typingctx, array, start):
        def codegen(context, builder, signature, args):
            aty = signature.args[0]
            data = context.make_array(aty)(context, builder, args[0]).data
            ptr = builder.gep(data, [args[1]])
            elt, f64 = context.get_value_type(aty.dtype), ir.DoubleType()
            width = VECTOR_WIDTH
            if _VECTOR_PREFIX:
                vty = ir.VectorType(f64, width)
                vptr = builder.bitcast(ptr, ir.VectorType(elt, width).as_pointer())
                value = builder.load(vptr, align=1)
                if elt != f64:
                    value = builder.fpext(value, vty)
                fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty]), _VECTOR_PREFIX + name)
                result = builder.call(fn, [value])
                if elt != f64:
                    result = builder.fptrunc(result, ir.VectorType(elt, width))
                builder.store(result, vptr, align=1)
            else:
                fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f64, [f64]), name)
                value = builder.load(ptr)
                if elt != f64:
                    value = builder.fpext(value, f64)
                result = builder.call(fn, [value])
                builder.store(result if elt == f64 else builder.fptrunc(result, elt), ptr)
            return context.get_dummy_value()

        return types.none(array, start), codegen

    return apply


_erf_at, _exp_at = _vector_function("erf"), _vector_function("exp")
_log1p_at, _expm1_at = _vector_function("log1p"), _vector_function("expm1")


@_jit()
def _erf_in_place(a):
    full = a.shape[0] - a.shape[0] % VECTOR_WIDTH
    for i in range(0, full, VECTOR_WIDTH):
        _erf_at(a, i)
    for i in range(full, a.shape[0]):
        a[i] = math.erf(a[i])


@_jit()
def _exp_in_place(a):
    full = a.shape[0] - a.shape[0] % VECTOR_WIDTH
    for i in range(0, full, VECTOR_WIDTH):
        _exp_at(a, i)
    for i in range(full, a.shape[0]):
        a[i] = math.exp(a[i])


@_jit()
def _log1p_in_place(a):
    full = a.shape[0] - a.shape[0] % VECTOR_WIDTH
    for i in range(0, full, VECTOR_WIDTH):
        _log1p_at(a, i)
    for i in range(full, a.shape[0]):
        a[i] = math.log1p(a[i])


@_jit()
def _expm1_in_place(a):
    full = a.shape[0] - a.shape[0] % VECTOR_WIDTH
    for i in range(0, full, VECTOR_WIDTH):
        _expm1_at(a, i)
    for i in range(full, a.shape[0]):
        a[i] = math.expm1(a[i])


@_jit()
def clock_ns(clock):
    """The compiled clock, for the engine to relate its times to time.perf_counter()."""
    return _clock_ns(clock)


# ---------------------------------------------------------------------------------- network
# multiplications from which a product goes to BLAS (numba's np.dot: scipy's BLAS, one thread in a
# training process, core/blas.py); below, loops over the samples, which LLVM vectorizes
BLAS_FROM = 1 << 15


@_jit()
def _rows(work, buffers, buf, n):
    """Buffer ``buf`` as a (width, n) view of the workspace."""
    row, width = buffers[buf, 0], buffers[buf, 1]
    return work[row * n:(row + width) * n].reshape((width, n))


@_jit(fastmath=_SUMS)
def _dense_forward(W, b, H, O):
    """O = W H (+ b), feature-major: each output row is a sum of the input's rows."""
    out_width, in_width = W.shape
    n = H.shape[1]
    if out_width * in_width * n >= BLAS_FROM and out_width > 1 and in_width > 1:
        np.dot(W, H, O)
    else:
        for o in range(out_width):
            row = O[o]
            w = W[o, 0]
            h = H[0]
            for i in range(n):
                row[i] = w * h[i]
            for k in range(1, in_width):
                w = W[o, k]
                h = H[k]
                for i in range(n):
                    row[i] += w * h[i]
    if b.shape[0]:  # after the sum, as numpy's h @ W.T + b
        for o in range(out_width):
            row = O[o]
            bo = b[o]
            for i in range(n):
                row[i] += bo


@_jit(fastmath=_SUMS)
def _dense_backward(W, gW, gb, H, G, GI, tmp, in_mode):
    """gW = G H^T, gb = the sums of G's rows, and (where the input needs one) GI (+)= W^T G."""
    out_width, in_width = W.shape
    n = H.shape[1]
    blas = out_width * in_width * n >= BLAS_FROM and out_width > 1 and in_width > 1
    if blas:
        np.dot(G, H.T, gW)
    else:
        for o in range(out_width):
            g = G[o]
            for k in range(in_width):
                h = H[k]
                s = 0.0
                for i in range(n):
                    s += g[i] * h[i]
                gW[o, k] = s
    if gb.shape[0]:
        for o in range(out_width):
            g = G[o]
            s = 0.0
            for i in range(n):
                s += g[i]
            gb[o] = s
    if in_mode == 0:
        return
    if blas:
        if in_mode == ASSIGN:
            np.dot(W.T, G, GI)
        else:
            T = tmp[:in_width * n].reshape((in_width, n))
            np.dot(W.T, G, T)
            for k in range(in_width):
                gi, t = GI[k], T[k]
                for i in range(n):
                    gi[i] += t[i]
        return
    for k in range(in_width):
        gi = GI[k]
        if in_mode == ASSIGN:
            w = W[0, k]
            g = G[0]
            for i in range(n):
                gi[i] = w * g[i]
            first = 1
        else:
            first = 0
        for o in range(first, out_width):
            w = W[o, k]
            g = G[o]
            for i in range(n):
                gi[i] += w * g[i]


@_jit()
def _expit(x):
    """scipy.special.expit."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@_jit()
def _logaddexp0(x):
    """numpy.logaddexp(0, x)."""
    if x == 0.0:
        return math.log(2.0)
    if x < 0.0:
        return math.log1p(math.exp(x))
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return x  # NaN


_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2 * math.pi)


@_jit()
def _activation(kind, param, x_in, out, slope):
    """out = s(x_in), slope = s'(x_in), elementwise (core/activations.py forward; the kind codes of
    core/compiled_program.py)."""
    count = x_in.shape[0]
    if kind == 0:  # identity
        for i in range(count):
            out[i] = x_in[i]
            slope[i] = 1.0
    elif kind == 1:  # relu: x * (x > 0)
        for i in range(count):
            x = x_in[i]
            m = 1.0 if x > 0 else 0.0
            out[i] = x * m
            slope[i] = m
    elif kind == 2:  # leaky relu
        for i in range(count):
            x = x_in[i]
            s = 1.0 if x > 0 else param
            out[i] = x * s
            slope[i] = s
    elif kind == 3:  # abs, sign(0) = 0
        for i in range(count):
            x = x_in[i]
            out[i] = abs(x)
            slope[i] = 1.0 if x > 0 else (-1.0 if x < 0 else (0.0 if x == 0 else x))
    elif kind == 4:  # relu^k
        for i in range(count):
            x = x_in[i]
            pos = 0.0 if x < 0 else x  # NaN stays NaN, as np.maximum
            powk1 = pos ** (param - 1.0)
            out[i] = powk1 * pos
            slope[i] = param * powk1
    elif kind == 5:  # gelu, exact: cdf = (erf(x / sqrt 2) + 1) / 2; erf and exp a vector at a time
        for i in range(count):
            x = x_in[i]
            out[i] = x * _SQRT1_2
            slope[i] = x * x * -0.5
        _erf_in_place(out)
        _exp_in_place(slope)
        for i in range(count):
            x = x_in[i]
            cdf = (out[i] + 1.0) * 0.5
            out[i] = x * cdf
            slope[i] = slope[i] * _INV_SQRT_2PI * x + cdf
    elif kind == 6:  # silu
        for i in range(count):
            x = x_in[i]
            sig = _expit(x)
            out[i] = x * sig
            slope[i] = sig * (1.0 + x * (1.0 - sig))
    elif kind == 7:  # softplus with beta
        for i in range(count):
            bx = param * x_in[i]
            out[i] = _logaddexp0(bx) / param
            slope[i] = _expit(bx)
    elif kind == 8:  # elu
        for i in range(count):
            x = x_in[i]
            if x <= 0:
                em1 = math.expm1(x)
                out[i] = param * em1
                slope[i] = param * (em1 + 1.0)
            else:
                out[i] = x
                slope[i] = 1.0
    elif kind == 9:  # tanh
        for i in range(count):
            t = math.tanh(x_in[i])
            out[i] = t
            slope[i] = 1.0 - t * t
    elif kind == 10:  # sigmoid
        for i in range(count):
            s = _expit(x_in[i])
            out[i] = s
            slope[i] = s * (1.0 - s)
    else:  # leaky softplus, c x + (1 - c) log(1 + e^x) (Cai et al. 2024)
        for i in range(count):
            x = x_in[i]
            out[i] = param * x + (1.0 - param) * _logaddexp0(x)
            slope[i] = param + (1.0 - param) * _expit(x)


@_jit()
def _flat(work, buffers, buf, n):
    """Buffer ``buf`` as a flat view of the workspace."""
    row, width = buffers[buf, 0], buffers[buf, 1]
    return work[row * n:(row + width) * n]


@_jit()
def _weights(theta, ops, r, out_width, in_width):
    """(W, b) of dense op ``r`` as views of theta (b empty without a bias)."""
    w_off, b_off = ops[r, W_OFF], ops[r, B_OFF]
    W = theta[w_off:w_off + out_width * in_width].reshape((out_width, in_width))
    b = theta[b_off:b_off + out_width] if b_off >= 0 else theta[:0]
    return W, b


@_jit()
def forward(ops, values, buffers, n, theta, work):
    """Run the program forward; the output is the last op's buffer."""
    for r in range(ops.shape[0]):
        code, inp, out = ops[r, CODE], ops[r, IN], ops[r, OUT]
        if code == DENSE:
            W, b = _weights(theta, ops, r, buffers[out, 1], buffers[inp, 1])
            _dense_forward(W, b, _rows(work, buffers, inp, n), _rows(work, buffers, out, n))
        elif code == ACT:
            _activation(ops[r, KIND], values[r, PARAM], _flat(work, buffers, inp, n), _flat(work, buffers, out, n),
                        _flat(work, buffers, ops[r, EXTRA], n))
        else:  # ADD: out = in + scale * extra
            scale = values[r, SCALE]
            a, e, o = _flat(work, buffers, inp, n), _flat(work, buffers, ops[r, EXTRA], n), _flat(work, buffers, out, n)
            for i in range(o.shape[0]):
                o[i] = a[i] + scale * e[i]


@_jit()
def _add_gradient(target, source, mode, scale):
    if mode == ASSIGN:
        if scale == 1.0:
            for i in range(target.shape[0]):
                target[i] = source[i]
        else:
            for i in range(target.shape[0]):
                target[i] = scale * source[i]
    elif mode == ACCUMULATE:
        if scale == 1.0:
            for i in range(target.shape[0]):
                target[i] += source[i]
        else:
            for i in range(target.shape[0]):
                target[i] += scale * source[i]


@_jit(fastmath=_SUMS)
def _dense_backward_rank_one(W, gW, gb, H, u, g, hg, u_in, GI, in_mode):
    """_dense_backward where the output's gradient is u (x) g: gW = u (H g)^T, gb = u sum(g), and the
    input's gradient (W^T u) (x) g kept as its u (``u_in``, in place of GI: ``u_in`` non-empty) or
    written out into GI."""
    out_width, in_width = W.shape
    n = H.shape[1]
    for k in range(in_width):
        h = H[k]
        s = 0.0
        for i in range(n):
            s += h[i] * g[i]
        hg[k] = s
    for o in range(out_width):
        uo = u[o]
        for k in range(in_width):
            gW[o, k] = uo * hg[k]
    if gb.shape[0]:
        s = 0.0
        for i in range(n):
            s += g[i]
        for o in range(out_width):
            gb[o] = u[o] * s
    if in_mode == 0:
        return
    for k in range(in_width):  # W^T u, into hg (no longer needed)
        s = 0.0
        for o in range(out_width):
            s += W[o, k] * u[o]
        hg[k] = s
    if u_in.shape[0]:
        for k in range(in_width):
            u_in[k] = hg[k] if in_mode == ASSIGN else u_in[k] + hg[k]
    else:
        _outer_into(GI, hg, 1.0, g, in_mode)


@_jit()
def _outer_into(target, u, scale, g, mode):
    """target (width, n) =/+= (scale u) (x) g."""
    for k in range(target.shape[0]):
        uk = scale * u[k]
        row = target[k]
        if mode == ASSIGN:
            for i in range(g.shape[0]):
                row[i] = uk * g[i]
        elif mode == ACCUMULATE:
            for i in range(g.shape[0]):
                row[i] += uk * g[i]


@_jit()
def _vector(uvec, rank_one, buffers, buf):
    """Buffer ``buf``'s u (empty where its gradient is not rank one)."""
    offset = rank_one[buf]
    if offset < 0:
        return uvec[:0]
    return uvec[offset:offset + buffers[buf, 1]]


@_jit()
def backward(ops, values, buffers, n, theta, work, gwork, grad, tmp, rank_one, uvec, output):
    """Fill ``grad`` from the output's gradient g in ``gwork`` (the program reversed); buffers whose
    gradient is rank one (core/compiled_program.py) carry only their u, the output's being 1."""
    g = _flat(gwork, buffers, output, n)
    if rank_one[output] >= 0:
        uvec[rank_one[output]] = 1.0
    for r in range(ops.shape[0] - 1, -1, -1):
        code, inp, out = ops[r, CODE], ops[r, IN], ops[r, OUT]
        in_mode = ops[r, IN_MODE]
        u = _vector(uvec, rank_one, buffers, out)
        if code == DENSE:
            W, b = _weights(theta, ops, r, buffers[out, 1], buffers[inp, 1])
            gW, gb = _weights(grad, ops, r, buffers[out, 1], buffers[inp, 1])
            if u.shape[0]:
                _dense_backward_rank_one(W, gW, gb, _rows(work, buffers, inp, n), u, g, tmp[:buffers[inp, 1]],
                                         _vector(uvec, rank_one, buffers, inp), _rows(gwork, buffers, inp, n), in_mode)
            else:
                _dense_backward(W, gW, gb, _rows(work, buffers, inp, n), _rows(gwork, buffers, out, n),
                                _rows(gwork, buffers, inp, n), tmp, in_mode)
        elif code == ACT:
            if in_mode == 0:
                continue
            d, gi = _flat(work, buffers, ops[r, EXTRA], n), _flat(gwork, buffers, inp, n)
            if u.shape[0]:  # (u (x) g) * s'(x): full rank from here down
                for k in range(u.shape[0]):
                    uk = u[k]
                    for i in range(n):
                        j = k * n + i
                        if in_mode == ASSIGN:
                            gi[j] = uk * g[i] * d[j]
                        else:
                            gi[j] += uk * g[i] * d[j]
                continue
            go = _flat(gwork, buffers, out, n)
            if in_mode == ASSIGN:
                for i in range(gi.shape[0]):
                    gi[i] = go[i] * d[i]
            else:
                for i in range(gi.shape[0]):
                    gi[i] += go[i] * d[i]
        else:  # ADD
            extra = ops[r, EXTRA]
            if u.shape[0]:
                for target, mode, scale in ((inp, in_mode, 1.0), (extra, ops[r, EXTRA_MODE], values[r, SCALE])):
                    v = _vector(uvec, rank_one, buffers, target)
                    if v.shape[0]:
                        if mode == ASSIGN:
                            for k in range(v.shape[0]):
                                v[k] = scale * u[k]
                        elif mode == ACCUMULATE:
                            for k in range(v.shape[0]):
                                v[k] += scale * u[k]
                    else:
                        _outer_into(_rows(gwork, buffers, target, n), u, scale, g, mode)
                continue
            go = _flat(gwork, buffers, out, n)
            _add_gradient(_flat(gwork, buffers, inp, n), go, in_mode, 1.0)
            _add_gradient(_flat(gwork, buffers, extra, n), go, ops[r, EXTRA_MODE], values[r, SCALE])


# ---------------------------------------------------------------------------------- loss
EXPONENTIAL, LOGISTIC = 0, 1


@_jit()
def log_loss_and_weights(kind, q, weights):
    """log L (the sum) and, in ``weights``, d log L / d q (core/losses.py log_loss_and_weights)."""
    n = q.shape[0]
    if kind == EXPONENTIAL:
        m = -q[0]
        for i in range(1, n):
            v = -q[i]
            if v > m or v != v:  # a NaN wins, as np.max
                m = v
        for i in range(n):
            weights[i] = -q[i] - m
        _exp_in_place(weights)
        s = 0.0
        for i in range(n):
            s += weights[i]
        log_l = m + math.log(s)
        inv = -1.0 / s
        for i in range(n):
            weights[i] = weights[i] * inv
        return log_l
    # log(1 + e^-q) = max(-q, 0) + log1p(e^-|q|) (numpy's logaddexp(0, -q)), a vector at a time
    for i in range(n):
        weights[i] = -abs(q[i])
    _exp_in_place(weights)
    _log1p_in_place(weights)
    total = 0.0
    for i in range(n):
        x = q[i]
        t = weights[i] - x if x < 0 else (weights[i] if x == x else x)
        weights[i] = t
        total += t
    if 1e-250 < total < 1e300:
        inv = 1.0 / total
        for i in range(n):
            weights[i] = -weights[i]
        _expm1_in_place(weights)
        for i in range(n):
            weights[i] = weights[i] * inv
        return math.log(total)
    # log space: log l(q_i), then their log-sum-exp (losses.log_sample_losses, losses.logsumexp)
    m = -np.inf
    for i in range(n):
        x = q[i]
        lt = -x - 0.5 * math.exp(-x) if x > 30.0 else math.log(_logaddexp0(-x))
        weights[i] = lt
        if lt > m or lt != lt:
            m = lt
    if not math.isfinite(m):
        log_l = m
    else:
        s = 0.0
        for i in range(n):
            s += math.exp(weights[i] - m)
        log_l = m + math.log(s)
    for i in range(n):
        weights[i] = -math.exp(-_logaddexp0(q[i]) - log_l)
    return log_l


# ---------------------------------------------------------------------------------- updates
GD, NORMALIZED_GD, SIGN, COORDINATE, MOMENTUM, ADAM = range(6)
CONSTANT, LOSS_NORMALIZED, LYU_LI, LOSS_BASED = range(4)
# the loss_based rule's state between steps and blocks (core/step_rule.py LossBasedRate), a float64
# array: alpha_t, whether the step into the current point was kept, whether a start point is kept,
# its log L, and the rule's alpha_0, r_u and r_d
ALPHA, TAKEN, HAS_START, START_LOG_L, ALPHA0, UP, DOWN = range(7)
RATE_SIZE = 7  # the loss_based rule's state array, indexed by the names above


@_jit(fastmath=_SUMS)
def _squared_norm(a, zero):
    """sum a_i^2 in the array's dtype (``zero``), as np.dot(a, a)."""
    s = zero
    for i in range(a.shape[0]):
        s += a[i] * a[i]
    return s


@_jit()
def update(kind, theta, d, factor, lr, momentum, beta1, beta2, eps, velocity, m, v, t, scratch, zero):
    """core/optimizers.py UpdateRule.apply: theta in place from direction source factor * d."""
    P = theta.shape[0]
    if kind == GD:
        scale = lr * factor
        for j in range(P):
            theta[j] -= scale * d[j]
        return
    if factor != 1.0:
        for j in range(P):
            scratch[j] = factor * d[j]
        d = scratch
    if kind == NORMALIZED_GD:
        norm = math.sqrt(_squared_norm(d, zero))
        if norm > 0:
            scale = lr / norm
            for j in range(P):
                theta[j] -= scale * d[j]
    elif kind == SIGN:
        s = zero
        for j in range(P):
            s += abs(d[j])
        scale = lr * s
        for j in range(P):
            x = d[j]
            theta[j] -= scale * (1.0 if x > 0 else (-1.0 if x < 0 else (0.0 if x == 0 else x)))
    elif kind == COORDINATE:
        best, j = -1.0, 0
        for i in range(P):
            a = abs(d[i])
            if a > best or a != a:  # the first largest (np.argmax), a NaN first of all
                best, j = a, i
                if a != a:
                    break
        x = d[j]
        theta[j] -= lr * abs(x) * (1.0 if x > 0 else (-1.0 if x < 0 else (0.0 if x == 0 else x)))
    elif kind == MOMENTUM:
        for j in range(P):
            velocity[j] = velocity[j] * momentum + d[j]
            theta[j] -= lr * velocity[j]
    else:  # adam
        t[0] += 1
        c1 = 1.0 - beta1 ** t[0]
        c2 = 1.0 - beta2 ** t[0]
        for j in range(P):
            m[j] = beta1 * m[j] + (1.0 - beta1) * d[j]
            v[j] = beta2 * v[j] + (1.0 - beta2) * d[j] * d[j]
            theta[j] -= lr * (m[j] / c1) / (math.sqrt(v[j] / c2) + eps)


# ---------------------------------------------------------------------------------- the block
@_jit()
def _evaluate(ops, values, buffers, n, output_row, output, rank_one, uvec, y, theta, work, gwork, tmp, grad, q,
              weights, loss_kind):
    """q, grad log L (in ``q``, ``grad``) and log L at theta: the network forward, the loss in log
    space and the backward."""
    ob = output_row * n
    forward(ops, values, buffers, n, theta, work)
    f = work[ob:ob + n]
    for i in range(n):
        q[i] = y[i] * f[i]
    log_l = log_loss_and_weights(loss_kind, q, weights)
    g = gwork[ob:ob + n]
    for i in range(n):
        g[i] = weights[i] * y[i]
    backward(ops, values, buffers, n, theta, work, gwork, grad, tmp, rank_one, uvec, output)
    return log_l


@_jit()
def _keep_start(rate, log_l, theta, q, grad, start_theta, start_q, start_grad):
    """LossBasedRate.start: the point the next step starts from, copied."""
    rate[HAS_START] = 1.0
    rate[START_LOG_L] = log_l
    for j in range(theta.shape[0]):
        start_theta[j] = theta[j]
        start_grad[j] = grad[j]
    for i in range(q.shape[0]):
        start_q[i] = q[i]


@_jit()
def _judge(rate, log_l, theta, q, grad, start_theta, start_q, start_grad):
    """LossBasedRate.judge: the step into theta kept (a decrease or a tie) or undone (a rise or a
    NaN: theta, q and grad back to the start point's, bit for bit); the log L the run is at now."""
    if log_l <= rate[START_LOG_L]:
        rate[ALPHA] *= rate[UP]
        rate[TAKEN] = 1.0
        _keep_start(rate, log_l, theta, q, grad, start_theta, start_q, start_grad)
        return log_l
    for j in range(theta.shape[0]):
        theta[j] = start_theta[j]
        grad[j] = start_grad[j]
    for i in range(q.shape[0]):
        q[i] = start_q[i]
    rate[ALPHA] /= rate[DOWN]
    rate[TAKEN] = 0.0
    return rate[START_LOG_L]


@_jit()
def run_block(ops, values, buffers, n, output_row, output, rank_one, uvec, y, theta, work, gwork, tmp, grad, q,
              weights, scratch, zero,
              opt_kind, lr, momentum, beta1, beta2, eps, velocity, m, v, t,
              step_rule, loss_kind, mean, log_n, lyu_li_power, norm_limit, log_max,
              rate, start_theta, start_q, start_grad,
              start, end, record_steps, snapshot_steps, clock, deadline_ns, check_every,
              kept_steps, kept_ns, kept_record, kept_snapshot, kept_theta, kept_q, kept_log_l, kept_grad,
              kept_alpha, kept_taken):
    """Steps start..end-1 (fewer: a divergence, a full kept buffer, or the deadline): Trainer._steps
    with the records and snapshots replaced by keeping theta, q, log L and grad (and, for the
    loss_based rule, alpha and taken) at the due steps. The loss_based rule judges each step at
    once, as the numpy engine does: the point reached (kept, or the start point restored) is
    evaluated, and the next step starts from it. Returns (the step reached, the number kept, the
    step it diverged at or -1, whether the constant rule's loss overflowed)."""
    P = theta.shape[0]
    n_rec, n_snap, capacity = record_steps.shape[0], snapshot_steps.shape[0], kept_steps.shape[0]
    ri = np.searchsorted(record_steps, start)
    si = np.searchsorted(snapshot_steps, start)
    kept = 0
    diverged_at = -1
    overflowed = False
    step = start
    adaptive = step_rule == LOSS_BASED
    ahead = False  # loss_based: q, grad and log L at theta are those of the judge
    log_l = 0.0
    while step < end:
        if not ahead:
            log_l = _evaluate(ops, values, buffers, n, output_row, output, rank_one, uvec, y, theta, work, gwork,
                              tmp, grad, q, weights, loss_kind)
            if adaptive and rate[HAS_START] == 0.0:
                _keep_start(rate, log_l, theta, q, grad, start_theta, start_q, start_grad)
        ahead = False
        # Trainer._finite: a NaN or inf anywhere in the gradient makes its squared norm NaN or inf
        norm = math.sqrt(_squared_norm(theta, zero))
        grad_sq = _squared_norm(grad, zero)
        if not (math.isfinite(log_l) and math.isfinite(norm) and norm < norm_limit and math.isfinite(grad_sq)):
            diverged_at = step
            break
        while ri < n_rec and record_steps[ri] < step:
            ri += 1
        while si < n_snap and snapshot_steps[si] < step:
            si += 1
        is_record = ri < n_rec and record_steps[ri] == step
        is_snapshot = si < n_snap and snapshot_steps[si] == step
        if is_record or is_snapshot:
            if kept == capacity:  # full: the caller takes this step again in its next block
                break
            kept_steps[kept] = step
            kept_ns[kept] = _clock_ns(clock)
            kept_record[kept] = is_record
            kept_snapshot[kept] = is_snapshot
            kept_log_l[kept] = log_l
            kept_alpha[kept] = rate[ALPHA] if adaptive else np.nan
            kept_taken[kept] = rate[TAKEN] if adaptive else np.nan
            for j in range(P):
                kept_theta[kept, j] = theta[j]
                kept_grad[kept, j] = grad[j]
            for i in range(n):
                kept_q[kept, i] = q[i]
            kept += 1
        log_step = log_l - log_n if mean else log_l
        if step_rule == LOSS_NORMALIZED:
            factor = 1.0
        elif step_rule == LYU_LI:  # log(1/L) of the SUM, whatever the reduction
            factor = (-log_l) ** -lyu_li_power if log_l < -1.0 else 1.0
        elif adaptive:  # alpha_t / alpha_0: lr times it is alpha_t
            factor = rate[ALPHA] / rate[ALPHA0]
        else:
            if log_step > log_max:  # recorded, then diverged (Trainer._steps)
                diverged_at = step
                overflowed = True
                break
            factor = math.exp(log_step)
        update(opt_kind, theta, grad, factor, lr, momentum, beta1, beta2, eps, velocity, m, v, t, scratch, zero)
        step += 1
        if adaptive:
            log_l = _judge(rate, _evaluate(ops, values, buffers, n, output_row, output, rank_one, uvec, y, theta,
                                           work, gwork, tmp, grad, q, weights, loss_kind),
                           theta, q, grad, start_theta, start_q, start_grad)
            ahead = True
        if deadline_ns >= 0 and (step - start) % check_every == 0 and _clock_ns(clock) > deadline_ns:
            break
    return step, kept, diverged_at, overflowed
