"""Shape ops: Identity, Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat,
Split, Expand, Tile, Pad, DepthToSpace, SpaceToDepth, Range, EyeLike.

Shapes, axes, pads and repeats given as inputs are host inputs, read as Python ints.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from onnx import helper

from ort_core.errors import InvalidArgument
from ort_core.ops import broadcast_shape, normalize_axes, normalize_axis

from .. import _xp
from .._table import builder, kernel
from .._xp import device, ints, namespace, provider_namespace, scalar
from ..checks import axis_check, choice_check


@kernel("Identity", 1)
def identity(x):
    return x  # tensors, sequences and optionals alike


@kernel("Shape", 1)
def shape(x, start=0, end=None):
    xp = namespace(x)
    return xp.asarray(list(x.shape[start:end]), dtype=xp.int64, device=device(x))  # clamps


@kernel("Size", 1)
def size(x):
    xp = namespace(x)
    return xp.asarray(math.prod(x.shape), dtype=xp.int64, device=device(x))


# -- reshaping -------------------------------------------------------------------------------------
def reshape_target(x_shape: tuple[int, ...], dims: list[int], allowzero: int) -> list[int]:
    """Reshape's output shape: 0 copies the input's dimension (unless ``allowzero``), -1 is
    inferred; an :class:`InvalidArgument` saying why when ``dims`` cannot apply."""
    out = list(dims)
    if not allowzero:
        for i, d in enumerate(dims):
            if d == 0:
                if i >= len(x_shape):
                    raise InvalidArgument(
                        f"Reshape: shape {dims} copies dimension {i} (0) but the input has rank "
                        f"{len(x_shape)}."
                    )
                out[i] = x_shape[i]
    if out.count(-1) > 1 or any(d < -1 for d in out):
        raise InvalidArgument(
            f"Reshape: invalid shape {dims} (at most one -1, no other negatives)."
        )
    total = math.prod(x_shape)
    if -1 in out:
        if allowzero and 0 in out:
            raise InvalidArgument(f"Reshape: shape {dims} has both -1 and 0 with allowzero=1.")
        known = math.prod(d for d in out if d != -1)
        if known == 0 or total % known:
            raise InvalidArgument(
                f"Reshape: cannot reshape a tensor of shape {x_shape} into {dims}."
            )
        out[out.index(-1)] = total // known
    if math.prod(out) != total:
        raise InvalidArgument(f"Reshape: cannot reshape a tensor of shape {x_shape} into {dims}.")
    return out


@kernel("Reshape", 1)
def reshape_1(x, shape=None, consumed_inputs=None):
    if shape is None:
        raise InvalidArgument("Reshape-1: the shape attribute is required.")
    return namespace(x).reshape(x, tuple(reshape_target(x.shape, list(shape), 0)))


@kernel("Reshape", 5, host_inputs=(1,))
def reshape(x, shape, allowzero=0):
    return namespace(x).reshape(x, tuple(reshape_target(x.shape, ints(shape), allowzero)))


@kernel("Flatten", 1, check=axis_check(default=1, extra=1))
def flatten(x, axis=1):
    if not -x.ndim <= axis <= x.ndim:  # the one op whose axis may equal the rank
        normalize_axis(axis, x.ndim + 1, "Flatten")
    axis = axis + x.ndim if axis < 0 else axis
    return namespace(x).reshape(x, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))


def _squeeze(x, axes):
    xp = namespace(x)
    axes = ints(axes)
    if not axes:
        return xp.reshape(x, tuple(d for d in x.shape if d != 1))
    axes = normalize_axes(axes, x.ndim, "Squeeze")
    for a in axes:
        if x.shape[a] != 1:
            raise InvalidArgument(
                f"Squeeze: dimension {a} of shape {x.shape} is {x.shape[a]}, not 1."
            )
    return xp.reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


@kernel("Squeeze", (1, 11))
def squeeze_attr(x, axes=None):
    return _squeeze(x, axes)


@kernel("Squeeze", 13, host_inputs=(1,))
def squeeze(x, axes=None):
    return _squeeze(x, axes)


def _unsqueeze(x, axes):
    axes = ints(axes)
    rank = x.ndim + len(axes)
    axes = normalize_axes(axes, rank, "Unsqueeze")
    dims = iter(x.shape)
    return namespace(x).reshape(x, tuple(1 if i in axes else next(dims) for i in range(rank)))


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


def _split_sizes(dim: int, split: list[int], num_outputs: int, axis: int) -> list[int]:
    if split:
        if len(split) != num_outputs or sum(split) != dim or min(split) < 0:
            raise InvalidArgument(
                f"Split: split {split} must have {num_outputs} non-negative entries summing to "
                f"the {dim} elements of axis {axis}."
            )
        return split
    chunk = -(-dim // num_outputs)  # the last output takes what is left (opset 18)
    return [min(chunk, max(dim - i * chunk, 0)) for i in range(num_outputs)]


@builder("Split", (1, 2, 11, 13, 18), attributes=("axis", "split", "num_outputs"),
         check=axis_check(), host_inputs=(1,))  # fmt: skip
def split(info):
    attr_split = info.attr("split")
    n_out = info.num_outputs
    num_outputs = info.attr("num_outputs")
    if num_outputs is not None and int(num_outputs) != n_out:
        raise InvalidArgument(f"Split: num_outputs={num_outputs} but the node has {n_out} outputs.")
    axis_attr = int(info.attr("axis", 0))

    def run(x, split_input=None):
        axis = normalize_axis(axis_attr, x.ndim, "Split")
        dim = x.shape[axis]
        sizes = ints(split_input) if split_input is not None else ints(attr_split)
        if not sizes and num_outputs is None and dim % n_out:
            raise InvalidArgument(
                f"Split: axis {axis} of {dim} elements does not split evenly into {n_out}."
            )
        outs, start = [], 0
        for size in _split_sizes(dim, sizes, n_out, axis):
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
    if len(reps) != x.ndim or min(reps, default=0) < 0:
        raise InvalidArgument(
            f"Tile: repeats {reps} must hold one non-negative count per axis of the rank-{x.ndim} input."
        )
    return namespace(x).tile(x, tuple(reps))


# -- Pad ---------------------------------------------------------------------------------------------
_MODES = ("constant", "reflect", "edge", "wrap")


def _pad_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """Source positions (host) of the padded axis's elements for the non-constant modes."""
    pos = np.arange(-before, n + after)
    if mode == "edge":
        return np.clip(pos, 0, n - 1)
    if mode == "wrap":
        return pos % n
    if n == 1:
        return np.zeros_like(pos)
    period = 2 * (n - 1)  # reflect: mirror about the first and last elements
    pos = pos % period
    return np.where(pos < n, pos, period - pos)


def _pad(x, pads: list[int], value: Any, mode: str, axes: list[int] | None):
    xp = namespace(x)
    rank = x.ndim
    axes = list(range(rank)) if axes is None else list(normalize_axes(axes, rank, "Pad"))
    if len(pads) != 2 * len(axes):
        raise InvalidArgument(f"Pad: pads {pads} must hold 2 values per padded axis ({len(axes)}).")
    before, after = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        before[a], after[a] = pads[i], pads[i + len(axes)]
    crop = tuple(
        slice(max(-b, 0), d - max(-e, 0)) for b, e, d in zip(before, after, x.shape)
    )  # negative pads remove elements
    x = x[crop]
    before, after = [max(b, 0) for b in before], [max(e, 0) for e in after]
    if mode == "constant":
        shape = tuple(d + b + e for d, b, e in zip(x.shape, before, after))
        out = xp.full(shape, value, dtype=x.dtype, device=device(x))
        out[tuple(slice(b, b + d) for b, d in zip(before, x.shape))] = x
        return out
    for a in range(rank):
        if before[a] or after[a]:
            if x.shape[a] == 0:
                raise InvalidArgument(f"Pad: mode {mode!r} cannot pad the empty axis {a}.")
            idx = _pad_index(x.shape[a], before[a], after[a], mode)
            x = xp.take(x, xp.asarray(idx, device=device(x)), axis=a)
    return xp.asarray(x, copy=True)


@kernel("Pad", 2, check=choice_check(mode=_MODES[:3]))
def pad_2(x, pads=(), mode="constant", value=0.0):
    return _pad(x, list(pads), value, mode, None)


@kernel("Pad", 11, check=choice_check(mode=_MODES), host_inputs=(1, 2, 3))
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
    if x.ndim != 4 or blocksize <= 0 or x.shape[1] % (blocksize * blocksize):
        raise InvalidArgument(
            f"DepthToSpace: input {x.shape} must be 4-D with channels divisible by "
            f"blocksize^2 ({blocksize}^2)."
        )
    n, c, h, w = x.shape
    b = blocksize
    if mode == "DCR":
        t = xp.permute_dims(xp.reshape(x, (n, b, b, c // (b * b), h, w)), (0, 3, 4, 1, 5, 2))
    else:
        t = xp.permute_dims(xp.reshape(x, (n, c // (b * b), b, b, h, w)), (0, 1, 4, 2, 5, 3))
    return xp.reshape(t, (n, c // (b * b), h * b, w * b))


@kernel("SpaceToDepth", (1, 13))
def space_to_depth(x, blocksize=0):
    xp = namespace(x)
    b = blocksize
    if x.ndim != 4 or b <= 0 or x.shape[2] % b or x.shape[3] % b:
        raise InvalidArgument(
            f"SpaceToDepth: input {x.shape} must be 4-D with height and width divisible by {b}."
        )
    n, c, h, w = x.shape
    t = xp.permute_dims(xp.reshape(x, (n, c, h // b, b, w // b, b)), (0, 3, 5, 1, 2, 4))
    return xp.reshape(t, (n, c * b * b, h // b, w // b))


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
