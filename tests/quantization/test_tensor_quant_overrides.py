"""extra_options["TensorQuantOverrides"]: the same parameters as onnxruntime's QDQ quantizer."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ort_core import quantization as oq
from ort_core.quantization.calibrate import TensorData, TensorsData, save_tensors_data

from . import models
from .conftest import Reader, ort, ort_run

rq = pytest.importorskip("onnxruntime.quantization")
QT = oq.QuantType


def _chains(model: onnx.ModelProto) -> dict:
    """For each input of each original node: the Q/DQ chain it reads through, as (op, scales,
    zero points, zero point type, axis) per Q/DQ node, ending with the stored integer weight."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    prod = {o: n for n in model.graph.node for o in n.output}
    out = {}
    for n in model.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for i, t in enumerate(n.input):
            chain = []
            while t in prod and prod[t].op_type in ("QuantizeLinear", "DequantizeLinear"):
                q = prod[t]
                s, z = inits[q.input[1]], inits[q.input[2]]
                axis = [a.i for a in q.attribute if a.name == "axis"]
                chain.append(
                    (
                        q.op_type,
                        np.atleast_1d(s).tolist(),
                        np.atleast_1d(z).astype(np.int64).tolist(),
                        str(z.dtype),
                        axis[0] if axis and s.ndim else None,
                    )
                )
                t = q.input[0]
                if t in inits:
                    chain.append(("stored", inits[t].astype(np.int64).tolist()))
                    break
            if chain:
                out[(n.name, i)] = chain
    return out


def _to_ort(value):
    """The overrides with onnxruntime's QuantType objects (the enums are distinct classes)."""
    if isinstance(value, dict):
        return {k: _to_ort(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_ort(v) for v in value]
    if isinstance(value, oq.QuantType):
        return getattr(rq.QuantType, value.name)
    return value


def _both(tmp_path, kind, overrides, **kw):
    """Quantize with both quantizers from the same calibrated ranges (onnxruntime's, handed to
    ort-core through its calibration cache); returns the two output paths."""
    model = models.cnn() if kind == "cnn" else models.transformer()
    src = tmp_path / "f.onnx"
    onnx.save(model, src)
    feeds = models.batches((4, 3, 16, 16) if kind == "cnn" else (4, 8, 32), 2, seed=1)
    cal = rq.create_calibrator(str(src), augmented_model_path=str(tmp_path / "aug.onnx"))
    cal.collect_data(Reader(feeds))
    ranges = {
        name: TensorData(*(np.asarray(r).reshape(()) for r in td.range_value))
        for name, td in cal.compute_data().items()
    }
    cache = tmp_path / "ranges.json"
    save_tensors_data(TensorsData(oq.CalibrationMethod.MinMax, ranges), cache)
    extra = {"TensorQuantOverrides": overrides}
    ours, theirs = tmp_path / "ours.onnx", tmp_path / "ort.onnx"
    oq.quantize_static(
        src, ours, None, calibration_cache_path=cache, extra_options=copy.deepcopy(extra), **kw
    )
    rq.quantize_static(
        str(src), str(theirs), Reader(feeds), extra_options=_to_ort(extra), **_to_ort(kw)
    )
    return src, ours, theirs


def _f32(v):
    return np.array(v, np.float32)  # onnxruntime needs numpy values for activation overrides


CASES = {
    "types-range-symmetric": (
        "cnn",
        {
            "c1": [{"quant_type": QT.QUInt16}],
            "c1.w": [{"symmetric": False, "reduce_range": True}],
            "x": [{"rmin": _f32(-3.0), "rmax": _f32(3.5)}],
            "fc.w": [{"quant_type": QT.QUInt8}],
        },
        {},
    ),
    "explicit-scale-and-channel-axis": (
        "cnn",
        {
            "pw.w": [{"axis": 0, "quant_type": QT.QInt8}] + [{} for _ in range(7)],
            "fc.w": [{"scale": _f32(0.01), "zero_point": np.array(0, np.int8)}],
            "p1": [{"scale": _f32(0.02), "zero_point": np.array(3, np.int8)}],
        },
        {},
    ),
    "per-channel-rmin-rmax": (
        "cnn",
        {
            "dw.w": [{"symmetric": False}],
            "pw.w": [
                {"axis": 0, "rmin": _f32(-0.5 - i / 100), "rmax": _f32(0.5)} for i in range(8)
            ],
            "dw.b": [{"quant_type": QT.QInt8}],
        },
        {"per_channel": True},
    ),
    "convert-some-readers": (
        "transformer",
        {
            "ln1": [
                {
                    "quant_type": QT.QUInt8,
                    "convert": {"quant_type": QT.QUInt16, "recv_nodes": {"q_proj", "k_proj"}},
                }
            ],
            "wq": [{"quant_type": QT.QUInt8}],
        },
        {},
    ),
    "convert-all-readers-and-output": (
        "transformer",
        {
            "attn": [{"quant_type": QT.QUInt8, "convert": {"quant_type": QT.QUInt16}}],
            "logits": [{"convert": {"quant_type": QT.QUInt16}}],
            "h2": [{"symmetric": True}],
            "bq": [{"quant_type": QT.QInt8}],
        },
        {"activation_type": QT.QUInt8},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_parameters_equal_onnxruntime(case, tmp_path):
    kind, overrides, kw = CASES[case]
    src, ours, theirs = _both(tmp_path, kind, overrides, **kw)
    mine, ref = _chains(onnx.load(ours)), _chains(onnx.load(theirs))
    assert mine.keys() == ref.keys()
    for key in mine:
        assert mine[key] == ref[key], key
    # the overrides took effect (not two defaults agreeing)
    plain = tmp_path / "plain.onnx"
    oq.quantize_static(src, plain, None, calibration_cache_path=tmp_path / "ranges.json", **kw)
    assert _chains(onnx.load(plain)) != mine
    feeds = models.batches((2, 3, 16, 16) if kind == "cnn" else (2, 8, 32), 1, seed=5)
    np.testing.assert_allclose(ort_run(ours, feeds), ort_run(theirs, feeds), rtol=0, atol=1e-5)


def test_convert_writes_the_mixed_precision_chain(tmp_path):
    kind, overrides, kw = CASES["convert-some-readers"]
    _, ours, _ = _both(tmp_path, kind, overrides, **kw)
    chains = _chains(onnx.load(ours))
    types = {k: [c[3] for c in chains[k]] for k in [("q_proj", 0), ("k_proj", 0), ("v_proj", 0)]}
    assert types[("q_proj", 0)] == ["uint16", "uint16", "uint8", "uint8"]
    assert types[("k_proj", 0)] == types[("q_proj", 0)]
    assert types[("v_proj", 0)] == ["uint8", "uint8"]
    sess = ort.InferenceSession(str(ours), providers=["CPUExecutionProvider"])
    assert sess.run(None, models.batches((2, 8, 32), 1, seed=0)[0])[0].shape == (2, 10)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"nope": [{}]}, "no tensor named 'nope'"),
        ({"c1.w": {"symmetric": True}}, r"TensorQuantOverrides\['c1.w'\] must be a list"),
        ({"c1.w": [{"symetric": True}]}, "unknown key 'symetric'"),
        ({"c1": [{"scale": 0.1}]}, "'scale' needs both"),
        ({"c1": [{"scale": 0.1, "zero_point": 0, "rmax": 1.0}]}, "'rmax' cannot be combined"),
        ({"c1": [{"scale": -0.1, "zero_point": 0}]}, "positive"),
        ({"c1": [{"scale": 0.1, "zero_point": 300}]}, r"\['zero_point'\]=300 is outside"),
        ({"c1": [{"reduce_range": True}]}, "initializers only"),
        ({"c1.w": [{"convert": {"quant_type": QT.QUInt16}}]}, "activations only"),
        ({"c1": [{"convert": {"symmetric": True}}]}, "must give a 'quant_type'"),
        ({"c1": [{"convert": {"quant_type": QT.QInt8}}]}, "must differ"),
        ({"c1": [{"convert": {"quant_type": QT.QInt16, "recv_nodes": ["fc"]}}]}, "'fc' is not"),
        ({"c1": [{"axis": 0}]}, "initializers only"),
        ({"c1.w": [{"axis": 4}]}, r"\['axis'\]=4 is out of range"),
        ({"c1.w": [{"axis": 0}, {}, {}]}, "3 channel dicts for 8 channels"),
        ({"c1.w": [{"axis": 0, "rmin": -1.0, "rmax": 1.0}]}, "one dict per channel"),
        ({"c1.w": [{"axis": 0}] + [{"symmetric": False}] * 7}, "differs from channel 0"),
        ({"c1.w": [{"quant_type": "QInt8"}]}, "must be a QuantType"),
    ],
)
def test_invalid_overrides_name_the_tensor_and_key(overrides, message, tmp_path):
    src = tmp_path / "cnn.onnx"
    onnx.save(models.cnn(), src)
    feeds = models.batches((2, 3, 16, 16), 1, seed=1)
    with pytest.raises((ValueError, TypeError), match=message):
        oq.quantize_static(
            src,
            tmp_path / "q.onnx",
            Reader(feeds),
            extra_options={"TensorQuantOverrides": overrides},
        )


def test_overrides_need_the_qdq_format(tmp_path):
    src = tmp_path / "cnn.onnx"
    onnx.save(models.cnn(), src)
    extra = {"TensorQuantOverrides": {"c1.w": [{"symmetric": False}]}}
    with pytest.raises(ValueError, match="QDQ format only"):
        oq.quantize_static(
            src,
            tmp_path / "q.onnx",
            Reader(models.batches((2, 3, 16, 16), 1, seed=1)),
            quant_format=oq.QuantFormat.QOperator,
            extra_options=extra,
        )
    with pytest.raises(ValueError, match="QDQ format only"):
        oq.quantize_dynamic(src, tmp_path / "d.onnx", extra_options=extra)
