"""The ``ort-core`` command line: providers, run, inspect, demo."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence

import numpy as np

__all__ = ["main"]


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def cmd_providers(args: argparse.Namespace) -> int:
    from .plugins import get_plugin_manager

    pm = get_plugin_manager()
    rows = []
    for e in pm.ordered():
        a = e.availability()
        aliases = ",".join(e.aliases)
        rows.append([e.name, aliases, e.distribution, e.version, "yes" if a else "no", a.reason])
    for plugin, why in pm.broken.items():
        rows.append([f"({plugin})", "", "", "", "no", why])
    print(_table(rows, ["provider", "aliases", "distribution", "version", "available", "reason"]))
    return 0


def _parse_providers(value: str | None) -> list[str] | None:
    """The --providers list; without one, every available provider (the CLI shows what the
    installed providers do; the API's providers=None is onnxruntime's rule, the CPU provider)."""
    if value:
        return [p.strip() for p in value.split(",") if p.strip()]
    from .session import get_available_providers

    return get_available_providers()


def _load_input(spec: str) -> tuple[str, np.ndarray]:
    name, sep, path = spec.partition("=")
    if not sep:
        raise SystemExit(f"--input expects NAME=file.npy, got {spec!r}")
    return name, np.load(path, allow_pickle=False)


def cmd_run(args: argparse.Namespace) -> int:
    from .session import InferenceSession

    sess = InferenceSession(args.model, providers=_parse_providers(args.providers))
    feed = dict(_load_input(s) for s in args.input or [])
    t0 = time.perf_counter()
    outs = sess.run(None, feed)
    dt = time.perf_counter() - t0
    os.makedirs(args.output_dir, exist_ok=True)
    rows = []
    for meta, value in zip(sess.get_outputs(), outs):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in meta.name)
        path = os.path.join(args.output_dir, f"{safe}.npy")
        arr = np.asarray(value)
        np.save(path, arr, allow_pickle=arr.dtype == object)
        rows.append([meta.name, str(arr.dtype), str(list(arr.shape)), path])
    print(_table(rows, ["output", "dtype", "shape", "saved to"]))
    print(f"providers: {', '.join(sess.get_providers())}; run time {dt * 1000:.2f} ms")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from .session import InferenceSession

    sess = InferenceSession(args.model, providers=_parse_providers(args.providers))
    rows = []
    for sub in sess.placements:
        for n in sub.get_nodes():
            rows.append([n.name, (n.domain + "::" if n.domain else "") + n.op_type, sub.ep_name])
    print(_table(rows, ["node", "op", "provider"]))
    reasons = sess.placement_reasons
    if reasons:
        print("\nwhy providers declined nodes:")
        for node, why in reasons.items():
            print(f"  {node}: {'; '.join(why)}")
    refused = sess.refused_claims
    if refused:
        print("\nclaims the core refused:")
        for line in refused:
            print(f"  {line}")
    return 0


def _random_feed(sess) -> dict[str, np.ndarray]:
    """Inputs for a model: symbolic and unknown dims set to 1, random values of each input's type."""
    from .ir._core import _ELEM_NAMES

    rng = np.random.default_rng(0)
    names = {v: k for k, v in _ELEM_NAMES.items()}
    feed = {}
    for arg in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in (arg.shape or [])]
        elem = arg.type[len("tensor(") : -1] if arg.type.startswith("tensor(") else "float"
        dtype = np.dtype(onnx_helper().tensor_dtype_to_np_dtype(names.get(elem, 1)))
        if dtype.kind in "iu":
            feed[arg.name] = rng.integers(0, 2, shape).astype(dtype)
        elif dtype.kind == "b":
            feed[arg.name] = rng.integers(0, 2, shape).astype(bool)
        else:
            feed[arg.name] = rng.standard_normal(shape).astype(dtype)
    return feed


def onnx_helper():
    from onnx import helper

    return helper


def _progress(done: int, total: int, width: int = 30) -> None:
    filled = int(width * done / total)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} runs")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def cmd_perf(args: argparse.Namespace) -> int:
    """Latency percentiles and the ops that take the most time (from the profiler)."""
    import json
    import tempfile

    from .session import InferenceSession, SessionOptions

    so = SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "perf")
    if args.threads:
        so.intra_op_num_threads = args.threads
    t0 = time.perf_counter()
    sess = InferenceSession(args.model, so, providers=_parse_providers(args.providers))
    created = time.perf_counter() - t0
    feed = dict(_load_input(s) for s in args.input or []) or _random_feed(sess)
    for _ in range(args.warmup):
        sess.run(None, feed)
    times = []
    for i in range(args.runs):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t)
        if not args.quiet:
            _progress(i + 1, args.runs)
    with open(sess.end_profiling()) as f:
        events = [e for e in json.load(f) if e.get("cat") == "Node"]
    ms = np.array(times) * 1000
    print(f"model: {args.model}\nproviders: {', '.join(sess.get_providers())}")
    print(
        f"session creation: {created * 1000:.1f} ms; {args.runs} runs after {args.warmup} warm-up"
    )
    pct = "  ".join(f"p{p}={np.percentile(ms, p):.2f}" for p in (50, 90, 95, 99))
    print(f"latency ms: mean={ms.mean():.2f}  min={ms.min():.2f}  {pct}  max={ms.max():.2f}")
    by_op: dict[tuple[str, str], list[float]] = {}
    for e in events:
        key = (e["args"]["op_name"], e["args"]["provider"])
        by_op.setdefault(key, []).append(e["dur"] / 1000.0)
    total = sum(sum(v) for v in by_op.values()) or 1.0
    rows = sorted(by_op.items(), key=lambda kv: -sum(kv[1]))[: args.top]
    table = [
        [
            op,
            prov.replace("ExecutionProvider", ""),
            str(len(v) // max(1, args.runs + args.warmup)),
            f"{sum(v) / len(v):.3f}",
            f"{100 * sum(v) / total:.1f}%",
        ]
        for (op, prov), v in rows
    ]
    print(f"\ntop {len(table)} ops by time:")
    print(_table(table, ["op", "provider", "nodes", "mean ms/call", "share"]))
    return 0


class _StdoutToStderr:
    """Points file descriptor 1 at stderr while the demo runs: what a runtime library prints
    (OpenVINO, PoCL and onnxruntime write from C++) must not garble the table on stdout."""

    def __enter__(self) -> None:
        sys.stdout.flush()
        try:
            self._saved = os.dup(1)
        except OSError:  # no descriptor 1 (a GUI process): nothing to protect
            self._saved = None
            return
        os.dup2(2, 1)

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            sys.stdout.flush()
            os.dup2(self._saved, 1)
            os.close(self._saved)


def _demo_progress(step: int, steps: int, what: str) -> None:
    if sys.stderr.isatty():
        end = "\n" if step == steps else ""
        sys.stderr.write(f"\r\033[K[{step}/{steps}] {what}{end}")
        sys.stderr.flush()


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import LIGHT_MODELS, format_report, run_demo
    from .plugins import get_plugin_manager
    from .session import get_available_providers

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    unknown = sorted(set(models or []) - set(LIGHT_MODELS))
    if unknown:
        raise SystemExit(f"unknown light models {unknown}; choose from {', '.join(LIGHT_MODELS)}")
    providers = _parse_providers(args.providers) or get_available_providers()
    pm = get_plugin_manager()
    for name in providers:
        entry = pm.resolve(name)
        if entry is None:
            raise SystemExit(f"unknown provider {name!r}; see `ort-core providers`")
        available = entry.availability()
        if not available:
            raise SystemExit(f"{entry.name} is not available: {available.reason}")
    with _StdoutToStderr():
        report = run_demo(
            models or list(LIGHT_MODELS),
            providers,
            repeat=args.repeat,
            onnxruntime=not args.no_onnxruntime,
            progress=_demo_progress,
        )
    print(format_report(report))
    return 1 if report.failures and args.check else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ort-core", description="ort-core: ONNX Runtime as plugins"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("providers", help="list installed providers and whether they are available")
    p.set_defaults(fn=cmd_providers)
    p = sub.add_parser("run", help="run a model on .npy inputs and save its outputs as .npy")
    p.add_argument("model")
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy")
    p.add_argument(
        "--providers", help="comma-separated, in priority order (default: every available one)"
    )
    p.add_argument("--output-dir", default=".", help="where to save OUTPUT.npy files")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("inspect", help="show which provider runs which node, and why")
    p.add_argument("model")
    p.add_argument("--providers")
    p.set_defaults(fn=cmd_inspect)
    p = sub.add_parser("perf", help="latency percentiles and the top ops by time")
    p.add_argument("model")
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy", help="default: random")
    p.add_argument("--providers")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_perf)
    p = sub.add_parser(
        "demo", help="run the light models of the onnx wheel on every available provider"
    )
    p.add_argument("--providers", help="comma-separated (default: every available provider)")
    p.add_argument("--models", help="comma-separated subset of the light models")
    p.add_argument(
        "--repeat", type=int, default=3, help="timed runs after one warm-up (fewer past 1 s)"
    )
    p.add_argument(
        "--no-onnxruntime",
        action="store_true",
        help="do not run onnxruntime (by default, when it is importable, it gives the reference"
        " logits and the latency each provider is compared with)",
    )
    p.add_argument("--check", action="store_true", help="exit with status 1 when a run FAILs")
    p.set_defaults(fn=cmd_demo)
    # subcommands of optional parts: their modules import only the standard library here
    from .quantization.cli import add_parsers as add_quantization_parsers
    from .serve.cli import add_parsers as add_serve_parsers

    add_quantization_parsers(sub)
    add_serve_parsers(sub)
    args = parser.parse_args(argv)
    from .errors import OrtError

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        try:
            return args.fn(args)
        except OrtError as e:
            print(f"ort-core: error: {type(e).__name__}: {e}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
