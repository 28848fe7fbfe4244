"""Ops that join, split, repeat or pad tensors: Concat, Split, Tile, Pad, ReverseSequence."""

from __future__ import annotations

import numpy as np

from ort_core import ops
from ort_core.errors import InvalidArgument

from ._registry import builder, kernel
from .shape_ops import int_list, normalize_axis, zero_of


@kernel("Concat", since=1)
def concat(*inputs, axis=1):  # axis defaults to 1 in opset 1 and is required from opset 4
    if not inputs:
        raise InvalidArgument("Concat: at least one input is required.")
    axis = normalize_axis(axis, inputs[0].ndim, "Concat")
    try:
        return np.concatenate(inputs, axis=axis)
    except ValueError:
        shapes = [x.shape for x in inputs]
        raise InvalidArgument(
            f"Concat: input shapes {shapes} differ outside axis {axis}."
        ) from None


# -- Split -----------------------------------------------------------------------------------------
@builder("Split", since=(1, 2, 11, 13, 18), attributes=("axis", "split", "num_outputs"))
def split(info):
    axis_attr = info.attr("axis", 0)
    split_attr = info.attr("split")  # an attribute before opset 13, an optional input since
    n_out, num_outputs = info.num_outputs, info.attr("num_outputs")
    fixed = info.constant(1) if info.has_input(1) else None
    # input shape -> the outputs' index tuples, for the attribute's or the constant input's
    # sizes (worked out every call, the sizes and slices took 3.4 of a 4.5 us Split)
    plans: dict = {}

    def plan(shape, given):
        axis = normalize_axis(axis_attr, len(shape), "Split")
        sizes = ops.split_sizes(shape[axis], n_out, given, num_outputs)
        index = [slice(None)] * len(shape)
        out, pos = [], 0
        for s in sizes:
            index[axis] = slice(pos, pos + s)
            out.append(tuple(index))
            pos += s
        return out

    def run(x, split_input=None):
        if split_input is None or split_input is fixed:
            index = plans.get(x.shape)
            if index is None:
                given = split_attr if split_input is None else int_list(split_input)
                index = plan(x.shape, given)
                if len(plans) < 64:
                    plans[x.shape] = index
        else:
            index = plan(x.shape, int_list(split_input))
        return [x[i] for i in index]

    return run


# -- Tile ------------------------------------------------------------------------------------------
@kernel("Tile", since=1)
def tile_v1(x, tiles, axis):
    reps = [1] * x.ndim
    reps[normalize_axis(int_list(axis)[0], x.ndim, "Tile")] = int_list(tiles)[0]
    return tile(x, reps)


@kernel("Tile", since=6)
def tile(x, repeats):
    reps = int_list(repeats)
    ops.tile_shape(x.shape, reps)
    return np.tile(x, reps)


# -- Pad -------------------------------------------------------------------------------------------
def _check_mode(info):
    mode = info.attr("mode", "constant")
    return None if mode in ops.PAD_MODES else f"Pad: mode {mode!r} is not one of {ops.PAD_MODES}"


def _key(v):
    return None if v is None else (v.tobytes() if isinstance(v, np.ndarray) else tuple(v))


#: (input shape, pads, axes, mode) -> the Pad's layout: a model pads the same shapes each run
_PAD_PLANS: dict = {}


def _pad_plan(shape, pads, mode, axes):
    """(crop slices, output shape, widths, interior slices, border copies) of a Pad, checked by
    ``ops`` and worked out once per input shape and pads. Border copies are (destination,
    source) slice tuples applied in order on the output (np.pad's axis-by-axis filling from
    the cells already in place), or None where a pad is wider than one reflection or wrap
    (np.pad repeats them)."""
    key = (shape, _key(pads), _key(axes), mode)
    plan = _PAD_PLANS.get(key)
    if plan is not None:
        return plan
    amounts = ops.pad_amounts(len(shape), int_list(pads), None if axes is None else int_list(axes))
    out_shape = ops.pad_shape(shape, amounts, mode)
    parts = ops.pad_parts(shape, amounts)
    crop = tuple(slice(p.start, p.stop) for p in parts)  # negative pads crop
    width = [(p.before, p.after) for p in parts]
    kept = [p.stop - p.start for p in parts]
    interior = tuple(slice(b, b + n) for (b, _), n in zip(width, kept))
    copies: list | None = []
    limit = {"reflect": 1, "wrap": 0}.get(mode)  # cells a border may not reach past
    if limit is not None and any(max(b, e) > n - limit for (b, e), n in zip(width, kept)):
        copies = None
    elif mode != "constant":
        for axis, ((b, e), n) in enumerate(zip(width, kept)):
            lead = (slice(None),) * axis
            last = b + n - 1  # the last input cell
            if b:
                src = {"edge": slice(b, b + 1), "reflect": slice(2 * b, b, -1),
                       "wrap": slice(n, n + b)}[mode]  # fmt: skip
                copies.append(((*lead, slice(0, b)), (*lead, src)))
            if e:
                stop = last - 1 - e if last - 1 - e >= 0 else None
                src = {"edge": slice(last, last + 1), "reflect": slice(last - 1, stop, -1),
                       "wrap": slice(b, b + e)}[mode]  # fmt: skip
                copies.append(((*lead, slice(b + n, b + n + e)), (*lead, src)))
    plan = (crop, out_shape, width, interior, copies)
    if len(_PAD_PLANS) >= 1024:
        _PAD_PLANS.clear()
    _PAD_PLANS[key] = plan
    return plan


def _pad(x: np.ndarray, pads, mode: str, value=None, axes=None) -> np.ndarray:
    crop, shape, width, interior, copies = _pad_plan(x.shape, pads, mode, axes)
    x = x[crop]
    if not any(b or e for b, e in width):
        return x
    if mode == "constant" or 0 in shape:  # (nothing to copy from an empty input)
        fill = zero_of(x.dtype) if value is None else np.asarray(value).reshape(-1)[0]
        out = np.full(shape, fill, x.dtype)
        out[interior] = x
        return out
    if copies is None:
        return np.pad(x, width, mode=mode)
    out = np.empty(shape, x.dtype)
    out[interior] = x
    for dst, src in copies:  # reflect, edge, wrap: a few slice copies (np.pad costs ~30 us)
        out[dst] = out[src]
    return out


@kernel("Pad", since=1, check=_check_mode)
def pad_v1(x, paddings=(), mode="constant", value=0.0):
    return _pad(x, paddings, mode, value)


@kernel("Pad", since=2, check=_check_mode)
def pad_v2(x, pads=(), mode="constant", value=0.0):
    return _pad(x, pads, mode, value)


@kernel("Pad", since=(11, 18), check=_check_mode)
def pad(x, pads, constant_value=None, axes=None, mode="constant"):
    return _pad(x, pads, mode, constant_value, axes)  # axes: an input since opset 18


# -- ReverseSequence -------------------------------------------------------------------------------
@kernel("ReverseSequence", since=10)
def reverse_sequence(x, sequence_lens, batch_axis=1, time_axis=0):
    if sorted((batch_axis, time_axis)) != [0, 1] or x.ndim < 2:
        raise InvalidArgument(
            f"ReverseSequence: batch_axis {batch_axis} and time_axis {time_axis} must be 0 and 1 "
            f"(input shape {x.shape})."
        )
    xt = x if time_axis == 0 else x.swapaxes(0, 1)  # (time, batch, ...)
    steps, batch = xt.shape[:2]
    src = ops.reverse_sequence_steps(steps, batch, sequence_lens)  # (time, batch)
    out = xt[src, np.arange(batch)]
    return out if time_axis == 0 else out.swapaxes(0, 1)
