"""DynamicQuantizeLinear on OpenVINO (device: OpenVINO's CPU plugin, against the CPU provider and
onnxruntime): OpenVINO's own conversion rounds some zero points and outputs a step off, so the
provider hands OpenVINO the ONNX formula in elementary ops with true divisions. A dynamically
quantized MatMul (what ``quantize_dynamic`` writes) then stays in one OpenVINO cluster instead of
being cut at every DynamicQuantizeLinear."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core as ort

from .models import CPU, OV, placement, skip_unless_openvino

pytestmark = skip_unless_openvino()


def _dql_model() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "scale", "zp"])],
        "dql",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "k"])],
        [
            helper.make_tensor_value_info("y", TensorProto.UINT8, None),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("zp", TensorProto.UINT8, None),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def _inputs():
    rng = np.random.default_rng(7)
    for i in range(40):
        shape = (int(rng.integers(1, 32)), int(rng.integers(1, 300)))
        kind = i % 5
        if kind == 0:
            x = rng.standard_normal(shape)
        elif kind == 1:
            x = rng.standard_normal(shape) * 10 + 3  # mostly positive: a small zero point
        elif kind == 2:
            x = rng.uniform(0, 5, shape)  # no negatives: zero point 0
        elif kind == 3:
            x = -rng.uniform(0, 5, shape)  # no positives: zero point 255
        else:
            x = np.round(rng.standard_normal(shape) * 8) / 4  # many exact halves
        yield x.astype(np.float32)
    yield np.zeros((3, 4), np.float32)  # range 0: scale 1, as onnxruntime
    yield np.full((2, 5), 7.0, np.float32)


def test_openvino_runs_it_and_matches_the_cpu_provider_exactly():
    data = _dql_model()
    ov = ort.InferenceSession(data, providers=[OV])
    cpu = ort.InferenceSession(data, providers=[CPU])
    assert placement(ov) == {OV: 1}
    for x in _inputs():
        got, want = ov.run(None, {"x": x}), cpu.run(None, {"x": x})
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w)


def test_matches_onnxruntime_exactly():
    onnxruntime = pytest.importorskip("onnxruntime")
    data = _dql_model()
    ov = ort.InferenceSession(data, providers=[OV])
    ref = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    for x in _inputs():
        for g, w in zip(ov.run(None, {"x": x}), ref.run(None, {"x": x}), strict=True):
            np.testing.assert_array_equal(g, w)


def _dynamic_matmul_model() -> bytes:
    """x -> DynamicQuantizeLinear -> MatMulInteger(int8 weights) -> Cast -> * (x_scale * w_scale)
    -> Relu, twice: the layers ``quantize_dynamic`` writes for a MatMul."""
    rng = np.random.default_rng(3)
    nodes, inits, cur = [], [], "x"
    for i in range(2):
        w = rng.integers(-127, 128, (64, 64)).astype(np.int8)
        inits += [
            numpy_helper.from_array(w, f"w{i}"),
            numpy_helper.from_array(np.array(0.02, np.float32), f"ws{i}"),
            numpy_helper.from_array(np.array(0, np.int8), f"wz{i}"),
        ]
        nodes += [
            helper.make_node("DynamicQuantizeLinear", [cur], [f"q{i}", f"s{i}", f"z{i}"]),
            helper.make_node("MatMulInteger", [f"q{i}", f"w{i}", f"z{i}", f"wz{i}"], [f"m{i}"]),
            helper.make_node("Cast", [f"m{i}"], [f"c{i}"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"s{i}", f"ws{i}"], [f"k{i}"]),
            helper.make_node("Mul", [f"c{i}", f"k{i}"], [f"d{i}"]),
            helper.make_node("Relu", [f"d{i}"], [f"r{i}"]),
        ]
        cur = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "dyn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, ["n", 64])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_dynamically_quantized_layers_stay_in_one_openvino_cluster():
    data = _dynamic_matmul_model()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ov = ort.InferenceSession(data, so, providers=[OV, CPU])
    cpu = ort.InferenceSession(data, so, providers=[CPU])
    assert placement(ov) == {OV: 12}
    assert len(ov.placements) == 1
    x = np.random.default_rng(5).standard_normal((8, 64)).astype(np.float32)
    got, want = ov.run(None, {"x": x})[0], cpu.run(None, {"x": x})[0]
    # the quantized values agree exactly (first test); OpenVINO multiplies the integers in
    # float32, whose sums of 64 products of 8-bit values are exact, so only the final float
    # scaling may round differently
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
