"""DLPack capsules read with ctypes: the structures of the DLPack ABI (legacy ``dltensor`` and
``dltensor_versioned``), the numpy dtypes of their element types, and a zero-copy numpy view of a
host tensor that calls the producer's deleter when the last array over it goes away.

Used by :mod:`ort_core.ortvalue` (``OrtValue.from_dlpack``, ``OrtValueVector.push_back``); numpy's
own ``np.from_dlpack`` needs an object with ``__dlpack__``, not a raw capsule, so this reads one.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from . import _onnx
from ._onnx import helper
from .errors import InvalidArgument

_T = _onnx.onnx.TensorProto

__all__ = ["is_dlpack_uint8_tensor"]


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [
        ("dl_tensor", _DLTensor),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", ctypes.c_void_p),
    ]


class _DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [
        ("major", ctypes.c_uint32),
        ("minor", ctypes.c_uint32),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", ctypes.c_void_p),
        ("flags", ctypes.c_uint64),
        ("dl_tensor", _DLTensor),
    ]


_capsule_is_valid = ctypes.pythonapi.PyCapsule_IsValid
_capsule_is_valid.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_is_valid.restype = ctypes.c_int
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_pointer.restype = ctypes.c_void_p

_capsule_set_name = ctypes.pythonapi.PyCapsule_SetName
_capsule_set_name.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_set_name.restype = ctypes.c_int
_Deleter = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
#: names of consumed capsules; the capsule keeps a pointer to its name, so these must live as long
#: as the module
_USED_NAMES = {b"dltensor": b"used_dltensor", b"dltensor_versioned": b"used_dltensor_versioned"}

_DL_CPU, _DL_CUDA_HOST = 1, 3
_DL_UINT = 1
_DL_READ_ONLY = 1  # DLManagedTensorVersioned flag bit
#: DLPack device types of ort-core's device names
_DL_DEVICE_NAMES = {2: "cuda", 4: "opencl", 8: "metal", 10: "rocm", 14: "oneapi"}
#: (DLPack type code, bits) -> numpy dtype
_DL_DTYPES = {
    **{(0, b): np.dtype(f"int{b}") for b in (8, 16, 32, 64)},
    **{(1, b): np.dtype(f"uint{b}") for b in (8, 16, 32, 64)},
    **{(2, b): np.dtype(f"float{b}") for b in (16, 32, 64)},
    (5, 64): np.dtype(np.complex64),
    (5, 128): np.dtype(np.complex128),
    (6, 8): np.dtype(np.bool_),
    **{
        (code, bits): np.dtype(helper.tensor_dtype_to_np_dtype(elem))
        for code, bits, name in (
            (4, 16, "BFLOAT16"),
            (10, 8, "FLOAT8E4M3FN"),
            (11, 8, "FLOAT8E4M3FNUZ"),
            (12, 8, "FLOAT8E5M2"),
            (13, 8, "FLOAT8E5M2FNUZ"),
            (14, 8, "FLOAT8E8M0"),
        )
        if (elem := getattr(_T, name, None)) is not None
    },
}


def _capsule_tensor(capsule: Any) -> _DLTensor:
    """The DLTensor of an unconsumed DLPack capsule (legacy or versioned)."""
    return _open_capsule(capsule)[0]


def _open_capsule(capsule: Any) -> tuple[_DLTensor, Any, bytes]:
    """(DLTensor, managed struct, capsule name) of an unconsumed DLPack capsule."""
    if _is_capsule(capsule, b"dltensor"):
        managed = _DLManagedTensor.from_address(_capsule_pointer(capsule, b"dltensor"))
        return managed.dl_tensor, managed, b"dltensor"
    if _is_capsule(capsule, b"dltensor_versioned"):
        ptr = _capsule_pointer(capsule, b"dltensor_versioned")
        managed = _DLManagedTensorVersioned.from_address(ptr)
        return managed.dl_tensor, managed, b"dltensor_versioned"
    raise TypeError(
        "from_dlpack expected a valid DLPack capsule named 'dltensor' (or 'dltensor_versioned') "
        f"or an object with __dlpack__, got {type(capsule).__name__}; a capsule can be consumed "
        "only once."
    )


def _is_capsule(obj: Any, name: bytes) -> bool:
    return type(obj).__name__ == "PyCapsule" and bool(_capsule_is_valid(obj, name))


def is_dlpack_uint8_tensor(dlpack: Any) -> bool:
    """Whether a DLPack capsule holds uint8 elements (legacy producers export bool that way)."""
    dt = _capsule_tensor(dlpack).dtype
    return dt.code == _DL_UINT and dt.bits == 8 and dt.lanes == 1


class _CapsuleHolder:
    """Hands one capsule to a DLPack consumer (a provider) that wants ``__dlpack__``."""

    __slots__ = ("_capsule", "_device")

    def __init__(self, capsule: Any, device: tuple[int, int]) -> None:
        self._capsule = capsule
        self._device = device

    def __dlpack__(self, **_: Any) -> Any:
        return self._capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._device


class _DLPackOwner:
    """Owns an imported DLPack tensor: calls the producer's deleter when the last array over
    its memory goes away."""

    __slots__ = ("_deleter", "_managed")

    def __init__(self, deleter: int | None, managed: int) -> None:
        self._deleter = deleter
        self._managed = managed

    def __del__(self) -> None:
        if self._deleter:
            _Deleter(self._deleter)(self._managed)
            self._deleter = None


def _import_host_tensor(capsule: Any) -> np.ndarray:
    """A numpy array over the host memory of a DLPack capsule, which it consumes (writable unless
    a versioned capsule says read-only)."""
    tensor, managed, name = _open_capsule(capsule)
    dt = tensor.dtype
    dtype = _DL_DTYPES.get((int(dt.code), int(dt.bits))) if dt.lanes == 1 else None
    if dtype is None:
        raise InvalidArgument(
            f"Unsupported DLPack data type: code {dt.code}, bits {dt.bits}, lanes {dt.lanes}; "
            "from_dlpack takes numbers, bool, bfloat16 and float8 tensors."
        )
    shape = [int(tensor.shape[i]) for i in range(tensor.ndim)]
    item = dtype.itemsize
    if tensor.strides and tensor.ndim:
        strides = [int(tensor.strides[i]) * item for i in range(tensor.ndim)]
    else:
        strides = None
    _capsule_set_name(capsule, _USED_NAMES[name])
    owner = _DLPackOwner(managed.deleter, ctypes.addressof(managed))
    if any(d == 0 for d in shape):
        return np.empty(shape, dtype)
    if strides is None:
        strides = []
        step = item
        for d in reversed(shape):
            strides.insert(0, step)
            step *= d
    lo = sum(min(0, (d - 1) * s) for d, s in zip(shape, strides))
    hi = sum(max(0, (d - 1) * s) for d, s in zip(shape, strides)) + item
    start = int(tensor.data or 0) + int(tensor.byte_offset) + lo
    buffer = (ctypes.c_uint8 * (hi - lo)).from_address(start)
    buffer.owner = owner  # the producer's memory lives as long as any array over it
    arr = np.ndarray(shape, dtype, buffer=buffer, offset=-lo, strides=strides)
    if name == b"dltensor_versioned" and managed.flags & _DL_READ_ONLY:
        arr.flags.writeable = False
    return arr
