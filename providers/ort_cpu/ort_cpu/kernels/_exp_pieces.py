"""The pieces of :mod:`._exp_jit`'s kernels that the spinning intra-op pool's workers call
without the GIL (:func:`ort_cpu._threads.split_compiled`): numba ``cfunc`` functions
``void(int64 argument, int64 lo, int64 hi)`` over a block of int64 slots naming the arrays.

This module imports numba: :mod:`._exp_jit` imports it where a run shares its work (the pool
spins, so numba is loaded). The pieces compile with ``cache=True``.
"""

from __future__ import annotations

import numpy as np
from numba import carray, cfunc, types

from .._spin_jit import block, made, pointer
from . import _exp_jit

__all__ = ["address", "block"]

_SIGNATURE = types.void(types.int64, types.int64, types.int64)
_softmax_keys = _exp_jit.softmax_keys.jitted()
_softmax_rows = _exp_jit.softmax_rows.jitted()
_gelu_rows = _exp_jit.gelu_rows.jitted()
_logistic_cells = _exp_jit.logistic_cells.jitted()
_LOGISTIC_PIECE = _exp_jit.LOGISTIC_PIECE


def _softmax_piece():
    """Heads ``lo:hi`` of :func:`._exp_jit.softmax_keys`; the argument block
    (:func:`._exp_jit.softmax`): the scores' address and shape, the mask's address and rows,
    ``per_mask``, the scale's float64 bits."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), 7, np.int64)
        s = carray(pointer(a[0]), (a[1], a[2], a[3]), np.float32)
        mask = carray(pointer(a[4]), (a[5], a[2]), np.float32)
        scale = carray(pointer(argument + 56), 1, np.float64)[0]
        _softmax_keys(s, np.float32(scale), mask, a[6], lo, hi)

    return cfunc(_SIGNATURE, cache=True)(piece)


def _softmax_rows_piece():
    """Rows ``lo:hi`` of :func:`._exp_jit.softmax_rows`; the argument block: x's address and
    shape, y's address, ``log``."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), 5, np.int64)
        x = carray(pointer(a[0]), (a[1], a[2]), np.float32)
        y = carray(pointer(a[3]), (a[1], a[2]), np.float32)
        _softmax_rows(x, y, a[4], lo, hi)

    return cfunc(_SIGNATURE, cache=True)(piece)


def _gelu_piece():
    """Rows ``lo:hi`` of :func:`._exp_jit.gelu_rows`; the argument block
    (:func:`._exp_jit.gelu`): x's address and shape, the bias's address and length, y's
    address, the polynomial's address, the clamp's float64 bits."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), 7, np.int64)
        x = carray(pointer(a[0]), (a[1], a[2]), np.float32)
        bias = carray(pointer(a[3]), a[4], np.float32)
        y = carray(pointer(a[5]), (a[1], a[2]), np.float32)
        q = carray(pointer(a[6]), 8, np.float32)
        s_max = carray(pointer(argument + 56), 1, np.float64)[0]
        _gelu_rows(x, bias, y, q, np.float32(s_max), lo, hi)

    return cfunc(_SIGNATURE, cache=True)(piece)


def _logistic_piece():
    """Cells ``lo * LOGISTIC_PIECE : hi * LOGISTIC_PIECE`` (:data:`._exp_jit.LOGISTIC_PIECE`)
    of :func:`._exp_jit.logistic_cells`; the argument block: x's and y's addresses, the cells,
    ``times_x``, alpha's float64 bits."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), 5, np.int64)
        x = carray(pointer(a[0]), a[2], np.float32)
        y = carray(pointer(a[1]), a[2], np.float32)
        alpha = carray(pointer(argument + 32), 1, np.float64)[0]
        e0, e1 = lo * _LOGISTIC_PIECE, min(hi * _LOGISTIC_PIECE, a[2])
        _logistic_cells(x, y, np.float32(alpha), a[3] != 0, e0, e1)

    return cfunc(_SIGNATURE, cache=True)(piece)


_PIECES = {
    "softmax": _softmax_piece,
    "softmax_rows": _softmax_rows_piece,
    "gelu": _gelu_piece,
    "logistic": _logistic_piece,
}


def address(kind: str) -> int:
    """The address of the piece of ``kind`` (softmax, softmax_rows, gelu, logistic), compiled
    or loaded on first demand."""
    return made(_PIECES[kind])
