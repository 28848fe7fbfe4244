"""The pieces of :mod:`._vnni`'s products that the spinning intra-op pool's workers call
without the GIL (:func:`ort_cpu._threads.split_compiled`): numba ``cfunc`` functions
``void(int64 argument, int64 lo, int64 hi)`` over an argument block (the slots of
:mod:`._vnni_jit`). This module imports numba: :mod:`._vnni` imports it where a session's runs
share work (the pool spins, so numba is loaded). The pieces compile with ``cache=True``.
"""

from __future__ import annotations

import numpy as np
from numba import carray, cfunc, types

from .._spin_jit import filled, made, pointer
from . import _vnni_jit
from ._vnni_jit import (
    BIAS,
    COLUMN_WORDS,
    FLOATS,
    K4,
    M_PAD,
    MULT,
    P_PAD,
    Q_BIAS,
    Q_F,
    Q_FLOATS,
    Q_K4,
    Q_M,
    Q_MPAD,
    Q_MULT,
    Q_SLOTS,
    Q_TABLE,
    Q_WQ,
    Q_WSUM,
    Q_XW,
    Q_XWN,
    Q_XZERO,
    Q_Y,
    R_BIAS,
    R_C,
    R_DH,
    R_DW,
    R_FLOATS,
    R_H,
    R_K4,
    R_KH,
    R_KW,
    R_M,
    R_MPAD,
    R_MULT,
    R_OW,
    R_P,
    R_SH,
    R_SLOTS,
    R_SW,
    R_W,
    R_WQ,
    R_WSUM,
    R_XP,
    R_XZERO,
    R_Y,
    SLOTS,
    TILE_M,
    TILE_P,
    WEIGHT_WORDS,
    WQ,
    WSUM,
    X_BIAS,
    X_FLOATS,
    X_K,
    X_K4,
    X_M,
    X_MPAD,
    X_MULT,
    X_P,
    X_SLOTS,
    X_WQ,
    X_WSUM,
    X_X,
    X_XZERO,
    X_Y,
    X_ZERO,
    XQ,
    M,
    P,
    Y,
)

#: what the pieces call
_qgemm, _qgemm_rows = _vnni_jit.qgemm.jitted(), _vnni_jit.qgemm_rows.jitted()
_conv_rows, _pack_input = _vnni_jit.conv_rows.jitted(), _vnni_jit.pack_input.jitted()
_conv_quads = _vnni_jit.conv_quads.jitted()


def _piece(out_dtype):
    """A compiled piece of :func:`qgemm` (``out_dtype`` uint8 or int8: tiles ``lo:hi`` of
    output channels, see :func:`split`), or of :func:`qgemm_rows` (float32: tiles ``lo:hi`` of
    columns, see :func:`split_columns`; ``XQ`` is then the left operand's words (P padded,
    K / 4), ``WQ`` the packed columns (:func:`pack_columns`; ``M_PAD`` N padded), ``MULT`` the
    scales)."""

    floating = out_dtype == np.float32  # a constant of the compiled code (one branch kept)

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), SLOTS, np.int64)
        f = carray(pointer(argument + FLOATS * 8), 3, np.float64)
        wsum = carray(pointer(a[WSUM]), a[M], np.int32)
        bias = carray(pointer(a[BIAS]), a[M], np.float32)
        mult = carray(pointer(a[MULT]), a[M], np.float32)
        if floating:
            y = carray(pointer(a[Y]), (a[P], a[M]), out_dtype)
            xw = carray(pointer(a[XQ]), (a[P_PAD], a[K4]), np.uint32)
            words = 1 if f[0] != 0.0 else 0  # the columns as words (pack_column_words)
            per_step = TILE_P if words else COLUMN_WORDS
            ww = carray(pointer(a[WQ]), (a[M_PAD] // TILE_P * a[K4], per_step), np.uint32)
            c0, c1 = lo * TILE_P, min(hi * TILE_P, a[M])
            _qgemm_rows(xw, ww, wsum, np.int32(a[X_ZERO]), mult, bias, y, c0, c1, words)
        else:
            y = carray(pointer(a[Y]), (a[M], a[P]), out_dtype)
            xq = carray(pointer(a[XQ]), (a[K4], a[P_PAD]), np.uint32)
            wq = carray(pointer(a[WQ]), (a[M_PAD], a[K4] * WEIGHT_WORDS), np.uint32)
            m0, m1 = lo * TILE_M, min(hi * TILE_M, a[M])
            _qgemm(
                xq, wq, wsum, np.int32(a[X_ZERO]), bias, mult, np.float32(f[0]),
                np.float32(f[1]), np.float32(f[2]), y, m0, m1, 0, a[P],
            )  # fmt: skip

    return cfunc(types.void(types.int64, types.int64, types.int64), cache=True)(piece)


def piece_address(out_dtype) -> int:
    """The address of the compiled piece writing ``out_dtype`` (uint8, int8 or float32)."""
    return made(_piece, np.dtype(out_dtype).type)


def _pixels_piece(out_dtype):
    """A compiled piece of a pointwise product by pixels: tiles ``lo:hi`` of :data:`TILE_P`
    pixels of ``x`` (K, P) uint8 packed by the piece itself (:func:`pack_input` of its columns),
    then :func:`qgemm` for every output channel of those pixels (see :func:`split_pixels`)."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), X_SLOTS, np.int64)
        f = carray(pointer(argument + X_FLOATS * 8), 3, np.float64)
        x = carray(pointer(a[X_X]), (a[X_K], a[X_P]), np.uint8)
        wq = carray(pointer(a[X_WQ]), (a[X_MPAD], a[X_K4] * WEIGHT_WORDS), np.uint32)
        wsum = carray(pointer(a[X_WSUM]), a[X_M], np.int32)
        bias = carray(pointer(a[X_BIAS]), a[X_M], np.float32)
        mult = carray(pointer(a[X_MULT]), a[X_M], np.float32)
        y = carray(pointer(a[X_Y]), (a[X_M], a[X_P]), out_dtype)
        c0, c1 = lo * TILE_P, min(hi * TILE_P, a[X_P])
        k4 = a[X_K4]
        xq = np.empty((k4, -(-(c1 - c0) // TILE_P) * TILE_P), np.uint32)
        _pack_input(x[:, c0:c1], k4, xq.shape[1], xq)
        _qgemm(
            xq, wq, wsum, np.int32(a[X_XZERO]), bias, mult, np.float32(f[0]), np.float32(f[1]),
            np.float32(f[2]), y, 0, a[X_M], c0, c1 - c0,
        )  # fmt: skip

    return cfunc(types.void(types.int64, types.int64, types.int64), cache=True)(piece)


def pixels_address(out_dtype) -> int:
    """The address of the compiled pixels piece writing ``out_dtype`` (uint8 or int8)."""
    return made(_pixels_piece, np.dtype(out_dtype).type)


def _rows_piece(out_dtype):
    """A compiled piece of :func:`conv_rows`: output rows ``lo:hi`` (see :func:`split_rows`)."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), R_SLOTS, np.int64)
        f = carray(pointer(argument + R_FLOATS * 8), 3, np.float64)
        xp = carray(pointer(a[R_XP]), (a[R_C], a[R_H], a[R_W]), np.uint8)
        wq = carray(pointer(a[R_WQ]), (a[R_MPAD], a[R_K4] * WEIGHT_WORDS), np.uint32)
        wsum = carray(pointer(a[R_WSUM]), a[R_M], np.int32)
        bias = carray(pointer(a[R_BIAS]), a[R_M], np.float32)
        mult = carray(pointer(a[R_MULT]), a[R_M], np.float32)
        y = carray(pointer(a[R_Y]), (a[R_M], a[R_P]), out_dtype)
        _conv_rows(
            xp, a[R_KH], a[R_KW], a[R_SH], a[R_SW], a[R_DH], a[R_DW], a[R_OW], lo, hi, wq, wsum,
            np.int32(a[R_XZERO]), bias, mult, np.float32(f[0]), np.float32(f[1]),
            np.float32(f[2]), y,
        )  # fmt: skip

    return cfunc(types.void(types.int64, types.int64, types.int64), cache=True)(piece)


def rows_address(out_dtype) -> int:
    """The address of the compiled rows piece writing ``out_dtype`` (uint8 or int8)."""
    return made(_rows_piece, np.dtype(out_dtype).type)


def _quads_piece(out_dtype):
    """A compiled piece of :func:`conv_quads`: tiles ``lo:hi`` of 32 output cells (see
    :func:`split_quads`)."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), Q_SLOTS, np.int64)
        f = carray(pointer(argument + Q_FLOATS * 8), 3, np.float64)
        xw = carray(pointer(a[Q_XW]), a[Q_XWN], np.uint32)
        table = carray(pointer(a[Q_TABLE]), a[Q_K4], np.int64)
        wq = carray(pointer(a[Q_WQ]), (a[Q_MPAD], a[Q_K4] * WEIGHT_WORDS), np.uint32)
        wsum = carray(pointer(a[Q_WSUM]), a[Q_M], np.int32)
        bias = carray(pointer(a[Q_BIAS]), a[Q_M], np.float32)
        mult = carray(pointer(a[Q_MULT]), a[Q_M], np.float32)
        yf = carray(pointer(a[Q_Y]), (a[Q_M], a[Q_F]), out_dtype)
        _conv_quads(
            xw, table, wq, wsum, np.int32(a[Q_XZERO]), bias, mult, np.float32(f[0]),
            np.float32(f[1]), np.float32(f[2]), yf, lo, hi,
        )  # fmt: skip

    return cfunc(types.void(types.int64, types.int64, types.int64), cache=True)(piece)


def quads_address(out_dtype) -> int:
    """The address of the compiled quads piece writing ``out_dtype`` (uint8 or int8)."""
    return made(_quads_piece, np.dtype(out_dtype).type)


_FILLED: list = []  # whether warm_filled ran


def warm_filled() -> None:
    """Load (or compile) the argument blocks' filling for the arrays the splits pass (the
    packed input or the left operand's words, the input's rows, the padded images, read-only or
    not), so that a first split does not compile it."""
    if _FILLED:
        return
    t = np.zeros(SLOTS, np.int64)
    aw = _vnni_jit.left_words(np.zeros((1, 4), np.uint8))
    xq = np.empty((1, TILE_P), np.uint32)
    filled(t, XQ, aw, Y, np.empty((1, 1), np.float32), MULT, np.empty(1, np.float32))
    xw = np.empty(1, np.uint32)
    for out in (np.uint8, np.int8):
        y = np.empty((1, 1), out)
        filled(t, XQ, xq, Y, y)
        filled(t, Q_XW, xw, Q_Y, y)
        for writable in (True, False):
            x2, x3 = np.zeros((1, 1), np.uint8), np.zeros((1, 1, 1), np.uint8)
            x2.flags.writeable = x3.flags.writeable = writable
            filled(t, XQ, x2, Y, y)
            filled(t, XQ, x3, Y, y)
    _FILLED.append(True)
