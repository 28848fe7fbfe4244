"""Element types the spec allows that kernels refused or mishandled (issue 5, item 1): PRelu on
bfloat16, Dropout-22 and QLinearMatMul-21 on the float8 types, and the data-movement and
elementwise families on the exotic types (float8, int4/uint4, float4, bfloat16, bool, strings,
complex)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import helper

from tests.differential.harness import check_node, make_node_model, run_cpu

FLOAT8 = [
    ml_dtypes.float8_e4m3fn,
    ml_dtypes.float8_e4m3fnuz,
    ml_dtypes.float8_e5m2,
    ml_dtypes.float8_e5m2fnuz,
]
EXOTIC = [
    *FLOAT8,
    ml_dtypes.bfloat16,
    ml_dtypes.int4,
    ml_dtypes.uint4,
    ml_dtypes.float4_e2m1fn,
    np.bool_,
    np.object_,
    np.complex64,
    np.complex128,
    np.float16,
]


def _sample(rng, dt, shape):
    dt = np.dtype(dt)
    if dt.kind == "O":
        return np.array([f"s{i}" for i in range(int(np.prod(shape)))], dtype=object).reshape(shape)
    if dt == np.bool_:
        return rng.random(shape) > 0.5
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    if "int" in dt.name:
        return rng.integers(0, 2, shape).astype(np.int8).astype(dt)
    return rng.standard_normal(shape).astype(np.float32).astype(dt)


def test_prelu_bfloat16_keeps_its_type():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4)).astype(ml_dtypes.bfloat16)
    slope = np.array([0.25], dtype=ml_dtypes.bfloat16)
    check_node("PRelu", [x, slope], rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("dtype", FLOAT8, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("training", [False, True])
def test_dropout_float8(dtype, training):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4)).astype(np.float32).astype(dtype)
    if training:  # ratio 0 in training mode: the identity, a deterministic case
        check_node("Dropout", [x, np.float32(0.0), np.array(True)], n_outputs=2)
    else:
        check_node("Dropout", [x], n_outputs=2)


def test_dropout_float8_refused_before_22():
    import ort_core
    from ort_core.errors import NotImplemented as OrtNotImplemented

    x = np.ones((2, 2), ml_dtypes.float8_e4m3fn)
    model, _ = make_node_model("Dropout", [x], opset=21)
    with pytest.raises(OrtNotImplemented, match="float8_e4m3fn"):
        ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("dtype", FLOAT8, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("a_shape", [(3, 5), (2, 3, 5)])
def test_qlinear_matmul_float8(dtype, a_shape):
    # onnx's ReferenceEvaluator has no float8 QLinearMatMul: the oracle is the spec's formula,
    # dequantize both inputs, multiply, quantize with saturation to the float8 range.
    rng = np.random.default_rng(2)
    a = (rng.standard_normal(a_shape) * 4).astype(np.float32).astype(dtype)
    b = (rng.standard_normal((5, 4)) * 4).astype(np.float32).astype(dtype)
    sa, sb, sy = np.float32(0.5), np.float32(0.25), np.float32(0.01)
    zero = np.zeros((), dtype)
    model, feeds = make_node_model("QLinearMatMul", [a, sa, zero, b, sb, zero, sy, zero], opset=21)
    (got,) = run_cpu(model, feeds)
    prod = (a.astype(np.float64) * sa) @ (b.astype(np.float64) * sb) / sy
    fi = ml_dtypes.finfo(dtype)
    expected = np.clip(prod, float(fi.min), float(fi.max)).astype(np.float32).astype(dtype)
    assert got.dtype == np.dtype(dtype) and got.shape == expected.shape
    np.testing.assert_array_equal(got.astype(np.float32), expected.astype(np.float32))


_I64 = np.int64
MOVEMENT = {
    "Identity": lambda x: ([x], {}),
    "Reshape": lambda x: ([x, np.array([4, 6], _I64)], {}),
    "Transpose": lambda x: ([x], {"perm": [2, 0, 1]}),
    "Squeeze": lambda x: ([x[:, :1], np.array([1], _I64)], {}),
    "Unsqueeze": lambda x: ([x, np.array([0], _I64)], {}),
    "Flatten": lambda x: ([x], {"axis": 2}),
    "Expand": lambda x: ([x[:, :1], np.array([2, 3, 4], _I64)], {}),
    "Tile": lambda x: ([x, np.array([1, 2, 1], _I64)], {}),
    "Concat": lambda x: ([x, x], {"axis": 1}),
    "Slice": lambda x: ([x, np.array([0], _I64), np.array([2], _I64), np.array([1], _I64)], {}),
    "Gather": lambda x: ([x, np.array([1, 0, 2], _I64)], {"axis": 1}),
    "GatherElements": lambda x: ([x, np.zeros((2, 3, 4), _I64)], {"axis": 1}),
    "GatherND": lambda x: ([x, np.array([[1, 2]], _I64)], {}),
    "ScatterND": lambda x: ([x, np.array([[1, 2]], _I64), x[:1, 0]], {}),
    "Where": lambda x: ([np.arange(24).reshape(2, 3, 4) % 3 == 0, x, x[::-1]], {}),
    "Shape": lambda x: ([x], {}),
    "Size": lambda x: ([x], {}),
    "TensorScatter": lambda x: ([x, x[:, :, :1], np.array([0, 2], _I64)], {"axis": 2}),
}


@pytest.mark.parametrize("op", sorted(MOVEMENT))
@pytest.mark.parametrize("dtype", EXOTIC, ids=lambda d: np.dtype(d).name)
def test_data_movement_exotic_types(op, dtype):
    rng = np.random.default_rng(3)
    x = _sample(rng, dtype, (2, 3, 4))
    inputs, attrs = MOVEMENT[op](x)
    if op == "TensorScatter":
        check_node(op, inputs, attrs, opset=24)
        return
    check_node(op, inputs, attrs)


@pytest.mark.parametrize(
    "dtype", [*FLOAT8, ml_dtypes.int4, ml_dtypes.uint4, ml_dtypes.float4_e2m1fn]
)
@pytest.mark.parametrize("direction", ["to", "from"])
def test_cast_exotic_types(dtype, direction):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((3, 5)) * 3).astype(np.float32)
    code = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    if direction == "to":
        check_node("Cast", [x], {"to": code})
    else:
        check_node("Cast", [x.astype(dtype)], {"to": 1})


@pytest.mark.parametrize("op", ["Pad", "Trilu"])
def test_string_fill_is_the_empty_string(op):
    """The spec pads strings with the empty string (the ReferenceEvaluator fills with 0)."""
    x = np.array([["a", "b"], ["c", "d"]], dtype=object)
    model, feeds = make_node_model(
        op, [x, np.array([0, 1, 0, 0], _I64)] if op == "Pad" else [x], {}
    )
    (got,) = run_cpu(model, feeds)
    expected = (
        np.array([["", "a", "b"], ["", "c", "d"]], dtype=object)
        if op == "Pad"
        else np.array([["a", "b"], ["", "d"]], dtype=object)
    )
    np.testing.assert_array_equal(got, expected)
