"""Reduction, softmax-family and CumSum kernels against onnx's ReferenceEvaluator."""

from __future__ import annotations

import numpy as np
import pytest

from . import harness
from .harness import check_node, make_node_model

rng = np.random.default_rng(1)

REDUCE = [
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp",
]  # fmt: skip
INPUT_AXES_SINCE = {"ReduceSum": 13}
AXES = [None, [0], [-1], [0, 2], [1, 0, 2]]


def data(shape, dtype=np.float32, positive=False):
    lo = 0.5 if positive else -2.0
    if np.dtype(dtype).kind in "iu":
        return rng.integers(1 if positive else -4, 5, size=shape).astype(dtype)
    return rng.uniform(lo, 2.0, size=shape).astype(dtype)


def tol(dtype):
    return {"rtol": 3e-3, "atol": 3e-3} if dtype == np.float16 else {"rtol": 1e-5, "atol": 1e-5}


def positive(op):
    return op in ("ReduceLogSum", "ReduceProd")


@pytest.mark.parametrize("op", REDUCE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_reduce_input_axes(op, dtype):
    x = data((2, 3, 4), dtype, positive(op))
    for axes in AXES:
        for keepdims in (0, 1):
            inputs = [x] if axes is None else [x, np.array(axes, np.int64)]
            check_node(op, inputs, {"keepdims": keepdims}, **tol(dtype))


@pytest.mark.parametrize("op", REDUCE)
def test_reduce_attr_axes(op):
    x = data((3, 2, 5), np.float32, positive(op))
    opset = INPUT_AXES_SINCE.get(op, 18) - 1
    for axes in AXES:
        attrs = {"keepdims": 0} if axes is None else {"axes": axes, "keepdims": 0}
        check_node(op, [x], attrs, opset=opset)
        check_node(op, [x], {**attrs, "keepdims": 1}, opset=11)


@pytest.mark.parametrize("op", REDUCE)
def test_reduce_noop_and_empty(op):
    x = data((2, 3), np.float32, positive(op))
    empty_axes = np.array([], np.int64)
    check_node(op, [x, empty_axes], {"noop_with_empty_axes": 1})
    check_node(op, [x], {"noop_with_empty_axes": 1})
    check_node(op, [x, empty_axes], {"noop_with_empty_axes": 0})
    if op not in ("ReduceMean",):  # empty mean is undefined
        e = np.zeros((2, 0, 3), np.float32)
        check_node(op, [e, np.array([1], np.int64)], {"keepdims": 1})
        check_node(op, [e, np.array([1], np.int64)], {"keepdims": 0})


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                                "ReduceSumSquare", "ReduceMean"])  # fmt: skip
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8])
def test_reduce_int(op, dtype):
    if op == "ReduceSumSquare" and dtype != np.int64:
        pytest.skip("the reference widens small-int ReduceSumSquare to 64 bits")
    x = data((3, 4), dtype, positive=dtype == np.uint8)
    check_node(op, [x, np.array([1], np.int64)], {"keepdims": 0})
    check_node(op, [x], {"keepdims": 1})


@pytest.mark.parametrize("op", REDUCE)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64])
def test_reduce_over_axes_of_one(op, dtype):
    """Reducing axes of length one (a voice model's mean over a one-cell axis): Sum, Mean, Max,
    Min and Prod return the input's values reshaped, without a reduction; every op agrees with
    the reference, NaN, -0.0 and all."""
    if dtype == np.int64 and op in ("ReduceLogSum", "ReduceLogSumExp"):
        pytest.skip("the reference takes floats only for the log reductions")
    x = data((2, 1, 3, 1), dtype, positive(op))
    if dtype != np.int64:
        x.flat[:3] = [np.nan, -0.0, 0.0]
    for axes in ([1], [1, 3], [-1]):
        for keepdims in (0, 1):
            check_node(op, [x, np.array(axes, np.int64)], {"keepdims": keepdims})
    one = data((1, 1), dtype, positive(op))
    check_node(op, [one], {"keepdims": 0})  # all axes, each of one


def test_reduce_scalar_and_bool():
    check_node("ReduceSum", [np.float32(3.0)])
    check_node("ReduceMax", [rng.random((3, 4)) < 0.5, np.array([1], np.int64)], opset=20)
    check_node("ReduceMin", [rng.random((3, 4)) < 0.5], opset=20)


def test_reduce_log_sum_exp_large():
    x = np.array([[1000.0, 1000.0], [-1000.0, 0.0]], np.float32)
    check_node("ReduceLogSumExp", [x, np.array([1], np.int64)])


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.int64])
def test_arg(op, dtype):
    x = data((3, 4, 5), dtype)
    for axis in (0, 1, -1):
        for keepdims in (0, 1):
            for last in (0, 1):
                attrs = {"axis": axis, "keepdims": keepdims, "select_last_index": last}
                check_node(op, [x], attrs)
    check_node(op, [x], {"axis": 1}, opset=11)
    ties = np.array([[1, 3, 3, 0], [2, 2, 0, 0]], dtype)
    check_node(op, [ties], {"axis": 1, "select_last_index": 1})
    check_node(op, [ties], {"axis": 1, "select_last_index": 0})


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_softmax_family(op, dtype):
    x = data((2, 3, 4), dtype) * 3
    for axis in (0, 1, 2, -1):
        check_node(op, [x], {"axis": axis}, **tol(dtype))
    check_node(op, [x], opset=13, **tol(dtype))
    check_node(op, [data((5,), dtype)], **tol(dtype))
    # Before opset 13 the input is flattened to 2-D at `axis`; the reference evaluator ignores
    # that, so compare with it only where both readings agree (the last axis).
    check_node(op, [x], {"axis": 2}, opset=11, **tol(dtype))
    check_node(op, [x], {"axis": -1}, opset=11, **tol(dtype))
    check_node(op, [x.reshape(6, 4)], opset=1, **tol(dtype))


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("axis", [0, 1, -2])
def test_softmax_family_legacy_flattens(op, axis):
    x = data((2, 3, 4)) * 3
    (got,) = harness.run_cpu(*make_node_model(op, [x], {"axis": axis}, opset=11))
    (flat,) = check_node(op, [x.reshape(int(np.prod(x.shape[:axis])), -1)], {"axis": 1})
    np.testing.assert_allclose(got, flat.reshape(x.shape), rtol=1e-6)


def test_softmax_extreme():
    x = np.array([[1000.0, 0.0, -1000.0], [1.0, 1.0, 1.0]], np.float32)
    check_node("Softmax", [x])
    check_node("LogSoftmax", [x / 100], atol=1e-4)  # the reference's log(softmax) hits -inf
    check_node("Hardmax", [x])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("op", ["CumSum", "CumProd"])
def test_cumulative(op, dtype, exclusive, reverse):
    x = data((3, 4, 2), dtype)
    for axis in (0, 1, -1):
        for adt in (np.int32, np.int64):
            check_node(
                op,
                [x, np.array(axis, adt)],
                {"exclusive": exclusive, "reverse": reverse},
            )
    check_node(op, [data((6,), dtype), np.array(0, np.int64)], {"reverse": reverse})
