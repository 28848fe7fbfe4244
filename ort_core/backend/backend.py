"""``ort_core.backend``: an :class:`onnx.backend.base.Backend`, so onnx's backend test suite (and any
code written against that interface) runs on ort-core.

The providers used are taken from the ``ORT_CORE_BACKEND_PROVIDERS`` environment variable (a
comma-separated list, default: the CPU provider alone), or from the ``providers`` keyword of
:meth:`OrtCoreBackend.prepare`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from .session import InferenceSession, SessionOptions

__all__ = [
    "OrtCoreBackend",
    "OrtCoreBackendRep",
    "prepare",
    "run_model",
    "run_node",
    "supports_device",
]


def _default_providers() -> list[str]:
    value = os.environ.get("ORT_CORE_BACKEND_PROVIDERS", "CPUExecutionProvider")
    return [p.strip() for p in value.split(",") if p.strip()]


class OrtCoreBackendRep(BackendRep):
    """A prepared model: ``run(inputs)`` takes a list (in graph-input order) or a dict."""

    def __init__(self, session: InferenceSession) -> None:
        self.session = session

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        if isinstance(inputs, dict):
            feed = inputs
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            names = [a.name for a in self.session.get_inputs()]
            feed = dict(zip(names, inputs))
        return tuple(self.session.run(None, feed))


class OrtCoreBackend(Backend):
    """onnx backend over :class:`InferenceSession`."""

    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return cls.supports_device(device)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper().startswith("CPU")

    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", **kwargs: Any) -> OrtCoreBackendRep:
        providers = kwargs.pop("providers", None) or _default_providers()
        options = SessionOptions()
        for key, value in kwargs.items():
            if hasattr(options, key):
                setattr(options, key, value)
        if isinstance(model, onnx.ModelProto):
            model = model.SerializeToString()
        return OrtCoreBackendRep(InferenceSession(model, options, providers=providers))

    @classmethod
    def run_model(
        cls, model: Any, inputs: Any, device: str = "CPU", **kwargs: Any
    ) -> tuple[Any, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(
        cls,
        node: onnx.NodeProto,
        inputs: Any,
        device: str = "CPU",
        outputs_info=None,
        **kwargs: Any,
    ):
        raise NotImplementedError(
            "run_node is not supported: build a one-node model with onnx.helper and use run_model."
        )


prepare = OrtCoreBackend.prepare
run_model = OrtCoreBackend.run_model
run_node = OrtCoreBackend.run_node
supports_device = OrtCoreBackend.supports_device
