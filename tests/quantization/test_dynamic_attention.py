"""quantize_dynamic on com.microsoft Attention: the QAttention node onnxruntime's quantizer writes,
and the products after it quantized too (onnx's type inference does not type contrib ops)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core
from ort_core.quantization import quantize_dynamic

onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime's quantizer is the reference")
quantization = pytest.importorskip("onnxruntime.quantization")

HIDDEN, HEADS = 32, 4


def _model(mask: bool, extra_input: bool = False, qkv_sizes: bool = False) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.uniform(-0.2, 0.2, (HIDDEN, 3 * HIDDEN)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.uniform(-0.1, 0.1, 3 * HIDDEN).astype(np.float32), "B"),
        numpy_helper.from_array(rng.uniform(-0.2, 0.2, (HIDDEN, HIDDEN)).astype(np.float32), "Wo"),
    ]  # fmt: skip
    inputs = ["x", "W", "B", "mask" if mask else ""]
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, HIDDEN])]
    if mask:
        graph_inputs.append(helper.make_tensor_value_info("mask", TensorProto.INT32, [2, 8]))
    if extra_input:  # attention_bias, which QAttention has no input for
        inputs += ["", "bias"]
        graph_inputs.append(
            helper.make_tensor_value_info("bias", TensorProto.FLOAT, [2, HEADS, 8, 8])
        )
    attrs = {"num_heads": HEADS}
    if qkv_sizes:
        attrs["qkv_hidden_sizes"] = [HIDDEN, HIDDEN, HIDDEN]
    nodes = [
        helper.make_node("Attention", inputs, ["a"], "attn", domain="com.microsoft", **attrs),
        helper.make_node("MatMul", ["a", "Wo"], ["y"], "proj"),
    ]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8, HIDDEN])]
    graph = helper.make_graph(nodes, "attention", graph_inputs, out, inits)
    opsets = [helper.make_opsetid("", 14), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets)


@pytest.mark.parametrize("reduce_range", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("mask", [True, False])
def test_same_model_as_onnxruntimes_quantizer(tmp_path, mask, per_channel, reduce_range):
    src, ours, theirs = tmp_path / "f.onnx", tmp_path / "ours.onnx", tmp_path / "theirs.onnx"
    onnx.save(_model(mask), src)
    kw = {"per_channel": per_channel, "reduce_range": reduce_range}
    quantize_dynamic(str(src), str(ours), **kw)
    quantization.quantize_dynamic(str(src), str(theirs), **kw)
    a, b = onnx.load(ours), onnx.load(theirs)
    assert sorted(n.op_type for n in a.graph.node) == sorted(n.op_type for n in b.graph.node)
    qa, qb = ([n for n in m.graph.node if n.op_type == "QAttention"][0] for m in (a, b))
    ta = {i.name: numpy_helper.to_array(i) for i in a.graph.initializer}
    tb = {i.name: numpy_helper.to_array(i) for i in b.graph.initializer}
    for x, y in zip(qa.input, qb.input, strict=True):
        assert (x in ta) == (y in tb) and bool(x) == bool(y)
        if x in ta:
            np.testing.assert_array_equal(ta[x], tb[y])
    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal((2, 8, HIDDEN)).astype(np.float32)}
    if mask:
        feeds["mask"] = np.array([[1] * 8, [1] * 5 + [0] * 3], np.int32)
    so = onnxruntime.SessionOptions()
    so.intra_op_num_threads = 1
    run = {p: onnxruntime.InferenceSession(str(p), so).run(None, feeds)[0] for p in (ours, theirs)}
    np.testing.assert_array_equal(run[ours], run[theirs])  # onnxruntime: same model, same result
    if reduce_range:  # 7-bit weights: onnxruntime's AVX2 products do not saturate
        got = ort_core.InferenceSession(str(ours)).run(None, feeds)[0]
        np.testing.assert_allclose(got, run[theirs], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["qkv_hidden_sizes", "attention_bias"])
def test_attention_qattention_cannot_express_stays_float(tmp_path, case):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    model = _model(True, extra_input=case == "attention_bias", qkv_sizes=case == "qkv_hidden_sizes")
    onnx.save(model, src)
    quantize_dynamic(str(src), str(dst))
    assert "Attention" in [n.op_type for n in onnx.load(dst).graph.node]
