"""The channels-last depthwise QLinearConv's loops as LLVM vector code
(:func:`._conv_jit._depthwise_quant_cl`): 16 x 16 transposes in registers between a block of
8-bit planes and a channels-last float32 plane, and the tap sums over it.

On maps of 7 x 7 and 14 x 14 the planar kernel's rows are one vector of 16 lanes holding 7 or
14 cells, and a channel's few rows cost more in calls and row set-up than in sums (960 x 7 x 7:
0.23 us a channel). Channels last, every vector holds 16 channels of one cell and every tap of
a cell is one multiply-add per vector. What kept it from paying before was the layout change,
element by element; here it is in registers:

- :func:`cl_center_in` reads 16 consecutive cells of 16 channels' planes (16 vectors of 16
  bytes), centres them (``float32(x) - zero``), transposes the 16 x 16 block and stores each
  cell's 16 channels at that cell's place in a zero-padded channels-last plane (a table maps
  the image's cells to the plane's).
- :func:`cl_quant_cells` sums every output cell's taps channels last (1 to 4 vectors of
  channels, their sums in registers across the taps) and requantizes them on the way out
  (``clip(rint((sum + bias) * mult) + zero, lo, hi)``, per-channel bias and multiplier: the
  operations of :func:`._taps.quant_rows`, so its bytes) into an 8-bit channels-last buffer.
- :func:`cl_out` transposes that buffer's 16 x 16 byte blocks back into 16 output planes.

The sums are of products of integers (centred 8-bit values and weights) whose totals the
caller has checked stay exact in float32, so the fused multiply-adds used here give the very
values the planar kernel's multiply-then-add does. This module imports numba and llvmlite;
kernels reach it through :class:`ort_cpu._jit.LazyIntrinsic`.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._conv_jit import LANES
from ._ir import (
    WORD,
    chunks,
    lane_mask,
    load,
    loop_end,
    loop_start,
    requantize8,
    splat,
    store,
    vector_op,
)
from ._taps import _tap_loop

#: vectors of channels :func:`cl_quant_cells` sums per cell at most
MAX_VECTORS = 4

_I32 = ir.IntType(32)
_I8 = ir.IntType(8)
_F32 = ir.FloatType()


def _c(value: int):
    return ir.Constant(WORD, value)


def transpose16(builder, rows: list) -> list:
    """The 16 x 16 block ``rows`` (16 vectors of 16 lanes) transposed: lane i of vector j comes
    back as lane j of vector i. Four rounds of two-vector shuffles, round b exchanging bit b of
    the row index with bit b of the lane index."""
    n = len(rows)
    out = list(rows)
    bit = 1
    while bit < n:
        low = ir.Constant(ir.VectorType(_I32, n),
                          [k if not k & bit else n + (k ^ bit) for k in range(n)])  # fmt: skip
        high = ir.Constant(ir.VectorType(_I32, n),
                           [k | bit if not k & bit else n + k for k in range(n)])  # fmt: skip
        for r in range(n):
            if r & bit:
                continue
            a, b = out[r], out[r | bit]
            out[r] = builder.shuffle_vector(a, b, low)
            out[r | bit] = builder.shuffle_vector(a, b, high)
        bit <<= 1
    return out


def _in_codegen(centre: bool):
    """The code of :func:`cl_center_in` (``centre``: 8-bit integers centred into float32) or
    :func:`cl_in` (elements copied as they are)."""

    def codegen(context, builder, sig, args):
        if centre:
            dst, dst_step, table, src, plane, count, rows, zero, like = args
        else:
            dst, dst_step, table, src, plane, count, rows, like = args
        element = like.type
        out_t = _F32 if centre else element
        signed = centre and sig.args[-1].signed
        dst_p = builder.inttoptr(dst, out_t.as_pointer())
        table_p = builder.inttoptr(table, WORD.as_pointer())
        src_p = builder.inttoptr(src, element.as_pointer())
        in_v, out_v = ir.VectorType(element, LANES), ir.VectorType(out_t, LANES)
        zero_v = ir.Constant(out_v, None)
        centre_v = splat(builder, zero, out_v) if centre else None
        last = builder.sub(rows, _c(1))

        def body(first, rest):
            mask = None if rest is None else lane_mask(builder, rest)
            block = []
            for j in range(LANES):  # rows past the last read the last again, then count zero
                inside = builder.icmp_signed("<", _c(j), rows)
                row = builder.select(inside, _c(j), last)
                v = load(builder, src_p, builder.add(builder.mul(row, plane), first), in_v, mask)
                if centre:
                    v = builder.fsub((builder.sitofp if signed else builder.uitofp)(v, out_v),
                                     centre_v)  # fmt: skip
                block.append(builder.select(inside, v, zero_v))
            for k, cell in enumerate(transpose16(builder, block)):

                def put(k=k, cell=cell):
                    at = builder.load(builder.gep(table_p, [builder.add(first, _c(k))]))
                    store(builder, cell, dst_p, builder.mul(at, dst_step), None)

                if rest is None:
                    put()
                else:
                    with builder.if_then(builder.icmp_signed("<", _c(k), rest)):
                        put()

        chunks(builder, count, body, shift=True)
        return context.get_dummy_value()

    return codegen


@intrinsic
def cl_center_in(typingctx, dst, dst_step, table, src, plane, count, rows, zero, like):
    """Cells ``0:count`` of ``rows`` (1 to 16) 8-bit planes (``like``'s type), the first at
    address ``src``, the next ``plane`` elements on, centred (``float32(x) - zero``) into a
    channels-last float32 plane: cell k's channels go to ``dst[table[k] * dst_step:]``, 16
    floats (lanes past ``rows`` zero). ``table`` is the int64 address of the cells' places."""
    i64 = types.int64
    sig = types.void(i64, i64, i64, i64, i64, i64, i64, types.float32, like)
    return sig, _in_codegen(True)


@intrinsic
def cl_in(typingctx, dst, dst_step, table, src, plane, count, rows, like):
    """:func:`cl_center_in` for planes of ``like``'s type (float32 or float64) copied as they
    are into a channels-last plane of that type."""
    i64 = types.int64
    return types.void(i64, i64, i64, i64, i64, i64, i64, like), _in_codegen(False)


#: output cells of a row :func:`cl_quant_cells` sums together (independent sums in flight)
CELLS = 4
#: windows whose taps' weights :func:`cl_quant_cells` holds in registers (3 x 3); others load
#: each tap's weights per cell
HELD_TAPS = 9


def _quant_cells_codegen(context, builder, sig, args):
    """The code of :func:`cl_quant_cells`: per vector of channels, its biases and multipliers
    (and for 3 x 3 windows its nine weight vectors) loaded once, then each output row's cells
    :data:`CELLS` at a time (their sums independent: the taps' multiply-adds overlap), the row's
    last cells one at a time."""
    (dst, oh, ow, src, row_step, col_step, offs, taps, weights, w_step, bias, mult, vectors,
     zero, lo, hi, _) = args  # fmt: skip
    vec = ir.VectorType(_F32, LANES)
    dst_p = builder.inttoptr(dst, _I8.as_pointer())
    src_p = builder.inttoptr(src, _F32.as_pointer())
    offs_p = builder.inttoptr(offs, WORD.as_pointer())
    w_p = builder.inttoptr(weights, _F32.as_pointer())
    b_p = builder.inttoptr(bias, _F32.as_pointer())
    m_p = builder.inttoptr(mult, _F32.as_pointer())
    fma = vector_op(builder, "fma", vec, 3)
    cell = _c(LANES * MAX_VECTORS)  # floats (and output bytes) a cell's channels take

    def sums_held(bases, held):
        """The sums of the cells at ``bases`` over the held taps (``held``: (offset, weight
        vector) per tap)."""
        acc = [ir.Constant(vec, None)] * len(bases)
        for off, w in held:
            acc = [builder.call(fma, [w, load(builder, src_p, builder.add(b, off), vec, None), a])
                   for b, a in zip(bases, acc, strict=True)]  # fmt: skip
        return acc

    def sums_loop(bases, part):
        """The same over ``taps`` taps in a loop (:func:`._taps._tap_loop`), each tap's weights
        loaded."""

        def step(t, acc):
            off = builder.load(builder.gep(offs_p, [t]))
            w = load(builder, w_p, builder.add(builder.mul(t, w_step), part), vec, None)
            return [[builder.call(fma, [w, load(builder, src_p, builder.add(b, off), vec, None),
                                        a]) for b, a in zip(bases, acc[0], strict=True)]]  # fmt: skip

        return _tap_loop(builder, taps, [[ir.Constant(vec, None)] * len(bases)], step)[0]

    def rows(part, sums):
        """Every output cell's vector of channels at ``part``, its sums from ``sums``."""
        b = load(builder, b_p, part, vec, None)
        m = load(builder, m_p, part, vec, None)

        def cells(row_src, row_dst, q, n):
            bases = [builder.add(row_src, builder.mul(builder.add(q, _c(k)), col_step))
                     for k in range(n)]  # fmt: skip
            for k, v in enumerate(sums(bases)):
                at = builder.add(row_dst, builder.mul(builder.add(q, _c(k)), cell))
                store(builder, requantize8(builder, builder.fmul(builder.fadd(v, b), m), zero,
                                           lo, hi), dst_p, at, None)  # fmt: skip

        _, r_loop, r_done, r = loop_start(builder, oh, "cl.rows")
        row_src = builder.add(builder.mul(r, row_step), part)
        row_dst = builder.add(builder.mul(builder.mul(r, ow), cell), part)
        groups = builder.sdiv(ow, _c(CELLS))
        _, g_loop, g_done, g = loop_start(builder, groups, "cl.groups")
        cells(row_src, row_dst, builder.mul(g, _c(CELLS)), CELLS)
        loop_end(builder, g, groups, g_loop, g_done)
        first = builder.mul(groups, _c(CELLS))
        rest = builder.sub(ow, first)
        _, e_loop, e_done, e = loop_start(builder, rest, "cl.rest")
        cells(row_src, row_dst, builder.add(first, e), 1)
        loop_end(builder, e, rest, e_loop, e_done)
        loop_end(builder, r, oh, r_loop, r_done)

    _, v_loop, v_done, v = loop_start(builder, vectors, "cl.vectors")
    part = builder.mul(v, _c(LANES))
    with builder.if_else(builder.icmp_signed("==", taps, _c(HELD_TAPS))) as (held, looped):
        with held:
            fixed = [(builder.load(builder.gep(offs_p, [_c(t)])),
                      load(builder, w_p, builder.add(builder.mul(_c(t), w_step), part), vec,
                           None)) for t in range(HELD_TAPS)]  # fmt: skip
            rows(part, lambda bases: sums_held(bases, fixed))
        with looped:
            rows(part, lambda bases: sums_loop(bases, part))
    loop_end(builder, v, vectors, v_loop, v_done)
    return context.get_dummy_value()


@intrinsic
def cl_quant_cells(typingctx, dst, oh, ow, src, row_step, col_step, offs, taps, weights, w_step,
                   bias, mult, vectors, zero, lo, hi, like_y):  # fmt: skip
    """Output cells (r, q) for r < ``oh``, q < ``ow`` of a depthwise QLinearConv channels last,
    ``vectors`` (1 to 4) vectors of 16 channels each: the float32 sum over t < ``taps`` of
    ``weights[t * w_step + c] * src[r * row_step + q * col_step + offs[t] + c]`` (``src`` a
    zero-padded channels-last float32 plane of 64 floats a cell; steps and offsets in floats),
    then ``clip(rint((sum + bias[c]) * mult[c]) + zero, lo, hi)`` stored as 8 bits (``like_y``'s
    type) at ``dst[(r * ow + q) * 64 + c]``. Every argument but the last four is an int64
    address or count."""
    i64, f32 = types.int64, types.float32
    sig = types.void(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, f32, f32,
                     f32, like_y)  # fmt: skip
    return sig, _quant_cells_codegen


@intrinsic
def cl_out(typingctx, dst, plane, src, src_step, count, rows, like):
    """The channels-last elements of ``count`` cells (cell k's 16 channels at ``src + k *
    src_step``; the buffer holds 16 cells of slack past the last) back into ``rows`` (1 to 16)
    planes of ``like``'s type (8-bit, float32 or float64), the first at address ``dst``, the
    next ``plane`` elements on; addresses in bytes, steps in elements."""
    i64 = types.int64
    sig = types.void(i64, i64, i64, i64, i64, i64, like)

    def codegen(context, builder, sig, args):
        dst, plane, src, src_step, count, rows, like = args
        element = like.type
        dst_p = builder.inttoptr(dst, element.as_pointer())
        src_p = builder.inttoptr(src, element.as_pointer())
        vec = ir.VectorType(element, LANES)

        def body(first, rest):
            mask = None if rest is None else lane_mask(builder, rest)
            block = [load(builder, src_p, builder.mul(builder.add(first, _c(k)), src_step), vec,
                          None) for k in range(LANES)]  # fmt: skip
            for j, channel in enumerate(transpose16(builder, block)):
                with builder.if_then(builder.icmp_signed("<", _c(j), rows)):
                    store(builder, channel, dst_p, builder.add(builder.mul(_c(j), plane), first),
                          mask)  # fmt: skip

        chunks(builder, count, body, shift=True)
        return context.get_dummy_value()

    return sig, codegen
