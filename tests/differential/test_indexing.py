"""Indexing ops on the CPU provider against onnx's ReferenceEvaluator."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from .harness import check_node
from .test_shape_ops import random_arrays, run_only_cpu

rng = np.random.default_rng(1)
rand = random_arrays(rng)
IDX = [np.int64, np.int32]


def indices(shape, size, dtype=np.int64, negative=True):
    lo = -size if negative else 0
    return rng.integers(lo, size, size=shape).astype(dtype) if size else np.zeros(shape, dtype)


# -- Gather ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,axis,ishape",
    [
        ((5, 4), 0, (3,)),
        ((5, 4), 1, (2, 2)),
        ((3, 4, 5), -1, ()),
        ((6,), 0, (0,)),
        ((2, 3), -2, (4,)),
    ],
)
@pytest.mark.parametrize("itype", IDX)
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.bool_, object, ml_dtypes.bfloat16])
def test_gather(shape, axis, ishape, itype, dtype):
    x = rand(shape, dtype)
    idx = indices(ishape, shape[axis], itype)
    check_node("Gather", [x, idx], {"axis": axis}, opset=13)


def test_gather_opset1():
    check_node("Gather", [rand((4, 3)), indices((2, 2), 3, negative=False)], {"axis": 1}, opset=1)


@pytest.mark.parametrize("bad", [5, -6])
def test_gather_out_of_range(bad):
    idx = np.array([0, bad], np.int64)
    with pytest.raises(Exception, match=rf"Gather.*{bad}"):
        run_only_cpu("Gather", [rand((5, 2)), idx])


@pytest.mark.parametrize("idx", [[0, 2], [-1], [[1, -3], [0, 0]], -2, []])
def test_gather_with_constant_indices(idx):
    """Constant indices (an initializer) are range-found once per node: negatives count from the
    end of each run's axis, whatever its length, and an index out of a run's range is still the
    checked error."""
    from onnx import TensorProto, helper, numpy_helper

    import ort_core as ort

    i = np.array(idx, np.int64)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["x", "i"], ["y"], axis=1)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, "n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(i, "i")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for n in (4, 3, 7):  # the axis length changes between runs
        x = rng.standard_normal((2, n, 3)).astype(np.float32)
        np.testing.assert_array_equal(sess.run(None, {"x": x})[0], np.take(x, i, axis=1))
    x2 = np.zeros((2, 2, 3), np.float32)  # 2 cells: -3 or 2 is out of range
    if i.size and (i.min() < -2 or i.max() > 1):
        with pytest.raises(Exception, match=r"Gather: index .* out of range \[-2, 1\]"):
            sess.run(None, {"x": x2})
    else:
        np.testing.assert_array_equal(sess.run(None, {"x": x2})[0], np.take(x2, i, axis=1))


@pytest.mark.parametrize(
    "shape,axis,ishape",
    [
        ((3, 4), 0, (2, 4)),
        ((3, 4), 1, (3, 6)),
        ((2, 3, 4), -1, (2, 3, 4)),
        ((2, 3, 4), 2, (2, 3, 6)),
        ((3,), 0, (0,)),
    ],
)
@pytest.mark.parametrize("itype", IDX)
def test_gather_elements(shape, axis, ishape, itype):
    x = rand(shape)
    idx = indices(ishape, shape[axis], itype)
    check_node("GatherElements", [x, idx], {"axis": axis}, opset=13)
    check_node("GatherElements", [rand(shape, np.int16), idx], {"axis": axis}, opset=11)


def test_gather_elements_smaller_indices():
    # indices may be smaller than data off the axis; the reference evaluator cannot do that
    x = rand((3, 4, 5))
    idx = indices((2, 3, 2), 4)
    (got,) = run_only_cpu("GatherElements", [x, idx], {"axis": 1})
    expected = np.take_along_axis(x[:2, :, :2], np.where(idx < 0, idx + 4, idx), axis=1)
    np.testing.assert_array_equal(got, expected)


def test_gather_elements_out_of_range():
    with pytest.raises(Exception, match="GatherElements.*7"):
        run_only_cpu("GatherElements", [rand((3, 3)), np.array([[0, 7]], np.int64)], {"axis": 1})


@pytest.mark.parametrize(
    "dshape,ishape,batch_dims",
    [
        ((2, 2), (2, 2), 0),
        ((2, 2), (2, 1), 0),
        ((2, 2, 2), (2, 1, 2), 0),
        ((3, 4, 5), (6, 3), 0),
        ((2, 2, 2), (2, 1), 1),
        ((2, 3, 4, 5), (2, 3, 2, 1), 2),
        ((2, 3, 4), (2, 0, 2), 1),
    ],
)
@pytest.mark.parametrize("itype", IDX)
def test_gather_nd(dshape, ishape, batch_dims, itype):
    x = rand(dshape)
    k = ishape[-1]
    comps = [indices(ishape[:-1], dshape[batch_dims + j], itype) for j in range(k)]
    idx = np.stack(comps, axis=-1) if k else np.zeros(ishape, itype)
    check_node("GatherND", [x, idx], {"batch_dims": batch_dims}, opset=13)
    if batch_dims == 0:
        check_node("GatherND", [x, idx], opset=11)


def test_gather_nd_empty_index_tuples():
    # k = 0 selects the whole tensor for every index tuple; the reference evaluator cannot do it
    x = rand((4, 3))
    (got,) = run_only_cpu("GatherND", [x, np.zeros((5, 0), np.int64)])
    np.testing.assert_array_equal(got, np.broadcast_to(x, (5, 4, 3)))


def test_gather_nd_out_of_range():
    with pytest.raises(Exception, match="GatherND.*-4"):
        run_only_cpu("GatherND", [rand((3, 3)), np.array([[0, -4]], np.int64)])


# -- Scatter ---------------------------------------------------------------------------------------
def unique_positions(shape, axis, ishape, itype):
    """Indices without duplicates along ``axis`` (the result of duplicates is unspecified)."""
    n = shape[axis]
    perm = np.argsort(rng.random((*ishape[:axis], n, *ishape[axis + 1 :])), axis=axis)
    idx = np.take(perm, np.arange(ishape[axis]), axis=axis)
    return np.where(rng.random(idx.shape) < 0.3, idx - n, idx).astype(itype)


@pytest.mark.parametrize(
    "shape,axis,ishape", [((3, 4), 0, (2, 4)), ((3, 5), 1, (3, 2)), ((2, 3, 4), -1, (1, 3, 4))]
)
@pytest.mark.parametrize("itype", IDX)
def test_scatter_elements(shape, axis, ishape, itype):
    x = rand(shape)
    idx = unique_positions(shape, axis % len(shape), ishape, itype)
    upd = rand(ishape)
    check_node("ScatterElements", [x, idx, upd], {"axis": axis}, opset=13)
    (expected,) = check_node("ScatterElements", [x, idx, upd], {"axis": axis}, opset=11)
    # the reference evaluator has no Scatter (the deprecated name of ScatterElements)
    (got,) = run_only_cpu("Scatter", [x, idx, upd], {"axis": axis}, opset=10)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("reduction", ["add", "mul", "max", "min"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float16])
def test_scatter_elements_reduction(reduction, dtype):
    x = rand((4, 3), dtype)
    idx = indices((6, 3), 4)  # duplicates: every reduction must accumulate them
    upd = rand((6, 3), dtype)
    opset = 16 if reduction in ("add", "mul") else 18
    check_node("ScatterElements", [x, idx, upd], {"reduction": reduction}, opset=opset, rtol=1e-2)


def test_scatter_elements_bfloat16_add():
    x = rand((4, 3), ml_dtypes.bfloat16)
    idx = indices((5, 3), 4)
    upd = rand((5, 3), ml_dtypes.bfloat16)
    check_node("ScatterElements", [x, idx, upd], {"reduction": "add"}, rtol=2e-2, atol=2e-2)


def test_scatter_elements_out_of_range():
    with pytest.raises(Exception, match="ScatterElements.*4"):
        run_only_cpu("ScatterElements", [rand((4, 2)), np.array([[4, 0]], np.int64), rand((1, 2))])


@pytest.mark.parametrize(
    "dshape,ishape", [((8,), (4, 1)), ((4, 4, 4), (2, 1)), ((4, 4, 4), (2, 2)), ((3, 5), (3, 2))]
)
@pytest.mark.parametrize("itype", IDX)
def test_scatter_nd(dshape, ishape, itype):
    x = rand(dshape)
    k = ishape[-1]
    n = ishape[0]
    flat = rng.permutation(int(np.prod(dshape[:k])))[:n]  # distinct positions
    idx = np.stack(np.unravel_index(flat, dshape[:k]), axis=-1).astype(itype)
    idx = np.where(rng.random(idx.shape) < 0.3, idx - np.array(dshape[:k]), idx).astype(itype)
    upd = rand(ishape[:-1] + dshape[k:])
    check_node("ScatterND", [x, idx, upd], opset=13)


@pytest.mark.parametrize("reduction", ["add", "mul", "max", "min"])
def test_scatter_nd_reduction(reduction):
    x = rand((4, 3))
    idx = np.array([[1], [3], [1], [1]], np.int64)
    upd = rand((4, 3))
    opset = 16 if reduction in ("add", "mul") else 18
    check_node("ScatterND", [x, idx, upd], {"reduction": reduction}, opset=opset)


def test_scatter_nd_out_of_range():
    with pytest.raises(Exception, match="ScatterND.*9"):
        run_only_cpu("ScatterND", [rand((4, 3)), np.array([[9]], np.int64), rand((1, 3))])


# -- Slice -----------------------------------------------------------------------------------------
SLICES = [
    ([0, 1], [2, 3], None, None),
    ([1], [-1], [1], None),
    ([-100], [100], [0], None),
    ([3, 0], [0, 4], [0, 1], [-1, 2]),
    ([-1], [-100], [-1], [-2]),
    ([10], [-10], [1], [-1]),
    ([2], [2], [0], None),
    ([0, 0, 0], [9, 9, 9], [2, 0, 1], [1, 3, 2]),
    ([5], [0], [2], [1]),
]


@pytest.mark.parametrize("starts,ends,axes,steps", SLICES)
@pytest.mark.parametrize("itype", IDX)
def test_slice(starts, ends, axes, steps, itype):
    x = rand((4, 5, 6))
    ins = [x, np.array(starts, itype), np.array(ends, itype)]
    if axes is not None or steps is not None:
        ins.append(np.array(axes if axes is not None else range(len(starts)), itype))
    if steps is not None:
        ins.append(np.array(steps, itype))
    check_node("Slice", ins, opset=13)


@pytest.mark.parametrize("starts,ends,axes,steps", [s for s in SLICES if s[3] is None])
def test_slice_opset1(starts, ends, axes, steps):
    attrs = {"starts": starts, "ends": ends}
    if axes is not None:
        attrs["axes"] = axes
    check_node("Slice", [rand((4, 5, 6), np.int32)], attrs, opset=1)


def test_slice_is_a_view():
    from ort_array.kernels.indexing import slice_  # the kernel the CPU provider runs

    x = rand((6, 4))
    y = slice_(x, np.array([1]), np.array([5]), np.array([0]), np.array([2]))
    assert np.shares_memory(x, y)


def test_slice_index_kept_only_for_constant_bounds():
    """Host logic: the index worked out for read-only (constant) starts/ends/axes/steps is kept
    per input shape and used again; another shape gets its own; bounds in writable arrays (a
    run-time value) are read anew on every call, even the same array changed in place."""
    from ort_array.kernels import indexing

    def fixed(*v):
        a = np.array(v, np.int64)
        a.flags.writeable = False
        return a

    starts, ends, axes = fixed(1), fixed(-1), fixed(1)
    for shape in [(2, 6), (3, 9), (2, 6)]:
        x = rand(shape)
        np.testing.assert_array_equal(indexing.slice_(x, starts, ends, axes), x[:, 1:-1])
    assert sum(1 for k in indexing._SLICES if k[1] == id(starts)) == 2
    moving = np.array([0], np.int64)
    x = rand((5, 4))
    np.testing.assert_array_equal(indexing.slice_(x, moving, fixed(3)), x[0:3])
    moving[0] = 2
    np.testing.assert_array_equal(indexing.slice_(x, moving, fixed(3)), x[2:3])
    assert not any(k[1] == id(moving) for k in indexing._SLICES)


@pytest.mark.parametrize("shape,axis", [((4, 5), 0), ((4, 5), -1), ((3, 2, 2), None), ((0, 3), 1)])
@pytest.mark.parametrize("short", [False, True])
def test_compress(shape, axis, short):
    x = rand(shape)
    n = int(np.prod(shape)) if axis is None else shape[axis]
    cond = rng.random(max(n - 1, 0) if short else n) > 0.4
    check_node("Compress", [x, cond], {} if axis is None else {"axis": axis}, opset=11)


@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 4), (2, 3, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_, np.uint8])
def test_nonzero(shape, dtype):
    x = rand(shape, dtype)
    if dtype != np.bool_:
        x = np.where(rng.random(shape) < 0.5, np.zeros((), dtype), x).astype(dtype)
    check_node("NonZero", [x])


def test_nonzero_strings():
    check_node("NonZero", [np.array([["a", ""], ["", "bc"]], dtype=object)])


# -- OneHot ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ishape,axis", [((3,), -1), ((2, 3), 0), ((2, 3), 1), ((2, 3), -2), ((), 0)]
)
@pytest.mark.parametrize(
    "itype,dtype", [(np.int64, np.float32), (np.int32, np.int64), (np.float32, np.float32)]
)
def test_one_hot(ishape, axis, itype, dtype):
    depth = 5
    idx = rng.integers(-depth - 1, depth + 2, size=ishape).astype(itype)  # some out of range
    values = np.array([-1, 3], dtype)
    check_node("OneHot", [idx, np.array(depth, np.int64), values], {"axis": axis}, opset=11)


def test_one_hot_float_depth():
    idx = np.array([0, 2, 3], np.int64)
    check_node("OneHot", [idx, np.array(4.0, np.float32), np.array([0, 1], np.float32)], opset=9)


# -- TopK ------------------------------------------------------------------------------------------
def ties(shape, dtype=np.float32):
    return rng.integers(0, 4, size=shape).astype(dtype)  # many equal values


@pytest.mark.parametrize(
    "shape,axis,k", [((10,), -1, 3), ((4, 6), 0, 2), ((3, 5, 4), 1, 5), ((3, 4), 1, 0)]
)
@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8, np.float64])
def test_topk(shape, axis, k, largest, dtype):
    x = ties(shape, dtype)
    attrs = {"axis": axis, "largest": largest, "sorted": 1}
    check_node("TopK", [x, np.array([k], np.int64)], attrs, opset=11, n_outputs=2)


def test_topk_old_opsets():
    x = rand((3, 7))
    check_node("TopK", [x], {"k": 3}, opset=1, n_outputs=2)
    check_node("TopK", [x, np.array([2], np.int64)], {"axis": 0}, opset=10, n_outputs=2)


def test_topk_bfloat16():
    x = ties((4, 6), ml_dtypes.bfloat16)
    check_node("TopK", [x, np.array([3], np.int64)], opset=24, n_outputs=2)


def test_topk_k_too_large():
    with pytest.raises(Exception, match="TopK"):
        run_only_cpu("TopK", [rand((2, 3)), np.array([4], np.int64)], opset=11, n_outputs=2)


# -- Unique ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(8,), (3, 4), (0,)])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int8])
def test_unique_flat(shape, dtype):
    x = ties(shape, dtype)
    check_node("Unique", [x], {"sorted": 1}, n_outputs=4)
    check_node("Unique", [x], {}, n_outputs=1)


def test_unique_unsorted():
    # the reference evaluator mishandles sorted=0 on tensors of rank > 1; use 1-D inputs
    x = ties((12,), np.int32)
    check_node("Unique", [x], {"sorted": 0}, n_outputs=4)


def test_unique_strings():
    x = np.array(["b", "a", "b", "c", "a"], dtype=object)
    check_node("Unique", [x], {}, n_outputs=4)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_unique_axis(axis):
    x = ties((4, 4), np.float32)
    x[2] = x[0]
    x[:, 3] = x[:, 1]
    check_node("Unique", [x], {"axis": axis, "sorted": 1}, n_outputs=4)
    if axis == 0:
        check_node("Unique", [x], {"axis": axis, "sorted": 0}, n_outputs=4)


# -- Trilu -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3), (2, 3, 4), (0, 3)])
@pytest.mark.parametrize("k", [None, 0, 1, -2, 7, -7])
@pytest.mark.parametrize("upper", [0, 1])
def test_trilu(shape, k, upper):
    ins = [rand(shape)] + ([] if k is None else [np.array(k, np.int64)])
    check_node("Trilu", ins, {"upper": upper})


@pytest.mark.parametrize("dtype", [np.int32, np.bool_, ml_dtypes.bfloat16])
def test_trilu_dtypes(dtype):
    check_node("Trilu", [rand((3, 4), dtype), np.array(1, np.int64)], {"upper": 0})


def test_trilu_strings_fill_empty():
    # strings are zeroed to "" (the reference evaluator writes the integer 0 into the object array)
    x = rand((3, 3), object)
    (got,) = run_only_cpu("Trilu", [x], {"upper": 1})
    assert got.dtype == object
    assert got.tolist() == np.where(np.triu(np.ones((3, 3), bool)), x, "").tolist()
