"""Operations that broadcast one value per row over long rows: a per-channel bias or scale over
the H*W cells of each channel of an NCHW feature map, a per-row statistic over the row of a
LayerNormalization.

numpy's ufunc iterator copies operands that it cannot fold into one inner loop into blocks of its
buffer size (8192 elements by default): a (C, 1) operand against rows shorter than that is copied
block by block, which makes the operation 1.4-2.1x slower than the same work done in place
(measured here, float32: bias over 256 x 3136 222 -> 101 us, 512 x 784 88 -> 61 us, a
LayerNormalization subtraction over 197 x 768 46 -> 34 us). With a buffer smaller than the row,
numpy runs its inner loop over each row in place. Rows shorter than :data:`LONG_ROW` keep the
default, which there pays: combining short rows into longer loops beats one loop per row (2048 x
49: 45 us, 53-129 us with small buffers).
"""

from __future__ import annotations

import functools

import numpy as np

LONG_ROW = 768  # elements per row from which the small buffer pays
SMALL_BUFFER = 512  # elements; numpy 1.x wants a multiple of 16


def per_row(ufunc, a: np.ndarray, b, out: np.ndarray | None = None, row: int = 0) -> np.ndarray:
    """``ufunc(a, b, out=out)``, with numpy's ufunc buffer below the row length when the rows
    (``row`` contiguous elements that share one value of the broadcast operand) are long."""
    if row < LONG_ROW:
        return ufunc(a, b, out=out)
    old = np.setbufsize(SMALL_BUFFER)
    try:
        return ufunc(a, b, out=out)
    finally:
        np.setbufsize(old)


@functools.lru_cache(maxsize=1024)
def broadcast_run(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> int:
    """Elements per innermost block of the broadcast output over which neither operand switches
    between present and broadcast: the longest inner loop numpy can run without its buffer (a
    bias row of 768 against (N, 768): 768; a (C, 1, 1) scale against (C, H, W): H*W). Kept per
    pair of shapes (worked out per call, its loop took 1.5 us of a 4 us (1, 32, 128) + (128,))."""
    nd = max(len(a_shape), len(b_shape))
    a = (1,) * (nd - len(a_shape)) + tuple(a_shape)
    b = (1,) * (nd - len(b_shape)) + tuple(b_shape)
    run, state = 1, None
    for da, db in zip(reversed(a), reversed(b), strict=True):
        if da == db == 1:
            continue
        s = (da == 1, db == 1)
        if state is None:
            state = s
        elif s != state:
            break
        run *= max(da, db)
    return run


def binary(ufunc, a: np.ndarray, b, out: np.ndarray | None = None) -> np.ndarray:
    """``ufunc(a, b, out=out)`` for a binary elementwise op, through :func:`per_row` when one
    operand broadcasts over long rows of the other (a bias row added to activations)."""
    b = np.asarray(b)
    if a.shape == b.shape or a.size + b.size < 4 * LONG_ROW:
        return ufunc(a, b, out=out)
    run = broadcast_run(a.shape, b.shape)
    if run >= max(a.size, b.size):  # one operand is the whole output: nothing to buffer
        return ufunc(a, b, out=out)
    return per_row(ufunc, a, b, out=out, row=run)


def add(a: np.ndarray, b, out: np.ndarray | None = None) -> np.ndarray:
    """``a + b`` (into ``out``) through :func:`binary`: biases, skips."""
    return binary(np.add, a, b, out=out)


def ranked(a: np.ndarray, rank: int) -> np.ndarray:
    """``a`` with ones prepended to ``rank`` dimensions: the same broadcast against an operand
    of that rank, which numpy runs 0.5 us faster than a lower-rank operand's (a (128,) bias
    against (1, 128)). Binary kernels and Loop bodies reshape their constants with it once."""
    return a.reshape((1,) * (rank - a.ndim) + a.shape)
