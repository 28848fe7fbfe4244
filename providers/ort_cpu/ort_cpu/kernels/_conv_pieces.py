"""Compiled pieces of the direct convolutions (:mod:`._conv_jit`), which the spinning intra-op
pool's workers call without the GIL (:func:`ort_cpu._threads.split_compiled`): the planar
kernel by blocks of groups, the channels-last depthwise kernel by blocks of channels.

A piece is a numba ``cfunc`` ``void(int64 argument, int64 lo, int64 hi)``: ``argument`` is the
address of an int64 block (:func:`block`) holding the arrays' addresses and shapes, the
kernel's integer arguments, and its two float arguments' float64 bits last. Handed over as
Python pieces, the same work made a worker wait for the GIL first (30-60 us here), so only
layers from 2M multiply-adds were shared.

This module imports numba when it is imported (:func:`pieces` imports it once compiled kernels
are on). The pieces compile with ``cache=True``.
"""

from __future__ import annotations

import numpy as np
from numba import carray, cfunc, njit, types

from .. import _threads
from .._spin_jit import block as made_block
from .._spin_jit import filled, made, pointer
from . import _conv_jit

#: the block's slots: x (address, N, C, H, W), the weights (address, rows, columns), the bias's
#: address, y (address, C, OH, OW; N is x's), then the kernel's integer arguments from
#: :data:`INTS` and its two float arguments' bits
X, N, C, H, W, WEIGHTS, ROWS, COLUMNS, BIAS, Y, YC, OH, OW = range(13)
INTS = 13
_SIGNATURE = types.void(types.int64, types.int64, types.int64)
_direct = _conv_jit._direct.jitted()
_nhwc = _conv_jit._depthwise_nhwc.jitted()
_quant = _conv_jit._depthwise_quant.jitted()
_quant_cl = _conv_jit._depthwise_quant_cl.jitted()
_pointwise = _conv_jit.pointwise.jitted()
_pointwise_tiles = _conv_jit._pointwise_tiles.jitted()
_conv_cl = _conv_jit.conv_cl.jitted()


@njit(cache=True, inline="always")
def _views(a, dtype):  # pragma: no cover - compiled
    """The arrays a block ``a`` names: x (N, C, H, W), the weights, the bias, y (N, M, OH, OW)."""
    x = carray(pointer(a[X]), (a[N], a[C], a[H], a[W]), dtype)
    w = carray(pointer(a[WEIGHTS]), (a[ROWS], a[COLUMNS]), dtype)
    bias = carray(pointer(a[BIAS]), a[YC], dtype)
    y = carray(pointer(a[Y]), (a[N], a[YC], a[OH], a[OW]), dtype)
    return x, w, bias, y


def _warm_filled(x_dtype, y_dtype, third: bool = False) -> None:
    """Compile (or load) :func:`.._spin_jit.filled` for the 4-D input (writable or read-only)
    and output a piece of these types takes (with ``third``, an output-shaped third array
    too: a residual), with the piece: not in a first split."""
    t = np.zeros(INTS + 18, np.int64)
    y = np.empty((1, 1, 1, 1), y_dtype)
    for writable in (True, False):
        x = np.zeros((1, 1, 1, 1), x_dtype)
        x.flags.writeable = writable
        filled(t, X, x, Y, y)
        if third:
            filled(t, X, x, Y, y, INTS + 1, y)


def _direct_piece(dtype):
    """Groups ``lo:hi`` of :func:`._conv_jit._direct` for ``dtype`` arrays, or with the first
    integer argument 1, output channels ``lo:hi`` of its one group, with 2 its output rows
    ``lo:hi`` (then 15 more integer arguments: cg, mg and the rest, the mode and the activation
    code last)."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), INTS + 18, np.int64)
        f = carray(pointer(argument + (INTS + 16) * 8), 2, np.float64)
        x, w, bias, y = _views(a, dtype)
        i = a[INTS + 1 :]
        if a[INTS] == 2:  # output rows lo:hi of one group: the input rows they read
            sh, kh, dh, pt = i[4], i[2], i[6], i[8]
            s0 = max(0, lo * sh - pt)
            s1 = max(s0, min(x.shape[2], (hi - 1) * sh - pt + (kh - 1) * dh + 1))
            _direct(
                x[:, :, s0:s1], w, bias, y[:, :, lo:hi], 0, 1, 0, i[1], i[0], i[1], i[2], i[3],
                i[4], i[5], i[6], i[7], pt - lo * sh + s0, i[9], i[10], i[11], i[12], i[13],
                i[14], f[0], f[1],
            )  # fmt: skip
            return
        g0, g1, m0, m1 = (0, 1, lo, hi) if a[INTS] == 1 else (lo, hi, 0, i[1])
        _direct(
            x, w, bias, y, g0, g1, m0, m1, i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8],
            i[9], i[10], i[11], i[12], i[13], i[14], f[0], f[1],
        )  # fmt: skip

    _warm_filled(dtype, dtype)
    return cfunc(_SIGNATURE, cache=True)(piece)


def _nhwc_piece(dtype):
    """Channels ``lo:hi`` of :func:`._conv_jit._depthwise_nhwc` for ``dtype`` arrays (9 integer
    arguments)."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), INTS + 11, np.int64)
        f = carray(pointer(argument + (INTS + 9) * 8), 2, np.float64)
        x, w, bias, y = _views(a, dtype)
        i = a[INTS:]
        _nhwc(
            x, w, bias, y, lo, hi, i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], f[0], f[1]
        )

    _warm_filled(dtype, dtype)
    return cfunc(_SIGNATURE, cache=True)(piece)


def _quant_piece(x_dtype, y_dtype):
    """Channels ``lo:hi`` of :func:`._conv_jit._depthwise_quant`: its block holds x (address,
    N, C, H, W), the weights', bias's and multipliers' addresses, y (address, OH, OW), the 10
    integer arguments from kh, then zx, zy, lo and hi as float64 bits."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), 21, np.int64)
        f = carray(pointer(argument + 21 * 8), 4, np.float64)
        n, c = a[1], a[2]
        x = carray(pointer(a[0]), (n, c, a[3], a[4]), x_dtype)
        w = carray(pointer(a[5]), (c, a[11] * a[12]), np.float32)
        bias = carray(pointer(a[6]), c, np.float32)
        mult = carray(pointer(a[7]), c, np.float32)
        y = carray(pointer(a[8]), (n, c, a[9], a[10]), y_dtype)
        i = a[11:]
        _quant(
            x, np.float32(f[0]), w, bias, mult, np.float32(f[1]), np.float32(f[2]),
            np.float32(f[3]), y, lo, hi, i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8],
            i[9],
        )  # fmt: skip

    _warm_filled(x_dtype, y_dtype)
    return cfunc(_SIGNATURE, cache=True)(piece)


def _quant_cl_piece(x_dtype, y_dtype):
    """Channels ``lo:hi`` of :func:`._conv_jit._depthwise_quant_cl`: its block is
    :func:`_quant_piece`'s, the weights (kh * kw, C + CL_BLOCK) by tap
    (:func:`._conv_jit.cl_weights`), the biases and multipliers C + CL_BLOCK long."""
    block = _conv_jit.CL_BLOCK

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), 21, np.int64)
        f = carray(pointer(argument + 21 * 8), 4, np.float64)
        n, c = a[1], a[2]
        x = carray(pointer(a[0]), (n, c, a[3], a[4]), x_dtype)
        wt = carray(pointer(a[5]), (a[11] * a[12], c + block), np.float32)
        bias = carray(pointer(a[6]), c + block, np.float32)
        mult = carray(pointer(a[7]), c + block, np.float32)
        y = carray(pointer(a[8]), (n, c, a[9], a[10]), y_dtype)
        i = a[11:]
        _quant_cl(
            x, np.float32(f[0]), wt, bias, mult, np.float32(f[1]), np.float32(f[2]),
            np.float32(f[3]), y, lo, hi, i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7],
        )  # fmt: skip

    _warm_filled(x_dtype, y_dtype)
    return cfunc(_SIGNATURE, cache=True)(piece)


def _pointwise_piece(dtype):
    """Blocks of cells ``lo:hi`` (all tiles of output channels) of :func:`._conv_jit.pointwise`,
    or with the first integer argument 1, its tiles ``lo:hi`` (all blocks). x is (N, C, 1, P)
    in the block, the weights (M, K) (C / K groups), y (N, M, 1, P); the integer arguments
    are the mode, the residual's address (0: none) and the activation code."""
    cells = _conv_jit.PW_CELLS

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), INTS + 5, np.int64)
        f = carray(pointer(argument + (INTS + 3) * 8), 2, np.float64)
        x = carray(pointer(a[X]), (a[N], a[C], a[W]), dtype)
        w = carray(pointer(a[WEIGHTS]), (a[ROWS], a[COLUMNS]), dtype)
        y = carray(pointer(a[Y]), (a[N], a[YC], a[OW]), dtype)
        bias = carray(pointer(a[BIAS]), a[YC], dtype)
        z = carray(pointer(a[INTS + 1]), (a[N], a[YC], a[OW]) if a[INTS + 1] else (0, 0, 0), dtype)
        tiles = _pointwise_tiles(a[YC], a[C] // a[COLUMNS])
        b0, b1, t0, t1 = (
            (0, a[N] * -(-a[W] // cells), lo, hi) if a[INTS] == 1 else (lo, hi, 0, tiles)
        )
        _pointwise(x, w, bias, y, z, b0, b1, t0, t1, a[INTS + 2], f[0], f[1])

    _warm_filled(dtype, dtype, third=True)
    return cfunc(_SIGNATURE, cache=True)(piece)


def _channels_last_piece(dtype):
    """Blocks of output channels ``lo:hi`` of :func:`._conv_jit.conv_cl`, or with the mode 1
    its tiles of cells ``lo:hi``: x is (N, 1, 1, X) in the block, the weights (B, K * width)
    and B * width biases (:func:`._conv_jit.cl_width`), y (N, M, 1, P); the integer arguments
    are the table's address and length, the cells' bases' address, the mode and the
    activation code."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), INTS + 7, np.int64)
        f = carray(pointer(argument + (INTS + 5) * 8), 2, np.float64)
        x = carray(pointer(a[X]), (a[N], a[W]), dtype)
        w = carray(pointer(a[WEIGHTS]), (a[ROWS], a[COLUMNS]), dtype)
        bias = carray(pointer(a[BIAS]), a[ROWS] * (a[COLUMNS] // a[INTS + 1]), dtype)
        y = carray(pointer(a[Y]), (a[N], a[YC], a[OW]), dtype)
        table = carray(pointer(a[INTS]), a[INTS + 1], np.int64)
        bases = carray(pointer(a[INTS + 2]), a[OW] + _conv_jit.CL_CELLS, np.int64)
        if a[INTS + 3]:  # tiles of cells lo:hi, every block
            b0, b1, u0, u1 = 0, a[ROWS], lo, hi
        else:
            b0, b1, u0, u1 = lo, hi, 0, -(-a[OW] // _conv_jit.CL_CELLS)
        _conv_cl(x, table, bases, w, bias, y, b0, b1, u0, u1, a[INTS + 4], f[0], f[1])

    _warm_filled(dtype, dtype)
    return cfunc(_SIGNATURE, cache=True)(piece)


DIRECT, NHWC, POINTWISE = _direct_piece, _nhwc_piece, _pointwise_piece
CHANNELS_LAST = _channels_last_piece


def quant_block(x_shape, w, bias, mult, y_shape, ints, floats) -> np.ndarray:
    """The argument block of :func:`split_quant` for inputs of ``x_shape``: the constant
    weights, biases and multipliers (kept alive by the caller), the shapes, ``ints`` and the
    zero points and bounds ``floats``; x's and y's addresses (slots 0 and 8) left for each
    call."""
    return made_block(
        (0, *x_shape, w.ctypes.data, bias.ctypes.data, mult.ctypes.data, 0, *y_shape[2:], *ints),
        floats,
    )


def split_quant(template, x, y, channels_last: bool = False) -> bool:
    """:func:`._conv_jit._depthwise_quant` over every channel shared among the run's threads (or
    :func:`._conv_jit._depthwise_quant_cl`, ``channels_last``, in pieces of whole vectors of
    channels), its argument block ``template`` (:func:`quant_block`, with that kernel's
    weights) with x's and y's addresses; False (nothing run) where the run has no spinning pool
    free."""
    if not _threads.spinning():
        return False
    a, at = filled(template, 0, x, 8, y)
    if channels_last:  # pieces of whole vectors of channels where there are two
        address = quant_address(x.dtype, y.dtype, True)
        multiple = _conv_jit.LANES if x.shape[1] >= 2 * _conv_jit.LANES else 1
    else:
        address, multiple = quant_address(x.dtype, y.dtype), 1
    return _threads.split_compiled(x.shape[1], address, at, multiple)


def quant_address(x_dtype, y_dtype, channels_last: bool = False) -> int:
    """The address of the depthwise QLinearConv piece for these 8-bit types, planar or
    ``channels_last`` (made on first demand)."""
    make = _quant_cl_piece if channels_last else _quant_piece
    return made(make, np.dtype(x_dtype).type, np.dtype(y_dtype).type)


def address(kind, dtype) -> int:
    """The address of the piece ``kind`` (:data:`DIRECT`, :data:`NHWC`, :data:`POINTWISE` or
    :data:`CHANNELS_LAST`) for ``dtype`` (made on first demand: :func:`ort_cpu._spin_jit.made`)."""
    return made(kind, dtype)


def block(x_shape, w, bias, y_shape, ints, floats) -> np.ndarray:
    """A piece's argument block for inputs of ``x_shape``: the weights' and the bias's addresses
    (C-contiguous arrays the caller keeps alive), the shapes, ``ints`` and ``floats``; x's and
    y's addresses (slots ``X`` and ``Y``) left for each call (:func:`split`)."""
    return made_block(
        (0, *x_shape, w.ctypes.data, *w.shape, bias.ctypes.data, 0, *y_shape[1:], *ints), floats
    )


def split(pieces: dict, total: int, x, y, template, min_piece: int = 1, z=None) -> bool:
    """The kernel of ``pieces`` (:data:`DIRECT`, :data:`NHWC`, :data:`POINTWISE` or
    :data:`CHANNELS_LAST`) over ``range(total)`` shared among the run's threads, its argument
    block ``template`` (:func:`block`) with x's and y's addresses (and a residual ``z``'s, for
    :data:`POINTWISE`); False (nothing run) where the run has no spinning pool free."""
    if not _threads.spinning():
        return False
    a, at = filled(template, X, x, Y, y) if z is None else filled(template, X, x, Y, y, INTS + 1, z)
    return _threads.split_compiled(total, address(pieces, x.dtype.type), at, min_piece)
