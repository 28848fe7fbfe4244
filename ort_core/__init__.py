"""ort-core: ONNX Runtime rebuilt in Python as a plugin framework.

``import ort_core as ort`` offers onnxruntime's Python API: :class:`InferenceSession`,
:class:`SessionOptions`, :class:`RunOptions`, :class:`OrtValue`, :class:`IOBinding`, the module
functions (``get_available_providers()``, ``set_default_logger_severity()``, ``get_ep_devices()``...)
and the module paths user code imports from (``ort_core.capi.onnxruntime_pybind11_state``,
``ort_core.backend``, ``ort_core.datasets``). Execution providers are separate distributions
discovered through the ``ort_core`` entry point.

The public names are imported when first used (``ort_core.InferenceSession`` imports the session
module, and with it onnx), so ``import ort_core`` itself stays cheap: importing onnx costs far
more than the rest of ort-core together (its ml_dtypes extension registers numpy types).
Submodules (``ort_core.capi``, ``ort_core.session``...) are reachable as attributes too.
"""

import typing as _typing

from . import datasets, errors  # noqa: F401 - cheap: no onnx, no numpy
from ._version import __version__

#: public name -> (submodule, name in it), imported on first access
_LAZY = {
    "OrtAllocatorType": ("device", "OrtAllocatorType"),
    "OrtArenaCfg": ("device", "OrtArenaCfg"),
    "OrtDevice": ("device", "OrtDevice"),
    "OrtDeviceMemoryType": ("device", "OrtDeviceMemoryType"),
    "OrtDeviceVendorId": ("device", "OrtDeviceVendorId"),
    "OrtMemType": ("device", "OrtMemType"),
    "OrtMemoryInfo": ("device", "OrtMemoryInfo"),
    "OrtMemoryInfoDeviceType": ("device", "OrtMemoryInfoDeviceType"),
    "OrtEpDevice": ("environment", "OrtEpDevice"),
    "OrtHardwareDevice": ("environment", "OrtHardwareDevice"),
    "OrtHardwareDeviceType": ("environment", "OrtHardwareDeviceType"),
    "create_and_register_allocator": ("environment", "create_and_register_allocator"),
    "create_and_register_allocator_v2": ("environment", "create_and_register_allocator_v2"),
    "disable_telemetry_events": ("environment", "disable_telemetry_events"),
    "enable_telemetry_events": ("environment", "enable_telemetry_events"),
    "get_build_info": ("environment", "get_build_info"),
    "get_ep_devices": ("environment", "get_ep_devices"),
    "get_version_string": ("environment", "get_version_string"),
    "has_collective_ops": ("environment", "has_collective_ops"),
    "preload_dlls": ("environment", "preload_dlls"),
    "print_debug_info": ("environment", "print_debug_info"),
    "register_execution_provider_library": ("environment", "register_execution_provider_library"),
    "set_global_thread_pool_sizes": ("environment", "set_global_thread_pool_sizes"),
    "set_seed": ("environment", "set_seed"),
    "unregister_execution_provider_library": (
        "environment",
        "unregister_execution_provider_library",
    ),
    "IOBinding": ("iobinding", "IOBinding"),
    "SessionIOBinding": ("iobinding", "SessionIOBinding"),
    "set_default_logger_callback": ("logs", "set_default_logger_callback"),
    "set_default_logger_severity": ("logs", "set_default_logger_severity"),
    "set_default_logger_verbosity": ("logs", "set_default_logger_verbosity"),
    "AdapterFormat": ("lora", "AdapterFormat"),
    "LoraAdapter": ("lora", "LoraAdapter"),
    "ExecutionMode": ("options", "ExecutionMode"),
    "ExecutionOrder": ("options", "ExecutionOrder"),
    "GraphOptimizationLevel": ("options", "GraphOptimizationLevel"),
    "OrtExecutionProviderDevicePolicy": ("options", "OrtExecutionProviderDevicePolicy"),
    "RunOptions": ("options", "RunOptions"),
    "SessionOptions": ("options", "SessionOptions"),
    "OrtValue": ("ortvalue", "OrtValue"),
    "copy_tensors": ("ortvalue", "copy_tensors"),
    "EpAssignedNode": ("partitioner", "EpAssignedNode"),
    "EpAssignedSubgraph": ("partitioner", "EpAssignedSubgraph"),
    "OrtEpAssignedNode": ("partitioner", "EpAssignedNode"),
    "OrtEpAssignedSubgraph": ("partitioner", "EpAssignedSubgraph"),
    "InferenceSession": ("session", "InferenceSession"),
    "ModelMetadata": ("session", "ModelMetadata"),
    "NodeArg": ("session", "NodeArg"),
    "get_all_providers": ("session", "get_all_providers"),
    "get_available_providers": ("session", "get_available_providers"),
    "get_device": ("session", "get_device"),
    "get_provider_availability": ("session", "get_provider_availability"),
    "OrtSparseFormat": ("sparse", "OrtSparseFormat"),
    "SparseTensor": ("sparse", "SparseTensor"),
}

if _typing.TYPE_CHECKING:  # what static tools see; at run time these come from __getattr__
    from .device import (  # noqa: F401
        OrtAllocatorType,
        OrtArenaCfg,
        OrtDevice,
        OrtDeviceMemoryType,
        OrtDeviceVendorId,
        OrtMemoryInfo,
        OrtMemoryInfoDeviceType,
        OrtMemType,
    )
    from .environment import (  # noqa: F401
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
    from .iobinding import (  # noqa: F401
        IOBinding,
        SessionIOBinding,
    )
    from .logs import (  # noqa: F401
        set_default_logger_callback,
        set_default_logger_severity,
        set_default_logger_verbosity,
    )
    from .lora import (  # noqa: F401
        AdapterFormat,
        LoraAdapter,
    )
    from .options import (  # noqa: F401
        ExecutionMode,
        ExecutionOrder,
        GraphOptimizationLevel,
        OrtExecutionProviderDevicePolicy,
        RunOptions,
        SessionOptions,
    )
    from .ortvalue import (  # noqa: F401
        OrtValue,
        copy_tensors,
    )
    from .partitioner import (  # noqa: F401
        EpAssignedNode,
        EpAssignedSubgraph,
    )
    from .partitioner import (
        EpAssignedNode as OrtEpAssignedNode,
    )
    from .partitioner import (
        EpAssignedSubgraph as OrtEpAssignedSubgraph,
    )
    from .session import (  # noqa: F401
        InferenceSession,
        ModelMetadata,
        NodeArg,
        get_all_providers,
        get_available_providers,
        get_device,
        get_provider_availability,
    )
    from .sparse import (  # noqa: F401
        OrtSparseFormat,
        SparseTensor,
    )


def __getattr__(name: str) -> _typing.Any:
    import importlib

    target = _LAZY.get(name)
    if target is None:
        if not name.startswith("__"):  # a submodule: ort_core.capi, ort_core.session...
            try:
                return importlib.import_module(f"{__name__}.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"{__name__}.{name}":
                    raise
        raise AttributeError(f"module '{__name__}' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"{__name__}.{target[0]}"), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
