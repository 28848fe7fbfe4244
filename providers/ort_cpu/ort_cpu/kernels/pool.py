"""Pooling kernels: MaxPool, AveragePool, LpPool, their global forms, MaxUnpool, MaxRoiPool and
RoiAlign.

Windowed pools reduce one spatial axis at a time (max and sum are separable), each step one
vectorized operation on a strided slice of the unpadded input, skipping the window cells that fall
in the padding; MaxPool's Indices come from one argmax over a window view of the padded input.
Cells that ceil_mode windows overhang past the padding count neither as values nor in averages.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ort_core import ops
from ort_core.provider import FLOAT_TYPES

from .. import _threads
from .._jit import available as jit_available
from . import _conv_jit, _pool_jit
from ._registry import builder, kernel
from .conv import (
    _channels_last_pays,
    _conv_pieces,
    _DepthwiseNHWCPlan,
    _DirectPlan,
    cached_phases,
    compute_dtype,
    kernel_view,
    pad_to,
    window_geometry,
)
from .shape_ops import choice_check

MAXPOOL_TYPES = FLOAT_TYPES | frozenset(map(np.dtype, (np.int8, np.uint8)))


class PoolAttrs:
    """Window attributes with ONNX's defaults (:class:`ort_core.ops.Window`), parsed once per
    node; kernel, strides and dilations as lists."""

    __slots__ = ("window", "dilations", "kernel", "strides", "_geometries")

    def __init__(self, info) -> None:
        window = ops.Window.from_attrs(info.attrs)
        self.window = window.resolve(len(window.kernel_shape))
        self.kernel = list(self.window.kernel_shape)
        self.strides = list(self.window.strides)
        self.dilations = list(self.window.dilations)
        self._geometries: dict[tuple, tuple] = {}

    def geometry(self, in_shape):
        """:func:`.conv.window_geometry` of ``in_shape``, computed once per input shape."""
        key = tuple(in_shape)
        geo = self._geometries.get(key)
        if geo is None:
            w = self.window
            geo = window_geometry(
                key, self.kernel, self.strides, self.dilations, w.pads, w.auto_pad, w.ceil_mode
            )
            geo = tuple(tuple(v) for v in geo)  # shared by every run: immutable
            if len(self._geometries) < 64:
                self._geometries[key] = geo
        return geo


def _check_pool(info) -> str | None:
    """The spec's window rules (:func:`ort_core.ops.pool_reason`)."""
    return ops.pool_reason(info.attrs, info.input_shape(0))


def _lowest(dt: np.dtype):
    return -np.inf if dt.kind == "f" else np.iinfo(dt).min


def _axis_taps(k: int, d: int, s: int, o: int, b: int, n: int):
    """For each window tap along one axis: (first output, end output, input slice) of the outputs
    whose tap falls inside the ``n`` input cells, padding ``b`` cells before them."""
    taps = []
    for j in range(k):
        start = j * d - b  # input cell of output 0
        lo = (-start + s - 1) // s if start < 0 else 0
        hi = min(o, (n - 1 - start) // s + 1) if n - 1 - start >= 0 else 0
        if hi > lo:
            taps.append((lo, hi, slice(start + lo * s, start + (hi - 1) * s + 1, s)))
    return taps


def _window_reduce(x, attrs: PoolAttrs, out, begin, op, fill) -> np.ndarray:
    """:func:`_reduce_axes` over the spatial axes of NC... ``x``. Small feature maps with many
    channels are reduced channels-last: slices of short rows make numpy loop over a few elements
    at a time, and one transpose each way costs less than that. A single window that is the
    whole input (the AveragePool 7x7 ending ShuffleNet and the Inceptions) is one reduction over
    the spatial axes, a matrix-vector product for sums (0.16 -> 0.03 ms on 544x7x7)."""
    nd = len(attrs.kernel)
    whole = _whole_reduce(x, attrs, out, begin, op)
    if whole is not None:
        return whole
    if x.ndim == nd + 2 and x.shape[-1] < 32 and x.shape[1] >= 64:
        xt = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        y = _reduce_axes(
            xt, [*attrs.kernel, 1], [*attrs.strides, 1], [*attrs.dilations, 1],
            [*out, x.shape[1]], [*begin, 0], op, fill,
        )  # fmt: skip
        return np.ascontiguousarray(np.moveaxis(y, -1, 1))
    return _reduce_axes(x, attrs.kernel, attrs.strides, attrs.dilations, out, begin, op, fill)


def _spatial_reduce(x: np.ndarray, op) -> np.ndarray:
    """``op`` (max or add) over all spatial cells of NC... ``x``: (N, C). Float sums are a
    matrix-vector product with ones, 5x numpy's sum over (N, C, H*W)."""
    flat = x.reshape(*x.shape[:2], -1)
    if op is np.add and x.dtype.kind == "f":
        return np.matmul(flat, np.ones(flat.shape[-1], x.dtype))
    return op.reduce(flat, axis=-1)


def _whole_window(x, attrs: PoolAttrs, out, begin) -> bool:
    """Whether the only window is the whole unpadded input of NC... ``x``."""
    return (
        x.ndim == len(attrs.kernel) + 2
        and x.size > 0
        and all(o == 1 for o in out)
        and not any(begin)
        and list(attrs.kernel) == list(x.shape[2:])
        and all(d == 1 for d in attrs.dilations)
    )


def _whole_reduce(x, attrs: PoolAttrs, out, begin, op) -> np.ndarray | None:
    """Where the only window is the whole input (:func:`_whole_window`), its one reduction
    (:func:`_spatial_reduce`) in the output's shape; else None."""
    if not _whole_window(x, attrs, out, begin):
        return None
    return _spatial_reduce(x, op).reshape(*x.shape[:2], *out)


def _flat_reduce(x, attrs: PoolAttrs, out, begin, extent, op, fill, divisor=None) -> np.ndarray:
    """Fold ``op`` over the 2-D stride-1 windows of NCHW ``x`` on the flat padded layout the
    convolutions use (:func:`.conv.cached_phases`): every channel of every image one after the
    other in one flat buffer padded with ``fill``. A window tap then reads, for all outputs of all
    channels at once, one contiguous 1-D slice (past each channel's outputs it reads the next
    channel's padding: junk cells, never looked at), so every operation is one long contiguous
    pass; numpy runs those several times faster than the same work on row-strided slices. Row
    taps first, then column taps (max and sum are separable). ``divisor(layout, channels,
    length)`` (AveragePool's counts) gives an array of the flat result's length to divide it by,
    in place. Returns a new (N, C, OH, OW) array."""
    n, c, h, w = x.shape
    kernel, dil = tuple(attrs.kernel), tuple(attrs.dilations)
    ph = cached_phases((n * c, h, w), kernel, (1, 1), dil, tuple(out), tuple(begin), tuple(extent))
    planes = ph.fill(x.reshape(n * c, h, w), begin, fill).reshape(len(ph.planes), -1)
    length, span, wq = ph.length, ph.span, ph.wq
    total = (n * c - 1) * length + span  # from the first output cell to the last one

    def fold(src, offsets, size):
        (k0, o0), rest = offsets[0], offsets[1:]
        if not rest:
            return src[k0][o0 : o0 + size]
        (k1, o1), rest = rest[0], rest[1:]
        acc = op(src[k0][o0 : o0 + size], src[k1][o1 : o1 + size])
        for k, o in rest:
            op(acc, src[k][o : o + size], out=acc)
        return acc

    rows = (kernel[0] - 1) * dil[0] * wq + total  # what the column taps read
    r = fold(planes, [(0, j * dil[1]) for j in range(kernel[1])], rows)
    acc = fold([r], [(0, i * dil[0] * wq) for i in range(kernel[0])], total)
    if divisor is not None:
        acc /= divisor(ph, n * c, total)  # a view of the padded copy for a 1x1 window: ours
    size = acc.itemsize
    view = as_strided(
        acc, (n, c, out[0], out[1]), (c * length * size, length * size, wq * size, size)
    )
    return view.copy()


def _flat_pays(x, attrs: PoolAttrs, out, begin) -> bool:
    """The flat layout for 2-D stride-1 windows. Strided windows need the stride phases gathered
    first, which costs as much as the per-axis reduction saves (measured on MaxPool 3x3/2 and
    2x2/2 maps). A window that is the whole input is one reduction (:func:`_window_reduce`)."""
    return (
        not _whole_window(x, attrs, out, begin)
        and x.ndim == 4
        and len(attrs.kernel) == 2
        and attrs.strides == [1, 1]
        and all(out)
        and x.size > 0
    )


def _reduce_axes(x, kernel, strides, dilations, out, begin, op, fill) -> np.ndarray:
    """Fold ``op`` (max or add, both separable) over the windows of the unpadded input ``x``, one
    spatial axis at a time: k1 + k2 operations for a 2-D window instead of k1 * k2, the outer axes
    first (their slices keep the innermost axis contiguous, vectorized). Window cells in the
    padding, or past it under ceil_mode, are skipped; a window with no cell inside gets ``fill``.
    Nothing is padded or copied beyond the per-axis results. An owned array, never a view of x."""
    nd = len(kernel)
    lead = x.ndim - nd
    acc, owned = x, False
    for i in range(nd):
        o = out[i]
        head = (slice(None),) * (lead + i)
        taps = _axis_taps(kernel[i], dilations[i], strides[i], o, begin[i], acc.shape[lead + i])
        full = [t for t in taps if t[0] == 0 and t[1] == o]
        if len(taps) == 1 and full:
            acc = acc[(*head, full[0][2])]
            continue
        rest = [t for t in taps if t is not (full[0] if full else None)]
        if len(full) >= 2:
            rest.remove(full[1])
            new = op(acc[(*head, full[0][2])], acc[(*head, full[1][2])])
        elif full:
            new = acc[(*head, full[0][2])].copy()
        else:
            shape = list(acc.shape)
            shape[lead + i] = o
            new = np.full(shape, fill, acc.dtype)
        for lo, hi, src in rest:
            dst = new[(*head, slice(lo, hi))]
            op(dst, acc[(*head, src)], out=dst)
        acc, owned = new, True
    return acc if owned else acc.copy()


def _axis_counts(attrs: PoolAttrs, in_shape, out, begin, end, include_pad: bool) -> np.ndarray:
    """How many window cells fall inside the input (or the padded input) per output cell."""
    counts = np.ones((), np.float64)
    nd = len(in_shape)
    for i in range(nd):
        pos = (
            np.arange(out[i])[:, None] * attrs.strides[i]
            - begin[i]
            + np.arange(attrs.kernel[i])[None, :] * attrs.dilations[i]
        )
        lo, hi = (-begin[i], in_shape[i] + end[i]) if include_pad else (0, in_shape[i])
        c = ((pos >= lo) & (pos < hi)).sum(axis=1).astype(np.float64)
        counts = counts[..., None] * c
    return counts


def _max_indices(xp, attrs: PoolAttrs, x_shape, out, begin, storage_order: int) -> np.ndarray:
    """Flat indices into the unpadded input of each window's first maximum."""
    nd = len(attrs.kernel)
    win = kernel_view(xp, attrs.kernel, attrs.strides, attrs.dilations, out, kernel_first=False)
    arg = win.reshape(*win.shape[: 2 + nd], -1).argmax(axis=-1)
    k_idx = np.unravel_index(arg, attrs.kernel)
    spatial = x_shape[2:]
    grid = np.indices(out, sparse=True)
    flat = np.zeros(arg.shape, np.int64)
    order = range(nd) if storage_order == 0 else reversed(range(nd))
    for i in order:
        pos = grid[i] * attrs.strides[i] - begin[i] + k_idx[i] * attrs.dilations[i]
        flat = flat * spatial[i] + pos
    nc = np.arange(x_shape[0] * x_shape[1], dtype=np.int64).reshape(x_shape[0], x_shape[1])
    return flat + nc.reshape(nc.shape + (1,) * nd) * math.prod(spatial)


class _CompiledPool:
    """A 2-D max pool, or an average pool's window sums, by the direct convolution kernel
    (:func:`._conv_jit._direct` in its MAX mode, or with unit weights): each channel copied once
    into the stride-phase planes of its padded plane (-inf or 0 around it, past the ceil_mode
    overhang too), every window then a few vectorized passes over whole rows of outputs
    (:mod:`._taps`), the channels shared among a run's threads. numpy took one strided pass per
    window row and column (measured here, compiled against numpy: 64 x 112 x 112 max 3x3
    stride 2 157 against 493 us, 576 x 14 x 14 max 3x3 89 against 178, 1024 x 7 x 7 98 against
    133, 576 x 14 x 14 average 107 against 195). Sums are added in window order, as
    onnxruntime adds them. An average pool whose output rows fit in a vector sums channels
    last instead, by the depthwise convolution's kernel with unit weights
    (:class:`.conv._DepthwiseNHWCPlan`). A single window that is the whole input is one reduction
    (:func:`_spatial_reduce`: an Inception's final 7 x 7 average over 1024 x 7 x 7 146 -> 15
    us a one-node run; onnxruntime 14). ``None`` from a call: not this path (another rank or type,
    compiled kernels off)."""

    def __init__(self, attrs: PoolAttrs, mode: int, info) -> None:
        self.attrs, self.mode = attrs, mode
        self.plans: dict[tuple, tuple] = {}
        # the kernel, loaded now (not in the first run), for a 2-D window over floats
        dt = info.input_dtype(0)
        floats = dt is None or dt in _COMPILED_TYPES
        self.fn = _conv_jit.warm() if len(attrs.kernel) == 2 and floats else None
        # an average pool's sums over output rows of at most a vector (16 cells): the
        # depthwise convolution's channels-last kernel, unit weights. One-node runs on a Zen 3,
        # 3 x 3 stride 2 (us, planar against channels last; onnxruntime): ShuffleNet's 272 x 14
        # x 14 123 -> 47 (30), 136 x 28 x 28 123 -> 89 (46); with rows of 28 cells planar
        # stays ahead (24 x 56 x 56: 45 against 86)
        self.nhwc = (
            _conv_jit.warm_nhwc() if self.fn is not None and mode == _conv_jit.CONVOLVE else None
        )
        if self.fn is not None and dt in _COMPILED_TYPES and _threads.will_split(info.provider):
            kinds = (_conv_pieces().DIRECT,) + ((_conv_pieces().NHWC,) if self.nhwc else ())
            for kind in kinds:
                _conv_pieces().address(kind, dt.type)

    def __call__(self, x: np.ndarray, out, begin) -> np.ndarray | None:
        if self.fn is None or x.ndim != 4 or x.dtype not in _COMPILED_TYPES or not jit_available():
            return None
        whole = _whole_reduce(
            x, self.attrs, out, begin, np.maximum if self.mode == _conv_jit.MAX else np.add
        )
        if whole is not None:
            return whole
        key = (x.shape, x.dtype)
        entry = self.plans.get(key)
        if entry is None:
            c, a = x.shape[1], self.attrs
            if self.nhwc is not None and (
                out[1] <= _conv_jit.LANES or _channels_last_pays(out, a.kernel)
            ):
                plan = _DepthwiseNHWCPlan(self.nhwc, a.kernel, a.strides, a.dilations, out, begin)
            else:
                plan = _DirectPlan(self.fn, x.shape, c, c, a.kernel, a.strides, a.dilations,
                                   out, begin, self.mode)  # fmt: skip
            ones = np.ones((c, math.prod(a.kernel)), x.dtype)
            start = np.full(c, -np.inf if self.mode == _conv_jit.MAX else 0, x.dtype)
            entry = (plan, ones, start)
            if len(self.plans) < 16:
                self.plans[key] = entry
        plan, ones, start = entry
        return plan(x, ones, start)


_COMPILED_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


class _PlanesPool:
    """A 2-D MaxPool at dilation 1 over the input's planes by a kernel of :mod:`._pool_jit`
    (``warm`` loads it), whose pieces share the planes among a run's threads (``strided``: the
    pieces of ``max_pool_rows``); ``fits``: the subclass's own condition on the window."""

    strided = False

    def __init__(self, attrs: PoolAttrs, info, fits: bool, warm) -> None:
        self.attrs = attrs
        dt = info.input_dtype(0)
        fits = (
            fits
            and len(attrs.kernel) == 2
            and attrs.dilations == [1, 1]
            and (dt is None or dt in _COMPILED_TYPES)
        )
        self.fn = warm() if fits else None
        if self.fn is not None and dt in _COMPILED_TYPES and _threads.will_split(info.provider):
            _pool_pieces().address(dt, self.strided)


class _SamePool(_PlanesPool):
    """A 2-D MaxPool at stride 1 whose output is its input's size, by
    :func:`._pool_jit.max_pool_same` (separable passes over many planes at once), the planes
    shared among a run's threads as compiled pieces from :data:`SAME_SPLIT` cells. ``None``
    from a call: not this path (another geometry, rank or type, compiled kernels off)."""

    def __init__(self, attrs: PoolAttrs, info) -> None:
        super().__init__(attrs, info, attrs.strides == [1, 1], _pool_jit.warm)

    def __call__(self, x: np.ndarray, out, begin) -> np.ndarray | None:
        if (
            self.fn is None
            or x.ndim != 4
            or tuple(out) != x.shape[2:]
            or x.dtype not in _COMPILED_TYPES
            or not jit_available()
        ):
            return None
        n, c, h, w = x.shape
        xs = np.ascontiguousarray(x).reshape(n * c, h, w)
        y = np.empty(x.shape, x.dtype)
        ys = y.reshape(n * c, h, w)
        kh, kw = self.attrs.kernel
        if x.size < SAME_SPLIT or not _pool_pieces().split(xs, ys, kh, kw, *begin):
            self.fn(xs, ys, kh, kw, begin[0], begin[1], 0, n * c)
        return y


#: cells from which a stride-1 MaxPool's planes are shared among a run's threads
SAME_SPLIT = 1 << 15


class _RowsPool(_PlanesPool):
    """A 2-D MaxPool at dilation 1 (any stride, padding and ceil mode), by
    :func:`._pool_jit.max_pool_rows` (no copy of the input), the planes shared among a run's
    threads as compiled pieces from :data:`SAME_SPLIT` cells; a window that is the whole input
    one reduction (:func:`_whole_reduce`). ``None`` from a call: not this path (another rank or
    type, dilations, compiled kernels off)."""

    strided = True

    def __init__(self, attrs: PoolAttrs, info) -> None:
        super().__init__(attrs, info, True, _pool_jit.warm_rows)

    def __call__(self, x: np.ndarray, out, begin) -> np.ndarray | None:
        if self.fn is None or x.ndim != 4 or x.dtype not in _COMPILED_TYPES or not jit_available():
            return None
        whole = _whole_reduce(x, self.attrs, out, begin, np.maximum)
        if whole is not None:
            return whole
        n, c, h, w = x.shape
        xs = np.ascontiguousarray(x).reshape(n * c, h, w)
        y = np.empty((n, c, *out), x.dtype)
        ys = y.reshape(n * c, *out)
        (kh, kw), (sh, sw) = self.attrs.kernel, self.attrs.strides
        if x.size < SAME_SPLIT or not _pool_pieces().split(
            xs, ys, kh, kw, *begin, strides=(sh, sw)
        ):
            self.fn(xs, ys, kh, kw, sh, sw, begin[0], begin[1], 0, n * c)
        return y


@functools.cache  # once imported, a lookup (the import statement took 1 us a call)
def _pool_pieces():
    """:mod:`._pool_pieces` (it imports numba: only where a run shares such a pool)."""
    from . import _pool_pieces as pieces

    return pieces


@builder("MaxPool", since=(1, 8, 10, 11, 12, 22), dtypes=MAXPOOL_TYPES, check=_check_pool)
def max_pool(info):
    attrs = PoolAttrs(info)
    storage_order = int(info.attr("storage_order", 0))
    want_indices = info.num_outputs > 1 and bool(info.node.outputs[1])
    single_output = info.opset < 8  # MaxPool-1 has no Indices output
    same = None if want_indices else _SamePool(attrs, info)
    rows = None if want_indices else _RowsPool(attrs, info)
    # the window kernel's MAX mode only for what the row kernel does not take (dilations)
    compiled = (
        None if want_indices or rows.fn is not None else _CompiledPool(attrs, _conv_jit.MAX, info)
    )

    def run(x):
        dt = x.dtype
        xc = x.astype(np.float32) if dt.kind == "V" else x
        out, begin, _, extent = attrs.geometry(x.shape[2:])
        y = None if same is None else same(xc, out, begin)
        if y is None and rows is not None:
            y = rows(xc, out, begin)
        if y is None and compiled is not None:
            y = compiled(xc, out, begin)
        if y is not None:
            return y.astype(dt, copy=False) if single_output else (y.astype(dt, copy=False), None)
        if not want_indices and _flat_pays(xc, attrs, out, begin):
            y = _flat_reduce(xc, attrs, out, begin, extent, np.maximum, _lowest(xc.dtype))
            return y.astype(dt, copy=False) if single_output else (y.astype(dt, copy=False), None)
        if not want_indices:
            y = _window_reduce(xc, attrs, out, begin, np.maximum, _lowest(xc.dtype))
            y = y.astype(dt, copy=False)
            return y if single_output else (y, None)
        xp = pad_to(xc, begin, extent, _lowest(xc.dtype))
        y = _window_reduce(xp, attrs, out, [0] * len(out), np.maximum, _lowest(xc.dtype))
        return y.astype(dt, copy=False), _max_indices(xp, attrs, x.shape, out, begin, storage_order)

    return run


@builder("AveragePool", since=(1, 7, 10, 11, 19, 22), dtypes=FLOAT_TYPES, check=_check_pool)
def average_pool(info):
    attrs = PoolAttrs(info)
    include_pad = bool(info.attr("count_include_pad", 0))

    counts_for: dict[tuple, np.ndarray] = {}  # per input shape, computed once

    def counts_of(shape, cdt, out, begin, end):
        key = (shape, cdt)
        counts = counts_for.get(key)
        if counts is None:
            counts = _axis_counts(attrs, shape, out, begin, end, include_pad).astype(cdt)
            if len(counts_for) < 16:
                counts_for[key] = counts
        return counts

    def flat_counts(x_shape, cdt, out, begin, end):
        """The counts laid out like :func:`_flat_reduce`'s result (1 in the junk cells)."""

        def divisor(ph, channels, total):
            key = ("flat", x_shape, cdt)
            flat = counts_for.get(key)
            if flat is None:
                flat = np.ones((channels, ph.length), cdt)
                grid = flat[:, : ph.span].reshape(channels, out[0], ph.wq)
                grid[:, :, : out[1]] = counts_of(x_shape[2:], cdt, out, begin, end)
                flat = flat.reshape(-1)[:total]
                if len(counts_for) < 16:
                    counts_for[key] = flat
            return flat

        return divisor

    compiled = _CompiledPool(attrs, _conv_jit.CONVOLVE, info)

    def run(x):
        cdt = compute_dtype(x.dtype)
        out, begin, end, extent = attrs.geometry(x.shape[2:])
        xc = x.astype(cdt, copy=False)
        total = compiled(xc, out, begin)
        if total is not None:
            counts = counts_of(x.shape[2:], cdt, out, begin, end)
            return np.divide(total, counts, out=total).astype(x.dtype, copy=False)
        with np.errstate(invalid="ignore", divide="ignore"):
            if _flat_pays(xc, attrs, out, begin):
                divisor = flat_counts(x.shape, cdt, out, begin, end)
                y = _flat_reduce(xc, attrs, out, begin, extent, np.add, 0, divisor)
                return y.astype(x.dtype, copy=False)
            total = _window_reduce(xc, attrs, out, begin, np.add, 0)
            counts = counts_of(x.shape[2:], cdt, out, begin, end)
            return np.divide(total, counts, out=total).astype(x.dtype, copy=False)

    return run


def _lp_power(x: np.ndarray, p: float) -> np.ndarray:
    return x * x if p == 2 else np.abs(x) ** p


def _lp_root(s: np.ndarray, p: float) -> np.ndarray:
    return np.sqrt(s) if p == 2 else s ** (1.0 / p)


@builder("LpPool", since=(1, 2, 11, 18, 22), dtypes=FLOAT_TYPES, check=_check_pool)
def lp_pool(info):
    attrs = PoolAttrs(info)
    p = float(info.attr("p", 2))

    def run(x):
        cdt = compute_dtype(x.dtype)
        out, begin, _, _ = attrs.geometry(x.shape[2:])
        powered = _lp_power(x.astype(cdt, copy=False), p)
        total = _window_reduce(powered, attrs, out, begin, np.add, 0)
        return _lp_root(total, p).astype(x.dtype, copy=False)

    return run


# -- global pools ----------------------------------------------------------------------------
def _spatial_axes(x: np.ndarray) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


_ONES: dict[tuple[str, int], np.ndarray] = {}


def _ones(dtype: np.dtype, n: int) -> np.ndarray:
    key = (dtype.str, n)
    v = _ONES.get(key)
    if v is None:
        v = np.ones(n, dtype)
        v.flags.writeable = False
        if len(_ONES) < 256:
            _ONES[key] = v
    return v


_F32_F64 = (np.dtype(np.float32), np.dtype(np.float64))


@kernel("GlobalAveragePool", since=(1, 22), dtypes=FLOAT_TYPES)
def global_average_pool(x):
    dt = x.dtype
    if dt in _F32_F64 and x.ndim >= 3 and x.size:  # the common case, in as few calls as possible
        shape = x.shape
        k = x.size // (shape[0] * shape[1])
        # the sums, by BLAS's GEMV (np.dot on the 2-D view: 1.1 against np.matmul's 2.4 us on
        # a 200 x 2 x 6 input)
        y = np.dot(x.reshape(shape[0] * shape[1], k), _ones(dt, k))
        y /= dt.type(k)
        return y.reshape(shape[:2] + (1,) * (x.ndim - 2))
    cdt = compute_dtype(x.dtype)
    if x.ndim < 3 or x.size == 0:
        y = x.mean(axis=_spatial_axes(x), keepdims=True, dtype=cdt)
        return y.astype(x.dtype)
    y = _spatial_reduce(x.astype(cdt, copy=False), np.add)
    y /= cdt.type(math.prod(x.shape[2:]))
    return y.reshape(*x.shape[:2], *[1] * (x.ndim - 2)).astype(x.dtype, copy=False)


@kernel("GlobalMaxPool", since=(1, 22), dtypes=FLOAT_TYPES)
def global_max_pool(x):
    xc = x.astype(np.float32) if x.dtype.kind == "V" else x
    return np.asarray(xc.max(axis=_spatial_axes(x), keepdims=True)).astype(x.dtype)


@kernel("GlobalLpPool", since=(1, 2, 22), dtypes=FLOAT_TYPES)
def global_lp_pool(x, p=2):
    xc = x.astype(compute_dtype(x.dtype))
    s = _lp_power(xc, float(p)).sum(axis=_spatial_axes(x), keepdims=True)
    return _lp_root(s, float(p)).astype(x.dtype)


# -- MaxUnpool -------------------------------------------------------------------------------
@builder("MaxUnpool", since=(9, 11, 22), dtypes={0: FLOAT_TYPES})
def max_unpool(info):
    """Scatter X to the flat positions in I of a zero tensor. With ``output_shape`` the indices
    address that shape (as MaxPool's indices address its input, and as onnxruntime and PyTorch
    do); without it, the shape is inferred from the window attributes."""
    kernel_shape = list(info.attr("kernel_shape"))
    nd = len(kernel_shape)
    strides = list(info.attr("strides") or [1] * nd)
    pads = list(info.attr("pads") or [0] * (2 * nd))

    def run(x, indices, output_shape=None):
        if output_shape is not None:
            shape = tuple(int(v) for v in output_shape)
        else:
            shape = (*x.shape[:2], *(
                (i - 1) * s - pads[d] - pads[d + nd] + k
                for d, (i, s, k) in enumerate(zip(x.shape[2:], strides, kernel_shape, strict=True))
            ))  # fmt: skip
        y = np.zeros(math.prod(shape), dtype=x.dtype)
        y[indices.reshape(-1)] = x.reshape(-1)
        return y.reshape(shape)

    return run


# -- region pools -------------------------------------------------------------------------------
def _bin_mask(start: np.ndarray, end: np.ndarray, size: int) -> np.ndarray:
    """(bins, size) mask of the cells each [start, end) bin covers."""
    cells = np.arange(size)
    return (cells[None, :] >= start[:, None]) & (cells[None, :] < end[:, None])


@kernel("MaxRoiPool", since=(1, 22), dtypes=FLOAT_TYPES)
def max_roi_pool(x, rois, pooled_shape=(), spatial_scale=1.0):
    """Caffe's ROI max pooling: ROI corners rounded half away from zero, floor/ceil bin edges,
    empty bins give 0. Max is separable: over the bin's columns first, then its rows."""
    ph, pw = (int(v) for v in pooled_shape)
    cdt = compute_dtype(x.dtype)
    xc = x.astype(cdt, copy=False)
    height, width = x.shape[2:]
    out = np.zeros((rois.shape[0], x.shape[1], ph, pw), dtype=cdt)
    r = rois.astype(np.float64)
    for n in range(r.shape[0]):
        batch = int(r[n, 0])
        corners = r[n, 1:5] * spatial_scale
        x1, y1, x2, y2 = (np.sign(corners) * np.floor(np.abs(corners) + 0.5)).astype(np.int64)
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        hs = np.clip(np.floor(np.arange(ph) * (rh / ph)).astype(np.int64) + y1, 0, height)
        he = np.clip(np.ceil(np.arange(1, ph + 1) * (rh / ph)).astype(np.int64) + y1, 0, height)
        ws = np.clip(np.floor(np.arange(pw) * (rw / pw)).astype(np.int64) + x1, 0, width)
        we = np.clip(np.ceil(np.arange(1, pw + 1) * (rw / pw)).astype(np.int64) + x1, 0, width)
        mh, mw = _bin_mask(hs, he, height), _bin_mask(ws, we, width)
        img = xc[batch]  # (C, H, W)
        cols = np.where(mw[None, None], img[:, :, None, :], -np.inf).max(axis=-1)  # (C, H, pw)
        cells = np.where(mh[None, :, :, None], cols[:, None], -np.inf).max(axis=2)  # (C, ph, pw)
        empty = ~(mh.any(axis=1)[:, None] & mw.any(axis=1)[None, :])
        out[n] = np.where(empty, 0, cells)
    return out.astype(x.dtype)


def _bilinear_axis(coords: np.ndarray, size: int):
    """Low/high cell and weights of bilinear sampling along one axis (ORT/Caffe2 rules)."""
    valid = (coords >= -1.0) & (coords <= size)
    c = np.maximum(coords, 0.0)
    low = np.floor(c).astype(np.int64)
    at_edge = low >= size - 1
    low = np.where(at_edge, size - 1, low)
    high = np.where(at_edge, size - 1, low + 1)
    c = np.where(at_edge, low, c)
    frac = c - low
    return low, high, 1.0 - frac, frac, valid


@builder(
    "RoiAlign",
    since=(10, 16, 22),
    dtypes={0: FLOAT_TYPES},
    check=choice_check(
        mode=("avg", "max"), coordinate_transformation_mode=("half_pixel", "output_half_pixel")
    ),
)
def roi_align(info):
    default_mode = "half_pixel" if info.opset >= 16 else "output_half_pixel"
    half_pixel = info.attr("coordinate_transformation_mode", default_mode) == "half_pixel"
    mode = info.attr("mode", "avg")
    oh, ow = int(info.attr("output_height", 1)), int(info.attr("output_width", 1))
    ratio = int(info.attr("sampling_ratio", 0))
    scale = float(info.attr("spatial_scale", 1.0))

    def one_roi(img, roi):
        offset = 0.5 if half_pixel else 0.0
        x1, y1, x2, y2 = (float(v) * scale - offset for v in roi)
        rw, rh = x2 - x1, y2 - y1
        if not half_pixel:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / oh, rw / ow
        gh = ratio if ratio > 0 else math.ceil(rh / oh)
        gw = ratio if ratio > 0 else math.ceil(rw / ow)
        if gh <= 0 or gw <= 0:
            return np.zeros((img.shape[0], oh, ow), img.dtype)
        ys = y1 + (np.arange(oh)[:, None] * bh + (np.arange(gh)[None, :] + 0.5) * bh / gh).ravel()
        xs = x1 + (np.arange(ow)[:, None] * bw + (np.arange(gw)[None, :] + 0.5) * bw / gw).ravel()
        yl, yh, wyl, wyh, vy = _bilinear_axis(ys, img.shape[1])
        xl, xh, wxl, wxh, vx = _bilinear_axis(xs, img.shape[2])
        valid = (vy[:, None] & vx[None, :]).astype(img.dtype)
        terms = [
            img[:, ya][:, :, xa] * (wy[:, None] * wx[None, :] * valid).astype(img.dtype)
            for ya, wy in ((yl, wyl), (yh, wyh))
            for xa, wx in ((xl, wxl), (xh, wxh))
        ]
        shape = (img.shape[0], oh, gh, ow, gw)
        if mode == "max":
            return np.maximum.reduce(terms).reshape(shape).max(axis=(2, 4))
        return sum(terms).reshape(shape).sum(axis=(2, 4)) / max(gh * gw, 1)

    def run(x, rois, batch_indices):
        cdt = compute_dtype(x.dtype)
        xc = x.astype(cdt, copy=False)
        out = np.zeros((rois.shape[0], x.shape[1], oh, ow), dtype=cdt)
        for n in range(rois.shape[0]):
            out[n] = one_roi(xc[int(batch_indices[n])], rois[n])
        return out.astype(x.dtype)

    return run
