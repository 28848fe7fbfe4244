"""Triton's own clients (tritonclient.http and tritonclient.grpc) against ort-core serve."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import expected_mlp

th = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")
tg = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture(scope="module")
def clients(server):
    h = th.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    g = tg.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        yield {"http": (th, h), "grpc": (tg, g)}
    finally:
        h.close()
        g.close()


@pytest.mark.parametrize("proto", ["http", "grpc"])
def test_health_and_metadata(clients, proto):
    mod, c = clients[proto]
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready("mlp") and c.is_model_ready("add", "1")
    assert not c.is_model_ready("nosuch")
    meta = (
        c.get_model_metadata("mlp", as_json=True)
        if proto == "grpc"
        else c.get_model_metadata("mlp")
    )
    assert meta["inputs"][0]["name"] == "x" and meta["inputs"][0]["datatype"] == "FP32"
    assert [int(d) for d in meta["inputs"][0]["shape"]] == [-1, 4]
    smeta = c.get_server_metadata(as_json=True) if proto == "grpc" else c.get_server_metadata()
    assert smeta["name"] == "ort-core"


@pytest.mark.parametrize("proto", ["http", "grpc"])
@pytest.mark.parametrize("binary", [True, False])
def test_infer(clients, proto, binary):
    mod, c = clients[proto]
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    inp = mod.InferInput("x", list(x.shape), "FP32")
    if proto == "http":
        inp.set_data_from_numpy(x, binary_data=binary)
        outs = [mod.InferRequestedOutput("y", binary_data=binary)]
    else:
        inp.set_data_from_numpy(x)
        outs = [mod.InferRequestedOutput("y")]
    res = c.infer("mlp", [inp], outputs=outs, request_id="abc")
    np.testing.assert_allclose(res.as_numpy("y"), expected_mlp(x))
    resp = res.get_response(as_json=True) if proto == "grpc" else res.get_response()
    assert resp["id"] == "abc"


@pytest.mark.parametrize("proto", ["http", "grpc"])
def test_versions_and_bytes(clients, proto):
    mod, c = clients[proto]
    a = np.array([1, 2], np.int32)
    b = np.array([3, 4], np.int32)
    ins = [mod.InferInput("a", [2], "INT32"), mod.InferInput("b", [2], "INT32")]
    ins[0].set_data_from_numpy(a)
    ins[1].set_data_from_numpy(b)
    r1 = c.infer("add", ins, model_version="1")
    r2 = c.infer("add", ins, model_version="2")
    np.testing.assert_array_equal(r1.as_numpy("sum"), a + b + 100)
    np.testing.assert_array_equal(r2.as_numpy("sum"), a + b + 200)
    np.testing.assert_array_equal(r2.as_numpy("diff"), a - b)
    s = np.array([b"alpha", b"", "ü".encode()], dtype=object)
    inp = mod.InferInput("s", [3], "BYTES")
    inp.set_data_from_numpy(s)
    out = c.infer("text", [inp]).as_numpy("t")
    assert [x if isinstance(x, bytes) else x.encode() for x in out] == list(s)


@pytest.mark.parametrize("proto", ["http", "grpc"])
def test_errors_name_the_problem(clients, proto):
    mod, c = clients[proto]
    inp = mod.InferInput("x", [2, 4], "FP64")
    inp.set_data_from_numpy(np.zeros((2, 4)))
    with pytest.raises(InferenceServerException, match="FP64") as e:
        c.infer("mlp", [inp])
    assert (
        ("INVALID_ARGUMENT" in str(e.value.status()))
        if proto == "grpc"
        else e.value.status() == "400"
    )
    inp = mod.InferInput("x", [2, 4], "FP32")
    inp.set_data_from_numpy(np.zeros((2, 4), np.float32))
    with pytest.raises(InferenceServerException, match="nosuch") as e:
        c.infer("nosuch", [inp])
    assert ("NOT_FOUND" in str(e.value.status())) if proto == "grpc" else e.value.status() == "404"
    with pytest.raises(InferenceServerException, match="version"):
        c.infer("mlp", [inp], model_version="9")


def test_grpc_repository_and_message_limit(clients, server):
    mod, c = clients["grpc"]
    index = c.get_model_repository_index(as_json=True)["models"]
    assert {m["name"] for m in index} == {"add", "mlp", "text"}
    c.unload_model("text")
    assert not c.is_model_ready("text")
    c.load_model("text")
    assert c.is_model_ready("text")
    with pytest.raises(InferenceServerException, match="nosuch"):
        c.load_model("nosuch")
    big = np.zeros((8, server.options.max_request_bytes // 32 + 1, 4), np.float32)
    inp = mod.InferInput("x", list(big.shape), "FP32")
    inp.set_data_from_numpy(big)
    with pytest.raises(InferenceServerException, match="RESOURCE_EXHAUSTED"):
        c.infer("mlp", [inp])
    assert c.is_server_ready()


@pytest.mark.parametrize("proto", ["http", "grpc"])
def test_model_config(clients, proto):
    mod, c = clients[proto]
    cfg = c.get_model_config("mlp", as_json=True) if proto == "grpc" else c.get_model_config("mlp")
    cfg = cfg.get("config", cfg)  # gRPC wraps it in ModelConfigResponse
    assert cfg["name"] == "mlp" and cfg["platform"] == "onnxruntime_onnx"
    assert int(cfg["max_batch_size"]) == 8
    (inp,) = cfg["input"]
    assert inp["name"] == "x" and inp["data_type"] == "TYPE_FP32"
    assert [int(d) for d in inp["dims"]] == [4]  # without the batch axis
    db = cfg["dynamic_batching"]
    assert [int(p) for p in db["preferred_batch_size"]] == [4, 8]
    assert int(db["max_queue_delay_microseconds"]) == 2000
    assert cfg["instance_group"][0]["kind"] == "KIND_CPU"
    assert int(cfg["instance_group"][0]["count"]) == 2
    assert cfg["parameters"]["providers"]["string_value"] == "CPUExecutionProvider"
    add = (
        c.get_model_config("add", "1", as_json=True)
        if proto == "grpc"
        else c.get_model_config("add", "1")
    )
    add = add.get("config", add)
    assert "all" in add["version_policy"] and "dynamic_batching" not in add
    assert [int(d) for d in add["input"][0]["dims"]] == [-1]  # no batch axis: dims are the shape
