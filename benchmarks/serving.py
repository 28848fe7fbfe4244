"""Throughput and latency of ``ort-core serve`` against the direct session, with dynamic
batching off and on, over HTTP (binary tensors) and gRPC.

    python benchmarks/serving.py [--requests 2000] [--clients 8]

Triton and OpenVINO Model Server have no pip-installable server (no ``tritonserver`` wheel on
PyPI), so the reference is the same model run by ``ort_core.InferenceSession`` in this process.
The server runs in a subprocess (``python -m ort_core.serve.cli serve``) so clients and server
do not share one GIL. Each request carries one row; the model is an MLP 256 -> 512 -> 256 -> 10.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    dims = [256, 512, 256, 10]
    nodes, inits, prev = [], [], "x"
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        inits.append(
            numpy_helper.from_array(rng.standard_normal((a, b)).astype(np.float32) / 16, f"W{i}")
        )
        nodes.append(helper.make_node("MatMul", [prev, f"W{i}"], [f"h{i}"]))
        prev = f"h{i}"
        if i < len(dims) - 2:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(fn, n: int, clients: int) -> tuple[float, float, float]:
    """Requests per second, p50 and p99 latency (ms) of ``fn(i)`` called n times."""
    lat = np.empty(n)

    def one(i):
        t = time.perf_counter()
        fn(i)
        lat[i] = time.perf_counter() - t

    for i in range(min(50, n)):  # warm-up
        fn(i)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(n)))
    wall = time.perf_counter() - t0
    return n / wall, float(np.percentile(lat, 50) * 1e3), float(np.percentile(lat, 99) * 1e3)


def http_caller(port: int, xs: list[np.ndarray]):
    """One httpx client per thread (tritonclient.http's gevent client is not thread-safe),
    sending the binary-tensor extension's body as tritonclient does."""
    import json
    import threading

    import httpx

    local = threading.local()

    def call(i):
        if not hasattr(local, "c"):
            # TCP_NODELAY: httpx writes headers and body apart; without it Nagle's algorithm and
            # the server's delayed ACK add ~40 ms to every request
            nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            local.c = httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                transport=httpx.HTTPTransport(socket_options=nodelay),
            )
        x = xs[i]
        head = json.dumps(
            {
                "inputs": [
                    {
                        "name": "x",
                        "datatype": "FP32",
                        "shape": list(x.shape),
                        "parameters": {"binary_data_size": x.nbytes},
                    }
                ],
                "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
            }
        ).encode()
        r = local.c.post(
            "/v2/models/mlp/infer",
            content=head + x.tobytes(),
            headers={"Inference-Header-Content-Length": str(len(head))},
        )
        r.raise_for_status()
        n = int(r.headers["Inference-Header-Content-Length"])
        return np.frombuffer(r.content[n:], np.float32)

    return call


def start_server(model_path: Path, batching: bool) -> tuple[subprocess.Popen, int, int]:
    http, grpc = free_port(), free_port()
    cmd = [
        sys.executable,
        "-m",
        "ort_core.serve.cli",
        "serve",
        str(model_path),
        "--http-port",
        str(http),
        "--grpc-port",
        str(grpc),
        "--log-level",
        "WARNING",
        "--max-queue-size",
        "1024",
    ]
    if batching:
        cmd += ["--max-batch-size", "32", "--dynamic-batching", "--max-queue-delay-us", "500"]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready").close()
            return proc, http, grpc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start") from None
            time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    import tritonclient.grpc as tg

    from ort_core import InferenceSession

    model = build_model()
    tmp = Path(tempfile.mkdtemp())
    path = tmp / "mlp.onnx"
    onnx.save(model, str(path))
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((1, 256)).astype(np.float32) for _ in range(args.requests)]
    rows = []
    sess = InferenceSession(str(path))
    rows.append(
        (
            "direct session, 1 thread",
            *measure(lambda i: sess.run(None, {"x": xs[i]}), args.requests, 1),
        )
    )
    rows.append(
        (
            f"direct session, {args.clients} threads",
            *measure(lambda i: sess.run(None, {"x": xs[i]}), args.requests, args.clients),
        )
    )
    for batching in (False, True):
        proc, http, grpc = start_server(path, batching)
        try:
            gc = tg.InferenceServerClient(f"127.0.0.1:{grpc}")
            via_http = http_caller(http, xs)

            def via_grpc(i, gc=gc):
                inp = tg.InferInput("x", [1, 256], "FP32")
                inp.set_data_from_numpy(xs[i])
                gc.infer("mlp", [inp]).as_numpy("y")

            tag = "dynamic batching" if batching else "no batching"
            rows.append((f"serve HTTP, {tag}", *measure(via_http, args.requests, args.clients)))
            rows.append((f"serve gRPC, {tag}", *measure(via_grpc, args.requests, args.clients)))
            gc.close()
        finally:
            proc.terminate()
            proc.wait(30)
    base = rows[1][1]
    print(
        f"{args.requests} requests of 1 row, {args.clients} client threads, {os.cpu_count()} CPUs"
    )
    print(f"{'configuration':40s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'vs direct':>10s}")
    for name, rps, p50, p99 in rows:
        print(f"{name:40s} {rps:9.0f} {p50:8.2f} {p99:8.2f} {rps / base:9.2f}x")


if __name__ == "__main__":
    main()
