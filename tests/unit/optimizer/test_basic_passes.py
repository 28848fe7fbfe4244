"""Unit tests of the BASIC passes: each on a small graph, checking what it removes and that the
outputs stay the same at every level."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core as ort
from ort_core import errors
from ort_core.optimizer.passes import (
    common_subexpression,
    constant_folding,
    constant_to_initializer,
    eliminate_dead_code,
    eliminate_dropout,
    eliminate_identity,
    eliminate_noop,
)
from tests.conftest import make_model, tensor
from tests.unit.optimizer.helpers import apply, ops, same_outputs

X = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def test_identity_removed_even_before_a_graph_output():
    m = make_model(
        [
            helper.make_node("Identity", ["x"], ["a"]),
            helper.make_node("Relu", ["a"], ["b"]),
            helper.make_node("Identity", ["b"], ["y"]),
        ],
        [tensor("x", shape=[3, 4])],
        [tensor("y", shape=[3, 4])],
    )
    model, changed = apply(eliminate_identity.PASS, m)
    assert changed and ops(model) == ["Relu"]
    assert model.graph.nodes[0].inputs == ["x"] and model.graph.nodes[0].outputs == ["y"]
    same_outputs(m, {"x": X})


def test_identity_between_input_and_output_stays():
    m = make_model(
        [helper.make_node("Identity", ["x"], ["y"])],
        [tensor("x", shape=[2])],
        [tensor("y", shape=[2])],
    )
    model, changed = apply(eliminate_identity.PASS, m)
    assert not changed and ops(model) == ["Identity"]


def test_dropout_removed_only_when_mask_unused():
    m = make_model(
        [helper.make_node("Dropout", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])],
        [tensor("x", shape=[3, 4])],
        [tensor("y", shape=[3, 4])],
    )
    model, changed = apply(eliminate_dropout.PASS, m)
    assert changed and ops(model) == ["Relu"]
    m2 = make_model(
        [helper.make_node("Dropout", ["x"], ["a", "mask"])],
        [tensor("x", shape=[3, 4])],
        [tensor("a", shape=[3, 4]), tensor("mask", TensorProto.BOOL, [3, 4])],
    )
    _, changed = apply(eliminate_dropout.PASS, m2)
    assert not changed
    same_outputs(m, {"x": X})


def test_constant_folding_folds_constant_subgraph_and_shape():
    m = make_model(
        [
            helper.make_node(
                "Constant", [], ["c"], value=init("v", np.arange(4, dtype=np.float32))
            ),
            helper.make_node("Mul", ["c", "two"], ["c2"]),
            helper.make_node("Shape", ["x"], ["s"]),
            helper.make_node("Reshape", ["c2", "s1"], ["c3"]),
            helper.make_node("Add", ["x", "c3"], ["a"]),
            helper.make_node("Reshape", ["a", "s"], ["y"]),
        ],
        [tensor("x", shape=[3, 4])],
        [tensor("y", shape=[3, 4])],
        [init("two", np.float32(2)), init("s1", np.array([1, 4], np.int64))],
    )
    from ort_core.ir import load_model
    from ort_core.optimizer import PassContext

    model = load_model(m)
    ctx = PassContext()
    constant_to_initializer.PASS(model, ctx)
    assert constant_folding.PASS(model, ctx)
    assert ops(model) == ["Add", "Reshape"]
    np.testing.assert_array_equal(model.graph.initializers["c3"], [[0, 2, 4, 6]])
    np.testing.assert_array_equal(model.graph.initializers["s"], [3, 4])
    same_outputs(m, {"x": X})


def test_constant_folding_respects_size_limit_and_randomness():
    m = make_model(
        [
            helper.make_node(
                "ConstantOfShape", ["shape"], ["big"], value=init("v", np.array([1.0], np.float32))
            ),
            helper.make_node("RandomNormal", [], ["r"], shape=[2], seed=1.0),
            helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
            helper.make_node("Add", ["s", "r"], ["y"]),
        ],
        [],
        [tensor("y", shape=[2])],
        [init("shape", np.array([2000, 1000], np.int64))],
    )
    from ort_core.ir import load_model
    from ort_core.optimizer import PassContext

    model = load_model(m)
    constant_folding.PASS(model, PassContext(fold_size_limit=1000))
    assert "ConstantOfShape" in ops(model) and "RandomNormal" in ops(model)


def test_dead_code_and_unused_initializers():
    m = make_model(
        [
            helper.make_node("Relu", ["x"], ["y"]),
            helper.make_node("Exp", ["x"], ["unused"]),
            helper.make_node("Neg", ["unused"], ["unused2"]),
        ],
        [tensor("x", shape=[3, 4])],
        [tensor("y", shape=[3, 4])],
        [init("w", np.ones(3, np.float32))],
    )
    model, changed = apply(eliminate_dead_code.PASS, m)
    assert changed and ops(model) == ["Relu"] and not model.graph.initializers


def test_cse_merges_duplicates():
    m = make_model(
        [
            helper.make_node("Relu", ["x"], ["a"]),
            helper.make_node("Relu", ["x"], ["b"]),
            helper.make_node("Transpose", ["a"], ["ta"], perm=[1, 0]),
            helper.make_node("Transpose", ["b"], ["tb"], perm=[1, 0]),
            helper.make_node("Transpose", ["b"], ["tc"], perm=[0, 1]),
            helper.make_node("Sum", ["ta", "tb"], ["y"]),
        ],
        [tensor("x", shape=[3, 4])],
        [tensor("y", shape=[4, 3]), tensor("tc", shape=[3, 4])],
    )
    model, changed = apply(common_subexpression.PASS, m)
    assert changed and ops(model) == ["Relu", "Transpose", "Transpose", "Sum"]
    same_outputs(m, {"x": X})


@pytest.mark.parametrize(
    "node, inits, removed",
    [
        (helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT), [], True),
        (helper.make_node("Cast", ["x"], ["y"], to=TensorProto.DOUBLE), [], False),
        (helper.make_node("Transpose", ["x"], ["y"], perm=[0, 1]), [], True),
        (
            helper.make_node("Reshape", ["x", "s"], ["y"]),
            [init("s", np.array([3, 0], np.int64))],
            True,
        ),
        (
            helper.make_node("Reshape", ["x", "s"], ["y"]),
            [init("s", np.array([4, 3], np.int64))],
            False,
        ),
        (
            helper.make_node("Expand", ["x", "s"], ["y"]),
            [init("s", np.array([1, 4], np.int64))],
            True,
        ),
        (
            helper.make_node("Slice", ["x", "st", "en"], ["y"]),
            [init("st", np.array([0, -9], np.int64)), init("en", np.array([3, 100], np.int64))],
            True,
        ),
        (
            helper.make_node("Slice", ["x", "st", "en"], ["y"]),
            [init("st", np.array([1], np.int64)), init("en", np.array([3], np.int64))],
            False,
        ),
        (helper.make_node("Pad", ["x", "p"], ["y"]), [init("p", np.zeros(4, np.int64))], True),
    ],
)
def test_noop_elimination(node, inits, removed):
    m = make_model(
        [node, helper.make_node("Neg", ["y"], ["z"])],
        [tensor("x", shape=[3, 4])],
        [tensor("z", shape=None)],
        inits,
    )
    model, changed = apply(eliminate_noop.PASS, m)
    assert changed == removed
    assert (node.op_type in ops(model)) != removed
    same_outputs(m, {"x": X})


def test_unknown_disabled_pass_is_an_error(mlp_model):
    with pytest.raises(errors.InvalidArgument, match="Unknown optimizer pass"):
        ort.InferenceSession(
            mlp_model.SerializeToString(), providers=["cpu"], disabled_optimizers=["NoSuchPass"]
        )
    so = ort.SessionOptions()
    so.add_session_config_entry("optimization.disable_specified_optimizers", "ConstantFolding,Nope")
    with pytest.raises(errors.InvalidArgument, match="Nope"):
        ort.InferenceSession(mlp_model.SerializeToString(), so, providers=["cpu"])


def test_disabled_pass_does_not_run():
    m = make_model(
        [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])],
        [tensor("x", shape=[2])],
        [tensor("y", shape=[2])],
    )
    s1 = ort.InferenceSession(m.SerializeToString(), providers=["cpu"])
    s2 = ort.InferenceSession(
        m.SerializeToString(), providers=["cpu"], disabled_optimizers=["EliminateIdentity"]
    )
    count = lambda s: sum(len(x.get_nodes()) for x in s.placements)  # noqa: E731
    assert count(s1) == 1 and count(s2) == 2
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    assert count(ort.InferenceSession(m.SerializeToString(), so, providers=["cpu"])) == 2
