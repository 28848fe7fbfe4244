"""The tiles of :mod:`._vnni`'s products as LLVM vector code (llvmlite intrinsics on AVX-512
VNNI's ``vpdpbusd``, or on AVX2's ``vpmaddwd``). This module imports numba and llvmlite;
:mod:`._vnni_jit`'s kernels reach it through :class:`ort_cpu._jit.LazyIntrinsic` when they
compile."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .._aot import has_feature
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
    store_within,
)
from ._vnni_jit import TILE_M, TILE_P

#: whether the tiles sum with AVX-512 VNNI's ``vpdpbusd`` (else AVX2's ``vpmaddwd``), as numba
#: compiles for this CPU (the kernels' cache is keyed by the same features)
VNNI = has_feature("avx512vnni")
#: the rows of an AVX2 tile summed in one pass over the steps, 16 columns at a time: their 8
#: vectors of sums, the columns' 4 (widened) and the row's 2 fill 14 of AVX2's 16 registers
AVX2_ROWS = 4


def _summed(builder, k4, count: int, name: str, body) -> list:
    """``count`` <16 x i32> sums over ``k4`` steps from zero, in one loop: ``body(k, sums)``
    emits step ``k`` (the builder in the loop's body) and returns the next sums. Returns their
    values after the loop (zeros where ``k4`` is not positive)."""
    vec = ir.VectorType(ir.IntType(32), 16)
    zero = ir.Constant(vec, None)
    entry, loop, done, k = loop_start(builder, k4, name)
    sums = []
    for _ in range(count):
        a = builder.phi(vec)
        a.add_incoming(zero, entry)
        sums.append(a)
    new = body(k, sums)
    body_end = loop_end(builder, k, k4, loop, done)
    for a, v in zip(sums, new, strict=True):
        a.add_incoming(v, body_end)
    finals = []
    for v in new:  # every phi first: a block's phis come before its other instructions
        final = builder.phi(vec)
        final.add_incoming(zero, entry)
        final.add_incoming(v, body_end)
        finals.append(final)
    return finals


def _madd(builder):
    """AVX2's ``vpmaddwd``: two <16 x i16> into <8 x i32>, adjacent products summed."""
    h16, w8 = ir.VectorType(ir.IntType(16), 16), ir.VectorType(ir.IntType(32), 8)
    return builder.module.declare_intrinsic(
        "llvm.x86.avx2.pmadd.wd", fnty=ir.FunctionType(w8, [h16, h16])
    )


def _row_address(builder, xp, ldx, k, table):
    """The address of step ``k``'s row of the columns: ``xp + k * ldx`` words, or with
    ``table`` (the int64 address of the rows' offsets in words) ``xp + table[k]``."""
    if table is None:
        return builder.gep(xp, [builder.mul(k, ldx)])
    table_p = builder.inttoptr(table, ir.IntType(64).as_pointer())
    return builder.gep(xp, [builder.load(builder.gep(table_p, [k]))])


def _vnni_sums(builder, x, ldx, w, ldw, k4, vectors_signed: bool, rows: int, table=None):
    """The 2 * ``rows`` vectors of a (``rows``, 32) int32 tile of sums (row mm's two halves at
    2 * mm and 2 * mm + 1) over ``k4`` steps of words of four bytes, on AVX-512 VNNI: the 32
    columns' words at ``x`` (row stride ``ldx`` words, or with ``table`` the int64 address of
    each row's offset in words from ``x``) and the rows' words at ``w`` (row stride ``ldw``
    words) broadcast, one ``vpdpbusd`` per vector and step, in one loop over the steps;
    ``vectors_signed``: the signed bytes are in the vectors (the columns). AVX2's tiles are
    :func:`_pair_tile_sums`'."""
    word, vec = ir.IntType(32), ir.VectorType(ir.IntType(32), 16)
    i64t = ir.IntType(64)
    fnty = ir.FunctionType(vec, [vec, vec, vec])
    dp = builder.module.declare_intrinsic("llvm.x86.avx512.vpdpbusd.512", fnty=fnty)
    xp = builder.inttoptr(x, word.as_pointer())
    wp = builder.inttoptr(w, word.as_pointer())

    def body(k, accs):
        row = _row_address(builder, xp, ldx, k, table)
        xv = [
            builder.load(builder.bitcast(builder.gep(row, [ir.Constant(i64t, 16 * h)]),
                                         vec.as_pointer()), align=4)
            for h in range(2)
        ]  # fmt: skip
        new = []
        for mm in range(rows):
            wv = builder.load(
                builder.gep(wp, [builder.add(builder.mul(ir.Constant(i64t, mm), ldw), k)]),
                align=4,
            )
            wb = splat(builder, wv, vec)
            for h in range(2):  # the unsigned bytes first
                pair = (wb, xv[h]) if vectors_signed else (xv[h], wb)
                new.append(builder.call(dp, [accs[2 * mm + h], *pair]))
        return new

    return _summed(builder, k4, 2 * rows, "vnni", body)


def _pair_tile_sums(
    builder, x, ldx, w, ldw, k4, rows: int, columns=None, row_words=None, table=None
) -> list:
    """:func:`_vnni_sums` on AVX2: ``vpmaddwd`` on 16-bit pairs, each adding two exact products
    (no saturation: onnxruntime's AVX2 ``vpmaddubsw`` saturates a pair past 32767), in four
    passes over the steps, each 16 columns by up to :data:`AVX2_ROWS` rows, whose sums stay in
    registers. Summed 32 columns at a time, 4 rows' sums were all 16 registers and LLVM kept
    some on the stack: a 3 x 3 QLinearConv's tiles then ran 1.4x as long on one of the two
    threads sharing them as on the other (the stack's alignment, which differs between the
    threads, split the spilled vectors across cache lines).

    Each operand is either words of four bytes, widened to 16 bits in the loop (the columns'
    once per step, a row's once per step and pass), or split into pairs beforehand: ``columns``
    None, each step's row of ``x`` holds the 32 columns' even bytes (0 and 2) as two int16,
    then their odd bytes (1 and 3) (:func:`._vnni.pack_columns` with
    :data:`._vnni_jit.PAIRS`); ``row_words`` None, each of ``w``'s rows holds two words a
    step, the same split (:func:`._vnni_jit._left_pairs`, :func:`._vnni.pack_weights` on
    AVX2). Otherwise ``columns`` and ``row_words`` say whether those words' bytes are signed.
    Both split, the loop widens nothing: widened in it, a 128 x 384 x 384
    MatMulIntegerToFloat took 1.6x as long on a Zen 3."""
    finals: list = [None] * (2 * rows)
    # (one row's 32 columns fit in one pass: 4 registers of sums, the columns' 8)
    for hs in [(0, 1)] if rows == 1 else [(0,), (1,)]:
        for first in range(0, rows, AVX2_ROWS):
            group = range(first, min(rows, first + AVX2_ROWS))
            sums = iter(
                _pair_pass(builder, (x, ldx, table, columns), (w, ldw, row_words), k4, hs, group)
            )
            for mm in group:
                for h in hs:
                    finals[2 * mm + h] = next(sums)
    return finals


def _pair_pass(builder, cols, row_side, k4, hs, group) -> list:
    """The sums of columns ``16 h`` to ``16 h + 15`` for each h of ``hs`` and the rows ``group``
    (one <16 x i32> each, by row, then h), in one loop over the steps
    (:func:`_pair_tile_sums`; ``cols`` its x, ldx, table and columns, ``row_side`` its w, ldw
    and row_words)."""
    x, ldx, table, columns = cols
    w, ldw, row_words = row_side
    i16, i32, i64t = ir.IntType(16), ir.IntType(32), ir.IntType(64)
    vec, halfwords = ir.VectorType(i32, 16), ir.VectorType(i16, 32)
    madd = _madd(builder)
    picks = [ir.Constant(ir.VectorType(i32, 16), list(range(16 * q, 16 * q + 16))) for q in (0, 1)]
    glue = ir.Constant(ir.VectorType(i32, 16), list(range(16)))
    eight = ir.Constant(halfwords, [8] * 32)
    xp = builder.inttoptr(x, i32.as_pointer())
    wp = builder.inttoptr(w, i32.as_pointer())

    def load_words(at):
        v = builder.load(builder.bitcast(at, vec.as_pointer()), align=4)
        return builder.bitcast(v, halfwords)

    def parities(v, signed: bool):
        """(the even bytes, the odd bytes) of each 16-bit half of ``v``, widened."""
        if signed:
            return builder.ashr(builder.shl(v, eight), eight), builder.ashr(v, eight)
        return builder.and_(v, ir.Constant(halfwords, [0xFF] * 32)), builder.lshr(v, eight)

    def halves(v):
        return [builder.shuffle_vector(v, v, pick) for pick in picks]

    def broadcast(at):
        word = builder.load(builder.gep(wp, [at]), align=4)
        return builder.bitcast(splat(builder, word, vec), halfwords)

    def columns_of(row, h):
        """(the even bytes, the odd bytes) of columns 16 h .. 16 h + 15, each as two halves."""
        if columns is None:
            return [
                halves(load_words(builder.gep(row, [ir.Constant(i64t, offset + 16 * h)])))
                for offset in (0, TILE_P)
            ]
        words = load_words(builder.gep(row, [ir.Constant(i64t, 16 * h)]))
        return [halves(v) for v in parities(words, columns)]

    def body(k, accs):
        row = _row_address(builder, xp, ldx, k, table)
        parts = [columns_of(row, h) for h in hs]
        new = []
        sums = iter(accs)
        for mm in group:
            base = builder.mul(ir.Constant(i64t, mm), ldw)
            if row_words is None:  # the row's even and odd pairs, broadcast
                at = builder.add(base, builder.mul(k, ir.Constant(i64t, 2)))
                words = (broadcast(at), broadcast(builder.add(at, ir.Constant(i64t, 1))))
            else:  # the row's word, broadcast and widened
                words = parities(broadcast(builder.add(base, k)), row_words)
            pe, po = (builder.shuffle_vector(v, v, picks[0]) for v in words)
            for even, odd in parts:
                two = [
                    builder.add(builder.call(madd, [even[q], pe]), builder.call(madd, [odd[q], po]))
                    for q in (0, 1)
                ]
                new.append(builder.add(next(sums), builder.shuffle_vector(two[0], two[1], glue)))
        return new

    return _summed(builder, k4, len(group) * len(hs), "pairs", body)


def _tile_rows_codegen(rows: int, words: bool = False):
    """The code of :func:`tile_rows` (8 rows), :func:`tile_row` (one) or :func:`tile_row_words`
    (one, ``words``)."""

    def codegen(context, builder, sig, args):
        x, ldx, w, ldw, k4, out = args
        vec = ir.VectorType(ir.IntType(32), 16)
        op = builder.inttoptr(out, vec.as_pointer())
        if VNNI:
            sums = _vnni_sums(builder, x, ldx, w, ldw, k4, True, rows)
        elif words:  # the signed columns' and unsigned rows' words widened in the loop
            sums = _pair_tile_sums(builder, x, ldx, w, ldw, k4, rows, True, False)
        else:
            sums = _pair_tile_sums(builder, x, ldx, w, ldw, k4, rows)
        for i, final in enumerate(sums):
            builder.store(final, builder.gep(op, [ir.Constant(ir.IntType(64), i)]), align=4)
        return context.get_dummy_value()

    return codegen


@intrinsic
def tile_rows(typingctx, x, ldx, w, ldw, k4, out):
    """The (8, 32) int32 tile ``out`` = sum over ``k4`` words of the ``vpdpbusd`` of 32 columns
    of int8 weights at ``x`` (:func:`pack_columns`, row stride ``ldx`` words) and 8 rows of
    uint8 activations at ``w`` (row stride ``ldw`` words), each row's words its own bytes (a
    matrix product's left operand as it is): tile (row, column). Every argument is an int64
    address or count."""
    i64 = types.int64
    return types.void(i64, i64, i64, i64, i64, i64), _tile_rows_codegen(TILE_M)


@intrinsic
def tile_row(typingctx, x, ldx, w, ldw, k4, out):
    """:func:`tile_rows` for one row of activations (32 sums into ``out``): the rows of a
    batch past its last whole 8, and a batch of one (a classifier's QGemm, 1 x 1280 by 1280 x
    1000: 8 rows' products for one made it 2.3x slower)."""
    i64 = types.int64
    return types.void(i64, i64, i64, i64, i64, i64), _tile_rows_codegen(1)


@intrinsic
def tile_row_words(typingctx, x, ldx, w, ldw, k4, out):
    """:func:`tile_row` for columns packed as words of four bytes on AVX2 too
    (:func:`._vnni.pack_column_words`): a product of fewer than 8 rows reads each weight once,
    and the 16-bit pairs' twice the bytes made a classifier's 1 x 1280 by 1280 x 1000 QGemm
    210 -> 284 us (its weights out of cache)."""
    i64 = types.int64
    return types.void(i64, i64, i64, i64, i64, i64), _tile_rows_codegen(1, words=True)


def _requant_tile_codegen(context, builder, sig, args, table: bool = False):
    """The code of :func:`tile_requant` (or with ``table``, :func:`tile_requant_at`)."""
    x, ldx, w, ldw, k4, y, ldy, rows, cells, wsum, x_zero, bias, mult, zero, lo, hi, _ = args
    f32, i32, i64t, i8 = ir.FloatType(), ir.IntType(32), ir.IntType(64), ir.IntType(8)
    fv, iv, lv = ir.VectorType(f32, 16), ir.VectorType(i32, 16), ir.VectorType(i64t, 16)
    ldx, table = (None, ldx) if table else (ldx, None)
    if VNNI:
        sums = _vnni_sums(builder, x, ldx, w, ldw, k4, False, TILE_M, table)
    else:  # the unsigned columns' words widened in the loop, the weights split at packing
        sums = _pair_tile_sums(builder, x, ldx, w, ldw, k4, TILE_M, False, None, table)
    y_p = builder.inttoptr(y, i8.as_pointer())
    ws_p = builder.inttoptr(wsum, i32.as_pointer())
    b_p = builder.inttoptr(bias, f32.as_pointer())
    m_p = builder.inttoptr(mult, f32.as_pointer())
    lanes = ir.Constant(lv, list(range(16)))
    # the last tile's cells past the row's end are not written: its vectors of bytes go under
    # a mask (AVX2 has no masked byte store: LLVM stores the lanes one by one, which cost more
    # than a tile's sums of 16 channels), every other vector whole (store_within)
    masks = [
        builder.icmp_signed(
            "<", lanes, splat(builder, builder.sub(cells, ir.Constant(i64t, 16 * h)), lv)
        )
        for h in range(2)
    ]

    for mm in range(TILE_M):
        at = ir.Constant(i64t, mm)
        with builder.if_then(builder.icmp_signed("<", at, rows)):
            # float32(sum - x_zero * wsum[m]): exact in int32 for K <= MAX_K (the caller's
            # bound), then qgemm's float32 operations, so its bytes
            shift = splat(builder, builder.mul(x_zero, builder.load(builder.gep(ws_p, [at]))), iv)
            bv = splat(builder, builder.load(builder.gep(b_p, [at])), fv)
            mv = splat(builder, builder.load(builder.gep(m_p, [at])), fv)
            row = builder.mul(at, ldy)
            for h in range(2):
                v = builder.sitofp(builder.sub(sums[2 * mm + h], shift), fv)
                v = builder.fmul(builder.fadd(v, bv), mv)
                q = requantize8(builder, v, zero, lo, hi)
                # (a vector's lanes end within the row's cells: whole)
                store_within(builder, q, builder.gep(y_p, [row]), ir.Constant(i64t, 16 * h),
                             masks[h], cells)  # fmt: skip
    return context.get_dummy_value()


@intrinsic
def tile_requant(typingctx, x, ldx, w, ldw, k4, y, ldy, rows, cells, wsum, x_zero, bias, mult,
                  zero, lo, hi, like):  # fmt: skip
    """The (8, 32) tile of sums of the packed input words at ``x`` (row stride ``ldx`` words,
    32 pixels) and the packed weight words at ``w`` (8 rows of stride ``ldw`` words) over
    ``k4`` words (:func:`_vnni_sums`, or on AVX2 :func:`_pair_tile_sums`, the weights split
    into pairs by :func:`._vnni.pack_weights`), requantized in registers into ``y`` (8-bit of
    ``like``'s type, row stride ``ldy`` bytes): rows ``0:rows`` (at most 8) and cells ``0:cells`` (at most
    32, the rest under a mask) of
    ``clip(rint((float32(sum - x_zero * wsum[m]) + bias[m]) * mult[m]) + zero, lo, hi)``,
    ``wsum``, ``bias`` and ``mult`` the addresses of the tile's first row's. No tile
    of sums in memory, no requantization loop per row."""
    i64, f32 = types.int64, types.float32
    sig = types.void(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, types.int32, i64, i64,
                     f32, f32, f32, like)  # fmt: skip
    return sig, _requant_tile_codegen


@intrinsic
def tile_requant_at(typingctx, x, table, w, ldw, k4, y, ldy, rows, cells, wsum, x_zero, bias,
                    mult, zero, lo, hi, like):  # fmt: skip
    """:func:`tile_requant` with the input's ``k4`` rows of 32 words anywhere from ``x``: row k
    at ``x + table[k]`` words (``table`` the int64 address of the offsets). A convolution's
    window taps read the input packed once, four channels to a word, each tap a shifted run of
    it, instead of a column matrix of every tap's bytes."""
    i64, f32 = types.int64, types.float32
    sig = types.void(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, types.int32, i64, i64,
                     f32, f32, f32, like)  # fmt: skip

    def codegen(context, builder, sig, args):
        return _requant_tile_codegen(context, builder, sig, args, table=True)

    return sig, codegen


def _quad_words(builder, parts):
    """The uint32 words of four byte vectors ``parts`` (channel t's bytes in byte t)."""
    n = parts[0].type.count
    iv = ir.VectorType(ir.IntType(32), n)
    word = builder.zext(parts[0], iv)
    for t in range(1, 4):
        shifted = builder.shl(
            builder.zext(parts[t], iv), splat(builder, ir.Constant(ir.IntType(32), 8 * t), iv)
        )
        word = builder.or_(word, shifted)
    return word


def _quad_loop(builder, count, body) -> None:
    """``body(i, mask)`` over ``count`` items 16 at a time, the last ending at ``count`` where
    there are 16 or more, else under a mask of its lanes (``mask`` None for whole steps):
    :func:`._ir.chunks`, shifted."""
    chunks(
        builder,
        count,
        lambda i, rest: body(i, None if rest is None else lane_mask(builder, rest)),
        shift=True,
    )


@intrinsic
def quad_row(typingctx, dst, src, plane, count):
    """``count`` uint32 words at address ``dst`` from four rows of bytes, the first at address
    ``src`` and the next ``plane`` bytes apart each: word v holds byte v of each row (row t in
    byte t). :func:`pack_quads`' rows at stride 1, 16 words a step."""
    i64 = types.int64

    def codegen(context, builder, sig, args):
        dst, src, plane, count = args
        i8, i32 = ir.IntType(8), ir.IntType(32)
        dst_p = builder.inttoptr(dst, i32.as_pointer())
        src_p = builder.inttoptr(src, i8.as_pointer())
        bv = ir.VectorType(i8, 16)

        def body(i, mask):
            parts = [load(builder, src_p, builder.add(builder.mul(ir.Constant(WORD, t), plane), i),
                          bv, mask) for t in range(4)]  # fmt: skip
            store(builder, _quad_words(builder, parts), dst_p, i, mask)

        _quad_loop(builder, count, body)
        return context.get_dummy_value()

    return types.void(i64, i64, i64, i64), codegen


@intrinsic
def quad_pairs(typingctx, even, odd, src, plane, pairs):
    """:func:`quad_row` for a row's two column phases at stride 2: ``pairs`` words at address
    ``even`` from the rows' bytes 0, 2, 4... from ``src`` and at ``odd`` from bytes 1, 3, 5...
    (four rows ``plane`` bytes apart), 16 pairs a step."""
    i64 = types.int64

    def codegen(context, builder, sig, args):
        even, odd, src, plane, pairs = args
        i8, i32 = ir.IntType(8), ir.IntType(32)
        even_p = builder.inttoptr(even, i32.as_pointer())
        odd_p = builder.inttoptr(odd, i32.as_pointer())
        src_p = builder.inttoptr(src, i8.as_pointer())
        wide = ir.VectorType(i8, 32)
        picks = [ir.Constant(ir.VectorType(i32, 16), list(range(h, 32, 2))) for h in range(2)]

        def body(i, mask):
            wide_mask = None
            if mask is not None:  # each pair's two lanes
                wide_mask = builder.shuffle_vector(mask, mask, ir.Constant(
                    ir.VectorType(i32, 32), [k // 2 for k in range(32)]))  # fmt: skip
            at = builder.mul(i, ir.Constant(WORD, 2))
            rows = [load(builder, src_p, builder.add(builder.mul(ir.Constant(WORD, t), plane), at),
                         wide, wide_mask) for t in range(4)]  # fmt: skip
            for base, pick in ((even_p, picks[0]), (odd_p, picks[1])):
                parts = [builder.shuffle_vector(r, r, pick) for r in rows]
                store(builder, _quad_words(builder, parts), base, i, mask)

        _quad_loop(builder, pairs, body)
        return context.get_dummy_value()

    return types.void(i64, i64, i64, i64, i64), codegen
