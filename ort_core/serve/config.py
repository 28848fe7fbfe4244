"""Model settings: Triton's ``config.pbtxt`` (the subset in ``_proto/model_config.proto``) or the
server's defaults, turned into what the scheduler and the session need.

Accepted ``parameters`` keys (config.pbtxt ``parameters { key: ... value: { string_value: ... } }``):

- ``providers``: comma-separated ort-core provider names or aliases, in priority order.
- ``provider_options``: a JSON object ``{"ProviderName": {"option": "value"}}``.
- ``intra_op_thread_count`` / ``inter_op_thread_count``: SessionOptions thread counts.
- ``session.<key>``: ``SessionOptions.add_session_config_entry("session.<key>", value)``.

``optimization { execution_accelerators { gpu_execution_accelerator / cpu_execution_accelerator
[{ name: "openvino" parameters { key: value } }] } }`` lists providers with their options, as
Triton's onnxruntime backend reads it; ``optimization { graph { level } }`` sets the session's
graph optimization level (-1 basic, 1 extended, 0 or absent: all). ``instance_group [{ kind:
KIND_GPU gpus: [0] count: 2 }]`` asks for the CUDA provider on that GPU and two concurrent runs.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ModelLoadError

__all__ = ["BatchingOptions", "ModelSettings", "ServerOptions", "parse_config", "NAME_RE"]

log = logging.getLogger("ort_core.serve")

#: what a model name, a version and a model file name may look like: no separators, no "..",
#: so a name from a request can only pick an entry of the repository folder
NAME_RE = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9_.\-]{1,128}$")

_PARAMETER_KEYS = (
    "providers",
    "provider_options",
    "intra_op_thread_count",
    "inter_op_thread_count",
)


@dataclass(frozen=True)
class BatchingOptions:
    """Dynamic batching of one model.

    Attributes:
        max_batch_size: largest batch (rows along axis 0) one run gets; 0: the model has no batch
            axis and requests run one by one.
        dynamic: merge queued requests into one run.
        preferred_batch_sizes: batch sizes worth waiting for; the largest is the target.
        max_queue_delay_us: how long the oldest request may wait for a batch to fill up.
    """

    max_batch_size: int = 0
    dynamic: bool = False
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 0


@dataclass(frozen=True)
class ModelSettings:
    """Everything ``ort-core serve`` needs to host one model (all versions share it)."""

    batching: BatchingOptions = field(default_factory=BatchingOptions)
    #: bound of the model's queue (waiting requests); 0: the server's default
    max_queue_size: int = 0
    #: concurrent runs of the model's shared session (worker threads); 0: the server's default
    instance_count: int = 0
    #: providers as InferenceSession takes them (names or (name, options)); None: server default
    providers: tuple[Any, ...] | None = None
    graph_optimization_level: int | None = None
    intra_op_num_threads: int | None = None
    inter_op_num_threads: int | None = None
    session_config: tuple[tuple[str, str], ...] = ()
    #: ("latest", n), ("all",) or ("specific", (1, 3))
    version_policy: tuple[Any, ...] = ("latest", 1)
    model_filename: str = "model.onnx"
    #: declared inputs/outputs: (name, datatype or None, dims without the batch axis or None)
    declared_inputs: tuple[tuple[str, str | None, tuple[int, ...] | None], ...] = ()
    declared_outputs: tuple[tuple[str, str | None, tuple[int, ...] | None], ...] = ()
    from_config: bool = False


def _err(model: str, text: str) -> ModelLoadError:
    return ModelLoadError(f"model {model!r}: config.pbtxt: {text}")


def parse_config(text: str, model: str, defaults: ModelSettings | None = None) -> ModelSettings:
    """Parse a ``config.pbtxt`` into ModelSettings (fields it leaves out keep ``defaults``).

    Raises:
        ModelLoadError: a syntax error, a field ort-core serve does not support, or a value that
            cannot act (names the field and what to write instead).
    """
    from google.protobuf import text_format

    from ._proto import model_config_pb2 as mc

    cfg = mc.ModelConfig()
    try:
        text_format.Parse(text, cfg)
    except text_format.ParseError as exc:
        raise _err(
            model,
            f"{exc}. ort-core serve reads the fields listed in docs/serving.md; remove the "
            "others or move provider settings into parameters",
        ) from None
    base = defaults or ModelSettings()
    if cfg.name and cfg.name != model:
        raise _err(model, f"name {cfg.name!r} differs from the folder name {model!r}")
    platform = cfg.platform or cfg.backend
    if platform and platform not in ("onnxruntime_onnx", "onnxruntime", "ort_core", "onnx"):
        raise _err(model, f"platform/backend {platform!r} is not an ONNX runtime; use onnxruntime")
    if cfg.max_batch_size < 0:
        raise _err(model, f"max_batch_size must be >= 0, got {cfg.max_batch_size}")

    batching = BatchingOptions(max_batch_size=cfg.max_batch_size)
    max_queue_size = base.max_queue_size
    if cfg.HasField("dynamic_batching"):
        db = cfg.dynamic_batching
        if cfg.max_batch_size == 0:
            raise _err(model, "dynamic_batching needs max_batch_size > 0 (the model's batch axis)")
        preferred = tuple(sorted(set(db.preferred_batch_size)))
        bad = [p for p in preferred if p <= 0 or p > cfg.max_batch_size]
        if bad:
            raise _err(
                model,
                f"preferred_batch_size {bad} must be between 1 and max_batch_size "
                f"({cfg.max_batch_size})",
            )
        batching = replace(
            batching,
            dynamic=True,
            preferred_batch_sizes=preferred,
            max_queue_delay_us=int(db.max_queue_delay_microseconds),
        )
        if db.default_queue_policy.max_queue_size:
            max_queue_size = int(db.default_queue_policy.max_queue_size)

    policy: tuple[Any, ...] = base.version_policy
    which = cfg.version_policy.WhichOneof("policy_choice")
    if which == "latest":
        n = cfg.version_policy.latest.num_versions
        if n < 1:
            raise _err(model, "version_policy latest num_versions must be >= 1")
        policy = ("latest", int(n))
    elif which == "all":
        policy = ("all",)
    elif which == "specific":
        policy = ("specific", tuple(int(v) for v in cfg.version_policy.specific.versions))

    filename = cfg.default_model_filename or base.model_filename
    if not NAME_RE.match(filename):
        raise _err(model, f"default_model_filename {filename!r} must be a plain file name")

    providers, instance_count = _providers(cfg, model, base)
    params = dict(cfg.parameters.items())
    unknown = [k for k in params if k not in _PARAMETER_KEYS and not k.startswith("session.")]
    if unknown:
        raise _err(
            model,
            f"unknown parameters {unknown}; accepted: {', '.join(_PARAMETER_KEYS)} and "
            "session.<config key>",
        )
    intra = _int_param(params, "intra_op_thread_count", model, base.intra_op_num_threads)
    inter = _int_param(params, "inter_op_thread_count", model, base.inter_op_num_threads)
    session_config = tuple(
        (k, v.string_value) for k, v in sorted(params.items()) if k.startswith("session.")
    )

    level = base.graph_optimization_level
    if cfg.HasField("optimization") and cfg.optimization.HasField("graph"):
        level = {-1: 1, 0: 99, 1: 2}.get(cfg.optimization.graph.level)
        if level is None:
            raise _err(
                model, "optimization graph level must be -1 (basic), 0 (all) or 1 (extended)"
            )

    def declared(items: Any, dims_field: str) -> tuple:
        from .datatypes import CONFIG_TO_V2

        out = []
        for t in items:
            dtype = mc.DataType.Name(t.data_type)
            v2 = CONFIG_TO_V2.get(dtype) if t.data_type else None
            if t.data_type and v2 is None:
                raise _err(model, f"tensor {t.name!r}: data_type {dtype} is not supported")
            dims = tuple(int(d) for d in getattr(t, dims_field)) or None
            out.append((t.name, v2, dims))
        return tuple(out)

    return replace(
        base,
        batching=batching,
        max_queue_size=max_queue_size,
        instance_count=instance_count,
        providers=providers,
        graph_optimization_level=level,
        intra_op_num_threads=intra,
        inter_op_num_threads=inter,
        session_config=session_config,
        version_policy=policy,
        model_filename=filename,
        declared_inputs=declared(cfg.input, "dims"),
        declared_outputs=declared(cfg.output, "dims"),
        from_config=True,
    )


def _int_param(params: dict, key: str, model: str, default: int | None) -> int | None:
    if key not in params:
        return default
    value = params[key].string_value
    try:
        n = int(value)
    except ValueError:
        raise _err(model, f"parameter {key} must be an integer, got {value!r}") from None
    if n < 0:
        raise _err(model, f"parameter {key} must be >= 0, got {n}")
    return n


def _providers(cfg: Any, model: str, base: ModelSettings) -> tuple[tuple | None, int]:
    """Providers and instance count from instance_group, execution_accelerators and the
    ``providers`` / ``provider_options`` parameters."""
    from ._proto import model_config_pb2 as mc

    params = cfg.parameters
    accelerators = []
    if cfg.HasField("optimization"):
        ea = cfg.optimization.execution_accelerators
        for acc in [*ea.gpu_execution_accelerator, *ea.cpu_execution_accelerator]:
            accelerators.append((acc.name, dict(acc.parameters.items())))
    listed: list[Any] = []
    if "providers" in params:
        if accelerators:
            raise _err(
                model,
                "give providers either in parameters 'providers' or in "
                "optimization.execution_accelerators, not both",
            )
        listed = [p.strip() for p in params["providers"].string_value.split(",") if p.strip()]
        if not listed:
            raise _err(model, "parameter providers is empty; list provider names, comma-separated")
    options: dict[str, dict[str, str]] = {}
    if "provider_options" in params:
        try:
            options = json.loads(params["provider_options"].string_value)
            ok = isinstance(options, dict) and all(isinstance(v, dict) for v in options.values())
        except ValueError:
            ok = False
        if not ok:
            raise _err(
                model,
                'parameter provider_options must be a JSON object {"Provider": {"key": "value"}}',
            )
    chosen: list[Any] = [(n, dict(o)) for n, o in accelerators] or [(n, {}) for n in listed]

    count = 0
    gpu: int | None = None
    for group in cfg.instance_group:
        if group.count < 0:
            raise _err(model, f"instance_group count must be >= 0, got {group.count}")
        count += group.count or 1
        if group.kind == mc.ModelInstanceGroup.KIND_GPU:
            gpus = list(group.gpus) or [0]
            if len(gpus) > 1 or (gpu is not None and gpus[0] != gpu):
                raise _err(
                    model,
                    "ort-core serve runs one shared session per model: list one GPU in "
                    "instance_group gpus (run one server per GPU for more)",
                )
            gpu = gpus[0]
    if gpu is not None and not any(_is_cuda(n) for n, _ in chosen):
        chosen.insert(0, ("CUDAExecutionProvider", {}))
    for i, (name, opts) in enumerate(chosen):
        opts = {**opts, **{k: str(v) for k, v in options.get(name, {}).items()}}
        if gpu is not None and _is_cuda(name):
            opts.setdefault("device_id", str(gpu))
        chosen[i] = (name, opts)
    unused = set(options) - {n for n, _ in chosen}
    if unused:
        raise _err(
            model,
            f"provider_options given for {sorted(unused)}, which are not among the model's "
            f"providers {[n for n, _ in chosen]}",
        )
    providers = tuple(chosen) if chosen else base.providers
    return providers, count or base.instance_count


def _is_cuda(name: str) -> bool:
    return name.lower() in ("cudaexecutionprovider", "cuda")


@dataclass(frozen=True)
class ServerOptions:
    """Settings of one ``ort-core serve`` server (the CLI flags of the same names).

    Attributes:
        host: address to bind (``0.0.0.0`` to accept other machines).
        http_port: HTTP/REST port; 0 picks a free one; None disables HTTP.
        grpc_port: gRPC port; 0 picks a free one; None disables gRPC.
        max_request_bytes: largest request body (HTTP, after decompression) or message (gRPC).
        max_queue_size: default bound of each model's queue.
        instances: default worker threads (concurrent runs) per model version.
        providers: default providers for models whose config names none (None: CPU).
        model_defaults: settings of models without a config.pbtxt (batching, ...).
        graceful_timeout_s: how long shutdown waits for in-flight requests.
        load_timeout_s: how long unloading a model waits for its queue to drain.
    """

    host: str = "127.0.0.1"
    http_port: int | None = 8000
    grpc_port: int | None = 8001
    max_request_bytes: int = 64 * 1024 * 1024
    max_queue_size: int = 128
    instances: int = 2
    providers: tuple[Any, ...] | None = None
    model_defaults: ModelSettings = field(default_factory=ModelSettings)
    graceful_timeout_s: float = 30.0
    load_timeout_s: float = 30.0
