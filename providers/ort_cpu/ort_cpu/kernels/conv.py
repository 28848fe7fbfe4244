"""Convolution kernels: Conv, ConvTranspose, ConvInteger, QLinearConv, DeformConv.

Conv is im2col: a strided window view of the padded input, copied once into a column matrix, and
one batched matmul over the groups. 1x1 convolutions skip the window view; 2-D convolutions with
enough input channels run one GEMM per kernel tap, all accumulating into the output, each
reading a window of the flat padded input in place (:func:`_conv_taps`, through numpy's BLAS
itself: :mod:`._blas`); depthwise ones, and the column matrix of strided 2-D windows, gather
their columns from the stride phases of the input (:class:`_Phases`), and per-channel 1x1 ones
(a BatchNormalization turned convolution) are one broadcast product.
ConvTranspose is the adjoint: one batched matmul, then a scatter-add per kernel offset (not per
pixel). float16 and bfloat16 are computed in float32, float64 in float64; the integer ops
accumulate in float64 (exact for any realistic kernel size) and round to int32.

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

from . import _blas
from ._registry import builder
from ._rows import per_row

INT8_TYPES = frozenset(map(np.dtype, (np.int8, np.uint8)))


def compute_dtype(dt: np.dtype) -> np.dtype:
    """float64 stays float64; every other float type is computed in float32."""
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


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


def _conv_taps(x, wmat, m, kernel, ph: _Phases, out, begin, bias, gemm):
    """2-D convolution (any stride, group 1) as one GEMM per kernel tap, all accumulating into one
    output: tap (i, j) multiplies its (M, C) weight slice with one contiguous window of a stride
    phase of the padded input (:class:`_Phases`), read in place through the GEMM's row stride.
    No column matrix and no temporary per tap. Needs the direct BLAS GEMM (:mod:`._blas`) for
    ``beta`` and the row stride."""
    n = x.shape[0]
    oh, ow = out
    taps = _tap_major(wmat, kernel[0] * kernel[1])
    y = np.empty((n, m, oh, ow), dtype=x.dtype)
    acc = np.empty((m, ph.span), dtype=x.dtype)
    for b in range(n):
        planes = ph.fill(x[b], begin)
        for t, (k, off) in enumerate(ph.taps):
            gemm(taps[t], planes[k, :, off : off + ph.span], acc, 1.0 if t else 0.0)
        y[b] = acc.reshape(m, oh, ph.wq)[:, :, :ow]
    return add_bias(y, bias)


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


def _winograd_pays(c, m, kernel, strides, dilations, out, batched: bool) -> bool:
    """Winograd F(2x2, 3x3) does 16/36 of the multiply-adds of a 3x3 stride-1 convolution but
    adds transforms whose cost grows with C + M where the GEMM's grows with C * M, and its 16
    GEMMs are a quarter as wide. Measured layer by layer (interleaved A/B against the per-tap
    GEMMs and im2col), with the 16 GEMMs as one strided batch (OpenBLAS shares them among its
    threads): 0.72x the time for 256 -> 256 channels on 14x14 maps, 0.75-0.82x for 128-192
    channels on 14x14, 0.89-0.96x for 96-128 channels on 28x28 and 56x56, 0.71x for 256 -> 256
    on 28x28; slower with 64 channels or fewer (1.3x at 56x56), 32 outputs, and on maps under 14
    wide (7x7 and 13x13: 1.15-1.5x). Inside whole models (colder caches, interleaved rules in one
    process) the 96-127 channel layers gained nothing, so the rule starts at 128: VGG19 6%
    faster, ResNet-50 and the Inceptions within noise. One threaded GEMM after another needs far
    wider layers: 256+ channels on 28x28 maps or larger (0.68-0.89x there, a tie at 14x14)."""
    if list(kernel) != [3, 3] or list(strides) != [1, 1] or list(dilations) != [1, 1]:
        return False
    if batched:
        return min(c, m) >= 128 and out[1] >= 14
    return min(c, m) >= 256 and out[1] >= 28


def _conv_winograd(x, wmat, m, out, begin, bias, gemm, batch) -> np.ndarray:
    """3x3 stride-1 convolution by Winograd F(2x2, 3x3) on the stride-2 phases of the padded
    input: element (k, l) of every 4x4 input tile, for all tiles and channels at once, is one
    contiguous slice of a phase plane (:class:`_Phases` with a 4x4 window of stride 2), so both
    transforms are whole-array passes; the 16 GEMMs read the transformed tiles in place, as one
    strided batch where ``batch`` (:func:`._blas.find_gemm_batch`) is given."""
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
        prod = np.empty((16, m, span), dtype=x.dtype)
        if batch is not None:
            batch(u, v[:, :, :span], prod, 0.0)
        else:
            for kl in range(16):
                gemm(u[kl], v[kl][:, :span], prod[kl], 0.0)
        if bias is not None:
            prod[5] += bias.reshape(m, 1)  # element (1, 1) reaches all four outputs once
        pf = prod.reshape(16, -1)
        # A^T m A: the two output rows of each tile, then their two columns
        tile = y[b].reshape(m, th, 2, tw, 2) if even else np.empty((m, th, 2, tw, 2), x.dtype)
        for r, a in enumerate(
            (
                [pf[i] + pf[4 + i] + pf[8 + i] for i in range(4)],
                [pf[4 + i] - pf[8 + i] - pf[12 + i] for i in range(4)],
            )
        ):
            tile[:, :, r, :, 0] = (a[0] + a[1] + a[2]).reshape(m, th, wq)[:, :, :tw]
            tile[:, :, r, :, 1] = (a[1] - a[2] - a[3]).reshape(m, th, wq)[:, :, :tw]
        if not even:
            y[b] = tile.reshape(m, 2 * th, 2 * tw)[:, :oh, :ow]
    return y


def _flat_layout_ok(nd, out, begin, end) -> bool:
    """Whether the flat layout of :class:`_Phases` applies: 2-D, no cropping pads, a non-empty
    output."""
    return nd == 2 and all(out) and min(begin + end) >= 0


def _taps_pay(c, m, kernel, out, ph: _Phases) -> bool:
    """Whether :func:`_conv_taps` beats im2col + one GEMM. It skips writing (and reading back) the
    K-fold column matrix, but runs K GEMMs whose inner dimension is C instead of K*C, about 10%
    slower in all, and computes ``wq - OW`` junk columns per output row. Measured (2 cores,
    OpenBLAS, interleaved A/B against im2col):

    - at most half as many outputs as inputs (DenseNet's 128 -> 32): the column matrix costs more
      than the GEMM, so taps win 1.3-4x whatever the junk (a 7x7 map computes 8 columns for 7);
    - otherwise 5-20% faster on maps 14 wide and wider, where the junk is at most an eighth of
      the output (3x3 layers of ResNet and Inception, stride 1 or 2), if the GEMMs are deep
      enough: with 32 input channels and four times as many outputs, 32-deep GEMMs lose 25%.
      On 13x13 and smaller maps it is a tie (SqueezeNet's last layers) or a loss (7x7)."""
    if math.prod(kernel) == 1 or c < 32:
        return False
    if 2 * m <= c:
        return True
    return (c >= 48 or m <= 2 * c) and out[1] >= 14 and 8 * ph.wq <= 9 * out[1]


def _conv_depthwise(x, wmat, ph: _Phases, out, begin) -> np.ndarray:
    """Depthwise 2-D convolution (any stride): the columns of each channel gathered from the
    stride phases of the padded input (:class:`_Phases`: one long contiguous copy per tap instead
    of one short strided copy per output row), then one (1, K) x (K, OH*Wq) product per
    channel."""
    n, c = x.shape[:2]
    oh, ow = out
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    cols = np.empty((c, len(ph.taps), ph.span), dtype=x.dtype)
    for b in range(n):
        planes = ph.fill(x[b], begin)
        for t, (k, off) in enumerate(ph.taps):
            cols[:, t] = planes[k, :, off : off + ph.span]
        y[b] = np.matmul(wmat, cols).reshape(c, oh, ph.wq)[:, :, :ow]
    return y


def _phase_columns(x, ph: _Phases, out, begin) -> np.ndarray:
    """The (N, C, taps, OH, OW) column matrix of a strided 2-D window from the stride phases of
    the padded input (:class:`_Phases`): each tap one copy of whole contiguous rows for all
    channels, where a window view of the padded input has every row strided (a 7x7 stride-2
    stem: 0.62 -> 0.35 ms; 3x3 stride 2 over 32 channels at 112x112: 0.40 -> 0.32 ms)."""
    n, c = x.shape[:2]
    oh, ow = out
    cols = np.empty((n, c, len(ph.taps), oh, ow), x.dtype)
    for b in range(n):
        planes = ph.fill(x[b], begin)[:, :, : ph.hq * ph.wq]
        grids = planes.reshape(len(ph.planes), c, ph.hq, ph.wq)
        for t, (k, off) in enumerate(ph.taps):
            r, q = divmod(off, ph.wq)
            cols[b, :, t] = grids[k, :, r : r + oh, q : q + ow]
    return cols


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


def conv_core(
    x: np.ndarray,
    wmat: np.ndarray,
    m: int,
    attrs: ops.Window,
    w_spatial: Sequence[int],
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """Convolution of ``x`` (already in the compute dtype) with packed weights, plus ``bias`` (M
    values in the compute dtype) when given."""
    nd = x.ndim - 2
    kernel, strides, dilations = resolve(attrs, nd, w_spatial)
    g = attrs.group
    n, c = x.shape[:2]
    if c != wmat.shape[0] * (wmat.shape[2] // max(math.prod(kernel), 1)):
        raise InvalidArgument(
            f"Conv: input has {c} channels but the weights expect "
            f"{wmat.shape[0] * wmat.shape[2] // max(math.prod(kernel), 1)} (group={g})."
        )
    out, begin, _, end = _cached_geometry(
        tuple(x.shape[2:]), tuple(kernel), tuple(strides), tuple(dilations),
        None if attrs.pads is None else tuple(attrs.pads), attrs.auto_pad,
    )  # fmt: skip
    p = math.prod(out)
    pointwise = all(k == 1 for k in kernel) and not any(begin) and not any(end)
    if pointwise and g == c == m and all(st == 1 for st in strides):
        # one weight per channel (a BatchNormalization made a convolution): a broadcast product
        return add_bias(per_row(np.multiply, x, wmat.reshape(1, m, *[1] * nd), row=p), bias)
    ph = None
    if not pointwise and _flat_layout_ok(nd, out, begin, end):
        ph = cached_phases(
            x.shape, tuple(kernel), tuple(strides), tuple(dilations), out, begin, end
        )
    gemm = _blas.find_gemm(x.dtype) if g == 1 else None
    batch = _blas.find_gemm_batch(x.dtype) if gemm is not None else None
    if pointwise:
        xs = x[
            (
                slice(None),
                slice(None),
                *(slice(0, (o - 1) * s + 1, s) for o, s in zip(out, strides, strict=True)),
            )
        ]
        cols = xs.reshape(n, g, c // g, p)
    elif (
        ph is not None
        and gemm is not None
        and _winograd_pays(c, m, kernel, strides, dilations, out, batch is not None)
    ):
        return _conv_winograd(x, wmat, m, out, begin, bias, gemm, batch)
    elif ph is not None and gemm is not None and _taps_pay(c, m, kernel, out, ph):
        return _conv_taps(x, wmat, m, kernel, ph, out, begin, bias, gemm)
    elif ph is not None and g == c == m:
        return add_bias(_conv_depthwise(x, wmat, ph, out, begin), bias)
    elif ph is not None and ph.strides != (1, 1):
        cols = _phase_columns(x, ph, out, begin).reshape(n, g, wmat.shape[2], p)
    else:
        xp = pad_to(x, begin, end)
        cols = kernel_view(xp, kernel, strides, dilations, out).reshape(n, g, wmat.shape[2], p)
    y = np.matmul(wmat, cols)  # (n, g, M/g, P)
    return add_bias(y.reshape(n, m, *out), bias)


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

    def run(x, w, b=None):
        cdt = compute_dtype(x.dtype)
        wmat = packed if packed is not None else pack_weights(w, attrs.group, cdt)
        bias = None if b is None else b.astype(cdt, copy=False)
        y = conv_core(x.astype(cdt, copy=False), wmat, w.shape[0], attrs, w.shape[2:], bias)
        return y.astype(x.dtype, copy=False)

    return run


# -- ConvTranspose -------------------------------------------------------------------------------
def conv_transpose_core(x, wmat, attrs: ops.Window, w_spatial) -> np.ndarray:
    """ConvTranspose of ``x`` (compute dtype) with (g, C/g, M/g*K) weights; no bias."""
    nd = x.ndim - 2
    kernel, strides, dilations = resolve(attrs, nd, w_spatial)
    g = attrs.group
    n, c = x.shape[:2]
    in_shape = x.shape[2:]
    mg = wmat.shape[2] // math.prod(kernel)
    m = mg * g
    cols = np.matmul(
        wmat.transpose(0, 2, 1), x.reshape(n, g, c // g, math.prod(in_shape))
    )  # (n, g, Mg*K, P)
    cols = cols.reshape(n, m, *kernel, *in_shape)
    out_shape, begin, _ = attrs.transpose_geometry(in_shape, w_spatial)
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
    return canvas[head + window]


@builder("ConvTranspose", since=(1, 11, 22), dtypes=FLOAT_TYPES, check=conv_check(transpose=True))
def conv_transpose(info):
    attrs = ops.Window.from_attrs(info.attrs)
    w_const = info.constant(1)
    dt = info.input_dtype(0)

    def pack(w, cdt):  # (C, M/g, *k) -> (g, C/g, M/g*K)
        return np.ascontiguousarray(w.reshape(attrs.group, w.shape[0] // attrs.group, -1), cdt)

    packed = pack(w_const, compute_dtype(dt)) if w_const is not None and dt is not None else None

    def run(x, w, b=None):
        cdt = compute_dtype(x.dtype)
        wmat = packed if packed is not None else pack(w, cdt)
        y = conv_transpose_core(x.astype(cdt, copy=False), wmat, attrs, w.shape[2:])
        if b is not None:
            y = y + b.astype(cdt, copy=False).reshape(-1, *([1] * (y.ndim - 2)))
        return np.ascontiguousarray(y).astype(x.dtype, copy=False)

    return run


# -- integer convolutions ----------------------------------------------------------------------
def _centered(v: np.ndarray, zero_point, per_channel_axis0: bool) -> np.ndarray:
    """``v - zero_point`` in float64 (zero_point scalar, or one per output channel)."""
    out = v.astype(np.float64)
    if zero_point is None:
        return out
    zp = np.asarray(zero_point).astype(np.float64)
    if per_channel_axis0 and zp.size > 1:
        zp = zp.reshape(-1, *([1] * (v.ndim - 1)))
    elif zp.size == 1:
        zp = zp.reshape(())
    return out - zp


def _int_conv(attrs: ops.Window, x, w, x_zp, w_zp, packed) -> np.ndarray:
    if packed is None:
        packed = pack_weights(_centered(w, w_zp, True), attrs.group, np.dtype(np.float64))
    return conv_core(_centered(x, x_zp, False), packed, w.shape[0], attrs, w.shape[2:])


def _prepacked_int_weights(info, w_index: int, zp_index: int):
    w, zp = info.constant(w_index), info.constant(zp_index)
    if w is None or (info.has_input(zp_index) and zp is None):
        return None
    return pack_weights(_centered(w, zp, True), int(info.attr("group", 1)), np.dtype(np.float64))


@builder("ConvInteger", since=10, dtypes={0: INT8_TYPES, 1: INT8_TYPES}, check=conv_check())
def conv_integer(info):
    attrs, packed = ops.Window.from_attrs(info.attrs), _prepacked_int_weights(info, 1, 3)

    def run(x, w, x_zero_point=None, w_zero_point=None):
        y = _int_conv(attrs, x, w, x_zero_point, w_zero_point, packed)
        return np.rint(y).astype(np.int32)

    return run


@builder("QLinearConv", since=10, dtypes={0: INT8_TYPES, 3: INT8_TYPES}, check=conv_check(3))
def qlinear_conv(info):
    attrs, packed = ops.Window.from_attrs(info.attrs), _prepacked_int_weights(info, 3, 5)

    def run(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, b=None):
        acc = _int_conv(attrs, x, w, x_zero_point, w_zero_point, packed)
        acc = add_bias(acc, b)
        w_scale = np.asarray(w_scale, np.float32)
        if w_scale.size > 1:
            w_scale = w_scale.reshape(-1, *([1] * (acc.ndim - 2)))
        mult = (np.float32(x_scale) * w_scale / np.float32(y_scale)).astype(np.float32)
        y = acc * mult
        zp = y_zero_point if y_zero_point is not None else np.zeros((), x.dtype)
        out_dt = zp.dtype
        y = np.rint(y) + float(np.asarray(zp).reshape(()))
        info_ = np.iinfo(out_dt)
        return np.clip(y, info_.min, info_.max).astype(out_dt)

    return run


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
