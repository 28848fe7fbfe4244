"""ConvActivationFusion / GemmActivationFusion: activation folded into FusedConv / FusedGemm on
a provider that runs them; ConvAddActivationFusion: a residual Add (and activation) folded into
FusedConv's Z input; nothing happens on nodes without a provider."""

import numpy as np
import pytest
from onnx import helper, numpy_helper

from ort_core.optimizer.passes import (
    conv_activation_fusion,
    conv_add_activation_fusion,
    gemm_activation_fusion,
)
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


def _residual(
    add_op="Add", act="Relu", z_shape=(1, 4, 5, 5), second_conv=False, extra_reader=False
):
    """x -> Conv -> Add/Sum(z) [-> act] -> y; z a graph input, or a second Conv's output."""
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1])]
    inputs = [tensor("x", shape=[1, 3, 5, 5])]
    if second_conv:
        nodes.append(helper.make_node("Conv", ["x", "W2"], ["z"]))
    else:
        inputs.append(tensor("z", shape=list(z_shape)))
    nodes.append(helper.make_node(add_op, ["z", "c"], ["s"]))
    outputs = [tensor("y")]
    if act:
        nodes.append(helper.make_node(act, ["s"], ["y"]))
    else:
        nodes[-1].output[0] = "y"
    if extra_reader:
        nodes.append(helper.make_node("Neg", ["c"], ["n"]))
        outputs.append(tensor("n"))
    inits = [
        init("W", RNG.standard_normal((4, 3, 3, 3))),
        init("B", RNG.standard_normal(4)),
        init("W2", RNG.standard_normal((4, 3, 1, 1))),
    ]
    return make_model(nodes, inputs, outputs, inits, opset=13)


def _feed(z_shape=(1, 4, 5, 5)):
    return {
        "x": RNG.standard_normal((1, 3, 5, 5)).astype(np.float32),
        "z": RNG.standard_normal(z_shape).astype(np.float32),
    }


@pytest.mark.parametrize(
    "add_op,act,second_conv",
    [("Add", "Relu", False), ("Sum", "Relu", False), ("Add", None, False),
     ("Add", "LeakyRelu", False), ("Sum", "Relu", True)],
)  # fmt: skip
def test_conv_add_activation(add_op, act, second_conv):
    m = _residual(add_op, act, second_conv=second_conv)
    model, changed, fused = apply_on_cpu(conv_add_activation_fusion.PASS, m)
    assert changed
    node = next(n for n in model.graph.nodes if n.op_type == "FusedConv")
    assert node.domain == "com.microsoft" and node.attr("activation") == act
    assert len(node.inputs) == 4 and node.outputs == ["y"]
    assert fused_ops(model).count("Relu") == 0 and add_op not in fused_ops(model)
    feed = _feed()
    if second_conv:
        feed.pop("z")
    assert_same_run(m, fused, feed)
    onnxruntime = pytest.importorskip("onnxruntime")  # onnxruntime's FusedConv reads Z alike
    theirs = onnxruntime.InferenceSession(
        fused.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    np.testing.assert_allclose(
        theirs.run(None, feed)[0], _run_plain(m, feed)[0], rtol=1e-4, atol=1e-4
    )


def _run_plain(proto, feed):
    import ort_core as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["cpu"]).run(None, feed)


@pytest.mark.parametrize(
    "why,kw",
    [
        ("Z broadcasts", {"z_shape": (1, 4, 1, 5)}),
        ("conv output read twice", {"extra_reader": True}),
    ],
)
def test_conv_add_activation_declined(why, kw):
    m = _residual(**kw)
    _, changed, _ = apply_on_cpu(conv_add_activation_fusion.PASS, m)
    assert not changed, why


def test_conv_add_constant_is_not_a_residual():
    m = make_model(
        [helper.make_node("Conv", ["x", "W"], ["c"]), helper.make_node("Add", ["c", "K"], ["y"])],
        [tensor("x", shape=[1, 3, 5, 5])],
        [tensor("y")],
        [
            init("W", RNG.standard_normal((4, 3, 1, 1))),
            init("K", RNG.standard_normal((1, 4, 5, 5))),
        ],
    )
    _, changed, _ = apply_on_cpu(conv_add_activation_fusion.PASS, m)
    assert not changed


def test_consumer_map_kept_through_fusions(monkeypatch):
    """ConvActivationFusion keeps one consumer map per graph up to date through its fusions
    (_fusion.replace_reads) instead of remaking it per candidate: after every fusion the map
    equals one made from the graph as it is (a chain of three convolutions with activations,
    the first one's output also read by a residual Add)."""
    from ort_core.optimizer._util import all_graphs
    from ort_core.optimizer.passes import _fusion

    real, checked, checked_graph = _fusion.replace_reads, [], []

    def checking(consumers, new, remove):
        real(consumers, new, remove)
        graph = checked_graph[0]

        def norm(m):
            return {k: sorted(map(id, v)) for k, v in m.items() if v}

        assert norm(consumers) == norm(graph.consumers())
        checked.append(new[0].op_type)

    def spy_all_graphs(model):
        for g in all_graphs(model):
            checked_graph[:] = [g]
            yield g

    monkeypatch.setattr(conv_activation_fusion, "all_graphs", spy_all_graphs)
    monkeypatch.setattr(conv_activation_fusion, "replace_reads", checking)
    w = [init(f"W{i}", RNG.standard_normal((4, 4, 3, 3))) for i in range(3)]
    b = [init(f"B{i}", RNG.standard_normal(4)) for i in range(3)]
    m = make_model(
        [
            helper.make_node("Conv", ["x", "W0", "B0"], ["c0"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c0"], ["r0"]),
            helper.make_node("Conv", ["r0", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1]),
            helper.make_node("LeakyRelu", ["c1"], ["r1"], alpha=0.1),
            helper.make_node("Conv", ["r1", "W2", "B2"], ["c2"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c2"], ["r2"]),
            helper.make_node("Add", ["r2", "r0"], ["y"]),
        ],
        [tensor("x", shape=[1, 4, 5, 5])],
        [tensor("y")],
        w + b,
    )
    model, changed, fused = apply_on_cpu(conv_activation_fusion.PASS, m)
    assert changed and checked == ["FusedConv"] * 3
    assert fused_ops(model) == ["FusedConv"] * 3 + ["Add"]
    assert_same_run(m, fused, {"x": RNG.standard_normal((1, 4, 5, 5)).astype(np.float32)})
