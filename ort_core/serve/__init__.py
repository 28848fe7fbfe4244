"""``ort-core serve`` and scale-out: an Open Inference Protocol (KServe v2 / Triton) server over
HTTP and gRPC, and Ray Data / Ray Serve helpers.

Not imported by ``import ort_core``; its packages come with the ``serve`` and ``ray`` extras and
are imported only when used (``MissingExtra`` says which extra to install)::

    from ort_core.serve import Server
    with Server("models/", http_port=8000, grpc_port=8001):
        ...

Names resolve lazily, so ``import ort_core.serve`` imports no optional package.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Server",
    "ServerOptions",
    "ModelSettings",
    "BatchingOptions",
    "ModelRepository",
    "InferenceService",
    "OrtBatchPredictor",
    "map_batches",
    "OrtServeDeployment",
    "deployment",
    "ServingError",
    "InvalidRequest",
    "ModelNotFound",
    "PayloadTooLarge",
    "Unavailable",
    "ModelLoadError",
    "MissingExtra",
]

_WHERE = {
    "Server": "server",
    "ServerOptions": "config",
    "ModelSettings": "config",
    "BatchingOptions": "config",
    "ModelRepository": "repository",
    "InferenceService": "service",
    "OrtBatchPredictor": "ray_data",
    "map_batches": "ray_data",
    "OrtServeDeployment": "ray_serve",
    "deployment": "ray_serve",
    "ServingError": "errors",
    "InvalidRequest": "errors",
    "ModelNotFound": "errors",
    "PayloadTooLarge": "errors",
    "Unavailable": "errors",
    "ModelLoadError": "errors",
    "MissingExtra": "errors",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'ort_core.serve' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{where}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
