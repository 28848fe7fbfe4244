"""The inner loops of the direct convolutions and pools (:func:`._conv_jit._direct`) as LLVM
vector code.

``taps_rows`` writes :data:`._conv_jit.ROWS` whole output rows of one channel (a depthwise
layer's): each output's sum starts at the bias and adds ``w[t] * src[offs[t] + cell]`` for every
tap t in order, ROWS x ROW_VECTORS vectors of 16 sums in registers across the taps (a
multiply, then an add: no fused multiply-add, no reassociation), then the activation in
registers and a store straight into the output rows (a row's last vector shifted to end at
the row's end, or under a mask where the row is shorter than a vector: :func:`_row_groups`).
``taps_rows_3x3`` and ``_5x5`` are the same sums for a window read at unit row stride: output rows r and r + 1 read
the same input rows one tap row apart, so each input vector is loaded once for all the output
rows it serves (144 x 56 x 56 depthwise 3x3: 0.28 -> 0.19 ms; with a fused activation 0.36 ->
0.21 ms, against an accumulator in memory copied out row by row). ``quant_rows`` (and its
3x3 / 5x5 forms) is the depthwise QLinearConv's: sums of centred 8-bit values from zero,
requantized to 8 bits on the way out.

``max_rows`` (and its 3x3 / 5x5 forms) is the same loop taking each window's maximum (the max
pools), as np.maximum (NaN from either side). ``block_rows`` is the loop for 8 output channels
of a dense layer at once, row by row, each input vector loaded once for all 8, with fused
multiply-adds (the GEMM it replaced used them too), also stored straight from the registers
through the activation (a 3 -> 32 stem over 224 x 224 at stride 2: 0.43 -> 0.23 ms, with
an activation 0.46 -> 0.23 ms; it had summed blocks of rows in memory, then copied them out).
``split_pairs`` splits a row into its two column phases (stride 2) by address.
``center_cells`` and ``center_pairs`` are a depthwise QLinearConv's rows in (8-bit to centred
float32, split into column phases at stride 2), in vectors of 16 with one masked vector for a
row's rest.

The loops read whole vectors past their rows: ``src`` needs :data:`._conv_jit.SLACK` elements
of slack past the last tap's run (``taps_rows``: ROWS rows more). This module imports numba and
llvmlite; kernels reach it through :class:`ort_cpu._jit.LazyIntrinsic`.
"""

from __future__ import annotations

import functools

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._conv_jit import (
    BLOCK_VECTORS,
    CL_CELLS,
    CL_NARROW_CELLS,
    CL_NARROW_LANES,
    CL_NARROW_VECTORS,
    CL_VECTORS,
    GEMV_VECTORS,
    LANES,
    NHWC_BLOCK,
    OUTS,
    PW_ROWS,
    PW_VECTORS,
    ROW_VECTORS,
    ROWS,
)  # fmt: skip
from ._ir import (
    chunks,
    lane_mask,
    last_span,
    load,
    loop_end,
    loop_start,
    requantize8,
    splat,
    store,
    store_within,
    vector_op,
)

#: vectors of channels :func:`nhwc_cells` sums for a cell (the channels-last block)
NHWC_VECTORS = NHWC_BLOCK // LANES


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
            v = load(builder, src_p, i, ir.VectorType(i8, LANES), mask)
            f = (builder.sitofp if signed else builder.uitofp)(v, fv)
            store(builder, builder.fsub(f, splat(builder, zero, fv)), dst_p, i, mask)

        _row_groups(
            builder, count, 1, lambda i, _, masks: body(i, None if masks is None else masks[0])
        )
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
            v = load(builder, src_p, at, ir.VectorType(element, 2 * LANES), pairs_mask)
            if centre:
                v = builder.fsub(
                    (builder.sitofp if signed else builder.uitofp)(v, wide),
                    splat(builder, zero, wide),
                )
            for base, first in ((even_p, 0), (odd_p, 1)):
                lanes = ir.Constant(ir.VectorType(i32, LANES), list(range(first, 2 * LANES, 2)))
                store(builder, builder.shuffle_vector(v, v, lanes), base, i, mask)

        _row_groups(
            builder, pairs, 1, lambda i, _, masks: body(i, None if masks is None else masks[0])
        )
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


def _tap_loop(builder, taps, starts: list, step) -> list:
    """A loop over t in ``range(taps)`` (at least one) carrying the accumulator vectors
    ``starts`` (a list of rows of vectors) in registers: ``step(t, acc)`` returns the next
    ``acc``; returns the values after the last tap."""
    word = ir.IntType(64)
    entry = builder.block
    loop = builder.append_basic_block("taps.loop")
    done = builder.append_basic_block("taps.done")
    builder.branch(loop)
    builder.position_at_end(loop)
    t = builder.phi(word)
    t.add_incoming(ir.Constant(word, 0), entry)
    phis = [[builder.phi(v.type) for v in row] for row in starts]
    for row, first in zip(phis, starts, strict=True):
        for p, v in zip(row, first, strict=True):
            p.add_incoming(v, entry)
    new = step(t, phis)
    t1 = builder.add(t, ir.Constant(word, 1))
    end = builder.block
    t.add_incoming(t1, end)
    for row, last in zip(phis, new, strict=True):
        for p, v in zip(row, last, strict=True):
            p.add_incoming(v, end)
    builder.cbranch(builder.icmp_signed("<", t1, taps), loop, done)
    builder.position_at_end(done)
    return new


def _row_groups(builder, count, vectors: int, group) -> None:
    """``group(cell, n, masks)`` over a row of ``count`` cells: whole groups of ``vectors``
    vectors of 16 (``masks`` None), then the rest once. Where the row holds enough whole vectors
    the rest is whole vectors too, the last ones ending at the row's end (``n`` of them, from a
    cell before the rest: those cells are computed and written again, the same values), else
    in ``vectors`` vectors or in one when it fits in one, each under a mask of its lanes
    (``masks``: one per vector; short rows, 7 or 14 cells, are one masked vector). Nothing is
    read or written past ``count``, unless ``group`` chooses to (see :func:`._ir.store_within`).

    A masked store is slow on AMD's cores: a Zen 3 took 264 ns a 14 x 14 depthwise channel with
    every row's last vector stored under a mask, 129 with whole stores; on 56-cell rows the
    shifted last vector replaces it."""
    word = ir.IntType(64)
    span = ir.Constant(word, LANES * vectors)
    whole = builder.sdiv(count, span)
    _, loop, done, g = loop_start(builder, whole, "row.groups")
    group(builder.mul(g, span), vectors, None)
    loop_end(builder, g, whole, loop, done)
    first = builder.mul(whole, span)
    rest = builder.sub(count, first)
    lanes = ir.Constant(ir.VectorType(word, LANES), list(range(LANES)))

    def masks(n):
        return [builder.icmp_signed("<", lanes, splat(builder, builder.sub(rest, ir.Constant(word, LANES * u)), lanes.type))
                for u in range(n)]  # fmt: skip

    def tail(n):
        """The rest in ``n`` vectors: whole ones ending at the row's end where the row has
        ``n`` whole vectors' cells, else masked from ``first``."""
        last_span(builder, count, LANES * n, lambda at: group(at, n, None),
                  lambda: group(first, n, masks(n)))  # fmt: skip

    with builder.if_then(builder.icmp_signed(">", rest, ir.Constant(word, 0))):
        if vectors == 1:
            tail(1)
            return
        with builder.if_else(builder.icmp_signed(">", rest, ir.Constant(word, LANES))) as (
            more,
            one,
        ):
            with more:
                tail(vectors)
            with one:
                tail(1)


def _exp_ir(builder, x):
    """exp of the float32 vector ``x``, :func:`._exp_jit._exp`'s steps in the same order (so its
    values): clamped, the exponent rounded to the nearest integer, a polynomial of the rest,
    scaled by 2 ** (n - 1) * 2 made from its bits. (A float64 vector takes the same steps in
    float64, from the float32 constants: within 3e-7 of exp.)"""
    from . import _exp_jit as e

    vec = x.type
    real = vec.element
    count = vec.count

    def const(v):
        return splat(builder, ir.Constant(real, float(v)), vec)

    low, high = const(e._LOWEST), const(e._HIGHEST)
    x = builder.select(builder.fcmp_ordered(">", x, low), x, low)  # max(x, low): NaN -> low
    x = builder.select(builder.fcmp_ordered("<", x, high), x, high)
    floor = vector_op(builder, "floor", vec)
    n = builder.call(floor, [builder.fadd(builder.fmul(x, const(e._LOG2E)), const(0.5))])
    r = builder.fsub(builder.fsub(x, builder.fmul(n, const(e._LN2_HIGH))),
                     builder.fmul(n, const(e._LN2_LOW)))  # fmt: skip
    p = const(e._P[0])
    for coefficient in e._P[1:]:
        p = builder.fadd(builder.fmul(p, r), const(coefficient))
    p = builder.fadd(builder.fadd(builder.fmul(builder.fmul(p, r), r), r), const(1.0))
    i32 = ir.VectorType(ir.IntType(32), count)
    bits = builder.mul(
        builder.add(builder.fptosi(n, i32), splat(builder, ir.Constant(ir.IntType(32), 126), i32)),
        splat(builder, ir.Constant(ir.IntType(32), 8388608), i32),
    )
    scale = builder.bitcast(bits, ir.VectorType(ir.FloatType(), count))
    if not isinstance(real, ir.FloatType):
        scale = builder.fpext(scale, vec)
    return builder.fmul(builder.fmul(p, scale), const(2.0))


def _by_count(builder, count, most: int, body, name: str) -> None:
    """``body(n)`` for the run-time ``count`` (an int64 value, 1 to ``most``): one block of code
    per count, chosen by a switch (nothing for other counts)."""
    word = ir.IntType(64)
    merge = builder.append_basic_block(f"{name}.merge")
    switch = builder.switch(count, merge)
    for n in range(1, most + 1):
        block = builder.append_basic_block(f"{name}.{n}")
        switch.add_case(ir.Constant(word, n), block)
        builder.position_at_end(block)
        body(n)
        builder.branch(merge)
    builder.position_at_end(merge)


def _act_ir(builder, values, act, alpha, beta):
    """``values`` (vectors) through activation code ``act`` (a run-time int64: the table of
    :mod:`._elementwise_jit`, the same operations as its ``_act_value``: comparisons written so
    that NaN keeps the value, no fused multiply-adds), in one switch for all of them."""
    vec = values[0].type
    real = vec.element

    def const(v):
        return (
            splat(builder, ir.Constant(real, v), vec)
            if isinstance(v, float)
            else splat(builder, v, vec)
        )

    zero, one = const(0.0), const(1.0)

    def relu(v):
        return builder.fadd(builder.select(builder.fcmp_ordered("<", v, zero), zero, v), zero)

    def clip(v):
        lo, hi = const(alpha), const(beta)
        v = builder.select(builder.fcmp_ordered("<", v, lo), lo, v)
        return builder.select(builder.fcmp_ordered(">", v, hi), hi, v)

    def hard_sigmoid(v):
        t = builder.fadd(builder.fmul(v, const(alpha)), const(beta))
        t = builder.select(builder.fcmp_ordered("<", t, zero), zero, t)
        return builder.select(builder.fcmp_ordered(">", t, one), one, t)

    def leaky(v):
        scaled = builder.fmul(v, const(alpha))
        return builder.fadd(builder.select(builder.fcmp_ordered(">=", v, zero), v, scaled), zero)

    def hard_swish(v):
        # 1/6 and 1/2 rounded in the element type, as _act_value computes them
        sixth = builder.fdiv(one, builder.fadd(builder.fadd(builder.fadd(one, one),
                                                            builder.fadd(one, one)),
                                               builder.fadd(one, one)))  # fmt: skip
        half = builder.fdiv(one, builder.fadd(one, one))
        t = builder.fadd(builder.fmul(v, sixth), half)
        t = builder.select(builder.fcmp_ordered("<", t, zero), zero, t)
        t = builder.select(builder.fcmp_ordered(">", t, one), one, t)
        return builder.fmul(t, v)

    def quick_gelu(v):  # v / (1 + exp(-alpha * v)), as _exp_jit.logistic_cells computes it
        return builder.fdiv(v, builder.fadd(one, _exp_ir(builder, builder.fmul(neg_alpha, v))))

    def sigmoid(v):  # 1 / (1 + exp(-v)), NaN kept: _exp_jit.logistic_cells at alpha 1
        s = builder.fdiv(one, builder.fadd(one, _exp_ir(builder, builder.fmul(const(-1.0), v))))
        return builder.select(builder.fcmp_unordered("uno", v, v), v, s)

    neg_alpha = splat(builder, builder.fneg(alpha), vec)
    cases = {
        1: relu, 2: clip, 3: hard_sigmoid, 4: leaky, 5: hard_swish, 6: quick_gelu, 7: sigmoid
    }  # fmt: skip
    start = builder.block
    merge = builder.append_basic_block("act.merge")
    switch = builder.switch(act, merge)
    incoming = [(start, values)]
    for code, fn in cases.items():
        block = builder.append_basic_block(f"act.{code}")
        switch.add_case(ir.Constant(act.type, code), block)
        builder.position_at_end(block)
        incoming.append((builder.block, [fn(v) for v in values]))
        builder.branch(merge)
    builder.position_at_end(merge)
    out = []
    for k in range(len(values)):
        phi = builder.phi(vec)
        for block, vals in incoming:
            phi.add_incoming(vals[k], block)
        out.append(phi)
    return out


def _nan_max(builder, a, b):
    """np.maximum of two vectors: NaN from either side (as :func:`._pool_jit._max`):
    the max pools' vector code."""
    top = builder.select(builder.fcmp_unordered(">=", a, b), a, b)
    return builder.select(builder.fcmp_unordered("uno", b, b), b, top)


def _rows_codegen(kernel, quant: bool = False, maximum: bool = False):
    """The code of :func:`taps_rows` (``kernel`` None: any taps, each row reading its own
    vectors) or of :func:`taps_rows_3x3` / ``_5x5`` (``kernel`` (kh, kw): unit row stride and
    dilation, so output rows r and r + 1 read the same input rows one tap row apart: each input
    vector is loaded once for every output row it serves). ``quant``: the sums start at zero and
    are requantized to 8 bits on the way out (:func:`quant_rows`) instead of starting at the
    bias and going through an activation. ``maximum``: each window's maximum from the "bias"
    (-inf), as np.maximum (NaN from either side), the weights unused (:func:`max_rows`)."""

    def codegen(context, builder, sig, args):
        dst, dst_row, rows, src, src_row, offs, weights, count, room = args[:9]
        if quant:
            bias, mult, zero_y, lo, hi, like_y = args[9:15]
            real = bias.type
            out_t = like_y.type
        else:
            bias, act, alpha, beta = args[9:13]
            real = out_t = bias.type
        taps = args[-1] if kernel is None else None
        vec = ir.VectorType(real, LANES)
        word = ir.IntType(64)
        dst_p = builder.inttoptr(dst, out_t.as_pointer())
        src_p = builder.inttoptr(src, real.as_pointer())
        offs_p = builder.inttoptr(offs, word.as_pointer())
        w_p = builder.inttoptr(weights, real.as_pointer())

        def c(v):
            return ir.Constant(word, v)

        def vector_at(base, index):
            return builder.bitcast(builder.gep(base, [index]), vec.as_pointer())

        if kernel is not None:  # the weights and the columns' offsets, loaded once
            kh, kw = kernel
            w_s = [] if maximum else [splat(builder, builder.load(builder.gep(w_p, [c(t)])), vec)
                                      for t in range(kh * kw)]  # fmt: skip
            cols = [builder.load(builder.gep(offs_p, [c(j)])) for j in range(kw)]
        row_at = [builder.mul(c(k), src_row) for k in range(ROWS)]
        out_at = [builder.mul(c(k), dst_row) for k in range(ROWS)]
        start_v = ir.Constant(vec, None) if quant else splat(builder, bias, vec)

        def combine(acc, w, v):
            """One tap into a sum: ``acc + w * v`` (a multiply, then an add), or for
            ``maximum`` np.maximum's ``max(acc, v)`` (NaN from either side)."""
            if not maximum:
                return builder.fadd(acc, builder.fmul(w, v))
            return _nan_max(builder, acc, v)

        def sums(cell, vectors):
            """The ROWS x vectors sums from ``cell`` on."""
            lanes = [builder.add(cell, c(LANES * u)) for u in range(vectors)]
            if kernel is not None:
                acc = [[start_v] * vectors for _ in range(ROWS)]
                for s in range(ROWS + kh - 1):
                    for j in range(kw):
                        base = builder.add(builder.mul(c(s), src_row), cols[j])
                        for u in range(vectors):
                            v = builder.load(vector_at(src_p, builder.add(base, lanes[u])),
                                             align=1)  # fmt: skip
                            for k in range(max(0, s - kh + 1), min(ROWS, s + 1)):
                                w = w_s[(s - k) * kw + j] if w_s else None
                                acc[k][u] = combine(acc[k][u], w, v)
                return acc

            def step(t, acc):
                off = builder.load(builder.gep(offs_p, [t]))
                w = None if maximum else splat(builder, builder.load(builder.gep(w_p, [t])), vec)
                new = []
                for k in range(ROWS):
                    base = builder.add(off, row_at[k])
                    new.append([
                        combine(acc[k][u], w, builder.load(
                            vector_at(src_p, builder.add(base, lanes[u])), align=1))
                        for u in range(vectors)
                    ])  # fmt: skip
                return new

            return _tap_loop(builder, taps, [[start_v] * vectors for _ in range(ROWS)], step)

        def finish(values):
            if maximum:  # the pools have no activation (and no code to spend on one)
                return values
            if not quant:
                return _act_ir(builder, values, act, alpha, beta)
            return [_requant_ir(builder, v, bias, mult, zero_y, lo, hi) for v in values]

        def group(cell, vectors, masks):
            acc = sums(cell, vectors)
            flat = finish([v for row in acc for v in row])

            def put(k):
                for u in range(vectors):
                    at = builder.add(builder.add(out_at[k], cell), c(LANES * u))
                    store_within(builder, flat[k * vectors + u], dst_p, at,
                                None if masks is None else masks[u], room)  # fmt: skip

            put(0)
            for k in range(1, ROWS):  # rows past the last asked for are not written
                with builder.if_then(builder.icmp_signed("<", c(k), rows)):
                    put(k)

        _row_groups(builder, count, ROW_VECTORS, group)
        return context.get_dummy_value()

    return codegen


def _requant_ir(builder, v, bias, mult, zero, lo, hi):
    """``clip(rint((v + bias) * mult) + zero, lo, hi)`` of the float32 vector ``v`` as 8-bit
    integers (:func:`._ir.requantize8`): the float32 operations of
    :func:`._quant_jit.requantize3`, so its bytes."""
    vec = v.type
    v = builder.fmul(builder.fadd(v, splat(builder, bias, vec)), splat(builder, mult, vec))
    return requantize8(builder, v, zero, lo, hi)


def _rows_signature(*extra):
    i64 = types.int64

    def typer(like):
        return types.void(i64, i64, i64, i64, i64, i64, i64, i64, i64, like, i64, like, like,
                          *extra)  # fmt: skip

    return typer


def _quant_signature(like_y, *extra):
    i64, f32 = types.int64, types.float32
    return types.void(i64, i64, i64, i64, i64, i64, i64, i64, i64, f32, f32, f32, f32, f32,
                      like_y, *extra)  # fmt: skip


@intrinsic
def taps_rows(typingctx, dst, dst_row, rows, src, src_row, offs, weights, count, room, bias, act,
              alpha, beta, taps):  # fmt: skip
    """:data:`ROWS` output rows of a channel written whole: row k's cell q is ``act(bias + sum
    over t of weights[t] * src[k * src_row + offs[t] + q])`` at ``dst[k * dst_row + q]``, for q
    in ``range(count)`` and k in ``range(rows)`` (rows <= ROWS). The sums start at the bias and
    add the taps in order (a multiply, then an add), ROWS x ROW_VECTORS vectors in registers;
    the activation (a code of :mod:`._elementwise_jit`, with ``alpha`` and ``beta``) applied in
    registers. A row's last vector ends at the row's end (:func:`_row_groups`); on a row shorter
    than a vector it is stored whole where it ends within ``room`` cells of ``dst`` (the cells
    this call and the caller's later ones write in order: ``dst_row`` must equal ``count``
    where ``room`` exceeds it), else under a mask. No accumulator in memory, no pass to copy it
    out. ``src`` needs slack: ROWS rows and 32 cells past the last tap's run are read."""
    return _rows_signature(types.int64)(bias), _rows_codegen(None)


def _rows_fixed(kh, kw):
    def rows_kernel(typingctx, dst, dst_row, rows, src, src_row, offs, weights, count, room,
                    bias, act, alpha, beta):  # fmt: skip
        return _rows_signature()(bias), _rows_codegen((kh, kw))

    return intrinsic(rows_kernel)


#: :func:`taps_rows` for a 3 x 3 or 5 x 5 window read at unit row stride and dilation: tap (i,
#: j) of output row k reads ``src[(k + i) * src_row + offs[j] + q]`` (``offs`` holds the kw
#: columns' offsets; no ``taps`` argument), each input vector loaded once for the ROWS output
#: rows that read it
taps_rows_3x3 = _rows_fixed(3, 3)
taps_rows_5x5 = _rows_fixed(5, 5)


@intrinsic
def max_rows(typingctx, dst, dst_row, rows, src, src_row, offs, weights, count, room, bias, act,
             alpha, beta, taps):  # fmt: skip
    """:func:`taps_rows` taking each window's maximum from ``bias`` (-inf: a max pool's) as
    np.maximum does (NaN from either side); ``weights`` and the activation unused (the pools
    have none)."""
    return _rows_signature(types.int64)(bias), _rows_codegen(None, maximum=True)


def _float_vectors(builder, like, *addresses) -> tuple:
    """(the vector type of ``like``'s float type: 16 float32 or 8 float64, its lanes, each of
    ``addresses`` as a pointer to that float type)."""
    elem = like.type
    lanes = 16 if isinstance(elem, ir.FloatType) else 8
    return (
        ir.VectorType(elem, lanes),
        lanes,
        *(builder.inttoptr(a, elem.as_pointer()) for a in addresses),
    )


def _pair_max_codegen(taps: int):
    """The code of :func:`pair_max2_cells` (``taps`` 2) or :func:`pair_max3_cells` (3)."""

    def codegen(context, builder, sig, args):
        dst, src, count, like = args
        vec, lanes, src_p, dst_p = _float_vectors(builder, like, src, dst)
        word = ir.IntType(64)
        evens = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [2 * i for i in range(lanes)])
        odds = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [2 * i + 1 for i in range(lanes)])

        def cells(at):
            """The even and odd cells of the 2 * lanes cells from ``at``."""
            lo = load(builder, src_p, at, vec, None)
            hi = load(builder, src_p, builder.add(at, ir.Constant(word, lanes)), vec, None)
            return builder.shuffle_vector(lo, hi, evens), builder.shuffle_vector(lo, hi, odds)

        def block(first, rest):
            at = builder.mul(first, ir.Constant(word, 2))
            even, odd = cells(at)
            m = _nan_max(builder, even, odd)
            if taps == 3:  # the next even cells: the cells from 2 on
                m = _nan_max(builder, m, cells(builder.add(at, ir.Constant(word, 2)))[0])
            store(
                builder, m, dst_p, first, None if rest is None else lane_mask(builder, rest, lanes)
            )

        chunks(builder, count, block, step=lanes, shift=True)
        return context.get_dummy_value()

    return codegen


@intrinsic
def pair_max2_cells(typingctx, dst, src, count, like):
    """``dst[j] = max(src[2j], src[2j + 1])`` (np.maximum's, NaN from either side) at addresses
    ``dst`` and ``src`` of ``like``'s float type for ``j < count``, in vectors of 16 float32 or
    8 float64 (the last partial one a whole vector ending at ``count``, or under a mask where
    ``count`` is below a vector): the columns of a max pool's windows of 2 at stride 2, one row.
    It reads ``src`` up to cell ``2 * max(count, lanes) + 1`` (the caller's buffer has
    :data:`._pool_jit.PAIR_SLACK` cells past ``2 * count``)."""
    i64 = types.int64
    return types.void(i64, i64, i64, like), _pair_max_codegen(2)


@intrinsic
def pair_max3_cells(typingctx, dst, src, count, like):
    """:func:`pair_max2_cells` with ``src[2j + 2]`` too: windows of 3 at stride 2. Per output
    cell the three strided loads of a scalar loop, which LLVM left scalar (a 64 x 111 x 111 max
    pool spent most of its time there), become a vector's four loads and three shuffles."""
    i64 = types.int64
    return types.void(i64, i64, i64, like), _pair_max_codegen(3)


def _rows_max_codegen(rows: int):
    """The code of :func:`rows2_max_cells` (``rows`` 2) or :func:`rows3_max_cells` (3)."""

    def codegen(context, builder, sig, args):
        dst, src, count, gap, like = args
        vec, lanes, src_p, dst_p = _float_vectors(builder, like, src, dst)

        def block(first, rest):
            mask = None if rest is None else lane_mask(builder, rest, lanes)
            m = load(builder, src_p, first, vec, mask)
            at = first
            for _ in range(1, rows):  # in row order, as _pool_jit._window_run
                at = builder.add(at, gap)
                m = _nan_max(builder, m, load(builder, src_p, at, vec, mask))
            store(builder, m, dst_p, first, mask)

        chunks(builder, count, block, step=lanes, shift=True)
        return context.get_dummy_value()

    return codegen


@intrinsic
def rows2_max_cells(typingctx, dst, src, count, gap, like):
    """``dst[i] = max(src[i], src[i + gap])`` (np.maximum's, NaN from either side) at addresses
    ``dst`` and ``src`` of ``like``'s float type for ``i < count``, in vectors of 16 float32 or
    8 float64 (the last partial one a whole vector ending at ``count``, or under a mask where
    ``count`` is below a vector: it reads no cell past a row's): the maxima down a max pool's
    window of two rows, one row of them."""
    i64 = types.int64
    return types.void(i64, i64, i64, i64, like), _rows_max_codegen(2)


@intrinsic
def rows3_max_cells(typingctx, dst, src, count, gap, like):
    """:func:`rows2_max_cells` over three rows (``src[i + 2 * gap]`` too). LLVM's vector loop of
    the same in numba ran a row's last cells one at a time (15 of a row of 111)."""
    i64 = types.int64
    return types.void(i64, i64, i64, i64, like), _rows_max_codegen(3)


def _max_fixed(kh, kw):
    def rows_kernel(typingctx, dst, dst_row, rows, src, src_row, offs, weights, count, room,
                    bias, act, alpha, beta):  # fmt: skip
        return _rows_signature()(bias), _rows_codegen((kh, kw), maximum=True)

    return intrinsic(rows_kernel)


#: :func:`max_rows` with :func:`taps_rows_3x3`'s and ``_5x5``'s shared input rows (max pools
#: at unit stride: Inception's 3 x 3, YOLO's SPPF 5 x 5)
max_rows_3x3 = _max_fixed(3, 3)
max_rows_5x5 = _max_fixed(5, 5)


@intrinsic
def quant_rows(typingctx, dst, dst_row, rows, src, src_row, offs, weights, count, room, bias,
               mult, zero, lo, hi, like_y, taps):  # fmt: skip
    """:func:`taps_rows` for a depthwise QLinearConv: float32 sums of centred 8-bit values from
    zero, each output ``clip(rint((sum + bias) * mult) + zero, lo, hi)`` (the operations of
    :func:`._quant_jit.requantize3`, so the same bytes) stored as 8-bit integers of ``like_y``'s
    type."""
    return _quant_signature(like_y, types.int64), _rows_codegen(None, quant=True)


def _quant_fixed(kh, kw):
    def rows_kernel(typingctx, dst, dst_row, rows, src, src_row, offs, weights, count, room, bias,
                    mult, zero, lo, hi, like_y):  # fmt: skip
        return _quant_signature(like_y), _rows_codegen((kh, kw), quant=True)

    return intrinsic(rows_kernel)


#: :func:`quant_rows` with :func:`taps_rows_3x3`'s and ``_5x5``'s shared input rows
quant_rows_3x3 = _quant_fixed(3, 3)
quant_rows_5x5 = _quant_fixed(5, 5)


def _pointers(builder, real, dst, src, offs, weights, bias) -> tuple:
    """A dense or channels-last kernel's int64 addresses as typed pointers: ``dst``, ``src``,
    ``weights`` and ``bias`` to the element type ``real``, ``offs`` to int64."""
    word = ir.IntType(64)
    return (
        builder.inttoptr(dst, real.as_pointer()),
        builder.inttoptr(src, real.as_pointer()),
        builder.inttoptr(offs, word.as_pointer()),
        builder.inttoptr(weights, real.as_pointer()),
        builder.inttoptr(bias, real.as_pointer()),
    )


def _block_rows_codegen(context, builder, sig, args):
    """The code of :func:`block_rows`."""
    (dst, plane, dst_row, rows, src, src_row, offs, weights, bias, k, count, room, act, alpha,
     beta, taps, like) = args  # fmt: skip
    real = like.type
    vec = ir.VectorType(real, LANES)
    word = ir.IntType(64)
    dst_p, src_p, offs_p, w_p, b_p = _pointers(builder, real, dst, src, offs, weights, bias)
    fma = vector_op(builder, "fma", vec, 3)

    def c(v):
        return ir.Constant(word, v)

    def vector_at(base, index):
        return builder.bitcast(builder.gep(base, [index]), vec.as_pointer())

    starts = [splat(builder, builder.load(builder.gep(b_p, [c(o)])), vec) for o in range(OUTS)]
    planes = [builder.mul(c(o), plane) for o in range(OUTS)]

    def group(row_src, row_dst, cell, vectors, masks):
        lanes = [builder.add(cell, c(LANES * u)) for u in range(vectors)]

        def step(t, acc):
            base = builder.add(row_src, builder.load(builder.gep(offs_p, [t])))
            sv = [builder.load(vector_at(src_p, builder.add(base, q)), align=1) for q in lanes]
            w_row = builder.mul(t, c(OUTS))
            new = []
            for o in range(OUTS):
                at = builder.add(w_row, c(o))
                ws = splat(builder, builder.load(builder.gep(w_p, [at])), vec)
                new.append([builder.call(fma, [ws, sv[u], acc[o][u]]) for u in range(vectors)])
            return new

        new = _tap_loop(builder, taps, [[starts[o]] * vectors for o in range(OUTS)], step)
        flat = _act_ir(builder, [v for row in new for v in row], act, alpha, beta)

        def put(o):
            for u in range(vectors):
                at = builder.add(row_dst, lanes[u])
                store_within(builder, flat[o * vectors + u], builder.gep(dst_p, [planes[o]]), at,
                            None if masks is None else masks[u], room)  # fmt: skip

        put(0)
        for o in range(1, OUTS):  # channels past the block's last are not written
            with builder.if_then(builder.icmp_signed("<", c(o), k)):
                put(o)

    _, rloop, rdone, r = loop_start(builder, rows, "block.rows")
    row_src = builder.mul(r, src_row)
    row_dst = builder.mul(r, dst_row)
    _row_groups(
        builder, count, BLOCK_VECTORS,
        lambda cell, vectors, masks: group(row_src, row_dst, cell, vectors, masks),
    )  # fmt: skip
    loop_end(builder, r, rows, rloop, rdone)
    return context.get_dummy_value()


@intrinsic
def block_rows(typingctx, dst, plane, dst_row, rows, src, src_row, offs, weights, bias, k, count,
               room, act, alpha, beta, taps, like):  # fmt: skip
    """``rows`` whole output rows of :data:`OUTS` output channels of a dense convolution, written
    from the registers: channel o's row r cell q at ``dst[o * plane + r * dst_row + q]`` is
    ``act(bias[o] + sum over t of weights[t * OUTS + o] * src[r * src_row + offs[t] + q])``
    (fused multiply-adds, the taps in order, OUTS x BLOCK_VECTORS vectors in registers, each
    input vector loaded once for the OUTS channels), for q in ``range(count)``; channels from
    ``k`` on are not written (a last partial block: their weights and bias are zeros). The
    activation (a code of :mod:`._elementwise_jit`) in registers; a row's last vector shifted to
    end at the row's end, or on short rows whole where it ends within ``room`` cells of the
    plane's first row here (the cells written in order by this call and the caller's next
    ones), else under a mask. Every argument but ``act``/``alpha``/``beta`` (``like``'s type)
    and ``like`` is an int64 address or count."""
    i64 = types.int64
    sig = types.void(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, like, like,
                     i64, like)  # fmt: skip
    return sig, _block_rows_codegen


def _nhwc_cells_codegen(context, builder, sig, args):
    """The code of :func:`nhwc_cells`: one loop over the cells per count of vectors (1 to
    NHWC_VECTORS), chosen once per call."""
    (dst, dst_step, count, src, src_step, offs, taps, weights, w_row_step, bias, vectors, act,
     alpha, beta, like) = args  # fmt: skip
    real = like.type
    vec = ir.VectorType(real, LANES)
    word = ir.IntType(64)
    dst_p, src_p, offs_p, w_p, b_p = _pointers(builder, real, dst, src, offs, weights, bias)

    def cells(n_vectors):
        parts = [ir.Constant(word, LANES * v) for v in range(n_vectors)]
        starts = [load(builder, b_p, p, vec, None) for p in parts]
        _, loop, done, k = loop_start(builder, count, "nhwc.cells")
        cell_src = builder.mul(k, src_step)

        def step(t, acc):
            at = builder.add(cell_src, builder.load(builder.gep(offs_p, [t])))
            w_row = builder.mul(t, w_row_step)
            new = []
            for p, a in zip(parts, acc[0], strict=True):
                x = load(builder, src_p, builder.add(at, p), vec, None)
                w = load(builder, w_p, builder.add(w_row, p), vec, None)
                new.append(builder.fadd(a, builder.fmul(w, x)))
            return [new]

        sums = _tap_loop(builder, taps, [starts], step)[0]
        out = _act_ir(builder, sums, act, alpha, beta)
        cell_dst = builder.mul(k, dst_step)
        for p, v in zip(parts, out, strict=True):
            store(builder, v, dst_p, builder.add(cell_dst, p), None)
        loop_end(builder, k, count, loop, done)

    _by_count(builder, vectors, NHWC_VECTORS, cells, "nhwc")
    return context.get_dummy_value()


@intrinsic
def nhwc_cells(typingctx, dst, dst_step, count, src, src_step, offs, taps, weights, w_row_step,
               bias, vectors, act, alpha, beta, like):  # fmt: skip
    """``count`` output cells of a depthwise layer channels last, ``vectors`` (1 to
    :data:`NHWC_VECTORS`) vectors of channels each, summed in registers across the taps: cell
    k's channels at ``dst[k * dst_step:]`` are ``act(bias + sum over t of weights[t *
    w_row_step + c] * src[k * src_step + offs[t] + c])`` for the LANES * vectors channels c (a
    multiply, then an add, the taps in order, as :func:`taps_rows`). ``src`` is a zero-padded
    channels-last plane, so every tap is inside it. Every argument but ``act``/``alpha``/
    ``beta`` (``like``'s type) and ``like`` is an int64 address or count (counts in
    elements)."""
    i64 = types.int64
    sig = types.void(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, like, like, like)
    return sig, _nhwc_cells_codegen


def _vector_parts(builder, cells, n_vectors: int, masked: bool) -> tuple[list, list]:
    """The offsets of a tile's ``n_vectors`` vectors of LANES cells and, where ``masked``, each
    one's mask of the lanes below ``cells`` (an int64 value); None masks: whole vectors."""
    word = ir.IntType(64)
    parts = [ir.Constant(word, LANES * u) for u in range(n_vectors)]
    if not masked:
        return parts, [None] * n_vectors
    lanes = ir.Constant(ir.VectorType(word, LANES), list(range(LANES)))
    return parts, [
        builder.icmp_signed("<", lanes, splat(builder, builder.sub(cells, p), lanes.type))
        for p in parts
    ]


def _by_vectors(builder, cells, most: int, tile, name: str) -> None:
    """``tile(most, False)`` where ``cells`` (an int64 value) fill ``most`` vectors, else
    ``tile(n, True)`` for the n vectors they need (one block of code per n)."""
    word = ir.IntType(64)
    full = ir.Constant(word, LANES * most)
    with builder.if_else(builder.icmp_signed(">=", cells, full)) as (whole, part):
        with whole:
            tile(most, False)
        with part:
            needed = builder.sdiv(builder.add(cells, ir.Constant(word, LANES - 1)),
                                  ir.Constant(word, LANES))  # fmt: skip
            _by_count(builder, needed, most, lambda n: tile(n, True), name)


def _pointwise_codegen(context, builder, sig, args):
    """The code of :func:`pointwise_tile`: one tile per count of vectors (1 to PW_VECTORS, the
    whole tile without masks), chosen once per call."""
    (dst, dst_row, src, src_row, weights, w_row, bias, k, rows, cells, resid, act, alpha, beta,
     like) = args  # fmt: skip
    real = like.type
    vec = ir.VectorType(real, LANES)
    word = ir.IntType(64)
    dst_p, src_p, w_p, b_p, z_p = (
        builder.inttoptr(a, real.as_pointer()) for a in (dst, src, weights, bias, resid)
    )
    fma = vector_op(builder, "fma", vec, 3)

    def c(v):
        return ir.Constant(word, v)

    # channel o's weights and bias, channels past ``rows`` reading the first one's (not written)
    owns = [
        builder.select(builder.icmp_signed("<", c(o), rows), c(o), c(0)) for o in range(PW_ROWS)
    ]
    w_rows = [builder.gep(w_p, [builder.mul(o, w_row)]) for o in owns]
    biases = [builder.load(builder.gep(b_p, [o])) for o in owns]

    def tile(n_vectors, masked):
        parts, masks = _vector_parts(builder, cells, n_vectors, masked)
        starts = [[splat(builder, b, vec)] * n_vectors for b in biases]

        def step(t, acc):
            row = builder.mul(t, src_row)
            xv = [load(builder, src_p, builder.add(row, p), vec, m)
                  for p, m in zip(parts, masks, strict=True)]  # fmt: skip
            new = []
            for o in range(PW_ROWS):
                ws = splat(builder, builder.load(builder.gep(w_rows[o], [t])), vec)
                new.append([builder.call(fma, [ws, xv[u], acc[o][u]]) for u in range(n_vectors)])
            return new

        sums = _tap_loop(builder, k, starts, step)
        flat = [v for row in sums for v in row]
        # the residual (FusedConv's Add), before the activation, where one is given
        before = builder.block
        with builder.if_then(builder.icmp_signed("!=", resid, c(0))):
            added = []
            for o in range(PW_ROWS):
                for u in range(n_vectors):
                    at = builder.add(builder.mul(c(o), dst_row), parts[u])
                    z = load(builder, z_p, at, vec, masks[u])
                    added.append(builder.fadd(flat[o * n_vectors + u], z))
            with_z = builder.block
        merged = []
        for v, a in zip(flat, added, strict=True):
            phi = builder.phi(vec)
            phi.add_incoming(v, before)
            phi.add_incoming(a, with_z)
            merged.append(phi)
        out = _act_ir(builder, merged, act, alpha, beta)

        def put(o):
            for u in range(n_vectors):
                at = builder.add(builder.mul(c(o), dst_row), parts[u])
                store(builder, out[o * n_vectors + u], dst_p, at, masks[u])

        put(0)
        for o in range(1, PW_ROWS):  # rows past the tile's last are not written
            with builder.if_then(builder.icmp_signed("<", c(o), rows)):
                put(o)

    _by_vectors(builder, cells, PW_VECTORS, tile, "pw")
    return context.get_dummy_value()


@intrinsic
def pointwise_tile(typingctx, dst, dst_row, src, src_row, weights, w_row, bias, k, rows, cells,
                   resid, act, alpha, beta, like):  # fmt: skip
    """A tile of a 1x1 convolution's output, :data:`PW_ROWS` output channels by ``cells`` (at
    most LANES * PW_VECTORS) cells, summed in registers and written once: channel o's cell q
    at ``dst[o * dst_row + q]`` is ``act(bias[o] + sum over t < k of weights[o * w_row + t]
    * src[t * src_row + q] (+ resid[o * dst_row + q]))``, fused multiply-adds in channel order
    (a GEMM's), ``resid`` an address or 0 (none): the weights as they are, (M, K), each
    channel's broadcast from its own row. A partial tile's vectors read and write under masks;
    channels from ``rows`` on are neither read nor written. Every argument but ``act``/
    ``alpha``/``beta`` (``like``'s type) and ``like`` is an int64 address or count (in
    elements)."""
    i64 = types.int64
    sig = types.void(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, like, like, like)
    return sig, _pointwise_codegen


def _row_codegen(context, builder, sig, args):
    """The code of :func:`row_tile`: one tile per count of vectors (1 to GEMV_VECTORS, the
    whole tile without masks), chosen once per call."""
    dst, src, src_row, weights, k, cells, resid, like = args
    real = like.type
    vec = ir.VectorType(real, LANES)
    dst_p, src_p, w_p, z_p = (
        builder.inttoptr(a, real.as_pointer()) for a in (dst, src, weights, resid)
    )
    fma = vector_op(builder, "fma", vec, 3)
    zero = splat(builder, ir.Constant(real, 0.0), vec)

    def tile(n_vectors, masked):
        parts, masks = _vector_parts(builder, cells, n_vectors, masked)

        def step(t, acc):
            row = builder.mul(t, src_row)
            ws = splat(builder, builder.load(builder.gep(w_p, [t])), vec)
            return [
                [builder.call(fma, [ws, load(builder, src_p, builder.add(row, p), vec, m), a])
                 for p, m, a in zip(parts, masks, acc[0], strict=True)]
            ]  # fmt: skip

        sums = _tap_loop(builder, k, [[zero] * n_vectors], step)[0]
        for p, m, v in zip(parts, masks, sums, strict=True):
            store(builder, builder.fadd(v, load(builder, z_p, p, vec, m)), dst_p, p, m)

    _by_vectors(builder, cells, GEMV_VECTORS, tile, "row")
    return context.get_dummy_value()


@intrinsic
def row_tile(typingctx, dst, src, src_row, weights, k, cells, resid, like):
    """One row of a product, ``cells`` (at most LANES * GEMV_VECTORS) columns summed in
    registers and written once: ``dst[q] = resid[q] + sum over t < k of weights[t] * src[t *
    src_row + q]``, fused multiply-adds in t's order (a GEMV's, row by row of ``src``). A
    partial tile's vectors read and write under masks. Every argument but ``like`` (the
    element type's witness) is an int64 address or count (in elements)."""
    i64 = types.int64
    return types.void(i64, i64, i64, i64, i64, i64, i64, like), _row_codegen


def _cl_tile_codegen(context, builder, sig, args, lanes: int, vectors: int, most: int):
    """The code of :func:`cl_tile` (``lanes`` = LANES, :data:`CL_VECTORS`, ``most`` =
    :data:`CL_CELLS`) or :func:`cl_tile_narrow` (its constants): one tile per count of cells
    (1 to ``most``), chosen once per call."""
    dst, src, table, bases, weights, bias, k, cells, act, alpha, beta, like = args
    real = like.type
    vec = ir.VectorType(real, lanes)
    word = ir.IntType(64)
    dst_p, src_p, table_p, w_p, b_p = _pointers(builder, real, dst, src, table, weights, bias)
    bases_p = builder.inttoptr(bases, word.as_pointer())
    fma = vector_op(builder, "fma", vec, 3)
    width = lanes * vectors
    parts = [ir.Constant(word, lanes * u) for u in range(vectors)]
    biases = [load(builder, b_p, p, vec, None) for p in parts]

    def tile(n_cells):
        # each cell's first input element: its row's pointer, moved by each row's offset
        starts = [
            builder.gep(src_p, [builder.load(builder.gep(bases_p, [ir.Constant(word, r)]))])
            for r in range(n_cells)
        ]

        def step(t, acc):
            w_at = builder.mul(t, ir.Constant(word, width))
            wv = [load(builder, w_p, builder.add(w_at, p), vec, None) for p in parts]
            offset = builder.load(builder.gep(table_p, [t]))
            new = []
            for r in range(n_cells):
                xs = splat(builder, builder.load(builder.gep(starts[r], [offset])), vec)
                new.append([builder.call(fma, [w, xs, a]) for w, a in zip(wv, acc[r], strict=True)])
            return new

        sums = _tap_loop(builder, k, [list(biases) for _ in range(n_cells)], step)
        out = _act_ir(builder, [v for row in sums for v in row], act, alpha, beta)
        for r in range(n_cells):
            for u, p in enumerate(parts):
                at = builder.add(ir.Constant(word, r * width), p)
                store(builder, out[r * vectors + u], dst_p, at, None)

    _by_count(builder, cells, most, tile, "cl")
    return context.get_dummy_value()


@intrinsic
def cl_tile(typingctx, dst, src, table, bases, weights, bias, k, cells, act, alpha, beta, like):
    """A tile of a dense convolution's output channels last: ``cells`` (1 to :data:`CL_CELLS`)
    output cells by LANES * :data:`CL_VECTORS` output channels, summed in registers as an
    implicit GEMM: cell r's channels at ``dst[r * LANES * CL_VECTORS:]`` are ``act(bias[o] +
    sum over t < k of weights[t * LANES * CL_VECTORS + o] * src[bases[r] + table[t]])``,
    fused multiply-adds in the order of t. ``table`` (k int64 offsets) places each (input
    channel, tap) of the weights' rows in the input, ``bases`` (int64) each cell's window in
    it: any window, stride and dilation over a zero-padded input (a 1x1 layer's input as it
    is), no column matrix. A vector of weights per row, each input value broadcast. Every
    argument but ``act``/``alpha``/``beta`` (``like``'s type) and ``like`` is an int64 address
    or count (in elements)."""
    i64 = types.int64
    sig = types.void(i64, i64, i64, i64, i64, i64, i64, i64, i64, like, like, like)
    return sig, functools.partial(_cl_tile_codegen, lanes=LANES, vectors=CL_VECTORS, most=CL_CELLS)


@intrinsic
def cl_tile_narrow(
    typingctx, dst, src, table, bases, weights, bias, k, cells, act, alpha, beta, like
):
    """:func:`cl_tile` for AVX2's blocks of :data:`CL_NARROW` output channels: ``cells`` (1 to
    :data:`CL_NARROW_CELLS`) cells by :data:`CL_NARROW_VECTORS` vectors of
    :data:`CL_NARROW_LANES`, cell r's channels at ``dst[r * CL_NARROW:]``."""
    i64 = types.int64
    sig = types.void(i64, i64, i64, i64, i64, i64, i64, i64, i64, like, like, like)
    return sig, functools.partial(
        _cl_tile_codegen, lanes=CL_NARROW_LANES, vectors=CL_NARROW_VECTORS, most=CL_NARROW_CELLS
    )


def _wino_in_codegen(context, builder, sig, args):
    """The code of :func:`wino_in_row`: chunks of LANES tiles, the last one under a mask."""
    dst, dst_row, src, offs, count, like = args
    real = like.type
    vec = ir.VectorType(real, LANES)
    word = ir.IntType(64)
    dst_p, src_p = (builder.inttoptr(a, real.as_pointer()) for a in (dst, src))
    offs_p = builder.inttoptr(offs, word.as_pointer())
    at = [builder.load(builder.gep(offs_p, [ir.Constant(word, t)])) for t in range(16)]
    rows = [builder.mul(ir.Constant(word, t), dst_row) for t in range(16)]

    def combine(d0, d1, d2, d3):  # a column (row) of B^T d, conv._conv_winograd's order
        return (builder.fsub(d0, d2), builder.fadd(d1, d2), builder.fsub(d2, d1),
                builder.fsub(d1, d3))  # fmt: skip

    def body(first, rest):
        mask = None if rest is None else lane_mask(builder, rest, LANES)
        d = [load(builder, src_p, builder.add(at[t], first), vec, mask) for t in range(16)]
        cols = [combine(d[i], d[4 + i], d[8 + i], d[12 + i]) for i in range(4)]
        for k in range(4):
            out = combine(cols[0][k], cols[1][k], cols[2][k], cols[3][k])
            for j in range(4):
                store(builder, out[j], dst_p, builder.add(rows[4 * k + j], first), mask)

    chunks(builder, count, body, LANES)
    return context.get_dummy_value()


@intrinsic
def wino_in_row(typingctx, dst, dst_row, src, offs, count, like):
    """Winograd F(2x2, 3x3)'s input transform B^T d B of ``count`` tiles of one channel, in
    vectors of LANES tiles: window cell t (row-major in the 4 x 4 window) of tile q at
    ``src[offs[t] + q]`` (``offs`` the address of 16 int64 offsets), the 16 transformed values
    at ``dst[t * dst_row + q]``. The additions and their order are conv._conv_winograd's numpy
    passes'. Every argument but ``like`` (the element type's witness) is an int64 address or
    count (in elements)."""
    i64 = types.int64
    return types.void(i64, i64, i64, i64, i64, like), _wino_in_codegen


def _wino_out_codegen(context, builder, sig, args):
    """The code of :func:`wino_out_row`."""
    dst, dst_row, two, src, src_row, has_bias, bias, cells, like = args
    real = like.type
    vec = ir.VectorType(real, LANES)
    word = ir.IntType(64)
    dst_p, src_p = (builder.inttoptr(a, real.as_pointer()) for a in (dst, src))
    rows = [builder.mul(ir.Constant(word, t), src_row) for t in range(16)]
    b = splat(builder, bias, vec)
    with_bias = builder.icmp_signed("!=", has_bias, ir.Constant(word, 0))
    second = builder.icmp_signed("!=", two, ir.Constant(word, 0))
    low = ir.Constant(ir.VectorType(ir.IntType(32), LANES),
                      [v for i in range(LANES // 2) for v in (i, LANES + i)])  # fmt: skip
    high = ir.Constant(ir.VectorType(ir.IntType(32), LANES),
                       [v for i in range(LANES // 2, LANES) for v in (i, LANES + i)])  # fmt: skip

    def body(first, tiles, written):
        """Tiles ``first`` on (``tiles`` of them under a mask, or LANES), ``written`` output
        cells of each row under a mask (or all 2 * LANES)."""
        mask = None if tiles is None else lane_mask(builder, tiles, LANES)
        p = [load(builder, src_p, builder.add(rows[t], first), vec, mask) for t in range(16)]
        p5 = builder.select(with_bias, builder.fadd(p[5], b), p[5])
        u = [builder.fadd(builder.fadd(p[i], p5 if i == 1 else p[4 + i]), p[8 + i])
             for i in range(4)]  # fmt: skip
        w = [builder.fsub(builder.fsub(p5 if i == 1 else p[4 + i], p[8 + i]), p[12 + i])
             for i in range(4)]  # fmt: skip
        at = builder.add(first, first)
        if written is None:
            masks = (None, None)
        else:
            masks = (
                lane_mask(builder, written, LANES),
                lane_mask(builder, builder.sub(written, ir.Constant(word, LANES)), LANES),
            )

        def put(a, row_at):
            even = builder.fadd(builder.fadd(a[0], a[1]), a[2])
            odd = builder.fsub(builder.fsub(a[1], a[2]), a[3])
            for part, shuffle, m in zip((0, LANES), (low, high), masks, strict=True):
                store(builder, builder.shuffle_vector(even, odd, shuffle), dst_p,
                      builder.add(row_at, ir.Constant(word, part)), m)  # fmt: skip

        put(u, at)
        with builder.if_then(second):
            put(w, builder.add(at, dst_row))

    whole = builder.sdiv(cells, ir.Constant(word, 2))  # tiles whose two columns are inside
    chunks(builder, whole, lambda first, rest: body(
        first, rest, None if rest is None else builder.add(rest, rest)), LANES)  # fmt: skip
    odd = builder.srem(cells, ir.Constant(word, 2))
    with builder.if_then(builder.icmp_signed("!=", odd, ir.Constant(word, 0))):
        one = ir.Constant(word, 1)
        body(whole, one, one)  # a last tile past an odd edge: its first column only
    return context.get_dummy_value()


@intrinsic
def wino_out_row(typingctx, dst, dst_row, two, src, src_row, has_bias, bias, cells, like):
    """Winograd F(2x2, 3x3)'s output transform A^T m A of one row of tiles of one output
    channel, in vectors of LANES tiles: tile q's 16 products at ``src[t * src_row + q]``, its
    2 x 2 outputs at ``dst[2q + j]`` and (where ``two``) ``dst[dst_row + 2q + j]``, ``cells``
    output columns (odd: the last tile's second column is not written); ``bias`` added to
    product 5 where ``has_bias`` (it reaches each of a tile's four outputs once). The additions
    and their order are conv._conv_winograd's numpy passes'. Every argument but ``bias`` and
    ``like`` (``like``'s type) is an int64 address or count (in elements)."""
    i64 = types.int64
    sig = types.void(i64, i64, i64, i64, i64, i64, like, i64, like)
    return sig, _wino_out_codegen
