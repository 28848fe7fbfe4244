"""``ort_core.backend.backend_rep``: the prepared model of :mod:`ort_core.backend` (onnxruntime's
``onnxruntime.backend.backend_rep``)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from onnx.backend.base import BackendRep

from ..options import RunOptions, SessionOptions
from ..session import InferenceSession

__all__ = ["OrtCoreBackendRep", "OnnxRuntimeBackendRep", "ALLOWED_RUN_OPTIONS"]

#: RunOptions attributes the representation's ``run`` may set.
ALLOWED_RUN_OPTIONS = frozenset(
    {"log_severity_level", "log_verbosity_level", "logid", "only_execute_path_to_fetches"}
)


def _as_scalar_array(value: Any) -> Any:
    return np.asarray(value) if isinstance(value, np.generic) else value


class OrtCoreBackendRep(BackendRep):
    """A prepared model: ``run(inputs, **run_options)`` takes a list (in graph-input order), a dict,
    or a single array for a one-input model, and returns the list of outputs."""

    def __init__(self, session: InferenceSession) -> None:
        self.session = session

    @property
    def _session(self) -> InferenceSession:  # onnxruntime's attribute name
        return self.session

    def run(self, inputs: Any, **kwargs: Any) -> list[Any]:
        options = RunOptions()
        for key, value in kwargs.items():
            if key in ALLOWED_RUN_OPTIONS:
                setattr(options, key, value)
            elif hasattr(options, key):
                raise RuntimeError(
                    f"RunOptions attribute '{key}' is not permitted via the backend API. Allowed "
                    f"attributes: {', '.join(sorted(ALLOWED_RUN_OPTIONS))}"
                )
            elif not hasattr(SessionOptions, key) and key != "providers":
                warnings.warn(
                    f"run() ignores the unknown keyword '{key}' (as onnxruntime's backend does); "
                    f"the run options it takes are {', '.join(sorted(ALLOWED_RUN_OPTIONS))}.",
                    UserWarning,
                    stacklevel=2,
                )
        args = self.session.get_inputs()
        names = {a.name for a in args}
        if isinstance(inputs, dict) and inputs and set(inputs) <= names:
            feed = {k: _as_scalar_array(v) for k, v in inputs.items()}  # ort-core: by name
        elif isinstance(inputs, (list, tuple)):
            if len(inputs) > len(args):
                raise RuntimeError(f"Model expects {len(args)} inputs, got {len(inputs)}")
            feed = {a.name: _as_scalar_array(v) for a, v in zip(args, inputs)}
        else:
            if len(args) != 1:
                raise RuntimeError(f"Model expect {len(args)} inputs")
            feed = {args[0].name: _as_scalar_array(inputs)}
        return self.session.run(None, feed, options)


#: onnxruntime's name for the representation class
OnnxRuntimeBackendRep = OrtCoreBackendRep
