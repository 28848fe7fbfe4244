"""quantize_static / quantize_dynamic against onnxruntime's quantizer on the same models and
calibration data: structure, values, accuracy in onnxruntime, and execution in ort-core."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import ort_core
from ort_core import quantization as oq

from .conftest import Reader, core_run, errors, ort_run

rq = pytest.importorskip("onnxruntime.quantization")


def _quantize_both(tmp_path, path, calib, fmt, **kw):
    """Our and onnxruntime's quantized model paths (fmt: 'dynamic', 'QDQ' or 'QOperator')."""
    out = {}
    for who, mod in (("ours", oq), ("ort", rq)):
        dst = tmp_path / f"{who}_{fmt}.onnx"
        if fmt == "dynamic":
            mod.quantize_dynamic(path, dst, **kw)
        else:
            mod.quantize_static(
                path, dst, Reader(calib), quant_format=getattr(mod.QuantFormat, fmt), **kw
            )
        out[who] = str(dst)
    return out


def _ops(path) -> Counter:
    return Counter(n.op_type for n in onnx.load(path).graph.node)


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator", "dynamic"])
def test_same_structure_and_accuracy_as_onnxruntime(float_model, tmp_path, fmt):
    kind, path, calib, test = float_model
    paths = _quantize_both(tmp_path, path, calib, fmt)
    onnx.checker.check_model(onnx.load(paths["ours"]), full_check=True)
    ours_ops, ort_ops = _ops(paths["ours"]), _ops(paths["ort"])
    if fmt == "dynamic":
        # onnxruntime reshapes Conv biases at run time; we store them reshaped
        ort_ops.pop("Reshape", None)
    assert ours_ops == ort_ops
    ref = ort_run(path, test)
    ours, theirs = (
        errors(ref, ort_run(paths["ours"], test)),
        errors(ref, ort_run(paths["ort"], test)),
    )
    assert ours[0] > 0  # it is quantized
    assert ours[0] <= theirs[0] * 1.05 + 1e-6, (ours, theirs)
    assert ours[1] >= theirs[1] - 1 / 16, (ours, theirs)


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator", "dynamic"])
@pytest.mark.parametrize("option", ["per_channel", "reduce_range"])
def test_quantized_values_equal_onnxruntime(float_model, tmp_path, fmt, option):
    """Weights, biases, scales and zero points: same names where both name them, same values."""
    kind, path, calib, _ = float_model
    paths = _quantize_both(tmp_path, path, calib, fmt, **{option: True})
    ours = {t.name: numpy_helper.to_array(t) for t in onnx.load(paths["ours"]).graph.initializer}
    theirs = {t.name: numpy_helper.to_array(t) for t in onnx.load(paths["ort"]).graph.initializer}
    common = [
        n for n in ours if n in theirs and ("quantized" in n or "scale" in n or "zero_point" in n)
    ]
    assert len(common) >= (6 if fmt == "dynamic" else 10), sorted(ours)
    for name in common:
        a, b = ours[name], theirs[name]
        assert a.dtype == b.dtype and a.size == b.size, name
        a, b = a.reshape(b.shape), b
        if a.dtype.kind in "iu":
            # a rounding tie may land one step apart
            assert np.abs(a.astype(np.int64) - b.astype(np.int64)).max() <= 1, name
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize(
    "kw",
    [
        {"per_channel": True},
        {"reduce_range": True},
        {"activation_type": "QUInt8", "weight_type": "QUInt8"},
        {"calibrate_method": "Entropy"},
        {"calibrate_method": "Percentile"},
        {"calibrate_method": "Distribution"},
    ],
    ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()),
)
def test_static_options_accuracy_vs_onnxruntime(float_model, tmp_path, kw):
    kind, path, calib, test = float_model
    ref = ort_run(path, test)
    res = {}
    for who, mod in (("ours", oq), ("ort", rq)):
        args = {
            k: (getattr(mod.QuantType, v) if "type" in k else getattr(mod.CalibrationMethod, v))
            if isinstance(v, str)
            else v
            for k, v in kw.items()
        }
        dst = tmp_path / f"{who}.onnx"
        mod.quantize_static(path, dst, Reader(calib), **args)
        res[who] = errors(ref, ort_run(dst, test))
    assert res["ours"][0] <= res["ort"][0] * 1.1 + 1e-3, res
    assert res["ours"][1] >= res["ort"][1] - 1 / 16, res


def test_dynamic_per_channel_and_reduce_range(float_model, tmp_path):
    kind, path, _, test = float_model
    ref = ort_run(path, test)
    paths = _quantize_both(tmp_path, path, None, "dynamic", per_channel=True, reduce_range=True)
    ours, theirs = (
        errors(ref, ort_run(paths["ours"], test)),
        errors(ref, ort_run(paths["ort"], test)),
    )
    assert ours[0] <= theirs[0] * 1.05 + 1e-6, (ours, theirs)


def test_16bit_activations_and_4bit_weights_qdq(float_model, tmp_path):
    kind, path, calib, test = float_model
    ref = ort_run(path, test)
    dst8, dst16 = tmp_path / "q8.onnx", tmp_path / "q16.onnx"
    oq.quantize_static(path, dst8, Reader(calib))
    oq.quantize_static(
        path,
        dst16,
        Reader(calib),
        activation_type=oq.QuantType.QInt16,
        weight_type=oq.QuantType.QInt4,
    )
    m = onnx.load(dst16)
    onnx.checker.check_model(m, full_check=True)
    assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 21
    kinds = {t.data_type for t in m.graph.initializer}
    assert {onnx.TensorProto.INT4, onnx.TensorProto.INT16} <= kinds
    err16 = errors(ref, ort_run(dst16, test))[0]
    assert 0 < err16 < 10 * errors(ref, ort_run(dst8, test))[0]


def test_qdq_and_dynamic_run_in_ort_core_within_the_quantization_error(float_model, tmp_path):
    """ort-core runs what the quantizer writes; its result is no further from the float model
    than onnxruntime's run of the same quantized model (plus a few output steps)."""
    kind, path, calib, test = float_model
    ref = ort_run(path, test)
    for fmt in ("QDQ", "dynamic"):
        dst = tmp_path / f"{fmt}.onnx"
        if fmt == "QDQ":
            oq.quantize_static(path, dst, Reader(calib))
        else:
            oq.quantize_dynamic(path, dst)
        by_ort, by_core = ort_run(dst, test), core_run(dst, test)
        step = float(np.abs(ref).max()) / 127
        assert np.abs(by_core - ref).max() <= np.abs(by_ort - ref).max() * 1.5 + 3 * step, fmt


def test_qoperator_runs_in_ort_core(float_model, tmp_path):
    kind, path, calib, test = float_model
    dst = tmp_path / "qop.onnx"
    oq.quantize_static(path, dst, Reader(calib), quant_format=oq.QuantFormat.QOperator)
    try:
        by_core = core_run(dst, test)
    except ort_core.errors.NotImplemented as exc:
        pytest.skip(f"ort-core's CPU provider lacks a kernel this QOperator model uses: {exc}")
    by_ort, ref = ort_run(dst, test), ort_run(path, test)
    step = float(np.abs(ref).max()) / 127
    assert np.abs(by_core - by_ort).max() <= np.abs(by_ort - ref).max() * 1.5 + 3 * step


def test_qoperator_without_contrib_gemm_softmax_runs_in_ort_core(float_model, tmp_path):
    """The QOperator ops ort-core has kernels for (QLinearConv/MatMul/Add/Mul...) run today."""
    kind, path, calib, test = float_model
    dst = tmp_path / "qop.onnx"
    ops = ["Conv", "MatMul", "Add", "Mul", "Relu", "MaxPool", "GlobalAveragePool", "Transpose"]
    oq.quantize_static(
        path, dst, Reader(calib), quant_format=oq.QuantFormat.QOperator, op_types_to_quantize=ops
    )
    assert {"QLinearConv", "QLinearMatMul"} & set(_ops(dst))
    by_ort, by_core, ref = ort_run(dst, test), core_run(dst, test), ort_run(path, test)
    step = float(np.abs(ref).max()) / 127
    assert np.abs(by_core - ref).max() <= np.abs(by_ort - ref).max() * 1.5 + 3 * step


def test_quantize_with_configs(float_model, tmp_path):
    kind, path, calib, test = float_model
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    oq.quantize(path, a, oq.StaticQuantConfig(Reader(calib), per_channel=True))
    oq.quantize_static(path, b, Reader(calib), per_channel=True)
    np.testing.assert_array_equal(ort_run(a, test), ort_run(b, test))
    oq.quantize(path, a, oq.DynamicQuantConfig())
    oq.quantize_dynamic(path, b)
    np.testing.assert_array_equal(ort_run(a, test), ort_run(b, test))
    with pytest.raises(TypeError, match="quant_config"):
        oq.quantize(path, a, object())


def test_calibration_data_reader_base_class(tmp_path):
    from . import models

    class MyReader(oq.CalibrationDataReader):
        def __init__(self):
            self.it = iter(models.batches((2, 8, 32), 2, seed=0))

        def get_next(self):
            return next(self.it, None)

    path = tmp_path / "t.onnx"
    onnx.save(models.transformer(), path)
    oq.quantize_static(path, tmp_path / "q.onnx", MyReader())
    assert list(MyReader()) and len(list(MyReader())) == 2


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
def test_op_zoo_same_model_as_onnxruntime(tmp_path, fmt):
    """BatchNormalization, ConvTranspose, Resize, Concat, Slice, AveragePool...: the same nodes
    and the same quantized values as onnxruntime's quantizer."""
    from . import models

    path = tmp_path / "zoo.onnx"
    onnx.save(models.op_zoo(), path)
    calib = models.batches((2, 3, 8, 8), 3, seed=1)
    paths = _quantize_both(tmp_path, str(path), calib, fmt, per_channel=True)
    onnx.checker.check_model(onnx.load(paths["ours"]), full_check=True)
    assert _ops(paths["ours"]) == _ops(paths["ort"])
    ours = {t.name: numpy_helper.to_array(t) for t in onnx.load(paths["ours"]).graph.initializer}
    theirs = {t.name: numpy_helper.to_array(t) for t in onnx.load(paths["ort"]).graph.initializer}
    assert ours.keys() == theirs.keys()
    for name, a in ours.items():
        b = theirs[name].reshape(a.shape)
        tol = 1 if a.dtype.kind in "iu" else 1e-5 * np.abs(b).max(initial=0)
        assert np.abs(a.astype(np.float64) - b.astype(np.float64)).max(initial=0) <= tol, name
