"""Tensor datatypes of the Open Inference Protocol and their numpy / ONNX / config.pbtxt names."""

from __future__ import annotations

import struct

import numpy as np

from .errors import InvalidRequest

__all__ = [
    "V2_TO_NUMPY",
    "ONNX_TO_V2",
    "CONFIG_TO_V2",
    "numpy_to_v2",
    "v2_to_numpy",
    "encode_bytes",
    "decode_bytes",
]


def _bfloat16() -> np.dtype:
    import ml_dtypes  # comes with onnx

    return np.dtype(ml_dtypes.bfloat16)


#: protocol datatype -> numpy dtype (BYTES: object arrays of bytes; BF16: ml_dtypes.bfloat16)
V2_TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BF16": _bfloat16(),
    "BYTES": np.dtype(object),
}

#: ONNX type string (as NodeArg.type shows it) -> protocol datatype
ONNX_TO_V2: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(bfloat16)": "BF16",
    "tensor(string)": "BYTES",
}

#: config.pbtxt DataType enum name -> protocol datatype
CONFIG_TO_V2: dict[str, str] = {
    "TYPE_BOOL": "BOOL",
    "TYPE_UINT8": "UINT8",
    "TYPE_UINT16": "UINT16",
    "TYPE_UINT32": "UINT32",
    "TYPE_UINT64": "UINT64",
    "TYPE_INT8": "INT8",
    "TYPE_INT16": "INT16",
    "TYPE_INT32": "INT32",
    "TYPE_INT64": "INT64",
    "TYPE_FP16": "FP16",
    "TYPE_FP32": "FP32",
    "TYPE_FP64": "FP64",
    "TYPE_BF16": "BF16",
    "TYPE_STRING": "BYTES",
}


def numpy_to_v2(dtype: np.dtype) -> str:
    """The protocol datatype of a numpy dtype (strings and objects are BYTES)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "OSU":
        return "BYTES"
    for name, dt in V2_TO_NUMPY.items():
        if dt == dtype and name != "BYTES":
            return name
    raise InvalidRequest(f"numpy dtype {dtype} has no Open Inference Protocol datatype")


def v2_to_numpy(datatype: str) -> np.dtype:
    """The numpy dtype of a protocol datatype, or InvalidRequest naming the valid ones."""
    try:
        return V2_TO_NUMPY[datatype]
    except (KeyError, TypeError):
        raise InvalidRequest(
            f"unknown datatype {datatype!r}; the protocol's datatypes are {', '.join(V2_TO_NUMPY)}"
        ) from None


def encode_bytes(array: np.ndarray) -> bytes:
    """BYTES tensor -> the protocol's raw layout: per element a 4-byte little-endian length and
    the bytes (str elements are UTF-8 encoded)."""
    parts = []
    for item in array.ravel():
        data = item.encode() if isinstance(item, str) else bytes(item)
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return b"".join(parts)


def decode_bytes(buffer: bytes | memoryview, count: int, name: str) -> np.ndarray:
    """The protocol's raw BYTES layout -> a 1-D object array of ``count`` bytes elements."""
    view = memoryview(buffer)
    out = np.empty(count, dtype=object)
    pos = 0
    for i in range(count):
        if pos + 4 > len(view):
            raise InvalidRequest(
                f"input {name!r}: BYTES data ends after {i} of {count} elements; each element "
                "is a 4-byte little-endian length followed by that many bytes"
            )
        (length,) = struct.unpack_from("<I", view, pos)
        pos += 4
        if pos + length > len(view):
            raise InvalidRequest(
                f"input {name!r}: BYTES element {i} declares {length} bytes but only "
                f"{len(view) - pos} remain"
            )
        out[i] = bytes(view[pos : pos + length])
        pos += length
    if pos != len(view):
        raise InvalidRequest(
            f"input {name!r}: {len(view) - pos} bytes left over after {count} BYTES elements; "
            "the shape and the data disagree"
        )
    return out
