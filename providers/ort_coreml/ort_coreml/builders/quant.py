"""QuantizeLinear and DequantizeLinear (opsets 10+), int8 and uint8, per tensor or per axis.

A Core ML program cannot take or return 8-bit tensors, so the 8-bit values stay inside a
partition: a QuantizeLinear is converted only when every consumer of its output is a
DequantizeLinear in the same partition, and a DequantizeLinear only when its input is a constant
(dequantized on the host) or such a QuantizeLinear's output. The provider enforces that when it
forms partitions (``provider.py``), and refuses the lone nodes at a partition's edge with the
reason. Inside the program the quantized value is held as a float of the input's type holding
the integer (exact: |q| <= 255), computed by float arithmetic that is bit-exact with ONNX's in
float32: ``q = clip(x / scale, lo - zp, hi - zp)`` rounded half to even (from ``floor``: no
reliance on how a device rounds ties) plus ``zp``; DequantizeLinear is ``(q - zp) * scale``.
Refused with the reason: block quantization (``block_size``), other 8-bit or wider types (int4,
int16, float8), scales and zero points that are not constant.
"""

from __future__ import annotations

import numpy as np

from . import FLOATS, Ctx, attr_axis, builder

I8, U8 = np.dtype(np.int8), np.dtype(np.uint8)
#: the 8-bit element types a partition can carry between a QuantizeLinear and its consumers
QUANTIZED = frozenset({I8, U8})
#: ONNX element type of output_dtype / zero_point -> numpy
_ELEM = {2: U8, 3: I8}


def _qtype(info) -> np.dtype | None:
    """The quantized element type of a QuantizeLinear (zero point's, else output_dtype's)."""
    if info.has_input(2):
        return info.input_dtype(2)
    return _ELEM.get(int(info.attr("output_dtype", 2) or 2))


def _common(info) -> str | None:
    if int(info.attr("block_size", 0) or 0):
        return "block quantization (block_size) is not converted"
    for i in (1, 2):
        if info.has_input(i) and info.constant(i) is None:
            return f"input {i} (scale/zero point) must be constant for Core ML"
    scale = info.constant(1)
    if scale is not None and np.asarray(scale).dtype not in FLOATS:
        return f"the scale is {np.asarray(scale).dtype}; Core ML computes in float32/16"
    if scale is not None and np.asarray(scale).ndim > 1:
        return "block quantization (a scale of rank > 1) is not converted"
    return None


def _q_check(info) -> str | None:
    qt = _qtype(info)
    if qt not in QUANTIZED:
        return f"QuantizeLinear to {qt}: converted to int8 and uint8 only"
    return _common(info)


def _dq_check(info) -> str | None:
    dt = info.input_dtype(0)
    if dt not in QUANTIZED and not (dt == np.int32 and info.constant(0) is not None):
        return f"DequantizeLinear of {dt}: converted from int8 and uint8 (int32 when constant)"
    return _common(info)


def _per_axis(ctx: Ctx, node, i: int, rank: int, dt) -> np.ndarray:
    """Constant input ``i`` (scale or zero point) shaped to broadcast against the data."""
    v = np.asarray(ctx.const(i)) if ctx.has(i) else np.zeros((), dt)
    if v.ndim == 1 and rank > 0:
        axis = attr_axis(int(node.attr("axis", 1)), rank)
        v = v.reshape([-1 if a == axis else 1 for a in range(rank)])
    return v


@builder("QuantizeLinear", since=10, dtypes=FLOATS, check=_q_check, carries=QUANTIZED)
def quantize(ctx: Ctx, node) -> None:
    mb = ctx.mb
    rank, dt = ctx.rank(0), ctx.np_dtype(0)
    qt = (
        np.dtype(ctx.const(2).dtype)
        if ctx.has(2)
        else _ELEM[int(node.attr("output_dtype", 2) or 2)]
    )
    info = np.iinfo(qt)
    scale = _per_axis(ctx, node, 1, rank, np.float32).astype(dt)
    zp = _per_axis(ctx, node, 2, rank, qt).astype(np.float64)
    v = mb.real_div(x=ctx.x(0), y=scale)
    # clip first to the integer bounds (lo - zp, hi - zp): rounding commutes with that clip, and
    # the values stay small enough for v - floor(v) to be exact
    v = mb.maximum(x=v, y=(info.min - zp).astype(dt))
    v = mb.minimum(x=v, y=(info.max - zp).astype(dt))
    f = mb.floor(x=v)
    frac = mb.sub(x=v, y=f)
    half = np.array(0.5, dt)
    odd = mb.equal(
        x=mb.sub(x=f, y=mb.mul(x=mb.floor(x=mb.mul(x=f, y=half)), y=np.array(2, dt))),
        y=np.array(1, dt),
    )
    up = mb.logical_or(
        x=mb.greater(x=frac, y=half), y=mb.logical_and(x=mb.equal(x=frac, y=half), y=odd)
    )
    q = mb.add(x=f, y=mb.cast(x=up, dtype="fp16" if dt == np.float16 else "fp32"))
    ctx.out(0, mb.add(x=q, y=zp.astype(dt)) if np.any(zp) else q)


@builder("DequantizeLinear", since=10, dtypes=QUANTIZED | {np.dtype(np.int32)}, check=_dq_check,
         carries=QUANTIZED)  # fmt: skip
def dequantize(ctx: Ctx, node) -> None:
    x = ctx.x(0)
    scale = _per_axis(ctx, node, 1, ctx.rank(0), np.float32)
    zp = _per_axis(ctx, node, 2, ctx.rank(0), np.int32)
    raw = ctx.const(0)
    if raw is not None:  # a quantized constant (a weight): dequantized on the host
        y = (raw.astype(np.float32) - zp.astype(np.float32)) * scale.astype(np.float32)
        ctx.out(0, y.astype(scale.dtype))
        return
    # the float-held integers of a QuantizeLinear in this partition (see the module doc)
    dt = ctx.np_dtype(0)
    if np.any(zp):
        x = ctx.mb.sub(x=x, y=zp.astype(dt))
    ctx.out(0, ctx.mb.mul(x=x, y=scale.astype(dt)))
