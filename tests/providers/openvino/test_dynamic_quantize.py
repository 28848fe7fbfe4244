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


def _dynamic_matmul_model(
    per_channel: bool = False, weight_type: int = TensorProto.INT8, swapped: bool = False
) -> onnx.ModelProto:
    """x -> DynamicQuantizeLinear -> MatMulInteger(8-bit weights) -> Cast -> * (x_scale *
    w_scale) -> Relu, twice: the layers ``quantize_dynamic`` writes for a MatMul (``swapped``:
    the products' operands the other way round)."""
    rng = np.random.default_rng(3)
    nodes, inits, cur = [], [], "x"
    unsigned = weight_type == TensorProto.UINT8
    for i in range(2):
        n = 48 if i else 64
        w = rng.integers(0 if unsigned else -127, 256 if unsigned else 128, (64, n))
        scale = rng.uniform(0.01, 0.03, n) if per_channel else np.array(0.02)
        zero = rng.integers(100, 156, n) if unsigned and per_channel else np.array(128 * unsigned)
        dtype = np.uint8 if unsigned else np.int8
        inits += [
            numpy_helper.from_array(w.astype(dtype), f"w{i}"),
            numpy_helper.from_array(scale.astype(np.float32), f"ws{i}"),
            numpy_helper.from_array(zero.astype(dtype), f"wz{i}"),
        ]
        order = (lambda a, b: [b, a]) if swapped else (lambda a, b: [a, b])
        nodes += [
            helper.make_node("DynamicQuantizeLinear", [cur], [f"q{i}", f"s{i}", f"z{i}"]),
            helper.make_node("MatMulInteger", [f"q{i}", f"w{i}", f"z{i}", f"wz{i}"], [f"m{i}"]),
            helper.make_node("Cast", [f"m{i}"], [f"c{i}"], to=TensorProto.FLOAT),
            helper.make_node("Mul", order(f"s{i}", f"ws{i}"), [f"k{i}"]),
            helper.make_node("Mul", order(f"c{i}", f"k{i}"), [f"d{i}"]),
            helper.make_node("Relu", [f"d{i}"], [f"r{i}"]),
        ]
        cur = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "dyn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, ["n", 48])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _float_reference(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The model's layers without the quantization of x: Relu(x @ ((W - W_zp) * W_scale))."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for i in range(2):
        w = (inits[f"w{i}"].astype(np.float64) - inits[f"wz{i}"]) * inits[f"ws{i}"]
        x = np.maximum(x.astype(np.float64) @ w, 0)
    return x


def _compiled(sess):
    from ort_openvino.kernel import CompiledSubgraph

    (fn,) = [s.fn for s in sess._plan.steps if isinstance(s.fn, CompiledSubgraph)]
    return fn.compiled


def _products(compiled) -> list[tuple[str, str]]:
    """(run-time precision, weights' element type) of each matrix product OpenVINO compiled."""
    found = []
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) == "FullyConnected":
            weights = np.dtype(op.input(1).get_element_type().to_dtype()).name
            found.append((info["runtimePrecision"].astype(str), weights))
    return found


def test_precision_accuracy_keeps_the_integer_product_exact():
    """Device: with precision=ACCURACY the cluster computes onnxruntime's formula: the quantized
    values agree exactly (tests above) and OpenVINO multiplies the integers in float32, whose
    sums of 64 products of 8-bit values are exact, so only the final float scaling may round
    differently."""
    data = _dynamic_matmul_model().SerializeToString()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ov = ort.InferenceSession(data, so, providers=[(OV, {"precision": "ACCURACY"}), CPU])
    cpu = ort.InferenceSession(data, so, providers=[CPU])
    assert placement(ov) == {OV: 12}
    assert len(ov.placements) == 1
    assert [p for p, _ in _products(_compiled(ov))] == ["f32", "f32"]
    x = np.random.default_rng(5).standard_normal((8, 64)).astype(np.float32)
    got, want = ov.run(None, {"x": x})[0], cpu.run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "per_channel, weight_type, swapped",
    [(False, TensorProto.INT8, False), (True, TensorProto.UINT8, True)],
    ids=["int8-per-tensor", "uint8-per-channel-swapped"],
)
def test_openvino_quantizes_the_activations_itself(per_channel, weight_type, swapped):
    """Device: by default the layers reach OpenVINO as a MatMul by int8-compressed weights, which
    its CPU plugin runs in int8 with its own dynamic quantization of x, in groups of a whole row
    (64 here): one cluster, int8 products, and an error against the unquantized product of the
    order of the CPU provider's (onnxruntime's formula; 1.0-1.1x its largest and mean errors
    here): both quantize x to 8 bits."""
    model = _dynamic_matmul_model(per_channel, weight_type, swapped)
    data = model.SerializeToString()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ov = ort.InferenceSession(data, so, providers=[OV, CPU])
    cpu = ort.InferenceSession(data, so, providers=[CPU])
    assert len(ov.placements) == 1 and placement(ov) == {OV: 12}
    compiled = _compiled(ov)
    unsigned = weight_type == TensorProto.UINT8
    assert _products(compiled) == [("u8", "uint8") if unsigned else ("i8", "int8")] * 2
    assert int(compiled.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE")) == 64
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = rng.standard_normal((8, 64)).astype(np.float32)
        exact = _float_reference(model, x)
        got, want = ov.run(None, {"x": x})[0], cpu.run(None, {"x": x})[0]
        ours, theirs = np.abs(got - exact), np.abs(want - exact)  # theirs: onnxruntime's int8
        assert ours.max() < 1.5 * theirs.max() and ours.mean() < 1.5 * theirs.mean()
        assert ours.max() < 0.02 * np.abs(exact).max()
        assert not np.array_equal(got, want)  # OpenVINO quantized x, by its own rule


def test_the_translation_is_the_unquantized_product():
    """Host logic (translation): the cluster model handed to OpenVINO, run on the CPU provider,
    is the float product by the dequantized weights, per channel, unsigned weights with zero
    points, operands in either order; the quantization and scale nodes are gone."""
    from ort_openvino.kernel import _native_dynamic_int8

    model = _dynamic_matmul_model(True, TensorProto.UINT8, True)
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert _native_dynamic_int8(model.graph, constants) == [64, 64]
    assert {n.op_type for n in model.graph.node} == {"Cast", "Sub", "Mul", "MatMul", "Relu"}
    onnx.checker.check_model(model)
    x = np.random.default_rng(9).standard_normal((5, 64)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=[CPU])
    np.testing.assert_allclose(
        sess.run(None, {"x": x})[0], _float_reference(model, x), rtol=1e-4, atol=1e-4
    )


def test_products_that_do_not_fit_the_pattern_stay_integer():
    """Host logic: weights that are not constant keep onnxruntime's formula (MatMulInteger); a
    quantization whose scale is also an output stays for it, its product translated."""
    from ort_openvino.kernel import _native_dynamic_int8

    model = _dynamic_matmul_model()
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    del constants["w0"]  # as if fed at run time
    model.graph.output.append(helper.make_tensor_value_info("s1", TensorProto.FLOAT, []))
    assert _native_dynamic_int8(model.graph, constants) == [64]
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulInteger") == 1 and ops.count("DynamicQuantizeLinear") == 2
    assert ops.count("MatMul") == 1


def test_large_weights_take_the_same_path(monkeypatch):
    """Device: a cluster handed over as a model file with external weights is translated too."""
    from ort_openvino import kernel

    monkeypatch.setattr(kernel, "EXTERNAL_WEIGHTS_BYTES", 0)
    data = _dynamic_matmul_model().SerializeToString()
    ov = ort.InferenceSession(data, providers=[OV, CPU])
    assert _products(_compiled(ov)) == [("i8", "int8")] * 2
