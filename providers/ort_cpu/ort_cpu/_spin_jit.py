"""The compiled half of the intra-op pool's spinning hand-off (see :mod:`ort_cpu._threads`).

A waiting worker thread that sleeps in the kernel (a futex) takes 15-30 us to wake on the 2-core
virtual machines the provider is benchmarked on, and the thread that handed it work sleeps as long
again waiting for the piece to come back: about 55 us per split, more than half of a 100 us GEMM.
onnxruntime's pool avoids it by spinning: during a run its workers poll for work instead of
sleeping. A Python thread cannot poll without holding the GIL, so the polling is compiled here
(numba, ``nogil``), and so is the work the pool hands off most, a BLAS GEMM: a worker that finds a
GEMM piece calls the BLAS routine itself through its address, and never takes the GIL; so does
a worker that finds a compiled piece (a numba ``cfunc``, :data:`NATIVE`: the tree walks, the
direct convolutions). Pieces of Python work (row blocks of a convolution) make the poll return
to the worker's Python loop, which runs them under the GIL.

Everything the two sides share is one int64 array, ``ctrl``, read and written with atomic loads,
stores and adds, and the piece tables ``ints`` / ``floats`` (one row per GEMM piece, see
:func:`_gemm_piece`). The slots of ``ctrl`` (one per cache line):

- ``POSTED``: the number of the last job posted; a worker that has seen an older one has work.
- ``KIND``: that job's kind, :data:`GEMM` (pieces in the tables) or :data:`PYTHON`.
- ``PIECES``, ``CLAIMED``, ``DONE``: how many pieces the job has, the next one to claim, and how
  many have been finished. ``CLAIMED`` holds the job's number above its low :data:`INDEX_BITS`
  bits, and a piece is claimed by a compare-and-swap that checks the number: a worker still in
  the loop of a finished job cannot claim a piece of the next one (whose tables it has not
  read).
- ``SPIN``: non-zero while workers may poll: from the start of a run that lets them spin until
  a run that does not starts. A worker polls for at most ``limit`` polls after its last piece
  (across a run's end, as onnxruntime's do), then sleeps; a sleep that times out does not
  make it poll again.
- ``SLEEPERS``: how many workers sleep in the kernel, on a futex on the low half of
  ``POSTED`` (:func:`serve`): :func:`post` wakes them. Sleeping and waking are compiled too, so
  a worker woken for a GEMM job never waits for the GIL (waking one through a Python queue
  made it take the GIL first: a split after an idle gap then cost 100-250 us more than the
  whole product on one thread).

This module imports numba when it is imported; :mod:`ort_cpu._threads` imports it only once
numba is loaded for the compiled kernels anyway (see :mod:`ort_cpu._jit`). Functions compile
with ``cache=True`` (loaded from the disk cache after the first process).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

POSTED, KIND, PIECES, CLAIMED, DONE, SPIN, SLEEPERS = 0, 8, 16, 24, 32, 40, 48
#: low bits of ``CLAIMED`` holding the next piece's index (the job's number is above them)
INDEX_BITS = 20
#: int64 slots in ``ctrl`` (each slot above on its own 64-byte line)
CTRL_SIZE = 56
#: Linux x86-64's futex system call and its private wait and wake operations
SYS_FUTEX, FUTEX_WAIT, FUTEX_WAKE = 202, 128, 129
GEMM, PYTHON = 1, 2
#: columns of the ``ints`` table: variant, routine address, transposes (a * 256 + b), m, n, k,
#: address of a, lda, of b, ldb, of c, ldc; ``floats`` holds alpha and beta (GEMV rows: see
#: :func:`_gemm_piece`)
INT_COLUMNS, FLOAT_COLUMNS = 12, 2
#: CBLAS row-major
_ROW_MAJOR = 101


def _element(context, builder, sig, args):
    """The address of ``arr[idx]`` (an intrinsic's first two arguments)."""
    ary = context.make_array(sig.args[0])(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, sig.args[0], ary, [args[1]])


@intrinsic
def _load(typingctx, arr, idx):
    """``arr[idx]`` as an atomic load with acquire ordering: read anew on every call (a plain
    load in a polling loop may be hoisted out of it), and no later read moves before it."""
    sig = types.int64(arr, idx)

    def codegen(context, builder, sig, args):
        ptr = _element(context, builder, sig, args)
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


def _on_element(result, emit):
    """An intrinsic ``op(arr, idx, value)`` returning ``result``, its code what
    ``emit(builder, address of arr[idx], value)`` builds (None for no value)."""

    @intrinsic
    def op(typingctx, arr, idx, value):
        sig = result(arr, idx, value)

        def codegen(context, builder, sig, args):
            got = emit(builder, _element(context, builder, sig, args), args[2])
            return context.get_dummy_value() if got is None else got

        return sig, codegen

    return op


def _store_seq_cst(builder, ptr, value) -> None:
    builder.store_atomic(value, ptr, "seq_cst", 8)


#: ``arr[idx] += value`` as one atomic step; returns the value before
_fetch_add = _on_element(
    types.int64, lambda builder, ptr, value: builder.atomic_rmw("add", ptr, value, "seq_cst")
)
#: ``arr[idx] = value`` as a sequentially consistent atomic store (a full fence on x86)
_store = _on_element(types.void, _store_seq_cst)


@intrinsic
def _syscall(typingctx, fn, number, a, b, c, d):
    """libc's ``syscall(number, a, b, c, d)`` called through its address ``fn``."""
    i64 = types.int64
    sig = i64(i64, i64, i64, i64, i64, i64)

    def codegen(context, builder, sig, args):
        word = ir.IntType(64)
        fnty = ir.FunctionType(word, [word], var_arg=True)
        return builder.call(builder.inttoptr(args[0], fnty.as_pointer()), list(args[1:]))

    return sig, codegen


@intrinsic
def _swap(typingctx, arr, idx, expected, value):
    """``arr[idx] = value`` if it holds ``expected``, as one atomic step; True if it did."""
    sig = types.boolean(arr, idx, expected, value)

    def codegen(context, builder, sig, args):
        ptr = _element(context, builder, sig, args)
        pair = builder.cmpxchg(ptr, args[2], args[3], "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)

    return sig, codegen


@intrinsic
def _pause(typingctx):
    """x86's ``pause``: tells the core this is a polling loop (about 25 ns here), so a polling
    thread leaves the core's other hardware thread, and the memory bus, alone."""
    sig = types.void()

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(ir.VoidType(), [])
        builder.call(builder.module.declare_intrinsic("llvm.x86.sse2.pause", fnty=fnty), [])
        return context.get_dummy_value()

    return sig, codegen


def _call_cblas(builder, fn, kinds: str, values, int_bits: int, float_bits: int) -> None:
    """Call the CBLAS routine at address ``fn`` (row-major first) with ``values`` (int64 or
    float64) narrowed by ``kinds``, one letter each: ``e`` a CBLAS enum, ``i`` a BLAS integer of
    ``int_bits``, ``f`` an element of ``float_bits``, ``p`` an address."""
    blas_int = ir.IntType(int_bits)
    real = ir.FloatType() if float_bits == 32 else ir.DoubleType()
    ptr, enum = ir.IntType(8).as_pointer(), ir.IntType(32)
    types_ = {"e": enum, "i": blas_int, "f": real, "p": ptr}

    def narrow(kind, v):
        if kind == "e":
            return builder.trunc(v, enum)
        if kind == "i":
            return builder.trunc(v, blas_int) if int_bits == 32 else v
        if kind == "f":
            return builder.fptrunc(v, real) if float_bits == 32 else v
        return builder.inttoptr(v, ptr)

    fnty = ir.FunctionType(ir.VoidType(), [enum] + [types_[k] for k in kinds])
    args = [ir.Constant(enum, _ROW_MAJOR)]
    args += [narrow(k, v) for k, v in zip(kinds, values, strict=True)]
    builder.call(builder.inttoptr(fn, fnty.as_pointer()), args)


def _gemm_caller(int_bits: int, float_bits: int):
    """An intrinsic calling a ``cblas_?gemm`` routine by its address, for BLAS integers of
    ``int_bits`` and elements of ``float_bits`` (sgemm or dgemm); every argument arrives as
    int64 or float64 and is narrowed to the routine's types (:func:`_call_cblas`); ``trans`` is
    the two transposes as ``a * 256 + b``."""

    @intrinsic
    def call(typingctx, fn, trans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        i64, f64 = types.int64, types.float64
        sig = types.void(i64, i64, i64, i64, i64, f64, i64, i64, i64, i64, f64, i64, i64)

        def codegen(context, builder, sig, args):
            fn, trans, *rest = args
            word = ir.IntType(64)
            trans_a = builder.lshr(trans, ir.Constant(word, 8))
            trans_b = builder.and_(trans, ir.Constant(word, 255))
            values = [trans_a, trans_b, *rest]
            _call_cblas(builder, fn, "eeiiifpipifpi", values, int_bits, float_bits)
            return context.get_dummy_value()

        return sig, codegen

    return call


_sgemm32, _sgemm64 = _gemm_caller(32, 32), _gemm_caller(64, 32)
_dgemm32, _dgemm64 = _gemm_caller(32, 64), _gemm_caller(64, 64)


def _gemv_caller(int_bits: int, float_bits: int):
    """An intrinsic calling a ``cblas_?gemv`` routine by its address (see :func:`_gemm_caller`):
    ``y = op(A) @ x`` with ``A`` (m, n) row-major, ``trans`` its CBLAS transpose code."""

    @intrinsic
    def call(typingctx, fn, trans, m, n, alpha, a, lda, x, incx, beta, y, incy):
        i64, f64 = types.int64, types.float64
        sig = types.void(i64, i64, i64, i64, f64, i64, i64, i64, i64, f64, i64, i64)

        def codegen(context, builder, sig, args):
            _call_cblas(builder, args[0], "eiifpipifpi", args[1:], int_bits, float_bits)
            return context.get_dummy_value()

        return sig, codegen

    return call


_sgemv32, _sgemv64 = _gemv_caller(32, 32), _gemv_caller(64, 32)
_dgemv32, _dgemv64 = _gemv_caller(32, 64), _gemv_caller(64, 64)

#: added to a variant code for a GEMV row (see :func:`_gemm_piece`)
GEMV = 4
#: the variant code of a compiled piece: a row (NATIVE, address of a ``void(int64, int64,
#: int64)`` function, its first argument, lo, hi), called ``fn(argument, lo, hi)``
NATIVE = 8


@intrinsic
def _call_piece(typingctx, fn, argument, lo, hi):
    """``fn(argument, lo, hi)``, ``fn`` the address of a compiled ``void(int64, int64, int64)``
    function (a numba ``cfunc``)."""
    i64 = types.int64
    sig = types.void(i64, i64, i64, i64)

    def codegen(context, builder, sig, args):
        word = ir.IntType(64)
        fnty = ir.FunctionType(ir.VoidType(), [word] * 3)
        builder.call(builder.inttoptr(args[0], fnty.as_pointer()), list(args[1:]))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def pointer(typingctx, address):
    """The int64 ``address`` as a ``voidptr`` (for ``numba.carray`` in a compiled piece)."""
    sig = types.voidptr(types.int64)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], ir.IntType(8).as_pointer())

    return sig, codegen


_made: dict = {}  # the compiled pieces made so far, by factory and arguments


def block(ints, floats=()) -> np.ndarray:
    """A compiled piece's argument block: the int64 values ``ints`` (addresses, sizes, codes),
    then the float64 bits of ``floats``. The caller keeps it, and the arrays it names, alive
    until the pieces are done."""
    a = np.empty(len(ints) + len(floats), np.int64)
    a[: len(ints)] = ints
    a[len(ints) :].view(np.float64)[:] = floats
    return a


@njit(cache=True)
def _two(template, i, a, j, b):  # pragma: no cover - compiled
    out = template.copy()
    out[i], out[j] = a.ctypes.data, b.ctypes.data
    return out, out.ctypes.data


@njit(cache=True)
def _three(template, i, a, j, b, k, c):  # pragma: no cover - compiled
    out = template.copy()
    out[i], out[j], out[k] = a.ctypes.data, b.ctypes.data, c.ctypes.data
    return out, out.ctypes.data


@njit(cache=True)
def _four(template, i, a, j, b, k, c, m, d):  # pragma: no cover - compiled
    out = template.copy()
    out[i], out[j], out[k], out[m] = a.ctypes.data, b.ctypes.data, c.ctypes.data, d.ctypes.data
    return out, out.ctypes.data


def filled(template: np.ndarray, *slots) -> tuple[np.ndarray, int]:
    """A copy of the argument block ``template`` (:func:`block`, made once per layer and shape)
    with the addresses of the arrays that change from call to call written into their slots,
    and the copy's own address: ``filled(template, i, a, j, b)`` (two arrays), three or four
    pairs. One compiled call, about 1 us: in Python each ``.ctypes.data`` costs about 1.4 us
    (the copy's too, when it was asked for after the call: 2.6 us the two) and the block's
    tuple assignment more, so a split's argument block took 7 us, more than the piece of a
    small layer it handed over (the caller keeps the block and the arrays alive until the
    pieces are done)."""
    return (_two, _three, _four)[len(slots) // 2 - 2](template, *slots)


def made(make, *args) -> int:
    """The address of the compiled piece ``make(*args)`` (a numba ``cfunc`` of the kernel
    modules), made on first demand: each compiles, or loads from the disk cache, when first
    asked for (a float32 model never pays for its float64 pieces)."""
    key = (make, args)
    fn = _made.get(key)
    if fn is None:
        fn = _made[key] = make(*args)
    return fn.address


def variant(int_bits: int, float_bits: int) -> int:
    """The ``ints`` table's variant code of a routine with these integer and element widths."""
    return (int_bits == 64) + 2 * (float_bits == 64)


@njit(cache=True, nogil=True)
def _gemm_piece(ints, floats, i):  # pragma: no cover - compiled
    """Run row ``i`` of the piece tables: one GEMM call, for variants from :data:`GEMV` one
    GEMV call, its row (variant, address, transpose, m, n, unused, A, lda, x, incx, y, incy),
    or for :data:`NATIVE` one compiled piece."""
    r = ints[i]
    v, alpha, beta = r[0], floats[i, 0], floats[i, 1]
    if v == NATIVE:
        _call_piece(r[1], r[2], r[3], r[4])
    elif v >= GEMV:
        if v == GEMV:
            _sgemv32(r[1], r[2], r[3], r[4], alpha, r[6], r[7], r[8], r[9], beta, r[10], r[11])
        elif v == GEMV + 1:
            _sgemv64(r[1], r[2], r[3], r[4], alpha, r[6], r[7], r[8], r[9], beta, r[10], r[11])
        elif v == GEMV + 2:
            _dgemv32(r[1], r[2], r[3], r[4], alpha, r[6], r[7], r[8], r[9], beta, r[10], r[11])
        else:
            _dgemv64(r[1], r[2], r[3], r[4], alpha, r[6], r[7], r[8], r[9], beta, r[10], r[11])
    elif v == 0:
        _sgemm32(r[1], r[2], r[3], r[4], r[5], alpha, r[6], r[7], r[8], r[9], beta, r[10], r[11])
    elif v == 1:
        _sgemm64(r[1], r[2], r[3], r[4], r[5], alpha, r[6], r[7], r[8], r[9], beta, r[10], r[11])
    elif v == 2:
        _dgemm32(r[1], r[2], r[3], r[4], r[5], alpha, r[6], r[7], r[8], r[9], beta, r[10], r[11])
    else:
        _dgemm64(r[1], r[2], r[3], r[4], r[5], alpha, r[6], r[7], r[8], r[9], beta, r[10], r[11])


@njit(cache=True, nogil=True)
def _gemm_pieces(ctrl, ints, floats, job):  # pragma: no cover - compiled
    """Claim and run GEMM job ``job``'s pieces until none is left (or another job is posted)."""
    total = _load(ctrl, PIECES)
    while True:
        claim = _load(ctrl, CLAIMED)
        i = claim & ((1 << INDEX_BITS) - 1)
        if claim >> INDEX_BITS != job or i >= total:
            return
        if _swap(ctrl, CLAIMED, claim, claim + 1):
            _gemm_piece(ints, floats, i)
            _fetch_add(ctrl, DONE, 1)


@njit(cache=True, nogil=True)
def serve(ctrl, ints, floats, seen, limit, syscall, timespec):  # pragma: no cover - compiled
    """A worker's loop: run every GEMM job posted after job ``seen``; between jobs poll for
    the next while ``SPIN`` is set, for at most ``limit`` polls, then sleep on the futex (for
    at most ``timespec``, then look again). Returns the number of a posted Python job (the
    worker runs its pieces and comes back). With ``syscall`` 0 it does not sleep but returns
    ``-1 - seen``, ``seen`` the last job it has seen (the tests' way in)."""
    polls = 0
    while True:
        posted = _load(ctrl, POSTED)
        if posted != seen:
            if _load(ctrl, KIND) != GEMM:
                return posted
            _gemm_pieces(ctrl, ints, floats, posted)
            seen, polls = posted, 0
            continue
        if polls < limit and _load(ctrl, SPIN) != 0:
            _pause()
            polls += 1
            continue
        if syscall == 0:
            return -1 - seen
        _fetch_add(ctrl, SLEEPERS, 1)  # a full fence: then POSTED is read anew
        if _load(ctrl, POSTED) == seen:
            address = ctrl.ctypes.data + POSTED * 8  # the low half (little-endian)
            _syscall(syscall, SYS_FUTEX, address, FUTEX_WAIT, seen & 0xFFFFFFFF, timespec)
        _fetch_add(ctrl, SLEEPERS, -1)
        polls = limit  # woken without a job (the sleep's time limit): back to sleep


@njit(cache=True, nogil=True)
def post(ctrl, kind, pieces, syscall):  # pragma: no cover - compiled
    """Publish the next job (its pieces already in the tables, or with the pool): its fields,
    then its number (a sequentially consistent store), then wake the sleeping workers. Returns
    the job's number."""
    posted = ctrl[POSTED] + 1
    ctrl[KIND] = kind
    ctrl[PIECES] = pieces
    ctrl[DONE] = 0
    ctrl[CLAIMED] = posted << INDEX_BITS
    _store(ctrl, POSTED, posted)
    if _load(ctrl, SLEEPERS) > 0 and syscall != 0:
        address = ctrl.ctypes.data + POSTED * 8
        _syscall(syscall, SYS_FUTEX, address, FUTEX_WAKE, 0x7FFFFFFF, 0)
    return posted


@njit(cache=True, nogil=True)
def run_gemm(ctrl, ints, floats):  # pragma: no cover - compiled
    """The posting thread's part of a GEMM job: claim pieces with the workers, then wait (by
    polling: the workers are at most one piece away) until every piece is done."""
    _gemm_pieces(ctrl, ints, floats, ctrl[POSTED])
    total = ctrl[PIECES]
    while _load(ctrl, DONE) < total:
        _pause()


@njit(cache=True, nogil=True, inline="always")
def _piece_step(total, parts, multiple):  # pragma: no cover - compiled
    """The length of each of at most ``parts`` contiguous pieces of ``range(total)``, a multiple
    of ``multiple`` (the last piece shorter): ``_threads.bounds``' cut."""
    step = -(-total // parts)
    return max(multiple, -(-step // multiple) * multiple)


@njit(cache=True, nogil=True)
def run_native(
    ctrl, ints, floats, syscall, address, argument, total, parts, multiple
):  # pragma: no cover - compiled
    """A job of one compiled piece (a ``cfunc`` at ``address``, its argument block at
    ``argument``) over ``range(total)`` cut into ``parts`` contiguous pieces, each a multiple
    of ``multiple`` long but the last (as ``_threads.bounds`` cuts it): the table's rows
    written, the job posted and run with the workers, all in one compiled call. Done in Python
    (the bounds, a closure, ten numpy scalar stores, two calls into compiled code) the hand-off
    of a piece that does nothing took 5.3 us. Returns the number of pieces."""
    if total <= 0:
        return 0
    step = _piece_step(total, parts, multiple)
    n = 0
    for lo in range(0, total, step):
        row = ints[n]
        row[0] = NATIVE
        row[1] = address
        row[2] = argument
        row[3] = lo
        row[4] = min(lo + step, total)
        n += 1
    post(ctrl, GEMM, n, syscall)
    run_gemm(ctrl, ints, floats)
    return n


@njit(cache=True, nogil=True, inline="always")
def _lead(x, cols):  # pragma: no cover - compiled
    """A row-major operand's leading dimension: its row stride in elements (at least the row
    length for a single row, which numpy may give any stride)."""
    return x.strides[0] // x.itemsize if x.shape[0] > 1 else max(cols, 1)


def _gemm2d_signatures() -> list:
    """:func:`run_gemm2d`'s two signatures, float32 and float64 operands of any layout, the
    factors read-only (one compiled function each, whatever views a run passes)."""
    i64, table = types.int64, types.Array(types.int64, 2, "C")
    sigs = []
    for real in (types.float32, types.float64):
        op, out = types.Array(real, 2, "A", readonly=True), types.Array(real, 2, "A")
        sigs.append(
            i64(types.Array(types.int64, 1, "C"), table, types.Array(types.float64, 2, "C"),
                i64, i64, i64, i64, op, op, out, types.float64, i64)
        )  # fmt: skip
    return sigs


@njit(_gemm2d_signatures(), cache=True, nogil=True)
def run_gemm2d(
    ctrl, ints, floats, syscall, variant, address, flags, a, b, c, beta, parts
):  # pragma: no cover - compiled
    """``c = a @ b + beta * c`` (2-D, untransposed, rows of any stride) as a GEMM job of the
    routine at ``address``: ``parts`` blocks of columns (multiples of 16) where there are at
    least as many columns as rows, else of rows (multiples of 4), the table's rows written,
    posted and run in one compiled call. Built in Python, the rows of one product took 6.8 us
    (operand addresses from numpy, a list of tuples) and the table's fill 2 more: a pointwise
    convolution's hand-off, at every layer. Returns the number of pieces."""
    m, k = a.shape
    n = b.shape[1]
    size = c.itemsize
    lda, ldb, ldc = _lead(a, k), _lead(b, n), _lead(c, n)
    a0, b0, c0 = a.ctypes.data, b.ctypes.data, c.ctypes.data
    by_columns = n >= m
    total = n if by_columns else m
    multiple = 16 if by_columns else 4
    step = _piece_step(total, parts, multiple)
    count = 0
    for lo in range(0, total, step):
        hi = min(lo + step, total)
        row = ints[count]
        row[0], row[1], row[2], row[5], row[7], row[9], row[11] = (
            variant, address, flags, k, lda, ldb, ldc,
        )  # fmt: skip
        if by_columns:
            row[3], row[4] = m, hi - lo
            row[6], row[8], row[10] = a0, b0 + lo * size, c0 + lo * size
        else:
            row[3], row[4] = hi - lo, n
            row[6], row[8], row[10] = a0 + lo * lda * size, b0, c0 + lo * ldc * size
        floats[count, 0] = 1.0
        floats[count, 1] = beta
        count += 1
    post(ctrl, GEMM, count, syscall)
    run_gemm(ctrl, ints, floats)
    return count


@njit(cache=True, nogil=True)
def wait_done(ctrl, total):  # pragma: no cover - compiled
    """Poll until ``DONE`` reaches ``total`` (the pieces of a Python job other threads run)."""
    while _load(ctrl, DONE) < total:
        _pause()


@njit(cache=True, nogil=True)
def finish(ctrl):  # pragma: no cover - compiled
    """One more piece done (atomically: several threads finish pieces at once)."""
    _fetch_add(ctrl, DONE, 1)


def tables(capacity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A new ``ctrl`` array and piece tables of ``capacity`` rows."""
    return (
        np.zeros(CTRL_SIZE, np.int64),
        np.zeros((capacity, INT_COLUMNS), np.int64),
        np.zeros((capacity, FLOAT_COLUMNS), np.float64),
    )


def warm() -> None:
    """Compile (or load from the disk cache) every function above now."""
    ctrl, ints, floats = tables(1)
    serve(ctrl, ints, floats, 0, 0, 0, 0)
    post(ctrl, PYTHON, 0, 0)
    run_gemm(ctrl, ints, floats)
    run_native(ctrl, ints, floats, 0, 0, 0, 0, 1, 1)
    wait_done(ctrl, 0)
    finish(ctrl)


def syscall_address() -> int:
    """The address of libc's ``syscall`` (Linux), or 0 where it cannot be found."""
    import ctypes

    try:
        return ctypes.cast(ctypes.CDLL(None).syscall, ctypes.c_void_p).value or 0
    except (OSError, AttributeError):
        return 0


def timespec(seconds: float) -> np.ndarray:
    """A ``struct timespec`` of ``seconds`` for the futex wait (kept alive by its owner)."""
    whole = int(seconds)
    return np.array([whole, int((seconds - whole) * 1e9)], np.int64)
