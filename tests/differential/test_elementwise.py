"""Elementwise kernels of the CPU provider against onnx's ReferenceEvaluator."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto

from . import harness
from .harness import check_node, make_node_model

rng = np.random.default_rng(0)
SHAPES = [(), (0,), (7,), (3, 5), (2, 3, 4)]
FLOATS = [np.float32, np.float64, np.float16]


def rand(shape, dtype=np.float32, lo=-3.0, hi=3.0):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        lo, hi = (max(lo, 0), hi) if dtype.kind == "u" else (lo, hi)
        return rng.integers(int(lo), int(hi) + 1, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    return np.asarray(rng.uniform(lo, hi, size=shape)).astype(dtype)


def tol(dtype):
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return {"rtol": 2e-3, "atol": 2e-3}
    if dtype == ml_dtypes.bfloat16:
        return {"rtol": 2e-2, "atol": 2e-2}
    return {"rtol": 1e-5, "atol": 1e-6}


UNARY = {  # op: (low, high) of the input range
    "Abs": (-3, 3), "Neg": (-3, 3), "Exp": (-3, 3), "Log": (0.1, 5), "Sqrt": (0, 5),
    "Reciprocal": (0.5, 3), "Floor": (-3, 3), "Ceil": (-3, 3), "Sign": (-3, 3),
    "Erf": (-4, 4), "Sin": (-3, 3), "Cos": (-3, 3), "Tan": (-1.2, 1.2), "Asin": (-0.99, 0.99),
    "Acos": (-0.99, 0.99), "Atan": (-3, 3), "Sinh": (-3, 3), "Cosh": (-3, 3),
    "Asinh": (-3, 3), "Acosh": (1, 5), "Atanh": (-0.9, 0.9), "Relu": (-3, 3),
    "Sigmoid": (-8, 8), "HardSigmoid": (-4, 4), "HardSwish": (-4, 4), "Softplus": (-8, 8),
    "Softsign": (-3, 3), "Tanh": (-3, 3), "Mish": (-5, 5), "Elu": (-3, 3), "Selu": (-3, 3),
    "Celu": (-3, 3), "LeakyRelu": (-3, 3), "ThresholdedRelu": (-3, 3), "Gelu": (-4, 4),
    "Shrink": (-3, 3), "Swish": (-5, 5),
}  # fmt: skip


@pytest.mark.parametrize("op", sorted(UNARY))
@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_float(op, dtype):
    lo, hi = UNARY[op]
    for shape in SHAPES:
        if shape == () and op == "Softsign":
            continue  # the reference's Softsign fails on 0-d inputs
        check_node(op, [rand(shape, dtype, lo, hi)], **tol(dtype))


@pytest.mark.parametrize("op", ["Erf", "Gelu"])
@pytest.mark.parametrize("shape", [(5, 7001), (150,)])
def test_erf_gelu_blocks(op, shape):
    """Erf and Gelu work in blocks of elements (the last one partial here) and element by element
    on tiny inputs; long tails included."""
    x = rand(shape, np.float32, -9, 9)
    x.reshape(-1)[:3] = [0.0, 1e-6, -1e-6]
    check_node(op, [x], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["Exp", "Sigmoid", "Relu", "Erf", "Gelu", "Neg", "Floor"])
def test_unary_bfloat16(op):
    x = rand((4, 5), ml_dtypes.bfloat16, *UNARY[op])
    check_node(op, [x], rtol=3e-2, atol=3e-2)


def test_round_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6, 0.0], np.float32)
    check_node("Round", [x])
    check_node("Round", [rand((3, 4), np.float64)])


@pytest.mark.parametrize("op", ["Abs", "Neg", "Sign", "Relu"])
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
def test_unary_int(op, dtype):
    check_node(op, [rand((3, 4), dtype, -9, 9)])


@pytest.mark.parametrize(
    "op,attrs",
    [
        ("LeakyRelu", {"alpha": 0.3}),
        ("Elu", {"alpha": 0.5}),
        ("Selu", {"alpha": 1.5, "gamma": 2.0}),
        ("Celu", {"alpha": 2.0}),
        ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
        ("ThresholdedRelu", {"alpha": 0.5}),
        ("Shrink", {"bias": 0.5, "lambd": 1.0}),
        ("Gelu", {"approximate": "tanh"}),
        ("Swish", {"alpha": 0.7}),
        ("IsInf", {"detect_negative": 0}),
        ("IsInf", {"detect_positive": 0}),
    ],
)
def test_activation_attrs(op, attrs):
    x = rand((4, 6), np.float32)
    if op == "IsInf":
        x[0, :3] = [np.inf, -np.inf, np.nan]
    check_node(op, [x], attrs)


def test_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0], np.float32)
    check_node("IsNaN", [x])
    check_node("IsInf", [x])
    check_node("Relu", [x])
    check_node("Sigmoid", [x])
    check_node("Softplus", [np.array([-100.0, 100.0, 0.0], np.float32)])


def test_old_opsets():
    x = rand((3, 4), np.float32)
    for op in ("Relu", "Sigmoid", "Abs", "LeakyRelu", "Elu", "HardSigmoid"):
        check_node(op, [x], opset=6)
    check_node("Clip", [x], {"min": -1.0, "max": 0.5}, opset=6)
    check_node("Clip", [x], {"min": -1.0}, opset=6)


@pytest.mark.parametrize(
    "xs,ss", [((2, 3, 4), (4,)), ((2, 3, 4), (3, 1)), ((5,), ()), ((4, 5), (4, 5))]
)
def test_prelu(xs, ss):
    check_node("PRelu", [rand(xs, np.float32), rand(ss, np.float32, 0, 1)])
    check_node("PRelu", [rand(xs, np.int32, -5, 5), rand(ss, np.int32, 1, 4)])
    check_node("PRelu", [rand(xs, np.float16), rand(ss, np.float16, 0, 1)], **tol(np.float16))


def test_not_and_bitwise_not():
    check_node("Not", [rand((3, 4), np.bool_)])
    for dt in (np.int8, np.uint16, np.int64):
        check_node("BitwiseNot", [rand((5,), dt, 0, 100)])


BROADCAST = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)), ((), (2, 3)), ((0, 3), (3,))]
ARITH = ["Add", "Sub", "Mul", "Div"]


@pytest.mark.parametrize("op", ARITH + ["Pow", "Max", "Min", "Sum", "Mean"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_binary_float(op, dtype):
    for sa, sb in BROADCAST:
        if op == "Mean" and np.broadcast_shapes(sa, sb) != sa:
            continue  # the reference's Mean only broadcasts into its first input
        lo = 0.5 if op in ("Div", "Pow") else -3
        check_node(op, [rand(sa, dtype, lo, 3), rand(sb, dtype, lo, 3)], **tol(dtype))


@pytest.mark.parametrize("op", ARITH + ["Max", "Min", "Sum", "Mod"])
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64])
def test_binary_int(op, dtype):
    a = rand((3, 4), dtype, -50, 50)
    b = rand((4,), dtype, -7, 7)
    if op in ("Div", "Mod"):
        b[b == 0] = 3
    check_node(op, [a, b])


@pytest.mark.parametrize("op", ["Add", "Mul", "Div", "Max", "Less", "Equal", "Pow"])
def test_binary_bfloat16(op):
    a = rand((3, 4), ml_dtypes.bfloat16, 0.5, 3)
    b = rand((4,), ml_dtypes.bfloat16, 0.5, 3)
    check_node(op, [a, b], rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Pow"])
def test_binary_legacy_broadcast(op):
    a = rand((2, 3, 4), np.float32, 0.5, 3)
    check_node(op, [a, rand((2, 3, 4), np.float32, 0.5, 3)], opset=6)
    if op != "Pow":  # the reference's Pow-1 does not take `broadcast`
        check_node(op, [a, rand((4,), np.float32, 0.5, 3)], {"broadcast": 1}, opset=6)
    # the reference evaluator ignores `axis`: compare with B reshaped for numpy broadcasting
    for bshape, axis, opset in (((3,), 1, 6), ((2, 3), 0, 1), ((3, 4), -2, 6)):
        b = rand(bshape, np.float32, 0.5, 3)
        model, feeds = make_node_model(op, [a, b], {"broadcast": 1, "axis": axis}, opset=opset)
        (got,) = harness.run_cpu(model, feeds)
        (want,) = check_node(op, [a, b.reshape(bshape + (1,) * (3 - axis % 3 - len(bshape)))])
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_div_int_truncates():
    a = np.array([7, -7, 7, -7, 6, -6], np.int32)
    b = np.array([2, 2, -2, -2, 4, 4], np.int32)
    check_node("Div", [a, b])
    check_node("Div", [a.astype(np.int64), b.astype(np.int64)])


@pytest.mark.parametrize("fmod", [0, 1])
def test_mod(fmod):
    a = np.array([7, -7, 7, -7, 5, -4], np.int32)
    b = np.array([3, 3, -3, -3, 5, 3], np.int32)
    if fmod:
        check_node("Mod", [a.astype(np.float32) * 1.5, b.astype(np.float32)], {"fmod": 1})
        check_node("Mod", [a.astype(np.float64), np.float64(2.5)], {"fmod": 1})
    check_node("Mod", [a, b], {"fmod": fmod})


@pytest.mark.parametrize(
    "ta,tb",
    [(np.float32, np.int64), (np.float32, np.float64), (np.int32, np.int64), (np.int64, np.float32),
     (np.float16, np.float32), (np.int32, np.int32)],
)  # fmt: skip
def test_pow_mixed(ta, tb):
    a = rand((3, 4), ta, 1, 4)
    b = rand((4,), tb, 0, 3)
    check_node("Pow", [a, b], rtol=1e-3 if ta == np.float16 else 1e-5)


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_bit_shift(direction, dtype):
    a = rand((3, 4), dtype, 0, 200)
    b = rand((4,), dtype, 0, 7)
    check_node("BitShift", [a, b], {"direction": direction})


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.uint64])
def test_bitwise(op, dtype):
    check_node(op, [rand((3, 4), dtype, 0, 120), rand((3, 1), dtype, 0, 120)])


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logical(op):
    for sa, sb in BROADCAST:
        check_node(op, [rand(sa, np.bool_), rand(sb, np.bool_)])


@pytest.mark.parametrize("op", ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.float16, np.uint8])
def test_compare(op, dtype):
    for sa, sb in BROADCAST:
        check_node(op, [rand(sa, dtype, 0, 3), rand(sb, dtype, 0, 3)])


def test_equal_bool():
    check_node("Equal", [rand((3, 4), np.bool_), rand((4,), np.bool_)])


@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
def test_variadic(op):
    xs = [rand((3, 2, 4)), rand((2, 1)), rand(()), rand((4,))]
    check_node(op, xs)
    if op != "Mean":  # the reference's Mean only broadcasts into its first input
        check_node(op, xs[::-1])
    check_node(op, xs[:1])
    check_node(op, [rand((2, 3)), rand((2, 3)), rand((2, 3))])
    check_node(op, [rand(()), rand(()), rand(())])
    check_node(op, [rand((2, 3)), rand((2, 3))], opset=6)


def test_max_min_nan():
    a = np.array([np.nan, 1.0, 2.0], np.float32)
    b = np.array([0.0, np.nan, 1.0], np.float32)
    check_node("Max", [a, b])
    check_node("Min", [a, b])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32, np.int64])
def test_clip(dtype):
    x = rand((3, 4), dtype, -10, 10)
    lo, hi = np.array(-2, dtype), np.array(5, dtype)
    check_node("Clip", [x, lo, hi])
    check_node("Clip", [x, lo])
    check_node("Clip", [x, None, hi])
    check_node("Clip", [x])
    check_node("Clip", [x, hi, lo])  # min > max: everything becomes max


def test_clip_opset11_float_only():
    x = rand((3, 4), np.float32, -10, 10)
    check_node("Clip", [x, np.float32(-1), np.float32(2)], opset=11)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_, np.uint8])
def test_where(dtype):
    c = rand((3, 1, 4), np.bool_)
    check_node("Where", [c, rand((2, 4), dtype, 0, 9), rand((1,), dtype, 0, 9)])
    check_node("Where", [np.bool_(True), rand((), dtype), rand((2,), dtype)])


def test_where_string():
    c = np.array([True, False, True])
    x = np.array(["a", "b", "c"], dtype=object)
    y = np.array(["x", "y", "z"], dtype=object)
    check_node("Where", [c, x, y])


NUMERIC_CASTS = [
    np.float32, np.float64, np.float16, np.int8, np.uint8, np.int16, np.uint16, np.int32,
    np.int64, np.uint32, np.uint64, np.bool_, ml_dtypes.bfloat16,
]  # fmt: skip
TP = {
    np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
    np.dtype(np.float16): TensorProto.FLOAT16, np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int16): TensorProto.INT16,
    np.dtype(np.uint16): TensorProto.UINT16, np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int64): TensorProto.INT64, np.dtype(np.uint32): TensorProto.UINT32,
    np.dtype(np.uint64): TensorProto.UINT64, np.dtype(np.bool_): TensorProto.BOOL,
    np.dtype(ml_dtypes.bfloat16): TensorProto.BFLOAT16,
}  # fmt: skip


@pytest.mark.parametrize("src", NUMERIC_CASTS, ids=lambda t: np.dtype(t).name)
def test_cast_numeric(src):
    x = rand((3, 5), src, 0, 100)
    for dst in NUMERIC_CASTS:
        check_node("Cast", [x], {"to": TP[np.dtype(dst)]})
        check_node("CastLike", [x, np.zeros((1,), dst)])


def test_cast_old_opsets():
    x = rand((3, 5), np.float32, -100, 100)
    check_node("Cast", [x], {"to": TensorProto.INT32}, opset=6)
    check_node("Cast", [x], {"to": TensorProto.FLOAT16}, opset=13)


@pytest.mark.parametrize(
    "dst",
    [TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2,
     TensorProto.FLOAT8E5M2FNUZ],
)  # fmt: skip
@pytest.mark.parametrize("saturate", [0, 1])
def test_cast_float8(dst, saturate):
    x = np.array([0.0, 1.0, -3.3, 1e6, -1e6, np.inf, -np.inf, 300.0, 0.01], np.float32)
    x = np.concatenate([x, rand((20,), np.float32, -500, 500)])
    (y,) = check_node("Cast", [x], {"to": dst, "saturate": saturate})
    check_node("Cast", [y], {"to": TensorProto.FLOAT})


@pytest.mark.parametrize("dst", [TensorProto.INT4, TensorProto.UINT4])
def test_cast_int4(dst):
    x = np.array([0, 1, 5, 7, 3, 2], np.int32)
    (y,) = check_node("Cast", [x], {"to": dst})
    check_node("Cast", [y], {"to": TensorProto.INT64})


@pytest.mark.parametrize("mode", ["up", "down", "nearest"])
@pytest.mark.parametrize("saturate", [0, 1])
def test_cast_e8m0(mode, saturate):
    x = np.array([1.0, 3.0, 0.3, 1e30, 6.0, 2.0**-120, 3e38, np.inf], np.float32)
    check_node("Cast", [x], {"to": TensorProto.FLOAT8E8M0, "saturate": saturate,
                             "round_mode": mode})  # fmt: skip


def _as_obj(ys):
    return [np.asarray(y).astype(object) for y in ys]


def test_cast_from_string():
    x = np.array(["1.5", "-2", "1e-3", "INF", "-inf", "NaN", "+INF"], dtype=object)
    check_node("Cast", [x], {"to": TensorProto.FLOAT})
    check_node("Cast", [x], {"to": TensorProto.DOUBLE})
    check_node("Cast", [np.array(["1", "-20", "300"], dtype=object)], {"to": TensorProto.INT64})


def test_cast_to_string():
    for x in (np.array([1.5, -2.0, 0.1, 1e-5], np.float32), np.array([1, -20, 300], np.int64)):
        model, feeds = make_node_model("Cast", [x], {"to": TensorProto.STRING})
        exp = harness.run_reference(model, feeds)[0]
        got = np.asarray(harness.run_cpu(model, feeds)[0])
        assert got.dtype == object
        np.testing.assert_array_equal(got.astype(str), exp.astype(str))


@pytest.mark.parametrize(
    "src,to",
    [
        (np.float32, TensorProto.INT32),
        (np.int32, TensorProto.FLOAT),
        (np.float64, TensorProto.INT64),
        (np.uint16, TensorProto.FLOAT16),
        (np.int8, TensorProto.UINT8),
        (np.bool_, TensorProto.UINT8),
    ],
)
@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
def test_bitcast(src, to, shape):
    rng = np.random.default_rng(0)
    x = (
        rng.integers(0, 2, shape).astype(src)
        if src is np.bool_
        else (rng.standard_normal(shape) * 100).astype(src)
    )
    check_node("BitCast", [x], {"to": to})


def test_gelu_error_bounds():
    """The float32 GELU's documented bounds, on a dense grid against x * Phi(x) in float64:
    absolute error below 1.6e-7 |x|, relative below 8e-5 where |gelu| > 1e-3 and 5.1e-4 where
    |gelu| > 1e-6; the limits at the infinities, NaN through, and the same values with a bias
    row added as without."""
    import math

    from ort_cpu.kernels.elementwise import gelu_erf

    x = np.linspace(-12, 12, 400_001).astype(np.float32)
    x64 = x.astype(np.float64)
    want = x64 * 0.5 * np.array([math.erfc(-v / math.sqrt(2)) for v in x64])
    err = np.abs(gelu_erf(x).astype(np.float64) - want)
    assert (err <= 1.6e-7 * np.abs(x64)).all()
    for floor, bound in ((1e-3, 8e-5), (1e-6, 5.1e-4)):
        big = np.abs(want) > floor
        assert (err[big] <= bound * np.abs(want[big])).all()
    special = np.array([np.inf, -np.inf, np.nan, 0.0, 1e30, -1e30, 3e38, -3e38], np.float32)
    for xs in (np.tile(special, 40), special):  # the blocks and the element-by-element path
        got = gelu_erf(xs)[: special.size]
        np.testing.assert_array_equal(
            got, np.array([np.inf, 0, np.nan, 0, 1e30, 0, 3e38, 0], np.float32)
        )
    rows = x[: 3 * 4000].reshape(3, 4000)
    bias = np.linspace(-1, 1, 4000).astype(np.float32)
    np.testing.assert_array_equal(gelu_erf(rows, bias), gelu_erf(rows + bias))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "alpha,times_x", [(1.0, False), (1.702, False), (1.0, True), (1.702, True)]
)
def test_logistic_tiny_tensors_take_whole_tensor_calls(dtype, alpha, times_x, monkeypatch):
    """A tensor of at most TINY elements, or of one block too small to share among threads,
    skips the blocks (four numpy calls on the whole tensor): the same bits as the blocked path
    (here three blocks), tails, NaN and shapes included. (The numpy path: float32 takes the
    compiled one where it is on, see test_exp_kernels.)"""
    from ort_cpu.kernels import elementwise

    monkeypatch.setattr(elementwise, "_compiled_logistic", lambda: None)

    x = (rng.standard_normal((4, 50)) * 6).astype(dtype)
    x.flat[:8] = [np.nan, np.inf, -np.inf, 100, -100, 89, -89, 0]
    tiny_size, chunk = elementwise.TINY, elementwise.CHUNK
    assert x.size <= tiny_size
    tiny = elementwise.logistic(x, alpha, times_x)
    monkeypatch.setattr(elementwise, "TINY", 0)
    monkeypatch.setattr(elementwise, "CHUNK", 80)
    blocks = []
    real = elementwise._in_blocks
    monkeypatch.setattr(
        elementwise,
        "_in_blocks",
        lambda n, m, *a, **k: blocks.append((n, m)) or real(n, m, *a, **k),
    )
    blocked = elementwise.logistic(x, alpha, times_x)
    assert blocks == [(200, 80)]
    monkeypatch.setattr(elementwise, "CHUNK", chunk)
    blocks.clear()
    assert np.array_equal(elementwise.logistic(x, alpha, times_x), tiny, equal_nan=True)
    assert blocks == []  # one block below the parallel threshold: whole-tensor calls
    assert tiny.shape == blocked.shape == x.shape and tiny.dtype == blocked.dtype == x.dtype
    np.testing.assert_array_equal(tiny, blocked)
    scalar = np.asarray(x.flat[9])  # a 0-d tensor: a 0-d result
    got = elementwise.logistic(scalar, alpha, times_x)
    assert isinstance(got, np.ndarray) and got.shape == () and got.dtype == x.dtype
    monkeypatch.setattr(elementwise, "TINY", tiny_size)
    np.testing.assert_array_equal(elementwise.logistic(scalar, alpha, times_x), got)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_logistic_blocks_sigmoid_and_silu(dtype, threads):
    """Sigmoid, QuickGelu and Sigmoid * x (SiLU, fused to QuickGelu) over several blocks of
    elementwise.CHUNK, both tails and NaN included: within a few ulps of the float64 formula,
    and the same bits on two threads as on one."""
    from onnx import helper

    import ort_core as ort

    n = 3 * 32768 + 5
    x = (rng.standard_normal(n) * 6).astype(dtype)
    x[:8] = [np.nan, np.inf, -np.inf, 100, -100, 89, -89, 0]
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["s"]),
        helper.make_node("QuickGelu", ["x"], ["q"], domain="com.microsoft", alpha=1.702),
        helper.make_node("Mul", ["x", "s"], ["silu"]),
    ]
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", elem, [n])],
        [helper.make_tensor_value_info(v, elem, [n]) for v in ("s", "q", "silu")],
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    ).SerializeToString()
    outs = []
    for t in sorted({1, threads}):
        so = ort.SessionOptions()
        so.intra_op_num_threads = t
        outs.append(ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(
            None, {"x": x}
        ))  # fmt: skip
    for one, other in zip(outs[0], outs[-1], strict=True):
        np.testing.assert_array_equal(one, other)
    x64 = x.astype(np.float64)
    alpha = float(np.float32(1.702))  # the attribute as the model stores it
    with np.errstate(over="ignore", invalid="ignore"):  # -inf * 0: NaN, as in onnxruntime
        sig = 1 / (1 + np.exp(-x64))
        quick = x64 * (1 / (1 + np.exp(-alpha * x64)))
        silu = x64 * sig
    tol = 2e-6 if dtype == np.float32 else 1e-13
    for got, want in zip(outs[0], (sig, quick, silu), strict=True):
        np.testing.assert_allclose(got, want, rtol=tol, atol=1e-30)


@pytest.mark.parametrize("op,fn", [("Sub", np.subtract), ("Div", np.divide), ("Less", np.less)])
@pytest.mark.parametrize("const_first", [False, True])
def test_binary_constant_of_lower_rank(op, fn, const_first):
    """A constant operand of lower rank than the other (a (C,) bias against (N, C)), which the
    kernel reshapes once at creation: the same broadcast, on either side, several batch sizes
    through one session."""
    import onnx
    from onnx import helper

    import ort_core

    const = rand((4,)) + 5.0
    init = onnx.numpy_helper.from_array(const, "c")
    inputs = ["c", "x"] if const_first else ["x", "c"]
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    y_info = helper.make_tensor_value_info("y", 0, None)
    graph = helper.make_graph(
        [helper.make_node(op, inputs, ["y"])], "g", [x_info], [y_info], [init]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    sess = ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for n in (1, 3):
        x = rand((n, 4))
        (got,) = sess.run(None, {"x": x})
        want = fn(const, x) if const_first else fn(x, const)
        np.testing.assert_array_equal(got, want)
