"""The pieces of :mod:`._elementwise_jit`'s one-pass kernels that the spinning intra-op pool's
workers call without the GIL (:func:`ort_cpu._threads.split_compiled`): numba ``cfunc``
functions ``void(int64 argument, int64 lo, int64 hi)`` over pieces of
:data:`._elementwise_jit.CELLS_PIECE` cells, their argument block of int64 slots naming the
arrays.

Memory-bound passes over large maps (an OCR detector's 2.5M-cell adds and Relu) ran on the
calling thread while onnxruntime's took both cores. This module imports numba: :mod:`.elementwise`
imports it where a run shares its work (the pool spins, so numba is loaded). The pieces compile
with ``cache=True``.
"""

from __future__ import annotations

import numpy as np
from numba import carray, cfunc, types

from .._spin_jit import block, made, pointer
from . import _elementwise_jit

__all__ = ["address", "block"]

_SIGNATURE = types.void(types.int64, types.int64, types.int64)
_activate_cells = _elementwise_jit.activate_cells.jitted()
_binary_cells = _elementwise_jit.binary_cells.jitted()
_PIECE = _elementwise_jit.CELLS_PIECE


def _activate_piece():
    """Pieces ``lo:hi`` of :func:`._elementwise_jit.activate_cells` over float32 cells; the
    argument block: x's and y's addresses, the cells, the activation code, then alpha's and
    beta's float64 bits."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), 4, np.int64)
        x = carray(pointer(a[0]), a[2], np.float32)
        y = carray(pointer(a[1]), a[2], np.float32)
        f = carray(pointer(argument + 32), 2, np.float64)
        e0, e1 = lo * _PIECE, min(hi * _PIECE, a[2])
        _activate_cells(x, y, a[3], f[0], f[1], e0, e1)

    return cfunc(_SIGNATURE, cache=True)(piece)


def _binary_piece():
    """Pieces ``lo:hi`` of :func:`._elementwise_jit.binary_cells` over float32 cells; the
    argument block: the two operands' and y's addresses, the cells, the operation."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), 5, np.int64)
        x = carray(pointer(a[0]), a[3], np.float32)
        z = carray(pointer(a[1]), a[3], np.float32)
        y = carray(pointer(a[2]), a[3], np.float32)
        e0, e1 = lo * _PIECE, min(hi * _PIECE, a[3])
        _binary_cells(x, z, y, a[4], e0, e1)

    return cfunc(_SIGNATURE, cache=True)(piece)


_PIECES = {"activate": _activate_piece, "binary": _binary_piece}


def address(kind: str) -> int:
    """The address of the piece of ``kind`` (activate, binary), compiled or loaded on first
    demand."""
    return made(_PIECES[kind])
