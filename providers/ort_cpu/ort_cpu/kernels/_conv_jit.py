"""Compiled direct convolution for the layers a GEMM serves badly: depthwise (one input channel
per group, any channel multiplier), groups of very few input channels (a 3-channel stem), and
dense layers below 128 channels, whose output channels are summed eight at a time
(:func:`._taps.block_rows`: each input vector loaded once for eight channels), with nothing
built on the calling thread so that they share among threads.

Those layers do a few multiply-adds per output cell, so im2col spends its time copying a column
matrix K times the input and the GEMM has nothing to amortize it over. :func:`_direct` copies one
group's input into a zero-padded plane split into its row and column stride phases (so every tap
reads one contiguous run over a block of output rows, at any stride), then per block of output
rows and output channel starts at the bias and adds every tap of each input channel in one pass
(:mod:`._taps`: the sums in registers across the taps, in tap order: no reassociation, no
fastmath), and applies the activation in registers on the way out, storing straight into the
output rows. A single output channel (depthwise, the pools) is written :data:`ROWS` whole
output rows at a time (:func:`._taps.taps_rows`, which at unit row stride loads each input
vector once for all the rows that read it), a dense group eight output channels at a time.
:func:`_depthwise_nhwc` is the same sum channels last, for small maps with many channels.
:func:`_depthwise_quant` is a depthwise QLinearConv: 8-bit planes centred into the same phases,
the same taps, requantized on the way out (:mod:`._taps`' row intrinsics), in one pass.
In its MAX mode :func:`_direct` is a max pool (a -inf border, each window's maximum): the 2-D
pools of :mod:`.pool` run on it.

The activation applied on the way out is one of :mod:`._elementwise_jit`'s codes (``act``),
the float32 exponential's (QuickGelu, Sigmoid) included: :mod:`._taps` emits the same steps as
vector code.

See :mod:`ort_cpu._jit` for the rules (lazy, cached on disk, numpy fallback).
"""

from __future__ import annotations

import numpy as np

from .._aot import wide_vectors
from .._jit import LazyIntrinsic, jit
from ._elementwise_jit import _act_value

#: the tap loop as LLVM vector code (:mod:`._taps`, imported when _direct compiles)
block_rows = LazyIntrinsic("ort_cpu.kernels._taps", "block_rows")
max_rows = LazyIntrinsic("ort_cpu.kernels._taps", "max_rows")
max_rows_3x3 = LazyIntrinsic("ort_cpu.kernels._taps", "max_rows_3x3")
max_rows_5x5 = LazyIntrinsic("ort_cpu.kernels._taps", "max_rows_5x5")
copy_cells = LazyIntrinsic("ort_cpu.kernels._taps", "copy_cells")
taps_rows = LazyIntrinsic("ort_cpu.kernels._taps", "taps_rows")
taps_rows_3x3 = LazyIntrinsic("ort_cpu.kernels._taps", "taps_rows_3x3")
taps_rows_5x5 = LazyIntrinsic("ort_cpu.kernels._taps", "taps_rows_5x5")
nhwc_cells = LazyIntrinsic("ort_cpu.kernels._taps", "nhwc_cells")
quant_rows = LazyIntrinsic("ort_cpu.kernels._taps", "quant_rows")
quant_rows_3x3 = LazyIntrinsic("ort_cpu.kernels._taps", "quant_rows_3x3")
quant_rows_5x5 = LazyIntrinsic("ort_cpu.kernels._taps", "quant_rows_5x5")
split_pairs = LazyIntrinsic("ort_cpu.kernels._taps", "split_pairs")
center_cells = LazyIntrinsic("ort_cpu.kernels._taps", "center_cells")
center_pairs = LazyIntrinsic("ort_cpu.kernels._taps", "center_pairs")
cl_center_in = LazyIntrinsic("ort_cpu.kernels._cl_taps", "cl_center_in")
cl_in = LazyIntrinsic("ort_cpu.kernels._cl_taps", "cl_in")
cl_quant_cells = LazyIntrinsic("ort_cpu.kernels._cl_taps", "cl_quant_cells")
cl_out = LazyIntrinsic("ort_cpu.kernels._cl_taps", "cl_out")
pointwise_tile = LazyIntrinsic("ort_cpu.kernels._taps", "pointwise_tile")
wino_in_row = LazyIntrinsic("ort_cpu.kernels._taps", "wino_in_row")
wino_out_row = LazyIntrinsic("ort_cpu.kernels._taps", "wino_out_row")
cl_tile = LazyIntrinsic("ort_cpu.kernels._taps", "cl_tile")
cl_tile_narrow = LazyIntrinsic("ort_cpu.kernels._taps", "cl_tile_narrow")
#: _direct's modes: a convolution (weighted sums from the bias), or a max pool (the maximum of
#: each window from the "bias" given, -inf, over a -inf border; the weights unused)
CONVOLVE, MAX = 0, 1
#: cells of slack past a run that _direct's buffers keep for :mod:`._taps` (4 vectors of 16)
SLACK = 64
#: whether the register tiles below are AVX-512's (:func:`ort_cpu._aot.wide_vectors`: 32
#: registers of 16 floats). AVX2 has 16 registers of 8: a vector of 16 lanes takes two, and
#: the tiles sized for AVX-512 spilled their sums to the stack on every step (a Zen 3, one
#: thread: SqueezeNet 2.6x onnxruntime, MobileNet v2 2.9x), so there they keep a quarter of the
#: floats: at most 12 of the 16 registers summing, the rest for the loads and a broadcast.
#: Shapes compared on that Zen 3, one layer, one thread (us): channels-last 1 x 6 against 1 x 4
#: and 2 x 3 (spilling), 64 -> 64 3x3 over 14 x 14 173 / 185 / 243 (onnxruntime 163); dense
#: direct 4 channels against 6 and 8, a 3 -> 32 stem over 224 x 224 at stride 2 316 / 340 / 744
#: (onnxruntime 377); pointwise 6 x 1 against 3 x 2 and 2 x 3, 256 -> 64 over 56 x 56 1588 /
#: 2432 / 4408 (onnxruntime 1381).
WIDE = wide_vectors()
#: output channels of a dense group summed together (:func:`._taps.block_rows`)
OUTS = 8 if WIDE else 4
#: vectors of 16 outputs per channel :func:`._taps.block_rows` keeps (OUTS x this in registers)
BLOCK_VECTORS = 2 if WIDE else 1
#: output rows a single output channel's taps are summed for together (:data:`._taps.ROWS`).
#: AVX2 keeps 2: 4 rows of 16 sums are 8 of its 16 registers, and with a 3x3 window's 9
#: weights LLVM spilled. Depthwise 3x3 with a Clip, per layer in a chain of ten, one thread, a
#: Zen 3, us, 4 rows against 2 (onnxruntime): 576 x 14 x 14 114.6 / 108.6 (76), 144 x 56 x 56
#: 288.6 / 278.0 (255), 96 x 112 x 112 723.5 / 662.8 (679), 32 x 112 x 112 229.2 / 211.5 (219),
#: 192 x 28 x 28 105.2 / 106.1 (90)
ROWS = 4 if WIDE else 2
#: vectors of 16 cells per row that :func:`._taps.taps_rows` keeps for each of its ROWS rows
ROW_VECTORS = 2 if WIDE else 1
#: a 1x1 layer's tile (:func:`pointwise`): output channels, and vectors of 16 cells, summed
#: together in registers (16 accumulators; AVX2: 6 x 1, 12 registers as MLAS's 6 x 16 tile)
PW_ROWS, PW_VECTORS = (4, 4) if WIDE else (6, 1)
#: cells of one tile
PW_CELLS = 16 * PW_VECTORS
#: bytes of the input's columns :func:`pointwise` keeps in cache for every tile of channels in
#: turn (a span of blocks of cells): about the L1 cache
PW_SPAN_BYTES = 32 << 10
#: a product of one row's tile (:func:`._taps.row_tile`: the recurrent ops' h @ R^T, one
#: batch entry): vectors of 16 columns summed together in registers (16 accumulators)
GEMV_VECTORS = 16 if WIDE else 6
#: the channels-last tile (:func:`conv_cl`): vectors of 16 output channels, and cells,
#: summed together in registers (16 accumulators; AVX2: 6 of one vector)
CL_VECTORS, CL_CELLS = (2, 8) if WIDE else (1, 6)
#: output channels of one channels-last tile
CL_CHANNELS = 16 * CL_VECTORS
#: AVX2's narrow channels-last block, for layers whose output channels are a multiple of 24 but
#: not of 16 (:func:`cl_width`): three vectors of 8 channels by 4 cells (12 registers summing,
#: :func:`._taps.cl_tile_narrow`). A 24-channel layer in blocks of 16 left a quarter of the
#: lanes empty: 96 -> 24 3x3 over 160 x 160 took as long as 96 -> 32 (18.4 ms, one thread, a
#: Zen 3; 96 -> 16: 9.7)
CL_NARROW_LANES, CL_NARROW_VECTORS, CL_NARROW_CELLS = 8, 3, 4
#: the narrow block's channels (0 where the tiles are AVX-512's: 32-channel blocks there)
CL_NARROW = 0 if WIDE else CL_NARROW_LANES * CL_NARROW_VECTORS
#: output cells :func:`conv_cl` sums for every block of channels in turn, so that their windows
#: stay in cache (64 -> 64 channels 3x3 over 56 x 56, all cells per block: 3.1 ms, in bands of
#: 256: see _ChannelsLastPlan)
CL_BAND = 256

__all__ = ["warm", "warm_nhwc", "warm_quant"]


@jit(inline="always")
def _tap_offsets(kh, kw, sh, sw, dh, dw, phase, wq):  # pragma: no cover - compiled
    """Each tap's first cell in the ``sh`` x ``sw`` stride phases of ``phase`` cells each (rows
    of ``wq``): tap (i, j) reads phase (i*dh % sh, j*dw % sw) from its whole strides on."""
    offs = np.empty(kh * kw, np.int64)
    for i in range(kh):
        for j in range(kw):
            ri, cj = i * dh, j * dw
            offs[i * kw + j] = ((ri % sh) * sw + cj % sw) * phase + (ri // sh) * wq + cj // sw
    return offs


@jit(inline="always")
def _row_bases(h, pt, sh, sw, phase, wq):  # pragma: no cover - compiled
    """The first cell of each of the ``h`` image rows' padded rows in the stride phases: row r
    is padded row r + pt, row (r + pt) // sh of row phase (r + pt) % sh (each of ``sw *
    phase`` cells), worked out once a call (two divisions a row in the channel loop cost as
    much as a 7 x 7 plane's taps)."""
    bases = np.empty(h, np.int64)
    for r in range(h):
        bases[r] = ((r + pt) % sh) * sw * phase + ((r + pt) // sh) * wq
    return bases


@jit(inline="always")
def _pair_phases(rowbase, pl, phase):  # pragma: no cover - compiled
    """(first cell of the even image columns, of the odd ones) of a stride-2 row whose padded
    row starts at ``rowbase``: column c is cell (c + pl) // 2 of phase (c + pl) % 2."""
    return (
        rowbase + (pl % 2) * phase + pl // 2,
        rowbase + ((pl + 1) % 2) * phase + (pl + 1) // 2,
    )


@jit(inline="always")
def _shared_rows(cg, kh, kw, sh, dh):  # pragma: no cover - compiled
    """3 or 5 where one input channel is read at unit row stride and dilation by a 3 x 3 or
    5 x 5 window, whose output rows share the input rows they read (the row loops'
    ``_3x3`` / ``_5x5`` forms: the first kw tap offsets are the columns'), else 0."""
    return kh if cg == 1 and sh == 1 and dh == 1 and kh == kw and (kh == 3 or kh == 5) else 0


@jit(inline="always")
def _strided_phases(dst, rowbase, src, wd, pl, sw, phase, wq):  # pragma: no cover - compiled
    """The ``wd`` cells of row ``src`` into its ``sw`` column phases in ``dst`` (its padded row
    at ``rowbase``, ``pl`` cells of left padding): the general stride's copy, one cell at a
    time."""
    for b in range(sw):
        q0 = max(0, -(-(pl - b) // sw))  # first cell of column phase b in the row
        q1 = min(wq, -(-(wd + pl - b) // sw))
        at = rowbase + b * phase
        first = q0 * sw + b - pl
        for q in range(q1 - q0):
            dst[at + q0 + q] = src[first + q * sw]


@jit()
def _direct(
    x,
    w,
    bias,
    y,
    g0,
    g1,
    m0,
    m1,
    cg,
    mg,
    kh,
    kw,
    sh,
    sw,
    dh,
    dw,
    pt,
    pl,
    hq,
    wq,
    chunk,
    mode,
    act,
    alpha,
    beta,
):  # pragma: no cover - compiled
    """Groups ``g0:g1`` of every image, output channels ``m0:m1`` of each (``0:mg`` all of
    them): ``y`` (N, M, OH, OW) from ``x`` (N, C, H, W) and ``w`` (M, cg * kh * kw), through a
    zero-padded copy of one group's input channels split into its ``sh`` x ``sw`` stride
    phases, each ``hq`` rows of ``wq`` cells: padded cell (pr, pc) is cell (pr // sh, pc // sw)
    of phase (pr % sh, pc % sw). Output cell (r, q) then reads cell (r, q) of each tap's phase,
    moved by the tap's whole strides, so a tap is one contiguous run over a block of output rows
    (``wq`` cells per row, the last ``wq - OW`` unused) at any stride. A single output channel
    at a time (depthwise layers, the pools) is written ROWS whole rows at a time (:func:`_rows`);
    dense groups OUTS output channels at a time, ``chunk`` rows at a time for every block of
    channels (:func:`._taps.block_rows`)."""
    h, wd = x.shape[2], x.shape[3]
    oh_, ow_ = y.shape[2], y.shape[3]
    taps = kh * kw
    phase = hq * wq  # cells per phase plane
    # slack after the last plane: the unused accumulator cells of the last row read past it,
    # the taps loops read up to SLACK cells past a run and taps_rows ROWS - 1 rows past its
    # block's last
    buf = np.zeros((cg, sh * sw * phase + ROWS * wq + kw * dw + SLACK), x.dtype)
    if mode == MAX:
        buf[:] = -np.inf
    offs = _tap_offsets(kh, kw, sh, sw, dh, dw, phase, wq)
    # bytes per element (x, y and buf share the dtype; x and buf are C-contiguous: the rows
    # below are copied by address)
    cell = x.itemsize
    bv0 = bias[0]  # a value of the element type (bias holds M >= 1 values)
    # every (input channel, tap) of a group from the first channel's planes: one pass of the
    # taps loop over all of them keeps each output's sum in registers across the channels too
    # (the same additions in the same order as a pass per channel)
    every = np.empty(cg * taps, np.int64)
    for c in range(cg):
        for t in range(taps):
            every[c * taps + t] = c * buf.shape[1] + offs[t]
    # a dense group (two output channels or more): OUTS of them at a time (block_rows), each
    # input vector loaded once for all of them
    blocked = mode == CONVOLVE and m1 - m0 >= 2
    blocks = -(-(m1 - m0) // OUTS) if blocked else 0
    wpk = np.empty((blocks, cg * taps, OUTS), w.dtype)
    bb = np.empty(OUTS, y.dtype)  # a block's biases (a partial block's rest unused)
    # y's rows are contiguous (it may be a block of rows of a larger output: a piece's);
    # elements from one output plane to the next, from one row to the next (in bytes)
    planes_apart, row_bytes = y.strides[1] // y.itemsize, y.strides[2]
    zero_w = w.dtype.type(0.0)
    a_, b_ = y.dtype.type(alpha), y.dtype.type(beta)
    shared = _shared_rows(cg, kh, kw, sh, dh)
    bases = _row_bases(h, pt, sh, sw, phase, wq)
    for n in range(x.shape[0]):
        for g in range(g0, g1):
            # the interior; the border keeps its first value, 0 (or -inf for MAX), as every
            # channel writes the same cells
            for c in range(cg):
                img = x[n, g * cg + c]
                planes = buf[c]
                if sw == 1:  # rows copied by address: no views per row
                    at, start = planes.ctypes.data, img.ctypes.data
                    for r in range(h):
                        copy_cells(at + (bases[r] + pl) * cell, start + r * wd * cell, wd, bv0)
                    continue
                for r in range(h):
                    rowbase = bases[r]
                    if sw == 2:  # even and odd image columns in one pass, by address
                        even, odd = _pair_phases(rowbase, pl, phase)
                        even = planes.ctypes.data + even * cell
                        row = img.ctypes.data + r * wd * cell
                        half = wd // 2
                        split_pairs(even, planes.ctypes.data + odd * cell, row, half, bv0)
                        if wd % 2:
                            copy_cells(even + half * cell, row + (wd - 1) * cell, 1, bv0)
                        continue
                    _strided_phases(planes, rowbase, img[r], wd, pl, sw, phase, wq)
            if blocked:  # this group's weights, OUTS output channels side by side per tap
                for bk in range(blocks):
                    for o in range(OUTS):
                        mm = m0 + bk * OUTS + o
                        for t in range(cg * taps):
                            wpk[bk, t, o] = w[g * mg + mm, t] if mm < m1 else zero_w
            if not blocked:  # whole output rows, ROWS at a time, straight from the registers
                for mm in range(m0, m1):
                    m = g * mg + mm
                    out = y[n, m].ctypes.data
                    wm, bm = w[m].ctypes.data, bias[m]
                    for r0 in range(0, oh_, ROWS):
                        k = min(ROWS, oh_ - r0)
                        dst, src = out + r0 * row_bytes, buf.ctypes.data + r0 * wq * cell
                        _rows(dst, ow_, k, (oh_ - r0) * ow_, src, wq, offs, every, wm, bm, act,
                              a_, b_, shared, mode == MAX, cg * taps)  # fmt: skip
                continue
            for r0 in range(0, oh_, chunk):  # a block of rows, all the group's channels
                r1 = min(oh_, r0 + chunk)
                src = buf.ctypes.data + r0 * wq * cell
                for bk in range(blocks):
                    b0 = g * mg + m0 + bk * OUTS
                    k = min(OUTS, g * mg + m1 - b0)
                    for o in range(OUTS):
                        bb[o] = bias[b0 + o] if o < k else bv0
                    block_rows(
                        y[n, b0].ctypes.data + r0 * row_bytes, planes_apart, ow_, r1 - r0, src, wq,
                        every.ctypes.data, wpk[bk].ctypes.data, bb.ctypes.data, k, ow_,
                        (oh_ - r0) * ow_, act, a_, b_, cg * taps, bv0,
                    )  # fmt: skip


@jit(inline="always")
def _rows(
    dst, ow_, k, room, src, wq, offs, every, wm, bm, act, a_, b_, shared, maximum, taps
):  # pragma: no cover
    """``k`` (at most ROWS) whole output rows of one channel at address ``dst`` (``ow_`` cells
    each, ``room`` cells from ``dst`` to the end of the plane's rows this call writes) from the
    phase planes at ``src``: :mod:`._taps`' row loops, the sums (``maximum``: the maxima) from
    ``bm``, the forms sharing input rows where ``shared`` (3 or 5) says."""
    o, e = offs.ctypes.data, every.ctypes.data
    if maximum:
        if shared == 3:
            max_rows_3x3(dst, ow_, k, src, wq, o, wm, ow_, room, bm, act, a_, b_)
        elif shared == 5:
            max_rows_5x5(dst, ow_, k, src, wq, o, wm, ow_, room, bm, act, a_, b_)
        else:
            max_rows(dst, ow_, k, src, wq, e, wm, ow_, room, bm, act, a_, b_, taps)
    elif shared == 3:
        taps_rows_3x3(dst, ow_, k, src, wq, o, wm, ow_, room, bm, act, a_, b_)
    elif shared == 5:
        taps_rows_5x5(dst, ow_, k, src, wq, o, wm, ow_, room, bm, act, a_, b_)
    else:
        taps_rows(dst, ow_, k, src, wq, e, wm, ow_, room, bm, act, a_, b_, taps)


#: output cells :func:`gather_conv` sums together, each pass over the weights serving them all
GATHER_CELLS = 8


@jit()
def gather_conv(x, index, wt, bias, y, act, alpha, beta):  # pragma: no cover - compiled
    """A small convolution from its column positions: ``y`` (N, M, cells) where cell p of image
    b is ``bias + sum over k of wt[k] * x[b, index[k, p]]`` (``x`` (N, C * size) flat, index
    ``C * size`` reads zero: the padding), then activation ``act``. The sums run over the
    column rows k in order for all M outputs side by side (``wt`` (K, M): vector code along M),
    four rows per pass over the sums (one row a pass loaded and stored them for every row:
    64 -> 64 channels, kernel 3, 2 frames 2.7 -> 1.9 us), for :data:`GATHER_CELLS` cells at a
    time: each pass reads its four rows of weights once for all of them (cell by cell, 129 ->
    128 channels, kernel 3, over 4 frames read the 198 KB of weights 4 times from L2). Nothing
    is built in memory but those cells' columns of K values and their sums."""
    n, m, cells = y.shape
    k = index.shape[0]
    size = x.shape[1]
    dt = y.dtype.type
    zero, one = dt(0.0), dt(1.0)
    a, b_ = dt(alpha), dt(beta)
    cb = min(cells, GATHER_CELLS)
    col = np.empty((cb, k), y.dtype)
    acc = np.empty((cb, m), y.dtype)
    k4 = k - k % 4
    for b in range(n):
        xb = x[b]
        for p0 in range(0, cells, cb):
            q = min(cb, cells - p0)
            for j in range(q):
                cj = col[j]
                for kk in range(k):
                    at = index[kk, p0 + j]
                    cj[kk] = xb[at] if at < size else zero
                aj = acc[j]
                if bias.shape[0]:
                    for mi in range(m):
                        aj[mi] = bias[mi]
                else:
                    aj[:] = zero
            for kk in range(0, k4, 4):  # four column rows per pass over the sums
                r0, r1, r2, r3 = wt[kk], wt[kk + 1], wt[kk + 2], wt[kk + 3]
                for j in range(q):
                    cj, aj = col[j], acc[j]
                    v0, v1, v2, v3 = cj[kk], cj[kk + 1], cj[kk + 2], cj[kk + 3]
                    for mi in range(m):
                        aj[mi] += (r0[mi] * v0 + r1[mi] * v1) + (r2[mi] * v2 + r3[mi] * v3)
            for kk in range(k4, k):
                row = wt[kk]
                for j in range(q):
                    v, aj = col[j, kk], acc[j]
                    for mi in range(m):
                        aj[mi] += row[mi] * v
            for mi in range(m):
                for j in range(q):
                    y[b, mi, p0 + j] = _act_value(acc[j, mi], act, a, b_, zero, one)


def warm_gather():
    """The compiled :func:`gather_conv` for float32 and float64 inputs (writable or read-only;
    the weights and bias are the plan's own), or None where compiled kernels are off."""
    fn = None
    for dt in (np.float32, np.float64):
        x = np.zeros((1, 1), dt)
        ro = x.copy()
        ro.flags.writeable = False
        index = np.zeros((1, 1), np.int64)
        for xx in (x, ro):
            for bias in (np.zeros(1, dt), np.zeros(0, dt)):
                fn = gather_conv.warm(
                    xx, index, np.zeros((1, 1), dt), bias, np.empty((1, 1, 1), dt), 0, 0.0, 0.0
                )  # fmt: skip
    return fn


@jit(error_model="numpy")
def _depthwise_quant(
    x, zx, w, bias, mult, zy, lo, hi, y, c0, c1, kh, kw, sh, sw, dh, dw, pt, pl, hq, wq
):  # pragma: no cover - compiled
    """Channels ``c0:c1`` of a depthwise QLinearConv: ``y`` (N, C, OH, OW) 8-bit from ``x`` (N,
    C, H, W) 8-bit, in one pass per channel. Each plane is copied centred (``x - zx`` in float32)
    into :func:`_direct`'s zero-padded stride phases (a centred zero is the zero point's padding),
    ``w`` (C, kh * kw) holds the centred weights in float32, whose sums of integers stay exact
    (the caller checks the bound), then each block of output rows is requantized on the way out
    as :func:`._quant_jit.requantize3` does: ``clip(rint((acc + bias) * mult) + zy, lo, hi)``.
    The same float32 operations as the centring pass, the planar or channels-last kernel and the
    requantization pass one after another (so the same bytes), without their two extra passes
    over the layer and on any thread of the run."""
    h, wd = x.shape[2], x.shape[3]
    oh_, ow_ = y.shape[2], y.shape[3]
    taps = kh * kw
    phase = hq * wq
    buf = np.zeros(sh * sw * phase + ROWS * wq + kw * dw + SLACK, np.float32)
    offs = _tap_offsets(kh, kw, sh, sw, dh, dw, phase, wq)
    shared = _shared_rows(1, kh, kw, sh, dh)
    bases = _row_bases(h, pt, sh, sw, phase, wq)
    # one centred image row, split into its column phases from here (strides above 2)
    row = np.empty(wd + SLACK, np.float32)
    like_x, like_y = x.dtype.type(0), y.dtype.type(0)
    xb, yb = x.ctypes.data, y.ctypes.data  # rows read and written by address: no views
    for n in range(x.shape[0]):
        for c in range(c0, c1):
            # the interior, centred; the border keeps its zeros (every channel writes the same
            # cells)
            plane = xb + ((n * x.shape[1] + c) * h) * wd
            for r in range(h):
                rowbase = bases[r]
                if sw == 1:
                    at = buf.ctypes.data + (rowbase + pl) * 4
                    center_cells(at, plane + r * wd, wd, zx, like_x)
                    continue
                if sw == 2:  # both column phases in one pass
                    even, odd = _pair_phases(rowbase, pl, phase)
                    even = buf.ctypes.data + even * 4
                    half = wd // 2
                    center_pairs(even, buf.ctypes.data + odd * 4, plane + r * wd, half, zx, like_x)
                    if wd % 2:
                        center_cells(even + half * 4, plane + r * wd + wd - 1, 1, zx, like_x)
                    continue
                center_cells(row.ctypes.data, plane + r * wd, wd, zx, like_x)
                _strided_phases(buf, rowbase, row, wd, pl, sw, phase, wq)
            b, m = bias[c], mult[c]
            src = buf.ctypes.data
            out = yb + ((n * y.shape[1] + c) * oh_) * ow_ * y.itemsize
            for r0 in range(0, oh_, ROWS):  # whole output rows, ROWS at a time
                k = min(ROWS, oh_ - r0)
                dst, at = out + r0 * ow_ * y.itemsize, src + r0 * wq * 4
                room = (oh_ - r0) * ow_  # the plane's cells from dst on, written in order
                if shared == 3:
                    quant_rows_3x3(
                        dst, ow_, k, at, wq, offs.ctypes.data, w[c].ctypes.data, ow_, room, b,
                        m, zy, lo, hi, like_y,
                    )  # fmt: skip
                elif shared == 5:
                    quant_rows_5x5(
                        dst, ow_, k, at, wq, offs.ctypes.data, w[c].ctypes.data, ow_, room, b,
                        m, zy, lo, hi, like_y,
                    )  # fmt: skip
                else:
                    quant_rows(
                        dst, ow_, k, at, wq, offs.ctypes.data, w[c].ctypes.data, ow_, room, b,
                        m, zy, lo, hi, like_y, taps,
                    )  # fmt: skip


@jit(inline="always")
def _cl_plane(h, wd, oh_, ow_, kh, kw, sh, sw, dh, dw, pt, pl, cb_):  # pragma: no cover - compiled
    """The zero-padded channels-last plane of the channels-last kernels, ``cb_`` elements a
    cell: (its rows and columns, every one a window reads, padding included, as _DirectPlan
    works them out; each input cell's place in it; each tap's elements from a window's first
    cell)."""
    hp = max(h + pt, (oh_ - 1) * sh + (kh - 1) * dh + 1)
    wp = max(wd + pl, (ow_ - 1) * sw + (kw - 1) * dw + 1)
    places = np.empty(h * wd, np.int64)
    for r in range(h):
        for q in range(wd):
            places[r * wd + q] = (r + pt) * wp + q + pl
    offs = np.empty(kh * kw, np.int64)
    for i in range(kh):
        for j in range(kw):
            offs[i * kw + j] = (i * dh * wp + j * dw) * cb_
    return hp, wp, places, offs


#: output rows at most this wide take the channels-last kernel (:func:`_depthwise_quant_cl`):
#: one thread, alone, 240 x 28 x 28 106 -> 73 us, 120 x 40 x 40 at stride 2 66 -> 39, 960 x 7 x
#: 7 82 -> 23; on rows of 56 cells the two are even (144 x 56 x 56: 219 and 217 us; 72 x 56 x
#: 56 110 and 126) and from 112 the planar kernel wins (32 x 112 x 112: 171 against 241)
CL_MAX_OW = 40
#: channels :func:`_depthwise_quant_cl` sums together (vectors of 16 per cell in registers)
CL_BLOCK = 64


@jit(error_model="numpy")
def _depthwise_quant_cl(
    x, zx, wt, bias, mult, zy, lo, hi, y, c0, c1, kh, kw, sh, sw, dh, dw, pt, pl
):  # pragma: no cover - compiled
    """:func:`_depthwise_quant` channels last, for maps whose rows are too short for the planar
    kernel's vectors (:mod:`._cl_taps`), :data:`CL_BLOCK` channels at a time: the block's
    planes centred and transposed in registers into a zero-padded channels-last plane, each
    output cell's taps summed over vectors of channels and requantized, the cells transposed
    back into the block's output planes. ``wt`` (kh * kw, C + CL_BLOCK) holds the centred
    weights by tap, ``bias`` and ``mult`` (C + CL_BLOCK) the biases and multipliers, all zero
    past C (:func:`cl_weights`): a block reads its channels' in place, a partial block's lanes
    past its channels computing from zeros (not written). The same sums (exact) and the same
    requantization as the planar kernel, so the same bytes."""
    h, wd = x.shape[2], x.shape[3]
    oh_, ow_ = y.shape[2], y.shape[3]
    cb_ = CL_BLOCK
    hp, wp, places, offs = _cl_plane(h, wd, oh_, ow_, kh, kw, sh, sw, dh, dw, pt, pl, cb_)
    xt = np.zeros(hp * wp * cb_, np.float32)  # the border stays zero: only the image is copied
    yt = np.empty((oh_ * ow_ + LANES) * cb_, y.dtype)  # 16 cells of slack for cl_out's loads
    like_x, like_y = x.dtype.type(0), y.dtype.type(0)
    xb, yb = x.ctypes.data, y.ctypes.data
    cells_in, cells_out = h * wd, oh_ * ow_
    for b0 in range(c0, c1, cb_):
        nb = min(cb_, c1 - b0)
        vectors = -(-nb // LANES)
        for n in range(x.shape[0]):
            for v in range(vectors):
                rows = min(LANES, nb - v * LANES)
                src = xb + (n * x.shape[1] + b0 + v * LANES) * cells_in * x.itemsize
                cl_center_in(
                    xt.ctypes.data + v * LANES * 4, cb_, places.ctypes.data, src, cells_in,
                    cells_in, rows, zx, like_x,
                )  # fmt: skip
            cl_quant_cells(
                yt.ctypes.data, oh_, ow_, xt.ctypes.data, sh * wp * cb_, sw * cb_,
                offs.ctypes.data, kh * kw, wt.ctypes.data + b0 * 4, wt.shape[1],
                bias.ctypes.data + b0 * 4, mult.ctypes.data + b0 * 4, vectors, zy, lo, hi, like_y,
            )  # fmt: skip
            for v in range(vectors):
                rows = min(LANES, nb - v * LANES)
                dst = yb + (n * y.shape[1] + b0 + v * LANES) * cells_out * y.itemsize
                cl_out(dst, cells_out, yt.ctypes.data + v * LANES, cb_, cells_out, rows, like_y)


def cl_weights(w: np.ndarray, bias: np.ndarray, mult: np.ndarray) -> tuple:
    """The arrays :func:`_depthwise_quant_cl` reads: the centred weights ``w`` (C, taps) by tap,
    ``bias`` and ``mult`` (C), each padded with CL_BLOCK zero channels."""
    m, taps = w.shape
    wt = np.zeros((taps, m + CL_BLOCK), np.float32)
    wt[:, :m] = w.T
    b, k = np.zeros(m + CL_BLOCK, np.float32), np.zeros(m + CL_BLOCK, np.float32)
    b[:m], k[:m] = bias, mult
    return wt, b, k


def warm_quant_cl(x_dtype, y_dtype):
    """The compiled :func:`_depthwise_quant_cl` for these 8-bit input and output types (or
    None)."""
    f = np.float32(0.0)
    x = np.zeros((1, 1, 2, 2), x_dtype)
    w = np.zeros((1, 1 + CL_BLOCK), np.float32)
    y = np.empty((1, 1, 2, 2), y_dtype)
    fn = None
    for bias in _biases(np.float32):
        fn = _depthwise_quant_cl.warm(x, f, w, bias, bias, f, f, f, y, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0)
    return fn


def warm_quant(x_dtype, y_dtype):
    """The compiled :func:`_depthwise_quant` for these 8-bit input and output types (or None)."""
    f = np.float32(0.0)
    x = np.zeros((1, 1, 2, 2), x_dtype)
    w = np.zeros((1, 1), np.float32)
    y = np.empty((1, 1, 2, 2), y_dtype)
    fn = None
    for bias in _biases(np.float32):
        fn = _depthwise_quant.warm(
            x, f, w, bias, bias, f, f, f, y, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 2, 2
        )
    return fn


#: channels :func:`_depthwise_nhwc` takes at a time: long vector loops, and a 7 x 7 block's input
#: and output cells in L1 (32: 960 x 7 x 7 in 0.15 ms; 128: 0.115 ms; the whole 960 at once: 0.15)
NHWC_BLOCK = 128 if WIDE else 64
#: elements in one vector of :mod:`._taps`' loops (outputs of a row, channels of a cell)
LANES = 16


@jit()
def _depthwise_nhwc(
    x, wt, bias, y, c0, c1, kh, kw, sh, sw, dh, dw, pt, pl, act, alpha, beta
):  # pragma: no cover - compiled
    """Channels ``c0:c1`` of depthwise ``y`` (N, C, OH, OW) from ``x`` (N, C, H, W) and ``wt``
    (kh * kw, C or more: with NHWC_BLOCK columns past the channels, a block's weights are read
    in place; otherwise they are copied per block), channels last, :data:`NHWC_BLOCK` channels
    at a time: the block's planes transposed into a zero-padded (HP * WP, block) plane 16
    planes by 16 cells at a time in registers (:func:`._cl_taps.cl_in`), every output row's
    cells summed in registers across the taps (:func:`._taps.nhwc_cells`: the block's channels
    in vectors, each tap's input and weight vectors loaded once, the activation on the way
    out), then the cells transposed back into the block's output planes
    (:func:`._cl_taps.cl_out`). For small maps with many channels, where rows are too short for
    the planar kernel's loops. A partial block's last vector computes lanes past its channels
    from what the buffers hold (zeros or the previous block's values); they are not written."""
    h, wd = x.shape[2], x.shape[3]
    oh_, ow_ = y.shape[2], y.shape[3]
    cb_ = NHWC_BLOCK
    hp, wp, places, offs = _cl_plane(h, wd, oh_, ow_, kh, kw, sh, sw, dh, dw, pt, pl, cb_)
    xt = np.zeros((hp * wp, cb_), x.dtype)  # the border stays zero: only the image is copied in
    yt = np.empty((oh_ * ow_ + LANES, cb_), y.dtype)  # 16 cells of slack for cl_out's loads
    # this block's weights and biases, contiguous (zeros at first: lanes past a partial block's
    # channels then compute from finite values, the previous block's or zeros)
    wc = np.zeros((kh * kw, cb_), wt.dtype)
    bs = np.zeros(cb_, bias.dtype)
    cell = x.itemsize
    like = bias[0]  # a value of the element type
    a_, b_ = y.dtype.type(alpha), y.dtype.type(beta)
    for b0 in range(c0, c1, cb_):
        nb = min(cb_, c1 - b0)
        vectors = -(-nb // LANES)  # the block's channels in vectors of LANES, the last partial
        if wt.shape[1] >= b0 + cb_:  # the block's weights in place, rows wt.shape[1] apart
            w_at, w_step = wt.ctypes.data + b0 * wt.itemsize, wt.shape[1]
        else:
            for t in range(kh * kw):
                for c in range(nb):
                    wc[t, c] = wt[t, b0 + c]
            w_at, w_step = wc.ctypes.data, cb_
        for c in range(nb):
            bs[c] = bias[b0 + c]
        for n in range(x.shape[0]):
            for v in range(vectors):  # 16 planes at a time, transposed in registers
                src = x.ctypes.data + (n * x.shape[1] + b0 + v * LANES) * h * wd * cell
                cl_in(xt.ctypes.data + v * LANES * cell, cb_, places.ctypes.data, src, h * wd,
                      h * wd, min(LANES, nb - v * LANES), like)  # fmt: skip
            for r in range(oh_):
                nhwc_cells(
                    yt.ctypes.data + r * ow_ * cb_ * cell, cb_, ow_,
                    xt.ctypes.data + r * sh * wp * cb_ * cell, sw * cb_, offs.ctypes.data,
                    kh * kw, w_at, w_step, bs.ctypes.data, vectors, act, a_, b_, like,
                )  # fmt: skip
            for v in range(vectors):
                dst = y.ctypes.data + (n * y.shape[1] + b0 + v * LANES) * oh_ * ow_ * cell
                cl_out(dst, oh_ * ow_, yt.ctypes.data + v * LANES * cell, cb_, oh_ * ow_,
                       min(LANES, nb - v * LANES), like)  # fmt: skip


def warm_nhwc():
    """The compiled :func:`_depthwise_nhwc` (see :func:`warm`), or None where it is off."""
    fn = None
    for dt in (np.float32, np.float64):
        x = np.zeros((1, 1, 2, 2), dt)
        w = np.zeros((1, 1), dt)
        y = np.empty((1, 1, 2, 2), dt)
        for bias in _biases(dt):
            fn = _depthwise_nhwc.warm(x, w, bias, y, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0.0, 0.0)
    return fn


def _biases(dt) -> tuple[np.ndarray, np.ndarray]:
    """A writable and a read-only bias (a model's initializer arrives read-only: numba compiles
    each kind once)."""
    ro = np.zeros(1, dt)
    ro.flags.writeable = False
    return np.zeros(1, dt), ro


def warm():
    """The compiled :func:`_direct`, compiled (or loaded from the disk cache) now for float32
    and float64, or None where compiled kernels are off."""
    fn = None
    for dt in (np.float32, np.float64):
        x = np.zeros((1, 1, 2, 2), dt)
        w = np.zeros((1, 1), dt)
        y = np.empty((1, 1, 2, 2), dt)
        for bias in _biases(dt):
            fn = _direct.warm(
                x, w, bias, y, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 2, 2, 2, CONVOLVE, 0,
                0.0, 0.0,
            )  # fmt: skip
    return fn


@jit()
def tile_windows(cols, bias, y):  # pragma: no cover - compiled
    """A ConvTranspose whose 2-D windows tile the output without overlapping (kernel ==
    stride, no pads or dilation): ``y[a, c, i * kh + u, j * kw + v] = cols[a, c, u, v, i, j] +
    bias[c]`` (``bias`` empty: none), each output row written once, in order. numpy's four
    strided writes of an OCR detector's 24 x 320 x 320 upsampling took 4.6 ms."""
    n, m, kh, kw, h, w = cols.shape
    with_bias = bias.shape[0] > 0
    for a in range(n):
        for c in range(m):
            b = bias[c] if with_bias else cols.dtype.type(0)
            for i in range(h):
                for u in range(kh):
                    row = y[a, c, i * kh + u]
                    for v in range(kw):
                        src = cols[a, c, u, v, i]
                        for j in range(w):
                            row[j * kw + v] = src[j] + b if with_bias else src[j]


@jit()
def winograd_input(planes, at, v, c0, c1):  # pragma: no cover - compiled
    """Winograd F(2x2, 3x3)'s input transform B^T d B for channels ``c0:c1``: ``planes`` (P, C,
    L) the stride-2 phase planes of the padded image (conv._Phases with a 4 x 4 window), ``at``
    (16, 2) each window cell's plane and offset (row-major), ``v`` (16, C, span) the 16
    transformed values of every tile (tile column q of channel c at ``v[:, c, q]``). One pass
    in vectors (:func:`._taps.wino_in_row`) where numpy made 32 over all the channels."""
    _, c, length = planes.shape
    span = v.shape[2]
    offs = np.empty(16, np.int64)
    like = v.dtype.type(0)
    for ci in range(c0, c1):
        for t in range(16):
            offs[t] = (at[t, 0] * c + ci) * length + at[t, 1]
        wino_in_row(v.ctypes.data + ci * span * v.itemsize, c * span, planes.ctypes.data,
                    offs.ctypes.data, span, like)  # fmt: skip


@jit()
def winograd_output(prod, bias, y, m0, m1, wq):  # pragma: no cover - compiled
    """Winograd F(2x2, 3x3)'s output transform A^T m A for output channels ``m0:m1``: ``prod``
    (16, M, span) the 16 products per tile (tile (i, j) at column ``i * wq + j``), ``bias`` M
    values or empty (added to product 5), ``y`` (M, OH, OW) written once, a row of tiles at a
    time in vectors (:func:`._taps.wino_out_row`), where numpy made 24 passes and four strided
    writes of the output."""
    m, span = prod.shape[1], prod.shape[2]
    oh, ow = y.shape[1], y.shape[2]
    size = y.itemsize
    has = bias.shape[0] > 0
    like = y.dtype.type(0)
    for mi in range(m0, m1):
        b = bias[mi] if has else like
        for ti in range((oh + 1) // 2):
            wino_out_row(y.ctypes.data + (mi * oh + 2 * ti) * ow * size, ow,
                         int(2 * ti + 1 < oh), prod.ctypes.data + (mi * span + ti * wq) * size,
                         m * span, int(has), b, ow, like)  # fmt: skip


def warm_winograd():
    """(:func:`winograd_input`, :func:`winograd_output`) compiled for float32 and float64 (a
    bias or none), or None where compiled kernels are off."""
    fns = None
    for dt in (np.float32, np.float64):
        at = np.zeros((16, 2), np.int64)
        fin = winograd_input.warm(np.zeros((1, 1, 4), dt), at, np.empty((16, 1, 1), dt), 0, 1)
        for bias in (*_biases(dt), np.zeros(0, dt)):
            fout = winograd_output.warm(np.zeros((16, 1, 1), dt), bias, np.empty((1, 1, 1), dt),
                                        0, 1, 1)  # fmt: skip
        fns = None if fin is None or fout is None else (fin, fout)
    return fns


def warm_tile():
    """The compiled :func:`tile_windows` for float32 and float64 (with and without a bias), or
    None where compiled kernels are off."""
    fn = None
    for dt in (np.float32, np.float64):
        cols = np.zeros((1, 1, 1, 1, 1, 1), dt)
        for bias in (np.zeros(1, dt), np.zeros(0, dt)):
            fn = tile_windows.warm(cols, bias, np.empty((1, 1, 1, 1), dt))
    return fn


@jit()
def pointwise(x, w, bias, y, z, b0, b1, t0, t1, act, alpha, beta):  # pragma: no cover - compiled
    """Blocks of cells ``b0:b1`` (block i: cells ``(i % nb) * PW_CELLS`` on of image ``i //
    nb``, nb blocks per image) by tiles of at most :data:`PW_ROWS` output channels ``t0:t1`` of
    a 1x1 convolution without padding: ``y`` (N, M, P) = ``act(w . x + bias (+ z))`` for ``x``
    (N, C, P), ``w`` (M, K) (C = G * K for G groups: output channel j sums group ``j // (M /
    G)``'s K input channels), M biases, ``z`` (N, M, P) a residual or an empty array. A group's
    output channels are :func:`pointwise_tiles` tiles of their own (the last one partial where
    M / G is no multiple of PW_ROWS). Each tile's sums stay in registers over K and are written
    once through the activation (:func:`._taps.pointwise_tile`); the blocks' columns of x, read
    in place at their row stride, are read for every tile while they are in cache. No packing,
    no column matrix, no pass over the output after the product."""
    n, c, p = x.shape
    m, k = y.shape[1], w.shape[1]
    groups = c // k
    mg = m // groups
    per_group = -(-mg // PW_ROWS)
    nb = -(-p // PW_CELLS)
    cell = x.itemsize
    like = bias[0]
    a_, b_ = y.dtype.type(alpha), y.dtype.type(beta)
    xa, ya, wa, ba = x.ctypes.data, y.ctypes.data, w.ctypes.data, bias.ctypes.data
    za = z.ctypes.data if z.size else 0
    # blocks of cells per span: every tile of channels sums the span's blocks before the next
    # tile, so a tile writes its channels' planes a run at a time, and the span's columns of x
    # stay in cache across the tiles. Block by block, all tiles each, a block's stores went to
    # M planes at once (one thread, a Zen 3, ms: 16 -> 96 over 160 x 160 3.7 -> 2.2, 8 -> 32
    # over 320 x 320 3.2 -> 1.8, 24 -> 144 over 56 x 56 0.31 -> 0.30); with four tiles or fewer
    # block by block stays ahead (96 -> 24 over 160 x 160 2.9 against 3.1)
    span = 1 if t1 - t0 <= 4 else max(1, PW_SPAN_BYTES // (k * PW_CELLS * cell))
    for s0 in range(b0, b1, span):
        for t in range(t0, t1):
            grp = t // per_group
            m0 = grp * mg + (t - grp * per_group) * PW_ROWS
            for b in range(s0, min(b1, s0 + span)):
                img, c0 = b // nb, (b % nb) * PW_CELLS
                cells = min(PW_CELLS, p - c0)
                src = xa + ((img * c + grp * k) * p + c0) * cell
                at = ((img * m + m0) * p + c0) * cell
                pointwise_tile(
                    ya + at, p, src, p, wa + m0 * k * cell, k, ba + m0 * cell, k,
                    min(PW_ROWS, (grp + 1) * mg - m0), cells, za + at if za else 0, act, a_, b_,
                    like,
                )  # fmt: skip


@jit(inline="always")
def _pointwise_tiles(m, groups):  # pragma: no cover - compiled
    """:func:`pointwise_tiles`, for compiled callers (the pieces of :mod:`._conv_pieces`)."""
    return groups * -(-(m // groups) // PW_ROWS)


def pointwise_tiles(m: int, groups: int = 1) -> int:
    """The tiles of at most :data:`PW_ROWS` output channels of ``m`` in ``groups`` groups (a
    tile holds one group's channels)."""
    return _pointwise_tiles.py_func(m, groups)


#: :func:`pointwise`'s ``z`` where there is no residual
NO_RESIDUAL = np.empty((0, 0, 0), np.float32)


def warm_pointwise():
    """The compiled :func:`pointwise` (see :func:`warm`), or None where it is off."""
    fn = None
    x = np.zeros((1, 1, 2), np.float32)
    w = np.zeros((1, 1), np.float32)
    y = np.empty((1, 1, 2), np.float32)
    for z in (np.empty((0, 0, 0), np.float32), np.zeros((1, 1, 2), np.float32)):
        for bias in _biases(np.float32):
            fn = pointwise.warm(x, w, bias, y, z, 0, 1, 0, 1, 0, 0.0, 0.0)
    return fn


@jit()
def conv_cl(
    x, table, bases, wt, bias, y, b0, b1, u0, u1, act, alpha, beta
):  # pragma: no cover - compiled
    """Output channels ``b0 * CL_CHANNELS`` to ``b1 * CL_CHANNELS`` and cells ``u0 * CL_CELLS``
    to ``u1 * CL_CELLS`` (or the last) of a dense convolution, channels last, as an implicit
    GEMM: ``y`` (N, M, P) = ``act(w . windows + bias)`` for the
    images ``x`` (N, X: each image flat, zero-padded where the window needs it), the rows of
    the weights placed in an image by ``table`` (K offsets: input channel and tap) and the P
    output cells' windows by ``bases`` (:func:`cl_tables`), the weights by blocks of channels
    (:func:`cl_weights_blocks`: (B, K * CL_CHANNELS), zeros past M) and ``bias`` B *
    CL_CHANNELS long. Per block of CL_CHANNELS channels, tiles of :data:`CL_CELLS` cells by
    the block's channels are summed in registers (:func:`._taps.cl_tile`: a vector of weights
    per row, each input value broadcast) into a channels-last buffer, then transposed into the
    block's output planes 16 x 16 in registers (:func:`._cl_taps.cl_out`). No column matrix,
    no junk cells: for small maps (7 x 7), where a planar tile's vectors of 16 cells are
    mostly empty, and strided windows."""
    n, k = x.shape[0], table.shape[0]
    m, p = y.shape[1], y.shape[2]
    cell = x.itemsize
    like = bias[0]
    a_, b_ = y.dtype.type(alpha), y.dtype.type(beta)
    width = wt.shape[1] // k  # channels per block: CL_CHANNELS, or CL_NARROW (cl_width)
    narrow = width != CL_CHANNELS
    most = CL_NARROW_CELLS if narrow else CL_CELLS  # cells per tile
    first_cell, end = u0 * CL_CELLS, min(p, u1 * CL_CELLS)
    band = min(end - first_cell, CL_BAND)
    buf = np.empty((band + LANES, width), y.dtype)  # cl_out reads 16 cells of slack
    ta, wa, ba, ya = table.ctypes.data, wt.ctypes.data, bias.ctypes.data, y.ctypes.data
    for img in range(n):
        src = x[img].ctypes.data
        for c0 in range(first_cell, end, band):  # a band of cells for every block in turn
            count = min(band, end - c0)
            for b in range(b0, b1):
                m0 = b * width
                for r0 in range(0, count, most):
                    out, at = buf.ctypes.data + r0 * width * cell, bases[c0 + r0 :].ctypes.data
                    w_at, cells = wa + b * k * width * cell, min(most, count - r0)
                    if narrow:
                        cl_tile_narrow(
                            out, src, ta, at, w_at, ba + m0 * cell, k, cells, act, a_, b_, like
                        )
                    else:
                        cl_tile(out, src, ta, at, w_at, ba + m0 * cell, k, cells, act, a_, b_, like)
                for v in range(-(-width // LANES)):
                    first = m0 + v * LANES
                    if first < m:
                        cl_out(ya + ((img * m + first) * p + c0) * cell, p,
                               buf.ctypes.data + v * LANES * cell, width, count,
                               min(LANES, m - first, width - v * LANES), like)  # fmt: skip


@jit()
def pad_planes(x, xp, top, left):  # pragma: no cover - compiled
    """``x`` (N, C, H, W, C-contiguous) into ``xp`` (N, C, HP, WP, C-contiguous, any contents)
    from row ``top`` and column ``left`` on, row by row by address (:func:`._taps.copy_cells`),
    and zeros around it: the padded input of :func:`conv_cl`. numpy's slice assignment took 6
    us inside a run for a 32 x 16 x 16 map (its views, then a strided copy), and zeroing the
    whole padded input first (np.zeros) 4.6 us more for 32 x 26 x 98."""
    n, c, h, w = x.shape
    hp, wp = xp.shape[2], xp.shape[3]
    cell = x.itemsize
    like = x.dtype.type(0.0)
    xa, pa = x.ctypes.data, xp.ctypes.data
    flat = xp.reshape(-1)
    for plane in range(n * c):
        base = plane * hp * wp
        for i in range(base, base + top * wp):  # the rows above
            flat[i] = like
        src = xa + plane * h * w * cell
        for r in range(h):
            row = base + (top + r) * wp
            for i in range(row, row + left):
                flat[i] = like
            for i in range(row + left + w, row + wp):
                flat[i] = like
            copy_cells(pa + (row + left) * cell, src + r * w * cell, w, like)
        for i in range(base + (top + h) * wp, base + hp * wp):  # the rows below
            flat[i] = like


def warm_pad():
    """The compiled :func:`pad_planes` for float32 inputs, writable or read-only (a fed array
    may be either), or None where compiled kernels are off."""
    xp = np.zeros((1, 1, 3, 3), np.float32)
    fn = None
    for writable in (True, False):
        x = np.zeros((1, 1, 1, 1), np.float32)
        x.flags.writeable = writable
        fn = pad_planes.warm(x, xp, 1, 1)
    return fn


def cl_width(m: int) -> int:
    """The channels of :func:`conv_cl`'s blocks for a layer of ``m`` output channels:
    :data:`CL_NARROW` where that divides ``m`` and :data:`CL_CHANNELS` does not, else
    CL_CHANNELS."""
    return CL_NARROW if CL_NARROW and m % CL_CHANNELS and m % CL_NARROW == 0 else CL_CHANNELS


def cl_weights_blocks(w: np.ndarray) -> np.ndarray:
    """Weights (M, K) for :func:`conv_cl`: by blocks of :func:`cl_width` output channels,
    each block's transposed, (B, K * width), zeros past M: a block's weights are one
    contiguous run (rows of the whole transpose, 8 KB apart for M = 2048, cost a page per
    row: 512 -> 2048 on 7 x 7 1.7 ms in ResNet-50, against 1.0 for onnxruntime)."""
    m, k = w.shape
    width = cl_width(m)
    blocks = -(-m // width)
    wt = np.zeros((blocks * width, k), w.dtype)
    wt[:m] = w
    return np.ascontiguousarray(
        wt.reshape(blocks, width, k).transpose(0, 2, 1).reshape(blocks, k * width)
    )


def cl_tables(c, hp, wp, kernel, strides, dilations, out) -> tuple:
    """:func:`conv_cl`'s ``table`` (each (input channel, tap) row of the weights, channel-major
    as a packed weight row, at its offset in a (C, HP, WP) image) and ``bases`` (each output
    cell's window's first element; P + CL_CELLS entries, the tiles read CL_CELLS at a time)."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, strides, dilations, out
    taps = (np.arange(kh)[:, None] * dh * wp + np.arange(kw)[None, :] * dw).reshape(-1)
    table = (np.arange(c)[:, None] * hp * wp + taps[None, :]).reshape(-1).astype(np.int64)
    bases = np.zeros(oh * ow + CL_CELLS, np.int64)
    bases[: oh * ow] = (np.arange(oh)[:, None] * sh * wp + np.arange(ow)[None, :] * sw).reshape(-1)
    return table, bases


def warm_conv_cl():
    """The compiled :func:`conv_cl` (see :func:`warm`), or None where it is off."""
    x = np.zeros((1, 2), np.float32)
    table, bases = cl_tables(1, 1, 2, (1, 1), (1, 1), (1, 1), (1, 2))
    w = np.zeros((1, CL_CHANNELS), np.float32)  # one block of one row
    y = np.empty((1, 1, 2), np.float32)
    bias = np.zeros(CL_CHANNELS, np.float32)
    return conv_cl.warm(x, table, bases, w, bias, y, 0, 1, 0, 1, 0, 0.0, 0.0)
