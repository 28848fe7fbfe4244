"""A squeeze-and-excitation block in one compiled pass (see :mod:`ort_cpu.squeeze_excite`): the
mean of every channel, the two small products with their activations, then the input scaled by
channel. As separate kernels these were six calls and two passes over the block's input (an
OCR classifier's blocks on 3 x 12 maps: about 17 us each, most of it calls).

Its kernel compiles (or loads from numba's disk cache) on first use (:mod:`ort_cpu._jit`);
importing the module does not import numba, so the partitioner's matcher reads its codes.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from ._elementwise_jit import _act_value

#: the gates' activation codes: :data:`._elementwise_jit.ACT_CODES`, and Sigmoid as this
#: code (numpy's exponential, exact to float32, where ACT_CODES' own Sigmoid takes the float32
#: approximation of the Sigmoid kernel; QuickGelu's 6 never reaches a gate)
SIGMOID = 6


@jit(inline="always")
def _gate(v, act, a, b, zero, one):  # pragma: no cover - compiled
    if act == SIGMOID:
        return one / (one + np.exp(-v))
    return _act_value(v, act, a, b, zero, one)


@jit(inline="always")
def _affine(out, bias, wt, v):  # pragma: no cover - compiled
    """``out = bias + v @ wt`` (``wt`` [len(v), len(out)]), the products added row after row
    across all outputs at once, so that the inner loop vectorizes."""
    for k in range(out.shape[0]):
        out[k] = bias[k]
    for r in range(v.shape[0]):
        vr = v[r]
        row = wt[r]
        for k in range(out.shape[0]):
            out[k] += row[k] * vr


@jit(error_model="numpy")
def squeeze_excite(x, w1t, b1, act1, a1, c1, w2t, b2, act2, a2, c2, y):  # pragma: no cover
    """``y = x * gate(W2 @ act(W1 @ mean(x) + b1) + b2)`` per image and channel, ``x`` and ``y``
    (N, C, cells) float32, ``w1t`` = W1^T (C, M), ``w2t`` = W2^T (M, C); the activations by
    code with their two parameters each. Each product is summed over its terms in order, every
    output at once (the loops run across outputs, which vectorizes; a dot product per output
    waits on each addition: 10 of a 200-channel block's 15 us); a channel's mean is its sum,
    four interleaved partial sums added at the end, over the cell count."""
    n, c, cells = x.shape
    m = w1t.shape[1]
    zero, one = np.float32(0.0), np.float32(1.0)
    pa1, pc1, pa2, pc2 = np.float32(a1), np.float32(c1), np.float32(a2), np.float32(c2)
    count = np.float32(cells)
    pooled = np.empty(c, np.float32)
    mid = np.empty(m, np.float32)
    gate = np.empty(c, np.float32)
    quad = cells // 4 * 4
    for i in range(n):
        for ch in range(c):
            row = x[i, ch]
            s0, s1, s2, s3 = zero, zero, zero, zero
            for j in range(0, quad, 4):
                s0 += row[j]
                s1 += row[j + 1]
                s2 += row[j + 2]
                s3 += row[j + 3]
            for j in range(quad, cells):
                s0 += row[j]
            pooled[ch] = ((s0 + s1) + (s2 + s3)) / count
        _affine(mid, b1, w1t, pooled)
        for k in range(m):
            mid[k] = _gate(mid[k], act1, pa1, pc1, zero, one)
        _affine(gate, b2, w2t, mid)
        for ch in range(c):
            s = _gate(gate[ch], act2, pa2, pc2, zero, one)
            src, dst = x[i, ch], y[i, ch]
            for j in range(cells):
                dst[j] = src[j] * s


def warm() -> object:
    """The compiled :func:`squeeze_excite` (compiled, or loaded from the disk cache, now; for
    writable and read-only inputs), or None where compiled kernels are off."""
    fn = None
    for writable in (True, False):
        x = np.ones((1, 2, 3), np.float32)
        x.flags.writeable = writable
        w, b = np.ones((2, 1), np.float32), np.zeros(1, np.float32)
        fn = squeeze_excite.warm(
            x, w, b, 1, 0.0, 0.0, np.ones((1, 2), np.float32), np.zeros(2, np.float32), 3, 0.2,
            0.5, np.empty((1, 2, 3), np.float32),
        )  # fmt: skip
    return fn
