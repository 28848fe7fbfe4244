"""Fixtures of the serving tests: small models built with onnx.helper, a model repository in
Triton's layout, and a server on free local ports that always stops."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

for _mod in ("starlette", "uvicorn", "grpc", "prometheus_client"):
    pytest.importorskip(_mod, reason=f"the serve extra ({_mod}) is not installed")

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3)).astype(np.float32)
B = RNG.standard_normal(3).astype(np.float32)


def _model(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def mlp_model() -> onnx.ModelProto:
    """x[N,4] float -> Relu(x @ W + B) -> y[N,3]."""
    return _model(
        [
            helper.make_node("MatMul", ["x", "W"], ["h"]),
            helper.make_node("Add", ["h", "B"], ["z"]),
            helper.make_node("Relu", ["z"], ["y"]),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [onnx.numpy_helper.from_array(W, "W"), onnx.numpy_helper.from_array(B, "B")],
    )


def add_model(offset: int) -> onnx.ModelProto:
    """a[N] int32, b[N] int32 -> sum = a + b + offset, diff = a - b (two outputs)."""
    return _model(
        [
            helper.make_node("Add", ["a", "b"], ["s0"]),
            helper.make_node("Add", ["s0", "k"], ["sum"]),
            helper.make_node("Sub", ["a", "b"], ["diff"]),
        ],
        [
            helper.make_tensor_value_info("a", TensorProto.INT32, ["N"]),
            helper.make_tensor_value_info("b", TensorProto.INT32, ["N"]),
        ],
        [
            helper.make_tensor_value_info("sum", TensorProto.INT32, ["N"]),
            helper.make_tensor_value_info("diff", TensorProto.INT32, ["N"]),
        ],
        [onnx.numpy_helper.from_array(np.array(offset, np.int32), "k")],
    )


def text_model() -> onnx.ModelProto:
    """s[N] string -> Identity -> t[N] string."""
    return _model(
        [helper.make_node("Identity", ["s"], ["t"])],
        [helper.make_tensor_value_info("s", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("t", TensorProto.STRING, ["N"])],
    )


MLP_CONFIG = """
    name: "mlp"
    platform: "onnxruntime_onnx"
    max_batch_size: 8
    input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
    output [ { name: "y" data_type: TYPE_FP32 dims: [ 3 ] } ]
    dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 2000 }
    instance_group [ { kind: KIND_CPU count: 2 } ]
    parameters { key: "providers" value: { string_value: "CPUExecutionProvider" } }
"""

ADD_CONFIG = """
    version_policy: { all { } }
"""


def write_model(root: Path, name: str, version: int, model: onnx.ModelProto, config=None):
    folder = root / name / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    if config is not None:
        (root / name / "config.pbtxt").write_text(textwrap.dedent(config))


def expected_mlp(x: np.ndarray) -> np.ndarray:
    from ort_core import InferenceSession

    return InferenceSession(mlp_model().SerializeToString()).run(None, {"x": x})[0]


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    write_model(root, "mlp", 1, mlp_model(), MLP_CONFIG)
    write_model(root, "add", 1, add_model(100), ADD_CONFIG)
    write_model(root, "add", 2, add_model(200))
    write_model(root, "text", 1, text_model())
    return root


@pytest.fixture(scope="module")
def server(repository):
    from ort_core.serve import Server

    srv = Server(repository, host="127.0.0.1", http_port=0, grpc_port=0, max_request_bytes=1 << 20)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def http(server):
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as client:
        yield client
