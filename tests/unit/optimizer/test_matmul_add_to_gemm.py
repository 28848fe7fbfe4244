"""MatMulAddFusion: 2-D MatMul + broadcastable bias becomes Gemm; 3-D stays."""

import numpy as np
from onnx import helper, numpy_helper

from ort_core.optimizer.passes import matmul_add_to_gemm
from tests.conftest import make_model, tensor
from tests.unit.optimizer.helpers import apply, ops, same_outputs

RNG = np.random.default_rng(0)


def _model(x_shape):
    w = numpy_helper.from_array(RNG.standard_normal((4, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(RNG.standard_normal(3).astype(np.float32), "B")
    return make_model(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["B", "h"], ["y"])],
        [tensor("x", shape=x_shape)],
        [tensor("y")],
        [w, b],
    )


def test_2d_matmul_add_becomes_gemm():
    m = _model([5, 4])
    model, changed = apply(matmul_add_to_gemm.PASS, m)
    assert changed and ops(model) == ["Gemm"] and model.graph.nodes[0].inputs == ["x", "W", "B"]
    same_outputs(m, {"x": RNG.standard_normal((5, 4)).astype(np.float32)})


def test_3d_matmul_stays():
    _, changed = apply(matmul_add_to_gemm.PASS, _model([2, 5, 4]))
    assert not changed
