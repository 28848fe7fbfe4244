"""``ort_core.backend``: onnx's backend API over ort-core, as ``onnxruntime.backend`` offers it.

``prepare(model, device=None, **session_options)`` returns a representation whose ``run(inputs)``
computes the outputs; ``run(model, inputs, device=None, **kwargs)`` does both. ``model`` may be a
path, the model's bytes, an ``onnx.ModelProto``, an :class:`InferenceSession` or a prepared
representation. Keyword arguments set the session options onnxruntime's backend allows (thread
counts, optimization level, execution mode and order, memory flags, logging); the options that write
files (``optimized_model_filepath``, ``enable_profiling``, ``profile_file_prefix``) are refused, as
there. An unknown keyword is ignored, as onnxruntime ignores it, but with a warning naming it.

Providers: the ``providers`` keyword (an ort-core extension, used by its conformance suite), else the
``ORT_CORE_BACKEND_PROVIDERS`` environment variable (comma-separated), else every available provider
except those named in ``ORT_ONNX_BACKEND_EXCLUDE_PROVIDERS``, as onnxruntime's backend does.
"""

from __future__ import annotations

import os
import unittest
import warnings
from typing import Any

import onnx
from onnx.backend.base import Backend

from ..options import RunOptions, SessionOptions
from ..session import InferenceSession, get_available_providers, get_device
from .backend_rep import OnnxRuntimeBackendRep, OrtCoreBackendRep

__all__ = [
    "OrtCoreBackend",
    "OnnxRuntimeBackend",
    "OrtCoreBackendRep",
    "OnnxRuntimeBackendRep",
    "is_compatible",
    "prepare",
    "run",
    "run_model",
    "run_node",
    "supports_device",
]

#: SessionOptions attributes the backend API may set (those that write no files).
ALLOWED_SESSION_OPTIONS = frozenset(
    {
        "enable_cpu_mem_arena",
        "enable_mem_pattern",
        "enable_mem_reuse",
        "execution_mode",
        "execution_order",
        "graph_optimization_level",
        "inter_op_num_threads",
        "intra_op_num_threads",
        "log_severity_level",
        "log_verbosity_level",
        "logid",
        "use_deterministic_compute",
        "use_per_session_threads",
    }
)


def _default_providers() -> list[str]:
    value = os.environ.get("ORT_CORE_BACKEND_PROVIDERS")
    if value:
        return [p.strip() for p in value.split(",") if p.strip()]
    excluded = set(os.environ.get("ORT_ONNX_BACKEND_EXCLUDE_PROVIDERS", "").split(","))
    return [p for p in get_available_providers() if p not in excluded]


class OrtCoreBackend(Backend):
    """onnx backend over :class:`InferenceSession`."""

    @classmethod
    def is_compatible(cls, model: Any, device: str | None = None, **kwargs: Any) -> bool:
        return cls.supports_device(device or get_device())

    @classmethod
    def is_opset_supported(cls, model: onnx.ModelProto) -> tuple[bool, str]:
        """Whether every opset the model imports is one the installed onnx knows."""
        newest = onnx.defs.onnx_opset_version()
        for op in model.opset_import:
            if op.domain in ("", "ai.onnx") and op.version > newest:
                return False, (
                    f"Opset {op.version} of the default domain is newer than the installed onnx "
                    f"knows ({newest})."
                )
        return True, ""

    @classmethod
    def supports_device(cls, device: str) -> bool:
        """CPU always; CUDA/GPU when a GPU provider is available."""
        device = (device or "CPU").upper()
        if device.startswith("CPU"):
            return True
        if device in ("CUDA", "GPU"):
            return get_device() == "GPU"
        return False

    @classmethod
    def prepare(cls, model: Any, device: str | None = None, **kwargs: Any) -> OrtCoreBackendRep:
        if isinstance(model, OrtCoreBackendRep):
            return model
        if isinstance(model, InferenceSession):
            return OrtCoreBackendRep(model)
        if device is not None and not cls.supports_device(device):
            raise RuntimeError(f"Incompatible device expected '{device}', got '{get_device()}'")
        if isinstance(model, onnx.ModelProto):
            ok, message = cls.is_opset_supported(model)
            if not ok:
                raise unittest.SkipTest(message)
        providers = kwargs.pop("providers", None) or _default_providers()
        if device is not None and device.upper() in ("CUDA", "GPU"):
            providers = [p for p in providers if p != "CPUExecutionProvider"] + [
                "CPUExecutionProvider"
            ]
        options = SessionOptions()
        for key, value in kwargs.items():
            if key in ALLOWED_SESSION_OPTIONS:
                setattr(options, key, value)
            elif hasattr(options, key):
                raise RuntimeError(
                    f"SessionOptions attribute '{key}' is not permitted via the backend API. "
                    f"Allowed attributes: {', '.join(sorted(ALLOWED_SESSION_OPTIONS))}"
                )
            elif not hasattr(RunOptions, key):  # run_model passes run options here too
                _ignored("prepare", key, ALLOWED_SESSION_OPTIONS)
        return OrtCoreBackendRep(InferenceSession(model, options, providers=providers))

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str | None = None, **kwargs: Any) -> Any:
        return cls.prepare(model, device, **kwargs).run(inputs, **kwargs)

    @classmethod
    def run_node(
        cls, node: onnx.NodeProto, inputs: Any, device: str | None = None, outputs_info=None,
        **kwargs: Any,
    ) -> Any:  # fmt: skip
        raise NotImplementedError(
            "It is much more efficient to run a whole model than every node independently: build "
            "a one-node model with onnx.helper and use run_model."
        )


def _ignored(where: str, key: str, allowed: frozenset[str]) -> None:
    warnings.warn(
        f"{where}() ignores the unknown keyword '{key}' (as onnxruntime's backend does); the "
        f"options it takes are {', '.join(sorted(allowed))}.",
        UserWarning,
        stacklevel=3,
    )


#: onnxruntime's name for the backend class
OnnxRuntimeBackend = OrtCoreBackend

is_compatible = OrtCoreBackend.is_compatible
prepare = OrtCoreBackend.prepare
run = OrtCoreBackend.run_model
run_model = OrtCoreBackend.run_model
run_node = OrtCoreBackend.run_node
supports_device = OrtCoreBackend.supports_device
