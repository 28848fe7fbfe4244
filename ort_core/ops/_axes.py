"""Axis arithmetic: ONNX axes lie in [-rank, rank-1]; negative ones count from the end."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import InvalidArgument


def axis_reason(axis: int, rank: int, what: str = "axis") -> str | None:
    """Why ``axis`` is not an axis of a rank-``rank`` tensor, or None when it is."""
    if not -rank <= int(axis) < rank:
        return f"{what} {int(axis)} is out of range for a tensor of rank {rank} (valid: [{-rank}, {rank - 1}])"
    return None


def normalize_axis(axis: int, rank: int, op: str = "", what: str = "axis") -> int:
    """``axis`` as a non-negative axis of a rank-``rank`` tensor.

    Raises:
        InvalidArgument: the axis is out of range (the message names ``op``).
    """
    reason = axis_reason(axis, rank, what)
    if reason is not None:
        raise InvalidArgument(f"{op}: {reason}." if op else f"{reason}.")
    axis = int(axis)
    return axis + rank if axis < 0 else axis


def axes_reason(
    axes: Iterable[int], rank: int, what: str = "axes", unique: bool = True
) -> str | None:
    """Why ``axes`` are not distinct axes of a rank-``rank`` tensor, or None."""
    seen: set[int] = set()
    for a in axes:
        reason = axis_reason(a, rank, f"{what} entry")
        if reason is not None:
            return reason
        a = int(a) % rank if rank else 0
        if unique and a in seen:
            return f"{what} names axis {a} twice"
        seen.add(a)
    return None


def normalize_axes(
    axes: Iterable[int], rank: int, op: str = "", what: str = "axes", unique: bool = True
) -> tuple[int, ...]:
    """``axes`` as non-negative axes, in the order given.

    Raises:
        InvalidArgument: an axis is out of range, or (``unique``) repeated.
    """
    axes = [int(a) for a in axes]
    reason = axes_reason(axes, rank, what, unique)
    if reason is not None:
        raise InvalidArgument(f"{op}: {reason}." if op else f"{reason}.")
    return tuple(a + rank if a < 0 else a for a in axes)
