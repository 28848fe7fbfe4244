"""Indexing ops: Slice, Gather, GatherElements, GatherND, ScatterElements (and Scatter), ScatterND,
OneHot, Trilu, TopK, NonZero, Compress, ReverseSequence.

Index tensors may be int32 or int64; negative indices count from the end; an index out of range is
an :class:`~ort_core.errors.InvalidArgument` naming the op and the index, never a silent wrap.

The array API has no indexed assignment, so scatters are written with sorting: the update
positions are sorted once, each target position finds its updates with ``searchsorted``, and
duplicate positions are reduced in as many passes as the largest number of updates one position
receives (one pass when the positions are distinct). Without a reduction the last update wins.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ort_core import ops
from ort_core.errors import InvalidArgument
from ort_core.ops import normalize_axis
from ort_core.provider import NUMERIC_TYPES

from .._table import kernel
from .._xp import cast, check_indices, clip, computable, device, ints, namespace
from ..checks import axis_check, choice_check


def _index(xp: Any, idx: Any) -> Any:
    return cast(xp, idx, xp.int64)


# -- slicing ---------------------------------------------------------------------------------------
#: per (input shape, identities of starts, ends, axes, steps): those four and the index, where
#: they are read-only arrays (a graph's constants) or None
_SLICES: dict = {}


def _fixed(v) -> bool:
    return v is None or (isinstance(v, np.ndarray) and not v.flags.writeable)


def _slice(x, starts, ends, axes=None, steps=None):
    """``x`` sliced; the index worked out once per input shape where the starts, ends, axes and
    steps are constants (read-only arrays), as they usually are: their conversion and the
    ranges took 5 us of a small Slice's 6."""
    key = (x.shape, id(starts), id(ends), id(axes), id(steps))
    kept = _SLICES.get(key)
    if (
        kept is not None
        and kept[0] is starts
        and kept[1] is ends
        and kept[2] is axes
        and kept[3] is steps
    ):
        return x[kept[4]]
    axes_, steps_ = (None if v is None else ints(v) for v in (axes, steps))
    ranges = ops.slice_ranges(x.shape, ints(starts), ints(ends), axes_, steps_)
    index = tuple(slice(*r) for r in ranges)
    if _fixed(starts) and _fixed(ends) and _fixed(axes) and _fixed(steps):
        if len(_SLICES) >= 1024:
            _SLICES.clear()
        _SLICES[key] = (starts, ends, axes, steps, index)  # keeps the keys' objects alive
    return x[index]


@kernel("Slice", 1)
def slice_attr(x, starts=(), ends=(), axes=None):
    return _slice(x, starts, ends, axes)


@kernel("Slice", 10, host_inputs=(1, 2, 3, 4))
def slice_(x, starts, ends, axes=None, steps=None):
    return _slice(x, starts, ends, axes, steps)


# -- gathers ---------------------------------------------------------------------------------------
@kernel("Gather", 1, check=axis_check())
def gather(data, indices, axis=0):
    xp = namespace(data)
    axis = normalize_axis(axis, data.ndim, "Gather")
    idx = check_indices(xp, _index(xp, indices), data.shape[axis], "Gather", axis)
    out = xp.take(data, xp.reshape(idx, (-1,)), axis=axis)
    return xp.reshape(out, data.shape[:axis] + tuple(idx.shape) + data.shape[axis + 1 :])


def _elements(op: str, data, indices, axis: int):
    """GatherElements/ScatterElements addressing: ``data`` cut to the indices' extent on the
    other axes, and the checked indices."""
    if indices.ndim != data.ndim:
        raise InvalidArgument(
            f"{op}: indices have rank {indices.ndim} but data has rank {data.ndim}."
        )
    for d, (n, m) in enumerate(zip(indices.shape, data.shape)):
        if d != axis and n > m:
            raise InvalidArgument(
                f"{op}: indices shape {indices.shape} exceeds data shape {data.shape} on axis {d}."
            )
    xp = namespace(data)
    return check_indices(xp, _index(xp, indices), data.shape[axis], op, axis)


@kernel("GatherElements", 11, check=axis_check())
def gather_elements(data, indices, axis=0):
    xp = namespace(data)
    axis = normalize_axis(axis, data.ndim, "GatherElements")
    idx = _elements("GatherElements", data, indices, axis)
    cut = tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(idx.shape))
    return xp.take_along_axis(data[cut], idx, axis=axis)


def _nd_lin(op: str, data, indices, batch_dims: int):
    """GatherND/ScatterND addressing: the flat row of ``data`` viewed as (rows, *rest) that each
    index tuple names (batch offset included), and k (dimensions each tuple addresses)."""
    xp = namespace(data)
    ops.gather_nd_shape(data.shape, indices.shape, batch_dims, op)
    b, k = int(batch_dims), indices.shape[-1]
    idx = _index(xp, indices)
    batch = math.prod(data.shape[:b])
    per_batch = math.prod(data.shape[b : b + k])
    lin = xp.zeros(tuple(indices.shape[:-1]), dtype=xp.int64, device=device(data))
    for j in range(k):
        dim = data.shape[b + j]
        comp = check_indices(xp, idx[..., j], dim, op, b + j)
        lin = lin * dim + comp
    lin = xp.reshape(lin, (batch, -1))
    offsets = xp.reshape(xp.arange(batch, dtype=xp.int64, device=device(data)), (batch, 1))
    return xp.reshape(lin + offsets * per_batch, (-1,)), batch * per_batch, k


@kernel("GatherND", (11, 12))
def gather_nd(data, indices, batch_dims=0):
    xp = namespace(data)
    lin, rows, k = _nd_lin("GatherND", data, indices, batch_dims)
    rest = tuple(data.shape[batch_dims + k :])
    out = xp.take(xp.reshape(data, (rows, *rest)), lin, axis=0)
    return xp.reshape(out, tuple(indices.shape[:-1]) + rest)


# -- scatters --------------------------------------------------------------------------------------
_REDUCE = {
    "add": lambda xp, a, b: a + b,
    "mul": lambda xp, a, b: a * b,
    "max": lambda xp, a, b: xp.maximum(a, b),
    "min": lambda xp, a, b: xp.minimum(a, b),
}


def scatter_rows(data2, lin, updates2, reduction: str = "none"):
    """``data2`` (rows, *rest) with ``updates2`` (m, *rest) written into rows ``lin`` (m ints in
    [0, rows)), or reduced into them; a fresh array."""
    xp = namespace(data2)
    rows, m = data2.shape[0], lin.shape[0]
    if m == 0 or rows == 0:
        return xp.asarray(data2, copy=True)
    order = xp.argsort(lin, stable=True)
    keys = xp.take(lin, order)
    pos = xp.arange(rows, dtype=keys.dtype, device=device(data2))
    left = xp.searchsorted(keys, pos, side="left")
    right = xp.searchsorted(keys, pos, side="right")
    column = (rows,) + (1,) * (data2.ndim - 1)
    if reduction == "none":  # the last update of each position (stable sort: in input order)
        src = xp.take(order, clip(xp, right - 1, 0, m - 1))
        hit = xp.reshape(right > left, column)
        return xp.where(hit, xp.take(updates2, src, axis=0), data2)
    fn = _REDUCE[reduction]
    out = data2
    for r in range(int(xp.max(right - left))):  # the r-th update of every position at once
        k = left + r
        src = xp.take(order, clip(xp, k, 0, m - 1))
        hit = xp.reshape(k < right, column)
        out = xp.where(hit, fn(xp, out, xp.take(updates2, src, axis=0)), out)
    return out


def _scatter(data, lin, updates, rest: tuple[int, ...], reduction: str):
    xp = namespace(data)
    rows = math.prod(data.shape) // max(math.prod(rest), 1) if rest else math.prod(data.shape)
    d2 = xp.reshape(computable(xp, data), (rows, *rest))
    u2 = xp.reshape(cast(xp, computable(xp, updates), d2.dtype), (lin.shape[0], *rest))
    return cast(xp, xp.reshape(scatter_rows(d2, lin, u2, reduction), data.shape), data.dtype)


_reduction_check = choice_check(reduction=("none", *_REDUCE))


@kernel("ScatterElements", 11, check=_reduction_check)
def scatter_elements(data, indices, updates, axis=0, reduction="none"):
    xp = namespace(data)
    axis = normalize_axis(axis, data.ndim, "ScatterElements")
    if tuple(updates.shape) != tuple(indices.shape):
        raise InvalidArgument(
            f"ScatterElements: updates shape {updates.shape} != indices shape {indices.shape}."
        )
    idx = _elements("ScatterElements", data, indices, axis)
    lin = xp.zeros(tuple(idx.shape), dtype=xp.int64, device=device(data))
    for d, n in enumerate(idx.shape):  # row-major position in data of each index's target
        if d == axis:
            coord = idx
        else:
            shape = [1] * idx.ndim
            shape[d] = n
            coord = xp.reshape(xp.arange(n, dtype=xp.int64, device=device(data)), tuple(shape))
        lin = lin * data.shape[d] + coord
    return _scatter(data, xp.reshape(lin, (-1,)), updates, (), reduction)


@kernel("Scatter", 9)
def scatter(data, indices, updates, axis=0):  # deprecated alias of ScatterElements
    return scatter_elements(data, indices, updates, axis=axis)


@kernel("ScatterND", 11, check=_reduction_check)
def scatter_nd(data, indices, updates, reduction="none"):
    lin, _, k = _nd_lin("ScatterND", data, indices, 0)
    rest = tuple(data.shape[k:])
    want = tuple(indices.shape[:-1]) + rest
    if tuple(updates.shape) != want:
        raise InvalidArgument(f"ScatterND: updates shape {updates.shape} != expected {want}.")
    return _scatter(data, lin, updates, rest, reduction)


# -- OneHot, Trilu, TopK ---------------------------------------------------------------------------
@kernel("OneHot", (9, 11), host_inputs=(1,))
def one_hot(indices, depth, values, axis=-1):
    xp = namespace(values)
    d = ints(depth)
    if len(d) != 1 or d[0] < 1:
        raise InvalidArgument(f"OneHot: depth must hold one positive value, got {d}.")
    n = d[0]
    if values.shape != (2,):
        raise InvalidArgument(
            f"OneHot: values must be [off_value, on_value], got shape {values.shape}."
        )
    axis = normalize_axis(axis, indices.ndim + 1, "OneHot")
    idx = _index(xp, indices)  # float indices truncate, as onnxruntime does
    idx = xp.where(idx < 0, idx + n, idx)  # still outside [0, n): an all-off row, per the spec
    classes = xp.reshape(
        xp.arange(n, dtype=xp.int64, device=device(values)), (n,) + (1,) * (indices.ndim - axis)
    )
    return xp.where(xp.expand_dims(idx, axis=axis) == classes, values[1], values[0])


@kernel("Trilu", 14, host_inputs=(1,))
def trilu(x, k=None, upper=1):
    xp = namespace(x)
    if x.ndim < 2:
        raise InvalidArgument(f"Trilu: input must have rank >= 2, got shape {x.shape}.")
    kv = ints(k)[0] if k is not None else 0
    rows, cols = x.shape[-2:]
    i = xp.reshape(xp.arange(rows, device=device(x)), (-1, 1))
    j = xp.reshape(xp.arange(cols, device=device(x)), (1, -1))
    keep = (j - i >= kv) if upper else (j - i <= kv)
    return xp.where(keep, x, xp.zeros_like(x))


def _topk(x, k: int, axis: int, largest: int):
    xp = namespace(x)
    axis = normalize_axis(axis, x.ndim, "TopK")
    n = x.shape[axis]
    if not 0 <= k <= n:
        raise InvalidArgument(f"TopK: k={k} is out of range [0, {n}] for axis {axis}.")
    # stable: equal values keep increasing index order, as onnxruntime returns them
    order = xp.argsort(computable(xp, x), axis=axis, descending=bool(largest), stable=True)
    index = [slice(None)] * x.ndim
    index[axis] = slice(0, k)
    ind = order[tuple(index)]
    return xp.take_along_axis(x, ind, axis=axis), cast(xp, ind, xp.int64)


@kernel("TopK", 1, check=axis_check(default=-1))
def topk_attr(x, axis=-1, k=None):
    if k is None:
        raise InvalidArgument("TopK: the 'k' attribute is required before opset 10.")
    return _topk(x, int(k), axis, 1)


@kernel("TopK", (10, 11), check=axis_check(default=-1), host_inputs=(1,))
def topk(x, k, axis=-1, largest=1, sorted=1):  # noqa: A002 - the ONNX attribute name
    kv = ints(k)
    if len(kv) != 1:
        raise InvalidArgument(f"TopK: K must hold one value, got {len(kv)}.")
    return _topk(x, kv[0], axis, largest)  # sorted=0 leaves the order free: sorted is fine


# -- NonZero, Compress, ReverseSequence ---------------------------------------------------------
@kernel("NonZero", (9, 13), dtypes=NUMERIC_TYPES | {np.dtype(np.bool_)})
def nonzero(x):
    """The indices of the nonzero elements, one row per axis, in row-major order; a scalar reads
    as one element (a (1, n) result, as onnxruntime gives)."""
    xp = namespace(x)
    x = computable(xp, x)
    if x.ndim == 0:
        x = xp.reshape(x, (1,))
    mask = x if x.dtype == xp.bool else x != 0
    return xp.stack([cast(xp, i, xp.int64) for i in xp.nonzero(mask)], axis=0)


@kernel("Compress", (9, 11), check=axis_check(default=None), host_inputs=(1,))
def compress(x, condition, axis=None):
    xp = namespace(x)
    if axis is None:
        x, axis = xp.reshape(x, (-1,)), 0
    axis = normalize_axis(axis, x.ndim, "Compress")
    cond = np.asarray(condition).reshape(-1)
    if cond.size > x.shape[axis]:  # a shorter condition drops the slices past its end
        raise InvalidArgument(
            f"Compress: condition has {cond.size} elements but axis {axis} has {x.shape[axis]}."
        )
    keep = np.flatnonzero(cond.astype(bool))
    return xp.take(x, xp.asarray(keep, dtype=xp.int64, device=device(x)), axis=axis)


def _axes_check(info) -> str | None:
    axes = (info.attr("batch_axis", 1), info.attr("time_axis", 0))
    if sorted(axes) != [0, 1]:
        return f"batch_axis {axes[0]} and time_axis {axes[1]} must be 0 and 1"
    return None


@kernel("ReverseSequence", 10, check=_axes_check, host_inputs=(1,))
def reverse_sequence(x, sequence_lens, batch_axis=1, time_axis=0):
    """Each batch entry's first ``sequence_lens[b]`` steps reversed, the rest copied."""
    xp = namespace(x)
    if x.ndim < 2:
        raise InvalidArgument(f"ReverseSequence: input must have rank >= 2, got shape {x.shape}.")
    steps, batch = x.shape[time_axis], x.shape[batch_axis]
    src = ops.reverse_sequence_steps(steps, batch, sequence_lens)  # (time, batch)
    b = np.arange(batch)
    rows = src * batch + b if time_axis == 0 else b * steps + src  # flat (time|batch) row
    rows = rows if time_axis == 0 else rows.T  # in the input's (batch, time) order
    flat = xp.reshape(x, (steps * batch, math.prod(x.shape[2:])))
    out = xp.take(flat, xp.asarray(rows.reshape(-1), device=device(x)), axis=0)
    return xp.reshape(out, x.shape)
