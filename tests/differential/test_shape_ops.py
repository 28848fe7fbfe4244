"""Shape ops on the CPU provider against onnx's ReferenceEvaluator."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from .harness import check_node, make_node_model, run_cpu

DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_]


def random_arrays(rng: np.random.Generator):
    """A ``rand(shape, dtype)`` drawing from ``rng`` (also used by test_indexing/test_combine)."""

    def rand(shape, dtype=np.float32):
        dtype = np.dtype(dtype)
        if dtype == np.bool_:
            return rng.random(shape) > 0.5
        if dtype.kind in "iu":
            return rng.integers(0, 50, size=shape).astype(dtype)
        if dtype.kind == "O":
            return rng.choice(np.array(["a", "bb", "c", ""], dtype=object), size=shape)
        return rng.standard_normal(shape).astype(np.float32).astype(dtype)

    return rand


def i64(*values):
    return np.array(values, dtype=np.int64)


def run_only_cpu(op, inputs, attrs=None, opset=None, n_outputs=1):
    """Run a one-node model on the CPU provider alone (where the reference evaluator cannot)."""
    model, feeds = make_node_model(op, inputs, attrs, opset=opset, n_outputs=n_outputs)
    return run_cpu(model, feeds)


rng = np.random.default_rng(0)
rand = random_arrays(rng)


# -- Identity / Constant ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (3, 1, 2)])
def test_identity(dtype, shape):
    check_node("Identity", [rand(shape, dtype)])


def test_identity_sequence():
    check_node("Identity", [[rand((2, 3)), rand((1, 3))]], opset=14)


@pytest.mark.parametrize(
    "attrs",
    [
        {"value": numpy_helper.from_array(rand((2, 3), np.float16))},
        {"value": numpy_helper.from_array(rand((), np.int32))},
        {"value": numpy_helper.from_array(np.zeros((0, 2), np.int64))},
        {"value_float": 2.5},
        {"value_floats": [1.0, -2.0]},
        {"value_int": 7},
        {"value_ints": [3, 4, 5]},
    ],
    ids=["tensor_f16", "tensor_scalar", "tensor_empty", "float", "floats", "int", "ints"],
)
def test_constant(attrs):
    check_node("Constant", [], attrs, opset=13)


def test_constant_sparse():
    values = numpy_helper.from_array(np.array([1.5, -2.0], np.float32), "v")
    indices = numpy_helper.from_array(np.array([1, 4], np.int64), "i")
    sparse = helper.make_sparse_tensor(values, indices, [2, 3])
    # The reference evaluator cannot return sparse values: compare with the densified tensor.
    (y,) = run_only_cpu("Constant", [], {"sparse_value": sparse}, opset=13)
    expected = np.zeros(6, np.float32)
    expected[[1, 4]] = [1.5, -2.0]
    np.testing.assert_array_equal(y, expected.reshape(2, 3))
    assert y.dtype == np.float32


def test_constant_strings():
    # The reference evaluator gives value_strings as a '<U' array; ort-core's strings are objects.
    (y,) = run_only_cpu("Constant", [], {"value_strings": ["a", "bcd"]}, opset=13)
    assert y.dtype == object and y.tolist() == ["a", "bcd"]
    (y,) = run_only_cpu("Constant", [], {"value_string": "xy"}, opset=13)
    assert y.dtype == object and y.shape == () and y.item() == "xy"
    t = numpy_helper.from_array(np.array([["p", "q"]], dtype=object))
    check_node("Constant", [], {"value": t}, opset=13)


def test_constant_output_is_fresh():
    model, feeds = make_node_model("Constant", [], {"value_ints": [1, 2]}, opset=13)
    a = run_cpu(model, feeds)[0]
    a[0] = 99
    assert run_cpu(model, feeds)[0].tolist() == [1, 2]


@pytest.mark.parametrize(
    "shape,value",
    [
        (i64(2, 3), None),
        (i64(), np.array([5], np.int32)),
        (i64(0, 4), np.array([1.5], np.float64)),
        (i64(1, 2, 1), np.array([True])),
        (i64(3), np.array([2], np.int8)),
    ],
)
def test_constant_of_shape(shape, value):
    attrs = {} if value is None else {"value": numpy_helper.from_array(value)}
    check_node("ConstantOfShape", [shape], attrs)


# -- Shape / Size ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(), (0,), (2, 3, 4, 5)])
def test_shape_size(shape):
    x = rand(shape)
    check_node("Shape", [x], opset=13)
    check_node("Size", [x])


@pytest.mark.parametrize(
    "start,end", [(1, None), (-2, None), (0, -1), (-10, 10), (3, 1), (None, 2)]
)
def test_shape_start_end(start, end):
    attrs = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    check_node("Shape", [rand((2, 3, 4, 5))], attrs, opset=15)


# -- Reshape / Flatten -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "in_shape,shape,allowzero",
    [
        ((2, 3, 4), (4, -1), 0),
        ((2, 3, 4), (0, 12), 0),
        ((2, 3, 4), (0, 0, -1), 0),
        ((2, 3, 4), (-1,), 0),
        ((1,), (), 0),
        ((), (1, 1), 0),
        ((0, 3), (3, -1), 0),
        ((0, 3), (0, 3), 1),
        ((0, 3), (3, 0), 1),
        ((2, 3, 4), (2, 3, 4), 1),
    ],
)
def test_reshape(in_shape, shape, allowzero):
    x = rand(in_shape)
    opset = 14 if allowzero else 13
    attrs = {"allowzero": allowzero} if allowzero else {}
    check_node("Reshape", [x, np.array(shape, np.int64)], attrs, opset=opset)
    if not allowzero:
        check_node("Reshape", [x, np.array(shape, np.int64)], opset=5)


def test_reshape_is_a_view():
    x = rand((2, 6))
    from ort_cpu.kernels.shape_ops import reshape

    assert np.shares_memory(reshape(x, i64(3, 4)), x)


@pytest.mark.parametrize("shape", [(1, 2, 2), (4, 0)])
def test_reshape_bad_shape(shape):
    with pytest.raises(Exception, match="Reshape"):
        run_only_cpu("Reshape", [rand((2, 3)), np.array(shape, np.int64)])


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_flatten(axis, dtype):
    check_node("Flatten", [rand((2, 3, 1, 4), dtype)], {"axis": axis}, opset=13)


def test_flatten_default_axis_opset1():
    check_node("Flatten", [rand((2, 3, 4))], opset=1)


# -- Squeeze / Unsqueeze ---------------------------------------------------------------------------
@pytest.mark.parametrize("axes", [None, [0], [-1], [0, 3]])
def test_squeeze(axes):
    x = rand((1, 3, 2, 1))
    check_node("Squeeze", [x] + ([] if axes is None else [np.array(axes, np.int64)]), opset=13)
    check_node("Squeeze", [x], {} if axes is None else {"axes": axes}, opset=11)
    if axes is None or min(axes) >= 0:
        check_node("Squeeze", [x], {} if axes is None else {"axes": axes}, opset=1)


def test_squeeze_not_one():
    with pytest.raises(Exception, match="Squeeze"):
        run_only_cpu("Squeeze", [rand((1, 3)), i64(1)], opset=13)


@pytest.mark.parametrize(
    "shape,axes", [((), [0]), ((3,), [0, 2]), ((2, 3), [-1]), ((2, 3), [-1, 0]), ((0, 2), [1])]
)
def test_unsqueeze(shape, axes):
    x = rand(shape)
    check_node("Unsqueeze", [x, np.array(axes, np.int64)], opset=13)
    check_node("Unsqueeze", [x], {"axes": axes}, opset=11)
    check_node("Unsqueeze", [x, np.array(axes, np.int32).astype(np.int64)], opset=21)


def test_unsqueeze_axes_order_free():
    # The spec says the order of axes does not matter; the reference evaluator inserts them one
    # by one, so compare against it with the axes already normalized and sorted.
    x = rand((2, 3))
    (got,) = run_only_cpu("Unsqueeze", [x, i64(1, -1, 0)], opset=13)
    (expected,) = check_node("Unsqueeze", [x, i64(0, 1, 4)], opset=13)
    np.testing.assert_array_equal(got, expected)
    assert got.shape == (1, 1, 2, 3, 1)


def test_unsqueeze_repeated_axis():
    with pytest.raises(Exception, match="Unsqueeze"):
        run_only_cpu("Unsqueeze", [rand((2,)), i64(0, 0)], opset=13)


# -- Expand / Transpose ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "in_shape,shape",
    [
        ((3, 1), (2, 1, 6)),
        ((), (2, 3)),
        ((2, 3), (3,)),
        ((1, 4), (1,)),
        ((2, 1), (2, 0)),
        ((3,), ()),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_expand(in_shape, shape, dtype):
    check_node("Expand", [rand(in_shape, dtype), np.array(shape, np.int64)])


def test_expand_output_writable():
    (y,) = run_only_cpu("Expand", [rand((1, 3)), i64(4, 3)])
    y[0, 0] = 1.0


def test_expand_incompatible():
    with pytest.raises(Exception, match="Expand"):
        run_only_cpu("Expand", [rand((2, 3)), i64(4, 3)])


@pytest.mark.parametrize(
    "shape,perm", [((2, 3, 4), None), ((2, 3, 4), [1, 0, 2]), ((0, 2), [1, 0]), ((), None)]
)
@pytest.mark.parametrize("dtype", [np.float16, np.int32, ml_dtypes.bfloat16])
def test_transpose(shape, perm, dtype):
    x = rand(shape, np.float32).astype(dtype)
    check_node("Transpose", [x], {} if perm is None else {"perm": perm})


# -- Range / EyeLike -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "start,limit,delta",
    [(0, 10, 3), (10, 4, -2), (3, 3, 1), (5, 1, 1), (-7, 8, 5), (1, 2, 100)],
)
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.int16, np.float32, np.float64])
def test_range(start, limit, delta, dtype):
    args = [np.array(v, dtype) for v in (start, limit, delta)]
    check_node("Range", args, opset=11)


@pytest.mark.parametrize(
    "start,limit,delta", [(0.1, 1.0, 0.3), (1.0, -1.0, -0.25), (0.0, 1.0, 0.07)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, ml_dtypes.bfloat16])
def test_range_float(start, limit, delta, dtype):
    args = [np.array(v, dtype) for v in (start, limit, delta)]
    opset = 27 if np.dtype(dtype).itemsize == 2 else 11
    check_node("Range", args, opset=opset, rtol=1e-2, atol=1e-2)


def test_range_zero_delta():
    with pytest.raises(Exception, match="Range"):
        run_only_cpu("Range", [np.array(v, np.int64) for v in (0, 3, 0)], opset=11)


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (5, 2), (0, 3)])
@pytest.mark.parametrize("k", [0, 1, -1, 4])
def test_eye_like(shape, k):
    check_node("EyeLike", [rand(shape)], {"k": k})
    check_node("EyeLike", [rand(shape, np.int32)], {"k": k, "dtype": TensorProto.DOUBLE})
    check_node("EyeLike", [rand(shape, np.int8)], {"k": k, "dtype": TensorProto.BFLOAT16}, opset=22)
