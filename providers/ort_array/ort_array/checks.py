"""Partition-time predicates the shared kernels declare as ``check=`` (the node is invalid) or
``limit=`` (the shared kernel cannot run it; the node falls back), for providers' own kernels too.
Axis rules come from :mod:`ort_core.ops`, so every provider reads them the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ort_core.ops import axes_reason, axis_reason

Predicate = Callable[[Any], "str | None"]


def axis_check(
    name: str = "axis", default: int | None = 0, input_index: int = 0, extra: int = 0
) -> Predicate:
    """The attribute ``name`` is an axis of input ``input_index`` (of rank + ``extra``: Flatten
    and Unsqueeze address one past the last axis), when that input's rank is known."""

    def check(info: Any) -> str | None:
        shape = info.input_shape(input_index)
        axis = info.attr(name, default)
        if shape is None or axis is None:
            return None
        return axis_reason(int(axis), max(len(shape) + extra, 1), name)

    return check


def axes_check(name: str = "axes", input_index: int = 0, unique: bool = True) -> Predicate:
    """The ints attribute ``name`` names axes of input ``input_index`` (rank known)."""

    def check(info: Any) -> str | None:
        shape = info.input_shape(input_index)
        axes = info.attr(name)
        if shape is None or axes is None:
            return None
        return axes_reason(list(axes), len(shape), name, unique)

    return check


def choice_check(**allowed: tuple[str, ...]) -> Predicate:
    """Each named string attribute takes one of its listed values (absent: its default)."""

    def check(info: Any) -> str | None:
        for name, values in allowed.items():
            value = info.attr(name)
            if value is not None and value not in values:
                return f"{name} '{value}' is not one of {list(values)}"
        return None

    return check


def all_of(*checks: Predicate) -> Predicate:
    """Several predicates; the first reason wins."""

    def check(info: Any) -> str | None:
        for c in checks:
            reason = c(info)
            if reason:
                return reason
        return None

    return check
