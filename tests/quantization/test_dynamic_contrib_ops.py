"""quantize_dynamic on the com.microsoft ops onnxruntime's transformer optimizer writes: Attention
becomes QAttention and EmbedLayerNormalization QEmbedLayerNormalization, as onnxruntime's quantizer
writes them, and the products after them are quantized too (onnx's type inference does not type
contrib ops); the CPU provider runs the results as onnxruntime does."""

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


def _embed_model(segment: bool, mask: bool, position_ids: bool = False) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    tables = {
        "word": rng.standard_normal((50, HIDDEN)),
        "pos": rng.standard_normal((16, HIDDEN)),
        "seg": rng.standard_normal((2, HIDDEN)),
        "gamma": rng.uniform(0.5, 1.5, HIDDEN),
        "beta": rng.uniform(-0.1, 0.1, HIDDEN),
        "Wo": rng.uniform(-0.2, 0.2, (HIDDEN, HIDDEN)),
    }
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in tables.items()]
    ids = ["ids", "segids" if segment else "", "word", "pos", "seg" if segment else ""]
    inputs = [*ids, "gamma", "beta", "mask" if mask else ""]
    graph_inputs = [helper.make_tensor_value_info("ids", TensorProto.INT32, [2, 8])]
    for name, used in (("segids", segment), ("mask", mask), ("posids", position_ids)):
        if used:
            graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.INT32, [2, 8]))
    if position_ids:
        inputs.append("posids")
    nodes = [
        helper.make_node(
            "EmbedLayerNormalization", inputs, ["e", "mask_index"], "emb",
            domain="com.microsoft", epsilon=1e-12,
        ),
        helper.make_node("MatMul", ["e", "Wo"], ["y"], "proj"),
    ]  # fmt: skip
    outputs = [
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8, HIDDEN]),
        helper.make_tensor_value_info("mask_index", TensorProto.INT32, [2]),
    ]
    graph = helper.make_graph(nodes, "embed", graph_inputs, outputs, inits)
    opsets = [helper.make_opsetid("", 14), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets)


@pytest.mark.parametrize("mask", [True, False])
@pytest.mark.parametrize("segment", [True, False])
def test_embed_layer_normalization_as_onnxruntimes_quantizer_writes_it(tmp_path, segment, mask):
    src, ours, theirs = tmp_path / "f.onnx", tmp_path / "ours.onnx", tmp_path / "theirs.onnx"
    onnx.save(_embed_model(segment, mask), src)
    # 7-bit weights for the MatMul after it: onnxruntime's AVX2 products do not saturate
    quantize_dynamic(str(src), str(ours), reduce_range=True)
    quantization.quantize_dynamic(str(src), str(theirs), reduce_range=True)
    a, b = onnx.load(ours), onnx.load(theirs)
    assert sorted(n.op_type for n in a.graph.node) == sorted(n.op_type for n in b.graph.node)
    qa, qb = (
        [n for n in m.graph.node if n.op_type == "QEmbedLayerNormalization"][0] for m in (a, b)
    )
    ta = {i.name: numpy_helper.to_array(i) for i in a.graph.initializer}
    tb = {i.name: numpy_helper.to_array(i) for i in b.graph.initializer}
    for x, y in zip(qa.input, qb.input, strict=True):
        assert (x in ta) == (y in tb) and bool(x) == bool(y)
        if x in ta:
            assert ta[x].dtype == tb[y].dtype
            np.testing.assert_array_equal(ta[x], tb[y])
    rng = np.random.default_rng(1)
    feeds = {"ids": rng.integers(0, 50, (2, 8)).astype(np.int32)}
    if segment:
        feeds["segids"] = rng.integers(0, 2, (2, 8)).astype(np.int32)
    if mask:
        feeds["mask"] = np.array([[1] * 8, [1] * 5 + [0] * 3], np.int32)
    want = onnxruntime.InferenceSession(str(theirs)).run(None, feeds)
    got = ort_core.InferenceSession(str(ours)).run(None, feeds)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("qtype", [np.uint8, np.int8])
def test_qembed_layer_normalization_kernel_matches_onnxruntime(qtype):
    """The kernel on hand-quantized tables with non-zero zero points, both 8-bit types."""
    rng = np.random.default_rng(2)
    info = np.iinfo(qtype)
    names = ["word", "pos", "seg", "gamma", "beta"]
    shapes = [(40, HIDDEN), (10, HIDDEN), (3, HIDDEN), (HIDDEN,), (HIDDEN,)]
    inits = []
    for name, shape in zip(names, shapes, strict=True):
        q = rng.integers(info.min, info.max + 1, shape).astype(qtype)
        inits += [
            numpy_helper.from_array(q, f"{name}_q"),
            numpy_helper.from_array(np.float32(rng.uniform(0.005, 0.02)), f"{name}_s"),
            numpy_helper.from_array(qtype(rng.integers(info.min // 2, info.max // 2)), f"{name}_z"),
        ]
    inputs = ["ids", "segids", *(f"{n}_q" for n in names), "mask"]
    inputs += [f"{n}_s" for n in names] + [f"{n}_z" for n in names]
    node = helper.make_node(
        "QEmbedLayerNormalization", inputs, ["out", "mask_index"], domain="com.microsoft",
        epsilon=1e-5,
    )  # fmt: skip
    graph = helper.make_graph(
        [node], "q",
        [helper.make_tensor_value_info(n, TensorProto.INT32, [3, 7]) for n in ("ids", "segids", "mask")],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("mask_index", TensorProto.INT32, None)],
        inits,
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 14), helper.make_opsetid("com.microsoft", 1)]
    ).SerializeToString()
    feeds = {
        "ids": rng.integers(0, 40, (3, 7)).astype(np.int32),
        "segids": rng.integers(0, 3, (3, 7)).astype(np.int32),
        "mask": (rng.random((3, 7)) > 0.3).astype(np.int32),
    }
    want = onnxruntime.InferenceSession(model).run(None, feeds)
    got = ort_core.InferenceSession(model).run(None, feeds)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got[1], want[1])


def test_embed_layer_normalization_with_position_ids_stays_float(tmp_path):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(_embed_model(True, True, position_ids=True), src)
    quantize_dynamic(str(src), str(dst))
    assert "EmbedLayerNormalization" in [n.op_type for n in onnx.load(dst).graph.node]
