"""Shape arithmetic of the data-movement ops, on Python ints: Reshape's target shape, Slice's
clamped ranges, Split's chunk sizes, Squeeze/Unsqueeze, GatherND/ScatterND addressing, Pad's
per-axis amounts, Tile, DepthToSpace and SpaceToDepth.

Each rule has a ``*_reason`` function (why the arguments break the spec, or None: a partition-time
check) and a function that returns the result or raises :class:`InvalidArgument` naming the op,
what it expected and what it got. Where the spec is silent the rules follow onnxruntime: Slice and
Unsqueeze reject repeated axes, Squeeze accepts them, Pad lets a repeated axis's last pads win, an
empty ``split`` input and Squeeze's empty ``axes`` count as absent, and Split's ``num_outputs``
chunks may end in empty chunks but not in a negative one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..errors import InvalidArgument
from ._axes import axes_reason

Dim = int | str | None


def _ints(values: Iterable[int] | None) -> list[int] | None:
    return None if values is None else [int(v) for v in values]


def _raise(op: str, reason: str):
    raise InvalidArgument(f"{op}: {reason}.")


def _result(op: str, outcome):
    """``outcome`` when it is a result; raise when it is a reason (a string)."""
    if isinstance(outcome, str):
        _raise(op, outcome)
    return outcome


def _reason(outcome) -> str | None:
    return outcome if isinstance(outcome, str) else None


#: Results of the shape rules kernels call on every run, by their arguments: shape arithmetic is
#: done once per distinct input shape (and shape-like values), not once per run.
_MEMO: dict[tuple, Any] = {}
_MEMO_MAX = 4096


def _frozen(values: Any) -> tuple | None:
    """A sequence argument as a tuple (the memo's key and what the rule then reads)."""
    return values if values is None or type(values) is tuple else tuple(values)


def _memo(rule: Any, *args: Any) -> Any:
    """``rule(*args)``, remembered when it is a result (a reason, a string, is computed again so
    that the error is raised again); arguments that cannot be hashed are never remembered."""
    key = (rule, *args)
    try:
        hit = _MEMO.get(key)
    except TypeError:
        return rule(*args)
    if hit is None:
        hit = rule(*args)
        if not isinstance(hit, str):
            if len(_MEMO) >= _MEMO_MAX:
                _MEMO.clear()
            _MEMO[key] = hit
    return hit


# -- Reshape ---------------------------------------------------------------------------------------
def _reshape(in_shape: Sequence[int], dims: Iterable[int], allowzero: int) -> tuple[int, ...] | str:
    in_shape, dims = tuple(int(d) for d in in_shape), _ints(dims)
    bad = [d for d in dims if d < -1]
    if bad:
        return f"shape {dims} has the dimension {bad[0]}; expected -1 (inferred) or a size >= 0"
    if dims.count(-1) > 1:
        return f"shape {dims} has {dims.count(-1)} dimensions of -1; expected at most one"
    if allowzero and -1 in dims and 0 in dims:
        return (
            f"shape {dims} has both -1 and 0 with allowzero=1; expected one or the other (a 0 is "
            "a real zero then, and leaves nothing to infer the -1 from)"
        )
    out = list(dims)
    if not allowzero:
        for i, d in enumerate(dims):
            if d == 0:
                if i >= len(in_shape):
                    return (
                        f"shape {dims} copies dimension {i} of the input with a 0, but the input "
                        f"{list(in_shape)} has rank {len(in_shape)}"
                    )
                out[i] = in_shape[i]
    total = math.prod(in_shape)
    if -1 in out:
        k = out.index(-1)
        known = math.prod(d for i, d in enumerate(out) if i != k)
        if known == 0 or total % known:
            return (
                f"cannot infer the -1 of shape {dims} (resolved {out}): the input "
                f"{list(in_shape)} has {total} elements, expected a multiple of {known} > 0"
            )
        out[k] = total // known
    if math.prod(out) != total:
        return (
            f"shape {dims} (resolved {out}) holds {math.prod(out)} elements; expected {total}, "
            f"the element count of the input {list(in_shape)}"
        )
    return tuple(out)


def reshape_reason(in_shape: Sequence[int], dims: Iterable[int], allowzero: int = 0) -> str | None:
    """Why Reshape cannot give ``in_shape`` the shape ``dims``, or None."""
    return _reason(_reshape(in_shape, dims, allowzero))


def reshape_shape(
    in_shape: Sequence[int], dims: Iterable[int], allowzero: int = 0, op: str = "Reshape"
) -> tuple[int, ...]:
    """Reshape's output shape: a 0 copies the input's dimension (unless ``allowzero``), one -1 is
    inferred from the element count.

    Raises:
        InvalidArgument: ``dims`` does not apply to ``in_shape``.
    """
    return _result(op, _memo(_reshape, _frozen(in_shape), _frozen(dims), allowzero))


# -- Slice -----------------------------------------------------------------------------------------
class AxisSlice(NamedTuple):
    """One axis of a Slice, clamped as the spec says and ready for Python slicing
    (``x[tuple(slice(*r) for r in ranges)]``). ``stop`` is None where a negative step runs through
    index 0."""

    start: int
    stop: int | None
    step: int

    @property
    def length(self) -> int:
        """Elements the slice takes."""
        return len(range(self.start, -1 if self.stop is None else self.stop, self.step))


#: Ends that mean "through the last element in the step's direction": INT_MAX of int32 and int64.
_END = (2**31 - 1, 2**63 - 1)


def _clamp(v: int, lo: int, hi: int) -> int:
    return min(max(v, lo), hi)


def _slice(in_shape, starts, ends, axes, steps) -> tuple[AxisSlice, ...] | str:
    rank = len(in_shape)
    starts, ends = _ints(starts), _ints(ends)
    n = len(starts)
    axes = list(range(n)) if axes is None else _ints(axes)
    steps = [1] * n if steps is None else _ints(steps)
    if not len(ends) == len(axes) == len(steps) == n:
        return (
            f"starts, ends, axes and steps have {n}, {len(ends)}, {len(axes)} and {len(steps)} "
            "entries; expected the same number"
        )
    reason = axes_reason(axes, rank)
    if reason is not None:
        return reason
    out = [AxisSlice(0, int(d), 1) for d in in_shape]
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis %= rank
        if step == 0:
            return f"the step on axis {axis} is 0; expected a non-zero step"
        dim = int(in_shape[axis])
        start = start + dim if start < 0 else start
        if end in _END:  # "to the end", whichever way the step goes (onnxruntime)
            end = dim if step > 0 else -1
        elif end < 0:
            end += dim
        if dim == 0:
            out[axis] = AxisSlice(0, 0, step)
        elif step > 0:
            out[axis] = AxisSlice(_clamp(start, 0, dim), _clamp(end, 0, dim), step)
        else:  # a negative step counts down from dim-1 and may run through index 0 (end -1)
            end = _clamp(end, -1, dim - 1)
            out[axis] = AxisSlice(_clamp(start, 0, dim - 1), None if end < 0 else end, step)
    return tuple(out)


def slice_reason(
    in_shape: Sequence[int],
    starts: Iterable[int],
    ends: Iterable[int],
    axes: Iterable[int] | None = None,
    steps: Iterable[int] | None = None,
) -> str | None:
    """Why a Slice of ``in_shape`` breaks the spec (lengths differ, an axis is out of range or
    repeated, a step is 0), or None."""
    return _reason(_slice(in_shape, starts, ends, axes, steps))


def slice_ranges(
    in_shape: Sequence[int],
    starts: Iterable[int],
    ends: Iterable[int],
    axes: Iterable[int] | None = None,
    steps: Iterable[int] | None = None,
    op: str = "Slice",
) -> tuple[AxisSlice, ...]:
    """Slice's (start, stop, step) on every axis of ``in_shape``, untouched axes whole. Negative
    starts and ends count from the end; then, for a positive step, both clamp to [0, dim]; for a
    negative step the start clamps to [0, dim-1] and the end to [-1, dim-1] (-1: through index 0).
    An end of INT_MAX (int32's or int64's) runs through the last element in the step's direction,
    backwards too, as onnxruntime reads it. ``axes`` defaults to 0..len(starts)-1, ``steps`` to 1s.

    Raises:
        InvalidArgument: as :func:`slice_reason` says.
    """
    return _result(
        op,
        _memo(
            _slice, _frozen(in_shape), _frozen(starts), _frozen(ends), _frozen(axes), _frozen(steps)
        ),
    )


# -- Split -----------------------------------------------------------------------------------------
def _split(dim: int, n_outputs: int, split, num_outputs) -> tuple[int, ...] | str:
    split = _ints(split) or None  # an empty split input counts as absent (onnxruntime)
    if num_outputs is not None and int(num_outputs) != n_outputs:
        return f"num_outputs is {num_outputs}; expected {n_outputs}, the node's number of outputs"
    if split is not None:
        if num_outputs is not None:
            return "both the split input and the num_outputs attribute are given; expected one"
        if len(split) != n_outputs:
            return f"split {split} has {len(split)} entries; expected {n_outputs}, one per output"
        if min(split) < 0:
            return f"split {split} has a negative size; expected sizes >= 0"
        if sum(split) != dim:
            return f"split {split} sums to {sum(split)}; expected {dim}, the size of the axis"
        return tuple(split)
    if n_outputs < 1:
        return f"the node has {n_outputs} outputs; expected at least one"
    if num_outputs is None:
        if dim % n_outputs:
            return (
                f"an axis of {dim} does not split evenly into {n_outputs} outputs; give the split "
                "sizes (or num_outputs, from opset 18)"
            )
        return (dim // n_outputs,) * n_outputs
    chunk = -(-dim // n_outputs)  # ceil: the last chunk takes what is left (opset 18)
    last = dim - chunk * (n_outputs - 1)
    if last < 0:
        return (
            f"num_outputs={n_outputs} chunks of {chunk} (ceil({dim} / {n_outputs})) leave a last "
            f"chunk of {last}; expected num_outputs small enough for an axis of {dim}"
        )
    return (chunk,) * (n_outputs - 1) + (last,)


def split_reason(
    dim: int,
    n_outputs: int,
    split: Iterable[int] | None = None,
    num_outputs: int | None = None,
) -> str | None:
    """Why Split cannot cut an axis of ``dim`` elements into ``n_outputs`` outputs, or None."""
    return _reason(_split(dim, n_outputs, split, num_outputs))


def split_sizes(
    dim: int,
    n_outputs: int,
    split: Iterable[int] | None = None,
    num_outputs: int | None = None,
    op: str = "Split",
) -> tuple[int, ...]:
    """Split's chunk sizes along an axis of ``dim`` elements: ``split`` when given (non-empty),
    else ``num_outputs`` (opset 18) chunks of ceil(dim / num_outputs) with a smaller last one,
    else ``n_outputs`` equal chunks.

    Raises:
        InvalidArgument: as :func:`split_reason` says.
    """
    return _result(op, _memo(_split, int(dim), int(n_outputs), _frozen(split), num_outputs))


# -- Squeeze and Unsqueeze -------------------------------------------------------------------------
def _squeeze(in_shape, axes) -> tuple[int, ...] | str:
    in_shape, axes = tuple(int(d) for d in in_shape), _ints(axes)
    if not axes:  # absent or empty: every axis of size 1
        return tuple(d for d in in_shape if d != 1)
    rank = len(in_shape)
    reason = axes_reason(axes, rank, unique=False)  # onnxruntime accepts a repeated axis
    if reason is not None:
        return reason
    drop = {a % rank for a in axes}
    for a in sorted(drop):
        if in_shape[a] != 1:
            return f"axis {a} of the input {list(in_shape)} has size {in_shape[a]}; expected 1"
    return tuple(d for i, d in enumerate(in_shape) if i not in drop)


def squeeze_reason(in_shape: Sequence[int], axes: Iterable[int] | None = None) -> str | None:
    """Why Squeeze cannot drop ``axes`` of ``in_shape``, or None."""
    return _reason(_squeeze(in_shape, axes))


def squeeze_shape(
    in_shape: Sequence[int], axes: Iterable[int] | None = None, op: str = "Squeeze"
) -> tuple[int, ...]:
    """Squeeze's output shape: ``in_shape`` without ``axes`` (each of size 1), or without every
    axis of size 1 when ``axes`` is absent or empty.

    Raises:
        InvalidArgument: an axis is out of range or not of size 1.
    """
    return _result(op, _memo(_squeeze, _frozen(in_shape), _frozen(axes)))


def _unsqueeze(in_shape, axes) -> tuple[int, ...] | str:
    in_shape, axes = tuple(in_shape), _ints(axes)
    rank = len(in_shape) + len(axes)
    reason = axes_reason(axes, rank)
    if reason is not None:
        return reason
    ones = {a % rank for a in axes}
    dims = iter(in_shape)
    return tuple(1 if i in ones else next(dims) for i in range(rank))


def unsqueeze_reason(in_shape: Sequence[Dim], axes: Iterable[int]) -> str | None:
    """Why Unsqueeze cannot insert ``axes`` into ``in_shape``, or None."""
    return _reason(_unsqueeze(in_shape, axes))


def unsqueeze_shape(
    in_shape: Sequence[int], axes: Iterable[int], op: str = "Unsqueeze"
) -> tuple[int, ...]:
    """Unsqueeze's output shape: ``in_shape`` with a 1 at each of ``axes``, which are axes of the
    output (rank ``len(in_shape) + len(axes)``) and distinct.

    Raises:
        InvalidArgument: an axis is out of range or repeated.
    """
    return _result(op, _memo(_unsqueeze, _frozen(in_shape), _frozen(axes)))


# -- GatherND and ScatterND ------------------------------------------------------------------------
def _gather_nd(data_shape, indices_shape, batch_dims) -> tuple[Dim, ...] | str:
    data_shape, indices_shape, b = tuple(data_shape), tuple(indices_shape), int(batch_dims)
    r, q = len(data_shape), len(indices_shape)
    if not 0 <= b < q or b > r:
        return (
            f"batch_dims is {b}; expected 0 <= batch_dims < {q} (the rank of indices) and "
            f"<= {r} (the rank of data)"
        )
    for i, (d, n) in enumerate(zip(data_shape[:b], indices_shape[:b])):
        if isinstance(d, int) and isinstance(n, int) and d != n:
            return (
                f"batch dimension {i} is {n} in indices {list(indices_shape)} and {d} in data "
                f"{list(data_shape)}; expected the same"
            )
    k = indices_shape[-1]
    if not isinstance(k, int):
        return indices_shape[:-1] + (None,)  # the output's rank is unknown
    if k > r - b:
        return (
            f"indices {list(indices_shape)} address {k} dimensions; expected at most {r - b}, the "
            f"dimensions of data {list(data_shape)} after {b} batch dimension(s)"
        )
    return indices_shape[:-1] + data_shape[b + k :]


def gather_nd_reason(
    data_shape: Sequence[Dim], indices_shape: Sequence[Dim], batch_dims: int = 0
) -> str | None:
    """Why GatherND/ScatterND addressing breaks the spec for these shapes, or None: batch_dims
    out of range, batch dimensions that differ, or index tuples longer than data's remaining rank.
    Symbolic or unknown dimensions (str/None) are assumed to fit."""
    return _reason(_gather_nd(data_shape, indices_shape, batch_dims))


def gather_nd_shape(
    data_shape: Sequence[int],
    indices_shape: Sequence[int],
    batch_dims: int = 0,
    op: str = "GatherND",
) -> tuple[int, ...]:
    """GatherND's output shape, ``indices_shape[:-1] + data_shape[batch_dims + k:]`` with
    ``k = indices_shape[-1]`` (ScatterND's updates shape with ``batch_dims`` 0).

    Raises:
        InvalidArgument: as :func:`gather_nd_reason` says.
    """
    return _result(op, _gather_nd(data_shape, indices_shape, batch_dims))


# -- Pad -------------------------------------------------------------------------------------------
PAD_MODES = ("constant", "reflect", "edge", "wrap")


def _pad_amounts(rank: int, pads, axes) -> tuple[tuple[int, int], ...] | str:
    pads = _ints(pads)
    axes = list(range(rank)) if axes is None else _ints(axes)
    reason = axes_reason(axes, rank, unique=False)  # onnxruntime: a repeated axis's last pads win
    if reason is not None:
        return reason
    if len(pads) != 2 * len(axes):
        return (
            f"pads {pads} has {len(pads)} entries; expected {2 * len(axes)}, a begin and an end "
            f"for each of {len(axes)} axes"
        )
    amounts = [(0, 0)] * rank
    for i, a in enumerate(axes):
        amounts[a % rank] = (pads[i], pads[i + len(axes)])
    return tuple(amounts)


def pad_amounts(
    rank: int, pads: Iterable[int], axes: Iterable[int] | None = None, op: str = "Pad"
) -> tuple[tuple[int, int], ...]:
    """Pad's (begin, end) on every axis of a rank-``rank`` tensor: ``pads`` holds the begins of
    ``axes`` (default: every axis) then their ends; other axes get (0, 0). Negative amounts crop.

    Raises:
        InvalidArgument: an axis is out of range, or ``pads`` is not twice as long as ``axes``.
    """
    return _result(op, _pad_amounts(int(rank), pads, axes))


def _pad_shape(in_shape, amounts, mode) -> tuple[int, ...] | str:
    if mode not in PAD_MODES:
        return f"mode '{mode}' is not one of {list(PAD_MODES)}"
    if len(amounts) != len(in_shape):
        return (
            f"{len(amounts)} (begin, end) pairs for an input of rank {len(in_shape)}; expected "
            "one per axis"
        )
    out = []
    for a, (d, (b, e)) in enumerate(zip(in_shape, amounts)):
        if d + b + e < 0:
            return (
                f"pads {b}, {e} on axis {a} crop {-min(b, 0) - min(e, 0)} elements; expected at "
                f"most {d}, the size of the axis"
            )
        out.append(d + b + e)
    if mode == "constant":
        return tuple(out)
    # the other modes copy from the input: a padded axis must keep an element to copy, unless the
    # input is empty and the axis's result too (onnxruntime)
    empty = 0 in in_shape
    for a, (d, (b, e), n) in enumerate(zip(in_shape, amounts, out)):
        kept = d + min(b, 0) + min(e, 0)
        if (b or e) and ((d == 0 and n > 0) or (not empty and kept <= 0)):
            return (
                f"mode '{mode}' cannot pad axis {a}, which is empty (after cropping); expected "
                "mode 'constant'"
            )
        if mode == "reflect" and (b > 0 or e > 0) and not empty and kept < 2:
            return (
                f"mode 'reflect' cannot pad axis {a}, which keeps {kept} element after "
                "cropping; expected at least 2 to reflect about"
            )
    return tuple(out)


def pad_reason(
    in_shape: Sequence[int],
    pads: Iterable[int],
    axes: Iterable[int] | None = None,
    mode: str = "constant",
) -> str | None:
    """Why Pad breaks the spec for ``in_shape``, or None."""
    amounts = _pad_amounts(len(in_shape), pads, axes)
    return amounts if isinstance(amounts, str) else _reason(_pad_shape(in_shape, amounts, mode))


def pad_shape(
    in_shape: Sequence[int],
    amounts: Sequence[tuple[int, int]],
    mode: str = "constant",
    op: str = "Pad",
) -> tuple[int, ...]:
    """Pad's output shape for per-axis ``amounts`` (:func:`pad_amounts`).

    Raises:
        InvalidArgument: the pads crop more than an axis holds, ``mode`` is unknown, or a mode
            other than constant pads an axis that is empty (after cropping).
    """
    return _result(op, _pad_shape(tuple(int(d) for d in in_shape), amounts, mode))


class AxisPad(NamedTuple):
    """Pad along one axis as a crop and a fill: keep ``input[start:stop]``, then add ``before``
    and ``after`` cells (all four >= 0)."""

    start: int
    stop: int
    before: int
    after: int


def pad_parts(in_shape: Sequence[int], amounts: Sequence[tuple[int, int]]) -> tuple[AxisPad, ...]:
    """Per axis, the input cells Pad keeps and the cells it adds around them. Output cell ``i``
    is input cell ``i - begin``, or padding where that is outside the input, so a negative pad
    crops and a crop deeper than the axis leaves only padding (``amounts`` already checked by
    :func:`pad_shape`)."""
    parts = []
    for d, (b, e) in zip(in_shape, amounts):
        out = d + b + e
        start = min(max(0, -b), d)
        stop = max(start, min(d, d + e))
        before = min(max(b, 0), out)
        parts.append(AxisPad(start, stop, before, out - before - (stop - start)))
    return tuple(parts)


# -- Tile ------------------------------------------------------------------------------------------
def _tile(in_shape, repeats) -> tuple[int, ...] | str:
    in_shape, reps = tuple(int(d) for d in in_shape), _ints(repeats)
    if len(reps) != len(in_shape):
        return (
            f"repeats {reps} has {len(reps)} entries; expected {len(in_shape)}, one per axis of "
            f"the input {list(in_shape)}"
        )
    if min(reps, default=0) < 0:
        return f"repeats {reps} has a negative count; expected counts >= 0"
    return tuple(d * r for d, r in zip(in_shape, reps))


def tile_reason(in_shape: Sequence[int], repeats: Iterable[int]) -> str | None:
    """Why Tile cannot repeat ``in_shape`` by ``repeats``, or None."""
    return _reason(_tile(in_shape, repeats))


def tile_shape(
    in_shape: Sequence[int], repeats: Iterable[int], op: str = "Tile"
) -> tuple[int, ...]:
    """Tile's output shape: each dimension times its repeat count.

    Raises:
        InvalidArgument: ``repeats`` does not hold one count >= 0 per axis.
    """
    return _result(op, _memo(_tile, _frozen(in_shape), _frozen(repeats)))


# -- DepthToSpace and SpaceToDepth -----------------------------------------------------------------
def _blocks(in_shape, blocksize, to_space: bool) -> tuple[int, ...] | str:
    in_shape = tuple(int(d) for d in in_shape)
    b = None if blocksize is None else int(blocksize)
    if len(in_shape) != 4:
        return f"the input {list(in_shape)} has rank {len(in_shape)}; expected 4 (N, C, H, W)"
    if b is None or b <= 0:
        return f"blocksize is {b}; expected a positive blocksize"
    n, c, h, w = in_shape
    if to_space:
        if c % (b * b):
            return f"{c} channels are not a multiple of blocksize^2 = {b * b}"
        return n, c // (b * b), h * b, w * b
    if h % b or w % b:
        return f"height {h} and width {w} must be multiples of blocksize {b}"
    return n, c * b * b, h // b, w // b


def depth_to_space_reason(in_shape: Sequence[int], blocksize: int | None) -> str | None:
    """Why DepthToSpace cannot move ``in_shape``'s channels into blocks, or None."""
    return _reason(_blocks(in_shape, blocksize, True))


def depth_to_space_shape(
    in_shape: Sequence[int], blocksize: int | None, op: str = "DepthToSpace"
) -> tuple[int, ...]:
    """DepthToSpace's output shape, (N, C / b^2, H * b, W * b).

    Raises:
        InvalidArgument: the input is not 4-D, or its channels are not a multiple of b^2.
    """
    return _result(op, _blocks(in_shape, blocksize, True))


def space_to_depth_reason(in_shape: Sequence[int], blocksize: int | None) -> str | None:
    """Why SpaceToDepth cannot move ``in_shape``'s blocks into channels, or None."""
    return _reason(_blocks(in_shape, blocksize, False))


def space_to_depth_shape(
    in_shape: Sequence[int], blocksize: int | None, op: str = "SpaceToDepth"
) -> tuple[int, ...]:
    """SpaceToDepth's output shape, (N, C * b^2, H / b, W / b).

    Raises:
        InvalidArgument: the input is not 4-D, or its height or width is not a multiple of b.
    """
    return _result(op, _blocks(in_shape, blocksize, False))


def reverse_sequence_steps(steps: int, batch: int, sequence_lens: Any) -> np.ndarray:
    """ReverseSequence: for each (output step, batch entry), the input step it reads (int64,
    shape (steps, batch)): the first ``sequence_lens[b]`` steps reversed, the rest in place.

    Raises:
        InvalidArgument: ``sequence_lens`` does not have one value per batch entry, or a value
            lies outside [0, steps].
    """
    lens = np.asarray(sequence_lens).astype(np.int64).reshape(-1)
    if lens.shape != (batch,):
        raise InvalidArgument(
            f"ReverseSequence: sequence_lens has {lens.size} values, batch is {batch}."
        )
    if lens.size and (lens.min() < 0 or lens.max() > steps):
        bad = int(lens.min() if lens.min() < 0 else lens.max())
        raise InvalidArgument(f"ReverseSequence: sequence length {bad} is outside [0, {steps}].")
    t = np.arange(steps).reshape(-1, 1)
    return np.where(t < lens, lens - 1 - t, t)
