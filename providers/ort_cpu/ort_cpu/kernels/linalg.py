"""Linear algebra kernels: MatMul, Gemm, MatMulInteger, Einsum, Det.

float16 and ml_dtypes floats are multiplied in float32 (numpy has no float16 BLAS) and cast back.
"""

from __future__ import annotations

import numpy as np

from ort_core.provider import FLOAT_TYPES, NUMERIC_TYPES

from . import _blas
from ._registry import builder, kernel
from ._rows import add as add_rows

INT8_TYPES = frozenset(map(np.dtype, (np.int8, np.uint8)))
_SMALL = 1 << 16  # multiply-adds below which a 2-D MatMul is numpy's own call


def _work(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.float16 or x.dtype.kind == "V":
        return x.astype(np.float32)
    return x


@kernel("MatMul", since=1, dtypes=NUMERIC_TYPES)
def matmul(a, b):
    if (
        a.ndim == 2
        and b.ndim == 2
        and a.dtype.char in "fd"
        and a.shape[0] * a.shape[1] * b.shape[1] < _SMALL
    ):  # two small float32/float64 matrices (a scikit-learn pipeline's): numpy's product,
        # through np.dot (the same BLAS call; np.matmul's dispatch took 0.4 us more of 1.0)
        return np.dot(a, b)
    aw, bw = _work(a), _work(b)
    if aw.ndim > 2 and bw.ndim == 2 and aw.flags.c_contiguous:
        # (..., M, K) x (K, N): one 2-D GEMM over all rows instead of a GEMM per batch entry
        y = _blas.matmul(aw.reshape(-1, aw.shape[-1]), bw)
        return y.reshape(*aw.shape[:-1], bw.shape[-1]).astype(a.dtype, copy=False)
    y = stacked_matmul(aw, bw)
    if y is None:
        y = np.asarray(_blas.matmul(aw, bw))
    return y.astype(a.dtype, copy=False)


def _as_stack(x: np.ndarray):
    """(matrices, transposed) for a (..., R, C) operand stored row-major, or as the transpose of
    a row-major array (a Transpose node's view); None otherwise."""
    if x.flags.c_contiguous:
        return x.reshape(-1, *x.shape[-2:]), False
    xt = np.swapaxes(x, -1, -2)
    if xt.flags.c_contiguous:
        return xt.reshape(-1, *xt.shape[-2:]), True
    return None


def stacked_matmul(aw: np.ndarray, bw: np.ndarray) -> np.ndarray | None:
    """A stack of products with the same leading shape (attention written out as MatMuls: Q K^T
    per head, then the probabilities times V) as one batch of GEMMs
    (:func:`._blas.find_gemm_batch`), the products shared among the run's threads instead of one
    threaded GEMM after another; None where that does not apply (broadcast leading axes, other
    dtypes or layouts, no direct GEMM)."""
    if aw.ndim < 3 or aw.shape[:-2] != bw.shape[:-2] or aw.dtype != bw.dtype:
        return None
    m, k, n = *aw.shape[-2:], bw.shape[-1]
    if m * k * n <= _blas.BATCH_MIN_MNK:  # small products: numpy's loop is as fast, and cheaper
        return None
    batch = _blas.find_gemm_batch(aw.dtype)
    sa, sb = _as_stack(aw), _as_stack(bw)
    if batch is None or sa is None or sb is None:
        return None
    y = np.empty((*aw.shape[:-1], n), aw.dtype)
    batch(sa[0], sb[0], y.reshape(-1, m, n), trans_a=sa[1], trans_b=sb[1])
    return y


#: a constant transposed Gemm weight up to this size is also kept as a (K, N) copy, which A of
#: at most :data:`GEMV_ROWS` rows multiplies: each product then streams the weights row after
#: row (one thread, weights not in cache, (N, K) view -> copy, us: 1000 x 544 221 -> 128,
#: 1000 x 1280 379 -> 312; 1000 x 2048 483 -> 469, 4096 x 4096 3081 -> 2789)
GEMV_COPY_BYTES = 6 << 20
GEMV_ROWS = 4


@builder("Gemm", since=1, dtypes=NUMERIC_TYPES,
         attributes=("alpha", "beta", "transA", "transB", "broadcast"))  # fmt: skip
def gemm(info):
    alpha = float(info.attr("alpha", 1.0))
    beta = float(info.attr("beta", 1.0))
    trans_a = bool(info.attr("transA", 0))
    trans_b = bool(info.attr("transB", 0))
    b_const = info.constant(1)
    b_pre = rows_b = None
    if b_const is not None:  # converted once to the working type; a transposed B stays a view
        # (BLAS reads either layout packed the same way; a transposed copy would double the
        # memory of large Gemm weights)
        b_pre = _work(b_const).T if trans_b else _work(b_const)
        if trans_b and b_pre.ndim == 2 and b_pre.nbytes <= GEMV_COPY_BYTES:
            # a classifier's (N, K) weights read by few rows of A: BLAS's GEMV over B's
            # columns streams B row after row from memory, over (N, K)'s rows it does not
            rows_b = np.ascontiguousarray(b_pre)
    # a constant B and C of float32/float64 with alpha 1 and A as given: small products are
    # numpy's call and one in-place add of C times beta, prepared once (a classifier head,
    # (1, 200) x (200, 2): 5.5 -> 2 us)
    quick = (
        b_pre is not None
        and b_pre.ndim == 2
        and b_pre.dtype.char in "fd"
        and alpha == 1.0
        and not trans_a
    )
    c_pre = None
    if quick and info.has_input(2) and beta != 0.0:  # C must be a constant of one row at most
        c_const = info.constant(2)
        c_pre = (
            None if c_const is None else np.asarray(c_const, b_pre.dtype) * b_pre.dtype.type(beta)
        )
        quick = (
            c_pre is not None
            and c_pre.ndim <= 2
            and (c_pre.ndim < 2 or c_pre.shape[0] == 1)
            and (c_pre.ndim == 0 or c_pre.shape[-1] in (1, b_pre.shape[1]))
        )
    quick_dtype = b_pre.dtype if quick else None

    def run(a, b, c=None):
        if (
            a.dtype is quick_dtype
            and a.ndim == 2
            and a.shape[0] * a.shape[1] * b_pre.shape[1] < _SMALL
        ):
            y = np.matmul(a, b_pre)
            if c_pre is not None:
                np.add(y, c_pre, out=y)
            return y
        dt = a.dtype
        a = _work(a)
        if trans_a:
            a = a.T
        if b_pre is not None:
            b = rows_b if rows_b is not None and a.ndim == 2 and a.shape[0] <= GEMV_ROWS else b_pre
        else:
            b = _work(b)
            if trans_b:
                b = b.T
        y = _blas.matmul(a, b) if a.ndim == 2 and b.ndim == 2 else a @ b
        if alpha != 1.0:
            y = y * alpha if y.dtype.kind in "iu" else np.multiply(y, alpha, out=y)
        if c is not None and beta != 0.0:
            c = _work(c)
            c = c if beta == 1.0 else c * beta
            inplace = y.shape == np.broadcast_shapes(y.shape, c.shape)
            y = add_rows(y, c, y if inplace and y.dtype == np.result_type(y, c) else None)
        return np.asarray(y).astype(dt, copy=False)

    return run


def _zero_point(zp, axis_len: int, row: bool):
    """A MatMulInteger zero point as an int32 array broadcastable against its operand."""
    if zp is None:
        return None
    z = zp.astype(np.int32)
    if z.ndim == 1 and z.size == axis_len and axis_len != 1:
        return z[:, None] if row else z
    return z


@kernel("MatMulInteger", since=10, dtypes={0: INT8_TYPES, 1: INT8_TYPES})
def matmul_integer(a, b, a_zero_point=None, b_zero_point=None):
    # float64 products and sums are exact here (|a*b| < 2**16, K far below 2**37)
    af = a.astype(np.float64)
    bf = b.astype(np.float64)
    azp = _zero_point(a_zero_point, a.shape[-2] if a.ndim >= 2 else 1, row=True)
    bzp = _zero_point(b_zero_point, b.shape[-1] if b.ndim >= 2 else 1, row=False)
    if azp is not None:
        af -= azp
    if bzp is not None:
        bf -= bzp
    return np.asarray(np.matmul(af, bf)).astype(np.int32)


@kernel("Einsum", since=12, dtypes=NUMERIC_TYPES)
def einsum(*xs, equation=""):
    eq = equation.replace(" ", "")
    dt = xs[0].dtype
    ws = [_work(x) for x in xs]
    return np.asarray(np.einsum(eq, *ws, optimize=len(ws) > 1)).astype(dt, copy=False)


@kernel("Det", since=11, dtypes=FLOAT_TYPES)
def det(x):
    return np.asarray(np.linalg.det(_work(x))).astype(x.dtype, copy=False)
