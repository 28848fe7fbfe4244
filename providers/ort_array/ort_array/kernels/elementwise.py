"""Elementwise kernels: unary math and activations, broadcasting binary ops (arithmetic, bitwise,
comparison and logic), Pow, Mod, BitShift, variadic Sum/Mean/Max/Min, Clip, Where, Cast and
CastLike.

bfloat16 and float8 are computed in float32 and cast back; float16 is computed as the namespace
computes it (numpy and cupy: per element in float32, rounded once).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ort_core import _onnx
from ort_core._onnx import helper
from ort_core.provider import FLOAT_TYPES, INT_TYPES, NUMERIC_TYPES, SIGNED_TYPES

from .._table import builder, kernel
from .._xp import (
    cast,
    computable,
    dtype,
    host_waits,
    is_float,
    is_int,
    kind,
    namespace,
    np_dtype,
    result,
    widened,
)
from .._xp import clip as _bound
from ..checks import choice_check

TensorProto = _onnx.onnx.TensorProto

BOOL = frozenset({np.dtype(np.bool_)})
NUM_BOOL = NUMERIC_TYPES | BOOL


def _out(xp: Any, r: Any, dt: Any) -> Any:
    """A kernel's result as an array of ``dt``."""
    return cast(xp, result(r), dt)


# -- erf from the namespace's exp (the array API has no erf) ------------------------------------
# |x| < 0.5: the Maclaurin series of erf(x)/x in x^2 (truncation error below 1e-11); elsewhere
# erfc by Numerical Recipes' Chebyshev fit (erfcc, fractional error below 1.2e-7).
_ERF_SERIES = [
    2 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(9)
]
_ERFC = (
    -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
    0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277,
)  # fmt: skip


def erf(xp: Any, x: Any) -> Any:
    """erf of a real floating array (float16/bfloat16 are computed in float32)."""
    w = widened(xp, x)
    z = xp.abs(w)
    s = _bound(xp, w, -0.5, 0.5)
    s2 = s * s
    series = xp.zeros_like(s) + _ERF_SERIES[-1]
    for c in _ERF_SERIES[-2::-1]:
        series = series * s2 + c
    series = series * s
    t = 1 / (1 + 0.5 * z)
    p = xp.zeros_like(t) + _ERFC[9]
    for c in _ERFC[8::-1]:
        p = p * t + c
    tail = 1 - t * xp.exp(p - z * z)
    tail = xp.where(w < 0, -tail, tail)
    return cast(xp, xp.where(z < 0.5, series, tail), x.dtype)


# -- unary ops ------------------------------------------------------------------------------------
def _sigmoid(xp: Any, x: Any) -> Any:
    e = xp.exp(-xp.abs(x))  # never overflows: both tails from exp(-|x|)
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(xp: Any, x: Any) -> Any:
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


UNARY = {  # op: (since, input types, fn(xp, x)); x in a type the namespace computes
    "Abs": (1, NUMERIC_TYPES, lambda xp, x: xp.abs(x)),
    "Neg": (1, SIGNED_TYPES, lambda xp, x: xp.negative(x)),
    "Exp": (1, FLOAT_TYPES, lambda xp, x: xp.exp(x)),
    "Log": (1, FLOAT_TYPES, lambda xp, x: xp.log(x)),
    "Sqrt": (1, FLOAT_TYPES, lambda xp, x: xp.sqrt(x)),
    "Reciprocal": (1, FLOAT_TYPES, lambda xp, x: 1 / x),
    "Floor": (1, FLOAT_TYPES, lambda xp, x: xp.floor(x)),
    "Ceil": (1, FLOAT_TYPES, lambda xp, x: xp.ceil(x)),
    "Round": (11, FLOAT_TYPES, lambda xp, x: xp.round(x)),  # half to even, as ONNX asks
    "Sign": (9, NUMERIC_TYPES, lambda xp, x: xp.sign(x)),
    "Erf": (9, FLOAT_TYPES, erf),
    "Sin": (7, FLOAT_TYPES, lambda xp, x: xp.sin(x)),
    "Cos": (7, FLOAT_TYPES, lambda xp, x: xp.cos(x)),
    "Tan": (7, FLOAT_TYPES, lambda xp, x: xp.tan(x)),
    "Asin": (7, FLOAT_TYPES, lambda xp, x: xp.asin(x)),
    "Acos": (7, FLOAT_TYPES, lambda xp, x: xp.acos(x)),
    "Atan": (7, FLOAT_TYPES, lambda xp, x: xp.atan(x)),
    "Sinh": (9, FLOAT_TYPES, lambda xp, x: xp.sinh(x)),
    "Cosh": (9, FLOAT_TYPES, lambda xp, x: xp.cosh(x)),
    "Asinh": (9, FLOAT_TYPES, lambda xp, x: xp.asinh(x)),
    "Acosh": (9, FLOAT_TYPES, lambda xp, x: xp.acosh(x)),
    "Atanh": (9, FLOAT_TYPES, lambda xp, x: xp.atanh(x)),
    "Tanh": (1, FLOAT_TYPES, lambda xp, x: xp.tanh(x)),
    "Sigmoid": (1, FLOAT_TYPES, _sigmoid),
    "Softsign": (1, FLOAT_TYPES, lambda xp, x: x / (xp.abs(x) + 1)),
    "Softplus": (1, FLOAT_TYPES, _softplus),
    "Relu": (1, NUMERIC_TYPES, lambda xp, x: xp.maximum(x, 0)),
    "HardSwish": (14, FLOAT_TYPES, lambda xp, x: x * _bound(xp, x * (1 / 6) + 0.5, 0, 1)),
    "Mish": (18, FLOAT_TYPES, lambda xp, x: x * xp.tanh(_softplus(xp, x))),
    "Not": (1, BOOL, lambda xp, x: xp.logical_not(x)),
    "BitwiseNot": (18, INT_TYPES, lambda xp, x: xp.bitwise_invert(x)),
}


def _unary(op: str, fn: Any) -> Any:
    def run(x):
        xp = namespace(x)
        return _out(xp, fn(xp, computable(xp, x)), x.dtype)

    run.__name__ = run.__qualname__ = op.lower()
    return run


for _op, (_since, _types, _fn) in UNARY.items():
    kernel(_op, _since, dtypes=_types)(_unary(_op, _fn))


@kernel("IsNaN", 9, dtypes=FLOAT_TYPES)
def is_nan(x):
    xp = namespace(x)
    return xp.isnan(computable(xp, x))


@kernel("IsInf", 10, dtypes=FLOAT_TYPES)
def is_inf(x, detect_negative=1, detect_positive=1):
    xp = namespace(x)
    x = computable(xp, x)
    inf = xp.isinf(x)
    if detect_negative and detect_positive:
        return inf
    if detect_negative:
        return inf & (x < 0)
    if detect_positive:
        return inf & (x > 0)
    return xp.zeros(x.shape, dtype=xp.bool)


# -- activations with attributes ------------------------------------------------------------------
def _activation(op: str, since: int, types=FLOAT_TYPES, check=None):
    """Register ``fn(xp, x, **attrs)`` as a unary kernel computed in x's computable type."""

    def deco(fn):
        def run(x, **attrs):
            xp = namespace(x)
            return _out(xp, fn(xp, computable(xp, x), **attrs), x.dtype)

        run.__signature__ = _attr_signature(fn)  # the registry reads attribute names from it
        run.__name__ = run.__qualname__ = fn.__name__
        kernel(op, since, dtypes=types, check=check)(run)
        return fn

    return deco


def _attr_signature(fn):
    import inspect

    params = list(inspect.signature(fn).parameters.values())[2:]  # drop xp, x
    x = inspect.Parameter("x", inspect.Parameter.POSITIONAL_ONLY)
    return inspect.Signature([x, *params])


@_activation("LeakyRelu", 1)
def leaky_relu(xp, x, alpha=0.01):
    return xp.where(x >= 0, x, x * alpha)


@_activation("Elu", 1)
def elu(xp, x, alpha=1.0):
    return xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)) * alpha)


@_activation("Selu", 1)
def selu(xp, x, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875):
    return elu(xp, x, alpha) * gamma


@_activation("Celu", 12)
def celu(xp, x, alpha=1.0):
    return xp.maximum(x, 0) + xp.minimum(xp.expm1(xp.minimum(x, 0) / alpha) * alpha, 0)


@_activation("HardSigmoid", 1)
def hard_sigmoid(xp, x, alpha=0.2, beta=0.5):
    return _bound(xp, x * alpha + beta, 0, 1)


@_activation("ThresholdedRelu", 10)
def thresholded_relu(xp, x, alpha=1.0):
    return xp.where(x > alpha, x, 0)


@_activation("Shrink", 9, NUMERIC_TYPES)
def shrink(xp, x, bias=0.0, lambd=0.5):
    if is_int(xp, x.dtype):  # integer data: computed in float64, truncated back
        x = xp.astype(x, dtype(xp, np.float64))
    return xp.where(x < -lambd, x + bias, xp.where(x > lambd, x - bias, 0))


@_activation("Gelu", 20, check=choice_check(approximate=("none", "tanh")))
def gelu(xp, x, approximate="none"):
    if approximate == "tanh":
        inner = (x + 0.044715 * x * x * x) * math.sqrt(2 / math.pi)
        return 0.5 * x * (1 + xp.tanh(inner))
    return 0.5 * x * (1 + erf(xp, x * (1 / math.sqrt(2))))


@_activation("Swish", 24)
def swish(xp, x, alpha=1.0):
    return x * _sigmoid(xp, x * alpha)


@kernel("PRelu", 7, dtypes=NUMERIC_TYPES)
def prelu(x, slope):
    xp = namespace(x)
    xc, sc = computable(xp, x), computable(xp, cast(xp, slope, x.dtype))
    return _out(xp, xp.where(xc < 0, xc * sc, xc), x.dtype)


@kernel("PRelu", (1, 6), dtypes=NUMERIC_TYPES)
def prelu_legacy(x, slope, consumed_inputs=None):
    """Before opset 7 a 1-D slope of C values applies per channel (axis 1)."""
    xp = namespace(x)
    if slope.ndim == 1 and x.ndim > 2 and slope.shape[0] == x.shape[1] and slope.shape[0] > 1:
        slope = xp.reshape(slope, (-1,) + (1,) * (x.ndim - 2))
    return prelu(x, slope)


# -- binary ops -----------------------------------------------------------------------------------
def _div(xp, a, b):
    if is_int(xp, a.dtype):  # ONNX (like C) truncates toward zero
        q = xp.floor_divide(a, b)
        fix = (xp.remainder(a, b) != 0) & ((a < 0) != (b < 0))
        return q + xp.astype(fix, q.dtype)
    return a / b


BINARY = {  # op: (input types, fn(xp, a, b), result is bool)
    "Add": (NUMERIC_TYPES, lambda xp, a, b: a + b, False),
    "Sub": (NUMERIC_TYPES, lambda xp, a, b: a - b, False),
    "Mul": (NUMERIC_TYPES, lambda xp, a, b: a * b, False),
    "Div": (NUMERIC_TYPES, _div, False),
    "BitwiseAnd": (INT_TYPES, lambda xp, a, b: xp.bitwise_and(a, b), False),
    "BitwiseOr": (INT_TYPES, lambda xp, a, b: xp.bitwise_or(a, b), False),
    "BitwiseXor": (INT_TYPES, lambda xp, a, b: xp.bitwise_xor(a, b), False),
    "And": (BOOL, lambda xp, a, b: xp.logical_and(a, b), True),
    "Or": (BOOL, lambda xp, a, b: xp.logical_or(a, b), True),
    "Xor": (BOOL, lambda xp, a, b: xp.logical_xor(a, b), True),
    "Equal": (NUM_BOOL, lambda xp, a, b: xp.equal(a, b), True),
    "Less": (NUMERIC_TYPES, lambda xp, a, b: xp.less(a, b), True),
    "LessOrEqual": (NUMERIC_TYPES, lambda xp, a, b: xp.less_equal(a, b), True),
    "Greater": (NUMERIC_TYPES, lambda xp, a, b: xp.greater(a, b), True),
    "GreaterOrEqual": (NUMERIC_TYPES, lambda xp, a, b: xp.greater_equal(a, b), True),
}
_SINCE = {"BitwiseAnd": 18, "BitwiseOr": 18, "BitwiseXor": 18, "LessOrEqual": 12,
          "GreaterOrEqual": 12}  # fmt: skip


def _binary(op: str, fn: Any, boolean: bool) -> Any:
    def run(a, b):
        xp = namespace(a)
        r = fn(xp, computable(xp, a), computable(xp, b))
        return result(r) if boolean else _out(xp, r, a.dtype)

    run.__name__ = run.__qualname__ = op.lower()
    return run


def _legacy(run: Any) -> Any:
    """The opset < 7 form: B broadcasts onto A only with ``broadcast=1``, aligned at ``axis``."""

    def legacy(a, b, broadcast=0, axis=None, consumed_inputs=None):
        if broadcast and axis is not None and 0 < b.ndim < a.ndim:
            xp = namespace(b)
            b = xp.reshape(b, b.shape + (1,) * (a.ndim - axis % a.ndim - b.ndim))
        return run(a, b)

    legacy.__name__ = legacy.__qualname__ = f"legacy_{run.__name__}"
    return legacy


for _op, (_types, _fn, _bool) in BINARY.items():
    _run = _binary(_op, _fn, _bool)
    _since = _SINCE.get(_op, 7)
    kernel(_op, _since, dtypes=_types)(_run)
    if _since == 7:
        kernel(_op, 1, dtypes=_types)(_legacy(_run))


@kernel("Pow", 7, dtypes=NUMERIC_TYPES)
def pow_(a, b):
    xp = namespace(a)
    if is_float(xp, a.dtype):
        w = widened(xp, a)
        return _out(xp, xp.pow(w, cast(xp, widened(xp, b), w.dtype)), a.dtype)
    if is_int(xp, b.dtype) and (b.size == 0 or (host_waits() and int(xp.min(b)) >= 0)):
        return _out(xp, xp.pow(a, cast(xp, b, a.dtype)), a.dtype)
    f64 = dtype(xp, np.float64)  # a negative or fractional exponent of an integer: truncate
    return _out(xp, xp.pow(xp.astype(a, f64), xp.astype(b, f64)), a.dtype)


kernel("Pow", 1, dtypes=NUMERIC_TYPES)(_legacy(pow_))


@kernel("Mod", 10, dtypes=NUMERIC_TYPES)
def mod(a, b, fmod=0):
    xp = namespace(a)
    ac, bc = computable(xp, a), computable(xp, b)
    if not is_float(xp, ac.dtype):
        r = xp.remainder(ac, bc)  # the divisor's sign (Python's %)
        if fmod:  # C's remainder: the dividend's sign
            r = xp.where((r != 0) & ((r < 0) != (ac < 0)), r - bc, r)
        return _out(xp, r, a.dtype)
    # floats: C's fmod (exact), then, for fmod=0, numpy's floor-mod built on it, so the edge
    # cases (zero and infinite divisors, infinite dividends, the sign of zero) agree everywhere
    # (cupy's remainder differs from numpy's on infinities)
    r = _fmod(xp, ac, bc)
    if not fmod:  # NaN compares false: NaN stays
        r = xp.where((r != 0) & ((r < 0) != (bc < 0)), r + bc, r)
        r = xp.where(r == 0, xp.copysign(xp.zeros_like(r), bc), r)
    return _out(xp, r, a.dtype)


def _fmod(xp: Any, a: Any, b: Any) -> Any:
    fn = getattr(xp, "fmod", None)  # numpy and cupy have C's fmod; the standard has not
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN results are the answer here
        if fn is not None:
            return fn(a, b)
        r = xp.remainder(a, b)
        r = xp.where((r != 0) & ((r < 0) != (a < 0)), r - b, r)
        r = xp.where(xp.isinf(b) & xp.isfinite(a), a, r)
        return xp.where(r == 0, xp.copysign(xp.zeros_like(r), a), r)


def _direction_check(info) -> str | None:
    d = info.attr("direction")
    return None if d in ("LEFT", "RIGHT") else f"direction must be LEFT or RIGHT, not {d!r}"


@kernel("BitShift", 11, dtypes=INT_TYPES, check=_direction_check)
def bit_shift(a, b, direction=""):
    xp = namespace(a)
    bits = 8 * np_dtype(a.dtype).itemsize
    ok = (b >= 0) & (b < bits)
    s = xp.where(ok, b, xp.zeros_like(b))
    if direction == "LEFT":
        return xp.where(ok, xp.bitwise_left_shift(a, s), xp.zeros_like(a))
    # a shift out of range leaves the sign: an arithmetic shift of a signed value by the width
    # or more is -1 for negative values (numpy and onnxruntime); C's >> is undefined there
    fill = xp.zeros_like(a)
    if kind(xp, a.dtype) == "i":
        fill = xp.where(a < 0, -xp.ones_like(a), fill)
    return xp.where(ok, xp.bitwise_right_shift(a, s), fill)


# -- variadic ops ---------------------------------------------------------------------------------
def _variadic(op: str, fn: Any, mean: bool = False) -> Any:
    def run(*xs):
        xp = namespace(xs[0])
        dt = xs[0].dtype
        ws = [computable(xp, x) for x in xs]
        r = ws[0] if len(ws) > 1 else xp.asarray(ws[0], copy=True)
        for x in ws[1:]:
            r = fn(xp, r, x)
        if mean:
            r = r / len(ws)
        return _out(xp, r, dt)

    run.__name__ = run.__qualname__ = op.lower()
    return run


kernel("Sum", 1, dtypes=NUMERIC_TYPES)(_variadic("Sum", lambda xp, a, b: a + b))
kernel("Mean", 1, dtypes=FLOAT_TYPES)(_variadic("Mean", lambda xp, a, b: a + b, mean=True))
kernel("Max", 1, dtypes=NUMERIC_TYPES)(_variadic("Max", lambda xp, a, b: xp.maximum(a, b)))
kernel("Min", 1, dtypes=NUMERIC_TYPES)(_variadic("Min", lambda xp, a, b: xp.minimum(a, b)))


# -- Clip, Where ----------------------------------------------------------------------------------
def _clip(x, lo, hi):
    xp = namespace(x)
    w = computable(xp, x)
    if lo is not None:
        w = xp.maximum(w, cast(xp, computable(xp, lo), w.dtype))
    if hi is not None:  # after the lower bound: hi wins when lo > hi, as ONNX says
        w = xp.minimum(w, cast(xp, computable(xp, hi), w.dtype))
    return _out(xp, w if w is not x else xp.asarray(x, copy=True), x.dtype)


@kernel("Clip", 1, dtypes=NUMERIC_TYPES)
def clip_6(x, min=-3.4028234663852886e38, max=3.4028234663852886e38):  # noqa: A002
    xp = namespace(x)
    lo, hi = (xp.asarray(v, dtype=computable(xp, x).dtype) for v in (min, max))
    return _clip(x, lo, hi)


@kernel("Clip", 11, dtypes=NUMERIC_TYPES)
def clip(x, lo=None, hi=None):
    return _clip(x, lo, hi)


@kernel("Where", 9)
def where(cond, x, y):
    xp = namespace(x)
    return result(xp.where(cond, x, y))


# -- Cast, CastLike -------------------------------------------------------------------------------
_CASTABLE = "biuf"  # numpy kinds the shared Cast converts between (bfloat16 is kind V: see below)


def _dtype_of(to: Any) -> np.dtype:
    if isinstance(to, str):  # Cast-1 names the type
        to = TensorProto.DataType.Value(to.upper())
    return np.dtype(helper.tensor_dtype_to_np_dtype(to))


def _castable(dt: np.dtype | None) -> bool:
    return dt is None or dt.kind in _CASTABLE or dt.name == "bfloat16"


def _cast_reason(op: str, src: np.dtype | None, dst: np.dtype | None) -> str | None:
    for what, dt in (("from", src), ("to", dst)):
        if not _castable(dt):
            return (
                f"the shared {op} converts between bool, integer and float types (bfloat16 "
                f"included); converting {what} {dt} is left to the provider's own {op}"
            )
    return None


def _cast_check(info) -> str | None:
    to = info.attr("to")
    try:
        _dtype_of(to)
    except (KeyError, ValueError, TypeError):
        return f"to={to!r} is not an ONNX element type"
    return choice_check(round_mode=("up", "down", "nearest"))(info)


def _cast_limit(info) -> str | None:
    return _cast_reason("Cast", info.input_dtype(0), _dtype_of(info.attr("to")))


def cast_to(x: Any, target: np.dtype) -> Any:
    """``x`` as ``target`` (a fresh array). Float to integer truncates toward zero; anything
    non-zero is True; saturation only concerns float8, which the shared kernel does not take."""
    xp = namespace(x)
    dt = dtype(xp, target)
    if x.dtype == dt:
        return xp.asarray(x, copy=True)
    if kind(xp, x.dtype) == "x" and target.name != "float32":
        x = xp.astype(x, xp.float32)  # bfloat16 to anything: through float32
    return xp.astype(x, dt)


@builder("Cast", 1, check=_cast_check, limit=_cast_limit)
def cast_kernel(info):
    target = _dtype_of(info.attr("to"))

    def run(x):
        return cast_to(x, target)

    return run


def _cast_like_limit(info) -> str | None:
    return _cast_reason("CastLike", info.input_dtype(0), info.input_dtype(1))


@kernel("CastLike", 15, check=choice_check(round_mode=("up", "down", "nearest")),
        limit=_cast_like_limit)  # fmt: skip
def cast_like(x, like, saturate=1, round_mode="up"):
    return cast_to(x, np_dtype(like.dtype))
