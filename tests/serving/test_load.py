"""Under load: several hundred concurrent requests over HTTP and gRPC give exactly the direct
session's results with no error and no memory growth; a full queue answers 503; stopping the
server finishes the requests in flight."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ort_core import InferenceSession
from ort_core.serve.errors import Unavailable

from .conftest import add_model, mlp_model

tg = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def post_raw(client, model, feeds):
    datatypes = {np.dtype(np.float32): "FP32", np.dtype(np.int32): "INT32"}
    inputs = [
        {
            "name": k,
            "datatype": datatypes[v.dtype],
            "shape": list(v.shape),
            "data": v.ravel().tolist(),
        }
        for k, v in feeds.items()
    ]
    return client.post(f"/v2/models/{model}/infer", json={"inputs": inputs})


def post_json(client, model, feeds, output):
    r = post_raw(client, model, feeds)
    r.raise_for_status()
    out = next(o for o in r.json()["outputs"] if o["name"] == output)
    dtype = np.float32 if out["datatype"] == "FP32" else np.int32
    return np.array(out["data"], dtype).reshape(out["shape"])


def post_mlp(client, x):
    return post_json(client, "mlp", {"x": x}, "y")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc")
def test_concurrent_load_matches_direct_runs(server):
    """600 requests from 8 threads, alternating HTTP (JSON) and gRPC (raw tensors), alternating
    'add' (integers, no batching: bit-identical) and 'mlp' (dynamic batching: a MatMul over a
    merged batch may round the last bit differently, so 1e-6 relative)."""
    import httpx

    mlp = InferenceSession(mlp_model().SerializeToString())
    add = InferenceSession(add_model(200).SerializeToString())
    rng = np.random.default_rng(3)
    cases = []
    for i in range(600):
        n = int(rng.integers(1, 4))
        if i % 4 < 2:
            x = rng.standard_normal((n, 4)).astype(np.float32)
            cases.append(("mlp", {"x": x}, "y", mlp.run(None, {"x": x})[0]))
        else:
            feeds = {k: rng.integers(-1000, 1000, n).astype(np.int32) for k in ("a", "b")}
            cases.append(("add", feeds, "sum", add.run(None, feeds)[0]))
    local = threading.local()
    grpc_client = tg.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")

    def one(i):
        model, feeds, out, _ = cases[i]
        if i % 2:
            if not hasattr(local, "http"):
                local.http = httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}")
            return post_json(local.http, model, feeds, out)
        ins = []
        for name, value in feeds.items():
            inp = tg.InferInput(name, list(value.shape), "FP32" if model == "mlp" else "INT32")
            inp.set_data_from_numpy(value)
            ins.append(inp)
        return grpc_client.infer(model, ins).as_numpy(out)

    try:
        with ThreadPoolExecutor(8) as pool:
            first = list(pool.map(one, range(300)))
            rss_mid = rss_bytes()
            second = list(pool.map(one, range(300, 600)))
            rss_end = rss_bytes()
    finally:
        grpc_client.close()
    for got, (model, _, _, want) in zip(first + second, cases):
        assert got.shape == want.shape and got.dtype == want.dtype
        if model == "add":
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert rss_end - rss_mid < 32 * 1024 * 1024, (rss_mid, rss_end)


def blocking_server(repository, **kw):
    """A server whose 'mlp' runs wait for the returned gate."""
    from ort_core.serve import Server

    srv = Server(repository, http_port=0, **{"grpc_port": None, **kw}).start()
    gate = threading.Event()
    sched = srv.repository.get("mlp").scheduler
    run = sched._run

    def gated(names, feeds):
        gate.wait(20)
        return run(names, feeds)

    sched._run = gated
    return srv, gate


def test_full_queue_answers_503_and_server_survives(repository):
    import httpx

    srv, gate = blocking_server(repository)
    x = np.ones((1, 4), np.float32)
    want = InferenceSession(mlp_model().SerializeToString()).run(None, {"x": x})[0]
    try:
        sched = srv.repository.get("mlp").scheduler
        queued = []
        with pytest.raises(Unavailable, match="queue is full"):
            for _ in range(sched.max_queue_size + 10):  # workers take some, then it fills up
                queued.append(sched.submit({"x": x}))
                time.sleep(0.001)
        with httpx.Client(base_url=f"http://127.0.0.1:{srv.http_port}") as c:
            r = post_raw(c, "mlp", {"x": x})
            assert r.status_code == 503 and "queue is full" in r.json()["error"]
            assert c.get("/v2/health/live").status_code == 200
            text = c.get("/metrics").text
            assert 'ort_core_serve_rejected_total{model="mlp",version="1"}' in text
            gate.set()
            for f in queued:
                np.testing.assert_array_equal(f.result(20)["y"], want)
            assert post_raw(c, "mlp", {"x": x}).status_code == 200
    finally:
        gate.set()
        srv.stop()


def test_stop_finishes_requests_in_flight(repository):
    """Two HTTP requests and one gRPC request are running when stop() is called: all three get
    their answer, then the server ends."""
    import httpx

    srv, gate = blocking_server(repository, grpc_port=0)
    x = np.ones((2, 4), np.float32)
    grpc_client = tg.InferenceServerClient(f"127.0.0.1:{srv.grpc_port}")

    def via_grpc():
        inp = tg.InferInput("x", [2, 4], "FP32")
        inp.set_data_from_numpy(x)
        return grpc_client.infer("mlp", [inp]).as_numpy("y")

    try:
        with ThreadPoolExecutor(4) as pool:
            url = f"http://127.0.0.1:{srv.http_port}"
            held = [
                pool.submit(post_mlp, httpx.Client(base_url=url, timeout=30), x) for _ in range(2)
            ]
            held.append(pool.submit(via_grpc))
            time.sleep(0.3)
            stopper = pool.submit(srv.stop, 30)
            time.sleep(0.3)
            assert not stopper.done()  # waiting for the requests in flight
            gate.set()
            stopper.result(30)
            want = InferenceSession(mlp_model().SerializeToString()).run(None, {"x": x})[0]
            for f in held:
                np.testing.assert_array_equal(f.result(5), want)
    finally:
        gate.set()
        grpc_client.close()
        srv.stop()
    assert not srv._thread.is_alive()
