"""The names of onnxruntime's native module ``onnxruntime.capi.onnxruntime_pybind11_state``.

User code catches onnxruntime's errors from here (``from onnxruntime.capi.onnxruntime_pybind11_state
import Fail, InvalidArgument``); the same import from ``ort_core.capi.onnxruntime_pybind11_state``
gives ort-core's error classes, which ort-core raises. The lower-level values (``OrtValue`` as
returned by ``OrtValue._get_c_value()``, ``OrtValueVector``) and the module functions are here too.
"""

from ..device import (
    OrtAllocatorType,
    OrtArenaCfg,
    OrtDevice,
    OrtDeviceMemoryType,
    OrtMemoryInfo,
    OrtMemoryInfoDeviceType,
    OrtMemType,
)
from ..environment import (
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
    register_execution_provider_library,
    set_global_thread_pool_sizes,
    set_seed,
    unregister_execution_provider_library,
)
from ..errors import (
    DeviceReset,
    EngineError,
    EPFail,
    Fail,
    InvalidArgument,
    InvalidGraph,
    InvalidProtobuf,
    ModelLoadCanceled,
    ModelLoaded,
    ModelRequiresCompilation,
    NoModel,
    NoSuchFile,
    NotFound,
    NotImplemented,
    RuntimeException,
)
from ..iobinding import SessionIOBinding
from ..logs import (
    set_default_logger_callback,
    set_default_logger_severity,
    set_default_logger_verbosity,
)
from ..lora import LoraAdapter
from ..options import (
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    OrtExecutionProviderDevicePolicy,
    RunOptions,
    SessionOptions,
)
from ..ortvalue import OrtValueVector, copy_tensors, is_dlpack_uint8_tensor
from ..ortvalue import _COrtValue as OrtValue
from ..partitioner import EpAssignedNode as OrtEpAssignedNode
from ..partitioner import EpAssignedSubgraph as OrtEpAssignedSubgraph
from ..session import (
    ModelMetadata,
    NodeArg,
    get_all_providers,
    get_available_providers,
    get_device,
)
from ..sparse import (
    OrtSparseFormat,
    SparseBlockSparseView,
    SparseCooView,
    SparseCsrView,
)
from ..sparse import _CSparseTensor as SparseTensor


def get_default_session_options() -> SessionOptions:
    """A new SessionOptions with every default (what a session uses when given none)."""
    return SessionOptions()


__all__ = [
    "DeviceReset",
    "EngineError",
    "EPFail",
    "Fail",
    "InvalidArgument",
    "InvalidGraph",
    "InvalidProtobuf",
    "ModelLoadCanceled",
    "ModelLoaded",
    "ModelRequiresCompilation",
    "NoModel",
    "NoSuchFile",
    "NotFound",
    "NotImplemented",
    "RuntimeException",
    "ExecutionMode",
    "ExecutionOrder",
    "GraphOptimizationLevel",
    "OrtExecutionProviderDevicePolicy",
    "RunOptions",
    "SessionOptions",
    "ModelMetadata",
    "NodeArg",
    "OrtValue",
    "OrtValueVector",
    "SparseTensor",
    "SparseCooView",
    "SparseCsrView",
    "SparseBlockSparseView",
    "SessionIOBinding",
    "copy_tensors",
    "OrtSparseFormat",
    "OrtDevice",
    "OrtMemoryInfo",
    "OrtMemoryInfoDeviceType",
    "OrtAllocatorType",
    "OrtMemType",
    "OrtDeviceMemoryType",
    "OrtArenaCfg",
    "OrtEpDevice",
    "OrtHardwareDevice",
    "OrtHardwareDeviceType",
    "OrtEpAssignedNode",
    "OrtEpAssignedSubgraph",
    "LoraAdapter",
    "create_and_register_allocator",
    "create_and_register_allocator_v2",
    "disable_telemetry_events",
    "enable_telemetry_events",
    "get_all_providers",
    "get_available_providers",
    "get_build_info",
    "get_default_session_options",
    "get_device",
    "get_ep_devices",
    "get_version_string",
    "has_collective_ops",
    "is_dlpack_uint8_tensor",
    "register_execution_provider_library",
    "set_default_logger_callback",
    "set_default_logger_severity",
    "set_default_logger_verbosity",
    "set_global_thread_pool_sizes",
    "set_seed",
    "unregister_execution_provider_library",
]
