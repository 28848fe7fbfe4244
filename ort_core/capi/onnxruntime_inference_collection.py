"""``onnxruntime.capi.onnxruntime_inference_collection``: the Python-level classes and helpers."""

from collections.abc import Callable
from typing import Any

from ..device import (
    OrtDevice,
    OrtDeviceVendorId,
    get_ort_device_type,
    get_vendor_id_for_device_type,
)
from ..iobinding import IOBinding
from ..lora import AdapterFormat
from ..ortvalue import OrtValue, copy_tensors
from ..session import InferenceSession, check_and_normalize_provider_args
from ..sparse import SparseTensor

#: onnxruntime's base class of InferenceSession; ort-core has one class
Session = InferenceSession

#: ``gpu_graph_id`` run option value that skips device-graph capture for one run
_GRAPH_ANNOTATION_SKIP = -1
_GPU_GRAPH_ID_RUN_CONFIG_KEY = "gpu_graph_id"


def _graph_annotation_id(run_options: Any) -> int:
    """The device graph a run captures or replays: the run option ``gpu_graph_id`` (an integer
    string; -1 skips capture), 0 when absent."""
    if run_options is None:
        return 0
    try:
        value = run_options.get_run_config_entry(_GPU_GRAPH_ID_RUN_CONFIG_KEY)
    except RuntimeError:
        return 0
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"The run option '{_GPU_GRAPH_ID_RUN_CONFIG_KEY}' must be an integer, got {value!r}."
        ) from None


def _has_foreign_webgpu_context(values: Any, context_id_of: Callable[[Any], int]) -> bool:
    """Whether some value is a WebGPU buffer owned by a session whose WebGPU context is not the
    default one (context id > 0): such buffers cannot be copied by another context. Values without
    an owning session, host values and sessions without WebGPU (-1) are fine."""
    for value in values:
        if not getattr(value, "_is_webgpu_buffer", False):
            continue
        owner = getattr(value, "_session", None)
        if owner is not None and context_id_of(owner) > 0:
            return True
    return False


__all__ = [
    "AdapterFormat",
    "InferenceSession",
    "IOBinding",
    "OrtDevice",
    "OrtDeviceVendorId",
    "OrtValue",
    "Session",
    "SparseTensor",
    "check_and_normalize_provider_args",
    "copy_tensors",
    "get_ort_device_type",
    "get_vendor_id_for_device_type",
]
