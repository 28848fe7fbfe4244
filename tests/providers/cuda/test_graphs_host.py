"""enable_cuda_graph=1, host logic on the stand-in device: which graphs are refused and why,
the whole graph claimed as one compiled node, the warm-up run, run option gpu_graph_id, and the
shape-change error. Capture and replay themselves need a GPU (test_gpu.py, the GPU check)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import ort_core
from ort_core.errors import EPFail
from tests.conftest import make_model, tensor

CUDA = "CUDAExecutionProvider"
GRAPH = [(CUDA, {"enable_cuda_graph": "1"}), "CPUExecutionProvider"]


def _session(model):
    so = ort_core.SessionOptions()
    so.graph_optimization_level = ort_core.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort_core.InferenceSession(model.SerializeToString(), so, providers=GRAPH)


def test_the_whole_graph_is_one_compiled_node(standin, mlp_model):
    sess = _session(mlp_model)
    (sub,) = sess.placements
    assert sub.ep_name == CUDA and len(sub.get_nodes()) == 3
    x = np.ones((2, 4), np.float32)
    expected = ort_core.InferenceSession(
        mlp_model.SerializeToString(), providers=["CPUExecutionProvider"]
    ).run(None, {"x": x})[0]
    # the first run of a graph id is a regular (warm-up) run; -1 always runs without a graph
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], expected, 1e-6)
    ro = ort_core.RunOptions()
    ro.add_run_config_entry("gpu_graph_id", "-1")
    np.testing.assert_allclose(sess.run(None, {"x": x}, ro)[0], expected, 1e-6)


def test_a_new_shape_under_a_captured_graph_id_is_an_error(standin, mlp_model):
    sess = _session(mlp_model)
    sess.run(None, {"x": np.ones((2, 4), np.float32)})  # warm-up fixes the shapes of id 0
    with pytest.raises(RuntimeError, match="give each input shape its own run option gpu_graph_id"):
        sess.run(None, {"x": np.ones((3, 4), np.float32)})


def test_gpu_graph_id_must_be_an_integer(standin, mlp_model):
    sess = _session(mlp_model)
    ro = ort_core.RunOptions()
    ro.add_run_config_entry("gpu_graph_id", "first")
    with pytest.raises(RuntimeError, match="gpu_graph_id='first' is not valid"):
        sess.run(None, {"x": np.ones((2, 4), np.float32)}, ro)


def test_a_node_on_the_cpu_is_refused(standin):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("StringNormalizer", ["s"], ["t"], name="strings"),
    ]
    model = make_model(
        nodes,
        [tensor("x", shape=[2]), tensor("s", TensorProto.STRING, [2])],
        [tensor("r"), tensor("t", TensorProto.STRING)],
    )
    with pytest.raises(EPFail, match="needs every node on CUDAExecutionProvider.*strings"):
        _session(model)


def test_control_flow_is_refused(standin):
    then = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"])], "then", [], [tensor("a", shape=[2])]
    )
    other = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["b"])], "else", [], [tensor("b", shape=[2])]
    )
    nodes = [helper.make_node("If", ["c"], ["y"], name="if", then_branch=then, else_branch=other)]
    model = make_model(
        nodes, [tensor("c", TensorProto.BOOL, []), tensor("x", shape=[2])], [tensor("y")]
    )
    with pytest.raises(EPFail, match="enable_cuda_graph=1"):
        _session(model)


def test_shapes_read_during_the_run_are_refused(standin):
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape"),
    ]
    model = make_model(nodes, [tensor("x", shape=["N", 2])], [tensor("y")])
    with pytest.raises(EPFail, match="produces its output on the host"):
        _session(model)
