"""Shape ops: Identity, Dropout (inference), Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze,
Transpose, Concat, Split, Expand, Tile, Pad, DepthToSpace, SpaceToDepth, Range, EyeLike.

Shapes, axes, pads and repeats given as inputs are host inputs, read as Python ints.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ort_core import ops
from ort_core._onnx import helper
from ort_core.errors import InvalidArgument
from ort_core.ops import broadcast_shape, normalize_axis
from ort_core.provider import FLOAT_TYPES

from .. import _xp
from .._table import builder, kernel
from .._xp import device, ints, namespace, provider_namespace, scalar
from ..checks import axis_check, choice_check


@kernel("Identity", 1)
def identity(x):
    return x  # tensors, sequences and optionals alike


def _dropout_limit(info) -> str | None:
    """Dropout in training mode draws a random mask, which the shared kernel does not reproduce:
    before opset 7 ``is_test=0`` (the default) asks for it; from opset 12 a ``training_mode``
    input that is not a constant false (unless the ratio is a constant 0)."""
    why = "the shared Dropout runs inference only (training draws a random mask)"
    if info.opset < 7:
        return None if info.attr("is_test", 0) else f"{why}: is_test is 0"
    if info.opset < 12 or not info.has_input(2):
        return None
    training = info.constant(2)
    if training is None:
        return f"{why}: training_mode is not a constant, so it may be true"
    if not bool(np.asarray(training).reshape(-1)[0]):
        return None
    ratio = info.constant(1) if info.has_input(1) else None
    if ratio is not None and float(np.asarray(ratio).reshape(-1)[0]) == 0:
        return None  # training with a zero ratio drops nothing
    return f"{why}: training_mode is true"


@builder("Dropout", (1, 6, 7, 10, 12, 13, 22), dtypes={0: FLOAT_TYPES}, limit=_dropout_limit)
def dropout(info):
    """Inference: the output is the input; the optional mask is all true (ones of the input's
    type before opset 10, when the mask was typed like the data)."""
    with_mask = info.num_outputs > 1 and bool(info.node.outputs[1])
    bool_mask = info.opset >= 10

    def run(x, *_):  # ratio and training_mode (opset 12) are settled by the limit
        if not with_mask:
            return (x,)
        xp = namespace(x)
        dt = xp.bool if bool_mask else x.dtype
        return x, xp.ones(x.shape, dtype=dt, device=device(x))

    return run


@kernel("Shape", 1)
def shape(x, start=0, end=None):
    xp = namespace(x)
    return xp.asarray(list(x.shape[start:end]), dtype=xp.int64, device=device(x))  # clamps


@kernel("Size", 1)
def size(x):
    xp = namespace(x)
    return xp.asarray(math.prod(x.shape), dtype=xp.int64, device=device(x))


# -- reshaping -------------------------------------------------------------------------------------
@kernel("Reshape", 1)
def reshape_1(x, shape=None, consumed_inputs=None):
    if shape is None:
        raise InvalidArgument("Reshape-1: the shape attribute is required.")
    return namespace(x).reshape(x, ops.reshape_shape(x.shape, shape))


@kernel("Reshape", 5, host_inputs=(1,))
def reshape(x, shape, allowzero=0):
    return namespace(x).reshape(x, ops.reshape_shape(x.shape, ints(shape), allowzero))


@kernel("Flatten", 1, check=axis_check(default=1, extra=1))
def flatten(x, axis=1):
    if not -x.ndim <= axis <= x.ndim:  # the one op whose axis may equal the rank
        normalize_axis(axis, x.ndim + 1, "Flatten")
    axis = axis + x.ndim if axis < 0 else axis
    return namespace(x).reshape(x, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))


def _squeeze(x, axes):
    return namespace(x).reshape(x, ops.squeeze_shape(x.shape, ints(axes)))


@kernel("Squeeze", (1, 11))
def squeeze_attr(x, axes=None):
    return _squeeze(x, axes)


@kernel("Squeeze", 13, host_inputs=(1,))
def squeeze(x, axes=None):
    return _squeeze(x, axes)


def _unsqueeze(x, axes):
    return namespace(x).reshape(x, ops.unsqueeze_shape(x.shape, ints(axes)))


@kernel("Unsqueeze", (1, 11))
def unsqueeze_attr(x, axes=()):
    return _unsqueeze(x, axes)


@kernel("Unsqueeze", 13, host_inputs=(1,))
def unsqueeze(x, axes):
    return _unsqueeze(x, axes)


@kernel("Transpose", 1)
def transpose(x, perm=None):
    perm = list(range(x.ndim))[::-1] if perm is None else list(perm)
    if sorted(perm) != list(range(x.ndim)):
        raise InvalidArgument(f"Transpose: perm {perm} is not a permutation of 0..{x.ndim - 1}.")
    return namespace(x).permute_dims(x, tuple(perm))


# -- joining and splitting -------------------------------------------------------------------------
@kernel("Concat", 1)
def concat_1(*xs, axis=1):
    return concat(*xs, axis=axis)


@kernel("Concat", 4, check=axis_check(default=None))
def concat(*xs, axis=None):
    if axis is None:
        raise InvalidArgument("Concat: the axis attribute is required from opset 4.")
    xp = namespace(xs[0])
    axis = normalize_axis(axis, xs[0].ndim, "Concat")
    return xp.concat(list(xs), axis=axis)


@builder("Split", (1, 2, 11, 13, 18), attributes=("axis", "split", "num_outputs"),
         check=axis_check(), host_inputs=(1,))  # fmt: skip
def split(info):
    attr_split = info.attr("split")  # an attribute before opset 13, an optional input since
    n_out, num_outputs = info.num_outputs, info.attr("num_outputs")
    axis_attr = int(info.attr("axis", 0))

    def run(x, split_input=None):
        axis = normalize_axis(axis_attr, x.ndim, "Split")
        given = ints(split_input) if split_input is not None else ints(attr_split)
        outs, start = [], 0
        for size in ops.split_sizes(x.shape[axis], n_out, given, num_outputs):
            index = [slice(None)] * x.ndim
            index[axis] = slice(start, start + size)
            outs.append(x[tuple(index)])
            start += size
        return outs

    return run


@kernel("Expand", 8, host_inputs=(1,))
def expand(x, shape):
    xp = namespace(x)
    target = broadcast_shape(x.shape, ints(shape), op="Expand")
    return xp.asarray(xp.broadcast_to(x, target), copy=True)  # a writable array, not a view


@kernel("Tile", 6, host_inputs=(1,))
def tile(x, repeats):
    reps = ints(repeats)
    ops.tile_shape(x.shape, reps)
    return namespace(x).tile(x, tuple(reps))


# -- Pad ---------------------------------------------------------------------------------------------
def _pad_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """Source positions (host) of the padded axis's elements for the non-constant modes."""
    pos = np.arange(-before, n + after)
    if mode == "edge":
        return np.clip(pos, 0, n - 1)
    if mode == "wrap":
        return pos % n
    period = 2 * (n - 1)  # reflect about the first and last elements (n >= 2: ops.pad_shape)
    pos = pos % period
    return np.where(pos < n, pos, period - pos)


def _pad(x, pads: list[int], value: Any, mode: str, axes: list[int] | None):
    xp = namespace(x)
    amounts = ops.pad_amounts(x.ndim, pads, axes)
    shape = ops.pad_shape(x.shape, amounts, mode)
    parts = ops.pad_parts(x.shape, amounts)
    x = x[tuple(slice(p.start, p.stop) for p in parts)]  # negative pads crop
    if mode == "constant" or math.prod(shape) == 0:
        out = xp.full(shape, value, dtype=x.dtype, device=device(x))
        if x.size:
            out[tuple(slice(p.before, p.before + d) for p, d in zip(parts, x.shape))] = x
        return out
    for a, p in enumerate(parts):
        if p.before or p.after:
            idx = _pad_index(x.shape[a], p.before, p.after, mode)
            x = xp.take(x, xp.asarray(idx, device=device(x)), axis=a)
    return xp.asarray(x, copy=True)


@kernel("Pad", 2, check=choice_check(mode=ops.PAD_MODES[:3]))
def pad_2(x, pads=(), mode="constant", value=0.0):
    return _pad(x, list(pads), value, mode, None)


@kernel("Pad", 11, check=choice_check(mode=ops.PAD_MODES), host_inputs=(1, 2, 3))
def pad(x, pads, constant_value=None, axes=None, mode="constant"):
    value = (
        0
        if constant_value is None or np.asarray(constant_value).size == 0
        else scalar(constant_value)
    )
    return _pad(x, ints(pads), value, mode, None if axes is None else ints(axes))


# -- space and depth ---------------------------------------------------------------------------------
@kernel("DepthToSpace", (1, 11, 13), check=choice_check(mode=("DCR", "CRD")))
def depth_to_space(x, blocksize=0, mode="DCR"):
    xp = namespace(x)
    out = ops.depth_to_space_shape(x.shape, blocksize)
    n, c, h, w = x.shape
    b = blocksize
    if mode == "DCR":
        t = xp.permute_dims(xp.reshape(x, (n, b, b, c // (b * b), h, w)), (0, 3, 4, 1, 5, 2))
    else:
        t = xp.permute_dims(xp.reshape(x, (n, c // (b * b), b, b, h, w)), (0, 1, 4, 2, 5, 3))
    return xp.reshape(t, out)


@kernel("SpaceToDepth", (1, 13))
def space_to_depth(x, blocksize=0):
    xp = namespace(x)
    out = ops.space_to_depth_shape(x.shape, blocksize)
    n, c, h, w = x.shape
    b = blocksize
    t = xp.permute_dims(xp.reshape(x, (n, c, h // b, b, w // b, b)), (0, 3, 5, 1, 2, 4))
    return xp.reshape(t, out)


# -- generators --------------------------------------------------------------------------------------
@builder("Range", 11, host_inputs=(0, 1, 2))
def range_(info):
    xp = provider_namespace(info)

    def run(start, limit, delta):
        dt = np.asarray(start).dtype
        s, e, d = (scalar(v) for v in (start, limit, delta))
        if d == 0:
            raise InvalidArgument("Range: delta must not be zero.")
        if dt.kind in "iu":
            n = max(-((s - e) // d), 0)  # exact ceil((e - s) / d) on Python ints
            values = xp.arange(n, dtype=xp.int64) * d + s
        else:
            n = max(math.ceil((e - s) / d), 0)
            values = xp.arange(n, dtype=_xp.dtype(xp, np.float64)) * d + s
        return xp.astype(values, _xp.dtype(xp, dt))

    return run


@kernel("EyeLike", 9)
def eye_like(x, dtype=None, k=0):
    xp = namespace(x)
    if x.ndim != 2:
        raise InvalidArgument(f"EyeLike: input must be 2-D, got shape {x.shape}.")
    out = x.dtype if dtype is None else _xp.dtype(xp, helper.tensor_dtype_to_np_dtype(dtype))
    return xp.eye(x.shape[0], x.shape[1], k=k, dtype=out, device=device(x))
