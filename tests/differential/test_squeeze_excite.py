"""Squeeze-and-excitation blocks (GlobalAveragePool -> 1x1 Conv -> activation -> 1x1 Conv ->
gate -> Mul with the block's input) claimed by the CPU provider as one fused subgraph and run by
one compiled kernel (``ort_cpu.squeeze_excite``): against onnxruntime for each activation and
gate, batches and map sizes; what is not fused (an intermediate read elsewhere, a Conv that is
not a plain 1x1, the BASIC optimization level, compiled kernels off); and the saved optimized
model, which keeps the six standard nodes. Also the Conv + HardSwish pairs the provider claims
the same way (``ort_cpu.conv_activation``)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core

MS = "com.microsoft"

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle of these tests")


def _activation(name: str, op: str, x: str, y: str, inits: list) -> list:
    if op == "Clip":
        inits += [numpy_helper.from_array(np.float32(0), f"{name}_lo"),
                  numpy_helper.from_array(np.float32(6), f"{name}_hi")]  # fmt: skip
        return [helper.make_node("Clip", [x, f"{name}_lo", f"{name}_hi"], [y])]
    attrs = {"HardSigmoid": {"alpha": 0.2, "beta": 0.5}, "LeakyRelu": {"alpha": 0.1}}
    return [helper.make_node(op, [x], [y], **attrs.get(op, {}))]


def _se_model(c=24, m=6, hw=(3, 12), act="Relu", gate="HardSigmoid", batch=1, extra=None,
              conv_attrs=None, seed=0):  # fmt: skip
    """x -> Conv 3x3 (so the block's input is computed) -> SE block -> Relu -> y."""
    rng = np.random.default_rng(seed)
    f = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)  # noqa: E731
    inits = [
        numpy_helper.from_array(f(c, c, 3, 3) * 0.3, "w0"), numpy_helper.from_array(f(c), "b0"),
        numpy_helper.from_array(f(m, c, 1, 1), "w1"), numpy_helper.from_array(f(m), "b1"),
        numpy_helper.from_array(f(c, m, 1, 1), "w2"), numpy_helper.from_array(f(c), "b2"),
    ]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["t"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["t"], ["p"]),
        helper.make_node("Conv", ["p", "w1", "b1"], ["a"], **(conv_attrs or {})),
        *_activation("act", act, "a", "a2", inits),
        helper.make_node("Conv", ["a2", "w2", "b2"], ["g"]),
        *_activation("gate", gate, "g", "s", inits),
        helper.make_node("Mul", ["t", "s"], ["u"]),
        helper.make_node("Relu", ["u"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if extra:
        outputs.append(helper.make_tensor_value_info(extra, TensorProto.FLOAT, None))
    graph = helper.make_graph(
        nodes, "se", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, c, *hw])],
        outputs, inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    x = rng.standard_normal((batch, c, *hw)).astype(np.float32)
    return model.SerializeToString(), {"x": x}


def _fused(sess) -> list[str]:
    return [
        st.node.op_type for st in sess._plan.steps if st.node.op_type.startswith("SqueezeExcite")
    ]


def _compiled_on():
    from ort_cpu import _jit

    if not _jit.available():
        pytest.skip(f"compiled kernels are off: {_jit.reason()}")


@pytest.mark.parametrize(
    "act, gate",
    [("Relu", "HardSigmoid"), ("Clip", "Sigmoid"), ("HardSwish", "HardSigmoid"),
     ("LeakyRelu", "Sigmoid"), ("Relu", "Relu")],
)  # fmt: skip
@pytest.mark.parametrize("batch, hw", [(1, (3, 12)), (2, (5, 7)), (1, (1, 1))])
def test_a_block_is_one_kernel_and_equals_onnxruntime(act, gate, batch, hw):
    _compiled_on()
    model, feeds = _se_model(act=act, gate=gate, batch=batch, hw=hw)
    sess = ort_core.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert len(_fused(sess)) == 1
    assert not any(st.node.op_type == "GlobalAveragePool" for st in sess._plan.steps)
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_allclose(sess.run(None, feeds)[0], want[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "case",
    ["intermediate_read_elsewhere", "strided_conv", "basic_level", "compiled_off"],
)
def test_what_is_not_fused_runs_node_by_node(case, monkeypatch):
    kw = {}
    if case == "intermediate_read_elsewhere":
        kw["extra"] = "s"  # the gate is a graph output too
    if case == "strided_conv":
        kw["conv_attrs"] = {"strides": [2, 2]}
    model, feeds = _se_model(**kw)
    so = ort_core.SessionOptions()
    if case == "basic_level":
        so.graph_optimization_level = ort_core.GraphOptimizationLevel.ORT_ENABLE_BASIC
    if case == "compiled_off":
        from ort_cpu import _jit

        monkeypatch.setitem(_jit._STATE, "ok", False)
        monkeypatch.setitem(_jit._STATE, "why", "turned off by the test")
    sess = ort_core.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    assert _fused(sess) == []
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    for g, w in zip(sess.run(None, feeds), want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_the_saved_optimized_model_keeps_the_standard_nodes(tmp_path):
    _compiled_on()
    model, feeds = _se_model(act="HardSwish")
    so = ort_core.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = ort_core.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    assert len(_fused(sess)) == 1
    saved = onnx.load(so.optimized_model_filepath)
    ops = [n.op_type for n in saved.graph.node]
    assert "GlobalAveragePool" in ops and "HardSwish" in ops and "Mul" in ops
    assert not any(o.startswith("SqueezeExcite") or "subgraph" in o for o in ops)
    again = ort.InferenceSession(so.optimized_model_filepath, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        sess.run(None, feeds)[0], again.run(None, feeds)[0], rtol=1e-5, atol=1e-5
    )


def _conv_hard_swish(c=16, m=24, hw=(9, 13), group=1, extra=None, seed=1):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((m, c // group, 3, 3)) * 0.3).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["t"], pads=[1, 1, 1, 1], group=group),
        helper.make_node("HardSwish", ["t"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if extra:
        outputs.append(helper.make_tensor_value_info(extra, TensorProto.FLOAT, None))
    graph = helper.make_graph(
        nodes, "ch", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, *hw])],
        outputs, [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model.SerializeToString(), {"x": rng.standard_normal((1, c, *hw)).astype(np.float32)}


@pytest.mark.parametrize(
    "c, m, hw, group",
    [(16, 24, (9, 13), 1), (32, 32, (7, 7), 32), (3, 8, (48, 64), 1), (64, 64, (3, 12), 64)],
)
def test_conv_and_hard_swish_are_one_kernel_and_equal_onnxruntime(c, m, hw, group, tmp_path):
    """A Conv read only by a HardSwish runs as the FusedConv kernel with the activation in its
    epilogue (dense, depthwise, a stem); the saved optimized model keeps the two nodes."""
    _compiled_on()
    model, feeds = _conv_hard_swish(c, m, hw, group)
    so = ort_core.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = ort_core.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    assert [st.node.op_type.split("_")[0] for st in sess._plan.steps] == ["ConvHardSwish"]
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_allclose(sess.run(None, feeds)[0], want[0], rtol=1e-5, atol=1e-5)
    saved = onnx.load(so.optimized_model_filepath)
    assert [n.op_type for n in saved.graph.node] == ["Conv", "HardSwish"]


def test_a_conv_read_elsewhere_keeps_its_hard_swish_apart():
    model, feeds = _conv_hard_swish(extra="t")
    sess = ort_core.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert [st.node.op_type for st in sess._plan.steps] == ["Conv", "HardSwish"]
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    for g, w in zip(sess.run(None, feeds), want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def _conv_silu(c, m, hw, group, kernel, stride, tail, seed=3):
    """Conv then SiLU as Sigmoid and Mul (``tail`` "silu", the Mul's inputs in either order) or
    as com.microsoft QuickGelu with alpha 1.702 (``tail`` "quick")."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((m, c // group, kernel, kernel)) * 0.3).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32)
    conv = helper.make_node(
        "Conv", ["x", "w", "b"], ["t"], pads=[kernel // 2] * 4, group=group, strides=[stride] * 2
    )
    if tail == "quick":
        nodes = [conv, helper.make_node("QuickGelu", ["t"], ["y"], domain=MS, alpha=1.702)]
    else:
        mul = ["g", "t"] if tail == "silu_swapped" else ["t", "g"]
        nodes = [
            conv,
            helper.make_node("Sigmoid", ["t"], ["g"]),
            helper.make_node("Mul", mul, ["y"]),
        ]
    graph = helper.make_graph(
        nodes, "cs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, *hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 14), helper.make_opsetid(MS, 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    x = (rng.standard_normal((1, c, *hw)) * 4).astype(np.float32)  # both tails of the sigmoid
    return model.SerializeToString(), {"x": x}


@pytest.mark.parametrize("tail", ["silu", "silu_swapped", "quick"])
@pytest.mark.parametrize(
    "c, m, hw, group, kernel, stride",
    [
        (16, 32, (40, 40), 1, 3, 1),  # dense 3x3: the direct kernel
        (64, 64, (14, 14), 1, 3, 2),  # channels last, strided
        (32, 64, (20, 20), 1, 1, 1),  # 1x1 planar tiles
        (64, 96, (7, 7), 1, 1, 1),  # 1x1 channels last
        (32, 32, (20, 20), 32, 3, 1),  # depthwise
        (3, 16, (64, 64), 1, 3, 2),  # a stem
    ],
)
def test_conv_and_silu_are_one_kernel_and_equal_onnxruntime(c, m, hw, group, kernel, stride, tail):
    """A Conv read only by a SiLU (Sigmoid and Mul, or QuickGelu) runs as the FusedConv kernel
    with x * sigmoid(alpha * x) in its epilogue (activation code 6: the exponential of the
    compiled QuickGelu, in registers), on every compiled plan, against onnxruntime."""
    _compiled_on()
    model, feeds = _conv_silu(c, m, hw, group, kernel, stride, tail)
    sess = ort_core.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert [st.node.op_type.split("_")[0] for st in sess._plan.steps] in (
        ["ConvMul"],
        ["ConvQuickGelu"],
    )
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    scale = float(np.abs(want[0]).max())  # sums of up to 576 products, in another order
    np.testing.assert_allclose(sess.run(None, feeds)[0], want[0], rtol=1e-5, atol=2e-6 * scale)


def test_a_sigmoid_read_elsewhere_keeps_the_silu_apart():
    """Where the Sigmoid's output is also a graph output, the three nodes stay apart."""
    model, feeds = _conv_silu(16, 32, (10, 10), 1, 3, 1, "silu")
    m = onnx.load_from_string(model)
    m.graph.output.append(helper.make_tensor_value_info("g", TensorProto.FLOAT, None))
    sess = ort_core.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    assert not any(st.node.op_type.startswith("Conv") and "_" in st.node.op_type
                   for st in sess._plan.steps)  # fmt: skip
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    for g, w in zip(sess.run(None, feeds), want.run(None, feeds), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
