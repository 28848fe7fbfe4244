"""Sequence and optional kernels against the ReferenceEvaluator."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from .harness import assert_same, check_node, make_node_model, run_cpu, run_reference

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_]


def _rand(rng, shape, dtype):
    if dtype == np.bool_:
        return rng.random(shape) > 0.5
    return (rng.standard_normal(shape) * 10).astype(dtype)


def _seq(rng, n, shape=(2, 3), dtype=np.float32):
    return [_rand(rng, shape, dtype) for _ in range(n)]


def _check_model(model, feeds):
    expected = run_reference(model, feeds)
    got = run_cpu(model, feeds)
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        assert_same(e, g, 1e-5, 1e-6, f"output {i}")
    return got


def _model(nodes, inputs, outputs, opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _tensor_vi(name, dtype, shape=None):
    return helper.make_tensor_value_info(
        name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape
    )


def _seq_vi(name, dtype=np.float32):
    elem = helper.make_tensor_type_proto(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), None)
    return helper.make_value_info(name, helper.make_sequence_type_proto(elem))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3])
def test_sequence_construct(dtype, n):
    rng = np.random.default_rng(0)
    shapes = [(2, 3), (4,), ()][:n]
    check_node("SequenceConstruct", [_rand(rng, s, dtype) for s in shapes], opset=11)


@pytest.mark.parametrize("position", [None, 0, 2, -1, -3])
@pytest.mark.parametrize("pos_dtype", [np.int32, np.int64])
def test_sequence_insert(position, pos_dtype):
    rng = np.random.default_rng(1)
    pos = None if position is None else np.array(position, dtype=pos_dtype)
    inputs = [_seq(rng, 3), _rand(rng, (5,), np.float32)]
    check_node("SequenceInsert", inputs + ([pos] if pos is not None else []))


def test_sequence_insert_at_end():
    """position == len(sequence) appends (the reference evaluator wraps it to 0: compare with the
    reference's result without a position instead)."""
    rng = np.random.default_rng(1)
    inputs = [_seq(rng, 3), _rand(rng, (5,), np.float32)]
    model, feeds = make_node_model("SequenceInsert", inputs)
    expected = run_reference(model, feeds)
    model, feeds = make_node_model("SequenceInsert", inputs + [np.array(3, dtype=np.int64)])
    assert_same(expected[0], run_cpu(model, feeds)[0], 0, 0)


def test_sequence_insert_into_empty():
    check_node("SequenceInsert", [[], np.arange(3, dtype=np.float32)])


@pytest.mark.parametrize("position", [0, 1, 3, -1, -4])
@pytest.mark.parametrize("pos_dtype", [np.int32, np.int64])
def test_sequence_at(position, pos_dtype):
    rng = np.random.default_rng(2)
    seq = [_rand(rng, (i + 1, 2), np.int64) for i in range(4)]
    check_node("SequenceAt", [seq, np.array(position, dtype=pos_dtype)], opset=11)


@pytest.mark.parametrize("position", [None, 0, 2, -1, -3])
def test_sequence_erase(position):
    rng = np.random.default_rng(3)
    inputs = [_seq(rng, 3, (2,), np.float64)]
    if position is not None:
        inputs.append(np.array(position, dtype=np.int64))
    check_node("SequenceErase", inputs)


@pytest.mark.parametrize("n", [0, 1, 5])
def test_sequence_length(n):
    check_node("SequenceLength", [_seq(np.random.default_rng(4), n)])


@pytest.mark.parametrize("dtype", [None, TensorProto.INT64, TensorProto.STRING])
def test_sequence_empty(dtype):
    attrs = {} if dtype is None else {"dtype": dtype}
    check_node("SequenceEmpty", [], attrs, opset=11)


@pytest.mark.parametrize("shape,axis", [((6, 4), 0), ((6, 4), 1), ((2, 3, 5), -1), ((0, 3), 1)])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_split_to_sequence_default(shape, axis, keepdims):
    x = _rand(np.random.default_rng(5), shape, np.float32)
    check_node("SplitToSequence", [x], {"axis": axis, "keepdims": keepdims}, opset=11)


@pytest.mark.parametrize(
    "split", [np.array(2), np.array(4), np.array(7), np.array([1, 5]), np.array([3, 0, 3])]
)
@pytest.mark.parametrize("dtype", [np.float16, np.int32])
def test_split_to_sequence_split(split, dtype):
    x = _rand(np.random.default_rng(6), (6, 3), dtype)
    check_node("SplitToSequence", [x, split.astype(np.int64)], {"axis": 0, "keepdims": 0})


def test_split_to_sequence_split_axis_negative():
    x = _rand(np.random.default_rng(7), (2, 7), np.float32)
    check_node("SplitToSequence", [x, np.array(3, dtype=np.int32)], {"axis": -1})


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
@pytest.mark.parametrize("new_axis", [0, 1])
@pytest.mark.parametrize("dtype", DTYPES)
def test_concat_from_sequence(axis, new_axis, dtype):
    seq = _seq(np.random.default_rng(8), 3, (2, 3), dtype)
    check_node("ConcatFromSequence", [seq], {"axis": axis, "new_axis": new_axis}, opset=11)


def test_concat_from_sequence_new_axis_last():
    seq = _seq(np.random.default_rng(9), 4, (2, 3))
    check_node("ConcatFromSequence", [seq], {"axis": 2, "new_axis": 1})


def test_concat_from_sequence_uneven():
    rng = np.random.default_rng(10)
    seq = [_rand(rng, (i, 3), np.float32) for i in (1, 0, 4)]
    check_node("ConcatFromSequence", [seq], {"axis": 0})


def test_sequence_roundtrip_model():
    """Construct -> Insert -> Erase -> At -> Length in one graph."""
    rng = np.random.default_rng(11)
    feeds = {n: _rand(rng, (2, 2), np.float32) for n in ("a", "b", "c")}
    feeds["p"] = np.array(1, dtype=np.int64)
    nodes = [
        helper.make_node("SequenceConstruct", ["a", "b"], ["s0"]),
        helper.make_node("SequenceInsert", ["s0", "c", "p"], ["s1"]),
        helper.make_node("SequenceErase", ["s1"], ["s2"]),
        helper.make_node("SequenceAt", ["s2", "p"], ["y"]),
        helper.make_node("SequenceLength", ["s1"], ["n"]),
        helper.make_node("ConcatFromSequence", ["s1"], ["cat"], axis=1),
    ]
    inputs = [_tensor_vi(n, np.float32, [2, 2]) for n in "abc"] + [_tensor_vi("p", np.int64, [])]
    outputs = [
        _tensor_vi("y", np.float32),
        _tensor_vi("n", np.int64),
        _tensor_vi("cat", np.float32),
        _seq_vi("s2"),
    ]
    _check_model(_model(nodes, inputs, outputs), feeds)


# -- optionals -------------------------------------------------------------------------------------
# The reference evaluator's Optional wraps its value in a list and cannot read its ``type``
# attribute, so models through Optional are checked against what the spec says instead.
def _optional_model(opset, with_input, consumer):
    elem = helper.make_tensor_type_proto(TensorProto.FLOAT, [3])
    node_in = ["x"] if with_input else []
    nodes = [
        helper.make_node("Optional", node_in, ["opt"], type=elem),
        helper.make_node(consumer, ["opt"], ["y"]),
    ]
    inputs = [_tensor_vi("x", np.float32, [3])] if with_input else []
    outputs = [helper.make_value_info("y", onnx.TypeProto())]
    return _model(nodes, inputs, outputs, opset)


@pytest.mark.parametrize("opset", [15, 18])
@pytest.mark.parametrize("with_input", [True, False])
def test_optional_has_element(opset, with_input):
    model = _optional_model(opset, with_input, "OptionalHasElement")
    feeds = {"x": np.arange(3, dtype=np.float32)} if with_input else {}
    assert_same(np.array(with_input), run_cpu(model, feeds)[0], 0, 0)


@pytest.mark.parametrize("opset", [15, 18])
def test_optional_get_element(opset):
    model = _optional_model(opset, True, "OptionalGetElement")
    x = np.random.default_rng(12).standard_normal(3).astype(np.float32)
    assert_same(x, run_cpu(model, {"x": x})[0], 0, 0)


def test_optional_get_element_of_none_fails():
    model = _optional_model(18, False, "OptionalGetElement")
    with pytest.raises(Exception, match="(?i)optional"):
        run_cpu(model, {})


@pytest.mark.parametrize("value", [np.arange(4, dtype=np.int32).reshape(2, 2), "seq"])
def test_optional_has_and_get_element_18_plain_inputs(value):
    if isinstance(value, str):
        value = _seq(np.random.default_rng(13), 3)
    check_node("OptionalHasElement", [value], opset=18)
    check_node("OptionalGetElement", [value], opset=18)


def test_optional_has_element_missing_input():
    check_node("OptionalHasElement", [None], opset=18)


# -- SequenceMap -----------------------------------------------------------------------------------
F = TensorProto.FLOAT


def _body(extra_names, uses_outer):
    """Body: o0 = (e + sum(extras)) [* outer], o1 = ReduceSum(o0), o2 = Shape(e)."""
    nodes, acc = [], "e"
    for i, name in enumerate(extra_names):
        nodes.append(helper.make_node("Add", [acc, name], [f"acc{i}"]))
        acc = f"acc{i}"
    nodes.append(
        helper.make_node(
            "Mul" if uses_outer else "Identity", [acc, "outer"][: 1 + uses_outer], ["o0"]
        )
    )
    nodes.append(helper.make_node("ReduceSum", ["o0"], ["o1"], keepdims=0))
    nodes.append(helper.make_node("Shape", ["e"], ["o2"]))
    inputs = [helper.make_tensor_value_info(n, F, None) for n in ["e", *extra_names]]
    outputs = [
        helper.make_tensor_value_info("o0", F, None),
        helper.make_tensor_value_info("o1", F, None),
        helper.make_tensor_value_info("o2", TensorProto.INT64, None),
    ]
    return helper.make_graph(nodes, "body", inputs, outputs)


def _sequence_map_model(extra_kinds, uses_outer):
    """SequenceMap over ``s``; ``extra_kinds`` lists 'seq' or 'tensor' per additional input."""
    names = [f"a{i}" for i in range(len(extra_kinds))]
    body = _body([f"b{i}" for i in range(len(extra_kinds))], uses_outer)
    nodes = [
        helper.make_node("Mul", ["k", "k"], ["outer"]),
        helper.make_node("SequenceMap", ["s", *names], ["y0", "y1", "y2"], body=body),
    ]
    inputs = [_seq_vi("s"), _tensor_vi("k", np.float32)] + [
        _seq_vi(n) if kind == "seq" else _tensor_vi(n, np.float32)
        for n, kind in zip(names, extra_kinds, strict=True)
    ]
    outputs = [_seq_vi("y0"), _seq_vi("y1"), _seq_vi("y2", np.int64)]
    return _model(nodes, inputs, outputs, opset=17), body


def _sequence_map_feeds(extra_kinds, n, seed=14):
    rng = np.random.default_rng(seed)
    feeds = {"s": [_rand(rng, (i % 3 + 1, 3), np.float32) for i in range(n)]}
    feeds["k"] = np.array(1.5, dtype=np.float32)
    for i, kind in enumerate(extra_kinds):
        if kind == "seq":
            feeds[f"a{i}"] = [_rand(rng, (3,), np.float32) for _ in range(n)]
        else:
            feeds[f"a{i}"] = _rand(rng, (1, 3), np.float32)
    return feeds


def _sequence_map_oracle(body, extra_kinds, feeds):
    """Run the body alone with the reference evaluator, once per element (outer value as input)."""
    graph = onnx.GraphProto()
    graph.CopyFrom(body)
    graph.input.append(helper.make_tensor_value_info("outer", F, None))
    ref = ReferenceEvaluator(_model(list(graph.node), list(graph.input), list(graph.output), 17))
    outer = feeds["k"] * feeds["k"]
    outs = [[], [], []]
    for i, e in enumerate(feeds["s"]):
        step = {"e": e, "outer": outer}
        for j, kind in enumerate(extra_kinds):
            value = feeds[f"a{j}"]
            step[f"b{j}"] = value[i] if kind == "seq" else value
        for out, v in zip(outs, ref.run(None, step), strict=True):
            out.append(v)
    return outs


@pytest.mark.parametrize("extra_kinds", [(), ("tensor",), ("seq",), ("tensor", "tensor")])
def test_sequence_map_vs_reference(extra_kinds):
    model, _ = _sequence_map_model(extra_kinds, uses_outer=False)
    _check_model(model, _sequence_map_feeds(extra_kinds, 4))


@pytest.mark.parametrize("extra_kinds", [("seq", "tensor", "seq"), ("tensor", "seq")])
@pytest.mark.parametrize("n", [0, 1, 5])
def test_sequence_map_mixed_inputs_and_outer_scope(extra_kinds, n):
    """The reference's SequenceMap handles neither mixed extras nor outer-scope values: compare with
    the body run element by element instead."""
    model, body = _sequence_map_model(extra_kinds, uses_outer=True)
    feeds = _sequence_map_feeds(extra_kinds, n)
    got = run_cpu(model, feeds)
    expected = _sequence_map_oracle(body, extra_kinds, feeds)
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        assert_same(e, g, 1e-5, 1e-6, f"output {i}")
