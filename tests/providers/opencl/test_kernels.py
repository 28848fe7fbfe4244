"""Every OpenCL kernel family against the CPU provider on the same one-node models: odd shapes,
broadcasting, 0-d and empty tensors, attribute variants, and the declines that send a node back to
the CPU provider with a reason."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from ._util import check_opencl, declined, rand, requires_opencl

pytestmark = requires_opencl

SHAPES = [(), (0,), (7,), (3, 5), (2, 3, 17)]
UNARY = {
    "Abs": (-3, 3), "Neg": (-3, 3), "Exp": (-3, 3), "Log": (0.1, 5), "Sqrt": (0, 5),
    "Reciprocal": (0.5, 3), "Floor": (-3, 3), "Ceil": (-3, 3), "Sign": (-3, 3), "Erf": (-3, 3),
    "Sin": (-3, 3), "Cos": (-3, 3), "Tan": (-1.2, 1.2), "Asin": (-0.9, 0.9), "Acos": (-0.9, 0.9),
    "Atan": (-3, 3), "Sinh": (-3, 3), "Cosh": (-3, 3), "Asinh": (-3, 3), "Acosh": (1, 5),
    "Atanh": (-0.9, 0.9), "Relu": (-3, 3), "Sigmoid": (-30, 30), "Tanh": (-3, 3),
    "Softsign": (-3, 3), "Softplus": (-30, 30), "HardSwish": (-4, 4), "Mish": (-5, 5),
    "HardSigmoid": (-4, 4), "LeakyRelu": (-3, 3), "Elu": (-3, 3), "Selu": (-3, 3),
    "Celu": (-3, 3), "ThresholdedRelu": (-3, 3), "Shrink": (-3, 3), "Round": (-3, 3),
}  # fmt: skip
OPSET = 18


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_float32(op):
    lo, hi = UNARY[op]
    for shape in SHAPES:
        if shape == () and op == "Softsign":
            continue
        check_opencl(op, [rand(shape, np.float32, lo, hi)], opset=OPSET, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(
    "op,attrs",
    [("LeakyRelu", {"alpha": 0.3}), ("Elu", {"alpha": 0.5}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
     ("Shrink", {"bias": 0.5, "lambd": 1.0}), ("Celu", {"alpha": 2.0}), ("ThresholdedRelu", {"alpha": 0.5})],
)  # fmt: skip
def test_unary_attributes(op, attrs):
    check_opencl(op, [rand((4, 9))], attrs, opset=OPSET)


def test_gelu_both_forms():
    x = rand((5, 7), lo=-4, hi=4)
    check_opencl("Gelu", [x], opset=20, rtol=1e-5, atol=1e-5)
    check_opencl("Gelu", [x], {"approximate": "tanh"}, opset=20, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["Abs", "Neg", "Sign", "Relu"])
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
def test_unary_int(op, dtype):
    check_opencl(op, [rand((3, 4), dtype, -9, 9)], opset=OPSET)


def test_nan_inf_predicates():
    x = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, -2.0], np.float32)
    check_opencl("IsNaN", [x], opset=OPSET)
    check_opencl("IsInf", [x], opset=OPSET)
    check_opencl("IsInf", [x], {"detect_negative": 0}, opset=OPSET)
    check_opencl("Not", [rand((3, 4), np.bool_)], opset=OPSET)


BROADCAST = [((3, 5), (3, 5)), ((3, 5), ()), ((), (3, 5)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)),
             ((1, 3, 1, 5), (2, 1, 4, 1)), ((0, 3), (3,)), ((5, 1, 7), (1, 6, 1))]  # fmt: skip


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Pow"])
@pytest.mark.parametrize("shapes", BROADCAST, ids=str)
def test_binary_float_broadcast(op, shapes):
    lo = 0.5 if op == "Pow" else -3
    a, b = rand(shapes[0], lo=lo), rand(shapes[1], lo=-2 if op == "Pow" else 0.5, hi=2)
    check_opencl(op, [a, b], opset=OPSET, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8])
def test_binary_int(op, dtype):
    a = rand((4, 6), dtype, -50, 50)
    b = rand((6,), dtype, 1, 9)
    check_opencl(op, [a, b], opset=OPSET)


@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_comparisons(op, dtype):
    a = rand((3, 4, 5), dtype, -3, 3).round()
    b = rand((4, 1), dtype, -3, 3).round()
    check_opencl(op, [a, b], opset=OPSET)


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logical(op):
    check_opencl(op, [rand((2, 3, 4), np.bool_), rand((3, 1), np.bool_)], opset=OPSET)


def test_mod_and_bitwise():
    a, b = (
        rand((4, 5), np.int32, -20, 20),
        rand((5,), np.int32, 1, 7) * np.array([1, -1, 1, -1, 1], np.int32),
    )
    check_opencl("Mod", [a, b], opset=OPSET)
    check_opencl("Mod", [a, b], {"fmod": 1}, opset=OPSET)
    check_opencl("Mod", [rand((4, 5)), rand((5,), lo=0.5, hi=2)], {"fmod": 1}, opset=OPSET)
    u, s = rand((3, 4), np.uint32, 0, 1000), rand((4,), np.uint32, 0, 40)
    check_opencl("BitShift", [u, s], {"direction": "LEFT"}, opset=OPSET)
    check_opencl("BitShift", [u, s], {"direction": "RIGHT"}, opset=OPSET)
    for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
        check_opencl(
            op, [rand((3, 4), np.int32, -99, 99), rand((4,), np.int32, -99, 99)], opset=OPSET
        )


@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
def test_variadic(op):
    xs = [rand((2, 3, 4)), rand((3, 1)), rand((4,))]
    check_opencl(op, xs[:1], opset=OPSET)
    check_opencl(op, xs, opset=OPSET)
    nan = np.array([np.nan, 1.0, 2.0], np.float32)
    check_opencl(op, [nan, np.array([0.0, np.nan, 3.0], np.float32)], opset=OPSET)


def test_clip_where_prelu():
    x = rand((3, 7))
    check_opencl("Clip", [x, np.float32(-1), np.float32(0.5)], opset=OPSET)
    check_opencl("Clip", [x, np.float32(-1)], opset=OPSET)
    check_opencl("Clip", [x, None, np.float32(1)], opset=OPSET)
    check_opencl("Clip", [x], {"min": -0.5, "max": 0.5}, opset=6)
    check_opencl("Where", [rand((3, 1), np.bool_), rand((3, 7)), rand((7,))], opset=OPSET)
    check_opencl(
        "Where", [rand((4,), np.bool_), rand((4,), np.int64, -5, 5), np.int64(3)], opset=OPSET
    )
    check_opencl("PRelu", [rand((2, 3, 4)), rand((3, 1), lo=0, hi=1)], opset=OPSET)


@pytest.mark.parametrize(
    "src,dst",
    [(np.float32, TensorProto.INT32), (np.float32, TensorProto.INT64), (np.int64, TensorProto.FLOAT),
     (np.float32, TensorProto.BOOL), (np.bool_, TensorProto.FLOAT), (np.float32, TensorProto.FLOAT16),
     (np.float16, TensorProto.FLOAT), (np.int32, TensorProto.UINT8), (np.float64, TensorProto.FLOAT)],
)  # fmt: skip
def test_cast(src, dst):
    check_opencl("Cast", [rand((3, 5), src, -100, 100)], {"to": dst}, opset=OPSET)


# -- reductions and softmax --------------------------------------------------------------------------
REDUCE = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
          "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]  # fmt: skip


@pytest.mark.parametrize("op", REDUCE)
@pytest.mark.parametrize("axes,keepdims", [(None, 1), ([1], 0), ([0, 2], 1), ([-1], 0), ([], 1)])
def test_reductions(op, axes, keepdims):
    lo = 0.1 if op == "ReduceLogSum" else -1.5
    x = rand((3, 5, 4), lo=lo, hi=1.5)
    inputs = [x] if axes is None else [x, np.array(axes, np.int64)]
    check_opencl(op, inputs, {"keepdims": keepdims}, opset=18, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMean", "ReduceLogSumExp"])
def test_reduce_empty_and_attribute_axes(op):
    check_opencl(op, [rand((2, 0, 3)), np.array([1], np.int64)], {"keepdims": 1}, opset=18)
    check_opencl(op, [rand((4, 6))], {"axes": [0], "keepdims": 0}, opset=11, atol=1e-5)
    check_opencl(op, [rand((4, 6)), np.array([], np.int64)], {"noop_with_empty_axes": 1}, opset=18)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_reductions(op):
    x = rand((3, 4, 5), np.int32, -2, 2)
    for axis in (0, 1, -1):
        for last in (0, 1):
            check_opencl(op, [x], {"axis": axis, "select_last_index": last}, opset=OPSET)
    check_opencl(op, [rand((3, 4))], {"axis": 1, "keepdims": 0}, opset=OPSET)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_family(op):
    x = rand((2, 3, 5), lo=-10, hi=10)
    for axis in (0, 1, -1):
        check_opencl(op, [x], {"axis": axis}, opset=13, rtol=1e-5, atol=1e-6)
    check_opencl(op, [x], {"axis": 1}, opset=11, rtol=1e-5, atol=1e-6)  # coerced to 2-D


# -- linear algebra, conv, pooling, normalization ----------------------------------------------------
@pytest.mark.parametrize(
    "a,b",
    [((3, 4), (4, 5)), ((17, 33), (33, 19)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 6)),
     ((4,), (4, 3)), ((3, 4), (4,)), ((7,), (7,)), ((0, 4), (4, 3)), ((70, 20), (20, 65))],
    ids=str,
)  # fmt: skip
def test_matmul(a, b):
    check_opencl("MatMul", [rand(a), rand(b)], opset=OPSET, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("c_shape", [None, (1,), (19,), (21, 1), (21, 19)], ids=str)
def test_gemm(ta, tb, c_shape):
    a = rand((37, 21) if ta else (21, 37))
    b = rand((19, 37) if tb else (37, 19))
    inputs = [a, b] + ([] if c_shape is None else [rand(c_shape)])
    attrs = {"transA": ta, "transB": tb, "alpha": 0.7, "beta": 1.3}
    check_opencl("Gemm", inputs, attrs, opset=13, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "x,w,attrs",
    [((1, 3, 9, 9), (4, 3, 3, 3), {}),
     ((2, 4, 10, 11), (6, 2, 3, 2), {"group": 2, "strides": [2, 1], "pads": [1, 0, 2, 1]}),
     ((1, 4, 12, 12), (4, 1, 3, 3), {"group": 4, "dilations": [2, 2], "auto_pad": "SAME_UPPER"}),
     ((1, 2, 7, 8), (3, 2, 3, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 2]}),
     ((1, 2, 7, 8), (3, 2, 2, 3), {"auto_pad": "VALID"}),
     ((2, 3, 20), (5, 3, 4), {"strides": [3], "pads": [2, 1]}),
     ((1, 2, 4, 5, 6), (3, 2, 2, 3, 2), {"pads": [1, 0, 1, 0, 1, 1]})],
    ids=["basic", "groups-strides-pads", "depthwise-dilated", "same-lower", "valid", "1d", "3d"],
)  # fmt: skip
@pytest.mark.parametrize("bias", [False, True])
def test_conv(x, w, attrs, bias):
    inputs = [rand(x), rand(w)] + ([rand((w[0],))] if bias else [])
    check_opencl("Conv", inputs, attrs, opset=OPSET, rtol=1e-5, atol=1e-5)


POOLS = [
    ({"kernel_shape": [3, 3]}, (1, 2, 7, 9)),
    ({"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1]}, (2, 3, 8, 7)),
    ({"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, (1, 2, 8, 8)),
    ({"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"}, (1, 1, 5, 5)),
    ({"kernel_shape": [3], "strides": [2], "pads": [1, 1]}, (2, 3, 11)),
    ({"kernel_shape": [2, 2, 2]}, (1, 2, 3, 4, 5)),
]


@pytest.mark.parametrize("attrs,shape", POOLS, ids=str)
def test_max_pool(attrs, shape):
    check_opencl(
        "MaxPool",
        [rand(shape)],
        dict(attrs, dilations=[1] * len(attrs["kernel_shape"])),
        opset=OPSET,
    )


@pytest.mark.parametrize("attrs,shape", POOLS, ids=str)
@pytest.mark.parametrize("include_pad", [0, 1])
def test_average_pool(attrs, shape, include_pad):
    check_opencl(
        "AveragePool", [rand(shape)], dict(attrs, count_include_pad=include_pad), opset=OPSET
    )


def test_global_pools_and_lrn():
    for op in ("GlobalAveragePool", "GlobalMaxPool"):
        check_opencl(op, [rand((2, 3, 5, 7))], opset=OPSET, rtol=1e-5, atol=1e-6)
        check_opencl(op, [rand((1, 4, 9))], opset=OPSET, rtol=1e-5, atol=1e-6)
    check_opencl("LRN", [rand((2, 7, 3, 4))], {"size": 3}, opset=OPSET)
    check_opencl(
        "LRN", [rand((1, 6, 5))], {"size": 4, "alpha": 0.01, "beta": 0.5, "bias": 2.0}, opset=OPSET
    )


def test_normalizations():
    x = rand((2, 3, 4, 5))
    c = [rand((3,)), rand((3,)), rand((3,)), rand((3,), lo=0.5, hi=2)]
    check_opencl("BatchNormalization", [x, *c], {"epsilon": 1e-3}, opset=15, rtol=1e-5, atol=1e-5)
    check_opencl("BatchNormalization", [rand((4, 3)), *c], opset=9, rtol=1e-5, atol=1e-5)
    check_opencl("InstanceNormalization", [x, c[0], c[1]], opset=OPSET, rtol=1e-4, atol=1e-4)
    for axis in (-1, 1, 2):
        norm = x.shape[axis:]
        check_opencl(
            "LayerNormalization", [x, rand(norm), rand(norm)], {"axis": axis}, opset=17,
            n_outputs=3, rtol=1e-4, atol=1e-4,
        )  # fmt: skip
    check_opencl("LayerNormalization", [x, rand((5,))], opset=17, rtol=1e-4, atol=1e-4)


# -- shapes and data movement ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_, np.float16, np.uint8])
def test_data_movement(dtype):
    x = rand((2, 3, 4, 5), dtype)
    check_opencl("Transpose", [x], {"perm": [2, 0, 3, 1]}, opset=OPSET)
    check_opencl("Transpose", [x], opset=OPSET)
    check_opencl("Reshape", [x, np.array([0, -1, 5], np.int64)], opset=OPSET)
    check_opencl("Flatten", [x], {"axis": 2}, opset=OPSET)
    check_opencl("Unsqueeze", [x, np.array([0, -1], np.int64)], opset=OPSET)
    check_opencl("Squeeze", [rand((1, 3, 1), dtype), np.array([0], np.int64)], opset=OPSET)
    check_opencl(
        "Concat",
        [x, rand((2, 1, 4, 5), dtype), rand((2, 0, 4, 5), dtype)],
        {"axis": 1},
        opset=OPSET,
    )
    check_opencl("Expand", [rand((3, 1), dtype), np.array([2, 1, 4], np.int64)], opset=OPSET)
    check_opencl("Tile", [rand((2, 3), dtype), np.array([2, 3], np.int64)], opset=OPSET)
    check_opencl("Identity", [x], opset=OPSET)


def test_slice_split_pad_gather():
    x = rand((5, 6, 7))
    for starts, ends, axes, steps in [([1, 0], [4, 6], [0, 2], [1, 2]), ([-1], [-6], [1], [-2]),
                                      ([0], [100], [-1], [3]), ([4], [1], [0], [1])]:  # fmt: skip
        inputs = [x] + [np.array(v, np.int64) for v in (starts, ends, axes, steps)]
        check_opencl("Slice", inputs, opset=OPSET)
    check_opencl("Split", [x, np.array([2, 4], np.int64)], {"axis": 1}, opset=OPSET, n_outputs=2)
    check_opencl("Split", [x], {"axis": 2, "num_outputs": 3}, opset=OPSET, n_outputs=3)
    check_opencl("Pad", [x, np.array([1, 0, 2, 0, 1, 1], np.int64), np.float32(2.5)], opset=OPSET)
    check_opencl("Pad", [x, np.array([0, -1, 1, 1, 0, -2], np.int64)], opset=OPSET)
    for axis in (0, 1, -1):
        check_opencl(
            "Gather", [x, np.array([[0, -1], [2, 1]], np.int64)], {"axis": axis}, opset=OPSET
        )
    check_opencl("Gather", [rand((4, 3), np.int64), np.array(2, np.int32)], opset=OPSET)


def test_generated_tensors():
    check_opencl(
        "ConstantOfShape", [np.array([2, 3], np.int64)],
        {"value": helper.make_tensor("v", TensorProto.INT32, [1], [7])}, opset=OPSET,
    )  # fmt: skip
    check_opencl("ConstantOfShape", [np.array([4], np.int64)], opset=OPSET)
    check_opencl("Shape", [rand((2, 3, 4))], {"start": 1}, opset=OPSET)
    check_opencl("Size", [rand((2, 3, 4))], opset=OPSET)


@pytest.mark.parametrize(
    "attrs",
    [{"mode": "nearest"}, {"mode": "linear"}, {"mode": "cubic"},
     {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
     {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
     {"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5},
     {"mode": "linear", "antialias": 1}],
    ids=str,
)  # fmt: skip
def test_resize(attrs):
    x = rand((1, 2, 5, 6))
    scales = np.array([1, 1, 1.6, 0.5], np.float32)
    check_opencl("Resize", [x, None, scales], attrs, opset=19, rtol=1e-5, atol=1e-5)
    sizes = np.array([1, 2, 9, 4], np.int64)
    check_opencl("Resize", [x, None, None, sizes], attrs, opset=19, rtol=1e-5, atol=1e-5)


# -- declines ----------------------------------------------------------------------------------------
def test_declines_carry_reasons():
    assert "training_mode" in declined(
        "BatchNormalization", [rand((2, 3, 4)), *[rand((3,))] * 3, rand((3,), lo=1)],
        {"training_mode": 1}, opset=15,
    )  # fmt: skip
    assert "element type" in declined("Exp", [rand((3,), np.float64)], opset=OPSET)
    assert "storage_order" in declined(
        "MaxPool", [rand((1, 1, 4, 4))], {"kernel_shape": [2, 2], "storage_order": 1}, opset=OPSET
    )


def test_float16_follows_the_device():
    from ort_core.plugins import get_plugin_manager

    dev = get_plugin_manager().resolve("OpenCLExecutionProvider").cls().cl
    x = rand((3, 4), np.float16)
    if dev.fp16:
        check_opencl("Relu", [x], opset=OPSET)
        check_opencl("Add", [x, rand((4,), np.float16)], opset=OPSET, rtol=1e-3, atol=1e-3)
    else:
        assert "cl_khr_fp16" in declined("Relu", [x], opset=OPSET)
