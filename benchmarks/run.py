"""Benchmark ort-core against onnxruntime on the same models, in one process, same thread count.

Models come in kinds (models.py): ``sklearn``, ``recurrent``, ``small_cnn``, ``quantized``,
``decoder`` and ``big``; ``--kinds`` chooses kinds, ``--models`` single models. For each model:
onnxruntime's CPU provider, then ort-core with each requested provider configuration. Runs are interleaved in blocks so that machine noise hits all configurations alike: each round
runs every configuration in turn, a block of timed runs back to back (after one untimed run), as
a user's loop would, then an idle gap (``--gap-ms``). The gap matters: onnxruntime's worker threads
keep spinning for a while after a run returns and would take a core from whatever runs next
(measured here: ort-core's squeezenet 2.5x slower right after an onnxruntime run), and the untimed
run matters too: after the gap onnxruntime's first run pays for waking its parked threads. Neither
is something a user of one runtime sees. A block has ``--block`` runs; a configuration whose warm
run is fast gets more (enough to fill ``--min-block-ms``, at most ``--max-block``), one whose run is
slow fewer (down to one, to stay within ``--max-block-ms``, and no untimed run when a run takes over
50 ms), so that tiny models are not timer noise and big ones do not take all day. Prints
session-creation time, the first run's latency, median latency and the ratio to onnxruntime, then
the geometric mean of the ratios per kind and overall; with ``--memory`` also peak memory, import
time and the first session's creation in a fresh process (one subprocess per configuration).

    python benchmarks/run.py                                  # every kind, 2 threads, cpu + openvino
    python benchmarks/run.py --threads 1,2 --kinds sklearn,recurrent --json out.json
    python benchmarks/run.py --models squeezenet,resnet50 --configs cpu,openvino,opencl

onnxruntime is only a comparison point: it is imported here, never by ort-core.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from models import KINDS, MODEL_NAMES, kind_of, load_benchmark_model  # noqa: E402

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
    kind: str = ""
    threads: int = 0
    create_s: float = float("nan")
    first_ms: float = float("nan")  # the first run after creation
    median_ms: float = float("nan")
    min_ms: float = float("nan")
    p90_ms: float = float("nan")
    ratio: float = float("nan")  # median / onnxruntime median
    min_ratio: float = float("nan")  # best run / onnxruntime's best run
    create_ratio: float = float("nan")
    first_ratio: float = float("nan")
    # --memory, in a fresh process: peak RSS, import of the runtime, first session, first run
    peak_mb: float = float("nan")
    cold_import_s: float = float("nan")
    cold_create_s: float = float("nan")
    cold_first_ms: float = float("nan")
    peak_ratio: float = float("nan")
    cold_ratio: float = float("nan")  # import + first session, to onnxruntime's
    error: str = ""
    runs: int = 0
    block: int = 0
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


#: slower runs than this skip the untimed run before each block: waking a runtime's parked threads
#: costs well under a millisecond, nothing next to such a run
WAKE_BELOW_S = 0.05


def block_size(
    latency: float, block: int, min_block_s: float, max_block_s: float, max_block: int
) -> int:
    """Timed runs per block for a configuration whose warm run takes ``latency`` seconds: ``block``,
    more for fast runs (a block lasts ``min_block_s``, at most ``max_block`` runs), fewer for slow
    ones (a block lasts at most ``max_block_s``, at least one run)."""
    if min_block_s > 0 and latency * block < min_block_s:
        return min(max_block, max(block, math.ceil(min_block_s / max(latency, 1e-7))))
    if max_block_s > 0 and latency * block > max_block_s:
        return max(1, int(max_block_s / latency))
    return block


def bench_model(
    name: str,
    configs: list[str],
    threads: int,
    rounds: int,
    warmup: int,
    gap_s: float = 0.05,
    block: int = 4,
    min_block_s: float = 0.0,
    max_block_s: float = 0.0,
    max_block: int = 200,
) -> list[Result]:
    path, feed = load_benchmark_model(name)
    results = {c: Result(name, c, kind_of(name), threads) for c in configs}
    sessions, blocks, wake = {}, {}, {}
    for c in configs:
        try:
            t0 = time.perf_counter()
            sessions[c] = make_session(c, path, threads)
            results[c].create_s = time.perf_counter() - t0
            warm = []
            for _ in range(max(1, warmup)):
                t0 = time.perf_counter()
                sessions[c].run(None, feed)
                warm.append(time.perf_counter() - t0)
            results[c].first_ms = 1000 * warm[0]
            latency = min(warm[1:] or warm)
            blocks[c] = block_size(latency, block, min_block_s, max_block_s, max_block)
            wake[c] = latency < WAKE_BELOW_S
            results[c].block = blocks[c]
        except Exception as e:  # a configuration that cannot run this model is reported, not fatal
            results[c].error = f"{type(e).__name__}: {str(e)[:200]}"
            sessions.pop(c, None)
    order = list(sessions.items())
    for k in range(rounds):
        # rotate the order each round, so no configuration always follows the same one
        for c, sess in order[k % len(order) :] + order[: k % len(order)]:
            if wake[c]:
                sess.run(None, feed)  # untimed: wakes the runtime's threads after the gap
            for _ in range(blocks[c]):
                t0 = time.perf_counter()
                sess.run(None, feed)
                results[c].samples.append(time.perf_counter() - t0)
            if gap_s > 0:
                time.sleep(gap_s)
    sessions.clear()
    base = results.get("onnxruntime")
    for c in configs:
        r = results[c]
        if r.samples:
            r.runs = len(r.samples)
            r.median_ms = 1000 * statistics.median(r.samples)
            r.min_ms = 1000 * min(r.samples)
            r.p90_ms = 1000 * float(np.percentile(r.samples, 90))
    for r in results.values():
        if base is not None and base.samples and r.samples:
            r.ratio = r.median_ms / base.median_ms
            r.min_ratio = r.min_ms / base.min_ms
            r.create_ratio = r.create_s / base.create_s
            r.first_ratio = r.first_ms / base.first_ms
    return list(results.values())


_CHILD = """
import json, sys, time
import numpy as np
from threadpoolctl import threadpool_limits
threadpool_limits({threads})
feed = dict(np.load({feed!r}))
t0 = time.perf_counter()
import {module} as rt
rt.InferenceSession, rt.SessionOptions  # what `from <runtime> import InferenceSession` loads
t1 = time.perf_counter()
so = rt.SessionOptions()
so.intra_op_num_threads = {threads}
{extra}
s = rt.InferenceSession({path!r}, so, providers={providers!r})
t2 = time.perf_counter()
s.run(None, feed)
t3 = time.perf_counter()
for _ in range(2):
    s.run(None, feed)
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent across fork and
# exec, so it would report the (large) benchmark process's peak
peak = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps(dict(peak_kb=int(peak), import_s=t1 - t0, create_s=t2 - t1, first_s=t3 - t2)))
"""


_PYCACHE = "ort_core_bench_pycache"
#: fresh processes measured per model and configuration (their median is reported)
FRESH_RUNS = 3
_PRIMED: set[str] = set()


def fresh_process(name: str, config: str, threads: int) -> dict[str, float]:
    """Fresh processes that import the runtime, create the session and run it three times: their
    peak RSS (MB), the import time, the first session's creation and the first run (medians of
    :data:`FRESH_RUNS` processes).

    The child imports nothing but numpy, threadpoolctl and the runtime (not this script, which
    pulls in onnx and the model generators), and the feed is prepared here and handed over in a
    file, so the peak is the session's own plus the interpreter's. It writes and reads compiled
    bytecode in a cache under the temp dir, as an installed package has it, even where the
    environment turns bytecode files off (PYTHONDONTWRITEBYTECODE): compiling ort-core's sources
    on every start would be counted as start-up otherwise. Each configuration's first child only
    fills that cache, and is run again.
    """
    import tempfile

    path, feed = load_benchmark_model(name)
    providers = CONFIGS[config]
    if providers is None:
        module, extra, providers = (
            "onnxruntime",
            "so.inter_op_num_threads = 1",
            ["CPUExecutionProvider"],
        )
    else:
        module, extra = "ort_core", 'so.add_session_config_entry("session.strict_providers", "1")'
    with tempfile.TemporaryDirectory() as tmp:
        feed_file = os.path.join(tmp, "feed.npz")
        np.savez(feed_file, **feed)
        code = _CHILD.format(
            threads=threads,
            feed=feed_file,
            module=module,
            extra=extra,
            path=path,
            providers=providers,
        )
        env = dict(os.environ, PYTHONPYCACHEPREFIX=os.path.join(tempfile.gettempdir(), _PYCACHE))
        env.pop("PYTHONDONTWRITEBYTECODE", None)

        def child() -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, env=env
            )

        for _ in range(1 if config in _PRIMED else 2):
            proc = child()
        _PRIMED.add(config)
        if module == "ort_core" and _save_kernels(env):
            # the CPU provider's kernels this model compiled are saved now (ort_cpu/_aot.py,
            # which a process leaves to a background builder): measure the next processes
            proc = child()
        if proc.returncode != 0:
            return {}
        # the median of FRESH_RUNS processes: one process's start varies by 30% here
        outs = [json.loads(proc.stdout.strip().splitlines()[-1])]
        for _ in range(FRESH_RUNS - 1):
            proc = child()
            if proc.returncode != 0:
                return {}
            outs.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    def median(key: str) -> float:
        return statistics.median(o[key] for o in outs)

    return {
        "peak_mb": median("peak_kb") / 1024.0,
        "cold_import_s": median("import_s"),
        "cold_create_s": median("create_s"),
        "cold_first_ms": 1000 * median("first_s"),
    }


def _save_kernels(env: dict) -> bool:
    """Wait for the CPU provider's kernel builder and build what the last process left (see
    ``ort_cpu/_aot.py``); whether a build ran (False where the library is off)."""
    if os.environ.get("ORT_CPU_AOT", "1").strip() == "0":
        return False
    proc = subprocess.run(
        [sys.executable, "-m", "ort_cpu._aot_build", "--wait"],
        capture_output=True,
        text=True,
        env=env,
    )
    return proc.returncode == 0


def peak_memory(name: str, config: str, threads: int) -> float:
    """Peak RSS in MB of a fresh process that creates the session and runs it three times."""
    return fresh_process(name, config, threads).get("peak_mb", float("nan"))


def geomean(values: list[float]) -> float:
    vals = [v for v in values if v == v and v > 0]
    return float(np.exp(np.mean(np.log(vals)))) if vals else float("nan")


RATIOS = ("ratio", "min_ratio", "create_ratio", "first_ratio")
MEMORY_RATIOS = ("peak_ratio", "cold_ratio")


def _means(results: list[Result], config: str) -> dict:
    mine = [r for r in results if r.config == config]
    return {f: geomean([getattr(r, f) for r in mine]) for f in RATIOS + MEMORY_RATIOS} | {
        "failed": sum(1 for r in mine if r.error)
    }


def summarize(results: list[Result], configs: list[str]) -> dict:
    """{threads: {kind | "all models" | "kinds": {config: {ratio, min_ratio, ...}}}}: geometric
    means of each ratio over the models of a kind, over all models, and over the kinds' means
    (every kind weighs the same, however many models it has)."""
    out: dict = {}
    for threads in sorted({r.threads for r in results}):
        rows: dict = {}
        mine = [r for r in results if r.threads == threads]
        kinds = [k for k in [*KINDS, "other"] if any(r.kind == k for r in mine)]
        for kind in kinds:
            rows[kind] = {c: _means([r for r in mine if r.kind == kind], c) for c in configs[1:]}
        rows["all models"] = {c: _means(mine, c) for c in configs[1:]}
        rows["kinds"] = {
            c: {f: geomean([rows[k][c][f] for k in kinds]) for f in RATIOS + MEMORY_RATIOS}
            | {"failed": rows["all models"][c]["failed"]}
            for c in configs[1:]
        }
        out[threads] = rows
    return out


def print_summary(summary: dict, configs: list[str], memory: bool) -> None:
    fields = RATIOS + (MEMORY_RATIOS if memory else ())
    names = ("median", "best", "create", "first", "peak", "cold")[: len(fields)]
    for threads, rows in summary.items():
        print(
            f"\ngeometric mean of ratios to onnxruntime at {threads} thread(s), per configuration:"
            " median latency, best run, session creation, first run"
            + (", peak memory, import + first session in a fresh process" if memory else "")
        )
        print(f"{'':<12}" + "".join(f"{c:^{8 * len(fields)}}" for c in configs[1:]))
        print(f"{'kind':<12}" + "".join(f"{n:>8}" for n in names) * (len(configs) - 1))
        for kind, cols in rows.items():
            print(
                f"{kind:<12}" + "".join(f"{cols[c][f]:>8.2f}" for c in configs[1:] for f in fields)
            )
        for c in configs[1:]:
            if rows["all models"][c]["failed"]:
                print(
                    f"# {c}: {rows['all models'][c]['failed']} model(s) failed, left out of its"
                    " means (see the error in their rows)"
                )


def print_row(r: Result, memory: bool) -> None:
    line = f"{r.model:<22}{r.config:<12}{r.create_s:>9.3f}{r.first_ms:>10.2f}{r.median_ms:>11.3f}"
    line += f"{r.p90_ms:>10.3f}{r.min_ms:>10.3f}{r.ratio:>7.2f}{r.min_ratio:>7.2f}"
    if memory:
        line += f"{r.peak_mb:>9.0f}{r.cold_import_s:>9.2f}{r.cold_create_s:>9.3f}"
    print(line + (f"  {r.error}" if r.error else ""), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated: {', '.join(KINDS)}")
    ap.add_argument("--models", default="", help="comma-separated model names (instead of --kinds)")
    ap.add_argument(
        "--configs", default="cpu,openvino", help=f"comma-separated: {', '.join(list(CONFIGS)[1:])}"
    )
    ap.add_argument("--threads", default="2", help="thread count(s), comma-separated: 1,2")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--block", type=int, default=4, help="timed runs per configuration per round")
    ap.add_argument(
        "--min-block-ms",
        type=float,
        default=20.0,
        help="fast models get more runs per block, to make a block this long (0: off)",
    )
    ap.add_argument(
        "--max-block-ms",
        type=float,
        default=500.0,
        help="slow models get fewer runs per block, down to one, to keep a block this long (0: off)",
    )
    ap.add_argument("--max-block", type=int, default=200, help="most runs in a block")
    ap.add_argument(
        "--warmup", type=int, default=2, help="runs before the rounds; the first is the first run"
    )
    ap.add_argument(
        "--gap-ms",
        type=float,
        default=50.0,
        help="idle time after each block, so no runtime's spinning threads slow the next (default 50)",
    )
    ap.add_argument(
        "--memory",
        action="store_true",
        help="peak memory, import and first-session time in a fresh process (one per config)",
    )
    ap.add_argument("--json", help="write the results and the summary here")
    args = ap.parse_args(argv)
    configs = ["onnxruntime"] + [c for c in args.configs.split(",") if c and c != "onnxruntime"]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    if args.models:
        models = [m for m in args.models.split(",") if m]
        bad = [m for m in models if m not in MODEL_NAMES]
        if bad:
            ap.error(f"unknown model(s) {', '.join(bad)}; choose from {', '.join(MODEL_NAMES)}")
    else:
        kinds = [k for k in args.kinds.split(",") if k]
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            ap.error(f"unknown kind(s) {', '.join(bad)}; choose from {', '.join(KINDS)}")
        models = [m for k in kinds for m in KINDS[k]]
    thread_counts = [int(t) for t in args.threads.split(",") if t]
    configs = available_configs(configs)
    import onnxruntime  # noqa: F401  both runtimes imported before any session is timed

    all_results: list[Result] = []
    header = f"{'model':<22}{'config':<12}{'create s':>9}{'first ms':>10}{'median ms':>11}"
    header += f"{'p90 ms':>10}{'min ms':>10}{'x ort':>7}{'min x':>7}"
    header += f"{'peak MB':>9}{'import s':>9}{'cold s':>9}" if args.memory else ""
    for threads in thread_counts:
        limit_threads(threads)
        kind = None
        for name in models:
            if kind_of(name) != kind:
                kind = kind_of(name)
                print(f"\n## {kind}, {threads} thread(s)\n{header}", flush=True)
            results = bench_model(
                name,
                configs,
                threads,
                args.rounds,
                args.warmup,
                args.gap_ms / 1000,
                args.block,
                args.min_block_ms / 1000,
                args.max_block_ms / 1000,
                args.max_block,
            )
            for r in results:
                if args.memory and not r.error:
                    for k, v in fresh_process(name, r.config, threads).items():
                        setattr(r, k, v)
                    base = results[0]  # onnxruntime
                    r.peak_ratio = r.peak_mb / base.peak_mb
                    r.cold_ratio = (r.cold_import_s + r.cold_create_s) / (
                        base.cold_import_s + base.cold_create_s
                    )
                all_results.append(r)
                print_row(r, args.memory)
    summary = summarize(all_results, configs)
    print_summary(summary, configs, args.memory)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "settings": vars(args) | {"configs": configs, "versions": _versions()},
                    "results": [
                        {k: v for k, v in asdict(r).items() if k != "samples"} for r in all_results
                    ],
                    "summary": summary,
                },
                f,
                indent=1,
            )
    return 0


def _versions() -> dict[str, str]:
    import onnxruntime

    import ort_core

    return {
        "onnxruntime": onnxruntime.__version__,
        "ort_core": getattr(ort_core, "__version__", ""),
    }


if __name__ == "__main__":
    sys.exit(main())
