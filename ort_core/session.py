"""InferenceSession, SessionOptions and RunOptions: onnxruntime's Python API over ort-core."""

from __future__ import annotations

import enum
import os
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from .errors import InvalidArgument, ProviderNotAvailable
from .iobinding import IOBinding
from .ir import Model, load_model, model_to_proto, tensor_dtype, tensor_shape, type_str
from .optimizer import GraphOptimizationLevel, PassContext, all_passes, check_disabled, optimize
from .ortvalue import OrtValue
from .partitioner import EpAssignedSubgraph
from .plan import Plan, prepare, schedule
from .plugins import get_plugin_manager
from .profiling import Profiler
from .provider import ExecutionProvider

__all__ = [
    "InferenceSession",
    "SessionOptions",
    "RunOptions",
    "GraphOptimizationLevel",
    "ExecutionMode",
    "NodeArg",
    "ModelMetadata",
    "get_all_providers",
    "get_available_providers",
    "get_provider_availability",
    "get_device",
]


class ExecutionMode(enum.IntEnum):
    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class SessionOptions:
    """Options of a session, named as onnxruntime names them."""

    def __init__(self) -> None:
        self.graph_optimization_level = GraphOptimizationLevel.ORT_ENABLE_ALL
        self.optimized_model_filepath = ""
        self.intra_op_num_threads = 0
        self.inter_op_num_threads = 0
        self.execution_mode = ExecutionMode.ORT_SEQUENTIAL
        self.enable_profiling = False
        self.profile_file_prefix = "onnxruntime_profile_"
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.enable_mem_pattern = True
        self.enable_mem_reuse = True
        self.enable_cpu_mem_arena = True
        self.use_deterministic_compute = False
        self._config: dict[str, str] = {}
        self._free_dims_by_name: dict[str, int] = {}

    def add_session_config_entry(self, key: str, value: str) -> None:
        """Set a session configuration entry (e.g. ``session.disable_cpu_ep_fallback`` = ``"1"``)."""
        self._config[str(key)] = str(value)

    def get_session_config_entry(self, key: str) -> str:
        if key not in self._config:
            raise InvalidArgument(f"session config entry '{key}' is not set")
        return self._config[key]

    def has_session_config_entry(self, key: str) -> bool:
        return key in self._config

    def add_free_dimension_override_by_name(self, dim_name: str, dim_value: int) -> None:
        """Fix a symbolic dimension to a value (checked against inputs at run time)."""
        self._free_dims_by_name[str(dim_name)] = int(dim_value)

    def _flag(self, key: str) -> bool:
        return self._config.get(key, "0").strip().lower() in ("1", "true", "yes")


class RunOptions:
    """Per-run options. Setting ``terminate`` from another thread stops a run between two nodes."""

    def __init__(self) -> None:
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.run_tag = ""
        self.only_execute_path_to_fetches = False
        self._terminate = False
        self._watch = True
        self._config: dict[str, str] = {}

    @property
    def terminate(self) -> bool:
        return self._terminate

    @terminate.setter
    def terminate(self, value: bool) -> None:
        self._terminate = bool(value)

    def add_run_config_entry(self, key: str, value: str) -> None:
        self._config[str(key)] = str(value)

    def get_run_config_entry(self, key: str) -> str:
        return self._config[key]


@dataclass(frozen=True)
class NodeArg:
    """A graph input or output: name, type string (``tensor(float)``) and shape (ints, strings for
    symbolic dims, None for unknown ones)."""

    name: str
    type: str
    shape: list[Any] | None

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
    """'GPU' when a GPU provider is available, else 'CPU' (as onnxruntime reports its build)."""
    pm = get_plugin_manager()
    for e in pm.ordered():
        if e.cls.device_type == "gpu" and e.availability():
            return "GPU"
    return "CPU"


def _normalize_providers(providers: Any, provider_options: Any) -> list[tuple[str, dict]]:
    if isinstance(providers, (str, bytes)):
        raise TypeError(
            f"providers must be a list of provider names or (name, options) tuples, not a string; "
            f"write providers=[{providers!r}]."
        )
    entries: list[tuple[str, dict]] = []
    for p in providers:
        if isinstance(p, tuple):
            if len(p) != 2 or not isinstance(p[0], str) or not isinstance(p[1], dict):
                raise InvalidArgument(
                    f"a providers entry must be a name or (name, dict); got {p!r}"
                )
            entries.append((p[0], dict(p[1])))
        elif isinstance(p, str):
            entries.append((p, {}))
        else:
            raise InvalidArgument(f"a providers entry must be a name or (name, dict); got {p!r}")
    if provider_options is not None:
        if any(isinstance(p, tuple) for p in providers):
            raise InvalidArgument(
                "give options either in providers tuples or in provider_options, not both"
            )
        if len(provider_options) != len(entries):
            raise InvalidArgument(
                f"provider_options has {len(provider_options)} entries but providers has "
                f"{len(entries)}; give one options dict per provider."
            )
        entries = [(n, dict(o or {})) for (n, _), o in zip(entries, provider_options)]
    return entries


def resolve_providers(
    providers: Any, provider_options: Any, sess_options: SessionOptions
) -> list[ExecutionProvider]:
    """Instantiate the requested providers in order, then the CPU fallback unless disabled."""
    pm = get_plugin_manager()
    no_fallback = sess_options._flag("session.disable_cpu_ep_fallback")
    strict = no_fallback or sess_options._flag("session.strict_providers")
    if providers is None:
        if provider_options is not None:
            raise InvalidArgument("provider_options given without providers")
        requested = [(e.name, {}) for e in pm.ordered() if e.availability()]
    else:
        requested = _normalize_providers(providers, provider_options)
    instances: list[ExecutionProvider] = []
    for name, options in requested:
        entry = pm.resolve(name)
        if entry is None:
            canonical = next((k for k in KNOWN_PROVIDERS if k.lower() == name.lower()), None)
            if canonical is None and name not in FOREIGN_PROVIDERS:
                installed = ", ".join(get_all_providers()) or "none"
                raise InvalidArgument(
                    f"Unknown execution provider '{name}'. Installed providers: {installed}. Check "
                    "the spelling (names are like 'CPUExecutionProvider' or the alias 'cpu')."
                )
            hint = (
                f"install it with `pip install {KNOWN_PROVIDERS[canonical]}`"
                if canonical
                else "ort-core has no such provider"
            )
            _unavailable(f"Execution provider '{name}' is not installed: {hint}.", strict)
            continue
        avail = entry.availability()
        if not avail:
            _unavailable(
                f"Execution provider '{entry.name}' ({entry.distribution}) is not available here: "
                f"{avail.reason}",
                strict,
            )
            continue
        if any(type(ep) is entry.cls for ep in instances):
            continue
        try:
            instances.append(entry.cls(options, sess_options))
        except ProviderNotAvailable as e:  # e.g. the requested device type is absent
            _unavailable(f"Execution provider '{entry.name}' cannot start: {e}", strict)
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


def _unavailable(message: str, strict: bool) -> None:
    if strict:
        raise ProviderNotAvailable(message + " (strict mode: not falling back)")
    warnings.warn(message + " Falling back to the next providers.", RuntimeWarning, stacklevel=4)


# -- session ------------------------------------------------------------------------------------
class InferenceSession:
    """Load a model, partition it among providers, and run it; onnxruntime's API.

    Args:
        path_or_bytes: a model path, its serialized bytes, or an ``onnx.ModelProto``.
        sess_options: :class:`SessionOptions`.
        providers: provider names or ``(name, options)`` tuples in priority order; None means every
            available provider. The CPU provider is appended as fallback unless the session config
            entry ``session.disable_cpu_ep_fallback`` is ``"1"``.
        provider_options: one options dict per entry of ``providers``.
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
        if kwargs:
            raise TypeError(f"unexpected keyword arguments: {sorted(kwargs)}")
        t0 = time.perf_counter()
        self._sess_options = sess_options or SessionOptions()
        self._profiler = (
            Profiler(self._sess_options.profile_file_prefix)
            if self._sess_options.enable_profiling
            else None
        )
        self._model_path = (
            os.fspath(path_or_bytes) if isinstance(path_or_bytes, (str, os.PathLike)) else None
        )
        self._model: Model = load_model(path_or_bytes)
        t_loaded = time.perf_counter()
        self._providers = resolve_providers(providers, provider_options, self._sess_options)
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
        self._inputs = self._node_args(graph.inputs, graph, skip_initializers=True)
        self._overridable = [n for n in graph.inputs if n in graph.initializers]
        self._outputs = self._node_args(graph.outputs, graph)
        so = self._sess_options
        passes = all_passes()
        disabled = list(disabled_optimizers or [])
        if so.has_session_config_entry("optimization.disable_specified_optimizers"):
            disabled += so.get_session_config_entry(
                "optimization.disable_specified_optimizers"
            ).split(",")
        disabled = sorted(check_disabled(disabled, passes))
        self._pass_ctx = PassContext(list(self._providers), so)
        self.optimization_report = optimize(
            self._model,
            so.graph_optimization_level,
            self._pass_ctx,
            stage="basic",
            disabled=disabled,
            passes=passes,
        )
        self._prepared = prepare(
            self._model,
            graph,
            self._providers,
            session_options=so,
            optimize_after_partition=lambda: self._provider_stage(disabled, passes),
        )
        if so.optimized_model_filepath:
            self._save_optimized(so.optimized_model_filepath)
        self._plan: Plan = schedule(self._prepared)
        # plans for IOBinding, keyed by (input locations, output locations); kernels are shared
        self._variants: dict[tuple, Plan] = {((), ()): self._plan}
        self._variants_lock = threading.Lock()
        self._input_index = {name: i for i, name in enumerate(graph.inputs)}
        self._output_index = {name: i for i, name in enumerate(graph.outputs)}
        self._input_checks = self._make_input_checks()
        if self._profiler is not None:
            self._profiler.event("Session", "model_loading_uri", t0, t_loaded)
            self._profiler.event("Session", "session_initialization", t0, time.perf_counter())

    def _provider_stage(self, disabled: list[str], passes: list[Any]) -> None:
        report = optimize(
            self._model,
            self._sess_options.graph_optimization_level,
            self._pass_ctx,
            stage="provider",
            disabled=disabled,
            passes=passes,
        )
        for name, count in report.applied.items():
            self.optimization_report.applied[name] = (
                self.optimization_report.applied.get(name, 0) + count
            )

    def _save_optimized(self, path: str) -> None:
        """Save the optimized graph (fused provider subgraphs expanded back) as a valid model."""
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
        onnx.save(model_to_proto(saved), path)

    # -- introspection ---------------------------------------------------------------------------
    @staticmethod
    def _node_args(names: list[str], graph, skip_initializers: bool = False) -> list[NodeArg]:
        args = []
        for n in names:
            if skip_initializers and n in graph.initializers:
                continue
            tp = graph.value_types.get(n) or graph.type_of(n)
            shape = tensor_shape(tp)
            args.append(NodeArg(n, type_str(tp), list(shape) if shape is not None else None))
        return args

    def get_inputs(self) -> list[NodeArg]:
        """The graph inputs the caller must feed (initializers listed as inputs excluded)."""
        return list(self._inputs)

    def get_overridable_initializers(self) -> list[NodeArg]:
        return self._node_args(self._overridable, self._model.graph)

    def get_outputs(self) -> list[NodeArg]:
        return list(self._outputs)

    def get_modelmeta(self) -> ModelMetadata:
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
        return {ep.name: ep.get_options() for ep in self._providers}

    def get_session_options(self) -> SessionOptions:
        return self._sess_options

    def get_provider_graph_assignment_info(self) -> list[EpAssignedSubgraph]:
        """Which provider runs which node, as onnxruntime reports it (one entry per kernel node or
        per fused subgraph, in execution order)."""
        return list(self._plan.partition.assignment)

    @property
    def placement_reasons(self) -> dict[str, list[str]]:
        """For each node some provider declined: the reasons each gave."""
        return dict(self._plan.partition.reasons)

    @property
    def copy_count(self) -> int:
        """How many device copies the core inserted between providers."""
        return self._plan.copies

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

    def _validate_feed(self, input_feed: Any) -> list[Any]:
        if not isinstance(input_feed, dict):
            raise InvalidArgument(
                f"input_feed must be a dict of input name -> value, got {type(input_feed).__name__}."
            )
        values: list[Any] = [None] * len(self._input_index)
        given = set()
        for name, value in input_feed.items():
            idx = self._input_index.get(name)
            if idx is None:
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
            values[idx] = self._check_value(name, value)
            given.add(name)
        missing = [a.name for a in self._inputs if a.name not in given]
        if missing:
            raise InvalidArgument(
                f"Required inputs ({missing}) are missing from input feed ({sorted(given)})."
            )
        graph = self._model.graph
        for name in self._overridable:
            if name not in given:
                values[self._input_index[name]] = graph.initializers[name]
        return values

    def _check_value(self, name: str, value: Any, keep_device: bool = False) -> Any:
        dtype, dims, tstr, tp = self._input_checks[name]
        if isinstance(value, OrtValue):
            if keep_device and value.provider is not None:
                self._check_shape(name, value.value(), dtype, dims, tstr)
                return value.value()
            value = value.numpy()
        kind = tp.WhichOneof("value") if tp is not None else None
        if kind in ("sequence_type", "map_type", "optional_type"):
            return value
        if not isinstance(value, np.ndarray):
            try:
                value = np.asarray(value, dtype=dtype) if dtype is not None else np.asarray(value)
            except (TypeError, ValueError) as e:
                raise InvalidArgument(
                    f"Input '{name}' cannot be converted to {tstr}: {e}. Pass a numpy array."
                ) from None
        return self._check_shape(name, value, dtype, dims, tstr)

    def _check_shape(self, name: str, value: Any, dtype, dims, tstr) -> Any:
        if dtype is not None and value.dtype != dtype:
            if dtype.kind == "O" and value.dtype.kind == "U":
                value = value.astype(object)
            else:
                got = type_str(onnx.helper.make_tensor_type_proto(_elem(value.dtype), None))
                raise InvalidArgument(
                    f"Unexpected input data type for '{name}'. Actual: ({got}) , expected: ({tstr}). "
                    f"Convert it, e.g. x.astype(np.{dtype.name})."
                )
        if dims is not None:
            if value.ndim != len(dims):
                raise InvalidArgument(
                    f"Invalid rank for input: {name} Got: {value.ndim} Expected: {len(dims)} "
                    f"(expected shape {list(dims)}, got {list(value.shape)}). Please fix either "
                    "the inputs/outputs or the model."
                )
            bad = [
                (i, g, e)
                for i, (g, e) in enumerate(zip(value.shape, dims))
                if isinstance(e, int) and e > 0 and g != e
            ]
            if bad:
                desc = " ".join(f"index: {i} Got: {g} Expected: {e}" for i, g, e in bad)
                raise InvalidArgument(
                    f"Got invalid dimensions for input: {name} for the following indices {desc} "
                    f"(expected shape {list(dims)}, got {list(value.shape)}). Please fix either "
                    "the inputs or the model."
                )
        return value

    def _output_positions(self, output_names: Sequence[str] | None) -> list[int]:
        if output_names is None or len(output_names) == 0:
            return list(range(len(self._output_index)))
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

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: dict[str, Any],
        run_options: RunOptions | None = None,
    ) -> list[Any]:
        """Run the model; returns the requested outputs (all when ``output_names`` is None)."""
        positions = self._output_positions(output_names)
        values = self._validate_feed(input_feed)
        outs = self._execute(values, run_options)
        return [_finish(outs[i]) for i in positions]

    def run_with_ort_values(
        self,
        output_names: Sequence[str] | None,
        input_dict_ort_values: dict[str, OrtValue],
        run_options: RunOptions | None = None,
    ) -> list[OrtValue]:
        """Like :meth:`run`, with OrtValues in and out."""
        positions = self._output_positions(output_names)
        values = self._validate_feed(input_dict_ort_values)
        outs = self._execute(values, run_options)
        return [OrtValue(_finish(outs[i])) for i in positions]

    def _execute(
        self, values: list[Any], run_options: RunOptions | None, plan: Plan | None = None
    ) -> list[Any]:
        plan = plan or self._plan
        for ep in self._providers:
            ep.on_run_start()
        try:
            if self._profiler is None:
                return plan.run(values, run_options)
            t0 = time.perf_counter()
            outs = plan.run(values, run_options, self._profiler)
            self._profiler.event("Session", "model_run", t0, time.perf_counter())
            return outs
        finally:
            for ep in self._providers:
                ep.on_run_end()

    # -- IOBinding -----------------------------------------------------------------------------------
    def io_binding(self) -> IOBinding:
        """A new :class:`IOBinding` for :meth:`run_with_iobinding`."""
        return IOBinding(self)

    def _device_provider(self, device_type: str, device_id: int = 0) -> ExecutionProvider:
        for ep in self._providers:
            if ep.device_type == device_type.lower() and not ep.host_memory:
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
                    plan = schedule(self._prepared, inputs, outputs)
                    self._variants[key] = plan
        return plan

    def run_with_iobinding(
        self, iobinding: IOBinding, run_options: RunOptions | None = None
    ) -> None:
        """Run with bound inputs and outputs; results go to ``iobinding.get_outputs()``."""
        feed: dict[str, Any] = {}
        in_locations: dict[str, str] = {}
        by_class = {type(ep): ep for ep in self._providers}
        for name, ov in iobinding._inputs.items():
            ep = by_class.get(type(ov.provider)) if ov.provider is not None else None
            if ep is not None and not ep.host_memory:
                in_locations[name] = ep.name
                feed[name] = ov
            else:
                feed[name] = OrtValue(ov.numpy())
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
        bound = iobinding._outputs or {n: (None, None) for n in self._output_index}
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
                results.append(OrtValue(_finish(value)))
            else:
                ep = by_name[loc]
                results.append(OrtValue(value, ep.device_type, ep))
        iobinding._results = results

    def end_profiling(self) -> str:
        """Write the profile (Chrome-trace JSON) and return its file name; '' when not profiling."""
        if self._profiler is None:
            return ""
        path = self._profiler.end()
        self._profiler = None
        return path

    def get_profiling_start_time_ns(self) -> int:
        return 0 if self._profiler is None else int(self._profiler.start * 1e9)


def _elem(dtype: np.dtype) -> int:
    try:
        return onnx.helper.np_dtype_to_tensor_dtype(dtype)
    except (KeyError, TypeError, ValueError):
        return onnx.TensorProto.STRING if dtype.kind in "OUS" else onnx.TensorProto.UNDEFINED


def _copy_into(target: OrtValue, value: Any, name: str) -> None:
    """Write an output into a preallocated OrtValue (host or device)."""
    dst = target.value()
    if tuple(getattr(dst, "shape", ())) != tuple(value.shape) or dst.dtype != value.dtype:
        raise InvalidArgument(
            f"output '{name}' is {value.dtype}{list(value.shape)} but the bound OrtValue is "
            f"{dst.dtype}{list(getattr(dst, 'shape', ()))}; bind one of the right type and shape."
        )
    dst[...] = value


def _finish(value: Any) -> Any:
    """Outputs are arrays the caller owns: scalars become 0-d arrays, read-only views are copied."""
    if isinstance(value, np.ndarray):
        return value if value.flags.writeable else value.copy()
    if isinstance(value, np.generic):
        return np.asarray(value)
    return value
