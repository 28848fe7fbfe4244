"""The compiled kernels of :mod:`._vnni` (AVX-512 VNNI integer products; see there), as
:func:`ort_cpu._jit.jit` functions loaded from the saved library of :mod:`ort_cpu._aot` where it
has them, and the slots of the argument blocks their pool pieces (:mod:`._vnni_pieces`) read.
The tiles are intrinsics of :mod:`._vnni_ir`, imported when the kernels compile. This module
does not import numba.
"""

from __future__ import annotations

import numpy as np

from .._aot import has_feature
from .._jit import LazyIntrinsic, jit

#: output channels and pixels of one tile of sums
TILE_M, TILE_P = 8, 32
#: whether :func:`qgemm_rows`' packed columns are 16-bit pairs (AVX2, no VNNI: each step's row
#: the 32 columns' even bytes widened to int16, then their odd bytes, :func:`._vnni.pack_columns`)
#: rather than words of four bytes
PAIRS = not has_feature("avx512vnni")
#: 32-bit words per step of a tile of packed columns
COLUMN_WORDS = 2 * TILE_P if PAIRS else TILE_P
#: 32-bit words per step of a row of packed weights (:func:`._vnni.pack_weights`): on AVX2 the
#: step's even bytes (0 and 2) as two int16, then its odd bytes, which the requantizing tiles
#: broadcast as they are (one widening less per row and step)
WEIGHT_WORDS = 2 if PAIRS else 1
#: the longest sum (input channels x taps) :func:`qgemm` takes: its requantization subtracts
#: ``x_zero * wsum`` in int32, exact while 2 * K * 255 * 128 < 2**31
MAX_K = 32768


#: the tiles of sums as LLVM vector code (:mod:`._vnni_ir`, which imports numba and llvmlite)
_tile_rows = LazyIntrinsic("ort_cpu.kernels._vnni_ir", "tile_rows")
_tile_row = LazyIntrinsic("ort_cpu.kernels._vnni_ir", "tile_row")
_tile_row_words = LazyIntrinsic("ort_cpu.kernels._vnni_ir", "tile_row_words")
_tile_requant = LazyIntrinsic("ort_cpu.kernels._vnni_ir", "tile_requant")
_tile_requant_at = LazyIntrinsic("ort_cpu.kernels._vnni_ir", "tile_requant_at")
_quad_row = LazyIntrinsic("ort_cpu.kernels._vnni_ir", "quad_row")
_quad_pairs = LazyIntrinsic("ort_cpu.kernels._vnni_ir", "quad_pairs")


@jit()
def pack_input(x, k4, p_pad, xq):
    """``xq`` (k4, p_pad) uint32 words from ``x`` (K, P) uint8: word (k, p) holds the bytes of
    channels 4k .. 4k + 3 at pixel p (zero past K and P)."""
    k, p = x.shape
    for q in range(k4):
        row = xq[q]
        c = 4 * q
        if c + 4 <= k:  # four whole channels: one word per pixel from four loads (vectorized)
            a, b, d, e = x[c], x[c + 1], x[c + 2], x[c + 3]
            for i in range(p):
                row[i] = (
                    np.uint32(a[i]) | (np.uint32(b[i]) << 8) | (np.uint32(d[i]) << 16)
                    | (np.uint32(e[i]) << 24)
                )  # fmt: skip
        else:
            for i in range(p):
                word = np.uint32(0)
                for j in range(k - c):
                    word |= np.uint32(x[c + j, i]) << (8 * j)
                row[i] = word
        for i in range(p, p_pad):
            row[i] = 0


@jit()
def qgemm(xq, wq, wsum, x_zero, bias, mult, zero, lo, hi, y, m0, m1, p_off, p):
    """Output channels ``m0:m1`` (multiples of :data:`TILE_M` but the last) of ``y`` (M, ...),
    its cells ``p_off`` to ``p_off + p``, from the packed input ``xq`` (k4, p_pad: those cells)
    and weights ``wq`` (M padded, k4), requantized in registers (:func:`_tile_requant`):
    ``clip(rint((float32(sum - x_zero * wsum[m]) + bias[m]) * mult[m]) + zero, lo, hi)``."""
    k4, p_pad = xq.shape
    m_all, ldw = y.shape[0], wq.shape[1]
    ldy, like = y.strides[0], y.dtype.type(0)
    for p0 in range(0, p_pad, TILE_P):
        cells = min(TILE_P, p - p0)
        for t0 in range(m0, m1, TILE_M):
            _tile_requant(
                xq.ctypes.data + p0 * 4, p_pad, wq.ctypes.data + t0 * ldw * 4, ldw, k4,
                y.ctypes.data + t0 * ldy + (p_off + p0) * y.itemsize, ldy,
                min(TILE_M, m_all - t0), cells, wsum.ctypes.data + t0 * 4, x_zero,
                bias.ctypes.data + t0 * 4, mult.ctypes.data + t0 * 4, zero, lo, hi, like,
            )  # fmt: skip


@jit(inline="always")
def _source(xp, zeros, c, r, col, span):
    """Row ``r`` of channel ``c`` of ``xp`` from column ``col``, ``span`` cells; zeros where
    ``c`` is -1."""
    if c >= 0:
        return xp[c, r, col : col + span]
    return zeros[:span]


@jit(inline="always")
def _words(xp, zeros, c, r, col, count):
    """(``count`` 16-bit words of row ``r`` of channel ``c`` of ``xp`` from the one holding
    byte ``col``, the shift that brings that byte down: 0 or 8); zeros where ``c`` is -1."""
    if c >= 0:
        start = col // 2
        return xp[c, r].view(np.uint16)[start : start + count], np.uint16(8 * (col % 2))
    return zeros.view(np.uint16)[:count], np.uint16(0)


@jit()
def pack_windows(xp, kh, kw, sh, sw, dh, dw, r0, r1, ow, k4, p_pad, xq):
    """``xq`` (k4, p_pad) uint32 words of the column matrix of the padded image ``xp``
    (C, H, W) uint8 under a ``kh`` x ``kw`` window (strides ``sh``, ``sw``, dilations ``dh``,
    ``dw``), without making it: word (k, p) holds the bytes of rows 4k .. 4k + 3 of the column
    matrix (row ``(c * kh + i) * kw + j``: channel c, tap (i, j)) at cell p of output rows
    ``r0:r1``; zero past its C * kh * kw rows and those cells. Each word is made from its four
    bytes at once (one pass per output row, vectorized at stride 1)."""
    taps = kh * kw
    k = xp.shape[0] * taps
    span = (ow - 1) * sw + 1  # input columns one output row reads from one tap
    # the missing rows past the last (k % 4), as bytes or as 16-bit words
    zeros = np.zeros(2 * (xp.shape[2] + span), np.uint8)
    plane = np.empty(4, np.int64)
    rowof, colof = np.empty(4, np.int64), np.empty(4, np.int64)
    for q in range(k4):
        row = xq[q]
        for b in range(4):
            kk = 4 * q + b
            if kk < k:
                c, t = divmod(kk, taps)
                ti, tj = divmod(t, kw)
                plane[b], rowof[b], colof[b] = c, ti * dh, tj * dw
            else:
                plane[b] = -1
        if sw == 2 and xp.shape[2] % 2 == 0:
            # stride 2 over rows of even length: each tap's bytes are every other byte of a
            # run of 16-bit words (the low or the high one), so the words are read in runs and
            # the packing vectorizes as at stride 1 (16 -> 32 channels on 320 x 320: 1.97 ->
            # 0.6 ms a layer, strided byte reads 36 x 25600 times)
            for r in range(r0, r1):
                u0, h0 = _words(xp, zeros, plane[0], r * sh + rowof[0], colof[0], ow)
                u1, h1 = _words(xp, zeros, plane[1], r * sh + rowof[1], colof[1], ow)
                u2, h2 = _words(xp, zeros, plane[2], r * sh + rowof[2], colof[2], ow)
                u3, h3 = _words(xp, zeros, plane[3], r * sh + rowof[3], colof[3], ow)
                dst = row[(r - r0) * ow : (r - r0 + 1) * ow]
                for col in range(ow):
                    dst[col] = (
                        (np.uint32(u0[col] >> h0) & np.uint32(255))
                        | ((np.uint32(u1[col] >> h1) & np.uint32(255)) << 8)
                        | ((np.uint32(u2[col] >> h2) & np.uint32(255)) << 16)
                        | (np.uint32(u3[col] >> h3) << 24)
                    )  # fmt: skip
            for i in range((r1 - r0) * ow, p_pad):
                row[i] = 0
            continue
        for r in range(r0, r1):
            s0 = _source(xp, zeros, plane[0], r * sh + rowof[0], colof[0], span)
            s1 = _source(xp, zeros, plane[1], r * sh + rowof[1], colof[1], span)
            s2 = _source(xp, zeros, plane[2], r * sh + rowof[2], colof[2], span)
            s3 = _source(xp, zeros, plane[3], r * sh + rowof[3], colof[3], span)
            dst = row[(r - r0) * ow : (r - r0 + 1) * ow]
            if sw == 1:
                for col in range(ow):
                    dst[col] = (
                        np.uint32(s0[col]) | (np.uint32(s1[col]) << 8)
                        | (np.uint32(s2[col]) << 16) | (np.uint32(s3[col]) << 24)
                    )  # fmt: skip
            else:
                for col in range(ow):
                    at = col * sw
                    dst[col] = (
                        np.uint32(s0[at]) | (np.uint32(s1[at]) << 8)
                        | (np.uint32(s2[at]) << 16) | (np.uint32(s3[at]) << 24)
                    )  # fmt: skip
        for i in range((r1 - r0) * ow, p_pad):
            row[i] = 0


@jit()
def conv_rows(
    xp, kh, kw, sh, sw, dh, dw, ow, r0, r1, wq, wsum, x_zero, bias, mult, zero, lo, hi, y
):  # pragma: no cover  # noqa: E501
    """Output rows ``r0:r1`` of a convolution's ``y`` (M, OH * OW): :func:`pack_windows` of those
    rows into a buffer of this call's own, then :func:`qgemm` for every output channel (a piece
    a thread runs whole: packing is shared as the products are)."""
    k4 = wq.shape[1] // WEIGHT_WORDS
    cells = (r1 - r0) * ow
    p_pad = -(-cells // TILE_P) * TILE_P
    xq = np.empty((k4, p_pad), np.uint32)
    pack_windows(xp, kh, kw, sh, sw, dh, dw, r0, r1, ow, k4, p_pad, xq)
    qgemm(xq, wq, wsum, x_zero, bias, mult, zero, lo, hi, y, 0, y.shape[0], r0 * ow, cells)


@jit(inline="always")
def _left_pairs(a):  # pragma: no cover - compiled
    """The left operand's words (P, K / 4) as (P, K / 2) words: each word's even bytes (0 and
    2) as two uint16, then its odd bytes (1 and 3). Each piece of a shared product splits all
    of A again (P x K bytes, a few microseconds against its columns' products)."""
    p, k4 = a.shape
    pairs = np.empty((p, 2 * k4), np.uint32)
    for r in range(p):
        src, dst = a[r], pairs[r]
        for q in range(k4):
            w = src[q]
            dst[2 * q] = w & np.uint32(0x00FF00FF)
            dst[2 * q + 1] = (w >> np.uint32(8)) & np.uint32(0x00FF00FF)
    return pairs


@jit()
def qgemm_rows(a, wq, wsum, x_zero, scale, bias, y, n0, n1, words):
    """Columns ``n0:n1`` (tiles of :data:`TILE_P`) of ``y`` (P, N) float32 = A @ B scaled, from
    the uint8 left operand ``a`` as words (:func:`left_words`: P padded to :data:`TILE_M`,
    K / 4) and the int8 right one packed by :func:`pack_columns` (``wq``: per tile of 32
    columns, its K / 4 rows of :data:`COLUMN_WORDS` words), or with ``words`` by
    :func:`._vnni.pack_column_words` (rows of 32 words: AVX2's products of fewer than 8 rows,
    which read B once and are bound by its bytes):
    ``float32(sum - x_zero * wsum[n]) * scale[n] + bias[n]``, MatMulIntegerToFloat's operations
    in its order, a tile's row of 32 columns at a time (vectorized)."""
    k4 = a.shape[1]
    p, n_all = y.shape
    tile = np.empty((TILE_M, TILE_P), np.int32)
    ldx = TILE_P if words else COLUMN_WORDS  # words per step of a tile's packed columns
    if PAIRS and not words:  # each row's words as their even and odd bytes' int16 pairs
        a = _left_pairs(a)
    lda = a.shape[1]
    for c0 in range(n0, n1, TILE_P):
        width = min(TILE_P, n_all - c0)
        shift = x_zero * wsum[c0 : c0 + width]
        s, b = scale[c0 : c0 + width], bias[c0 : c0 + width]
        at = wq.ctypes.data + c0 // TILE_P * k4 * ldx * 4
        for r0 in range(0, p, TILE_M):
            if p - r0 >= TILE_M and not words:
                _tile_rows(at, ldx, a.ctypes.data + r0 * lda * 4, lda, k4, tile.ctypes.data)
                for i in range(TILE_M):
                    sums, row = tile[i], y[r0 + i, c0 : c0 + width]
                    for j in range(width):
                        row[j] = np.float32(sums[j] - shift[j]) * s[j] + b[j]
                continue
            for i in range(min(TILE_M, p - r0)):  # the last rows (or all), one at a time
                if words:
                    _tile_row_words(
                        at, ldx, a.ctypes.data + (r0 + i) * lda * 4, lda, k4, tile.ctypes.data
                    )
                else:
                    _tile_row(
                        at, ldx, a.ctypes.data + (r0 + i) * lda * 4, lda, k4, tile.ctypes.data
                    )
                sums, row = tile[0], y[r0 + i, c0 : c0 + width]
                for j in range(width):
                    row[j] = np.float32(sums[j] - shift[j]) * s[j] + b[j]


@jit(inline="always")
def _quad(x, c0, r, i, fill):  # pragma: no cover - compiled
    """The word of channels ``c0`` .. ``c0 + 3`` of ``x`` at row ``r``, column ``i`` (the zero
    point ``fill``'s bytes past the channels)."""
    word = np.uint32(0)
    for t in range(4):
        byte = np.uint32(x[c0 + t, r, i]) if c0 + t < x.shape[0] else fill & np.uint32(255)
        word |= byte << (8 * t)
    return word


@jit(inline="always")
def _columns(s, b, pl, w, wq_):  # pragma: no cover - compiled
    """(the first and past-the-last column of phase ``b`` inside the image, the image column
    of the first): columns v with ``v * s + b - pl`` in [0, w)."""
    v0 = min(max(0, -(-(pl - b) // s)), wq_)
    last = w - 1 - b + pl
    v1 = max(min(wq_, last // s + 1) if last >= 0 else 0, v0)
    return v0, v1, v0 * s + b - pl


@jit()
def pack_quads(x, zx, pt, pl, s, hq, wq_, xw):  # pragma: no cover - compiled
    """The image ``x`` (C, H, W) uint8 zero-padded (``pt`` rows above, ``pl`` columns left, the
    input's zero point ``zx`` around it) and split into its ``s`` x ``s`` stride phases, as
    words of four channels: word ``((a * s + b) * C4 + q) * hq * wq_ + u * wq_ + v`` holds the
    bytes of channels 4q .. 4q + 3 (the zero point past C) at padded row ``u * s + a``, column
    ``v * s + b``. Every tap of a window at stride ``s`` then reads a shifted run of one
    phase's words (:func:`conv_quads`): the image packed once instead of a column matrix of
    every tap's bytes. Whole quads of channels are read by index (no row views, whose
    reference counts cost more than a short row), at stride 2 both column phases of a row in
    one pass over its pairs of columns."""
    c, h, w = x.shape
    c4 = -(-c // 4)
    plane = hq * wq_
    z = np.uint32(zx)
    fill = z | (z << 8) | (z << 16) | (z << 24)
    for a in range(s):
        for q in range(c4):
            c0 = 4 * q
            whole = c0 + 4 <= c
            for u in range(hq):
                r = u * s + a - pt
                inside = 0 <= r < h
                for b in range(s):
                    at = ((a * s + b) * c4 + q) * plane + u * wq_
                    v0, v1, first = _columns(s, b, pl, w, wq_)
                    if not inside:
                        v0 = v1 = wq_
                    for v in range(v0):
                        xw[at + v] = fill
                    for v in range(v1, wq_):
                        xw[at + v] = fill
                    if not inside or (whole and s == 2):
                        continue
                    if whole:  # stride 1: contiguous runs of four rows, 16 words a step
                        _quad_row(
                            xw.ctypes.data + (at + v0) * 4,
                            x.ctypes.data + (c0 * h + r) * w + first,
                            h * w,
                            v1 - v0,
                        )
                    else:
                        for v in range(v1 - v0):
                            xw[at + v0 + v] = _quad(x, c0, r, first + v * s, fill)
                if not inside or not (whole and s == 2):
                    continue
                # stride 2: image column i goes to phase (i + pl) % 2, column (i + pl) // 2;
                # the pairs (i, i + 1) with i + pl even fill both phases' column k at once
                even = ((a * s) * c4 + q) * plane + u * wq_
                odd = ((a * s + 1) * c4 + q) * plane + u * wq_
                i0 = pl % 2
                if i0 == 1:  # column 0 alone: phase 1
                    xw[odd + (pl - 1) // 2] = _quad(x, c0, r, 0, fill)
                pairs = (w - i0) // 2
                k0 = (i0 + pl) // 2
                _quad_pairs(
                    xw.ctypes.data + (even + k0) * 4,
                    xw.ctypes.data + (odd + k0) * 4,
                    x.ctypes.data + (c0 * h + r) * w + i0,
                    h * w,
                    pairs,
                )
                if i0 + 2 * pairs < w:  # the last column alone: phase 0
                    i = w - 1
                    xw[even + (i + pl) // 2] = _quad(x, c0, r, i, fill)


@jit()
def conv_quads(
    xw, table, wq, wsum, x_zero, bias, mult, zero, lo, hi, yf, t0, t1
):  # pragma: no cover - compiled
    """Tiles ``t0:t1`` of 32 cells of the flat output ``yf`` (M, F: the output rows at the
    phase planes' width, the cells past each row's end computed and dropped by
    :func:`unflat`), every output channel: the sums over the ``k4`` rows of words at ``xw +
    table[k]`` (:func:`pack_quads`'s phases shifted by each tap; ``wq`` (M padded, k4) the
    weights in the same order, :func:`._vnni.pack_weights_quads`), requantized in registers as
    :func:`qgemm` does (so its bytes)."""
    k4, ldw = table.shape[0], wq.shape[1]
    m_all, f_all = yf.shape
    ldy, like = yf.strides[0], yf.dtype.type(0)
    for t in range(t0, t1):
        p0 = t * TILE_P
        cells = min(TILE_P, f_all - p0)
        for m0 in range(0, m_all, TILE_M):
            _tile_requant_at(
                xw.ctypes.data + p0 * 4, table.ctypes.data, wq.ctypes.data + m0 * ldw * 4, ldw, k4,
                yf.ctypes.data + m0 * ldy + p0 * yf.itemsize, ldy, min(TILE_M, m_all - m0),
                cells, wsum.ctypes.data + m0 * 4, x_zero, bias.ctypes.data + m0 * 4,
                mult.ctypes.data + m0 * 4, zero, lo, hi, like,
            )  # fmt: skip


@jit()
def unflat(yf, width, y):  # pragma: no cover - compiled
    """``y`` (M, OH, OW) from the flat output ``yf`` (M, at least OH * ``width``): each output
    row's first OW cells."""
    m, oh, ow = y.shape
    for i in range(m):
        for r in range(oh):
            src, dst = yf[i, r * width : r * width + ow], y[i, r]
            for q in range(ow):
                dst[q] = src[q]


def left_words(a: np.ndarray) -> np.ndarray:
    """The uint8 left operand ``a`` (P, K) as :func:`qgemm_rows` reads it, (P padded, K / 4)
    words: its own memory where K is a multiple of 4 and P of :data:`TILE_M`, else a
    zero-padded copy."""
    p, k = a.shape
    if k % 4 == 0 and p % TILE_M == 0 and a.flags.c_contiguous:
        return a.view(np.uint32)
    padded = np.zeros((-(-p // TILE_M) * TILE_M, -(-k // 4) * 4), np.uint8)
    padded[:p, :k] = a
    return padded.view(np.uint32)


#: the slots of a piece's argument block: the packed input (address, words per pixel, pixels
#: padded), the packed weights (address, rows padded), the weight sums', bias's and multiplier's
#: addresses, the output (address, channels, pixels), the input's zero point; then the output
#: zero point, lowest and highest value as float64 bits
XQ, K4, P_PAD, WQ, M_PAD, WSUM, BIAS, MULT, Y, M, P, X_ZERO = range(12)
FLOATS, SLOTS = 12, 15


#: the slots of a pixels piece's argument block: the input (address, K, P), the packed weights
#: (address, rows padded, words), the weight sums', bias's and multiplier's addresses, the output
#: (address, M), the input's zero point; then the output zero point, lowest and highest value's
#: bits
(X_X, X_K, X_P, X_WQ, X_MPAD, X_K4, X_WSUM, X_BIAS, X_MULT, X_Y, X_M, X_XZERO) = range(12)
X_FLOATS, X_SLOTS = 12, 15


#: the slots of a rows piece's argument block: the padded image (address, C, H, W), the window
#: (kh, kw, sh, sw, dh, dw), the output row's cells, the packed weights (address, rows padded,
#: words), the weight sums', bias's and multiplier's addresses, the output (address, channels,
#: cells), the input's zero point; then the output zero point, lowest and highest value's bits
(R_XP, R_C, R_H, R_W, R_KH, R_KW, R_SH, R_SW, R_DH, R_DW, R_OW, R_WQ, R_MPAD, R_K4, R_WSUM,
 R_BIAS, R_MULT, R_Y, R_M, R_P, R_XZERO) = range(21)  # fmt: skip
R_FLOATS, R_SLOTS = 21, 24


#: the slots of a quads piece's argument block: the packed image (address, words), the taps'
#: offsets (address, k4), the packed weights (address, rows padded), the weight sums', bias's
#: and multiplier's addresses, the flat output (address, channels, cells), the input's zero
#: point; then the output zero point, lowest and highest value's bits
(Q_XW, Q_XWN, Q_TABLE, Q_K4, Q_WQ, Q_MPAD, Q_WSUM, Q_BIAS, Q_MULT, Q_Y, Q_M, Q_F,
 Q_XZERO) = range(13)  # fmt: skip
Q_FLOATS, Q_SLOTS = 13, 16
