"""onnxruntime's module paths under ``ort_core.capi``, so imports written for onnxruntime resolve.

``ort_core.capi.onnxruntime_pybind11_state`` (and its alias ``_pybind_state``) holds the error classes
and the lower-level names onnxruntime's native module exports; ``onnxruntime_inference_collection``
the Python-level classes and ``check_and_normalize_provider_args``.
"""

from . import (  # noqa: E402  (imported here so ``ort.capi.<module>`` works after ``import ort``)
    _pybind_state,
    build_and_package_info,
    onnxruntime_inference_collection,
    onnxruntime_pybind11_state,
)

__all__ = [
    "_pybind_state",
    "build_and_package_info",
    "onnxruntime_inference_collection",
    "onnxruntime_pybind11_state",
]
