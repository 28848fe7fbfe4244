"""Ops that join, split, repeat or pad tensors: Concat, Split, Tile, Pad, ReverseSequence."""

from __future__ import annotations

import numpy as np

from ort_core.errors import InvalidArgument

from ._registry import builder, kernel
from .shape_ops import int_list, normalize_axes, normalize_axis, zero_of


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
def split_sizes(dim: int, n: int, split: list[int] | None) -> list[int]:
    """Chunk lengths along the split axis: ``split`` when given, else ``n`` chunks of
    ceil(dim / n) with a smaller last chunk when ``dim`` is not divisible."""
    if split is not None:
        if len(split) != n or sum(split) != dim or min(split, default=0) < 0:
            raise InvalidArgument(
                f"Split: split {split} must have {n} non-negative entries summing to {dim}."
            )
        return split
    chunk = -(-dim // n)
    last = dim - chunk * (n - 1)
    if last < 0:
        raise InvalidArgument(f"Split: a dimension of {dim} cannot be split into {n} chunks.")
    return [chunk] * (n - 1) + [last]


@builder("Split", since=(1, 2, 11, 13, 18), attributes=("axis", "split", "num_outputs"))
def split(info):
    axis_attr = info.attr("axis", 0)
    split_attr = info.attr("split")  # an attribute before opset 13, an optional input since
    n = info.attr("num_outputs", info.num_outputs)
    if n != info.num_outputs:
        raise InvalidArgument(
            f"Split: num_outputs={n} but the node has {info.num_outputs} outputs."
        )

    def run(x, split_input=None):
        axis = normalize_axis(axis_attr, x.ndim, "Split")
        given = int_list(split_input) if split_input is not None else split_attr
        sizes = split_sizes(x.shape[axis], n, None if given is None else list(given))
        index = [slice(None)] * x.ndim
        outs, pos = [], 0
        for s in sizes:
            index[axis] = slice(pos, pos + s)
            outs.append(x[tuple(index)])
            pos += s
        return outs

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
    if len(reps) != x.ndim or min(reps, default=0) < 0:
        raise InvalidArgument(
            f"Tile: repeats {reps} must hold {x.ndim} non-negative values (the input's rank)."
        )
    return np.tile(x, reps)


# -- Pad -------------------------------------------------------------------------------------------
_PAD_MODES = {"constant", "reflect", "edge", "wrap"}


def _check_mode(info):
    mode = info.attr("mode", "constant")
    return None if mode in _PAD_MODES else f"Pad: mode {mode!r} is not one of {sorted(_PAD_MODES)}"


def _pad(x: np.ndarray, pads, mode: str, value=None, axes=None) -> np.ndarray:
    pads = int_list(pads)
    axes = list(range(x.ndim)) if axes is None else normalize_axes(axes, x.ndim, "Pad")
    if len(pads) != 2 * len(axes):
        raise InvalidArgument(
            f"Pad: {len(pads)} pads given for {len(axes)} axes (need twice as many)."
        )
    crop = [slice(None)] * x.ndim
    width = [(0, 0)] * x.ndim
    for i, a in enumerate(axes):
        begin, end = pads[i], pads[i + len(axes)]
        dim = x.shape[a]
        if -min(begin, 0) - min(end, 0) > dim:
            raise InvalidArgument(f"Pad: pads {begin}, {end} crop more than axis {a}'s {dim}.")
        crop[a] = slice(-min(begin, 0), dim + min(end, 0))  # negative pads crop first
        width[a] = (max(begin, 0), max(end, 0))
    x = x[tuple(crop)]
    if not any(b or e for b, e in width):
        return x
    if mode == "constant":
        fill = zero_of(x.dtype) if value is None else np.asarray(value).reshape(-1)[0]
        return np.pad(x, width, mode="constant", constant_values=fill).astype(x.dtype, copy=False)
    if mode not in _PAD_MODES:
        raise InvalidArgument(f"Pad: mode {mode!r} is not one of {sorted(_PAD_MODES)}.")
    for a, (b, e) in enumerate(width):
        if (b or e) and x.shape[a] == 0:
            raise InvalidArgument(f"Pad: cannot pad the empty axis {a} in mode {mode!r}.")
    return np.pad(x, width, mode=mode)


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
    lens = np.asarray(sequence_lens).astype(np.int64).reshape(-1)
    if lens.shape != (batch,):
        raise InvalidArgument(
            f"ReverseSequence: sequence_lens has {lens.size} values, batch is {batch}."
        )
    if lens.size and (lens.min() < 0 or lens.max() > steps):
        bad = int(lens.min() if lens.min() < 0 else lens.max())
        raise InvalidArgument(f"ReverseSequence: sequence length {bad} is outside [0, {steps}].")
    t = np.arange(steps).reshape(-1, 1)
    src = np.where(t < lens, lens - 1 - t, t)  # (time, batch)
    out = xt[src, np.arange(batch)]
    return out if time_axis == 0 else out.swapaxes(0, 1)
