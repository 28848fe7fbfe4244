"""Compiled pieces of the tree walk (:func:`._ml_jit.walk_trees`), which the spinning intra-op
pool's workers call without the GIL (:func:`ort_cpu._threads.split_compiled`).

A piece is a numba ``cfunc`` ``void(int64 argument, int64 lo, int64 hi)``: ``argument`` is the
address of an int64 block naming the arrays (their addresses and sizes, in the slots below), and
the piece walks trees ``lo`` to ``hi`` for every row. Handed to the pool as Python pieces, the
same walks made a worker wait for the GIL first, 30-60 us on the 2-core machines measured, and
two threads took 1.35-1.6x one thread's time at 100 rows.

This module imports numba when it is imported: the tree ensembles (``ml.py``) import it once
compiled kernels are on. The pieces compile with ``cache=True`` (loaded from the disk cache after
the first process).
"""

from __future__ import annotations

import numpy as np
from numba import carray, cfunc, njit, types

from .. import _threads
from .._spin_jit import block, filled, made, pointer
from . import _ml_jit
from ._ml_jit import (  # noqa: F401 - the argument block's slots, shared with _ml_jit
    BASE,
    COL,
    DIV,
    FEATURES,
    HAS,
    HAS_ROWS,
    LEAVES,
    N_BASE,
    N_NODES,
    N_OUT,
    N_START,
    N_TARGET,
    N_TREES,
    N_WEIGHTS,
    NODES,
    OUT,
    ROOTS,
    ROWS,
    SLOTS,
    START,
    TARGET,
    WEIGHT,
    X,
)

#: node tables (32 bytes a node) up to this size are shared by rows, larger ones by trees
ROWS_SPLIT_BYTES = 512 * 1024
#: rows shared by rows are cut in multiples of this: 100 rows as 52 and 48 (each walked as
#: groups of 12 and 8, :func:`._ml_jit.walk_trees`), not 56 and 44
ROWS_GRANULE = 4
#: pieces per thread of a walk shared by trees and of its sums, claimed one at a time: a core
#: slow to start leaves its later pieces to the other (rows stay one piece a thread, whole
#: groups of lanes). Two threads, interleaved with onnxruntime in one process in blocks of ten
#: runs after 20 ms idle, median us with one piece a thread / four: et_cls_b100 372 / 288 and
#: 367 / 255, hgb_reg_b100 327 / 314 (onnxruntime 707, 441); shared by rows too, gb_cls_b100
#: lost (152 / 167). In the benchmark's geometry (20 ms of runs after 50 ms idle) the same:
#: et_cls_b100 194 / 192, rf_cls_b100 94 / 96
PER_THREAD = 4
_SIGNATURE = types.void(types.int64, types.int64, types.int64)
_walk_trees = _ml_jit.walk_trees.jitted()
_add_leaves = _ml_jit.add_leaves.jitted()


@njit(inline="always")
def _forest(argument, dtype, width):  # pragma: no cover - compiled
    """The argument block ``a`` and the walk's arrays it names: x, the node table (as int32 and
    as ``dtype`` rows of ``width``), the roots, the leaves."""
    a = carray(pointer(argument), SLOTS, np.int64)
    x = carray(pointer(a[X]), (a[ROWS], a[FEATURES]), dtype)
    nodes = carray(pointer(a[NODES]), (a[N_NODES], 8), np.int32)
    values = carray(pointer(a[NODES]), (a[N_NODES], width), dtype)
    roots = carray(pointer(a[ROOTS]), a[N_TREES], np.int32)
    leaves = carray(pointer(a[LEAVES]), (a[ROWS], a[N_TREES]), np.int32)
    return a, x, nodes, values, roots, leaves


@njit(inline="always")
def _add(argument, a, leaves, dtype, lo, hi):  # pragma: no cover - compiled
    """:func:`._ml_jit.add_leaves` of rows ``lo`` to ``hi`` with the weights, sums, flags,
    base and divisor the block ``a`` (at ``argument``) names."""
    start = carray(pointer(a[START]), a[N_START], np.int32)
    target = carray(pointer(a[TARGET]), a[N_TARGET], np.int32)
    weight = carray(pointer(a[WEIGHT]), a[N_WEIGHTS], dtype)
    out = carray(pointer(a[OUT]), (a[ROWS], a[N_OUT]), dtype)
    has = carray(pointer(a[HAS]), (a[HAS_ROWS], a[N_OUT]), np.bool_)
    base = carray(pointer(a[BASE]), a[N_BASE], dtype)
    div = carray(pointer(argument + DIV * 8), 1, np.float64)[0]
    _add_leaves(leaves, start, target, weight, out, has, dtype(div), base, lo, hi)


def _walk_piece(dtype, width: int):
    """The piece walking trees ``lo`` to ``hi`` for every row, inputs of ``dtype`` (node table
    rows of ``width`` of them)."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a, x, nodes, values, roots, leaves = _forest(argument, dtype, width)
        _walk_trees(x, nodes, values, a[COL], roots, lo, hi, leaves)

    return cfunc(_SIGNATURE, cache=True)(piece)


def _sums_piece(dtype):
    """The piece adding the leaves' weights of rows ``lo`` to ``hi``, in ``dtype``."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), SLOTS, np.int64)
        leaves = carray(pointer(a[LEAVES]), (a[ROWS], a[N_TREES]), np.int32)
        _add(argument, a, leaves, dtype, lo, hi)

    return cfunc(_SIGNATURE, cache=True)(piece)


def _rows_piece(dtype, width: int):
    """The piece walking rows ``lo`` to ``hi`` down every tree, then adding their leaves'
    weights (none where the block names no ``out``)."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a, x, nodes, values, roots, leaves = _forest(argument, dtype, width)
        _walk_trees(x[lo:hi], nodes, values, a[COL], roots, 0, a[N_TREES], leaves[lo:hi])
        if a[N_OUT] != 0:
            _add(argument, a, leaves, dtype, lo, hi)

    return cfunc(_SIGNATURE, cache=True)(piece)


_WIDTH = {np.float32: 8, np.float64: 4}  # values in a 32-byte node row


def address(kind: str, dtype) -> int:
    """The address of the ``"walk"`` or ``"sums"`` piece for inputs of ``dtype``."""
    if kind == "walk":
        return made(_walk_piece, dtype, _WIDTH[dtype])
    if kind == "rows":
        return made(_rows_piece, dtype, _WIDTH[dtype])
    return made(_sums_piece, dtype)


def warm(dtypes, n_nodes: int) -> None:
    """Load (or compile) the pieces that :func:`split_walk` will use for a forest of
    ``n_nodes`` nodes and inputs of ``dtypes`` (float32, float64) now, at session creation, for
    a session whose runs will share its walks among threads (see
    ``ort_cpu._threads.will_split``)."""
    kinds = ("rows",) if by_rows(n_nodes) else ("walk", "sums")
    for dtype in dtypes:
        for kind in kinds:
            address(kind, dtype)


def by_rows(n_nodes: int) -> bool:
    """Whether :func:`split_walk` shares a forest of ``n_nodes`` nodes by rows."""
    return n_nodes * 32 <= ROWS_SPLIT_BYTES


def split_walk(x, leaves, template, sums=None) -> bool:
    """Walk every row of ``x`` [N, F] down the trees into ``leaves`` [N, T] (C-contiguous) and,
    unless ``sums`` is None, add the leaves' weights (``sums``: ``start, target, weight, out,
    has, div, base`` as :func:`._ml_jit.add_leaves` takes them, ``out`` and ``has``
    C-contiguous), the work shared among the run's threads. ``template``: :func:`._ml_jit.template`'s
    slots for the forest and, with ``sums``, :func:`._ml_jit.sums_slots`' for those weights,
    that base and divisor. False (nothing done) where the run has no spinning pool free.

    A forest whose node table fits :data:`ROWS_SPLIT_BYTES` is shared by rows, each thread
    walking and summing its own rows in one piece (gradient boosting's 200 shallow trees over
    100 rows, two threads: 92 -> 75 us). A larger one is shared by trees, each thread walking
    its own for every row, so that each reads only its part of the table; then the sums by rows
    (a random forest's 870 KB table: 126 -> 119 us, an extra-trees' 2.3 MB: 314 -> 288). The
    call's addresses go into the block in one compiled call (:func:`._spin_jit.filled`): six
    ``.ctypes.data`` in Python took about 8 us of each batch."""
    if not _threads.spinning():
        return False
    x = np.ascontiguousarray(x)
    n = x.shape[0]
    if sums is None:
        a, at = filled(template, X, x, LEAVES, leaves)  # alive until the pieces are done
    else:
        start, target, weight, out, has, div, base = sums
        a, at = filled(template, X, x, LEAVES, leaves, OUT, out, HAS, has)
        a[N_OUT], a[HAS_ROWS] = out.shape[1], len(has)
    a[ROWS], a[FEATURES] = n, x.shape[1]
    dtype = x.dtype.type
    if by_rows(a[N_NODES]) and n >= 2 * _ml_jit.LANES:
        return _threads.split_compiled(n, address("rows", dtype), at, ROWS_GRANULE)
    if not _threads.split_compiled(a[N_TREES], address("walk", dtype), at, 1, PER_THREAD):
        return False
    if sums is not None and not _threads.split_compiled(
        n, address("sums", dtype), at, 1, PER_THREAD
    ):
        _add_leaves(leaves, start, target, weight, out, has, dtype(div), base, 0, n)
    return True


# -- SVMClassifier's RBF kernel (:func:`._ml_jit.svc_rbf`), shared by rows ------------------------
#: slots of the SVM piece's argument block: the rows' address, count and features; the support
#: vectors' (transposed, [F, V]) address and count; the coefficients' address and rows; the
#: class starts' address and size; rho's address and the pairs; the scores' and the votes'
#: addresses; then gamma's float64 bits
SVC_X, SVC_ROWS, SVC_FEATURES, SVC_SV, SVC_VECTORS, SVC_COEF, SVC_COEF_ROWS = range(7)
SVC_STARTS, SVC_N_STARTS, SVC_RHO, SVC_PAIRS, SVC_SCORES, SVC_BEST, SVC_GAMMA = range(7, 14)
SVC_SLOTS = 14
#: rows x support vectors x (features + this) from which the kernel's rows are shared: each
#: kernel value is one float32 exp, as long as about this many features' squared differences
SVC_EXP_STEPS = 16
#: that work from which the rows are shared (a hand-off costs a few microseconds; one row of
#: 397 vectors over 20 features took about 2 us)
SVC_SPLIT_WORK = 1 << 17
_svc_rbf = _ml_jit.svc_rbf.jitted()


def _svc_piece():
    """The piece scoring rows ``lo`` to ``hi`` (:func:`._ml_jit.svc_rbf`, its scratch row of
    kernel values its own)."""

    def piece(argument, lo, hi):  # pragma: no cover - compiled
        a = carray(pointer(argument), SVC_SLOTS, np.int64)
        n, f, v, p = a[SVC_ROWS], a[SVC_FEATURES], a[SVC_VECTORS], a[SVC_PAIRS]
        x = carray(pointer(a[SVC_X]), (n, f), np.float32)
        sv_t = carray(pointer(a[SVC_SV]), (f, v), np.float32)
        coef = carray(pointer(a[SVC_COEF]), (a[SVC_COEF_ROWS], v), np.float32)
        starts = carray(pointer(a[SVC_STARTS]), a[SVC_N_STARTS], np.int64)
        rho = carray(pointer(a[SVC_RHO]), p, np.float32)
        scores = carray(pointer(a[SVC_SCORES]), (n, p), np.float32)
        best = carray(pointer(a[SVC_BEST]), n, np.int64)
        gamma = np.float32(carray(pointer(argument + SVC_GAMMA * 8), 1, np.float64)[0])
        kernel = np.empty(v, np.float32)
        _svc_rbf(x[lo:hi], sv_t, gamma, coef, starts, rho, kernel, scores[lo:hi], best[lo:hi])

    return cfunc(_SIGNATURE, cache=True)(piece)


def svc_template(sv_t, gamma, coef, starts, rho) -> np.ndarray:
    """The SVM piece's argument block with the model's constant arrays (kept alive by the
    caller) named; :func:`split_svc` fills in each call's."""
    ints = [0] * SVC_GAMMA
    ints[SVC_SV], ints[SVC_VECTORS] = sv_t.ctypes.data, sv_t.shape[1]
    ints[SVC_FEATURES] = sv_t.shape[0]
    ints[SVC_COEF], ints[SVC_COEF_ROWS] = coef.ctypes.data, coef.shape[0]
    ints[SVC_STARTS], ints[SVC_N_STARTS] = starts.ctypes.data, len(starts)
    ints[SVC_RHO], ints[SVC_PAIRS] = rho.ctypes.data, len(rho)
    return block(ints, (float(gamma),))


def warm_svc() -> None:
    """Load (or compile) the SVM piece now, at session creation."""
    made(_svc_piece)


def split_svc(template, x, scores, best) -> bool:
    """:func:`._ml_jit.svc_rbf` of the C-contiguous float32 rows ``x`` [N, F] into ``scores``
    [N, P] and ``best`` [N], the rows shared among the run's threads where the work pays for
    the hand-off (:data:`SVC_SPLIT_WORK`); False (nothing done) otherwise, or where the run
    has no spinning pool free. Each row's kernel values and sums are the one-thread loop's, so
    the results are its bits."""
    n = x.shape[0]
    if n < 2 or n * template[SVC_VECTORS] * (x.shape[1] + SVC_EXP_STEPS) < SVC_SPLIT_WORK:
        return False
    if not _threads.spinning():
        return False
    # (alive, with the arrays, until the pieces are done)
    a, at = filled(template, SVC_X, x, SVC_SCORES, scores, SVC_BEST, best)
    a[SVC_ROWS] = n
    return _threads.split_compiled(n, made(_svc_piece), at)
