"""Small llvmlite intrinsics for compiled kernels: a fused multiply-add (one rounding of
a * b + c), where they must round as onnxruntime's vector kernels do (MLAS's QLinearAdd), and a
float32 made from its bits (:mod:`._exp_jit`'s exponential). This module imports numba;
kernels reach it through :class:`ort_cpu._jit.LazyIntrinsic`."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` rounded once, for float32 (or float64) ``a``, ``b`` and ``c`` of one type."""
    sig = a(a, b, c)

    def codegen(context, builder, sig, args):
        return builder.fma(*args)

    return sig, codegen


@intrinsic
def float_bits(typingctx, bits):
    """The float32 whose bits are the int32 ``bits``."""
    sig = types.float32(types.int32)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen
