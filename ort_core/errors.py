"""Typed errors, named as onnxruntime names them.

onnxruntime raises ``onnxruntime.capi.onnxruntime_pybind11_state.<Name>``; the same classes are
importable from ``ort_core.capi.onnxruntime_pybind11_state`` (and ``ort_core.errors``), so user code that
catches those names keeps working. Every error derives from :class:`OrtError` (a RuntimeError), some
also from the builtin onnxruntime raises in the same situation (InvalidArgument is a ValueError,
NoSuchFile a FileNotFoundError), and every message says what is wrong and how to fix it.

``str(error)`` has onnxruntime's form, ``[ONNXRuntimeError] : <code> : <STATUS> : <message>``, so code
that parses or compares onnxruntime's messages keeps working; ``error.message`` is the message alone
and ``error.code`` the status code.
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
    "ModelLoadCanceled",
    "ModelRequiresCompilation",
    "NotFound",
    "DeviceReset",
]


class OrtError(RuntimeError):
    """Base class of every error ort-core raises on purpose.

    Attributes:
        code: onnxruntime's status code (1 FAIL, 2 INVALID_ARGUMENT, ...).
        status: onnxruntime's status name.
        message: the message without onnxruntime's prefix.
    """

    code = 1
    status = "FAIL"

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        text = self.message
        if text.startswith("[ONNXRuntimeError]"):
            return text
        return f"[ONNXRuntimeError] : {self.code} : {self.status} : {text}"


class Fail(OrtError):
    """A generic failure (onnxruntime's FAIL status)."""


class InvalidArgument(OrtError, ValueError):
    """An argument given by the caller is wrong: input name, dtype, shape, option..."""

    code, status = 2, "INVALID_ARGUMENT"


class NoSuchFile(OrtError, FileNotFoundError):
    """A model file or external-data file does not exist."""

    code, status = 3, "NO_SUCHFILE"

    def __str__(self) -> str:  # FileNotFoundError's own __str__ would hide the message
        return OrtError.__str__(self)


class NoModel(OrtError):
    """No model was given."""

    code, status = 4, "NO_MODEL"


class EngineError(OrtError):
    """An internal error of the runtime."""

    code, status = 5, "ENGINE_ERROR"


class RuntimeException(OrtError):
    """A kernel failed while running."""

    code, status = 6, "RUNTIME_EXCEPTION"


class InvalidProtobuf(OrtError):
    """The bytes given are not a valid ONNX ModelProto."""

    code, status = 7, "INVALID_PROTOBUF"


class ModelLoaded(OrtError):
    """The model was already loaded."""

    code, status = 8, "MODEL_LOADED"


class NotImplemented(OrtError):  # noqa: A001 - onnxruntime's name, kept on purpose
    """Nothing can run a node: no provider has a kernel for its op, opset or types; or a feature
    needs something ort-core does not have (a native custom-op library, a GPU...)."""

    code, status = 9, "NOT_IMPLEMENTED"


class InvalidGraph(OrtError):
    """The model's graph is malformed (dangling inputs, cycles, bad opset, unsupported IR version)."""

    code, status = 10, "INVALID_GRAPH"


class EPFail(OrtError):
    """An execution provider failed to start, compile or run."""

    code, status = 11, "EP_FAIL"


class ModelLoadCanceled(OrtError):
    """Loading was canceled through ``SessionOptions.set_load_cancellation_flag(True)``."""

    code, status = 12, "MODEL_LOAD_CANCELED"


class ModelRequiresCompilation(OrtError):
    """The model holds precompiled EP-context nodes this runtime cannot run."""

    code, status = 13, "MODEL_REQUIRES_COMPILATION"


class NotFound(OrtError):
    """Something looked up by name (an initializer, an adapter parameter) does not exist."""

    code, status = 14, "NOT_FOUND"


class DeviceReset(OrtError):
    """The device was reset while a run used it."""

    code, status = 15, "DEVICE_RESET"


class ProviderNotAvailable(EPFail):
    """A requested execution provider is not installed or cannot run on this machine."""


class PluginError(OrtError):
    """A plugin is broken: duplicate provider name, misspelled hook, failing import."""
