"""Errors of ``ort-core serve``: each knows its HTTP status and gRPC status code.

They derive from :class:`ort_core.errors.OrtError` (and the matching onnxruntime class where one
fits), so ``except ort_core.errors.InvalidArgument`` keeps catching a bad request. The text sent to
clients is ``error.message``: written for the client, naming what is wrong and how to fix it, and
never a traceback or a path of the server's machine.
"""

from __future__ import annotations

from ort_core import errors as _core

__all__ = [
    "ServingError",
    "InvalidRequest",
    "ModelNotFound",
    "PayloadTooLarge",
    "Unavailable",
    "ModelLoadError",
    "MissingExtra",
]


class ServingError(_core.OrtError):
    """Base of the serving errors. ``http_status`` and ``grpc_code`` (a ``grpc.StatusCode``
    name) are the protocol's status for this error."""

    http_status = 500
    grpc_code = "INTERNAL"


class InvalidRequest(ServingError, _core.InvalidArgument):
    """The request is malformed or does not fit the model: bad JSON, unknown or missing input,
    wrong datatype or shape, data of the wrong size."""

    http_status, grpc_code = 400, "INVALID_ARGUMENT"


class ModelNotFound(ServingError, _core.NotFound):
    """No model (or version of it) by that name is loaded or present in the repository."""

    http_status, grpc_code = 404, "NOT_FOUND"


class PayloadTooLarge(ServingError, _core.InvalidArgument):
    """The request body is larger than the server's limit (``--max-request-bytes``)."""

    http_status, grpc_code = 413, "RESOURCE_EXHAUSTED"


class Unavailable(ServingError):
    """The model's queue is full, or the model or server is shutting down: retry later."""

    http_status, grpc_code = 503, "UNAVAILABLE"
    code, status = 1, "FAIL"


class ModelLoadError(ServingError):
    """A model of the repository cannot be loaded: bad config.pbtxt, missing model file, a
    session that fails to build."""

    http_status, grpc_code = 400, "INVALID_ARGUMENT"


class MissingExtra(ServingError, ImportError):
    """An optional package the serving or scale-out code needs is not installed."""

    http_status, grpc_code = 500, "INTERNAL"
