"""ONNX element types and the dtypes ort-core stores them in (numpy, ml_dtypes, object for strings).

A leaf module: values, sparse tensors, bindings and feeds all name element types through it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _onnx
from ._onnx import helper
from .errors import InvalidArgument

onnx = _onnx.onnx

_T = onnx.TensorProto
_STRING = _T.STRING
_OBJECT = np.dtype(object)
#: element types ort-core has no representation for (as onnxruntime: not supported)
_UNSUPPORTED = {_T.UNDEFINED, getattr(_T, "FLOAT6E2M3", -1), getattr(_T, "FLOAT6E3M2", -1)}
#: bits per element of the packed element types (several elements per byte)
_SUB_BYTE = {
    e: b
    for name, b in (("UINT4", 4), ("INT4", 4), ("FLOAT4E2M1", 4), ("UINT2", 2), ("INT2", 2))
    if (e := getattr(_T, name, None)) is not None
}
#: sizeof(std::string): what onnxruntime reports as the size of one string element
_STRING_ITEM_BYTES = 32


def _element_tables() -> tuple[dict[int, np.dtype], dict[np.dtype, int], dict[int, str]]:
    to_dtype: dict[int, np.dtype] = {}
    to_elem: dict[np.dtype, int] = {}
    names: dict[int, str] = {}
    for elem in _T.DataType.values():
        if elem in _UNSUPPORTED:
            continue
        try:
            dt = _OBJECT if elem == _STRING else np.dtype(helper.tensor_dtype_to_np_dtype(elem))
        except (KeyError, TypeError, ValueError):
            continue
        to_dtype[elem] = dt
        to_elem.setdefault(dt, elem)
        names[elem] = _T.DataType.Name(elem).lower()
    return to_dtype, to_elem, names


_DTYPE_OF, _ELEM_OF, _ELEM_NAME = _element_tables()


def _is_string(dtype: np.dtype) -> bool:
    return dtype.kind in "OUS"


def numpy_dtype(dtype: Any) -> np.dtype:
    """The numpy dtype of an element type: numpy's and cupy's are numpy dtypes; other array
    libraries' (array_api_strict, torch) are named objects such as ``torch.float32``."""
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(str(dtype).rsplit(".", 1)[-1])


def element_type_of(dtype: Any) -> int | None:
    """The ONNX element type of a numpy (or ml_dtypes) dtype, or None when ONNX has none; string
    and object dtypes are ``TensorProto.STRING``. Device arrays' dtypes are read by name."""
    dt = numpy_dtype(dtype)
    if _is_string(dt):
        return _STRING
    return _ELEM_OF.get(dt)


def element_dtype(elem: int) -> np.dtype:
    """The dtype ort-core stores an ONNX element type in (ml_dtypes for bfloat16, float8, int4...).

    Raises:
        InvalidArgument: ``elem`` is not an element type ort-core supports.
    """
    dt = _DTYPE_OF.get(int(elem))
    if dt is None:
        raise InvalidArgument(
            f"tensor type {int(elem)} is not supported; ONNX element types are the values of "
            "onnx.TensorProto.DataType (1 FLOAT, 7 INT64, 16 BFLOAT16...)."
        )
    return dt


def tensor_type_text(elem: int) -> str:
    """onnxruntime's spelling of a tensor type: ``tensor(float)``, ``tensor(int64)``..."""
    return f"tensor({_ELEM_NAME.get(int(elem), 'undefined')})"
