"""Compiled loops of the ai.onnx.ml kernels (see ``ml.py``, ``ort_cpu._trees`` and
``ort_cpu._jit``): tree walks and sums, the RBF SVM classifier, linear scores, post transforms,
Normalizer and Scaler. At batch 1 these kernels cost what their numpy calls cost (about a
microsecond each), so each compiled function does in one call what took numpy ten.

Tree walks (:func:`forest`): one 32-byte row per node (``_trees.Walker.compile``); 8 lanes walk
at once so that their loads overlap and no branch depends on a comparison; the sums then run
tree after tree per (row, target) in the accumulation dtype, onnxruntime's order, so that the
scores agree to the bit. :func:`svc_rbf` follows onnxruntime's SVMClassifier operation by
operation (float32 kernel values, float64 pair sums), to the bit as well. The linear scores and
transforms keep numpy's operations, in an order within float32 rounding of numpy's and
onnxruntime's.

Each ``warm_*`` function compiles (or loads from the disk cache) what its kernels call, for
the argument types they pass, and returns None when compiled kernels are off: the kernels then
keep their numpy paths. Nothing here uses fastmath.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import LazyIntrinsic, available, jit
from ._exp_jit import _exp
from ._exp_jit import softmax_rows as _softmax_rows

LANES = 8  # (row, tree) pairs walked together: their loads overlap, no branch to mispredict
#: rows walked together down each tree in a batch (:func:`_walk_rows`' wide form)
ROW_LANES = 12


@jit()
def forest(x, nodes, values, col, roots, leaves, start, target, weight, out, has, div, base):
    """Walks every row of ``x`` [N, F] down every tree: ``leaves`` [N, T] (int32) gets the leaf
    index reached. Then, unless ``out`` is [0, 0], adds to ``out`` [N, C] (zeros) the weights
    of those leaves tree after tree, and marks in ``has`` [N, C] (unless [0, 0]) the pairs
    given a weight; then divides each sum by ``div`` (AVERAGE; 1 changes nothing) and adds
    ``base`` [C] (unless empty), onnxruntime's order: :func:`walk_trees` then
    :func:`add_leaves`, which a run's threads share among themselves in ``_trees``."""
    walk_trees(x, nodes, values, col, roots, 0, roots.shape[0], leaves)
    if out.shape[0] != 0:
        add_leaves(leaves, start, target, weight, out, has, div, base, 0, x.shape[0])


@jit()
def walk_trees(x, nodes, values, col, roots, t0, t1, leaves):
    """Walks every row of ``x`` [N, F] down trees ``t0`` to ``t1`` (excluded) of ``roots``:
    ``leaves[:, t]`` (int32) gets the leaf index reached in tree ``t``.

    ``nodes`` [M, 8] int32, one 32-byte row per node: feature, low child, high child, leaf index
    (-1: a branch, -2: a branch that sends NaN low), then the threshold's bits: ``values`` is
    the table viewed in ``x``'s dtype, the threshold in its column ``col``. A leaf reads feature
    0 against a NaN threshold and loops on itself. Indices are read as unsigned (no wrap-around
    test). Lanes walk together, one level per step: for a batch, 12 rows (or 8) down each tree
    in turn until all stand on a leaf (:func:`_walk_rows`); for fewer rows than 8, the trees of
    one row, each lane taking the next tree as soon as its own reaches a leaf
    (:func:`_walk_few`).

    The walk is compiled twice, for inputs with and without a NaN (:func:`_has_nan` decides
    per call): without one, a step is a single comparison, the low/high test of a NaN and the
    node's NaN flag are left out (a random forest's 100 trees over 100 rows: 209 -> 156 us).
    The two are functions of their own: inlined side by side into one function, the walk
    without a NaN ran slower (the same forest: 129 against 152 us)."""
    if t1 <= t0:
        return
    if _has_nan(x):
        _walk_nan(x, nodes, values, col, roots, t0, t1, leaves)
    else:
        _walk_plain(x, nodes, values, col, roots, t0, t1, leaves)


@jit()
def _walk_plain(x, nodes, values, col, roots, t0, t1, leaves):
    """:func:`walk_trees` for ``x`` without a NaN."""
    _walk(x, nodes, values, col, roots, t0, t1, leaves, False)


@jit()
def _walk_nan(x, nodes, values, col, roots, t0, t1, leaves):
    """:func:`walk_trees` for ``x`` holding a NaN."""
    _walk(x, nodes, values, col, roots, t0, t1, leaves, True)


@jit(inline="always")
def _has_nan(x):  # pragma: no cover - compiled
    """Whether ``x`` [N, F] holds a NaN."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            if x[i, j] != x[i, j]:
                return True
    return False


@jit(inline="always")
def _walk(x, nodes, values, col, roots, t0, t1, leaves, nan):  # pragma: no cover - compiled
    """:func:`walk_trees`' loops; ``nan`` (a constant at each call site, so that each copy
    keeps only its own step): whether a step must send NaN low where a node says so."""
    n = x.shape[0]
    c = np.uint32(col)
    if n < LANES:
        _walk_few(x, nodes, values, c, roots, t0, t1, leaves, nan)
        return
    # groups of 12 rows; rows left over take groups of 8 where fewer lanes are spare (a
    # spare lane costs a real one's steps): 1 to 4 left, the last 13 to 16 rows go as two
    wide_end = n - n % ROW_LANES
    if 0 < n - wide_end <= ROW_LANES - LANES and wide_end > 0:
        wide_end -= ROW_LANES
    for i in range(0, wide_end, ROW_LANES):
        _walk_rows(x, nodes, values, c, roots, t0, t1, leaves, i, i + ROW_LANES, nan, True)
    if LANES < n - wide_end <= ROW_LANES:  # 9 to 11 left
        _walk_rows(x, nodes, values, c, roots, t0, t1, leaves, wide_end, n, nan, True)
        return
    for i in range(wide_end, n, LANES):
        _walk_rows(x, nodes, values, c, roots, t0, t1, leaves, i, min(i + LANES, n), nan, False)


@jit()
def _walk_few(x, nodes, values, c, roots, t0, t1, leaves, nan):
    """:func:`_walk` of fewer rows than lanes: the trees of one row at a time, each lane
    taking the next tree as soon as its own reaches a leaf. A function of its own: inlined
    into :func:`_walk`, the batch walk beside it ran slower (a random forest's 100 rows: 126
    against 153 us)."""
    cur = np.empty(LANES, np.uint32)
    cols = np.empty(LANES, np.int64)
    for i in range(x.shape[0]):
        xi = x[i]
        nxt = t0
        for j in range(LANES):
            cols[j] = nxt if nxt < t1 else -1  # -1: a spare lane, walking for nothing
            cur[j] = roots[min(nxt, t1 - 1)]
            nxt += 1
        busy = min(LANES, t1 - t0)
        while busy > 0:
            for j in range(LANES):
                k = _step(nodes, values, c, xi, np.uint32(cur[j]), nan)
                leaf = nodes[k, 3]
                if leaf >= 0 and cols[j] >= 0:
                    leaves[i, cols[j]] = leaf
                    if nxt < t1:
                        cols[j] = nxt
                        k = np.uint32(roots[nxt])
                        nxt += 1
                    else:
                        cols[j] = -1
                        busy -= 1
                cur[j] = k


@jit(inline="always")
def _step(nodes, values, c, xr, k, nan):  # pragma: no cover - compiled
    """One level down from node ``k`` for the row ``xr``: no branch on the outcome; a leaf stays
    where it is. ``nan``: NaN goes low where the node says -2 (else a NaN compares false and
    goes high, as every node of a forest without -2 sends it)."""
    v = xr[np.uint32(nodes[k, 0])]
    go = v <= values[k, c]
    if nan:
        go = go | ((v != v) & (nodes[k, 3] == -2))
    return np.uint32(nodes[k, np.uint32(2) - np.uint32(go)])


@jit(inline="always")
def _walk_rows(x, nodes, values, c, roots, t0, t1, leaves, i0, i1, nan, wide):  # pragma: no cover
    """Rows ``i0`` to ``i1`` (at most 8, or 12 where ``wide``) down trees ``t0`` to ``t1``: a
    lane a row (spare lanes repeat the last row), down each tree in turn, one level per step
    until all stand on a leaf. ``wide`` is a constant at each call site, so that each copy
    keeps only its own lanes. Each lane's node is a local value the compiler keeps in a
    register: kept in an array, as the tree-major loop had them, every step stored and reloaded
    it (GradientBoosting's 200 trees of depth 3 over 100 rows: 183 -> 100 us; a random
    forest's deep trees 299 -> 209). Twelve lanes keep more loads in flight than eight: a
    random forest's 100 trees over 100 rows 160 -> 131 us, extra trees' 200 436 -> 356, 16
    lanes no better on tables that fit the core's cache."""
    last = i1 - 1
    x0, x1, x2, x3 = x[i0], x[min(i0 + 1, last)], x[min(i0 + 2, last)], x[min(i0 + 3, last)]
    x4, x5, x6 = x[min(i0 + 4, last)], x[min(i0 + 5, last)], x[min(i0 + 6, last)]
    x7, x8, x9 = x[min(i0 + 7, last)], x[min(i0 + 8, last)], x[min(i0 + 9, last)]
    x10, x11 = x[min(i0 + 10, last)], x[last]
    for t in range(t0, t1):
        r = np.uint32(roots[t])
        k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11 = r, r, r, r, r, r, r, r, r, r, r, r
        while True:
            k0 = _step(nodes, values, c, x0, k0, nan)
            k1 = _step(nodes, values, c, x1, k1, nan)
            k2 = _step(nodes, values, c, x2, k2, nan)
            k3 = _step(nodes, values, c, x3, k3, nan)
            k4 = _step(nodes, values, c, x4, k4, nan)
            k5 = _step(nodes, values, c, x5, k5, nan)
            k6 = _step(nodes, values, c, x6, k6, nan)
            k7 = _step(nodes, values, c, x7, k7, nan)
            if wide:
                k8 = _step(nodes, values, c, x8, k8, nan)
                k9 = _step(nodes, values, c, x9, k9, nan)
                k10 = _step(nodes, values, c, x10, k10, nan)
                k11 = _step(nodes, values, c, x11, k11, nan)
            if (
                nodes[k0, 3] >= 0 and nodes[k1, 3] >= 0 and nodes[k2, 3] >= 0
                and nodes[k3, 3] >= 0 and nodes[k4, 3] >= 0 and nodes[k5, 3] >= 0
                and nodes[k6, 3] >= 0 and nodes[k7, 3] >= 0
                and (not wide or (
                    nodes[k8, 3] >= 0 and nodes[k9, 3] >= 0 and nodes[k10, 3] >= 0
                    and nodes[k11, 3] >= 0
                ))
            ):  # fmt: skip
                break
        got = i1 - i0
        leaves[i0, t] = nodes[k0, 3]
        if got > 1:
            leaves[i0 + 1, t] = nodes[k1, 3]
        if got > 2:
            leaves[i0 + 2, t] = nodes[k2, 3]
        if got > 3:
            leaves[i0 + 3, t] = nodes[k3, 3]
        if got > 4:
            leaves[i0 + 4, t] = nodes[k4, 3]
        if got > 5:
            leaves[i0 + 5, t] = nodes[k5, 3]
        if got > 6:
            leaves[i0 + 6, t] = nodes[k6, 3]
        if got > 7:
            leaves[i0 + 7, t] = nodes[k7, 3]
        if wide and got > 8:
            leaves[i0 + 8, t] = nodes[k8, 3]
        if wide and got > 9:
            leaves[i0 + 9, t] = nodes[k9, 3]
        if wide and got > 10:
            leaves[i0 + 10, t] = nodes[k10, 3]
        if wide and got > 11:
            leaves[i0 + 11, t] = nodes[k11, 3]


@jit()
def add_leaves(leaves, start, target, weight, out, has, div, base, r0, r1):
    """For rows ``r0`` to ``r1`` (excluded) of ``leaves`` [N, T]: adds to ``out`` [N, C] (zeros)
    the weights ``weight[start[leaf]:start[leaf + 1]]`` of each leaf reached (to the targets
    ``target`` names) tree after tree, marks in ``has`` [N, C] (unless [0, 0]) the pairs given
    a weight, then divides each sum by ``div`` and adds ``base`` [C] (unless empty). Targets
    are distinct and in order within a leaf (``_trees.LeafValues.entries``): where every leaf
    has C weights, leaf ``l``'s are ``weight[l * C:(l + 1) * C]`` (:func:`_add_full`). An
    empty ``target`` with weights marks a round robin (gradient boosting's classes): every
    leaf of tree ``t`` gives one weight, to target ``t % C``, and ``has`` is known."""
    n_trees = leaves.shape[1]
    track = has.shape[0] > 0
    if out.shape[1] == 1 and not track:  # one target: at most one weight a leaf
        for i in range(r0, r1, 4):
            _add_single(leaves, start, weight, out, i, min(i + 4, r1), 0, 1)
        _finish_sums(out, div, base, r0, r1)
        return
    c = out.shape[1]
    if target.shape[0] == 0 and weight.shape[0] != 0:  # round robin: target k, trees k + jC
        for i in range(r0, r1, 4):
            for k in range(c):
                _add_single(leaves, start, weight, out, i, min(i + 4, r1), k, c)
        if track:  # every target has trees (a round robin's count is a multiple of C)
            has[r0:r1] = True
        _finish_sums(out, div, base, r0, r1)
        return
    if weight.shape[0] == (start.shape[0] - 1) * c:  # every leaf weighs every target, in order
        for i in range(r0, r1):
            for k in range(0, c, 4):
                _add_full(leaves, weight, out, i, k)
            if track:
                for k in range(c):
                    has[i, k] = n_trees > 0
        _finish_sums(out, div, base, r0, r1)
        return
    # rows innermost: the adds of one tree to different rows do not wait for each other
    for t in range(n_trees):
        for i in range(r0, r1):
            leaf = leaves[i, t]
            for e in range(start[leaf], start[leaf + 1]):
                k = target[e]
                out[i, k] += weight[e]
                if track:
                    has[i, k] = True
    _finish_sums(out, div, base, r0, r1)


@jit(inline="always")
def _add_full(leaves, weight, out, i, k0):  # pragma: no cover - compiled
    """Row ``i``'s sums of targets ``k0`` to ``k0 + 3`` (those below C) where every leaf has C
    weights, leaf ``l``'s at ``l * C``: tree after tree in four registers. Kept in ``out``, each
    add waited for the store of the one before (a random forest's 3 classes over 100 rows and
    100 trees: 77 us through the weight lists, 33 in ``out``, 11 here)."""
    c = out.shape[1]
    m = min(c - k0, 4)
    a0, a1, a2, a3 = (
        out[i, k0],
        out[i, k0 + min(1, m - 1)],
        out[i, k0 + min(2, m - 1)],
        out[i, k0 + m - 1],
    )
    for t in range(leaves.shape[1]):
        b = leaves[i, t] * c + k0
        a0 += weight[b]
        if m > 1:
            a1 += weight[b + 1]
        if m > 2:
            a2 += weight[b + 2]
        if m > 3:
            a3 += weight[b + 3]
    out[i, k0] = a0
    if m > 1:
        out[i, k0 + 1] = a1
    if m > 2:
        out[i, k0 + 2] = a2
    if m > 3:
        out[i, k0 + 3] = a3


@jit(inline="always")
def _finish_sums(out, div, base, r0, r1):  # pragma: no cover - compiled
    """Rows ``r0`` to ``r1`` of ``out`` divided by ``div``, then ``base`` added (unless empty)."""
    for i in range(r0, r1):
        for k in range(out.shape[1]):
            out[i, k] /= div
            if base.shape[0]:
                out[i, k] += base[k]


@jit(inline="always")
def _plus_leaf(s, leaf, start, weight):  # pragma: no cover - compiled
    """``s`` plus leaf ``leaf``'s one weight (``s`` where it has none)."""
    e = start[leaf]
    if start[leaf + 1] > e:
        return s + weight[e]
    return s


@jit(inline="always")
def _add_single(leaves, start, weight, out, i0, i1, k, step):  # pragma: no cover - compiled
    """Sums of rows ``i0`` to ``i1`` (at most 4) in target ``k`` of trees ``k``, ``k + step``,
    ``k + 2 step``... where each leaf gives at most one weight, to that target: each leaf's
    weight added to its row's sum tree after tree, the four sums in registers side by side
    (their additions do not wait for each other). A tree-major loop that went through each
    leaf's weight list and ``out`` in memory took 4x as long (78 -> 20 us for 200 trees over
    100 rows; gradient boosting's 3 classes of 100 trees each over 100 rows 121 -> 30)."""
    last = i1 - 1
    l0, l1, l2, l3 = leaves[i0], leaves[min(i0 + 1, last)], leaves[min(i0 + 2, last)], leaves[last]
    s0, s1, s2, s3 = out[i0, k], out[min(i0 + 1, last), k], out[min(i0 + 2, last), k], out[last, k]
    for t in range(k, leaves.shape[1], step):
        s0 = _plus_leaf(s0, l0[t], start, weight)
        s1 = _plus_leaf(s1, l1[t], start, weight)
        s2 = _plus_leaf(s2, l2[t], start, weight)
        s3 = _plus_leaf(s3, l3[t], start, weight)
    # spare lanes repeat the last row: only the real rows are written
    out[i0, k] = s0
    if i1 - i0 > 1:
        out[i0 + 1, k] = s1
    if i1 - i0 > 2:
        out[i0 + 2, k] = s2
    if i1 - i0 > 3:
        out[i0 + 3, k] = s3


def _inputs(dtype) -> tuple[np.ndarray, np.ndarray]:
    """A writable and a read-only tiny [1, 1] input (numba compiles each kind once: feeds
    arrive read-only)."""
    x, ro = np.zeros((1, 1), dtype), np.zeros((1, 1), dtype)
    ro.flags.writeable = False
    return x, ro


def warm_forest(dtypes) -> object:
    """:func:`forest` compiled for inputs of ``dtypes`` (float32, float64), or None when
    compiled kernels are off (:mod:`._ml_pieces` has the pieces that share its work among
    threads)."""
    if not available():
        return None
    nodes = np.zeros((1, 8), dtype=np.int32)
    roots = np.zeros(1, dtype=np.int32)
    start = np.array([0, 1], dtype=np.int32)
    target = np.zeros(1, dtype=np.int32)
    leaves = np.zeros((1, 1), np.int32)
    fn = None
    for dtype in dtypes:
        values = nodes.view(dtype)
        w = np.zeros(1, dtype)
        for x in _inputs(dtype):
            for shape in ((1, 1), (0, 0)):  # (0, 0): no sums, no flags
                out, has = np.zeros(shape, dtype), np.zeros(shape, bool)
                args = (x, nodes, values, 0, roots, leaves, start, target, w, out, has)
                for base in (w, w[:0]):
                    fn = forest.warm(*args, dtype(1), base)
    return fn


# -- one call per batch: the forest and its weights named by one block of addresses ------------
#: slots of a walk's argument block: x's address, rows, features; the node table's address and
#: rows; the roots' address and count (the trees); the leaves' address; the threshold column
X, ROWS, FEATURES, NODES, N_NODES, ROOTS, N_TREES, LEAVES, COL = range(9)
#: further slots for the sums: the CSR tables' addresses (start, target, weight) and sizes (leaves
#: + 1, entries); out's address and columns; has' address and rows (0: no flags); base's address
#: and size; the divisor's float64 bits; the targets' count (0 with weights: a round robin,
#: :func:`add_leaves`)
START, N_START, TARGET, WEIGHT, N_WEIGHTS, OUT, N_OUT, HAS, HAS_ROWS, BASE, N_BASE, DIV = range(
    9, 21
)
N_TARGET = 21
SLOTS = 22

#: numba's view of an address as an array, and the intrinsic making an int64 a pointer (imported
#: when a kernel using them compiles)
_carray = LazyIntrinsic("numba", "carray")
_pointer = LazyIntrinsic("ort_cpu._spin_jit", "pointer")


def template(nodes, col: int, roots, entries) -> np.ndarray:
    """The slots of a walk's argument block that stay the same from run to run: the node table
    ``nodes`` [M, 8] (int32, thresholds in column ``col`` of its view), the ``roots`` [T], and
    the leaves' weights ``entries`` (``start, target, weight``, or None)."""
    a = np.zeros(SLOTS, np.int64)
    a[NODES], a[N_NODES], a[COL] = nodes.ctypes.data, nodes.shape[0], col
    a[ROOTS], a[N_TREES] = roots.ctypes.data, len(roots)
    if entries is not None:
        start, target, weight = entries
        a[START], a[N_START] = start.ctypes.data, len(start)
        a[TARGET], a[WEIGHT], a[N_WEIGHTS] = target.ctypes.data, weight.ctypes.data, len(weight)
        a[N_TARGET] = len(target)
    return a


@jit()
def walk_and_add(x, a, out, has):
    """:func:`forest` on one thread with the forest, its leaves' weights, the base
    and the divisor named by the argument block ``a`` (:func:`template` and :func:`sums_slots`):
    four arguments to unbox per call instead of thirteen (about 0.7 us of a 10 us batch-1
    run), the leaves reached kept in a buffer of its own."""
    dtype = x.dtype
    n, n_trees = x.shape[0], a[N_TREES]
    nodes = _carray(_pointer(a[NODES]), (a[N_NODES], 8), np.int32)
    values = _carray(_pointer(a[NODES]), (a[N_NODES], 32 // x.itemsize), dtype)
    roots = _carray(_pointer(a[ROOTS]), n_trees, np.int32)
    leaves = np.empty((n, n_trees), np.int32)
    walk_trees(x, nodes, values, a[COL], roots, 0, n_trees, leaves)
    start = _carray(_pointer(a[START]), a[N_START], np.int32)
    target = _carray(_pointer(a[TARGET]), a[N_TARGET], np.int32)
    weight = _carray(_pointer(a[WEIGHT]), a[N_WEIGHTS], dtype)
    base = _carray(_pointer(a[BASE]), a[N_BASE], dtype)
    div = _carray(_pointer(a.ctypes.data + DIV * 8), 1, np.float64)[0]
    add_leaves(leaves, start, target, weight, out, has, dtype.type(div), base, 0, n)


def warm_walk_and_add(dtypes) -> object:
    """:func:`walk_and_add` compiled (or loaded) for inputs of ``dtypes``, writable or
    read-only, at session creation (an empty batch, nothing read); None when off."""
    fn = None
    for dtype in dtypes:
        x = np.zeros((0, 1), dtype)
        ro = x.copy()
        ro.flags.writeable = False
        for xx in (x, ro):
            fn = walk_and_add.warm(xx, np.zeros(SLOTS, np.int64), np.zeros((0, 1), dtype),
                                   np.zeros((0, 0), np.bool_))  # fmt: skip
    return fn


def sums_slots(a: np.ndarray, base, div) -> np.ndarray:
    """``a`` (a :func:`template` with weights) with the sums' constant slots filled: ``base``
    (kept alive by the caller) and the divisor."""
    a = a.copy()
    a[BASE], a[N_BASE] = base.ctypes.data, len(base)
    a[DIV:].view(np.float64)[0] = div
    return a


# -- linear models -----------------------------------------------------------------------------
#: rows from which numpy's BLAS product beats the compiled loop
GEMM_ROWS = 8


@jit()
def linear(x, w, out):
    """``out`` [N, C] = ``x`` [N, F] @ ``w`` [F, C] in float32, the products added feature
    after feature (for few rows; numpy's BLAS for more)."""
    n, f = x.shape
    c = w.shape[1]
    for i in range(n):
        for k in range(c):
            out[i, k] = 0
        for j in range(f):
            v = x[i, j]
            for k in range(c):
                out[i, k] += v * w[j, k]


NORMS = {"MAX": 0, "L1": 1, "L2": 2}


@jit()
def normalize(v, norm, out):
    """Rows of ``v`` [N, C] divided by their MAX (0), L1 (1) or L2 (2) norm into ``out``; a row
    whose norm is 0 is copied."""
    n, c = v.shape
    for i in range(n):
        d = v.dtype.type(0.0)
        if norm == 0:
            d = v[i, 0] if c else d
            for k in range(1, c):
                d = max(d, v[i, k])
        elif norm == 1:
            for k in range(c):
                d += abs(v[i, k])
        else:
            for k in range(c):
                d += v[i, k] * v[i, k]
            d = math.sqrt(d)
        for k in range(c):
            out[i, k] = v[i, k] / d if d != 0 else v[i, k]


def warm_normalize() -> object:
    """:func:`normalize` compiled for float32 rows (or None when compiled kernels are off)."""
    if not available():
        return None
    fn = None
    for x in _inputs(np.float32):
        fn = normalize.warm(x, 1, np.zeros((1, 1), np.float32))
    return fn


@jit()
def scale(x, offset, factor, out):
    """``out`` [N, F] = (``x`` - ``offset`` [F]) * ``factor`` [F] (Scaler, in ``x``'s dtype)."""
    n, f = x.shape
    for i in range(n):
        for j in range(f):
            out[i, j] = (x[i, j] - offset[j]) * factor[j]


def warm_scale() -> object:
    """:func:`scale` compiled for float32 rows (or None when compiled kernels are off)."""
    if not available():
        return None
    p = np.zeros(1, np.float32)
    fn = None
    for x in _inputs(np.float32):
        fn = scale.warm(x, p, p, np.zeros((1, 1), np.float32))
    return fn


# -- support vector machines -------------------------------------------------------------------
@jit()
def svc_rbf(x, sv_t, gamma, coef, starts, rho, kernel, scores, best):
    """onnxruntime's SVMClassifier (libsvm mode, RBF kernel) in its order of operations.

    ``kernel`` [V] (scratch): exp(-gamma * sum over features of (x - sv)^2) in float32, the
    squares added feature after feature (``sv_t`` [F, V]: the support vectors transposed, so
    that the loop over vectors vectorizes without reordering any sum). ``scores`` [N, P]: for
    each pair (i, j) of classes, in libsvm's order, the float32 products of coefficients and
    kernel values of class i's vectors, then of class j's, added in float64 to ``rho``; the pair
    votes for i when that sum is > 0. ``best`` [N]: the class with most votes (the first)."""
    n, f = x.shape
    v = sv_t.shape[1]
    k_classes = starts.shape[0] - 1
    votes = np.zeros(k_classes, np.int64)
    g = kernel.dtype.type(-gamma)
    for r in range(n):
        for m in range(v):
            kernel[m] = 0
        for j in range(f):
            xv = x[r, j]
            for m in range(v):
                d = xv - sv_t[j, m]
                kernel[m] += d * d
        for m in range(v):
            kernel[m] = math.exp(g * kernel[m])
        votes[:] = 0
        e = 0
        for i in range(k_classes - 1):
            for j in range(i + 1, k_classes):
                s = 0.0
                for m in range(starts[i], starts[i + 1]):
                    s += coef[j - 1, m] * kernel[m]
                for m in range(starts[j], starts[j + 1]):
                    s += coef[i, m] * kernel[m]
                s += rho[e]
                scores[r, e] = s
                if s > 0:
                    votes[i] += 1
                else:
                    votes[j] += 1
                e += 1
        top = 0
        for c in range(1, k_classes):
            if votes[c] > votes[top]:
                top = c
        best[r] = top


def warm_svc_rbf() -> object:
    """:func:`svc_rbf` compiled for float32 rows (or None when compiled kernels are off)."""
    if not available():
        return None
    f32 = np.float32
    fn = None
    for x in _inputs(f32):
        fn = svc_rbf.warm(
            x,
            np.zeros((1, 2), f32),
            f32(1),
            np.zeros((1, 2), f32),
            np.array([0, 1, 2], np.int64),
            np.zeros(1, f32),
            np.zeros(2, f32),
            np.zeros((1, 1), f32),
            np.zeros(1, np.int64),
        )
    return fn


# -- post transforms ---------------------------------------------------------------------------
#: post transform -> code of :func:`transform_rows`: the trees' (ComputeSoftmax and
#: ComputeLogistic) and the MLAS kernels' that onnxruntime's linear models and SVMs apply to the
#: whole batch at once
TRANSFORMS = {"NONE": 0, "SOFTMAX": 1, "LOGISTIC": 3}
MLAS_TRANSFORMS = {"NONE": 0, "SOFTMAX": 4, "LOGISTIC": 2}
NO_BIAS = np.zeros(0, np.float32)
NO_BEST = np.zeros(0, np.int64)
#: elements per step of :func:`_mlas_transform`'s loops (one AVX-512 register of float32)
_LANES = 16


@jit()
def transform_rows(s, code, bias, best):
    """Rows of ``s`` [N, C] finished in place: ``bias`` [C] added (unless empty), the argmax
    of each row written to ``best`` [N] (unless empty; numpy's: the first maximum, the first
    NaN), then transformed as onnxruntime does: 1 softmax (max, exp of the differences, their
    sum added in order, division), 3 the trees' logistic (``1 - 1 / (1 + e)`` for negative
    scores, ``e = exp(-|s|)``), 2 and 4 MLAS's logistic and softmax (float32, every row at
    once: :func:`_mlas_transform`), 0 none."""
    n, c = s.shape
    one = s.dtype.type(1.0)
    for i in range(n):
        if bias.shape[0]:
            for k in range(c):
                s[i, k] += bias[k]
        if best.shape[0]:
            top = 0
            for k in range(c):
                v, t = s[i, k], s[i, top]
                if t == t and (v > t or v != v):
                    top = k
            best[i] = top
        if code == 1:
            m = s[i, 0]
            for k in range(1, c):
                m = max(m, s[i, k])
            total = s.dtype.type(0.0)
            for k in range(c):
                e = math.exp(s[i, k] - m)
                s[i, k] = e
                total += e
            for k in range(c):
                s[i, k] /= total
        elif code == 3:
            for k in range(c):
                v = s[i, k]
                e = math.exp(-abs(v))
                p = one / (one + e)
                s[i, k] = one - p if v < 0 else p
    if code == 2 or code == 4:
        _mlas_transform(s, code)


@jit(error_model="numpy")
def _mlas_transform(s, code):
    """MLAS's logistic (code 2: ``e / (1 + e)`` for negative scores, ``1 / (1 + e)`` otherwise,
    ``e = exp(-|s|)``) or softmax (4: :func:`._exp_jit.softmax_rows`, MLAS's) of the float32
    ``s`` [N, C], with :mod:`._exp_jit`'s exponential (MLAS's, within 3e-7 of the exact value),
    over all N x C scores in steps of 16 whatever C is, so that a batch of ten-class rows is
    vector code (libm's exp, a call per score, took 3.7 us of a 100 x 10 softmax's 6)."""
    n, c = s.shape
    if n == 0 or c == 0:
        return
    flat = s.ravel()  # a view of C-contiguous scores, a copy of others (written back below)
    if code == 4:
        rows = flat.reshape(n, c)
        _softmax_rows(rows, rows, 0, 0, n)
    else:
        size = n * c
        whole = size - size % _LANES
        one = np.float32(1)
        for j in range(0, whole, _LANES):
            for k in range(_LANES):
                v = flat[j + k]
                e = _exp(-abs(v))
                flat[j + k] = (e if v < 0 else one) / (one + e)
        for j in range(whole, size):
            v = flat[j]
            e = _exp(-abs(v))
            flat[j] = (e if v < 0 else one) / (one + e)
    if flat.ctypes.data != s.ctypes.data:
        for i in range(n):
            for k in range(c):
                s[i, k] = flat[i * c + k]


@jit()
def linear_rows(x, w, bias, code, out, best):
    """:func:`linear` then :func:`transform_rows` in one call (a linear classifier's few rows:
    one compiled call where two cost 0.4 us more)."""
    linear(x, w, out)
    transform_rows(out, code, bias, best)


def warm_linear_rows() -> object:
    """:func:`linear_rows` compiled for float32 rows and every transform (or None)."""
    if not available():
        return None
    fn = None
    z, bias, best = np.zeros((1, 2), np.float32), np.zeros(2, np.float32), np.zeros(1, np.int64)
    for x in _inputs(np.float32):  # the weights and bias: the kernel's own writable arrays
        fn = linear_rows.warm(x, np.zeros((1, 2), np.float32), bias, 0, z, best)
    return fn


@jit()
def logistic_pair(v, z):
    """``z`` [N, 2] = (logistic(-v), logistic(v)) of the trees' logistic, one exponential."""
    one = z.dtype.type(1.0)
    for i in range(v.shape[0]):
        s = v[i]
        p = one / (one + math.exp(-abs(s)))
        q = one - p
        z[i, 0] = q if s > 0 else p
        z[i, 1] = q if s < 0 else p


def warm_transforms() -> tuple[object, object] | None:
    """(:func:`transform_rows`, :func:`logistic_pair`) compiled for float32 (or None)."""
    if not available():
        return None
    z, bias, best = np.zeros((1, 2), np.float32), np.zeros(2, np.float32), np.zeros(1, np.int64)
    for code in {*TRANSFORMS.values(), *MLAS_TRANSFORMS.values()}:
        for b, k in ((bias, best), (NO_BIAS, NO_BEST)):
            rows = transform_rows.warm(z, code, b, k)
    return rows, logistic_pair.warm(np.zeros(1, np.float32), z)


#: how :func:`binary_column` makes two scores of one: (-v, v), (1 - v, v), (v, 0), the trees'
#: (logistic(-v), logistic(v))
BINARY = {"mixed": 0, "positive": 1, "raw": 2, "logistic": 3}


@jit()
def binary_column(s, threshold, how, up, z):
    """A binary tree classifier's outputs from its one score per row ``s[:, 0]``: ``up`` [N]
    (int64) whether it is above ``threshold``, ``z`` [N, 2] (float32) the two scores made as
    ``how`` says (see :data:`BINARY`) from the score rounded to float32."""
    one = z.dtype.type(1.0)
    for i in range(s.shape[0]):
        up[i] = 1 if s[i, 0] > threshold else 0
        v = z.dtype.type(s[i, 0])
        if how == 0:
            z[i, 0], z[i, 1] = -v, v
        elif how == 1:
            z[i, 0], z[i, 1] = one - v, v
        elif how == 2:
            z[i, 0], z[i, 1] = v, 0
        else:
            p = one / (one + math.exp(-abs(v)))
            q = one - p
            z[i, 0] = q if v > 0 else p
            z[i, 1] = q if v < 0 else p


def warm_binary_column() -> object:
    """:func:`binary_column` compiled for float32 scores (or None when compiled kernels are
    off)."""
    if not available():
        return None
    fn = None
    for how in BINARY.values():
        s, z = np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32)
        fn = binary_column.warm(s, np.float32(0), how, np.zeros(1, np.int64), z)
    return fn
