"""What the HTTP and gRPC front ends share: the protocol's operations on the model repository,
with the metrics around them. Front ends only translate their wire format to these calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ort_core._version import __version__

from .errors import ModelNotFound, ServingError
from .protocol import Tensor
from .repository import LoadedModel, ModelRepository

__all__ = ["InferenceService", "SERVER_NAME", "EXTENSIONS"]

SERVER_NAME = "ort-core"
#: protocol extensions this server speaks (Triton's names)
EXTENSIONS = ("binary_tensor_data", "model_repository", "model_configuration")


class InferenceService:
    """The Open Inference Protocol's operations on one repository.

    Args:
        repository: the models.
        metrics: the server's :class:`~.metrics.Metrics` (or None).
    """

    def __init__(self, repository: ModelRepository, metrics: Any = None) -> None:
        self.repository = repository
        self.metrics = metrics
        self.shutting_down = False

    # -- health and metadata ------------------------------------------------------------------
    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return not self.shutting_down and self.repository.ready()

    def model_ready(self, name: str, version: str = "") -> bool:
        try:
            self.repository.get(name, version)
        except ServingError:
            return False
        return not self.shutting_down

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}

    def model_metadata(self, name: str, version: str = "") -> dict[str, Any]:
        model = self.repository.get(name, version)
        return model.metadata(self.repository.versions(name))

    def model_config(self, name: str, version: str = "") -> Any:
        """Triton's ModelConfig message of a loaded model (version)."""
        return self.repository.get(name, version).config()

    # -- inference -----------------------------------------------------------------------------
    async def infer(
        self,
        name: str,
        version: str,
        tensors: Sequence[Tensor],
        outputs: Sequence[str],
        protocol: str,
    ) -> tuple[LoadedModel, dict[str, np.ndarray]]:
        """Validate, queue and await one request; returns the model and ``{output: array}``
        in the order of the requested outputs (all outputs when none are requested)."""
        start = time.perf_counter()
        label_model, label_version = "", ""
        try:
            model = self.repository.get(name, version)
            label_model, label_version = model.name, model.version
            feeds, wanted = model.prepare(tensors, outputs)
            future = model.scheduler.submit(feeds, wanted or None)
            results = await asyncio.wrap_future(future)
        except ServingError as exc:
            if self.metrics is not None and not isinstance(exc, ModelNotFound):
                self.metrics.observe_request(
                    label_model, label_version, protocol, str(exc.http_status), 0.0
                )
            raise
        if self.metrics is not None:
            self.metrics.observe_request(
                model.name, model.version, protocol, "success", time.perf_counter() - start
            )
        return model, results

    # -- repository ------------------------------------------------------------------------------
    async def load(self, name: str) -> list[str]:
        return await asyncio.to_thread(self.repository.load, name)

    async def unload(self, name: str) -> None:
        await asyncio.to_thread(self.repository.unload, name)

    def index(self, ready_only: bool = False) -> list[dict[str, str]]:
        return self.repository.index(ready_only)
