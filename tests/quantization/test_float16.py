"""Float16/bfloat16 conversion: checker, onnxruntime and ort-core runs, options, subgraphs."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core
from ort_core.quantization.float16 import (
    DEFAULT_OP_BLOCK_LIST,
    SENSITIVE_OP_BLOCK_LIST,
    convert_float_to_bfloat16,
    convert_float_to_float16,
    convert_np_to_float16,
)

from . import models
from .conftest import ort


def _run(model, feed, engine):
    if engine == "ort":
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    else:
        sess = ort_core.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
    return np.asarray(sess.run(None, feed)[0]).astype(np.float32)


CASES = {
    "cnn": (models.cnn, (4, 3, 16, 16)),
    "transformer": (models.transformer, (4, 8, 32)),
}


@pytest.mark.parametrize("kind", sorted(CASES))
@pytest.mark.parametrize("keep_io_types", [False, True])
@pytest.mark.parametrize("mixed", [False, True])
def test_float16_runs_in_both_and_stays_close(kind, keep_io_types, mixed):
    build, shape = CASES[kind]
    m = build()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    ref = _run(m, {"x": x}, "ort")
    block = DEFAULT_OP_BLOCK_LIST + SENSITIVE_OP_BLOCK_LIST if mixed else None
    c = convert_float_to_float16(m, keep_io_types=keep_io_types, op_block_list=block)
    onnx.checker.check_model(c, full_check=True)
    in_type = c.graph.input[0].type.tensor_type.elem_type
    assert in_type == (TensorProto.FLOAT if keep_io_types else TensorProto.FLOAT16)
    assert c.graph.output[0].type.tensor_type.elem_type == in_type
    feed = {"x": x if keep_io_types else x.astype(np.float16)}
    tol = 2e-3 * np.abs(ref).max() + 2e-3
    for engine in ("ort", "core"):
        out = _run(c, feed, engine)
        assert np.abs(out - ref).max() < tol, engine
    if mixed and kind == "transformer":
        ln = [n for n in c.graph.node if n.op_type == "LayerNormalization"]
        producers = {o: n for n in c.graph.node for o in n.output}
        for n in ln:  # float32 in: the float32 graph input, or a Cast to float32
            src = producers.get(n.input[0])
            if src is None:
                assert keep_io_types and n.input[0] == "x"
            else:
                assert src.op_type == "Cast" and src.attribute[0].i == TensorProto.FLOAT
        f32 = {t.name for t in c.graph.initializer if t.data_type == TensorProto.FLOAT}
        assert {"ln1.g", "ln1.b", "ln2.g", "ln2.b"} <= f32  # only LayerNorm reads them
        assert any(n.op_type == "Cast" for n in c.graph.node)


def test_blocked_nodes_keep_float32_with_casts():
    m = models.cnn()
    c = convert_float_to_float16(m, node_block_list=["conv1"], op_block_list=["Gemm"])
    inits = {t.name: t.data_type for t in c.graph.initializer}
    assert inits["c1.w"] == TensorProto.FLOAT and inits["fc.w"] == TensorProto.FLOAT
    assert inits["dw.w"] == TensorProto.FLOAT16
    conv1 = next(n for n in c.graph.node if n.name == "conv1")
    casts = {n.output[0]: n for n in c.graph.node if n.op_type == "Cast"}
    assert (
        conv1.input[0] in casts
        and helper.get_attribute_value(casts[conv1.input[0]].attribute[0]) == 1
    )
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    ref = _run(m, {"x": x}, "ort")
    for engine in ("ort", "core"):
        assert np.abs(_run(c, {"x": x.astype(np.float16)}, engine) - ref).max() < 0.02


def test_initializer_clamping_and_force():
    a = np.array([1e-9, -1e-9, 0.0, 5e5, -5e5, 1.0, np.inf], np.float32)
    got = convert_np_to_float16(a, min_positive_val=1e-7, max_finite_val=1e4).astype(np.float32)
    want = np.array([1e-7, -1e-7, 0, 1e4, -1e4, 1, np.inf], np.float16).astype(np.float32)
    np.testing.assert_array_equal(got, want)
    m = models.cnn()
    c = convert_float_to_float16(m, op_block_list=["Gemm"], force_fp16_initializers=True)
    assert {t.name: t.data_type for t in c.graph.initializer}["fc.w"] == TensorProto.FLOAT16
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float16)
    assert np.isfinite(_run(c, {"x": x}, "ort")).all()
    with pytest.raises(ValueError, match="65504"):
        convert_float_to_float16(m, max_finite_val=1e6)
    with pytest.raises(TypeError, match="op_block_list"):
        convert_float_to_float16(m, op_block_list="Gemm")


def _if_loop_model():
    """y = If(c, then: MatMul(x, W) + Loop(3 times: acc = acc * 0.5 + x), else: x * 2)."""
    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32), "W"
    )
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    body = helper.make_graph(
        [
            helper.make_node("Mul", ["acc_in", "half"], ["h"]),
            helper.make_node("Add", ["h", "x"], ["acc_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [2, 4]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [2, 4]),
        ],
        [half],
    )
    then = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["mm"]),
            helper.make_node("Loop", ["trip", "", "mm"], ["looped"], body=body),
        ],
        "then",
        [],
        [helper.make_tensor_value_info("looped", TensorProto.FLOAT, [2, 4])],
    )
    other = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["twice"])],
        "else",
        [],
        [helper.make_tensor_value_info("twice", TensorProto.FLOAT, [2, 4])],
    )
    g = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)],
        "g",
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [
            w,
            numpy_helper.from_array(np.array(3, np.int64), "trip"),
            numpy_helper.from_array(np.array(2.0, np.float32), "two"),
        ],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


@pytest.mark.parametrize("cond", [True, False])
def test_control_flow_bodies_are_converted(cond):
    m = _if_loop_model()
    c = convert_float_to_float16(m, keep_io_types=True)
    onnx.checker.check_model(c, full_check=True)
    if_node = next(n for n in c.graph.node if n.op_type == "If")
    then = next(a.g for a in if_node.attribute if a.name == "then_branch")
    loop = next(n for n in then.node if n.op_type == "Loop")
    body = loop.attribute[0].g
    assert body.input[2].type.tensor_type.elem_type == TensorProto.FLOAT16
    assert {t.name: t.data_type for t in body.initializer}["half"] == TensorProto.FLOAT16
    feed = {
        "c": np.array(cond),
        "x": np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32),
    }
    ref = _run(m, feed, "ort")
    for engine in ("ort", "core"):
        np.testing.assert_allclose(_run(c, feed, engine), ref, rtol=5e-3, atol=5e-3)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bfloat16_runs_in_ort_core(kind):
    build, shape = CASES[kind]
    m = build()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    ref = _run(m, {"x": x}, "ort")
    c = convert_float_to_bfloat16(m)
    onnx.checker.check_model(c, full_check=True)
    assert c.graph.input[0].type.tensor_type.elem_type == TensorProto.BFLOAT16
    if kind == "cnn":  # Conv has no bfloat16 before opset 22: kept in float32 with casts
        conv = next(n for n in c.graph.node if n.op_type == "Conv")
        assert {t.name: t.data_type for t in c.graph.initializer}[
            conv.input[1]
        ] == TensorProto.FLOAT
    out = _run(c, {"x": x.astype(ml_dtypes.bfloat16)}, "core")
    assert np.abs(out - ref).max() < 0.03 * np.abs(ref).max()


def test_matches_onnxruntime_converter_where_comparable():
    """onnxruntime's own converter on the same model: same initializer types, close outputs."""
    ort_f16 = pytest.importorskip("onnxruntime.transformers.float16")
    m = models.transformer()
    ours = convert_float_to_float16(
        m, keep_io_types=True, min_positive_val=5.96e-08, max_finite_val=65504.0
    )
    theirs = ort_f16.convert_float_to_float16(m, keep_io_types=True)
    t_ours = {t.name: t.data_type for t in ours.graph.initializer}
    t_theirs = {t.name: t.data_type for t in theirs.graph.initializer}
    assert {k: t_ours[k] for k in t_theirs if k in t_ours} == {
        k: t_theirs[k] for k in t_theirs if k in t_ours
    }
    x = np.random.default_rng(0).standard_normal((4, 8, 32)).astype(np.float32)
    np.testing.assert_allclose(
        _run(ours, {"x": x}, "ort"), _run(theirs, {"x": x}, "ort"), atol=2e-3
    )
