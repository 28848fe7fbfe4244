"""The inner loop of the direct convolutions and pools (:func:`._conv_jit._direct`) as LLVM
vector code.

``add_taps`` adds a channel's taps to a block of output sums: ``dst[o] += w[t] * src[offs[t] +
o]`` for every tap t in order, each output keeping its sum in registers across the taps (16 at a
time), so a 3 x 3 window is 9 loads and one store per 16 outputs. numba's loop over the same
sum kept each output in memory between passes of four taps (LLVM vectorizes a loop only while
it can check that its few arrays do not overlap): 5 loads and stores per 4 taps. The sums are
the same additions in the same order (multiply, then add; no fused multiply-add), so the results
are bit for bit those of the loop it replaces. ``max_taps`` is the same loop taking maxima (the
max pools). ``add_taps_block`` is the loop for 8 output channels of a dense layer at once, each
input vector loaded once for all 8, with fused multiply-adds; all three come from one code
generator (:func:`_taps_codegen`). ``split_pairs`` splits a row into its two column phases (stride 2) by address.
``center_cells``, ``center_pairs`` and ``requant_cells`` are a depthwise QLinearConv's
rows in and out (8-bit to centred float32, split into column phases at stride 2, and float32
sums requantized to 8 bits), in vectors of 16 with one masked vector for a row's rest.

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
from ._ir import loop_end, loop_start, splat

#: outputs per vector
LANES = 16


#: vectors of outputs summed side by side (independent additions in flight: one vector's nine
#: taps alone are a chain of dependent additions); the slack the arrays need past a run (whole
#: groups of them are computed) is :data:`._conv_jit.SLACK`, which sizes _direct's buffers
UNROLL = SLACK // LANES


#: how a tap is combined into the sums: ``dst += w * src`` (a multiply, then an add), the same
#: with one fused multiply-add, or ``dst = max(dst, src)``
WEIGHTED, FUSED, MAXIMUM = "weighted", "fused", "maximum"
#: output channels whose sums :func:`add_taps_block` keeps in registers together
OUTS = 8
#: vectors of outputs per channel in those registers (OUTS x BLOCK_VECTORS accumulators)
BLOCK_VECTORS = 2


def _taps_codegen(rows: int, vectors: int, combine: str):
    """The code of a taps loop: over groups of ``vectors`` vectors of 16 cells, ``rows`` rows of
    sums (``dst`` rows ``stride`` elements apart) kept in registers across every tap t in order:
    each reads ``src[offs[t] + cell]`` once for all the rows, row o weighted by
    ``weights[t * rows + o]``, and the sums are stored back once per group."""

    def codegen(context, builder, sig, args):
        if rows == 1:
            dst, src, offs, weights, taps, size, like = args
            stride = None
        else:
            dst, stride, src, offs, weights, taps, size, like = args
        real = like.type
        vec = ir.VectorType(real, LANES)
        word = ir.IntType(64)
        zero_w, one_w = ir.Constant(word, 0), ir.Constant(word, 1)
        span = LANES * vectors  # cells per group
        dst_p = builder.inttoptr(dst, real.as_pointer())
        src_p = builder.inttoptr(src, real.as_pointer())
        offs_p = builder.inttoptr(offs, word.as_pointer())
        w_p = builder.inttoptr(weights, real.as_pointer())
        if combine == FUSED:
            fma = builder.module.declare_intrinsic(
                f"llvm.fma.{_suffix(vec)}", fnty=ir.FunctionType(vec, [vec, vec, vec])
            )
        size_up = builder.add(size, ir.Constant(word, span - 1))
        groups = builder.sdiv(size_up, ir.Constant(word, span))

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
        cells = [builder.add(builder.mul(g, ir.Constant(word, span)), ir.Constant(word, LANES * u))
                 for u in range(vectors)]  # fmt: skip
        out_p = [
            [vector_at(dst_p, c if o == 0 else builder.add(builder.mul(ir.Constant(word, o), stride), c))
             for c in cells]
            for o in range(rows)
        ]  # fmt: skip
        start = [[builder.load(q, align=1) for q in row] for row in out_p]
        outer_end = builder.block
        builder.cbranch(builder.icmp_signed(">", taps, zero_w), inner, store)

        builder.position_at_end(inner)
        t = builder.phi(word)
        t.add_incoming(zero_w, outer_end)
        acc = []
        for o in range(rows):
            row = []
            for u in range(vectors):
                a = builder.phi(vec)
                a.add_incoming(start[o][u], outer_end)
                row.append(a)
            acc.append(row)
        off = builder.load(builder.gep(offs_p, [t]))
        sv = [builder.load(vector_at(src_p, builder.add(off, c)), align=1) for c in cells]
        w_row = builder.mul(t, ir.Constant(word, rows))
        summed = []
        for o in range(rows):
            if combine == MAXIMUM:  # np.maximum's: NaN from either side
                sums = []
                for u in range(vectors):
                    keep = builder.fcmp_unordered(">=", acc[o][u], sv[u])
                    top = builder.select(keep, acc[o][u], sv[u])
                    sums.append(
                        builder.select(builder.fcmp_unordered("uno", sv[u], sv[u]), sv[u], top)
                    )
                summed.append(sums)
                continue
            at = builder.add(w_row, ir.Constant(word, o))
            ws = splat(builder, builder.load(builder.gep(w_p, [at])), vec)
            if combine == FUSED:
                summed.append([builder.call(fma, [ws, sv[u], acc[o][u]]) for u in range(vectors)])
            else:
                summed.append(
                    [builder.fadd(acc[o][u], builder.fmul(ws, sv[u])) for u in range(vectors)]
                )
        t1 = builder.add(t, one_w)
        inner_end = builder.block
        t.add_incoming(t1, inner_end)
        for o in range(rows):
            for u in range(vectors):
                acc[o][u].add_incoming(summed[o][u], inner_end)
        builder.cbranch(builder.icmp_signed("<", t1, taps), inner, store)

        builder.position_at_end(store)
        finals = []
        for o in range(rows):  # every phi first: a block's phis come before the rest
            for u in range(vectors):
                final = builder.phi(vec)
                final.add_incoming(start[o][u], outer_end)
                final.add_incoming(summed[o][u], inner_end)
                finals.append((final, out_p[o][u]))
        for final, q in finals:
            builder.store(final, q, align=1)
        g1 = builder.add(g, one_w)
        g.add_incoming(g1, store)
        builder.cbranch(builder.icmp_signed("<", g1, groups), outer, done)

        builder.position_at_end(done)
        return context.get_dummy_value()

    return codegen


def _taps_intrinsic(combine: str):
    """:func:`add_taps` (``WEIGHTED``) or :func:`max_taps` (``MAXIMUM``): one row of UNROLL
    vectors."""
    codegen = _taps_codegen(1, UNROLL, combine)

    def taps(typingctx, dst, src, offs, weights, count, size, like):
        i64 = types.int64
        return types.void(i64, i64, i64, i64, i64, i64, like), codegen

    return intrinsic(taps)


#: ``add_taps(dst, src, offs, weights, taps, size, like)``: ``dst[o] += w[t] * src[offs[t] +
#: o]`` for t in ``range(taps)`` (in order) and o in ``range(size)`` rounded up to
#: :data:`SLACK`; ``dst``, ``src``, ``offs`` (int64) and ``weights`` are addresses, the elements
#: of ``like``'s type (float32 or float64)
add_taps = _taps_intrinsic(WEIGHTED)
#: ``max_taps(...)``, the same arguments (``weights`` unused): ``dst[o] = max(dst[o],
#: src[offs[t] + o])`` as np.maximum (NaN from either side)
max_taps = _taps_intrinsic(MAXIMUM)
_block_codegen = _taps_codegen(OUTS, BLOCK_VECTORS, FUSED)


@intrinsic
def add_taps_block(typingctx, dst, stride, src, offs, weights, taps, size, like):
    """:func:`add_taps` for :data:`OUTS` output channels at once (a dense convolution's):
    ``dst[o * stride + c] += weights[t * OUTS + o] * src[offs[t] + c]`` for every tap t in
    order, each of the OUTS x 2 vectors of sums in a register across the taps, so that each
    input vector loaded serves OUTS output channels (one output channel at a time, a dense
    layer's taps were a load per multiply-add). Fused multiply-adds (the GEMM it replaces
    used them too). Whole groups of 32 cells: ``dst`` rows and ``src`` need 32 cells of slack
    past ``size``."""
    i64 = types.int64
    return types.void(i64, i64, i64, i64, i64, i64, i64, like), _block_codegen


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


def _row_loop(builder, count, name: str, body) -> None:
    """``body(index, mask)`` for index 0, 16, 32... while a whole vector of 16 fits (``mask``
    None), then once for the rest under a mask of its lanes: a row in vectors, nothing read or
    written past ``count`` (short rows, 7 or 14 cells, are one masked vector)."""
    word = ir.IntType(64)
    whole = builder.sdiv(count, ir.Constant(word, LANES))
    _, loop, done, i = loop_start(builder, whole, f"{name}.vec")
    body(builder.mul(i, ir.Constant(word, LANES)), None)
    loop_end(builder, i, whole, loop, done)
    start = builder.mul(whole, ir.Constant(word, LANES))
    rest = builder.sub(count, start)
    with builder.if_then(builder.icmp_signed(">", rest, ir.Constant(word, 0))):
        lanes = ir.Constant(ir.VectorType(word, LANES), list(range(LANES)))
        limit = splat(builder, rest, ir.VectorType(word, LANES))
        body(start, builder.icmp_signed("<", lanes, limit))


def _load(builder, base, index, vec, mask):
    """``vec`` from ``base[index:]``, under ``mask`` where one is given (lanes off read 0)."""
    at = builder.bitcast(builder.gep(base, [index]), vec.as_pointer())
    align = ir.Constant(ir.IntType(32), 1)
    if mask is None:
        return builder.load(at, align=1)
    fn = builder.module.declare_intrinsic(
        f"llvm.masked.load.{_suffix(vec)}.p0",
        fnty=ir.FunctionType(vec, [at.type, align.type, mask.type, vec]),
    )
    return builder.call(fn, [at, align, mask, ir.Constant(vec, None)])


def _store(builder, value, base, index, mask) -> None:
    """``value`` into ``base[index:]``, under ``mask`` where one is given."""
    at = builder.bitcast(builder.gep(base, [index]), value.type.as_pointer())
    if mask is None:
        builder.store(value, at, align=1)
        return
    align = ir.Constant(ir.IntType(32), 1)
    fn = builder.module.declare_intrinsic(
        f"llvm.masked.store.{_suffix(value.type)}.p0",
        fnty=ir.FunctionType(ir.VoidType(), [value.type, at.type, align.type, mask.type]),
    )
    builder.call(fn, [value, at, align, mask])


def _suffix(vec: ir.VectorType) -> str:
    if isinstance(vec.element, ir.FloatType):
        element = "f32"
    elif isinstance(vec.element, ir.DoubleType):
        element = "f64"
    else:
        element = f"i{vec.element.width}"
    return f"v{vec.count}{element}"


@intrinsic
def center_cells(typingctx, dst, src, count, zero, like):
    """``dst[i] = float32(src[i]) - zero`` for ``count`` 8-bit integers at address ``src`` (of
    ``like``'s type, signed or not) into float32 at address ``dst``: a row of a quantized plane
    centred on its zero point, in vectors of 16."""
    i64 = types.int64
    sig = types.void(i64, i64, i64, types.float32, like)
    signed = like.signed

    def codegen(context, builder, sig, args):
        dst, src, count, zero, _ = args
        f32, i8 = ir.FloatType(), ir.IntType(8)
        dst_p = builder.inttoptr(dst, f32.as_pointer())
        src_p = builder.inttoptr(src, i8.as_pointer())
        fv = ir.VectorType(f32, LANES)

        def body(i, mask):
            v = _load(builder, src_p, i, ir.VectorType(i8, LANES), mask)
            f = (builder.sitofp if signed else builder.uitofp)(v, fv)
            _store(builder, builder.fsub(f, splat(builder, zero, fv)), dst_p, i, mask)

        _row_loop(builder, count, "center", body)
        return context.get_dummy_value()

    return sig, codegen


def _pairs_codegen(centre: bool):
    """The code of :func:`center_pairs` (``centre``: 8-bit integers centred into float32) or
    :func:`split_pairs` (elements copied as they are)."""

    def codegen(context, builder, sig, args):
        if centre:
            even, odd, src, pairs, zero, like = args
        else:
            even, odd, src, pairs, like = args
        element = like.type
        out_t = ir.FloatType() if centre else element
        even_p = builder.inttoptr(even, out_t.as_pointer())
        odd_p = builder.inttoptr(odd, out_t.as_pointer())
        src_p = builder.inttoptr(src, element.as_pointer())
        wide = ir.VectorType(out_t, 2 * LANES)
        i32 = ir.IntType(32)
        signed = centre and sig.args[-1].signed

        def body(i, mask):
            pairs_mask = None
            if mask is not None:  # each pair's two lanes
                pairs_mask = builder.shuffle_vector(
                    mask, mask, ir.Constant(ir.VectorType(i32, 2 * LANES),
                                            [k // 2 for k in range(2 * LANES)]),
                )  # fmt: skip
            at = builder.mul(i, ir.Constant(ir.IntType(64), 2))
            v = _load(builder, src_p, at, ir.VectorType(element, 2 * LANES), pairs_mask)
            if centre:
                v = builder.fsub(
                    (builder.sitofp if signed else builder.uitofp)(v, wide),
                    splat(builder, zero, wide),
                )
            for base, first in ((even_p, 0), (odd_p, 1)):
                lanes = ir.Constant(ir.VectorType(i32, LANES), list(range(first, 2 * LANES, 2)))
                _store(builder, builder.shuffle_vector(v, v, lanes), base, i, mask)

        _row_loop(builder, pairs, "pairs", body)
        return context.get_dummy_value()

    return codegen


@intrinsic
def center_pairs(typingctx, even, odd, src, pairs, zero, like):
    """Cells ``2i`` and ``2i + 1`` of a row of ``2 * pairs`` 8-bit integers at address ``src``,
    centred as :func:`center_cells` does, into float32 at ``even[i]`` and ``odd[i]``: a row split
    into its two column phases (stride 2) in the same pass, 16 pairs at a time."""
    i64 = types.int64
    return types.void(i64, i64, i64, i64, types.float32, like), _pairs_codegen(True)


@intrinsic
def split_pairs(typingctx, even, odd, src, pairs, like):
    """Cells ``2i`` and ``2i + 1`` of a row of ``2 * pairs`` elements of ``like``'s type (float32
    or float64) at address ``src`` into ``even[i]`` and ``odd[i]``: a row split into its two
    column phases (stride 2), 16 pairs at a time, by address (no array views, whose reference
    counts cost more than a short row)."""
    i64 = types.int64
    return types.void(i64, i64, i64, i64, like), _pairs_codegen(False)


@intrinsic
def requant_cells(typingctx, dst, src, count, bias, mult, zero, lo, hi, like):
    """``dst[i] = clip(rint((src[i] + bias) * mult) + zero, lo, hi)`` for ``count`` float32
    sums at address ``src`` into 8-bit integers of ``like``'s type at address ``dst``, in vectors
    of 16: the same float32 operations as :func:`._quant_jit.requantize3` (rint rounds half to
    even), so the same bytes."""
    i64, f32t = types.int64, types.float32
    sig = types.void(i64, i64, i64, f32t, f32t, f32t, f32t, f32t, like)
    signed = like.signed

    def codegen(context, builder, sig, args):
        dst, src, count, bias, mult, zero, lo, hi, _ = args
        f32, i8 = ir.FloatType(), ir.IntType(8)
        src_p = builder.inttoptr(src, f32.as_pointer())
        dst_p = builder.inttoptr(dst, i8.as_pointer())
        ft = ir.VectorType(f32, LANES)
        rint = builder.module.declare_intrinsic(
            f"llvm.rint.v{LANES}f32", fnty=ir.FunctionType(ft, [ft])
        )

        def body(i, mask):
            def const(v):
                return splat(builder, v, ft)

            v = builder.fmul(builder.fadd(_load(builder, src_p, i, ft, mask), const(bias)),
                             const(mult))  # fmt: skip
            v = builder.fadd(builder.call(rint, [v]), const(zero))
            v = builder.select(builder.fcmp_ordered("<", v, const(lo)), const(lo), v)
            v = builder.select(builder.fcmp_ordered(">", v, const(hi)), const(hi), v)
            q = (builder.fptosi if signed else builder.fptoui)(v, ir.VectorType(i8, LANES))
            _store(builder, q, dst_p, i, mask)

        _row_loop(builder, count, "requant", body)
        return context.get_dummy_value()

    return sig, codegen
