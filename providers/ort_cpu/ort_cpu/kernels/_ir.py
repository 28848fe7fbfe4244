"""LLVM IR the intrinsics of the compiled kernels share (written with llvmlite): a vector
splat and a counted loop. Imported only by modules that import numba and llvmlite anyway
(:mod:`._vnni`, :mod:`._norm_jit`, :mod:`._taps`)."""

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
