"""IOBinding: bind inputs and outputs to device memory so chains of runs avoid host round trips.

Same API as onnxruntime's ``IOBinding``. A bound input that lives in a session provider's memory is
read there directly; an output bound to a device stays there (``get_outputs()`` returns OrtValues on
that device; ``copy_outputs_to_cpu()`` copies). The session schedules one plan per combination of
input and output locations, reusing the kernels it built at creation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from onnx import helper

from .errors import InvalidArgument
from .ortvalue import OrtValue

if TYPE_CHECKING:
    from .session import InferenceSession

__all__ = ["IOBinding"]


def _np_dtype(element_type: Any) -> np.dtype:
    if isinstance(element_type, int) and not isinstance(element_type, bool):
        return np.dtype(helper.tensor_dtype_to_np_dtype(element_type))
    return np.dtype(element_type)


class IOBinding:
    """Inputs and outputs bound for :meth:`InferenceSession.run_with_iobinding`."""

    def __init__(self, session: InferenceSession) -> None:
        self._session = session
        self._inputs: dict[str, OrtValue] = {}
        self._outputs: dict[str, tuple[str | None, OrtValue | None]] = {}
        self._results: list[OrtValue] = []

    # -- inputs ------------------------------------------------------------------------------------
    def bind_cpu_input(self, name: str, arr_on_cpu: Any) -> None:
        """Bind a host numpy array (read when the run starts, as onnxruntime does)."""
        self._check_input_name(name)
        self._inputs[name] = OrtValue(np.asarray(arr_on_cpu))

    def bind_ortvalue_input(self, name: str, ortvalue: OrtValue) -> None:
        """Bind an OrtValue, on the host or on a provider's device."""
        self._check_input_name(name)
        if not isinstance(ortvalue, OrtValue):
            raise InvalidArgument(
                f"bind_ortvalue_input('{name}') needs an OrtValue, got {type(ortvalue).__name__}"
            )
        self._inputs[name] = ortvalue

    def bind_input(
        self,
        name: str,
        device_type: str,
        device_id: int,
        element_type: Any,
        shape: Any,
        buffer_ptr: Any,
    ) -> None:
        """Bind raw memory. On 'cpu', ``buffer_ptr`` is an address; on a device, pass the
        provider's array object (or use :meth:`bind_ortvalue_input`)."""
        self._check_input_name(name)
        dtype = _np_dtype(element_type)
        shape = tuple(int(d) for d in shape)
        if device_type.lower() == "cpu":
            if isinstance(buffer_ptr, np.ndarray):
                arr = buffer_ptr.reshape(shape)
            else:
                count = int(np.prod(shape)) if shape else 1
                import ctypes

                raw = (ctypes.c_char * (count * dtype.itemsize)).from_address(int(buffer_ptr))
                arr = np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)
            self._inputs[name] = OrtValue(arr)
            return
        ep = self._session._device_provider(device_type, device_id)
        if isinstance(buffer_ptr, int) or not ep.owns(buffer_ptr):
            raise InvalidArgument(
                f"bind_input('{name}', '{device_type}'): ort-core binds device memory as the "
                "provider's array objects, not raw pointers; create it with "
                "OrtValue.ortvalue_from_numpy(array, device_type, device_id) and bind_ortvalue_input."
            )
        self._inputs[name] = OrtValue(buffer_ptr, device_type.lower(), ep)

    # -- outputs -----------------------------------------------------------------------------------
    def bind_output(
        self,
        name: str,
        device_type: str = "cpu",
        device_id: int = 0,
        element_type: Any = None,
        shape: Any = None,
        buffer_ptr: Any = None,
    ) -> None:
        """Ask for an output, kept on ``device_type`` (host by default)."""
        self._check_output_name(name)
        if buffer_ptr is not None:
            raise InvalidArgument(
                f"bind_output('{name}'): preallocated raw buffers are not supported; bind a "
                "preallocated OrtValue with bind_ortvalue_output, or let the run allocate."
            )
        location = None
        if device_type.lower() != "cpu":
            location = self._session._device_provider(device_type, device_id).name
        self._outputs[name] = (location, None)

    def bind_ortvalue_output(self, name: str, ortvalue: OrtValue) -> None:
        """Ask for an output to be written into a preallocated OrtValue (same dtype and shape)."""
        self._check_output_name(name)
        location = ortvalue.provider.name if ortvalue.provider is not None else None
        self._outputs[name] = (location, ortvalue)

    # -- results -----------------------------------------------------------------------------------
    def get_outputs(self) -> list[OrtValue]:
        """The outputs of the last run, in the order they were bound."""
        return list(self._results)

    def get_outputs_as_ortvaluevector(self) -> list[OrtValue]:
        return self.get_outputs()

    def copy_outputs_to_cpu(self) -> list[Any]:
        """The outputs of the last run as host values."""
        return [v.numpy() for v in self._results]

    def synchronize_inputs(self) -> None:
        """Inputs are read synchronously: nothing to wait for."""

    def synchronize_outputs(self) -> None:
        """Outputs are complete when the run returns: nothing to wait for."""

    def clear_binding_inputs(self) -> None:
        self._inputs.clear()

    def clear_binding_outputs(self) -> None:
        self._outputs.clear()
        self._results = []

    # -- helpers -----------------------------------------------------------------------------------
    def _check_input_name(self, name: str) -> None:
        if name not in self._session._input_index:
            raise InvalidArgument(
                f"Invalid input name: {name}. The model's inputs are {list(self._session._input_index)}."
            )

    def _check_output_name(self, name: str) -> None:
        if name not in self._session._output_index:
            raise InvalidArgument(
                f"Invalid output name: {name}. The model's outputs are {list(self._session._output_index)}."
            )
