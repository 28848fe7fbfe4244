"""Elementwise ops: activations, unary math, binary arithmetic, comparison, logic, Where, Cast."""

from __future__ import annotations

import numpy as np

from . import ANY, BOOL, FLOATS, INTS, NUMERIC, Ctx, builder

#: ONNX unary op -> MIL op, for ops with no attributes (floats only)
UNARY = {
    "Abs": "abs",
    "Acos": "acos",
    "Asin": "asin",
    "Atan": "atan",
    "Atanh": "atanh",
    "Ceil": "ceil",
    "Cos": "cos",
    "Cosh": "cosh",
    "Erf": "erf",
    "Exp": "exp",
    "Floor": "floor",
    "Relu": "relu",
    "Round": "round",
    "Sigmoid": "sigmoid",
    "Sign": "sign",
    "Sin": "sin",
    "Sinh": "sinh",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Sqrt": "sqrt",
    "Tan": "tan",
    "Tanh": "tanh",
}
#: ONNX binary op -> MIL op (numpy-style broadcasting on both sides)
BINARY = {
    "Add": "add",
    "Sub": "sub",
    "Mul": "mul",
    "Equal": "equal",
    "Greater": "greater",
    "GreaterOrEqual": "greater_equal",
    "Less": "less",
    "LessOrEqual": "less_equal",
}
LOGIC = {"And": "logical_and", "Or": "logical_or", "Xor": "logical_xor"}
VARIADIC = {"Max": "maximum", "Min": "minimum", "Sum": "add", "Mean": "add"}


def scalar(ctx: Ctx, value: float, like: int = 0) -> np.ndarray:
    """A scalar constant in the MIL dtype of input ``like``."""
    return np.array(value, ctx.np_dtype(like))


def _unary(ctx: Ctx, node) -> None:
    ctx.out(0, getattr(ctx.mb, UNARY[node.op_type])(x=ctx.x(0)))


for _op in UNARY:
    builder(_op, dtypes=FLOATS)(_unary)


@builder("Log", dtypes=FLOATS)
def log(ctx: Ctx, node) -> None:
    # MIL computes log(x + epsilon); epsilon 0 keeps ONNX's log(0) = -inf
    ctx.out(0, ctx.mb.log(x=ctx.x(0), epsilon=scalar(ctx, 0.0)))


@builder("Neg", dtypes=FLOATS | {np.dtype(np.int32)})
def neg(ctx: Ctx, node) -> None:
    ctx.out(0, ctx.mb.mul(x=ctx.x(0), y=scalar(ctx, -1)))


@builder("Reciprocal", dtypes=FLOATS)
def reciprocal(ctx: Ctx, node) -> None:
    ctx.out(0, ctx.mb.real_div(x=scalar(ctx, 1.0), y=ctx.x(0)))


@builder("Identity", "Dropout", dtypes=ANY, check=lambda info: _dropout_reason(info))
def identity(ctx: Ctx, node) -> None:
    ctx.out(0, ctx.mb.identity(x=ctx.x(0)))


def _dropout_reason(info) -> str | None:
    if info.node.op_type != "Dropout":
        return None
    if info.num_outputs > 1 and info.node.outputs[1]:
        return "Dropout's mask output is not converted"
    if info.has_input(2):
        c = info.constant(2)
        if c is None or bool(c):
            return "Dropout in training mode (training_mode must be a constant false)"
    return None


def _elu(ctx, node):
    ctx.out(0, ctx.mb.elu(x=ctx.x(0), alpha=scalar(ctx, node.attr("alpha", 1.0))))


builder("Elu", dtypes=FLOATS)(_elu)


@builder("LeakyRelu", dtypes=FLOATS)
def leaky_relu(ctx: Ctx, node) -> None:
    ctx.out(0, ctx.mb.leaky_relu(x=ctx.x(0), alpha=scalar(ctx, node.attr("alpha", 0.01))))


@builder("Selu", dtypes=FLOATS)
def selu(ctx: Ctx, node) -> None:
    mb = ctx.mb
    e = mb.elu(x=ctx.x(0), alpha=scalar(ctx, node.attr("alpha", 1.67326319217681884765625)))
    ctx.out(0, mb.mul(x=e, y=scalar(ctx, node.attr("gamma", 1.05070102214813232421875))))


@builder("ThresholdedRelu", dtypes=FLOATS)
def thresholded_relu(ctx: Ctx, node) -> None:
    # ONNX keeps x > alpha; MIL's thresholded_relu keeps x >= alpha: select instead
    mb, x = ctx.mb, ctx.x(0)
    keep = mb.greater(x=x, y=scalar(ctx, node.attr("alpha", 1.0)))
    ctx.out(0, mb.select(cond=keep, a=x, b=scalar(ctx, 0.0)))


@builder("HardSigmoid", dtypes=FLOATS)
def hard_sigmoid(ctx: Ctx, node) -> None:
    a, b = scalar(ctx, node.attr("alpha", 0.2)), scalar(ctx, node.attr("beta", 0.5))
    ctx.out(0, ctx.mb.sigmoid_hard(x=ctx.x(0), alpha=a, beta=b))


@builder("HardSwish", since=14, dtypes=FLOATS)
def hard_swish(ctx: Ctx, node) -> None:
    mb, x = ctx.mb, ctx.x(0)
    h = mb.sigmoid_hard(x=x, alpha=scalar(ctx, 1.0 / 6), beta=scalar(ctx, 0.5))
    ctx.out(0, mb.mul(x=x, y=h))


@builder(
    "Gelu",
    since=20,
    dtypes=FLOATS,
    check=lambda info: (
        None
        if info.attr("approximate", "none") in ("none", "tanh")
        else f"approximate={info.attr('approximate')!r} is not an ONNX Gelu mode"
    ),
)
def gelu(ctx: Ctx, node) -> None:
    mode = "TANH_APPROXIMATION" if node.attr("approximate", "none") == "tanh" else "EXACT"
    ctx.out(0, ctx.mb.gelu(x=ctx.x(0), mode=mode))


@builder("PRelu", dtypes=FLOATS, const_inputs=(1,))
def prelu(ctx: Ctx, node) -> None:
    # max(x, 0) + slope * min(x, 0): the slope broadcasts as ONNX says (MIL's prelu takes only a
    # per-channel slope)
    mb, x = ctx.mb, ctx.x(0)
    zero = scalar(ctx, 0.0)
    neg = mb.mul(x=mb.minimum(x=x, y=zero), y=ctx.x(1))
    ctx.out(0, mb.add(x=mb.maximum(x=x, y=zero), y=neg))


def _binary(ctx: Ctx, node) -> None:
    ctx.out(0, getattr(ctx.mb, BINARY[node.op_type])(x=ctx.x(0), y=ctx.x(1)))


for _op in BINARY:
    builder(_op, since=7, dtypes=NUMERIC)(_binary)


@builder("Div", since=7, dtypes=FLOATS)
def div(ctx: Ctx, node) -> None:
    # integer Div truncates toward zero in ONNX and floors in MIL: integers are refused (dtypes)
    ctx.out(0, ctx.mb.real_div(x=ctx.x(0), y=ctx.x(1)))


@builder("Pow", since=7, dtypes=FLOATS, check=lambda info: _same_float(info, "exponent"))
def pow_(ctx: Ctx, node) -> None:
    ctx.out(0, ctx.mb.pow(x=ctx.x(0), y=ctx.x(1)))


def _same_float(info, what: str) -> str | None:
    if info.input_dtype(1) != info.input_dtype(0):
        return f"the {what} must have the base's element type ({info.input_dtype(0)})"
    return None


def _logic(ctx: Ctx, node) -> None:
    ctx.out(0, getattr(ctx.mb, LOGIC[node.op_type])(x=ctx.x(0), y=ctx.x(1)))


for _op in LOGIC:
    builder(_op, since=7, dtypes=frozenset({BOOL}))(_logic)


@builder("Not", dtypes=frozenset({BOOL}))
def not_(ctx: Ctx, node) -> None:
    ctx.out(0, ctx.mb.logical_not(x=ctx.x(0)))


@builder("Max", "Min", "Sum", "Mean", since=8, dtypes=NUMERIC,
         check=lambda info: "Mean of integers" if info.node.op_type == "Mean"
         and info.input_dtype(0) in INTS else None)  # fmt: skip
def variadic(ctx: Ctx, node) -> None:
    mb = ctx.mb
    fn = getattr(mb, VARIADIC[node.op_type])
    acc = ctx.x(0)
    n = len(node.inputs)
    if n == 1:
        acc = mb.identity(x=acc)
    for i in range(1, n):
        acc = fn(x=acc, y=ctx.x(i))
    if node.op_type == "Mean" and n > 1:
        acc = mb.real_div(x=acc, y=scalar(ctx, float(n)))
    ctx.out(0, acc)


@builder("Where", since=9, dtypes=frozenset({BOOL}))
def where(ctx: Ctx, node) -> None:
    """MIL's select takes its output shape from ``a`` and ``b`` alone, so where the condition
    is the larger one (ONNX broadcasts all three) one branch is broadcast to the full shape
    first: on the host for a constant, by a reshape and a tile in the program otherwise."""
    mb = ctx.mb
    cond, a, b = ctx.x(0), ctx.x(1), ctx.x(2)
    full = tuple(np.broadcast_shapes(ctx.shape(0), ctx.shape(1), ctx.shape(2)))
    if tuple(np.broadcast_shapes(ctx.shape(1), ctx.shape(2))) != full:
        if isinstance(a, np.ndarray):
            a = np.ascontiguousarray(np.broadcast_to(a, full))
        elif isinstance(b, np.ndarray):
            b = np.ascontiguousarray(np.broadcast_to(b, full))
        else:
            shape = (1,) * (len(full) - len(ctx.shape(1))) + ctx.shape(1)
            a = mb.reshape(x=a, shape=np.array(shape, np.int32)) if shape != ctx.shape(1) else a
            reps = [f // s for f, s in zip(full, shape)]
            a = mb.tile(x=a, reps=np.array(reps, np.int32))
    ctx.out(0, mb.select(cond=cond, a=a, b=b))


def _clip_reason(info) -> str | None:
    for i in (1, 2):
        if info.has_input(i) and info.constant(i) is None:
            return "Clip's min and max must be constant for Core ML"
    return None


@builder("Clip", since=6, dtypes=NUMERIC, check=_clip_reason)
def clip(ctx: Ctx, node) -> None:
    mb, x = ctx.mb, ctx.x(0)
    if ctx.node_opset < 11:
        lo, hi = node.attr("min"), node.attr("max")
        lo = None if lo is None else scalar(ctx, lo)
        hi = None if hi is None else scalar(ctx, hi)
    else:
        lo = ctx.x(1).reshape(()) if ctx.has(1) else None
        hi = ctx.x(2).reshape(()) if ctx.has(2) else None
    if lo is not None:
        x = mb.maximum(x=x, y=lo)
    if hi is not None:
        x = mb.minimum(x=x, y=hi)
    if lo is None and hi is None:
        x = mb.identity(x=x)
    ctx.out(0, x)


#: ONNX element types Cast converts between, and their MIL names (int64 is int32 in the program)
CAST_TO = {1: "fp32", 10: "fp16", 6: "int32", 7: "int32", 9: "bool"}


def _cast_reason(info) -> str | None:
    to = info.attr("to")
    if to not in CAST_TO:
        return f"Cast to ONNX element type {to}: Core ML programs hold float32/16, int32 and bool"
    return None


@builder("Cast", since=6, dtypes=ANY, check=_cast_reason)
def cast(ctx: Ctx, node) -> None:
    to = CAST_TO[node.attr("to")]
    x = ctx.x(0)
    if to == ctx.dtype_str(0):
        ctx.out(0, ctx.mb.identity(x=x))
    elif to == "bool":
        ctx.out(0, ctx.mb.not_equal(x=x, y=scalar(ctx, 0)))
    else:
        ctx.out(0, ctx.mb.cast(x=x, dtype=to))
