"""ReshapeChainFusion: Reshape after Reshape/Flatten reads the first one's input."""

import numpy as np
from onnx import helper, numpy_helper

from ort_core.optimizer.passes import reshape_chain
from tests.conftest import make_model, tensor
from tests.unit.optimizer.helpers import apply, ops, same_outputs

X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


def _shape(name, v):
    return numpy_helper.from_array(np.array(v, np.int64), name)


def test_reshape_chain_collapses():
    m = make_model(
        [
            helper.make_node("Reshape", ["x", "s1"], ["a"]),
            helper.make_node("Reshape", ["a", "s2"], ["y"]),
        ],
        [tensor("x", shape=[2, 3, 4])],
        [tensor("y", shape=[4, 6])],
        [_shape("s1", [6, 4]), _shape("s2", [4, -1])],
    )
    model, changed = apply(reshape_chain.PASS, m)
    assert changed and ops(model) == ["Reshape"] and model.graph.nodes[0].inputs[0] == "x"
    same_outputs(m, {"x": X})


def test_zero_dims_resolved_from_static_shape_and_shared_first_kept():
    m = make_model(
        [
            helper.make_node("Flatten", ["x"], ["a"], axis=1),
            helper.make_node("Reshape", ["a", "s2"], ["y"]),
            helper.make_node("Relu", ["a"], ["z"]),
        ],
        [tensor("x", shape=[2, 3, 4])],
        [tensor("y", shape=[2, 12, 1]), tensor("z", shape=[2, 12])],
        [_shape("s2", [0, 0, 1])],
    )
    model, changed = apply(reshape_chain.PASS, m)
    assert changed and sorted(ops(model)) == ["Flatten", "Relu", "Reshape"]
    same_outputs(m, {"x": X})
