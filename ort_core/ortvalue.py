"""OrtValue: a value (tensor, sequence, map, optional, sparse tensor) and the device it lives on.

As in onnxruntime there are two layers. :class:`OrtValue` is what users hold
(``onnxruntime.OrtValue``); it wraps a native-level value, ``OrtValue._get_c_value()`` or
``._ortvalue``, which is what ``onnxruntime.capi.onnxruntime_pybind11_state.OrtValue`` offers
(:class:`_COrtValue` here) and what :class:`OrtValueVector` holds.

Host tensors are numpy arrays (bfloat16, float8, int4... as ml_dtypes arrays, strings as object
arrays); device tensors are the array type of the provider that owns them (``provider`` says who
can copy them back). ``ortvalue_from_numpy`` on the CPU wraps the caller's array without a copy,
``np.asarray(value)`` and ``__dlpack__`` give it back without a copy, and ``OrtValue.from_dlpack``
takes numpy arrays, other OrtValues and raw DLPack capsules without a copy.

Where ort-core differs from onnxruntime 1.32, on purpose:

- ml_dtypes arrays (bfloat16, float8, int4...) and complex arrays are accepted by
  ``ortvalue_from_numpy`` and ``numpy()`` returns them as ml_dtypes arrays (onnxruntime refuses
  them, or returns raw uint8 for two of the float8/float4 types).
- ``from_dlpack`` accepts strided (non-contiguous) and read-only host tensors, and complex,
  bfloat16 and float8 ones; ``np.from_dlpack(value)`` is writable (ort-core answers numpy's request
  for a versioned capsule; onnxruntime's legacy capsule makes numpy return a read-only array).
- ``__dlpack__`` of bfloat16, float8 and packed 4-bit values is refused (numpy, which exports
  ort-core's host tensors, has no DLPack export for them); ``numpy()`` gives them as ml_dtypes.
- ``update_inplace`` refuses a source of another element type unless the value's element type has
  no numpy equivalent and the item sizes match (onnxruntime copies the bytes of any same-sized
  array, so a float64 array silently lands in a float32 value as garbage).
- ``copy_tensors`` copies between host values too (onnxruntime's CPU build has no such copy).
- an empty optional answers ``has_value() == False`` and raises a clear error from ``data_type()``,
  ``numpy()``..., where onnxruntime reports a tensor or crashes the process.
"""

from __future__ import annotations

import ctypes
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ._dlpack import (
    _DL_CPU,
    _DL_CUDA_HOST,
    _DL_DEVICE_NAMES,
    _capsule_tensor,
    _CapsuleHolder,
    _import_host_tensor,
    is_dlpack_uint8_tensor,
)
from ._elements import (
    _DTYPE_OF,
    _ELEM_NAME,
    _OBJECT,
    _STRING,
    _STRING_ITEM_BYTES,
    _SUB_BYTE,
    _T,
    _UNSUPPORTED,
    _is_string,
    element_dtype,
    element_type_of,
    tensor_type_text,
)
from .device import OrtDevice, OrtDeviceVendorId
from .errors import InvalidArgument, ProviderNotAvailable
from .plugins import device_provider

__all__ = [
    "OrtValue",
    "OrtValueVector",
    "copy_tensors",
    "is_dlpack_uint8_tensor",
    "element_dtype",
    "element_type_of",
    "tensor_type_text",
]


def _resolve_element_type(element_type: Any) -> tuple[int, np.dtype]:
    """An element type given as onnxruntime accepts it (a numpy type or dtype, a dtype name, or an
    ONNX integer) as (ONNX element type, storage dtype)."""
    if isinstance(element_type, (int, np.integer)) and not isinstance(element_type, bool):
        elem = int(element_type)
        return elem, element_dtype(elem)
    try:
        dt = np.dtype(element_type)
    except TypeError:
        raise InvalidArgument(
            f"element type {element_type!r} is neither a numpy type nor an ONNX element type "
            "(pass np.float32 or onnx.TensorProto.FLOAT)."
        ) from None
    elem = element_type_of(dt)
    if elem is None:
        raise InvalidArgument(
            f"numpy type {dt} has no ONNX element type; use one of the types of "
            "onnx.TensorProto.DataType."
        )
    return elem, (_OBJECT if elem == _STRING else dt)


def _packed_nbytes(elem: int, count: int) -> int:
    bits = _SUB_BYTE.get(elem)
    return count * element_dtype(elem).itemsize if bits is None else (count * bits + 7) // 8


def _unpack(raw: np.ndarray, elem: int, count: int) -> np.ndarray:
    """Elements of a packed (4- or 2-bit) type, lowest bits first, as one element per byte."""
    bits = _SUB_BYTE[elem]
    per = 8 // bits
    mask = (1 << bits) - 1
    data = np.ascontiguousarray(raw).view(np.uint8).reshape(-1)
    out = np.empty(data.size * per, np.uint8)
    for k in range(per):
        out[k::per] = (data >> (k * bits)) & mask
    return out[:count].view(element_dtype(elem))


def _string_error() -> InvalidArgument:
    return InvalidArgument(
        "Creation of OrtValues is currently only supported from non-string numpy arrays. "
        "Feed string tensors to InferenceSession.run(...) as numpy arrays instead."
    )


# -- devices and providers -------------------------------------------------------------------
#: device names onnxruntime knows: without an installed provider for one, memory cannot be allocated
#: there; any other name is not a device at all
_ORT_DEVICE_NAMES = frozenset({"cuda", "gpu", "npu", "dml", "cann", "webgpu"})
_INSTALL_HINT = {"cuda": "ort-core[cuda]"}


def _device_name_of(device: OrtDevice) -> str:
    """The device name ort-core's providers use for an :class:`OrtDevice`."""
    kind, vendor = device.kind, device.device_vendor_id()
    if kind == "gpu":
        return {OrtDeviceVendorId.NVIDIA: "cuda", OrtDeviceVendorId.MICROSOFT: "dml"}.get(
            vendor, "gpu"
        )
    if kind == "npu":
        return "cann" if vendor == OrtDeviceVendorId.HUAWEI else "npu"
    return kind


def _require_provider(device: str, device_id: int, what: str) -> Any:
    try:
        ep = device_provider(device, device_id)
    except ProviderNotAvailable as e:
        raise InvalidArgument(
            f"No shared allocator found. Can't allocate memory on the device '{device}' ({what}): "
            f"its provider is installed but cannot run here: {e.message}"
        ) from None
    if ep is not None:
        return ep
    if device in _ORT_DEVICE_NAMES:
        hint = _INSTALL_HINT.get(device, "the provider of that device")
        raise InvalidArgument(
            f"No shared allocator found. Can't allocate memory on the device '{device}' ({what}): "
            "no installed ort-core "
            f"execution provider keeps tensors there. Install {hint}, or use device_type='cpu'."
        )
    raise InvalidArgument(
        f"Unsupported device type: {device} ({what}). Use 'cpu' or the device of an installed "
        "provider (e.g. 'cuda', 'opencl')."
    )


def _host_device(name: str) -> bool:
    return name.lower() == "cpu"


def _from_capsule(capsule: Any, is_bool_tensor: bool | None) -> _COrtValue:
    """A native value over a DLPack capsule's tensor (host memory zero-copy; a device tensor
    through its provider's ``from_dlpack``), consuming the capsule."""
    tensor = _capsule_tensor(capsule)
    device = (int(tensor.device.device_type), int(tensor.device.device_id))
    if device[0] in (_DL_CPU, _DL_CUDA_HOST):
        arr = _import_host_tensor(capsule)
        if is_bool_tensor and arr.dtype == np.uint8:
            arr = arr.view(np.bool_)
        return _COrtValue(arr)
    name = _DL_DEVICE_NAMES.get(device[0], f"DLPack device type {device[0]}")
    ep = device_provider(name, device[1])
    importer = getattr(ep, "from_dlpack", None)
    if importer is None:
        raise InvalidArgument(
            f"from_dlpack: the tensor lives on {name}:{device[1]} and no installed ort-core "
            "provider of that device imports DLPack tensors; install its provider (e.g. "
            "ort-core[cuda]) or copy the tensor to the host first."
        )
    return _COrtValue(importer(_CapsuleHolder(capsule, device)), name, ep)


# -- the native-level value ------------------------------------------------------------------
class _COrtValue:
    """onnxruntime's native ``OrtValue`` (``capi.onnxruntime_pybind11_state.OrtValue``).

    Args:
        value: a numpy array, a provider's device array, a list (sequence), a dict (map), None
            (empty optional) or a native sparse tensor.
        device: the device name (``"cpu"`` or a provider's ``device_type``).
        provider: the provider instance whose memory holds a device value (None on the host).
        onnx_type: the declared ONNX type text (``"seq(tensor(int64))"``), used when the value
            alone does not tell it (an empty sequence, an empty optional).
    """

    __slots__ = ("_value", "_device", "_provider", "_type", "__weakref__")

    def __init__(
        self,
        value: Any = None,
        device: str = "cpu",
        provider: Any = None,
        onnx_type: str | None = None,
    ) -> None:
        self._value = value
        self._device = device.lower()
        self._provider = provider
        self._type = onnx_type

    # -- factories ---------------------------------------------------------------------------
    @staticmethod
    def ortvalue_from_numpy(array: Any, device: OrtDevice | None = None) -> _COrtValue:
        """A tensor over a numpy array: the array itself on the CPU (a contiguous copy when it is
        not contiguous), a copy in the device's memory elsewhere."""
        device = device if device is not None else OrtDevice(0, 0, 0)
        return _from_numpy(array, _device_name_of(device), device.device_id())

    @staticmethod
    def ortvalue_from_numpy_with_onnx_type(array: np.ndarray, onnx_element_type: int) -> _COrtValue:
        """A host tensor over the bytes of ``array`` read as ``onnx_element_type`` (same item
        size; packed 4- and 2-bit types are unpacked into a copy)."""
        if not isinstance(array, np.ndarray):
            raise TypeError(
                "ortvalue_from_numpy_with_onnx_type needs a numpy.ndarray, got "
                f"{type(array).__name__}."
            )
        elem = int(onnx_element_type)
        if elem not in _DTYPE_OF and elem not in _UNSUPPORTED:
            raise InvalidArgument(f"Not a valid ONNX Tensor data type: {elem}")
        dt = element_dtype(elem)
        if elem == _STRING or _is_string(array.dtype):
            raise _string_error()
        if elem in _SUB_BYTE:
            if array.dtype.itemsize != 1:
                raise InvalidArgument(
                    f"Items size in the incoming array: {array.dtype.itemsize} specified by "
                    f"onnxtype: 1. {tensor_type_text(elem)} data is packed bytes: pass uint8."
                )
            count = int(np.prod(array.shape, dtype=np.int64))
            flat = _unpack(array.reshape(-1)[: _packed_nbytes(elem, count)], elem, count)
            return _COrtValue(flat.reshape(array.shape))
        if array.dtype.itemsize != dt.itemsize:
            raise InvalidArgument(
                f"Items size in the incoming array: {array.dtype.itemsize} specified by onnxtype: "
                f"{dt.itemsize}. Pass an array whose items are {dt.itemsize} bytes."
            )
        return _COrtValue(array.view(dt))

    @staticmethod
    def ortvalue_from_shape_and_type(
        shape: Sequence[int], element_type: Any, device: OrtDevice | None = None
    ) -> _COrtValue:
        """An uninitialized tensor (element type as a numpy type) on ``device``."""
        device = device if device is not None else OrtDevice(0, 0, 0)
        return _allocate(shape, element_type, _device_name_of(device), device.device_id())

    @staticmethod
    def ortvalue_from_shape_and_onnx_type(
        shape: Sequence[int], onnx_element_type: int, device: OrtDevice | None = None
    ) -> _COrtValue:
        """An uninitialized tensor (element type as an ONNX integer) on ``device``."""
        device = device if device is not None else OrtDevice(0, 0, 0)
        return _allocate(shape, int(onnx_element_type), _device_name_of(device), device.device_id())

    @staticmethod
    def from_dlpack(data: Any, is_bool_tensor: bool | None = None) -> _COrtValue:
        """A tensor sharing the memory of a DLPack capsule (or of an object with ``__dlpack__``).

        ``is_bool_tensor`` is onnxruntime's legacy flag: True reads a uint8 tensor as bool (the
        DLPack dtype decides otherwise: kDLBool is bool, uint8 stays uint8)."""
        if isinstance(data, _COrtValue):
            return data._share()
        if isinstance(data, OrtValue):
            return data._ortvalue._share()
        if isinstance(data, np.ndarray):
            if _is_string(data.dtype):
                raise InvalidArgument(
                    "from_dlpack: DLPack carries numbers and bool, not strings; feed string "
                    "arrays to InferenceSession.run(...)."
                )
            as_bool = is_bool_tensor and data.dtype == np.uint8
            return _COrtValue(data.view(np.bool_) if as_bool else data)
        if hasattr(data, "__dlpack__"):
            data = data.__dlpack__()
        return _from_capsule(data, is_bool_tensor)

    @staticmethod
    def ort_value_from_sparse_tensor(sparse_tensor: Any) -> _COrtValue:
        """A value holding a native sparse tensor."""
        from .sparse import _CSparseTensor

        if not isinstance(sparse_tensor, _CSparseTensor):
            raise TypeError(
                "ort_value_from_sparse_tensor needs a sparse tensor (SparseTensor."
                f"sparse_coo_from_numpy(...)), got {type(sparse_tensor).__name__}."
            )
        return _COrtValue(sparse_tensor, sparse_tensor._device_name, sparse_tensor._provider)

    def _share(self) -> _COrtValue:
        if not self.is_tensor():
            raise InvalidArgument(self._not_tensor("from_dlpack"))
        return _COrtValue(self._value, self._device, self._provider, self._type)

    # -- what it holds -----------------------------------------------------------------------
    def _kind(self) -> str:
        from .sparse import _CSparseTensor

        v = self._value
        if v is None:
            return "none"
        if isinstance(v, _CSparseTensor):
            return "sparse"
        if isinstance(v, list):
            return "sequence"
        if isinstance(v, dict):
            return "map"
        return "tensor"

    def has_value(self) -> bool:
        """False for an empty optional."""
        return self._value is not None

    def is_tensor(self) -> bool:
        """True when the value is a (dense) tensor."""
        return self._kind() == "tensor"

    def is_sparse_tensor(self) -> bool:
        """True when the value is a sparse tensor."""
        return self._kind() == "sparse"

    def is_tensor_sequence(self) -> bool:
        """True when the value is a sequence of tensors."""
        return self._kind() == "sequence"

    def _not_tensor(self, what: str) -> str:
        if self._value is None:
            return (
                f"{what}: this OrtValue holds no value (an empty optional); check has_value() "
                "first."
            )
        return (
            f"{what}: Only OrtValues that are Tensors are currently supported; this one is "
            f"{self.data_type()}. Use value() for sequences and maps, as_sparse_tensor() for "
            "sparse tensors."
        )

    def _tensor(self, what: str) -> Any:
        if not self.is_tensor():
            raise InvalidArgument(self._not_tensor(what))
        return self._value

    def data_type(self) -> str:
        """The ONNX type text: ``tensor(float)``, ``seq(tensor(int64))``,
        ``sparse_tensor(float)``, ``map(string,tensor(float))``..."""
        kind = self._kind()
        if kind == "tensor":
            return tensor_type_text(self._elem_of_array(self._value))
        if kind == "sparse":
            return self._value.data_type()
        if self._type is not None:
            return self._type
        if kind == "sequence":
            return f"seq({_value_type(self._value[0]) if self._value else 'tensor(undefined)'})"
        if kind == "map":
            return _value_type(self._value)
        raise InvalidArgument(
            "data_type: this OrtValue holds no value (an empty optional) and its type was not "
            "recorded; check has_value() first."
        )

    @staticmethod
    def _elem_of_array(arr: Any) -> int:
        elem = element_type_of(arr.dtype)
        if elem is None:
            raise InvalidArgument(f"the tensor's dtype {arr.dtype} has no ONNX element type.")
        return elem

    def element_type(self) -> int:
        """The ONNX element type (``onnx.TensorProto`` value) of a tensor, of the tensors of a
        sequence, or of a sparse tensor's values."""
        kind = self._kind()
        if kind == "tensor":
            return self._elem_of_array(self._value)
        if kind == "sparse":
            return self._elem_of_array(self._value._values)
        if kind == "sequence" and self._value and hasattr(self._value[0], "dtype"):
            return self._elem_of_array(self._value[0])
        text = self._type or ""
        inner = text.rsplit("tensor(", 1)[-1].rstrip(")") if "tensor(" in text else None
        for elem, name in _ELEM_NAME.items():
            if name == inner:
                return elem
        raise InvalidArgument(self._not_tensor("element_type"))

    def shape(self) -> list[int]:
        """The dims of a tensor, or the dense shape of a sparse tensor."""
        if self.is_sparse_tensor():
            return self._value.dense_shape()
        return [int(d) for d in self._tensor("shape").shape]

    def device_name(self) -> str:
        """The device the value lives on (onnxruntime's native spelling: ``Cpu``, ``Cuda``)."""
        if not (self.is_tensor() or self.is_sparse_tensor()):
            raise InvalidArgument(
                "device_name: Only OrtValues that are Tensors/SparseTensors are currently "
                f"supported; this one is {self.data_type() if self.has_value() else 'empty'}."
            )
        return {"cpu": "Cpu", "cuda": "Cuda"}.get(self._device, self._device)

    def tensor_size_in_bytes(self) -> int:
        """Bytes of the tensor's data (packed types packed; a string counts as onnxruntime's
        ``sizeof(std::string)``, 32)."""
        arr = self._tensor("tensor_size_in_bytes")
        count = int(np.prod(arr.shape, dtype=np.int64))
        elem = self._elem_of_array(arr)
        if elem == _STRING:
            return count * _STRING_ITEM_BYTES
        return _packed_nbytes(elem, count)

    def data_ptr(self) -> int:
        """The address of the tensor's first element (host memory, or the device pointer)."""
        arr = self._tensor("data_ptr")
        if isinstance(arr, np.ndarray):
            return int(arr.ctypes.data)
        cai = getattr(arr, "__cuda_array_interface__", None)
        if cai is not None:
            return int(cai["data"][0])
        getter = getattr(self._provider, "data_ptr", None)
        if getter is not None:
            return int(getter(arr))
        raise InvalidArgument(
            f"data_ptr: the tensor lives on '{self._device}' and its provider does not expose "
            "device addresses; bind it with IOBinding.bind_ortvalue_input instead of by pointer."
        )

    def numpy(self) -> np.ndarray:
        """The tensor as a host numpy array: the host array itself (no copy), or a copy of a
        device tensor."""
        arr = self._tensor("numpy")
        if self._provider is not None:
            return self._provider.to_host(arr)
        return arr.view() if isinstance(arr, np.ndarray) else np.asarray(arr)

    def as_sparse_tensor(self) -> Any:
        """The native sparse tensor this value holds."""
        if not self.is_sparse_tensor():
            raise InvalidArgument(
                "This OrtValue does not contain SparseTensor. Check data_type() value: "
                f"{self.data_type() if self._value is not None else 'no value'}."
            )
        return self._value

    def _is_webgpu_buffer(self) -> bool:
        return False

    # -- DLPack ------------------------------------------------------------------------------
    def __dlpack__(
        self,
        stream: Any = None,
        *,
        max_version: tuple[int, int] | None = None,
        dl_device: Any = None,
        copy: bool | None = None,
    ) -> Any:
        """A DLPack capsule over the tensor's memory (no copy)."""
        arr = self._tensor("__dlpack__")
        kwargs = {
            k: v
            for k, v in (("max_version", max_version), ("dl_device", dl_device), ("copy", copy))
            if v is not None
        }
        exporter = getattr(arr, "__dlpack__", None)
        if exporter is None or (isinstance(arr, np.ndarray) and arr.dtype.kind in "OUSV"):
            raise InvalidArgument(
                f"__dlpack__: a {self.data_type()} tensor on '{self._device}' cannot be exported "
                "through DLPack (it carries numbers and bool); use numpy() for a host array."
            )
        if stream is not None and not isinstance(arr, np.ndarray):
            kwargs["stream"] = stream
        return exporter(**kwargs)

    def to_dlpack(self) -> Any:
        """A DLPack capsule over the tensor's memory (onnxruntime's older name)."""
        return self.__dlpack__()

    def __dlpack_device__(self) -> tuple[int, int]:
        """``(DLPack device type, device id)``: ``(1, 0)`` on the CPU."""
        arr = self._tensor("__dlpack_device__")
        if isinstance(arr, np.ndarray):
            return (_DL_CPU, 0)
        getter = getattr(arr, "__dlpack_device__", None)
        if getter is None:
            raise InvalidArgument(
                f"__dlpack_device__: tensors on '{self._device}' do not speak DLPack; use numpy()."
            )
        device_type, device_id = getter()
        return (int(device_type), int(device_id))

    # -- writing -----------------------------------------------------------------------------
    def update_inplace(self, data: Any) -> None:
        """Copy ``data`` (a numpy array or another value) into this tensor's memory."""
        dst = self._tensor("update_inplace")
        if isinstance(data, _COrtValue):
            src = data.numpy()
        elif isinstance(data, np.ndarray):
            src = data
        else:
            raise TypeError("data must be a numpy.ndarray or an OrtValue.")
        if int(np.prod(src.shape, dtype=np.int64)) != int(np.prod(dst.shape, dtype=np.int64)):
            raise InvalidArgument(
                "The input size of numpy arrays does not match the size of the OrtValue "
                f"({list(src.shape)} into {list(dst.shape)}); pass an array with as many elements."
            )
        src = self._compatible_source(src, dst.dtype)
        if not isinstance(dst, np.ndarray):
            setter = getattr(dst, "set", None)
            if setter is None:
                raise InvalidArgument(
                    f"update_inplace: tensors on '{self._device}' cannot be written in place by "
                    "this provider; create a new OrtValue instead."
                )
            setter(np.ascontiguousarray(src).reshape(dst.shape))
            return
        if not dst.flags.writeable:
            raise InvalidArgument(
                "update_inplace: this OrtValue wraps a read-only array; create it from a "
                "writable array (np.array(x)) to update it in place."
            )
        dst.reshape(-1)[...] = src.reshape(-1)

    @staticmethod
    def _compatible_source(src: np.ndarray, dst_dtype: np.dtype) -> np.ndarray:
        if src.dtype == dst_dtype:
            return src
        native = dst_dtype.kind in "biufc?" and dst_dtype.type.__module__ == "numpy"
        if not native and src.dtype.itemsize == dst_dtype.itemsize and src.dtype.kind in "uib":
            return np.ascontiguousarray(src).view(dst_dtype)
        raise InvalidArgument(
            f"update_inplace: the source is {src.dtype} but the OrtValue holds {dst_dtype}; "
            f"convert it first (x.astype(np.{dst_dtype.name}))."
        )

    def __repr__(self) -> str:
        try:
            text = self.data_type()
        except InvalidArgument:
            text = "no value"
        return f"<OrtValue {text} on {self._device}>"


# onnxruntime's name for the native class (``type(v._ortvalue).__name__ == "OrtValue"``)
_COrtValue.__name__ = _COrtValue.__qualname__ = "OrtValue"


def _value_type(v: Any) -> str:
    """The ONNX type text of a host value: a tensor, a map, a sequence."""
    if isinstance(v, dict):
        key = next(iter(v), "")
        key_text = "string" if isinstance(key, str) else "int64"
        val = next(iter(v.values()), 0.0)
        if isinstance(val, str):
            val_text = "string"
        elif isinstance(val, (int, np.integer)) and not isinstance(val, (bool, np.bool_)):
            val_text = "int64"
        elif isinstance(val, np.float64):
            val_text = "double"
        else:
            val_text = "float"
        return f"map({key_text},tensor({val_text}))"
    if isinstance(v, list):
        return f"seq({_value_type(v[0]) if v else 'tensor(undefined)'})"
    elem = element_type_of(v.dtype) if hasattr(v, "dtype") else None
    return tensor_type_text(elem if elem is not None else _T.UNDEFINED)


def _from_numpy(array: Any, device: str, device_id: int) -> _COrtValue:
    if isinstance(array, str):
        raise _string_error()
    if not isinstance(array, np.ndarray):
        raise InvalidArgument(
            "Creation of OrtValues is currently only supported from non-string numpy arrays; "
            f"got {type(array).__name__}. Pass np.asarray(value, dtype=...)."
        )
    if _is_string(array.dtype):
        raise _string_error()
    if element_type_of(array.dtype) is None:
        raise InvalidArgument(
            f"numpy type {array.dtype} has no ONNX element type; convert the array first."
        )
    if _host_device(device):
        return _COrtValue(array if array.flags.c_contiguous else np.ascontiguousarray(array))
    ep = _require_provider(device, device_id, "ortvalue_from_numpy")
    return _COrtValue(ep.to_device(np.ascontiguousarray(array)), device, ep)


def _allocate(shape: Sequence[int], element_type: Any, device: str, device_id: int) -> _COrtValue:
    elem, dt = _resolve_element_type(element_type)
    if elem == _STRING:
        raise _string_error()
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints, got {shape!r}.") from None
    if any(d < 0 for d in dims):
        raise InvalidArgument(
            f"Tensor shape.Size() must be >= 0: shape {list(dims)} has a negative dim."
        )
    host = np.empty(dims, dtype=dt)
    if _host_device(device):
        return _COrtValue(host)
    ep = _require_provider(device, device_id, "ortvalue_from_shape_and_type")
    return _COrtValue(ep.to_device(host), device, ep)


# -- the user-level value --------------------------------------------------------------------
class OrtValue:
    """A value and the device it lives on, as ``onnxruntime.OrtValue``.

    Construct it with the factory methods (:meth:`ortvalue_from_numpy`,
    :meth:`ortvalue_from_shape_and_type`, :meth:`from_dlpack`...). The constructor takes
    onnxruntime's form, ``OrtValue(native_value, numpy_obj=None, session=None)`` (a native value
    from ``_get_c_value()`` or an :class:`OrtValueVector`), and ort-core's internal form,
    ``OrtValue(value, device_name, provider)`` for a raw value (a numpy array, a provider's device
    array, a list, a dict, None).
    """

    __slots__ = ("_ortvalue", "_numpy_obj", "_session")

    def __init__(self, ortvalue: Any, numpy_obj: Any = None, session: Any = None) -> None:
        if isinstance(ortvalue, _COrtValue):
            self._ortvalue = ortvalue
            self._numpy_obj = numpy_obj
            self._session = session
            return
        if isinstance(ortvalue, OrtValue):
            self._ortvalue = ortvalue._ortvalue
            self._numpy_obj = ortvalue._numpy_obj
            self._session = ortvalue._session
            return
        # ort-core's form: (value, device name, provider)
        device = "cpu" if numpy_obj is None else numpy_obj
        if not isinstance(device, str):
            raise TypeError(
                f"OrtValue(value, device, provider): device must be a device name, got "
                f"{type(device).__name__}; build OrtValues with OrtValue.ortvalue_from_numpy()."
            )
        self._ortvalue = _COrtValue(ortvalue, device, session)
        self._numpy_obj = None
        self._session = None

    @classmethod
    def _from_c(cls, value: _COrtValue) -> OrtValue:
        """Wrap a native value."""
        if not isinstance(value, _COrtValue):
            raise TypeError(f"expected a native OrtValue, got {type(value).__name__}.")
        return cls(value)

    @classmethod
    def _wrap(
        cls,
        value: Any,
        device: str = "cpu",
        provider: Any = None,
        onnx_type: str | None = None,
    ) -> OrtValue:
        """Wrap a raw value the runtime produced (ort-core internal): a numpy array, a
        provider's device array, a list, a dict or None, with its declared ONNX type."""
        return cls(_COrtValue(value, device, provider, onnx_type))

    def _get_c_value(self) -> _COrtValue:
        """The native value."""
        return self._ortvalue

    @property
    def _is_webgpu_buffer(self) -> bool:
        return False

    # -- ort-core ----------------------------------------------------------------------------
    def value(self) -> Any:
        """The underlying value where it lives: a numpy array, a provider's device array, a list
        (sequence), a dict (map), None (empty optional) or a native sparse tensor."""
        return self._ortvalue._value

    @property
    def provider(self) -> Any:
        """The provider instance whose memory holds the value (None on the host)."""
        return self._ortvalue._provider

    def _host_value(self) -> Any:
        """The value on the host whatever its kind: a tensor as a numpy array (copied from its
        device), sequences, maps and None as they are."""
        c = self._ortvalue
        return c.numpy() if c.is_tensor() else c._value

    # -- factories ---------------------------------------------------------------------------
    @classmethod
    def ortvalue_from_numpy(
        cls,
        numpy_obj: np.ndarray,
        /,
        device_type: str = "cpu",
        device_id: int = 0,
        vendor_id: int = -1,
    ) -> OrtValue:
        """A tensor over a numpy array.

        On the CPU the OrtValue uses the array's memory (a contiguous copy when the array is not
        contiguous); on another device (``"cuda"``, or an installed provider's device such as
        ``"opencl"``) it holds a copy in that device's memory.

        Args:
            numpy_obj: a numpy array of numbers or bool (strings go to ``InferenceSession.run``).
            device_type: ``"cpu"`` or a device name.
            device_id: the device index.
            vendor_id: the PCI vendor id for ``"gpu"``/``"npu"`` (NVIDIA selects ``"cuda"``).

        Raises:
            InvalidArgument: a string array, a non-array, or a device no installed provider serves.
        """
        device = _device_from_names(device_type, vendor_id)
        c = _from_numpy(numpy_obj, device, int(device_id))
        return cls(c, numpy_obj if _host_device(device) else None)

    @classmethod
    def ortvalue_from_numpy_with_onnx_type(
        cls, data: np.ndarray, /, onnx_element_type: int
    ) -> OrtValue:
        """A host tensor over the bytes of ``data`` read as ``onnx_element_type`` (no copy; the
        item sizes must match), for element types numpy lacks (``TensorProto.BFLOAT16``...)."""
        return cls(_COrtValue.ortvalue_from_numpy_with_onnx_type(data, onnx_element_type), data)

    @classmethod
    def ortvalue_from_shape_and_type(
        cls,
        shape: Sequence[int],
        element_type: Any,
        device_type: str = "cpu",
        device_id: int = 0,
        vendor_id: int = -1,
        memory_info: Any = None,
    ) -> OrtValue:
        """An uninitialized tensor.

        Args:
            shape: the dims.
            element_type: a numpy type (``np.float32``) or an ONNX element type
                (``onnx.TensorProto.BFLOAT16``).
            device_type: ``"cpu"`` or a device name.
            device_id: the device index.
            vendor_id: the PCI vendor id for ``"gpu"``/``"npu"``.
            memory_info: an ``OrtMemoryInfo``; when given, the other device arguments are
                ignored (with a warning when they were set).
        """
        if memory_info is not None:
            if device_type != "cpu" or device_id != 0 or vendor_id != -1:
                warnings.warn(
                    "device_type, device_id, and vendor_id are ignored when memory_info is "
                    "provided.",
                    stacklevel=2,
                )
            device = memory_info.device
            name = "cpu" if device.kind == "cpu" else _device_name_of(device)
            return cls(_allocate(shape, element_type, name, device.device_id()))
        device = _device_from_names(device_type, vendor_id)
        return cls(_allocate(shape, element_type, device, int(device_id)))

    @classmethod
    def ort_value_from_sparse_tensor(cls, sparse_tensor: Any) -> OrtValue:
        """A value holding a :class:`~ort_core.sparse.SparseTensor`."""
        getter = getattr(sparse_tensor, "_get_c_tensor", None)
        if getter is None:
            raise TypeError(
                "ort_value_from_sparse_tensor needs a SparseTensor, got "
                f"{type(sparse_tensor).__name__}."
            )
        return cls(_COrtValue.ort_value_from_sparse_tensor(getter()))

    @classmethod
    def from_dlpack(cls, data: Any, /) -> OrtValue:
        """A tensor sharing the memory of a DLPack producer: an object with ``__dlpack__``
        (numpy, torch, another OrtValue) or a raw DLPack capsule. bool stays bool; uint8 stays
        uint8.

        Raises:
            TypeError: ``data`` is neither a capsule nor a DLPack producer.
        """
        return cls(_COrtValue.from_dlpack(data))

    # -- what it holds -----------------------------------------------------------------------
    def as_sparse_tensor(self) -> Any:
        """The :class:`~ort_core.sparse.SparseTensor` this value holds."""
        from .sparse import SparseTensor

        return SparseTensor(self._ortvalue.as_sparse_tensor())

    def data_ptr(self) -> int:
        """The address of the tensor's first element."""
        return self._ortvalue.data_ptr()

    def device_name(self) -> str:
        """Where the data lives: ``cpu``, ``cuda``, or a provider's device name."""
        return self._ortvalue.device_name().lower()

    def shape(self) -> list[int]:
        """The tensor's dims (a sparse tensor's dense shape)."""
        return self._ortvalue.shape()

    def data_type(self) -> str:
        """The ONNX type text, e.g. ``tensor(int64)`` or ``seq(tensor(float))``."""
        return self._ortvalue.data_type()

    def element_type(self) -> int:
        """The ONNX element type (``onnx.TensorProto`` value) of the tensor's elements."""
        return self._ortvalue.element_type()

    def tensor_size_in_bytes(self) -> int:
        """The size of the tensor's data in bytes."""
        return self._ortvalue.tensor_size_in_bytes()

    def has_value(self) -> bool:
        """False for an empty optional."""
        return self._ortvalue.has_value()

    def is_tensor(self) -> bool:
        """True when the value is a tensor."""
        return self._ortvalue.is_tensor()

    def is_sparse_tensor(self) -> bool:
        """True when the value is a sparse tensor."""
        return self._ortvalue.is_sparse_tensor()

    def is_tensor_sequence(self) -> bool:
        """True when the value is a sequence of tensors."""
        return self._ortvalue.is_tensor_sequence()

    def numpy(self) -> np.ndarray:
        """The tensor as a numpy array: the same memory on the CPU, a host copy from a device."""
        return self._ortvalue.numpy()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(value)``: the tensor without a copy when the dtype matches."""
        arr = self.numpy()
        if copy is not None:
            return np.array(arr, dtype=dtype, copy=copy)
        if dtype is not None:
            return np.asarray(arr, dtype=dtype)
        return arr

    def __dlpack__(self, *, stream: Any = None, **kwargs: Any) -> Any:
        """A DLPack capsule over the tensor (no copy)."""
        return self._ortvalue.__dlpack__(stream, **kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        """``(DLPack device type, device id)``: ``(1, 0)`` on the CPU."""
        return self._ortvalue.__dlpack_device__()

    def update_inplace(self, data: Any) -> None:
        """Copy ``data`` (a numpy array or an OrtValue with as many elements) into this tensor's
        memory, which keeps its address (for inputs captured by a device graph, for instance)."""
        if isinstance(data, OrtValue):
            self._check_same_session(data)
            self._ortvalue.update_inplace(data._ortvalue)
            return
        if not isinstance(data, np.ndarray):
            raise TypeError("data must be a numpy.ndarray or an OrtValue.")
        self._ortvalue.update_inplace(np.ascontiguousarray(data))

    def _check_same_session(self, source: OrtValue) -> None:
        """Values made by two different sessions (``create_ortvalue_from_shape_and_type``) cannot
        be copied into each other, as in onnxruntime; WebGPU buffers of one WebGPU context can."""
        if self._session is not None and foreign_value(source, self._session, self):
            raise InvalidArgument(
                "update_inplace: the source OrtValue must originate from the same session as "
                "this one (both were created by create_ortvalue_from_shape_and_type of different "
                "sessions)."
            )

    def __repr__(self) -> str:
        return repr(self._ortvalue)


def foreign_value(value: Any, session: Any, other: Any = None) -> bool:
    """Whether ``value`` belongs to a session other than ``session`` (a session's ``_sess``
    handle): values made by ``create_ortvalue_from_shape_and_type`` are scoped to their session,
    values made anywhere else (``ortvalue_from_numpy``...) belong to none. Two WebGPU buffers of
    sessions that share a WebGPU context are not foreign to each other (``other``: the value on
    the other side, when it is not the session itself that must be a WebGPU one)."""
    owner = getattr(value, "_session", None)
    if owner is None or owner is session:
        return False
    if getattr(value, "_is_webgpu_buffer", False) and (
        other is None or getattr(other, "_is_webgpu_buffer", False)
    ):
        a = getattr(owner, "webgpu_context_id", None)
        b = getattr(session, "webgpu_context_id", None)
        if a is not None and b is not None and a() == b():
            return False
    return True


def _device_from_names(device_type: str, vendor_id: int = -1) -> str:
    if not isinstance(device_type, str):
        raise TypeError(
            f"device_type must be a device name (str), got {type(device_type).__name__}."
        )
    name = device_type.lower()
    if name in ("gpu", "npu") and int(vendor_id) >= 0:
        return _device_name_of(OrtDevice.make(name, 0, int(vendor_id)))
    return name


# -- vectors and copies ----------------------------------------------------------------------
class OrtValueVector:
    """A list of native values, as onnxruntime's ``OrtValueVector`` (what the lower-level
    ``run_with_ort_values`` and ``IOBinding.get_outputs_as_ortvaluevector()`` return)."""

    __slots__ = ("_items",)

    def __init__(self, values: Iterable[Any] = ()) -> None:
        self._items: list[_COrtValue] = []
        for v in values:
            self.push_back(v)

    def push_back(self, value: Any, is_bool_tensor: bool | None = None) -> None:
        """Append a native value, or the tensor of a DLPack capsule (taking it over)."""
        if isinstance(value, _COrtValue):
            self._items.append(value)
        elif isinstance(value, OrtValue):
            self._items.append(value._ortvalue)
        else:
            self._items.append(_from_capsule(value, is_bool_tensor))

    def push_back_batch(
        self,
        tensors: Sequence[Any],
        data_ptrs: Sequence[int],
        element_types: Sequence[Any],
        shapes: Sequence[Sequence[int]],
        devices: Sequence[OrtDevice],
    ) -> None:
        """Append tensors given by address (host memory; their owners in ``tensors`` are kept
        alive by the new values)."""
        n = len(tensors)
        if not (len(data_ptrs) == len(element_types) == len(shapes) == len(devices) == n):
            raise InvalidArgument(
                "push_back_batch: tensors, data_ptrs, element_types, shapes and devices must "
                "have the same length."
            )
        for owner, ptr, et, shape, device in zip(
            tensors, data_ptrs, element_types, shapes, devices
        ):
            if device.kind != "cpu":
                raise InvalidArgument(
                    f"push_back_batch: {device!r} memory cannot be wrapped by address; use "
                    "push_back(tensor.__dlpack__()) for device tensors."
                )
            self._items.append(_COrtValue(host_array_at(int(ptr), et, shape, owner)))

    def reserve(self, n: int) -> None:
        """Accepted for compatibility (a Python list grows as needed)."""
        if int(n) < 0:
            raise InvalidArgument(f"reserve: the capacity must be >= 0, got {n}.")

    def shrink_to_fit(self) -> None:
        """Accepted for compatibility."""

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> _COrtValue:
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"OrtValueVector indices must be ints, got {type(index).__name__}.")
        try:
            return self._items[int(index)]
        except IndexError:
            raise IndexError(
                f"OrtValueVector index {int(index)} is out of range (size {len(self._items)})."
            ) from None

    def __iter__(self) -> Iterator[_COrtValue]:
        return iter(list(self._items))

    def element_type_at(self, idx: int) -> int:
        """The ONNX element type of the value at ``idx``."""
        return self[idx].element_type()

    def dlpack_at(self, idx: int) -> Any:
        """A DLPack capsule over the tensor at ``idx``."""
        return self[idx].__dlpack__()

    def to_dlpacks(self, to_tensor: Callable[[Any], Any] | None) -> list[Any]:
        """One DLPack capsule per tensor, each passed through ``to_tensor`` when given (e.g.
        ``torch.utils.dlpack.from_dlpack``)."""
        capsules = [v.__dlpack__() for v in self._items]
        return capsules if to_tensor is None else [to_tensor(c) for c in capsules]

    def __repr__(self) -> str:
        return f"OrtValueVector({self._items!r})"


def host_array_at(ptr: int, element_type: Any, shape: Sequence[int], owner: Any = None) -> Any:
    """A numpy array over host memory at address ``ptr`` (no copy; packed 4- and 2-bit types are
    unpacked into a copy). ``owner`` is kept alive as long as the array.

    Raises:
        InvalidArgument: a string element type (host strings are Python objects, not bytes) or a
            null address.
    """
    elem, dt = _resolve_element_type(element_type)
    if elem == _STRING:
        raise InvalidArgument(
            "Only binding non-string Tensors is currently supported: string tensors cannot be "
            "given by address; pass them to InferenceSession.run(...) as numpy arrays."
        )
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise InvalidArgument(f"shape {list(dims)} has a negative dim.")
    count = int(np.prod(dims, dtype=np.int64))
    nbytes = _packed_nbytes(elem, count)
    if ptr == 0 and nbytes:
        raise InvalidArgument("the buffer address is null; pass arr.ctypes.data of a live array.")
    if nbytes == 0:
        return np.empty(dims, dt)
    buffer = (ctypes.c_uint8 * nbytes).from_address(ptr)
    buffer.owner = owner  # the array's base is the buffer: the owner lives as long as the array
    raw = np.frombuffer(buffer, dtype=np.uint8)
    if elem in _SUB_BYTE:
        return _unpack(raw, elem, count).reshape(dims)
    return raw.view(dt).reshape(dims)


def copy_tensors(src: Sequence[Any], dst: Sequence[Any], stream: Any = None) -> None:
    """Copy the data of each tensor of ``src`` into the tensor of ``dst`` at the same position
    (between host and device memory as needed; shapes and element types must match). Items are
    OrtValues or native values (``OrtValue._get_c_value()``).

    Raises:
        InvalidArgument: the lists are empty or of different lengths, or a pair does not match.
    """
    if len(src) == 0 or len(src) != len(dst):
        raise InvalidArgument(
            f"Invalid arguments provided to CopyTensors. Got {len(src)} source(s) and "
            f"{len(dst)} destination(s); pass two non-empty lists of the same length."
        )
    for i, (s, d) in enumerate(zip(src, dst)):
        s, d = _native(s, i), _native(d, i)
        if s.shape() != d.shape() or s.element_type() != d.element_type():
            raise InvalidArgument(
                f"copy_tensors: item {i} copies {s.data_type()}{s.shape()} into "
                f"{d.data_type()}{d.shape()}; shapes and element types must match."
            )
        d.update_inplace(s)


def _native(value: Any, index: int) -> _COrtValue:
    if isinstance(value, OrtValue):
        return value._ortvalue
    if isinstance(value, _COrtValue):
        return value
    raise TypeError(f"copy_tensors: item {index} is a {type(value).__name__}, not an OrtValue.")
