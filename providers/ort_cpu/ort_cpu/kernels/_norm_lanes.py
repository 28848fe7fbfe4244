"""The LLVM vector loop of :mod:`._norm_jit`'s row sums (an llvmlite intrinsic). This module
imports numba and llvmlite; :mod:`._norm_jit`'s kernels reach it through
:class:`ort_cpu._jit.LazyIntrinsic` when they compile."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._ir import loop_end, loop_start, splat
from ._norm_jit import LANES


@intrinsic
def lanes(typingctx, address, blocks, center, square, out):
    """``out[k]`` (the 16 lanes at address ``out``) = the sum over the ``blocks`` blocks of 16
    elements at ``address`` (of ``center``'s type, float32 or float64) of element k, or with
    ``square`` of (element k - center) ** 2, in order."""
    i64 = types.int64
    sig = types.void(i64, i64, center, i64, i64)

    def codegen(context, builder, sig, args):
        address, blocks, center, square, out = args
        vec = ir.VectorType(center.type, LANES)
        word = ir.IntType(64)
        base = builder.inttoptr(address, vec.as_pointer())
        zero = ir.Constant(vec, None)
        middle = splat(builder, center, vec)
        entry, loop, done, i = loop_start(builder, blocks, "lanes")
        acc = builder.phi(vec)
        acc.add_incoming(zero, entry)
        v = builder.load(builder.gep(base, [i]), align=1)
        d = builder.fsub(v, middle)
        term = builder.select(
            builder.icmp_signed("!=", square, ir.Constant(word, 0)), builder.fmul(d, d), v
        )
        nxt = builder.fadd(acc, term)
        body = loop_end(builder, i, blocks, loop, done)
        acc.add_incoming(nxt, body)
        final = builder.phi(vec)
        final.add_incoming(zero, entry)
        final.add_incoming(nxt, body)
        builder.store(final, builder.inttoptr(out, vec.as_pointer()), align=1)
        return context.get_dummy_value()

    return sig, codegen
