"""Small llvmlite intrinsics for compiled kernels: a fused multiply-add (one rounding of
a * b + c), where they must round as onnxruntime's vector kernels do (MLAS's QLinearAdd), a
multiply-add fused only where the CPU has the instruction and a float32 made from its bits
(:mod:`._exp_jit`'s exponential), and a 256-entry byte table looked up
64 bytes at a time (:mod:`._quant_jit`'s quantized unary ops). This module imports numba;
kernels reach it through :class:`ort_cpu._jit.LazyIntrinsic`."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._ir import loop_end, loop_start


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` rounded once, for float32 (or float64) ``a``, ``b`` and ``c`` of one type."""
    sig = a(a, b, c)

    def codegen(context, builder, sig, args):
        return builder.fma(*args)

    return sig, codegen


@intrinsic
def fmuladd(typingctx, a, b, c):
    """``a * b + c``, fused into one multiply-add (one rounding) where the CPU has the
    instruction, else a multiply and an add (``llvm.fmuladd``): a polynomial's steps where
    speed counts more than the same bits on every CPU (:mod:`._exp_jit`'s exponential). ``b``
    and ``c`` are taken in ``a``'s type (float32 constants in a float64 caller's loop)."""
    sig = a(a, a, a)

    def codegen(context, builder, sig, args):
        t = args[0].type
        fn = builder.module.declare_intrinsic(
            "llvm.fmuladd", [t], fnty=ir.FunctionType(t, [t, t, t])
        )
        return builder.call(fn, list(args))

    return sig, codegen


@intrinsic
def float_bits(typingctx, bits):
    """The float32 whose bits are the int32 ``bits``."""
    sig = types.float32(types.int32)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


def _has_vbmi() -> bool:
    """Whether this CPU has AVX-512 VBMI (byte permutes across a 64-byte vector)."""
    from .._aot import has_feature

    return has_feature("avx512vbmi") and has_feature("avx512bw")


@intrinsic
def table_bytes(typingctx, x, table, out, count):
    """``out[i] = table[x[i]]`` for the whole 64-byte blocks of ``count`` bytes at address ``x``
    (``table``: the address of 256 bytes, ``out``: of ``count`` bytes), four 64-entry quarters of
    the table held in registers and two two-quarter byte permutes per block (AVX-512 VBMI's
    vpermi2b), the input's top bit choosing between them; returns how many bytes it did (the
    whole blocks; 0 on a CPU without VBMI, where the caller's loop does them all)."""
    i64 = types.int64
    sig = i64(i64, i64, i64, i64)

    def codegen(context, builder, sig, args):
        x, table, out, count = args
        word = ir.IntType(64)
        if not _has_vbmi():
            return ir.Constant(word, 0)
        byte = ir.IntType(8)
        vec = ir.VectorType(byte, 64)
        vptr = vec.as_pointer()
        permute = builder.module.declare_intrinsic(
            "llvm.x86.avx512.vpermi2var.qi.512", fnty=ir.FunctionType(vec, [vec, vec, vec])
        )
        t_p = builder.inttoptr(table, vptr)
        quarters = [
            builder.load(builder.gep(t_p, [ir.Constant(word, q)]), align=1) for q in range(4)
        ]
        x_p, o_p = builder.inttoptr(x, vptr), builder.inttoptr(out, vptr)
        blocks = builder.sdiv(count, ir.Constant(word, 64))
        zero = ir.Constant(vec, None)
        _, loop, done, i = loop_start(builder, blocks, "table.bytes")
        v = builder.load(builder.gep(x_p, [i]), align=1)
        low = builder.call(permute, [quarters[0], v, quarters[1]])  # table[v & 127]
        high = builder.call(permute, [quarters[2], v, quarters[3]])  # table[128 + (v & 127)]
        top = builder.icmp_signed("<", v, zero)  # v >= 128
        builder.store(builder.select(top, high, low), builder.gep(o_p, [i]), align=1)
        loop_end(builder, i, blocks, loop, done)
        return builder.mul(blocks, ir.Constant(word, 64))

    return sig, codegen
