"""Compiled pieces of the elementwise 8-bit kernels of :mod:`._quant_jit` (the 256-entry
lookups of QLinearSigmoid, QLinearLeakyRelu and QLinearConcat, QLinearAdd and QLinearMul,
QLinearSoftmax's columns),
which the spinning intra-op pool's workers call without the GIL
(:func:`ort_cpu._threads.split_compiled`): blocks of :data:`PIECE` elements each.

These kernels are memory-bound passes over large activations (a YOLO's 16 x 320 x 320 SiLU in
QDQ form is a QLinearSigmoid and a QLinearMul of 1.6 MB each): on one thread they were 14 of
YOLO-n-QDQ's 37 ms at two threads, none of it shared.

A piece is a numba ``cfunc`` ``void(int64 argument, int64 lo, int64 hi)``; its argument block
(:func:`ort_cpu._spin_jit.block`) holds the arrays' addresses, the element count, the kernel's
integer arguments and its float arguments' float64 bits last. This module imports numba when
it is imported; the pieces compile with ``cache=True``.
"""

from __future__ import annotations

import numpy as np
from numba import carray, cfunc, types

from .. import _threads
from .._spin_jit import block, filled, made, pointer
from . import _quant_jit

_SIGNATURE = types.void(types.int64, types.int64, types.int64)
#: elements of one piece (the last may be shorter)
PIECE = 1 << 14
#: the block's slots: the first operand's, the second's (or the table's) and the output's
#: addresses, the element count, the kernel's integer argument; then its float arguments
A, B, OUT, COUNT, CODE, FLOATS = range(6)
_lookup = _quant_jit.lookup.jitted()
_qbinary = _quant_jit.qbinary.jitted()
_qsoftmax = _quant_jit.qsoftmax3.jitted()
#: the slots of a softmax piece's block: x's address and (outer, n, inner) view, the table's
#: and the output's addresses; then the factor, zero point and bounds
S_X, S_OUTER, S_N, S_INNER, S_TABLE, S_OUT, S_FLOATS = range(7)


def _lookup_piece(dtype):
    """Elements ``lo * PIECE`` to ``hi * PIECE`` of :func:`._quant_jit.lookup` (bytes in, a
    ``dtype`` table and output)."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), FLOATS, np.int64)
        e0, e1 = lo * PIECE, min(hi * PIECE, a[COUNT])
        x = carray(pointer(a[A] + e0), e1 - e0, np.uint8)
        table = carray(pointer(a[B]), 256, dtype)
        out = carray(pointer(a[OUT] + e0), e1 - e0, dtype)
        _lookup(x, table, out)

    return cfunc(_SIGNATURE, cache=True)(piece)


def _binary_piece(dtype):
    """Elements ``lo * PIECE`` to ``hi * PIECE`` of :func:`._quant_jit.qbinary` (``dtype``
    operands and output; its code in ``CODE``, za, zb, ka, kb, zc, lo, hi after it)."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), FLOATS, np.int64)
        f = carray(pointer(argument + FLOATS * 8), 7, np.float64)
        e0, e1 = lo * PIECE, min(hi * PIECE, a[COUNT])
        x = carray(pointer(a[A] + e0), e1 - e0, dtype)
        y = carray(pointer(a[B] + e0), e1 - e0, dtype)
        out = carray(pointer(a[OUT] + e0), e1 - e0, dtype)
        _qbinary(
            x, y, np.float32(f[0]), np.float32(f[1]), np.float32(f[2]), np.float32(f[3]),
            np.float32(f[4]), np.float32(f[5]), np.float32(f[6]), a[CODE], out,
        )  # fmt: skip

    return cfunc(_SIGNATURE, cache=True)(piece)


def _softmax_piece(dtype):
    """Columns ``lo * PIECE`` to ``hi * PIECE`` of the ``inner`` axis of
    :func:`._quant_jit.qsoftmax3` (``dtype`` input and output): each (outer, inner) row is one
    column's n values, so columns are independent."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), S_FLOATS, np.int64)
        f = carray(pointer(argument + S_FLOATS * 8), 4, np.float64)
        shape = (a[S_OUTER], a[S_N], a[S_INNER])
        i0, i1 = lo * PIECE, min(hi * PIECE, a[S_INNER])
        x = carray(pointer(a[S_X]), shape, dtype)[:, :, i0:i1]
        out = carray(pointer(a[S_OUT]), shape, dtype)[:, :, i0:i1]
        table = carray(pointer(a[S_TABLE]), 256, np.float32)
        _qsoftmax(
            x, table, np.float32(f[0]), np.float32(f[1]), np.float32(f[2]), np.float32(f[3]), out
        )

    return cfunc(_SIGNATURE, cache=True)(piece)


def softmax(x: np.ndarray, table, factor, zero_point, lo, hi, out: np.ndarray) -> bool:
    """:func:`._quant_jit.qsoftmax3` of the C-contiguous (outer, n, inner) ``x`` into ``out``
    shared among the run's threads by columns of ``inner``; False (nothing run) where the run
    has no spinning pool free or there are too few columns to share."""
    inner = x.shape[2]
    if inner < 2 * PIECE:
        return False
    a, at = filled(block((0, *x.shape, 0, 0), (factor, zero_point, lo, hi)), S_X, x, S_TABLE,
                   table, S_OUT, out)  # fmt: skip
    units = -(-inner // PIECE)
    return _threads.split_compiled(units, made(_softmax_piece, x.dtype.type), at)


def lookup(x: np.ndarray, table: np.ndarray, out: np.ndarray) -> bool:
    """:func:`._quant_jit.lookup` of the flat bytes ``x`` into the flat ``out`` shared among the
    run's threads; False (nothing run) where the run has no spinning pool free."""
    n = x.shape[0]
    a, at = filled(block((0, 0, 0, n, 0)), A, x, B, table, OUT, out)
    units = -(-n // PIECE)
    return _threads.split_compiled(units, made(_lookup_piece, table.dtype.type), at)


def binary_block(params, lo, hi, code) -> np.ndarray:
    """The argument block of :func:`binary` for :func:`._quant_jit.qbinary`'s float parameters
    (za, zb, ka, kb, zc), bounds and ``code`` (made once per node)."""
    return block((0, 0, 0, 0, code), (*params, lo, hi))


def binary(template: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> bool:
    """:func:`._quant_jit.qbinary` of the flat ``a`` and ``b`` into the flat ``out`` shared among
    the run's threads (``template``: :func:`binary_block`); False (nothing run) where the run
    has no spinning pool free."""
    n = a.shape[0]
    blk, at = filled(template, A, a, B, b, OUT, out)
    blk[COUNT] = n
    units = -(-n // PIECE)
    return _threads.split_compiled(units, made(_binary_piece, a.dtype.type), at)


def warm(dtype) -> None:
    """Make (or load) the pieces for ``dtype`` outputs now, and the block filling for the
    arrays they take (writable or read-only operands), so that a first run compiles nothing."""
    dt = np.dtype(dtype).type
    made(_lookup_piece, dt)
    made(_binary_piece, dt)
    made(_softmax_piece, dt)
    t = block((0, 0, 0, 0, 0))
    out = np.zeros(1, dt)
    for writable in (True, False):
        x, y = np.zeros(1, np.uint8), np.zeros(1, dt)
        x.flags.writeable = y.flags.writeable = writable
        filled(t, A, x, B, out, OUT, out)
        filled(t, A, y, B, y, OUT, out)
        filled(t, A, y.reshape(1, 1, 1), B, np.zeros(1, np.float32), OUT, out.reshape(1, 1, 1))
