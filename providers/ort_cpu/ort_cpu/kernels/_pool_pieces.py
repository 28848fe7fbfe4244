"""Compiled pieces of :func:`._pool_jit.max_pool_same` and :func:`._pool_jit.max_pool_rows`,
which the spinning intra-op pool's workers call without the GIL
(:func:`ort_cpu._threads.split_compiled`): each takes a block of planes (channels of every
image).

A piece is a numba ``cfunc`` ``void(int64 argument, int64 lo, int64 hi)``; ``argument`` is the
address of an int64 block: x's address, its planes, rows and columns, y's address, then the
window's rows and columns and the rows and columns before it, then (``max_pool_rows``) y's rows
and columns and the strides (:func:`split`).

This module imports numba when it is imported (only once a run shares such a pool). The pieces
compile with ``cache=True``.
"""

from __future__ import annotations

import numpy as np
from numba import carray, cfunc, types

from .. import _threads
from .._spin_jit import block as made_block
from .._spin_jit import made, pointer
from . import _pool_jit

X, PLANES, H, W, Y, KH, KW, PT, PL, OH, OW, SH, SW = range(13)
SLOTS = 13
_SIGNATURE = types.void(types.int64, types.int64, types.int64)
_same = _pool_jit.max_pool_same.jitted()
_rows = _pool_jit.max_pool_rows.jitted()


def _piece(dtype):
    """Planes ``lo:hi`` of :func:`._pool_jit.max_pool_same` for ``dtype`` arrays."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), SLOTS, np.int64)
        x = carray(pointer(a[X]), (a[PLANES], a[H], a[W]), dtype)
        y = carray(pointer(a[Y]), (a[PLANES], a[H], a[W]), dtype)
        _same(x, y, a[KH], a[KW], a[PT], a[PL], lo, hi)

    return cfunc(_SIGNATURE, cache=True)(piece)


def _rows_piece(dtype):
    """Planes ``lo:hi`` of :func:`._pool_jit.max_pool_rows` for ``dtype`` arrays."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), SLOTS, np.int64)
        x = carray(pointer(a[X]), (a[PLANES], a[H], a[W]), dtype)
        y = carray(pointer(a[Y]), (a[PLANES], a[OH], a[OW]), dtype)
        _rows(x, y, a[KH], a[KW], a[SH], a[SW], a[PT], a[PL], lo, hi)

    return cfunc(_SIGNATURE, cache=True)(piece)


def address(dtype, strided: bool = False) -> int:
    """The address of the piece for ``dtype`` (made, or loaded, on first demand):
    ``max_pool_rows``'s where ``strided``, else ``max_pool_same``'s."""
    return made(_rows_piece if strided else _piece, np.dtype(dtype).type)


def split(x: np.ndarray, y: np.ndarray, kh: int, kw: int, pt: int, pl: int,
          strides: tuple[int, int] | None = None) -> bool:  # fmt: skip
    """:func:`._pool_jit.max_pool_same` (or, given ``strides``, ``max_pool_rows``) of the
    C-contiguous ``x`` (planes, H, W) into ``y`` (planes, OH, OW) shared among the run's
    threads by blocks of planes; False (nothing run) where the run has no spinning pool
    free."""
    if not _threads.spinning():
        return False
    sh, sw = strides or (1, 1)
    a = made_block((x.ctypes.data, *x.shape, y.ctypes.data, kh, kw, pt, pl, *y.shape[1:], sh, sw))
    return _threads.split_compiled(x.shape[0], address(x.dtype, strides is not None), a.ctypes.data)
