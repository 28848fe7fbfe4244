"""The CPU provider's fast quantization paths against onnxruntime: compiled QuantizeLinear and
DequantizeLinear (and their numpy path), DynamicQuantizeLinear, the MatMulIntegerToFloat fusion
of ``quantize_dynamic`` models and float16 models computed in float32 as onnxruntime does."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from ort_cpu.kernels import _quant_jit, quantization

import ort_core

ort = pytest.importorskip("onnxruntime")
rng = np.random.default_rng(16)


@pytest.fixture(params=["compiled", "numpy"])
def path(request, monkeypatch):
    """Run each test with the compiled loops and with them off (the numpy path)."""
    if request.param == "numpy":
        monkeypatch.setattr(_quant_jit, "warm_quantize", lambda: None)
        monkeypatch.setattr(_quant_jit, "warm_quantize_flat", lambda: None)
        monkeypatch.setattr(_quant_jit, "warm_dequantize", lambda: None)
        monkeypatch.setattr(quantization, "_EXACT_F32", 1.0)  # a block per row of B
    return request.param


def _model(nodes, inputs, outputs, inits=(), opset=21):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 9
    return m


def _both(model, feed, **opts):
    so = ort_core.SessionOptions()
    for k, v in opts.items():
        setattr(so, k, v)
    ours = ort_core.InferenceSession(model.SerializeToString(), so, providers=["cpu"])
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return ours, ours.run(None, feed), ref.run(None, feed)


def _vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


@pytest.mark.parametrize("qtype", [TensorProto.UINT8, TensorProto.INT8])
@pytest.mark.parametrize("per_axis", [False, True], ids=["tensor", "axis"])
def test_quantize_dequantize_match_onnxruntime(path, qtype, per_axis):
    np_q = helper.tensor_dtype_to_np_dtype(qtype)
    c = 5
    x = (rng.standard_normal((2, c, 7, 3)) * 20).astype(np.float32)
    x.flat[:6] = [0.5, 1.5, 2.5, -0.5, -1.5, 1e9]  # ties to even, saturation
    shape = (c,) if per_axis else ()
    scale = (rng.uniform(0.05, 0.5, shape) if per_axis else np.float32(1.0)).astype(np.float32)
    base = 100 if qtype == TensorProto.UINT8 else 0
    zp = (rng.integers(-5, 6, shape) + base).astype(np_q)
    inits = [numpy_helper.from_array(np.asarray(scale), "s"), numpy_helper.from_array(zp, "z")]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], axis=1),
    ]
    m = _model(
        nodes, [_vi("x", TensorProto.FLOAT, x.shape)],
        [_vi("q", qtype, x.shape), _vi("d", TensorProto.FLOAT, x.shape)], inits,
    )  # fmt: skip
    _, (q, d), (rq, rd) = _both(m, {"x": x})
    np.testing.assert_array_equal(q, rq)
    np.testing.assert_array_equal(d, rd)


@pytest.mark.parametrize("kind", ["normal", "all_zero", "positive", "negative"])
def test_dynamic_quantize_linear_matches_onnxruntime(path, kind):
    x = (rng.standard_normal((4, 33)) * 3).astype(np.float32)
    x = {"all_zero": x * 0, "positive": np.abs(x), "negative": -np.abs(x)}.get(kind, x)
    if kind == "normal":  # a range of 2.55 either side: the zero point and cells meet halves
        x = np.clip(x, -2.55, 2.55)
        x.flat[:6] = [2.55, -2.55, 0.01, -0.01, 0.03, -0.05]
    outs = [_vi("y", TensorProto.UINT8, None), _vi("s", TensorProto.FLOAT, None),
            _vi("z", TensorProto.UINT8, None)]  # fmt: skip
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    m = _model([node], [_vi("x", TensorProto.FLOAT, x.shape)], outs)
    _, ours, ref = _both(m, {"x": x})
    for a, b in zip(ours, ref):
        np.testing.assert_array_equal(a, b)


def _dynamic_matmul_model(k: int, n: int, b_zp: int, bias: bool = False):
    """DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(a_scale * b_scale), as
    onnxruntime's quantize_dynamic writes a MatMul (int8 weights); with ``bias`` an Add of a
    constant per column after it."""
    # 7-bit weights (reduce_range): onnxruntime's u8s8 GEMM on AVX2 adds pairs of products in
    # saturating int16, so full-range weights would test its saturation, not the product
    w = rng.integers(-63, 64, (k, n)).astype(np.int8)
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.int8(b_zp), "wz"),
        numpy_helper.from_array(np.float32(0.0123), "ws"),
    ]
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        helper.make_node("MatMulInteger", ["xq", "w", "xz", "wz"], ["acc"]),
        helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["xs", "ws"], ["scale"]),
        helper.make_node("Mul", ["accf", "scale"], ["yb" if bias else "y"]),
    ]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "bias"))
        nodes.append(helper.make_node("Add", ["yb", "bias"], ["y"]))
    return _model(
        nodes, [_vi("x", TensorProto.FLOAT, [2, 8, k])], [_vi("y", TensorProto.FLOAT, None)], inits
    )


@pytest.mark.parametrize("bias", [False, True], ids=["no_bias", "bias"])
@pytest.mark.parametrize("k,n,b_zp", [(64, 48, 0), (1536, 40, 3)])
def test_matmul_integer_to_float_fusion_matches_onnxruntime(path, k, n, b_zp, bias, tmp_path):
    """The fused graph (the bias Add taken in as the op's bias input, as onnxruntime's fusion
    takes it) gives the unfused graph's bits and onnxruntime's values."""
    m = _dynamic_matmul_model(k, n, b_zp, bias)
    x = rng.standard_normal((2, 8, k)).astype(np.float32)
    so = ort_core.SessionOptions()
    so.graph_optimization_level = ort_core.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = ort_core.InferenceSession(m.SerializeToString(), so, providers=["cpu"])
    saved = str(tmp_path / "opt.onnx")
    _, (y,), (ry,) = _both(m, {"x": x}, optimized_model_filepath=saved)
    opt = onnx.load(saved)
    assert [n.op_type for n in opt.graph.node] == ["DynamicQuantizeLinear", "MatMulIntegerToFloat"]
    assert len(opt.graph.node[1].input) == (7 if bias else 6)
    np.testing.assert_array_equal(y, plain.run(None, {"x": x})[0])  # the unfused graph, exactly
    np.testing.assert_allclose(y, ry, rtol=1e-6, atol=1e-5)
    (again,) = ort.InferenceSession(saved, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(y, again, rtol=1e-6, atol=1e-5)  # onnxruntime runs what we saved


def test_float16_model_computes_in_float32_like_onnxruntime():
    c = 8
    w = (rng.standard_normal((c, 3, 3, 3)) * 0.3).astype(np.float16)
    b = rng.standard_normal(c).astype(np.float16)
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(b, "b"),
        numpy_helper.from_array(np.float16(0), "lo"),
        numpy_helper.from_array(np.float16(6), "hi"),
    ]
    nodes = [
        helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16),
        helper.make_node("Conv", ["x16", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Cast", ["p"], ["y"], to=TensorProto.FLOAT),
    ]
    m = _model(
        nodes, [_vi("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [_vi("y", TensorProto.FLOAT, [1, c, 1, 1])], inits, opset=17,
    )  # fmt: skip
    m = onnx.shape_inference.infer_shapes(m)
    x = (rng.standard_normal((1, 3, 16, 16)) * 3).astype(np.float32)
    _, (y,), (ry,) = _both(m, {"x": x})
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)  # float16 rounding would be ~1e-3
