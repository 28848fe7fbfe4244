"""LayerNormFusion (decomposed form -> LayerNormalization, RMS form ->
SimplifiedLayerNormalization) and SkipLayerNormFusion (Add + LayerNormalization)."""

import numpy as np
from onnx import helper, numpy_helper

from ort_core.optimizer.passes import layer_norm_fusion, skip_layer_norm_fusion
from tests.conftest import make_model, tensor
from tests.unit.optimizer.fusion_helpers import apply_on_cpu, assert_same_run, fused_ops

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 8)).astype(np.float32)


def c(name, v):
    return numpy_helper.from_array(np.asarray(v, np.float32), name)


CONSTS = [c("two", 2.0), c("eps", 1e-5), c("w", RNG.random(8) + 0.5), c("b", RNG.random(8))]


def test_decomposed_layer_norm():
    m = make_model(
        [
            helper.make_node("ReduceMean", ["x"], ["mu"], axes=[-1]),
            helper.make_node("Sub", ["x", "mu"], ["d"]),
            helper.make_node("Pow", ["d", "two"], ["d2"]),
            helper.make_node("ReduceMean", ["d2"], ["var"], axes=[-1]),
            helper.make_node("Add", ["var", "eps"], ["ve"]),
            helper.make_node("Sqrt", ["ve"], ["sd"]),
            helper.make_node("Div", ["d", "sd"], ["n"]),
            helper.make_node("Mul", ["n", "w"], ["nw"]),
            helper.make_node("Add", ["nw", "b"], ["y"]),
        ],
        [tensor("x", shape=[2, 3, 8])],
        [tensor("y")],
        CONSTS,
    )
    model, changed, fused = apply_on_cpu(layer_norm_fusion.PASS, m)
    assert changed and fused_ops(model) == ["LayerNormalization"]
    assert model.graph.nodes[0].inputs == ["x", "w", "b"]
    assert_same_run(m, fused, {"x": X})


def test_rms_norm():
    m = make_model(
        [
            helper.make_node("Pow", ["x", "two"], ["x2"]),
            helper.make_node("ReduceMean", ["x2"], ["ms"], axes=[-1]),
            helper.make_node("Add", ["ms", "eps"], ["me"]),
            helper.make_node("Sqrt", ["me"], ["r"]),
            helper.make_node("Reciprocal", ["r"], ["ir"]),
            helper.make_node("Mul", ["x", "ir"], ["n"]),
            helper.make_node("Mul", ["w", "n"], ["y"]),
        ],
        [tensor("x", shape=[2, 3, 8])],
        [tensor("y")],
        CONSTS,
    )
    model, changed, fused = apply_on_cpu(layer_norm_fusion.PASS, m)
    assert changed and fused_ops(model) == ["SimplifiedLayerNormalization"]
    assert_same_run(m, fused, {"x": X})


def test_skip_layer_norm_with_bias_and_shared_sum():
    m = make_model(
        [
            helper.make_node("MatMul", ["x", "W"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["hb"]),
            helper.make_node("Add", ["r", "hb"], ["s"]),
            helper.make_node("LayerNormalization", ["s", "w", "b"], ["y"], epsilon=1e-5),
            helper.make_node("Relu", ["s"], ["z"]),
        ],
        [tensor("x", shape=[2, 3, 8]), tensor("r", shape=[2, 3, 8])],
        [tensor("y"), tensor("z")],
        [*CONSTS, c("W", RNG.standard_normal((8, 8)))],
    )
    model, changed, fused = apply_on_cpu(skip_layer_norm_fusion.PASS, m)
    assert changed and fused_ops(model) == ["MatMul", "SkipLayerNormalization", "Relu"]
    node = model.graph.nodes[1]
    assert node.inputs == ["r", "h", "w", "b", "b"] and node.outputs == ["y", "", "", "s"]
    feed = {"x": X, "r": RNG.standard_normal((2, 3, 8)).astype(np.float32)}
    assert_same_run(m, fused, feed)
