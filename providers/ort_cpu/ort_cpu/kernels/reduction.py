"""Reductions (Reduce*, ArgMax/ArgMin), Softmax/LogSoftmax/Hardmax and CumSum.

float16 and ml_dtypes floats are accumulated in float32 and cast back.
"""

from __future__ import annotations

import math

import numpy as np

from ort_core.provider import FLOAT_TYPES, NUMERIC_TYPES

from ._registry import builder, kernel
from .shape_ops import axes_key, axis_check, normalize_axis

BOOL = frozenset({np.dtype(np.bool_)})


def _work(x: np.ndarray) -> np.ndarray:
    """``x`` in the type reductions accumulate in."""
    if x.dtype == np.float16 or x.dtype.kind == "V":
        return x.astype(np.float32)
    return x


def _axes(axes, ndim: int, noop: int) -> tuple[int, ...] | None:
    """Normalized reduction axes: None = all axes, () = none (noop_with_empty_axes)."""
    if axes is not None and not isinstance(axes, (list, tuple)):
        axes = np.asarray(axes).reshape(-1).tolist()  # the input form: an int64 tensor
    if not axes:
        return () if noop else None
    return tuple(sorted({int(a) % ndim if ndim else 0 for a in axes}))


def _extreme(dtype: np.dtype, high: bool):
    if dtype.kind == "b":
        return high
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return info.max if high else info.min
    return np.inf if high else -np.inf


def _sum(x, ax, kd):
    return np.sum(x, axis=ax, keepdims=kd)


def _mean(x, ax, kd):
    if x.dtype.kind in "iu":
        return np.mean(x, axis=ax, keepdims=kd, dtype=np.float64)
    count = x.size if ax is None else math.prod(x.shape[a] for a in ax)
    if count == 0 or x.dtype.kind != "f":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.mean(x, axis=ax, keepdims=kd)
    # np.mean's own steps (sum, then divide by the count) without its Python wrapper and the
    # errstate context, which cost 20 us on a small tensor: same results
    s = np.add.reduce(x, axis=ax, keepdims=kd)
    if isinstance(s, np.ndarray):
        return np.true_divide(s, count, out=s, casting="unsafe")
    return s.dtype.type(s / count)


def _max(x, ax, kd):
    return np.max(x, axis=ax, keepdims=kd, initial=_extreme(x.dtype, False))


def _min(x, ax, kd):
    return np.min(x, axis=ax, keepdims=kd, initial=_extreme(x.dtype, True))


def _prod(x, ax, kd):
    return np.prod(x, axis=ax, keepdims=kd)


def _l1(x, ax, kd):
    return np.sum(np.abs(x), axis=ax, keepdims=kd)


def _l2(x, ax, kd):
    s = np.sum(np.square(x, dtype=np.float64 if x.dtype.kind in "iu" else x.dtype), axis=ax,
               keepdims=kd)  # fmt: skip
    return np.sqrt(s)


def _sum_square(x, ax, kd):
    return np.sum(np.square(x), axis=ax, keepdims=kd)


def _log_sum(x, ax, kd):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.sum(x, axis=ax, keepdims=kd, dtype=_float(x)))


def _float(x):
    return np.float64 if x.dtype.kind in "iu" else x.dtype


def _log_sum_exp(x, ax, kd):
    x = x.astype(_float(x), copy=False)
    if x.size == 0:
        return np.log(np.sum(x, axis=ax, keepdims=kd))  # -inf, or the empty result's shape
    m = np.max(x, axis=ax, keepdims=True)
    m[~np.isfinite(m)] = 0
    e = np.exp(x - m)
    s = np.sum(e, axis=ax, keepdims=True)
    with np.errstate(divide="ignore"):
        np.log(s, out=s)
    s += m
    return s if kd else np.squeeze(s, axis=ax)


REDUCE = {  # op: (input-axes since, numpy function, input types)
    "ReduceSum": (13, _sum, NUMERIC_TYPES),
    "ReduceMean": (18, _mean, NUMERIC_TYPES),
    "ReduceMax": (18, _max, NUMERIC_TYPES | BOOL),
    "ReduceMin": (18, _min, NUMERIC_TYPES | BOOL),
    "ReduceProd": (18, _prod, NUMERIC_TYPES),
    "ReduceL1": (18, _l1, NUMERIC_TYPES),
    "ReduceL2": (18, _l2, NUMERIC_TYPES),
    "ReduceSumSquare": (18, _sum_square, NUMERIC_TYPES),
    "ReduceLogSum": (18, _log_sum, NUMERIC_TYPES),
    "ReduceLogSumExp": (18, _log_sum_exp, NUMERIC_TYPES),
}


#: reductions whose value over one element is that element (as numpy computes it)
_ONE_IS_ITSELF = frozenset({_sum, _mean, _max, _min, _prod})


def _reducer(fn):
    itself = fn in _ONE_IS_ITSELF
    # (input shape, axes, keepdims, noop) -> (normalized axes, the output's shape where the
    # reduction is a reshape of the input, else None): a model reduces the same shapes each run
    # (worked out per call, the axes took 2 of a 2.7 us ReduceMean on one element)
    plans: dict = {}

    def plan(shape, axes, keepdims, noop):
        ax = _axes(axes, len(shape), noop)
        if itself and math.prod(shape):
            axes_ = range(len(shape)) if ax is None else ax
            if all(shape[a] == 1 for a in axes_):  # one element per output: the input, shaped
                if keepdims:
                    return ax, shape
                return ax, tuple(d for i, d in enumerate(shape) if i not in axes_)
        return ax, None

    def reduce(x, axes, keepdims, noop):
        key = (x.shape, axes_key(axes), keepdims, noop)
        hit = plans.get(key)
        if hit is None:
            hit = plan(x.shape, axes, keepdims, noop)
            if len(plans) < 256:
                plans[key] = hit
        ax, shape = hit
        if shape is not None:
            return x.reshape(shape)
        r = fn(_work(x), ax, bool(keepdims))
        return np.asarray(r).astype(x.dtype, copy=False)

    def attr_form(x, axes=None, keepdims=1):
        return reduce(x, axes, keepdims, 0)

    def input_form(x, axes=None, keepdims=1, noop_with_empty_axes=0):
        return reduce(x, axes, keepdims, noop_with_empty_axes)

    return attr_form, input_form


for _op, (_since, _fn, _types) in REDUCE.items():
    _attr_form, _input_form = _reducer(_fn)
    kernel(_op, since=1, dtypes=_types)(_attr_form)
    kernel(_op, since=_since, dtypes=_types)(_input_form)


# -- ArgMax / ArgMin ------------------------------------------------------------------------------
def _arg(fn):
    def run(x, axis=0, keepdims=1, select_last_index=0):
        axis %= max(x.ndim, 1)
        w = _work(x)
        if select_last_index:
            n = x.shape[axis]
            r = (n - 1) - fn(np.flip(w, axis), axis=axis, keepdims=bool(keepdims))
        else:
            r = fn(w, axis=axis, keepdims=bool(keepdims))
        return np.asarray(r, np.int64)

    return run


kernel("ArgMax", since=1, dtypes=NUMERIC_TYPES)(_arg(np.argmax))
kernel("ArgMin", since=1, dtypes=NUMERIC_TYPES)(_arg(np.argmin))


# -- Softmax family -------------------------------------------------------------------------------
# ufunc reductions directly: np.max / np.sum add a Python wrapper layer per call
def _softmax(x, axis):
    e = np.subtract(x, np.maximum.reduce(x, axis=axis, keepdims=True))
    np.exp(e, out=e)
    e /= np.add.reduce(e, axis=axis, keepdims=True)
    return e


def _log_softmax(x, axis):
    e = np.subtract(x, np.maximum.reduce(x, axis=axis, keepdims=True))
    s = np.add.reduce(np.exp(e), axis=axis, keepdims=True)
    np.log(s, out=s)
    e -= s
    return e


def _hardmax(x, axis):
    idx = np.expand_dims(np.argmax(x, axis=axis), axis)
    r = np.zeros(x.shape, x.dtype)
    np.put_along_axis(r, idx, 1, axis=axis)
    return r


def _along_axis(fn, legacy: bool):
    def run(x, axis=1 if legacy else -1):
        if x.size == 0:
            return x.copy()
        w = _work(x)
        if w.ndim == 0:
            w = w.reshape(1)
        axis = normalize_axis(axis, max(x.ndim, 1), fn.__name__.strip("_"))
        if legacy:  # opset < 13: flatten to 2-D at `axis`, work along the second dimension
            w = w.reshape(int(np.prod(x.shape[:axis])), -1)
            return fn(w, 1).reshape(x.shape).astype(x.dtype, copy=False)
        return fn(w, axis).reshape(x.shape).astype(x.dtype, copy=False)

    return run


def _compiled_rows(fn, legacy: bool, log: int):
    """A Softmax or LogSoftmax builder: float32 over the last axis (the usual case, the
    legacy form's coerced 2-D one at any ``axis``, and an axis followed by unit axes only) by
    the compiled rows of :mod:`._exp` (one pass per row in cache, MLAS's exponential; numpy
    took five calls: 5.5 us for a (1, 2) Softmax), anything else by ``fn``'s numpy steps."""
    plain = _along_axis(fn, legacy)

    def build(info):
        axis = info.attr("axis", 1 if legacy else -1)
        jit = _exp_rows(info)

        def run(x, axis=axis):
            if jit is not None and x.dtype == np.float32 and x.ndim and x.size:
                if axis in (-1, x.ndim - 1) and x.flags.c_contiguous:
                    return jit.softmax_last(x, log)
                a = axis + x.ndim if axis < 0 else axis
                if 0 <= a < x.ndim and (legacy or math.prod(x.shape[a + 1 :]) == 1):
                    # the legacy form's rows are the flattened axes from ``axis`` on; from
                    # opset 13, unit axes after it leave its cells contiguous (SqueezeNet's
                    # (1, 1000, 1, 1) over axis 1 took five numpy calls: a one-node run
                    # 25 -> 13 us at opset 11, 20 -> 9.5 at 17; onnxruntime 7-12)
                    rows = math.prod(x.shape[:a])
                    flat = np.ascontiguousarray(x).reshape(rows, x.size // max(rows, 1))
                    return jit.softmax_last(flat, log).reshape(x.shape)
            return plain(x, axis)

        return run

    return build


def _exp_rows(info):
    """:mod:`._exp` with its Softmax rows compiled (or loaded) for this node, the pieces
    too where the session's runs share work; None where compiled kernels are off or the node
    is not float32."""
    from .. import _threads
    from .._jit import available

    if info.input_dtype(0) not in (None, np.float32) or not available():
        return None
    from . import _exp

    _exp.warm_softmax_rows(_threads.will_split(info.provider))
    return _exp


_legacy_check, _check = axis_check(default=1), axis_check(default=-1)
for _op, _fn, _log in (("Softmax", _softmax, 0), ("LogSoftmax", _log_softmax, 1)):
    builder(_op, since=1, dtypes=FLOAT_TYPES, check=_legacy_check)(
        _compiled_rows(_fn, legacy=True, log=_log)
    )
    builder(_op, since=13, dtypes=FLOAT_TYPES, check=_check)(
        _compiled_rows(_fn, legacy=False, log=_log)
    )
kernel("Hardmax", since=1, dtypes=FLOAT_TYPES, check=_legacy_check)(
    _along_axis(_hardmax, legacy=True)
)
kernel("Hardmax", since=13, dtypes=FLOAT_TYPES, check=_check)(_along_axis(_hardmax, legacy=False))


# -- CumSum, CumProd -------------------------------------------------------------------------------
def _cumulative(fn, identity):
    def run(x, axis, exclusive=0, reverse=0):
        ax = int(np.asarray(axis).reshape(-1)[0]) % max(x.ndim, 1)
        w = _work(x)
        if reverse:
            w = np.flip(w, ax)
        r = fn(w, axis=ax, dtype=w.dtype)
        if exclusive:  # shift by one along the axis, the identity first
            shifted = np.full_like(r, identity)
            dst = [slice(None)] * x.ndim
            src = [slice(None)] * x.ndim
            dst[ax], src[ax] = slice(1, None), slice(None, -1)
            shifted[tuple(dst)] = r[tuple(src)]
            r = shifted
        if reverse:
            r = np.flip(r, ax)
        return np.ascontiguousarray(r).astype(x.dtype, copy=False)

    run.__name__ = run.__qualname__ = fn.__name__
    return run


kernel("CumSum", since=11, dtypes=NUMERIC_TYPES)(_cumulative(np.cumsum, 0))
kernel("CumProd", since=26, dtypes=NUMERIC_TYPES)(_cumulative(np.cumprod, 1))
