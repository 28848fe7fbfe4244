"""Quantization types and arithmetic shared by the quantizers: ranges, scale, zero point.

The names match ``onnxruntime.quantization.quant_utils`` where users import them from there
(``QuantType``, ``QuantFormat``, ``compute_scale_zp``, ``get_qmin_qmax_for_qType``).
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
from onnx import TensorProto

__all__ = [
    "QuantFormat",
    "QuantType",
    "QuantizationMode",
    "compute_scale_zp",
    "get_qmin_qmax_for_qType",
    "quantize_array",
]


class QuantizationMode(enum.Enum):
    """How operators are rewritten: integer ops with dynamic activations, or QLinear ops."""

    IntegerOps = 0
    QLinearOps = 1

    def __str__(self) -> str:
        return self.name


class QuantFormat(enum.Enum):
    """The form of a statically quantized model: QuantizeLinear/DequantizeLinear pairs around float
    operators (QDQ), or QLinear* operators (QOperator)."""

    QOperator = 0
    QDQ = 1

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def from_string(value: str) -> QuantFormat:
        try:
            return QuantFormat[value]
        except KeyError:
            raise ValueError(f"unknown QuantFormat {value!r}; use QDQ or QOperator") from None


class QuantType(enum.Enum):
    """The integer type of quantized weights or activations."""

    QInt8 = 0
    QUInt8 = 1
    QFLOAT8E4M3FN = 2
    QInt16 = 3
    QUInt16 = 4
    QInt4 = 5
    QUInt4 = 6

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def from_string(value: str) -> QuantType:
        try:
            return QuantType[value]
        except KeyError:
            names = ", ".join(t.name for t in QuantType)
            raise ValueError(f"unknown QuantType {value!r}; use one of {names}") from None

    @property
    def tensor_type(self) -> int:
        return _TENSOR_TYPE[self]


_TENSOR_TYPE = {
    QuantType.QInt8: TensorProto.INT8,
    QuantType.QUInt8: TensorProto.UINT8,
    QuantType.QInt16: TensorProto.INT16,
    QuantType.QUInt16: TensorProto.UINT16,
    QuantType.QInt4: TensorProto.INT4,
    QuantType.QUInt4: TensorProto.UINT4,
    QuantType.QFLOAT8E4M3FN: TensorProto.FLOAT8E4M3FN,
}

_RANGE = {
    TensorProto.UINT8: (0, 255),
    TensorProto.INT8: (-128, 127),
    TensorProto.UINT16: (0, 65535),
    TensorProto.INT16: (-32768, 32767),
    TensorProto.UINT4: (0, 15),
    TensorProto.INT4: (-8, 7),
}
_SYMMETRIC_RANGE = {TensorProto.INT8: (-127, 127), TensorProto.INT16: (-32767, 32767)}
_REDUCED_RANGE = {
    TensorProto.UINT8: (0, 127),
    TensorProto.INT8: (-64, 64),
    TensorProto.UINT16: (0, 32767),
    TensorProto.INT16: (-16384, 16384),
    TensorProto.UINT4: (0, 7),
    TensorProto.INT4: (-4, 3),
}


def _as_tensor_type(qtype: Any) -> int:
    if isinstance(qtype, QuantType):
        return qtype.tensor_type
    if isinstance(qtype, int) and qtype in _RANGE:
        return qtype
    raise TypeError(f"expected a QuantType or an integer TensorProto type, got {qtype!r}")


def get_qmin_qmax_for_qType(  # noqa: N802 (onnxruntime's name)
    qType: Any, reduce_range: bool = False, symmetric: bool = False
) -> tuple[int, int]:
    """The smallest and largest integer a quantized type may take.

    ``reduce_range`` keeps one bit in reserve (7-bit for 8-bit types); ``symmetric`` makes signed
    ranges symmetric around zero (-127..127 for int8).
    """
    t = _as_tensor_type(qType)
    if t not in _RANGE:
        raise ValueError(f"quantized type {qType} has no integer range; use an integer QuantType")
    if reduce_range:
        return _REDUCED_RANGE[t]
    if symmetric and t in _SYMMETRIC_RANGE:
        return _SYMMETRIC_RANGE[t]
    return _RANGE[t]


def compute_scale_zp(
    rmin: Any, rmax: Any, qmin: int, qmax: int, symmetric: bool = False, min_real_range=None
) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point so that every real value in [rmin, rmax] (widened to contain 0) maps
    into [qmin, qmax] through ``q = round(r / scale) + zero_point``.

    Works element-wise on arrays (per-channel ranges). Returns ``(zero_point, scale)`` as
    onnxruntime does: zero points are integers (int64 array), scales float32.
    """
    if qmin > 0 or qmax < 0:
        raise ValueError(f"qmin={qmin} and qmax={qmax} must satisfy qmin <= 0 <= qmax")
    rmin = np.minimum(np.asarray(rmin, dtype=np.float32), 0.0)
    rmax = np.maximum(np.asarray(rmax, dtype=np.float32), 0.0)
    if min_real_range is not None:
        rmax = np.maximum(rmax, rmin + np.float32(min_real_range))
    if symmetric:
        absmax = np.maximum(np.abs(rmin), np.abs(rmax))
        rmin, rmax = -absmax, absmax
    scale = (rmax.astype(np.float64) - rmin.astype(np.float64)) / float(qmax - qmin)
    tiny = scale < np.finfo(np.float32).tiny
    safe = np.where(tiny, 1.0, scale)
    if symmetric:
        zp = np.full(scale.shape, np.round((qmin + qmax) / 2.0))
    else:
        zp = np.round(qmin - rmin.astype(np.float64) / safe)
    zp = np.where(tiny, 0, np.clip(zp, qmin, qmax)).astype(np.int64)
    return zp, safe.astype(np.float32)


def restricted_asymmetric_scale_zp(
    rmin: Any, rmax: Any, qmin: int, qmax: int, min_real_range=None
) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point of an 8-bit unsigned activation whose zero point may only be ``qmin``
    (a range that does not go below 0) or the middle of [qmin, qmax] (one that does), as
    onnxruntime's ``ActivationRestrictedAsymmetric`` option computes them.

    The range is widened to contain 0 and to ``min_real_range`` as in :func:`compute_scale_zp`;
    the scale is the smallest that keeps both ends of the range representable around the chosen
    zero point (``1 / (qmax - qmin)`` for the empty range [0, 0]). Returns ``(zero_point,
    scale)``: int64, float32.
    """
    lo, hi = min(float(np.squeeze(rmin)), 0.0), max(float(np.squeeze(rmax)), 0.0)
    if min_real_range is not None and min_real_range > 0:
        hi = max(hi, lo + float(min_real_range))
    middle = (qmin + qmax + 1) // 2
    zp = qmin if lo >= 0.0 else middle
    if hi == lo:  # [0, 0]: nothing to represent but zero
        scale = 1.0 / (qmax - qmin)
    elif zp == qmin:
        scale = hi / (qmax - qmin)
    else:
        scale = max(-lo / (middle - qmin), hi / (qmax - middle))
    scale = np.float32(scale)
    if min_real_range is not None and scale < min_real_range / (qmax - qmin):
        scale = np.float32(min_real_range / (qmax - qmin))
    return np.array(zp, np.int64), np.array(scale, np.float32)


def quantize_array(
    data: np.ndarray, scale: Any, zero_point: Any, qmin: int, qmax: int, axis: int | None = None
) -> np.ndarray:
    """``saturate(round_half_even(data / scale) + zero_point)`` as int64; per-channel along ``axis``."""
    data = np.asarray(data, dtype=np.float32)
    scale = np.asarray(scale, dtype=np.float32)
    zero_point = np.asarray(zero_point, dtype=np.int64)
    if axis is not None and scale.ndim == 1:
        shape = [1] * data.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zero_point = zero_point.reshape(shape)
    q = np.rint(data / scale).astype(np.int64) + zero_point
    return np.clip(q, qmin, qmax)


def numpy_dtype(tensor_type: int) -> Any:
    """The numpy dtype that holds a TensorProto integer type (int4 through ml_dtypes)."""
    if tensor_type in (TensorProto.INT4, TensorProto.UINT4):
        import ml_dtypes

        return ml_dtypes.int4 if tensor_type == TensorProto.INT4 else ml_dtypes.uint4
    return {
        TensorProto.INT8: np.int8,
        TensorProto.UINT8: np.uint8,
        TensorProto.INT16: np.int16,
        TensorProto.UINT16: np.uint16,
        TensorProto.INT32: np.int32,
    }[tensor_type]


def make_int_tensor(name: str, values: np.ndarray, tensor_type: int) -> TensorProto:
    """An initializer of an integer type (4-bit types packed as onnx stores them)."""
    from onnx import helper

    values = np.asarray(values)
    if tensor_type in (TensorProto.INT4, TensorProto.UINT4):
        return helper.make_tensor(
            name, tensor_type, list(values.shape), values.astype(np.int64).ravel()
        )
    arr = values.astype(numpy_dtype(tensor_type))
    from onnx import numpy_helper

    return numpy_helper.from_array(arr, name)
