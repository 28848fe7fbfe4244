"""MatMulScaleFusion: scalar scales and last-two-axes transposes folded into FusedMatMul."""

import numpy as np
from onnx import helper, numpy_helper

from ort_core.optimizer.passes import matmul_scale_fusion
from tests.conftest import make_model, tensor
from tests.unit.optimizer.fusion_helpers import apply_on_cpu, assert_same_run, fused_ops

RNG = np.random.default_rng(0)


def test_scales_and_transpose_folded():
    m = make_model(
        [
            helper.make_node("Mul", ["a", "two"], ["a2"]),
            helper.make_node("Transpose", ["b"], ["bt"], perm=[0, 2, 1]),
            helper.make_node("MatMul", ["a2", "bt"], ["p"]),
            helper.make_node("Div", ["p", "eight"], ["y"]),
        ],
        [tensor("a", shape=[2, 3, 4]), tensor("b", shape=[2, 5, 4])],
        [tensor("y")],
        [numpy_helper.from_array(np.float32(2), "two"),
         numpy_helper.from_array(np.float32(8), "eight")],
    )  # fmt: skip
    model, changed, fused = apply_on_cpu(matmul_scale_fusion.PASS, m)
    assert changed and fused_ops(model) == ["FusedMatMul"]
    node = model.graph.nodes[0]
    assert node.attr("alpha") == 0.25 and node.attr("transB") == 1 and node.attr("transA") == 0
    feed = {"a": RNG.standard_normal((2, 3, 4)).astype(np.float32),
            "b": RNG.standard_normal((2, 5, 4)).astype(np.float32)}  # fmt: skip
    assert_same_run(m, fused, feed)


def test_plain_matmul_untouched():
    m = make_model(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        [tensor("a", shape=[3, 4]), tensor("b", shape=[4, 5])],
        [tensor("y")],
    )
    _, changed, _ = apply_on_cpu(matmul_scale_fusion.PASS, m)
    assert not changed
