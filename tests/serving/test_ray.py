"""Scale-out on a local Ray cluster the test starts: Ray Data batch inference equals a loop over
the session, and a Ray Serve deployment answers the protocol over HTTP."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from ort_core import InferenceSession

from .conftest import add_model, mlp_model

ray = pytest.importorskip("ray", reason="the ray extra (ray[data,serve]) is not installed")
pytest.importorskip("ray.data", reason="ray[data] is not installed")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    # Ray waits a fixed 30 s for its raylet to register with the GCS (and for the GCS to write
    # its port file). On a 2-core CI machine whose other core runs the rest of the suite that
    # wait can run out while the cluster is still coming up, so a start that times out is
    # retried on a fresh cluster (the tests then run against a cluster that did start; a
    # cluster that never starts still fails).
    for attempt in range(3):
        try:
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                ignore_reinit_error=False,
            )
            break
        except Exception as exc:  # Ray raises a bare Exception (or RuntimeError) for these
            ray.shutdown()
            slow = ("timed out during startup", "Timed out waiting for file")
            if not any(s in str(exc) for s in slow) or attempt == 2:
                raise
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_data_matches_a_loop_over_the_session(local_ray):
    """Integers (exact whatever the batch boundaries) and floats through a column mapping."""
    from ort_core.serve.ray_data import map_batches

    add = add_model(7).SerializeToString()
    rng = np.random.default_rng(4)
    a = rng.integers(-(2**20), 2**20, 300).astype(np.int32)
    b = rng.integers(-(2**20), 2**20, 300).astype(np.int32)
    ds = ray.data.from_items([{"id": i, "a": a[i], "b": b[i]} for i in range(len(a))])
    rows = sorted(
        map_batches(
            ds, add, providers=["CPUExecutionProvider"], batch_size=32, concurrency=2
        ).take_all(),
        key=lambda r: r["id"],
    )
    session = InferenceSession(add)
    loop = [session.run(None, {"a": a[i : i + 1], "b": b[i : i + 1]}) for i in range(len(a))]
    assert [r["id"] for r in rows] == list(range(len(a)))
    np.testing.assert_array_equal([r["sum"] for r in rows], [s[0][0] for s in loop])
    np.testing.assert_array_equal([r["diff"] for r in rows], [s[1][0] for s in loop])
    np.testing.assert_array_equal([r["a"] for r in rows], a)  # input columns kept

    model = mlp_model().SerializeToString()
    x = rng.standard_normal((200, 4)).astype(np.float32)
    ds = ray.data.from_items([{"id": i, "features": x[i]} for i in range(len(x))])
    out = map_batches(
        ds,
        model,
        input_columns={"x": "features"},
        output_columns={"y": "scores"},
        keep_columns=False,
        batch_size=32,
        concurrency=2,
    )
    got = np.stack([r["scores"] for r in out.take_all()])
    session = InferenceSession(model)
    want = np.concatenate([session.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))])
    # rows come back in any order without ids; a MatMul over 32 rows may round the last bit
    # differently from one over 1 row
    np.testing.assert_allclose(np.sort(got.ravel()), np.sort(want.ravel()), rtol=1e-5, atol=1e-6)


def test_ray_data_num_gpus_follows_the_cuda_provider(monkeypatch):
    from ort_core.serve import ray_data

    seen = {}

    class FakeDataset:
        def map_batches(self, fn, **kw):
            seen.update(kw)
            return "ds"

    assert (
        ray_data.map_batches(FakeDataset(), b"m", providers=[("CUDAExecutionProvider", {})]) == "ds"
    )
    assert seen["num_gpus"] == 1 and seen["batch_format"] == "numpy"
    seen.clear()
    ray_data.map_batches(FakeDataset(), b"m", providers=["cpu"])
    assert "num_gpus" not in seen


def test_ray_serve_deployment(local_ray, repository):
    pytest.importorskip("ray.serve", reason="ray[serve] is not installed")
    import httpx
    from ray import serve

    from ort_core.serve.ray_serve import deployment

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        app = deployment(repository, num_replicas=2, ray_actor_options={"num_cpus": 0})
        serve.run(app, name="ort", route_prefix="/")
        x = np.arange(8, dtype=np.float32).reshape(2, 4)
        body = {
            "inputs": [
                {"name": "x", "datatype": "FP32", "shape": [2, 4], "data": x.ravel().tolist()}
            ]
        }
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            for _ in range(4):
                r = c.post("/v2/models/mlp/infer", json=body)
                assert r.status_code == 200, r.text
                y = np.array(r.json()["outputs"][0]["data"], np.float32).reshape(2, 3)
                want = InferenceSession(mlp_model().SerializeToString()).run(None, {"x": x})[0]
                np.testing.assert_allclose(y, want, rtol=1e-6)
            r = c.post("/v2/models/mlp/infer", json={"inputs": []})
            assert r.status_code == 400 and "inputs" in r.json()["error"]
            assert c.get("/v2/models/nosuch").status_code == 404
            assert c.get("/v2/health/ready").status_code == 200
    finally:
        serve.shutdown()
