"""Linear quantization: QuantizeLinear and DequantizeLinear.

Scales (and zero points) are per tensor (one value), per axis (a 1-D tensor along ``axis``) or
blocked (``block_size``: the input's shape, with ceil(n / block_size) values along ``axis``, each
covering ``block_size`` consecutive elements).

QuantizeLinear computes ``saturate(round(x / scale) + zero_point)`` exactly as onnxruntime does:
the division in float32 up to opset 21 (float16 and bfloat16 widened), from opset 23 in the
``precision`` attribute's type or else the scale's type (float16 scales divide in float16); the
quotient rounds half to even, then the zero point is added and the sum clamped to the target's
range. DequantizeLinear computes ``(x - zero_point) * scale`` with the subtraction in int32 and
the product in float32, rounded once to the output type.

The quantized types are int8, uint8, int16 and uint16 (and int32 for DequantizeLinear's input).
float8 (its own rounding and saturation), int4/uint4/int2/uint2 and float4 (packed sub-byte
elements) and float8e8m0 scales are declined: those nodes fall back to another provider.
"""

from __future__ import annotations

import math
from typing import Any

import ml_dtypes
import numpy as np

from ort_core._onnx import helper
from ort_core.errors import InvalidArgument
from ort_core.ops import normalize_axis

from .._table import builder
from .._xp import cast, clip, device, dtype, namespace, np_dtype

_QUANTIZED = frozenset(map(np.dtype, (np.int8, np.uint8, np.int16, np.uint16)))
_DEQUANTIZED = _QUANTIZED | {np.dtype(np.int32)}
_SCALES = frozenset(map(np.dtype, (np.float32, np.float16, ml_dtypes.bfloat16)))
_DIVIDENDS = _SCALES | {np.dtype(np.int32)}  # QuantizeLinear's x (and its scale to opset 21)


def _np_dtype(onnx_type: int) -> np.dtype:
    return np.dtype(helper.tensor_dtype_to_np_dtype(onnx_type))


def _why_not(what: str, dt: np.dtype | None, allowed: frozenset) -> str | None:
    if dt is None or dt in allowed:
        return None
    kind = (
        "float8 needs its own rounding and saturation"
        if dt.name.startswith("float8")
        else "sub-byte types need packing"
        if dt.name.startswith(("int4", "uint4", "int2", "uint2", "float4"))
        else "not a type these kernels quantize"
    )
    names = ", ".join(sorted(d.name for d in allowed))
    return f"{what} has element type {dt.name} ({kind}); the shared kernels handle {names}"


def _quantize_out(info) -> np.dtype | None:
    """QuantizeLinear's output type: the zero point's, else ``output_dtype``, else uint8."""
    if info.has_input(2):
        return info.input_dtype(2)
    odt = int(info.attr("output_dtype", 0))
    return _np_dtype(odt) if odt else np.dtype(np.uint8)


def _quantize_limit(info) -> str | None:
    return (
        _why_not("x", info.input_dtype(0), _DIVIDENDS)
        or _why_not("y_scale", info.input_dtype(1), _DIVIDENDS)
        or _why_not("the output", _quantize_out(info), _QUANTIZED)
    )


def _block_check(info) -> str | None:
    block_size = info.attr("block_size", 0)
    return None if block_size >= 0 else f"block_size must be non-negative, got {block_size}"


def _quantize_check(info) -> str | None:
    reason = _block_check(info)
    if reason is not None:
        return reason
    odt = int(info.attr("output_dtype", 0))
    zp = info.input_dtype(2) if info.has_input(2) else None
    if odt and zp is not None and _np_dtype(odt) != zp:
        return f"output_dtype {_np_dtype(odt).name} differs from y_zero_point's type {zp.name}"
    return None


def _dequantize_limit(info) -> str | None:
    return _why_not("x", info.input_dtype(0), _DEQUANTIZED) or _why_not(
        "x_scale", info.input_dtype(1), _SCALES
    )


def _expand(xp: Any, p: Any, shape: tuple[int, ...], axis: int, block_size: int, op: str) -> Any:
    """A scale or zero point made to broadcast against an input of ``shape``."""
    if p.ndim == 0 or math.prod(p.shape) == 1 and not block_size:  # per tensor
        return xp.reshape(p, ())
    axis = normalize_axis(axis, len(shape), op)
    n = shape[axis]
    if block_size:
        want = tuple(-(-d // block_size) if a == axis else d for a, d in enumerate(shape))
        if tuple(p.shape) != want:
            raise InvalidArgument(
                f"{op}: blocked scale/zero point shape {tuple(p.shape)} does not match {want} "
                f"(input shape {shape}, axis {axis}, block_size {block_size})."
            )
        idx = xp.arange(n, dtype=xp.int64, device=device(p)) // block_size
        return xp.take(p, idx, axis=axis)
    if p.ndim != 1 or p.shape[0] != n:
        raise InvalidArgument(
            f"{op}: per-axis scale/zero point shape {tuple(p.shape)} does not match axis {axis} "
            f"of the input (size {n})."
        )
    return xp.reshape(p, (n,) + (1,) * (len(shape) - axis - 1))


@builder("QuantizeLinear", (10, 13, 19, 21, 23, 24, 25), check=_quantize_check,
         limit=_quantize_limit,
         attributes=("axis", "block_size", "output_dtype", "precision", "saturate"))  # fmt: skip
def quantize_linear(info):
    axis, block_size = int(info.attr("axis", 1)), int(info.attr("block_size", 0))
    odt = int(info.attr("output_dtype", 0))
    default_out = _np_dtype(odt) if odt else np.dtype(np.uint8)
    precision = int(info.attr("precision", 0))
    prec_np = _np_dtype(precision) if precision else None
    # to opset 21 the division runs in float32; from 23 in `precision`, else the scale's type
    in_scale_type = info.opset >= 23

    def run(x, y_scale, y_zero_point=None):
        xp = namespace(x)
        f32 = xp.float32
        out = default_out if y_zero_point is None else np_dtype(y_zero_point.dtype)
        scale = _expand(xp, y_scale, x.shape, axis, block_size, "QuantizeLinear")
        work = f32
        if in_scale_type:
            work = dtype(xp, prec_np) if prec_np is not None else y_scale.dtype
            work = f32 if work == xp.int32 else work  # an int32 scale divides in float32
        q = xp.round(cast(xp, xp.astype(x, work) / xp.astype(scale, work), f32))  # half to even
        if y_zero_point is not None:
            zp = _expand(xp, y_zero_point, x.shape, axis, block_size, "QuantizeLinear")
            q = q + xp.astype(zp, f32)
        bounds = np.iinfo(out)  # saturate
        return xp.astype(clip(xp, q, float(bounds.min), float(bounds.max)), dtype(xp, out))

    return run


@builder("DequantizeLinear", (10, 13, 19, 21, 23, 24, 25), check=_block_check,
         limit=_dequantize_limit, attributes=("axis", "block_size", "output_dtype"))  # fmt: skip
def dequantize_linear(info):
    axis, block_size = int(info.attr("axis", 1)), int(info.attr("block_size", 0))
    odt = int(info.attr("output_dtype", 0))
    out_np = _np_dtype(odt) if odt else None

    def run(x, x_scale, x_zero_point=None):
        xp = namespace(x)
        d = xp.astype(x, xp.int32)
        if x_zero_point is not None:
            zp = _expand(xp, x_zero_point, x.shape, axis, block_size, "DequantizeLinear")
            d = d - xp.astype(zp, xp.int32)
        scale = _expand(xp, x_scale, x.shape, axis, block_size, "DequantizeLinear")
        y = xp.astype(d, xp.float32) * xp.astype(scale, xp.float32)
        return cast(xp, y, x_scale.dtype if out_np is None else dtype(xp, out_np))

    return run
