"""Executor overhead: time per node of a chain of tiny ops, ort-core against onnxruntime.

A chain of ``--nodes`` elementwise ops (Neg, Abs, Relu, Sigmoid in turn) on a 4-element tensor does
almost no arithmetic, so a run's time divided by the node count is what the executor itself costs
per kernel call. Optimizations are off in both runtimes (they would fold the chain away). The two
runtimes are measured interleaved, in blocks of runs, in one process.

    python benchmarks/overhead.py --nodes 1000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from onnx import TensorProto, helper

OPS = ("Neg", "Abs", "Relu", "Sigmoid")


def chain_model(n: int) -> bytes:
    nodes = [
        helper.make_node(OPS[i % len(OPS)], [f"v{i}"], [f"v{i + 1}"], name=f"n{i}")
        for i in range(n)
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("v0", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info(f"v{n}", TensorProto.FLOAT, [4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def per_node_us(sessions: dict, feed: dict, n: int, runs: int, block: int = 10) -> dict[str, float]:
    """Median time per node of each session, measured interleaved: blocks of ``block`` runs of
    each in turn, so that machine noise hits both alike."""
    for sess in sessions.values():
        for _ in range(5):
            sess.run(None, feed)
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(max(1, runs // block)):
        for k, sess in sessions.items():
            for _ in range(block):
                t0 = time.perf_counter()
                sess.run(None, feed)
                times[k].append(time.perf_counter() - t0)
            time.sleep(0.01)  # let onnxruntime's spinning threads park before the other runs
    return {k: 1e6 * statistics.median(v) / n for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args(argv)
    data = chain_model(args.nodes)
    feed = {"v0": np.linspace(-1, 1, 4, dtype=np.float32)}

    import ort_core

    so = ort_core.SessionOptions()
    so.graph_optimization_level = ort_core.GraphOptimizationLevel.ORT_DISABLE_ALL
    sessions = {"ort-core": ort_core.InferenceSession(data, so, providers=["CPUExecutionProvider"])}
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
    if onnxruntime is not None:
        so = onnxruntime.SessionOptions()
        so.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        sessions["onnxruntime"] = onnxruntime.InferenceSession(
            data, so, providers=["CPUExecutionProvider"]
        )
    us = per_node_us(sessions, feed, args.nodes, args.runs)
    for k, v in us.items():
        print(f"{k:<12} {v:6.2f} us/node")
    if onnxruntime is None:
        print("onnxruntime  (not installed)")
    else:
        print(f"ratio        {us['ort-core'] / us['onnxruntime']:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
