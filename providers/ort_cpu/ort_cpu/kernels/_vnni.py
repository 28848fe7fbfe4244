"""Exact 8-bit integer products on x86 CPUs with AVX-512 VNNI: ``vpdpbusd`` adds four
products of unsigned and signed bytes into each 32-bit lane, so a uint8 x int8 product
accumulates exactly in int32, four times as many products per instruction as float32 FMAs.
onnxruntime's QLinearConv runs on the same instruction where the CPU has it; ort-core computed
those convolutions as float32 GEMMs (exact, but at float32's rate).

:func:`qgemm` is the product ``y = requantize(W @ X)`` of a pointwise QLinearConv: ``W``
(M, K) int8 weights packed once (:func:`pack_weights`: rows of K / 4 int32 words, four
channels' bytes each), ``X`` (K, P) uint8 activations packed per run (:func:`pack_input`:
(K / 4, P) words, the same four channels' bytes of one pixel), and an 8 x 32 tile of int32 sums
(:func:`_tile_sums`, one ``vpdpbusd`` per 16 sums and 4 channels) requantized in registers as
the float path does (``(float32(sum - x_zero * sum(W)) + bias) * multiplier``, rounded half to
even, plus the zero point, saturated), so both paths give the same bytes, and stored straight
into the output (:func:`_tile_requant`: 16 -> 96 channels over 112 x 112, 0.36 -> 0.21 ms; a
tile of sums stored, then requantized by a numba loop per row, cost as much as 16 steps of
the products).

:func:`qgemm_rows` is MatMulIntegerToFloat's ``A @ B`` scaled to float32 the other way round: the
tile is 8 rows of ``A`` (P, K) uint8, read as they are (each row's words its own bytes, no
packing), by 32 columns of ``B`` (K, N) int8 packed once (:func:`pack_columns`), so a tile row
is 32 consecutive outputs, scaled with vector operations. Tiled the first way, with the output
written a column at a time and ``A`` packed per run, a 128 x 384 x 384 product reached 116
billion multiply-adds a second here (onnxruntime 192).

This module does not import numba: its kernels are :func:`ort_cpu._jit.jit` functions (loaded
from the saved library of :mod:`ort_cpu._aot` where it has them), the tiles are intrinsics of
:mod:`._vnni_ir` (imported when the kernels compile) and the pool's pieces are numba cfuncs of
:mod:`._vnni_pieces` (imported where a run shares work). :func:`available` says whether the host
CPU has the instruction (the caller keeps the float path otherwise).
"""

from __future__ import annotations

import numpy as np

from .. import _threads
from .._jit import LazyIntrinsic, jit

#: output channels and pixels of one tile of sums
TILE_M, TILE_P = 8, 32
#: the longest sum (input channels x taps) :func:`qgemm` takes: its requantization subtracts
#: ``x_zero * wsum`` in int32, exact while 2 * K * 255 * 128 < 2**31
MAX_K = 32768


_usable: list = []  # the answer of available(), once found


def available() -> bool:
    """Whether this CPU runs AVX-512 VNNI (as LLVM sees the host) and the kernels below compile
    for it (numba told to compile for another CPU, ``NUMBA_CPU_NAME``, may lack it): the answer
    is found once per process. Where the saved library (:mod:`ort_cpu._aot`, built on this CPU
    for its features) holds them, they ran here before: LLVM is not asked (that would load it)."""
    if not _usable:
        ok = False
        try:
            if _saved() or _host_has_vnni():
                warm()
                ok = True
        except Exception:  # noqa: BLE001 - no features, or no code for them: the float path
            ok = False
        _usable.append(ok)
    return _usable[0]


def _saved() -> bool:
    from .. import _aot

    saved = _aot.library()
    return saved is not None and bool(saved.table["kernels"].get(f"{__name__}:qgemm"))


def _host_has_vnni() -> bool:
    import llvmlite.binding as llvm

    return bool(llvm.get_host_cpu_features().get("avx512vnni", False))


#: the tiles of sums as LLVM vector code (:mod:`._vnni_ir`, which imports numba and llvmlite)
_tile_rows = LazyIntrinsic("ort_cpu.kernels._vnni_ir", "tile_rows")
_tile_row = LazyIntrinsic("ort_cpu.kernels._vnni_ir", "tile_row")
_tile_requant = LazyIntrinsic("ort_cpu.kernels._vnni_ir", "tile_requant")


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
    m_all = y.shape[0]
    ldy, like = y.strides[0], y.dtype.type(0)
    for p0 in range(0, p_pad, TILE_P):
        cells = min(TILE_P, p - p0)
        for t0 in range(m0, m1, TILE_M):
            _tile_requant(
                xq.ctypes.data + p0 * 4, p_pad, wq.ctypes.data + t0 * k4 * 4, k4, k4,
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
    k4 = wq.shape[1]
    cells = (r1 - r0) * ow
    p_pad = -(-cells // TILE_P) * TILE_P
    xq = np.empty((k4, p_pad), np.uint32)
    pack_windows(xp, kh, kw, sh, sw, dh, dw, r0, r1, ow, k4, p_pad, xq)
    qgemm(xq, wq, wsum, x_zero, bias, mult, zero, lo, hi, y, 0, y.shape[0], r0 * ow, cells)


@jit()
def qgemm_rows(a, wq, wsum, x_zero, scale, bias, y, n0, n1):
    """Columns ``n0:n1`` (tiles of :data:`TILE_P`) of ``y`` (P, N) float32 = A @ B scaled, from
    the uint8 left operand ``a`` as words (:func:`left_words`: P padded to :data:`TILE_M`,
    K / 4) and the int8 right one packed by :func:`pack_columns` (``wq``: per tile of 32
    columns, its K / 4 rows of 32 words):
    ``float32(sum - x_zero * wsum[n]) * scale[n] + bias[n]``, MatMulIntegerToFloat's operations
    in its order, a tile's row of 32 columns at a time (vectorized)."""
    k4 = a.shape[1]
    p, n_all = y.shape
    tile = np.empty((TILE_M, TILE_P), np.int32)
    for c0 in range(n0, n1, TILE_P):
        width = min(TILE_P, n_all - c0)
        shift = x_zero * wsum[c0 : c0 + width]
        s, b = scale[c0 : c0 + width], bias[c0 : c0 + width]
        for r0 in range(0, p, TILE_M):
            if p - r0 >= TILE_M:
                _tile_rows(
                    wq.ctypes.data + c0 * k4 * 4, TILE_P, a.ctypes.data + r0 * k4 * 4, k4, k4,
                    tile.ctypes.data,
                )  # fmt: skip
                for i in range(TILE_M):
                    sums, row = tile[i], y[r0 + i, c0 : c0 + width]
                    for j in range(width):
                        row[j] = np.float32(sums[j] - shift[j]) * s[j] + b[j]
                continue
            for i in range(p - r0):  # the last rows, one at a time
                _tile_row(
                    wq.ctypes.data + c0 * k4 * 4, TILE_P, a.ctypes.data + (r0 + i) * k4 * 4, k4,
                    k4, tile.ctypes.data,
                )  # fmt: skip
                sums, row = tile[0], y[r0 + i, c0 : c0 + width]
                for j in range(width):
                    row[j] = np.float32(sums[j] - shift[j]) * s[j] + b[j]


def pack_columns(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the int8 right operand ``b`` (K, N) as uint32 words, tile by tile of :data:`TILE_P`
    columns: (N padded / 32 * K / 4, 32), row ``t * K / 4 + k`` of tile t holding in word j the
    bytes of rows 4k .. 4k + 3 of column 32t + j, zero past K and N; the sums of its columns,
    int32). A tile's words are contiguous, so a product streams through them: read across
    (K / 4, N) rows instead, one 128-byte run every N * 4 bytes, MobileNetV2-QDQ's classifier
    (1,280 x 1,000, its weights out of cache after the layers before it) took 0.18 ms, not 0.05."""
    k, n = b.shape
    k4 = -(-k // 4)
    n_pad = -(-n // TILE_P) * TILE_P
    padded = np.zeros((k4 * 4, n_pad), np.int8)
    padded[:k, :n] = b
    words = padded.reshape(k4, 4, n_pad // TILE_P, TILE_P).transpose(2, 0, 3, 1)
    sums = b.astype(np.int32).sum(axis=0).astype(np.int32)
    return np.ascontiguousarray(words).view(np.uint32).reshape(-1, TILE_P), sums


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


def pack_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the int8 weights (M, K) as (M padded to :data:`TILE_M`, K / 4) uint32 words, four
    channels' bytes each, zero past K and M; their sums per output channel, int32)."""
    m, k = w.shape
    k4 = -(-k // 4)
    m_pad = -(-m // TILE_M) * TILE_M
    b = np.zeros((m_pad, k4 * 4), np.int8)
    b[:m, :k] = w
    return b.view(np.uint32), w.astype(np.int32).sum(axis=1).astype(np.int32)


#: the slots of a piece's argument block: the packed input (address, words per pixel, pixels
#: padded), the packed weights (address, rows padded), the weight sums', bias's and multiplier's
#: addresses, the output (address, channels, pixels), the input's zero point; then the output
#: zero point, lowest and highest value as float64 bits
XQ, K4, P_PAD, WQ, M_PAD, WSUM, BIAS, MULT, Y, M, P, X_ZERO = range(12)
FLOATS, SLOTS = 12, 15


def _block(k4, p_pad, wq, m_pad, wsum, bias, mult, m, p, x_zero, floats) -> np.ndarray:
    """A piece's argument block with the packed weights', sums', biases' and multipliers'
    addresses (the caller keeps the arrays alive until the pieces are done); the packed input's
    and the output's (``XQ``, ``Y``) left for :func:`.._spin_jit.filled`."""
    from .._spin_jit import block

    return block(
        (0, k4, p_pad, wq.ctypes.data, m_pad, wsum.ctypes.data, bias.ctypes.data,
         mult.ctypes.data, 0, m, p, x_zero),  # the slots XQ to X_ZERO, in order
        floats,
    )  # fmt: skip


def channels_block(k4, p_pad, wq, wsum, bias, mult, m, p, x_zero, floats) -> np.ndarray:
    """The argument block of :func:`split` for a packed input of (``k4``, ``p_pad``) words and
    an output of (``m``, ``p``): the constant weights, sums, biases and multipliers (kept alive
    by the caller), the sizes and ``floats`` (zero point, lowest, highest); the packed input's
    and the output's addresses (``XQ``, ``Y``) left for each call."""
    return _block(k4, p_pad, wq, wq.shape[0], wsum, bias, mult, m, p, x_zero, floats)


def split(template, xq, y) -> bool:
    """:func:`qgemm` over every output channel of ``y`` (M, P) uint8 or int8, its tiles of
    channels shared among the run's threads as compiled pieces (``template``:
    :func:`channels_block`); False (nothing done) where the run has no spinning pool free."""
    if not _threads.spinning():
        return False
    from .._spin_jit import filled

    a = filled(template, XQ, xq, Y, y)
    return _threads.split_compiled(-(-y.shape[0] // TILE_M), piece_address(y.dtype), a.ctypes.data)


def split_columns(aw, wq, wsum, x_zero, scale, bias, y) -> bool:
    """:func:`qgemm_rows` over every column of ``y`` (P, N) float32, its tiles of columns
    shared among the run's threads as compiled pieces; False (nothing done) where the run has
    no spinning pool free."""
    if not _threads.spinning():
        return False
    from .._spin_jit import filled

    p, n = y.shape
    p_pad, k4 = aw.shape
    a = filled(
        _block(k4, p_pad, wq, wq.size // k4, wsum, bias, scale, n, p, x_zero, (0, 0, 0)),
        XQ, aw, Y, y,
    )  # fmt: skip
    return _threads.split_compiled(-(-n // TILE_P), piece_address(np.float32), a.ctypes.data)


#: the slots of a pixels piece's argument block: the input (address, K, P), the packed weights
#: (address, rows padded, words), the weight sums', bias's and multiplier's addresses, the output
#: (address, M), the input's zero point; then the output zero point, lowest and highest value's
#: bits
(X_X, X_K, X_P, X_WQ, X_MPAD, X_K4, X_WSUM, X_BIAS, X_MULT, X_Y, X_M, X_XZERO) = range(12)
X_FLOATS, X_SLOTS = 12, 15


def pixels_block(k, p, wq, wsum, bias, mult, m, x_zero, floats) -> np.ndarray:
    """The argument block of :func:`split_pixels` for an input of (``k``, ``p``) and ``m``
    output channels: the constant weights, sums, biases and multipliers (kept alive by the
    caller), the sizes and ``floats`` (zero point, lowest, highest); the input's and the
    output's addresses (``X_X``, ``X_Y``) left for each call."""
    from .._spin_jit import block

    return block(
        (0, k, p, wq.ctypes.data, *wq.shape, wsum.ctypes.data, bias.ctypes.data,
         mult.ctypes.data, 0, m, x_zero),  # X_X to X_XZERO, in order
        floats,
    )  # fmt: skip


def split_pixels(template, x, y) -> bool:
    """A pointwise product ``y`` (M, P) from ``x`` (K, P) uint8, C-contiguous, its tiles of
    pixels shared among the run's threads as compiled pieces, each packing its own pixels
    (``template``: :func:`pixels_block`): the input is read once in all (by tiles of
    channels, :func:`split`, each thread read all of it, packed by the calling thread, from
    that thread's cache: 960 -> 160 channels on 7 x 7 took 36 us shared against 45 alone);
    False (nothing done) where the run has no spinning pool free."""
    if not _threads.spinning():
        return False
    from .._spin_jit import filled

    a = filled(template, X_X, x, X_Y, y)
    return _threads.split_compiled(-(-x.shape[1] // TILE_P), pixels_address(y.dtype), a.ctypes.data)


#: the slots of a rows piece's argument block: the padded image (address, C, H, W), the window
#: (kh, kw, sh, sw, dh, dw), the output row's cells, the packed weights (address, rows padded,
#: words), the weight sums', bias's and multiplier's addresses, the output (address, channels,
#: cells), the input's zero point; then the output zero point, lowest and highest value's bits
(R_XP, R_C, R_H, R_W, R_KH, R_KW, R_SH, R_SW, R_DH, R_DW, R_OW, R_WQ, R_MPAD, R_K4, R_WSUM,
 R_BIAS, R_MULT, R_Y, R_M, R_P, R_XZERO) = range(21)  # fmt: skip
R_FLOATS, R_SLOTS = 21, 24


def rows_block(xp_shape, window, ow, wq, wsum, bias, mult, y_shape, x_zero, floats):
    """The argument block of :func:`split_rows` for a padded image of ``xp_shape`` (C, H, W),
    ``window`` (kh, kw, sh, sw, dh, dw), ``ow`` output cells a row and an output of
    ``y_shape`` (M, oh * ow): the constant weights, sums, biases and multipliers (kept alive
    by the caller), the sizes and ``floats`` (zero point, lowest, highest); the image's and the
    output's addresses (``R_XP``, ``R_Y``) left for each call."""
    from .._spin_jit import block

    return block(
        (0, *xp_shape, *window, ow, wq.ctypes.data, *wq.shape, wsum.ctypes.data,
         bias.ctypes.data, mult.ctypes.data, 0, *y_shape, x_zero),  # R_XP to R_XZERO
        floats,
    )  # fmt: skip


def split_rows(template, xp, y, oh) -> bool:
    """:func:`conv_rows` over every output row (``y`` (M, oh * ow); ``template``:
    :func:`rows_block`), the rows shared among the run's threads as compiled pieces, each
    packing its own rows; False (nothing done) where the run has no spinning pool free."""
    if not _threads.spinning():
        return False
    from .._spin_jit import filled

    a = filled(template, R_XP, xp, R_Y, y)
    return _threads.split_compiled(oh, rows_address(y.dtype), a.ctypes.data)


def _pieces():
    """:mod:`._vnni_pieces` (numba cfuncs), with the argument blocks' filling loaded for the
    arrays the splits pass."""
    from . import _vnni_pieces

    _vnni_pieces.warm_filled()
    return _vnni_pieces


def piece_address(out_dtype) -> int:
    """The address of the compiled piece of :func:`qgemm` or :func:`qgemm_rows` writing
    ``out_dtype`` (uint8, int8 or float32)."""
    return _pieces().piece_address(out_dtype)


def pixels_address(out_dtype) -> int:
    """The address of the compiled pixels piece writing ``out_dtype`` (uint8 or int8)."""
    return _pieces().pixels_address(out_dtype)


def rows_address(out_dtype) -> int:
    """The address of the compiled rows piece writing ``out_dtype`` (uint8 or int8)."""
    return _pieces().rows_address(out_dtype)


def warm() -> None:
    """Compile (or load) the kernels above for their argument types."""
    w = np.zeros((1, 4), np.int8)
    wq, wsum = pack_weights(w)
    for out in (np.uint8, np.int8):
        x = np.zeros((4, 1), np.uint8)
        xq = np.empty((1, TILE_P), np.uint32)
        pack_input.warm(x, 1, TILE_P, xq)
        x.flags.writeable = False  # a model's input arrives read-only
        pack_input.warm(x, 1, TILE_P, xq)
        f = np.ones(1, np.float32)
        qgemm.warm(xq, wq, wsum, np.int32(0), f, f, np.float32(0), np.float32(0),
                   np.float32(1), np.empty((1, 1), out), 0, 1, 0, 1)  # fmt: skip
        for writable in (True, False):
            xp = np.zeros((1, 3, 3), np.uint8)
            xp.flags.writeable = writable
            conv_rows.warm(xp, 3, 3, 1, 1, 1, 1, 1, 0, 1, wq, wsum, np.int32(0), f, f,
                           np.float32(0), np.float32(0), np.float32(1),
                           np.empty((1, 1), out))  # fmt: skip
    cq, csum = pack_columns(np.zeros((4, 1), np.int8))
    aw = left_words(np.zeros((1, 4), np.uint8))
    qgemm_rows.warm(aw, cq, csum, np.int32(0), f, f, np.empty((1, 1), np.float32), 0, 1)
