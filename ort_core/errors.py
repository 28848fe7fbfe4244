"""Typed errors, named as onnxruntime names them.

onnxruntime raises ``onnxruntime.capi.onnxruntime_pybind11_state.<Name>``; user code that catches
those names keeps working when it catches ``ort_core.errors.<Name>`` instead. Every error derives from
:class:`OrtError`, and every message says what is wrong and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "OrtError",
    "Fail",
    "InvalidArgument",
    "NoSuchFile",
    "NoModel",
    "EngineError",
    "RuntimeException",
    "InvalidProtobuf",
    "ModelLoaded",
    "NotImplemented",
    "InvalidGraph",
    "EPFail",
    "ProviderNotAvailable",
    "PluginError",
]


class OrtError(RuntimeError):
    """Base class of every error ort-core raises on purpose."""


class Fail(OrtError):
    """A generic failure (onnxruntime's FAIL status)."""


class InvalidArgument(OrtError, ValueError):
    """An argument given by the caller is wrong: input name, dtype, shape, option..."""


class NoSuchFile(OrtError, FileNotFoundError):
    """A model file or external-data file does not exist."""


class NoModel(OrtError):
    """No model was given."""


class EngineError(OrtError):
    """An internal error of the runtime."""


class RuntimeException(OrtError):
    """A kernel failed while running."""


class InvalidProtobuf(OrtError):
    """The bytes given are not a valid ONNX ModelProto."""


class ModelLoaded(OrtError):
    """The model was already loaded."""


class NotImplemented(OrtError):  # noqa: A001 - onnxruntime's name, kept on purpose
    """Nothing can run a node: no provider has a kernel for its op, opset or types."""


class InvalidGraph(OrtError):
    """The model's graph is malformed (dangling inputs, cycles, bad opset, unsupported IR version)."""


class EPFail(OrtError):
    """An execution provider failed to start, compile or run."""


class ProviderNotAvailable(EPFail):
    """A requested execution provider is not installed or cannot run on this machine."""


class PluginError(OrtError):
    """A plugin is broken: duplicate provider name, misspelled hook, failing import."""
