"""Quantization kernels against onnx's ReferenceEvaluator."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto

from .harness import check_node

rng = np.random.default_rng(3)

Q_TYPES = [np.uint8, np.int8, np.uint16, np.int16, ml_dtypes.int4, ml_dtypes.uint4]
FLOAT8 = [ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2,
          ml_dtypes.float8_e5m2fnuz]  # fmt: skip


def xdata(shape, dtype=np.float32, scale=40.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def zero_point(shape, dtype):
    info = ml_dtypes.iinfo(dtype)
    lo, hi = max(int(info.min), -10), min(int(info.max), 10)
    return rng.integers(lo, hi + 1, size=shape).astype(dtype)


def scales(shape, dtype=np.float32):
    return rng.uniform(0.05, 0.5, size=shape).astype(dtype)


@pytest.mark.parametrize("qt", Q_TYPES, ids=lambda t: np.dtype(t).name)
def test_quantize_per_tensor(qt):
    x = xdata((3, 4, 5))
    x.flat[:4] = [0.5, 1.5, 2.5, -0.5]  # ties round to even
    one = np.float32(1.0)
    check_node("QuantizeLinear", [x, np.float32(0.3), zero_point((), qt)])
    check_node("QuantizeLinear", [x[0, :4, 0], one, zero_point((), qt)])
    (y,) = check_node("QuantizeLinear", [x, np.float32(0.7), zero_point((), qt)], opset=21)
    check_node("DequantizeLinear", [y, np.float32(0.7), zero_point((), qt)])


def test_quantize_default_uint8_and_old_opsets():
    x = xdata((2, 6))
    check_node("QuantizeLinear", [x, np.float32(0.5)])
    check_node("QuantizeLinear", [x, np.float32(0.5), np.uint8(128)], opset=10)
    check_node("QuantizeLinear", [x, np.float32(0.5), np.int8(-3)], opset=13)
    check_node("QuantizeLinear", [np.arange(-5, 6, dtype=np.int32) * 40, np.float32(2.0)])
    q = zero_point((2, 6), np.int8)
    check_node("DequantizeLinear", [q, np.float32(0.5), np.int8(3)], opset=19)
    check_node("DequantizeLinear", [np.arange(-5, 6, dtype=np.int32), np.float32(2.0)])


@pytest.mark.parametrize("qt", [np.uint8, np.int8, ml_dtypes.int4])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_per_axis(qt, axis):
    x = xdata((3, 4, 5))
    n = x.shape[axis]
    s, z = scales((n,)), zero_point((n,), qt)
    (y,) = check_node("QuantizeLinear", [x, s, z], {"axis": axis})
    check_node("DequantizeLinear", [y, s, z], {"axis": axis})
    check_node("DequantizeLinear", [y, s], {"axis": axis})


@pytest.mark.parametrize("qt", [np.uint8, np.int8, ml_dtypes.int4, ml_dtypes.uint4])
@pytest.mark.parametrize("axis,block", [(0, 2), (1, 4), (-1, 3), (1, 8)])
def test_blocked(qt, axis, block):
    x = xdata((4, 8, 6))
    sshape = list(x.shape)
    sshape[axis] = -(-x.shape[axis] // block)
    s, z = scales(sshape), zero_point(sshape, qt)
    attrs = {"axis": axis, "block_size": block}
    (y,) = check_node("QuantizeLinear", [x, s, z], attrs)
    check_node("DequantizeLinear", [y, s, z], attrs)


@pytest.mark.parametrize("ft", FLOAT8, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("saturate", [0, 1])
def test_float8(ft, saturate):
    x = xdata((4, 6), scale=300.0)
    x[0, :3] = [1e6, -1e6, 0.0]
    zp = np.zeros((), ft)
    (y,) = check_node("QuantizeLinear", [x, np.float32(0.5), zp], {"saturate": saturate})
    check_node("DequantizeLinear", [y, np.float32(0.5), zp])


def test_output_dtype_attr():
    x = xdata((3, 4))
    check_node("QuantizeLinear", [x, np.float32(0.5)], {"output_dtype": TensorProto.INT8})
    check_node("QuantizeLinear", [x, np.float32(0.5)], {"output_dtype": TensorProto.INT4})
    q = zero_point((3, 4), np.int8)
    check_node("DequantizeLinear", [q, np.float32(0.5)], {"output_dtype": TensorProto.FLOAT16},
               rtol=1e-3)  # fmt: skip


@pytest.mark.parametrize("st", [np.float16, ml_dtypes.bfloat16])
def test_low_precision_scales(st):
    x = xdata((3, 4)).astype(st)
    s = np.array(0.25, st)
    (y,) = check_node("QuantizeLinear", [x, s, np.int8(1)], opset=21)
    check_node("DequantizeLinear", [y, s, np.int8(1)], opset=21, rtol=1e-2)


@pytest.mark.parametrize("shape", [(3, 4), (0,), (7,), ()])
def test_dynamic_quantize_linear(shape):
    if shape == (0,):
        pytest.skip("the reference cannot take the min of an empty tensor")
    check_node("DynamicQuantizeLinear", [xdata(shape, scale=3.0)], n_outputs=3)
    check_node("DynamicQuantizeLinear", [np.abs(xdata((5,)))], n_outputs=3)
    check_node("DynamicQuantizeLinear", [-np.abs(xdata((5,)))], n_outputs=3)
    # an all-zero input: onnxruntime's scale is 1, the reference's 1/255 (y and the zero point
    # are 0 either way); tests/differential/test_quant_speedpaths.py compares it with onnxruntime


@pytest.mark.parametrize("ta,tb", [(np.uint8, np.uint8), (np.int8, np.int8), (np.uint8, np.int8)])
def test_qlinear_matmul(ta, tb):
    def q(shape, t):
        info = np.iinfo(t)
        return rng.integers(info.min, info.max + 1, size=shape).astype(t)

    a, b = q((2, 4, 8), ta), q((8, 3), tb)
    args = [a, np.float32(0.02), q((), ta), b, np.float32(0.03), q((), tb), np.float32(0.5)]
    check_node("QLinearMatMul", args + [q((), ta)])
    check_node("QLinearMatMul", args + [q((), tb)], opset=10)
    per_col = [a, np.float32(0.02), q((), ta), b, scales((3,)), q((3,), tb), np.float32(0.5)]
    check_node("QLinearMatMul", per_col + [q((), ta)])
