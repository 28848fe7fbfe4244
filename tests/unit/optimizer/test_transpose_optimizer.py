"""TransposeOptimizer: consecutive Transposes merge or cancel; a Transpose moves below a unary
op or a binary op with a constant to meet the next Transpose."""

import numpy as np
from onnx import helper, numpy_helper

from ort_core.optimizer.passes import transpose_optimizer
from tests.conftest import make_model, tensor
from tests.unit.optimizer.helpers import apply, ops, same_outputs

X = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)


def test_inverse_transposes_cancel():
    m = make_model(
        [
            helper.make_node("Transpose", ["x"], ["a"], perm=[1, 2, 0]),
            helper.make_node("Transpose", ["a"], ["b"], perm=[2, 0, 1]),
            helper.make_node("Relu", ["b"], ["y"]),
        ],
        [tensor("x", shape=[2, 3, 4])],
        [tensor("y", shape=[2, 3, 4])],
    )
    model, changed = apply(transpose_optimizer.PASS, m)
    assert changed and ops(model) == ["Relu"]
    same_outputs(m, {"x": X})


def test_transposes_merge():
    m = make_model(
        [
            helper.make_node("Transpose", ["x"], ["a"], perm=[1, 0, 2]),
            helper.make_node("Transpose", ["a"], ["y"], perm=[0, 2, 1]),
        ],
        [tensor("x", shape=[2, 3, 4])],
        [tensor("y", shape=[3, 4, 2])],
    )
    model, changed = apply(transpose_optimizer.PASS, m)
    assert changed and ops(model) == ["Transpose"]
    assert list(model.graph.nodes[0].attr("perm")) == [1, 2, 0]
    same_outputs(m, {"x": X})


def test_push_through_unary_and_constant_binary_then_cancel():
    c = numpy_helper.from_array(np.arange(2, dtype=np.float32).reshape(2, 1), "c")
    m = make_model(
        [
            helper.make_node("Transpose", ["x"], ["a"], perm=[2, 0, 1]),
            helper.make_node("Relu", ["a"], ["b"]),
            helper.make_node("Transpose", ["b"], ["b2"], perm=[1, 2, 0]),
            helper.make_node("Transpose", ["b2"], ["b3"], perm=[2, 0, 1]),
            helper.make_node("Mul", ["b3", "c"], ["d"]),
            helper.make_node("Transpose", ["d"], ["y"], perm=[1, 2, 0]),
        ],
        [tensor("x", shape=[2, 3, 4])],
        [tensor("y", shape=[2, 3, 4])],
        [c],
    )
    from ort_core.ir import load_model
    from ort_core.optimizer import PassContext

    model = load_model(m)
    while transpose_optimizer.PASS(model, PassContext()):
        pass
    assert ops(model) == ["Relu", "Mul"]
    same_outputs(m, {"x": X})
