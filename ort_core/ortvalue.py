"""OrtValue: a value (tensor, sequence, map, optional) with the device it lives on."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper

from .errors import InvalidArgument

__all__ = ["OrtValue"]


class OrtValue:
    """A value and its device, as onnxruntime's ``OrtValue``. Host values are numpy arrays; device
    values are the provider's own array type (``provider`` names who can copy them back)."""

    __slots__ = ("_value", "_device", "_provider")

    def __init__(self, value: Any, device: str = "cpu", provider: Any = None) -> None:
        self._value = value
        self._device = device
        self._provider = provider

    @classmethod
    def ortvalue_from_numpy(
        cls, array: Any, device_type: str = "cpu", device_id: int = 0
    ) -> OrtValue:
        """Wrap a numpy array (the host array itself, not a copy, as onnxruntime does on CPU)."""
        if device_type.lower() != "cpu":
            from .plugins import get_plugin_manager

            for entry in get_plugin_manager().ordered():
                if entry.cls.device_type == device_type.lower() and not entry.cls.host_memory:
                    ep = entry.cls.for_device(device_id)
                    return cls(ep.to_device(np.asarray(array)), device_type.lower(), ep)
            raise InvalidArgument(
                f"no installed provider keeps tensors on device '{device_type}'; install one "
                "(for example ort-core[cuda]) or use device_type='cpu'."
            )
        return cls(np.asarray(array) if not isinstance(array, (list, dict)) else array)

    @classmethod
    def ortvalue_from_shape_and_type(
        cls, shape: Any, element_type: Any, device_type: str = "cpu", device_id: int = 0
    ) -> OrtValue:
        dtype = (
            np.dtype(element_type)
            if not isinstance(element_type, int)
            else helper.tensor_dtype_to_np_dtype(element_type)
        )
        return cls.ortvalue_from_numpy(np.empty(tuple(shape), dtype=dtype), device_type, device_id)

    def numpy(self) -> Any:
        """The value as a host numpy array (copied from the device when needed)."""
        if self._provider is not None:
            return self._provider.to_host(self._value)
        return self._value

    def value(self) -> Any:
        """The underlying value, on its device."""
        return self._value

    @property
    def provider(self) -> Any:
        """The provider instance whose memory holds the value (None on the host)."""
        return self._provider

    def device_id(self) -> int:
        return (
            int(getattr(self._provider, "options", {}).get("device_id", 0)) if self._provider else 0
        )

    def device_name(self) -> str:
        return self._device

    def is_tensor(self) -> bool:
        return not isinstance(self._value, (list, dict)) and self._value is not None

    def is_tensor_sequence(self) -> bool:
        return isinstance(self._value, list)

    def has_value(self) -> bool:
        return self._value is not None

    def shape(self) -> list[int]:
        return list(getattr(self._value, "shape", ()))

    def element_type(self) -> Any:
        return np.dtype(self._value.dtype).type

    def data_type(self) -> str:
        if isinstance(self._value, list):
            inner = OrtValue(self._value[0]).data_type() if self._value else "tensor(float)"
            return f"seq({inner})"
        try:
            elem = helper.np_dtype_to_tensor_dtype(np.dtype(self._value.dtype))
        except (KeyError, TypeError, ValueError, AttributeError):
            elem = onnx.TensorProto.STRING
        from .ir import type_str

        return type_str(helper.make_tensor_type_proto(elem, None))

    def __repr__(self) -> str:
        return f"OrtValue({self.data_type()}, shape={self.shape()}, device={self._device})"
