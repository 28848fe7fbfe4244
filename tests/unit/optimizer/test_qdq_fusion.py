"""QDQFusion: DequantizeLinear -> op -> QuantizeLinear groups become QLinear ops."""

import numpy as np
import pytest
from onnx import helper, numpy_helper

from ort_core.optimizer.passes import qdq_fusion
from tests.conftest import make_model, tensor
from tests.unit.optimizer.fusion_helpers import apply_on_cpu, fused_ops

RNG = np.random.default_rng(0)


def q(name, scale, zp, dtype=np.uint8):
    return [numpy_helper.from_array(np.float32(scale), f"{name}_s"),
            numpy_helper.from_array(np.array(zp, dtype), f"{name}_z")]  # fmt: skip


def dq(x, p):
    return helper.make_node("DequantizeLinear", [x, f"{p}_s", f"{p}_z"], [f"{x}_f"])


def _run(model_proto, feed):
    import ort_core as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model_proto.SerializeToString(), so, providers=["cpu"])
    return s.run(None, feed)[0]


@pytest.mark.parametrize(
    "op,expected", [("Add", "QLinearAdd"), ("Mul", "QLinearMul"), ("MatMul", "QLinearMatMul")]
)
def test_binary_groups(op, expected):
    m = make_model(
        [
            dq("a", "a"),
            dq("b", "b"),
            helper.make_node(op, ["a_f", "b_f"], ["c"]),
            helper.make_node("QuantizeLinear", ["c", "y_s", "y_z"], ["y"]),
        ],
        [tensor("a", 2, [4, 4]), tensor("b", 2, [4, 4])],
        [tensor("y", 2)],
        [*q("a", 0.05, 120), *q("b", 0.04, 130), *q("y", 0.2, 128)],
    )
    model, changed, fused = apply_on_cpu(qdq_fusion.PASS, m)
    assert changed and fused_ops(model) == [expected]
    feed = {x: RNG.integers(0, 256, (4, 4)).astype(np.uint8) for x in "ab"}
    diff = _run(m, feed).astype(int) - _run(fused, feed).astype(int)
    assert np.abs(diff).max() <= 1


def test_conv_with_int32_bias_and_unary():
    w = numpy_helper.from_array(RNG.integers(-50, 50, (4, 3, 3, 3)).astype(np.int8), "w")
    ws = numpy_helper.from_array(np.full(4, 0.01, np.float32), "w_s")
    wz = numpy_helper.from_array(np.zeros(4, np.int8), "w_z")
    bias = numpy_helper.from_array(RNG.integers(-100, 100, 4).astype(np.int32), "bias")
    bs = numpy_helper.from_array(np.full(4, 0.05 * 0.01, np.float32), "bias_s")
    bz = numpy_helper.from_array(np.zeros(4, np.int32), "bias_z")
    m = make_model(
        [
            dq("x", "x"),
            helper.make_node("DequantizeLinear", ["w", "w_s", "w_z"], ["w_f"], axis=0),
            helper.make_node("DequantizeLinear", ["bias", "bias_s", "bias_z"], ["bias_f"], axis=0),
            helper.make_node("Conv", ["x_f", "w_f", "bias_f"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("QuantizeLinear", ["c", "c_s", "c_z"], ["cq"]),
            dq("cq", "c"),
            helper.make_node("Sigmoid", ["cq_f"], ["sg"]),
            helper.make_node("QuantizeLinear", ["sg", "y_s", "y_z"], ["y"]),
        ],
        [tensor("x", 2, [1, 3, 5, 5])],
        [tensor("y", 2)],
        [w, ws, wz, bias, bs, bz, *q("x", 0.05, 128), *q("c", 0.1, 128), *q("y", 1 / 256, 0)],
    )
    model, changed, fused = apply_on_cpu(qdq_fusion.PASS, m)
    assert changed and fused_ops(model) == ["QLinearConv", "QLinearSigmoid"]
    feed = {"x": RNG.integers(0, 256, (1, 3, 5, 5)).astype(np.uint8)}
    assert np.abs(_run(m, feed).astype(int) - _run(fused, feed).astype(int)).max() <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_concat_group_becomes_qlinear_concat(dtype, monkeypatch):
    """DequantizeLinear on every input -> Concat -> QuantizeLinear is QLinearConcat (as
    onnxruntime fuses it): the same bytes as the unfused graph, an input with the output's
    scale and zero point copied as it is, the others through their tables; onnxruntime runs
    the fused node to the same bytes."""
    import onnxruntime

    zp = 120 if dtype == np.uint8 else -3
    m = make_model(
        [
            dq("a", "a"), dq("b", "b"), dq("c", "y"),
            helper.make_node("Concat", ["a_f", "b_f", "c_f"], ["cat"], axis=1),
            helper.make_node("QuantizeLinear", ["cat", "y_s", "y_z"], ["y"]),
        ],
        [tensor("a", 2, [2, 3, 4]), tensor("b", 2, [2, 5, 4]), tensor("c", 2, [2, 1, 4])],
        [tensor("y", 2)],
        [*q("a", 0.05, zp, dtype), *q("b", 0.013, zp + 7, dtype), *q("y", 0.03, zp, dtype)],
    )  # fmt: skip
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    for v in [*m.graph.input, *m.graph.output]:
        v.type.tensor_type.elem_type = elem
    model, changed, fused = apply_on_cpu(qdq_fusion.PASS, m)
    assert changed and fused_ops(model) == ["QLinearConcat"]
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max + 1
    feed = {
        "a": RNG.integers(lo, hi, (2, 3, 4)).astype(dtype),
        "b": RNG.integers(lo, hi, (2, 5, 4)).astype(dtype),
        "c": RNG.integers(lo, hi, (2, 1, 4)).astype(dtype),
    }
    from ort_cpu.kernels import _quant_jit

    looked = []
    compiled = _quant_jit.warm_lookup()
    monkeypatch.setattr(
        _quant_jit, "warm_lookup", lambda: lambda *a: looked.append(1) or compiled(*a)
    )
    got = _run(fused, feed)
    assert len(looked) == 2  # a's and b's tables; c has the output's parameters: copied
    np.testing.assert_array_equal(got, _run(m, feed))
    np.testing.assert_array_equal(got[:, 8:], feed["c"])  # the output's own parameters: copied
    ref = onnxruntime.InferenceSession(
        fused.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    np.testing.assert_array_equal(got, ref.run(None, feed)[0])
