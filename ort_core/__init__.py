"""ort-core: ONNX Runtime rebuilt in Python as a plugin framework.

``import ort_core as ort`` offers onnxruntime's Python API: :class:`InferenceSession`,
:class:`SessionOptions`, :class:`RunOptions`, :class:`OrtValue`, :class:`IOBinding`, the module
functions (``get_available_providers()``, ``set_default_logger_severity()``, ``get_ep_devices()``...)
and the module paths user code imports from (``ort_core.capi.onnxruntime_pybind11_state``,
``ort_core.backend``, ``ort_core.datasets``). Execution providers are separate distributions
discovered through the ``ort_core`` entry point.
"""

from . import capi, datasets, errors  # noqa: E402, F401 - ort.capi.* and ort.datasets work at once
from ._version import __version__
from .device import (  # noqa: E402
    OrtAllocatorType,
    OrtArenaCfg,
    OrtDevice,
    OrtDeviceMemoryType,
    OrtDeviceVendorId,
    OrtMemoryInfo,
    OrtMemoryInfoDeviceType,
    OrtMemType,
)
from .environment import (  # noqa: E402
    OrtEpDevice,
    OrtHardwareDevice,
    OrtHardwareDeviceType,
    create_and_register_allocator,
    create_and_register_allocator_v2,
    disable_telemetry_events,
    enable_telemetry_events,
    get_build_info,
    get_ep_devices,
    get_version_string,
    has_collective_ops,
    preload_dlls,
    print_debug_info,
    register_execution_provider_library,
    set_global_thread_pool_sizes,
    set_seed,
    unregister_execution_provider_library,
)
from .iobinding import IOBinding, SessionIOBinding  # noqa: E402
from .logs import (  # noqa: E402
    set_default_logger_callback,
    set_default_logger_severity,
    set_default_logger_verbosity,
)
from .lora import AdapterFormat, LoraAdapter  # noqa: E402
from .options import (  # noqa: E402
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    OrtExecutionProviderDevicePolicy,
    RunOptions,
    SessionOptions,
)
from .ortvalue import OrtValue, copy_tensors  # noqa: E402
from .partitioner import EpAssignedNode, EpAssignedSubgraph  # noqa: E402
from .session import (  # noqa: E402
    InferenceSession,
    ModelMetadata,
    NodeArg,
    get_all_providers,
    get_available_providers,
    get_device,
    get_provider_availability,
)
from .sparse import OrtSparseFormat, SparseTensor  # noqa: E402

#: onnxruntime's names for the assignment-info classes
OrtEpAssignedNode = EpAssignedNode
OrtEpAssignedSubgraph = EpAssignedSubgraph

__all__ = [
    # sessions
    "InferenceSession",
    "SessionOptions",
    "RunOptions",
    "GraphOptimizationLevel",
    "ExecutionMode",
    "ExecutionOrder",
    "OrtExecutionProviderDevicePolicy",
    "NodeArg",
    "ModelMetadata",
    "IOBinding",
    "SessionIOBinding",
    "EpAssignedNode",
    "EpAssignedSubgraph",
    "OrtEpAssignedNode",
    "OrtEpAssignedSubgraph",
    # values and devices
    "OrtValue",
    "SparseTensor",
    "OrtSparseFormat",
    "OrtDevice",
    "OrtDeviceVendorId",
    "OrtMemoryInfo",
    "OrtMemoryInfoDeviceType",
    "OrtAllocatorType",
    "OrtMemType",
    "OrtDeviceMemoryType",
    "OrtArenaCfg",
    "copy_tensors",
    # LoRA
    "AdapterFormat",
    "LoraAdapter",
    # providers and devices
    "get_all_providers",
    "get_available_providers",
    "get_provider_availability",
    "get_device",
    "get_ep_devices",
    "OrtEpDevice",
    "OrtHardwareDevice",
    "OrtHardwareDeviceType",
    "register_execution_provider_library",
    "unregister_execution_provider_library",
    "create_and_register_allocator",
    "create_and_register_allocator_v2",
    # environment
    "get_version_string",
    "get_build_info",
    "set_seed",
    "set_default_logger_severity",
    "set_default_logger_verbosity",
    "set_default_logger_callback",
    "disable_telemetry_events",
    "enable_telemetry_events",
    "set_global_thread_pool_sizes",
    "has_collective_ops",
    "preload_dlls",
    "print_debug_info",
    "errors",
    "__version__",
]
