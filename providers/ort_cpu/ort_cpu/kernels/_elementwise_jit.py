"""Compiled elementwise activations that numpy computes in several passes: one pass, the same
float operations in the same order as the numpy path (so the same results), for contiguous
float32 and float64 tensors. See :mod:`ort_cpu._jit` for the rules (lazy, cached on disk, numpy
fallback)."""

from __future__ import annotations

import numpy as np

from .._jit import jit

__all__ = ["warm_hard_swish"]


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
