"""A fused multiply-add for compiled kernels (an llvmlite intrinsic: one rounding of a * b + c),
where they must round as onnxruntime's vector kernels do (MLAS's QLinearAdd). This module
imports numba; kernels reach it through :class:`ort_cpu._jit.LazyIntrinsic`."""

from __future__ import annotations

from numba.extending import intrinsic


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` rounded once, for float32 (or float64) ``a``, ``b`` and ``c`` of one type."""
    sig = a(a, b, c)

    def codegen(context, builder, sig, args):
        return builder.fma(*args)

    return sig, codegen
