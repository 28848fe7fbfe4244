"""Compiled kernels built on an exponential the compiler vectorizes, each also a compiled piece
that the spinning intra-op pool's workers call without the GIL
(:func:`ort_cpu._threads.split_compiled`):

- :func:`softmax`: the softmax of transposed attention scores, one kernel for the scale, the key
  mask, the maximum, the exponentials, their sums and the normalization, a block of heads per
  piece. numpy took six passes over the scores: 350 us of the 720 us of a BERT-base-like
  MultiHeadAttention at sequence 128, one thread, none of it shared at two. Here a head's
  scores (64 KB at sequence 128) stay in the core's cache for three passes.
- :func:`gelu`: the erf GELU of :func:`.elementwise.gelu_erf` (its polynomial, the same float32
  steps) in one pass, a block of rows per piece: 22 numpy passes took 3.3 ns an element.
- :func:`logistic`: Sigmoid, SiLU and QuickGelu (:func:`.elementwise.logistic`'s steps) in one
  pass, a block of cells per piece.

The exponential is computed as onnxruntime's MLAS computes it: the exponent rounded to the
nearest integer, the rest a polynomial, scaled by a power of two made from its bits; within 3e-7
of the exact value (numpy's ``exp``: 1e-7), 0 below about -87 and inf above about 88.7. Its
steps are fused multiply-adds where the CPU has them (``llvm.fmuladd``, as MLAS's AVX2 kernel
uses them): a multiply and an add each, their dependent chains made the loops latency-bound
(one thread, Zen 3: a 128 x 1536 BiasGelu 311 -> 269 us, a Sigmoid 188 -> 139, the softmax of
12 heads of 128 x 128 scores 288 -> 234 under profiling). The
softmax scales by the sum's reciprocal, as MLAS does. numba's ``math.exp`` is a call per element
(no vector math library here); these loops vectorize, without ``fastmath``.

This module does not import numba: its kernels are :func:`ort_cpu._jit.jit` functions (loaded
from the saved library of :mod:`ort_cpu._aot` where it has them). :mod:`._exp` calls them, on the
calling thread or as the pieces of :mod:`._exp_pieces` (numba cfuncs) where a run shares the
work.
"""

from __future__ import annotations

import numpy as np

from .._jit import LazyIntrinsic, jit

#: heads x keys x queries from which the heads are shared among the run's threads (a head of
#: 128 x 128 scores takes 8 us here; a split costs a few)
SPLIT_WORK = 1 << 16

_LOG2E = np.float32(1.44269504)
_LN2_HIGH = np.float32(0.693359375)  # ln 2 in two parts: the first exact in a few bits
_LN2_LOW = np.float32(-2.12194440e-4)
_LOWEST = np.float32(-87.33654)  # ln(2 ** -126): 2 ** n below it would not be a normal float
_HIGHEST = np.float32(89.0)  # above ln of float32's largest (88.72): 2 ** n * p overflows to inf
_P = tuple(
    np.float32(c)
    for c in (
        1.9875691500e-4,
        1.3981999507e-3,
        8.3334519073e-3,
        4.1665795894e-2,
        1.6666665459e-1,
        5.0000001201e-1,
    )  # fmt: skip
)


#: the float32 whose bits are an int32 (an llvmlite bitcast)
_float_bits = LazyIntrinsic("ort_cpu.kernels._fma", "float_bits")
#: a * b + c in one fused multiply-add where the CPU has it
_fmuladd = LazyIntrinsic("ort_cpu.kernels._fma", "fmuladd")


@jit(inline="always", error_model="numpy")
def _exp(x):
    """exp of a float32 ``x`` (see the module docstring): 2 ** n as 2 ** (n - 1) * 2, so that n
    reaches 128 at the top of the range."""
    x = min(max(x, _LOWEST), _HIGHEST)
    n = np.floor(_fmuladd(x, _LOG2E, np.float32(0.5)))
    r = _fmuladd(-n, _LN2_LOW, _fmuladd(-n, _LN2_HIGH, x))
    p = _P[0]
    p = _fmuladd(p, r, _P[1])
    p = _fmuladd(p, r, _P[2])
    p = _fmuladd(p, r, _P[3])
    p = _fmuladd(p, r, _P[4])
    p = _fmuladd(p, r, _P[5])
    p = _fmuladd(p, r * r, r) + np.float32(1)
    return p * _float_bits(np.int32((np.int32(n) + 126) * 8388608)) * np.float32(2)


@jit(error_model="numpy")
def softmax_keys(s, scale, mask, per_mask, h0, h1):
    """For heads ``h0:h1`` of the transposed scores ``s`` (heads, keys, queries), float32:
    ``s[h] = softmax(s[h] * scale + mask[h // per_mask][:, None])`` over the keys (axis 0 of a
    head), in place; ``per_mask`` 0: no mask."""
    keys, queries = s.shape[1], s.shape[2]
    top = np.empty(queries, np.float32)
    total = np.empty(queries, np.float32)
    for h in range(h0, h1):
        head = s[h]
        top[:] = -np.inf
        for t in range(keys):
            m = mask[h // per_mask, t] if per_mask else np.float32(0)
            row = head[t]
            for j in range(queries):
                v = row[j] * scale + m
                row[j] = v
                top[j] = max(top[j], v)
        total[:] = 0
        # two rows of keys a pass: two independent chains of the exponential's ~25 dependent
        # operations per vector, which one row's short loop over the queries could not overlap
        # (12 x 128 x 128 scores on a Zen 3: 323 -> 288 us; four rows a pass
        # kept the loop scalar: 1346); each sum still adds the keys in order
        pairs = keys - keys % 2
        for t in range(0, pairs, 2):
            row, nxt = head[t], head[t + 1]
            for j in range(queries):
                e = _exp(row[j] - top[j])
                f = _exp(nxt[j] - top[j])
                row[j] = e
                nxt[j] = f
                total[j] = (total[j] + e) + f
        for t in range(pairs, keys):
            row = head[t]
            for j in range(queries):
                e = _exp(row[j] - top[j])
                row[j] = e
                total[j] += e
        for j in range(queries):
            total[j] = np.float32(1) / total[j]
        for t in range(keys):
            row = head[t]
            for j in range(queries):
                row[j] *= total[j]


# -- Softmax and LogSoftmax over the last axis -----------------------------------------------------
#: lanes of the partial maxima and sums of :func:`softmax_rows` (one vector of float32)
_LANES = 16


@jit(error_model="numpy")
def softmax_rows(x, y, log, r0, r1):
    """Rows ``r0:r1`` of the float32 (rows, columns) ``x`` into ``y`` as onnxruntime's MLAS
    computes them: the row's maximum, the exponentials of the differences and their sum (16
    partial sums side by side, as MLAS's vector loop keeps them), then for Softmax (``log`` 0)
    each exponential times the sum's reciprocal, for LogSoftmax (1) the difference less the
    sum's logarithm. A row holding NaN gives NaN throughout (its exponential is NaN, so is the
    sum). The loops are written over 16 lanes so that LLVM makes them vector code without
    reassociating anything. Softmax rows narrower than the lanes (a classifier's few scores)
    take :func:`_narrow_softmax`, the same operations in the same order."""
    columns = x.shape[1]
    whole = columns - columns % _LANES
    if whole == 0 and not log:
        _narrow_softmax(x, y, r0, r1)
        return
    lanes = np.empty(_LANES, np.float32)
    for r in range(r0, r1):
        xr, yr = x[r], y[r]
        lanes[:] = -np.inf
        for j in range(0, whole, _LANES):
            for k in range(_LANES):
                v = xr[j + k]
                lanes[k] = v if v > lanes[k] else lanes[k]
        top = lanes[0]
        for k in range(1, _LANES):
            top = lanes[k] if lanes[k] > top else top
        for j in range(whole, columns):
            top = xr[j] if xr[j] > top else top
        lanes[:] = 0
        if log:
            for j in range(0, whole, _LANES):
                for k in range(_LANES):
                    lanes[k] += _exp(xr[j + k] - top)
        else:
            for j in range(0, whole, _LANES):
                for k in range(_LANES):
                    e = _exp(xr[j + k] - top)
                    yr[j + k] = e
                    lanes[k] += e
        total = np.float32(0)
        for k in range(_LANES):
            total += lanes[k]
        for j in range(whole, columns):
            e = _exp(xr[j] - top)
            if not log:
                yr[j] = e
            total += e
        if log:  # (x - max) - log(sum), in that order as MLAS
            lse = np.float32(np.log(total))
            for j in range(columns):
                yr[j] = (xr[j] - top) - lse
            continue
        scale = np.float32(1) / total
        for j in range(columns):
            yr[j] *= scale


@jit(error_model="numpy")
def _narrow_softmax(x, y, r0, r1):
    """:func:`softmax_rows` for rows of fewer than 16 columns (C-contiguous ``x`` and ``y``, which
    may be one array): each row's maximum, then the sum of its exponentials in column order and
    the sum's reciprocal times each, as there; but the exponentials of all rows ``r0:r1`` in one
    pass of 16 lanes, where a row's tail loop took them one at a time (100 rows of 10: 7.9 ->
    1.4 us). They go to a scratch array first: written over ``x`` in place, the loop's overlap
    check sent it to scalar code."""
    c = x.shape[1]
    xf = x.reshape(-1)[r0 * c : r1 * c]
    yf = y.reshape(-1)[r0 * c : r1 * c]
    size = (r1 - r0) * c
    e = np.empty(size, np.float32)  # each element's row maximum, then its exponential
    for i in range(r1 - r0):
        top = np.float32(-np.inf)
        for k in range(c):
            v = xf[i * c + k]
            top = v if v > top else top
        e[i * c : (i + 1) * c] = top
    whole = size - size % _LANES
    for j in range(0, whole, _LANES):
        for k in range(_LANES):
            e[j + k] = _exp(xf[j + k] - e[j + k])
    for j in range(whole, size):
        e[j] = _exp(xf[j] - e[j])
    for i in range(r1 - r0):
        total = np.float32(0)
        for k in range(c):
            total += e[i * c + k]
        scale = np.float32(1) / total
        for k in range(c):
            yf[i * c + k] = e[i * c + k] * scale


#: elements of a Softmax from which its rows are shared among the run's threads
SOFTMAX_SPLIT = 1 << 15


# -- erf GELU -------------------------------------------------------------------------------------
@jit(error_model="numpy")
def gelu_rows(x, bias, y, q, s_max, r0, r1):
    """``y[r] = gelu(x[r] + bias)`` for rows ``r0:r1`` of the float32 (rows, columns) ``x`` and
    ``y`` (``bias`` of length 0: none): :func:`.elementwise.gelu_erf`'s float32 steps,
    ``u / (1 + exp(u * Q(min(u * u, s_max))))`` with ``u = max(x + bias, -1e30)`` and ``Q``
    the polynomial of coefficients ``q`` (lowest first, 8)."""
    columns = x.shape[1]
    with_bias = bias.shape[0] > 0
    q0, q1, q2, q3, q4, q5, q6, q7 = q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]
    # passes over blocks of a row: the sum with the bias, the polynomial, then the exponential
    # and the quotient, two halves of the block a step. One pass was one chain of some 30
    # dependent operations per vector, longer than the CPU's window could overlap: 128 x 1536
    # cells took 445 us on a Zen 3, in passes 354, with the halves 330 (onnxruntime 225-250).
    # (The bias's sum in the polynomial's pass, behind a test per cell, kept that pass
    # scalar: 870.)
    us = np.empty(GELU_BLOCK, np.float32)
    ts = np.empty(GELU_BLOCK, np.float32)
    for r in range(r0, r1):
        xr, yr = x[r], y[r]
        for c0 in range(0, columns, GELU_BLOCK):
            n = min(GELU_BLOCK, columns - c0)
            xs, ys = xr[c0 : c0 + n], yr[c0 : c0 + n]
            if with_bias:
                bs = bias[c0 : c0 + n]
                for j in range(n):
                    us[j] = xs[j] + bs[j]
            else:
                for j in range(n):
                    us[j] = xs[j]
            for j in range(n):  # written out: an inner loop would keep this one scalar
                u = max(us[j], np.float32(-1e30))
                s = min(u * u, s_max)
                p = ((((((q7 * s + q6) * s + q5) * s + q4) * s + q3) * s + q2) * s + q1) * s + q0
                us[j] = u
                ts[j] = p * u
            half = n // 2  # two independent chains a step, as softmax_keys' two rows
            for j in range(half):
                k = j + half
                a = us[j] / (np.float32(1) + _exp(ts[j]))
                b = us[k] / (np.float32(1) + _exp(ts[k]))
                ys[j] = a
                ys[k] = b
            if n % 2:
                ys[n - 1] = us[n - 1] / (np.float32(1) + _exp(ts[n - 1]))


#: cells of a row :func:`gelu_rows` takes in each pass (two scratch rows in the first cache)
GELU_BLOCK = 512


#: elements of a GELU from which its rows are shared among the run's threads
GELU_SPLIT = 1 << 14


# -- logistic (Sigmoid, SiLU, QuickGelu) ----------------------------------------------------------
@jit(error_model="numpy")
def logistic_cells(x, y, alpha, times_x, e0, e1):
    """``y = 1 / (1 + exp(-alpha * x))`` (``x / (...)`` when ``times_x``: SiLU, QuickGelu) for
    cells ``e0:e1`` of the flat float32 ``x`` and ``y``: :func:`.elementwise.logistic`'s steps
    in one pass. Both tails as there: exp overflows to inf far left (x / inf is -0, -inf / inf
    NaN) and is 0 far right; NaN stays NaN (the exponential's clamp would make its sigmoid
    finite). The loops run over slices from 0: indices from ``e0`` could be negative as far
    as the compiler knows, and their wraparound test kept the loop scalar (1.7 against 0.46 ns
    a cell)."""
    neg, one = -alpha, np.float32(1)
    xs, ys = x[e0:e1], y[e0:e1]
    if times_x:
        for i in range(xs.shape[0]):
            v = xs[i]
            ys[i] = v / (one + _exp(neg * v))
    else:
        for i in range(xs.shape[0]):
            v = xs[i]
            s = one / (one + _exp(neg * v))
            ys[i] = v if v != v else s


#: cells of one piece of :func:`logistic` (a piece takes whole ones but the last)
LOGISTIC_PIECE = 1 << 13
#: cells from which :func:`logistic` shares its pieces among the run's threads (about 40 us)
LOGISTIC_SPLIT = 1 << 16
