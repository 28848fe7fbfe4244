"""BatchNormMulAddFusion (BASIC): Mul/Add by per-channel constants after an inference-mode
BatchNormalization fold into its scale and bias. BatchNormActivationFusion (EXTENDED): such a
BatchNormalization and its activation become a per-channel 1x1 FusedConv."""

import numpy as np
import pytest
from onnx import helper, numpy_helper

from ort_core.ir import model_to_proto
from ort_core.optimizer.passes import bn_activation_fusion, bn_mul_add_fusion
from tests.conftest import make_model, tensor
from tests.unit.optimizer.fusion_helpers import apply_on_cpu, assert_same_run, fused_ops
from tests.unit.optimizer.helpers import apply

RNG = np.random.default_rng(0)
C = 4


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def bn_inits():
    return [
        init("s", RNG.random(C) + 0.5), init("b", RNG.standard_normal(C)),
        init("m", RNG.standard_normal(C)), init("v", RNG.random(C) + 0.5),
    ]  # fmt: skip


def bn_model(after, extra_inits=(), opset=13, training=False, x_shape=(2, C, 3, 5)):
    attrs = {"training_mode": 1} if training else {}
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["n"], **attrs)]
    nodes += after
    return make_model(
        nodes, [tensor("x", shape=list(x_shape))], [tensor("y")], bn_inits() + list(extra_inits),
        opset=opset,
    )  # fmt: skip


def feed(shape=(2, C, 3, 5)):
    return {"x": RNG.standard_normal(shape).astype(np.float32)}


@pytest.mark.parametrize(
    "mul_shape,add_shape", [((C, 1, 1), (C, 1, 1)), ((1, C, 1, 1), ()), ((), (C, 1, 1))]
)
def test_mul_add_fold_into_batchnorm(mul_shape, add_shape):
    m = bn_model(
        [helper.make_node("Mul", ["n", "c"], ["p"]), helper.make_node("Add", ["d", "p"], ["y"])],
        [init("c", RNG.standard_normal(mul_shape)), init("d", RNG.standard_normal(add_shape))],
    )
    model, changed = apply(bn_mul_add_fusion.PASS, m)
    fused = model_to_proto(model)
    assert changed and fused_ops(model) == ["BatchNormalization"]
    assert model.graph.nodes[0].outputs == ["y"]
    assert_same_run(m, fused, feed())


@pytest.mark.parametrize(
    "why,after,extra",
    [
        ("varies along a spatial axis", [helper.make_node("Mul", ["n", "c"], ["y"])],
         [init("c", RNG.standard_normal((C, 3, 1)))]),
        ("not a constant", [helper.make_node("Mul", ["n", "x"], ["y"])], []),
    ],
)  # fmt: skip
def test_mul_add_not_per_channel_stays(why, after, extra):
    _, changed = apply(bn_mul_add_fusion.PASS, bn_model(after, extra))
    assert not changed, why


def test_training_batchnorm_is_left_alone():
    m = bn_model([helper.make_node("Relu", ["n"], ["y"])], training=True, opset=15)
    _, changed, _ = apply_on_cpu(bn_activation_fusion.PASS, m)
    assert not changed


@pytest.mark.parametrize("act,attrs", [("Relu", {}), ("LeakyRelu", {"alpha": 0.2}), ("Clip", {})])
def test_batchnorm_activation_becomes_grouped_pointwise_fusedconv(act, attrs):
    m = bn_model([helper.make_node(act, ["n"], ["y"], **attrs)], opset=9 if act == "Clip" else 13)
    model, changed, fused = apply_on_cpu(bn_activation_fusion.PASS, m)
    assert changed and fused_ops(model) == ["FusedConv"]
    node = model.graph.nodes[0]
    assert node.attr("group") == C and node.attr("kernel_shape") == [1, 1]
    assert node.attr("activation") == act
    assert_same_run(m, fused, feed())
    onnxruntime = pytest.importorskip("onnxruntime")  # and onnxruntime runs the fused model alike
    theirs = onnxruntime.InferenceSession(
        fused.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    f = feed()
    import ort_core as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ours = ort.InferenceSession(m.SerializeToString(), so, providers=["cpu"]).run(None, f)[0]
    np.testing.assert_allclose(theirs.run(None, f)[0], ours, rtol=1e-5, atol=1e-5)
