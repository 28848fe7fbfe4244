"""Convolution kernels: Conv, ConvTranspose, ConvInteger, QLinearConv, DeformConv.

A convolution is planned once per node and input shape (:func:`_make_plan`, cached in the kernel
closure, and for :func:`conv_core`'s callers by node and shape): the geometry, the path and its
layouts are worked out then, and a run is a handful of numpy calls. The paths:

- float32 1x1 without padding, one group or groups of 4 channels or more: compiled register
  tiles of 4 output channels (of one group) by 64 cells reading the input in place, the bias,
  residual and activation applied as they write (:class:`_PointwisePlan`), one group channels
  last below 96 cells (:class:`_ChannelsLastPlan`);
- other 1x1 without padding: a GEMM over the channel axis, (M, C) x (C, OH*OW), reading the
  input in place (strides take every s-th cell first, one strided copy); grouped ones (float64,
  groups of fewer channels) one stacked matmul; one weight per channel (a BatchNormalization
  turned convolution) one broadcast product;
- float32 dense windows of enough rows and output channels (:func:`_channels_last_conv_pays`):
  channels last as an implicit GEMM, tiles of 8 cells by 32 output channels summed in registers
  over a table of offsets into the zero-padded input (:class:`_ChannelsLastPlan`), where
  Winograd does not take the layer;
- depthwise layers, groups of very few input channels and dense layers below 128 channels: the
  compiled direct kernels of :mod:`._conv_jit` (:class:`_DirectPlan`: each tap one contiguous run
  over blocks of output rows of the padded input's stride-phase planes, a dense layer's output
  channels eight at a time, :func:`_dense_direct_pays`; :class:`_DepthwiseNHWCPlan`, channels
  last, for output rows of at most 8 cells);
- larger 2-D convolutions: one GEMM per kernel tap, all accumulating into the output, each
  reading a window of the flat padded input in place (:class:`_TapsPlan`, through numpy's BLAS
  itself: :mod:`._blas`), or Winograd F(2x2, 3x3) where it pays;
- every other 2-D convolution (depthwise where compiled kernels are off, grouped, small dense ones)
  and 1-D ones (a 2-D convolution over one row): im2col on the flat layout of the stride phases
  of the padded input (:class:`_Phases`, filled by :class:`_Fill`), each tap one contiguous copy
  into the column matrix, one stacked matmul per chunk of groups, and one pass that drops the
  layout's junk columns and adds the bias (:class:`_ColumnsPlan`);
- anything else (3-D, cropping pads): im2col from a window view of the padded input.

FusedConv's residual and activation (:func:`conv_core`'s ``z`` and ``act``) are applied in place on
the output, chunk by chunk while it is in cache where the plan makes it in chunks.
ConvTranspose is the adjoint: one batched matmul, then a scatter-add per kernel offset (not per
pixel). float16 and bfloat16 are computed in float32 (cast while the input is copied into the
padded layout where the path copies it anyway), float64 in float64; the integer ops accumulate in
float64 (exact for any realistic kernel size) and round to int32.

The window arithmetic (auto_pad, pads, output sizes, ConvTranspose's output_shape) and the
checks of the attributes are ONNX's, shared with every provider (``ort_core.ops``); the padding
helpers (:func:`window_geometry`, :func:`pad_to`, :func:`kernel_view`) are shared with the pooling
kernels.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
import weakref
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ort_core import ops
from ort_core.errors import InvalidArgument
from ort_core.provider import FLOAT_TYPES

from .. import _threads
from .._jit import available as jit_available
from . import _blas, _conv_jit, _quant_jit
from ._registry import builder
from ._rows import LONG_ROW, per_row
from .quantization import VNNI_SPLIT_WORK

INT8_TYPES = frozenset(map(np.dtype, (np.int8, np.uint8)))


_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def compute_dtype(dt: np.dtype) -> np.dtype:
    """float64 stays float64; every other float type is computed in float32."""
    return _F64 if dt == _F64 else _F32


# -- geometry shared with pooling ------------------------------------------------------------
def window_geometry(
    in_shape: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int] | None,
    auto_pad: str = "NOTSET",
    ceil_mode: bool = False,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], list[int]]:
    """Output size, leading pads, trailing pads (:func:`ort_core.ops.window_geometry`) and
    trailing extent of a sliding window.

    The trailing extent is the trailing padding plus the cells past it that ceil_mode windows
    overhang (pooling treats those as absent, unlike padding).
    """
    out, begin, end = ops.window_geometry(
        in_shape, kernel, strides, dilations, pads, auto_pad, ceil_mode
    )
    extent = [
        max(e, ops.window_reach(size, o, k, s, d, b))
        for e, o, s, k, d, size, b in zip(
            end, out, strides, kernel, dilations, in_shape, begin, strict=True
        )
    ]
    return out, begin, end, extent


def pad_to(x: np.ndarray, begin: Sequence[int], end: Sequence[int], value=0) -> np.ndarray:
    """Pad (or crop, for negative amounts) the trailing ``len(begin)`` axes of ``x``."""
    if not any(begin) and not any(end):
        return x
    lead = x.ndim - len(begin)
    shape = list(x.shape[:lead])
    dst, src = [slice(None)] * lead, [slice(None)] * lead
    for i, (b, e) in enumerate(zip(begin, end, strict=True)):
        size = x.shape[lead + i]
        new = max(size + b + e, 0)
        shape.append(new)
        lo, hi = max(-b, 0), min(size, new - b)
        src.append(slice(lo, max(hi, lo)))
        dst.append(slice(lo + b, lo + b + max(hi - lo, 0)))
    out = np.empty(shape, dtype=x.dtype)
    out[tuple(dst)] = x[tuple(src)]
    # fill only the border: the slabs before and after the copied block on each padded axis
    for i, d in enumerate(dst[lead:]):
        axis = lead + i
        head = (slice(None),) * axis
        if d.start > 0:
            out[(*head, slice(0, d.start))] = value
        if d.stop < shape[axis]:
            out[(*head, slice(d.stop, None))] = value
    return out


def kernel_view(
    xp: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out: Sequence[int],
    kernel_first: bool = True,
) -> np.ndarray:
    """Read-only view (N, C, *kernel, *out) (or (N, C, *out, *kernel)) of the windows of ``xp``."""
    lead = xp.ndim - len(kernel)
    st = xp.strides[lead:]
    k_dims = list(kernel), [s * d for s, d in zip(st, dilations, strict=True)]
    o_dims = list(out), [s * t for s, t in zip(st, strides, strict=True)]
    first, second = (k_dims, o_dims) if kernel_first else (o_dims, k_dims)
    shape = (*xp.shape[:lead], *first[0], *second[0])
    strides_ = (*xp.strides[:lead], *first[1], *second[1])
    return as_strided(xp, shape, strides_, writeable=False)


def offset_slices(offset: Sequence[int], dilations, strides, out) -> tuple[slice, ...]:
    """Slices of the padded input read by kernel position ``offset`` for every output cell."""
    return tuple(
        slice(k * d, k * d + (o - 1) * s + 1, s)
        for k, d, s, o in zip(offset, dilations, strides, out, strict=True)
    )


def conv_check(weight: int = 1, transpose: bool = False):
    """Partition-time ``check=`` of a Conv-family node whose weight is input ``weight``: the
    spec's window and channel rules (:func:`ort_core.ops.conv_reason`)."""

    def check(info) -> str | None:
        return ops.conv_reason(
            info.attrs, info.input_shape(0), info.input_shape(weight), transpose=transpose
        )

    return check


def resolve(window: ops.Window, nd: int, w_spatial: Sequence[int]):
    """(kernel, strides, dilations) of ``window`` for ``nd`` spatial axes, the kernel from the
    weight where ``kernel_shape`` is absent."""
    w = window.resolve(nd, w_spatial)
    return w.kernel_shape, w.strides, w.dilations


# -- the convolution engine --------------------------------------------------------------------
def pack_weights(w: np.ndarray, group: int, dtype: np.dtype) -> np.ndarray:
    """(M, C/g, *k) weights as (g, M/g, C/g*K) matrices in ``dtype``."""
    m = w.shape[0]
    return np.ascontiguousarray(w.reshape(group, m // group, -1), dtype=dtype)


class _DerivedWeights:
    """Weights in another layout, derived once per packed weight array and kept while that array
    lives (packed constants live as long as their kernel; per-run packings die after the run and
    take their entry with them). Keyed by identity with a weak reference, bounded and locked."""

    def __init__(self, limit: int = 256) -> None:
        self._lock = threading.RLock()  # a weakref callback may fire while it is held
        self._items: dict[int, tuple[weakref.ref, np.ndarray]] = {}
        self._limit = limit

    def get(self, w: np.ndarray, derive) -> np.ndarray:
        key = id(w)
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and hit[0]() is w:
            return hit[1]
        value = derive(w)
        try:
            ref = weakref.ref(w, lambda _, key=key: self._drop(key))
        except TypeError:
            return value
        with self._lock:
            if len(self._items) < self._limit:
                self._items[key] = (ref, value)
        return value

    def _drop(self, key: int) -> None:
        with self._lock:
            self._items.pop(key, None)


_TAP_MAJOR = _DerivedWeights()


def _tap_major(wmat: np.ndarray, taps: int) -> np.ndarray:
    """(1, M, C*K) packed weights as K contiguous (M, C) matrices, one per kernel tap."""
    m, ck = wmat.shape[1:]
    return _TAP_MAJOR.get(
        wmat,
        lambda w: np.ascontiguousarray(w.reshape(m, ck // taps, taps).transpose(2, 0, 1)),
    )


_TC_MAJOR = _DerivedWeights()


def _tc_major(wmat: np.ndarray, taps: int) -> np.ndarray:
    """(1, M, C*K) packed weights as one (M, K*C) matrix, tap-major (the order of the
    tap-major column matrix of :func:`_phase_columns`)."""
    m, ck = wmat.shape[1:]
    return _TC_MAJOR.get(
        wmat,
        lambda w: np.ascontiguousarray(w.reshape(m, ck // taps, taps).transpose(0, 2, 1)).reshape(
            m, ck
        ),
    )


class _Phases:
    """The flat layout for a strided 2-D window: the zero-padded image split into its stride
    phases (plane (a, b) holds the padded rows a, a+sh, ... and columns b, b+sw, ...), each laid
    flat with rows of ``wq`` cells. Kernel tap (i, j) reads, for every output cell at once, one
    contiguous slice ``[off, off + span)`` of one plane; each output row carries ``wq - OW`` junk
    columns, dropped at the end. Stride 1 is a single plane: the padded image, its rows only
    ``max(left pad, right pad)`` cells apart (a window overhanging row r's left edge reads the
    zeros after row r-1), so a 3x3 "same" convolution computes one junk column per row, not
    two."""

    __slots__ = ("planes", "taps", "wq", "span", "strides", "hq", "length")

    def __init__(self, x_shape, kernel, strides, dilations, out, begin, end) -> None:
        sh, sw = strides
        hp, wp = x_shape[-2] + begin[0] + end[0], x_shape[-1] + begin[1] + end[1]
        if (sh, sw) == (1, 1):
            # rows share their padding: the cells a window overhangs on the left of row r are
            # the gap after row r-1, so a gap as wide as the wider side pad is enough
            self.wq = max(x_shape[-1] + max(begin[1], end[1]), out[1])
        else:
            self.wq = -(-wp // sw)
        self.span = out[0] * self.wq
        planes: dict[tuple[int, int], int] = {}
        self.taps = []  # (plane index, offset) per tap, row-major over the kernel
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                pi, pj = i * dilations[0], j * dilations[1]
                key = (pi % sh, pj % sw)
                k = planes.setdefault(key, len(planes))
                self.taps.append((k, (pi // sh) * self.wq + pj // sw))
        self.planes = list(planes)
        self.strides = (sh, sw)
        self.hq = -(-hp // sh)
        self.length = max(self.hq * self.wq, max(off for _, off in self.taps) + self.span)

    def fill(self, img: np.ndarray, begin, value=0) -> np.ndarray:
        """(planes, C, L) for one (C, H, W) image, the padding (and every cell outside the
        image) set to ``value``."""
        c, h, w = img.shape
        (sh, sw), hq = self.strides, self.hq
        shape = (len(self.planes), c, self.length)
        out = np.zeros(shape, img.dtype) if value == 0 else np.full(shape, value, img.dtype)
        for k, (a, b) in enumerate(self.planes):
            # padded row a + sh*r is image row a + sh*r - begin[0]: the rows inside the image
            r0 = max(0, -(-(begin[0] - a) // sh))
            r1 = max(r0, -(-(h + begin[0] - a) // sh))
            q0 = max(0, -(-(begin[1] - b) // sw))
            q1 = max(q0, -(-(w + begin[1] - b) // sw))
            if r1 > r0 and q1 > q0:
                grid = out[k, :, : hq * self.wq].reshape(c, hq, self.wq)
                grid[:, r0:r1, q0:q1] = img[
                    :,
                    a + sh * r0 - begin[0] : a + sh * (r1 - 1) - begin[0] + 1 : sh,
                    b + sw * q0 - begin[1] : b + sw * (q1 - 1) - begin[1] + 1 : sw,
                ]
        return out


#: bytes a row block of :class:`_TapsPlan` works on: its accumulator and the input rows its taps
#: read. Twice the benchmark machine's L2 cache: narrower blocks make narrower GEMMs, which
#: OpenBLAS runs less efficiently (measured interleaved against the whole-image accumulator: at
#: 512 KB the one-thread runs of 14 x 14 to 56 x 56 layers were 10-15% slower; at 2 MB within
#: noise, and 64 x 224 x 224 layers, whose accumulator is 13 MB, faster)
BLOCK_BYTES = 2 << 20


def _row_blocks(rows: int, row_bytes: int) -> list[tuple[int, int]]:
    """``range(rows)`` cut into blocks of about :data:`BLOCK_BYTES` (``row_bytes`` each row), and
    into at least one block per thread of the run where there are rows enough."""
    per = max(1, BLOCK_BYTES // max(row_bytes, 1))
    want = _threads.threads()
    if rows // per < want:
        per = max(1, -(-rows // want))
    return [(r, min(rows, r + per)) for r in range(0, rows, per)]


def _block_epilogue(dst, acc, ow: int, bias, z, act) -> None:
    """FusedConv's epilogue on one row block while it is in cache: ``acc`` (M, R, Wq) contiguous
    scratch gets the bias, the residual ``z`` (M, R, OW) and the activation (over whole rows, the
    junk columns too: contiguous, so compiled), then its valid cells go to ``dst`` (M, R, OW)."""
    if bias is not None:
        flat = acc.reshape(acc.shape[0], -1)
        np.add(flat, bias.reshape(-1, 1), out=flat)
    if z is not None:
        valid = acc[..., :ow]
        np.add(valid, z, out=valid)
    if act is not None:
        r = act(acc)
        if r is not acc:
            acc = r
    np.copyto(dst, acc[..., :ow] if acc.shape[-1] != ow else acc)


def _by_row_blocks(y, wq: int, row_bytes: int, aux: int, cost: float, image, bias, z, act):
    """Fill ``y`` (N, M, OH, OW) a block of output rows at a time (:func:`_row_blocks`, about
    :data:`BLOCK_BYTES` each at ``row_bytes`` a row), the blocks shared among the run's threads
    (``cost``: the layer's multiply-adds). ``image(b)`` gives image b's
    ``product(r0, r1, acc, scratch)``, which writes output rows r0..r1 as an (M, rows * Wq)
    accumulator, ``wq - OW`` junk cells a row (``scratch``: ``aux`` elements a cell, the
    thread's own); FusedConv's epilogue follows on the block while it is in cache
    (:func:`_block_epilogue`)."""
    n, m, oh, ow = y.shape
    blocks = _row_blocks(oh, row_bytes)
    most = max(r1 - r0 for r0, r1 in blocks) * wq
    for b in range(n):
        product, zb = image(b), None if z is None else z[b]

        def rows(lo: int, hi: int, product=product, b=b, zb=zb) -> None:
            acc_buf, scratch = np.empty(m * most, y.dtype), np.empty(aux * most, y.dtype)
            for r0, r1 in blocks[lo:hi]:
                acc = acc_buf[: m * (r1 - r0) * wq].reshape(m, (r1 - r0) * wq)
                product(r0, r1, acc, scratch)
                _block_epilogue(
                    y[b, :, r0:r1], acc.reshape(m, r1 - r0, wq), ow, bias,
                    None if zb is None else zb[:, r0:r1], act,
                )  # fmt: skip

        _threads.split(len(blocks), rows, cost)
    return y


class _TapsPlan:
    """2-D convolution (any stride, group 1) as one GEMM per kernel tap, all accumulating into one
    accumulator: tap (i, j) multiplies its (M, C) weight slice with one contiguous window of a
    stride phase of the padded input (:class:`_Phases`), read in place through the GEMM's row
    stride; no column matrix and no temporary per tap. Needs the direct BLAS GEMM (:mod:`._blas`)
    for ``beta`` and the row stride.

    The output is made in blocks of rows (:func:`_by_row_blocks`): each block's accumulator and
    the input rows its taps read stay in the core's cache through all the taps and the epilogue,
    where a whole-image accumulator (64 x 224 x 226 cells: 13 MB) went to memory and back once
    per tap; and the blocks, not each tap's GEMM, are shared among the run's threads, one
    hand-off per layer instead of one per tap. Interleaved against the whole-image version at
    two threads: VGG-19's 64 -> 64 layer at 224 x 224 53.8 -> 46.6 ms, 256 -> 256 on 28 x 28
    3.6 -> 3.2 ms (best runs)."""

    __slots__ = ("ph", "m", "c", "out", "begin", "taps", "dtype")

    def __init__(self, x_shape, m, ph: _Phases, out, begin, dtype) -> None:
        self.ph, self.m, self.c, self.out, self.begin = ph, m, x_shape[1], out, begin
        self.taps = len(ph.taps)
        self.dtype = dtype

    def __call__(self, x, wmat, bias=None, z=None, act=None) -> np.ndarray:
        ph, m, c, dtype = self.ph, self.m, self.c, self.dtype
        x = x.astype(dtype, copy=False)
        n = x.shape[0]
        oh, ow = self.out
        if z is not None and z.shape != (n, m, oh, ow):  # a broadcast residual: at the end
            return _finish(self(x, wmat, bias), z, act)
        wq = ph.wq
        gemm = _blas.find_gemm(dtype).direct
        taps = _tap_major(wmat, self.taps)

        def image(b: int):
            planes = ph.fill(x[b], self.begin)

            def product(r0: int, r1: int, acc, _) -> None:
                start, cols = r0 * wq, (r1 - r0) * wq
                for t, (k, off) in enumerate(ph.taps):
                    gemm(taps[t], planes[k, :, off + start : off + start + cols], acc,
                         1.0 if t else 0.0)  # fmt: skip

            return product

        y = np.empty((n, m, oh, ow), dtype)
        row_bytes = (m + c * len(ph.planes)) * wq * dtype.itemsize
        bias3 = None if bias is None else bias.reshape(m, 1, 1)
        cost = m * c * self.taps * oh * wq
        return _by_row_blocks(y, wq, row_bytes, 0, cost, image, bias3, z, act)


# -- Winograd F(2x2, 3x3) ----------------------------------------------------------------------
# Lavin & Gray's minimal filtering: each 2x2 output tile of a 3x3 stride-1 convolution from a 4x4
# input tile with 16 multiplications per channel pair instead of 36. Input tiles are transformed
# by B^T d B, weights by G g G^T (once per weight array), products summed over channels as 16
# GEMMs, and the results transformed back by A^T m A.
_WINO_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_WINOGRAD = _DerivedWeights()


def _winograd_weights(wmat: np.ndarray, m: int) -> np.ndarray:
    """(1, M, C*9) packed 3x3 weights as the 16 transformed (M, C) matrices G g G^T (computed in
    float64)."""

    def derive(w):
        g = w.reshape(m, -1, 3, 3).astype(np.float64)
        u = np.einsum("ak,mckl,bl->abmc", _WINO_G, g, _WINO_G)
        return np.ascontiguousarray(u.reshape(16, m, -1), dtype=w.dtype)

    return _WINOGRAD.get(wmat, derive)


def _winograd_pays(c, m, kernel, strides, dilations, out) -> bool:
    """Winograd F(2x2, 3x3) does 16/36 of the multiply-adds of a 3x3 stride-1 convolution but
    adds transforms whose cost grows with C + M where the GEMM's grows with C * M, and its 16
    GEMMs are a quarter as wide. Measured layer by layer on one thread (interleaved A/B against
    the per-tap GEMMs and im2col, best runs): 0.75x the taps' time for 256 -> 256 channels on
    14 x 14 maps, 0.92x for 128 on 28 x 28, 0.76x for 128 on 56 x 56, 0.84x for 96 on 28 x 28;
    a tie or slower with 64 channels (0.98x on 56 x 56, 1.06x on 112 x 112) and on maps under
    14 wide (512 on 7 x 7: 1.37x). Inside whole models (colder caches) the 96-127 channel layers
    gained nothing, so the rule starts at 128.

    On two threads it pays as well since its 16 products go to a spinning pool (GEMM pieces
    without the GIL; through the queue's hand-off they split worse than the taps' row blocks):
    single layers, Winograd against the taps or im2col, two threads: 128 on 28 x 28 1.22
    against 1.74 ms, 256 on 14 x 14 1.24 against 1.61, 256 on 56 x 56 13.0 against 23.2, 512 on
    28 x 28 12.7 against 20.1, 512 on 14 x 14 7.2 against 7.0; whole models, interleaved:
    VGG-19 0.71x, ResNet-50, DenseNet-121, Inception and ZFNet within noise. Without a
    spinning pool (numba absent) more threads take the taps or im2col, as before."""
    if list(kernel) != [3, 3] or list(strides) != [1, 1] or list(dilations) != [1, 1]:
        return False
    spins = _threads.threads() == 1 or _threads.spinning()
    return spins and min(c, m) >= 128 and out[1] >= 14


def _conv_winograd(x, wmat, m, out, begin, bias, gemm) -> np.ndarray:
    """3x3 stride-1 convolution by Winograd F(2x2, 3x3) on the stride-2 phases of the padded
    input: element (k, l) of every 4x4 input tile, for all tiles and channels at once, is one
    contiguous slice of a phase plane (:class:`_Phases` with a 4x4 window of stride 2), so both
    transforms are whole-array passes; the 16 GEMMs read the transformed tiles in place. Where
    compiled kernels are on, both transforms are one compiled pass each instead
    (:func:`_winograd_compiled`, the same bits). Numpy's passes run on the calling thread
    (memory-bound, see :mod:`ort_cpu._threads`); the 16 products are shared among the run's
    threads by product, as GEMM pieces on a spinning pool (:func:`._blas.find_gemm_batch`).
    Python pieces calling the GEMM, and numpy's output transform split by channels as Python
    pieces, made two threads only 1.2x faster than one (in-process
    A/B at two threads: 128 on 28 x 28 1.26 -> 1.11 ms, 256 on 14 x 14 1.51 -> 1.07 ms,
    Inception-v2 43.6 -> 38.3 ms; the same bits)."""
    n, c = x.shape[:2]
    oh, ow = out
    th, tw = -(-oh // 2), -(-ow // 2)  # output tiles
    # the last tiles read padded row 2*th + 1 and column 2*tw + 1: the convolution's own end
    # padding, plus one row (column) of zeros where the output height (width) is odd
    h, w = x.shape[2:]
    end = (max(0, 2 * th + 2 - h - begin[0]), max(0, 2 * tw + 2 - w - begin[1]))
    ph = cached_phases(x.shape, (4, 4), (2, 2), (1, 1), (th, tw), tuple(begin), end)
    length, span, wq = ph.length, ph.span, ph.wq
    total = (c - 1) * length + span
    u = _winograd_weights(wmat, m)
    y = np.empty((n, m, oh, ow), dtype=x.dtype)
    even = oh % 2 == 0 and ow % 2 == 0
    call = gemm.direct
    batch = _blas.find_gemm_batch(x.dtype) if _threads.spinning() else None
    compiled = _winograd_kernels()
    if compiled is not None:
        return _winograd_compiled(x, u, m, y, ph, begin, compiled, bias, batch, call)
    for b in range(n):
        planes = ph.fill(x[b], begin).reshape(len(ph.planes), -1)
        d = [[planes[k][o : o + total] for k, o in ph.taps[4 * r : 4 * r + 4]] for r in range(4)]
        # B^T d: combine tile rows (per tile column l), then d B: combine tile columns
        rows = [
            [d[0][i] - d[2][i], d[1][i] + d[2][i], d[2][i] - d[1][i], d[1][i] - d[3][i]]
            for i in range(4)
        ]
        v = np.empty((16, c, length), dtype=x.dtype)
        vf = v.reshape(16, -1)
        for k in range(4):
            r = [rows[i][k] for i in range(4)]
            np.subtract(r[0], r[2], out=vf[4 * k][:total])
            np.add(r[1], r[2], out=vf[4 * k + 1][:total])
            np.subtract(r[2], r[1], out=vf[4 * k + 2][:total])
            np.subtract(r[1], r[3], out=vf[4 * k + 3][:total])
        del d, rows
        vs = v[:, :, :span]
        prod = _winograd_products(u, vs, batch, call)
        yb = y[b]
        if bias is not None:  # element (1, 1) reaches all four outputs once
            prod[5] += bias.reshape(m, 1)

        def channels(m0: int, m1: int, prod=prod, yb=yb) -> None:
            k = m1 - m0
            pf = [prod[i, m0:m1].reshape(-1) for i in range(16)]  # contiguous blocks of rows
            # A^T m A: the two output rows of each tile, then their two columns
            tile = (
                yb[m0:m1].reshape(k, th, 2, tw, 2) if even else np.empty((k, th, 2, tw, 2), x.dtype)
            )
            for r, a in enumerate(
                (
                    [pf[i] + pf[4 + i] + pf[8 + i] for i in range(4)],
                    [pf[4 + i] - pf[8 + i] - pf[12 + i] for i in range(4)],
                )
            ):
                tile[:, :, r, :, 0] = (a[0] + a[1] + a[2]).reshape(k, th, wq)[:, :, :tw]
                tile[:, :, r, :, 1] = (a[1] - a[2] - a[3]).reshape(k, th, wq)[:, :, :tw]
            if not even:
                yb[m0:m1] = tile.reshape(k, 2 * th, 2 * tw)[:, :oh, :ow]

        # the output transform's work is its 16 * M * span elements, not the products' MACs:
        # split only where that pays (never on one image here: Python pieces of numpy passes
        # on two threads took longer than on one, 128 on 28 x 28 170 -> 308 us)
        _threads.split(m, channels, 16 * m * span, 8)
    return y


def _winograd_products(u, v, batch, call) -> np.ndarray:
    """Winograd's 16 products ``u[k] @ v[k]`` (16, M, span): GEMM pieces on a spinning pool
    without the GIL (``batch``), else the direct GEMM ``call`` shared among the run's threads
    by product."""
    m, c, span = u.shape[1], v.shape[1], v.shape[2]
    prod = np.empty((16, m, span), dtype=v.dtype)
    if batch is not None:
        batch(u, v, prod, 0.0)
        return prod

    def products(k0: int, k1: int) -> None:
        for k in range(k0, k1):
            call(u[k], v[k], prod[k], 0.0)

    _threads.split(16, products, 16 * m * c * span)
    return prod


#: elements of transform work (16 per tile and channel) from which the compiled Winograd
#: transforms are shared among the run's threads, by channels
WINOGRAD_SPLIT_CELLS = 1 << 20
_WINOGRAD_KERNELS: dict = {}  # "fns": the compiled transforms, once loaded


def _winograd_kernels():
    """(:func:`._conv_jit.winograd_input`, ``winograd_output``) compiled, loaded once (a warm
    call runs each kernel on tiny arrays); None where compiled kernels are off."""
    if not jit_available():
        return None
    fns = _WINOGRAD_KERNELS.get("fns", False)
    if fns is False:
        fns = _WINOGRAD_KERNELS["fns"] = _conv_jit.warm_winograd()
    return fns


def _winograd_compiled(x, u, m, y, ph: _Phases, begin, compiled, bias, batch, call) -> np.ndarray:
    """:func:`_conv_winograd` with both transforms compiled (:func:`._conv_jit.winograd_input`
    and ``winograd_output``, LLVM vector code): each one pass, where numpy made 32 passes over
    the phase planes' 16 windows and 24 over the products, and four strided writes of the
    output; shared among the run's threads by channels from :data:`WINOGRAD_SPLIT_CELLS`. The
    same steps in the same order: the same bits. One layer, one thread, a Zen 3, ms, numpy's
    transforms -> compiled: 128 -> 128 on 112 x 112 46.1 -> 32.0, on 56 x 56 13.0 -> 9.7, on
    28 x 28 2.14 -> 1.82; 256 -> 256 on 56 x 56 25.3 -> 23.0; 512 -> 512 on 14 x 14 8.1 ->
    7.6."""
    fin, fout = compiled
    n, c = x.shape[:2]
    span, wq = ph.span, ph.wq
    at = np.array(ph.taps, np.int64)
    b1 = np.zeros(0, y.dtype) if bias is None else np.ascontiguousarray(bias, y.dtype)
    shared = 16 * c * span >= WINOGRAD_SPLIT_CELLS
    for b in range(n):
        planes = ph.fill(x[b], begin)
        v = np.empty((16, c, span), x.dtype)

        def inputs(lo: int, hi: int, planes=planes, v=v) -> None:
            fin(planes, at, v, lo, hi)

        if shared:
            _threads.split(c, inputs, _threads.MIN_PARALLEL_WORK, 4)
        else:
            inputs(0, c)
        prod = _winograd_products(u, v, batch, call)

        def outputs(lo: int, hi: int, prod=prod, yb=y[b]) -> None:
            fout(prod, b1, yb, lo, hi, wq)

        if shared:
            _threads.split(m, outputs, _threads.MIN_PARALLEL_WORK, 4)
        else:
            outputs(0, m)
    return y


def _flat_layout_ok(nd, out, begin, end) -> bool:
    """Whether the flat layout of :class:`_Phases` applies: 2-D, no cropping pads, a non-empty
    output."""
    return nd == 2 and all(out) and min(begin + end) >= 0


def _taps_pay(c, m, kernel, out, ph: _Phases) -> bool:
    """Whether :class:`_TapsPlan` beats im2col + one GEMM. It skips writing (and reading back) the
    K-fold column matrix, but runs K GEMMs whose inner dimension is C instead of K*C, about 10%
    slower in all, and computes ``wq - OW`` junk columns per output row. Measured (2 cores,
    OpenBLAS, interleaved A/B against im2col):

    - at most half as many outputs as inputs (DenseNet's 128 -> 32): the column matrix costs more
      than the GEMM, so taps win 1.3-4x whatever the junk (a 7x7 map computes 8 columns for 7);
    - otherwise 5-20% faster on maps 14 wide and wider, where the junk is at most an eighth of
      the output (3x3 layers of ResNet and Inception, stride 1 or 2), if the GEMMs are deep
      enough: with 32 input channels and four times as many outputs, 32-deep GEMMs lose 25%.
      On 13x13 and smaller maps it is a tie (SqueezeNet's last layers) or a loss (7x7).

    Since the column matrix is copied tap-major, one contiguous copy per tap
    (:func:`_phase_columns`), im2col also beats the taps with 32 input channels and twice as many
    outputs (32 -> 64 on 28x28: 0.47 vs 0.57 ms), so those need 48 input channels too."""
    if math.prod(kernel) == 1 or c < 32:
        return False
    if 2 * m <= c:
        return True
    return c >= 48 and out[1] >= 14 and 8 * ph.wq <= 9 * out[1]


def _phase_columns(
    buf: np.ndarray, ph: _Phases, cols: np.ndarray, rows: slice, tap_major: bool = False
) -> None:
    """The column matrix of the channels ``rows`` of the stride-phase planes ``buf``
    (:class:`_Fill`): tap t of every channel is one contiguous window of one plane, so a tap is
    one copy for all the channels at once, where a window view of the padded input has every
    output row strided (a 7x7 stride-2 stem: 0.62 -> 0.35 ms). The columns keep the layout's
    ``wq - OW`` junk cells per output row (:func:`_emit` drops them).

    ``cols`` is (R, taps, span), or with ``tap_major`` (taps, R, length): there tap t of
    channel r starts at ``r * length`` of ``cols[t]``, the planes' own spacing, so the tap is a
    single contiguous copy of R whole planes (the cells between two channels' windows come
    along, never read), not R copies of one window each: the copy of a small map with many
    channels (576 x 14 x 14) costs a third."""
    span = ph.span
    if tap_major:
        length, r0, r1 = ph.length, rows.start, rows.stop
        size = (r1 - r0) * length
        for t, (k, off) in enumerate(ph.taps):
            cols[t].reshape(-1)[: size - off] = buf[k].reshape(-1)[r0 * length + off : r1 * length]
        return
    for t, (k, off) in enumerate(ph.taps):
        cols[:, t] = buf[k, rows, off : off + span]


#: image rows shorter than this are padded by zeroing the whole plane first (one fill) rather
#: than zeroing the gaps beside every row (two short writes per row: 960 x 7 x 7: 0.12 -> 0.05 ms)
SHORT_ROW = 48


class _Fill:
    """A batch of (C, H, W) images copied into the stride-phase planes of a :class:`_Phases`
    layout, planned once per input shape: per plane, the interior (one strided copy for every
    image and channel, cast to the compute dtype on the way: float16 costs no separate pass) and
    the border to zero (at most four slices: the rows above, the gaps either side of each image
    row, the rows below), so the buffer is a fresh ``np.empty`` that is never cleared whole."""

    __slots__ = ("ph", "steps")

    def __init__(self, ph: _Phases, h: int, w: int, begin) -> None:
        (sh, sw), hq, wq = ph.strides, ph.hq, ph.wq
        self.ph = ph
        self.steps = []
        for a, b in ph.planes:
            # padded row a + sh*r is image row a + sh*r - begin[0]: the rows inside the image
            r0 = max(0, -(-(begin[0] - a) // sh))
            r1 = min(hq, max(r0, -(-(h + begin[0] - a) // sh)))
            q0 = max(0, -(-(begin[1] - b) // sw))
            q1 = min(wq, max(q0, -(-(w + begin[1] - b) // sw)))
            if r1 > r0 and q1 > q0:
                src = (
                    slice(None),
                    slice(a + sh * r0 - begin[0], a + sh * (r1 - 1) - begin[0] + 1, sh),
                    slice(b + sw * q0 - begin[1], b + sw * (q1 - 1) - begin[1] + 1, sw),
                )
                self.steps.append(((r0, r1, q0, q1), src))
            else:
                self.steps.append((None, None))

    def __call__(self, img: np.ndarray, dtype) -> np.ndarray:
        """(planes, R, length) planes of the (R, H, W) images ``img``."""
        ph = self.ph
        rows, hq, wq, length = img.shape[0], ph.hq, ph.wq, ph.length
        buf = np.empty((len(ph.planes), rows, length), dtype)
        for k, (box, src) in enumerate(self.steps):
            plane = buf[k]
            if box is None or box[3] - box[2] < SHORT_ROW:
                plane.fill(0)  # short rows: one fill costs less than zeroing each row's gaps
                if box is not None:
                    r0, r1, q0, q1 = box
                    plane[:, : hq * wq].reshape(rows, hq, wq)[:, r0:r1, q0:q1] = img[src]
                continue
            r0, r1, q0, q1 = box
            grid = plane[:, : hq * wq].reshape(rows, hq, wq)
            grid[:, r0:r1, q0:q1] = img[src]
            if r0:
                plane[:, : r0 * wq] = 0
            if q0:
                grid[:, r0:r1, :q0] = 0
            if q1 < wq:
                grid[:, r0:r1, q1:] = 0
            if r1 * wq < length:
                plane[:, r1 * wq :] = 0
        return buf


def _emit(dst: np.ndarray, prod: np.ndarray, ow: int, bias: np.ndarray | None) -> None:
    """``dst`` (rows, OH, OW) = the valid cells of ``prod`` (rows, OH, Wq) (+ ``bias``, one value
    per row), ``prod`` being contiguous scratch: the bias is added in place over whole
    channels (long rows), then one copy drops the junk columns (adding on the way out loops over
    OH short rows per channel: 1.2-1.3x slower on 7x7 and 14x14 maps)."""
    if bias is not None:
        flat = prod.reshape(prod.shape[0], -1)  # (rows, OH, Wq): contiguous scratch
        np.add(flat, bias.reshape(-1, 1), out=flat)
    np.copyto(dst, prod[..., :ow] if prod.shape[-1] != ow else prod)


def _finish(y: np.ndarray, z: np.ndarray | None, act) -> np.ndarray:
    """FusedConv's epilogue on (a block of) the output, in place: ``y += z``, then ``act(y)``
    (an activation that computes in place, or returns a new array copied back). It stays on the
    calling thread: a memory-bound pass over an output the previous kernel just wrote in this
    core's cache gains nothing from a second thread (see :mod:`ort_cpu._threads`)."""
    if z is not None:
        np.add(y, z, out=y)
    if act is not None:
        r = act(y)
        if r is not y:
            np.copyto(y, r)
    return y


#: bytes of column matrix per product: the groups (depthwise: channels) are taken a few at a time
COLUMN_CHUNK = 4 << 20
#: bytes of one group's column matrix from which it is made a block of output rows at a time
#: (:meth:`_ColumnsPlan._in_row_blocks`)
COLUMN_BLOCKS_FROM = BLOCK_BYTES


class _ColumnsPlan:
    """2-D convolution as im2col on the flat padded layout, planned once per input shape: the
    input copied once into its stride-phase planes (:class:`_Fill`), each tap one contiguous
    copy into the column matrix (:func:`_phase_columns`), one matmul per image and chunk of
    groups (a stack of (M/g, C/g*K) x (C/g*K, OH*Wq) products, numpy's loop over BLAS, never a
    Python loop per group), and one pass that drops the junk columns (:func:`_emit`, which adds
    the bias), then FusedConv's epilogue on that chunk of the output while it is in cache.

    - One group (small dense convolutions: 16 -> 32 channels on an OCR strip, a 3-channel stem):
      the column matrix tap-major, (K*C, OH*Wq) read in place with the planes' row spacing, and
      the weights reordered to match once (:func:`_tc_major`): one GEMM per image.
    - Depthwise (one input channel per group, any channel multiplier): per channel a
      (multiplier, K) x (K, OH*Wq) product over the tap-major columns, read in place. The
      column matrix is K times the input, so the channels are taken a few at a time
      (:data:`COLUMN_CHUNK` bytes of columns), which keeps it in cache and bounds the memory.
      Measured against a sum of shifted views times per-channel weights (two numpy passes per
      tap), it is as fast for 3x3 stride 1 and 1.3-1.5x faster for stride 2 and 5x5/7x7.
    - Other groups (ShuffleNet, ResNeXt): channel-major columns, one stacked matmul per chunk.
    """

    __slots__ = ("fill", "ph", "c", "h", "w", "m", "g", "out", "dtype", "groups", "row_gemm")

    def __init__(self, x_shape, m, g, kernel, strides, dilations, out, begin, end, dtype) -> None:
        n, c, h, w = x_shape
        self.ph = ph = cached_phases(
            (1, c, h, w), tuple(kernel), tuple(strides), tuple(dilations), out, begin, end
        )
        self.fill = _Fill(ph, h, w, begin)
        self.c, self.h, self.w, self.m, self.g, self.out = c, h, w, m, g, out
        self.dtype = dtype
        per_group = (c // g) * len(ph.taps) * ph.length * dtype.itemsize
        step = max(1, COLUMN_CHUNK // max(per_group, 1))
        self.groups = [(g0, min(g, g0 + step)) for g0 in range(0, g, step)]
        #: one group whose columns outgrow COLUMN_BLOCKS_FROM: the direct GEMM of its row blocks
        self.row_gemm = None
        if g == 1 and len(ph.taps) * c * ph.span * dtype.itemsize > COLUMN_BLOCKS_FROM:
            gemm = _blas.find_gemm(dtype)
            self.row_gemm = None if gemm is None else gemm.direct

    def __call__(self, x, wmat, bias=None, z=None, act=None) -> np.ndarray:
        c, m, g, ph, dtype = self.c, self.m, self.g, self.ph, self.dtype
        n = x.shape[0]
        oh, ow = self.out
        if z is not None and z.shape != (n, m, oh, ow):  # a broadcast residual: at the end
            return _finish(self(x, wmat, bias), z, act)
        taps, span, wq = len(ph.taps), ph.span, ph.wq
        buf = self.fill(x.reshape(n * c, self.h, self.w), dtype)
        y = np.empty((n, m, oh, ow), dtype)
        bias3 = None if bias is None else bias.reshape(m, 1, 1)
        epilogue = z is not None or act is not None
        if self.row_gemm is not None:
            return self._in_row_blocks(buf, wmat, y, bias3, z, act)
        if g == 1:  # (M, taps*C) x (taps*C, OH*Wq) per image, the columns read in place
            wt = _tc_major(wmat, taps)
            cols = np.empty((taps, c, ph.length), dtype)
            flat = cols.reshape(taps * c, ph.length)[:, :span]
            for b in range(n):
                _phase_columns(buf, ph, cols, slice(b * c, (b + 1) * c), True)
                _emit(y[b], _blas.matmul(wt, flat).reshape(m, oh, wq), ow, bias3)
                if epilogue:
                    _finish(y[b], None if z is None else z[b], act)
            return y
        cg, mg = c // g, m // g
        most = max(g1 - g0 for g0, g1 in self.groups)
        prod = np.empty((most, mg, span), dtype)
        if cg == 1:  # depthwise: per channel (multiplier, taps) x (taps, OH*Wq)
            cols = np.empty((taps, most, ph.length), dtype)
        else:
            cols = np.empty((most * cg, taps, span), dtype)
        for b in range(n):
            for g0, g1 in self.groups:
                k = g1 - g0
                pp = prod[:k]
                if cg == 1:
                    cc = cols[:, :k]
                    _phase_columns(buf, ph, cc, slice(b * c + g0, b * c + g1), True)
                    _blas.matmul(wmat[g0:g1], cc[:, :, :span].transpose(1, 0, 2), out=pp)
                else:
                    cc = cols[: k * cg]
                    _phase_columns(buf, ph, cc, slice(b * c + g0 * cg, b * c + g1 * cg))
                    _blas.matmul(wmat[g0:g1], cc.reshape(k, cg * taps, span), out=pp)
                rows = slice(g0 * mg, g1 * mg)
                _emit(
                    y[b, rows], pp.reshape(k * mg, oh, wq), ow,
                    None if bias3 is None else bias3[rows],
                )  # fmt: skip
                if epilogue:
                    _finish(y[b, rows], None if z is None else z[b, rows], act)
        return y

    def _in_row_blocks(self, buf, wmat, y, bias3, z, act) -> np.ndarray:
        """One group whose column matrix outgrows the cache (YOLO's 16 -> 32 stride-2 layer on
        320 x 320: 15 MB): the columns of a block of output rows at a time
        (:func:`_by_row_blocks`), each tap one strided copy of C rows, then one GEMM; the
        whole-image columns went to memory and back."""
        c, m, ph, gemm = self.c, self.m, self.ph, self.row_gemm
        taps, wq = len(ph.taps), ph.wq
        wt = _tc_major(wmat, taps)  # (M, taps*C), tap-major like the columns

        def image(b: int):
            def product(r0: int, r1: int, acc, cols) -> None:
                start, cells = r0 * wq, (r1 - r0) * wq
                block = cols[: taps * c * cells].reshape(taps, c, cells)  # contiguous
                for t, (k, off) in enumerate(ph.taps):
                    block[t] = buf[k, b * c : (b + 1) * c, off + start : off + start + cells]
                gemm(wt, block.reshape(taps * c, cells), acc, 0.0)

            return product

        row_bytes = (taps * c + m) * wq * self.dtype.itemsize
        cost = m * c * taps * self.out[0] * wq
        return _by_row_blocks(y, wq, row_bytes, taps * c, cost, image, bias3, z, act)


def _direct_pays(g: int, cg: int, mg: int, taps: int) -> bool:
    """Whether the compiled direct kernel (:class:`_DirectPlan`) beats im2col + GEMM: depthwise
    layers always (1.5-4x faster than the column matrix, measured on MobileNetV2, ShuffleNetV2
    and the OCR models' 3x3 and 5x5 layers, stride 1 and 2), and dense layers of a few input
    channels into a few outputs (an OCR stem, 3 -> 8 channels: the GEMM has nothing to
    amortize its column matrix over). A 3 -> 32 stem stays a GEMM, and so do grouped layers of
    several input channels and padded 1x1 layers, and one input channel over more than 7 x 7
    taps (an STFT as a Conv1d, 1 -> 258 channels over 256 taps: 0.21 ms direct, 0.05 ms as
    one GEMM of 258 x 256 by the few output cells)."""
    return (cg == 1 and (g > 1 or taps <= 49)) or (
        g == 1 and taps > 1 and cg * taps <= 32 and mg <= 8
    )


def _big_stem(g: int, c: int, m: int, taps: int, out) -> bool:
    """Whether a dense stem of a few input channels (3 -> 16 or 32 at 3 x 3) over a large image
    runs direct: its column matrix (C * taps per output cell) outgrows the caches there, and the
    direct kernel, which never makes it, wins (YOLO's 3 -> 16 at 640 x 640 stride 2: 7.5 ->
    4.7 ms; 3 -> 32: 11.1 -> 8.0 ms). Below 4 MB of columns, or from 64 output channels on (the
    direct kernel's work grows with them: 3 -> 64 at 224 x 224, 1.25 -> 1.78 ms), the GEMM is as
    fast or faster."""
    return _stem_shape(g, c, m, taps) and c * taps * math.prod(out) * 4 >= 4 << 20


def _shared_stem(g: int, c: int, m: int, taps: int) -> bool:
    """Whether a stem of any size runs direct because its output channels will be shared among
    the run's threads as compiled pieces (a spinning pool): the GEMM's column matrix is built on
    one thread, and at two threads the direct kernel wins (3 -> 24 at 224 x 224 stride 2: 0.41
    -> 0.29 ms; 3 -> 32: 0.475 -> 0.37 ms; on one thread the GEMM's 0.44 and 0.51 beat its 0.50
    and 0.64)."""
    return _stem_shape(g, c, m, taps) and _threads.threads() > 1 and _threads.spinning()


def _dense_direct_pays(g: int, c: int, m: int, taps: int) -> bool:
    """Whether a dense layer (one group, more than one tap) that does not run channels last
    (:func:`_channels_last_conv_pays`: float64, stems, few output channels) runs direct: its
    output channels eight at a time (:func:`._taps.block_rows`, each input vector loaded once for eight
    channels' sums in registers, stored straight into the output rows), with nothing built on
    the calling thread, so that its output channels share among the run's threads. Measured
    against im2col + OpenBLAS (and the taps plan) on one layer with a Relu, one thread / two
    threads: 64 -> 64 on 56 x 56 2.43 / 1.24 ms against 2.77 / 1.55; 96 -> 24 on 160 x 160 11.3
    / 7.0 against 14.2 / 8.3; 32 -> 96 on 28 x 28 0.46 / 0.26 against 0.54 / 0.38; 48 -> 192 on
    13 x 13 0.35 / 0.38 against 0.37 / 0.41 (small maps too, since the rows are written from
    the registers). Not from 128 channels on, where Winograd or the GEMM wins (128 -> 256 on 28
    x 28: 5.2 / 2.5 against 4.1 / 2.3; 512 -> 512 on 7 x 7: 6.9 / 3.5 against 3.5 / 1.9; 128
    -> 128 on 28 x 28 ties)."""
    return g == 1 and taps > 1 and min(c, m) < 128


def _pointwise_direct_pays(g: int, c: int, m: int, out) -> bool:
    """Whether a 1x1 layer (stride 1, no pads) that the compiled tiles do not take (float64;
    float32 takes :class:`_PointwisePlan`) runs direct (:func:`._taps.block_rows`) rather than
    as one GEMM: few input channels into as many or more over a large map, where the
    product is as long as writing its output (OpenBLAS packs the whole input for a K of 16)
    and the GEMM path writes the output three times (the bias, the product, the activation).
    One layer with a Clip, one thread / two threads, against the GEMM: 16 -> 96 on 112 x 112
    0.43 / 0.46 ms against 0.58 / 0.62; 24 -> 144 on 56 x 56 0.28 / 0.20 against 0.31 / 0.29;
    32 -> 192 on 28 x 28 0.14 / 0.14 against 0.15 / 0.17; 16 -> 16 on 112 x 112 0.11 / 0.09
    against 0.14 / 0.13. Not into fewer channels (96 -> 24 on 56 x 56: 0.24 against 0.21 at
    one thread; 32 -> 16 on 112 x 112: 0.28 against 0.16 at two) nor on small maps (32 -> 128
    on 14 x 14: 38 against 32 us at two threads).

    And any layer of at most 32 input channels and :data:`SMALL_POINTWISE_WORK` multiply-adds
    (an OCR model's 1x1s on 3 x 12 to 12 x 48 maps, into fewer channels too), where the GEMM
    path's numpy calls (the product, the bias, the activation) cost more than the sums. One
    layer with a Relu, one thread, direct against the GEMM path: 32 -> 16 on 3 x 12 4.0 against
    4.8 us; 32 -> 8 on 6 x 24 5.1 against 5.3; 8 -> 32 on 6 x 24 4.6 against 7.3; 8 -> 24 on
    12 x 48 6.2 against 14.0; 32 -> 32 on 10 x 10 7.7 against 7.9; 16 -> 96 on 14 x 14 11.2
    against 20.4. Not from 40 input channels on (48 -> 16 on 6 x 24: 7.9 against 7.4; 88 -> 16
    on 3 x 12 6.6 against 5.5; 200 -> 32 on 2 x 6 12.7 against 6.1): the planes' copy and the
    short rows' taps grow with the input channels. Nor on maps of fewer than 16 cells (one
    vector), where each block of eight channels writes a mostly masked vector (one cell: 24 ->
    96 5.2 against 3.5 us, 32 -> 128 6.5 against 3.6)."""
    cells = math.prod(out)
    return _pointwise_direct_may(g, c) and (
        (m >= c and cells >= 28 * 28)
        or (c <= 32 and cells >= 16 and m * c * cells <= SMALL_POINTWISE_WORK)
    )


def _pointwise_direct_may(g: int, c: int) -> bool:
    """Whether a 1x1 layer of ``c`` input channels may run direct on some map
    (:func:`_pointwise_direct_pays`; :func:`prewarm` loads the kernel for it)."""
    return g == 1 and c <= 48


#: multiply-adds up to which a 1x1 layer of few input channels runs direct on any map (see
#: :func:`_pointwise_direct_pays`); below :data:`DIRECT_SPLIT_WORK`, so it stays on the calling
#: thread as the GEMM path's small products do
SMALL_POINTWISE_WORK = 1 << 18


#: output cells from which a layer Winograd takes (:func:`_winograd_pays`) stays Winograd
#: rather than channels last (:class:`_ChannelsLastPlan`), one thread, us: 128 -> 128 3x3 on
#: 28 x 28 1849 against 2073, 192 -> 192 on 28 x 28 4390 against 5108, 256 -> 256 on 20 x 20
#: 4141 against 4254, on 16 x 16 2781 against 2733, on 14 x 14 2169 against 2063
WINOGRAD_OVER_CL_CELLS = 256
#: input channels times taps from which a dense window runs channels last: below, a stem's
#: few rows per window leave the tiles' sums short (3 -> 16 3x3 stride 2 over 640 x 640: 1213
#: us direct, 2402 channels last; 16 -> 32: 3613 against 3118)
CL_MIN_ROWS = 64


def _channels_last_conv_pays(g: int, c: int, m: int, taps: int) -> bool:
    """Whether a dense float32 2-D window (one group) runs channels last as an implicit GEMM
    (:class:`_ChannelsLastPlan`) rather than direct, by taps or the column matrix: from
    :data:`CL_MIN_ROWS` rows of weights, and output channels that fill most of the 32 lanes of
    a tile's block. One thread, us, against the plan it replaced: 3x3 512 -> 512 on 7 x 7
    3725 (column matrix) -> 2234, at stride 2 from 14 x 14 4143 -> 2331, 256 -> 256 stride 2
    from 28 x 28 2999 (taps) -> 2114, 128 -> 128 stride 2 from 56 x 56 2965 -> 2200; 64 -> 64
    on 56 x 56 2500 (direct) -> 2105, 128 -> 32 on 7 x 7 95 -> 41, 64 -> 256 on 13 x 13 604 ->
    450, 192 -> 64 5x5 on 28 x 28 4963 -> 4285; 256 -> 256 on 14 x 14 2169 (Winograd) ->
    2063. The same on large maps (64 -> 64 on 80 x 80 4396 -> 4354, 32 -> 64 stride 2 from
    160 x 160 2529 -> 2525)."""
    width = _conv_jit.cl_width(m)
    return g == 1 and taps > 1 and c * taps >= CL_MIN_ROWS and m >= 0.7 * -(-m // width) * width


def _stem_shape(g: int, c: int, m: int, taps: int) -> bool:
    """A dense layer of few input channels and taps into at most 32 outputs (see _big_stem)."""
    return g == 1 and c * taps <= 32 and m <= 32


def _channels_last_pays(out, kernel) -> bool:
    """Whether a depthwise layer runs channels last (:class:`_DepthwiseNHWCPlan`, each cell's
    channels summed in registers across the taps, :func:`._taps.nhwc_cells`): output rows of at
    most 8 cells, and larger windows than 3 x 3 on maps of at most 49 cells (an OCR model's 5 x 5
    layers on 3 x 12: 104 channels 10.4 against 13.8 us planar, one thread; 200 x 2 x 6 8.3
    against 23.3).

    Since the planes go in and out channels last by 16 x 16 transposes in registers
    (:mod:`._cl_taps`), 7 x 7 maps take it at 3 x 3 too (one thread, with a Clip: 960 x 7 x 7
    46 against 72 us planar, onnxruntime 40; 576 x 14 x 14 at stride 2 41 against 75; 672 x 7 x
    7 5 x 5 57 against 95). When the transposes went element by element, across 128 planes at
    once, those layers were slower channels last inside MobileNetV2 than alone and stayed
    planar. From rows of 14 cells the planar kernel still wins (576 x 14 x 14: 81 against 84 us;
    384 x 14 x 14 54 against 67; 192 x 28 x 28 stride 2 56 against 61)."""
    if kernel[0] * kernel[1] > 9 and out[0] * out[1] <= 49:
        return True
    return out[1] <= 8


def prewarm(attrs: ops.Window, w_shape, info=None, packed=None) -> None:
    """At kernel creation: compile (or load from the disk cache) the compiled kernels a 2-D
    convolution with weights of ``w_shape`` may plan, so that the first run does not; with the
    kernel's ``info``, also their pieces for a session whose runs share them among threads,
    and the Winograd weights of the ``packed`` constant weights where the input's shape is
    static and the layer will take that path."""
    if w_shape is None or len(w_shape) != 4:
        return
    taps = math.prod(w_shape[2:])
    dtype = (
        None if info is None or info.input_dtype(0) is None else compute_dtype(info.input_dtype(0))
    )
    g = attrs.group
    # (float32 only: every tile path is)
    shared = dtype == _F32 and _threads.will_split(info.provider) and jit_available()
    # the register tiles: 1x1 layers planar (any group) or channels last (one group, small
    # maps), and the dense windows channels last
    if taps == 1 and _pointwise_tiled_pays(
        g, w_shape[1] * g, w_shape[0], (POINTWISE_MIN_CELLS,), dtype
    ):
        if _conv_jit.warm_pointwise() and shared:
            _conv_pieces().address(_conv_pieces().POINTWISE, np.float32)
    shape = None if info is None else info.input_shape(0)
    if (
        taps == 1
        and shape is not None
        and len(shape) == 4
        and all(isinstance(d, int) for d in shape)
        and _pointwise_gathered(2, shape[0], g, shape[1], w_shape[0], shape[2] * shape[3], dtype)
    ):
        _conv_jit.warm_gather()  # a 1x1 layer on a tiny map: the gather loop (_make_plan)
    tiled = taps == 1 or _channels_last_conv_pays(g, w_shape[1], w_shape[0], taps)
    if dtype == _F32 and g == 1 and tiled and _conv_jit.warm_conv_cl() and shared:
        _conv_pieces().address(_conv_pieces().CHANNELS_LAST, np.float32)
    if (
        _direct_pays(attrs.group, w_shape[1], w_shape[0] // attrs.group, taps)
        or _stem_shape(attrs.group, w_shape[1], w_shape[0], taps)
        or _dense_direct_pays(attrs.group, w_shape[1], w_shape[0], taps)
        or (taps == 1 and _pointwise_direct_may(attrs.group, w_shape[1]))
    ):
        depthwise = w_shape[1] == 1 and w_shape[0] == attrs.group
        if _conv_jit.warm() is not None and depthwise:
            _conv_jit.warm_nhwc()
        if dtype is not None and _threads.will_split(info.provider) and jit_available():
            pieces = _conv_pieces()
            for kind in (pieces.DIRECT, pieces.NHWC) if depthwise else (pieces.DIRECT,):
                pieces.address(kind, dtype.type)
        return
    if packed is not None and dtype is not None and attrs.group == 1:
        _prepare_winograd(attrs, w_shape, info, packed, dtype)


def _prepare_winograd(attrs: ops.Window, w_shape, info, packed, dtype) -> None:
    """The Winograd weights of ``packed`` and the compiled transforms now, where the first run
    will plan Winograd for the input's static shape (the transform of a 512 x 512 layer takes
    tens of milliseconds)."""
    shape = info.input_shape(0)
    if shape is None or len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape):
        return
    provider = info.provider
    if getattr(provider, "threads", 1) > 1 and not _threads.will_split(provider):
        return  # more threads without a spinning pool take the taps or im2col
    kernel, strides, dilations = resolve(attrs, 2, w_shape[2:])
    out = _cached_geometry(
        tuple(shape[2:]), tuple(kernel), tuple(strides), tuple(dilations),
        None if attrs.pads is None else tuple(attrs.pads), attrs.auto_pad,
    )[0]  # fmt: skip
    if (
        _winograd_pays(shape[1], w_shape[0], kernel, strides, dilations, out)
        and _blas.find_gemm(dtype) is not None
        and packed.dtype == dtype
    ):
        _winograd_weights(packed, w_shape[0])
        _winograd_kernels()  # loaded now, not in the first run


#: the dense direct kernel's block of output rows, as bytes of one plane's float32 rows of wq
#: cells: each block is summed for every eight output channels before the next, so the input
#: rows it reads stay in cache
DIRECT_CHUNK = 16 << 10

#: work (multiply-adds, plus :data:`DIRECT_CHANNEL_COST` per output plane) from which the direct
#: kernels' groups or channels are shared among the run's threads, as compiled pieces on a
#: spinning pool (:mod:`._conv_pieces`)
DIRECT_SPLIT_WORK = 1 << 19
#: a direct kernel's fixed cost per output plane (copying it into the phases, its rows in and
#: out), in multiply-adds: small maps with many channels cost more than their taps say. Two
#: threads against one, depthwise 3x3: 960 x 7 x 7 (423K multiply-adds) 77 -> 63 us, 576 x 14 x
#: 14 stride 2 (254K) 78 -> 63 us, shared; kept on one thread, where sharing lost: 88 x 12 x 12
#: 5x5 (317K) 33 against 37 us, 256 x 8 x 8 (147K) 36 against 40 us
DIRECT_CHANNEL_COST = 1000


def _direct_call(fn, w, bias, y_shape: tuple, dtype, args: tuple):
    """``fast(x)``: ``fn(x, w, bias, y, *args)`` into a new ``y`` of ``y_shape``, ``x`` made
    C-contiguous in ``dtype`` first (the bound calls of :class:`_DirectPlan` and
    :class:`_DepthwiseNHWCPlan`, :func:`bind_plan`)."""

    def fast(x):
        if x.dtype != dtype or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype)
        y = np.empty(y_shape, dtype)
        fn(x, w, bias, y, *args)
        return y

    return fast


def _direct_split_pays(size: int, shape: tuple, taps: int) -> bool:
    """Whether a direct kernel's output of ``size`` cells and ``shape`` (N, M, OH, OW), ``taps``
    multiply-adds a cell, is worth sharing among the run's threads
    (:data:`DIRECT_SPLIT_WORK`)."""
    return size * taps + DIRECT_CHANNEL_COST * shape[0] * shape[1] >= DIRECT_SPLIT_WORK


def _kept_forms(plan, wmat, bias) -> tuple:
    """``plan.kept``: the weights and bias it was last given, then the forms its kernel reads
    them in (``plan._forms(wmat, bias)``), remade only when other arrays come: constant
    weights and bias are the same arrays every run, and a small layer's call saved a third of
    its Python by not deriving or looking them up again."""
    kept = plan.kept
    if kept[0] is not wmat or kept[1] is not bias:
        kept = plan.kept = (wmat, bias, *plan._forms(wmat, bias))
    return kept


class _DirectPlan:
    """2-D convolution by the compiled direct kernel (:mod:`._conv_jit`), for depthwise layers,
    groups of very few input channels and dense layers below 128 channels (their output
    channels eight at a time, :func:`._taps.block_rows`): per group its input copied into the
    stride-phase planes of the zero-padded input (in the kernel, a group at a time, so it stays
    in cache; at stride 2 the taps then read whole blocks of rows as at stride 1: 96 x 112 x
    112 stride 2 0.95 -> 0.80 ms, 480 x 40 x 40 stride 2 1.17 -> 0.84 ms), then whole output
    rows summed in registers from the bias and stored through the activation. No column
    matrix, no numpy call per group."""

    __slots__ = (
        "fn", "g", "cg", "mg", "out", "args", "taps", "blocks", "layouts", "head", "kept"
    )  # fmt: skip

    def __init__(
        self, fn, x_shape, m, g, kernel, strides, dilations, out, begin, mode=_conv_jit.CONVOLVE
    ) -> None:
        c, h, w = x_shape[1:]
        (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
        # rows and columns every window reads, padding included
        hp = max(h + begin[0], (out[0] - 1) * sh + (kh - 1) * dh + 1)
        wp = max(w + begin[1], (out[1] - 1) * sw + (kw - 1) * dw + 1)
        # each stride phase of the padded plane: hq rows of wq cells
        hq, wq = -(-hp // sh), -(-wp // sw)
        chunk = max(1, min(out[0], DIRECT_CHUNK // (4 * wq)))
        self.fn, self.g, self.cg, self.mg, self.out = fn, g, c // g, m // g, tuple(out)
        self.taps = kh * kw * (c // g)
        self.args = (kh, kw, sh, sw, dh, dw, begin[0], begin[1], hq, wq, chunk, mode)
        self.blocks: dict = {}  # the pieces' argument blocks (:func:`_split_compiled`)
        self.layouts: dict = {}  # by input shape and threads: see _layout
        # the kernel's arguments after x, w, bias and y on the calling thread (all groups, all
        # output channels), and the last weights and bias with their forms (_kept_forms): a
        # small layer's call is a microsecond of Python, which these save a third of
        self.head = (0, g, 0, m // g, c // g, m // g, *self.args)
        self.kept: tuple = (None, None, None, None)

    def _forms(self, wmat, bias) -> tuple:
        """The weights as (M, K) and the bias (zeros where there is none)."""
        m = self.g * self.mg
        return wmat.reshape(m, -1), np.zeros(m, wmat.dtype) if bias is None else bias

    def _layout(self, x_shape, threads: int) -> tuple:
        """(output shape, split mode, items to share, piece multiple, whether to share) for
        inputs of ``x_shape`` at ``threads`` threads: groups, or the output channels of one
        group (a stem), or its output rows where its blocks of eight output channels do not
        share out evenly."""
        g, mg = self.g, self.mg
        y_shape = (x_shape[0], g * mg, *self.out)
        split, total, piece = (0, g, 1) if g > 1 else (1, mg, 1)
        if g == 1 and mg >= 2:
            blocks = -(-mg // _conv_jit.OUTS)
            if blocks % threads and self.out[0] >= 2 * threads:  # 24 outputs, 2 threads: rows
                split, total = 2, self.out[0]
            elif mg >= 2 * _conv_jit.OUTS:  # whole blocks of eight per thread
                piece = _conv_jit.OUTS
        pays = (
            threads > 1
            and (g > 1 or mg > 1)
            and _direct_split_pays(math.prod(y_shape), y_shape, self.taps)
        )
        return y_shape, split, total, piece, pays

    def bound(self, x_shape, wmat, bias, code):
        """:func:`bind_plan`'s call for this plan, or None where the layer is shared among
        threads at some thread count."""
        y_shape = (x_shape[0], self.g * self.mg, *self.out)
        if _direct_split_pays(math.prod(y_shape), y_shape, self.taps):
            return None
        _, _, w2, b2 = _kept_forms(self, wmat, bias)
        return _direct_call(self.fn, w2, b2, y_shape, wmat.dtype, (*self.head, *code))

    def __call__(self, x, wmat, bias=None, z=None, act=None, code=(0, 0.0, 0.0)) -> np.ndarray:
        dtype = wmat.dtype
        if x.dtype != dtype or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype)
        _, _, w2, bias = _kept_forms(self, wmat, bias)
        threads = _threads.threads()
        key = (x.shape, threads)
        how = self.layouts.get(key)
        if how is None:
            if len(self.layouts) >= 16:
                self.layouts.clear()
            how = self.layouts[key] = self._layout(x.shape, threads)
        y_shape, split, total, piece, pays = how
        y = np.empty(y_shape, dtype)
        if not (
            pays
            and _threads.spinning()
            and _split_compiled(
                self.blocks,
                _conv_pieces().DIRECT,
                total,
                x,
                wmat,
                w2,
                bias,
                y,
                (split, self.cg, self.mg, *self.args),
                code,
                piece,
            )
        ):
            self.fn(x, w2, bias, y, *self.head, *code)
        return y if z is None and act is None else _finish(y, z, act)


_CHANNELS_LAST = _DerivedWeights()


@functools.cache  # once imported, a lookup (the import statement took 1 us a call)
def _conv_pieces():
    """:mod:`._conv_pieces` (it imports numba: only once a compiled plan runs)."""
    from . import _conv_pieces as pieces

    return pieces


def _split_compiled(
    blocks, pieces, total, x, wmat, w, bias, y, ints, code, min_piece=1, z=None
) -> bool:
    """A direct kernel's ``range(total)`` (groups or channels) shared among the run's threads as
    compiled pieces (:mod:`._conv_pieces`); False (nothing run) where the run's pool cannot take
    them. ``w`` is the packed weight array ``wmat`` as the kernel reads it. ``blocks`` keeps the
    plan's argument blocks by input shape and arguments, with the packed weights and the bias
    they were made for (the same arrays from run to run for constant weights, as
    :class:`_DerivedWeights` assumes), so a call only writes x's and y's addresses into a copy
    (:func:`.._spin_jit.filled`)."""
    key = (x.shape, ints, code)
    found = blocks.get(key)
    if found is None or found[0] is not wmat or found[1] is not bias:
        if len(blocks) >= 8:  # (weights or shapes that change from run to run)
            blocks.clear()
        act, alpha, beta = code
        wc, bc = np.ascontiguousarray(w), np.ascontiguousarray(bias, x.dtype)
        template = _conv_pieces().block(x.shape, wc, bc, y.shape, (*ints, act), (alpha, beta))
        found = blocks[key] = (wmat, bias, wc, bc, template)
    return _conv_pieces().split(pieces, total, x, y, found[-1], min_piece, z)


class _DepthwiseNHWCPlan:
    """Depthwise 2-D convolution (one output per input channel) channels last, by the compiled
    kernel of :mod:`._conv_jit`: for small maps with many channels (MobileNetV2's 14x14 and 7x7
    layers), where the planar kernel's rows are a few cells long."""

    __slots__ = ("fn", "out", "args", "blocks", "kept")

    def __init__(self, fn, kernel, strides, dilations, out, begin) -> None:
        self.fn, self.out = fn, tuple(out)
        self.args = (*kernel, *strides, *dilations, begin[0], begin[1])
        self.blocks: dict = {}  # the pieces' argument blocks (:func:`_split_compiled`)
        self.kept: tuple = (None, None, None, None)  # see _kept_forms

    def _forms(self, wmat, bias) -> tuple:
        """The weights channels last and the bias (zeros where there is none)."""
        m = wmat.shape[0]
        wt = _CHANNELS_LAST.get(wmat, lambda w: _channels_last_weights(w, m))
        return wt, np.zeros(m, wmat.dtype) if bias is None else bias

    def bound(self, x_shape, wmat, bias, code):
        """:func:`bind_plan`'s call for this plan, or None where the layer is shared among
        threads at some thread count."""
        m, dtype = wmat.shape[0], wmat.dtype
        y_shape = (x_shape[0], m, *self.out)
        _, _, wt, b = _kept_forms(self, wmat, bias)
        if _direct_split_pays(math.prod(y_shape), y_shape, wt.shape[0]):
            return None
        return _direct_call(self.fn, wt, b, y_shape, dtype, (0, m, *self.args, *code))

    def __call__(self, x, wmat, bias=None, z=None, act=None, code=(0, 0.0, 0.0)) -> np.ndarray:
        n, m, dtype = x.shape[0], wmat.shape[0], wmat.dtype
        if x.dtype != dtype or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype)
        _, _, wt, b = _kept_forms(self, wmat, bias)
        y = np.empty((n, m, *self.out), dtype)
        if not (
            _direct_split_pays(y.size, y.shape, wt.shape[0])
            and _threads.spinning()
            and _split_compiled(
                self.blocks, _conv_pieces().NHWC, m, x, wmat, wt, b, y, self.args, code, 16
            )
        ):
            self.fn(x, wt, b, y, 0, m, *self.args, *code)
        return y if z is None and act is None else _finish(y, z, act)


def _channels_last_weights(w: np.ndarray, m: int) -> np.ndarray:
    """Depthwise weights (M, 1, K) channels last, (K, M + NHWC_BLOCK) with zero columns past
    the channels, so that :func:`._conv_jit._depthwise_nhwc` reads every block's weights in
    place (a copy per block and call was a quarter of a small layer's time)."""
    wt = np.zeros((w.shape[-1], m + _conv_jit.NHWC_BLOCK), w.dtype)
    wt[:, :m] = w.reshape(m, -1).T
    return wt


#: output cells from which a float32 1x1 layer runs planar tiles (:class:`_PointwisePlan`),
#: below which channels-last ones: on 7 x 7 maps a planar tile's fourth vector holds one cell
#: (960 -> 160: 215 us planar, 146 channels last, 168 OpenBLAS; since then from
#: POINTWISE_BLAS_K input channels OpenBLAS takes such layers)
POINTWISE_TILED_CELLS = 96
#: output cells from which a 1x1 layer runs as :class:`_PointwisePlan`: on one cell (a
#: squeeze-excite layer's) a channels-last tile's two vectors of sums are two chains of
#: dependent multiply-adds, and OpenBLAS's GEMV wins (576 -> 144: 9.6 against 7.2 us)
POINTWISE_MIN_CELLS = 4


#: input channels from which a 1x1 layer of one group is OpenBLAS's GEMM (the bias written
#: first, the product added onto it), not the register tiles: the tiles read the input in place,
#: each tile's sums walking K rows of it, and from 512 rows that walk misses the cache and the
#: TLB where OpenBLAS packs a panel once. One layer with a Relu, one / two threads, us, tiles
#: (channels last below POINTWISE_TILED_CELLS) against the GEMM, a Zen 3: 1024 -> 256 on 14 x 14
#: 1440 / 754 against 1223 / 621; 512 -> 1000 on 13 x 13 2427 / 1280 against 2046 / 1029;
#: 1024 -> 2048 stride 2 on 14 x 14 4168 / 2099 against 2857 / 1460; 2048 -> 512 on 7 x 7 2061 /
#: 954 against 1392 / 703; 960 -> 160 on 7 x 7 238 / 142 against 232 / 134. From 256 rows it
#: varied by layer (256 -> 128 on 56 x 56 2941 against 2387, 256 -> 512 stride 2 on 56 x 56
#: 2595 against 2684), and below the tiles win (128 -> 512 on 28 x 28 1157 against 1227)
POINTWISE_BLAS_K = 512
#: outputs (channels x cells) from which a layer of half :data:`POINTWISE_BLAS_K` input channels
#: or more is OpenBLAS's too
POINTWISE_BLAS_OUTPUTS = 1 << 16
#: blocks of cells a thread below which a shared 1x1 layer (:class:`_PointwisePlan`) is cut
#: by tiles of output channels: a 14 x 14 map is four blocks, the last of 4 cells, and two
#: threads took two each (128 against 68 cells). Interleaved in one process at two threads,
#: from 2 blocks a thread to 4 (ms): MobileNetV2 6.33 -> 5.67 and 6.09 -> 5.87, ShuffleNet
#: 4.12 -> 3.50, ResNet-50 47.1 -> 45.0 (8: 5.72, 5.77, 3.54, 44.4)
TILES_SPLIT_BLOCKS = 4
#: input and output channels per group from which a grouped 1x1 layer runs on the tiles
#: (ShuffleNet v1's 4 groups of 28 to 136); fewer (depthwise-like groups) keep the direct
#: kernels or the stacked GEMM
POINTWISE_GROUP_CHANNELS = 4


def _pointwise_tiled_pays(g: int, c: int, m: int, out, dtype) -> bool:
    """Whether a 1x1 layer without pads runs as :class:`_PointwisePlan` (or, one group below
    :data:`POINTWISE_TILED_CELLS` cells, :class:`_ChannelsLastPlan`): float32, not one weight
    per channel, on :data:`POINTWISE_MIN_CELLS` cells or more, one group or groups of
    :data:`POINTWISE_GROUP_CHANNELS` input and output channels or more; one group of
    :data:`POINTWISE_BLAS_K` input channels or more (half that into
    :data:`POINTWISE_BLAS_OUTPUTS` outputs or more) is OpenBLAS's (:func:`_pointwise_plan`)."""
    if dtype != _F32 or c == m == 1 or math.prod(out) < POINTWISE_MIN_CELLS:
        return False
    if g == 1 and (
        c >= POINTWISE_BLAS_K
        or (c >= POINTWISE_BLAS_K // 2 and m * math.prod(out) >= POINTWISE_BLAS_OUTPUTS)
    ):
        return False
    return g == 1 or min(c // g, m // g) >= POINTWISE_GROUP_CHANNELS


#: multiply-adds up to which a float32 1x1 layer on a single cell takes the compiled gather
#: loop (:func:`_pointwise_gathered`); past it OpenBLAS's GEMV is faster (1280 -> 100: 13.8
#: against 11.7 us)
GATHER_ONE_CELL_WORK = 1 << 15


def _pointwise_gathered(nd: int, n: int, g: int, c: int, m: int, cells: int, dtype) -> bool:
    """Whether a 1x1 layer that the tiles do not take runs as :class:`_GatherPlan` (when
    compiled kernels are on): float32, one group, 1-D or below :data:`POINTWISE_MIN_CELLS`
    cells, at most :data:`GATHER_COMPILED_WORK` multiply-adds (:data:`GATHER_ONE_CELL_WORK` on
    one cell). Its bound call (:func:`bind_plan`) is one compiled call with the bias and the
    activation on the way out, where the GEMM plan's short path was a matmul, a bias pass and
    the activation's: one thread, us, with a Relu, 16 -> 64 on one cell 3.9 -> 2.1, 128 -> 1
    (a VAD's output layer, a Sigmoid in the model: 13.9 -> 5.3 there) 4.3 -> 2.4, 256 -> 256
    over 4 frames 24.7 -> 17.1."""
    work = n * c * cells * m
    return (
        dtype == _F32
        and g == 1
        and (nd == 1 or cells < POINTWISE_MIN_CELLS)
        and n * c * cells <= GATHER_LIMIT
        and work <= (GATHER_COMPILED_WORK if n * cells > 1 else GATHER_ONE_CELL_WORK)
    )


class _PointwisePlan:
    """A float32 1x1 convolution without padding, from :data:`POINTWISE_TILED_CELLS` cells, by
    the compiled tiles of :func:`._conv_jit.pointwise`: 4 output channels by 64 cells summed in
    registers over the input channels, read in place, and written once, bias, residual and
    activation applied on the way out; strides take every s-th cell first (one strided copy).
    Against OpenBLAS's GEMM (which packs its operands on every call: for K = 16 that is as long
    as the products), one thread, product alone (us): 96 x 16 x 12544 534 -> 378, 144 x 24 x
    3136 258 -> 201, 24 x 144 x 3136 264 -> 199, 32 x 192 x 784 105 -> 84, 64 x 384 x 196 101
    -> 88, 256 x 64 x 3136 1097 -> 938, 512 x 128 x 784 1017 -> 918; and the GEMM path's
    passes over the output for the bias and the activation are gone. Shared among the run's
    threads by blocks of cells, or by tiles of channels where the blocks are few. (Smaller
    maps of one group run channels last: :class:`_ChannelsLastPlan`.) Grouped layers
    (:data:`POINTWISE_GROUP_CHANNELS`) sum each group's input channels into tiles of that
    group's output channels, at any map size: ShuffleNet v1's grouped 1x1s were a stack of
    four GEMMs each (model, interleaved in one process, stack -> tiles: 5.15 -> 4.81 ms at one
    thread, 5.48 -> 4.61 at two; onnxruntime 4.62 and 3.59); keeping the 7 x 7 ones on the
    GEMMs changed nothing at one thread and made two 5.25 ms."""

    __slots__ = ("fn", "sub", "m", "g", "out", "blocks", "shapes", "kept")

    def __init__(self, fn, m, g, strides, out) -> None:
        self.fn, self.m, self.g, self.out = fn, m, g, tuple(out)
        self.sub = None
        if any(s != 1 for s in strides):
            self.sub = (
                slice(None),
                slice(None),
                *(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, strides, strict=True)),
            )
        self.blocks: dict = {}  # the pieces' argument blocks (:func:`_split_compiled`)
        self.shapes: dict = {}  # by input shape: _geometry's values
        self.kept: tuple = (None, None, None, None)  # see _kept_forms

    def _forms(self, wmat, bias) -> tuple:
        """The weights as (M, K) (K: one group's input channels) and the bias, float32."""
        m = self.m
        b2 = np.zeros(m, _F32) if bias is None else np.ascontiguousarray(bias, _F32)
        return np.ascontiguousarray(wmat.reshape(m, -1)), b2

    def _geometry(self, shape) -> tuple:
        """For inputs of ``shape`` (taken as (N, C, P)): N, C, P, the tiles of output channels,
        the blocks of cells, y's shape, and whether the work pays for sharing among threads
        (each output a sum of one group's C / G input channels)."""
        n, c = shape[:2]
        m, p = self.m, math.prod(self.out)
        tiles = _conv_jit.pointwise_tiles(m, self.g)
        pays = _direct_split_pays(n * m * p, (n, m), c // self.g)
        return n, c, p, tiles, n * -(-p // _conv_jit.PW_CELLS), (n, m, *self.out), pays

    def bound(self, x_shape, wmat, bias, code):
        """:func:`bind_plan`'s call for this plan, or None where the layer is shared among
        threads at some thread count, or takes every s-th cell first."""
        if self.sub is not None:
            return None
        n, c, p, tiles, total, y_shape, pays = self._geometry(x_shape)
        if pays:
            return None
        _, _, w2, b2 = _kept_forms(self, wmat, bias)
        fn, args = self.fn, (0, total, 0, tiles, *code)
        x3, y3, none = (n, c, p), (n, self.m, p), _conv_jit.NO_RESIDUAL

        def fast(x, z=None):
            if x.dtype != _F32 or not x.flags.c_contiguous:
                x = np.ascontiguousarray(x, _F32)
            if z is None:
                z = none
            else:  # the residual read as the output is written, then the activation
                if z.shape != y_shape or z.dtype != _F32 or not z.flags.c_contiguous:
                    z = np.ascontiguousarray(np.broadcast_to(z, y_shape), _F32)
                z = z.reshape(y3)
            y = np.empty(y_shape, _F32)
            fn(x.reshape(x3), w2, b2, y.reshape(y3), z, *args)
            return y

        return fast

    def __call__(self, x, wmat, bias=None, z=None, act=None, code=(0, 0.0, 0.0)) -> np.ndarray:
        # a small layer's run is mostly this method (an OCR model's 1x1s: 5 of 7 us), so what
        # depends only on the input's shape or on the constants is worked out once
        xs = x[self.sub] if self.sub is not None else x
        if xs.dtype != _F32 or not xs.flags.c_contiguous:
            xs = np.ascontiguousarray(xs, _F32)
        geometry = self.shapes.get(xs.shape)
        if geometry is None:
            if len(self.shapes) >= 16:  # (shapes that change from run to run)
                self.shapes.clear()
            geometry = self.shapes[xs.shape] = self._geometry(xs.shape)
        n, c, p, tiles, total, y_shape, pays = geometry
        m = self.m
        _, _, w2, b2 = _kept_forms(self, wmat, bias)
        y = np.empty(y_shape, _F32)
        if act is not None:
            code = (0, 0.0, 0.0)  # the activation after the residual, on the output
        z3 = _conv_jit.NO_RESIDUAL
        if z is not None:  # the residual read as the output is written
            if z.shape != y_shape or z.dtype != _F32 or not z.flags.c_contiguous:
                z = np.ascontiguousarray(np.broadcast_to(z, y_shape), _F32)
            z3 = z.reshape(n, m, p)
        threads = _threads.threads()
        if threads > 1 and pays and _threads.spinning():
            by_tiles = total < TILES_SPLIT_BLOCKS * threads  # few blocks of cells: tiles
            # (N, C, 1, P) views: the pieces' argument blocks take 4-D arrays
            if _split_compiled(
                self.blocks, _conv_pieces().POINTWISE, tiles if by_tiles else total,
                xs.reshape(n, c, 1, p), wmat, w2, b2, y.reshape(n, m, 1, p), (int(by_tiles), 0),
                code, z=None if z is None else z3.reshape(n, m, 1, p),
            ):  # fmt: skip
                return y if act is None else _finish(y, None, act)
        self.fn(xs.reshape(n, c, p), w2, b2, y.reshape(n, m, p), z3, 0, total, 0, tiles, *code)
        return y if act is None else _finish(y, None, act)


class _ChannelsLastPlan:
    """A float32 dense 2-D convolution (one group) channels last, by the compiled implicit GEMM
    of :func:`._conv_jit.conv_cl`: tiles of 8 output cells by 32 output channels summed in
    registers over every (input channel, tap), each cell's window read through a table of
    offsets in the (zero-padded) input, the bias and activation applied on the way out, then
    16 x 16 transposes into the output planes. No column matrix, no junk cells, any stride:
    for small maps (1x1 layers below :data:`POINTWISE_TILED_CELLS` cells) and the windows of
    :func:`_channels_last_conv_pays`. A residual is added after. Shared among the run's
    threads by blocks of 32 output channels.

    One thread, alone, against the plan it replaced (us): 1x1 960 -> 160 on 7 x 7 168 (GEMM)
    -> 146, 160 -> 960 170 -> 139, 320 -> 1280 467 -> 386, 512 -> 2048 1226 -> 1103 (2048 ->
    512: 1204 -> 1282)."""

    __slots__ = ("fn", "m", "out", "begin", "size", "padded_shape", "table", "bases", "k",
                 "blocks", "kept", "pad", "tables")  # fmt: skip

    def __init__(self, fn, x_shape, m, kernel, strides, dilations, out, begin) -> None:
        c, h, w = x_shape[1:]
        (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
        # rows and columns the windows read, padding included
        hp = max(h + begin[0], (out[0] - 1) * sh + (kh - 1) * dh + 1)
        wp = max(w + begin[1], (out[1] - 1) * sw + (kw - 1) * dw + 1)
        self.fn, self.m, self.out, self.begin = fn, m, tuple(out), tuple(begin)
        self.size = (h, w)
        # the input as it is where no window reaches past it, else a zero-padded copy
        self.padded_shape = None if (hp, wp) == (h, w) and not any(begin) else (c, hp, wp)
        # the compiled copy into the padded input (None where compiled kernels are off)
        self.pad = None if self.padded_shape is None else _conv_jit.warm_pad()
        self.table, self.bases = _conv_jit.cl_tables(c, hp, wp, kernel, strides, dilations, out)
        self.k = c * kh * kw
        # the pieces' table arguments, worked out once (each ``.ctypes.data`` costs a
        # microsecond)
        self.tables = (self.table.ctypes.data, self.k, self.bases.ctypes.data)
        self.blocks: dict = {}  # the pieces' argument blocks, by shape and code
        self.kept: tuple = (None, None, None, None)  # see _kept_forms

    def _forms(self, wmat, bias) -> tuple:
        """The weights by blocks of output channels (:func:`._conv_jit.cl_width`) and the bias
        padded to them."""
        m = self.m
        w2 = _CL_WEIGHTS.get(wmat, lambda wm: _conv_jit.cl_weights_blocks(wm.reshape(m, -1)))
        b2 = np.zeros(w2.shape[0] * _conv_jit.cl_width(m), _F32)
        if bias is not None:
            b2[:m] = bias
        return w2, b2

    def bound(self, x_shape, wmat, bias, code):
        """:func:`bind_plan`'s call for this plan, or None where the layer is shared among
        threads at some thread count, or its padding is not compiled."""
        n, m = x_shape[0], self.m
        y_shape = (n, m, *self.out)
        if self.padded_shape is not None and self.pad is None:
            return None
        if _direct_split_pays(math.prod(y_shape), (n, m), self.k):
            return None
        _, _, w2, b2 = _kept_forms(self, wmat, bias)
        tiles = -(-math.prod(self.out) // _conv_jit.CL_CELLS)
        fn, table, bases, pad = self.fn, self.table, self.bases, self.pad
        args = (0, w2.shape[0], 0, tiles, *code)
        padded = None if self.padded_shape is None else (n, *self.padded_shape)
        (t, l), flat, y3 = self.begin, (n, -1), (n, m, -1)

        def fast(x):
            if x.dtype != _F32 or not x.flags.c_contiguous:
                x = np.ascontiguousarray(x, _F32)
            if padded is not None:
                xp = np.empty(padded, _F32)  # (the border written by pad)
                pad(x, xp, t, l)
                x = xp
            y = np.empty(y_shape, _F32)
            fn(x.reshape(flat), table, bases, w2, b2, y.reshape(y3), *args)
            return y

        return fast

    def __call__(self, x, wmat, bias=None, z=None, act=None, code=(0, 0.0, 0.0)) -> np.ndarray:
        dtype, m = _F32, self.m
        n = x.shape[0]
        if self.padded_shape is None:
            xp = x if x.dtype == dtype and x.flags.c_contiguous else np.ascontiguousarray(x, dtype)
        else:
            (t, l), (h, w) = self.begin, self.size
            if self.pad is not None and x.dtype == dtype and x.flags.c_contiguous:
                xp = np.empty((n, *self.padded_shape), dtype)  # (the border written by pad)
                self.pad(x, xp, t, l)
            else:
                xp = np.zeros((n, *self.padded_shape), dtype)
                xp[:, :, t : t + h, l : l + w] = x
        x2 = xp.reshape(n, -1)
        _, _, w2, b2 = _kept_forms(self, wmat, bias)
        if act is not None or z is not None:
            code = (0, 0.0, 0.0)  # the residual, then the activation, on the output
        y = np.empty((n, m, *self.out), dtype)
        y3 = y.reshape(n, m, -1)
        blocks, tiles = w2.shape[0], -(-y3.shape[2] // _conv_jit.CL_CELLS)
        threads = _threads.threads()
        if not (
            threads > 1
            and _direct_split_pays(y.size, (n, m), self.k)
            and _threads.spinning()
            and self._split(x2, wmat, w2, b2, y3, code, blocks, tiles, threads)
        ):
            self.fn(x2, self.table, self.bases, w2, b2, y3, 0, blocks, 0, tiles, *code)
        return y if z is None and act is None else _finish(y, z, act)

    def _split(self, x2, wmat, w2, b2, y3, code, blocks, tiles, threads) -> bool:
        """The blocks of output channels shared among the run's threads as compiled pieces, or
        the tiles of cells where the blocks are fewer than two per thread (in pieces of whole
        bands where there are two bands a thread)."""
        by_cells = blocks < 2 * threads
        band = _conv_jit.CL_BAND // _conv_jit.CL_CELLS
        piece = band if by_cells and tiles >= 2 * threads * band else 1
        n, m, p = y3.shape
        ints = (*self.tables, int(by_cells))
        return _split_compiled(
            self.blocks, _conv_pieces().CHANNELS_LAST, tiles if by_cells else blocks,
            x2.reshape(n, 1, 1, -1), wmat, w2, b2, y3.reshape(n, m, 1, p), ints, code, piece,
        )  # fmt: skip


_CL_WEIGHTS = _DerivedWeights()


def _pointwise_plan(x_shape, m, g, strides, out, dtype):
    """1x1 convolution without padding: a GEMM over the channel axis, (M, C) x (C, OH*OW) per
    image (per group: one stacked matmul), reading the input in place at stride 1; strides take
    every s-th cell first (one strided copy). No column matrix, no transpose. One weight per
    channel (a BatchNormalization made a convolution) is one broadcast product."""
    n, c = x_shape[:2]
    p = math.prod(out)
    sub = None
    if any(s != 1 for s in strides):
        sub = (
            slice(None),
            slice(None),
            *(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, strides, strict=True)),
        )
    scale = g == c == m
    gemm = _blas.find_gemm(dtype) if g == 1 and not scale else None
    if g == 1 and n == 1 and sub is None and not scale and m * c * p < _blas.SMALL_MNK:
        # one small product (a squeeze-excite layer, an OCR model's 1x1s): the product, the
        # bias and the epilogue in as few numpy calls as possible (an 8 -> 8 product on one
        # cell: 7.7 -> 4 us), on the calling thread (below MIN_PARALLEL_WORK anyway)
        long_rows = p >= LONG_ROW

        def run_small(x, wmat, bias=None, z=None, act=None):
            y = np.matmul(wmat[0], (x if x.dtype == dtype else x.astype(dtype)).reshape(c, p))
            if bias is not None:
                b = bias.astype(dtype, copy=False).reshape(m, 1)
                if long_rows:
                    per_row(np.add, y, b, out=y, row=p)
                else:
                    np.add(y, b, out=y)
            return _finish(y.reshape(1, m, *out), z, act)

        return run_small

    def run(x, wmat, bias=None, z=None, act=None):
        xs = x
        if sub is not None:
            xs = np.ascontiguousarray(x[sub], dtype=dtype)
        elif x.dtype != dtype:
            xs = x.astype(dtype)
        if gemm is not None and bias is not None and m * c * p >= _blas.SMALL_MNK:
            # the bias written first, the product accumulated onto it (beta = 1): one write
            # pass instead of adding it afterwards (0.80 -> 0.71 ms for 16 -> 96 on 112x112)
            y = np.empty((n, m, p), dtype)
            b2, x3 = bias.reshape(m, 1), xs.reshape(n, c, p)
            for i in range(n):
                np.copyto(y[i], b2)
                gemm(wmat[0], x3[i], y[i], 1.0)
            return _finish(y.reshape(n, m, *out), z, act)
        if scale:
            y = per_row(np.multiply, xs, wmat.reshape(1, m, *[1] * len(out)), row=p)
        elif g == 1 and n == 1:
            y = _blas.matmul(wmat[0], xs.reshape(c, p))
        elif g == 1:
            y = _blas.matmul(wmat[0], xs.reshape(n, c, p))
        else:
            # image by image: (g, M/g, C/g) x (g, C/g, P) is a stack _blas.matmul shares among
            # the run's threads (one 4-D broadcast product it did not: ShuffleNet's grouped 1x1s
            # took as long at two threads as at one)
            x4 = xs.reshape(n, g, c // g, p)
            y = np.empty((n, g, m // g, p), dtype)
            shared = bias is not None and x4.flags.c_contiguous and _threads.gemm_pool()
            batch = _blas.find_gemm_batch(dtype) if shared else None
            for i in range(n):
                if batch is not None:
                    # where the products are shared as compiled pieces: the bias written first,
                    # every group's product added onto it (beta = 1), one pass less over the
                    # output on the calling thread (136 -> 136 in 4 groups on 28 x 28, ReLU,
                    # two threads: 95 -> 83 us; on one thread the ctypes calls cost more)
                    np.copyto(y[i], bias.reshape(g, m // g, 1))
                    batch(wmat, x4[i], y[i], 1.0)
                else:
                    _blas.matmul(wmat, x4[i], out=y[i])
            if batch is not None:
                return _finish(y.reshape(n, m, *out), z, act)
        return _finish(add_bias(y.reshape(n, m, *out), bias), z, act)

    return run


#: column-matrix elements (all images) up to which a convolution gathers its columns by index
GATHER_LIMIT = 24 << 10
#: multiply-adds up to which such a convolution is one compiled loop (:class:`_GatherPlan`);
#: above, the GEMM of the gathered columns wins. With the loop's four rows a pass: 129 -> 128
#: channels over 4 frames, stride 2 (99K): 14.8 against 19.2 us a run, stride 1 (198K): 20.4
#: against 21.8; 64 -> 128 over 1 frame (25K): 12.2 against 16.1 before. One node alone, a Zen
#: 3 (compiled against numpy, us): 1 -> 258 channels, kernel 256, stride 128 over 4 frames (a
#: VAD's STFT, 264K) 33.3 against 44.6; 129 -> 128 over 8 frames (396K) 37.6 against 43.3;
#: 128 -> 64 over 16 at stride 2 (393K) 40.4 against 44.7; over 16 frames at stride 1 (792K)
#: 77.7 against 56.2
GATHER_COMPILED_WORK = 512 << 10


class _GatherPlan:
    """:func:`_gather_plan` compiled (:func:`._conv_jit.gather_conv`): no column matrix, no
    numpy call but the output's allocation; the bias and an activation ``code`` applied as each
    cell is written. For few multiply-adds (:data:`GATHER_COMPILED_WORK`): 64 -> 64 channels,
    kernel 3, stride 2 over 2 frames, 15.6 -> 11.7 us a run (onnxruntime 7.3)."""

    __slots__ = ("fn", "index", "n", "flat", "m", "out", "dtype", "weights", "empty")

    def __init__(self, fn, index, n, flat, m, out, dtype) -> None:
        self.fn, self.index, self.n, self.flat, self.m = fn, index, n, flat, m
        self.out, self.dtype = tuple(out), dtype
        self.weights: dict = {}  # id(wmat) -> (wmat, its (K, M) transpose)
        self.empty = np.zeros(0, dtype)

    def _transposed(self, wmat) -> np.ndarray:
        """``wmat``'s (K, M) transpose, which the loop reads, kept by the weights' id."""
        hit = self.weights.get(id(wmat))
        if hit is None or hit[0] is not wmat:
            if len(self.weights) >= 4:
                self.weights.clear()
            hit = self.weights[id(wmat)] = (wmat, np.ascontiguousarray(wmat[0].T, self.dtype))
        return hit[1]

    def bound(self, x_shape, wmat, bias, code):
        """:func:`bind_plan`'s call for this plan (never shared among threads)."""
        wt = self._transposed(wmat)
        b = self.empty if bias is None else np.array(bias, self.dtype)  # the loop's own
        fn, index, dtype = self.fn, self.index, self.dtype
        flat, shape, y_shape = (
            (self.n, self.flat),
            (self.n, self.m, math.prod(self.out)),
            (self.n, self.m, *self.out),
        )

        def fast(x):
            y = np.empty(shape, dtype)
            fn(np.ascontiguousarray(x, dtype).reshape(flat), index, wt, b, y, *code)
            return y.reshape(y_shape)

        return fast

    def __call__(self, x, wmat, bias=None, z=None, act=None, code=None) -> np.ndarray:
        wt = self._transposed(wmat)
        # a copy per run: the loop takes a writable bias, and a fed one may change between runs
        b = self.empty if bias is None else np.array(bias, self.dtype)
        y = np.empty((self.n, self.m, math.prod(self.out)), self.dtype)
        xf = np.ascontiguousarray(x, self.dtype).reshape(self.n, self.flat)
        fused = code is not None and z is None
        self.fn(xf, self.index, wt, b, y, *(code if fused else NO_CODE))
        y = y.reshape(self.n, self.m, *self.out)
        return y if fused or (z is None and act is None) else _finish(y, z, act)


def _gather_plan(x_shape, kernel, strides, dilations, out, begin, m, dtype):
    """One group, a small column matrix (at most :data:`GATHER_LIMIT` elements: Silero-VAD's
    Conv1d layers over 4 frames, an OCR model's 3x3s on 3 x 12 maps): each column element's
    position in the flat input worked out once, with padding pointing at a zero appended to it,
    so a run is one copy, one fancy-index gather and one matmul (129 -> 128 channels, kernel 3,
    4 frames: 85 -> 28 us; the phase-plane plans pay tens of numpy calls there). Any rank."""
    n, c, *spatial = x_shape
    nd, size = len(spatial), math.prod(spatial)
    taps, cells = math.prod(kernel), math.prod(out)
    grid = np.meshgrid(*(np.arange(k) for k in kernel), *(np.arange(o) for o in out), indexing="ij")
    flat = np.zeros(grid[0].shape, np.intp)
    inside = np.ones(grid[0].shape, bool)
    for d in range(nd):
        pos = grid[nd + d] * strides[d] + grid[d] * dilations[d] - begin[d]
        inside &= (pos >= 0) & (pos < spatial[d])
        flat = flat * spatial[d] + np.clip(pos, 0, spatial[d] - 1)
    index = np.arange(c).reshape(c, 1, 1) * size + flat.reshape(1, taps, cells)
    index = np.where(inside.reshape(1, taps, cells), index, c * size).reshape(c * taps, cells)
    small = n * c * taps * cells * m <= GATHER_COMPILED_WORK
    fn = _conv_jit.warm_gather() if small and jit_available() else None
    if fn is not None:
        return _GatherPlan(fn, np.ascontiguousarray(index, np.int64), n, c * size, m, out, dtype)

    def run(x, wmat, bias=None, z=None, act=None):
        buf = np.empty((n, c * size + 1), dtype)  # per run: sessions run concurrently
        buf[:, -1] = 0
        np.copyto(buf[:, :-1], x.reshape(n, c * size), casting="unsafe")
        y = np.matmul(wmat[0], buf[:, index])  # (N, M, cells)
        if bias is not None:
            np.add(y, bias.astype(dtype, copy=False).reshape(m, 1), out=y)
        return _finish(y.reshape(n, m, *out), z, act)

    return run


def _generic_plan(kernel, strides, dilations, out, begin, end, g, m, dtype):
    """Any rank, any pads (cropping ones included): im2col from a window view of the padded
    input and one matmul over the groups."""

    def run(x, wmat, bias=None, z=None, act=None):
        x = x.astype(dtype, copy=False)
        n = x.shape[0]
        xp = pad_to(x, begin, end)
        cols = kernel_view(xp, kernel, strides, dilations, out)
        y = _blas.matmul(wmat, cols.reshape(n, g, wmat.shape[2], math.prod(out)))
        return _finish(add_bias(y.reshape(n, m, *out), bias), z, act)

    return run


def _make_plan(x_shape, x_dtype, w_shape, m, attrs: ops.Window, w_spatial, exact=False):
    """The convolution of inputs of shape ``x_shape`` with packed weights of shape ``w_shape``,
    planned once: ``run(x, wmat, bias)`` -> (N, M, *out) in the compute dtype, for ``x`` of any
    float dtype (cast where it is copied anyway)."""
    dtype = compute_dtype(np.dtype(x_dtype))
    nd = len(x_shape) - 2
    kernel, strides, dilations = resolve(attrs, nd, w_spatial)
    g = attrs.group
    n, c = x_shape[:2]
    taps = max(math.prod(kernel), 1)
    if c != w_shape[0] * (w_shape[2] // taps):
        raise InvalidArgument(
            f"Conv: input has {c} channels but the weights expect "
            f"{w_shape[0] * w_shape[2] // taps} (group={g})."
        )
    out, begin, _, end = _cached_geometry(
        tuple(x_shape[2:]), tuple(kernel), tuple(strides), tuple(dilations),
        None if attrs.pads is None else tuple(attrs.pads), attrs.auto_pad,
    )  # fmt: skip
    if all(k == 1 for k in kernel) and not any(begin) and not any(end):
        if nd == 2 and _pointwise_tiled_pays(g, c, m, out, dtype):
            if math.prod(out) < POINTWISE_TILED_CELLS and g == 1:
                fn = _conv_jit.warm_conv_cl()
                if fn is not None:
                    return _ChannelsLastPlan(fn, x_shape, m, kernel, strides, dilations, out, begin)
            else:
                fn = _conv_jit.warm_pointwise()
                if fn is not None:
                    return _PointwisePlan(fn, m, g, strides, out)
        if nd == 2 and all(s == 1 for s in strides) and _pointwise_direct_pays(g, c, m, out):
            fn = _conv_jit.warm()
            if fn is not None:
                return _DirectPlan(fn, x_shape, m, g, kernel, strides, dilations, out, begin)
        if _pointwise_gathered(nd, n, g, c, m, math.prod(out), dtype) and jit_available():
            return _gather_plan(x_shape, kernel, strides, dilations, out, begin, m, dtype)
        return _pointwise_plan(x_shape, m, g, strides, out, dtype)
    if nd == 1:  # a 1-D convolution is a 2-D one over a single row
        inner = _make_plan(
            (*x_shape[:2], 1, x_shape[2]), x_dtype, w_shape, m,
            ops.Window(
                kernel_shape=(1, kernel[0]), strides=(1, strides[0]),
                dilations=(1, dilations[0]), pads=(0, begin[0], 0, end[0]), group=g,
            ),
            (1, *kernel),
            exact,
        )  # fmt: skip
        return _Plan1D(inner)
    if (
        g == 1
        and n * c * taps * math.prod(out) <= GATHER_LIMIT
        and not (_direct_pays(g, c, m, taps) and jit_available())
    ):
        return _gather_plan(x_shape, kernel, strides, dilations, out, begin, m, dtype)
    if not _flat_layout_ok(nd, out, begin, end) or (taps >= 64 and math.prod(out) <= taps):
        # many taps over few output cells (a long 1-D kernel on a short input): the column
        # matrix in one strided copy, not one copy per tap (1 -> 258 channels, 256 taps, 5
        # outputs: 0.05 against 0.63 ms)
        return _generic_plan(kernel, strides, dilations, out, begin, end, g, m, dtype)
    if g == c == m and _channels_last_pays(out, kernel):
        fn = _conv_jit.warm_nhwc()
        if fn is not None:
            return _DepthwiseNHWCPlan(fn, kernel, strides, dilations, out, begin)
    if (
        nd == 2
        and dtype == _F32
        and _channels_last_conv_pays(g, c, m, taps)
        and not (
            not exact
            and _winograd_pays(c, m, kernel, strides, dilations, out)
            and math.prod(out) >= WINOGRAD_OVER_CL_CELLS
        )
    ):
        fn = _conv_jit.warm_conv_cl()
        if fn is not None:
            return _ChannelsLastPlan(fn, x_shape, m, kernel, strides, dilations, out, begin)
    if (
        _direct_pays(g, c // g, m // g, taps)
        or _big_stem(g, c, m, taps, out)
        or _shared_stem(g, c, m, taps)
        or _dense_direct_pays(g, c, m, taps)
    ):
        fn = _conv_jit.warm()
        if fn is not None:
            return _DirectPlan(fn, x_shape, m, g, kernel, strides, dilations, out, begin)
    if g == 1 and _blas.find_gemm(dtype) is not None:
        gemm = _blas.find_gemm(dtype)
        if not exact and _winograd_pays(c, m, kernel, strides, dilations, out):
            return lambda x, wmat, bias=None, z=None, act=None: _finish(
                _conv_winograd(x.astype(dtype, copy=False), wmat, m, out, begin, bias, gemm),
                z, act,
            )  # fmt: skip
        ph = cached_phases(
            x_shape, tuple(kernel), tuple(strides), tuple(dilations), out, begin, end
        )
        if _taps_pay(c, m, kernel, out, ph):
            return _TapsPlan(x_shape, m, ph, out, begin, dtype)
    return _ColumnsPlan(x_shape, m, g, kernel, strides, dilations, out, begin, end, dtype)


@functools.lru_cache(maxsize=1024)
def _cached_geometry(in_shape, kernel, strides, dilations, pads, auto_pad):
    """:func:`window_geometry` for hashable arguments, computed once per geometry: a model runs
    the same few shapes every time."""
    geo = window_geometry(in_shape, kernel, strides, dilations, pads, auto_pad)
    return tuple(tuple(v) for v in geo)  # immutable: every caller shares the cached value


@functools.lru_cache(maxsize=256)
def cached_phases(x_shape, kernel, strides, dilations, out, begin, end) -> _Phases:
    """The :class:`_Phases` layout of a 2-D window geometry (tuples), built once per geometry;
    shared with the pooling kernels."""
    return _Phases(x_shape, kernel, strides, dilations, out, begin, end)


_PLANS: dict = {}  # (id(attrs), shapes, dtype) -> (attrs, plan): conv_core's plans


class _Plan1D:
    """A 1-D convolution as the 2-D plan ``inner`` over a single row, taking the activation
    ``code`` through where ``inner`` takes one (:func:`takes_code`; a wrapper that did not made
    Silero's 64 -> 64 channels over 2 frames apply its Relu in a separate pass)."""

    __slots__ = ("inner",)

    def __init__(self, inner) -> None:
        self.inner = inner

    def __call__(self, x, wmat, bias=None, z=None, act=None, code=None) -> np.ndarray:
        if z is not None and z.ndim != 3:  # a broadcast residual: at the end
            return _finish(self.inner(x[:, :, None], wmat, bias)[:, :, 0], z, act)
        zz = None if z is None else z[:, :, None]
        if code is None:
            return self.inner(x[:, :, None], wmat, bias, zz, act)[:, :, 0]
        return self.inner(x[:, :, None], wmat, bias, zz, act, code)[:, :, 0]


#: the plans that apply an activation ``code`` as they write the output
_COMPILED_EPILOGUE = (
    _DirectPlan, _DepthwiseNHWCPlan, _GatherPlan, _PointwisePlan, _ChannelsLastPlan
)  # fmt: skip
_PLAN_LIMIT = 4096


def conv_core(
    x: np.ndarray,
    wmat: np.ndarray,
    m: int,
    attrs: ops.Window,
    w_spatial: Sequence[int],
    bias: np.ndarray | None = None,
    z: np.ndarray | None = None,
    act=None,
    code: tuple[int, float, float] | None = None,
    exact: bool = False,
) -> np.ndarray:
    """Convolution of ``x`` (already in the compute dtype) with packed weights, plus ``bias`` (M
    values in the compute dtype) when given; then FusedConv's epilogue, in place: ``+ z`` (the
    residual, in the compute dtype) and ``act(y)`` (an in-place activation), applied chunk by
    chunk while the output is in cache where the plan computes it in chunks. ``code`` is the
    same activation as :mod:`._conv_jit`'s (code, alpha, beta): the compiled plans apply it as
    they write each output (used when there is no residual ``z``; other plans use ``act``). The
    plan (:func:`_make_plan`) is made once per node (its ``attrs``) and input shape. ``exact``:
    integers in float32 whose sums stay exact (the integer convolutions): every plan but
    Winograd's, whose transforms would round them."""
    plan = conv_plan(x.shape, x.dtype, wmat, m, attrs, w_spatial, exact)
    if code is not None and takes_code(plan, z is not None):
        return plan(x, wmat, bias, z, None, code)
    return plan(x, wmat, bias, z, act)


def conv_plan(x_shape, x_dtype, wmat, m, attrs: ops.Window, w_spatial, exact: bool = False):
    """The plan :func:`conv_core` runs for these arguments (made once, as it makes it), for a
    kernel that calls it directly on later runs of the same shape."""
    key = (id(attrs), x_shape, x_dtype, wmat.shape, m, tuple(w_spatial), exact)
    hit = _PLANS.get(key)
    if hit is None or hit[0] is not attrs:
        hit = (attrs, _make_plan(x_shape, x_dtype, wmat.shape, m, attrs, w_spatial, exact))
        if len(_PLANS) >= _PLAN_LIMIT:
            _PLANS.clear()
        _PLANS[key] = hit
    return hit[1]


def takes_code(plan, residual: bool = False) -> bool:
    """Whether ``plan`` applies an activation ``code`` as it writes the output, after a
    ``residual`` where there is one (:class:`_PointwisePlan`; the others then take ``act``)."""
    if isinstance(plan, _Plan1D):
        plan = plan.inner
    if residual:
        return isinstance(plan, _PointwisePlan)
    return isinstance(plan, _COMPILED_EPILOGUE)


#: the activation code of none (see :mod:`._elementwise_jit`)
NO_CODE = (0, 0.0, 0.0)


def bind_plan(plan, x_shape, wmat, bias, code=NO_CODE):
    """``fast(x) -> y``: ``plan(x, wmat, bias, code=code)`` for inputs of ``x_shape`` with its
    arguments bound now, or None where the plan has no such call. For small layers that no
    thread count shares (the compiled plans' ``bound``: :class:`_DirectPlan`,
    :class:`_DepthwiseNHWCPlan`, :class:`_PointwisePlan`, :class:`_ChannelsLastPlan`,
    :class:`_GatherPlan`, and :class:`_Plan1D` over them), whose run was mostly the plan's own
    Python: the forms of the weights and bias, the layout by shape and threads, the split test.
    The caller keeps to it while the weights and bias are the same constant arrays (an OCR
    classifier's 1x1 layer of 88 -> 16 channels on 3 x 12: 12.9 -> 11.5 us a one-node run;
    Silero's Conv1d layers)."""
    inner = plan.inner if isinstance(plan, _Plan1D) else plan
    bound = getattr(inner, "bound", None)
    if bound is None or not isinstance(inner, _COMPILED_EPILOGUE):
        return None
    if inner is plan:
        return bound(tuple(x_shape), wmat, bias, tuple(code))
    fast = bound((*x_shape[:2], 1, *x_shape[2:]), wmat, bias, tuple(code))
    if fast is None:
        return None
    return lambda x: fast(x[:, :, None])[:, :, 0]


def bind_residual(plan, x_shape, wmat, bias, code, act):
    """``fast(x, z) -> y``: FusedConv's ``plan(x, wmat, bias, z, ...)`` with a residual ``z``
    (the output's shape or one that broadcasts to it) and its activation ``act`` (``code``
    where it has one, else None), bound as :func:`bind_plan` binds, or None: the residual read
    as the output is written and the ``code`` applied after it where the plan does so
    (:func:`takes_code`'s residual), else the plan's bound call then the residual and ``act``
    on its output."""
    if isinstance(plan, _Plan1D):  # (its residual's own axis: the plan's own call)
        return None
    if takes_code(plan, True) and (code is not None or act is None):
        return bind_plan(plan, x_shape, wmat, bias, code or NO_CODE)
    fast = bind_plan(plan, x_shape, wmat, bias)
    if fast is None:
        return None
    return lambda x, z: _finish(fast(x), z, act)


def add_bias(y: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``y += b`` for (N, M, ...) ``y`` and M values ``b`` (in place: ``y`` is the kernel's)."""
    if b is not None:
        bias = b.astype(y.dtype, copy=False).reshape(-1, *([1] * (y.ndim - 2)))
        per_row(np.add, y, bias, out=y, row=math.prod(y.shape[2:]))
    return y


@builder("Conv", since=(1, 11, 22), dtypes=FLOAT_TYPES, check=conv_check())
def conv(info):
    attrs = ops.Window.from_attrs(info.attrs)
    w_const = info.constant(1)
    dt = info.input_dtype(0)
    packed = None
    if w_const is not None and dt is not None:
        packed = pack_weights(w_const, attrs.group, compute_dtype(dt))
    plans: dict = {}  # per input shape and dtype (and weight shape, for weights fed at run time)
    prewarm(attrs, None if w_const is None else w_const.shape, info, packed)
    b_const = info.constant(2) if info.has_input(2) else None
    # the last input shape's bound call (bind_plan), while the weights and bias are constants:
    # (shape, dtype, bias, call)
    fast: list = [(None, None, None, None)]

    def run(x, w, b=None):
        shape, dtype, bias, call = fast[0]
        if x.shape == shape and x.dtype is dtype and b is bias:
            return call(x)
        cdt = compute_dtype(x.dtype)
        if packed is not None and packed.dtype == cdt:
            wmat, key = packed, (x.shape, x.dtype)
        else:
            wmat, key = pack_weights(w, attrs.group, cdt), (x.shape, x.dtype, w.shape)
        plan = plans.get(key)
        if plan is None:
            plan = _make_plan(x.shape, x.dtype, wmat.shape, w.shape[0], attrs, w.shape[2:])
            if len(plans) < 64:
                plans[key] = plan
            if wmat is packed and x.dtype == cdt and (b is None) == (b_const is None):
                if b is None or (b is b_const and b.dtype == cdt):
                    call = bind_plan(plan, x.shape, wmat, b)
                    fast[0] = (x.shape, x.dtype, b, call) if call else fast[0]
        y = plan(x, wmat, b if b is None or b.dtype == cdt else b.astype(cdt))
        return y if y.dtype == x.dtype else y.astype(x.dtype)

    return run


# -- ConvTranspose -------------------------------------------------------------------------------
def conv_transpose_core(x, wmat, attrs: ops.Window, w_spatial, bias=None, tile=None) -> np.ndarray:
    """ConvTranspose of ``x`` (compute dtype) with (g, C/g, M/g*K) weights, plus ``bias`` (M,)
    where given; ``tile``: the compiled :func:`._conv_jit.tile_windows` (or None), for 2-D
    windows that tile the output."""
    nd = x.ndim - 2
    kernel, strides, dilations = resolve(attrs, nd, w_spatial)
    g = attrs.group
    n, c = x.shape[:2]
    in_shape = x.shape[2:]
    mg = wmat.shape[2] // math.prod(kernel)
    m = mg * g
    # (n, g, Mg*K, P), shared among the run's threads (np.matmul ran on one: numpy's BLAS
    # keeps one thread during runs)
    cols = _blas.matmul(wmat.transpose(0, 2, 1), x.reshape(n, g, c // g, math.prod(in_shape)))
    cols = cols.reshape(n, m, *kernel, *in_shape)
    out_shape, begin, _ = attrs.transpose_geometry(in_shape, w_spatial)
    if (
        tuple(kernel) == tuple(strides)
        and all(d == 1 for d in dilations)
        and all(b == 0 for b in begin)
        and tuple(out_shape) == tuple(i * s for i, s in zip(in_shape, strides, strict=True))
    ):
        # windows that tile the output without overlapping (a 2 x 2 kernel at stride 2, an
        # OCR detector's upsampling): output cell i * s + k is window offset k of input cell
        # i, written once (the bias added on the way) instead of summed into a zeroed canvas
        # and added to again (24 channels, 160 x 160 -> 320 x 320: the canvas, its four sums
        # and the bias 8.4 + 2 ms; numpy's four strided writes 4.6 ms; the compiled loop of
        # :func:`._conv_jit.tile_windows` 1.1 ms)
        y = np.empty((n, m, *out_shape), cols.dtype)
        if tile is not None and nd == 2:
            tile(cols, bias if bias is not None else np.zeros(0, cols.dtype), y)
            return y
        b = None if bias is None else bias.reshape(1, m, *([1] * nd))
        head = (slice(None), slice(None))
        for offset in itertools.product(*(range(k) for k in kernel)):
            dst = y[head + tuple(slice(o, None, st) for o, st in zip(offset, strides, strict=True))]
            if b is None:
                dst[...] = cols[head + offset]
            else:
                np.add(cols[head + offset], b, out=dst)
        return y
    # canvas covering both what the kernels write and the requested output window
    lo = [min(0, b) for b in begin]
    span = [
        (i - 1) * s + (k - 1) * d + 1
        for i, s, k, d in zip(in_shape, strides, kernel, dilations, strict=True)
    ]
    hi = [max(sp, b + o) for sp, b, o in zip(span, begin, out_shape, strict=True)]
    canvas = np.zeros((n, m, *(h - l for h, l in zip(hi, lo, strict=True))), dtype=x.dtype)
    head = (slice(None), slice(None))
    for offset in itertools.product(*(range(k) for k in kernel)):
        region = tuple(
            slice(k * d - l, k * d - l + (i - 1) * s + 1, s)
            for k, d, l, i, s in zip(offset, dilations, lo, in_shape, strides, strict=True)
        )
        canvas[head + region] += cols[head + offset]
    window = tuple(slice(b - l, b - l + o) for b, l, o in zip(begin, lo, out_shape, strict=True))
    y = canvas[head + window]
    return y if bias is None else y + bias.reshape(-1, *([1] * nd))


@builder("ConvTranspose", since=(1, 11, 22), dtypes=FLOAT_TYPES, check=conv_check(transpose=True))
def conv_transpose(info):
    attrs = ops.Window.from_attrs(info.attrs)
    w_const = info.constant(1)
    dt = info.input_dtype(0)

    def pack(w, cdt):  # (C, M/g, *k) -> (g, C/g, M/g*K)
        return np.ascontiguousarray(w.reshape(attrs.group, w.shape[0] // attrs.group, -1), cdt)

    packed = pack(w_const, compute_dtype(dt)) if w_const is not None and dt is not None else None
    # the compiled scatter of windows that tile the output, loaded now (not in every run)
    two_d = w_const is None or w_const.ndim == 4
    tile = _conv_jit.warm_tile() if two_d and jit_available() else None

    def run(x, w, b=None):
        cdt = compute_dtype(x.dtype)
        wmat = packed if packed is not None else pack(w, cdt)
        bias = None if b is None else b.astype(cdt, copy=False)
        y = conv_transpose_core(x.astype(cdt, copy=False), wmat, attrs, w.shape[2:], bias, tile)
        return np.ascontiguousarray(y).astype(x.dtype, copy=False)

    return run


# -- integer convolutions ----------------------------------------------------------------------
#: float32 holds every integer below 2**24 exactly: a convolution of centred 8-bit integers whose
#: every partial sum stays below it is computed exactly by the float32 plans, in any order
_EXACT_F32 = float(1 << 24)


def _centered(v: np.ndarray, zero_point, per_channel_axis0: bool, dtype=np.float64) -> np.ndarray:
    """``v - zero_point`` in ``dtype`` (zero_point scalar, or one per output channel)."""
    out = v.astype(dtype)
    if zero_point is None:
        return out
    zp = np.asarray(zero_point).astype(dtype)
    if per_channel_axis0 and zp.size > 1:
        zp = zp.reshape(-1, *([1] * (v.ndim - 1)))
    elif zp.size == 1:
        zp = zp.reshape(())
    return out - zp


def _int_conv(attrs: ops.Window, x, w, x_zp, w_zp, packed, center=None) -> np.ndarray:
    """The integer convolution ``(x - x_zp) * (w - w_zp)``, exact: in float32 where the packed
    weights were found to keep it exact (:func:`_prepacked_int_weights`), else in float64.
    ``center``: the compiled dequantization, which centres the input in one pass."""
    if packed is None:
        packed = pack_weights(_centered(w, w_zp, True), attrs.group, np.dtype(np.float64))
    blocks = packed if isinstance(packed, list) else None
    exact = blocks is not None or packed.dtype == np.float32
    if exact and center is not None and (x_zp is None or np.size(x_zp) == 1):
        zp = np.float32(0 if x_zp is None else np.asarray(x_zp).reshape(()))
        xc = np.empty(x.shape, np.float32)
        center(x.reshape(1, 1, -1), _ONE, np.full(1, zp, np.float32), xc.reshape(1, 1, -1))
    else:
        xc = _centered(x, x_zp, False, np.float32 if exact else packed.dtype)
    if blocks is None:
        return conv_core(xc, packed, w.shape[0], attrs, w.shape[2:], exact=exact)
    # blocks of input channels, each exact in float32, summed exactly in float64
    acc = None
    for c0, c1, part in blocks:
        xb = np.ascontiguousarray(xc[:, c0:c1])
        y = conv_core(xb, part, w.shape[0], attrs, w.shape[2:], exact=True)
        acc = y.astype(np.float64) if acc is None else np.add(acc, y, out=acc)
    return acc


_ONE = np.ones(1, np.float32)


def _prepacked_int_weights(info, w_index: int, zp_index: int):
    """The centred constant weights packed for :func:`conv_core`: float32 when no output's sum
    can reach 2**24 (sum of |w - w_zp| over its inputs times 255, the most |x - x_zp| of 8-bit
    inputs; true of most CNN layers: MobileNetV2's widest has K = 960); else, for one group, a
    list (c0, c1, packed float32) of blocks of input channels that each stay below it (their
    sum is taken in float64); else float64."""
    w, zp = info.constant(w_index), info.constant(zp_index)
    if w is None or (info.has_input(zp_index) and zp is None):
        return None
    centred = _centered(w, zp, True)
    group = int(info.attr("group", 1))
    bound = np.abs(centred).reshape(w.shape[0], -1).sum(axis=1).max(initial=0.0) * 255.0
    if bound < _EXACT_F32:
        return pack_weights(centred, group, np.dtype(np.float32))
    if group == 1 and w.ndim >= 3:
        # wide layers (YOLO's 128- and 256-channel 3x3s): blocks of input channels whose sums
        # stay exact, each a float32 convolution, instead of one float64 convolution
        per_channel = np.abs(centred).reshape(w.shape[0], w.shape[1], -1).sum(axis=2) * 255.0
        blocks, c0, run = [], 0, np.zeros(w.shape[0])
        for c in range(w.shape[1]):
            if c > c0 and (run + per_channel[:, c]).max() >= _EXACT_F32:
                blocks.append((c0, c))
                c0, run = c, np.zeros(w.shape[0])
            run = run + per_channel[:, c]
        blocks.append((c0, w.shape[1]))
        if all(per_channel[:, a:b].sum(axis=1).max() < _EXACT_F32 for a, b in blocks):
            return [
                (a, b, pack_weights(np.ascontiguousarray(centred[:, a:b]), 1, np.dtype(np.float32)))
                for a, b in blocks
            ]
    return pack_weights(centred, group, np.dtype(np.float64))


@builder("ConvInteger", since=10, dtypes={0: INT8_TYPES, 1: INT8_TYPES}, check=conv_check())
def conv_integer(info):
    attrs, packed = ops.Window.from_attrs(info.attrs), _prepacked_int_weights(info, 1, 3)

    def run(x, w, x_zero_point=None, w_zero_point=None):
        y = _int_conv(attrs, x, w, x_zero_point, w_zero_point, packed)
        return np.rint(y).astype(np.int32)

    return run


@builder("QLinearConv", since=10, dtypes={0: INT8_TYPES, 3: INT8_TYPES}, check=conv_check(3))
def qlinear_conv(info):
    """The exact integer convolution plus the int32 bias, requantized as onnxruntime does: the
    sum as float32 times the float32 multiplier x_scale * w_scale / y_scale, rounded half to
    even, plus the zero point, saturated. (onnxruntime's u8s8 kernels on x86 CPUs without VNNI
    sum pairs of products in saturating 16-bit lanes and can differ from the exact result; see
    docs/compatibility.md.)"""
    attrs = ops.Window.from_attrs(info.attrs)
    consts = [info.constant(i) for i in (1, 4, 6, 7)]
    fixed = None
    if all(c is not None for c in consts):  # scales and zero point known: the multiplier once
        fixed = _requant_params(*consts, info.input_dtype(0))
    m_out = None if info.constant(3) is None else info.constant(3).shape[0]
    no_bias = np.zeros(m_out or 1, np.float32)
    b_const = info.constant(8) if info.has_input(8) else None
    # per output channel, once: what the compiled requantization reads on every run
    bias32 = None if b_const is None or m_out is None else _per_channel(b_const, m_out)
    mult32 = None if fixed is None or m_out is None else _per_channel(fixed[0], m_out)

    vnni = _vnni_conv(info, attrs, fixed, bias32, mult32)
    general: list = []  # the float path's packed weights and compiled passes, made once

    def float_path():
        if not general:
            packed = _prepacked_int_weights(info, 3, 5)
            center = _quant_jit.warm_dequantize() if packed is not None else None
            requant = _quant_jit.warm_requantize() if center is not None else None
            general.append((packed, center, requant))
        return general[0]

    depthwise = None
    if vnni is None:
        # (the VNNI path takes every input of rank 4: where it exists, the float path's weights
        # are packed at the first run that needs them, not at the session's creation)
        depthwise = _depthwise_quant_conv(info, attrs, float_path()[0], fixed, bias32, mult32)

    def run(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, b=None):
        if vnni is not None and x.dtype == np.uint8 and x.ndim == 4:
            return vnni(x, x_zero_point)
        if depthwise is not None and x.ndim == 4 and np.size(x_zero_point) <= 1:
            return depthwise(x, x_zero_point)
        packed, center, requant = float_path()
        acc = _int_conv(attrs, x, w, x_zero_point, w_zero_point, packed, center)
        mult, zp, lo, hi, out_dt = fixed or _requant_params(
            x_scale, w_scale, y_scale, y_zero_point, x.dtype
        )
        if requant is not None and acc.dtype == np.float64 and acc.ndim >= 3:
            # blocks summed in float64: add the bias exactly, round once to float32
            if b is not None:
                acc += b.astype(np.float64).reshape(-1, *([1] * (acc.ndim - 2)))
                b = None
            acc = acc.astype(np.float32)
        if requant is not None and acc.dtype == np.float32 and acc.ndim >= 3:
            # (acc + bias) * multiplier, rounded, shifted, saturated: one compiled pass
            m = acc.shape[1]
            if b is None:
                bias = no_bias if no_bias.size == m else np.zeros(m, np.float32)
            else:
                bias = bias32 if bias32 is not None else _per_channel(b, m)
            mult = mult32 if mult32 is not None else _per_channel(mult, m)
            y = np.empty(acc.shape, out_dt)
            requant(
                acc.reshape(acc.shape[0], m, -1), bias, mult, zp, lo, hi,
                y.reshape(acc.shape[0], m, -1),
            )  # fmt: skip
            return y
        if acc.dtype != np.float32:
            if b is not None:
                acc = acc + b.astype(np.float64).reshape(-1, *([1] * (acc.ndim - 2)))
            acc = acc.astype(np.float32)  # the int32 sum as float, rounded once
        elif b is not None:
            acc += b.astype(np.float32).reshape(-1, *([1] * (acc.ndim - 2)))
        if mult.size > 1:
            mult = mult.reshape(-1, *([1] * (acc.ndim - 2)))
        acc *= mult
        np.rint(acc, out=acc)
        acc += zp
        np.clip(acc, lo, hi, out=acc)
        return acc.astype(out_dt)

    return run


def _depthwise_quant_conv(info, attrs: ops.Window, packed, fixed, bias32, mult32):
    """A depthwise QLinearConv (one output per input channel, a 2-D window) in one compiled pass
    per channel (:func:`._conv_jit._depthwise_quant`), its channels shared among the run's
    threads: ``run(x, x_zero_point)``, for constant weights whose centred sums stay exact in
    float32 (``packed``, :func:`_prepacked_int_weights`), constant scales, zero points and bias;
    None otherwise. It computes the float path's bytes (centring, the direct kernel, the
    requantization) without its two passes over the layer between them, which ran on one
    thread: MobileNetV2-QDQ's depthwise layers were more than half of its time."""
    w = info.constant(3)
    if (
        fixed is None
        or not isinstance(packed, np.ndarray)
        or packed.dtype != np.float32
        or w is None
        or w.ndim != 4
        or w.shape[1] != 1
        or attrs.group != w.shape[0]
        or (info.has_input(8) and bias32 is None)
        or info.input_dtype(0) is None
        or not jit_available()
    ):
        return None
    _, zy, lo, hi, out_dt = fixed
    fn = _conv_jit.warm_quant(info.input_dtype(0), out_dt)
    if fn is None:
        return None
    m, taps = w.shape[0], w.shape[2] * w.shape[3]
    wc = np.ascontiguousarray(packed.reshape(m, taps))
    bias = bias32 if bias32 is not None else np.zeros(m, np.float32)
    zy, lo, hi = np.float32(zy), np.float32(lo), np.float32(hi)
    kernel, strides, dilations = resolve(attrs, 2, w.shape[2:])
    split = _threads.will_split(info.provider)
    # output rows of at most CL_MAX_OW cells take the channels-last kernel, on its own copy of
    # the weights, biases and multipliers (made, with the kernel loaded, when first needed)
    layouts: list = []
    shape = info.input_shape(0)
    if split:  # loaded now, not in the first run
        _conv_pieces().quant_address(info.input_dtype(0), out_dt)

    def channels_last():
        if not layouts:
            cl = _conv_jit.warm_quant_cl(info.input_dtype(0), out_dt)
            arrays = _conv_jit.cl_weights(wc, bias, mult32)
            if split:
                _conv_pieces().quant_address(info.input_dtype(0), out_dt, True)
            layouts.append((cl, *arrays))
        return layouts[0]

    def geometry_of(x_shape):
        out, begin, _, _ = _cached_geometry(
            tuple(x_shape[2:]), tuple(kernel), tuple(strides), tuple(dilations),
            None if attrs.pads is None else tuple(attrs.pads), attrs.auto_pad,
        )  # fmt: skip
        plan = _DirectPlan(None, x_shape, m, m, kernel, strides, dilations, out, begin)
        # the direct kernel's geometry but its row chunk and mode (the quantized kernel writes
        # whole rows); whether it is shared, and its pieces' argument blocks by input zero point
        y_shape = (x_shape[0], m, *plan.out)
        shared = split and _direct_split_pays(math.prod(y_shape), y_shape, taps)
        ints = plan.args[:-2]  # the pieces' blocks hold all ten; the channels-last kernel reads 8
        kernel_args = (fn, wc, bias, mult32, ints)
        if len(plan.out) == 2 and plan.out[1] <= _conv_jit.CL_MAX_OW:
            cl, *arrays = channels_last()
            if cl is not None:
                kernel_args = (cl, *arrays, ints[:8])
        return y_shape, ints, shared, {}, kernel_args

    if shape is not None and len(shape) == 4 and all(isinstance(d, int) for d in shape):
        geometry: dict = {tuple(shape): geometry_of(tuple(shape))}
    else:
        geometry = {}

    def run(x, x_zero_point):
        args = geometry.get(x.shape)
        if args is None:
            args = geometry[x.shape] = geometry_of(x.shape)
        y_shape, ints, shared, blocks, (kernel_fn, kw_, kb, km, kernel_ints) = args
        zx = np.float32(0 if x_zero_point is None else np.asarray(x_zero_point).reshape(()))
        x = np.ascontiguousarray(x)
        y = np.empty(y_shape, out_dt)
        if shared:
            template = blocks.get(zx)
            if template is None:
                if len(blocks) >= 8:  # (a zero point that changes from run to run)
                    blocks.clear()
                template = blocks[zx] = _conv_pieces().quant_block(
                    x.shape, kw_, kb, km, y_shape, ints, (zx, zy, lo, hi)
                )
            if _conv_pieces().split_quant(template, x, y, kernel_fn is not fn):
                return y
        kernel_fn(x, zx, kw_, kb, km, zy, lo, hi, y, 0, m, *kernel_ints)
        return y

    return run


def _vnni_conv(info, attrs: ops.Window, fixed, bias32, mult32):
    """A QLinearConv of one group on AVX-512 VNNI (:mod:`._vnni`): ``run(x, x_zero_point)`` for
    uint8 input, constant int8 weights with zero zero points, constant scales and bias, a 2-D
    window; None otherwise (or where the CPU lacks VNNI, or compiled kernels are off): the
    float path computes the same bytes. A 1x1 window at stride 1 without pads reads the input
    as it is; other windows read a uint8 column matrix, padded with the input's zero point (a
    centred zero, as the float path's padding is)."""
    w, w_zp = info.constant(3), info.constant(5) if info.has_input(5) else None
    if (
        fixed is None
        or w is None
        or w.dtype != np.int8
        or w.ndim != 4
        or info.input_dtype(0) != np.uint8
        or (info.has_input(5) and (w_zp is None or np.any(w_zp)))
        or (info.has_input(8) and bias32 is None)
        or attrs.group != 1
        or not jit_available()
    ):
        return None
    from . import _vnni

    if not _vnni.available():  # (compiles the kernels the first time)
        return None
    m, c = w.shape[:2]
    k = c * w.shape[2] * w.shape[3]
    if k > _vnni.MAX_K:  # (sums the tiles' int32 arithmetic could not hold exactly)
        return None
    wq, wsum = _vnni.pack_weights(np.ascontiguousarray(w.reshape(m, k)))
    bias = bias32 if bias32 is not None else np.zeros(m, np.float32)
    mult = mult32 if mult32 is not None else _per_channel(fixed[0], m)
    _, zero, lo, hi, out_dt = fixed
    k4 = -(-k // 4)
    pointwise = (
        w.shape[2:] == (1, 1)
        and all(s == 1 for s in attrs.strides or ())
        and not any(attrs.pads or ())
        and attrs.auto_pad in (None, "NOTSET", "VALID")
    )
    will_split = _threads.will_split(info.provider)
    kernel, strides, dilations = resolve(attrs, 2, w.shape[2:])
    # a window at stride 1 or 2 over four channels and more reads the image packed once, four
    # channels to a word, each tap a shifted run of it (_vnni.pack_quads / conv_quads): no
    # column matrix of every tap's bytes, whose packing took as long as the products (32 -> 32
    # channels 3 x 3 over 80 x 80: 531 -> 313 us, one thread)
    quads = (
        not pointwise
        and tuple(dilations) == (1, 1)
        and strides[0] == strides[1] in (1, 2)
        and (c % 4 == 0 or c >= 16)
    )
    if quads:
        wq4, wsum4 = _vnni.pack_weights_quads(w)
    if will_split:  # loaded now, not in the first run
        for address in (
            (_vnni.piece_address, _vnni.pixels_address)
            if pointwise
            else (_vnni.quads_address if quads else _vnni.rows_address,)
        ):
            address(out_dt)
    window = (*w.shape[2:], *strides, *dilations)
    shapes: dict = {}  # by input shape and zero point: the layer's geometry and pieces' block
    conv_rows, pack_input, qgemm, pack_quads, conv_quads, unflat = (
        f.get()
        for f in (_vnni.conv_rows, _vnni.pack_input, _vnni.qgemm, _vnni.pack_quads,
                  _vnni.conv_quads, _vnni.unflat)
    )  # fmt: skip

    def layout(x_shape, zx):
        """(output cells (OH, OW), padding (begin, end) or None for a pointwise layer, the
        pieces' argument block or None where the work stays on the calling thread, and for a
        window read from the image packed once its geometry (stride, the phase planes' rows and
        width, the taps' offsets, the packed image's words, the flat output's cells), else
        None) for inputs of ``x_shape`` and zero point ``zx``."""
        if pointwise:
            out, pads = tuple(x_shape[2:]), None
        else:
            out, begin, _, end = _cached_geometry(
                tuple(x_shape[2:]), tuple(kernel), tuple(strides), tuple(dilations),
                None if attrs.pads is None else tuple(attrs.pads), attrs.auto_pad,
            )  # fmt: skip
            pads = (begin, end)
        p = out[0] * out[1]
        shared = will_split and m * k * p >= VNNI_SPLIT_WORK
        template, floats = None, (zero, lo, hi)
        if quads and min(*pads[0], *pads[1]) >= 0:
            s = strides[0]
            hq, wq_, table = _vnni.quads_geometry(x_shape, kernel, s, pads[0], out)
            size = s * s * -(-c // 4) * hq * wq_ + 2 * _vnni.TILE_P  # a tile's reads of slack
            flat = out[0] * wq_
            if shared:
                template = _vnni.quads_block(
                    size, table, wq4, wsum4, bias, mult, m, flat, zx, floats
                )
            return out, pads, template, (s, hq, wq_, table, size, flat)
        if shared and pads is not None:  # rows of outputs, each packing its own windows
            padded = (max(d + b + e, 0) for d, b, e in zip(x_shape[2:], *pads, strict=True))
            xp_shape = (c, *padded)
            template = _vnni.rows_block(
                xp_shape, window, out[1], wq, wsum, bias, mult, (m, p), zx, floats
            )
        elif shared and p > _vnni.TILE_P:  # tiles of pixels, each thread packing its own
            template = _vnni.pixels_block(k, p, wq, wsum, bias, mult, m, zx, floats)
        elif shared:  # tiles of channels of the input packed here
            p_pad = -(-p // _vnni.TILE_P) * _vnni.TILE_P
            template = _vnni.channels_block(k4, p_pad, wq, wsum, bias, mult, m, p, zx, floats)
        return out, pads, template, None

    def run(x, x_zero_point):
        zx = 0 if x_zero_point is None else int(np.asarray(x_zero_point).reshape(()))
        key = (x.shape, zx)
        found = shapes.get(key)
        if found is None:
            if len(shapes) >= 16:  # (shapes or zero points that change from run to run)
                shapes.clear()
            found = shapes[key] = layout(x.shape, zx)
        out, pads, template, quad = found
        if quad is not None:  # the image packed once, four channels to a word
            return quad_run(x, zx, out, pads[0], template, *quad)
        cols = None if pads is None else pad_to(x, *pads, zx)  # the padded images
        n = x.shape[0]
        p = out[0] * out[1]
        p_pad = -(-p // _vnni.TILE_P) * _vnni.TILE_P
        y = np.empty((n, m, *out), out_dt)
        xq = None  # the packed input, for images packed on this thread
        z = np.int32(zx)
        for i in range(n):
            yi = y[i].reshape(m, p)
            if cols is not None:  # rows of outputs, each packing its own windows
                xp = np.ascontiguousarray(cols[i])
                if template is None or not _vnni.split_rows(template, xp, yi, out[0]):
                    conv_rows(
                        xp, *window, out[1], 0, out[0], wq, wsum, z, bias, mult, zero, lo, hi, yi
                    )
                continue
            xi = np.ascontiguousarray(x[i]).reshape(k, p)
            if template is not None and p > _vnni.TILE_P and _vnni.split_pixels(template, xi, yi):
                continue
            if xq is None:
                xq = np.empty((k4, p_pad), np.uint32)
            pack_input(xi, k4, p_pad, xq)
            if template is None or not _vnni.split(template, xq, yi):
                qgemm(xq, wq, wsum, z, bias, mult, zero, lo, hi, yi, 0, m, 0, p)
        return y

    def quad_run(x, zx, out, begin, template, s, hq, wq_, table, size, flat):
        x = np.ascontiguousarray(x)
        y = np.empty((x.shape[0], m, *out), out_dt)
        xw = np.empty(size, np.uint32)
        yf = np.empty((m, flat), out_dt)
        z = np.int32(zx)
        for i in range(x.shape[0]):
            pack_quads(x[i], np.uint8(zx), begin[0], begin[1], s, hq, wq_, xw)
            if template is None or not _vnni.split_quads(template, xw, yf):
                conv_quads(
                    xw, table, wq4, wsum4, z, bias, mult, zero, lo, hi, yf, 0,
                    -(-flat // _vnni.TILE_P),
                )  # fmt: skip
            unflat(yf, wq_, y[i])
        return y

    return run


def _per_channel(v, m: int) -> np.ndarray:
    """``v`` (one value, or one per channel) as m contiguous float32 values."""
    v = np.asarray(v, np.float32).reshape(-1)
    return np.ascontiguousarray(v if v.size == m else np.broadcast_to(v, (m,)))


def _requant_params(x_scale, w_scale, y_scale, y_zero_point, x_dtype):
    """(multiplier float32 [per channel], zero point, lowest, highest, output dtype)."""
    w_scale = np.asarray(w_scale, np.float32).reshape(-1)
    mult = (np.float32(np.asarray(x_scale).reshape(())) * w_scale) / np.float32(
        np.asarray(y_scale).reshape(())
    )
    mult = mult.astype(np.float32)
    zp_arr = y_zero_point if y_zero_point is not None else np.zeros((), x_dtype)
    out_dt = np.dtype(zp_arr.dtype)
    lim = np.iinfo(out_dt)
    zp = np.float32(np.asarray(zp_arr).reshape(()))
    return mult, zp, np.float32(lim.min), np.float32(lim.max), out_dt


# -- DeformConv ----------------------------------------------------------------------------------
def _bilinear_gather(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Sample (N, C, H, W) ``img`` at (N, S) points, bilinearly, zero outside: (N, S, C)."""
    n, c, h, w = img.shape
    flat = img.reshape(n, c, h * w).transpose(0, 2, 1)  # (N, HW, C)
    rows = np.arange(n)[:, None]
    y0, x0 = np.floor(ys), np.floor(xs)
    out = np.zeros((n, ys.shape[1], c), img.dtype)
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        yy, xx = y0 + dy, x0 + dx
        weight = (1 - np.abs(ys - yy)) * (1 - np.abs(xs - xx))
        weight = weight * ((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w))
        idx = (np.clip(yy, 0, h - 1) * w + np.clip(xx, 0, w - 1)).astype(np.intp)
        out += flat[rows, idx] * weight[..., None].astype(img.dtype)
    return out


def deform_columns(x, offset, mask, kernel, strides, dilations, pads, offset_group):
    """(N, C, K, P) deformable im2col of (N, C, H, W) ``x``."""
    n, c = x.shape[:2]
    oh, ow = offset.shape[2:]
    kh, kw = kernel
    base_y = (
        -pads[0] + np.arange(kh)[:, None, None, None] * dilations[0]
        + np.arange(oh)[None, None, :, None] * strides[0]
    )  # fmt: skip
    base_x = (
        -pads[1] + np.arange(kw)[None, :, None, None] * dilations[1]
        + np.arange(ow)[None, None, None, :] * strides[1]
    )  # fmt: skip
    off = offset.reshape(n, offset_group, kh, kw, 2, oh, ow).astype(x.dtype, copy=False)
    m = None if mask is None else mask.reshape(n, offset_group, kh * kw * oh * ow)
    cpg = c // offset_group
    parts = []
    for og in range(offset_group):
        ys = (base_y + off[:, og, :, :, 0]).reshape(n, -1)
        xs = (base_x + off[:, og, :, :, 1]).reshape(n, -1)
        vals = _bilinear_gather(x[:, og * cpg : (og + 1) * cpg], ys, xs)  # (N, K*P, Cpg)
        if m is not None:
            vals *= m[:, og, :, None].astype(x.dtype, copy=False)
        parts.append(vals.transpose(0, 2, 1).reshape(n, cpg, kh * kw, oh * ow))
    return np.concatenate(parts, axis=1)


def _check_deform(info) -> str | None:
    reason = conv_check()(info)
    if reason:
        return reason
    nd = ops.Window.from_attrs(info.attrs).spatial_rank(None, _rank(info.input_shape(1)))
    return None if nd in (2, None) else "DeformConv runs 2-D convolutions only"


def _rank(shape) -> int | None:
    return None if shape is None else len(shape)


@builder("DeformConv", since=(19, 22), dtypes=FLOAT_TYPES, check=_check_deform)
def deform_conv(info):
    attrs = ops.Window.from_attrs(info.attrs)
    offset_group = int(info.attr("offset_group", 1))
    pads = list(attrs.pads or (0, 0, 0, 0))

    def run(x, w, offset, b=None, mask=None):
        cdt = compute_dtype(x.dtype)
        kernel, strides, dilations = resolve(attrs, 2, w.shape[2:])
        cols = deform_columns(
            x.astype(cdt, copy=False), offset, mask, kernel, strides, dilations, pads,
            offset_group,
        )  # fmt: skip
        n, m, g = x.shape[0], w.shape[0], attrs.group
        wmat = pack_weights(w, g, cdt)
        y = np.matmul(wmat, cols.reshape(n, g, wmat.shape[2], -1))
        y = add_bias(y.reshape(n, m, *offset.shape[2:]), b)
        return y.astype(x.dtype, copy=False)

    return run
