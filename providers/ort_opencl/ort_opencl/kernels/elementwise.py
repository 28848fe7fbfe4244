"""Elementwise kernels: unary and binary ops with numpy broadcasting, variadic Sum/Mean/Max/Min,
Clip, Where, PRelu, Cast. Each op is one C expression over ``a0, a1, ...`` (inputs in their compute
type) and ``p0, p1, ...`` (attribute values passed as kernel arguments), registered from a table.
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from ._common import (
    ANY,
    BOOL,
    CTYPE,
    F16,
    F64,
    FLOATS,
    INTS,
    NUMERIC,
    SINT,
    UINT,
    Elementwise,
    builder,
    checks,
    device_of,
    rank_check,
)

_CHECK = checks(rank_check())


def _same(dts):
    return dts[0]


def _bool(dts):
    return BOOL


# op: (since, input types, C expression, ((attribute, default), ...))
UNARY = {
    "Abs": (1, NUMERIC, "fabs(a0)", ()),
    "Neg": (1, FLOATS | SINT, "-a0", ()),
    "Exp": (1, FLOATS, "exp(a0)", ()),
    "Log": (1, FLOATS, "log(a0)", ()),
    "Sqrt": (1, FLOATS, "sqrt(a0)", ()),
    "Reciprocal": (1, FLOATS, "1.0f / a0", ()),
    "Floor": (1, FLOATS, "floor(a0)", ()),
    "Ceil": (1, FLOATS, "ceil(a0)", ()),
    "Round": (11, FLOATS, "rint(a0)", ()),
    "Sign": (9, NUMERIC, "(a0 > 0) ? 1 : ((a0 < 0) ? -1 : a0)", ()),
    "Erf": (9, FLOATS, "erf(a0)", ()),
    "Sin": (7, FLOATS, "sin(a0)", ()),
    "Cos": (7, FLOATS, "cos(a0)", ()),
    "Tan": (7, FLOATS, "tan(a0)", ()),
    "Asin": (7, FLOATS, "asin(a0)", ()),
    "Acos": (7, FLOATS, "acos(a0)", ()),
    "Atan": (7, FLOATS, "atan(a0)", ()),
    "Sinh": (9, FLOATS, "sinh(a0)", ()),
    "Cosh": (9, FLOATS, "cosh(a0)", ()),
    "Asinh": (9, FLOATS, "asinh(a0)", ()),
    "Acosh": (9, FLOATS, "acosh(a0)", ()),
    "Atanh": (9, FLOATS, "atanh(a0)", ()),
    "Sigmoid": (1, FLOATS, "a0 >= 0 ? 1 / (1 + exp(-a0)) : exp(a0) / (1 + exp(a0))", ()),
    "Tanh": (1, FLOATS, "tanh(a0)", ()),
    "Softsign": (1, FLOATS, "a0 / (1 + fabs(a0))", ()),
    "Softplus": (1, FLOATS, "fmax(a0, 0.0f) + log1p(exp(-fabs(a0)))", ()),
    "Relu": (1, FLOATS | SINT, "(a0 < 0) ? 0 : a0", ()),
    "HardSwish": (14, FLOATS, "a0 * fmin(fmax(a0 / 6 + 0.5f, 0.0f), 1.0f)", ()),
    "Mish": (18, FLOATS, "a0 * tanh(fmax(a0, 0.0f) + log1p(exp(-fabs(a0))))", ()),
    "HardSigmoid": (
        6,
        FLOATS,
        "fmax(0.0f, fmin(1.0f, p0 * a0 + p1))",
        (("alpha", 0.2), ("beta", 0.5)),
    ),
    "LeakyRelu": (6, FLOATS, "a0 < 0 ? p0 * a0 : a0", (("alpha", 0.01),)),
    "Elu": (6, FLOATS, "a0 < 0 ? p0 * (exp(a0) - 1) : a0", (("alpha", 1.0),)),
    "Selu": (
        6,
        FLOATS,
        "a0 > 0 ? p1 * a0 : p1 * (p0 * exp(a0) - p0)",
        (("alpha", 1.67326319217681884765625), ("gamma", 1.05070102214813232421875)),
    ),
    "Celu": (12, FLOATS, "fmax(0.0f, a0) + fmin(0.0f, p0 * (exp(a0 / p0) - 1))", (("alpha", 1.0),)),
    "ThresholdedRelu": (10, FLOATS, "a0 > p0 ? a0 : 0", (("alpha", 1.0),)),
    "Shrink": (
        9,
        FLOATS,
        "a0 < -p1 ? a0 + p0 : (a0 > p1 ? a0 - p0 : 0)",
        (("bias", 0.0), ("lambd", 0.5)),
    ),
    "Swish": (24, FLOATS, "a0 / (1 + exp(-p0 * a0))", (("alpha", 1.0),)),
    "Not": (1, {BOOL}, "!a0", ()),
    "BitwiseNot": (18, INTS, "~a0", ()),
}
INT_ABS = "(a0 < 0) ? -a0 : a0"


def _unary_builder(op, expr, attrs):
    names = [a for a, _ in attrs]

    def build(info):
        params = [float(info.attr(a, d)) for a, d in attrs]
        dt = info.input_dtype(0)
        e = INT_ABS if op == "Abs" and dt is not None and dt.kind in "iu" else expr
        if op == "Abs" and dt is not None and dt.kind == "u":
            e = "a0"
        ew = Elementwise(device_of(info), op, e, 1, _same, len(params))

        def run(x):
            return ew(x, params=params)

        return run

    build.__name__ = build.__qualname__ = f"build_{op}"
    return build, names


for _op, (_since, _types, _expr, _attrs) in UNARY.items():
    _build, _names = _unary_builder(_op, _expr, _attrs)
    builder(_op, since=_since, dtypes=_types, attributes=_names, check=_CHECK)(_build)


@builder("Gelu", since=20, dtypes=FLOATS, attributes=["approximate"], check=_CHECK)
def gelu(info):
    if info.attr("approximate", "none") == "tanh":
        expr = "0.5f * a0 * (1 + tanh(0.7978845608028654f * (a0 + 0.044715f * a0 * a0 * a0)))"
    else:
        expr = "0.5f * a0 * (1 + erf(a0 * 0.7071067811865476f))"
    ew = Elementwise(device_of(info), "Gelu", expr, 1, _same)
    return lambda x: ew(x)


def _isinf_build(info):
    neg, pos = int(info.attr("detect_negative", 1)), int(info.attr("detect_positive", 1))
    expr = f"isinf(a0) && ((a0 < 0 && {neg}) || (a0 > 0 && {pos}))"
    ew = Elementwise(device_of(info), "IsInf", expr, 1, _bool)
    return lambda x: ew(x)


builder(
    "IsInf",
    since=10,
    dtypes=FLOATS,
    attributes=["detect_negative", "detect_positive"],
    check=_CHECK,
)(_isinf_build)


@builder("IsNaN", since=9, dtypes=FLOATS, attributes=[], check=_CHECK)
def isnan(info):
    ew = Elementwise(device_of(info), "IsNaN", "isnan(a0)", 1, _bool)
    return lambda x: ew(x)


# -- binary ops ---------------------------------------------------------------------------------
_INT_FMOD = "(a1 == 0 || a1 == -1) ? 0 : a0 % a1"  # C's % truncates, as fmod; x % -1 is 0


def _int_mod(dts):
    if dts[0].kind == "u":
        return "a1 == 0 ? 0 : a0 % a1"
    return "(a1 == 0 || a1 == -1) ? 0 : ((a0 % a1 != 0 && ((a0 % a1 < 0) != (a1 < 0))) ? a0 % a1 + a1 : a0 % a1)"


# integer division truncates toward zero (as ONNX says); /0 and MIN/-1 give 0 instead of trapping
def _div(dts):
    if dts[0].kind == "f":
        return "a0 / a1"
    if dts[0].kind == "u":
        return "a1 == 0 ? 0 : a0 / a1"
    return "a1 == 0 ? 0 : (a1 == -1 ? -a0 : a0 / a1)"


BINARY = {  # op: (since, input types, C expression, output type)
    "Add": (1, NUMERIC, "a0 + a1", _same),
    "Sub": (1, NUMERIC, "a0 - a1", _same),
    "Mul": (1, NUMERIC, "a0 * a1", _same),
    "Div": (1, NUMERIC, _div, _same),
    "BitwiseAnd": (18, INTS, "a0 & a1", _same),
    "BitwiseOr": (18, INTS, "a0 | a1", _same),
    "BitwiseXor": (18, INTS, "a0 ^ a1", _same),
    "And": (1, {BOOL}, "a0 && a1", _bool),
    "Or": (1, {BOOL}, "a0 || a1", _bool),
    "Xor": (1, {BOOL}, "(a0 != 0) != (a1 != 0)", _bool),
    "Equal": (1, NUMERIC | {BOOL}, "a0 == a1", _bool),
    "Less": (1, NUMERIC, "a0 < a1", _bool),
    "LessOrEqual": (12, NUMERIC, "a0 <= a1", _bool),
    "Greater": (1, NUMERIC, "a0 > a1", _bool),
    "GreaterOrEqual": (12, NUMERIC, "a0 >= a1", _bool),
}


def _binary_builder(op, expr, out):
    def build(info):
        ew = Elementwise(device_of(info), op, expr, 2, out)

        def run(a, b):
            return ew(a, b)

        return run

    build.__name__ = build.__qualname__ = f"build_{op}"
    return build


for _op, (_since, _types, _expr, _out) in BINARY.items():
    builder(_op, since=_since, dtypes={0: _types, 1: _types}, attributes=[], check=_CHECK)(
        _binary_builder(_op, _expr, _out)
    )


def _pow_check(info):
    dt = info.input_dtype(1)
    if dt is not None and dt not in FLOATS | INTS:
        return f"exponent type {dt} not supported"
    return None


@builder("Pow", since=1, dtypes={0: FLOATS}, attributes=[], check=checks(rank_check(), _pow_check))
def pow_(info):
    ew = Elementwise(device_of(info), "Pow", "pow(a0, (float)a1)", 2, _same)
    return lambda a, b: ew(a, b)


def _mod_check(info):
    dt = info.input_dtype(0)
    if dt is not None and dt.kind == "f" and not info.attr("fmod", 0):
        return "fmod=0 is defined for integer inputs only"
    return None


@builder(
    "Mod", since=10, dtypes=NUMERIC, attributes=["fmod"], check=checks(rank_check(), _mod_check)
)
def mod(info):
    dt = info.input_dtype(0)
    fmod = int(info.attr("fmod", 0))
    if dt is not None and dt.kind == "f":
        expr = "fmod(a0, a1)"
    elif fmod:
        expr = "a1 == 0 ? 0 : a0 % a1" if dt is not None and dt.kind == "u" else _INT_FMOD
    else:
        expr = _int_mod
    ew = Elementwise(device_of(info), "Mod", expr, 2, _same)
    return lambda a, b: ew(a, b)


def _direction_check(info):
    d = info.attr("direction")
    return None if d in ("LEFT", "RIGHT") else f"direction must be LEFT or RIGHT, not {d!r}"


@builder(
    "BitShift", since=11, dtypes=UINT, attributes=["direction"], check=checks(_direction_check)
)
def bit_shift(info):
    op = "<<" if info.attr("direction") == "LEFT" else ">>"

    def expr(dts):
        bits = dts[0].itemsize * 8
        return f"(a1 >= {bits}) ? 0 : (a0 {op} a1)"

    ew = Elementwise(device_of(info), "BitShift", expr, 2, _same)
    return lambda a, b: ew(a, b)


@builder("PRelu", since=(7, 9, 16), dtypes=FLOATS, attributes=[], check=_CHECK)
def prelu(info):
    ew = Elementwise(device_of(info), "PRelu", "a0 < 0 ? a0 * a1 : a0", 2, _same)
    return lambda x, slope: ew(x, slope)


# -- variadic -----------------------------------------------------------------------------------
def _nan_max(dts, n, op):
    cmp = ">" if op == "Max" else "<"
    acc = "a0"
    for i in range(1, n):
        if dts[0].kind == "f":
            acc = f"MX({acc}, a{i})"
        else:
            acc = f"(({acc}) {cmp} a{i} ? ({acc}) : a{i})"
    return acc


def _variadic_builder(op):
    def build(info):
        dev = device_of(info)
        cache: dict[int, Elementwise] = {}

        def get(n):
            ew = cache.get(n)
            if ew is None:
                names = [f"a{i}" for i in range(n)]
                if op == "Sum":
                    expr = " + ".join(names)
                elif op == "Mean":
                    expr = f"({' + '.join(names)}) / {n}.0f"
                else:
                    expr = (lambda n_: lambda dts: _nan_max(dts, n_, op))(n)
                cmp = ">" if op == "Max" else "<"
                pre = f"#define MX(a, b) ((((a) {cmp} (b)) || isnan(a)) ? (a) : (b))\n"
                ew = cache[n] = Elementwise(dev, op, expr, n, _same, preamble=pre)
            return ew

        def run(*xs):
            return get(len(xs))(*xs)

        return run

    build.__name__ = build.__qualname__ = f"build_{op}"
    return build


for _op, _types in (("Sum", NUMERIC), ("Mean", FLOATS), ("Max", NUMERIC), ("Min", NUMERIC)):
    builder(_op, since=(6, 8), dtypes=_types, attributes=[], check=_CHECK)(_variadic_builder(_op))


# -- Clip, Where --------------------------------------------------------------------------------
@builder("Clip", since=6, dtypes=FLOATS, attributes=["min", "max"], check=_CHECK)
def clip_6(info):
    lo = float(info.attr("min", -3.4028234663852886e38))
    hi = float(info.attr("max", 3.4028234663852886e38))
    ew = Elementwise(device_of(info), "Clip", "a0 < p0 ? p0 : (a0 > p1 ? p1 : a0)", 1, _same, 2)
    return lambda x: ew(x, params=[lo, hi])


@builder("Clip", since=(11, 12, 13), dtypes={0: NUMERIC}, attributes=[], check=_CHECK)
def clip(info):
    dev = device_of(info)
    both = Elementwise(dev, "Clip", "(a0 < a1 ? a1 : a0) > a2 ? a2 : (a0 < a1 ? a1 : a0)", 3, _same)
    low = Elementwise(dev, "Clip", "a0 < a1 ? a1 : a0", 2, _same)
    high = Elementwise(dev, "Clip", "a0 > a1 ? a1 : a0", 2, _same)
    copy = Elementwise(dev, "Clip", "a0", 1, _same)

    def run(x, lo=None, hi=None):
        if lo is not None and hi is not None:
            return both(x, lo, hi)
        if lo is not None:
            return low(x, lo)
        if hi is not None:
            return high(x, hi)
        return copy(x)

    return run


@builder("Where", since=(9, 16), dtypes={0: {BOOL}, 1: ANY}, attributes=[], check=rank_check())
def where(info):
    ew = Elementwise(device_of(info), "Where", "a0 ? a1 : a2", 3, lambda dts: dts[1])
    return lambda c, x, y: ew(c, x, y)


# -- Cast ---------------------------------------------------------------------------------------
CASTABLE = ANY


def _cast_target(info):
    to = info.attr("to")
    if to is None:
        return None
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(int(to)))
    except (KeyError, TypeError, ValueError):
        return None


def _cast_check(info):
    dst = _cast_target(info)
    if dst is None or dst not in CTYPE:
        return f"cast to element type {info.attr('to')} is not supported"
    src = info.input_dtype(0)
    if (dst == F16 and src is not None and src.kind != "f") or (src == F16 and dst.kind != "f"):
        return "float16 converts to and from float types only"
    return None


def _convert(src: np.dtype, dst: np.dtype) -> str:
    if dst == BOOL:
        return "a0 != 0"
    if src.kind == "f" and dst.kind in "iu":
        return f"({CTYPE[dst]})a0"
    if src == F64 or dst == F64:
        return f"({CTYPE[dst] if dst != F16 else 'float'})a0"
    return "a0"


@builder(
    "Cast",
    since=(6, 9, 13, 19, 21, 23, 24),
    dtypes=CASTABLE,
    attributes=["to", "saturate", "round_mode"],
    check=_cast_check,
)
def cast(info):
    dst = _cast_target(info)
    ew = Elementwise(device_of(info), "Cast", lambda dts: _convert(dts[0], dst), 1, lambda dts: dst)
    return lambda x: ew(x)


def _cast_like_check(info):
    src, dst = info.input_dtype(0), info.input_dtype(1)
    if (
        src is not None
        and dst is not None
        and F16 in (src, dst)
        and (src.kind != "f" or dst.kind != "f")
    ):
        return "float16 converts to and from float types only"
    return None


@builder(
    "CastLike",
    since=(15, 19, 21, 23, 24),
    dtypes={0: CASTABLE, 1: CASTABLE},
    attributes=["saturate", "round_mode"],
    check=_cast_like_check,
)
def cast_like(info):
    dev = device_of(info)
    cache: dict[np.dtype, Elementwise] = {}

    def run(x, like):
        dst = np.dtype(like.dtype)
        ew = cache.get(dst)
        if ew is None:
            ew = cache[dst] = Elementwise(
                dev, "CastLike", lambda dts: _convert(dts[0], dst), 1, lambda dts: dst
            )
        return ew(x)

    return run
