"""ort-core: ONNX Runtime rebuilt in Python as a plugin framework.

``import ort_core as ort`` offers onnxruntime's everyday Python API: :class:`InferenceSession`,
:class:`SessionOptions`, :class:`RunOptions`, :class:`OrtValue`, ``get_available_providers()``...
Execution providers are separate distributions discovered through the ``ort_core`` entry point.
"""

from . import errors
from .iobinding import IOBinding
from .ortvalue import OrtValue
from .partitioner import EpAssignedNode, EpAssignedSubgraph
from .session import (
    ExecutionMode,
    GraphOptimizationLevel,
    InferenceSession,
    ModelMetadata,
    NodeArg,
    RunOptions,
    SessionOptions,
    get_all_providers,
    get_available_providers,
    get_device,
    get_provider_availability,
)

__version__ = "0.1.0"

__all__ = [
    "InferenceSession",
    "SessionOptions",
    "RunOptions",
    "GraphOptimizationLevel",
    "ExecutionMode",
    "OrtValue",
    "IOBinding",
    "NodeArg",
    "ModelMetadata",
    "EpAssignedNode",
    "EpAssignedSubgraph",
    "get_all_providers",
    "get_available_providers",
    "get_provider_availability",
    "get_device",
    "errors",
    "__version__",
]
