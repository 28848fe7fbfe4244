"""The inner loop of the direct convolutions and pools (:func:`._conv_jit._direct`) as LLVM
vector code.

``add_taps`` adds a channel's taps to a block of output sums: ``dst[o] += w[t] * src[offs[t] +
o]`` for every tap t in order, each output keeping its sum in registers across the taps (16 at a
time), so a 3 x 3 window is 9 loads and one store per 16 outputs. numba's loop over the same
sum kept each output in memory between passes of four taps (LLVM vectorizes a loop only while
it can check that its few arrays do not overlap): 5 loads and stores per 4 taps. The sums are
the same additions in the same order (multiply, then add; no fused multiply-add), so the results
are bit for bit those of the loop it replaces. ``max_taps`` is the same loop taking maxima (the
max pools).

It reads and writes whole groups of :data:`UNROLL` vectors: ``dst`` and ``src`` need
:data:`._conv_jit.SLACK` elements of slack past the ``size`` outputs and the last tap's run.
This module imports numba and llvmlite; kernels reach it through
:class:`ort_cpu._jit.LazyIntrinsic`.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._conv_jit import SLACK
from ._ir import splat

#: outputs per vector
LANES = 16


#: vectors of outputs summed side by side (independent additions in flight: one vector's nine
#: taps alone are a chain of dependent additions); the slack the arrays need past a run (whole
#: groups of them are computed) is :data:`._conv_jit.SLACK`, which sizes _direct's buffers
UNROLL = SLACK // LANES


def _taps_intrinsic(weighted: bool):
    """:func:`add_taps` (``weighted``) or :func:`max_taps`."""

    def codegen(context, builder, sig, args):
        dst, src, offs, weights, taps, size, like = args
        real = like.type
        vec = ir.VectorType(real, LANES)
        word = ir.IntType(64)
        zero_w, one_w = ir.Constant(word, 0), ir.Constant(word, 1)
        dst_p = builder.inttoptr(dst, real.as_pointer())
        src_p = builder.inttoptr(src, real.as_pointer())
        offs_p = builder.inttoptr(offs, word.as_pointer())
        w_p = builder.inttoptr(weights, real.as_pointer())
        groups = builder.sdiv(
            builder.add(size, ir.Constant(word, SLACK - 1)), ir.Constant(word, SLACK)
        )

        def vector_at(base, index):
            return builder.bitcast(builder.gep(base, [index]), vec.as_pointer())

        entry = builder.block
        outer = builder.append_basic_block("taps.outer")
        inner = builder.append_basic_block("taps.inner")
        store = builder.append_basic_block("taps.store")
        done = builder.append_basic_block("taps.done")
        builder.cbranch(builder.icmp_signed(">", groups, zero_w), outer, done)

        builder.position_at_end(outer)
        g = builder.phi(word)
        g.add_incoming(zero_w, entry)
        at = [builder.add(builder.mul(g, ir.Constant(word, SLACK)), ir.Constant(word, LANES * u))
              for u in range(UNROLL)]  # fmt: skip
        out_p = [vector_at(dst_p, a) for a in at]
        start = [builder.load(p, align=1) for p in out_p]
        outer_end = builder.block
        builder.cbranch(builder.icmp_signed(">", taps, zero_w), inner, store)

        builder.position_at_end(inner)
        t = builder.phi(word)
        t.add_incoming(zero_w, outer_end)
        acc = []
        for u in range(UNROLL):
            a = builder.phi(vec)
            a.add_incoming(start[u], outer_end)
            acc.append(a)
        off = builder.load(builder.gep(offs_p, [t]))
        if weighted:
            ws = splat(builder, builder.load(builder.gep(w_p, [t])), vec)
        summed = []
        for u in range(UNROLL):
            sv = builder.load(vector_at(src_p, builder.add(off, at[u])), align=1)
            if weighted:
                summed.append(builder.fadd(acc[u], builder.fmul(ws, sv)))
            else:  # np.maximum's: NaN from either side
                keep = builder.fcmp_unordered(">=", acc[u], sv)
                top = builder.select(keep, acc[u], sv)
                summed.append(builder.select(builder.fcmp_unordered("uno", sv, sv), sv, top))
        t1 = builder.add(t, one_w)
        inner_end = builder.block
        t.add_incoming(t1, inner_end)
        for u in range(UNROLL):
            acc[u].add_incoming(summed[u], inner_end)
        builder.cbranch(builder.icmp_signed("<", t1, taps), inner, store)

        builder.position_at_end(store)
        finals = []
        for u in range(UNROLL):  # every phi first: a block's phis come before the rest
            final = builder.phi(vec)
            final.add_incoming(start[u], outer_end)
            final.add_incoming(summed[u], inner_end)
            finals.append(final)
        for u in range(UNROLL):
            builder.store(finals[u], out_p[u], align=1)
        g1 = builder.add(g, one_w)
        g.add_incoming(g1, store)
        builder.cbranch(builder.icmp_signed("<", g1, groups), outer, done)

        builder.position_at_end(done)
        return context.get_dummy_value()

    def taps(typingctx, dst, src, offs, weights, count, size, like):
        i64 = types.int64
        return types.void(i64, i64, i64, i64, i64, i64, like), codegen

    return intrinsic(taps)


#: ``add_taps(dst, src, offs, weights, taps, size, like)``: ``dst[o] += w[t] * src[offs[t] +
#: o]`` for t in ``range(taps)`` (in order) and o in ``range(size)`` rounded up to
#: :data:`SLACK`; ``dst``, ``src``, ``offs`` (int64) and ``weights`` are addresses, the elements
#: of ``like``'s type (float32 or float64)
add_taps = _taps_intrinsic(True)
#: ``max_taps(...)``, the same arguments (``weights`` unused): ``dst[o] = max(dst[o],
#: src[offs[t] + o])`` as np.maximum (NaN from either side)
max_taps = _taps_intrinsic(False)


@intrinsic
def copy_cells(typingctx, dst, src, count, like):
    """``count`` elements of ``like``'s type from address ``src`` to address ``dst`` (not
    overlapping): a row of a plane, without the two array views (and their reference counts) a
    numba slice assignment makes, which cost more than a short row's copy."""
    i64 = types.int64
    sig = types.void(i64, i64, i64, like)

    def codegen(context, builder, sig, args):
        dst, src, count, like = args
        size = context.get_abi_sizeof(like.type)
        byte_p = ir.IntType(8).as_pointer()
        n = builder.mul(count, ir.Constant(ir.IntType(64), size))
        builder.call(
            builder.module.declare_intrinsic(
                "llvm.memcpy", [byte_p, byte_p, ir.IntType(64)]
            ),
            [builder.inttoptr(dst, byte_p), builder.inttoptr(src, byte_p), n,
             ir.Constant(ir.IntType(1), 0)],
        )  # fmt: skip
        return context.get_dummy_value()

    return sig, codegen
