"""Sequence and optional kernels: sequences are lists of arrays, optionals are None or a value."""

from __future__ import annotations

from typing import Any

import numpy as np

from ort_core.errors import InvalidArgument

from ._registry import builder, kernel
from .shape_ops import axis_check, normalize_axis


def _position(position: Any, n: int, *, insert: bool = False) -> int:
    """A validated, non-negative index from a 0-d or 1-element position tensor."""
    pos = int(np.asarray(position).reshape(-1)[0])
    hi = n if insert else n - 1
    if not -n <= pos <= hi:
        raise InvalidArgument(f"sequence position {pos} is out of range [{-n}, {hi}]")
    return pos + n if pos < 0 else pos


@kernel("SequenceEmpty", since=11)
def sequence_empty(dtype=1):
    return []


@kernel("SequenceConstruct", since=11)
def sequence_construct(*tensors):
    return list(tensors)


@kernel("SequenceInsert", since=11)
def sequence_insert(seq, tensor, position=None):
    out = list(seq)
    if position is None:
        out.append(tensor)
    else:
        out.insert(_position(position, len(seq), insert=True), tensor)
    return out


@kernel("SequenceAt", since=11)
def sequence_at(seq, position):
    return seq[_position(position, len(seq))]


@kernel("SequenceErase", since=11)
def sequence_erase(seq, position=None):
    if not seq:
        raise InvalidArgument("SequenceErase on an empty sequence")
    out = list(seq)
    del out[-1 if position is None else _position(position, len(seq))]
    return out


@kernel("SequenceLength", since=11)
def sequence_length(seq):
    return np.asarray(len(seq), dtype=np.int64)


@kernel("SplitToSequence", since=11, check=axis_check())
def split_to_sequence(x, split=None, axis=0, keepdims=1):
    axis = normalize_axis(axis, x.ndim, "SplitToSequence")
    length = x.shape[axis]
    if split is None:
        parts = np.split(x, length, axis=axis) if length else []
        return [np.squeeze(p, axis=axis) for p in parts] if not keepdims else parts
    split = np.asarray(split, dtype=np.int64)
    if split.ndim == 0:
        size = int(split)
        if size <= 0:
            raise InvalidArgument(f"SplitToSequence: split must be positive, got {size}")
        bounds = list(range(size, length, size))
    else:
        if split.sum() != length or (split < 0).any():
            raise InvalidArgument(
                f"SplitToSequence: split {split.tolist()} does not sum to dimension {length}"
            )
        bounds = np.cumsum(split)[:-1].tolist()
    return np.split(x, bounds, axis=axis)


@kernel("ConcatFromSequence", since=11)
def concat_from_sequence(seq, *, axis, new_axis=0):
    if not seq:
        raise InvalidArgument("ConcatFromSequence on an empty sequence")
    if new_axis:
        return np.stack(seq, axis=axis)
    return np.concatenate(seq, axis=axis)


@kernel("Optional", since=15)
def optional(x=None, type=None):
    return x


@kernel("OptionalHasElement", since=15)
def optional_has_element(x=None):
    return np.asarray(x is not None)


@kernel("OptionalGetElement", since=15)
def optional_get_element(x=None):
    if x is None:
        raise InvalidArgument("OptionalGetElement: the optional input has no value")
    return x


@builder("SequenceMap", since=17)
def sequence_map(info):
    n_out = info.num_outputs

    def run(*args):
        (seq, *extra), bound = info.split_implicit(args)
        body = bound["body"]
        outs: list[list[Any]] = [[] for _ in range(n_out)]
        for i in range(len(seq)):
            step = [a[i] if isinstance(a, list) else a for a in extra]
            for out, value in zip(outs, body(seq[i], *step), strict=False):
                out.append(value)
        return outs

    return run
