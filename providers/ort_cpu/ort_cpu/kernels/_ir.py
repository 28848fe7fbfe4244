"""LLVM IR the intrinsics of the compiled kernels share (written with llvmlite): a vector
splat, a counted loop, vector loads and stores under a mask, and the 8-bit requantization of
float32 sums. Imported only by modules that import numba and llvmlite anyway (:mod:`._vnni`,
:mod:`._norm_jit`, :mod:`._taps`)."""

from __future__ import annotations

from llvmlite import ir

#: the loops' index type
WORD = ir.IntType(64)


def splat(builder, value, vec: ir.VectorType):
    """``value`` in every lane of a vector of type ``vec``."""
    undef = ir.Constant(vec, ir.Undefined)
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), vec.count), [0] * vec.count)
    first = builder.insert_element(undef, value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(first, undef, zeros)


def loop_start(builder, count, name: str):
    """Open a loop of ``count`` (an int64 value) iterations, none when it is not positive:
    returns (the block before it, the loop's block, the block after it, the index phi). The
    builder is left in the loop's body; the caller adds its own phis, then ends the body with
    :func:`loop_end`."""
    entry = builder.block
    loop = builder.append_basic_block(f"{name}.loop")
    done = builder.append_basic_block(f"{name}.done")
    builder.cbranch(builder.icmp_signed(">", count, ir.Constant(WORD, 0)), loop, done)
    builder.position_at_end(loop)
    index = builder.phi(WORD)
    index.add_incoming(ir.Constant(WORD, 0), entry)
    return entry, loop, done, index


def loop_end(builder, index, count, loop, done):
    """Close the body of :func:`loop_start`'s loop: the next index, back to ``loop`` while it is
    below ``count``, then on to ``done`` (where the builder is left). Returns the block the body
    ended in (for the phis' incoming values)."""
    following = builder.add(index, ir.Constant(WORD, 1))
    body = builder.block
    index.add_incoming(following, body)
    builder.cbranch(builder.icmp_signed("<", following, count), loop, done)
    builder.position_at_end(done)
    return body


def lane_mask(builder, rest, lanes: int = 16):
    """The lanes below ``rest`` (an int64 value) of a vector of ``lanes``."""
    index = ir.Constant(ir.VectorType(WORD, lanes), list(range(lanes)))
    return builder.icmp_signed("<", index, splat(builder, rest, index.type))


def chunks(builder, count, body, step: int = 16, shift: bool = False) -> None:
    """``body(first, rest)`` over ``count`` items (an int64 value) in chunks of ``step``: whole
    chunks with ``rest`` None, then the last partial one, if any, with ``rest`` its number of
    items. With ``shift`` (a body that writes what it reads elsewhere, so that doing items again
    writes the same values) the last partial chunk of a count of ``step`` or more is a whole
    one ending at ``count``, ``rest`` None: masked loads and stores of bytes are one lane at a
    time on AVX2, and masked stores are slow on AMD's cores (see :func:`._taps._row_groups`)."""
    span = ir.Constant(WORD, step)
    whole = builder.sdiv(count, span)
    _, loop, done, g = loop_start(builder, whole, "chunks")
    body(builder.mul(g, span), None)
    loop_end(builder, g, whole, loop, done)
    first = builder.mul(whole, span)
    rest = builder.sub(count, first)
    with builder.if_then(builder.icmp_signed(">", rest, ir.Constant(WORD, 0))):
        if not shift:
            body(first, rest)
            return
        last_span(builder, count, step, lambda at: body(at, None), lambda: body(first, rest))


def last_span(builder, count, span: int, whole, partial) -> None:
    """The last, partial ``span`` of items before ``count`` (an int64 value): ``whole(at)``, a
    whole span from ``at = count - span`` (items before the partial one done again), where
    ``count`` holds a span; else ``partial()`` (the caller's masked form). Loads and stores
    under a mask are slow or lane by lane on AVX2 (:func:`chunks`, :func:`._taps._row_groups`);
    a body that writes what it reads elsewhere writes the same values twice."""
    size = ir.Constant(count.type, span)
    with builder.if_else(builder.icmp_signed(">=", count, size)) as (fits, short):
        with fits:
            whole(builder.sub(count, size))
        with short:
            partial()


def suffix(vec: ir.VectorType) -> str:
    """The type suffix of an LLVM vector intrinsic's name for ``vec`` (``v16f32``...)."""
    if isinstance(vec.element, ir.FloatType):
        element = "f32"
    elif isinstance(vec.element, ir.DoubleType):
        element = "f64"
    else:
        element = f"i{vec.element.width}"
    return f"v{vec.count}{element}"


def vector_op(builder, name: str, vec: ir.VectorType, arity: int = 1):
    """The LLVM intrinsic ``llvm.<name>`` over vectors of type ``vec`` taking ``arity`` of them
    (``fma``: 3, ``floor``, ``rint``: 1), declared in the builder's module."""
    return builder.module.declare_intrinsic(
        f"llvm.{name}.{suffix(vec)}", fnty=ir.FunctionType(vec, [vec] * arity)
    )


def load(builder, base, index, vec, mask):
    """``vec`` from ``base[index:]``, under ``mask`` where one is given (lanes off read 0)."""
    at = builder.bitcast(builder.gep(base, [index]), vec.as_pointer())
    align = ir.Constant(ir.IntType(32), 1)
    if mask is None:
        return builder.load(at, align=1)
    fn = builder.module.declare_intrinsic(
        f"llvm.masked.load.{suffix(vec)}.p0",
        fnty=ir.FunctionType(vec, [at.type, align.type, mask.type, vec]),
    )
    return builder.call(fn, [at, align, mask, ir.Constant(vec, None)])


def store(builder, value, base, index, mask) -> None:
    """``value`` into ``base[index:]``, under ``mask`` where one is given."""
    at = builder.bitcast(builder.gep(base, [index]), value.type.as_pointer())
    if mask is None:
        builder.store(value, at, align=1)
        return
    align = ir.Constant(ir.IntType(32), 1)
    fn = builder.module.declare_intrinsic(
        f"llvm.masked.store.{suffix(value.type)}.p0",
        fnty=ir.FunctionType(ir.VoidType(), [value.type, at.type, align.type, mask.type]),
    )
    builder.call(fn, [value, at, align, mask])


def store_within(builder, value, base, at, mask, room) -> None:
    """``value`` into ``base[at:]`` under ``mask`` (:func:`store`), or whole where its lanes
    end within ``room`` items of ``base``: items a kernel owns, which it writes in order (a
    short row's extra lanes land in the next rows before those are written), or those past
    which the mask is all on. AVX2 has no masked byte store (LLVM stores the lanes one by one)
    and stores floats under a mask slowly on AMD's cores (:func:`._taps._row_groups`)."""
    if mask is None:
        store(builder, value, base, at, None)
        return
    end = builder.add(at, ir.Constant(at.type, value.type.count))
    with builder.if_else(builder.icmp_signed("<=", end, room)) as (whole, part):
        with whole:
            store(builder, value, base, at, None)
        with part:
            store(builder, value, base, at, mask)


def requantize8(builder, v, zero, lo, hi):
    """The float32 vector ``v`` (sums already scaled) as 8-bit integers:
    ``clip(rint(v) + zero, lo, hi)`` (``zero``, ``lo``, ``hi`` float32 scalars, integral), as
    ``rint(clip(v, lo - zero, hi - zero)) + zero``: the same integers (rint keeps the integral
    bounds in place), with the zero point added in int32 after the conversion. Signed or
    unsigned: the low 8 bits of the int32 result are the byte either way."""
    vec = v.type
    i32 = ir.IntType(32)
    iv = ir.VectorType(i32, vec.count)
    rint = vector_op(builder, "rint", vec)
    low = splat(builder, builder.fsub(lo, zero), vec)
    high = splat(builder, builder.fsub(hi, zero), vec)
    v = builder.select(builder.fcmp_ordered("<", v, low), low, v)
    v = builder.select(builder.fcmp_ordered(">", v, high), high, v)
    q = builder.add(
        builder.fptosi(builder.call(rint, [v]), iv), splat(builder, builder.fptosi(zero, i32), iv)
    )
    return builder.trunc(q, ir.VectorType(ir.IntType(8), vec.count))
