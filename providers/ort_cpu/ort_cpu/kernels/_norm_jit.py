"""Layer normalization compiled, a row at a time (:func:`.normalization.layer_norm`'s fast path).

numpy took two reductions and five elementwise passes, each a call: 73 us for BERT-small's
128 x 384 activations at one thread (onnxruntime 30 us), 13 of them in MiniLM. Here a row (a few
KB) stays in cache for its three passes: the sum, the sum of squared deviations, the output.

The sums run in 16 lanes, each adding every 16th element in order, then the lanes pairwise, as
accurate as numpy's pairwise sums: :func:`_lanes` writes that loop as LLVM vector code (numba
left the same loop scalar: a float sum is not reassociated without ``fastmath``, and its index
checks kept the lanes from being packed). The output is ``((x - mean) * inv_std) * gamma +
beta``, the numpy path's order.

This module does not import numba: its kernels are :func:`ort_cpu._jit.jit` functions (loaded
from the saved library of :mod:`ort_cpu._aot` where it has them); the vector loop is an
intrinsic of :mod:`._norm_lanes`, imported when they compile.
"""

from __future__ import annotations

import numpy as np

from .._jit import LazyIntrinsic, jit

LANES = 16


#: the 16-lane sums as LLVM vector code (:mod:`._norm_lanes`, which imports numba)
_lanes = LazyIntrinsic("ort_cpu.kernels._norm_lanes", "lanes")


@jit(inline="always")
def _row_sum(row, center, square, lanes):
    """The sum of ``row`` (or with ``square`` of its squared deviations from ``center``, of its
    type): 16 lanes over the whole blocks (:func:`_lanes`), the rest added to the lanes in
    order, then the lanes pairwise."""
    n = row.shape[0]
    blocks = n // LANES
    _lanes(row.ctypes.data, blocks, center, square, lanes.ctypes.data)
    for j in range(blocks * LANES, n):
        d = row[j] - center
        lanes[j - blocks * LANES] += d * d if square else row[j]
    width = LANES
    while width > 1:
        width //= 2
        for i in range(width):
            lanes[i] += lanes[i + width]
    return lanes[0]


@jit(error_model="numpy")
def layer_norm_rows(x, gamma, beta, with_beta, simplified, count, epsilon, one, y, mean, inv_std):
    """For each row of ``x`` (rows, n), float32 or float64: its mean (0 when ``simplified``:
    RMS normalization), ``inv_std = one / sqrt(sum((x - mean) ** 2) / count + epsilon)`` and
    ``y = ((x - mean) * inv_std) * gamma (+ beta)``; ``count`` (n), ``epsilon`` and ``one`` are
    scalars of x's type, so that everything is computed in it, as numpy does."""
    rows, n = x.shape
    lanes = np.empty(LANES, x.dtype)
    zero = one - one
    for r in range(rows):
        xr, yr = x[r], y[r]
        m = zero
        if not simplified:
            m = _row_sum(xr, zero, 0, lanes) / count
        inv = one / np.sqrt(_row_sum(xr, m, 1, lanes) / count + epsilon)
        if with_beta:
            for j in range(n):
                yr[j] = (xr[j] - m) * inv * gamma[j] + beta[j]
        else:
            for j in range(n):
                yr[j] = (xr[j] - m) * inv * gamma[j]
        mean[r] = m
        inv_std[r] = inv


def warm() -> object:
    """The compiled :func:`layer_norm_rows`, after a call for float32 and float64 (read-only
    inputs too); None where compiled kernels are off."""
    fn = None
    for dt in (np.float32, np.float64):
        x = np.zeros((1, 1), dt)
        for writable in (True, False):
            x.flags.writeable = writable
            v = np.ones(1, dt)
            v.flags.writeable = writable
            out = np.empty((1, 1), dt), np.empty(1, dt), np.empty(1, dt)
            for flags in ((True, False), (False, True)):
                fn = layer_norm_rows.warm(x, v, v, *flags, dt(1), dt(1e-5), dt(1), *out)
    return fn
