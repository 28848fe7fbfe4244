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
        aliases = ",".join(e.cls.aliases)
        rows.append([e.name, aliases, e.distribution, e.version, "yes" if a else "no", a.reason])
    for plugin, why in pm.broken.items():
        rows.append([f"({plugin})", "", "", "", "no", why])
    print(_table(rows, ["provider", "aliases", "distribution", "version", "available", "reason"]))
    return 0


def _parse_providers(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value else None


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
    for sub in sess.get_provider_graph_assignment_info():
        for n in sub.get_nodes():
            rows.append([n.name, (n.domain + "::" if n.domain else "") + n.op_type, sub.ep_name])
    print(_table(rows, ["node", "op", "provider"]))
    reasons = sess.placement_reasons
    if reasons:
        print("\nwhy providers declined nodes:")
        for node, why in reasons.items():
            print(f"  {node}: {'; '.join(why)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import LIGHT_MODELS, run_light_model
    from .session import get_available_providers

    models = args.models.split(",") if args.models else list(LIGHT_MODELS)
    configs = [[p] for p in (_parse_providers(args.providers) or get_available_providers())]
    rows, failures = [], 0
    for name in models:
        for providers in configs:
            r = run_light_model(name, providers, repeat=args.repeat)
            failures += not r.ok
            nodes = ", ".join(
                f"{k.replace('ExecutionProvider', '')}:{v}" for k, v in r.nodes.items()
            )
            rows.append(
                [
                    r.model,
                    ",".join(p.replace("ExecutionProvider", "") for p in r.providers),
                    nodes,
                    f"{r.latency_ms:.1f}",
                    f"{r.max_error:.2e}",
                    "OK" if r.ok else "FAIL",
                ]
            )
            if r.error:
                rows[-1].append(r.error[:200])
    header = ["model", "providers", "nodes per provider", "latency ms", "max error", "result"]
    if any(len(r) > 6 for r in rows):
        header.append("error")
        rows = [r + [""] * (7 - len(r)) for r in rows]
    print(_table(rows, header))
    print(f"\n{len(rows) - failures} OK, {failures} FAIL")
    return 1 if failures and args.check else 0


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
    p.add_argument("--providers", help="comma-separated, in priority order")
    p.add_argument("--output-dir", default=".", help="where to save OUTPUT.npy files")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("inspect", help="show which provider runs which node, and why")
    p.add_argument("model")
    p.add_argument("--providers")
    p.set_defaults(fn=cmd_inspect)
    p = sub.add_parser(
        "demo", help="run the light models of the onnx wheel on every available provider"
    )
    p.add_argument("--providers", help="comma-separated (default: every available provider)")
    p.add_argument("--models", help="comma-separated subset of the light models")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--check", action="store_true", help="exit with status 1 when a row FAILs")
    p.set_defaults(fn=cmd_demo)
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
