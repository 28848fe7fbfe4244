"""Tree ensembles compiled at session creation into flat numpy tables, and evaluated for the whole
batch with a handful of numpy calls per step (the cost of a step is mostly per call, so the number
of steps is what counts for small batches).

Every branch of BRANCH_LEQ/LT/GTE/GT is rewritten as ``x <= t`` to a "low" child, else the "high"
child: LT and GTE compare with the largest threshold below ``t``, GTE and GT swap the children
(exact for every non-NaN input, in the dtype of the comparison). NaN inputs go to the high child,
unless the node sends them elsewhere (missing-value tracking, or a swapped node): then a NaN-aware
step runs for inputs that have a NaN. BRANCH_EQ/NEQ/MEMBER ensembles walk with the general
``Forest.leaves`` of ``kernels/ml.py``.

Where numba is available, :meth:`Walker.compile` lays the nodes out for the compiled walk of
``kernels/_ml_jit.py`` (:meth:`Walker.walk_and_add`), which replaces the numpy walks below; they
remain the path without numba (and the one :data:`FORCE` selects in tests).

Three numpy walks, all ending on leaf indices (leaves numbered in node order); a cost model picks one
per batch size (``Walker.strategy``):

- super-nodes (small batches): each step evaluates the 7 nodes of the next three levels of every
  (sample, tree) pair at once, packs the 7 outcomes into a code (the bools viewed as one uint64,
  taken modulo 129, which is distinct for the 128 patterns) and reads the next super-node from a
  table: 3 levels per step, ``ceil(depth / 3)`` steps, no test for termination (leaves loop on
  themselves). The first step reads the roots' rows prepared at session creation.
- all nodes (small batches of small forests): every node's decision in three calls over all the
  nodes, then one gather per level.
- level by level (large batches): one level per step with children stored side by side (low, high)
  so that the next node is ``high[node] - (x <= t)``; pairs that reached a leaf leave the working
  arrays once they are half of them.

Leaf weights are aggregated in the order onnxruntime adds them (tree after tree, in float32 for
float inputs): ``np.add.accumulate`` along the tree axis is a strictly sequential sum.
"""

from __future__ import annotations

import sys

import numpy as np

from ort_core.provider import KernelUnsupported

# branch modes as kernels/ml.py numbers them
LEQ, LT, GTE, GT, EQ, NEQ, MEMBER, LEAF = range(8)

_K = 3  # levels per super-node step
_P = 2**_K - 1  # nodes of a super-node
_W = 2**_K  # their table width (one padding column) and the number of exits
_MOD = 129  # sum(b_i << 8i) % 129 is distinct for the 2**7 patterns of 7 bools
#: a walk to use whatever the cost model says ("super", "all", "levels"; tests set it)
FORCE = None
_LITTLE = sys.byteorder == "little"
_NO_INDEX = np.zeros(0, dtype=np.int32)
_NO_FLAGS = np.zeros((0, 0), dtype=bool)
_THRESHOLD_COLUMN = {np.float32: 4, np.float64: 2}  # in the node table viewed as that dtype
#: row-tree pairs from which the compiled walk shares the trees among the run's threads
#: (:meth:`Walker._walk_shared`: each thread reads its own part of the forest, which stays in
#: its core's L2; sharing the rows made both read all of it, and two threads took 1.05-1.1x one
#: thread's time at 100 rows x 100-200 trees). Handing the two jobs over costs about 15 us; two
#: threads against one, interleaved, 100-tree RandomForest / GradientBoosting regressors: 5
#: rows 1.47x / 1.79x, 10 rows 0.89x / 1.31x, 20 rows 0.78x / 1.0x, 40 rows 0.71x / 0.80x, 100
#: rows 0.61x / 0.64x
TREE_SPLIT_PAIRS = 2_000


_NO_WEIGHTS = {t: np.zeros(0, dtype=t) for t in (np.float32, np.float64)}
_NO_SUMS = {t: np.zeros((0, 0), dtype=t) for t in (np.float32, np.float64)}


def _exit_table() -> np.ndarray:
    """Exit (0..7) of a super-node by code: bit p set means heap position p goes low."""
    bits = np.arange(2**_P)
    p = np.zeros(len(bits), dtype=np.intp)
    for _ in range(_K):
        p = np.where((bits >> p) & 1 == 1, 2 * p + 1, 2 * p + 2)
    words = np.zeros(len(bits), dtype=np.uint64)
    for i in range(_P):
        words |= ((bits >> i) & 1).astype(np.uint64) << np.uint64(8 * i)
    table = np.zeros(_MOD, dtype=np.intp)
    codes = (words % np.uint64(_MOD)).astype(np.intp)
    assert len(set(codes.tolist())) == len(bits)  # np.unique would import numpy.ma (8 ms)
    table[codes] = p - _P
    return table


_EXITS = _exit_table()


def distinct(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)`` by sorting (numpy 2's hashing unique takes ~0.1 s per 100k ints)."""
    a = np.sort(np.asarray(a).reshape(-1))
    return a[np.concatenate([[True], a[1:] != a[:-1]])] if a.size else a


def _below(t: np.ndarray, dtype: type, strict: np.ndarray) -> np.ndarray:
    """The largest ``dtype`` value <= ``t`` (< ``t`` where ``strict``); NaN where none is."""
    with np.errstate(over="ignore", invalid="ignore"):
        r = t.astype(dtype)
        wide = r.astype(np.float64)
        over = np.where(strict, wide >= t, wide > t)
        r = np.where(over, np.nextafter(r, dtype(-np.inf)), r)
        r[strict & (t == -np.inf)] = np.nan
    return r.astype(dtype)


class Walker:
    """Routes every row of ``x`` [N, F] down every tree: ``walker(x)`` is the leaf index [N, T]
    each (row, tree) pair reaches. Leaves are numbered in node order: ``leaf_nodes[i]`` is the
    node of leaf ``i``."""

    def __init__(self, forest, dtypes=(np.float32, np.float64)) -> None:
        """``dtypes``: the input dtypes to prepare thresholds for (float32 serves float16 and
        integer inputs too)."""
        mode = np.asarray(forest.mode)
        m = len(mode)
        leaf = mode == LEAF
        self.leaf_nodes = np.flatnonzero(leaf)
        self.n_leaves = len(self.leaf_nodes)
        self.n_trees = len(forest.roots)
        leaf_index = np.full(m, -1, dtype=np.intp)
        leaf_index[leaf] = np.arange(self.n_leaves)
        self._leaf_index = leaf_index
        self._forest = forest  # the general walk's (EQ, NEQ, MEMBER); dropped otherwise
        branch = ~leaf
        self.max_feature = int(forest.feature[branch].max()) if branch.any() else -1
        self.general = bool(np.isin(mode[branch], (EQ, NEQ, MEMBER)).any())
        if self.general:
            return
        self._forest = None
        own = np.arange(m)
        split = np.asarray(forest.split, dtype=np.float64)
        swap = branch & ((mode == GTE) | (mode == GT)) & ~np.isnan(split)
        strict = (mode == LT) | (mode == GTE)
        lo = np.where(leaf, own, np.where(swap, forest.false, forest.true)).astype(np.intp)
        hi = np.where(leaf, own, np.where(swap, forest.true, forest.false)).astype(np.intp)
        feat = np.where(leaf, 0, forest.feature).astype(np.intp)
        t32 = t64 = None
        if any(np.dtype(d) != np.float64 for d in dtypes):
            t32 = np.where(leaf, np.float32(np.nan), _below(split, np.float32, strict))
        if any(np.dtype(d) == np.float64 for d in dtypes):
            t64 = np.where(leaf, np.nan, _below(split, np.float64, strict))
        nan_goes = np.where(forest.missing_true, forest.true, forest.false)
        nan_lo = branch & (nan_goes == lo) & (lo != hi)
        self.nan_aware = bool(nan_lo.any())
        self._depth = self._tree_depth(lo, hi, leaf, forest.roots)
        self.n_nodes = m
        self._tables = (lo, hi, leaf, feat, t32, t64, nan_lo, forest.roots, leaf_index)
        self._super_nodes: _SuperNodes | None = None
        self._level_nodes: _Levels | None = None
        self._choice: dict[int, str] = {}
        self._compiled = None  # see compile()

    @property
    def _super(self) -> _SuperNodes:
        if self._super_nodes is None:
            self._super_nodes = _SuperNodes(*self._tables)
        return self._super_nodes

    @property
    def _levels(self) -> _Levels:
        if self._level_nodes is None:
            self._level_nodes = _Levels(*self._tables)
        return self._level_nodes

    def compile(self, walk) -> bool:
        """Walk with ``walk`` (the compiled ``kernels/_ml_jit.forest`` and ``walk_and_add``)
        from now on, unless :data:`FORCE` names a numpy walk; False where it cannot (the
        general walk, a forest too large for int32 indices). Batches from
        :data:`TREE_SPLIT_PAIRS` row-tree pairs are walked by the run's intra-op threads, a
        range of trees each, then summed by them, a block of rows each, every row's sums in
        tree order (:meth:`_walk_shared`); smaller ones in one call (:meth:`block`)."""
        if self.general or self.n_nodes >= 2**31 - 1:
            return False
        lo, hi, leaf, feat, t32, t64, nan_lo, roots, leaf_index = self._tables
        # one 32-byte row per node: feature, low, high, leaf index (-1 a branch, -2 a branch
        # sending NaN low), the float32 threshold in column 4 or the float64 one in 4-5
        nodes = np.zeros((self.n_nodes, 8), dtype=np.int32)
        nodes[:, 0] = np.where(leaf, 0, feat)  # a leaf: feature 0 against a NaN threshold
        nodes[:, 1] = lo  # a leaf's children are itself
        nodes[:, 2] = hi
        nodes[:, 3] = np.where(leaf, leaf_index, np.where(nan_lo, -2, -1))
        tables = {}
        for dtype, t in ((np.float32, t32), (np.float64, t64)):
            if t is not None:
                table = nodes.copy()
                table.view(dtype)[:, _THRESHOLD_COLUMN[dtype]] = t
                tables[dtype] = table, table.view(dtype), _THRESHOLD_COLUMN[dtype]
        self._compiled = walk, tables, np.asarray(roots, dtype=np.int32)
        self._templates: dict = {}  # see _walk_shared
        return True

    def walk_and_add(self, x: np.ndarray, entries, n_out: int, track: bool, div=1, base=None):
        """The compiled walk (after :meth:`compile`): (leaves [N, T] int32, sums [N, n_out]
        of the weights ``entries`` (``LeafValues.entries``) of the leaves reached, tree after
        tree in ``x``'s dtype, then divided by ``div`` and ``base`` [n_out] (in ``x``'s dtype)
        added, scored [N, n_out] bool or None unless ``track``). ``entries`` None: only the
        leaves (sums and scored are None). Small batches of sums take :meth:`one_call`."""
        (forest, _), tables, roots = self._compiled
        nodes, values, col = tables[x.dtype.type]
        n, n_trees = x.shape[0], len(roots)
        dtype = values.dtype.type
        leaves = np.empty((n, n_trees), dtype=np.int32)
        if entries is None:
            start = target = _NO_INDEX
            weight, out, has = _NO_WEIGHTS[dtype], _NO_SUMS[dtype], _NO_FLAGS
            base = _NO_WEIGHTS[dtype]
        else:
            start, target, weight = entries
            out = np.zeros((n, n_out), dtype=dtype)
            has = np.zeros((n, n_out), dtype=bool) if track else _NO_FLAGS
            if base is None:
                base = _NO_WEIGHTS[dtype]
        if (
            n * n_trees < TREE_SPLIT_PAIRS
            or n_trees < 2
            or not self._walk_shared(x, leaves, entries, out, has, div, base)
        ):
            forest(x, nodes, values, col, roots, leaves, start, target, weight, out, has,
                   dtype(div), base)  # fmt: skip
        if entries is None:
            return leaves, None, None
        return leaves, out, (has if track else None)

    def one_call(self, n: int) -> bool:
        """Whether :meth:`walk_and_add`'s work for ``n`` rows stays on one thread (too little
        to share, or one tree), where :meth:`block` and its compiled call serve."""
        return n * len(self._compiled[2]) < TREE_SPLIT_PAIRS or len(self._compiled[2]) < 2

    def block(self, dtype, entries, base, div):
        """(fn, block): ``fn(x, block, out, has)`` is :meth:`walk_and_add`'s walk and sums for
        inputs of ``dtype`` on one thread, in one compiled call whose constant arguments (the
        forest, the weights ``entries``, ``base`` or none, ``div``) are one block of addresses
        (:func:`.kernels._ml_jit.walk_and_add`: 4 arguments to unbox, not 13). The caller
        keeps ``entries`` and ``base`` alive with the block."""
        from .kernels import _ml_jit

        (_, one_call), tables, roots = self._compiled
        nodes, values, col = tables[dtype]
        base = _NO_WEIGHTS[values.dtype.type] if base is None else base
        block = _ml_jit.sums_slots(_ml_jit.template(nodes, col, roots, entries), base, div)
        return one_call, block

    def _walk_shared(self, x, leaves, entries, out, has, div, base) -> bool:
        """:meth:`walk_and_add`'s work shared among the run's threads: the trees (each thread
        walks its own for every row), then the rows for the sums (:mod:`.kernels._ml_pieces`);
        False (nothing done) where the run's pool cannot take them."""
        from . import _threads

        if not _threads.spinning():
            return False
        from .kernels import _ml_jit, _ml_pieces  # the pieces import numba

        _, tables, roots = self._compiled
        nodes, _, col = tables[x.dtype.type]
        start = None if entries is None else entries[0]
        key = (x.dtype.type, id(start), id(base), div)
        kept = self._templates.get(key)
        if kept is None or kept[0] is not start or kept[1] is not base:
            # the tables', weights' and base's addresses and the divisor, kept with the walker
            # (they are the kernel's constant arrays: the same ones every run)
            block = _ml_jit.template(nodes, col, roots, entries)
            if entries is not None:
                block = _ml_jit.sums_slots(block, base, div)
            if len(self._templates) >= 16:
                self._templates.clear()
            kept = self._templates[key] = (start, base, block)
        sums = None if entries is None else (*entries, out, has, div, base)
        return _ml_pieces.split_walk(x, leaves, kept[2], sums)

    def strategy(self, n: int) -> str:
        """The cheapest walk for ``n`` rows by a cost model of this machine kind's numpy: about
        1 us per numpy call plus a few ns per element gathered or compared."""
        pairs, m, depth = n * self.n_trees, self.n_nodes, self._depth
        costs = {
            "super": self._super.steps * (8 + pairs * 0.04) - 2,
            "all": 4 + n * m * 0.003 + depth * (1 + pairs * 0.002),
            "levels": depth * (10 + pairs * 0.007) + 20,
        }
        return min(costs, key=costs.__getitem__)

    @staticmethod
    def _tree_depth(lo, hi, leaf, roots) -> int:
        depth, frontier = 0, distinct(roots)
        while True:
            frontier = frontier[~leaf[frontier]]
            if not len(frontier):
                return depth
            depth += 1
            if depth > len(lo):
                raise KernelUnsupported("a tree of the ensemble has a cycle")
            frontier = np.concatenate([lo[frontier], hi[frontier]])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.general:
            return self._leaf_index.take(self._forest.leaves(x))
        if self._compiled is not None and FORCE is None:
            return self.walk_and_add(x, None, 0, False)[0]
        nan = self.nan_aware and bool(np.isnan(x).any())
        n = x.shape[0]
        how = self._choice.get(n) if FORCE is None else FORCE
        if how is None:
            how = self._choice[n] = self.strategy(n) if len(self._choice) < 64 else "levels"
        if how == "super":
            return self._super.walk(x, nan)
        if how == "all":
            return self._levels.walk_all(x, self._depth, nan)
        return self._levels.walk(x, self._depth, nan)


class _SuperNodes:
    """The super-node tables. Rows 0..S-1: one per node at depth 0, 3, 6... of its tree, with
    the features and thresholds of the 7 nodes below it (heap order, leaves repeated down to the
    third level) and the 8 rows it exits to. Rows S + i: leaf i, looping on itself. Features and
    thresholds have one row more, S, a leaf's (never true), which leaf rows read by clipping."""

    def __init__(self, lo, hi, leaf, feat, t32, t64, nan_lo, roots, leaf_index) -> None:
        sid = np.full(len(lo), -1, dtype=np.intp)
        rows, exits, steps = [], [], 0
        frontier = roots[~leaf[roots]]
        top = 0
        while len(frontier):
            sid[frontier] = np.arange(top, top + len(frontier))
            top += len(frontier)
            pos = np.empty((len(frontier), _P), dtype=np.intp)
            pos[:, 0] = frontier
            for p in range(_P // 2):
                pos[:, 2 * p + 1], pos[:, 2 * p + 2] = lo[pos[:, p]], hi[pos[:, p]]
            ex = np.empty((len(frontier), _W), dtype=np.intp)
            ex[:, 0::2], ex[:, 1::2] = lo[pos[:, _P // 2 :]], hi[pos[:, _P // 2 :]]
            rows.append(pos)
            exits.append(ex)
            nodes = np.zeros(len(lo), dtype=bool)
            nodes[ex] = True
            frontier = np.flatnonzero(nodes & ~leaf)
            steps += 1
        self.inner = s = top
        sid[leaf] = s + leaf_index[leaf]
        pos = np.concatenate(rows) if rows else np.zeros((0, _P), dtype=np.intp)
        n_leaves = int(leaf.sum())
        self.steps = steps
        self.roots = sid[roots]
        loops = np.repeat(s + np.arange(n_leaves)[:, None], _W, axis=1)
        self.next = np.concatenate([sid[np.concatenate(exits)], loops]) if exits else loops
        self.feat = np.zeros((s + 1, _W), dtype=np.intp)
        self.feat[:s, :_P] = feat[pos]
        self._thresholds = {}
        for dtype, t in ((np.float32, t32), (np.float64, t64)):
            if t is not None:
                table = np.full((s + 1, _W), np.nan, dtype=dtype)
                table[:s, :_P] = t[pos]
                self._thresholds[dtype] = table, table.take(self.roots, axis=0, mode="clip")
        self.root_feat = self.feat.take(self.roots, axis=0, mode="clip")
        self.nan_lo = None
        if nan_lo.any():
            self.nan_lo = np.zeros((s + 1, _W), dtype=bool)
            self.nan_lo[:s, :_P] = nan_lo[pos]

    def thresholds(self, dtype) -> tuple[np.ndarray, np.ndarray]:
        """The thresholds [S, 8] for inputs of ``dtype``, and the roots' rows of them."""
        return self._thresholds[dtype]

    def walk(self, x: np.ndarray, nan: bool) -> np.ndarray:
        n, t = x.shape[0], len(self.roots)
        flat = x.reshape(-1)
        (thr, root_thr), feat, nxt, exits = (
            self.thresholds(x.dtype.type),
            self.feat,
            self.next,
            _EXITS,
        )
        mod = np.uint64(_MOD)
        # the first step reads the roots' rows, taken once at session creation
        if n == 1:
            cur = self.roots
            v = flat.take(self.root_feat)
            go = v <= root_thr
        else:
            cur = np.tile(self.roots, n)
            base = np.arange(0, n * x.shape[1], x.shape[1])
            v = flat.take(self.root_feat + base[:, None, None])  # [N, T, 8]
            go = (v <= root_thr).reshape(n * t, _W)
            v = v.reshape(n * t, _W)
            base = np.repeat(base, t)[:, None]
        for step in range(self.steps):
            if step:
                f = feat.take(cur, axis=0, mode="clip")
                if n > 1:
                    f += base
                v = flat.take(f)
                go = v <= thr.take(cur, axis=0, mode="clip")
            if nan:
                go |= np.isnan(v) & self.nan_lo.take(cur, axis=0, mode="clip")
            if _LITTLE:
                code = go.view(np.uint64).reshape(-1) % mod
            else:  # the same code on a big-endian machine
                code = go[:, :_P].astype(np.uint64) << np.arange(0, 8 * _P, 8, dtype=np.uint64)
                code = code.sum(axis=1) % mod
            cur = nxt[cur, exits.take(code)]
        return (cur - self.inner).reshape(n, t)


class _Levels:
    """The nodes renumbered level by level, each node's two children side by side (low then
    high), for the level walk."""

    def __init__(self, lo, hi, leaf, feat, t32, t64, nan_lo, roots, leaf_index) -> None:
        m = len(lo)
        new = np.full(m, -1, dtype=np.intp)
        order = [roots]
        new[roots] = np.arange(len(roots))
        top, frontier = len(roots), roots
        while True:
            inner = frontier[~leaf[frontier]]
            if not len(inner):
                break
            kids = np.empty(2 * len(inner), dtype=np.intp)
            kids[0::2], kids[1::2] = lo[inner], hi[inner]
            new[kids] = np.arange(top, top + len(kids))
            top += len(kids)
            order.append(kids)
            frontier = kids
        old = np.concatenate(order)  # old node of each new number
        self.roots = np.arange(len(roots), dtype=np.intp)
        self.high = np.where(leaf[old], np.arange(len(old)), new[hi[old]])
        self.feat = feat[old]
        self.t32 = t32[old] if t32 is not None else None
        self.t64 = t64[old] if t64 is not None else None
        self.leaf = leaf[old]
        self.nan_lo = nan_lo[old]
        self.leaf_index = leaf_index[old]

    def walk_all(self, x: np.ndarray, depth: int, nan: bool) -> np.ndarray:
        """Every node's decision at once (a few calls over all nodes), then one gather per
        level: for forests of few nodes and small batches."""
        n, t, m = x.shape[0], len(self.roots), len(self.feat)
        thr = self.t32 if x.dtype == np.float32 else self.t64
        v = x.take(self.feat, axis=1)  # [N, M]
        go = v <= thr
        if nan:
            go |= np.isnan(v) & self.nan_lo
        nxt = self.high - go
        if n == 1:
            nxt = nxt.reshape(-1)
            cur = self.roots
        else:
            nxt += np.arange(0, n * m, m)[:, None]
            nxt = nxt.reshape(-1)
            cur = (np.arange(0, n * m, m)[:, None] + self.roots).reshape(-1)
        for _ in range(depth):
            cur = nxt.take(cur)
        if n > 1:
            cur = cur.reshape(n, t) - np.arange(0, n * m, m)[:, None]
        return self.leaf_index.take(cur).reshape(n, t)

    def walk(self, x: np.ndarray, depth: int, nan: bool) -> np.ndarray:
        n, t = x.shape[0], len(self.roots)
        flat = x.reshape(-1)
        thr = self.t32 if x.dtype == np.float32 else self.t64
        feat, high, leaf = self.feat, self.high, self.leaf
        cur = np.tile(self.roots, n)
        base = np.repeat(np.arange(0, n * x.shape[1], x.shape[1]), t)
        pos = None  # where the working pairs go in the output; None: all pairs, in order
        out = None
        for _ in range(depth):
            f = feat.take(cur)
            f += base
            v = flat.take(f)
            go = v <= thr.take(cur)
            if nan:
                go |= np.isnan(v) & self.nan_lo.take(cur)
            cur = high.take(cur)
            cur -= go
            done = leaf.take(cur)
            n_done = int(np.count_nonzero(done))
            if 2 * n_done >= len(cur) and n_done < len(cur):
                if out is None:
                    out = np.empty(n * t, dtype=np.intp)
                live = ~done
                out[np.flatnonzero(done) if pos is None else pos[done]] = cur[done]
                pos = np.flatnonzero(live) if pos is None else pos[live]
                cur, base = cur[live], base[live]
            elif n_done == len(cur):
                break
        if pos is not None:
            out[pos] = cur
            cur = out
        return self.leaf_index.take(cur).reshape(n, t)


class LeafValues:
    """The leaves' weights as tables indexed by leaf, in the accumulation dtype (float32 for
    float32 inputs, float64 for float64 ones, as onnxruntime's threshold type).

    ``first``: each leaf's first weight (onnxruntime's single-target path reads only that one);
    ``dense`` [L, C]: a leaf's weight per target (0 where it gives none) with ``dense_has``, when
    no leaf gives one target two weights. ``static_has`` [C]: which targets are scored whatever
    the input (every tree gives the same targets from all its leaves), else None."""

    def __init__(self, forest, walker: Walker, n_targets: int) -> None:
        nodes = walker.leaf_nodes
        start, stop = forest.leaf_start[nodes], forest.leaf_start[nodes + 1]
        count = stop - start
        self.n_targets = n_targets
        self.n_trees = walker.n_trees
        w = np.asarray(forest.weights, dtype=np.float64)
        has_first = count > 0
        first = np.where(has_first, w[np.minimum(start, max(len(w) - 1, 0))] if len(w) else 0, 0)
        self.first_has = has_first
        self._first64 = np.asarray(first, dtype=np.float64)
        self._cache: dict = {}
        self.dense_ok = False
        self.static_has = None
        self.round_robin = False  # tree t gives target t % C its leaf's one (first) weight
        if not len(w):
            self.dense_ok = n_targets > 0
            self._dense64 = np.zeros((walker.n_leaves, n_targets))
            self.dense_has = np.zeros((walker.n_leaves, n_targets), dtype=bool)
            self.static_has = np.zeros(n_targets, dtype=bool)
            return
        targets = np.asarray(forest.targets, dtype=np.int64)
        owner = np.repeat(np.arange(walker.n_leaves), count)
        entry = np.arange(len(owner)) + np.repeat(start - (np.cumsum(count) - count), count)
        tg = targets[entry]
        if n_targets <= 0 or walker.n_leaves * n_targets > 1 << 26:
            return
        if tg.size and (tg.min() < 0 or tg.max() >= n_targets):
            return
        cell = owner * n_targets + tg
        if len(distinct(cell)) != len(cell):  # a leaf gives a target two weights
            return
        dense = np.zeros(walker.n_leaves * n_targets)
        dense[cell] = w[entry]
        has = np.zeros(walker.n_leaves * n_targets, dtype=bool)
        has[cell] = True
        self._dense64 = dense.reshape(-1, n_targets)
        self.dense_has = has.reshape(-1, n_targets)
        self.dense_ok = True
        # scored targets known in advance: every leaf of a tree scores the same targets
        tree_of = self._tree_of_leaves(forest, walker)
        if len(tree_of) == walker.n_leaves:
            first_of_tree = np.full(walker.n_trees, -1, dtype=np.intp)
            first_of_tree[tree_of[::-1]] = np.arange(walker.n_leaves)[::-1]
            same = (self.dense_has == self.dense_has[first_of_tree[tree_of]]).all()
            if same:
                self.static_has = self.dense_has[first_of_tree[first_of_tree >= 0]].any(axis=0)
            # gradient boosting: every leaf of tree t gives one weight, to target t % C
            t, c = walker.n_trees, n_targets
            if same and c > 1 and t % c == 0 and (first_of_tree >= 0).all() and (count == 1).all():
                pattern = self.dense_has[first_of_tree]
                self.round_robin = bool(
                    (pattern == (np.arange(t)[:, None] % c == np.arange(c))).all()
                )

    @staticmethod
    def _tree_of_leaves(forest, walker) -> np.ndarray:
        """The tree (index in ``roots``) of every leaf."""
        m = len(forest.mode)
        tree = np.full(m, -1, dtype=np.intp)
        frontier = np.asarray(forest.roots)
        tree[frontier] = np.arange(len(frontier))
        leaf = np.asarray(forest.mode) == LEAF
        while len(frontier):
            inner = frontier[~leaf[frontier]]
            kids = np.concatenate([forest.true[inner], forest.false[inner]])
            tree[kids] = np.concatenate([tree[inner], tree[inner]])
            frontier = kids
        return tree[walker.leaf_nodes]

    def first(self, dtype) -> np.ndarray:
        key = ("first", dtype)
        if key not in self._cache:
            self._cache[key] = self._first64.astype(dtype)
        return self._cache[key]

    def entries(self, dtype, first: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The weights as CSR by leaf for the compiled sums: (start int32 [L + 1], target int32,
        weight ``dtype``). ``first``: each leaf's first weight, to target 0 (the single-target
        sum); else the dense table's weights (needs ``dense_ok``), in target order; for a
        :attr:`round_robin` forest, each leaf's one weight and no targets (the compiled sums'
        mark: tree ``t``'s leaves give target ``t % C``)."""
        key = ("entries", dtype, first)
        if key not in self._cache:
            if not first and self.round_robin:  # the first weights (one a leaf), no targets
                start, _, weight = self.entries(dtype, True)
                self._cache[key] = start, np.zeros(0, np.int32), weight
                return self._cache[key]
            if first:
                has, w = self.first_has[:, None], self._first64[:, None]
            else:
                has, w = self.dense_has, self._dense64
            leaf, tg = np.nonzero(has)
            start = np.zeros(len(has) + 1, dtype=np.int32)
            np.cumsum(np.bincount(leaf, minlength=len(has)), out=start[1:])
            weight = np.ascontiguousarray(w[leaf, tg], dtype=dtype)
            self._cache[key] = start, tg.astype(np.int32), weight
        return self._cache[key]

    def dense(self, dtype, fill: float = 0.0) -> np.ndarray:
        key = ("dense", dtype, fill)
        if key not in self._cache:
            d = self._dense64 if fill == 0.0 else np.where(self.dense_has, self._dense64, fill)
            self._cache[key] = np.ascontiguousarray(d, dtype=dtype)
        return self._cache[key]
