"""The ``quantize``, ``float16`` and ``compare`` subcommands of the ``ort-core`` command line.

``add_parsers(subparsers)`` registers them; each sets ``fn`` to a callable(args) -> int. This
module imports only the standard library at top level so ``ort-core --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os

__all__ = ["add_parsers"]

_METHODS = {
    "minmax": "MinMax",
    "entropy": "Entropy",
    "percentile": "Percentile",
    "distribution": "Distribution",
}
_TYPES = ("QInt8", "QUInt8", "QInt16", "QUInt16", "QInt4", "QUInt4")


def _names(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _size(path: str) -> int:
    total = os.path.getsize(path)
    data = path + ".data"
    return total + (os.path.getsize(data) if os.path.exists(data) else 0)


def _mb(n: int) -> str:
    return f"{n / 1e6:.3f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _report_size(before: str, after: str) -> None:
    a, b = _size(before), _size(after)
    print(f"size: {_mb(a)} -> {_mb(b)} ({b / a * 100:.1f}%)")


def _report_accuracy(float_path: str, other_path: str, feeds, providers) -> int:
    import onnx

    from ._tools import compare_outputs

    ref, other = onnx.load(float_path), onnx.load(other_path)
    try:
        accs = compare_outputs(ref, other, feeds, providers)
    except Exception as exc:  # the model was written; say why it could not be measured
        print(f"accuracy: could not run the models in ort-core ({type(exc).__name__}: {exc})")
        return 1
    for out, acc in zip(ref.graph.output, accs):
        print(f"accuracy on {len(feeds)} batch(es), output {out.name!r}: {acc}")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    import onnx

    from . import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from ._tools import load_feeds, random_feed

    model = onnx.load(args.model)
    mode = args.mode or ("static" if args.calibration_dir else "dynamic")
    feeds = load_feeds(args.calibration_dir, model) if args.calibration_dir else None
    common = dict(
        op_types_to_quantize=_names(args.op_types),
        per_channel=args.per_channel,
        reduce_range=args.reduce_range,
        weight_type=QuantType.from_string(args.weight_type),
        nodes_to_exclude=_names(args.nodes_to_exclude),
    )
    if mode == "static":
        if feeds is None:
            raise SystemExit("static quantization needs --calibration-dir with .npy inputs")

        class Reader:
            def __init__(self):
                self.it = iter(feeds)

            def get_next(self):
                return next(self.it, None)

            def __iter__(self):
                return iter(feeds)

        quantize_static(
            args.model,
            args.output,
            Reader(),
            quant_format=QuantFormat.QDQ if args.format == "qdq" else QuantFormat.QOperator,
            activation_type=QuantType.from_string(args.activation_type),
            calibrate_method=CalibrationMethod[_METHODS[args.method]],
            calibration_providers=_names(args.providers),
            **common,
        )
    else:
        if args.format == "qdq" and args.format_given:
            raise SystemExit(
                "dynamic quantization writes integer ops (QOperator); drop --format qdq"
            )
        quantize_dynamic(args.model, args.output, **common)
    print(f"wrote {args.output} ({mode} quantization)")
    _report_size(args.model, args.output)
    eval_feeds = feeds or [random_feed(model, seed=0)]
    if feeds is None:
        print("accuracy measured on one random input (give --calibration-dir for real inputs)")
    return _report_accuracy(args.model, args.output, eval_feeds, _names(args.providers))


def cmd_float16(args: argparse.Namespace) -> int:
    import onnx

    from ._tools import load_feeds, random_feed
    from .float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_bfloat16, convert_float_to_float16

    model = onnx.load(args.model)
    block = _names(args.op_block_list)
    if block is not None and args.extend_default_block_list:
        block = DEFAULT_OP_BLOCK_LIST + block
    kw = dict(
        keep_io_types=args.keep_io_types,
        op_block_list=block,
        node_block_list=_names(args.node_block_list),
    )
    if args.bfloat16:
        converted = convert_float_to_bfloat16(model, **kw)
    else:
        converted = convert_float_to_float16(model, **kw)
    onnx.checker.check_model(converted)
    onnx.save_model(converted, args.output)
    print(f"wrote {args.output} ({'bfloat16' if args.bfloat16 else 'float16'})")
    _report_size(args.model, args.output)
    if args.inputs_dir:
        feeds = load_feeds(args.inputs_dir, model)
    else:
        feeds = [random_feed(model, seed=0)]
        print("accuracy measured on one random input (give --inputs-dir for real inputs)")
    return _report_accuracy(args.model, args.output, feeds, _names(args.providers))


def cmd_compare(args: argparse.Namespace) -> int:
    import onnx

    from ._tools import load_feeds, node_by_node, random_feed

    model = onnx.load(args.model)
    providers = _names(args.providers) or ["CPUExecutionProvider"]
    if args.against:
        other = onnx.load(args.against)
        if len(providers) > 1:
            raise SystemExit("with --against give one provider (both models run on it)")
        pa = pb = providers
        label = f"{args.model} vs {args.against} on {providers[0]}"
    else:
        if len(providers) != 2:
            raise SystemExit("compare a model on two providers: --providers A,B (or use --against)")
        other = model
        pa, pb = [providers[0]], [providers[1]]
        label = f"{args.model} on {providers[0]} vs {providers[1]}"
    feed = (
        load_feeds(args.inputs_dir, model)[0] if args.inputs_dir else random_feed(model, args.seed)
    )
    diffs = node_by_node(model, other, feed, pa, pb, rtol=args.rtol, atol=args.atol)
    print(
        f"compare {label}: {len(diffs)} tensors matched by name (rtol={args.rtol}, atol={args.atol})"
    )
    first = next((d for d in diffs if d.diverged), None)
    rows = diffs if args.all else [d for d in diffs if d.diverged][: args.limit]
    if rows:
        w = max(len(d.name) for d in rows)
        print(f"{'tensor'.ljust(w)}  {'max abs':>10}  {'max rel':>10}  status     produced by")
        for d in rows:
            status = "DIVERGED" if d.diverged else "ok"
            print(f"{d.name.ljust(w)}  {d.max_abs:10.4g}  {d.max_rel:10.4g}  {status:<9}  {d.node}")
    if first is None:
        print("no tensor diverges beyond tolerance")
        return 0
    print(
        f"first divergence: tensor {first.name!r} produced by {first.node} (max abs {first.max_abs:.4g})"
    )
    return 1


class _FormatAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.format_given = True


def add_parsers(subparsers) -> None:
    """Register ``quantize``, ``float16`` and ``compare`` on an argparse subparsers object."""
    q = subparsers.add_parser(
        "quantize",
        help="quantize a model (dynamic, or static with calibration inputs)",
        description="Quantize MODEL to OUTPUT with ort_core.quantization, then print the size "
        "before and after and the accuracy against the float model on the given inputs.",
    )
    q.add_argument("model")
    q.add_argument("output")
    q.add_argument(
        "--mode",
        choices=["dynamic", "static"],
        help="default: static when --calibration-dir is given",
    )
    q.add_argument(
        "--calibration-dir",
        help="folder of <input>.npy files (one batch), or of sub-folders holding them (one batch each)",
    )
    q.add_argument("--format", choices=["qdq", "qoperator"], default="qdq", action=_FormatAction)
    q.add_argument("--per-channel", action="store_true")
    q.add_argument("--reduce-range", action="store_true")
    q.add_argument("--weight-type", choices=_TYPES, default="QInt8")
    q.add_argument("--activation-type", choices=_TYPES, default="QInt8")
    q.add_argument(
        "--method", choices=sorted(_METHODS), default="minmax", help="calibration method"
    )
    q.add_argument(
        "--op-types", help="comma-separated op types to quantize (default: all supported)"
    )
    q.add_argument("--nodes-to-exclude", help="comma-separated node names to leave in float")
    q.add_argument(
        "--providers", help="comma-separated providers for calibration and the accuracy check"
    )
    q.set_defaults(fn=cmd_quantize, format_given=False)

    f = subparsers.add_parser(
        "float16",
        help="convert a model to float16 (or bfloat16)",
        description="Convert MODEL to float16 with mixed precision, then print the size before and "
        "after and the accuracy against the float model.",
    )
    f.add_argument("model")
    f.add_argument("output")
    f.add_argument("--keep-io-types", action="store_true", help="keep float32 inputs and outputs")
    f.add_argument(
        "--op-block-list",
        help="comma-separated op types to keep in float32 (replaces the default list)",
    )
    f.add_argument(
        "--extend-default-block-list",
        action="store_true",
        help="add --op-block-list to the default list instead of replacing it",
    )
    f.add_argument("--node-block-list", help="comma-separated node names to keep in float32")
    f.add_argument("--bfloat16", action="store_true", help="convert to bfloat16 instead")
    f.add_argument("--inputs-dir", help="folder of <input>.npy files to measure accuracy on")
    f.add_argument("--providers", help="comma-separated providers for the accuracy check")
    f.set_defaults(fn=cmd_float16)

    c = subparsers.add_parser(
        "compare",
        help="find the first node where two runs of a model diverge",
        description="Run MODEL on two providers (--providers A,B), or MODEL against its quantized or "
        "float16 version (--against OTHER), with every intermediate tensor exposed; match tensors by "
        "name and report where they first diverge beyond tolerance. Exit status 1 when they do.",
    )
    c.add_argument("model")
    c.add_argument("--against", help="a model derived from MODEL (quantized, float16...)")
    c.add_argument("--providers", help="two providers, or one with --against (default CPU)")
    c.add_argument("--inputs-dir", help="folder of <input>.npy files (default: random inputs)")
    c.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    c.add_argument("--rtol", type=float, default=1e-3)
    c.add_argument("--atol", type=float, default=1e-4)
    c.add_argument("--limit", type=int, default=20, help="divergent tensors to list")
    c.add_argument("--all", action="store_true", help="list every matched tensor")
    c.set_defaults(fn=cmd_compare)
