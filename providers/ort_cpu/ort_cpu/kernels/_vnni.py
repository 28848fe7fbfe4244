"""Exact 8-bit integer products on x86 CPUs with AVX-512 VNNI: ``vpdpbusd`` adds four
products of unsigned and signed bytes into each 32-bit lane, so a uint8 x int8 product
accumulates exactly in int32, four times as many products per instruction as float32 FMAs.
onnxruntime's QLinearConv runs on the same instruction where the CPU has it; ort-core computed
those convolutions as float32 GEMMs (exact, but at float32's rate). On CPUs with AVX2 and no
VNNI the same tiles sum with ``vpmaddwd`` on 16-bit pairs of the words' bytes
(:func:`._vnni_ir._pair_tile_sums`): exact too, and faster than the float32 products
(MobileNetV2-QDQ's 64 -> 384 channels over 14 x 14 on a Zen 3: 111 us, float32 OpenBLAS's
product alone 134), though not onnxruntime's rate there (its AVX2 kernel, ``vpmaddubsw``,
takes 32 products an instruction and saturates). The constant operand is split into pairs
once, at packing (:data:`._vnni_jit.PAIRS`): :func:`qgemm_rows`' columns, and the
requantizing tiles' weights (:data:`._vnni_jit.WEIGHT_WORDS`), so the loop widens only the
other operand's words (:func:`qgemm_rows` splits its left operand once per product,
:func:`._vnni_jit._left_pairs`), and its sums stay in registers (MiniLM-int8 at two threads on
a Zen 3, interleaved with onnxruntime: 2.07-2.10x its time -> 1.54-1.60x; a 3 x 3
QLinearConv's tiles, whose sums went through the stack, ran 1.4x as long on one of two threads
sharing them as on the other).

:func:`qgemm` is the product ``y = requantize(W @ X)`` of a pointwise QLinearConv: ``W``
(M, K) int8 weights packed once (:func:`pack_weights`: rows of K / 4 int32 words, four
channels' bytes each, or two words on AVX2), ``X`` (K, P) uint8 activations packed per run
(:func:`pack_input`: (K / 4, P) words, the same four channels' bytes of one pixel), and an 8
x 32 tile of int32 sums (:func:`._vnni_ir._vnni_sums`, one ``vpdpbusd`` per 16 sums and 4
channels; on AVX2 :func:`._vnni_ir._pair_tile_sums`) requantized in registers as
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

This module does not import numba: its kernels are :func:`ort_cpu._jit.jit` functions of
:mod:`._vnni_jit` (loaded from the saved library of :mod:`ort_cpu._aot` where it has them; the
tiles are intrinsics of :mod:`._vnni_ir`) and the pool's pieces are numba cfuncs of
:mod:`._vnni_pieces` (imported where a run shares work). :func:`available` says whether the host
CPU has the instruction (the caller keeps the float path otherwise).
"""

from __future__ import annotations

import functools

import numpy as np

from .. import _threads
from ._vnni_jit import (
    COLUMN_WORDS,
    MAX_K,  # noqa: F401 - for the callers, with the kernels below
    MULT,
    PAIRS,
    Q_XW,
    Q_Y,
    R_XP,
    R_Y,
    TILE_M,
    TILE_P,
    WEIGHT_WORDS,
    X_X,
    X_Y,
    X_ZERO,
    XQ,
    Y,
    conv_quads,
    conv_rows,
    left_words,
    pack_input,
    pack_quads,
    qgemm,
    qgemm_rows,
    unflat,
)

_usable: list = []  # the answer of available(), once found


def available() -> bool:
    """Whether this CPU runs AVX-512 VNNI or AVX2 (the features numba compiles for) and the
    kernels below compile for it (numba told to compile for another CPU, ``NUMBA_CPU_NAME``,
    may lack it): the answer is found once per process. Where the saved library
    (:mod:`ort_cpu._aot`, built on this CPU for its features) holds them, they ran here
    before: LLVM is not asked (that would load it)."""
    if not _usable:
        ok = False
        try:
            if _saved() or _host_has_products():
                warm()
                ok = True
        except Exception:  # noqa: BLE001 - no features, or no code for them: the float path
            ok = False
        _usable.append(ok)
    return _usable[0]


def _saved() -> bool:
    from .. import _aot

    saved = _aot.library()
    kid = f"{qgemm.py_func.__module__}:qgemm"
    return saved is not None and bool(saved.table["kernels"].get(kid))


def _host_has_products() -> bool:
    from .._aot import has_feature

    return has_feature("avx512vnni") or has_feature("avx2")


def pack_columns(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the int8 right operand ``b`` (K, N) as uint32 words, tile by tile of :data:`TILE_P`
    columns: (N padded / 32 * K / 4, 32), row ``t * K / 4 + k`` of tile t holding in word j the
    bytes of rows 4k .. 4k + 3 of column 32t + j, zero past K and N; the sums of its columns,
    int32). A tile's words are contiguous, so a product streams through them: read across
    (K / 4, N) rows instead, one 128-byte run every N * 4 bytes, MobileNetV2-QDQ's classifier
    (1,280 x 1,000, its weights out of cache after the layers before it) took 0.18 ms, not 0.05.
    With :data:`._vnni_jit.PAIRS` (AVX2) each step's row of a tile is :data:`COLUMN_WORDS` words
    instead: the 32 columns' bytes 0 and 2 of the step's four rows as two int16 each, then their
    bytes 1 and 3."""
    padded, k4, n_pad = _padded_columns(b)
    sums = b.astype(np.int32).sum(axis=0).astype(np.int32)
    if PAIRS:  # (tile, step, parity, column, pair): rows 4k + 2 * pair + parity, as int16
        pairs = padded.reshape(k4, 2, 2, n_pad // TILE_P, TILE_P).transpose(3, 0, 2, 4, 1)
        packed = np.ascontiguousarray(pairs, np.int16)
        return packed.view(np.uint32).reshape(-1, COLUMN_WORDS), sums
    return _column_words(padded, k4, n_pad), sums


def pack_column_words(b: np.ndarray) -> np.ndarray:
    """The int8 right operand ``b`` (K, N) as :func:`pack_columns` lays it out without
    :data:`._vnni_jit.PAIRS` (words of four bytes): for :func:`qgemm_rows`' ``words`` mode,
    AVX2's products of fewer than :data:`TILE_M` rows."""
    return _column_words(*_padded_columns(b))


def _padded_columns(b: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(``b`` (K, N) int8 zero-padded to (4 * K4, N padded to :data:`TILE_P`), K4, N padded)."""
    k, n = b.shape
    k4 = -(-k // 4)
    n_pad = -(-n // TILE_P) * TILE_P
    padded = np.zeros((k4 * 4, n_pad), np.int8)
    padded[:k, :n] = b
    return padded, k4, n_pad


def _column_words(padded: np.ndarray, k4: int, n_pad: int) -> np.ndarray:
    words = padded.reshape(k4, 4, n_pad // TILE_P, TILE_P).transpose(2, 0, 3, 1)
    return np.ascontiguousarray(words).view(np.uint32).reshape(-1, TILE_P)


class Columns:
    """A constant right operand of :func:`qgemm_rows` packed for it: ``wq`` and ``wsum``
    (:func:`pack_columns`), and, with :data:`._vnni_jit.PAIRS`, the words layout made on the
    first product of fewer than :data:`TILE_M` rows (:func:`pack_column_words`)."""

    __slots__ = ("b", "wq", "wsum", "_words")

    def __init__(self, b: np.ndarray) -> None:
        self.b = b
        self.wq, self.wsum = pack_columns(b)
        self._words = None

    def for_rows(self, p: int) -> tuple[np.ndarray, int]:
        """(the packed columns, the ``words`` flag) for a product of ``p`` rows."""
        if not PAIRS or p >= TILE_M:
            return self.wq, 0
        if self._words is None:
            self._words = pack_column_words(self.b)
        return self._words, 1


def pack_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the int8 weights (M, K) as (M padded to :data:`TILE_M`, K / 4 * :data:`WEIGHT_WORDS`)
    uint32 words, four channels' bytes each, zero past K and M; their sums per output channel,
    int32). On AVX2 (:data:`._vnni_jit.PAIRS`) each step of four channels is two words: its
    bytes 0 and 2 as two int16, then 1 and 3."""
    m, k = w.shape
    k4 = -(-k // 4)
    m_pad = -(-m // TILE_M) * TILE_M
    b = np.zeros((m_pad, k4 * 4), np.int8)
    b[:m, :k] = w
    return _weight_words(b), w.astype(np.int32).sum(axis=1).astype(np.int32)


def _weight_words(b: np.ndarray) -> np.ndarray:
    """The int8 rows ``b`` (M, 4 * K4) as :func:`pack_weights` lays them out."""
    if not PAIRS:
        return b.view(np.uint32)
    m, k = b.shape  # (row, step, pair, parity) -> (row, step, parity, pair), as int16
    pairs = b.reshape(m, k // 4, 2, 2).transpose(0, 1, 3, 2)
    return np.ascontiguousarray(pairs, np.int16).view(np.uint32).reshape(m, k // 2)


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
    a, at = _pieces().filled(template, XQ, xq, Y, y)
    return _threads.split_compiled(-(-y.shape[0] // TILE_M), piece_address(y.dtype), at)


def split_columns(aw, wq, wsum, x_zero, scale, bias, y, words: int = 0, blocks=None) -> bool:
    """:func:`qgemm_rows` over every column of ``y`` (P, N) float32, its tiles of columns
    shared among the run's threads as compiled pieces; False (nothing done) where the run has
    no spinning pool free. ``words``: ``wq`` is :func:`pack_column_words`' layout (the block's
    first float is 1). ``blocks``: a dict the caller keeps per node, where the argument block
    of each shape is kept with the weights, sums and biases it names (checked by identity), so
    that a run fills in only the left operand, the output, the scales and the zero point (one
    compiled call): built each run, it cost 8-10 us a call (two threads: a 128 x 384 x 384
    product 58 -> 50 us, a classifier's one row by 1280 x 1000 23 -> 14)."""
    if not _threads.spinning():
        return False
    p, n = y.shape
    p_pad, k4 = aw.shape
    key = (id(wq), id(wsum), id(bias), p_pad, p, words)
    hit = None if blocks is None else blocks.get(key)
    if hit is None or hit[0] is not wq or hit[1] is not wsum or hit[2] is not bias:
        per_step = TILE_P if words else COLUMN_WORDS
        template = _block(k4, p_pad, wq, wq.size // per_step // k4 * TILE_P, wsum, bias, scale, n,
                          p, x_zero, (float(words), 0, 0))  # fmt: skip
        hit = (wq, wsum, bias, template)
        if blocks is not None:
            if len(blocks) >= 8:  # (a batch size that changes from run to run)
                blocks.clear()
            blocks[key] = hit
    a, at = _pieces().filled(hit[3], XQ, aw, Y, y, MULT, scale)
    a[X_ZERO] = x_zero
    return _threads.split_compiled(-(-n // TILE_P), piece_address(np.float32), at)


def pixels_block(k, p, wq, wsum, bias, mult, m, x_zero, floats) -> np.ndarray:
    """The argument block of :func:`split_pixels` for an input of (``k``, ``p``) and ``m``
    output channels: the constant weights, sums, biases and multipliers (kept alive by the
    caller), the sizes and ``floats`` (zero point, lowest, highest); the input's and the
    output's addresses (``X_X``, ``X_Y``) left for each call."""
    from .._spin_jit import block

    return block(
        (0, k, p, wq.ctypes.data, wq.shape[0], wq.shape[1] // WEIGHT_WORDS, wsum.ctypes.data,
         bias.ctypes.data, mult.ctypes.data, 0, m, x_zero),  # X_X to X_XZERO, in order
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
    a, at = _pieces().filled(template, X_X, x, X_Y, y)
    return _threads.split_compiled(-(-x.shape[1] // TILE_P), pixels_address(y.dtype), at)


def rows_block(xp_shape, window, ow, wq, wsum, bias, mult, y_shape, x_zero, floats):
    """The argument block of :func:`split_rows` for a padded image of ``xp_shape`` (C, H, W),
    ``window`` (kh, kw, sh, sw, dh, dw), ``ow`` output cells a row and an output of
    ``y_shape`` (M, oh * ow): the constant weights, sums, biases and multipliers (kept alive
    by the caller), the sizes and ``floats`` (zero point, lowest, highest); the image's and the
    output's addresses (``R_XP``, ``R_Y``) left for each call."""
    from .._spin_jit import block

    return block(
        (0, *xp_shape, *window, ow, wq.ctypes.data, wq.shape[0], wq.shape[1] // WEIGHT_WORDS,
         wsum.ctypes.data, bias.ctypes.data, mult.ctypes.data, 0, *y_shape, x_zero),
        floats,
    )  # fmt: skip


def split_rows(template, xp, y, oh) -> bool:
    """:func:`conv_rows` over every output row (``y`` (M, oh * ow); ``template``:
    :func:`rows_block`), the rows shared among the run's threads as compiled pieces, each
    packing its own rows; False (nothing done) where the run has no spinning pool free."""
    if not _threads.spinning():
        return False
    a, at = _pieces().filled(template, R_XP, xp, R_Y, y)
    return _threads.split_compiled(oh, rows_address(y.dtype), at)


def quads_block(xw_size, table, wq, wsum, bias, mult, m, f, x_zero, floats) -> np.ndarray:
    """The argument block of :func:`split_quads` for a packed image of ``xw_size`` words, the
    taps' offsets ``table``, ``m`` output channels of ``f`` flat cells: the constant arrays
    (kept alive by the caller), the sizes and ``floats`` (zero point, lowest, highest); the
    image's and the output's addresses (``Q_XW``, ``Q_Y``) left for each call."""
    from .._spin_jit import block

    return block(
        (0, xw_size, table.ctypes.data, table.size, wq.ctypes.data, wq.shape[0],
         wsum.ctypes.data, bias.ctypes.data, mult.ctypes.data, 0, m, f, x_zero),  # Q_XW on
        floats,
    )  # fmt: skip


def split_quads(template, xw, yf) -> bool:
    """:func:`conv_quads` over every tile of the flat output ``yf`` (M, F), the tiles shared
    among the run's threads as compiled pieces (``template``: :func:`quads_block`); False
    (nothing done) where the run has no spinning pool free."""
    if not _threads.spinning():
        return False
    a, at = _pieces().filled(template, Q_XW, xw, Q_Y, yf)
    return _threads.split_compiled(-(-yf.shape[1] // TILE_P), quads_address(yf.dtype), at)


def quads_address(out_dtype) -> int:
    """The address of the compiled quads piece writing ``out_dtype`` (uint8 or int8)."""
    return _pieces().quads_address(out_dtype)


@functools.cache  # once imported, a lookup (the import statement took 1 us a call)
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


def pack_weights_quads(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the int8 weights ``w`` (M, C, kh, kw) as :func:`conv_quads` reads them: rows of words
    ordered by four channels, then tap (word ``q * taps + t`` holds channels 4q .. 4q + 3 at
    tap t, zero past C), M padded to :data:`TILE_M`; their sums per output channel, int32)."""
    m, c = w.shape[:2]
    taps = w.shape[2] * w.shape[3]
    c4 = -(-c // 4)
    b = np.zeros((m, c4 * 4, taps), np.int8)
    b[:, :c] = w.reshape(m, c, taps)
    words = np.zeros((-(-m // TILE_M) * TILE_M, c4 * taps * 4), np.int8)
    words[:m] = b.reshape(m, c4, 4, taps).transpose(0, 1, 3, 2).reshape(m, -1)
    sums = w.reshape(m, -1).astype(np.int32).sum(axis=1).astype(np.int32)
    return _weight_words(words), sums


def quads_geometry(x_shape, kernel, stride, begin, out) -> tuple:
    """(the phase planes' rows and width, the int64 offsets in words of the k4 rows of the
    weights' order from a cell's first word: :func:`pack_quads` and :func:`conv_quads` for an
    input of ``x_shape`` (N, C, H, W), a ``kernel`` window at ``stride`` in both directions,
    ``begin`` pads and ``out`` (OH, OW) output cells)."""
    c, h, w = x_shape[1:]
    kh, kw = kernel
    s = stride
    c4 = -(-c // 4)
    # every padded row and column a window reads, as whole phases
    hp = max(h + begin[0], (out[0] - 1) * s + kh)
    wp = max(w + begin[1], (out[1] - 1) * s + kw)
    hq, wq_ = -(-hp // s), -(-wp // s)
    plane = hq * wq_
    table = np.empty(c4 * kh * kw, np.int64)
    for q in range(c4):
        for i in range(kh):
            for j in range(kw):
                phase = (i % s) * s + j % s
                table[(q * kh + i) * kw + j] = (
                    (phase * c4 + q) * plane + (i // s) * wq_ + j // s
                )  # fmt: skip
    return hq, wq_, table


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
        for writable in (True, False):  # the packed image and the flat output
            x3 = np.zeros((4, 3, 3), np.uint8)
            x3.flags.writeable = writable
            hq, wq_, table = quads_geometry((1, 4, 3, 3), (3, 3), 1, (1, 1), (3, 3))
            xw = np.empty(hq * wq_ + 64, np.uint32)
            pack_quads.warm(x3, np.uint8(0), 1, 1, 1, hq, wq_, xw)
        w4q, w4sum = pack_weights_quads(np.zeros((1, 4, 3, 3), np.int8))
        yf = np.empty((1, 3 * wq_), out)
        conv_quads.warm(xw, table, w4q, w4sum, np.int32(0), f, f, np.float32(0), np.float32(0),
                        np.float32(1), yf, 0, 1)  # fmt: skip
        unflat.warm(yf, wq_, np.empty((1, 3, 3), out))
    cq, csum = pack_columns(np.zeros((4, 1), np.int8))
    aw = left_words(np.zeros((1, 4), np.uint8))
    for words in (0, 1):
        qgemm_rows.warm(aw, cq, csum, np.int32(0), f, f, np.empty((1, 1), np.float32), 0, 1, words)
