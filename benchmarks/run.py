"""Benchmark ort-core against onnxruntime on the same models, in one process, same thread count.

For each model: onnxruntime's CPU provider, then ort-core with each requested provider configuration.
Runs are interleaved in blocks so that machine noise hits all configurations alike: each round
runs every configuration in turn, ``--block`` timed runs back to back (after one untimed run), as
a user's loop would, then an idle gap (``--gap-ms``). The gap matters: onnxruntime's worker threads
keep spinning for a while after a run returns and would take a core from whatever runs next
(measured here: ort-core's squeezenet 2.5x slower right after an onnxruntime run), and the untimed
run matters too: after the gap onnxruntime's first run pays for waking its parked threads. Neither
is something a user of one runtime sees. Prints median latency, the ratio to onnxruntime,
session-creation time and, with ``--memory``, peak memory (each configuration measured in its own
subprocess).

    python benchmarks/run.py --threads 2 --models squeezenet,resnet50 --json out.json
    python benchmarks/run.py --configs cpu,openvino

onnxruntime is only a comparison point: it is imported here, never by ort-core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from models import MODEL_NAMES, load_benchmark_model  # noqa: E402

#: configuration name -> ort-core providers list (None = onnxruntime)
CONFIGS = {
    "onnxruntime": None,
    "cpu": ["CPUExecutionProvider"],
    "openvino": ["OpenVINOExecutionProvider", "CPUExecutionProvider"],
    "opencl": ["OpenCLExecutionProvider", "CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


@dataclass
class Result:
    model: str
    config: str
    create_s: float = float("nan")
    median_ms: float = float("nan")
    min_ms: float = float("nan")
    p90_ms: float = float("nan")
    ratio: float = float("nan")  # median / onnxruntime median
    min_ratio: float = float("nan")  # best run / onnxruntime's best run
    peak_mb: float = float("nan")
    error: str = ""
    runs: int = 0
    samples: list[float] = field(default_factory=list, repr=False)


def limit_threads(threads: int) -> None:
    """Same thread count for everyone: BLAS threads of numpy (ort-core CPU) via threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(threads)


def make_session(config: str, path: str, threads: int):
    providers = CONFIGS[config]
    if providers is None:
        import onnxruntime

        so = onnxruntime.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        return onnxruntime.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    import ort_core

    so = ort_core.SessionOptions()
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.strict_providers", "1")
    return ort_core.InferenceSession(path, so, providers=providers)


def available_configs(requested: list[str]) -> list[str]:
    import ort_core

    avail = set(ort_core.get_available_providers())
    out = []
    for c in requested:
        providers = CONFIGS[c]
        if providers is None or all(p in avail for p in providers):
            out.append(c)
        else:
            print(
                f"# skipping {c}: {', '.join(p for p in providers if p not in avail)} not available",
                file=sys.stderr,
            )
    return out


def bench_model(
    name: str,
    configs: list[str],
    threads: int,
    rounds: int,
    warmup: int,
    gap_s: float = 0.05,
    block: int = 4,
) -> list[Result]:
    path, feed = load_benchmark_model(name)
    results = {c: Result(name, c) for c in configs}
    sessions = {}
    for c in configs:
        try:
            t0 = time.perf_counter()
            sessions[c] = make_session(c, path, threads)
            results[c].create_s = time.perf_counter() - t0
            for _ in range(warmup):
                sessions[c].run(None, feed)
        except Exception as e:  # a configuration that cannot run this model is reported, not fatal
            results[c].error = f"{type(e).__name__}: {str(e)[:200]}"
            sessions.pop(c, None)
    order = list(sessions.items())
    for k in range(rounds):
        # rotate the order each round, so no configuration always follows the same one
        for c, sess in order[k % len(order) :] + order[: k % len(order)]:
            sess.run(None, feed)  # untimed: wakes the runtime's threads after the gap
            for _ in range(block):
                t0 = time.perf_counter()
                sess.run(None, feed)
                results[c].samples.append(time.perf_counter() - t0)
            if gap_s > 0:
                time.sleep(gap_s)
    base = base_min = None
    for c in configs:
        r = results[c]
        if r.samples:
            r.runs = len(r.samples)
            r.median_ms = 1000 * statistics.median(r.samples)
            r.min_ms = 1000 * min(r.samples)
            r.p90_ms = 1000 * float(np.percentile(r.samples, 90))
        if c == "onnxruntime":
            base, base_min = r.median_ms, r.min_ms
    for r in results.values():
        if base and r.samples:
            r.ratio = r.median_ms / base
            r.min_ratio = r.min_ms / base_min
    return list(results.values())


def peak_memory(name: str, config: str, threads: int) -> float:
    """Peak RSS in MB of a fresh process that creates the session and runs it three times.

    The feed is prepared here and handed over in a file, so the child's peak is the session's own
    (plus the interpreter), not the cost of inspecting the model to build inputs.
    """
    import tempfile

    path, feed = load_benchmark_model(name)
    with tempfile.TemporaryDirectory() as tmp:
        feed_file = os.path.join(tmp, "feed.npz")
        np.savez(feed_file, **feed)
        code = "\n".join(
            [
                f"import sys; sys.path.insert(0, {HERE!r})",
                "import numpy as np",
                "from run import make_session, limit_threads",
                f"limit_threads({threads})",
                f"feed = dict(np.load({feed_file!r}))",
                f"s = make_session({config!r}, {path!r}, {threads})",
                "for _ in range(3): s.run(None, feed)",
                # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent
                # across fork and exec, so it would report this (large) process's peak
                "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))",
            ]
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        return float("nan")
    return int(proc.stdout.strip().splitlines()[-1]) / 1024.0


def geomean(values: list[float]) -> float:
    vals = [v for v in values if v == v and v > 0]
    return float(np.exp(np.mean(np.log(vals)))) if vals else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODEL_NAMES), help="comma-separated")
    ap.add_argument("--configs", default="onnxruntime,cpu,openvino,opencl,cuda")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--block", type=int, default=4, help="timed runs per configuration per round")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument(
        "--gap-ms",
        type=float,
        default=50.0,
        help="idle time after each block, so no runtime's spinning threads slow the next (default 50)",
    )
    ap.add_argument(
        "--memory", action="store_true", help="measure peak memory (subprocess per config)"
    )
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    limit_threads(args.threads)
    configs = ["onnxruntime"] + [c for c in args.configs.split(",") if c and c != "onnxruntime"]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    models = [m for m in args.models.split(",") if m]
    bad = [m for m in models if m not in MODEL_NAMES]
    if bad:
        ap.error(f"unknown model(s) {', '.join(bad)}; choose from {', '.join(MODEL_NAMES)}")
    configs = available_configs(configs)
    all_results: list[Result] = []
    header = (
        f"{'model':<14}{'config':<12}{'create s':>9}{'median ms':>11}{'p90 ms':>9}{'min ms':>9}"
    )
    header += f"{'x ort':>7}{'min x':>7}"
    header += f"{'peak MB':>9}" if args.memory else ""
    print(header)
    for name in models:
        for r in bench_model(
            name, configs, args.threads, args.rounds, args.warmup, args.gap_ms / 1000, args.block
        ):
            if args.memory and not r.error:
                r.peak_mb = peak_memory(name, r.config, args.threads)
            all_results.append(r)
            line = (
                f"{r.model:<14}{r.config:<12}{r.create_s:>9.2f}{r.median_ms:>11.2f}{r.p90_ms:>9.2f}"
            )
            line += f"{r.min_ms:>9.2f}{r.ratio:>7.2f}{r.min_ratio:>7.2f}"
            line += f"{r.peak_mb:>9.0f}" if args.memory else ""
            print(line + (f"  {r.error}" if r.error else ""), flush=True)
    print("\ngeometric mean of latency ratios to onnxruntime (medians; best runs):")
    for c in configs[1:]:
        mine = [r for r in all_results if r.config == c]
        print(
            f"  {c:<10} {geomean([r.ratio for r in mine]):.2f}x; "
            f"{geomean([r.min_ratio for r in mine]):.2f}x"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                [{k: v for k, v in asdict(r).items() if k != "samples"} for r in all_results],
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
