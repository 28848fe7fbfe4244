"""Test providers that run nothing but the shared ort_array kernels: one on host numpy arrays, one
on array_api_strict arrays (a stand-in device whose namespace is the bare standard, so a kernel
that reaches for anything beyond it fails there)."""

from __future__ import annotations

from typing import Any

import numpy as np
import ort_array

from ort_core.provider import KernelProvider, KernelRegistry

numpy_registry = KernelRegistry("ArrayNumpyExecutionProvider")
ort_array.register(numpy_registry)


class ArrayNumpyProvider(KernelProvider):
    """The shared kernels on host numpy arrays."""

    name = "ArrayNumpyExecutionProvider"
    aliases = ("array_numpy",)
    registry = numpy_registry


# array_api_strict has the standard's element types only (no float16, bfloat16 or strings)
STRICT_TYPES = [np.dtype(t) for t in ("bool", "int8", "int16", "int32", "int64", "uint8",
                                      "uint16", "uint32", "uint64", "float32", "float64")]  # fmt: skip
strict_registry = KernelRegistry("ArrayStrictExecutionProvider")
ort_array.register(strict_registry, dtypes=STRICT_TYPES)


class ArrayStrictProvider(KernelProvider):
    """The shared kernels on array_api_strict arrays, copied to and from the host like a
    device's."""

    name = "ArrayStrictExecutionProvider"
    aliases = ("array_strict",)
    device_name = "strict"  # host memory it is not: the core copies around it
    host_memory = False
    registry = strict_registry

    def __init__(self, options=None, session_options=None):
        super().__init__(options, session_options)
        import array_api_strict

        self.xp = array_api_strict  # the namespace host-input-only kernels (Range) create in
        self._array = type(array_api_strict.asarray(0))

    def owns(self, value: Any) -> bool:
        return isinstance(value, self._array)

    def to_device(self, array: Any, ctx: Any = None) -> Any:
        if self.owns(array):
            return array
        return self.xp.asarray(np.asarray(array))

    def to_host(self, value: Any, ctx: Any = None) -> Any:
        if value is None or isinstance(value, np.ndarray) or not self.owns(value):
            return value
        return np.from_dlpack(value).copy()
