"""MaxPool at stride 1 whose output is the input's size (an Inception's 3 x 3 branch pools, a
YOLO's SPPF 5 x 5s), compiled: max is separable, so each cell first takes the maximum over its
window's rows, then over its window's columns (3 + 3 comparisons for a 3 x 3 window instead of
9), and at stride 1 with "same" padding both passes are single runs over many planes at once,
flat, with only the cells whose windows overhang a plane's edge redone (:func:`max_pool_same`).

The general window kernel (:func:`._conv_jit._direct` in its MAX mode) copies each channel into
its stride-phase planes and takes every window cell per output row: on small maps the per-
channel set-up costs more than the comparisons (single-node, one thread, onnxruntime in the
same process: 832 x 7 x 7 with a 3 x 3 window 3.3x onnxruntime's time, 480 x 14 x 14 2.3x;
here 2.0x and 1.6x).

At other strides (:func:`max_pool_rows`), per output row the maxima over its window's rows are
one contiguous pass into a row buffer with the padding's -inf around it, and each output cell
is the maximum of its window's columns of that row: no copy of the input, where the window
kernel copied every channel into stride-phase planes first (single node, one thread, a Zen 3:
192 x 56 x 56, 3 x 3 at stride 2, 426 -> 143 us, onnxruntime 188; 64 x 112 x 112 371 -> 162,
onnxruntime 226; 320 x 28 x 28 273 -> 103, onnxruntime 83). Windows of 2 or 3 columns at
stride 2 take that row's outputs a vector at a time (:mod:`._taps`' ``pair_max3_cells``: the
even and odd cells shuffled out of two vector loads), where LLVM left the strided loop scalar
(a Zen 4, one thread: SqueezeNet's 64 x 111 x 111 260 -> 175 us, onnxruntime 201), and the
maxima down two or three window rows are vectors too, the row's last partial vector a whole one
ending at its end (LLVM's loop took a row's last cells one at a time).

Maxima as np.maximum takes them: NaN from either side. Float32 and float64 planes, C-contiguous.
See :mod:`ort_cpu._jit` for the rules (lazy, cached on disk, numpy fallback).
"""

from __future__ import annotations

import numpy as np

from .._jit import LazyIntrinsic, jit

#: a row's windows of 2 and 3 columns at stride 2 in vectors (:mod:`._taps`, LLVM vector code)
pair_max2_cells = LazyIntrinsic("ort_cpu.kernels._taps", "pair_max2_cells")
pair_max3_cells = LazyIntrinsic("ort_cpu.kernels._taps", "pair_max3_cells")
#: and the maxima down windows of 2 and 3 rows
rows2_max_cells = LazyIntrinsic("ort_cpu.kernels._taps", "rows2_max_cells")
rows3_max_cells = LazyIntrinsic("ort_cpu.kernels._taps", "rows3_max_cells")
#: cells of a row buffer past its windows' that those vectors may read (two vectors and two)
PAIR_SLACK = 34


@jit(inline="always")
def _max(a, b):  # pragma: no cover - compiled
    """np.maximum of two values: NaN from either side."""
    return a if (a >= b) | (a != a) else b


@jit(inline="always")
def _copy_run(dst, d0, src, s0, n, step):  # pragma: no cover - compiled
    """``dst[d0 + i * step] = src[s0 + i * step]`` for ``i < n``: a column down a block of
    rows (``step`` a row's length). Every index is unsigned: numba checks a signed
    index for a negative value first, which keeps LLVM from making vector code of the loop
    (10x slower here), and a slice per run costs two atomic reference counts, more than a short
    run's loop."""
    a, b, s = np.uint64(d0), np.uint64(s0), np.uint64(step)
    for i in range(n):
        u = np.uint64(i) * s
        dst[a + u] = src[b + u]


@jit(inline="always")
def _max_run(dst, d0, src, s0, n, step):  # pragma: no cover - compiled
    """``np.maximum`` of ``src``'s run into ``dst``'s, as :func:`_copy_run` reads and writes
    them."""
    a, b, s = np.uint64(d0), np.uint64(s0), np.uint64(step)
    for i in range(n):
        u = np.uint64(i) * s
        dst[a + u] = _max(dst[a + u], src[b + u])


@jit(inline="always")
def _window_run(dst, d0, src, s0, n, gap, k):  # pragma: no cover - compiled
    """``dst[d0 + i] = max(src[s0 + i + t * gap] for t < k)`` for ``i < n``: windows of 2, 3
    or 5 cells in one loop (each tap read once, the result written once: a run per tap wrote it
    k times), others a run per tap."""
    a, b, g = np.uint64(d0), np.uint64(s0), np.uint64(gap)
    if k == 3:
        for i in range(n):
            u = b + np.uint64(i)
            dst[a + np.uint64(i)] = _max(_max(src[u], src[u + g]), src[u + g + g])
    elif k == 2:
        for i in range(n):
            u = b + np.uint64(i)
            dst[a + np.uint64(i)] = _max(src[u], src[u + g])
    elif k == 5:
        for i in range(n):
            u = b + np.uint64(i)
            m = _max(_max(src[u], src[u + g]), src[u + g + g])
            u += g + g + g
            dst[a + np.uint64(i)] = _max(m, _max(src[u], src[u + g]))
    else:
        for i in range(n):
            dst[a + np.uint64(i)] = src[b + np.uint64(i)]
        for t in range(1, k):
            bt = b + np.uint64(t) * g
            for i in range(n):
                u = np.uint64(i)
                dst[a + u] = _max(dst[a + u], src[bt + u])


#: cells of planes :func:`max_pool_same` takes at a time (its three arrays' blocks stay in L2:
#: one block of all 192 planes of 28 x 28 went to L3 and back once per window row and column)
SAME_BLOCK = 8192


@jit()
def max_pool_same(x, y, kh, kw, pt, pl, p0, p1):  # pragma: no cover - compiled
    """Window maxima at stride 1 (see :func:`_same_block`) over planes ``p0:p1``,
    :data:`SAME_BLOCK` cells of planes at a time."""
    plane = x.shape[1] * x.shape[2]
    step = max(1, SAME_BLOCK // max(plane, 1))
    vb = np.empty(min(step, max(p1 - p0, 0)) * plane, x.dtype)
    for b in range(p0, p1, step):
        _same_block(x, y, kh, kw, pt, pl, b, min(b + step, p1), vb)


@jit(inline="always")
def _same_block(x, y, kh, kw, pt, pl, p0, p1, vb):  # pragma: no cover - compiled
    """``y[p]`` = the maxima of the ``kh`` x ``kw`` windows of ``x[p]`` (planes ``p0:p1`` of
    (planes, H, W), C-contiguous) at stride 1, dilation 1, starting ``pt`` rows and ``pl``
    columns before each output cell, with as many output as input rows and columns (``y`` the
    shape of ``x``; cells outside the plane take no part). The block's planes as one flat run
    per window row (:func:`_window_run`: each cell the maximum of the cells ``w`` apart), then
    one per window column over the flat rows; the rows whose windows overhang their plane's top
    or bottom are redone row by row, and the columns whose windows overhang their rows' ends
    column by column down every row. Per plane, the 7 x 7 maps of an Inception's last blocks
    took longer in loop set-up than in comparisons."""
    h, w = x.shape[1], x.shape[2]
    plane = h * w
    low = x.dtype.type(-np.inf)
    xf, yf = x.reshape(x.size), y.reshape(y.size)
    a0, a1 = p0 * plane, p1 * plane  # vb: the rows' maxima of planes p0:p1, flat
    # rows: every cell from the window rows above and below it over the flat planes
    cells = (a1 - a0) - (kh - 1) * w
    if cells > 0:
        _window_run(vb, pt * w, xf, a0, cells, w, kh)
    bottom = kh - 1 - pt  # rows at a plane's bottom whose windows overhang it
    for p in range(p0, p1):
        for r in range(h):
            if pt <= r < h - bottom:
                continue
            lo, hi = max(r - pt, 0), min(r - pt + kh, h)
            at = (p - p0) * plane + r * w
            if hi <= lo:
                for i in range(w):
                    vb[at + i] = low
                continue
            _window_run(vb, at, xf, p * plane + lo * w, w, w, hi - lo)
    # columns: every cell from the window columns left and right of it over the flat rows
    cells = (a1 - a0) - (kw - 1)
    if cells > 0:
        _window_run(yf, a0 + pl, vb, 0, cells, 1, kw)
    # the columns whose windows overhang their rows' ends, column by column down every row
    right = kw - 1 - pl
    rows = (a1 - a0) // w
    for q in range(w):
        if pl <= q < w - right:
            continue
        c0, c1 = max(q - pl, 0), min(q - pl + kw, w)
        if c1 <= c0:
            for r in range(rows):
                yf[a0 + r * w + q] = low
            continue
        _copy_run(yf, a0 + q, vb, c0, rows, w)
        for c in range(c0 + 1, c1):
            _max_run(yf, a0 + q, vb, c, rows, w)


@jit()
def max_pool_rows(x, y, kh, kw, sh, sw, pt, pl, p0, p1):  # pragma: no cover - compiled
    """``y[p]`` = the maxima of the ``kh`` x ``kw`` windows of ``x[p]`` for planes ``p0:p1``
    (``x`` (planes, H, W), ``y`` (planes, OH, OW), C-contiguous) at strides ``sh`` x ``sw``,
    dilation 1, output cell (i, j)'s window starting at row ``i * sh - pt`` and column ``j * sw
    - pl``; cells outside the plane take no part (a window wholly outside is -inf). Per output
    row, the window rows' maxima go to a buffer holding ``pl`` cells of -inf before the row
    and -inf after it (one contiguous pass, :func:`_window_run` for three rows), then each
    output cell takes the maximum of its window's cells of that buffer."""
    h, w = x.shape[1], x.shape[2]
    oh, ow = y.shape[1], y.shape[2]
    low = x.dtype.type(-np.inf)
    v = np.empty(max((ow - 1) * sw + kw, pl + w) + PAIR_SLACK, x.dtype)
    for i in range(v.size):
        v[i] = low
    xf, yf = x.reshape(x.size), y.reshape(y.size)
    q, ww = np.uint64(pl), np.uint64(w)
    for p in range(p0, p1):
        for i in range(oh):
            r0 = i * sh - pt
            lo, hi = max(r0, 0), min(r0 + kh, h)
            src = x.ctypes.data + (p * h * w + lo * w) * x.itemsize
            if hi <= lo:
                for c in range(w):
                    v[q + np.uint64(c)] = low
            elif hi - lo == 3:
                rows3_max_cells(v.ctypes.data + pl * v.itemsize, src, w, w, low)
            elif hi - lo == 2:
                rows2_max_cells(v.ctypes.data + pl * v.itemsize, src, w, w, low)
            else:
                a = np.uint64(p * h * w + lo * w)
                _copy_run(v, pl, xf, a, w, 1)
                for r in range(1, hi - lo):
                    _max_run(v, pl, xf, a + np.uint64(r) * ww, w, 1)
            o = np.uint64((p * oh + i) * ow)
            if sw == 2 and (kw == 3 or kw == 2):  # the row's outputs in vectors
                dst = yf.ctypes.data + (p * oh + i) * ow * yf.itemsize
                if kw == 3:
                    pair_max3_cells(dst, v.ctypes.data, ow, low)
                else:
                    pair_max2_cells(dst, v.ctypes.data, ow, low)
            else:
                for j in range(ow):
                    c = np.uint64(j * sw)
                    m = v[c]
                    for t in range(1, kw):
                        m = _max(m, v[c + np.uint64(t)])
                    yf[o + np.uint64(j)] = m


def _warm_planes(kernel, *args):
    """``kernel`` compiled (or loaded) for float32 and float64 planes, writable and read-only
    inputs (warmed on one cell, with ``args`` after the two arrays); None where compiled
    kernels are off."""
    fn = None
    for dt in (np.float32, np.float64):
        for writable in (True, False):
            x = np.zeros((1, 1, 1), dt)
            x.flags.writeable = writable
            fn = kernel.warm(x, np.zeros((1, 1, 1), dt), *args)
            if fn is None:
                return None
    return fn


def warm_rows():
    """:func:`max_pool_rows` compiled (or loaded): see :func:`_warm_planes`."""
    return _warm_planes(max_pool_rows, 1, 1, 1, 1, 0, 0, 0, 1)


def warm():
    """:func:`max_pool_same` compiled (or loaded): see :func:`_warm_planes`."""
    return _warm_planes(max_pool_same, 1, 1, 0, 0, 0, 1)
