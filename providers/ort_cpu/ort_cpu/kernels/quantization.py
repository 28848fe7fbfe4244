"""Linear quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul.

Per-tensor (scalar scale), per-axis (1-D scale along ``axis``) and blocked (``block_size``)
granularities; integer targets round half to even and saturate, float8 targets follow ``saturate``.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
from onnx import helper

from ._registry import builder, kernel

INT8_TYPES = frozenset(map(np.dtype, (np.int8, np.uint8)))
_FLOAT8 = frozenset(
    map(
        np.dtype,
        (
            ml_dtypes.float8_e4m3fn,
            ml_dtypes.float8_e4m3fnuz,
            ml_dtypes.float8_e5m2,
            ml_dtypes.float8_e5m2fnuz,
        ),
    )
)


def _int_range(dtype: np.dtype) -> tuple[int, int] | None:
    """The saturation range of an integer quantized type, or None for float types."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
    elif dtype.name in ("int4", "uint4", "int2", "uint2"):
        info = ml_dtypes.iinfo(dtype)
    else:
        return None
    return int(info.min), int(info.max)


def _f32(a: np.ndarray) -> np.ndarray:
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)


def _expand(p: np.ndarray, shape: tuple[int, ...], axis: int, block_size: int) -> np.ndarray:
    """A scale or zero point made broadcastable against an input of ``shape``."""
    if p.ndim == 0 or p.size == 1 and not block_size:
        return p.reshape(())
    axis %= len(shape)
    if block_size:
        return np.repeat(p, block_size, axis=axis).take(range(shape[axis]), axis=axis)
    dims = [1] * len(shape)
    dims[axis] = p.size
    return p.reshape(dims)


def quantize(x, scale, zero_point, out: np.ndarray | np.dtype, saturate=1, precision=None):
    """``saturate(round(x / scale) + zero_point)`` in the quantized type ``out``."""
    out = np.dtype(out)
    if precision is not None:
        q = x.astype(precision) / scale.astype(precision)
    elif scale.dtype == np.float64 or x.dtype == np.float64:
        q = _f32(x) / _f32(scale)
    else:
        q = x.astype(np.float32) / scale.astype(np.float32)
    bounds = _int_range(out)
    if bounds is not None:
        q = np.rint(q)
        if zero_point is not None:
            q = q + zero_point.astype(np.float32)
        return np.asarray(np.clip(q, *bounds)).astype(out)
    if zero_point is not None:
        q = q + zero_point.astype(np.float32)
    if out in _FLOAT8 and saturate:
        fi = ml_dtypes.finfo(out)
        q = np.clip(q, float(fi.min), float(fi.max))
    return np.asarray(q).astype(out)


@builder("QuantizeLinear", since=10,
         attributes=("axis", "saturate", "block_size", "output_dtype", "precision"))  # fmt: skip
def quantize_linear(info):
    axis = info.attr("axis", 1)
    block_size = info.attr("block_size", 0)
    saturate = info.attr("saturate", 1)
    prec = info.attr("precision", 0)
    precision = np.dtype(helper.tensor_dtype_to_np_dtype(prec)) if prec else None
    if precision is not None and precision.kind == "V":
        precision = np.dtype(np.float32)
    odt = info.attr("output_dtype", 0)
    default_out = np.dtype(helper.tensor_dtype_to_np_dtype(odt) if odt else np.uint8)

    def run(x, y_scale, y_zero_point=None):
        out = y_zero_point.dtype if y_zero_point is not None else default_out
        scale = _expand(y_scale, x.shape, axis, block_size)
        zp = None if y_zero_point is None else _expand(y_zero_point, x.shape, axis, block_size)
        return quantize(x, scale, zp, out, saturate, precision)

    return run


def dequantize(x, scale, zero_point, out: np.dtype) -> np.ndarray:
    """``(x - zero_point) * scale`` in ``out``."""
    if x.dtype in _FLOAT8 or x.dtype.name.startswith("float"):
        zero_point = None  # float zero points are zero by definition
    d = x.astype(np.float32)
    if zero_point is not None:
        d -= zero_point.astype(np.float32)
    d *= scale.astype(np.float32, copy=False)
    return np.asarray(d).astype(out, copy=False)


@builder("DequantizeLinear", since=10, attributes=("axis", "block_size", "output_dtype"))
def dequantize_linear(info):
    axis = info.attr("axis", 1)
    block_size = info.attr("block_size", 0)
    odt = info.attr("output_dtype", 0)
    out = np.dtype(helper.tensor_dtype_to_np_dtype(odt)) if odt else None

    def run(x, x_scale, x_zero_point=None):
        scale = _expand(x_scale, x.shape, axis, block_size)
        zp = None if x_zero_point is None else _expand(x_zero_point, x.shape, axis, block_size)
        return dequantize(x, scale, zp, out or x_scale.dtype)

    return run


@kernel("DynamicQuantizeLinear", since=11, dtypes=frozenset({np.dtype(np.float32)}))
def dynamic_quantize_linear(x):
    hi = np.float32(max(0.0, float(x.max()))) if x.size else np.float32(0)
    lo = np.float32(min(0.0, float(x.min()))) if x.size else np.float32(0)
    scale = np.float32((hi - lo) / np.float32(255)) if hi != lo else np.float32(1 / 255)
    zp = np.float32(np.rint(np.clip(np.float32(0) - lo / scale, 0, 255)))
    y = np.rint(x / scale)
    y += zp
    y = np.clip(y, 0, 255)
    return np.asarray(y).astype(np.uint8), np.asarray(scale, np.float32), np.asarray(zp, np.uint8)


def _per_row(p: np.ndarray, m: int) -> np.ndarray:
    """A per-row (length-M vector) parameter of the left operand as a column."""
    return p[:, None] if p.ndim == 1 and p.size == m and m != 1 else p


def _mm_zero_point(zp, n: int, row: bool):
    if zp is None:
        return 0.0
    z = zp.astype(np.float64)
    return _per_row(z, n) if row else z


@kernel("QLinearMatMul", since=10, dtypes={0: INT8_TYPES, 3: INT8_TYPES})
@kernel("QLinearMatMul", since=21, dtypes={0: INT8_TYPES | _FLOAT8, 3: INT8_TYPES | _FLOAT8})
def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    m = a.shape[-2] if a.ndim >= 2 else 1
    n = b.shape[-1] if b.ndim >= 2 else 1
    # float64 holds the int8 products and their sums exactly
    af = a.astype(np.float64) - _mm_zero_point(a_zero_point, m, row=True)
    bf = b.astype(np.float64) - _mm_zero_point(b_zero_point, n, row=False)
    acc = np.matmul(af, bf)
    sa = _per_row(a_scale.astype(np.float32), m)
    sb = b_scale.astype(np.float32)
    mult = (sa * sb / y_scale.astype(np.float32)).astype(np.float64)
    y = acc * mult
    out = y_zero_point.dtype if y_zero_point is not None else a.dtype
    if out in _FLOAT8:  # float8 targets: no rounding to integers, saturate to the finite range
        if y_zero_point is not None:
            y += y_zero_point.astype(np.float64)
        fi = ml_dtypes.finfo(out)
        return np.clip(y, float(fi.min), float(fi.max)).astype(np.float32).astype(out)
    np.rint(y, out=y)
    if y_zero_point is not None:
        y += y_zero_point.astype(np.float64)
    bounds = _int_range(out)
    return np.clip(y, *bounds).astype(out)
