"""Direct calls to the GEMM of the BLAS numpy already loaded, for what ``np.matmul`` cannot say.

``np.matmul`` always overwrites its output and wants operands it can describe with one stride per
axis. The BLAS ``gemm`` underneath also takes ``beta`` (accumulate into the output) and a leading
dimension per operand (any row stride, e.g. a window of a longer flat buffer). The per-tap
convolution needs both (one GEMM per kernel tap, each reading a slice of the padded input and all
adding into one output, with no column matrix and no temporary per tap), and the Winograd one
reads its transformed tiles in place. :func:`find_gemm_batch` runs a stack of products
(Winograd's 16, attention heads, stacked MatMuls) one GEMM call each, the products shared among
the run's threads where ``np.matmul`` would run one threaded GEMM after another (OpenBLAS's own
strided batch routine is not used: :func:`_batch_over` says why).

The library is numpy's own OpenBLAS (numpy's wheels bundle one, as do conda-forge's builds),
its symbols looked up the way numpy's core module resolves them, so that another OpenBLAS in the
process (scipy's, which numba imports) is never the one called (see
:func:`ort_cpu._threads.blas_libraries`). During a run it is kept on one thread and large
products are split among the run's intra-op threads here (:func:`matmul`, and inside the GEMMs
:func:`find_gemm` returns; :mod:`ort_cpu._threads` says why, and sets its thread count). Integer
arguments take the width the build uses: 64-bit for a symbol with the ``64_`` suffix of ILP64
builds, otherwise what ``openblas_get_config`` says (``USE64BITINT`` or not), so the call matches
the library's ABI on every platform. Other BLAS libraries (MKL, Accelerate, BLIS) are left
alone, as is any library whose routine fails a check against numpy on a small product: there
:func:`find_gemm` (:func:`find_gemm_batch`) is ``None`` and callers keep their numpy path.

:func:`matmul` gives float32 products of a short inner dimension (K up to
:data:`TILED_MAX_K`: a transformer's projections from its hidden size) to the compiled register
tiles of the 1x1 convolutions instead, which read ``b`` in place where OpenBLAS packs both
operands on every call (:func:`_tiled`).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable

import numpy as np

from .. import _threads
from .._aot import wide_vectors
from .._threads import blas_libraries as _blas_libraries

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_NN = _NO_TRANS * 256 + _NO_TRANS  # a spinning pool's code for two untransposed operands
_GEMV = 4  # added to a variant code for a GEMV row (ort_cpu._spin_jit.GEMV)
# scipy-openblas (numpy >= 2 wheels) prefixes and, for its ILP64 build, suffixes its symbols
_SYMBOLS = ("scipy_cblas_{}gemm64_", "cblas_{}gemm64_", "scipy_cblas_{}gemm", "cblas_{}gemm")
_CONFIGS = ("scipy_openblas_get_config64_", "openblas_get_config64_", "scipy_openblas_get_config",
            "openblas_get_config")  # fmt: skip

Gemm = Callable[[np.ndarray, np.ndarray, np.ndarray, float], None]
_lock = threading.RLock()  # the batch resolves the plain GEMM under it
_resolved: dict[tuple[str, str], Gemm | None] = {}


def _int_width(lib, symbol: str):
    """The ctypes integer type of the library's BLAS integers, or None if it cannot tell."""
    if symbol.endswith("64_"):
        return ctypes.c_int64
    for name in _CONFIGS:
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.argtypes, fn.restype = [], ctypes.c_char_p
            config = fn() or b""
            return ctypes.c_int64 if b"USE64BITINT" in config else ctypes.c_int32
    return None


def _bind(fn, ctype, itype) -> Gemm:
    ptr = ctypes.c_void_p
    fn.argtypes = (
        [ctypes.c_int] * 3 + [itype] * 3 + [ctype, ptr, itype, ptr, itype, ctype, ptr, itype]
    )
    fn.restype = None

    def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray, beta: float = 0.0) -> None:
        """``c = a @ b + beta * c`` for 2-D operands of the routine's dtype whose rows may have
        any (non-overlapping) stride but whose elements are contiguous within a row; other
        layouts go through numpy."""
        m, k = a.shape
        n = b.shape[1]
        if m == 0 or n == 0:
            return
        # small products: numpy's own call into the same BLAS costs ~10 us less than the
        # argument checks and conversions of this ctypes call (a 32x16x576 product: 11 vs 21 us).
        # One column is a GEMV, which numpy calls; the GEMM packs all of ``a`` first (a 1x1
        # convolution 1280 -> 1000 on one cell, one / two threads: 345 / 185-240 us against
        # 105-125 / 120-130; onnxruntime 85-105 / 75-110)
        if k == 0 or n == 1 or m * n * k < SMALL_MNK or not (_fits(a) and _fits(b) and _fits(c)):
            _numpy_product(a, b, c, beta)
            return
        work = m * n * k
        if (
            address is not None
            and work >= (_threads.MIN_SPIN_WORK if m == 1 else _threads.MIN_SPIN_GEMM)
            and (p := _threads.gemm_pool()) is not None
        ):
            # a spinning pool: pieces handed over without the GIL (see ort_cpu._spin_jit)
            if m > 1 or not gemm.gemv:  # blocks of columns or rows, cut in compiled code
                if p.run_gemm2d(variant, address, _NN, a, b, c, float(beta)):
                    return
            elif k >= GEMV_SPLIT_K * p.size:  # one row, long: blocks of b's rows (below)
                if _split_rows(p, variant + _GEMV, gemm.gemv, a, b, c, beta):
                    return
            else:  # one row: GEMV pieces
                rows = pieces(a[None], b[None], c[None], False, False, p.size)
                if p.run_gemm(rows, [(1.0, beta)] * len(rows)):
                    return
        if _threads.threads() > 1 and work >= _threads.MIN_PARALLEL_WORK:
            # the run's threads each take a block of columns (or rows, when there are more)
            if n >= m:
                cols = lambda lo, hi: one(a, b[:, lo:hi], c[:, lo:hi], beta)  # noqa: E731
                _threads.split(n, cols, m * n * k, 16)
            else:
                _threads.split(m, lambda lo, hi: one(a[lo:hi], b, c[lo:hi], beta), m * n * k, 4)
            return
        one(a, b, c, beta)

    def trans(a: np.ndarray, b: np.ndarray, c: np.ndarray, beta, trans_a, trans_b) -> None:
        """The bare call with ``op(a) @ op(b)``: ``a`` is stored (K, M) where ``trans_a``, ``b``
        (N, K) where ``trans_b``."""
        m, n = c.shape
        k = a.shape[0] if trans_a else a.shape[1]
        fn(
            _ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS,
            m, n, k, 1.0,
            a.ctypes.data, _lead(a, a.shape[1]), b.ctypes.data, _lead(b, b.shape[1]),
            beta, c.ctypes.data, _lead(c, n),
        )  # fmt: skip

    def one(a: np.ndarray, b: np.ndarray, c: np.ndarray, beta: float) -> None:
        trans(a, b, c, beta, False, False)

    # the routine as a spinning pool calls it: its address and the widths of its arguments
    try:
        address = ctypes.cast(fn, ctypes.c_void_p).value
    except (ctypes.ArgumentError, TypeError):  # not a foreign function: no compiled hand-off
        address = None
    variant = (itype is ctypes.c_int64) + 2 * (ctype is ctypes.c_double)

    def pieces(a, b, c, ta: bool, tb: bool, parts: int) -> list[tuple]:
        """Rows of a spinning pool's GEMM table (:mod:`ort_cpu._spin_jit`) for the stack of
        products ``c[i] = op(a[i]) @ op(b[i])`` (``a`` or ``b`` may be a stack of one, shared):
        one row per product, or per block of columns of each product where there are fewer
        products than ``parts``. Addresses are worked out from each operand's first element
        and strides (asking numpy for one costs about a microsecond)."""
        count, m, n = c.shape
        k = a.shape[1] if ta else a.shape[2]
        size = c.itemsize
        lda, ldb, ldc = _lead(a[0], a.shape[2]), _lead(b[0], b.shape[2]), _lead(c[0], n)
        a0, b0, c0 = a.ctypes.data, b.ctypes.data, c.ctypes.data
        sa = a.strides[0] if a.shape[0] > 1 else 0
        sb = b.strides[0] if b.shape[0] > 1 else 0
        spans = [(0, n)] if count >= parts else _threads.bounds(n, parts, 16)
        col = (ldb if tb else 1) * size  # bytes from one column of op(b) to the next
        gemv_at = gemm.gemv
        if m == 1 and gemv_at:
            # one row: GEMV pieces, y = op(b)^T x (a GEMM of one row packs all of b first,
            # 2-3x the GEMV's time when b comes from memory: a decoder step's products)
            incx = lda if ta else 1
            return [
                (variant + _GEMV, gemv_at, _NO_TRANS if tb else _TRANS,
                 hi - lo if tb else k, k if tb else hi - lo, 0,
                 b0 + i * sb + lo * col, ldb, a0 + i * sa, incx,
                 c0 + i * c.strides[0] + lo * size, 1)
                for i in range(count)
                for lo, hi in spans
            ]  # fmt: skip
        flags = (_TRANS if ta else _NO_TRANS) * 256 + (_TRANS if tb else _NO_TRANS)
        return [
            (variant, address, flags, m, hi - lo, k, a0 + i * sa, lda,
             b0 + i * sb + lo * col, ldb, c0 + i * c.strides[0] + lo * size, ldc)
            for i in range(count)
            for lo, hi in spans
        ]  # fmt: skip

    gemm.gemv = 0  # the matching GEMV routine's address, once checked (_resolve)
    gemm.direct = one  # the bare call, for the check against numpy (_works) and row blocks
    gemm.trans = trans
    gemm.pieces = pieces if address is not None else None
    return gemm


#: one-row products (a decoder step's) with at least this many rows of ``b`` per thread are
#: split by blocks of those rows (:func:`_split_rows`)
GEMV_SPLIT_K = 256


def _split_rows(pool, variant: int, gemv: int, a, b, c, beta: float) -> bool:
    """``c = a @ b + beta * c`` for one row ``a`` (1, K) and a row-major ``b`` (K, N), each
    thread multiplying its block of ``b``'s rows (a contiguous stretch of memory it streams
    alone) into its own partial row, summed at the end. A split by columns has every thread read
    part of each of ``b``'s rows: with rows of 768 floats that scaled 1.17x at 2 threads, the
    product being memory-bound."""
    k, n = b.shape
    parts = pool.size
    spans = _threads.bounds(k, parts)
    if len(spans) < 2 or not (b.flags.c_contiguous and a.flags.c_contiguous):
        return False
    partial = np.empty((len(spans) - 1, n), c.dtype)
    size = c.itemsize
    rows, floats = [], []
    for j, (lo, hi) in enumerate(spans):
        y = c if j == 0 else partial[j - 1]
        rows.append(
            (variant, gemv, _TRANS, hi - lo, n, 0, b.ctypes.data + lo * n * size, n,
             a.ctypes.data + lo * size, 1, y.ctypes.data, 1)
        )  # fmt: skip
        floats.append((1.0, beta if j == 0 else 0.0))
    if not pool.run_gemm(rows, floats):
        return False
    for row in partial:
        c += row
    return True


#: products below this many multiply-adds go through np.matmul (see ``_bind``)
SMALL_MNK = 1 << 20

#: batches of products of at most this many multiply-adds each go through np.matmul's loop,
#: which costs less per product than a ctypes call
BATCH_MIN_MNK = 100**3


def _batch_over(gemm: Gemm) -> Gemm:
    """A stack of products, each one call of the plain GEMM ``gemm`` (its ``trans``), shared
    among the run's threads.

    OpenBLAS 0.3.30 has a strided batch GEMM of its own, but it hands the products to its own
    worker threads whatever ``openblas_set_num_threads`` says: under the provider's one-thread
    pin a "one-thread" session ran its Winograd convolutions and attention heads on every core,
    and at two threads the OpenBLAS worker then spun for a tenth of a second on the core the
    provider's second thread needed (VGG-19 at two threads: 449 ms with it, 375 ms with
    OpenBLAS kept to one thread by its environment variable). So the batch is a loop here."""
    call, pieces = gemm.trans, gemm.pieces

    def gemm_batch(
        a: np.ndarray,
        b: np.ndarray,
        c: np.ndarray,
        beta: float = 0.0,
        trans_a: bool = False,
        trans_b: bool = False,
    ) -> None:
        """``c[i] = op(a[i]) @ op(b[i]) + beta * c[i]`` for 3-D operands of the routine's dtype,
        each a stack of matrices whose rows may have any stride but whose elements are
        contiguous within a row (a stack of one broadcasts); ``op`` transposes where
        ``trans_a``/``trans_b`` say (``a`` then holds (K, M) matrices, ``b`` (N, K) ones). The
        run's threads take whole products, or blocks of every product's columns when there
        are fewer products than threads."""
        count, m, n = c.shape
        k = a.shape[1] if trans_a else a.shape[2]
        if count == 0:
            return
        fits = _fits(a) and _fits(b) and _fits(c)
        work = count * m * n * k
        if (
            fits
            and pieces is not None
            and work >= _threads.MIN_SPIN_WORK
            and (m * n * k > BATCH_MIN_MNK or count > 1)
            and (p := _threads.gemm_pool()) is not None
        ):
            # a spinning pool: one piece per product, or per block of columns of each product
            # when there are fewer products than threads. Small products too, when there are
            # several (ShuffleNet's grouped 1x1s, four 68 x 68 x 196: 77 us at one thread, 85
            # at two through numpy's loop; attention's heads)
            rows = pieces(a, b, c, trans_a, trans_b, p.size)
            if p.run_gemm(rows, [(1.0, beta)] * len(rows)):
                return
        # small products (empty ones included) and layouts BLAS cannot take: numpy
        if m * n * k <= BATCH_MIN_MNK or not fits:
            op_a = np.swapaxes(a, 1, 2) if trans_a else a
            op_b = np.swapaxes(b, 1, 2) if trans_b else b
            _numpy_product(op_a, op_b, c, beta)
            return
        ia = (lambda i: i) if a.shape[0] > 1 else (lambda i: 0)
        ib = (lambda i: i) if b.shape[0] > 1 else (lambda i: 0)

        def products(lo: int, hi: int) -> None:
            for i in range(lo, hi):
                call(a[ia(i)], b[ib(i)], c[i], beta, trans_a, trans_b)

        threads = _threads.threads()
        if threads <= 1 or work < _threads.MIN_PARALLEL_WORK or count >= threads:
            _threads.split(count, products, work)
            return

        def cols(lo: int, hi: int) -> None:
            for i in range(count):
                bb = b[ib(i), lo:hi] if trans_b else b[ib(i), :, lo:hi]
                call(a[ia(i)], bb, c[i, :, lo:hi], beta, trans_a, trans_b)

        _threads.split(n, cols, work, 16)

    return gemm_batch


def _fits(x: np.ndarray) -> bool:
    """Whether BLAS can take ``x`` (a matrix or a stack of them) as it lies: aligned, elements
    contiguous within a row, rows (and matrices) apart by non-negative whole elements, rows not
    overlapping. A broadcast view (zero row stride) or an unaligned buffer does not fit."""
    size = x.itemsize
    if not x.flags.aligned or x.strides[-1] != size:
        return False
    if x.shape[-2] > 1 and (x.strides[-2] < x.shape[-1] * size or x.strides[-2] % size):
        return False
    return x.ndim == 2 or x.shape[0] <= 1 or (x.strides[0] >= 0 and x.strides[0] % size == 0)


def _numpy_product(a: np.ndarray, b: np.ndarray, c: np.ndarray, beta: float) -> None:
    """``c = a @ b + beta * c`` by numpy (any layout)."""
    if beta == 0.0:
        np.matmul(a, b, out=c)
    else:
        if beta != 1.0:
            c *= beta
        c += np.matmul(a, b)


def _lead(x: np.ndarray, cols: int) -> int:
    """The leading dimension of a row-major 2-D operand: its row stride in elements (numpy may
    give a single row any stride; BLAS wants at least the row length)."""
    return x.strides[0] // x.itemsize if x.shape[0] > 1 else max(cols, 1)


def _works(kind: str, gemm: Gemm, dtype) -> bool:
    """Products over row-strided views, accumulated once, against numpy: one 3x4 @ 4x5 for the
    GEMM; two 101x100 @ 100x100 (just past numpy's share) for the batch, plain and with either
    operand transposed."""
    rng = np.random.default_rng(0)
    m, k, n = (101, 100, 100) if kind == "batch" else (3, 4, 5)
    a = rng.standard_normal((2, m, k + 2)).astype(dtype)[:, :, :k]
    b = rng.standard_normal((2, k, n + 2)).astype(dtype)[:, :, 1 : n + 1]
    c0 = rng.standard_normal((2, m, n + 3)).astype(dtype)
    c = c0.copy()
    want = c0.copy()
    if kind == "batch":
        gemm(a, b, c[:, :, 2 : n + 2], 1.0)
        want[:, :, 2 : n + 2] += a @ b
        bt = np.ascontiguousarray(np.swapaxes(b, 1, 2))  # (N, K) matrices, used transposed
        gemm(a, bt, c[:, :, 2 : n + 2], 1.0, trans_b=True)
        want[:, :, 2 : n + 2] += a @ b
        at = np.ascontiguousarray(np.swapaxes(a, 1, 2))  # (K, M) matrices, used transposed
        gemm(at, b, c[:, :, 2 : n + 2], 1.0, trans_a=True)
        want[:, :, 2 : n + 2] += a @ b
    else:
        getattr(gemm, "direct", gemm)(a[1], b[1], c[1, :, 2 : n + 2], 1.0)
        want[1, :, 2 : n + 2] += a[1] @ b[1]
    return bool(np.allclose(c, want, rtol=1e-4, atol=1e-3))


def find_gemm(dtype) -> Gemm | None:
    """The direct GEMM for float32 or float64, or ``None`` where none can be used."""
    return _find("gemm", dtype)


def find_gemm_batch(dtype) -> Gemm | None:
    """A stack of products for float32 or float64 (:func:`_batch_over`), or ``None`` where
    :func:`find_gemm` is."""
    return _find("batch", dtype)


_PREFIX = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}


def _find(kind: str, dtype) -> Gemm | None:
    prefix = _PREFIX.get(dtype if isinstance(dtype, np.dtype) else np.dtype(dtype))
    if prefix is None:
        return None
    key = (kind, prefix)
    if key in _resolved:  # every call after the first: no lock (dict reads are atomic)
        return _resolved[key]
    with _lock:
        if key not in _resolved:
            _resolved[key] = _resolve(kind, prefix, np.dtype(dtype))
        return _resolved[key]


def _resolve(kind: str, prefix: str, dtype: np.dtype) -> Gemm | None:
    ctype = ctypes.c_float if prefix == "s" else ctypes.c_double
    if kind == "batch":
        gemm = _find("gemm", dtype)
        batch = None if gemm is None else _batch_over(gemm)
        return batch if batch is not None and _works(kind, batch, dtype) else None
    for lib in _blas_libraries():
        for pattern in _SYMBOLS:
            symbol = pattern.format(prefix)
            fn = getattr(lib, symbol, None)
            itype = None if fn is None else _int_width(lib, symbol)
            if itype is None:
                continue
            gemm = _bind(fn, ctype, itype)
            if _works(kind, gemm, dtype):
                gemm.gemv = _gemv_address(lib, symbol.replace("gemm", "gemv"), ctype, itype)
                return gemm
    return None


def _gemv_address(lib, symbol: str, ctype, itype) -> int:
    """The address of the library's ``cblas_?gemv`` (for a spinning pool's one-row products),
    after a check against numpy on a small product; 0 where it is missing or fails."""
    fn = getattr(lib, symbol, None)
    if fn is None:
        return 0
    ptr = ctypes.c_void_p
    fn.argtypes = [ctypes.c_int] * 2 + [itype] * 2 + [ctype, ptr, itype, ptr, itype, ctype, ptr]
    fn.argtypes += [itype]
    fn.restype = None
    dtype = np.float32 if ctype is ctypes.c_float else np.float64
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 7)).astype(dtype)  # row-major (5, 7), used transposed
    x = rng.standard_normal(5).astype(dtype)
    y = np.zeros(7, dtype)
    fn(_ROW_MAJOR, _TRANS, 5, 7, 1.0, a.ctypes.data, 7, x.ctypes.data, 1, 0.0, y.ctypes.data, 1)
    if not np.allclose(y, x @ a, rtol=1e-4, atol=1e-4):
        return 0
    return ctypes.cast(fn, ctypes.c_void_p).value or 0


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)``, its work shared among the run's threads (see
    :mod:`ort_cpu._threads`) when it is large: stacked products by blocks of the stack, a single
    product by blocks of columns (or of rows, when there are more). Same results as numpy's: each
    output element is one BLAS dot product either way."""
    if (
        a.ndim == 2
        and b.ndim == 2
        and a.shape[0] * a.shape[1] * b.shape[1] < _threads.MIN_SPIN_WORK
    ):  # two small matrices (many calls): nothing to decide; np.dot is the same BLAS call
        # with 0.4 us less dispatch than np.matmul
        return np.dot(a, b) if out is None else np.matmul(a, b, out=out)
    if out is None and _tiles_take(a, b):
        got = _tiled(a, b)
        if got is not None:
            return got
    if (
        _threads.threads() <= 1
        or a.ndim < 2
        or b.ndim < 2
        or a.dtype != b.dtype
        or a.dtype.kind != "f"
    ):
        return np.matmul(a, b, out=out)
    m, k = a.shape[-2:]
    n = b.shape[-1]
    lead = () if a.ndim == b.ndim == 2 else np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    count = 1
    for d in lead:
        count *= d
    work = count * m * n * k
    if work >= _threads.MIN_SPIN_WORK and _threads.gemm_pool() is not None:
        got = _spin_matmul(a, b, out, lead, count)
        if got is not None:
            return got
    if work < _threads.MIN_PARALLEL_WORK:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((*lead, m, n), a.dtype)
    if lead and lead[0] >= _threads.threads():
        # blocks of the first stacked axis (an operand without it, or with 1 there, broadcasts)
        def first(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
            return x[lo:hi] if x.ndim == len(lead) + 2 and x.shape[0] == lead[0] else x

        _threads.split(
            lead[0],
            lambda lo, hi: np.matmul(first(a, lo, hi), first(b, lo, hi), out=out[lo:hi]),
            work,
        )
    elif n >= m:
        _threads.split(n, lambda lo, hi: np.matmul(a, b[..., lo:hi], out=out[..., lo:hi]), work, 16)
    else:
        _threads.split(
            m, lambda lo, hi: np.matmul(a[..., lo:hi, :], b, out=out[..., lo:hi, :]), work, 4
        )
    return out


#: a float32 product (..., M, K) x (K, N) runs on the compiled register tiles of the 1x1
#: convolutions (:func:`._conv_jit.pointwise`: 4 rows of ``a`` by 64 columns of ``b`` summed in
#: registers, ``b`` read in place, nothing packed) from :data:`TILED_MIN_M` rows and
#: :data:`TILED_MIN_N` columns, with K up to :data:`TILED_MAX_K` (a block of K x 64 values of
#: ``b`` stays in the core's cache while every tile of rows reads it). One thread, us, OpenBLAS
#: -> tiles: 128 x 768 x 768 2219 -> 2040, 128 x 768 x 3072 8918 -> 6539, 197 x 768 x 2304
#: 7580 -> 7062, 512 x 768 x 768 6129 -> 5762; with K = 3072 OpenBLAS's blocking wins (7106
#: against 9826), and on one row its GEMV (99 against 184). AVX-512 only: AVX2's tiles are a
#: quarter the size (:data:`._conv_jit.WIDE`), and a Zen 3's OpenBLAS, which packs its panels,
#: ran 128 x 768 x 3072 in 7.4 ms against their 13.3 (128 x 768 x 768: 1.8 against 2.0)
TILED_MAX_K = 1024
TILED_MIN_M = 16
TILED_MIN_N = 64
_WIDE = wide_vectors()
_TILED: dict = {}  # "fn": the compiled kernel (None where compiled kernels are off)
_F32 = np.dtype(np.float32)


def _tiles_take(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether :func:`_tiled` takes ``a @ b`` (see :data:`TILED_MAX_K`)."""
    return (
        _WIDE
        and b.ndim == 2
        and a.ndim >= 2
        and a.dtype == _F32
        and b.dtype == _F32
        and a.shape[-1] == b.shape[0] <= TILED_MAX_K
        and b.shape[1] >= TILED_MIN_N
        and a.size >= TILED_MIN_M * b.shape[0] > 0
        and a.flags.c_contiguous
        and b.flags.c_contiguous
    )


def _tiled(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """``a @ b`` (a stack of rows times one matrix, as one product of the stacked rows) on the
    compiled tiles, shared among the run's threads as their pieces where it pays and the pool
    spins; None where compiled kernels are off."""
    from . import _conv_jit

    fn = _TILED.get("fn", False)
    if fn is False:
        fn = _TILED["fn"] = _conv_jit.warm_pointwise()
    if fn is None:
        return None
    k, n = b.shape
    m = a.size // k
    zeros = np.zeros(m, np.float32)  # no bias (a microsecond against a product of 1M and more)
    a2 = a.reshape(m, k)
    y = np.empty((*a.shape[:-1], n), np.float32)
    tiles, blocks = _conv_jit.pointwise_tiles(m), -(-n // _conv_jit.PW_CELLS)
    threads = _threads.threads()
    if threads > 1 and m * n * k >= _threads.MIN_SPIN_GEMM and _threads.spinning():
        from . import _conv_pieces as pieces

        by_tiles = blocks < 2 * threads
        template = pieces.block((1, k, 1, n), a2, zeros, (1, m, 1, n), (int(by_tiles), 0, 0),
                                (0.0, 0.0))  # fmt: skip
        total = tiles if by_tiles else blocks
        if pieces.split(pieces.POINTWISE, total, b.reshape(1, k, 1, n), y.reshape(1, m, 1, n),
                        template):  # fmt: skip
            return y
    fn(b.reshape(1, k, n), a2, zeros, y.reshape(1, m, n), _conv_jit.NO_RESIDUAL, 0, blocks, 0,
       tiles, 0, 0.0, 0.0)  # fmt: skip
    return y


def _spin_matmul(a, b, out, lead: tuple, count: int) -> np.ndarray | None:
    """:func:`matmul` as pieces of the direct GEMM on a spinning pool (see
    :mod:`ort_cpu._spin_jit`): one product (either operand may be a transposed view), a stack
    of products with the same leading shape, or a stack times one matrix (as one product of the
    stacked rows). None where the operands do not take that form (the caller goes on with its
    own split)."""
    m, k = a.shape[-2:]
    n = b.shape[-1]
    if out is not None and not out.flags.c_contiguous:
        return None  # the reshapes below must be views of it
    ta = a.ndim == 2 and not a.flags.c_contiguous and a.flags.f_contiguous
    tb = b.ndim == 2 and not b.flags.c_contiguous and b.flags.f_contiguous
    if a.ndim == 2 and b.ndim == 2 and (ta or tb):
        # a transposed view (Gemm's transB weights): the routine reads it transposed in place
        batch = find_gemm_batch(a.dtype)
        if batch is None:
            return None
        if out is None:
            out = np.empty((m, n), a.dtype)
        batch((a.T if ta else a)[None], (b.T if tb else b)[None], out[None], 0.0, ta, tb)
        return out
    if b.ndim == 2 and a.flags.c_contiguous:
        gemm = find_gemm(a.dtype)
        if gemm is None or gemm.pieces is None:
            return None
        if out is None:
            out = np.empty((*lead, m, n), a.dtype)
        gemm(a.reshape(-1, k), b, out.reshape(-1, n), 0.0)
        return out
    if a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2]:
        return None
    batch = find_gemm_batch(a.dtype)
    if batch is None:
        return None
    if out is None:
        out = np.empty((*lead, m, n), a.dtype)
    batch(a.reshape(count, m, k), b.reshape(count, k, n), out.reshape(count, m, n))
    return out
