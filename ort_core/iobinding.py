"""IOBinding: bind inputs and outputs to memory so chains of runs avoid host round trips.

Same API as onnxruntime's ``IOBinding`` (and the native ``SessionIOBinding`` under it). A bound
input that lives in a session provider's memory is read there directly; an output bound to a
device stays there (``get_outputs()`` returns OrtValues on that device; ``copy_outputs_to_cpu()``
copies). Host inputs are bound without a copy: the run reads the array as it is when the run
starts. The session schedules one plan per combination of input and output locations, reusing the
kernels it built at creation.

Where ort-core differs from onnxruntime 1.32, on purpose:

- a wrong output name is refused by ``bind_output``/``bind_ortvalue_output`` (onnxruntime accepts
  it and fails at the run), and a preallocated output whose declared type or fixed dims do not
  match is refused when it is bound (onnxruntime: at the run), with onnxruntime's messages;
- an output bound to a device no provider of the session keeps tensors on is an error
  (onnxruntime's CPU build silently returns the output on the CPU);
- binding a string tensor raises onnxruntime's "Only binding non-string Tensors is currently
  supported" from every bind method (onnxruntime raises it from some, crashes in others); feed
  strings with ``InferenceSession.run``.
- device memory given by address (``bind_input(..., buffer_ptr)`` on a device) needs a provider
  that maps addresses to its arrays (``from_data_ptr``); otherwise bind an OrtValue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._elements import numpy_dtype
from .device import OrtDevice
from .errors import InvalidArgument
from .ortvalue import (
    _SUB_BYTE,
    OrtValue,
    OrtValueVector,
    _COrtValue,
    _device_name_of,
    _resolve_element_type,
    foreign_value,
    host_array_at,
    tensor_type_text,
)

__all__ = ["BindingState", "IOBinding", "SessionIOBinding", "binding_state"]

_FIX = "Please fix either the inputs/outputs or the model."


def _string_binding(what: str) -> InvalidArgument:
    return InvalidArgument(
        f"Only binding non-string Tensors is currently supported ({what}). Feed string tensors "
        "with InferenceSession.run(...)."
    )


def _is_string_value(ov: OrtValue) -> bool:
    c = ov._get_c_value()
    return c.is_tensor() and numpy_dtype(c._value.dtype).kind in "OUS"


@dataclass
class BindingState:
    """What a binding holds, and all that a session reads or writes of it
    (:func:`binding_state`): the bound inputs, the bound outputs and the last run's results."""

    #: input name -> bound value (host or device OrtValue)
    inputs: dict[str, OrtValue] = field(default_factory=dict)
    #: output name -> (name of the provider whose memory receives it, None for the host;
    #: preallocated OrtValue or None)
    outputs: dict[str, tuple[str | None, OrtValue | None]] = field(default_factory=dict)
    #: the outputs of the last run, in binding order
    results: list[OrtValue] = field(default_factory=list)
    #: the session handle the binding belongs to
    owner: Any = None


def binding_state(binding: Any) -> BindingState:
    """The state of an :class:`IOBinding` or :class:`SessionIOBinding` (what
    ``InferenceSession.run_with_iobinding`` reads and fills).

    Raises:
        TypeError: ``binding`` is neither.
    """
    if isinstance(binding, IOBinding):
        binding = binding._iobinding
    if isinstance(binding, SessionIOBinding):
        binding.state.owner = binding._session
        return binding.state
    raise TypeError(
        f"run_with_iobinding takes the IOBinding made by session.io_binding(), got "
        f"{type(binding).__name__}."
    )


class SessionIOBinding:
    """onnxruntime's native ``SessionIOBinding``: the bindings of one session.

    Args:
        session: an :class:`~ort_core.InferenceSession` (or its ``_sess`` handle).
    """

    __slots__ = ("_session", "state")

    def __init__(self, session: Any) -> None:
        #: the session's lower-level handle (``InferenceSession._sess``), as onnxruntime keeps it
        self._session = getattr(session, "_sess", session)
        self.state = BindingState()

    # -- native API ----------------------------------------------------------------------------
    def bind_input(self, name: str, *args: Any) -> None:
        """``bind_input(name, array)`` binds a host array; ``bind_input(name, device,
        element_type, shape, buffer_ptr)`` binds memory by address (``device`` an OrtDevice)."""
        if len(args) == 1:
            self._bind_host_input(name, args[0], "NodeArg")
        elif len(args) == 4:
            device, element_type, shape, buffer_ptr = args
            dev = _as_device(device)
            self._bind_raw_input(
                name, _device_name_of(dev), dev.device_id(), element_type, shape, buffer_ptr
            )
        else:
            raise TypeError(
                "bind_input takes (name, array) or (name, device, element_type, shape, "
                f"buffer_ptr); got {1 + len(args)} arguments."
            )

    def bind_ortvalue_input(self, name: str, ortvalue: Any) -> None:
        """Bind a native value (``OrtValue._get_c_value()``) or an OrtValue."""
        self._bind_value_input(name, _as_ortvalue(ortvalue, "bind_ortvalue_input"))

    def bind_output(
        self,
        name: str,
        device: Any = None,
        element_type: Any = None,
        shape: Any = None,
        buffer_ptr: Any = None,
    ) -> None:
        """Bind an output to a device (an OrtDevice; the host by default), optionally into
        preallocated memory given by address."""
        dev = _as_device(device) if device is not None else OrtDevice(0, 0, 0)
        self._bind_output(
            name, _device_name_of(dev), dev.device_id(), element_type, shape, buffer_ptr
        )

    def bind_ortvalue_output(self, name: str, ortvalue: Any) -> None:
        """Bind an output into a preallocated native value or OrtValue."""
        self._bind_value_output(name, _as_ortvalue(ortvalue, "bind_ortvalue_output"))

    def get_outputs(self) -> OrtValueVector:
        """The native values of the last run's outputs."""
        return OrtValueVector(v._get_c_value() for v in self.state.results)

    def copy_outputs_to_cpu(self) -> list[Any]:
        """The last run's outputs as new host values (numpy arrays for tensors)."""
        return [_host_copy(v) for v in self.state.results]

    def clear_binding_inputs(self) -> None:
        """Forget every bound input."""
        self.state.inputs.clear()

    def clear_binding_outputs(self) -> None:
        """Forget every bound output and the last run's results."""
        self.state.outputs.clear()
        self.state.results = []

    def synchronize_inputs(self) -> None:
        """Wait until bound inputs are ready on their devices."""
        self._synchronize()

    def synchronize_outputs(self) -> None:
        """Wait until the outputs of the last run are complete on their devices."""
        self._synchronize()

    # -- shared logic ---------------------------------------------------------------------------
    def _synchronize(self) -> None:
        for ep in self._session.providers():
            sync = getattr(ep, "synchronize", None)
            if not ep.host_memory and sync is not None:
                sync()

    def _check_input(self, name: str, style: str) -> None:
        inputs = self._session.input_names()
        if name not in inputs:
            found = (
                f"Failed to find NodeArg with name: {name} in the def list"
                if style == "NodeArg"
                else f"Error when binding input: Failed to find input name in the mapping: {name}"
            )
            raise InvalidArgument(
                f"{found}. The model's inputs are {list(inputs)}; bind one of those."
            )

    def _check_output(self, name: str) -> None:
        outputs = self._session.output_names()
        if name not in outputs:
            raise InvalidArgument(
                f"Invalid output name: {name}. The model's outputs are {list(outputs)}."
            )

    def _bind_host_input(self, name: str, array: Any, style: str) -> None:
        self._check_input(name, style)
        if not isinstance(array, np.ndarray):
            raise InvalidArgument(
                "Unable to create OrtValue from the given python object: bind_cpu_input takes a "
                f"numpy array, got {type(array).__name__}; pass np.asarray(value, dtype=...)."
            )
        if array.dtype.kind in "OUS":
            raise _string_binding(f"input '{name}'")
        self.state.inputs[name] = OrtValue(_COrtValue(array))

    def _bind_raw_input(
        self,
        name: str,
        device: str,
        device_id: int,
        element_type: Any,
        shape: Any,
        buffer_ptr: Any,
    ) -> None:
        self._check_input(name, "mapping")
        elem, dtype = _resolve_element_type(element_type)
        if dtype.kind == "O":
            raise _string_binding(f"input '{name}'")
        dims = _dims(shape)
        if device == "cpu":
            self.state.inputs[name] = OrtValue(
                _COrtValue(_host_buffer(buffer_ptr, element_type, dims))
            )
            return
        ep = self._session.device_provider(device, device_id)
        if not isinstance(buffer_ptr, (int, np.integer)) and ep.owns(buffer_ptr):
            self.state.inputs[name] = OrtValue(_COrtValue(buffer_ptr, ep.device_name, ep))
            return
        self.state.inputs[name] = OrtValue(
            _COrtValue(_device_buffer(ep, buffer_ptr, dtype, dims, name), ep.device_name, ep)
        )

    def _bind_value_input(self, name: str, ov: OrtValue) -> None:
        self._check_input(name, "mapping")
        if _is_string_value(ov):
            raise _string_binding(f"input '{name}'")
        self.state.inputs[name] = ov

    def _bind_output(
        self,
        name: str,
        device: str,
        device_id: int,
        element_type: Any,
        shape: Any,
        buffer_ptr: Any,
    ) -> None:
        self._check_output(name)
        ep = None if device == "cpu" else self._session.device_provider(device, device_id)
        if buffer_ptr is None:
            self.state.outputs[name] = (ep.name if ep is not None else None, None)
            return
        if element_type is None or shape is None:
            raise InvalidArgument(
                "`element_type` and `shape` are to be provided if pre-allocated memory is provided"
            )
        elem, dtype = _resolve_element_type(element_type)
        if dtype.kind == "O":
            raise _string_binding(f"output '{name}'")
        if elem in _SUB_BYTE:
            raise InvalidArgument(
                f"bind_output('{name}'): a {tensor_type_text(elem)} output cannot be written into "
                "memory given by address (its elements are packed); bind an OrtValue made with "
                "OrtValue.ortvalue_from_shape_and_type instead."
            )
        dims = _dims(shape)
        if ep is None:
            target = OrtValue(_COrtValue(_host_buffer(buffer_ptr, element_type, dims)))
        else:
            arr = _device_buffer(ep, buffer_ptr, dtype, dims, name)
            target = OrtValue(_COrtValue(arr, ep.device_name, ep))
        self._check_target(name, target)
        self.state.outputs[name] = (ep.name if ep is not None else None, target)

    def _bind_value_output(self, name: str, ov: OrtValue) -> None:
        self._check_output(name)
        if _is_string_value(ov):
            raise _string_binding(f"output '{name}'")
        self._check_target(name, ov)
        provider = ov.provider
        self.state.outputs[name] = (provider.name if provider is not None else None, ov)

    def _check_target(self, name: str, target: OrtValue) -> None:
        """Refuse a preallocated output whose type or fixed dims differ from the declared ones."""
        if not target.is_tensor():
            return
        declared = next((a for a in self._session.outputs_meta if a.name == name), None)
        if declared is None or not declared.type.startswith("tensor("):
            return
        actual = target.data_type()
        if actual != declared.type:
            raise InvalidArgument(
                f"Unexpected output data type. Actual: ({actual}) , expected: ({declared.type}). "
                f"Bind a buffer of the declared type for output '{name}'."
            )
        dims, expected = target.shape(), declared.shape
        if expected is None:
            return
        if len(dims) != len(expected):
            raise InvalidArgument(
                f"Invalid rank for output: {name} Got: {len(dims)} Expected: {len(expected)} {_FIX}"
            )
        bad = [
            f" index: {i} Got: {g} Expected: {e}"
            for i, (g, e) in enumerate(zip(dims, expected))
            if isinstance(e, int) and e >= 0 and g != e
        ]
        if bad:
            raise InvalidArgument(
                f"Got invalid dimensions for output: {name} for the following indices\n"
                + "\n".join(bad)
                + f"\n {_FIX}"
            )


class IOBinding:
    """Inputs and outputs bound for :meth:`InferenceSession.run_with_iobinding`, as
    ``onnxruntime.IOBinding``.

    Args:
        session: the :class:`~ort_core.InferenceSession` the bindings are for.
    """

    __slots__ = ("_session", "_iobinding", "__weakref__")

    def __init__(self, session: Any) -> None:
        # the session's lower-level handle, as onnxruntime keeps it: set_providers() replaces the
        # handle, after which this binding belongs to no session and is refused
        self._session = getattr(session, "_sess", session)
        self._iobinding = SessionIOBinding(session)

    def _check_owner(self, ov: OrtValue) -> None:
        """A session-scoped OrtValue may be bound only to the session that created it (a WebGPU
        buffer also to a session of the same WebGPU context)."""
        if foreign_value(ov, self._session):
            raise InvalidArgument(
                "This OrtValue was created by another session: an OrtValue made by "
                "create_ortvalue_from_shape_and_type must be bound to the session that created it."
            )

    def _capture_signature(self) -> tuple:
        """What a captured device graph depends on: the bound values' identities and locations."""
        return (
            tuple((n, id(v)) for n, v in sorted(self._iobinding.state.inputs.items())),
            tuple((n, loc, id(t)) for n, (loc, t) in sorted(self._iobinding.state.outputs.items())),
        )

    def _validate_capture_bindings(self) -> None:
        """Device-graph capture replays fixed device buffers; ort-core's providers have none
        (no WebGPU provider), so a binding can never be captured.

        Raises:
            ValueError: always, naming what capture requires.
        """
        raise InvalidArgument(
            "Graph capture requires fixed WebGPU device OrtValues bound as inputs and outputs; "
            "this binding has host values (ort-core has no WebGPU provider)."
        )

    # -- inputs --------------------------------------------------------------------------------
    def bind_cpu_input(self, name: str, arr_on_cpu: np.ndarray) -> None:
        """Bind a host numpy array; the run reads the array itself, as it is when the run starts.

        Raises:
            InvalidArgument: an unknown input name, a non-array, or a string array.
        """
        self._iobinding._bind_host_input(name, arr_on_cpu, "NodeArg")

    def bind_input(
        self,
        name: str,
        device_type: str,
        device_id: int,
        element_type: Any,
        shape: Any,
        buffer_ptr: Any,
    ) -> None:
        """Bind memory given by address.

        Args:
            name: the input's name.
            device_type: ``"cpu"`` or the device of one of the session's providers.
            device_id: the device index.
            element_type: a numpy type (``np.float32``) or an ONNX element type (an int).
            shape: the dims.
            buffer_ptr: the address of the first element (``arr.ctypes.data``,
                ``ortvalue.data_ptr()``); a numpy array (host) or the provider's device array is
                accepted too.

        Raises:
            InvalidArgument: unknown name, string element type, or a device the session's
                providers cannot read that address on.
        """
        self._iobinding._bind_raw_input(
            name, _device_of(device_type), int(device_id), element_type, shape, buffer_ptr
        )

    def bind_ortvalue_input(self, name: str, ortvalue: OrtValue) -> None:
        """Bind an OrtValue, on the host or on a provider's device."""
        ov = _as_ortvalue(ortvalue, "bind_ortvalue_input")
        self._check_owner(ov)
        self._iobinding._bind_value_input(name, ov)

    def synchronize_inputs(self) -> None:
        """Wait until bound inputs are ready on their devices."""
        self._iobinding.synchronize_inputs()

    # -- outputs -------------------------------------------------------------------------------
    def bind_output(
        self,
        name: str,
        device_type: str = "cpu",
        device_id: int = 0,
        element_type: Any = None,
        shape: Any = None,
        buffer_ptr: Any = None,
    ) -> None:
        """Ask for an output on ``device_type`` (the host by default); with ``buffer_ptr`` (and
        ``element_type`` and ``shape``) the run writes it into that preallocated memory.

        Raises:
            InvalidArgument: unknown output name (a ValueError: also when ``buffer_ptr`` is given
                without ``element_type`` and ``shape``), a device no provider of the session
                keeps tensors on, or a buffer of another type or shape than declared.
        """
        self._iobinding._bind_output(
            name, _device_of(device_type), int(device_id), element_type, shape, buffer_ptr
        )

    def bind_ortvalue_output(self, name: str, ortvalue: OrtValue) -> None:
        """Ask for an output to be written into a preallocated OrtValue (of the declared type
        and shape)."""
        ov = _as_ortvalue(ortvalue, "bind_ortvalue_output")
        self._check_owner(ov)
        self._iobinding._bind_value_output(name, ov)

    def synchronize_outputs(self) -> None:
        """Wait until the outputs of the last run are complete on their devices."""
        self._iobinding.synchronize_outputs()

    # -- results -------------------------------------------------------------------------------
    def get_outputs(self) -> list[OrtValue]:
        """The outputs of the last run as OrtValues, in binding order (on their devices)."""
        return list(self._iobinding.state.results)

    def get_outputs_as_ortvaluevector(self) -> OrtValueVector:
        """The outputs of the last run as an :class:`~ort_core.ortvalue.OrtValueVector`."""
        return self._iobinding.get_outputs()

    def copy_outputs_to_cpu(self) -> list[Any]:
        """The outputs of the last run as new host values (numpy arrays for tensors)."""
        return self._iobinding.copy_outputs_to_cpu()

    def clear_binding_inputs(self) -> None:
        """Forget every bound input."""
        self._iobinding.clear_binding_inputs()

    def clear_binding_outputs(self) -> None:
        """Forget every bound output and the last run's results."""
        self._iobinding.clear_binding_outputs()


# -- helpers ---------------------------------------------------------------------------------
def _device_of(device_type: Any) -> str:
    if not isinstance(device_type, str):
        raise TypeError(
            f"device_type must be a device name (str), got {type(device_type).__name__}."
        )
    return device_type.lower()


def _as_device(device: Any) -> OrtDevice:
    getter = getattr(device, "_get_c_device", None)
    if getter is None:
        raise TypeError(f"expected an OrtDevice, got {type(device).__name__}.")
    return getter()


def _as_ortvalue(value: Any, what: str) -> OrtValue:
    if isinstance(value, OrtValue):
        return value
    if isinstance(value, _COrtValue):
        return OrtValue(value)
    raise TypeError(
        f"{what} needs an OrtValue, got {type(value).__name__}; wrap arrays with "
        "OrtValue.ortvalue_from_numpy(...) or use bind_cpu_input."
    )


def _dims(shape: Any) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints, got {shape!r}.") from None
    if any(d < 0 for d in dims):
        raise InvalidArgument(f"shape {list(dims)} has a negative dim.")
    return dims


def _host_buffer(buffer: Any, element_type: Any, dims: tuple[int, ...]) -> np.ndarray:
    """Host memory given by address (or as a numpy array) as an array of ``dims``."""
    if isinstance(buffer, np.ndarray):
        _, dtype = _resolve_element_type(element_type)
        if buffer.dtype != dtype or buffer.size != int(np.prod(dims, dtype=np.int64)):
            raise InvalidArgument(
                f"the bound array is {buffer.dtype}{list(buffer.shape)}, not {dtype}{list(dims)}; "
                "pass an array of the element type and size given."
            )
        return buffer.reshape(dims)
    if not isinstance(buffer, (int, np.integer)) or isinstance(buffer, bool):
        raise TypeError(
            f"buffer_ptr must be an address (an int such as arr.ctypes.data), got "
            f"{type(buffer).__name__}."
        )
    return host_array_at(int(buffer), element_type, dims)


def _device_buffer(ep: Any, buffer: Any, dtype: np.dtype, dims: tuple[int, ...], name: str) -> Any:
    """Device memory given by address, through the provider's ``from_data_ptr``."""
    wrap = getattr(ep, "from_data_ptr", None)
    if wrap is None or not isinstance(buffer, (int, np.integer)):
        raise InvalidArgument(
            f"'{name}': {ep.name} cannot bind device memory given by address; create the value "
            "with OrtValue.ortvalue_from_numpy(array, device_type, device_id) (or "
            "ortvalue_from_shape_and_type) and bind it with bind_ortvalue_input / "
            "bind_ortvalue_output."
        )
    return wrap(int(buffer), dtype, dims)


def _host_copy(ov: OrtValue) -> Any:
    c = ov._get_c_value()
    if c.is_tensor():
        arr = c.numpy()
        return np.array(arr, copy=True) if c._provider is None else arr
    value = c._value
    if isinstance(value, list):
        return [np.array(v, copy=True) if isinstance(v, np.ndarray) else v for v in value]
    if isinstance(value, dict):
        return dict(value)
    if c.is_sparse_tensor():
        from .sparse import SparseTensor

        return SparseTensor(value)
    return value
