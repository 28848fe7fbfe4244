"""Convolution and pooling kernels: Conv, ConvTranspose, com.microsoft FusedConv, MaxPool (with its
Indices), AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool and GlobalLpPool.

Every windowed op is a gather. Once per input shape, the host builds from the window geometry of
:mod:`ort_core.ops` an integer table that maps each (kernel tap, output cell) to a cell of the
flattened input, or to one extra cell appended past the input's end where the tap falls in the
padding (or past it, under ceil_mode): a zero for the convolutions and the sums, the lowest value
for MaxPool, so a padded tap never wins. A run is then one ``concat`` (the extra cell), one
``take`` (the columns, (N, C, K, P) for K taps and P output cells) and one batched ``matmul`` over
the groups (Conv) or one reduction over the taps (the pools). Nothing loops over elements, and
the tables live on the inputs' device, so a device namespace runs the same code.

ConvTranspose is the convolution of the stride-dilated (zero-inserted) input with the transposed
weights: its table reads input cell ``(o + pad - t * dilation) / stride`` for output cell ``o`` and
tap ``t`` where that is a whole number inside the input, and the extra zero cell otherwise, so the
inserted zeros are indexed, never materialized or scattered (and the weights need no flip).

float16 and bfloat16 convolutions and averages are computed in float32 (float64 stays float64),
as onnxruntime accumulates, and cast back; MaxPool compares in the input's own type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ort_core import ops
from ort_core.errors import InvalidArgument
from ort_core.provider import FLOAT_TYPES

from .. import _table
from .._table import builder, kernel
from .._xp import cast, computable, device, is_float, matmul, namespace, widened
from .elementwise import _sigmoid, hard_sigmoid, leaky_relu

MS = "com.microsoft"
MAXPOOL_TYPES = FLOAT_TYPES | frozenset(map(np.dtype, (np.int8, np.uint8)))
CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")
POOL_ATTRS = ("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides")
_PLANS_PER_NODE = 16  # input shapes whose tables one node keeps


# -- the host tables ------------------------------------------------------------------------------
def _window_sources(size: int, out: int, k: int, s: int, d: int, b: int, e: int):
    """Along one axis of a sliding window: the input cell each (output, tap) reads (-1 where the
    tap is outside the input) and whether the tap lies in the padded input (not past it)."""
    pos = np.arange(out)[:, None] * s - b + np.arange(k)[None, :] * d
    real = (pos >= 0) & (pos < size)
    return np.where(real, pos, -1), (pos >= -b) & (pos < size + e)


def _transposed_sources(size: int, out: int, k: int, s: int, d: int, b: int):
    """Along one axis of ConvTranspose: the input cell that output ``o`` reads through tap ``t``,
    ``(o + b - t * d) / s`` where that is a whole input cell, -1 where it is an inserted zero."""
    u = np.arange(out)[:, None] + b - np.arange(k)[None, :] * d
    q = u // s
    return np.where((u >= 0) & (u % s == 0) & (q < size), q, -1)


def _spread(table: np.ndarray, axis: int, nd: int) -> np.ndarray:
    """An (out, k) table of one axis shaped (k_1.., out_1..) to broadcast over all axes."""
    shape = [1] * (2 * nd)
    shape[axis], shape[nd + axis] = table.shape[1], table.shape[0]
    return table.T.reshape(shape)


def _flat_cells(sources: Sequence[np.ndarray], sizes: Sequence[int], reverse: bool = False):
    """(K, P) flat input cell per (tap, output) over all axes (row-major, or column-major with
    ``reverse``: MaxPool's storage_order 1), and the (K, P) mask of taps inside the input."""
    nd = len(sources)
    flat, real = np.zeros((1,) * (2 * nd), np.int64), np.ones((1,) * (2 * nd), bool)
    for i in reversed(range(nd)) if reverse else range(nd):
        t = _spread(sources[i], i, nd)
        flat, real = flat * sizes[i] + t, real & (t >= 0)
    taps = math.prod(t.shape[1] for t in sources)
    cells = math.prod(t.shape[0] for t in sources)
    flat, real = np.broadcast_arrays(flat, real)
    return flat.reshape(taps, cells), real.reshape(taps, cells)


@dataclass(frozen=True)
class _Plan:
    """One node's tables for one input shape, on the input's device."""

    out: tuple[int, ...]  # output spatial shape
    taps: int  # K
    cells: int  # P
    size: int  # input spatial cells: the index of the extra cell
    index: Any  # (K * P,) int64 gather table; None: the input itself (a 1x1 stride-1 window)
    absent: bool  # some tap reads the extra cell
    extra: dict  # per-op tables (counts, masks, Indices tables)


def _plan(xp: Any, x: Any, flat: np.ndarray, real: np.ndarray, out, extra=None) -> _Plan:
    taps, cells = flat.shape
    size = math.prod(x.shape[2:])
    absent = not bool(real.all())
    index = None
    if taps == 1 and not absent and cells == size and bool((flat[0] == np.arange(size)).all()):
        pass  # every output cell reads its own input cell
    else:
        index = xp.asarray(np.where(real, flat, size).reshape(-1), device=device(x))
    return _Plan(tuple(out), taps, cells, size, index, absent, extra or {})


class _Plans:
    """The plans of one node per input shape (and namespace, device, type), built on first use."""

    def __init__(self, make: Callable[..., _Plan]) -> None:
        self._make = make
        self._plans: dict[tuple, _Plan] = {}

    def get(self, x: Any, *more: Any) -> _Plan:
        key = (type(x), str(device(x)), str(x.dtype), tuple(x.shape),
               *(None if m is None else tuple(m.shape) for m in more))  # fmt: skip
        plan = self._plans.get(key)
        if plan is None:
            plan = self._make(namespace(x), x, *more)
            if len(self._plans) < _PLANS_PER_NODE:
                self._plans[key] = plan
        return plan


def _columns(xp: Any, x: Any, plan: _Plan, fill: Any) -> Any:
    """(N, C, K, P) window cells of (N, C, ...) ``x``, ``fill`` where a tap is in the padding."""
    n, c = x.shape[:2]
    flat = xp.reshape(x, (n, c, plan.size))
    if plan.index is None:
        return xp.reshape(flat, (n, c, 1, plan.cells))
    if plan.absent:
        pad = xp.full((n, c, 1), fill, dtype=x.dtype, device=device(x))
        flat = xp.concat((flat, pad), axis=2)
    return xp.reshape(xp.take(flat, plan.index, axis=2), (n, c, plan.taps, plan.cells))


# -- Conv, ConvTranspose, FusedConv -----------------------------------------------------------------
def conv_check(transpose: bool = False) -> Callable[[Any], str | None]:
    """The spec's window and channel rules (:func:`ort_core.ops.conv_reason`)."""

    def check(info: Any) -> str | None:
        return ops.conv_reason(info.attrs, info.input_shape(0), info.input_shape(1), transpose)

    return check


def _conv_plan(window: ops.Window, op: str, transpose: bool):
    def make(xp: Any, x: Any, w: Any) -> _Plan:
        reason = window.reason(x.ndim, w.shape) or ops.conv_channels_reason(
            x.shape, w.shape, window.group, transpose
        )
        if reason:
            raise InvalidArgument(f"{op}: {reason}.")
        spatial, k_spatial = x.shape[2:], w.shape[2:]
        r = window.resolve(len(spatial), k_spatial)
        rows = zip(spatial, r.kernel_shape, r.strides, r.dilations, strict=True)
        if transpose:
            geo = r.transpose_geometry(spatial, k_spatial)
            sources = [
                _transposed_sources(n, o, k, s, d, b)
                for (n, k, s, d), o, b in zip(rows, geo.out, geo.begin, strict=True)
            ]
        else:
            geo = r.geometry(spatial, k_spatial)
            sources = [
                _window_sources(n, o, k, s, d, b, e)[0]
                for (n, k, s, d), o, b, e in zip(rows, geo.out, geo.begin, geo.end, strict=True)
            ]
        flat, real = _flat_cells(sources, spatial)
        return _plan(xp, x, flat, real, geo.out)

    return _Plans(make)


def _conv_core(plans: _Plans, group: int, transpose: bool, x: Any, w: Any, b: Any) -> Any:
    """Conv (or ConvTranspose) of ``x`` with ``w`` plus the bias, in the widened type."""
    xp = namespace(x)
    plan = plans.get(x, w)
    xw = widened(xp, x)
    ww = cast(xp, widened(xp, w), xw.dtype)
    n, c = x.shape[:2]
    if transpose:  # (C, M/g, k...) -> (g, M/g, C/g * K)
        mg = w.shape[1]
        ww = xp.reshape(ww, (group, c // group, mg, plan.taps))
        wmat = xp.reshape(xp.permute_dims(ww, (0, 2, 1, 3)), (group, mg, -1))
    else:  # (M, C/g, k...) -> (g, M/g, C/g * K)
        mg = w.shape[0] // group
        wmat = xp.reshape(ww, (group, mg, -1))
    cols = xp.reshape(_columns(xp, xw, plan, 0), (n, group, (c // group) * plan.taps, plan.cells))
    y = xp.reshape(matmul(xp, wmat, cols), (n, group * mg, *plan.out))  # (N, g, M/g, P) grouped
    if b is not None:
        y = y + xp.reshape(cast(xp, widened(xp, b), y.dtype), (-1,) + (1,) * len(plan.out))
    return y


def _conv_builder(op: str, transpose: bool):
    def build(info):
        window = ops.Window.from_attrs(info.attrs)
        plans = _conv_plan(window, op, transpose)

        def run(x, w, b=None):
            xp = namespace(x)
            return cast(xp, _conv_core(plans, window.group, transpose, x, w, b), x.dtype)

        return run

    build.__name__ = build.__qualname__ = op.lower()
    return build


builder("Conv", (1, 11, 22), dtypes=FLOAT_TYPES, attributes=CONV_ATTRS, check=conv_check())(
    _conv_builder("Conv", False)
)
builder("ConvTranspose", (1, 11, 22), dtypes=FLOAT_TYPES, check=conv_check(transpose=True),
        attributes=(*CONV_ATTRS, "output_padding", "output_shape"))(
    _conv_builder("ConvTranspose", True)
)  # fmt: skip

#: FusedConv's activations: name -> (number of activation_params, f(xp, y, *params))
FUSED_ACTIVATIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "Relu": (0, lambda xp, y: xp.maximum(y, 0)),
    "Tanh": (0, lambda xp, y: xp.tanh(y)),
    "Sigmoid": (0, _sigmoid),
    "LeakyRelu": (1, leaky_relu),
    "Clip": (2, lambda xp, y, lo, hi: xp.minimum(xp.maximum(y, lo), hi)),  # hi wins, as MLAS
    "HardSigmoid": (2, hard_sigmoid),
}


def _fused_check(info) -> str | None:
    """onnxruntime's rules: a known activation with exactly its number of activation_params."""
    reason = conv_check()(info)
    name = info.attr("activation")
    if reason or name is None:
        return reason
    if name not in FUSED_ACTIVATIONS:
        return f"activation '{name}' is not one of {sorted(FUSED_ACTIVATIONS)}"
    want, got = FUSED_ACTIVATIONS[name][0], len(info.attr("activation_params") or ())
    if want and got != want:
        return f"activation '{name}' takes {want} activation_params, got {got}"
    return None


def fused_conv(info):
    """activation(Conv(X, W) + B + Z) as onnxruntime's contrib FusedConv: Z (the output's shape)
    added after the bias; activation_params are LeakyRelu's alpha, Clip's min and max,
    HardSigmoid's alpha and beta."""
    window = ops.Window.from_attrs(info.attrs)
    plans = _conv_plan(window, "FusedConv", False)
    name = info.attr("activation")
    count, fn = FUSED_ACTIVATIONS.get(name, (0, None)) if name else (0, None)
    params = [float(p) for p in (info.attr("activation_params") or ())][:count]

    def run(x, w, b=None, z=None):
        xp = namespace(x)
        y = _conv_core(plans, window.group, False, x, w, b)
        if z is not None:
            y = y + cast(xp, widened(xp, z), y.dtype)
        if fn is not None:
            y = fn(xp, y, *params)
        return cast(xp, y, x.dtype)

    return run


_table.SPECS.append(
    _table.Spec("FusedConv", (1,), fused_conv, True, dtypes=FLOAT_TYPES, check=_fused_check,
                attributes=(*CONV_ATTRS, "activation", "activation_params"), domain=MS)
)  # fmt: skip


# -- windowed pools ---------------------------------------------------------------------------------
def _pool_check(info) -> str | None:
    """The spec's window rules (:func:`ort_core.ops.pool_reason`)."""
    return ops.pool_reason(info.attrs, info.input_shape(0))


def _pool_plan(info, op: str, storage_order: int | None = None, include_pad: bool | None = None):
    """Plans of a windowed pool, with the extra device tables: ``counts`` (P,) of the cells each
    window averages, in the compute type (include_pad given); for MaxPool's Indices
    (storage_order given) ``real`` (K, P), the taps inside the input, ``cells`` (K * P,), their
    flat cells in ``storage_order`` (-1 outside), ``nc`` (N, C, 1), each channel's first cell,
    and ``p`` (P,), the output cells."""
    window = ops.Window.from_attrs(info.attrs)

    def make(xp: Any, x: Any) -> _Plan:
        reason = window.reason(x.ndim, pool=True)
        if reason:
            raise InvalidArgument(f"{op}: {reason}.")
        spatial = x.shape[2:]
        r = window.resolve(len(spatial))
        geo = r.geometry(spatial)
        rows = zip(spatial, r.kernel_shape, r.strides, r.dilations, strict=True)
        pairs = [
            _window_sources(n, o, k, s, d, b, e)
            for (n, k, s, d), o, b, e in zip(rows, geo.out, geo.begin, geo.end, strict=True)
        ]
        flat, real = _flat_cells([p[0] for p in pairs], spatial)
        extra: dict[str, Any] = {}
        dev = device(x)
        if include_pad is not None:  # x is in the compute type here
            inside = real
            if include_pad:
                inside = _flat_cells([np.where(p[1], 0, -1) for p in pairs], [1] * len(pairs))[1]
            counts = np.maximum(inside.sum(axis=0), 1)  # a window without cells averages to 0
            extra["counts"] = xp.asarray(counts.astype(np.float64), dtype=x.dtype, device=dev)
        if storage_order is not None:
            cells = flat if storage_order == 0 else _flat_cells(
                [p[0] for p in pairs], spatial, reverse=True
            )[0]  # fmt: skip
            extra["real"] = xp.asarray(real, device=dev)
            extra["cells"] = xp.asarray(np.where(real, cells, -1).reshape(-1), device=dev)
            extra["nc"] = xp.asarray(
                np.arange(x.shape[0] * x.shape[1], dtype=np.int64).reshape(*x.shape[:2], 1)
                * math.prod(spatial),
                device=dev,
            )
            extra["p"] = xp.asarray(np.arange(flat.shape[1], dtype=np.int64), device=dev)
        return _plan(xp, x, flat, real, geo.out, extra)

    return _Plans(make)


def _lowest(xp: Any, dt: Any) -> Any:
    return -math.inf if is_float(xp, dt) else xp.iinfo(dt).min


def _max_indices(xp: Any, cols: Any, y: Any, plan: _Plan) -> Any:
    """Flat input index of each window's first maximum over the input cells (a padded tap never
    wins, not even a tie with a lowest value), -1 for a window with no input cell."""
    n, c = cols.shape[:2]
    hit = cols == xp.reshape(y, (n, c, 1, plan.cells))
    if plan.absent:
        hit = hit & plan.extra["real"]
    first = xp.argmax(xp.astype(hit, xp.int8), axis=2)  # (N, C, P): the first hit
    at = xp.reshape(first * plan.cells + plan.extra["p"], (-1,))
    cells = xp.reshape(xp.take(plan.extra["cells"], at), (n, c, plan.cells))
    return xp.where(cells >= 0, cells + plan.extra["nc"], cells)


def _max_pool(info):
    storage_order = int(info.attr("storage_order", 0))
    want_indices = info.num_outputs > 1 and bool(info.node.outputs[1])
    single = info.opset < 8  # MaxPool-1 has one output
    plans = _pool_plan(info, "MaxPool", storage_order if want_indices else None)

    def run(x):
        xp = namespace(x)
        w = computable(xp, x)
        plan = plans.get(w)
        n, c = x.shape[:2]
        cols = _columns(xp, w, plan, _lowest(xp, w.dtype))
        y = xp.max(cols, axis=2)  # a window without input cells keeps the fill
        out = cast(xp, xp.reshape(y, (n, c, *plan.out)), x.dtype)
        if single:
            return out
        if not want_indices:
            return out, None
        idx = _max_indices(xp, cols, y, plan)
        return out, xp.reshape(idx, (n, c, *plan.out))

    return run


MAXPOOL_ATTRS = (*POOL_ATTRS, "storage_order")
builder("MaxPool", (1, 8, 10, 11), dtypes=FLOAT_TYPES, attributes=MAXPOOL_ATTRS,
        check=_pool_check)(_max_pool)  # fmt: skip
builder("MaxPool", (12, 22), dtypes=MAXPOOL_TYPES, attributes=MAXPOOL_ATTRS,
        check=_pool_check)(_max_pool)  # fmt: skip


@builder("AveragePool", (1, 7, 10, 11, 19, 22), dtypes=FLOAT_TYPES,
         attributes=(*POOL_ATTRS, "count_include_pad"), check=_pool_check)  # fmt: skip
def average_pool(info):
    """The mean of the window's input cells, or of its input and padding cells with
    count_include_pad; cells a ceil_mode window reaches past the padding never count."""
    include_pad = bool(info.attr("count_include_pad", 0))
    plans = _pool_plan(info, "AveragePool", include_pad=include_pad)

    def run(x):
        xp = namespace(x)
        w = widened(xp, x)
        plan = plans.get(w)
        n, c = x.shape[:2]
        y = xp.sum(_columns(xp, w, plan, 0), axis=2) / plan.extra["counts"]
        return cast(xp, xp.reshape(y, (n, c, *plan.out)), x.dtype)

    return run


def _lp_power(xp: Any, x: Any, p: float) -> Any:
    return x * x if p == 2 else xp.abs(x) if p == 1 else xp.pow(xp.abs(x), p)


def _lp_root(xp: Any, s: Any, p: float) -> Any:
    return xp.sqrt(s) if p == 2 else s if p == 1 else xp.pow(s, 1 / p)


@builder("LpPool", (1, 2, 11, 18, 22), dtypes=FLOAT_TYPES, attributes=(*POOL_ATTRS, "p"),
         check=_pool_check)  # fmt: skip
def lp_pool(info):
    """``(sum |x|^p) ^ (1/p)`` over each window's input cells."""
    p = float(info.attr("p", 2))
    plans = _pool_plan(info, "LpPool")

    def run(x):
        xp = namespace(x)
        w = widened(xp, x)
        plan = plans.get(w)
        n, c = x.shape[:2]
        s = xp.sum(_columns(xp, _lp_power(xp, w, p), plan, 0), axis=2)
        return cast(xp, xp.reshape(_lp_root(xp, s, p), (n, c, *plan.out)), x.dtype)

    return run


# -- global pools ---------------------------------------------------------------------------------
def _spatial(x: Any) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


@kernel("GlobalAveragePool", (1, 22), dtypes=FLOAT_TYPES)
def global_average_pool(x):
    xp = namespace(x)
    return cast(xp, xp.mean(widened(xp, x), axis=_spatial(x), keepdims=True), x.dtype)


@kernel("GlobalMaxPool", (1, 22), dtypes=FLOAT_TYPES)
def global_max_pool(x):
    xp = namespace(x)
    return cast(xp, xp.max(computable(xp, x), axis=_spatial(x), keepdims=True), x.dtype)


@kernel("GlobalLpPool", (1, 2, 22), dtypes=FLOAT_TYPES)
def global_lp_pool(x, p=2):
    xp = namespace(x)
    p = float(p)
    s = xp.sum(_lp_power(xp, widened(xp, x), p), axis=_spatial(x), keepdims=True)
    return cast(xp, _lp_root(xp, s, p), x.dtype)
