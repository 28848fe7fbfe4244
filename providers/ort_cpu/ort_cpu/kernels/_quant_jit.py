"""Compiled loops of the linear quantization kernels (see ``ort_cpu._jit``).

QuantizeLinear and DequantizeLinear on activations are memory-bound: the numpy path makes one
temporary per step (divide, round, add the zero point, clip, cast), five passes over the tensor
where one suffices. These loops do the same float32 operations in the same order, one element at
a time, so their results are the numpy path's bit for bit.

The tensors are viewed as ``(outer, channels, inner)`` with one scale and zero point per channel
(one channel for per-tensor parameters).
"""

from __future__ import annotations

import numpy as np

from .._jit import LazyIntrinsic, jit

#: one rounding of a * b + c (:mod:`._fma`), as onnxruntime's QLinearAdd kernel rounds
fma = LazyIntrinsic("ort_cpu.kernels._fma", "fma")
#: a byte table looked up 64 bytes at a time (AVX-512 VBMI; none elsewhere)
table_bytes = LazyIntrinsic("ort_cpu.kernels._fma", "table_bytes")


@jit()
def quantize3(x, scale, zero_point, lo, hi, out):
    """``out = clip(rint(x / scale) + zero_point, lo, hi)`` in float32, per channel."""
    n0, n1, n2 = x.shape
    for i in range(n0):
        for c in range(n1):
            s = scale[c]
            z = zero_point[c]
            for j in range(n2):
                q = np.rint(x[i, c, j] / s) + z
                q = min(max(q, lo), hi)  # (branch-free: the loop vectorizes)
                out[i, c, j] = q
    return out


@jit()
def quantize_flat(x, scale, zero_point, lo, hi, out):
    """:func:`quantize3` with one scale and zero point over the flat ``x`` (DynamicQuantizeLinear):
    the same float32 steps, in a loop the compiler vectorizes (49K elements 9 -> 6 us)."""
    for j in range(x.shape[0]):
        q = np.rint(x[j] / scale) + zero_point
        q = min(max(q, lo), hi)  # (branch-free: the loop vectorizes)
        out[j] = q
    return out


@jit()
def dequantize3(x, scale, zero_point, out):
    """``out = (float32(x) - zero_point) * scale`` in float32, per channel."""
    n0, n1, n2 = x.shape
    for i in range(n0):
        for c in range(n1):
            s = scale[c]
            z = zero_point[c]
            for j in range(n2):
                out[i, c, j] = (np.float32(x[i, c, j]) - z) * s
    return out


@jit()
def requantize3(acc, bias, mult, zero_point, lo, hi, out):
    """``out = clip(rint((acc + bias) * mult) + zero_point, lo, hi)`` in float32, ``bias`` and
    ``mult`` per channel: an integer product's requantization (QLinearConv), one pass."""
    n0, n1, n2 = acc.shape
    for i in range(n0):
        for c in range(n1):
            b = bias[c]
            m = mult[c]
            for j in range(n2):
                q = np.rint((acc[i, c, j] + b) * m) + zero_point
                q = min(max(q, lo), hi)  # (branch-free: the loop vectorizes)
                out[i, c, j] = q
    return out


def warm_requantize() -> object:
    """The compiled :func:`requantize3` for float32 sums into int8 and uint8 (or None)."""
    p = np.ones(1, np.float32)
    fn = None
    for dt in (np.uint8, np.int8):
        acc = np.zeros((1, 1, 1), np.float32)
        fn = requantize3.warm(
            acc, p, p, np.float32(0), np.float32(0), np.float32(1), acc.astype(dt)
        )
    return fn


@jit()
def qbinary(a, b, za, zb, ka, kb, zc, lo, hi, code, out):
    """QLinearAdd (code 0): ``fma(a, ka, fma(b, kb, zc))`` rounded half to even, ``zc`` here
    the fixed part of :func:`.contrib.qadd_fixed` (za and zb unused): onnxruntime's vector
    kernel's operations; QLinearMul (code 1): ``(a - za) * (b - zb) * ka`` rounded half to even,
    ``+ zc``. Saturated. float32, the numpy path's operations in its order."""
    for i in range(a.shape[0]):
        if code == 0:
            q = np.rint(fma(np.float32(a[i]), ka, fma(np.float32(b[i]), kb, zc)))
        else:
            q = np.rint((np.float32(a[i]) - za) * (np.float32(b[i]) - zb) * ka) + zc
        q = min(max(q, lo), hi)  # (branch-free: the loop vectorizes)
        out[i] = q
    return out


@jit()
def lookup(x, table, out):  # pragma: no cover - compiled
    """``out[i] = table[x[i]]`` for the contiguous bytes ``x`` (a 256-entry table of a quantized
    unary op's outputs, QLinearSigmoid's and QLinearLeakyRelu's) into the contiguous ``out``:
    64 bytes at a time with byte permutes where the CPU has AVX-512 VBMI (:func:`._fma.
    table_bytes`: 1.6 MB in 37 us, a YOLO's SiLU), the rest one at a time (numpy's ``take``
    costs a nanosecond a byte, this loop a third of it)."""
    done = table_bytes(x.ctypes.data, table.ctypes.data, out.ctypes.data, x.shape[0])
    for i in range(done, x.shape[0]):
        out[i] = table[x[i]]


@jit()
def qsoftmax3(x, table, factor, zero_point, lo, hi, out):  # pragma: no cover - compiled
    """QLinearSoftmax along axis 1 of the 8-bit ``x`` (outer, n, inner) into ``out``, as
    :func:`.contrib_quant.qlinear_softmax` computes it: per (outer, inner) row the maximum,
    ``table[v - max + 255]`` summed over the row in order in float32, then each term times
    ``factor`` divided by the sum, rounded half to even, plus ``zero_point``, saturated to
    [``lo``, ``hi``]. The rows run side by side along ``inner`` (a YOLO's (1, 16, 4, 8400)
    distribution softmax reads contiguous runs of 33600 bytes per k)."""
    outer, n, inner = x.shape
    top = np.empty(inner, np.int32)
    total = np.empty(inner, np.float32)
    for o in range(outer):
        for i in range(inner):
            top[i] = np.int32(x[o, 0, i])
        for k in range(1, n):
            for i in range(inner):
                v = np.int32(x[o, k, i])
                top[i] = v if v > top[i] else top[i]
        total[:] = 0
        for k in range(n):
            for i in range(inner):
                total[i] += table[np.int32(x[o, k, i]) - top[i] + 255]
        for k in range(n):
            for i in range(inner):
                e = table[np.int32(x[o, k, i]) - top[i] + 255]
                q = np.rint(e * factor / total[i]) + zero_point
                q = lo if q < lo else (hi if q > hi else q)
                out[o, k, i] = q


@jit()
def qgap_rows(rows, zx, scale, lo, hi, zy, out):  # pragma: no cover - compiled
    """QLinearGlobalAveragePool over the rows of the 8-bit ``rows`` (channels, cells): each
    row's integer sum less ``zx * cells``, as float32, times the float32 ``scale``, clipped to
    [``lo``, ``hi``] (the output's range less ``zy``), rounded half to even, plus ``zy``:
    :func:`.contrib.qlinear_global_average_pool`'s float32 operations, in one pass over the
    bytes (its float32 product with a vector of ones converted them all first)."""
    cells = rows.shape[1]
    shift = np.int64(zx) * cells
    for r in range(rows.shape[0]):
        s = np.int64(0)
        for c in range(cells):
            s += np.int64(rows[r, c])
        v = np.float32(s - shift) * scale
        v = lo if v < lo else (hi if v > hi else v)
        out[r] = np.rint(v) + zy


def warm_qgap() -> object:
    """The compiled :func:`qgap_rows` for uint8 and int8 rows, writable or not (or None)."""
    f = np.float32(0)
    fn = None
    for dt in (np.uint8, np.int8):
        for x in _inputs(dt):
            fn = qgap_rows.warm(x[0], 0, f, f, f, f, np.zeros(1, dt))
    return fn


def warm_qsoftmax() -> object:
    """The compiled :func:`qsoftmax3` for uint8 and int8 (or None)."""
    f = np.float32(0)
    fn = None
    table = np.ones(256, np.float32)
    for dt in (np.uint8, np.int8):
        for x in _inputs(dt):
            fn = qsoftmax3.warm(x, table, f, f, f, f, np.zeros((1, 1, 1), dt))
    return fn


def warm_lookup() -> object:
    """The compiled :func:`lookup` for uint8 and int8 tables (or None)."""
    fn = None
    for dt in (np.uint8, np.int8):
        x = np.zeros(1, np.uint8)
        for writable in (True, False):
            x.flags.writeable = writable
            fn = lookup.warm(x, np.zeros(256, dt), np.zeros(1, dt))
    return fn


def warm_binary() -> object:
    """The compiled :func:`qbinary` for int8 and uint8 operands (or None)."""
    f = np.float32(0)
    fn = None
    for dt in (np.uint8, np.int8):
        for a in _inputs(dt):
            a1 = a.reshape(-1)
            fn = qbinary.warm(a1, a1, f, f, f, f, f, f, f, 0, np.zeros(1, dt))
    return fn


def warm_quantize() -> object:
    """The compiled :func:`quantize3` after compiling it for the types kernels pass (or None)."""
    p = np.ones(1, np.float32)
    fn = None
    for x in _inputs(np.float32):
        for dt in (np.uint8, np.int8):
            fn = quantize3.warm(x, p, p, np.float32(0), np.float32(1), np.zeros((1, 1, 1), dt))
    return fn


def warm_quantize_flat() -> object:
    """The compiled :func:`quantize_flat` for the float32 inputs and byte outputs kernels pass
    (or None)."""
    f = np.float32(1)
    fn = None
    for x in _inputs(np.float32):
        fn = quantize_flat.warm(x.reshape(-1), f, f, f, f, np.zeros(1, np.uint8))
    return fn


def warm_dequantize() -> object:
    """The compiled :func:`dequantize3` after compiling it for the types kernels pass (or None)."""
    p = np.ones(1, np.float32)
    fn = None
    for dt in (np.uint8, np.int8, np.int32):
        for x in _inputs(dt):
            fn = dequantize3.warm(x, p, p, np.zeros((1, 1, 1), np.float32))
    return fn


def _inputs(dtype) -> tuple[np.ndarray, np.ndarray]:
    """A writable and a read-only tiny input (numba compiles each kind once: initializers and
    feeds arrive read-only)."""
    x, ro = np.zeros((1, 1, 1), dtype), np.zeros((1, 1, 1), dtype)
    ro.flags.writeable = False
    return x, ro
