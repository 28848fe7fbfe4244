"""Compiled elementwise activations that numpy computes in several passes: one pass, the same
float operations in the same order as the numpy path (so the same results), for contiguous
float32 and float64 tensors. See :mod:`ort_cpu._jit` for the rules (lazy, cached on disk, numpy
fallback).

The activations with parameters share one table of codes (``act``), with ``alpha``/``beta``:
the standalone kernels (:func:`warm_activate_into`), FusedConv's epilogue over a GEMM's output
(:func:`activate_in_place`) and the compiled convolutions of :mod:`._conv_jit`, which apply it as
they write each output row.

==== =====================================================
0    none
1    Relu: max(y, 0)
2    Clip: min(max(y, alpha), beta)
3    HardSigmoid: max(0, min(1, alpha * y + beta))
4    LeakyRelu: y if y >= 0 else alpha * y
5    HardSwish: y * max(0, min(1, y * (1/6) + 0.5))
6    QuickGelu: y / (1 + exp(-alpha * y)) (SiLU at alpha 1; :mod:`._exp_jit`'s exponential)
7    Sigmoid: 1 / (1 + exp(-y)), NaN kept (the same exponential: the Sigmoid kernel's bits)
==== =====================================================
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from ._exp_jit import _exp

__all__ = [
    "ACT_CODES",
    "FLOAT32_CODES",
    "activate_in_place",
    "warm_activate",
    "warm_activate_into",
    "warm_hard_swish",
]


@jit()
def _hard_swish(x, y):  # pragma: no cover - compiled
    """``y = x * min(max(x * (1/6) + 0.5, 0), 1)`` over flat ``x``: the multiply by the rounded
    1/6, then the add, as :func:`.elementwise._hard_swish` does in numpy (NaN stays NaN)."""
    dt = x.dtype.type
    sixth, half, zero, one = dt(1 / 6), dt(0.5), dt(0.0), dt(1.0)
    for i in range(x.shape[0]):
        v = x[i]
        t = v * sixth + half
        t = zero if t < zero else t  # NaN compares false and stays NaN, as np.maximum keeps it
        t = one if t > one else t
        y[i] = t * v


def warm_hard_swish():
    """The compiled :func:`_hard_swish` for float32 and float64, or None where it is off."""
    fn = None
    for dt in (np.float32, np.float64):
        x = np.zeros(2, dt)
        fn = _hard_swish.warm(x, np.empty_like(x))
    return fn


#: activation name -> code of the ``act`` argument below (and of :mod:`._conv_jit`)
ACT_CODES = {
    "Relu": 1, "Clip": 2, "HardSigmoid": 3, "LeakyRelu": 4, "HardSwish": 5, "QuickGelu": 6,
    "Sigmoid": 7,
}  # fmt: skip
#: the codes whose exponential is float32's (float64 takes the activation's own kernel)
FLOAT32_CODES = frozenset({"QuickGelu", "Sigmoid"})


@jit(inline="always")
def _act_value(v, act, a, b, zero, one):  # pragma: no cover - compiled
    """One value through activation ``act`` with ``a``/``b`` (and ``zero``/``one``) in the
    value's own type, so a float32 tensor stays float32 (no widening to the float64 of the
    Python parameters, which would stop LLVM vectorizing the loops that call this). NaN stays
    NaN, as in numpy's and onnxruntime's paths: every comparison is written so that a false
    one keeps the value. HardSwish multiplies by the rounded 1/6, as its kernel does."""
    # Relu and LeakyRelu add +0.0: without it LLVM turns the in-place loop into a store of the
    # changed elements only (vmaskmovps), microcoded and 4-7x slower than a full store on AMD
    # Zen; it changes nothing but the sign of a zero result
    if act == 1:
        return (zero if v < zero else v) + zero
    if act == 2:
        v = a if v < a else v
        return b if v > b else v
    if act == 3:
        t = v * a + b
        t = zero if t < zero else t
        return one if t > one else t
    if act == 4:
        return (v if v >= zero else v * a) + zero
    if act == 5:
        two = one + one  # 1/6 and 1/2 rounded in the value's type (an integer would widen)
        t = v * (one / (two + two + two)) + one / two
        t = zero if t < zero else t
        return (one if t > one else t) * v
    if act == 6:
        return v / (one + _exp(-a * v))
    if act == 7:
        s = one / (one + _exp(-one * v))  # as _exp_jit.logistic_cells at alpha 1
        return v if v != v else s
    return v


@jit()
def _activate(src, dst, act, alpha, beta):  # pragma: no cover - compiled
    """``dst[:n] = activation(src)``, n = len(src), for an activation code (the table above; 0
    copies); ``dst`` may be ``src``, though :func:`activate_in_place` is faster there (LLVM
    vectorizes a loop over two arrays only after checking at run time that they do not
    overlap)."""
    dt = dst.dtype.type
    a, b, zero, one = dt(alpha), dt(beta), dt(0.0), dt(1.0)
    for o in range(src.shape[0]):
        dst[o] = _act_value(src[o], act, a, b, zero, one)


@jit()
def activate_in_place(y, act, alpha, beta):  # pragma: no cover - compiled
    """``y = activation(y)`` over flat ``y``, one vectorized pass (the epilogue of the
    convolutions that are not compiled: GEMM, column and Winograd plans)."""
    dt = y.dtype.type
    a, b, zero, one = dt(alpha), dt(beta), dt(0.0), dt(1.0)
    for o in range(y.shape[0]):
        y[o] = _act_value(y[o], act, a, b, zero, one)


@jit()
def activate_cells(src, dst, act, alpha, beta, e0, e1):  # pragma: no cover - compiled
    """:func:`_activate` over cells ``e0:e1`` of the flat ``src`` and ``dst`` (a piece of a
    pass shared among the run's threads). The loop runs over slices from 0 (see
    :func:`._exp_jit.logistic_cells`)."""
    dt = dst.dtype.type
    a, b, zero, one = dt(alpha), dt(beta), dt(0.0), dt(1.0)
    xs, ys = src[e0:e1], dst[e0:e1]
    for o in range(xs.shape[0]):
        ys[o] = _act_value(xs[o], act, a, b, zero, one)


#: :func:`binary_cells`' operations: numpy's add, subtract and multiply
ADD, SUB, MUL = 0, 1, 2


@jit()
def binary_cells(x, z, y, op, e0, e1):  # pragma: no cover - compiled
    """``y = x + z`` (``op`` :data:`ADD`), ``x - z`` (SUB) or ``x * z`` (MUL) over cells
    ``e0:e1`` of three flat arrays of one float type: one rounding each, as numpy's."""
    xs, zs, ys = x[e0:e1], z[e0:e1], y[e0:e1]
    if op == ADD:
        for i in range(ys.shape[0]):
            ys[i] = xs[i] + zs[i]
    elif op == SUB:
        for i in range(ys.shape[0]):
            ys[i] = xs[i] - zs[i]
    else:
        for i in range(ys.shape[0]):
            ys[i] = xs[i] * zs[i]


#: cells of one piece of a shared elementwise pass (:mod:`._elementwise_pieces`)
CELLS_PIECE = 1 << 14
#: cells from which a float32 elementwise pass (an activation, an add, subtract or multiply of
#: two operands of one shape) is shared among the run's threads: below, numpy's one pass on
#: the calling thread (about 100 us here)
CELLS_SPLIT = 1 << 18


def warm_activate():
    """The compiled :func:`activate_in_place` for float32 and float64, or None where it is
    off."""
    fn = None
    for dt in (np.float32, np.float64):
        fn = activate_in_place.warm(np.zeros(2, dt), 0, 0.0, 0.0)
    return fn


def warm_activate_into():
    """The compiled :func:`_activate` (``dst = activation(src)``, two flat arrays) for float32
    and float64, or None where it is off: the standalone Relu-like kernels, one pass into a new
    array."""
    fn = None
    for dt in (np.float32, np.float64):
        x = np.zeros(2, dt)
        fn = _activate.warm(x, np.empty_like(x), 0, 0.0, 0.0)
    return fn
