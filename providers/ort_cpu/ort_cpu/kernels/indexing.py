"""Indexing ops: Gather, GatherElements, GatherND, Scatter, ScatterElements, ScatterND,
Compress, NonZero, OneHot, TopK, Unique, Trilu, TensorScatter (Slice is ort_array's shared kernel,
the same basic indexing: 8.6 us against 9.3 us for the kernel it replaced).

Index inputs may be int32 or int64; negative indices count from the end; an index out of range is
an :class:`~ort_core.errors.InvalidArgument` naming the op and the bad index, never a silent wrap.
"""

from __future__ import annotations

import math

import numpy as np

from ort_core import ops
from ort_core.errors import InvalidArgument

from ._registry import builder, kernel
from .shape_ops import int_list, normalize_axis, zero_of


def checked_indices(op: str, indices: np.ndarray, size: int, axis: int | None = None) -> np.ndarray:
    """``indices`` as int64 in [0, size), negatives counted from the end; an error when any
    index is outside [-size, size-1]."""
    idx = np.asarray(indices).astype(np.int64, copy=False)
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < -size or hi >= size:
            bad = lo if lo < -size else hi
            where = "" if axis is None else f" on axis {axis}"
            raise InvalidArgument(
                f"{op}: index {bad} is out of range [{-size}, {size - 1}]{where}."
            )
        if lo < 0:
            idx = np.where(idx < 0, idx + size, idx)
    return idx


def _element_index(op: str, data: np.ndarray, indices: np.ndarray, axis: int) -> tuple:
    """The fancy index addressing ``data`` at ``indices`` along ``axis`` and at the position of
    each index along every other axis (GatherElements / ScatterElements addressing)."""
    if indices.ndim != data.ndim:
        raise InvalidArgument(
            f"{op}: indices have rank {indices.ndim} but data has rank {data.ndim}."
        )
    for d, (n, m) in enumerate(zip(indices.shape, data.shape, strict=True)):
        if d != axis and n > m:
            raise InvalidArgument(
                f"{op}: indices shape {indices.shape} exceeds data shape {data.shape} on axis {d}."
            )
    idx = checked_indices(op, indices, data.shape[axis], axis)
    grid = []
    for d, n in enumerate(indices.shape):
        if d == axis:
            grid.append(idx)
        else:
            shape = [1] * indices.ndim
            shape[d] = n
            grid.append(np.arange(n).reshape(shape))
    return tuple(grid)


# -- gathers ---------------------------------------------------------------------------------------
def gather(data, indices, axis=0):
    axis = normalize_axis(axis, data.ndim, "Gather")
    idx = checked_indices("Gather", indices, data.shape[axis], axis)
    return np.take(data, idx, axis=axis)


@builder("Gather", since=1)
def _gather(info):
    """:func:`gather`; with constant indices (a model's fixed positions: Silero's state slice,
    a shape's dimension), their range is found once and checked against each run's axis length
    by two comparisons: the two reductions and the cast per run cost 12 of a 1-element Gather's
    13 us."""
    axis_attr = int(info.attr("axis", 0))
    const = info.constant(1)
    if const is None or const.dtype.kind not in "iu":
        return lambda data, indices: gather(data, indices, axis_attr)
    idx = np.asarray(const, dtype=np.int64)  # (ascontiguousarray makes a 0-d index 1-d)
    lo, hi = (int(idx.min()), int(idx.max())) if idx.size else (0, -1)
    axes: dict = {}  # the axis, per rank of the data
    counted: dict = {}  # the indices with negatives counted from the end, per axis length

    def run(data, indices):
        axis = axes.get(data.ndim)
        if axis is None:
            axis = axes[data.ndim] = normalize_axis(axis_attr, data.ndim, "Gather")
        size = data.shape[axis]
        if lo < -size or hi >= size:  # out of range: the full checks' error
            return gather(data, indices, axis)
        if lo >= 0:
            return np.take(data, idx, axis=axis)
        at = counted.get(size)
        if at is None:
            if len(counted) >= 64:  # axis lengths that keep changing: bounded
                counted.clear()
            at = counted[size] = np.where(idx < 0, idx + size, idx)
        return np.take(data, at, axis=axis)

    return run


@kernel("GatherElements", since=11)
def gather_elements(data, indices, axis=0):
    axis = normalize_axis(axis, data.ndim, "GatherElements")
    return data[_element_index("GatherElements", data, np.asarray(indices), axis)]


def _nd_index(op: str, data: np.ndarray, indices: np.ndarray, batch_dims: int):
    """Flatten GatherND/ScatterND addressing: data as (B, *rest), indices as (B, M, k) with each
    index checked and normalized; returns (data view, per-component index arrays, B, M, k)."""
    ops.gather_nd_shape(data.shape, indices.shape, batch_dims, op)
    b, k = int(batch_dims), indices.shape[-1]
    batch = math.prod(data.shape[:b])
    flat = indices.reshape(batch, math.prod(indices.shape[b:-1]), k)
    comps = [checked_indices(op, flat[..., j], data.shape[b + j], b + j) for j in range(k)]
    return data.reshape((batch, *data.shape[b:])), comps, batch, flat.shape[1], k


@kernel("GatherND", since=11)
def gather_nd(data, indices, batch_dims=0):
    indices = np.asarray(indices)
    d, comps, batch, m, k = _nd_index("GatherND", data, indices, batch_dims)
    out_shape = indices.shape[:-1] + data.shape[batch_dims + k :]
    if k == 0:
        out = np.repeat(d[:, None], m, axis=1)
    else:
        out = d[(np.arange(batch)[:, None], *comps)]
    return out.reshape(out_shape)


# -- scatters --------------------------------------------------------------------------------------
_REDUCE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _ufunc_dtype(dtype: np.dtype) -> np.dtype:
    """ml_dtypes types (bfloat16, float8) lack ufunc.at: compute those in float32."""
    return np.dtype(np.float32) if dtype.type.__module__.startswith("ml_dtypes") else dtype


def _scatter(out: np.ndarray, index: tuple, updates: np.ndarray, reduction: str) -> np.ndarray:
    """Write or reduce ``updates`` into ``out`` (a fresh copy) at ``index``."""
    if reduction == "none":
        out[index] = updates
        return out
    ufunc = _REDUCE.get(reduction)
    if ufunc is None:
        raise InvalidArgument(f"unknown reduction {reduction!r} (none, add, mul, max, min).")
    work = out.astype(_ufunc_dtype(out.dtype), copy=False)
    ufunc.at(work, index, updates.astype(work.dtype, copy=False))
    return work.astype(out.dtype, copy=False)


def _check_reduction(op: str):
    def check(info):
        red = info.attr("reduction", "none")
        return None if red in ("none", *_REDUCE) else f"{op}: unknown reduction {red!r}"

    return check


@kernel("ScatterElements", since=11, check=_check_reduction("ScatterElements"))
def scatter_elements(data, indices, updates, axis=0, reduction="none"):
    axis = normalize_axis(axis, data.ndim, "ScatterElements")
    indices = np.asarray(indices)
    if updates.shape != indices.shape:
        raise InvalidArgument(
            f"ScatterElements: updates shape {updates.shape} != indices shape {indices.shape}."
        )
    index = _element_index("ScatterElements", data, indices, axis)
    return _scatter(data.copy(), index, updates, reduction)


@kernel("Scatter", since=9)
def scatter(data, indices, updates, axis=0):  # deprecated alias of ScatterElements
    return scatter_elements(data, indices, updates, axis=axis)


@kernel("ScatterND", since=11, check=_check_reduction("ScatterND"))
def scatter_nd(data, indices, updates, reduction="none"):
    indices = np.asarray(indices)
    d, comps, _, m, k = _nd_index("ScatterND", data, indices, 0)
    want = indices.shape[:-1] + data.shape[k:]
    if updates.shape != want:
        raise InvalidArgument(f"ScatterND: updates shape {updates.shape} != expected {want}.")
    out = d[0].copy()
    upd = updates.reshape((m, *data.shape[k:]))
    if k == 0:  # every index addresses the whole tensor
        for u in upd:
            out = _scatter(out[None], 0, u, reduction)[0]
        return out
    return _scatter(out, tuple(c[0] for c in comps), upd, reduction)


@kernel("Compress", since=9)
def compress(x, condition, axis=None):
    cond = np.asarray(condition).reshape(-1).astype(bool, copy=False)
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = normalize_axis(axis, x.ndim, "Compress")
    if cond.size > x.shape[axis]:
        raise InvalidArgument(
            f"Compress: condition has {cond.size} elements but axis {axis} has {x.shape[axis]}."
        )
    return np.compress(cond, x, axis=axis)


@kernel("NonZero", since=9)
def nonzero(x):
    mask = x.astype(bool) if x.dtype.kind in "bO" else x != 0  # strings: non-empty
    if x.ndim == 0:
        return np.zeros((0, int(np.count_nonzero(mask))), dtype=np.int64)
    return np.array(np.nonzero(mask), dtype=np.int64).reshape(x.ndim, -1)


@kernel("OneHot", since=9)
def one_hot(indices, depth, values, axis=-1):
    depth_v = np.asarray(depth).reshape(-1)
    if depth_v.size != 1:
        raise InvalidArgument(f"OneHot: depth must hold one value, got {depth_v.size}.")
    n = int(depth_v[0])
    if n < 1:
        raise InvalidArgument(f"OneHot: depth must be positive, got {n}.")
    values = np.asarray(values).reshape(-1)
    if values.size != 2:
        raise InvalidArgument(f"OneHot: values must be [off_value, on_value], got {values.size}.")
    idx = np.asarray(indices)
    axis = normalize_axis(axis, idx.ndim + 1, "OneHot")
    idx = idx.astype(np.int64)  # float indices truncate, as onnxruntime does
    idx = np.where(idx < 0, idx + n, idx)  # still outside [0, n): an all-off row, per the spec
    hot = np.expand_dims(idx, axis) == np.arange(n).reshape([n] + [1] * (idx.ndim - axis))
    return np.where(hot, values[1], values[0])


# -- sorting ---------------------------------------------------------------------------------------
def _sort_key(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) if x.dtype.type.__module__.startswith("ml_dtypes") else x


def _topk(x: np.ndarray, k: int, axis: int, largest: int) -> tuple[np.ndarray, np.ndarray]:
    axis = normalize_axis(axis, x.ndim, "TopK")
    n = x.shape[axis]
    if not 0 <= k <= n:
        raise InvalidArgument(f"TopK: k={k} is out of range [0, {n}] for axis {axis}.")
    key = _sort_key(x)
    if largest:
        # A stable ascending sort of the reversed axis, read backwards: descending values,
        # equal values in increasing original index.
        order = np.argsort(np.flip(key, axis), axis=axis, kind="stable")
        order = (n - 1) - np.flip(order, axis)
    else:
        order = np.argsort(key, axis=axis, kind="stable")
    ind = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, ind, axis=axis), ind.astype(np.int64, copy=False)


@kernel("TopK", since=1)
def topk_attr(x, axis=-1, k=None):
    if k is None:
        raise InvalidArgument("TopK: the 'k' attribute is required before opset 10.")
    return _topk(x, int(k), axis, 1)


@kernel("TopK", since=(10, 11))
def topk(x, k, axis=-1, largest=1, sorted=1):  # noqa: A002 - the ONNX attribute name
    kv = int_list(k)
    if len(kv) != 1:
        raise InvalidArgument(f"TopK: K must hold one value, got {len(kv)}.")
    return _topk(x, kv[0], axis, largest)  # sorted=0 leaves the order free: sorted is fine


@builder("Unique", since=11, attributes=("axis", "sorted"))
def unique(info):
    axis_attr = info.attr("axis")
    keep_sorted = info.attr("sorted", 1)

    def run(x):
        if axis_attr is None:
            flat, axis = x.reshape(-1), 0
            key = _sort_key(flat)
            _, first, inverse, counts = np.unique(key, True, True, True)
        else:
            flat, axis = x, normalize_axis(axis_attr, x.ndim, "Unique")
            key = _sort_key(x)
            _, first, inverse, counts = np.unique(key, True, True, True, axis=axis)
        inverse = inverse.reshape(-1)
        if not keep_sorted:  # order of first occurrence
            order = np.argsort(first, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            first, counts, inverse = first[order], counts[order], rank[inverse]
        y = np.take(flat, first, axis=axis)
        i64 = np.int64
        return y, first.astype(i64), inverse.astype(i64), counts.astype(i64)

    return run


@kernel("Trilu", since=14)
def trilu(x, k=None, upper=1):
    if x.ndim < 2:
        raise InvalidArgument(f"Trilu: input must have rank >= 2, got shape {x.shape}.")
    kv = 0 if k is None else int_list(k)[0]
    rows, cols = x.shape[-2:]
    i = np.arange(rows).reshape(-1, 1)
    j = np.arange(cols).reshape(1, -1)
    keep = (j - i >= kv) if upper else (j - i <= kv)
    return np.where(keep, x, zero_of(x.dtype))


_TS_MODES = ("linear", "circular")


def _tensor_scatter_check(info):
    mode = info.attr("mode", "linear")
    if mode not in _TS_MODES:
        return f"mode '{mode}' is not one of {_TS_MODES}"
    shape = info.input_shape(0)
    if shape is not None:
        rank, axis = len(shape), int(info.attr("axis", -2))
        if not -rank <= axis < rank or axis % rank == 0:
            return f"axis {axis} must name a non-batch axis of the rank-{rank} cache"
    return None


@builder("TensorScatter", since=24, check=_tensor_scatter_check)
def tensor_scatter(info):
    circular = info.attr("mode", "linear") == "circular"
    axis_attr = int(info.attr("axis", -2))

    def run(past, update, write_indices=None):
        axis = normalize_axis(axis_attr, past.ndim, "TensorScatter")
        if axis == 0:
            raise InvalidArgument("TensorScatter: axis must not be the batch axis 0.")
        out = past.copy()
        dst, src = np.moveaxis(out, axis, -1), np.moveaxis(update, axis, -1)
        max_len, seq = dst.shape[-1], src.shape[-1]
        if write_indices is None:
            starts = np.zeros(past.shape[0], dtype=np.int64)
        else:
            starts = np.asarray(write_indices).astype(np.int64, copy=False).reshape(-1)
        for b, start in enumerate(starts.tolist()):
            pos = start + np.arange(seq)
            if circular:
                pos %= max_len
            elif seq and (start < 0 or start + seq > max_len):
                raise InvalidArgument(
                    f"TensorScatter: write index {start} + {seq} update rows do not fit in the "
                    f"cache's {max_len} rows (mode 'linear'; use mode 'circular' to wrap)."
                )
            dst[b][..., pos] = src[b]
        return out

    return run
