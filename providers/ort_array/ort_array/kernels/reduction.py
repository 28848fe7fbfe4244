"""Reductions (Reduce*, ArgMax/ArgMin) and the cumulative ops (CumSum, CumProd).

Axes come as an attribute (before ReduceSum-13 and the others' opset 18) or as a host input;
``noop_with_empty_axes`` makes empty axes the identity. float16 and bfloat16 accumulate in float32;
integer Mean/L2/LogSum/LogSumExp compute in float64 and truncate back. A reduction over no elements
gives the operation's identity (0 for sums, 1 for Prod, -inf for Max and LogSum(Exp), +inf for
Min; 0 for Mean), as onnxruntime does. With ``noop_with_empty_axes`` and no axes only the
elementwise part is applied (ReduceSumSquare squares, ReduceLogSum takes the log), as
onnxruntime does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ort_core.errors import InvalidArgument
from ort_core.ops import normalize_axes, normalize_axis
from ort_core.provider import NUMERIC_TYPES

from .._table import kernel
from .._xp import cast, device, dtype, ints, is_int, kind, namespace, result, widened
from ..checks import axis_check

BOOL = frozenset({np.dtype(np.bool_)})


def _float(xp: Any, x: Any) -> Any:
    """``x`` in a floating type: float64 for integers, float32 for float16/bfloat16."""
    return xp.astype(x, dtype(xp, np.float64)) if is_int(xp, x.dtype) else widened(xp, x)


def _extreme(xp: Any, x: Any, high: bool) -> Any:
    """The identity of Min (``high``) or Max over x's type."""
    k = kind(xp, x.dtype)
    if k == "b":
        return high
    if k in "iu":
        info = xp.iinfo(x.dtype)
        return info.max if high else info.min
    return math.inf if high else -math.inf


def _logsumexp(xp: Any, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    w = _float(xp, x)
    m = xp.max(w, axis=axes, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    s = xp.log(xp.sum(xp.exp(w - m), axis=axes, keepdims=True)) + m
    return s if keepdims else xp.squeeze(s, axis=axes)


REDUCE = {  # op: (input-axes since, input types, fn(xp, x, axes, keepdims), empty value)
    "ReduceSum": (13, NUMERIC_TYPES, lambda xp, x, a, k: xp.sum(widened(xp, x), axis=a, keepdims=k), 0),
    "ReduceMean": (18, NUMERIC_TYPES, lambda xp, x, a, k: xp.mean(_float(xp, x), axis=a, keepdims=k), 0),
    "ReduceProd": (18, NUMERIC_TYPES, lambda xp, x, a, k: xp.prod(widened(xp, x), axis=a, keepdims=k), 1),
    "ReduceMax": (18, NUMERIC_TYPES | BOOL, None, None),
    "ReduceMin": (18, NUMERIC_TYPES | BOOL, None, None),
    "ReduceL1": (18, NUMERIC_TYPES, lambda xp, x, a, k: xp.sum(xp.abs(widened(xp, x)), axis=a, keepdims=k), 0),
    "ReduceL2": (18, NUMERIC_TYPES, lambda xp, x, a, k: xp.sqrt(xp.sum(_float(xp, x) ** 2, axis=a, keepdims=k)), 0),
    "ReduceSumSquare": (18, NUMERIC_TYPES, lambda xp, x, a, k: xp.sum(widened(xp, x) ** 2, axis=a, keepdims=k), 0),
    "ReduceLogSum": (18, NUMERIC_TYPES, lambda xp, x, a, k: xp.log(xp.sum(_float(xp, x), axis=a, keepdims=k)), -math.inf),
    "ReduceLogSumExp": (18, NUMERIC_TYPES, _logsumexp, -math.inf),
}  # fmt: skip


def _max(xp, x, a, k):
    if kind(xp, x.dtype) == "b":
        return xp.any(x, axis=a, keepdims=k)
    return xp.max(widened(xp, x), axis=a, keepdims=k)


def _min(xp, x, a, k):
    if kind(xp, x.dtype) == "b":
        return xp.all(x, axis=a, keepdims=k)
    return xp.min(widened(xp, x), axis=a, keepdims=k)


def _reducer(op: str, fn: Any, empty: Any) -> tuple[Any, Any]:
    high = op == "ReduceMin"

    def reduce(x, axes, keepdims, noop):
        xp = namespace(x)
        axes = ints(axes)
        rank = x.ndim
        if axes:
            ax = tuple(sorted(set(normalize_axes(axes, rank, op, unique=False))))
        else:  # no axes: all of them, or none (the elementwise part alone) with noop
            ax = () if noop else tuple(range(rank))
        keep = bool(keepdims)
        if any(x.shape[a] == 0 for a in ax):
            shape = [1 if i in ax else d for i, d in enumerate(x.shape) if keep or i not in ax]
            value = _extreme(xp, x, high) if empty is None else empty
            if is_int(xp, x.dtype) and isinstance(value, float) and not math.isfinite(value):
                value = 0
            return xp.full(tuple(shape), value, dtype=x.dtype, device=device(x))
        return cast(xp, result(fn(xp, x, ax, keep)), x.dtype)

    def attr_form(x, axes=None, keepdims=1):
        return reduce(x, axes, keepdims, 0)

    def input_form(x, axes=None, keepdims=1, noop_with_empty_axes=0):
        return reduce(x, axes, keepdims, noop_with_empty_axes)

    for f, name in ((attr_form, "attributes"), (input_form, "input")):
        f.__name__ = f.__qualname__ = f"{op[6:].lower()}_{name}"
    return attr_form, input_form


for _op, (_since, _types, _fn, _empty) in REDUCE.items():
    _fn = _fn or (_min if _op == "ReduceMin" else _max)
    _attr_form, _input_form = _reducer(_op, _fn, _empty)
    kernel(_op, 1, dtypes=_types)(_attr_form)
    kernel(_op, _since, dtypes=_types, host_inputs=(1,))(_input_form)


# -- ArgMax / ArgMin ------------------------------------------------------------------------------
def _arg(op: str, name: str) -> Any:
    def run(x, axis=0, keepdims=1, select_last_index=0):
        xp = namespace(x)
        axis = normalize_axis(axis, x.ndim, op)
        fn = getattr(xp, name)
        w = widened(xp, x)
        if kind(xp, w.dtype) == "b":
            w = xp.astype(w, xp.int8)
        if select_last_index:  # the first hit in the reversed axis
            r = (x.shape[axis] - 1) - fn(xp.flip(w, axis=axis), axis=axis, keepdims=bool(keepdims))
        else:
            r = fn(w, axis=axis, keepdims=bool(keepdims))
        return cast(xp, result(r), xp.int64)

    run.__name__ = run.__qualname__ = op.lower()
    return run


for _op, _name in (("ArgMax", "argmax"), ("ArgMin", "argmin")):
    kernel(_op, 1, dtypes=NUMERIC_TYPES, check=axis_check())(_arg(_op, _name))


# -- CumSum, CumProd -------------------------------------------------------------------------------
def _cumulative(op: str, name: str) -> Any:
    def run(x, axis, exclusive=0, reverse=0):
        xp = namespace(x)
        ax = ints(axis)
        if len(ax) != 1:
            raise InvalidArgument(f"{op}: axis must hold one value, got {ax}.")
        ax = normalize_axis(ax[0], x.ndim, op)
        w = widened(xp, x)
        if reverse:
            w = xp.flip(w, axis=ax)
        r = getattr(xp, name)(w, axis=ax, dtype=w.dtype, include_initial=bool(exclusive))
        if exclusive:  # include_initial adds the identity in front: drop the last element
            index = [slice(None)] * x.ndim
            index[ax] = slice(0, x.shape[ax])
            r = r[tuple(index)]
        if reverse:
            r = xp.flip(r, axis=ax)
        return cast(xp, r, x.dtype)

    run.__name__ = run.__qualname__ = op.lower()
    return run


kernel("CumSum", 11, dtypes=NUMERIC_TYPES, host_inputs=(1,))(
    _cumulative("CumSum", "cumulative_sum")
)
kernel("CumProd", 26, dtypes=NUMERIC_TYPES, host_inputs=(1,))(
    _cumulative("CumProd", "cumulative_prod")
)
