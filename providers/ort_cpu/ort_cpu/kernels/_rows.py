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
