"""ONNX broadcasting: multidirectional (numpy rules) and unidirectional (B onto A)."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InvalidArgument

Dim = int | str | None


def broadcast_reason(*shapes: Sequence[Dim], unidirectional: bool = False) -> str | None:
    """Why the shapes do not broadcast together, or None. Symbolic or unknown dims (str/None)
    are assumed to fit. ``unidirectional``: the later shapes broadcast onto the first, which
    keeps its shape (Gemm's C, PRelu's slope)."""
    rank = max((len(s) for s in shapes), default=0)
    if unidirectional and shapes and len(shapes[0]) < rank:
        return f"shape {list(shapes[1:])} has more axes than {list(shapes[0])}"
    for k in range(1, rank + 1):
        dims = [s[-k] for s in shapes if len(s) >= k]
        known = {d for d in dims if isinstance(d, int) and d != 1}
        if len(known) > 1:
            return (
                f"shapes {[list(s) for s in shapes]} do not broadcast (axis -{k}: {sorted(known)})"
            )
        if unidirectional and len(shapes[0]) >= k:
            target = shapes[0][-k]
            if isinstance(target, int) and known and target not in known:
                return f"shape {list(shapes[1])} does not broadcast onto {list(shapes[0])}"
    return None


def broadcast_shape(*shapes: Sequence[int], op: str = "") -> tuple[int, ...]:
    """The shape of the multidirectional broadcast of concrete shapes.

    Raises:
        InvalidArgument: the shapes are incompatible (the message names ``op``).
    """
    reason = broadcast_reason(*shapes)
    if reason is not None:
        raise InvalidArgument(f"{op}: {reason}." if op else f"{reason}.")
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(rank, 0, -1):
        dims = [int(s[-k]) for s in shapes if len(s) >= k]
        big = [d for d in dims if d != 1]
        out.append(big[0] if big else 1)
    return tuple(out)
