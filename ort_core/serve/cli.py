"""The ``serve`` subcommand of the ``ort-core`` command line.

Only the standard library is imported here; the server's packages load when the command runs.
``ort_core.cli`` calls :func:`add_parsers` with its subparsers.
"""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["add_parsers", "cmd_serve"]


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def _port(value: str) -> int | None:
    if value.lower() in ("none", "off"):
        return None
    n = int(value)
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535 (0: any free port), got {n}")
    return n


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``serve`` on an argparse subparsers object (``set_defaults(fn=cmd_serve)``)."""
    p = subparsers.add_parser(
        "serve",
        help="serve models over the Open Inference Protocol (KServe v2 / Triton), HTTP and gRPC",
        description=(
            "Serve a model file or a Triton-style model repository (<repo>/<model>/<version>/"
            "model.onnx, optional <repo>/<model>/config.pbtxt) over HTTP/REST and gRPC. "
            "Needs the serve extra: pip install 'ort-core[serve]'."
        ),
    )
    p.add_argument("model", help="a .onnx file or a model repository folder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--http-port", type=_port, default=8000, help="HTTP port; 'off' disables")
    p.add_argument("--grpc-port", type=_port, default=8001, help="gRPC port; 'off' disables")
    p.add_argument(
        "--providers",
        help="default providers, comma-separated (models' config.pbtxt may name their own)",
    )
    p.add_argument(
        "--max-request-bytes",
        type=_positive,
        default=64 * 1024 * 1024,
        help="largest request body or gRPC message (default 64 MiB)",
    )
    p.add_argument(
        "--max-queue-size",
        type=_positive,
        default=128,
        help="requests a model may queue before answering 503 / UNAVAILABLE (default 128)",
    )
    p.add_argument(
        "--instances",
        type=_positive,
        default=2,
        help="concurrent runs of each model's shared session (default 2)",
    )
    b = p.add_argument_group(
        "batching of models without config.pbtxt",
        "models with a config.pbtxt use its max_batch_size and dynamic_batching",
    )
    b.add_argument(
        "--max-batch-size",
        type=int,
        default=0,
        help="rows per run along the first axis; 0 (default): no batch axis",
    )
    b.add_argument(
        "--dynamic-batching", action="store_true", help="merge queued requests into one run"
    )
    b.add_argument(
        "--preferred-batch-size",
        type=_positive,
        action="append",
        default=[],
        help="a batch size worth waiting for (repeatable)",
    )
    b.add_argument(
        "--max-queue-delay-us",
        type=int,
        default=0,
        help="how long a request may wait for its batch to fill (microseconds)",
    )
    p.add_argument(
        "--graceful-timeout",
        type=float,
        default=30.0,
        help="seconds shutdown waits for in-flight requests (default 30)",
    )
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    p.set_defaults(fn=cmd_serve)


def options_from_args(args: argparse.Namespace):  # -> ServerOptions
    """The ServerOptions the parsed arguments describe."""
    from .config import BatchingOptions, ModelSettings, ServerOptions

    if args.dynamic_batching and args.max_batch_size < 1:
        raise ValueError("--dynamic-batching needs --max-batch-size N (N >= 1)")
    if args.max_queue_delay_us < 0 or args.max_batch_size < 0:
        raise ValueError("--max-batch-size and --max-queue-delay-us must be >= 0")
    bad = [s for s in args.preferred_batch_size if s > args.max_batch_size]
    if bad:
        raise ValueError(f"--preferred-batch-size {bad} exceeds --max-batch-size")
    providers = None
    if args.providers:
        providers = tuple(p.strip() for p in args.providers.split(",") if p.strip())
    batching = BatchingOptions(
        max_batch_size=args.max_batch_size,
        dynamic=args.dynamic_batching,
        preferred_batch_sizes=tuple(sorted(set(args.preferred_batch_size))),
        max_queue_delay_us=args.max_queue_delay_us,
    )
    return ServerOptions(
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        max_request_bytes=args.max_request_bytes,
        max_queue_size=args.max_queue_size,
        instances=args.instances,
        providers=providers,
        model_defaults=ModelSettings(batching=batching),
        graceful_timeout_s=args.graceful_timeout,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until SIGINT/SIGTERM; 0 after a clean stop, 2 when it cannot start."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=getattr(logging, str(args.log_level).upper(), logging.INFO),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    from .errors import ServingError

    try:
        from .server import Server

        server = Server(args.model, options_from_args(args))
        server.serve_forever()
    except (ServingError, ValueError, OSError) as exc:
        message = exc.message if isinstance(exc, ServingError) else str(exc)
        print(f"ort-core serve: {message}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m ort_core.serve.cli serve ...`` (the same command as ``ort-core serve``)."""
    parser = argparse.ArgumentParser(prog="ort-core")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
