"""The HTTP/REST front end, driven with plain HTTP (httpx): the protocol's endpoints, JSON and
binary tensors, versions, the repository extension, metrics, and every kind of bad request."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

from .conftest import expected_mlp


def infer_body(name="x", datatype="FP32", shape=(2, 4), data=None):
    data = np.zeros(shape).ravel().tolist() if data is None else data
    return {"inputs": [{"name": name, "datatype": datatype, "shape": list(shape), "data": data}]}


def test_health_and_server_metadata(http):
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200
    meta = http.get("/v2").json()
    assert meta["name"] == "ort-core"
    assert {"binary_tensor_data", "model_repository"} <= set(meta["extensions"])


def test_model_metadata_and_ready(http):
    meta = http.get("/v2/models/mlp").json()
    assert meta == {
        "name": "mlp",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}],
    }
    assert http.get("/v2/models/add").json()["versions"] == ["1", "2"]
    assert http.get("/v2/models/mlp/ready").status_code == 200
    assert http.get("/v2/models/add/versions/1/ready").status_code == 200
    assert http.get("/v2/models/add/versions/7/ready").status_code == 404
    assert http.get("/v2/models/nosuch/ready").status_code == 404


def test_infer_json_matches_session(http):
    x = np.arange(8, dtype=np.float32).reshape(2, 4) / 7 - 0.5
    r = http.post("/v2/models/mlp/infer", json={"id": "r1", **infer_body(data=x.tolist())})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "r1" and out["model_name"] == "mlp" and out["model_version"] == "1"
    (y,) = out["outputs"]
    assert y["name"] == "y" and y["datatype"] == "FP32" and y["shape"] == [2, 3]
    np.testing.assert_allclose(np.array(y["data"], np.float32).reshape(2, 3), expected_mlp(x))


def test_infer_binary_tensors_both_ways(http):
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": [3, 4],
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
        }
    ).encode()
    r = http.post(
        "/v2/models/mlp/infer",
        content=head + x.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert r.status_code == 200, r.text
    n = int(r.headers["Inference-Header-Content-Length"])
    meta = json.loads(r.content[:n])
    size = meta["outputs"][0]["parameters"]["binary_data_size"]
    y = np.frombuffer(r.content[n : n + size], np.float32).reshape(meta["outputs"][0]["shape"])
    np.testing.assert_allclose(y, expected_mlp(x))


def test_versions_select_the_model(http):
    body = {
        "inputs": [
            {"name": "a", "datatype": "INT32", "shape": [3], "data": [1, 2, 3]},
            {"name": "b", "datatype": "INT32", "shape": [3], "data": [10, 20, 30]},
        ],
        "outputs": [{"name": "sum"}],
    }
    v1 = http.post("/v2/models/add/versions/1/infer", json=body).json()
    v2 = http.post("/v2/models/add/versions/2/infer", json=body).json()
    latest = http.post("/v2/models/add/infer", json=body).json()
    assert [o["name"] for o in v1["outputs"]] == ["sum"]
    assert v1["outputs"][0]["data"] == [111, 122, 133]
    assert v2["outputs"][0]["data"] == [211, 222, 233]
    assert latest["model_version"] == "2" and latest["outputs"] == v2["outputs"]


def test_bytes_tensors(http):
    body = {"inputs": [{"name": "s", "datatype": "BYTES", "shape": [2], "data": ["héllo", "w"]}]}
    out = http.post("/v2/models/text/infer", json=body).json()
    assert out["outputs"][0]["data"] == ["héllo", "w"]
    raw = b"".join(struct.pack("<I", len(s)) + s for s in (b"ab", b"", b"xyz"))
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "s",
                    "datatype": "BYTES",
                    "shape": [3],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    r = http.post(
        "/v2/models/text/infer",
        content=head + raw,
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert r.json()["outputs"][0]["data"] == ["ab", "", "xyz"]


def test_gzip_request_body(http):
    body = gzip.compress(json.dumps(infer_body()).encode())
    r = http.post("/v2/models/mlp/infer", content=body, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text


BAD = [
    # (what, path, body or raw bytes, status, words the message must contain)
    ("wrong dtype", "mlp", infer_body(datatype="FP64"), 400, ["FP64", "FP32"]),
    ("wrong shape", "mlp", infer_body(shape=(2, 5)), 400, ["[2, 5]", "[-1, 4]"]),
    ("wrong rank", "mlp", infer_body(shape=(8,)), 400, ["shape"]),
    ("data size", "mlp", infer_body(data=[1.0, 2.0]), 400, ["2 elements", "8"]),
    ("unknown input", "mlp", infer_body(name="q"), 400, ["no input 'q'", "x"]),
    ("unknown datatype", "mlp", infer_body(datatype="FP128"), 400, ["FP128"]),
    ("text as numbers", "mlp", infer_body(data=["a"] * 8), 400, ["FP32"]),
    ("batch too big", "mlp", infer_body(shape=(9, 4)), 400, ["batch size 9", "max_batch_size"]),
    ("no inputs", "mlp", {"inputs": []}, 400, ["inputs"]),
    ("not an object", "mlp", [1, 2], 400, ["JSON object"]),
    ("malformed JSON", "mlp", b"{not json", 400, ["not valid JSON"]),
    ("deep JSON", "mlp", b"[" * 100000 + b"]" * 100000, 400, ["JSON"]),
    ("unknown model", "nosuch", infer_body(), 404, ["nosuch"]),
    ("unknown version", "mlp/versions/3", infer_body(), 404, ["version '3'"]),
    ("bad version", "mlp/versions/abc", infer_body(), 400, ["abc"]),
    ("traversal name", "..%2F..%2Fetc", infer_body(), 404, []),
    ("unknown output", "mlp", {**infer_body(), "outputs": [{"name": "zz"}]}, 400, ["zz"]),
    (
        "missing input",
        "add",
        {"inputs": [{"name": "a", "datatype": "INT32", "shape": [1], "data": [1]}]},
        400,
        ["b"],
    ),
    (
        "int out of range",
        "add",
        {
            "inputs": [
                {"name": "a", "datatype": "INT32", "shape": [1], "data": [2**40]},
                {"name": "b", "datatype": "INT32", "shape": [1], "data": [1]},
            ]
        },
        400,
        ["INT32"],
    ),
]


@pytest.mark.parametrize("what,path,body,status,words", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_the_protocol_status(http, repository, what, path, body, status, words):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = http.post(f"/v2/models/{path}/infer", content=content)
    assert r.status_code == status, r.text
    message = r.json()["error"]
    for w in words:
        assert w in message, message
    assert "Traceback" not in message and str(repository) not in message
    assert http.get("/v2/health/ready").status_code == 200  # the server is still fine


def test_binary_size_mismatch(http):
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": [2, 4],
                    "parameters": {"binary_data_size": 16},
                }
            ]
        }
    ).encode()
    r = http.post(
        "/v2/models/mlp/infer",
        content=head + b"\0" * 16,
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert r.status_code == 400 and "16 bytes" in r.json()["error"]
    r = http.post(
        "/v2/models/mlp/infer",
        content=head,
        headers={"Inference-Header-Content-Length": str(len(head) + 5)},
    )
    assert r.status_code == 400 and "Inference-Header-Content-Length" in r.json()["error"]


def test_oversized_bodies_get_413(http, server):
    limit = server.options.max_request_bytes
    r = http.post("/v2/models/mlp/infer", content=b" " * (limit + 1))
    assert r.status_code == 413 and str(limit) in r.json()["error"]

    def chunks():
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    r = http.post("/v2/models/mlp/infer", content=chunks())  # chunked: no Content-Length
    assert r.status_code == 413
    bomb = gzip.compress(b" " * (limit * 4))
    r = http.post("/v2/models/mlp/infer", content=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413 and "decompressed" in r.json()["error"]


def test_unknown_endpoint_is_json_404(http):
    r = http.get("/v3/whatever")
    assert r.status_code == 404 and "/v2" in r.json()["error"]


def test_repository_index_load_unload(http):
    index = http.post("/v2/repository/index").json()
    assert {(e["name"], e["version"], e["state"]) for e in index} == {
        ("add", "1", "READY"),
        ("add", "2", "READY"),
        ("mlp", "1", "READY"),
        ("text", "1", "READY"),
    }
    assert http.post("/v2/repository/models/text/unload").status_code == 200
    r = http.post("/v2/models/text/infer", json={"inputs": []})
    assert r.status_code == 404
    states = {e["name"]: e["state"] for e in http.post("/v2/repository/index", json={}).json()}
    assert states["text"] == "UNAVAILABLE"
    ready_only = http.post("/v2/repository/index", json={"ready": True}).json()
    assert "text" not in {e["name"] for e in ready_only}
    assert http.post("/v2/repository/models/text/load").status_code == 200
    assert http.get("/v2/models/text/ready").status_code == 200
    r = http.post("/v2/repository/models/..%2F..%2Ftmp/load")
    assert r.status_code in (400, 404)
    r = http.post("/v2/repository/models/..%2F..%2Ftmp/load".replace("%2F", "/"))
    assert r.status_code == 404
    r = http.post("/v2/repository/models/nosuch/load")
    assert r.status_code == 404 and "nosuch" in r.json()["error"]
    r = http.post("/v2/repository/models/mlp/load", json={"parameters": {"config": "{}"}})
    assert r.status_code == 400 and "config" in r.json()["error"]


def test_metrics(http):
    http.post("/v2/models/mlp/infer", json=infer_body())
    text = http.get("/metrics").text
    for name in (
        "ort_core_serve_requests_total",
        "ort_core_serve_request_duration_seconds_bucket",
        "ort_core_serve_queue_duration_seconds_bucket",
        "ort_core_serve_batch_size_bucket",
        "ort_core_serve_queue_depth",
    ):
        assert name in text
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("ort_core_serve_requests_total{")
        and 'model="mlp"' in ln
        and 'status="success"' in ln
        and 'protocol="http"' in ln
    )
    assert float(line.rsplit(" ", 1)[1]) >= 1


def test_large_binary_request_is_decoded_off_the_event_loop(http):
    from ort_core.serve.http_app import OFF_LOOP_BYTES

    n = OFF_LOOP_BYTES // 4 + 1000  # each input alone is over the threshold
    a = np.arange(n, dtype=np.int32)
    b = np.full(n, 5, np.int32)
    inputs = [
        {"name": k, "datatype": "INT32", "shape": [n], "parameters": {"binary_data_size": v.nbytes}}
        for k, v in (("a", a), ("b", b))
    ]
    head = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    r = http.post(
        "/v2/models/add/versions/1/infer",
        content=head + a.tobytes() + b.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert r.status_code == 200, r.text
    n_head = int(r.headers["Inference-Header-Content-Length"])
    outs = json.loads(r.content[:n_head])["outputs"]
    data, offset = {}, n_head
    for o in outs:
        size = o["parameters"]["binary_data_size"]
        data[o["name"]] = np.frombuffer(r.content[offset : offset + size], np.int32)
        offset += size
    np.testing.assert_array_equal(data["sum"], a + b + 100)
    np.testing.assert_array_equal(data["diff"], a - b)
