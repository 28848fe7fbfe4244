"""ConvBNFusion and ConvAddMulFusion fold into the Conv's weights; PadFusion into its pads."""

import numpy as np
from onnx import helper, numpy_helper

from ort_core.optimizer.passes import conv_add_mul_fusion, conv_bn_fusion, pad_fusion
from tests.conftest import make_model, tensor
from tests.unit.optimizer.helpers import apply, ops, same_outputs

RNG = np.random.default_rng(0)
X = RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def _conv_model(tail, extra_inits=(), bias=True):
    inits = [init("W", RNG.standard_normal((4, 3, 3, 3))), *extra_inits]
    inputs = ["x", "W"]
    if bias:
        inits.append(init("B", RNG.standard_normal(4)))
        inputs.append("B")
    nodes = [helper.make_node("Conv", inputs, ["c"], pads=[1, 1, 1, 1]), *tail]
    return make_model(nodes, [tensor("x", shape=[1, 3, 6, 6])], [tensor("y")], inits)


def test_conv_batchnorm_folded():
    bn = [init(n, RNG.random(4) + 0.5) for n in ("s", "b", "m", "v")]
    m = _conv_model([helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"])], bn)
    model, changed = apply(conv_bn_fusion.PASS, m)
    assert changed and ops(model) == ["Conv"] and model.graph.nodes[0].outputs == ["y"]
    same_outputs(m, {"x": X}, rtol=1e-5, atol=1e-5)


def test_conv_without_bias_gets_one():
    bn = [init(n, RNG.random(4) + 0.5) for n in ("s", "b", "m", "v")]
    m = _conv_model(
        [helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"])], bn, bias=False
    )
    model, changed = apply(conv_bn_fusion.PASS, m)
    assert changed and len(model.graph.nodes[0].inputs) == 3
    same_outputs(m, {"x": X}, rtol=1e-5, atol=1e-5)


def test_conv_mul_add_folded_but_not_spatial_constants():
    m = _conv_model(
        [
            helper.make_node("Mul", ["c", "k"], ["c2"]),
            helper.make_node("Add", ["a", "c2"], ["y"]),
        ],
        [init("k", RNG.random((4, 1, 1)) + 0.5), init("a", RNG.random((1, 4, 1, 1)))],
    )
    model, changed = apply(conv_add_mul_fusion.PASS, m)
    assert changed
    model2, _ = apply(conv_add_mul_fusion.PASS, m)
    while conv_add_mul_fusion.PASS(model2, None):
        pass
    assert ops(model2) == ["Conv"]
    same_outputs(m, {"x": X}, rtol=1e-5, atol=1e-5)
    spatial = _conv_model(
        [helper.make_node("Add", ["c", "a"], ["y"])], [init("a", RNG.random((1, 1, 6, 6)))]
    )
    _, changed = apply(conv_add_mul_fusion.PASS, spatial)
    assert not changed


def test_pad_folded_into_conv_and_average_pool():
    pads = numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "p")
    m = make_model(
        [
            helper.make_node("Pad", ["x", "p"], ["xp"]),
            helper.make_node("Conv", ["xp", "W"], ["c"], pads=[1, 0, 0, 1]),
            helper.make_node("Pad", ["c", "p"], ["cp"]),
            helper.make_node("AveragePool", ["cp"], ["y"], kernel_shape=[2, 2],
                             count_include_pad=1),
        ],
        [tensor("x", shape=[1, 3, 6, 6])],
        [tensor("y")],
        [pads, init("W", RNG.standard_normal((4, 3, 3, 3)))],
    )  # fmt: skip
    model, changed = apply(pad_fusion.PASS, m)
    assert changed and ops(model) == ["Conv", "AveragePool"]
    assert list(model.graph.nodes[0].attr("pads")) == [2, 2, 2, 2]
    same_outputs(m, {"x": X}, rtol=1e-5, atol=1e-5)


def test_pad_with_value_or_into_max_pool_stays():
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "p")
    m = make_model(
        [
            helper.make_node("Pad", ["x", "p"], ["xp"]),
            helper.make_node("MaxPool", ["xp"], ["y"], kernel_shape=[2, 2]),
        ],
        [tensor("x", shape=[1, 3, 6, 6])],
        [tensor("y")],
        [pads],
    )
    _, changed = apply(pad_fusion.PASS, m)
    assert not changed
