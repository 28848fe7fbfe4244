"""Node count and latency of each model at each graph-optimization level (ort-core, CPU provider),
next to onnxruntime's latency at the same level, measured in the same process.

    python benchmarks/levels.py --models bert_base,resnet50 --threads 2 --rounds 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from models import KINDS, load_benchmark_model  # noqa: E402
from run import limit_threads  # noqa: E402

LEVELS = ("DISABLE_ALL", "ENABLE_BASIC", "ENABLE_EXTENDED", "ENABLE_ALL")


def node_count(sess) -> int:
    return sum(len(s.get_nodes()) for s in sess.placements)


def median_ms(sess, feed, rounds: int) -> float:
    sess.run(None, feed)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    import onnxruntime

    import ort_core

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(KINDS["big"]), help="any models of models.py")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args(argv)
    limit_threads(args.threads)
    print(
        f"{'model':<14}{'level':<17}{'nodes':>7}{'ort-core ms':>13}{'onnxruntime ms':>16}{'x ort':>7}"
    )
    for name in args.models.split(","):
        path, feed = load_benchmark_model(name)
        for level in LEVELS:
            so = ort_core.SessionOptions()
            so.graph_optimization_level = getattr(ort_core.GraphOptimizationLevel, "ORT_" + level)
            so.intra_op_num_threads = args.threads
            ours = ort_core.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            ro = onnxruntime.SessionOptions()
            ro.graph_optimization_level = getattr(
                onnxruntime.GraphOptimizationLevel, "ORT_" + level
            )
            ro.intra_op_num_threads = args.threads
            theirs = onnxruntime.InferenceSession(path, ro, providers=["CPUExecutionProvider"])
            a, b = median_ms(ours, feed, args.rounds), median_ms(theirs, feed, args.rounds)
            print(
                f"{name:<14}{level:<17}{node_count(ours):>7}{a:>13.2f}{b:>16.2f}{a / b:>7.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
