"""Differential checks: run one user snippet on onnxruntime and on ort_core, compare what the user
observes.

A snippet is a function of one argument, the runtime module (``onnxruntime`` or ``ort_core``),
written as user code would be (``rt.OrtValue.ortvalue_from_numpy(...)``). Interface:

- ``outcome(snippet, rt)`` runs it and returns an :class:`Outcome`: the observed value
  (:func:`observe`) or the exception raised.
- ``same(snippet, *fragments)`` runs it on both and asserts the outcomes agree: equal observed
  values, or, when onnxruntime raises, an ort_core error that is catchable as the builtin class
  onnxruntime's error is (RuntimeError, ValueError, TypeError...) and contains every message
  fragment given (each fragment is checked against onnxruntime's message too, so a test notices
  when onnxruntime changes its wording). It returns ort_core's outcome.
- ``observe(value)`` normalizes a result into plain comparable data: numpy arrays become
  ``("ndarray", dtype, shape, values, writeable)``, enums ``(class name, member name, int)``,
  OrtValues and sparse tensors a tuple of what their accessors report, containers recursively.
- ``ORT`` is onnxruntime (the test module is skipped when it is not installed).

Snippets must not crash onnxruntime's process: where onnxruntime segfaults, test ort_core alone.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import ort_core
import ort_core.capi._pybind_state  # noqa: F401 - user code reaches rt.capi._pybind_state

ORT = pytest.importorskip("onnxruntime")

__all__ = ["ORT", "Outcome", "builtin_class", "observe", "outcome", "same"]


@dataclass
class Outcome:
    """What one runtime did with a snippet: ``value`` (observed) or ``error``."""

    value: Any = None
    error: BaseException | None = None

    def __repr__(self) -> str:
        if self.error is not None:
            return f"raised {type(self.error).__name__}: {self.error}"
        return f"returned {self.value!r}"


def _is_ortvalue(v: Any) -> bool:
    return type(v).__name__ == "OrtValue" and hasattr(v, "is_tensor")


def _is_sparse(v: Any) -> bool:
    return type(v).__name__ == "SparseTensor" and hasattr(v, "dense_shape")


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return observe(fn())
    except Exception as e:  # what the accessor raises is part of what the user observes
        return ("raises", builtin_class(e).__name__)


def observe(value: Any) -> Any:
    """Plain data describing ``value`` as a user sees it (see the module docstring)."""
    if isinstance(value, np.ndarray):
        return ("ndarray", str(value.dtype), value.shape, value.tolist(), value.flags.writeable)
    if isinstance(value, np.generic):
        return ("scalar", str(value.dtype), value.item())
    if isinstance(value, enum.Enum) or type(type(value)).__name__ == "pybind11_type":
        if hasattr(value, "name") and hasattr(value, "__int__"):
            return (type(value).__name__, value.name, int(value))
    if _is_ortvalue(value):
        if value.is_tensor():
            return (
                "OrtValue",
                value.data_type(),
                value.shape(),
                value.device_name(),
                observe(value.numpy()),
            )
        return (
            "OrtValue",
            _safe(value.data_type),
            _safe(value.is_tensor_sequence),
            _safe(value.is_sparse_tensor),
            _safe(value.has_value),
        )
    if _is_sparse(value):
        return (
            "SparseTensor",
            observe(value.format()),
            value.dense_shape(),
            value.data_type(),
            value.device_name(),
            observe(value.values()),
        )
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [observe(v) for v in value])
    if isinstance(value, dict):
        return ("dict", {k: observe(v) for k, v in value.items()})
    if isinstance(value, (bool, int, float, str, bytes, type(None))):
        return (type(value).__name__, value)
    return ("object", type(value).__name__)


def outcome(snippet: Callable[[ModuleType], Any], rt: ModuleType) -> Outcome:
    """Run ``snippet(rt)`` and record what it returned (observed) or raised."""
    try:
        return Outcome(value=observe(snippet(rt)))
    except Exception as e:
        return Outcome(error=e)


#: builtin exception classes, most specific first
_BUILTINS = (
    FileNotFoundError,
    IndexError,
    KeyError,
    AttributeError,
    NotImplementedError,
    TypeError,
    ValueError,
    BufferError,
    RuntimeError,
    Exception,
)


def builtin_class(error: BaseException) -> type[BaseException]:
    """The most specific builtin exception class ``error`` is an instance of."""
    for cls in _BUILTINS:
        if isinstance(error, cls):
            return cls
    return BaseException


def same(snippet: Callable[[ModuleType], Any], *fragments: str) -> Outcome:
    """Assert onnxruntime and ort_core agree on ``snippet``; return ort_core's outcome.

    Args:
        snippet: user code taking the runtime module.
        fragments: when onnxruntime raises, text both messages must contain.
    """
    ref = outcome(snippet, ORT)
    ours = outcome(snippet, ort_core)
    if ref.error is None:
        assert ours.error is None, f"onnxruntime {ref}; ort_core {ours}"
        assert ours.value == ref.value, f"onnxruntime {ref}; ort_core {ours}"
        assert not fragments, "message fragments given but onnxruntime does not raise"
        return ours
    expected = builtin_class(ref.error)
    assert ours.error is not None, f"onnxruntime {ref}; ort_core {ours}"
    assert isinstance(ours.error, expected), (
        f"onnxruntime raised {expected.__name__} ({ref.error}); ort_core raised "
        f"{type(ours.error).__mro__} ({ours.error})"
    )
    for fragment in fragments:
        assert fragment in str(ref.error), f"{fragment!r} is not in onnxruntime's {ref.error}"
        assert fragment in str(ours.error), f"{fragment!r} is not in ort_core's {ours.error}"
    return ours
