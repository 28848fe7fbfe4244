"""com.microsoft DynamicQuantizeLSTM on the CPU provider against onnxruntime, on models that
onnxruntime's own ``quantize_dynamic`` writes from a float LSTM.

onnxruntime quantizes the recurrent state of the whole batch together only on one intra-op
thread; on more threads each thread's block of batch rows gets its own scale (its output then
depends on its thread count). ort-core quantizes the whole batch together, so the reference
runs on one thread. Weights are 7-bit (``reduce_range``): onnxruntime's u8s8 GEMM on AVX2
without VNNI adds pairs of products in saturating 16-bit lanes, which full-range weights can
overflow (docs/compatibility.md)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core

onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle of these tests")
quantization = pytest.importorskip("onnxruntime.quantization")


def _lstm(direction="forward", seq=6, batch=3, inp=16, hid=24, peepholes=False, lens=False):
    rng = np.random.default_rng(0)
    dirs = 2 if direction == "bidirectional" else 1
    inits = [
        numpy_helper.from_array(rng.uniform(-0.3, 0.3, (dirs, 4 * hid, inp)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.uniform(-0.3, 0.3, (dirs, 4 * hid, hid)).astype(np.float32), "R"),
        numpy_helper.from_array(rng.uniform(-0.1, 0.1, (dirs, 8 * hid)).astype(np.float32), "B"),
    ]  # fmt: skip
    inputs = [
        helper.make_tensor_value_info("X", TensorProto.FLOAT, [seq, batch, inp]),
        helper.make_tensor_value_info("h0", TensorProto.FLOAT, [dirs, batch, hid]),
        helper.make_tensor_value_info("c0", TensorProto.FLOAT, [dirs, batch, hid]),
    ]
    names = ["X", "W", "R", "B", "lens" if lens else "", "h0", "c0"]
    if lens:
        inputs.append(helper.make_tensor_value_info("lens", TensorProto.INT32, [batch]))
    if peepholes:
        p = rng.uniform(-0.2, 0.2, (dirs, 3 * hid)).astype(np.float32)
        inits.append(numpy_helper.from_array(p, "P"))
        names.append("P")
    node = helper.make_node(
        "LSTM", names, ["Y", "Y_h", "Y_c"], hidden_size=hid, direction=direction
    )
    outputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("Y", "Y_h", "Y_c")
    ]
    graph = helper.make_graph([node], "lstm", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def _quantized_by_onnxruntime(tmp_path, model, per_channel: bool):
    """The path of ``model`` quantized by onnxruntime's quantize_dynamic (its LSTMs only)."""
    src, dst = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(model, src)
    quantization.quantize_dynamic(
        str(src), str(dst), op_types_to_quantize=["LSTM"], per_channel=per_channel,
        reduce_range=True, weight_type=quantization.QuantType.QInt8,
    )  # fmt: skip
    return dst


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("kind", ["forward", "bidirectional", "reverse_with_lengths", "peepholes"])
def test_matches_onnxruntime_quantized_model(tmp_path, kind, per_channel):
    direction = {"bidirectional": "bidirectional", "reverse_with_lengths": "reverse"}.get(
        kind, "forward"
    )
    model = _lstm(direction, peepholes=kind == "peepholes", lens=kind == "reverse_with_lengths")
    dst = _quantized_by_onnxruntime(tmp_path, model, per_channel)
    assert [n.op_type for n in onnx.load(dst).graph.node] == ["DynamicQuantizeLSTM"]
    rng = np.random.default_rng(1)
    dirs = 2 if direction == "bidirectional" else 1
    feeds = {
        "X": rng.standard_normal((6, 3, 16)).astype(np.float32),
        "h0": rng.standard_normal((dirs, 3, 24)).astype(np.float32),
        "c0": rng.standard_normal((dirs, 3, 24)).astype(np.float32),
    }
    if kind == "reverse_with_lengths":
        feeds["lens"] = np.array([6, 2, 4], np.int32)
    so = onnxruntime.SessionOptions()
    so.intra_op_num_threads = 1
    ref = onnxruntime.InferenceSession(str(dst), so, providers=["CPUExecutionProvider"])
    got = ort_core.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, feeds)
    for g, e in zip(got, ref.run(None, feeds)):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


def test_zero_point_of_the_wrong_length_is_an_error(tmp_path):
    q = onnx.load(_quantized_by_onnxruntime(tmp_path, _lstm(), per_channel=False))
    node = q.graph.node[0]
    zp = {i.name: i for i in q.graph.initializer}[node.input[9]]
    zp.CopyFrom(numpy_helper.from_array(np.zeros((1, 5), np.int8), zp.name))
    feeds = {
        "X": np.zeros((6, 3, 16), np.float32),
        "h0": np.zeros((1, 3, 24), np.float32),
        "c0": np.zeros((1, 3, 24), np.float32),
    }
    session = ort_core.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="zero point of input 1 has 5 values"):
        session.run(None, feeds)


@pytest.mark.parametrize("reduce_range", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_quantize_dynamic_writes_onnxruntimes_node(tmp_path, direction, per_channel, reduce_range):
    """ort_core.quantization.quantize_dynamic turns an LSTM into the DynamicQuantizeLSTM that
    onnxruntime's quantizer writes: same inputs, same quantized tensors, same outputs."""
    from ort_core.quantization import QuantType, quantize_dynamic

    src = tmp_path / "float.onnx"
    onnx.save(_lstm(direction), src)
    ours, theirs = tmp_path / "ours.onnx", tmp_path / "theirs.onnx"
    kw = {"per_channel": per_channel, "reduce_range": reduce_range}
    quantize_dynamic(str(src), str(ours), weight_type=QuantType.QInt8, **kw)
    quantization.quantize_dynamic(
        str(src), str(theirs), weight_type=quantization.QuantType.QInt8, **kw
    )
    a, b = onnx.load(ours), onnx.load(theirs)
    assert (
        [(n.op_type, n.domain) for n in a.graph.node]
        == [(n.op_type, n.domain) for n in b.graph.node]
        == [("DynamicQuantizeLSTM", "com.microsoft")]
    )
    ta = {i.name: numpy_helper.to_array(i) for i in a.graph.initializer}
    tb = {i.name: numpy_helper.to_array(i) for i in b.graph.initializer}
    for x, y in zip(a.graph.node[0].input, b.graph.node[0].input, strict=True):
        assert (x in ta) == (y in tb)
        if x in ta:
            assert ta[x].dtype == tb[y].dtype and ta[x].shape == tb[y].shape
            np.testing.assert_array_equal(ta[x], tb[y])


def test_quantize_dynamic_leaves_a_batch_first_lstm_in_float(tmp_path):
    from ort_core.quantization import quantize_dynamic

    model = _lstm()
    model.graph.node[0].attribute.append(helper.make_attribute("layout", 1))
    src, dst = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(model, src)
    quantize_dynamic(str(src), str(dst))
    assert [n.op_type for n in onnx.load(dst).graph.node] == ["LSTM"]
