"""ConvActivationFusion / GemmActivationFusion: activation folded into FusedConv / FusedGemm on
a provider that runs them; nothing happens on nodes without a provider."""

import numpy as np
import pytest
from onnx import helper, numpy_helper

from ort_core.optimizer.passes import conv_activation_fusion, gemm_activation_fusion
from tests.conftest import make_model, tensor
from tests.unit.optimizer.fusion_helpers import apply_on_cpu, assert_same_run, fused_ops
from tests.unit.optimizer.helpers import apply

RNG = np.random.default_rng(0)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


@pytest.mark.parametrize(
    "act,attrs,extra",
    [("Relu", {}, []), ("LeakyRelu", {"alpha": 0.2}, []), ("HardSigmoid", {}, []),
     ("Clip", {}, ["lo", "hi"])],
)  # fmt: skip
def test_conv_activation(act, attrs, extra):
    m = make_model(
        [
            helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node(act, ["c", *extra], ["y"], **attrs),
        ],
        [tensor("x", shape=[1, 3, 5, 5])],
        [tensor("y")],
        [init("W", RNG.standard_normal((4, 3, 3, 3))), init("B", RNG.standard_normal(4)),
         init("lo", -0.5), init("hi", 0.5)],
    )  # fmt: skip
    model, changed, fused = apply_on_cpu(conv_activation_fusion.PASS, m)
    assert changed and fused_ops(model) == ["FusedConv"]
    node = model.graph.nodes[0]
    assert node.domain == "com.microsoft" and node.attr("activation") == act
    assert node.provider == "CPUExecutionProvider" and node.attr("pads") == [1, 1, 1, 1]
    assert_same_run(m, fused, {"x": RNG.standard_normal((1, 3, 5, 5)).astype(np.float32)})
    _, unassigned = apply(conv_activation_fusion.PASS, m)
    assert not unassigned  # no provider: no fusion


def test_gemm_activation():
    m = make_model(
        [
            helper.make_node("Gemm", ["x", "W", "B"], ["g"], transB=1, alpha=0.5),
            helper.make_node("LeakyRelu", ["g"], ["y"], alpha=0.3),
        ],
        [tensor("x", shape=[2, 4])],
        [tensor("y")],
        [init("W", RNG.standard_normal((3, 4))), init("B", RNG.standard_normal(3))],
    )
    model, changed, fused = apply_on_cpu(gemm_activation_fusion.PASS, m)
    assert changed and fused_ops(model) == ["FusedGemm"]
    node = model.graph.nodes[0]
    assert node.attr("activation_alpha") == pytest.approx(0.3) and node.attr("transB") == 1
    assert_same_run(m, fused, {"x": RNG.standard_normal((2, 4)).astype(np.float32)})
