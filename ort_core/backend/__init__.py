"""``ort_core.backend``: onnx's backend API over ort-core, as ``onnxruntime.backend`` offers it
(``prepare``, ``run``, ``supports_device``, ``is_compatible``); see :mod:`.backend`."""

from .backend import (
    OnnxRuntimeBackend,
    OrtCoreBackend,
    is_compatible,
    prepare,
    run,
    run_model,
    run_node,
    supports_device,
)
from .backend_rep import OnnxRuntimeBackendRep, OrtCoreBackendRep

__all__ = [
    "OnnxRuntimeBackend",
    "OnnxRuntimeBackendRep",
    "OrtCoreBackend",
    "OrtCoreBackendRep",
    "is_compatible",
    "prepare",
    "run",
    "run_model",
    "run_node",
    "supports_device",
]
