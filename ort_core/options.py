"""SessionOptions, RunOptions and their enums, with onnxruntime's names, defaults and checks.

A leaf module: it imports no session code. Every attribute and method onnxruntime offers is here, and
every one acts (or, where ort-core cannot honour a value, the session refuses it with a clear error);
none is accepted and silently ignored. ``docs/compatibility.md`` lists what each does here.

Session configuration entries (``add_session_config_entry``) are checked when a session is created
(:func:`check_session_config`): keys ort-core acts on, keys of onnxruntime whose effect already holds
here (with the reason), values ort-core cannot honour (an error), and unknown keys (a warning that
names the key, since onnxruntime accepts any key and a typo would otherwise go unnoticed).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Sequence
from typing import Any

from . import errors
from .errors import InvalidArgument

__all__ = [
    "ExecutionMode",
    "ExecutionOrder",
    "GraphOptimizationLevel",
    "OrtExecutionProviderDevicePolicy",
    "SessionOptions",
    "RunOptions",
    "check_session_config",
]


class GraphOptimizationLevel(enum.IntEnum):
    """onnxruntime's optimization levels, with its numbers."""

    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    """Sequential execution, or independent branches of the graph on ``inter_op_num_threads``
    threads."""

    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class ExecutionOrder(enum.IntEnum):
    """The topological order the plan follows: graph order (DEFAULT), node priority (PRIORITY_BASED:
    shape computations first), or the order that frees memory soonest (MEMORY_EFFICIENT)."""

    DEFAULT = 0
    PRIORITY_BASED = 1
    MEMORY_EFFICIENT = 2


class OrtExecutionProviderDevicePolicy(enum.IntEnum):
    """How ``providers=None`` sessions choose providers when a policy is set (onnxruntime's
    device-selection policies, with its numbers)."""

    DEFAULT = 0
    PREFER_CPU = 1
    PREFER_NPU = 2
    PREFER_GPU = 3
    MAX_PERFORMANCE = 4
    MAX_EFFICIENCY = 5
    MIN_OVERALL_POWER = 6


# -- typed attributes ---------------------------------------------------------------------------
class _Attr:
    """A typed attribute: assigning a value of the wrong type raises TypeError, as onnxruntime's
    bindings do (a string for a thread count is a mistake, not a request)."""

    def __init__(self, kind: Any, default: Any, doc: str = "") -> None:
        self.kind = kind
        self.default = default
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.slot = "_" + name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(obj, self.slot, self.default)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj, self.slot, self.convert(value))

    def convert(self, value: Any) -> Any:
        kind = self.kind
        owner = "SessionOptions/RunOptions"
        if kind is int:
            if isinstance(value, (int,)) or type(value).__name__.startswith(("int", "uint")):
                try:
                    return int(value)
                except (TypeError, ValueError):
                    pass
            raise TypeError(f"{owner}.{self.name} must be an integer, got {value!r}.")
        if kind is bool:
            if isinstance(value, bool) or type(value).__name__ == "bool_":
                return bool(value)
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise TypeError(f"{owner}.{self.name} must be True or False, got {value!r}.")
        if kind is str:
            if isinstance(value, str):
                return value
            if isinstance(value, os.PathLike) and self.name.endswith(("filepath", "prefix")):
                return os.fspath(value)
            raise TypeError(f"{owner}.{self.name} must be a string, got {value!r}.")
        # an IntEnum: its members, or an integer that is one of them
        if isinstance(value, kind):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return kind(value)
            except ValueError:
                pass
        members = ", ".join(f"{kind.__name__}.{m.name}" for m in kind)
        raise TypeError(f"{owner}.{self.name} must be one of {members}; got {value!r}.")


def _check_key(key: Any, value: Any, what: str) -> tuple[str, str]:
    if not isinstance(key, str) or not isinstance(value, str):
        raise TypeError(
            f"{what} takes a string key and a string value, got {type(key).__name__} and "
            f"{type(value).__name__}: pass str(value)."
        )
    if not key:
        raise InvalidArgument(f"{what}: the config key is empty.")
    if len(key) > 128:
        raise InvalidArgument(f"{what}: config key '{key[:40]}...' is longer than 128 characters.")
    if len(value) > 1024:
        raise InvalidArgument(
            f"{what}: the value of config key '{key}' is longer than 1024 characters."
        )
    return key, value


class SessionOptions:
    """Options of a session, named as onnxruntime names them (``onnxruntime.SessionOptions``)."""

    graph_optimization_level = _Attr(
        GraphOptimizationLevel, GraphOptimizationLevel.ORT_ENABLE_ALL, "Graph optimization level."
    )
    optimized_model_filepath = _Attr(str, "", "Where to save the optimized model ('' to skip).")
    intra_op_num_threads = _Attr(int, 0, "Threads inside one operator (BLAS); 0: all cores.")
    inter_op_num_threads = _Attr(int, 0, "Threads running independent nodes in ORT_PARALLEL.")
    execution_mode = _Attr(ExecutionMode, ExecutionMode.ORT_SEQUENTIAL, "Sequential or parallel.")
    execution_order = _Attr(ExecutionOrder, ExecutionOrder.DEFAULT, "Topological order used.")
    enable_profiling = _Attr(bool, False, "Write a Chrome-trace profile (end_profiling()).")
    profile_file_prefix = _Attr(str, "onnxruntime_profile_", "Profile file name prefix.")
    log_severity_level = _Attr(int, -1, "0 verbose ... 4 fatal; -1: the default logger's.")
    log_verbosity_level = _Attr(int, 0, "Detail of verbose messages.")
    logid = _Attr(str, "", "Identifies this session's log messages.")
    enable_mem_pattern = _Attr(bool, True, "Reuse the previous run's buffers for equal shapes.")
    enable_mem_reuse = _Attr(bool, True, "Free each intermediate value after its last use.")
    enable_cpu_mem_arena = _Attr(bool, True, "Keep freed host memory for the next run.")
    use_deterministic_compute = _Attr(bool, False, "Ask for run-to-run identical results.")
    use_per_session_threads = _Attr(
        bool, True, "False: use the global thread pool sizes (set_global_thread_pool_sizes)."
    )

    def __init__(self) -> None:
        self._config: dict[str, str] = {}
        self._free_dims_by_name: dict[str, int] = {}
        self._free_dims_by_denotation: dict[str, int] = {}
        self._initializers: dict[str, Any] = {}
        self._external_files: dict[str, bytes] = {}
        self._providers: list[tuple[str, dict[str, str], list[Any]]] = []
        self._policy: OrtExecutionProviderDevicePolicy | None = None
        self._policy_delegate: Callable[..., Any] | None = None
        self._custom_op_libraries: list[str] = []
        self._cancel = False
        self._ep_context_read: Callable[..., Any] | None = None

    def __repr__(self) -> str:
        return (
            f"SessionOptions(graph_optimization_level={self.graph_optimization_level!r}, "
            f"intra_op_num_threads={self.intra_op_num_threads}, "
            f"execution_mode={self.execution_mode!r}, config={self._config})"
        )

    def _copy(self) -> SessionOptions:
        """A copy a session owns (its config may be amended from the model's ``ort_config``)."""
        new = SessionOptions.__new__(SessionOptions)
        new.__dict__.update(self.__dict__)
        for name in (
            "_config",
            "_free_dims_by_name",
            "_free_dims_by_denotation",
            "_initializers",
            "_external_files",
        ):
            setattr(new, name, dict(getattr(self, name)))
        new._providers = list(self._providers)
        new._custom_op_libraries = list(self._custom_op_libraries)
        return new

    # -- configuration entries -------------------------------------------------------------------
    def add_session_config_entry(self, key: str, value: str) -> None:
        """Set a session configuration entry, e.g. ``session.disable_cpu_ep_fallback`` = ``"1"``.
        The keys ort-core knows and what each does are in ``docs/compatibility.md``."""
        key, value = _check_key(key, value, "add_session_config_entry")
        self._config[key] = value

    def get_session_config_entry(self, key: str) -> str:
        """The value of a configuration entry.

        Raises:
            RuntimeError: the key was never set (onnxruntime's message).
        """
        if key not in self._config:
            raise InvalidArgument(f"SessionOptions does not have configuration with key: {key}")
        return self._config[key]

    def has_session_config_entry(self, key: str) -> bool:
        """Whether a configuration entry is set (ort-core's addition)."""
        return key in self._config

    def _flag(self, key: str, default: str = "0") -> bool:
        return self._config.get(key, default).strip().lower() in ("1", "true", "yes")

    # -- dimensions ------------------------------------------------------------------------------
    def add_free_dimension_override_by_name(self, dim_name: str, dim_value: int) -> None:
        """Fix a symbolic dimension (``dim_param``) of the model's inputs to a value: the session
        reports it in ``get_inputs()`` shapes, plans with it, and checks fed shapes against it."""
        self._free_dims_by_name[_dim_key(dim_name)] = _dim_value(dim_value)

    def add_free_dimension_override_by_denotation(
        self, dim_denotation: str, dim_value: int
    ) -> None:
        """Fix every input dimension whose ``denotation`` is ``dim_denotation`` (``DATA_BATCH``,
        ``DATA_CHANNEL``...) to a value."""
        self._free_dims_by_denotation[_dim_key(dim_denotation)] = _dim_value(dim_value)

    # -- initializers ----------------------------------------------------------------------------
    def add_initializer(self, name: str, ort_value: Any) -> None:
        """Replace the model's initializer ``name`` with a value the caller owns (an OrtValue or an
        array). The session uses it instead of the model's data; the caller must keep it alive
        while sessions use it, as in onnxruntime.

        Raises:
            TypeError: ``ort_value`` is not an OrtValue or array.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"add_initializer needs an initializer name, got {name!r}.")
        self._initializers[name] = _host_array(ort_value, f"add_initializer('{name}')")

    def add_external_initializers(self, names: Sequence[str], ort_values: Sequence[Any]) -> None:
        """Supply initializers the model stores as external data that is not on disk: each named
        initializer takes the given value instead of being read from its file."""
        names, ort_values = list(names), list(ort_values)
        if len(names) != len(ort_values):
            raise InvalidArgument(
                f"add_external_initializers got {len(names)} names and {len(ort_values)} values; "
                "give one value per name."
            )
        for n, v in zip(names, ort_values):
            self.add_initializer(n, v)

    def add_external_initializers_from_files_in_memory(
        self, file_names: Sequence[str], buffers: Sequence[Any], lengths: Sequence[int]
    ) -> None:
        """Supply the contents of external-data files from memory: a tensor whose location is one
        of ``file_names`` is read from the buffer instead of the disk."""
        file_names, buffers, lengths = list(file_names), list(buffers), list(lengths)
        if not len(file_names) == len(buffers) == len(lengths):
            raise InvalidArgument(
                "add_external_initializers_from_files_in_memory needs as many buffers and lengths "
                f"as file names (got {len(file_names)}, {len(buffers)}, {len(lengths)})."
            )
        for name, buf, length in zip(file_names, buffers, lengths):
            data = bytes(memoryview(buf).cast("B"))
            if int(length) > len(data):
                raise InvalidArgument(
                    f"external file '{name}': length {length} is larger than its buffer "
                    f"({len(data)} bytes)."
                )
            self._external_files[os.path.normpath(str(name))] = data[: int(length)]

    # -- providers -------------------------------------------------------------------------------
    def add_provider(self, provider_name: str, provider_options: dict[str, str]) -> None:
        """Add an execution provider (with its options) to the providers this session uses when
        ``InferenceSession(..., providers=None)``."""
        if not isinstance(provider_name, str):
            raise TypeError(f"add_provider needs a provider name, got {provider_name!r}.")
        self._providers.append((provider_name, _str_options(provider_options), []))

    def add_provider_for_devices(self, ep_devices: Sequence[Any], provider_options: dict) -> None:
        """Add the provider of the given ``OrtEpDevice`` objects (from ``get_ep_devices()``),
        with options, for ``providers=None`` sessions. All devices must belong to one provider."""
        devices = list(ep_devices)
        if not devices:
            raise InvalidArgument("add_provider_for_devices needs at least one OrtEpDevice.")
        names = {getattr(d, "ep_name", None) for d in devices}
        if len(names) != 1 or None in names:
            raise InvalidArgument(
                "add_provider_for_devices: all OrtEpDevice instances must refer to the same "
                f"execution provider, got {sorted(str(n) for n in names)}."
            )
        self._providers.append((names.pop(), _str_options(provider_options), devices))

    def has_providers(self) -> bool:
        """Whether providers were added with add_provider / add_provider_for_devices."""
        return bool(self._providers)

    def set_provider_selection_policy(self, policy: OrtExecutionProviderDevicePolicy) -> None:
        """Choose providers automatically for ``providers=None`` sessions (see
        ``docs/compatibility.md``: PREFER_GPU/MAX_PERFORMANCE take the first GPU provider, then the
        CPU provider; PREFER_NPU/MAX_EFFICIENCY/MIN_OVERALL_POWER the first NPU one; PREFER_CPU
        and DEFAULT the CPU provider)."""
        self._policy = _Attr(OrtExecutionProviderDevicePolicy, None).convert(policy)
        self._policy_delegate = None

    def set_provider_selection_policy_delegate(self, delegate: Callable[..., Any]) -> None:
        """Choose providers with ``delegate(ep_devices, model_metadata, runtime_metadata,
        max_selections) -> list[OrtEpDevice]`` for ``providers=None`` sessions."""
        if not callable(delegate):
            raise TypeError("set_provider_selection_policy_delegate needs a callable.")
        self._policy_delegate = delegate
        self._policy = None

    # -- what ort-core cannot load ---------------------------------------------------------------
    def register_custom_ops_library(self, library_path: str) -> None:
        """onnxruntime loads native custom-op libraries (.so/.dll); ort-core cannot run their C
        kernels. Custom ops in ort-core are Python providers (see docs/provider-authors.md).

        Raises:
            NoSuchFile: the library does not exist.
            NotImplemented: it exists, but ort-core cannot load native custom-op kernels.
        """
        path = os.fspath(library_path)
        if not os.path.exists(path):
            from .errors import Fail

            raise Fail(
                f"Failed to load library {path} with error: {path}: cannot open shared object "
                "file: No such file or directory"
            )
        raise errors.NotImplemented(
            f"register_custom_ops_library('{path}'): ort-core cannot load native custom-op "
            "libraries (their kernels are C/C++ compiled against onnxruntime's ABI). Write the "
            "custom op as a kernel of a Python provider plugin instead: see the provider-author "
            "guide (docs/provider-authors.md) and its ort-toy example."
        )

    def set_load_cancellation_flag(self, value: bool) -> None:
        """With True, sessions being created with these options stop with ModelLoadCanceled at
        their next stage (another thread may set it while a large model loads)."""
        self._cancel = bool(value)

    def set_ep_context_data_read_func(self, func: Callable[..., Any]) -> None:
        """EP-context models hold precompiled blobs of onnxruntime's providers, which ort-core
        cannot run.

        Raises:
            NotImplemented: always, with the reason.
        """
        raise errors.NotImplemented(
            "set_ep_context_data_read_func: EP-context models carry blobs compiled by "
            "onnxruntime's execution providers (QNN, OpenVINO, TensorRT...), which ort-core cannot "
            "run. Load the original ONNX model instead."
        )

    def clear_ep_context_data_read_func(self) -> None:
        """Remove an EP-context read function (none can be set in ort-core)."""
        self._ep_context_read = None


def _dim_key(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"a dimension name or denotation must be a non-empty string, got {name!r}.")
    return name


def _dim_value(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise TypeError(f"a dimension value must be an integer, got {value!r}.")
    v = int(value)
    if v < 0:
        raise InvalidArgument(f"a free dimension override must be >= 0, got {v}.")
    return v


def _str_options(options: Any) -> dict[str, str]:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"provider options must be a dict, got {type(options).__name__}.")
    return {str(k): str(v) for k, v in options.items()}


def _host_array(value: Any, what: str) -> Any:
    import numpy as np

    numpy_of = getattr(value, "numpy", None)
    if callable(numpy_of) and not isinstance(value, np.ndarray):
        return value  # an OrtValue: kept as given (the caller owns it), read at session creation
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"{what} needs an OrtValue (or a numpy array), got {type(value).__name__}.")


class RunOptions:
    """Per-run options (``onnxruntime.RunOptions``). Setting ``terminate`` from another thread stops a
    run between two nodes with an error."""

    log_severity_level = _Attr(int, -1, "0 verbose ... 4 fatal; -1: the session's.")
    log_verbosity_level = _Attr(int, 0, "Detail of verbose messages.")
    logid = _Attr(str, "", "Identifies this run's log messages.")
    only_execute_path_to_fetches = _Attr(
        bool, False, "Run only the nodes the requested outputs need."
    )

    def __init__(self) -> None:
        self._terminate = False
        self._watch = True  # runs with RunOptions check ``terminate`` between nodes
        self._config: dict[str, str] = {}
        self._adapters: list[Any] = []

    @property
    def run_tag(self) -> str:
        """Alias of ``logid`` (onnxruntime's older name)."""
        return self.logid

    @run_tag.setter
    def run_tag(self, value: str) -> None:
        self.logid = value

    @property
    def terminate(self) -> bool:
        """Set to True (from any thread) to stop runs using these options."""
        return self._terminate

    @terminate.setter
    def terminate(self, value: bool) -> None:
        self._terminate = bool(value)

    def add_run_config_entry(self, key: str, value: str) -> None:
        """Set a run configuration entry (``memory.enable_memory_arena_shrinkage``, ``gpu_graph_id``...)."""
        key, value = _check_key(key, value, "add_run_config_entry")
        self._config[key] = value

    def get_run_config_entry(self, key: str) -> str:
        """The value of a run configuration entry.

        Raises:
            RuntimeError: the key was never set.
        """
        if key not in self._config:
            raise InvalidArgument(f"RunOptions does not have configuration with key: {key}")
        return self._config[key]

    def add_active_adapter(self, adapter: Any) -> None:
        """Activate a LoRA adapter (``LoraAdapter``) for runs with these options: its parameters
        replace the model's initializers of the same names."""
        if not hasattr(adapter, "_parameters"):
            raise TypeError(
                f"add_active_adapter needs a LoraAdapter, got {type(adapter).__name__}."
            )
        self._adapters.append(adapter)

    set_adapter_active = add_active_adapter


# -- session configuration keys -----------------------------------------------------------------
#: Keys ort-core acts on, with what they do (docs/compatibility.md lists them too).
ACTED_ON = {
    "session.disable_cpu_ep_fallback": "no CPU provider appended; requested providers must run",
    "session.strict_providers": "a requested provider that is unavailable is an error",
    "optimization.disable_specified_optimizers": "comma-separated pass names not to run",
    "session.optimized_model_external_initializers_file_name": "saved optimized model's data file",
    "session.optimized_model_external_initializers_min_size_in_bytes": "smaller stay inline",
    "session.record_ep_graph_assignment_info": "enables get_provider_graph_assignment_info()",
    "session.load_model_format": "ONNX (ORT format models are refused)",
    "session.save_model_format": "ONNX (ORT format is refused)",
    "session.enable_quant_qdq": "0 disables the QDQ fusions",
    "session.model_external_initializers_file_folder_path": "folder of external data for bytes",
    "session.set_denormal_as_zero": "only 0 (1 is refused: numpy cannot flush denormals)",
    "optimization.enable_gelu_approximation": "only 0 (1 is refused: ort-core keeps exact Gelu)",
    "session.intra_op.allow_spinning": "0: the CPU provider's workers sleep instead of polling",
    "session.force_spinning_stop": "1: the CPU provider's workers stop polling when a run ends",
}
#: onnxruntime keys whose requested state already holds in ort-core, and why.
HOLDS = {
    "session.use_env_allocators": "host tensors come from the process heap every session shares",
    "session.inter_op.allow_spinning": "ort-core's inter-op threads block, they never spin",
    "session.allow_released_opsets_only": "ort-core accepts only opsets the installed onnx knows",
    "session.disable_aot_function_inlining": "functions are expanded only where no provider runs them",
}
#: onnxruntime keys that tune onnxruntime's own machinery (no effect on results) and that ort-core
#: does not act on: setting one warns.
ONNXRUNTIME_ONLY = {
    "session.disable_prepacking": "kernels keep the weight layouts they prepare when created",
    "session.use_device_allocator_for_initializers": "initializers are numpy arrays",
    "session.intra_op_thread_affinities": "thread placement is left to the OS and BLAS",
    "session.dynamic_block_base": "ort-core has no dynamic block scheduler",
    "session.use_ort_model_bytes_directly": "ORT format models are not supported",
    "session.use_ort_model_bytes_for_initializers": "ORT format models are not supported",
    "session.qdq_matmulnbits_accuracy_level": "no MatMulNBits accuracy levels",
    "session.x64quantprecision": "no x64 quantization precision switch",
    "session.debug_layout_transformation": "no layout transformation debugging",
    "session.disable_double_qdq_remover": "no double-QDQ remover pass",
    "session.collect_node_memory_stats_to_file": "use enable_profiling for per-node data",
    "session.node_partition_config_file": "placement follows the providers list",
    "session.graph_optimizations_loop_level": "each level runs to a fixed point",
    "mlas.enable_gemm_fastmath_arm64_bfloat16": "no MLAS",
    "optimization.minimal_build_optimizations": "no minimal build",
    "optimization.qdq_is_int8_allowed": "QDQ fusions follow the provider's kernels",
}


def check_session_config(options: SessionOptions) -> list[str]:
    """Check a session's configuration entries; return warnings for unknown keys.

    Raises:
        NotImplemented: a value ort-core cannot honour (with the reason).
        InvalidArgument: a malformed value of a key ort-core acts on.
    """
    cfg = options._config
    fmt = cfg.get("session.load_model_format")
    if fmt is not None and fmt != "ONNX":
        raise errors.NotImplemented(
            f"session.load_model_format='{fmt}': ort-core loads ONNX models only (the ORT format "
            "is onnxruntime's serialized session state). Load the .onnx model."
        )
    fmt = cfg.get("session.save_model_format")
    if fmt is not None and fmt != "ONNX":
        raise errors.NotImplemented(
            f"session.save_model_format='{fmt}': ort-core saves optimized models as ONNX only; "
            "drop the entry (or set 'ONNX')."
        )
    if options.optimized_model_filepath.endswith(".ort") and fmt != "ONNX":
        raise errors.NotImplemented(
            f"optimized_model_filepath '{options.optimized_model_filepath}' asks for the ORT "
            "format, which ort-core cannot write: use a .onnx file name."
        )
    if options._flag("optimization.enable_gelu_approximation"):
        raise errors.NotImplemented(
            "optimization.enable_gelu_approximation=1: ort-core computes Gelu exactly and has no "
            "approximating pass (it would change results). Remove the entry."
        )
    if options._flag("session.set_denormal_as_zero"):
        raise errors.NotImplemented(
            "session.set_denormal_as_zero=1: ort-core computes with numpy, which cannot flush "
            "denormals to zero. Remove the entry, or export the model without denormal weights."
        )
    for key in ("session.optimized_model_external_initializers_min_size_in_bytes",):
        if key in cfg:
            try:
                if int(cfg[key]) < 0:
                    raise ValueError
            except ValueError:
                raise InvalidArgument(
                    f"session config {key} must be a non-negative integer, got '{cfg[key]}'."
                ) from None
    warnings = []
    for k in cfg:
        if k in ACTED_ON or k in HOLDS or k.startswith(_KNOWN_PREFIXES):
            continue
        if k in ONNXRUNTIME_ONLY:
            warnings.append(
                f"Session config entry '{k}' tunes onnxruntime's own machinery and has no effect "
                f"in ort-core: {ONNXRUNTIME_ONLY[k]}."
            )
        else:
            warnings.append(
                f"Session config entry '{k}' is not a key ort-core knows; it has no effect. "
                "Check its spelling against docs/compatibility.md."
            )
    return warnings


#: Prefixes of keys that belong to providers (``ep.<provider>.*``) or other tools: each provider
#: checks its own.
_KNOWN_PREFIXES = ("ep.", "ort_core.")
