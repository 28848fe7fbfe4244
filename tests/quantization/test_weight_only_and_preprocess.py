"""MatMulNBits weight-only quantization and quant_pre_process."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core
from ort_core import quantization as oq
from ort_core.quantization.matmul_nbits_quantizer import (
    DefaultWeightOnlyQuantConfig,
    MatMulNBitsQuantizer,
    quantize_blockwise,
)

from . import models
from .conftest import core_run, ort, ort_run


def _mlp(k=80, n=24, seed=0):
    return models.mlp(k, n, 8, seed)


def _dequantize(packed, scales, zps, bits, k):
    n, kb, _ = packed.shape
    if bits == 4:
        q = np.stack([packed & 15, packed >> 4], -1).reshape(n, kb, -1).astype(np.float32)
        z = 8.0 if zps is None else np.stack([zps & 15, zps >> 4], -1).reshape(n, -1)[:, :kb]
    else:
        q = packed.astype(np.float32)
        z = 128.0 if zps is None else zps.astype(np.float32)
    z = np.broadcast_to(np.asarray(z, np.float32), (n, kb))
    return ((q - z[..., None]) * scales[..., None]).reshape(n, -1)[:, :k].T


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
def test_matmul_nbits_in_onnxruntime_matches_dequantized_weights(bits, symmetric):
    m = _mlp()
    q = MatMulNBitsQuantizer(m, bits=bits, block_size=32, is_symmetric=symmetric)
    q.process()
    out = q.model.model
    onnx.checker.check_model(out)
    nodes = [n for n in out.graph.node if n.op_type == "MatMulNBits"]
    assert len(nodes) == 2 and all(n.domain == "com.microsoft" for n in nodes)
    attrs = {a.name: helper.get_attribute_value(a) for a in nodes[0].attribute}
    assert attrs == {"K": 80, "N": 24, "bits": bits, "block_size": 32}
    assert "w1" not in {t.name for t in out.graph.initializer}
    inits = {t.name: numpy_helper.to_array(t) for t in out.graph.initializer}
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 80)).astype(np.float32)
    w1 = numpy_helper.to_array(m.graph.initializer[0])
    w2 = numpy_helper.to_array(m.graph.initializer[1])
    d1 = _dequantize(
        inits[f"w1_Q{bits}"], inits["w1_scales"], inits.get("w1_zero_points"), bits, 80
    )
    d2 = _dequantize(
        inits[f"w2_Q{bits}"], inits["w2_scales"], inits.get("w2_zero_points"), bits, 24
    )
    # each weight within half a step of its block's grid (a symmetric grid has one level
    # fewer on the side opposite the block's extreme value: up to one step there)
    step1 = np.repeat(np.abs(inits["w1_scales"]), 32, axis=1)[:, :80].T
    assert (np.abs(d1 - w1) <= step1 * (1.0 if symmetric else 0.5) + 1e-6).all()
    expect = np.maximum(a @ d1, 0) @ d2
    got = ort.InferenceSession(out.SerializeToString()).run(None, {"a": a})[0]
    np.testing.assert_allclose(got, expect, rtol=1e-3, atol=1e-3 * np.abs(expect).max())
    ref = np.maximum(a @ w1, 0) @ w2
    assert np.abs(got - ref).max() < (0.25 if bits == 4 else 0.02) * np.abs(ref).max()
    try:
        by_core = ort_core.InferenceSession(out.SerializeToString()).run(None, {"a": a})[0]
    except ort_core.errors.NotImplemented as exc:
        pytest.skip(f"ort-core's CPU provider has no MatMulNBits kernel yet: {exc}")
    np.testing.assert_allclose(by_core, got, rtol=1e-3, atol=1e-3 * np.abs(expect).max())


def test_matmul_nbits_options(tmp_path):
    m = _mlp()
    q = MatMulNBitsQuantizer(m, block_size=16, nodes_to_exclude=["mm2"], accuracy_level=4)
    q.process()
    types = [n.op_type for n in q.model.model.graph.node]
    attrs = {a.name: helper.get_attribute_value(a) for a in q.model.model.graph.node[0].attribute}
    assert attrs["accuracy_level"] == 4
    assert types == ["MatMulNBits", "Relu", "MatMul"]
    q.model.save_model_to_file(tmp_path / "q.onnx")
    assert onnx.load(tmp_path / "q.onnx").graph.node[0].op_type == "MatMulNBits"
    q = MatMulNBitsQuantizer(
        m, nodes_to_include=["mm2"], algo_config=DefaultWeightOnlyQuantConfig(16)
    )
    q.process()
    assert [n.op_type for n in q.model.model.graph.node] == ["MatMul", "Relu", "MatMulNBits"]
    oq.quantize(
        m, tmp_path / "w.onnx", DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True)
    )
    assert onnx.load(tmp_path / "w.onnx").graph.node[0].op_type == "MatMulNBits"
    with pytest.raises(ValueError, match="bits"):
        MatMulNBitsQuantizer(m, bits=3)
    with pytest.raises(ValueError, match="block_size"):
        MatMulNBitsQuantizer(m, block_size=24)
    with pytest.raises(ValueError, match="QOperator"):
        MatMulNBitsQuantizer(m, quant_format=oq.QuantFormat.QDQ)


def test_blockwise_padding_of_k():
    w = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    packed, scales, zps = quantize_blockwise(w, 4, 32, symmetric=False)
    assert packed.shape == (3, 2, 16) and scales.shape == (3, 2) and zps.shape == (3, 1)
    d = _dequantize(packed, scales, zps, 4, 40)
    assert np.abs(d - w).max() <= np.abs(scales).max() * 0.5 + 1e-6


def _conv_bn():
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.random(4).astype(np.float32) + 0.5, "s"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "mean"),
        numpy_helper.from_array(rng.random(4).astype(np.float32) + 0.5, "var"),
    ]
    g = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], "conv"),
            helper.make_node("BatchNormalization", ["c", "s", "b", "mean", "var"], ["bn"], "bn"),
            helper.make_node("Identity", ["bn"], ["i"], "id"),
            helper.make_node("Relu", ["i"], ["y"], "relu"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_quant_pre_process_optimizes_and_marks(tmp_path):
    src, dst = tmp_path / "m.onnx", tmp_path / "pre.onnx"
    onnx.save(_conv_bn(), src)
    oq.quant_pre_process(str(src), str(dst))
    m = onnx.load(dst)
    onnx.checker.check_model(m)
    ops = [n.op_type for n in m.graph.node]
    assert "BatchNormalization" not in ops and "Identity" not in ops
    assert {p.key: p.value for p in m.metadata_props}[
        "onnx.quant.pre_process"
    ] == "onnxruntime.quant"
    assert any(vi.name == "c" or vi.name for vi in m.graph.value_info) or m.graph.output[0].type
    feeds = models.batches((1, 3, 8, 8), 1, seed=0)
    np.testing.assert_allclose(ort_run(dst, feeds), ort_run(src, feeds), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(core_run(dst, feeds), ort_run(src, feeds), rtol=1e-4, atol=1e-4)
    oq.quant_pre_process(str(src), str(tmp_path / "keep.onnx"), skip_optimization=True)
    assert "BatchNormalization" in [n.op_type for n in onnx.load(tmp_path / "keep.onnx").graph.node]
    with pytest.raises(ValueError, match="auto_merge"):
        oq.quant_pre_process(str(src), str(dst), auto_merge=True)
    with pytest.raises(FileNotFoundError):
        oq.quant_pre_process(str(tmp_path / "nope.onnx"), str(dst))
