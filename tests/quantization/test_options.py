"""Node selection, extra_options, calibration methods and the errors users see."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ort_core import quantization as oq
from ort_core.quantization.calibrate import collect_ranges
from ort_core.quantization.quant_utils import compute_scale_zp, get_qmin_qmax_for_qType

from . import models
from .conftest import Reader, ort_run

rq_utils = pytest.importorskip("onnxruntime.quantization.quant_utils")


@pytest.fixture
def cnn_path(tmp_path):
    path = tmp_path / "cnn.onnx"
    onnx.save(models.cnn(), path)
    return str(path)


@pytest.fixture
def tr_path(tmp_path):
    path = tmp_path / "tr.onnx"
    onnx.save(models.transformer(), path)
    return str(path)


def _calib(kind="cnn"):
    return models.batches((4, 3, 16, 16) if kind == "cnn" else (4, 8, 32), 2, seed=1)


def _static(path, tmp_path, kind="cnn", **kw) -> onnx.ModelProto:
    dst = tmp_path / "q.onnx"
    oq.quantize_static(path, dst, Reader(_calib(kind)), **kw)
    model = onnx.load(dst)
    onnx.checker.check_model(model)
    return model


def _ops(model):
    return [n.op_type for n in model.graph.node]


def _init(model, name):
    return numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == name))


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("qtype", ["QInt8", "QUInt8", "QInt16", "QUInt16"])
@pytest.mark.parametrize("reduce", [False, True])
def test_scale_zero_point_equal_onnxruntime(qtype, symmetric, reduce):
    rng = np.random.default_rng(0)
    t = getattr(oq.QuantType, qtype)
    qmin, qmax = get_qmin_qmax_for_qType(t, reduce, symmetric)
    rmin_, rmax_ = rq_utils.get_qmin_qmax_for_qType(t.tensor_type, reduce, symmetric)
    assert (qmin, qmax) == (int(rmin_), int(rmax_))
    for lo, hi in [(-1.5, 2.0), (0.0, 3.0), (-4.0, -1.0), (0.0, 0.0), *rng.normal(size=(20, 2))]:
        lo, hi = np.float32(min(lo, hi)), np.float32(max(lo, hi))
        zp, scale = compute_scale_zp(lo, hi, qmin, qmax, symmetric)
        rzp, rscale = rq_utils.compute_scale_zp(lo, hi, rmin_, rmax_, symmetric)
        assert int(zp) == int(rzp) and np.float32(scale) == np.float32(rscale), (lo, hi)


def test_minmax_ranges_are_the_data_extremes_and_moving_average(tr_path):
    model = onnx.load(tr_path)
    feeds = _calib("tr")
    plain = collect_ranges(model, ["x", "ln1"], iter(feeds))
    xs = np.stack([f["x"] for f in feeds])
    assert plain["x"].range_value == (xs.min(), xs.max())
    avg = collect_ranges(
        model, ["x"], iter(feeds), extra_options={"moving_average": True, "averaging_constant": 0.5}
    )
    first, second = feeds[0]["x"], feeds[1]["x"]
    expect_hi = first.max() + 0.5 * (second.max() - first.max())
    assert np.isclose(avg["x"].highest, expect_hi)
    sym = collect_ranges(model, ["ln1"], iter(feeds), extra_options={"symmetric": True})
    assert sym["ln1"].lowest == -sym["ln1"].highest


def test_percentile_and_entropy_clip_outliers(tr_path):
    model = onnx.load(tr_path)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8, 32)).astype(np.float32)
    x[0, 0, 0] = 60.0  # one outlier
    feeds = [{"x": x}]
    mm = collect_ranges(model, ["x"], feeds, oq.CalibrationMethod.MinMax)["x"]
    pc = collect_ranges(
        model, ["x"], feeds, oq.CalibrationMethod.Percentile, extra_options={"percentile": 99.9}
    )["x"]
    assert mm.highest == 60.0
    assert 3.0 < pc.highest < 10.0 and pc.lowest == -pc.highest
    en = collect_ranges(
        model, ["x"], feeds, oq.CalibrationMethod.Entropy, extra_options={"num_bins": 1024}
    )["x"]
    assert 2.0 < en.highest < 30.0
    with pytest.raises(ValueError, match="CalibPercentile"):
        collect_ranges(
            model, ["x"], feeds, oq.CalibrationMethod.Percentile, extra_options={"percentile": 120}
        )
    with pytest.raises(ValueError, match="num_bins"):
        collect_ranges(
            model, ["x"], feeds, oq.CalibrationMethod.Distribution, extra_options={"num_bins": 16}
        )


def test_calibration_uses_the_requested_provider(tr_path):
    import ort_core

    model = onnx.load(tr_path)
    feeds = _calib("tr")
    for provider in ort_core.get_available_providers():
        got = collect_ranges(model, ["ln1"], iter(feeds), providers=[provider])["ln1"]
        ref = collect_ranges(model, ["ln1"], iter(feeds))["ln1"]
        assert np.allclose(got.range_value, ref.range_value, rtol=1e-3, atol=1e-3), provider


def test_nodes_to_exclude_and_op_types(cnn_path, tmp_path):
    m = _static(cnn_path, tmp_path, nodes_to_exclude=["fc"])
    fc = next(n for n in m.graph.node if n.name == "fc")
    assert fc.input[1] == "fc.w"  # float weight, no DequantizeLinear
    m = _static(cnn_path, tmp_path, op_types_to_quantize=["Conv"])
    assert not any(n.op_type == "DequantizeLinear" and "fc.w" in n.input[0] for n in m.graph.node)
    assert any(n.input[0] == "c1.w_quantized" for n in m.graph.node)
    m = _static(cnn_path, tmp_path, nodes_to_quantize=["pwconv"])
    quantized_weights = {t.name for t in m.graph.initializer if t.name.endswith("w_quantized")}
    assert quantized_weights == {"pw.w_quantized"}


def test_removable_activations(cnn_path, tmp_path):
    assert "Relu" not in _ops(_static(cnn_path, tmp_path))
    kept = _static(cnn_path, tmp_path, extra_options={"QDQKeepRemovableActivations": True})
    assert _ops(kept).count("Relu") == 3


def test_symmetric_options(cnn_path, tmp_path):
    m = _static(cnn_path, tmp_path, extra_options={"ActivationSymmetric": True})
    zps = [_init(m, n.input[2]) for n in m.graph.node if n.op_type == "QuantizeLinear"]
    assert zps and all(int(z) == 0 for z in zps)
    m = _static(cnn_path, tmp_path, extra_options={"WeightSymmetric": False})
    assert int(_init(m, "c1.w_zero_point")) != 0
    m = _static(cnn_path, tmp_path)
    assert int(_init(m, "c1.w_zero_point")) == 0
    assert np.abs(_init(m, "c1.w_quantized").astype(int)).max() == 127


def test_weight_pairs_bias_and_output_exclusion(cnn_path, tmp_path):
    m = _static(cnn_path, tmp_path, extra_options={"AddQDQPairToWeight": True})
    q_inputs = [n.input[0] for n in m.graph.node if n.op_type == "QuantizeLinear"]
    assert "c1.w" in q_inputs
    m = _static(cnn_path, tmp_path, extra_options={"QuantizeBias": False})
    conv = next(n for n in m.graph.node if n.name == "conv1")
    assert conv.input[2] == "c1.b"
    m = _static(cnn_path, tmp_path, extra_options={"OpTypesToExcludeOutputQuantization": ["Gemm"]})
    assert not any(
        n.op_type == "QuantizeLinear" and n.input[0].startswith("logits") for n in m.graph.node
    )


def test_matmul_const_b_only(tr_path, tmp_path):
    only = {"op_types_to_quantize": ["MatMul"]}
    m = _static(tr_path, tmp_path, kind="tr", extra_options={"MatMulConstBOnly": True}, **only)
    quantized = {n.input[0] for n in m.graph.node if n.op_type == "QuantizeLinear"}
    assert "qk" not in quantized and "kt" not in quantized and "ln1" in quantized
    m = _static(tr_path, tmp_path, kind="tr", **only)
    quantized = {n.input[0] for n in m.graph.node if n.op_type == "QuantizeLinear"}
    assert {"qk", "kt", "ln1"} <= quantized


def test_force_quantize_no_input_check(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["y"], "t", perm=[0, 2, 1])], "g", [x], [y]
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "t.onnx"
    onnx.save(m, path)
    feeds = models.batches((2, 4, 4), 2, seed=0)
    oq.quantize_static(path, tmp_path / "a.onnx", Reader(feeds))
    assert "QuantizeLinear" not in _ops(onnx.load(tmp_path / "a.onnx"))
    oq.quantize_static(
        path, tmp_path / "b.onnx", Reader(feeds), extra_options={"ForceQuantizeNoInputCheck": True}
    )
    assert "QuantizeLinear" in _ops(onnx.load(tmp_path / "b.onnx"))


def _then(model):
    return next(a.g for a in model.graph.node[0].attribute if a.name == "then_branch")


def test_enable_subgraph_dynamic(tmp_path):
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w")
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    then = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y1"], "mm")],
        "then",
        [],
        [helper.make_tensor_value_info("y1", TensorProto.FLOAT, [2, 3])],
        [w],
    )
    other = helper.make_graph([helper.make_node("Constant", [], ["y2"], value=numpy_helper.from_array(
        np.zeros((2, 3), np.float32)))], "else", [], [helper.make_tensor_value_info("y2", TensorProto.FLOAT, [2, 3])])  # fmt: skip
    g = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], "if", then_branch=then, else_branch=other)],
        "g",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [out],
    )  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "if.onnx"
    onnx.save(m, path)
    oq.quantize_dynamic(path, tmp_path / "plain.onnx")
    oq.quantize_dynamic(path, tmp_path / "sub.onnx", extra_options={"EnableSubgraph": True})
    body = _then(onnx.load(tmp_path / "sub.onnx"))
    assert "MatMulInteger" in [n.op_type for n in body.node]
    plain = _then(onnx.load(tmp_path / "plain.onnx"))
    assert "MatMulInteger" not in [n.op_type for n in plain.node]
    feed = {"c": np.array(True), "x": rng.standard_normal((2, 4)).astype(np.float32)}
    ref = ort_run(path, [feed])
    got = ort_run(tmp_path / "sub.onnx", [feed])
    assert 0 < np.abs(got - ref).max() < 0.1 * np.abs(ref).max()


def test_errors(cnn_path, tmp_path):
    dst = tmp_path / "q.onnx"
    with pytest.raises(ValueError, match="calibration_data_reader"):
        oq.quantize_static(cnn_path, dst)
    with pytest.raises(TypeError, match="weight_type"):
        oq.quantize_dynamic(cnn_path, dst, weight_type="QInt8")
    with pytest.raises(ValueError, match="unknown extra_options key 'NoSuchOption'"):
        oq.quantize_dynamic(cnn_path, dst, extra_options={"NoSuchOption": 1})
    with pytest.raises(ValueError, match="DisableQuantizeBias.*QuantizeBias=False"):
        oq.quantize_static(
            cnn_path, dst, Reader(_calib()), extra_options={"DisableQuantizeBias": True}
        )
    oq.quantize_static(
        cnn_path, dst, Reader(_calib()), extra_options={"DisableQuantizeBias": False}
    )
    with pytest.raises(ValueError, match="QDQ"):
        oq.quantize_static(
            cnn_path,
            dst,
            Reader(_calib()),
            quant_format=oq.QuantFormat.QOperator,
            activation_type=oq.QuantType.QInt16,
        )
    with pytest.raises(ValueError, match="no batches"):
        oq.quantize_static(cnn_path, dst, Reader([]))
    with pytest.raises(TypeError, match="dicts"):
        oq.quantize_static(cnn_path, dst, Reader([np.zeros(3)]))
    with pytest.raises(FileNotFoundError, match="not a file"):
        oq.quantize_dynamic(tmp_path / "missing.onnx", dst)
    with pytest.raises(TypeError, match="op_types_to_quantize"):
        oq.quantize_dynamic(cnn_path, dst, op_types_to_quantize="MatMul")
    with pytest.raises(ValueError, match="EnableSubgraph"):
        oq.quantize_static(cnn_path, dst, Reader(_calib()), extra_options={"EnableSubgraph": True})
    with pytest.raises(ValueError, match="unknown QuantType"):
        oq.QuantType.from_string("QInt3")


def test_low_opset_is_converted_for_per_channel(tmp_path):
    m = models.cnn(opset=11)
    path = tmp_path / "c11.onnx"
    onnx.save(m, path)
    q = _static(str(path), tmp_path, per_channel=True)
    assert max(o.version for o in q.opset_import if o.domain in ("", "ai.onnx")) >= 13
    feeds = models.batches((4, 3, 16, 16), 1, seed=3)
    ref, got = ort_run(path, feeds), ort_run(tmp_path / "q.onnx", feeds)
    assert np.abs(ref - got).max() < 0.1 * np.abs(ref).max()


def test_calibration_cache(cnn_path, tmp_path):
    cache = tmp_path / "ranges.json"
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    oq.quantize_static(cnn_path, a, Reader(_calib()), calibration_cache_path=cache)
    assert cache.is_file()
    oq.quantize_static(cnn_path, b, None, calibration_cache_path=cache)  # no reader needed
    ia = {t.name: numpy_helper.to_array(t) for t in onnx.load(a).graph.initializer}
    ib = {t.name: numpy_helper.to_array(t) for t in onnx.load(b).graph.initializer}
    assert ia.keys() == ib.keys() and all(np.array_equal(ia[k], ib[k]) for k in ia)
    with pytest.raises(ValueError, match="Entropy"):
        oq.quantize_static(
            cnn_path,
            b,
            None,
            calibration_cache_path=cache,
            calibrate_method=oq.CalibrationMethod.Entropy,
        )
    cache.write_text("{}")
    with pytest.raises(ValueError, match="not an ort-core calibration cache"):
        oq.quantize_static(cnn_path, b, None, calibration_cache_path=cache)


def test_create_calibrator_protocol(tr_path, tmp_path):
    aug = tmp_path / "aug.onnx"
    cal = oq.create_calibrator(tr_path, ["MatMul"], augmented_model_path=aug)
    assert {"ln1", "q0", "logits"} <= {o.name for o in onnx.load(aug).graph.output}
    feeds = _calib("tr")
    cal.collect_data(Reader(feeds[:1]))
    cal.collect_data(Reader(feeds[1:]))  # statistics add up over calls
    ranges = cal.compute_data()
    assert ranges.calibration_method is oq.CalibrationMethod.MinMax
    whole = collect_ranges(onnx.load(tr_path), ["ln1", "logits"], iter(feeds))
    for name in ("ln1", "logits"):
        assert ranges[name].range_value == whole[name].range_value
    assert "g" in ranges and "f1" not in ranges  # g feeds a MatMul; f1 only Add -> Gelu
    empty = oq.create_calibrator(tr_path, augmented_model_path=tmp_path / "e.onnx")
    with pytest.raises(ValueError, match="no batches"):
        empty.compute_data()
