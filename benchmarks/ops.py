"""One-node models of common ops on small tensors, ort-core against onnxruntime in one process.

Small models (scikit-learn pipelines, voice activity detectors, decoder steps, OCR heads) spend
their time in many calls on small tensors, where a kernel's fixed cost is the whole cost. Each
case here is a one-node (or two-node) model; both runtimes run it in interleaved blocks, and
the report gives each runtime's time per run above its own floor (the same measurement on an
Identity model), so the numbers are the kernel's cost, not the session's. Cases far above
onnxruntime's point at Python or numpy glue in a kernel (this scan found a schema lookup by
exception, per-call weight copies and dtype lookups that cost more than the arithmetic).

    python benchmarks/ops.py [--threads 1] [--runs 2000] [--only Slice,LSTM]

Prints one line per case: ours and onnxruntime's microseconds above the floor, and the
difference. Nothing is asserted: speed is read here, never tested.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

_TYPES = {np.float32: T.FLOAT, np.int64: T.INT64, np.bool_: T.BOOL}


def _model(nodes, feeds, inits=(), opset=17, out_type=T.FLOAT) -> bytes:
    graph = h.make_graph(
        nodes, "g",
        [h.make_tensor_value_info(k, _TYPES[v.dtype.type], v.shape) for k, v in feeds.items()],
        [h.make_tensor_value_info("y", out_type, None)], list(inits),
    )  # fmt: skip
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def cases() -> list[tuple[str, bytes, dict]]:
    """(name, model, feeds) of each case."""
    rng = np.random.default_rng(0)

    def f(*s):
        return rng.standard_normal(s).astype(np.float32)

    def i64(*v):
        return np.array(v, np.int64)

    x = f(1, 128, 4)
    out = []

    def case(name, nodes, feeds, inits=(), opset=17, out_type=T.FLOAT):
        out.append((name, _model(nodes, feeds, inits, opset, out_type), feeds))

    case("ReduceMean (1,128,4) axis 2", [h.make_node("ReduceMean", ["x"], ["y"], axes=[2])],
         {"x": x})  # fmt: skip
    case("Sigmoid (1,128,4)", [h.make_node("Sigmoid", ["x"], ["y"])], {"x": x})
    case("Relu (1,128,4)", [h.make_node("Relu", ["x"], ["y"])], {"x": x})
    case("Add (1,128,4) + (4,) constant", [h.make_node("Add", ["x", "c"], ["y"])], {"x": x},
         [nh.from_array(f(4), "c")])  # fmt: skip
    case("Concat 2 x (1,128,4) axis 2", [h.make_node("Concat", ["x", "x"], ["y"], axis=2)],
         {"x": x})  # fmt: skip
    case("Slice (1,128,4) 0:64 axis 1", [h.make_node("Slice", ["x", "a", "b", "c"], ["y"])],
         {"x": x}, [nh.from_array(i64(0), "a"), nh.from_array(i64(64), "b"),
                    nh.from_array(i64(1), "c")])  # fmt: skip
    case("Gather (1,128,4) index axis 1", [h.make_node("Gather", ["x", "i"], ["y"], axis=1)],
         {"x": x}, [nh.from_array(i64(3), "i")])  # fmt: skip
    case("Pad reflect (1,576)", [h.make_node("Pad", ["x", "p"], ["y"], mode="reflect")],
         {"x": f(1, 576)}, [nh.from_array(i64(0, 32, 0, 32), "p")])  # fmt: skip
    case("Softmax (1,128,4) axis -1", [h.make_node("Softmax", ["x"], ["y"], axis=-1)], {"x": x})
    case("MatMul (1,128) x (128,64)", [h.make_node("MatMul", ["x", "w"], ["y"])],
         {"x": f(1, 128)}, [nh.from_array(f(128, 64), "w")])  # fmt: skip
    case("Gemm (1,128) x (64,128)^T + b",
         [h.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], {"x": f(1, 128)},
         [nh.from_array(f(64, 128), "w"), nh.from_array(f(64), "b")])  # fmt: skip
    case("LayerNormalization (1,4,128)",
         [h.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)],
         {"x": f(1, 4, 128)}, [nh.from_array(f(128), "g"), nh.from_array(f(128), "b")])  # fmt: skip
    case("GlobalAveragePool (1,128,4,1)", [h.make_node("GlobalAveragePool", ["x"], ["y"])],
         {"x": f(1, 128, 4, 1)})  # fmt: skip
    case("Expand (1,1,4) -> (1,128,4)", [h.make_node("Expand", ["x", "s"], ["y"])],
         {"x": f(1, 1, 4)}, [nh.from_array(i64(1, 128, 4), "s")])  # fmt: skip
    case("Conv 1x1 32 -> 8 on 1x1 + Relu",
         [h.make_node("Conv", ["x", "w", "b"], ["c"]), h.make_node("Relu", ["c"], ["y"])],
         {"x": f(1, 32, 1, 1)}, [nh.from_array(f(8, 32, 1, 1), "w"),
                                 nh.from_array(f(8), "b")])  # fmt: skip
    case("Conv depthwise 5x5 88 on 3x12",
         [h.make_node("Conv", ["x", "w", "b"], ["y"], group=88, pads=[2, 2, 2, 2])],
         {"x": f(1, 88, 3, 12)}, [nh.from_array(f(88, 1, 5, 5), "w"),
                                  nh.from_array(f(88), "b")])  # fmt: skip
    case("LSTM one step, hidden 128",
         [h.make_node("LSTM", ["x", "W", "R", "B"], ["y"], hidden_size=128)],
         {"x": f(1, 1, 128)}, [nh.from_array(f(1, 512, 128), "W"),
                               nh.from_array(f(1, 512, 128), "R"),
                               nh.from_array(f(1, 1024), "B")])  # fmt: skip
    case("GRU one step, hidden 64",
         [h.make_node("GRU", ["x", "W", "R", "B"], ["y"], hidden_size=64)],
         {"x": f(1, 1, 64)}, [nh.from_array(f(1, 192, 64), "W"),
                              nh.from_array(f(1, 192, 64), "R"),
                              nh.from_array(f(1, 384), "B")])  # fmt: skip
    return out


def _time(sess, feeds, runs: int) -> float:
    """Best of five blocks of ``runs`` runs, microseconds per run."""
    for _ in range(min(runs, 200)):
        sess.run(None, feeds)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(runs):
            sess.run(None, feeds)
        best = min(best, (time.perf_counter() - t) / runs * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--only", default="", help="comma-separated words a case name contains")
    args = parser.parse_args(argv)
    import onnxruntime

    import ort_core

    runtimes = {"ort-core": ort_core, "onnxruntime": onnxruntime}

    def session(mod, model):
        so = mod.SessionOptions()
        so.intra_op_num_threads = args.threads
        return mod.InferenceSession(model, so, providers=["CPUExecutionProvider"])

    one = {"x": np.ones(1, np.float32)}
    identity = _model([h.make_node("Identity", ["x"], ["y"])], one)
    floor = {k: _time(session(m, identity), one, args.runs) for k, m in runtimes.items()}
    print(f"floor (an Identity model's run): ort-core {floor['ort-core']:.2f} us, onnxruntime "
          f"{floor['onnxruntime']:.2f} us; below, each runtime's time above its floor")  # fmt: skip
    wanted = [w for w in args.only.split(",") if w]
    for name, model, feeds in cases():
        if wanted and not any(w in name for w in wanted):
            continue
        got = {
            k: _time(session(m, model), feeds, args.runs) - floor[k] for k, m in runtimes.items()
        }
        print(f"{name:38s} ort-core {got['ort-core']:7.2f} us  onnxruntime "
              f"{got['onnxruntime']:7.2f} us  difference {got['ort-core'] - got['onnxruntime']:7.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
