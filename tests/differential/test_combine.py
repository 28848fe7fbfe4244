"""Concat, Split, Tile, Pad and ReverseSequence on the CPU provider against the reference."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from .harness import check_node
from .test_shape_ops import i64, random_arrays, run_only_cpu

rng = np.random.default_rng(2)
rand = random_arrays(rng)


# -- Concat ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shapes,axis",
    [
        ([(2, 3), (4, 3)], 0),
        ([(2, 3), (2, 1), (2, 0)], 1),
        ([(2, 3, 4)], -1),
        ([(1, 2, 3), (1, 2, 3), (1, 2, 3)], -3),
        ([(0,), (3,)], 0),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_, object, ml_dtypes.bfloat16])
def test_concat(shapes, axis, dtype):
    check_node("Concat", [rand(s, dtype) for s in shapes], {"axis": axis}, opset=13)


def test_concat_default_axis_opset1():
    # axis defaults to 1 in Concat-1; the reference evaluator requires the attribute
    xs = [rand((2, 3)), rand((2, 2))]
    (got,) = run_only_cpu("Concat", xs, opset=1)
    (expected,) = check_node("Concat", xs, {"axis": 1}, opset=4)
    np.testing.assert_array_equal(got, expected)


def test_concat_bad_shapes():
    with pytest.raises(Exception, match="Concat"):
        run_only_cpu("Concat", [rand((2, 3)), rand((3, 3))], {"axis": 1})


# -- Split -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,axis,split,n",
    [
        ((6, 4), 0, None, 3),
        ((6, 4), 1, [1, 3], 2),
        ((2, 7), -1, [0, 7, 0], 3),
        ((5,), 0, [2, 2, 1], 3),
        ((3, 4), 0, None, 1),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.int8, object])
def test_split(shape, axis, split, n, dtype):
    x = rand(shape, dtype)
    inputs = [x] if split is None else [x, np.array(split, np.int64)]
    check_node("Split", inputs, {"axis": axis}, opset=13, n_outputs=n)
    attrs = {"axis": axis} if split is None else {"axis": axis, "split": split}
    check_node("Split", [x], attrs, opset=11, n_outputs=n)
    if axis >= 0:
        check_node("Split", [x], attrs, opset=2, n_outputs=n)


@pytest.mark.parametrize("dim,n", [(7, 3), (6, 3), (5, 2), (1, 1), (10, 4)])
def test_split_num_outputs(dim, n):
    x = rand((2, dim))
    check_node("Split", [x], {"axis": 1, "num_outputs": n}, opset=18, n_outputs=n)


def test_split_views():
    (a, b) = run_only_cpu(
        "Split", [np.arange(6.0).reshape(2, 3), i64(1, 2)], {"axis": 1}, n_outputs=2
    )
    assert a.shape == (2, 1) and b.shape == (2, 2)


@pytest.mark.parametrize("form", ["equal", "attribute", "constant input", "fed input"])
def test_split_one_session_many_shapes(form):
    """A Split kernel keeps the slices it works out per input shape: one session fed inputs of
    several shapes (the axis symbolic) splits each as its own shape says."""
    import onnx
    from onnx import TensorProto, helper

    import ort_core

    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", "n"])
    outs = [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None) for i in range(2)]
    inputs, inits, opset, attrs = ["x"], [], 13, {"axis": 1}
    graph_inputs = [x_info]
    if form == "attribute":
        opset, attrs = 11, {"axis": 1, "split": [1, 3]}
    elif form == "constant input":
        inputs.append("s")
        inits.append(onnx.numpy_helper.from_array(i64(1, 3), "s"))
    elif form == "fed input":
        inputs.append("s")
        graph_inputs.append(helper.make_tensor_value_info("s", TensorProto.INT64, [2]))
    node = helper.make_node("Split", inputs, ["y0", "y1"], **attrs)
    graph = helper.make_graph([node], "g", graph_inputs, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    sess = ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    fixed = form in ("attribute", "constant input")  # sizes 1 and 3: the width stays 4
    for rows, width, fed in ((2, 4, 3), (2, 6, 5), (3, 4, 3), (2, 8, 2), (2, 8, 6)):
        x = rand((rows, 4 if fixed else width))
        feeds = {"x": x}
        if form == "fed input":
            feeds["s"] = i64(fed, width - fed)
        got = sess.run(None, feeds)
        first = {"equal": width // 2, "fed input": fed}.get(form, 1)
        want = [x[:, :first], x[:, first:]]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("split", [[1, 1], [4, -1]])
def test_split_bad_sizes(split):
    with pytest.raises(Exception, match="Split"):
        run_only_cpu("Split", [rand((3,)), np.array(split, np.int64)], opset=13, n_outputs=2)


# -- Tile ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,repeats",
    [((2, 3), [2, 1]), ((3,), [4]), ((2, 1, 2), [1, 3, 2]), ((2, 2), [0, 2]), ((), [])],
)
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.bool_])
def test_tile(shape, repeats, dtype):
    check_node("Tile", [rand(shape, dtype), np.array(repeats, np.int64)])


def test_tile_opset1():
    # Tile-1 repeats along one axis given as inputs (the reference evaluator only knows Tile-6)
    x = rand((2, 3))
    (got,) = run_only_cpu("Tile", [x, i64(3), i64(1)], opset=1)
    (expected,) = check_node("Tile", [x, i64(1, 3)], opset=6)
    np.testing.assert_array_equal(got, expected)


def test_tile_bad_repeats():
    with pytest.raises(Exception, match="Tile"):
        run_only_cpu("Tile", [rand((2, 3)), i64(2)])


# -- Pad -------------------------------------------------------------------------------------------
PADS = [
    ((3, 4), [1, 2, 0, 1]),
    ((3, 4), [0, 0, 0, 0]),
    ((2, 3, 4), [0, 1, 2, 2, 1, 0]),
    ((5,), [3, 2]),
]


@pytest.mark.parametrize("shape,pads", PADS)
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad(shape, pads, mode):
    x = rand(shape)
    opset = 19 if mode == "wrap" else 13
    check_node("Pad", [x, np.array(pads, np.int64)], {"mode": mode}, opset=opset)
    if mode == "constant":
        check_node("Pad", [x, np.array(pads, np.int64), np.array(2.5, np.float32)], opset=opset)
    if mode != "wrap":
        check_node("Pad", [x], {"mode": mode, "pads": pads, "value": 1.5}, opset=2)


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.bool_, np.float16, ml_dtypes.bfloat16])
def test_pad_dtypes(dtype):
    x = rand((2, 3), dtype)
    value = np.array(1, dtype)
    check_node("Pad", [x, i64(1, 0, 0, 2), value], opset=21)
    check_node("Pad", [x, i64(1, 0, 0, 2)], {"mode": "edge"}, opset=21)


@pytest.mark.parametrize("axes,pads", [([1], [2, 1]), ([-1, 0], [1, 0, 0, 3]), ([0], [0, 0])])
@pytest.mark.parametrize("mode", ["constant", "reflect", "wrap"])
def test_pad_axes(axes, pads, mode):
    x = rand((3, 4))
    check_node("Pad", [x, np.array(pads, np.int64), None, np.array(axes, np.int64)], {"mode": mode})


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_pad_negative_crops(mode):
    # The reference evaluator cannot crop; negative pads remove elements before padding
    x = rand((4, 5))
    (got,) = run_only_cpu("Pad", [x, i64(-1, 2, 1, -2)], {"mode": mode}, opset=13)
    (expected,) = check_node("Pad", [x[1:, :3], i64(0, 2, 1, 0)], {"mode": mode}, opset=13)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("mode", ["reflect", "edge", "wrap"])
@pytest.mark.parametrize(
    "shape,pads",
    [((3, 4), [0, 3, 0, 3]), ((3, 4), [2, 4, 1, 0]), ((2, 5), [1, 0, 0, 6]), ((1, 3, 4), [0] * 6),
     ((2, 3, 4), [1, 2, 1, 1, 2, 3]), ((6,), [5, 5])],
)  # fmt: skip
def test_pad_borders_up_to_and_past_one_reflection(shape, pads, mode):
    """The border copies (one reflection or wrap at most) and np.pad's repeats beyond it."""
    check_node("Pad", [rand(shape), np.array(pads, np.int64)], {"mode": mode}, opset=19)


def test_pad_strings():
    x = rand((2, 2), object)
    (got,) = run_only_cpu("Pad", [x, i64(0, 1, 0, 0)], opset=13)
    assert got.dtype == object and got.tolist() == [["", *x[0]], ["", *x[1]]]
    check_node("Pad", [x, i64(1, 0, 0, 1), np.array("z", dtype=object)], opset=13)
    check_node("Pad", [x, i64(1, 0, 0, 1)], {"mode": "edge"}, opset=13)


def test_pad_unknown_mode():
    with pytest.raises(Exception, match="mode"):
        run_only_cpu("Pad", [rand((2, 2)), i64(1, 1, 1, 1)], {"mode": "mirror"})


# -- ReverseSequence -------------------------------------------------------------------------------
@pytest.mark.parametrize("time_axis,batch_axis", [(0, 1), (1, 0)])
@pytest.mark.parametrize("shape", [(4, 4), (5, 3, 2), (3, 4, 2, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, object])
def test_reverse_sequence(time_axis, batch_axis, shape, dtype):
    x = rand(shape, dtype)
    steps, batch = shape[time_axis], shape[batch_axis]
    lens = rng.integers(1, steps + 1, size=batch).astype(np.int64)
    attrs = {"time_axis": time_axis, "batch_axis": batch_axis}
    check_node("ReverseSequence", [x, lens], attrs)


def test_reverse_sequence_too_long():
    with pytest.raises(Exception, match="ReverseSequence"):
        run_only_cpu("ReverseSequence", [rand((3, 2)), i64(1, 4)])
