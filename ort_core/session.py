"""InferenceSession, SessionOptions and RunOptions: onnxruntime's Python API over ort-core."""

from __future__ import annotations

import os
import threading
import time
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _onnx, errors, logs
from ._version import __version__
from .errors import (
    Fail,
    InvalidArgument,
    ModelLoadCanceled,
    NoSuchFile,
    OrtError,
    ProviderNotAvailable,
)
from .feeds import STRING, RunOwners, check_feed_with, feed_spec, finish_at, finish_with
from .iobinding import IOBinding, binding_state
from .ir import Model, load_model, model_to_proto, tensor_dtype, tensor_shape, type_str
from .optimizer import GraphOptimizationLevel, PassContext, all_passes, check_disabled, optimize
from .optimizer._util import all_graphs
from .options import (
    ExecutionMode,
    ExecutionOrder,
    OrtExecutionProviderDevicePolicy,
    RunOptions,
    SessionOptions,
    check_session_config,
)
from .ortvalue import OrtValue, foreign_value
from .partitioner import EpAssignedSubgraph, partition_model
from .plan import Plan, prepare, schedule
from .plugins import get_plugin_manager
from .profiling import Profiler
from .provider import ExecutionProvider
from .provider import fp as fp_state
from .provider.context import RunContext, enter, leave
from .provider.context import _current as _current_run

onnx = _onnx.onnx

__all__ = [
    "InferenceSession",
    "SessionOptions",
    "RunOptions",
    "GraphOptimizationLevel",
    "ExecutionMode",
    "ExecutionOrder",
    "NodeArg",
    "ModelMetadata",
    "get_all_providers",
    "get_available_providers",
    "get_provider_availability",
    "get_device",
]


@dataclass(frozen=True)
class NodeArg:
    """A graph input or output: name, type string (``tensor(float)``) and shape (ints, strings for
    symbolic dims, None for unknown ones; [] when the value has no shape)."""

    name: str
    type: str
    shape: list[Any]

    def __repr__(self) -> str:
        return f"NodeArg(name='{self.name}', type='{self.type}', shape={self.shape})"


@dataclass(frozen=True)
class ModelMetadata:
    producer_name: str
    graph_name: str
    domain: str
    description: str
    graph_description: str
    version: int
    custom_metadata_map: dict[str, str] = field(default_factory=dict)


# -- providers ----------------------------------------------------------------------------------
#: Providers ort-core knows by name but that may not be installed: what to install for each.
KNOWN_PROVIDERS = {
    "CPUExecutionProvider": "ort-core[cpu]",
    "CUDAExecutionProvider": "ort-core[cuda]",
    "OpenVINOExecutionProvider": "ort-core[openvino]",
    "CoreMLExecutionProvider": "ort-core[coreml]",
    "OpenCLExecutionProvider": "ort-core[opencl]",
}
#: onnxruntime providers ort-core has no equivalent for (yet).
FOREIGN_PROVIDERS = (
    "TensorrtExecutionProvider",
    "ROCMExecutionProvider",
    "MIGraphXExecutionProvider",
    "DmlExecutionProvider",
    "QNNExecutionProvider",
    "NnapiExecutionProvider",
    "XnnpackExecutionProvider",
    "WebGpuExecutionProvider",
    "AzureExecutionProvider",
    "VitisAIExecutionProvider",
    "ACLExecutionProvider",
    "ArmNNExecutionProvider",
    "DnnlExecutionProvider",
    "CANNExecutionProvider",
    "JsExecutionProvider",
    "SNPEExecutionProvider",
)


def get_all_providers() -> list[str]:
    """Names of every installed provider (available here or not)."""
    return [e.name for e in get_plugin_manager().ordered()]


def get_available_providers() -> list[str]:
    """Names of the installed providers that can run on this machine, in default priority order."""
    return [e.name for e in get_plugin_manager().ordered() if e.availability()]


def get_provider_availability() -> dict[str, tuple[bool, str]]:
    """For each installed provider: (available, reason when not)."""
    result = {}
    for e in get_plugin_manager().ordered():
        a = e.availability()
        result[e.name] = (a.available, a.reason)
    return result


def get_device() -> str:
    """'GPU' when an installed provider can run on a GPU here (the OpenCL provider on a GPU,
    OpenVINO with a GPU device, CUDA...), else 'CPU' (onnxruntime reports its build's device)."""
    pm = get_plugin_manager()
    for e in pm.ordered():
        try:
            devices = e.cls.devices()
        except Exception:  # a provider that cannot list its devices runs on none of them
            continue
        if any(d.kind == "gpu" for d in devices):
            return "GPU"
    return "CPU"


def check_and_normalize_provider_args(
    providers: Any,
    provider_options: Any,
    available_provider_names: Sequence[str],
    *,
    warn_unavailable: bool = True,
) -> tuple[list[str], list[dict[str, str]]]:
    """Validate ``providers`` / ``provider_options`` as onnxruntime does and return (names, options
    dicts with string keys and values). Unknown names and duplicates warn (UserWarning); the first of
    duplicates wins.

    Raises:
        ValueError: malformed arguments (onnxruntime's messages).
    """
    if providers is None:
        return [], []
    if isinstance(providers, (str, bytes)):
        raise TypeError(
            f"providers must be a list of provider names or (name, options) tuples, not a string; "
            f"write providers=[{providers!r}]."
        )
    chosen: dict[str, dict[str, str]] = {}

    def add(name: str, options: dict) -> None:
        if warn_unavailable and name not in available_provider_names:
            warnings.warn(
                f"Specified provider '{name}' is not in available provider names.Available "
                f"providers: '{', '.join(available_provider_names)}'",
                UserWarning,
                stacklevel=4,
            )
        if name in chosen:
            warnings.warn(
                f"Duplicate provider '{name}' encountered, ignoring.", UserWarning, stacklevel=4
            )
            return
        chosen[name] = {str(k): str(v) for k, v in options.items()}

    if not isinstance(providers, Sequence):
        raise InvalidArgument("'providers' should be a sequence.")
    if provider_options is not None:
        if not isinstance(provider_options, Sequence):
            raise InvalidArgument("'provider_options' should be a sequence.")
        if len(providers) != len(provider_options):
            raise InvalidArgument(
                "'providers' and 'provider_options' should be the same length if both are given."
            )
        if not all(isinstance(p, str) for p in providers):
            raise InvalidArgument(
                "Only string values for 'providers' are supported if 'provider_options' is given."
            )
        if not all(isinstance(o, dict) for o in provider_options):
            raise InvalidArgument("'provider_options' values must be dicts.")
        for name, options in zip(providers, provider_options):
            add(name, options)
    else:
        for p in providers:
            if isinstance(p, str):
                add(p, {})
            elif (
                isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                and isinstance(p[1], dict)
            ):  # fmt: skip
                add(p[0], p[1])
            else:
                raise InvalidArgument(
                    "'providers' values must be either strings or (string, dict) tuples."
                )
    return list(chosen), list(chosen.values())


def _canonical(name: str) -> str:
    """The registered name for an alias or a differently-cased name (the name itself otherwise)."""
    entry = get_plugin_manager().resolve(name)
    if entry is not None:
        return entry.name
    return next((k for k in KNOWN_PROVIDERS if k.lower() == name.lower()), name)


def select_providers(so: SessionOptions, model: Model | None = None) -> list[tuple[str, dict]]:
    """The providers of a ``providers=None`` session, by this documented rule (onnxruntime's):

    1. providers added to the SessionOptions (``add_provider``, ``add_provider_for_devices``), in
       the order they were added;
    2. else a selection delegate (``set_provider_selection_policy_delegate``) chooses among
       ``get_ep_devices()``;
    3. else a selection policy (``set_provider_selection_policy``): PREFER_GPU / MAX_PERFORMANCE take
       the first GPU device's provider, PREFER_NPU / MAX_EFFICIENCY / MIN_OVERALL_POWER the first
       NPU device's, then the CPU provider; PREFER_CPU and DEFAULT the CPU provider alone;
    4. else the CPU provider alone, as onnxruntime does.
    """
    from .environment import OrtHardwareDeviceType, get_ep_devices

    if so._providers:
        return [(name, dict(options)) for name, options, _ in so._providers]
    if so._policy_delegate is not None:
        devices = get_ep_devices()
        meta = {}
        if model is not None:
            meta = {
                "producer_name": model.producer_name,
                "producer_version": model.producer_version,
                "domain": model.domain,
                "model_version": str(model.model_version),
                "doc_string": model.doc_string,
                "graph_name": model.graph.name,
                **model.metadata_props,
            }
        try:
            chosen = so._policy_delegate(devices, meta, {}, 8)
        except Exception as e:
            raise Fail(f"EP selection delegate failed: {e}") from None
        chosen = list(chosen or [])
        if not chosen:
            raise Fail("EP selection delegate did not select anything.")
        if len(chosen) > 8:
            raise Fail(
                f"EP selection delegate selected too many EP devices ({len(chosen)}). The limit "
                "is 8 EP devices."
            )
        names: list[str] = []
        for d in chosen:
            if getattr(d, "ep_name", None) not in names:
                names.append(d.ep_name)
        return [(n, {}) for n in names]
    policy = so._policy
    if policy is None:
        return [("CPUExecutionProvider", {})]
    P = OrtExecutionProviderDevicePolicy
    want = None
    if policy in (P.PREFER_GPU, P.MAX_PERFORMANCE):
        want = OrtHardwareDeviceType.GPU
    elif policy in (P.PREFER_NPU, P.MAX_EFFICIENCY, P.MIN_OVERALL_POWER):
        want = OrtHardwareDeviceType.NPU
    picked: list[tuple[str, dict]] = []
    if want is not None:
        for d in get_ep_devices():
            if d.device.type == want:
                picked.append((d.ep_name, dict(d.ep_options)))
                break
    picked.append(("CPUExecutionProvider", {}))
    return picked


def resolve_providers(
    providers: Any,
    provider_options: Any,
    sess_options: SessionOptions,
    *,
    unknown: str = "warn",
    model: Model | None = None,
) -> list[ExecutionProvider]:
    """Instantiate the requested providers in order, then the CPU fallback unless disabled.

    ``unknown="warn"`` (session creation) warns about a name nobody knows and goes on without it, as
    onnxruntime does; ``unknown="raise"`` (``set_providers``) raises onnxruntime's
    ``Unknown Provider Type`` RuntimeError.
    """
    pm = get_plugin_manager()
    no_fallback = sess_options._flag("session.disable_cpu_ep_fallback")
    strict = no_fallback or sess_options._flag("session.strict_providers")
    if providers is None:
        if provider_options is not None:
            raise InvalidArgument("provider_options given without providers")
        requested = select_providers(sess_options, model)
    else:
        if sess_options.has_providers() and providers:
            warnings.warn(
                "Specified 'providers'/'provider_options' when creating InferenceSession but "
                "SessionOptions has already been configured with providers. InferenceSession will "
                "only use the providers passed to InferenceSession().",
                UserWarning,
                stacklevel=4,
            )
        names, options = check_and_normalize_provider_args(
            [
                (_canonical(p[0]), p[1])
                if isinstance(p, tuple) and p and isinstance(p[0], str)
                else _canonical(p)
                if isinstance(p, str)
                else p
                for p in providers
            ]
            if isinstance(providers, Sequence) and not isinstance(providers, (str, bytes))
            else providers,
            provider_options,
            (),
            warn_unavailable=False,  # resolve_providers says why each one is missing, below
        )
        requested = list(zip(names, options))
    instances: list[ExecutionProvider] = []
    for name, options in requested:
        entry = pm.resolve(name)
        if entry is None:
            canonical = next((k for k in KNOWN_PROVIDERS if k.lower() == name.lower()), None)
            if canonical is None and name not in FOREIGN_PROVIDERS:
                installed = ", ".join(get_all_providers()) or "none"
                message = (
                    f"Unknown Provider Type: {name}. Installed providers: {installed}. Check the "
                    "spelling (names are like 'CPUExecutionProvider' or the alias 'cpu')."
                )
                if unknown == "raise" or strict:
                    raise InvalidArgument(message)
                _unavailable(message, strict, sess_options)
                continue
            hint = (
                f"install it with `pip install {KNOWN_PROVIDERS[canonical]}`"
                if canonical
                else "ort-core has no such provider"
            )
            _unavailable(
                f"Execution provider '{name}' is not installed: {hint}.", strict, sess_options
            )
            continue
        avail = entry.availability()
        if not avail:
            _unavailable(
                f"Execution provider '{entry.name}' ({entry.distribution}) is not available here: "
                f"{avail.reason}",
                strict,
                sess_options,
            )
            continue
        if any(type(ep) is entry.cls for ep in instances):
            continue
        try:
            instances.append(entry.cls(options, sess_options))
        except ProviderNotAvailable as e:  # e.g. the requested device type is absent
            _unavailable(
                f"Execution provider '{entry.name}' cannot start: {e.message}", strict, sess_options
            )
    if not no_fallback and not any(ep.name == "CPUExecutionProvider" for ep in instances):
        cpu = pm.resolve("CPUExecutionProvider")
        if cpu is None:
            raise ProviderNotAvailable(
                "The CPU execution provider is not installed, and it is the fallback for every "
                "session: `pip install ort-core[cpu]`."
            )
        instances.append(cpu.cls({}, sess_options))
    if not instances:
        raise ProviderNotAvailable(
            "No execution provider is left to run the model (the requested ones are unavailable "
            "and session.disable_cpu_ep_fallback is set)."
        )
    return instances


def _unavailable(message: str, strict: bool, so: SessionOptions | None = None) -> None:
    if strict:
        raise ProviderNotAvailable(message + " (strict mode: not falling back)")
    logs.log(
        logs.Severity.WARNING,
        message + " Falling back to the next providers.",
        logid=so.logid if so is not None else "",
        level=so.log_severity_level if so is not None else None,
        category="providers",
        stacklevel=4,
    )


# -- session ------------------------------------------------------------------------------------
class InferenceSession:
    """Load a model, partition it among providers, and run it; onnxruntime's API.

    Args:
        path_or_bytes: a model path, its serialized bytes, or an ``onnx.ModelProto``.
        sess_options: :class:`SessionOptions` (the session works on a copy: later changes to it do
            not affect this session; :meth:`get_session_options` returns the copy).
        providers: provider names or ``(name, options)`` tuples in priority order. None follows
            :func:`select_providers` (the providers added to ``sess_options``, else its selection
            policy, else the CPU provider alone, as onnxruntime). The CPU provider is appended as
            fallback unless the session config entry ``session.disable_cpu_ep_fallback`` is "1".
        provider_options: one options dict per entry of ``providers``.
        disabled_optimizers: names of optimizer passes not to run.
        **kwargs: ``enable_fallback`` (0/1) and ``read_config_from_model`` (0/1; default: the
            environment variable ``ORT_LOAD_CONFIG_FROM_MODEL``), as onnxruntime takes them.
    """

    def __init__(
        self,
        path_or_bytes: str | os.PathLike | bytes | onnx.ModelProto,
        sess_options: SessionOptions | None = None,
        providers: Sequence[str | tuple[str, dict]] | None = None,
        provider_options: Sequence[dict] | None = None,
        disabled_optimizers: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        unexpected = sorted(set(kwargs) - {"enable_fallback", "read_config_from_model"})
        if unexpected:  # onnxruntime ignores them silently; a typo ("provider=") deserves a word
            import difflib

            hints = {
                k: difflib.get_close_matches(
                    k, ["providers", "provider_options", "sess_options", "disabled_optimizers"], 1
                )
                for k in unexpected
            }
            warnings.warn(
                "InferenceSession ignores the unknown keyword argument(s) "
                + ", ".join(
                    f"'{k}'" + (f" (did you mean '{h[0]}'?)" if h else "") for k, h in hints.items()
                )
                + ", as onnxruntime does.",
                UserWarning,
                stacklevel=2,
            )
        if providers is not None and not isinstance(providers, Sequence):
            raise TypeError(
                f"providers must be a list of provider names or (name, options) tuples, got "
                f"{type(providers).__name__}."
            )
        if sess_options is not None and not isinstance(sess_options, SessionOptions):
            raise TypeError(
                f"sess_options must be an ort_core.SessionOptions, got {type(sess_options).__name__}."
            )
        if not isinstance(path_or_bytes, (str, os.PathLike, bytes, bytearray, memoryview)) and not (
            isinstance(path_or_bytes, onnx.ModelProto)
        ):
            raise TypeError(f"Unable to load from type '{type(path_or_bytes)}'")
        self._source = (
            os.fspath(path_or_bytes) if isinstance(path_or_bytes, os.PathLike) else path_or_bytes
        )
        self._user_options = sess_options
        self._disabled_optimizers = list(disabled_optimizers or [])
        self._enable_fallback = int(kwargs.get("enable_fallback", 1)) == 1
        if "read_config_from_model" in kwargs:
            self._read_config = int(kwargs["read_config_from_model"]) == 1
        else:
            self._read_config = os.environ.get("ORT_LOAD_CONFIG_FROM_MODEL") == "1"
        self._sess = _SessionHandle(self)
        self._build(providers, provider_options, unknown="warn")

    # -- creation --------------------------------------------------------------------------------
    def _build(self, providers: Any, provider_options: Any, unknown: str) -> None:
        """Create everything a session holds; on failure the session keeps its previous state."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._sess = _SessionHandle(self)  # values and bindings of the previous state go stale
        new._create(providers, provider_options, unknown)
        old_pool = self.__dict__.get("_inter_pool")
        self.__dict__.update(new.__dict__)
        if old_pool is not None:
            old_pool.shutdown(wait=False)
        if self._inter_pool is not None:
            weakref.finalize(self, self._inter_pool.shutdown, wait=False)

    def _create(self, providers: Any, provider_options: Any, unknown: str) -> None:
        t0 = time.perf_counter()
        so = (self._user_options or SessionOptions())._copy()
        self._sess_options = so
        from .environment import global_thread_pool_sizes

        if global_thread_pool_sizes() is not None and so.use_per_session_threads:
            raise Fail(
                "use_per_session_threads must be false when using a global thread pool: "
                "set_global_thread_pool_sizes() was called in this process, so set "
                "SessionOptions.use_per_session_threads = False (as onnxruntime requires)."
            )
        if so.execution_order != ExecutionOrder.DEFAULT:
            raise errors.NotImplemented(
                f"execution_order={so.execution_order!r}: ort-core runs nodes in the graph's "
                "topological order (ExecutionOrder.DEFAULT) only; remove the setting."
            )
        self._model_path = self._source if isinstance(self._source, str) else None
        self._check_cancel()
        # plugins first: the op schemas they register shape the model's validation and types
        # (and the keys of the caches that stand in for onnx, ort_core/_disk.py), the same for
        # a process's first session as for the later ones
        get_plugin_manager()
        self._model: Model = load_model(
            self._source,
            initializers=so._initializers,
            external_files=so._external_files,
            external_folder=so._config.get("session.model_external_initializers_file_folder_path"),
        )
        if self._read_config:
            _apply_ort_config(self._model, so)
        for message in check_session_config(so):
            self._log(logs.Severity.WARNING, message)
        self._profiler = Profiler(so.profile_file_prefix) if so.enable_profiling else None
        t_loaded = time.perf_counter()
        self._log(
            logs.Severity.INFO,
            f"Loaded model '{self._model.graph.name}' (IR {self._model.ir_version}, opsets "
            f"{dict(self._model.opset_imports)}, {len(self._model.graph.nodes)} nodes) in "
            f"{(t_loaded - t0) * 1e3:.1f} ms",
        )
        self._check_cancel()
        self._providers = resolve_providers(
            providers, provider_options, so, unknown=unknown, model=self._model
        )
        self._log(logs.Severity.INFO, f"Providers: {[ep.name for ep in self._providers]}")
        graph = self._model.graph
        self._weights_listed_as_inputs: frozenset[str] = frozenset()
        if self._model.ir_version < 4:
            # Before IR 4 every initializer had to be listed among the graph inputs, so there they
            # are weights, not overridable defaults: onnxruntime treats them as constants, and so
            # do we (which lets the optimizer fold them, e.g. BatchNormalization into Conv).
            self._weights_listed_as_inputs = frozenset(
                n for n in graph.inputs if n in graph.initializers
            )
            graph.inputs = [n for n in graph.inputs if n not in graph.initializers]
        _override_free_dims(graph, so)
        self._inputs = self._node_args(graph.inputs, graph, skip_initializers=True)
        self._overridable = [n for n in graph.inputs if n in graph.initializers]
        self._outputs = self._node_args(graph.outputs, graph)
        passes = all_passes()
        disabled = list(self._disabled_optimizers)
        if so.has_session_config_entry("optimization.disable_specified_optimizers"):
            disabled += [
                n.strip()
                for n in so.get_session_config_entry(
                    "optimization.disable_specified_optimizers"
                ).split(",")
                if n.strip()
            ]
        if not so._flag("session.enable_quant_qdq", "1"):
            disabled += [p.name for p in passes if "qdq" in p.name.lower()]
        disabled = sorted(check_disabled(disabled, passes))
        # the pipeline, in order: basic passes, partition every graph, provider-scoped passes,
        # kernels and compiled subgraphs, then the plan (schedule)
        self._pass_ctx = PassContext(list(self._providers), so)
        self._pass_ctx.keep_dequantize = (
            int(so.graph_optimization_level) >= int(GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
            and "QDQFusion" not in disabled
        )
        self.optimization_report = optimize(
            self._model,
            so.graph_optimization_level,
            self._pass_ctx,
            stage="basic",
            disabled=disabled,
            passes=passes,
        )
        self._check_cancel()
        parts = self._partitions = partition_model(self._model, self._providers)
        self._pass_ctx.outer_types = parts.outer
        provider_report = optimize(
            self._model,
            so.graph_optimization_level,
            self._pass_ctx,
            stage="provider",
            disabled=disabled,
            passes=passes,
        )
        self.optimization_report.merge(provider_report)
        parts.refresh(list(all_graphs(self._model)))
        self._check_cancel()
        self._prepared = prepare(self._model, graph, self._providers, parts, session_options=so)
        if so.optimized_model_filepath:
            self._save_optimized(so.optimized_model_filepath)
        self._plan: Plan = schedule(self._prepared, reuse=so.enable_mem_reuse)
        # plans for IOBinding, keyed by (input locations, output locations); kernels are shared
        self._variants: dict[tuple, Plan] = {((), ()): self._plan}
        self._variants_lock = threading.Lock()
        self._input_index = {name: i for i, name in enumerate(graph.inputs)}
        self._output_index = {name: i for i, name in enumerate(graph.outputs)}
        self._input_checks = self._make_input_checks()
        free = so._free_dims_by_name
        self._feed_specs = {n: feed_spec(c[3], free) for n, c in self._input_checks.items()}
        self._defaults = [None] * len(graph.inputs)
        for name in self._overridable:
            self._defaults[self._input_index[name]] = graph.initializers[name]
        self._inter_pool = _inter_op_pool(so)
        # providers whose tensors live in device memory (by class: OrtValues name their provider
        # instance, which may be another instance of the same provider), and the graph outputs
        # they compute (run_with_ort_values returns those in device memory)
        self._device_providers = {type(ep): ep for ep in self._providers if not ep.host_memory}
        self._device_outputs = {
            o: ep.name
            for node, ep, *_ in self._prepared.nodes
            if not ep.host_memory
            for o in node.outputs
            if o in self._output_index
        }
        if self._inter_pool is None and so.execution_mode == ExecutionMode.ORT_PARALLEL:
            self._log(
                logs.Severity.WARNING,
                "execution_mode is ORT_PARALLEL but only one inter-op thread is available "
                f"(inter_op_num_threads={so.inter_op_num_threads}, {os.cpu_count()} cores), so "
                "nodes run one at a time; set SessionOptions.inter_op_num_threads to 2 or more "
                "to run independent branches in parallel.",
            )
        self._sparse_outputs = frozenset(
            i for i, a in enumerate(self._outputs) if a.type.startswith("sparse_tensor")
        )
        self._required = [a.name for a in self._inputs if not a.type.startswith("optional")]
        self._required_set = frozenset(self._required)
        self._all_positions = list(range(len(graph.outputs)))
        # per tensor input: (position, declared dtype, the shapes already accepted); a plain numpy
        # array of exactly that dtype and one of those shapes passes the checks as it did before
        self._accepted = {
            name: (self._input_index[name], spec.dtype, set())
            for name, spec in self._feed_specs.items()
            if spec.kind == "tensor" and spec.dtype is not None and spec.dtype != STRING
        }
        # only providers that define on_run_start/on_run_end are called around runs
        self._hooked = tuple(
            ep for ep in self._providers if _has_run_hooks(ep) and ep.wants_run_hooks()
        )
        # a run without RunOptions then needs only the run context and numpy's error state
        self._quick = not self._hooked and self._profiler is None and self._inter_pool is None
        # one provider's hooks and nothing else (the CPU provider at two threads): the usual
        # call takes them around the plan itself instead of going through _execute
        self._quick_hooks = (
            (self._hooked[0].on_run_start, self._hooked[0].on_run_end)
            if len(self._hooked) == 1 and self._profiler is None and self._inter_pool is None
            else None
        )
        self._run_values = self._make_run_values()
        self._quick_run = self._make_quick_run()
        if self._profiler is not None:
            self._profiler.event("Session", "model_loading_uri", t0, t_loaded)
            self._profiler.event("Session", "session_initialization", t0, time.perf_counter())
        counts: dict[str, int] = {}
        for sub in self._plan.partition.assignment:
            counts[sub.ep_name] = counts.get(sub.ep_name, 0) + len(sub.get_nodes())
        self._log(
            logs.Severity.INFO,
            f"Session created in {(time.perf_counter() - t0) * 1e3:.1f} ms; nodes per provider: "
            f"{counts}; optimizations applied: {dict(self.optimization_report.applied)}",
        )
        if logs.enabled(logs.Severity.VERBOSE, so.log_severity_level):
            for sub in self._plan.partition.assignment:
                for n in sub.get_nodes():
                    self._log(
                        logs.Severity.VERBOSE,
                        f"Node '{n.name}' ({n.domain or 'ai.onnx'}:{n.op_type}) placed on "
                        f"{sub.ep_name}",
                        vlevel=0,
                    )

    def _log(self, severity: int, message: str, vlevel: int = 0) -> None:
        so = self._sess_options
        logs.log(
            severity,
            message,
            logid=so.logid,
            level=so.log_severity_level,
            verbosity=so.log_verbosity_level,
            vlevel=vlevel,
            category="session",
            stacklevel=4,
        )

    def _check_cancel(self) -> None:
        if self._user_options is not None and self._user_options._cancel:
            raise ModelLoadCanceled(
                "Model loading was canceled by SessionOptions.set_load_cancellation_flag(True)."
            )

    def set_providers(
        self, providers: Sequence[Any] | None = None, provider_options: Sequence[dict] | None = None
    ) -> None:
        """Re-create the session with other providers (the model is loaded and optimized again).
        On failure the session keeps its previous providers and stays usable.

        Raises:
            RuntimeError: an unknown provider name ("Unknown Provider Type: ..."), as onnxruntime.
        """
        self._build(providers, provider_options, unknown="raise")

    def disable_fallback(self) -> None:
        """onnxruntime retries a failed run on the CPU provider unless this is called; ort-core never
        retries behind the user's back, so there is nothing to disable (recorded for
        :meth:`enable_fallback`)."""
        self._enable_fallback = False

    def enable_fallback(self) -> None:
        """Recorded only: ort-core reports a provider's failure instead of silently retrying."""
        self._enable_fallback = True

    def _save_optimized(self, path: str) -> None:
        """Save the optimized graph (fused provider subgraphs expanded back) as a valid model; with
        ``session.optimized_model_external_initializers_file_name`` set, initializers of at least
        ``..._min_size_in_bytes`` (default 1024) go to that file, next to the model."""
        from .partitioner import unfused_copy

        saved = self._model.with_graph(unfused_copy(self._model.graph, self._prepared.partition))
        if saved.ir_version < 4:  # IR 3 requires every initializer to be listed as an input
            listed = set(saved.graph.inputs)
            saved.graph.inputs = saved.graph.inputs + [
                n for n in saved.graph.initializers if n not in listed
            ]
        for _, node in saved.graph.walk():
            if node.domain and node.domain not in saved.opset_imports:
                saved.opset_imports[node.domain] = 1
        proto = model_to_proto(saved)
        folder = os.path.dirname(os.path.abspath(path))
        if folder and not os.path.isdir(folder):
            raise NoSuchFile(
                f"Cannot save the optimized model to '{path}': folder '{folder}' does not exist."
            )
        cfg = self._sess_options._config
        data_file = cfg.get("session.optimized_model_external_initializers_file_name")
        if data_file:
            if os.path.isabs(data_file) or os.path.normpath(data_file).startswith(".."):
                raise InvalidArgument(
                    f"session.optimized_model_external_initializers_file_name '{data_file}' must be "
                    "a file name relative to the optimized model's folder."
                )
            threshold = int(
                cfg.get("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
            )
            target = os.path.join(folder, data_file)
            if os.path.exists(target):
                os.remove(target)  # onnx appends to an existing data file
            onnx.external_data_helper.convert_model_to_external_data(
                proto,
                all_tensors_to_one_file=True,
                location=data_file,
                size_threshold=threshold,
                convert_attribute=False,
            )
            onnx.save_model(proto, path)
        else:
            onnx.save(proto, path)
        self._log(logs.Severity.INFO, f"Saved the optimized model to {path}")

    # -- introspection ---------------------------------------------------------------------------
    @staticmethod
    def _node_args(names: list[str], graph, skip_initializers: bool = False) -> list[NodeArg]:
        args = []
        for n in names:
            if skip_initializers and n in graph.initializers:
                continue
            tp = graph.value_types.get(n) or graph.type_of(n)
            args.append(NodeArg(n, type_str(tp), _shape_of(tp)))
        return args

    def get_inputs(self) -> list[NodeArg]:
        """The graph inputs the caller must feed (initializers listed as inputs excluded), with free
        dimension overrides applied to their shapes."""
        return list(self._inputs)

    def get_overridable_initializers(self) -> list[NodeArg]:
        """Initializers that are also graph inputs: a feed of the same name replaces them."""
        return self._node_args(self._overridable, self._model.graph)

    def get_outputs(self) -> list[NodeArg]:
        """The graph outputs."""
        return list(self._outputs)

    def get_modelmeta(self) -> ModelMetadata:
        """The model's metadata (producer, graph name, description, custom metadata map)."""
        m = self._model
        return ModelMetadata(
            m.producer_name,
            m.graph.name,
            m.domain,
            m.doc_string,
            m.graph.doc_string,
            m.model_version,
            dict(m.metadata_props),
        )

    def get_providers(self) -> list[str]:
        """The providers this session uses, in priority order."""
        return [ep.name for ep in self._providers]

    def get_provider_options(self) -> dict[str, dict[str, str]]:
        """Each provider's options (all values as strings), as onnxruntime reports them."""
        return {ep.name: ep.get_options() for ep in self._providers}

    def get_session_options(self) -> SessionOptions:
        """The options this session runs with (a copy of those given, with the model's
        ``ort_config`` applied when it was read)."""
        return self._sess_options

    def get_provider_graph_assignment_info(self) -> list[EpAssignedSubgraph]:
        """Which provider runs which node, as onnxruntime reports it (one entry per kernel node or
        per fused subgraph, in execution order).

        Raises:
            Fail: the session config entry ``session.record_ep_graph_assignment_info`` is not "1"
                (as in onnxruntime; ``ort-core inspect`` shows the same without it).
        """
        if not self._sess_options._flag("session.record_ep_graph_assignment_info"):
            raise Fail(
                "Session configuration entry 'session.record_ep_graph_assignment_info' must be set "
                'to "1" to retrieve EP graph assignment information.'
            )
        return self.placements

    @property
    def placements(self) -> list[EpAssignedSubgraph]:
        """ort-core's extension: what :meth:`get_provider_graph_assignment_info` returns, without
        the session config entry onnxruntime requires for it."""
        return list(self._plan.partition.assignment)

    @property
    def placement_reasons(self) -> dict[str, list[str]]:
        """For each node some provider declined: the reasons each gave."""
        return dict(self._plan.partition.reasons)

    @property
    def refused_claims(self) -> list[str]:
        """Claims the core refused (a node already taken, a fused set that is not convex), each
        with the provider and the reason; from every graph, control-flow bodies included."""
        return [r for part in self._partitions.graphs.values() for r in part.refused]

    @property
    def copy_count(self) -> int:
        """How many device copies the core inserted between providers."""
        return self._plan.copies

    def _memory_info_of(self, ep: ExecutionProvider | None) -> Any:
        from .device import OrtAllocatorType, OrtMemoryInfo, OrtMemType

        if ep is None or ep.host_memory:
            return OrtMemoryInfo("Cpu", OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, OrtMemType.DEFAULT)
        from .device import OrtDeviceMemoryType, OrtMemoryInfoDeviceType

        dev = ep.memory_device
        kind = OrtMemoryInfoDeviceType(dev.device_type())
        return OrtMemoryInfo.create_v2(
            getattr(ep, "memory_name", ep.name.replace("ExecutionProvider", "")),
            kind,
            dev.device_vendor_id(),
            dev.device_id(),
            OrtDeviceMemoryType.DEFAULT,
            0,
            OrtAllocatorType.ORT_ARENA_ALLOCATOR,
        )

    def _consumer_provider(self, name: str) -> ExecutionProvider | None:
        by_name = {ep.name: ep for ep in self._providers}
        for node in self._model.graph.nodes:
            if name in node.inputs:
                return by_name.get(node.provider or "")
        return None

    def get_input_memory_infos(self) -> list[Any]:
        """Where each input is read (an ``OrtMemoryInfo`` per input of :meth:`get_inputs`): the
        memory of the provider of its first consumer."""
        return [self._memory_info_of(self._consumer_provider(a.name)) for a in self._inputs]

    def get_output_memory_infos(self) -> list[Any]:
        """Where each output is produced (an ``OrtMemoryInfo`` per output)."""
        by_name = {ep.name: ep for ep in self._providers}
        producer = {o: n.provider for n in self._model.graph.nodes for o in n.outputs}
        return [
            self._memory_info_of(by_name.get(producer.get(a.name) or "")) for a in self._outputs
        ]

    def get_input_epdevices(self) -> list[Any]:
        """The ``OrtEpDevice`` of the provider that reads each input (None where unknown)."""
        from .environment import get_ep_devices

        devices = get_ep_devices()
        out = []
        for a in self._inputs:
            ep = self._consumer_provider(a.name) or self._providers[-1]
            out.append(next((d for d in devices if d.ep_name == ep.name), None))
        return out

    def get_tuning_results(self) -> list[dict[str, Any]]:
        """Kernel tuning results per provider (onnxruntime's TunableOp): ort-core's kernels are not
        tuned at run time, so each provider reports an empty result set."""
        return [
            {"ep": ep.name, "results": {}, "validators": {"ORT_VERSION": _version()}}
            for ep in self._providers
        ]

    def set_tuning_results(self, results: Sequence[dict], error_on_invalid: bool = False) -> None:
        """Check tuning results as onnxruntime does; ort-core has no tunable kernels to load them
        into, so valid results are accepted and have no effect on computation.

        Raises:
            RuntimeError: with ``error_on_invalid``, an unknown provider or validator.
        """
        names = {ep.name for ep in self._providers}
        for r in results:
            problem = None
            if r.get("ep") not in names:
                problem = f"Cannot find execution provider {r.get('ep')}"
            elif "ORT_VERSION" not in r.get("validators", {}):
                problem = "ORT_VERSION is not provided for validation"
            elif r["validators"]["ORT_VERSION"] != _version():
                problem = "Failed to load TuningResults: version mismatch"
            if problem and error_on_invalid:
                raise Fail(problem)

    # -- running ---------------------------------------------------------------------------------
    def _make_input_checks(self) -> dict[str, tuple]:
        checks = {}
        graph = self._model.graph
        free = self._sess_options._free_dims_by_name
        for name in graph.inputs:
            tp = graph.type_of(name)
            dims = tensor_shape(tp)
            if dims is not None:
                dims = tuple(free.get(d, d) if isinstance(d, str) else d for d in dims)
            checks[name] = (tensor_dtype(tp), dims, type_str(tp), tp)
        return checks

    def _validate_feed(
        self, input_feed: dict[str, Any], on_device: dict[str, str] | None = None
    ) -> list[Any]:
        """The run's input values in graph-input order: each fed value checked against its input
        (a session-scoped OrtValue of another session refused), the defaults of overridable
        initializers where not fed. The caller checked that the feed is a dict with every
        required input (:meth:`_check_required`). With ``on_device`` (a dict to fill), an OrtValue
        in the memory of one of the session's device providers stays there, and its input name
        is mapped to that provider's name."""
        values: list[Any] = list(self._defaults)
        index, specs, mine = self._input_index, self._feed_specs, self._sess
        accepted = self._accepted
        for name, value in input_feed.items():
            known = accepted.get(name)
            if (
                known is not None
                and type(value) is np.ndarray
                and value.dtype is known[1]
                and value.shape in known[2]
            ):  # the same dtype and shape as a value checked before: nothing new to check
                values[known[0]] = value
                continue
            idx = index.get(name)
            if idx is None:
                self._unknown_input(name)
            keep = False
            if isinstance(value, OrtValue):
                if foreign_value(value, mine):
                    self._validate_ortvalue_ownership([value])
                if on_device is not None and value.provider is not None:
                    ep = self._device_providers.get(type(value.provider))
                    if ep is not None:
                        on_device[name] = ep.name
                        keep = True
            checked = values[idx] = check_feed_with(name, value, specs[name], keep)
            if (
                known is not None
                and checked is value
                and type(value) is np.ndarray
                and value.dtype is known[1]
                and len(known[2]) < _ACCEPTED_SHAPES
            ):
                known[2].add(value.shape)
        return values

    def _unknown_input(self, name: str) -> None:
        expected = [a.name for a in self._inputs]
        hint = (
            f" '{name}' is an initializer of an IR version "
            f"{self._model.ir_version} model: before IR 4 initializers listed as inputs "
            "are constant weights and cannot be fed (as in onnxruntime); re-save the "
            "model with IR version 4 or later to make it overridable."
            if name in self._weights_listed_as_inputs
            else ""
        )
        raise InvalidArgument(
            f"Invalid input name: {name}. The model's inputs are {expected}.{hint}"
        )

    def _check_value(self, name: str, value: Any, keep_device: bool = False) -> Any:
        """The fed value checked against the input's declared type (see :mod:`ort_core.feeds`)."""
        return check_feed_with(name, value, self._feed_specs[name], keep_device)

    def _output_positions(self, output_names: Sequence[str] | None) -> list[int]:
        if output_names is None or len(output_names) == 0:
            return self._all_positions
        if isinstance(output_names, str):
            raise TypeError(
                f"output_names must be a list of names, not a string; write [{output_names!r}]."
            )
        pos = []
        for n in output_names:
            i = self._output_index.get(n)
            if i is None:
                raise InvalidArgument(
                    f"Invalid output name: {n}. The model's outputs are {list(self._output_index)}."
                )
            pos.append(i)
        return pos

    def _validate_ortvalue_ownership(self, values: Any) -> None:
        """OrtValues made by a session (``create_ortvalue_from_shape_and_type``) belong to it: any
        other session (including this one after ``set_providers``) refuses them, as onnxruntime
        does; a WebGPU buffer of another session is accepted when their WebGPU contexts match."""
        for value in values:
            if isinstance(value, OrtValue) and foreign_value(value, self._sess):
                raise InvalidArgument(
                    "This OrtValue was created by another session; an OrtValue made by "
                    "create_ortvalue_from_shape_and_type must be used with the session that "
                    "created it (create the value with this session, or use "
                    "OrtValue.ortvalue_from_numpy)."
                )

    def _check_required(self, input_feed: Any) -> None:
        """The feed is a dict holding every required input (onnxruntime's ValueError)."""
        if not isinstance(input_feed, dict):
            raise InvalidArgument(
                f"input_feed must be a dict of input name -> value, got {type(input_feed).__name__}."
            )
        if self._required_set <= input_feed.keys():
            return
        missing = [n for n in self._required if n not in input_feed]
        if missing:
            raise InvalidArgument(
                f"Required inputs ({missing}) are missing from input feed ({list(input_feed)})."
            )

    def _positions_and_feed(
        self, output_names: Any, input_feed: Any
    ) -> tuple[list[int], list[Any]]:
        self._check_required(input_feed)
        return self._output_positions(output_names), self._validate_feed(input_feed)

    def _make_run_values(self) -> Any:
        """``run_values(values)`` -> the plan's outputs for checked input values (one per graph
        input, :meth:`_validate_feed`'s), for a run without RunOptions where nothing but the
        run's context, numpy's error state and at most one provider's hooks surround the plan
        (:attr:`_quick`, :attr:`_quick_hooks`): the plan's generated whole-plan function, its
        errors naming the failing node. None otherwise (:meth:`_execute` runs)."""
        if not (self._quick or self._quick_hooks is not None):
            return None
        hooks = self._quick_hooks
        start, end = hooks if hooks is not None else (None, None)
        plan = self._plan  # (its function read at each call: a plan's steps may be regenerated)
        enter_run, leave_run = _current_run.set, _current_run.reset
        quiet, restore = fp_state.quiet, fp_state.restore

        def run_values(values: list[Any]) -> list[Any]:
            ctx = RunContext(None)
            token, fp = enter_run(ctx), quiet()
            try:
                if start is not None:
                    start(ctx)
                try:
                    return plan.whole(values, None)
                except Exception as e:
                    raise plan.whole_failure(e) from e
                finally:
                    if end is not None:
                        end(ctx)
            finally:
                restore(fp)
                leave_run(token)

        return run_values

    def _make_quick_run(self) -> Any:
        """The usual run in one call (``run(None, feed)``, no RunOptions), for a session whose
        inputs are all required tensors and outputs dense: ``quick(feed)`` -> the outputs, or
        None (nothing run) when a fed value is not a numpy array of its input's dtype and of a
        shape checked before (:meth:`_validate_feed` checks it and remembers the shape), or the
        feed is not a dict of exactly the inputs. The checks, :attr:`_run_values` and the
        outputs' finishing without the full path's calls: they took 3.7 us of a one-node run in
        eight calls. None where the session has other inputs, sparse outputs or no
        :attr:`_run_values`."""
        run_values = self._run_values
        if (
            run_values is None
            or self._sparse_outputs
            or any(d is not None for d in self._defaults)
            or len(self._accepted) != len(self._input_index)
            or set(self._required) != set(self._accepted)
        ):
            return None
        checks = sorted(self._accepted.items(), key=lambda kv: kv[1][0])
        checks = tuple((name, dtype, shapes) for name, (_, dtype, shapes) in checks)
        n, positions, ndarray = len(checks), self._all_positions, np.ndarray

        def quick(feed: Any) -> list[Any] | None:
            if type(feed) is not dict or len(feed) != n:
                return None
            values = []
            for name, dtype, shapes in checks:
                v = feed.get(name)
                if type(v) is not ndarray or v.dtype is not dtype or v.shape not in shapes:
                    return None
                values.append(v)
            return finish_at(run_values(values), positions, values)

        return quick

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: dict[str, Any],
        run_options: RunOptions | None = None,
    ) -> list[Any]:
        """Run the model; returns the requested outputs (all when ``output_names`` is None or
        empty) as numpy arrays, lists (sequences) or dicts (maps).

        Raises:
            ValueError: a required input is missing (``InvalidArgument``, a ValueError).
            InvalidArgument: an unknown input or output name, or a value of the wrong type/shape.
            RuntimeException: a kernel failed (names the node, its op and provider).
        """
        if output_names is None and run_options is None and self._quick_run is not None:
            outs = self._quick_run(input_feed)
            if outs is not None:
                return outs
        self._check_required(input_feed)
        positions = (
            self._all_positions if output_names is None else self._output_positions(output_names)
        )
        values = self._validate_feed(input_feed)
        if run_options is None and self._run_values is not None:  # the usual call
            outs = self._run_values(values)
        else:
            outs = self._execute(values, run_options, positions=positions)
        if not self._sparse_outputs:
            return finish_at(outs, positions, values)
        owners = RunOwners(values)
        return [self._result(i, outs[i], values, owners) for i in positions]

    def _result(self, i: int, value: Any, fed: Sequence[Any], owners: Any = None) -> Any:
        """Output ``i`` as the user gets it: an array the caller owns, or a SparseTensor for an
        output declared ``sparse_tensor(...)`` (kernels compute on dense arrays). ``owners``: the
        run's :class:`~ort_core.feeds.RunOwners` of ``fed``, shared by its outputs."""
        if i in self._sparse_outputs and isinstance(value, np.ndarray):
            from .sparse import from_dense

            return from_dense(value)
        return finish_with(value, owners if owners is not None else RunOwners(fed))

    def _result_value(self, i: int, value: Any, fed: Sequence[Any]) -> OrtValue:
        result = self._result(i, value, fed)
        if i in self._sparse_outputs and not isinstance(result, np.ndarray):
            return OrtValue.ort_value_from_sparse_tensor(result)
        return OrtValue._wrap(result, onnx_type=self._outputs[i].type)

    def run_with_ort_values(
        self,
        output_names: Sequence[str] | None,
        input_dict_ort_values: dict[str, OrtValue],
        run_options: RunOptions | None = None,
    ) -> list[OrtValue]:
        """Like :meth:`run`, with OrtValues in and out. Values stay on their device: an input in
        the memory of one of the session's device providers is read there (no copy to the host
        and back), and an output a device provider computes is returned in its memory (its
        ``device_name()`` says where; ``numpy()`` copies it to the host), as in onnxruntime."""
        if not self._device_providers:
            positions, values = self._positions_and_feed(output_names, input_dict_ort_values)
            outs = self._execute(values, run_options, positions=positions)
            return [self._result_value(i, outs[i], values) for i in positions]
        self._check_required(input_dict_ort_values)
        positions = self._output_positions(output_names)
        in_locations: dict[str, str] = {}
        values = self._validate_feed(input_dict_ort_values, in_locations)
        names = list(self._output_index)
        out_locations = {
            names[i]: self._device_outputs[names[i]]
            for i in positions
            if names[i] in self._device_outputs
        }
        plan = self._variant(in_locations, out_locations) if in_locations or out_locations else None
        outs = self._execute(values, run_options, plan, positions=positions)
        by_name = {ep.name: ep for ep in self._providers}
        results = []
        for i in positions:
            loc = out_locations.get(names[i])
            if loc is None:
                results.append(self._result_value(i, outs[i], values))
            else:
                ep = by_name[loc]
                results.append(OrtValue(outs[i], ep.device_name, ep))
        return results

    def run_async(
        self,
        output_names: Sequence[str] | None,
        input_feed: dict[str, Any],
        callback: Any,
        user_data: Any,
        run_options: RunOptions | None = None,
    ) -> None:
        """Run on a worker thread and call ``callback(outputs, user_data, error_message)`` when done:
        ``error_message`` is "" on success; on failure ``outputs`` is [] and the message says why.
        Missing inputs raise here, before the run starts, as in onnxruntime."""
        if not callable(callback):
            raise TypeError("run_async needs a callable callback(outputs, user_data, err).")
        self._check_required(input_feed)

        def work() -> None:
            try:
                positions, values = self._positions_and_feed(output_names, input_feed)
                outs = self._execute(values, run_options, positions=positions)
                results = [self._result(i, outs[i], values) for i in positions]
            except Exception as e:  # delivered to the callback, as onnxruntime does
                message = e.message if isinstance(e, OrtError) else str(e)
                callback([], user_data, message)
                return
            callback(results, user_data, "")

        _async_pool().submit(work)

    def run_with_ortvaluevector(
        self,
        run_options: RunOptions | None,
        feed_names: Sequence[str],
        feeds: Sequence[Any],
        fetch_names: Sequence[str],
        fetches: list[Any],
        fetch_devices: Sequence[Any] | None = None,
    ) -> None:
        """Run with parallel lists of names and OrtValues; ``fetches`` is filled in place (it is
        cleared first), as onnxruntime's low-overhead variant."""
        feed = dict(zip(feed_names, feeds))
        results = self.run_with_ort_values(list(fetch_names), feed, run_options)
        if hasattr(fetches, "push_back"):  # an OrtValueVector: filled with native values
            fetches._items.clear()
            for r in results:
                fetches.push_back(r._get_c_value())
        else:
            del fetches[:]
            fetches.extend(results)

    def create_ortvalue_from_shape_and_type(
        self, shape: Sequence[int], element_type: Any, device_type: str, device_id: int = 0,
        vendor_id: int = -1,
    ) -> OrtValue:  # fmt: skip
        """An uninitialized OrtValue on one of this session's devices."""
        if device_type.lower() != "cpu":
            self._device_provider(device_type, device_id)
        value = OrtValue.ortvalue_from_shape_and_type(shape, element_type, device_type, device_id)
        value._session = self._sess  # session-scoped, as onnxruntime's session allocator values
        return value

    def set_ep_dynamic_options(self, options: dict[str, str]) -> None:
        """Change provider options between runs (e.g. a workload type). Each provider that defines
        ``set_dynamic_options`` takes the keys it knows; a key no provider takes is an error."""
        taken: set[str] = set()
        for ep in self._providers:
            setter = getattr(ep, "set_dynamic_options", None)
            if setter is not None:
                taken |= set(setter(dict(options)) or ())
        left = sorted(set(options) - taken)
        if left:
            raise InvalidArgument(
                f"set_ep_dynamic_options: no provider of this session ({self.get_providers()}) "
                f"takes the option(s) {left}."
            )

    def release_captured_graph(self, graph_annotation_id: int = 0) -> None:
        """Release a captured device graph; providers without graph capture treat it as a no-op
        (as onnxruntime)."""
        for ep in self._providers:
            release = getattr(ep, "release_captured_graph", None)
            if release is not None:
                release(int(graph_annotation_id))

    def _execute(
        self,
        values: list[Any],
        run_options: RunOptions | None,
        plan: Plan | None = None,
        positions: list[int] | None = None,
    ) -> list[Any]:
        if run_options is not None:
            if not isinstance(run_options, RunOptions):
                raise TypeError(
                    f"run_options must be an ort_core.RunOptions, got {type(run_options).__name__}."
                )
            if run_options._adapters:
                self._apply_adapters(values, run_options)
            if plan is None and run_options.only_execute_path_to_fetches and positions is not None:
                plan = self._pruned(tuple(sorted(set(positions))))
        plan = plan or self._plan
        pool = self._inter_pool
        ctx = RunContext(run_options)
        token = enter(ctx)
        fp = fp_state.quiet()  # no numpy floating-point warnings: inf and NaN are IEEE results
        hooked, started = self._hooked, 0
        try:
            for ep in hooked:
                ep.on_run_start(ctx)
                started += 1
            if self._profiler is None and pool is None:
                return plan.run(values, run_options)
            t0 = time.perf_counter()
            outs = plan.run(values, run_options, self._profiler, pool)
            if self._profiler is not None:
                self._profiler.event("Session", "model_run", t0, time.perf_counter())
            return outs
        finally:
            while started:  # the providers whose run started, in reverse
                started -= 1
                hooked[started].on_run_end(ctx)
            fp_state.restore(fp)
            leave(token)
            if run_options is not None:
                shrink = run_options._config.get("memory.enable_memory_arena_shrinkage")
                if shrink:
                    self._shrink(shrink)

    def _pruned(self, positions: tuple[int, ...]) -> Plan:
        key = ("fetches", positions)
        plan = self._variants.get(key)  # type: ignore[call-overload]
        if plan is None:
            with self._variants_lock:
                plan = self._variants.get(key)  # type: ignore[call-overload]
                if plan is None:
                    names = [self._model.graph.outputs[i] for i in positions]
                    plan = schedule(
                        self._prepared, fetches=names, reuse=self._sess_options.enable_mem_reuse
                    )
                    self._variants[key] = plan  # type: ignore[index]
        return plan

    def _apply_adapters(self, values: list[Any], run_options: RunOptions) -> None:
        for adapter in run_options._adapters:
            for name, value in adapter._parameters.items():
                idx = self._input_index.get(name)
                if idx is None or name not in self._model.graph.initializers:
                    raise InvalidArgument(
                        f"LoRA adapter parameter '{name}' is not an overridable initializer of this "
                        f"model (those are {self._overridable}); the adapter does not fit it."
                    )
                values[idx] = self._check_value(name, value)

    def _shrink(self, spec: str) -> None:
        """``memory.enable_memory_arena_shrinkage`` = "cpu:0;gpu:0": return the named devices' free
        arena memory to the system after the run."""
        wanted = set()
        for part in spec.split(";"):
            part = part.strip()
            if not part:
                continue
            kind, _, dev = part.partition(":")
            if kind.lower() not in ("cpu", "gpu", "npu") or not dev.strip().isdigit():
                raise InvalidArgument(
                    f"memory.enable_memory_arena_shrinkage: '{part}' is not 'cpu:<id>' or "
                    "'gpu:<id>' (separate several with ';')."
                )
            wanted.add((kind.lower(), int(dev)))
        for ep in self._providers:
            dev = ep.memory_device
            kind, device_id = dev.kind, dev.device_id()
            if (kind, device_id) in wanted:
                release = getattr(ep, "release_free_memory", None)
                if release is not None:
                    release()

    # -- IOBinding -----------------------------------------------------------------------------------
    def io_binding(self) -> IOBinding:
        """A new :class:`IOBinding` for :meth:`run_with_iobinding`."""
        return IOBinding(self)

    def _device_provider(self, device_type: str, device_id: int = 0) -> ExecutionProvider:
        for ep in self._providers:
            if ep.device_name == device_type.lower() and not ep.host_memory:
                return ep
        raise InvalidArgument(
            f"no provider of this session keeps tensors on device '{device_type}' (providers: "
            f"{self.get_providers()}); add one to providers= or bind on 'cpu'."
        )

    def _variant(self, inputs: dict[str, str], outputs: dict[str, str]) -> Plan:
        key = (tuple(sorted(inputs.items())), tuple(sorted(outputs.items())))
        plan = self._variants.get(key)
        if plan is None:
            with self._variants_lock:
                plan = self._variants.get(key)
                if plan is None:
                    plan = schedule(
                        self._prepared, inputs, outputs, reuse=self._sess_options.enable_mem_reuse
                    )
                    self._variants[key] = plan
        return plan

    def run_with_iobinding(
        self, iobinding: IOBinding, run_options: RunOptions | None = None
    ) -> None:
        """Run with bound inputs and outputs; results go to ``iobinding.get_outputs()``.

        Raises:
            ValueError: the binding was made by another session (or by this one before
                ``set_providers``), or binds a value another session created; no output is bound.
        """
        state = binding_state(iobinding)
        if state.owner is not self._sess:
            raise InvalidArgument(
                "IOBinding must be used with the session that created it (or was created before "
                "set_providers() re-created this session): make a new one with io_binding()."
            )
        self._validate_ortvalue_ownership(state.inputs.values())
        if not state.outputs:
            raise InvalidArgument(
                "At least one output should be requested: bind outputs with bind_output() or "
                "bind_ortvalue_output() before run_with_iobinding()."
            )
        feed: dict[str, Any] = {}
        in_locations: dict[str, str] = {}
        by_class = {type(ep): ep for ep in self._providers}
        for name, ov in state.inputs.items():
            ep = by_class.get(type(ov.provider)) if ov.provider is not None else None
            if ep is not None and not ep.host_memory:
                in_locations[name] = ep.name
            feed[name] = ov
        values: list[Any] = [None] * len(self._input_index)
        missing = [a.name for a in self._inputs if a.name not in feed]
        if missing:
            raise InvalidArgument(f"Required inputs ({missing}) are not bound.")
        for name, ov in feed.items():
            values[self._input_index[name]] = self._check_value(name, ov, keep_device=True)
        graph = self._model.graph
        for name in self._overridable:
            if name not in feed:
                values[self._input_index[name]] = graph.initializers[name]
        bound = state.outputs
        out_locations = {n: loc for n, (loc, _) in bound.items() if loc is not None}
        plan = self._variant(in_locations, out_locations)
        outs = self._execute(values, run_options, plan)
        by_name = {ep.name: ep for ep in self._providers}
        results = []
        for name, (loc, target) in bound.items():
            value = outs[self._output_index[name]]
            if target is not None:
                _copy_into(target, value, name)
                results.append(target)
            elif loc is None:
                k = self._output_index[name]
                results.append(self._result_value(k, value, values))
            else:
                ep = by_name[loc]
                results.append(OrtValue(value, ep.device_name, ep))
        state.results = results

    def end_profiling(self) -> str:
        """Write the profile (Chrome-trace JSON) and return its file name; '' when not profiling."""
        if self._profiler is None:
            return ""
        path = self._profiler.end()
        self._profiler = None
        return path

    def get_profiling_start_time_ns(self) -> int:
        """When profiling started, in nanoseconds since the epoch (0 when not profiling)."""
        return 0 if self._profiler is None else int(self._profiler.start_ns)


class _SessionHandle:
    """``session._sess``: the lower-level session object onnxruntime code sometimes reaches
    (``sess._sess.run_with_ort_values(feeds, names, run_options)`` returning an OrtValueVector)."""

    __slots__ = ("_owner",)

    def __init__(self, owner: InferenceSession) -> None:
        self._owner = owner

    def run(self, output_names: Any, input_feed: dict, run_options: Any = None) -> list[Any]:
        return self._owner.run(output_names, input_feed, run_options)

    def run_with_ort_values(
        self, input_dict: dict[str, Any], output_names: Sequence[str], run_options: Any = None
    ) -> Any:
        from .ortvalue import OrtValueVector

        feed = {
            k: v if isinstance(v, OrtValue) else OrtValue._from_c(v) for k, v in input_dict.items()
        }
        outs = self._owner.run_with_ort_values(list(output_names), feed, run_options)
        return OrtValueVector([v._get_c_value() for v in outs])

    def get_providers(self) -> list[str]:
        return self._owner.get_providers()

    # what IOBinding asks of its session
    def providers(self) -> list[ExecutionProvider]:
        """The session's provider instances, in priority order."""
        return list(self._owner._providers)

    def input_names(self) -> dict[str, int]:
        """Graph input name -> position."""
        return self._owner._input_index

    def output_names(self) -> dict[str, int]:
        """Graph output name -> position."""
        return self._owner._output_index

    def device_provider(self, device_type: str, device_id: int = 0) -> ExecutionProvider:
        """The provider of this session whose memory is ``device_type``.

        Raises:
            InvalidArgument: no provider of the session keeps tensors on that device.
        """
        return self._owner._device_provider(device_type, device_id)

    def run_with_iobinding(self, iobinding: Any, run_options: Any = None) -> None:
        self._owner.run_with_iobinding(iobinding, run_options)

    def webgpu_context_id(self) -> int:
        """ort-core has no WebGPU provider: -1 (no WebGPU context), as onnxruntime reports for a
        session without one."""
        return -1

    def is_webgpu_graph_capture_enabled(self) -> bool:
        return False

    def get_provider_options(self) -> dict[str, dict[str, str]]:
        return self._owner.get_provider_options()

    @property
    def inputs_meta(self) -> list[NodeArg]:
        return self._owner.get_inputs()

    @property
    def outputs_meta(self) -> list[NodeArg]:
        return self._owner.get_outputs()

    @property
    def session_options(self) -> SessionOptions:
        return self._owner.get_session_options()

    def end_profiling(self) -> str:
        return self._owner.end_profiling()

    @property
    def get_profiling_start_time_ns(self) -> int:
        return self._owner.get_profiling_start_time_ns()


#: how many distinct input shapes a session remembers as already checked, per input
_ACCEPTED_SHAPES = 64


def _has_run_hooks(ep: ExecutionProvider) -> bool:
    """Whether ``ep`` defines ``on_run_start`` or ``on_run_end`` (the base class's do nothing)."""
    return (
        getattr(ep.on_run_start, "__func__", None) is not ExecutionProvider.on_run_start
        or getattr(ep.on_run_end, "__func__", None) is not ExecutionProvider.on_run_end
    )


_pool_lock = threading.Lock()
_pool: list[Any] = []


def _async_pool() -> Any:
    """The worker threads of run_async (created on first use)."""
    with _pool_lock:
        if not _pool:
            from concurrent.futures import ThreadPoolExecutor

            _pool.append(
                ThreadPoolExecutor(
                    max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="ort-core-run"
                )
            )
        return _pool[0]


def _shape_of(tp: onnx.TypeProto | None) -> list[Any]:
    """``NodeArg.shape`` as onnxruntime reports it: the dims of a tensor (or sparse tensor, or the
    tensor inside an optional), ints for fixed dims, names for symbolic ones, None for unknown;
    [] when there is no shape (sequences, maps, tensors of unknown rank)."""
    which = tp.WhichOneof("value") if tp is not None else None
    if which == "optional_type":
        return _shape_of(tp.optional_type.elem_type)
    if which == "sparse_tensor_type" and tp.sparse_tensor_type.HasField("shape"):
        return [
            d.dim_value
            if d.HasField("dim_value")
            else d.dim_param
            if d.HasField("dim_param")
            else None
            for d in tp.sparse_tensor_type.shape.dim
        ]
    shape = tensor_shape(tp)
    return list(shape) if shape is not None else []


def _inter_op_pool(so: SessionOptions) -> Any:
    """The threads of ORT_PARALLEL sessions: ``inter_op_num_threads`` of them (the global pool size
    with ``use_per_session_threads = False``; 0 means the number of cores). None when sequential."""
    if so.execution_mode != ExecutionMode.ORT_PARALLEL:
        return None
    from concurrent.futures import ThreadPoolExecutor

    from .environment import global_thread_pool_sizes

    threads = so.inter_op_num_threads
    if not so.use_per_session_threads and global_thread_pool_sizes() is not None:
        threads = global_thread_pool_sizes()[1]
    threads = threads or (os.cpu_count() or 1)
    if threads <= 1:
        return None
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ort-core-inter-op")


def _version() -> str:
    return __version__


def _override_free_dims(graph: Any, so: SessionOptions) -> None:
    """Apply free dimension overrides (by dim_param name or by denotation) to the graph inputs'
    types, so get_inputs() shows them and fed shapes are checked against them."""
    by_name, by_denotation = so._free_dims_by_name, so._free_dims_by_denotation
    if not by_name and not by_denotation:
        return
    for name in graph.inputs:
        tp = graph.value_types.get(name)
        if tp is None or tp.WhichOneof("value") != "tensor_type":
            continue
        if not tp.tensor_type.HasField("shape"):
            continue
        changed = None
        for i, d in enumerate(tp.tensor_type.shape.dim):
            value = None
            if d.denotation and d.denotation in by_denotation:
                value = by_denotation[d.denotation]
            elif d.HasField("dim_param") and d.dim_param in by_name:
                value = by_name[d.dim_param]
            if value is None:
                continue
            if d.HasField("dim_value") and d.dim_value != value:
                raise InvalidArgument(
                    f"Free dimension override {value} for dimension {i} of input '{name}' "
                    f"conflicts with its fixed size {d.dim_value}."
                )
            if changed is None:
                changed = onnx.TypeProto()
                changed.CopyFrom(tp)
            changed.tensor_type.shape.dim[i].dim_value = int(value)
        if changed is not None:
            graph.value_types[name] = changed


#: The session options an ``ort_config`` metadata entry may set, as onnxruntime reads them.
_ORT_CONFIG_KEYS = {
    "intra_op_num_threads": lambda v: v,
    "inter_op_num_threads": lambda v: v,
    "execution_mode": ExecutionMode,
    "graph_optimization_level": GraphOptimizationLevel,
    "enable_profiling": lambda v: bool(v),
}


def _apply_ort_config(model: Model, so: SessionOptions) -> None:
    """Read the session options stored in the model's ``ort_config`` metadata (JSON with a
    ``session_options`` object), as onnxruntime does when ``ORT_LOAD_CONFIG_FROM_MODEL=1``."""
    import json

    text = model.metadata_props.get("ort_config")
    if text is None:
        return
    try:
        config = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(
            f"Json stored in the `ort_config` key cannot be parsed. Error message: {e}"
        ) from None
    options = config.get("session_options") if isinstance(config, dict) else None
    if not isinstance(options, dict):
        return
    for key, value in options.items():
        convert = _ORT_CONFIG_KEYS.get(key)
        if convert is None:
            logs.log(
                logs.Severity.INFO,
                f"Ignoring unsupported session option in ORT config: {key}",
                logid=so.logid,
                level=so.log_severity_level,
            )
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"{key} option in the model file must be an integer")
        if key.endswith("threads") and value < 0:
            raise InvalidArgument(f"Unsupported value for {key}: {value}")
        try:
            setattr(so, key, convert(value))
        except (TypeError, ValueError):
            raise InvalidArgument(f"Unsupported {key} value in ORT config: {value}") from None


def _copy_into(target: OrtValue, value: Any, name: str) -> None:
    """Write an output into a preallocated OrtValue (host or device)."""
    dst = target.value()
    if tuple(getattr(dst, "shape", ())) != tuple(value.shape) or dst.dtype != value.dtype:
        raise InvalidArgument(
            f"output '{name}' is {value.dtype}{list(value.shape)} but the bound OrtValue is "
            f"{dst.dtype}{list(getattr(dst, 'shape', ()))}; bind one of the right type and shape."
        )
    dst[...] = value
