"""Chains of elementwise ops fused into one generated CUDA kernel.

The provider's ``get_capability`` asks :func:`find_chains` for groups of claimed elementwise
nodes and claims each as one fused subgraph; ``compile`` hands that subgraph to
:func:`compile_chain`, which generates one CUDA C kernel for it (:func:`generate`) and launches it
over the output elements. The kernel reads each input once per element through per-input strides
(0 on broadcast dimensions, so numpy broadcasting is computed at run time from the actual shapes
and strides of the inputs), computes every intermediate value in registers and writes only the
values that leave the group: one pass over memory instead of one per op.

Semantics are ONNX's per element type, as onnxruntime computes them: float16 and bfloat16 values
are computed in float32 (rounded only where they are stored or explicitly cast), float64 in
double, integers in their own type (wrapping), integer Div truncates, Max/Min/Clip/Relu
propagate NaN, Round rounds half to even, Mod follows ``fmod``.

On a stand-in device (``device.native`` is False, the tests of machines without a GPU) the same
chain runs op by op with the device's array-API namespace (:class:`Interpreter`), which is also
the native path's fallback for shapes the kernel does not take (rank above 8 after merging
dimensions, or a written value smaller than the group's broadcast shape).
"""

from __future__ import annotations

import hashlib
import math
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto, helper

from ort_core.errors import EPFail, InvalidArgument
from ort_core.ir import Graph, Node, tensor_dtype, tensor_shape
from ort_core.partitioner import is_convex

__all__ = [
    "ELEMENTWISE",
    "MAX_RANK",
    "FusionError",
    "Interpreter",
    "compile_chain",
    "find_chains",
    "generate",
]

#: Highest rank the generated kernel indexes (after merging dimensions); larger runs op by op.
MAX_RANK = 8
#: Most array inputs (constants with more than one element included) and outputs of one kernel.
MAX_INPUTS = 32
MAX_OUTPUTS = 16
#: Threads per block, and the most blocks a launch uses (the loop strides over the rest).
BLOCK = 256
MAX_BLOCKS = 8192

try:
    import ml_dtypes

    _BF16: np.dtype | None = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes comes with onnx
    _BF16 = None


class FusionError(ValueError):
    """A chain the generator cannot express (unsupported op, element type or attribute)."""


# -- element types ---------------------------------------------------------------------------
#: element type name -> (kind, compute C type, storage C type). Kinds: f float, i signed
#: integer, u unsigned integer, b bool.
_TYPES = {
    "bool": ("b", "bool", "bool"),
    "int8": ("i", "signed char", "signed char"),
    "int16": ("i", "short", "short"),
    "int32": ("i", "int", "int"),
    "int64": ("i", "long long", "long long"),
    "uint8": ("u", "unsigned char", "unsigned char"),
    "uint16": ("u", "unsigned short", "unsigned short"),
    "uint32": ("u", "unsigned int", "unsigned int"),
    "uint64": ("u", "unsigned long long", "unsigned long long"),
    "float16": ("f", "float", "__half"),
    "bfloat16": ("f", "float", "__nv_bfloat16"),
    "float32": ("f", "float", "float"),
    "float64": ("f", "double", "double"),
}
_HALF = ("float16", "bfloat16")


def _dt(dt: Any) -> np.dtype:
    if isinstance(dt, str) and dt == "bfloat16" and _BF16 is not None:
        return _BF16
    return np.dtype(dt)


_BY_DTYPE = {
    (_BF16 if name == "bfloat16" else np.dtype(name)): t
    for name, t in _TYPES.items()
    if name != "bfloat16" or _BF16 is not None
}


def _kind(dt: np.dtype) -> str:
    t = _BY_DTYPE.get(dt)
    return t[0] if t else "?"


def _ctype(dt: np.dtype) -> str:
    return _BY_DTYPE[dt][1]


def _stype(dt: np.dtype) -> str:
    return _BY_DTYPE[dt][2]


def _compute_dtype(dt: np.dtype) -> np.dtype:
    """The numpy dtype values of ``dt`` are computed in (float32 for the half types)."""
    return np.dtype(np.float32) if dt.name in _HALF else dt


def _bits(dt: np.dtype) -> int:
    return 8 * dt.itemsize


# -- literals --------------------------------------------------------------------------------
def _float_literal(v: float, ctype: str) -> str:
    """``v`` as an exact C literal of ``ctype`` (float or double): hex floats, NaN and inf as
    bit patterns."""
    single = ctype == "float"
    v = float(np.float32(v)) if single else float(v)
    if math.isnan(v):
        return "ORT_NAN_F" if single else "ORT_NAN_D"
    if math.isinf(v):
        inf = "ORT_INF_F" if single else "ORT_INF_D"
        return f"(-{inf})" if v < 0 else inf
    text = float.hex(v) + ("f" if single else "")
    return f"({text})" if text.startswith("-") else text


def _int_literal(v: int, dt: np.dtype) -> str:
    ct = _ctype(dt)
    if _kind(dt) == "u":
        return f"(({ct}){int(v)}ULL)"
    v = int(v)
    if v == -(2**63):
        return f"(({ct})(-9223372036854775807LL - 1))"
    return f"(({ct})({v}LL))"


def _literal(value: Any, dt: np.dtype) -> str:
    """A constant of element type ``dt`` as a C literal of its compute type."""
    k = _kind(dt)
    if k == "b":
        return "true" if bool(value) else "false"
    if k == "f":
        return _float_literal(float(np.asarray(value).astype(np.float64)), _ctype(dt))
    return _int_literal(int(value), dt)


# -- the ops ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Op:
    """One elementwise op: the element kinds its typed inputs take, how many inputs, which of
    them must have input 0's type (None: all), how its output type follows, its CUDA C
    expression and its array-API evaluation, and a check of attributes and types."""

    kinds: str
    arity: tuple[int, int]
    c: Callable[..., str]
    x: Callable[..., Any]
    out: str = "same"  # same | bool | cast | where
    same: tuple[int, ...] | None = None
    check: Callable[..., str | None] | None = None


class _Ctx:
    """What an op's expression builder knows: the node, the element types of its inputs and
    output, and literal/function helpers in input 0's compute type."""

    def __init__(
        self, node: Node, ins: list[np.dtype | None], out: np.dtype, opset: int = 21
    ) -> None:
        self.node = node
        self.opset = opset
        self.ins = ins
        self.out = out
        first = ins[0] if ins and ins[0] is not None else out
        self.dt = first
        self.it = _ctype(first)  # compute type of input 0
        self.ct = _ctype(out)  # compute type of the result
        self.kind = _kind(first)

    def f(self, v: float) -> str:
        """A float literal in input 0's compute type."""
        return _float_literal(v, self.it)

    def fn(self, name: str) -> str:
        """A math function of input 0's compute type (``expf`` for float, ``exp`` for double)."""
        return name + ("f" if self.it == "float" else "")

    def attr(self, name: str, default: Any) -> Any:
        return self.node.attr(name, default)

    def int_result(self, expr: str) -> str:
        """An integer expression converted back to the result type (C promotes small types)."""
        return f"(({self.ct})({expr}))"


# C expressions. ``a`` are the argument expressions, in their values' compute types.
def _c_unary(name: str) -> Callable[[_Ctx, list[str]], str]:
    return lambda c, a: f"{c.fn(name)}({a[0]})"


_MATH = {
    "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Floor": "floor", "Ceil": "ceil",
    "Round": "rint", "Sin": "sin", "Cos": "cos", "Tan": "tan", "Asin": "asin", "Acos": "acos",
    "Atan": "atan", "Sinh": "sinh", "Cosh": "cosh", "Asinh": "asinh", "Acosh": "acosh",
    "Atanh": "atanh", "Erf": "erf", "Tanh": "tanh",
}  # fmt: skip
_XMATH = {"Round": "round"}  # array-API names that differ from the C ones

_SELU_ALPHA = 1.67326319217681884765625
_SELU_GAMMA = 1.05070102214813232421875


def _c_abs(c: _Ctx, a: list[str]) -> str:
    if c.kind == "f":
        return f"{c.fn('fabs')}({a[0]})"
    if c.kind == "u":
        return a[0]
    return c.int_result(f"({a[0]}) < 0 ? -({a[0]}) : ({a[0]})")


def _c_neg(c: _Ctx, a: list[str]) -> str:
    return f"(-({a[0]}))" if c.kind == "f" else c.int_result(f"-({a[0]})")


def _c_sign(c: _Ctx, a: list[str]) -> str:
    x, t = a[0], c.ct
    if c.kind == "u":
        return f"(({x}) > 0 ? ({t})1 : ({t})0)"
    if c.kind == "f":
        return f"(({x}) > 0 ? {c.f(1)} : (({x}) < 0 ? {c.f(-1)} : ({x})))"
    return f"(({x}) > 0 ? ({t})1 : (({x}) < 0 ? ({t})(-1) : ({t})0))"


def _c_relu(c: _Ctx, a: list[str]) -> str:
    if c.kind == "u":
        return a[0]
    zero = c.f(0) if c.kind == "f" else f"(({c.ct})0)"
    return f"(({a[0]}) < 0 ? {zero} : ({a[0]}))"  # NaN stays NaN


def _c_gelu(c: _Ctx, x: str, approximate: str) -> str:
    if approximate == "tanh":
        return f"ort_gelu_tanh({x})"
    return f"({c.f(0.5)} * ({x}) * ({c.f(1)} + {c.fn('erf')}(({x}) * {c.f(math.sqrt(0.5))})))"


def _c_binary(sym: str) -> Callable[[_Ctx, list[str]], str]:
    def build(c: _Ctx, a: list[str]) -> str:
        expr = f"({a[0]}) {sym} ({a[1]})"
        return f"({expr})" if c.kind == "f" else c.int_result(expr)

    return build


def _c_compare(sym: str) -> Callable[[_Ctx, list[str]], str]:
    return lambda c, a: f"(({a[0]}) {sym} ({a[1]}))"


def _c_pow(c: _Ctx, a: list[str]) -> str:
    base, exp = a
    exp_dt = c.ins[1]
    if c.kind == "f":
        if exp_dt is not None and exp == _literal(2, exp_dt):
            return f"(({base}) * ({base}))"  # exact: one rounding, as pow's
        return f"{c.fn('pow')}({base}, ({c.it})({exp}))"
    # integers: through double and truncated back, as onnxruntime computes them
    return c.int_result(f"pow((double)({base}), (double)({exp}))")


def _c_variadic(fn: str) -> Callable[[_Ctx, list[str]], str]:
    def build(c: _Ctx, a: list[str]) -> str:
        expr = a[0]
        for b in a[1:]:
            expr = f"{fn}<{c.ct}>({expr}, {b})"
        return expr

    return build


def _c_sum(c: _Ctx, a: list[str]) -> str:
    expr = " + ".join(f"({x})" for x in a)
    return f"({expr})" if c.kind == "f" else c.int_result(expr)


def _c_mean(c: _Ctx, a: list[str]) -> str:
    expr = " + ".join(f"({x})" for x in a)
    return f"(({expr}) / {c.f(len(a))})"


def _c_clip(c: _Ctx, a: list[str]) -> str:
    x = a[0]
    lo, hi = _clip_bounds(c, a, c.f)
    if lo is not None:
        x = f"ort_clip_lo<{c.ct}>({x}, {lo})"
    if hi is not None:  # after the lower bound: hi wins when lo > hi, as ONNX says
        x = f"ort_clip_hi<{c.ct}>({x}, {hi})"
    return x


def _c_prelu(c: _Ctx, a: list[str]) -> str:
    x, s = a
    prod = f"({x}) * ({s})" if c.kind == "f" else f"({c.ct})(({x}) * ({s}))"
    return f"(({x}) < 0 ? ({prod}) : ({x}))"


def _clip_bounds(c: _Ctx, a: list[Any], const: Callable[[float], Any]) -> tuple[Any, Any]:
    """Clip's bounds: attributes before opset 11 (defaults: the float range), inputs after
    (omitted: no bound)."""
    node = c.node
    if c.opset < 11 and len(node.inputs) == 1:
        return const(node.attr("min", -3.4028234663852886e38)), const(
            node.attr("max", 3.4028234663852886e38)
        )
    lo = a[1] if len(node.inputs) > 1 and node.inputs[1] else None
    hi = a[2] if len(node.inputs) > 2 and node.inputs[2] else None
    return lo, hi


def _c_mod(c: _Ctx, a: list[str]) -> str:
    x, y = a
    if c.kind == "f":
        return f"{c.fn('fmod')}({x}, {y})"
    if c.node.attr("fmod", 0) or c.kind == "u":
        return c.int_result(f"({x}) % ({y})")  # C's remainder: the dividend's sign
    return c.int_result(f"ort_mod_s((long long)({x}), (long long)({y}))")  # the divisor's sign


def _c_bitshift(c: _Ctx, a: list[str]) -> str:
    x, s = a
    sym = "<<" if c.node.attr("direction") == "LEFT" else ">>"
    return f"(({s}) < {_bits(c.dt)} ? ({c.ct})(({x}) {sym} ({s})) : ({c.ct})0)"


def _c_isinf(c: _Ctx, a: list[str]) -> str:
    x = a[0]
    inf = "ORT_INF_F" if c.it == "float" else "ORT_INF_D"
    pos, neg = c.attr("detect_positive", 1), c.attr("detect_negative", 1)
    if pos and neg:
        return f"({c.fn('fabs')}({x}) == {inf})"
    if pos:
        return f"(({x}) == {inf})"
    if neg:
        return f"(({x}) == -{inf})"
    return "false"


def _c_cast(c: _Ctx, a: list[str]) -> str:
    return _c_convert(a[0], c.dt, c.out)


def _c_convert(x: str, src: np.dtype, dst: np.dtype) -> str:
    """``x`` (compute type of ``src``) converted to the compute type of ``dst``, with the
    rounding of ``dst`` (a cast to float16 rounds to half precision although the result is kept
    in float)."""
    if src == dst:
        return x
    sk, dk, dct = _kind(src), _kind(dst), _ctype(dst)
    if dk == "b":
        return f"(({x}) != 0)"
    if dst.name == "float16":
        return f"__half2float(__float2half_rn((float)({x})))"
    if dst.name == "bfloat16":
        return f"__bfloat162float(__float2bfloat16_rn((float)({x})))"
    if dk == "f":
        return x if dct == _ctype(src) else f"(({dct})({x}))"
    if sk == "f":  # float to integer truncates; narrow types go through a wider integer
        if dst.name in ("int8", "int16", "uint8", "uint16"):
            return f"(({dct})(int)({x}))"
        if dst.name == "uint32":
            return f"(({dct})(long long)({x}))"
    return f"(({dct})({x}))"


def _c_where(c: _Ctx, a: list[str]) -> str:
    return f"(({a[0]}) ? ({a[1]}) : ({a[2]}))"


# array-API evaluation. ``a`` are arrays in their values' compute types; ``k`` is the
# interpreter context (namespace, constants of the input's compute type).
def _x_unary(name: str) -> Callable[..., Any]:
    return lambda k, c, a: getattr(k.xp, name)(a[0])


def _x_sigmoid(k: Any, x: Any) -> Any:
    xp = k.xp
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _x_softplus(k: Any, x: Any) -> Any:
    xp = k.xp
    return xp.maximum(x, k.c(0, x)) + xp.log1p(xp.exp(-xp.abs(x)))


def _x_clamp01(k: Any, x: Any) -> Any:
    xp = k.xp
    x = xp.where(x < 0, k.c(0, x), x)
    return xp.where(x > 1, k.c(1, x), x)


def _x_gelu(k: Any, x: Any, approximate: str) -> Any:
    if approximate == "tanh":
        inner = (x + 0.044715 * x * x * x) * math.sqrt(2 / math.pi)
        return 0.5 * x * (1 + k.xp.tanh(inner))
    return 0.5 * x * (1 + k.erf(x * math.sqrt(0.5)))


def _x_relu(k: Any, c: _Ctx, a: list[Any]) -> Any:
    x = a[0]
    return x if c.kind == "u" else k.xp.where(x < 0, k.c(0, x), x)


def _x_sign(k: Any, c: _Ctx, a: list[Any]) -> Any:
    xp, x = k.xp, a[0]
    r = xp.where(x > 0, k.c(1, x), k.c(0, x))
    if c.kind == "u":
        return r
    r = xp.where(x < 0, k.c(-1, x), r)
    return xp.where(x == 0, x, r) if c.kind == "i" else xp.where((x == 0) | (x != x), x, r)


def _x_div(k: Any, c: _Ctx, a: list[Any]) -> Any:
    xp, x, y = k.xp, a[0], a[1]
    if c.kind == "f":
        return x / y
    q = xp.floor_divide(x, y)  # ONNX (like C) truncates toward zero
    fix = (xp.remainder(x, y) != 0) & ((x < 0) != (y < 0))
    return q + xp.astype(fix, q.dtype)


def _x_pow(k: Any, c: _Ctx, a: list[Any]) -> Any:
    xp, x, y = k.xp, a[0], a[1]
    if c.kind == "f":
        return xp.pow(x, xp.astype(y, x.dtype))
    f64 = k.dtype(np.float64)
    return xp.astype(xp.pow(xp.astype(x, f64), xp.astype(y, f64)), x.dtype)


def _x_variadic(fn: str) -> Callable[..., Any]:
    def run(k: Any, c: _Ctx, a: list[Any]) -> Any:
        r = a[0]
        for b in a[1:]:
            r = getattr(k.xp, fn)(r, b)
        return r

    return run


def _x_sum(k: Any, c: _Ctx, a: list[Any]) -> Any:
    r = a[0]
    for b in a[1:]:
        r = r + b
    return r


def _x_mean(k: Any, c: _Ctx, a: list[Any]) -> Any:
    return _x_sum(k, c, a) / len(a)


def _x_clip(k: Any, c: _Ctx, a: list[Any]) -> Any:
    xp, x = k.xp, a[0]
    lo, hi = _clip_bounds(c, a, lambda v: k.c(v, x))
    if lo is not None:
        x = xp.where(x < lo, lo, x)
    if hi is not None:
        x = xp.where(hi < x, hi, x)
    return x


def _x_prelu(k: Any, c: _Ctx, a: list[Any]) -> Any:
    x, s = a
    return k.xp.where(x < 0, x * s, x)


def _x_mod(k: Any, c: _Ctx, a: list[Any]) -> Any:
    xp, x, y = k.xp, a[0], a[1]
    r = xp.remainder(x, y)  # the divisor's sign (Python's %)
    if c.kind == "f" or c.node.attr("fmod", 0):  # C's fmod: the dividend's sign
        r = xp.where((r != 0) & ((r < 0) != (x < 0)), r - y, r)
    return r


def _x_bitshift(k: Any, c: _Ctx, a: list[Any]) -> Any:
    xp, x, s = k.xp, a[0], a[1]
    ok = s < _bits(c.dt)
    s = xp.where(ok, s, k.c(0, s))
    left = c.node.attr("direction") == "LEFT"
    r = xp.bitwise_left_shift(x, s) if left else xp.bitwise_right_shift(x, s)
    return xp.where(ok, r, k.c(0, x))


def _x_isinf(k: Any, c: _Ctx, a: list[Any]) -> Any:
    xp, x = k.xp, a[0]
    pos, neg = c.attr("detect_positive", 1), c.attr("detect_negative", 1)
    inf = xp.isinf(x)
    if pos and neg:
        return inf
    if pos:
        return inf & (x > 0)
    if neg:
        return inf & (x < 0)
    return xp.zeros(x.shape, dtype=xp.bool)


def _x_cast(k: Any, c: _Ctx, a: list[Any]) -> Any:
    return k.convert(a[0], c.dt, c.out)


# checks of attributes and types (None: fine)
def _check_gelu(node: Node, opset: int, ins: list[np.dtype | None]) -> str | None:
    if node.domain == "" and opset < 20:
        return "Gelu is an ai.onnx op from opset 20"
    if node.attr("approximate", "none") not in ("none", "tanh"):
        return f"Gelu approximate={node.attr('approximate')!r} is not none or tanh"
    return None


def _check_mod(node: Node, opset: int, ins: list[np.dtype | None]) -> str | None:
    if ins[0] is not None and _kind(ins[0]) == "f" and not node.attr("fmod", 0):
        return "Mod of floats needs fmod=1"
    return None


def _check_bitshift(node: Node, opset: int, ins: list[np.dtype | None]) -> str | None:
    if node.attr("direction") not in ("LEFT", "RIGHT"):
        return f"BitShift direction={node.attr('direction')!r} is not LEFT or RIGHT"
    return None


def _check_legacy_broadcast(node: Node, opset: int, ins: list[np.dtype | None]) -> str | None:
    if node.attr("broadcast", 0):
        return "the opset<7 broadcast attribute aligns at an axis, not numpy-style"
    return None


def _check_prelu(node: Node, opset: int, ins: list[np.dtype | None]) -> str | None:
    if node.domain == "" and opset < 7:
        return "PRelu before opset 7 applies its slope per channel"
    return None


def _check_cast(node: Node, opset: int, ins: list[np.dtype | None]) -> str | None:
    try:
        out = _cast_target(node)
    except (KeyError, ValueError, TypeError):
        return f"Cast to={node.attr('to')!r} is not an ONNX element type"
    if _kind(out) == "?":
        return f"Cast to {out} is not a type the fused kernel computes"
    return None


def _cast_target(node: Node) -> np.dtype:
    to = node.attr("to")
    if isinstance(to, str):  # Cast-1 names the type
        to = TensorProto.DataType.Value(to.upper())
    if to == TensorProto.BFLOAT16:
        if _BF16 is None:
            raise ValueError("bfloat16 needs ml_dtypes")
        return _BF16
    return np.dtype(helper.tensor_dtype_to_np_dtype(int(to)))


F, NUM, SNUM, B, ALL = "f", "fiu", "fi", "b", "fiub"
_ONE = (1, 1)
_TWO = (2, 2)

_OPS: dict[tuple[str, str], _Op] = {}


def _unary_f(op: str, c: Callable, x: Callable, domain: str = "", **kw: Any) -> None:
    _OPS[(domain, op)] = _Op(F, _ONE, c, x, **kw)


for _name, _fn in _MATH.items():
    _unary_f(_name, _c_unary(_fn), _x_unary(_XMATH.get(_name, _fn)))
_OPS[("", "Erf")] = _Op(F, _ONE, _c_unary("erf"), lambda k, c, a: k.erf(a[0]))
_unary_f("Reciprocal", lambda c, a: f"({c.f(1)} / ({a[0]}))", lambda k, c, a: 1 / a[0])
_unary_f(
    "LeakyRelu",
    lambda c, a: f"(({a[0]}) >= 0 ? ({a[0]}) : {c.f(c.attr('alpha', 0.01))} * ({a[0]}))",
    lambda k, c, a: k.xp.where(a[0] >= 0, a[0], a[0] * c.attr("alpha", 0.01)),
)
_unary_f(
    "Elu",
    lambda c, a: (
        f"(({a[0]}) >= 0 ? ({a[0]}) : {c.f(c.attr('alpha', 1.0))} * {c.fn('expm1')}({a[0]}))"
    ),
    lambda k, c, a: k.xp.where(a[0] >= 0, a[0], c.attr("alpha", 1.0) * k.xp.expm1(a[0])),
)
_unary_f(
    "Selu",
    lambda c, a: (
        f"{c.f(c.attr('gamma', _SELU_GAMMA))} * (({a[0]}) > 0 ? ({a[0]}) : "
        f"{c.f(c.attr('alpha', _SELU_ALPHA))} * {c.fn('expm1')}({a[0]}))"
    ),
    lambda k, c, a: (
        c.attr("gamma", _SELU_GAMMA)
        * k.xp.where(a[0] > 0, a[0], c.attr("alpha", _SELU_ALPHA) * k.xp.expm1(a[0]))
    ),
)
_unary_f(
    "Celu",
    lambda c, a: (
        f"(({a[0]}) > 0 ? ({a[0]}) : {c.f(c.attr('alpha', 1.0))} * "
        f"{c.fn('expm1')}(({a[0]}) / {c.f(c.attr('alpha', 1.0))}))"
    ),
    lambda k, c, a: k.xp.where(
        a[0] > 0, a[0], c.attr("alpha", 1.0) * k.xp.expm1(a[0] / c.attr("alpha", 1.0))
    ),
)
_unary_f("Sigmoid", lambda c, a: f"ort_sigmoid({a[0]})", lambda k, c, a: _x_sigmoid(k, a[0]))
_unary_f(
    "HardSigmoid",
    lambda c, a: (
        f"ort_clamp01<{c.ct}>({c.f(c.attr('alpha', 0.2))} * ({a[0]}) + {c.f(c.attr('beta', 0.5))})"
    ),
    lambda k, c, a: _x_clamp01(k, c.attr("alpha", 0.2) * a[0] + c.attr("beta", 0.5)),
)
_unary_f(
    "HardSwish",
    lambda c, a: f"(({a[0]}) * ort_clamp01<{c.ct}>(({a[0]}) * {c.f(1 / 6)} + {c.f(0.5)}))",
    lambda k, c, a: a[0] * _x_clamp01(k, a[0] * (1 / 6) + 0.5),
)
_unary_f("Softplus", lambda c, a: f"ort_softplus({a[0]})", lambda k, c, a: _x_softplus(k, a[0]))
_unary_f(
    "Softsign",
    lambda c, a: f"(({a[0]}) / ({c.f(1)} + {c.fn('fabs')}({a[0]})))",
    lambda k, c, a: a[0] / (1 + k.xp.abs(a[0])),
)
_unary_f(
    "ThresholdedRelu",
    lambda c, a: f"(({a[0]}) > {c.f(c.attr('alpha', 1.0))} ? ({a[0]}) : {c.f(0)})",
    lambda k, c, a: k.xp.where(a[0] > c.attr("alpha", 1.0), a[0], k.c(0, a[0])),
)
_unary_f(
    "Mish",
    lambda c, a: f"(({a[0]}) * {c.fn('tanh')}(ort_softplus({a[0]})))",
    lambda k, c, a: a[0] * k.xp.tanh(_x_softplus(k, a[0])),
)
_unary_f(
    "Gelu",
    lambda c, a: _c_gelu(c, a[0], c.attr("approximate", "none")),
    lambda k, c, a: _x_gelu(k, a[0], c.attr("approximate", "none")),
    check=_check_gelu,
)
_MS = "com.microsoft"
_unary_f("Gelu", lambda c, a: _c_gelu(c, a[0], "none"), lambda k, c, a: _x_gelu(k, a[0], "none"),
         domain=_MS)  # fmt: skip
_OPS[(_MS, "FastGelu")] = _Op(
    F,
    (1, 2),
    lambda c, a: _c_gelu(c, f"(({a[0]}) + ({a[1]}))" if len(a) > 1 and a[1] else a[0], "tanh"),
    lambda k, c, a: _x_gelu(k, a[0] + a[1] if len(a) > 1 else a[0], "tanh"),
)
_OPS[(_MS, "BiasGelu")] = _Op(
    F,
    _TWO,
    lambda c, a: _c_gelu(c, f"(({a[0]}) + ({a[1]}))", "none"),
    lambda k, c, a: _x_gelu(k, a[0] + a[1], "none"),
)
_unary_f(
    "QuickGelu",
    lambda c, a: f"(({a[0]}) * ort_sigmoid({c.f(c.attr('alpha', 1.702))} * ({a[0]})))",
    lambda k, c, a: a[0] * _x_sigmoid(k, c.attr("alpha", 1.702) * a[0]),
    domain=_MS,
)
_OPS[("", "IsNaN")] = _Op(
    F, _ONE, lambda c, a: f"(({a[0]}) != ({a[0]}))", lambda k, c, a: k.xp.isnan(a[0]), out="bool"
)
_OPS[("", "IsInf")] = _Op(F, _ONE, _c_isinf, _x_isinf, out="bool")
_OPS[("", "Abs")] = _Op(NUM, _ONE, _c_abs, lambda k, c, a: k.xp.abs(a[0]))
_OPS[("", "Neg")] = _Op(SNUM, _ONE, _c_neg, lambda k, c, a: k.xp.negative(a[0]))
_OPS[("", "Sign")] = _Op(NUM, _ONE, _c_sign, _x_sign)
_OPS[("", "Relu")] = _Op(SNUM, _ONE, _c_relu, _x_relu)
_OPS[("", "Not")] = _Op(
    B, _ONE, lambda c, a: f"(!({a[0]}))", lambda k, c, a: k.xp.logical_not(a[0])
)
_OPS[("", "Clip")] = _Op(NUM, (1, 3), _c_clip, _x_clip)
for _op, _sym, _x in (
    ("Add", "+", lambda k, c, a: a[0] + a[1]),
    ("Sub", "-", lambda k, c, a: a[0] - a[1]),
    ("Mul", "*", lambda k, c, a: a[0] * a[1]),
    ("Div", "/", _x_div),
):
    _OPS[("", _op)] = _Op(NUM, _TWO, _c_binary(_sym), _x, check=_check_legacy_broadcast)
for _op, _sym, _kinds, _xname in (
    ("Equal", "==", ALL, "equal"),
    ("Less", "<", NUM, "less"),
    ("LessOrEqual", "<=", NUM, "less_equal"),
    ("Greater", ">", NUM, "greater"),
    ("GreaterOrEqual", ">=", NUM, "greater_equal"),
    ("And", "&&", B, "logical_and"),
    ("Or", "||", B, "logical_or"),
    ("Xor", "!=", B, "logical_xor"),
):
    _OPS[("", _op)] = _Op(
        _kinds,
        _TWO,
        _c_compare(_sym),
        (lambda name: lambda k, c, a: getattr(k.xp, name)(a[0], a[1]))(_xname),
        out="bool",
        check=_check_legacy_broadcast,
    )
_OPS[("", "Pow")] = _Op(NUM, _TWO, _c_pow, _x_pow, same=(0,), check=_check_legacy_broadcast)
_OPS[("", "Max")] = _Op(NUM, (1, 64), _c_variadic("ort_max"), _x_variadic("maximum"))
_OPS[("", "Min")] = _Op(NUM, (1, 64), _c_variadic("ort_min"), _x_variadic("minimum"))
_OPS[("", "Sum")] = _Op(F, (1, 64), _c_sum, _x_sum)
_OPS[("", "Mean")] = _Op(F, (1, 64), _c_mean, _x_mean)
_OPS[("", "PRelu")] = _Op(SNUM, _TWO, _c_prelu, _x_prelu, check=_check_prelu)
_OPS[("", "Mod")] = _Op(NUM, _TWO, _c_mod, _x_mod, check=_check_mod)
_OPS[("", "BitShift")] = _Op("u", _TWO, _c_bitshift, _x_bitshift, check=_check_bitshift)
_OPS[("", "Where")] = _Op(ALL, (3, 3), _c_where, lambda k, c, a: k.xp.where(a[0], a[1], a[2]),
                          out="where")  # fmt: skip
_OPS[("", "Cast")] = _Op(ALL, _ONE, _c_cast, _x_cast, out="cast", check=_check_cast)

#: (domain, op_type) -> the element kinds the fused kernel computes it for: ``f`` float16,
#: bfloat16, float32, float64; ``i`` signed and ``u`` unsigned integers; ``b`` bool. Where takes
#: a bool condition, Pow any numeric exponent, Cast converts between all of these.
ELEMENTWISE: dict[tuple[str, str], str] = {key: op.kinds for key, op in _OPS.items()}


def _out_dtype(node: Node, op: _Op, ins: list[np.dtype | None]) -> np.dtype | None:
    if op.out == "bool":
        return np.dtype(np.bool_)
    if op.out == "cast":
        return _cast_target(node)
    if op.out == "where":
        return ins[1]
    return ins[0]


def _type_check(node: Node, opset: int, ins: list[np.dtype | None]) -> tuple[str | None, Any]:
    """Why ``node`` cannot be fused with these input element types (None: it can), and its
    output element type."""
    op = _OPS.get((node.domain, node.op_type))
    if op is None:
        return f"{node.op_type} is not an elementwise op the fused kernel computes", None
    if node.subgraphs:
        return "the node has a subgraph", None
    lo, hi = op.arity
    if not lo <= len(node.inputs) <= hi:
        return f"{node.op_type} with {len(node.inputs)} inputs", None
    if not node.inputs[0] or any(not i for i in node.inputs[1:]) and node.op_type != "Clip":
        return "an omitted input", None
    if len([o for o in node.outputs if o]) != 1 or not node.outputs[0]:
        return "the node does not have exactly one output", None
    if any(t is not None and _kind(t) == "?" for t in ins):
        return "an element type the fused kernel does not compute", None
    present = [t for i, t in enumerate(ins) if node.inputs[i]]
    if any(t is None for t in present):
        return "an input's element type is unknown", None
    if op.check is not None:
        reason = op.check(node, opset, ins)
        if reason:
            return reason, None
    if node.op_type == "Where":
        if _kind(ins[0]) != "b" or ins[1] != ins[2]:
            return "Where needs a bool condition and two values of one type", None
        return None, ins[1]
    if node.op_type == "Cast":
        return None, _cast_target(node)
    first = ins[0]
    if _kind(first) not in op.kinds:
        return f"{node.op_type} of {first} is not computed by the fused kernel", None
    same = range(len(ins)) if op.same is None else op.same
    for i in same:
        if node.inputs[i] and ins[i] != first:
            return f"{node.op_type} with inputs of different element types", None
    if node.op_type == "Pow" and _kind(ins[1]) not in NUM:
        return "Pow with a non-numeric exponent", None
    return None, _out_dtype(node, op, ins)


# -- chain detection -------------------------------------------------------------------------
def find_chains(view: Any, accepts: Callable[[Node], bool]) -> list[list[Node]]:
    """Maximal connected groups of at least two accepted elementwise nodes of ``view`` that one
    generated kernel can run, each in topological order; the groups in the order of their first
    node.

    A value produced and read inside a group (an intermediate) must be read only inside it and
    must not be a graph output; values read outside the group (or graph outputs) leave it and
    are written by the kernel. Every value that leaves a group must have the group's broadcast
    shape where static shapes say so (unknown shapes fuse: the kernel broadcasts at run time,
    and runs op by op where a written value turns out smaller). Groups are convex (no path
    leaves one and comes back), have at most :data:`MAX_INPUTS` array inputs and
    :data:`MAX_OUTPUTS` outputs, and never include a node with a subgraph.
    """
    graph: Graph = view.graph
    order = {id(n): i for i, n in enumerate(graph.nodes)}
    consumers = graph.consumers()
    graph_outputs = set(graph.outputs)
    dtypes: dict[str, np.dtype] = {}

    def dtype_of(name: str) -> np.dtype | None:
        if name in dtypes:
            return dtypes[name]
        c = view.constant(name)
        if c is not None:
            return c.dtype
        return tensor_dtype(view.type_of(name))

    shapes: dict[str, tuple | None] = {}

    def shape_of(name: str) -> tuple | None:
        if name not in shapes:
            c = view.constant(name)
            shapes[name] = tuple(c.shape) if c is not None else tensor_shape(view.type_of(name))
        return shapes[name]

    cand: dict[int, Node] = {}
    for n in view.nodes:
        if not accepts(n):
            continue
        ins = [dtype_of(i) if i else None for i in n.inputs]
        reason, out = _type_check(n, view.opset(n.domain), ins)
        if reason is not None or out is None:
            continue
        declared = tensor_dtype(view.type_of(n.outputs[0]))
        if declared is not None and declared != out:
            continue
        names = [i for i in n.inputs if i] + [n.outputs[0]]
        if any((s := shape_of(x)) is not None and len(s) > MAX_RANK for x in names):
            continue
        dtypes[n.outputs[0]] = out
        cand[id(n)] = n

    # union-find over candidates; groups merge over one value at a time, all-or-nothing
    group: dict[int, int] = {k: k for k in cand}
    members: dict[int, list[Node]] = {k: [n] for k, n in cand.items()}

    def root(k: int) -> int:
        while group[k] != k:
            group[k] = group[group[k]]
            k = group[k]
        return k

    # values in reverse topological order (a consumer's group grows before its producer joins
    # it), repeated until nothing merges: a merge refused now may be valid once others happened
    values = []
    for n in reversed(graph.nodes):
        v = n.outputs[0] if id(n) in cand else ""
        users = consumers.get(v, []) if v else []
        if users and v not in graph_outputs and all(id(u) in cand for u in users):
            values.append((n, users))
    merged = True
    while merged:
        merged = False
        for n, users in values:
            roots = {root(id(n))} | {root(id(u)) for u in users}
            if len(roots) == 1:
                continue
            ordered = sorted(roots)
            nodes = [m for r in ordered for m in members[r]]
            if not _valid_group(nodes, order, consumers, graph_outputs, view, shape_of):
                continue
            first, *rest = ordered
            for r in rest:
                group[r] = first
                members[first].extend(members.pop(r))
            merged = True

    chains = []
    for nodes in members.values():
        if len(nodes) >= 2:
            chains.append(sorted(nodes, key=lambda m: order[id(m)]))
    chains.sort(key=lambda ch: order[id(ch[0])])
    return chains


def _valid_group(
    nodes: list[Node],
    order: dict[int, int],
    consumers: dict[str, list[Node]],
    graph_outputs: set[str],
    view: Any,
    shape_of: Callable[[str], tuple | None],
) -> bool:
    inside = {id(n) for n in nodes}
    produced = [n.outputs[0] for n in nodes]
    leaving: list[str] = []
    for v in produced:
        users = consumers.get(v, [])
        inner = [u for u in users if id(u) in inside]
        if inner and (len(inner) != len(users) or v in graph_outputs):
            return False  # an intermediate read outside the group, or a graph output
        if not inner and (users or v in graph_outputs):
            leaving.append(v)
    externals: dict[str, None] = {}
    inside_values = set(produced)
    for n in nodes:
        for i in n.inputs:
            if i and i not in inside_values:
                externals.setdefault(i, None)
    arrays = 0
    for name in externals:
        c = view.constant(name)
        if c is None or c.size != 1:
            arrays += 1
    if arrays > MAX_INPUTS or len(leaving) > MAX_OUTPUTS:
        return False
    if not _static_shapes_ok([shape_of(x) for x in externals], [shape_of(v) for v in leaving]):
        return False
    return is_convex(view.graph, nodes, consumers, order)


def _static_shapes_ok(inputs: list[tuple | None], outputs: list[tuple | None]) -> bool:
    """Whether every written value has the broadcast shape of all inputs, as far as static
    shapes tell (unknown ranks or dims pass: the run time decides)."""
    if any(s is None for s in inputs):
        return True
    rank = max((len(s) for s in inputs), default=0)
    for out in outputs:
        if out is None:
            continue
        if len(out) != rank:
            return False
        for d in range(rank):
            dims = [s[len(s) - rank + d] for s in inputs if len(s) - rank + d >= 0]
            want = out[d]
            ints = [x for x in dims if isinstance(x, int)]
            if len(ints) == len(dims):
                big = [x for x in ints if x != 1]
                full = big[0] if big else 1
                if any(x != full for x in big):
                    return False  # inputs do not broadcast
                if isinstance(want, int) and want != full:
                    return False
            elif isinstance(want, int) and want > 1 and ints and max(ints) not in (1, want):
                return False
    return True


# -- the plan of one chain -------------------------------------------------------------------
@dataclass
class _Plan:
    """One chain with every value's element type: kernel inputs (subgraph inputs, then the
    constants with more than one element), literals (one-element constants), outputs."""

    nodes: list[Node]
    opsets: dict[str, int]
    inputs: list[str]
    dtypes: dict[str, np.dtype]
    constants: dict[str, np.ndarray]
    literals: dict[str, np.ndarray]
    outputs: list[str]
    deps: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def arrays(self) -> list[str]:
        """The kernel's array inputs, in argument order."""
        return self.inputs + list(self.constants)


def _make_plan(
    graph: Graph, in_dtypes: Mapping[str, Any] | Sequence[Any], opsets: Mapping[str, int] | None
) -> _Plan:
    if not isinstance(in_dtypes, Mapping):
        in_dtypes = dict(zip(graph.inputs, in_dtypes))
    dtypes: dict[str, np.dtype] = {}
    for name in graph.inputs:
        dt = in_dtypes.get(name)
        if dt is None:
            dt = tensor_dtype(graph.type_of(name))
        if dt is None:
            raise FusionError(f"the element type of input '{name}' is unknown")
        dtypes[name] = _dt(dt)
    constants: dict[str, np.ndarray] = {}
    literals: dict[str, np.ndarray] = {}
    for name in sorted(graph.initializers):
        if name in graph.inputs:
            continue
        arr = np.asarray(graph.initializers[name])
        dtypes[name] = arr.dtype
        (literals if arr.size == 1 else constants)[name] = arr
    opsets = dict(opsets or {})
    deps: dict[str, frozenset[str]] = {n: frozenset([n]) for n in dtypes}
    for node in graph.nodes:
        ins = [dtypes.get(i) if i else None for i in node.inputs]
        for i in node.inputs:
            if i and i not in dtypes:
                raise FusionError(f"{node.label()} reads '{i}', which the chain does not define")
        reason, out = _type_check(node, _opset_of(opsets, node), ins)
        if reason is not None:
            raise FusionError(f"{node.label()} cannot be fused: {reason}")
        dtypes[node.outputs[0]] = out
        deps[node.outputs[0]] = frozenset().union(*(deps[i] for i in node.inputs if i))
    for o in graph.outputs:
        if o not in dtypes or o in graph.inputs:
            raise FusionError(f"output '{o}' is not computed by the chain")
    if any(_kind(dtypes[x]) == "?" for x in dtypes):
        raise FusionError("an element type the fused kernel does not compute")
    return _Plan(
        list(graph.nodes),
        opsets,
        list(graph.inputs),
        dtypes,
        constants,
        literals,
        list(graph.outputs),
        deps,
    )


def _opset_of(opsets: Mapping[str, int], node: Node) -> int:
    return int(opsets.get(node.domain, 1 if node.domain else 21))


# -- code generation -------------------------------------------------------------------------
_PREAMBLE = r"""#ifndef ORT_FUSED_PREAMBLE
#define ORT_FUSED_PREAMBLE
#define ORT_INF_F __int_as_float(0x7f800000)
#define ORT_NAN_F __int_as_float(0x7fc00000)
#define ORT_INF_D __longlong_as_double(0x7ff0000000000000LL)
#define ORT_NAN_D __longlong_as_double(0x7ff8000000000000LL)
template <class T> __device__ __forceinline__ T ort_max(T a, T b) {
  return a != a ? a : (b != b ? b : (a < b ? b : a));
}
template <class T> __device__ __forceinline__ T ort_min(T a, T b) {
  return a != a ? a : (b != b ? b : (b < a ? b : a));
}
template <class T> __device__ __forceinline__ T ort_clip_lo(T x, T lo) { return x < lo ? lo : x; }
template <class T> __device__ __forceinline__ T ort_clip_hi(T x, T hi) { return hi < x ? hi : x; }
template <class T> __device__ __forceinline__ T ort_clamp01(T x) {
  return x < T(0) ? T(0) : (T(1) < x ? T(1) : x);
}
__device__ __forceinline__ long long ort_mod_s(long long a, long long b) {
  long long r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
__device__ __forceinline__ float ort_sigmoid(float x) {
  return x >= 0.0f ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}
__device__ __forceinline__ double ort_sigmoid(double x) {
  return x >= 0.0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}
__device__ __forceinline__ float ort_softplus(float x) {
  return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}
__device__ __forceinline__ double ort_softplus(double x) {
  return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
}
__device__ __forceinline__ float ort_gelu_tanh(float x) {
  return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}
__device__ __forceinline__ double ort_gelu_tanh(double x) {
  return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
#endif
"""


def generate(
    graph: Graph,
    dtypes: Mapping[str, Any] | Sequence[Any],
    opsets: Mapping[str, int] | None = None,
) -> tuple[str, str]:
    """The CUDA C source of one ``extern "C" __global__`` kernel computing ``graph`` (a chain
    of elementwise nodes) for these element types of its inputs (a mapping by name, or a
    sequence in ``graph.inputs`` order), and the kernel's name (``ort_fused_`` and a hash of
    the source, so different chains never clash in one module or cache).

    The kernel's arguments: one pointer per array input (``graph.inputs``, then initializers
    with more than one element in name order; one-element initializers are literals), one per
    output (``graph.outputs``), then ``long long n`` (output elements), ``int rank`` (at most
    :data:`MAX_RANK`), ``long long d0..d7`` (output dims, innermost first) and for each array
    input ``long long s<i>_0..s<i>_7`` (its element strides per output dim, 0 where it
    broadcasts). It strides over the ``n`` output elements (grid-stride loop).

    Raises:
        FusionError: an op, attribute or element type the kernel cannot compute.
    """
    return _emit(_make_plan(graph, dtypes, opsets))


def _emit(plan: _Plan) -> tuple[str, str]:
    arrays = plan.arrays
    dts = plan.dtypes
    params = [f"const {_stype(dts[x])}* __restrict__ in{i}" for i, x in enumerate(arrays)]
    params += [f"{_stype(dts[o])}* __restrict__ out{j}" for j, o in enumerate(plan.outputs)]
    params += ["const long long n", "const int rank"]
    params += [f"const long long d{k}" for k in range(MAX_RANK)]
    params += [f"const long long s{i}_{k}" for i in range(len(arrays)) for k in range(MAX_RANK)]

    body: list[str] = []
    offs = [f"p{i}" for i in range(len(arrays))]
    if offs:
        body.append(f"    long long {', '.join(o + ' = 0' for o in offs)};")
        body.append("    if (rank <= 1) {")
        body.extend(f"      {o} = i * s{i}_0;" for i, o in enumerate(offs))
        body.append("    } else {")
        body.append("      long long r = i, c;")
        for k in range(MAX_RANK):
            step = " ".join(f"{o} += c * s{i}_{k};" for i, o in enumerate(offs))
            body.append(f"      if (rank > {k}) {{ c = r % d{k}; r /= d{k}; {step} }}")
        body.append("    }")
    names: dict[str, str] = {}
    for i, x in enumerate(arrays):
        dt = dts[x]
        load = f"in{i}[p{i}]"
        if dt.name == "float16":
            load = f"__half2float({load})"
        elif dt.name == "bfloat16":
            load = f"__bfloat162float({load})"
        names[x] = f"a{i}"
        body.append(f"    const {_ctype(dt)} a{i} = {load};")
    for x, arr in plan.literals.items():
        names[x] = _literal(arr.reshape(-1)[0], dts[x])
    for k, node in enumerate(plan.nodes):
        ins = [dts[i] if i else None for i in node.inputs]
        out = dts[node.outputs[0]]
        ctx = _Ctx(node, ins, out, _opset_of(plan.opsets, node))
        args = [names[i] if i else "" for i in node.inputs]
        expr = _OPS[(node.domain, node.op_type)].c(ctx, args)
        var = f"v{k}"
        body.append(f"    const {_ctype(out)} {var} = {expr};")
        names[node.outputs[0]] = var
    for j, o in enumerate(plan.outputs):
        dt = dts[o]
        v = names[o]
        if dt.name == "float16":
            v = f"__float2half_rn({v})"
        elif dt.name == "bfloat16":
            v = f"__float2bfloat16_rn({v})"
        body.append(f"    out{j}[i] = {v};")

    sig = ",\n    ".join(params)
    kernel = (
        f'extern "C" __global__ void __launch_bounds__({BLOCK}) NAME(\n    {sig})\n{{\n'
        f"  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
        f"       i += (long long)blockDim.x * gridDim.x) {{\n" + "\n".join(body) + "\n  }\n}\n"
    )
    names_used = {dts[x].name for x in dts}
    head = []
    if "float16" in names_used:
        head.append("#include <cuda_fp16.h>")
    if "bfloat16" in names_used:
        head.append("#include <cuda_bf16.h>")
    text = "\n".join(head) + ("\n" if head else "") + _PREAMBLE + kernel
    name = "ort_fused_" + hashlib.sha1(text.encode()).hexdigest()[:16]
    return text.replace(" NAME(\n", f" {name}(\n"), name


# -- the interpreter (stand-in devices, and shapes the kernel does not take) ------------------
class Interpreter:
    """A chain evaluated op by op with an array-API namespace ``xp``, with the kernel's
    semantics (half types computed in float32 and rounded where stored or cast)."""

    def __init__(self, plan: _Plan, xp: Any) -> None:
        from ort_array._xp import dtype as xp_dtype

        self.plan = plan
        self.xp = xp
        self._xp_dtype = xp_dtype
        self.consts = {
            name: xp.asarray(np.ascontiguousarray(arr.astype(_compute_dtype(arr.dtype))))
            for name, arr in (*plan.constants.items(), *plan.literals.items())
        }

    # helpers the op table uses
    def _opset(self, node: Node) -> int:
        return _opset_of(self.plan.opsets, node)

    def dtype(self, np_dt: Any) -> Any:
        return self._xp_dtype(self.xp, np_dt)

    def c(self, value: Any, like: Any) -> Any:
        """A 0-d array of ``value`` in ``like``'s element type."""
        return self.xp.asarray(value, dtype=like.dtype)

    def erf(self, x: Any) -> Any:
        return _erf(self.xp, x)

    def convert(self, x: Any, src: np.dtype, dst: np.dtype) -> Any:
        xp = self.xp
        if src == dst:
            return x
        dk = _kind(dst)
        if dk == "b":
            return x != 0
        if dst.name in _HALF:
            return self.round_half(xp.astype(x, self.dtype(np.float32)), dst)
        if dk == "f":
            return xp.astype(x, self.dtype(dst))
        if _kind(src) == "f" and dst.name in ("int8", "int16", "uint8", "uint16", "uint32"):
            x = xp.astype(x, self.dtype(np.int64))
        return xp.astype(x, self.dtype(dst))

    def round_half(self, x: Any, dst: np.dtype) -> Any:
        """float32 ``x`` rounded to float16/bfloat16 precision (kept in float32). A namespace
        without the type (array_api_strict has neither) rounds through numpy over DLPack."""
        xp = self.xp
        f32 = self.dtype(np.float32)
        try:
            return xp.astype(xp.astype(x, self.dtype(dst)), f32)
        except (TypeError, ValueError, AttributeError):
            host = np.from_dlpack(x).astype(dst).astype(np.float32)
            return xp.asarray(host)

    def __call__(self, *args: Any) -> list[Any]:
        plan, xp = self.plan, self.xp
        env: dict[str, Any] = dict(self.consts)
        for name, a in zip(plan.inputs, args):
            dt = plan.dtypes[name]
            env[name] = xp.astype(a, self.dtype(np.float32)) if dt.name in _HALF else a
        with np.errstate(all="ignore"):
            for node in plan.nodes:
                ins = [plan.dtypes[i] if i else None for i in node.inputs]
                out = plan.dtypes[node.outputs[0]]
                ctx = _Ctx(node, ins, out, self._opset(node))
                args_ = [env[i] if i else None for i in node.inputs]
                r = _OPS[(node.domain, node.op_type)].x(self, ctx, args_)
                want = self.dtype(_compute_dtype(out))
                if r.dtype != want:
                    r = xp.astype(r, want)
                env[node.outputs[0]] = r
        outs = []
        given = {id(a) for a in (*args, *self.consts.values())}
        for o in plan.outputs:
            dt = plan.dtypes[o]
            r = env[o]
            if dt.name in _HALF:
                r = xp.astype(r, self.dtype(dt))
            elif id(r) in given:  # Max(x), Relu of unsigned...: never hand out an input
                r = xp.asarray(r, copy=True)
            outs.append(r)
        return outs


def _erf(xp: Any, x: Any) -> Any:
    name = getattr(xp, "__name__", "")
    if "cupy" in name:
        from cupyx.scipy.special import erf

        return erf(x)
    if "numpy" in name:
        v = np.asarray(x)
        r = np.frompyfunc(math.erf, 1, 1)(v.astype(np.float64)).astype(v.dtype)
        return xp.asarray(r)
    from ort_array.kernels.elementwise import erf

    return erf(xp, x)


# -- compile ---------------------------------------------------------------------------------
def compile_chain(subgraph: Graph, opsets: Mapping[str, int], device: Any) -> Callable[..., list]:
    """The callable that runs a fused chain (``subgraph`` as the partitioner extracted it:
    inputs, one-element and larger constant initializers, outputs read outside the chain):
    it takes ``subgraph.inputs`` positionally and returns one array per ``subgraph.outputs``.

    On a native device the generated kernel is compiled once per input element types (at once
    when the subgraph's types are known) and launched on the current stream; the broadcast
    shape, merged dimensions and strides are computed on the host once per input layout. On a
    stand-in device (``device.native`` False) the chain runs op by op with ``device.xp``.

    Raises:
        EPFail: the subgraph is not a chain the fused kernel can run.
    """
    chain = _Chain(subgraph, opsets)
    if not getattr(device, "native", False):
        return chain.standin(device.xp)
    return _NativeChain(chain, device)


class _Chain:
    def __init__(self, subgraph: Graph, opsets: Mapping[str, int]) -> None:
        self.graph = subgraph
        self.opsets = dict(opsets)
        self._plans: dict[tuple, _Plan] = {}
        self._lock = threading.Lock()
        known = [tensor_dtype(subgraph.type_of(x)) for x in subgraph.inputs]
        self.known = tuple(known) if all(t is not None for t in known) else None
        # validate now: a chain the kernel cannot run is the provider's error, at compile time
        try:
            if self.known is not None:
                self.plan(self.known)
            else:
                self._structure_check()
        except FusionError as e:
            raise EPFail(f"CUDAExecutionProvider: fused chain '{subgraph.name}': {e}") from None

    def _structure_check(self) -> None:
        for node in self.graph.nodes:
            if (node.domain, node.op_type) not in _OPS:
                raise FusionError(f"{node.label()} is not an elementwise op")

    def plan(self, dtypes: tuple) -> _Plan:
        key = tuple(np.dtype(t) for t in dtypes)
        p = self._plans.get(key)
        if p is None:
            p = _make_plan(self.graph, dict(zip(self.graph.inputs, key)), self.opsets)
            self._plans[key] = p
        return p

    def standin(self, xp: Any) -> Callable[..., list]:
        from ort_array._xp import np_dtype

        interps: dict[tuple, Interpreter] = {}

        def run(*args: Any) -> list:
            key = tuple(np_dtype(a.dtype) for a in args)
            it = interps.get(key)
            if it is None:
                it = interps[key] = Interpreter(self._plan_or_fail(key), xp)
            return it(*args)

        return run

    def _plan_or_fail(self, key: tuple) -> _Plan:
        try:
            return self.plan(key)
        except FusionError as e:
            raise InvalidArgument(
                f"CUDAExecutionProvider: fused chain '{self.graph.name}' got inputs of types "
                f"{[str(k) for k in key]}: {e}"
            ) from None


@dataclass
class _Layout:
    """The host's part of one launch for one input layout."""

    shape: tuple[int, ...]
    n: int
    scalars: tuple[Any, ...]  # n, rank, d0..d7, strides (numpy scalars, argument order)
    fallback: bool  # run op by op (rank above MAX_RANK, or an output smaller than shape)
    grid: int


#: compiled kernels per device, by source (sessions with the same chain share one)
_MODULES: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
_MODULES_LOCK = threading.Lock()


class _NativeChain:
    """The callable of a fused chain on a CUDA device."""

    def __init__(self, chain: _Chain, device: Any) -> None:
        self.chain = chain
        self.device = device
        self.cp = device.cp
        self._kernels: dict[tuple, tuple[_Plan, Any, list[Any]]] = {}
        self._layouts: dict[tuple, _Layout] = {}
        self._fallback: dict[tuple, Interpreter] = {}
        if chain.known is not None:
            self._kernel(chain.known)

    def _kernel(self, key: tuple) -> tuple[_Plan, Any, list[Any]]:
        k = self._kernels.get(key)
        if k is not None:
            return k
        plan = self.chain._plan_or_fail(key)
        source, name = _emit(plan)
        dev = self.device
        with _MODULES_LOCK:
            compiled = _MODULES.setdefault(dev, {})
            fn = compiled.get(source)
            if fn is None:
                from .nvrtc import OPTIONS

                with self.cp.cuda.Device(dev.id):
                    # cupy finds cuda_fp16.h/cuda_bf16.h itself (its CUDA headers' folder)
                    mod = self.cp.RawModule(code=source, options=OPTIONS)
                    fn = mod.get_function(name)
                compiled[source] = fn
        consts = [self._upload(arr) for arr in plan.constants.values()]
        k = self._kernels[key] = (plan, fn, consts)
        return k

    def _upload(self, arr: np.ndarray) -> Any:
        dev = self.device
        stream = dev.default_stream
        out = dev.to_device(np.ascontiguousarray(arr), stream)
        stream.synchronize()  # the runs' streams do not wait for the default stream
        return out

    def __call__(self, *args: Any) -> list:
        key = tuple(a.dtype for a in args)
        plan, fn, consts = self._kernel(key)
        arrays = [*args, *consts]
        lkey = (key, tuple((a.shape, a.strides) for a in arrays))
        layout = self._layouts.get(lkey)
        if layout is None:
            layout = _layout(plan, arrays)
            if len(self._layouts) > 256:
                self._layouts.clear()
            self._layouts[lkey] = layout
        if layout.fallback:
            it = self._fallback.get(key)
            if it is None:
                it = self._fallback[key] = Interpreter(plan, self.device.xp)
            return it(*args)
        cp = self.cp
        outs = [cp.empty(layout.shape, dtype=plan.dtypes[o]) for o in plan.outputs]
        if layout.n:
            fn((layout.grid,), (BLOCK,), (*arrays, *outs, *layout.scalars))
        return outs


def _layout(plan: _Plan, arrays: Sequence[Any]) -> _Layout:
    """Broadcast shape, merged dimensions and per-input element strides of one launch."""
    shapes = {name: tuple(int(d) for d in a.shape) for name, a in zip(plan.arrays, arrays)}
    shapes.update({name: tuple(arr.shape) for name, arr in plan.literals.items()})
    try:
        shape = tuple(np.broadcast_shapes(*shapes.values())) if shapes else ()
    except ValueError:
        raise InvalidArgument(
            "CUDAExecutionProvider: the inputs of a fused elementwise chain do not broadcast: "
            + ", ".join(f"{k}{list(v)}" for k, v in shapes.items())
        ) from None
    n = math.prod(shape)
    fallback = False
    for o in plan.outputs:  # a written value smaller than the broadcast shape: op by op
        own = [shapes[d] for d in plan.deps[o] if d in shapes]
        if (tuple(np.broadcast_shapes(*own)) if own else ()) != shape:
            fallback = True
    rank = len(shape)
    strides = []
    for a in arrays:
        item = a.dtype.itemsize
        pad = rank - a.ndim
        st = [0] * rank
        for d in range(a.ndim):
            if a.shape[d] != 1:
                st[pad + d] = a.strides[d] // item
        strides.append(st)
    # drop dims of size 1, merge dims every input walks contiguously, innermost first
    dims: list[int] = []
    per: list[list[int]] = [[] for _ in arrays]
    for d in range(rank):
        if shape[d] == 1:
            continue
        if dims and all(per[i][-1] == strides[i][d] * shape[d] for i in range(len(arrays))):
            dims[-1] *= shape[d]
            for i in range(len(arrays)):
                per[i][-1] = strides[i][d]
            continue
        dims.append(shape[d])
        for i in range(len(arrays)):
            per[i].append(strides[i][d])
    if len(dims) > MAX_RANK:
        fallback = True
    dims = dims[::-1][:MAX_RANK]
    per = [p[::-1][:MAX_RANK] for p in per]
    r = len(dims)
    scalars: list[Any] = [np.int64(n), np.int32(r)]
    scalars += [np.int64(x) for x in dims + [1] * (MAX_RANK - r)]
    for p in per:
        scalars += [np.int64(x) for x in p + [0] * (MAX_RANK - r)]
    grid = max(1, min((n + BLOCK - 1) // BLOCK, MAX_BLOCKS))
    return _Layout(shape, n, tuple(scalars), fallback, grid)
