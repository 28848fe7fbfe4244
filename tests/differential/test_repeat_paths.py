"""The CPU provider's shortcuts for later runs and small operands against onnxruntime on the same
inputs: a FusedConv runs its remembered plan from its second run on the same shape (with and
without a residual, compiled and BLAS plans), a Gemm with constant B and C takes numpy's product
and one prepared add, Softmax and LogSoftmax over the last axis take the compiled rows (NaN and
infinite rows included, and rows shared between two threads). Each model runs three times in one
session, with a new input each time and a shape change in the middle."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core

from .harness import assert_same

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle")


def _model(nodes, inputs, outputs, inits=(), opset=17, ms=False):
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("com.microsoft", 1)] * ms)
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits],
    )
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model.SerializeToString()


def _sessions(model, threads=1):
    so = ort_core.SessionOptions()
    so.intra_op_num_threads = threads
    ours = ort_core.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    theirs = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return ours, theirs


def _check_runs(model, feeds_list, threads=1, rtol=1e-4, atol=1e-5):
    ours, theirs = _sessions(model, threads)
    for i, feeds in enumerate(feeds_list):
        got, want = ours.run(None, feeds), theirs.run(None, feeds)
        for g, w in zip(got, want, strict=True):
            assert_same(w, g, rtol, atol, f"run {i}")


@pytest.mark.parametrize(
    "c,m,group,k,act,params,residual",
    [
        (8, 8, 1, 1, "Relu", [], False),  # a small 1x1 product (squeeze-excite)
        (8, 16, 1, 3, "HardSigmoid", [0.2, 0.5], False),  # im2col / BLAS plans
        (16, 16, 16, 5, "Relu", [], False),  # depthwise: the compiled plan applies the code
        (16, 16, 16, 3, "Clip", [0.0, 6.0], True),  # depthwise with a residual: act after
        (8, 12, 1, 3, "LeakyRelu", [0.1], True),
    ],
)
def test_fused_conv_from_the_second_run(c, m, group, k, act, params, residual):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((m, c // group, k, k)).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32)
    attrs = dict(kernel_shape=[k, k], pads=[k // 2] * 4, group=group, activation=act)
    if params:
        attrs["activation_params"] = params
    ins = ["x", "w", "b"] + (["z"] * residual)
    node = helper.make_node("FusedConv", ins, ["y"], domain="com.microsoft", **attrs)
    inputs = [("x", [1, c, "H", "W"])] + ([("z", [1, m, "H", "W"])] * residual)
    model = _model([node], inputs, ["y"], [("w", w), ("b", b)], ms=True)

    def feeds(h, wd):
        f = {"x": rng.standard_normal((1, c, h, wd)).astype(np.float32)}
        if residual:
            f["z"] = rng.standard_normal((1, m, h, wd)).astype(np.float32)
        return f

    _check_runs(model, [feeds(6, 9), feeds(6, 9), feeds(5, 7), feeds(5, 7)])


@pytest.mark.parametrize(
    "c_shape,beta,trans_b",
    [((3,), 1.0, 1), ((1, 3), 0.5, 0), ((), 2.0, 1), ((1, 1), 1.0, 0), (None, 1.0, 1)],
)
def test_gemm_with_constant_weights_and_bias(c_shape, beta, trans_b):
    rng = np.random.default_rng(1)
    b = rng.standard_normal((3, 20) if trans_b else (20, 3)).astype(np.float32)
    inits = [("b", b)]
    ins = ["a", "b"]
    if c_shape is not None:
        inits.append(("c", rng.standard_normal(c_shape).astype(np.float32)))
        ins.append("c")
    node = helper.make_node("Gemm", ins, ["y"], transB=trans_b, beta=beta)
    model = _model([node], [("a", ["M", 20])], ["y"], inits)
    runs = [{"a": rng.standard_normal((rows, 20)).astype(np.float32)} for rows in (1, 1, 4, 300)]
    _check_runs(model, runs)


def test_gemm_with_a_full_bias_matrix_keeps_the_general_path():
    rng = np.random.default_rng(2)
    b = rng.standard_normal((20, 3)).astype(np.float32)
    c = rng.standard_normal((2, 3)).astype(np.float32)  # (M, N): broadcast needs M == 2
    model = _model(
        [helper.make_node("Gemm", ["a", "b", "c"], ["y"], alpha=0.5)],
        [("a", [2, 20])],
        ["y"],
        [("b", b), ("c", c)],
    )
    _check_runs(model, [{"a": rng.standard_normal((2, 20)).astype(np.float32)}] * 2)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_rows_match_onnxruntime_at_the_edges(op, opset):
    rows = np.array(
        [
            [1, np.nan, 2, 0],
            [-np.inf, -np.inf, -np.inf, -np.inf],
            [np.inf, 1, 2, 0],
            [-np.inf, 0, 1, 2],
            [1e30, -1e30, 0, 5],
            [88.0, -88.0, 0.5, 3],
        ],
        np.float32,
    )
    model = _model([helper.make_node(op, ["x"], ["y"], axis=-1)], [("x", [6, 4])], ["y"], [], opset)
    _check_runs(model, [{"x": rows}] * 2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("threads", [1, 2])
def test_softmax_rows_large_and_shared(op, threads):
    """Rows from 32768 elements are shared between the run's threads; a wide row (a
    vocabulary) sums 50000 exponentials."""
    rng = np.random.default_rng(3)
    model = _model([helper.make_node(op, ["x"], ["y"], axis=-1)], [("x", ["B", "S", "V"])], ["y"])
    runs = [
        {"x": (rng.standard_normal((2, 96, 256)) * 8).astype(np.float32)},
        {"x": (rng.standard_normal((1, 2, 50000)) * 4).astype(np.float32)},
        {"x": (rng.standard_normal((2, 96, 256)) * 8).astype(np.float32)},
    ]
    _check_runs(model, runs, threads, rtol=1e-5, atol=1e-6)
