"""The operators of the ai.onnx.ml domain: tree ensembles (TreeEnsemble, TreeEnsembleClassifier,
TreeEnsembleRegressor), linear models (LinearClassifier, LinearRegressor), support vector machines
(SVMClassifier, SVMRegressor), the data plumbing (Binarizer, Scaler, Normalizer, Imputer,
LabelEncoder, CategoryMapper, ArrayFeatureExtractor, OneHotEncoder, FeatureVectorizer) and the map
operators (ZipMap, DictVectorizer, CastMap). Strings are object arrays of ``str``; maps are dicts
of Python keys and values, sequences of maps lists of them (see ``ort_core.feeds``).

Trees are evaluated for the whole batch at once: every (sample, tree) pair walks down its tree one
level per step with numpy index arrays, and pairs drop out of the active set when they reach a
leaf. Leaf weights are aggregated with ``bincount`` (SUM, AVERAGE) or ``ufunc.at`` (MIN, MAX).
Where the specification leaves a case open (the binary classifiers), the kernels follow onnx's
reference implementation, which agrees with onnxruntime on the models converters produce.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ort_core.errors import InvalidArgument
from ort_core.ir import tensor_dtype
from ort_core.provider import KernelUnsupported

from ._registry import builder, kernel

ML = "ai.onnx.ml"
STRING = np.dtype(object)
_ML_INPUTS = {np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64)}


# -- post transforms -------------------------------------------------------------------------------
def _logistic(s: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(s))
    return np.where(s < 0, e / (1 + e), 1 / (1 + e))


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_zero(s: np.ndarray) -> np.ndarray:
    """Softmax over the non-zero scores; zero scores stay (almost) zero, all-zero rows give 0.5."""
    top = s.max(axis=-1, keepdims=True)
    nonzero = np.abs(s) > 1e-7
    e = np.where(nonzero, np.exp(s - np.where(nonzero, top, 0)), s * np.exp(-top))
    total = e.sum(axis=-1, keepdims=True)
    safe = np.where(total == 0, 1, total)
    return np.where(total == 0, 0.5, e / safe)


def _probit(p: np.ndarray) -> np.ndarray:
    """sqrt(2) * erfinv(2p - 1) with Winitzki's closed-form erfinv (a = 0.147) in float32, as
    onnxruntime computes it (so p = 0 or 1 gives -inf or inf, p outside [0, 1] NaN)."""
    f = np.float32
    x = 2 * np.asarray(p, dtype=f) - 1
    sign = np.where(x < 0, f(-1), f(1))
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log((1 - x) * (1 + x))
        v = f(2) / (f(3.14159) * f(0.147)) + f(0.5) * log
        r = sign * np.sqrt(-v + np.sqrt(v * v - f(1) / f(0.147) * log))
    return (f(1.41421356) * r).astype(f)


_TRANSFORMS = {
    "NONE": lambda s: s,
    "SOFTMAX": _softmax,
    "LOGISTIC": _logistic,
    "SOFTMAX_ZERO": _softmax_zero,
    "PROBIT": _probit,
}
_TRANSFORM_NAMES = list(_TRANSFORMS)  # TreeEnsemble's post_transform integers index this list


def _transform_name(info) -> str:
    name = info.attr("post_transform", "NONE")
    if name not in _TRANSFORMS:
        raise KernelUnsupported(f"post_transform {name!r}: use one of {_TRANSFORM_NAMES}")
    return name


def _features(x: np.ndarray) -> np.ndarray:
    """The input as a [N, F] float array (integers compare and compute as float32)."""
    if x.dtype.kind in "iu":
        x = x.astype(np.float32)
    if x.ndim == 1:
        return x.reshape(1, -1)
    return x.reshape(x.shape[0], -1) if x.ndim > 2 else x


def _labels(info, ints_name: str) -> tuple[np.ndarray | None, bool]:
    """The class labels (int64 or object array) and whether they are strings."""
    strings = info.attr("classlabels_strings")
    if strings:
        out = np.empty(len(strings), dtype=object)
        out[:] = list(strings)
        return out, True
    ints = info.attr(ints_name)
    return (np.asarray(ints, dtype=np.int64) if ints is not None else None), False


def _floats(info, name: str, default: Any = None) -> np.ndarray | None:
    """A float attribute given either as ``name`` (floats) or ``name_as_tensor`` (a tensor)."""
    tensor = info.attr(f"{name}_as_tensor")
    if tensor is not None:
        return np.asarray(tensor, dtype=np.float64).reshape(-1)
    value = info.attr(name)
    if value is None:
        return default
    return np.asarray(value, dtype=np.float32).astype(np.float64)


# -- tree ensembles --------------------------------------------------------------------------------
# Branch modes, numbered as TreeEnsemble (ai.onnx.ml 5) numbers them; LEAF marks leaves.
_MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]
_MEMBER, _LEAF = 6, 7
_COMPARE = (np.less_equal, np.less, np.greater_equal, np.greater, np.equal, np.not_equal)


@dataclass(frozen=True)
class Forest:
    """A tree ensemble as flat arrays over all nodes of all trees (leaves included).

    A leaf's true and false children are itself; leaf ``i`` adds ``weights[j]`` to
    ``targets[j]`` for ``j`` in ``[leaf_start[i], leaf_start[i + 1])``."""

    feature: np.ndarray  # int64 [M]
    split: np.ndarray  # float64 [M]
    mode: np.ndarray  # uint8 [M]
    true: np.ndarray  # int64 [M]
    false: np.ndarray  # int64 [M]
    missing_true: np.ndarray  # bool [M]
    members: dict[int, np.ndarray]  # MEMBER node -> its set, sorted
    roots: np.ndarray  # int64 [T]
    leaf_start: np.ndarray  # int64 [M + 1]
    targets: np.ndarray  # int64 [W]
    weights: np.ndarray  # float64 [W]

    def __post_init__(self) -> None:
        branch = self.mode != _LEAF
        modes = np.unique(self.mode[branch])
        set_ = object.__setattr__  # derived lookup tables, computed once per session
        set_(self, "_branch", branch)
        set_(self, "_children", np.stack([self.false, self.true], axis=1).reshape(-1))
        set_(self, "_uniform", int(modes[0]) if len(modes) == 1 and modes[0] != _MEMBER else None)
        set_(self, "_any_missing", bool(self.missing_true.any()))
        # float32 inputs compare against float32 splits when that is exact (it is for float
        # attributes); otherwise everything compares in float64
        exact32 = np.array_equal(self.split.astype(np.float32).astype(np.float64), self.split)
        set_(self, "_split32", self.split.astype(np.float32) if exact32 else None)
        # the usual case: every leaf gives exactly one weight, indexed by the leaf's node id
        counts = np.diff(self.leaf_start)
        single = bool((counts[~branch] == 1).all())
        set_(self, "_single", single)

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """The leaf each sample of ``x`` [N, F] reaches in each tree: int64 [N, T].

        All (sample, tree) pairs walk down together, one level per step; pairs that reached a
        leaf are dropped from the working arrays once they are a good share of them."""
        n, t, f = x.shape[0], len(self.roots), x.shape[1]
        if n and self._branch.any() and f <= self.feature[self._branch].max():
            raise InvalidArgument(
                f"the trees read feature {self.feature[self._branch].max()} but X has {f} features"
            )
        split = self._split32 if x.dtype == np.float32 and self._split32 is not None else self.split
        flat = np.ascontiguousarray(x).reshape(-1)
        nan = bool(np.isnan(flat).any())
        cur = np.tile(self.roots, n)
        base = np.repeat(np.arange(n, dtype=np.int64) * f, t)
        pos = None  # positions of the working pairs in the output; None: all of them
        out = np.empty(n * t, dtype=np.int64)
        while True:
            live = self._branch[cur]
            n_live = int(np.count_nonzero(live))
            if n_live == 0:
                break
            if 2 * n_live < len(cur):
                done = ~live
                out[np.flatnonzero(done) if pos is None else pos[done]] = cur[done]
                pos = np.flatnonzero(live) if pos is None else pos[live]
                cur, base = cur[live], base[live]
            v = flat[base + self.feature[cur]]
            go = self._decide(cur, v, split, nan)
            cur = self._children[2 * cur + go]
        if pos is None:
            return cur.reshape(n, t)
        out[pos] = cur
        return out.reshape(n, t)

    def _decide(self, at: np.ndarray, v: np.ndarray, split: np.ndarray, nan: bool) -> np.ndarray:
        """Whether each node ``at`` sends its value ``v`` to the true branch (leaves: ignored)."""
        if self._uniform is not None:
            go = _COMPARE[self._uniform](v, split[at])
        else:
            modes = self.mode[at]
            go = np.zeros(len(at), dtype=bool)
            for m in np.unique(modes):
                if m == _LEAF:
                    continue
                sel = modes == m
                if m == _MEMBER:
                    go[sel] = self._member(at[sel], v[sel])
                else:
                    go[sel] = _COMPARE[m](v[sel], split[at[sel]])
        if nan and self._any_missing:  # NaN follows the true branch where the node says so
            miss = np.isnan(v)
            go[miss] |= self.missing_true[at[miss]]
        return go.view(np.uint8)

    def _member(self, at: np.ndarray, v: np.ndarray) -> np.ndarray:
        out = np.zeros(len(at), dtype=bool)
        for n in np.unique(at):
            sel = at == n
            out[sel] = np.isin(v[sel], self.members[int(n)])
        return out

    def scored(self, leaves: np.ndarray, n_targets: int) -> np.ndarray:
        """Which targets [N, n_targets] some leaf in ``leaves`` [N, T] gives a weight."""
        cell, _ = self._cells(leaves, n_targets)
        n = leaves.shape[0]
        return (np.bincount(cell, minlength=n * n_targets) > 0).reshape(n, n_targets)

    def _cells(self, leaves: np.ndarray, n_targets: int) -> tuple[np.ndarray, np.ndarray]:
        """For every weight the leaves give: its cell (row * n_targets + target) and entry."""
        n = leaves.shape[0]
        flat = leaves.reshape(-1)
        if self._single:
            entry = self.leaf_start[flat]
            targets = self.targets[entry]
            if targets.size and (targets.min() < 0 or targets.max() >= n_targets):
                raise InvalidArgument(f"a leaf's target id is outside [0, {n_targets})")
            row = np.repeat(np.arange(n, dtype=np.int64) * n_targets, leaves.shape[1])
            return row + targets, entry
        counts = self.leaf_start[flat + 1] - self.leaf_start[flat]
        total = int(counts.sum())
        first = np.repeat(self.leaf_start[flat], counts)
        entry = first + np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        row = np.repeat(np.arange(n).repeat(leaves.shape[1]), counts)
        targets = self.targets[entry]
        if total and (targets.min() < 0 or targets.max() >= n_targets):
            raise InvalidArgument(f"a leaf's target id is outside [0, {n_targets})")
        return row * n_targets + targets, entry

    def first_weights(self, leaves: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
        """onnxruntime's single-target aggregation: each reached leaf gives its first weight
        (whatever its target and however many it has). Returns (scores [N] float64, whether some
        leaf gave a weight [N])."""
        start = self.leaf_start[leaves]
        has = self.leaf_start[leaves + 1] > start
        w = np.where(has, self.weights[np.minimum(start, len(self.weights) - 1)], np.nan)
        scored = has.any(axis=1)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no leaf scored
            if how == "MIN":
                p = np.nanmin(w, axis=1)
            elif how == "MAX":
                p = np.nanmax(w, axis=1)
            else:
                p = np.nansum(w, axis=1)
                if how == "AVERAGE" and leaves.shape[1]:
                    p = p / leaves.shape[1]
        return np.where(scored, p, 0.0), scored

    def aggregate(self, leaves: np.ndarray, n_targets: int, how: str) -> np.ndarray:
        """Aggregate the weights of the leaves [N, T] per target: float64 [N, n_targets].
        Targets no leaf scores are 0 (for MIN and MAX too, as in onnxruntime)."""
        n = leaves.shape[0]
        cell, entry = self._cells(leaves, n_targets)
        if how in ("SUM", "AVERAGE"):
            out = np.bincount(cell, self.weights[entry], minlength=n * n_targets)
            out = out.reshape(n, n_targets)
            return out / len(self.roots) if how == "AVERAGE" and len(self.roots) else out
        out = np.zeros(n * n_targets)
        scored = np.bincount(cell, minlength=n * n_targets) > 0
        out[scored] = np.inf if how == "MIN" else -np.inf
        (np.minimum if how == "MIN" else np.maximum).at(out, cell, self.weights[entry])
        return out.reshape(n, n_targets)


def _leaf_csr(n_nodes: int, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order of the weight entries grouped by owning node (stable) and the CSR starts."""
    order = np.argsort(owner, kind="stable")
    start = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n_nodes), out=start[1:])
    return order, start


def _legacy_forest(info, prefix: str) -> Forest:
    """The forest of TreeEnsembleClassifier/Regressor (nodes keyed by tree id and node id, leaf
    weights in ``{prefix}_*`` attributes: class_* or target_*)."""
    tree_ids = np.asarray(info.attr("nodes_treeids", []), dtype=np.int64)
    node_ids = np.asarray(info.attr("nodes_nodeids", []), dtype=np.int64)
    m = len(tree_ids)
    if m == 0:
        raise KernelUnsupported("the tree ensemble has no nodes")
    names = list(info.attr("nodes_modes", []))
    known = _MODES + ["BRANCH_MEMBER", "LEAF"]
    bad = sorted(set(names) - set(known))
    if bad or len(names) != m:
        raise KernelUnsupported(f"nodes_modes must give one of {known} per node, not {bad}")
    mode = np.asarray([known.index(s) for s in names], dtype=np.uint8)
    if (mode == _MEMBER).any():
        raise KernelUnsupported("BRANCH_MEMBER exists only in TreeEnsemble (ai.onnx.ml 5)")

    width = int(node_ids.max()) + 1
    keys = tree_ids * width + node_ids
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]

    def find(trees: np.ndarray, nodes: np.ndarray, what: str) -> np.ndarray:
        k = trees * width + nodes
        pos = np.clip(np.searchsorted(sorted_keys, k), 0, m - 1)
        bad = (sorted_keys[pos] != k) | (nodes < 0) | (nodes >= width)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise KernelUnsupported(f"{what}: node {nodes[i]} of tree {trees[i]} does not exist")
        return order[pos]

    leaf = mode == _LEAF
    own = np.arange(m)
    true_ids = np.asarray(info.attr("nodes_truenodeids", [0] * m), dtype=np.int64)
    false_ids = np.asarray(info.attr("nodes_falsenodeids", [0] * m), dtype=np.int64)
    branch = np.flatnonzero(~leaf)
    true, false = own.copy(), own.copy()
    true[branch] = find(tree_ids[branch], true_ids[branch], "nodes_truenodeids")
    false[branch] = find(tree_ids[branch], false_ids[branch], "nodes_falsenodeids")

    _, first = np.unique(tree_ids, return_index=True)  # root: a tree's first node, trees sorted
    w_trees = np.asarray(info.attr(f"{prefix}_treeids", []), dtype=np.int64)
    w_nodes = np.asarray(info.attr(f"{prefix}_nodeids", []), dtype=np.int64)
    w_targets = np.asarray(info.attr(f"{prefix}_ids", []), dtype=np.int64)
    w_values = _floats(info, f"{prefix}_weights", np.zeros(0))
    if not len(w_trees) == len(w_nodes) == len(w_targets) == len(w_values):
        raise KernelUnsupported(f"the {prefix}_* attributes differ in length")
    owner = find(w_trees, w_nodes, f"{prefix}_nodeids")
    perm, start = _leaf_csr(m, owner)
    missing = info.attr("nodes_missing_value_tracks_true")
    return Forest(
        feature=np.asarray(info.attr("nodes_featureids", [0] * m), dtype=np.int64),
        split=_floats(info, "nodes_values", np.zeros(m)),
        mode=mode,
        true=true,
        false=false,
        missing_true=np.asarray(missing if missing else [0] * m, dtype=bool),
        members={},
        roots=first.astype(np.int64),
        leaf_start=start,
        targets=w_targets[perm],
        weights=w_values[perm],
    )


def _forest_5(info) -> Forest:
    """The forest of TreeEnsemble (ai.onnx.ml 5): interior nodes 0..n-1 then leaves n..n+L-1."""
    modes = np.asarray(info.attr("nodes_modes"), dtype=np.uint8).reshape(-1)
    n = len(modes)
    if (modes > _MEMBER).any():
        raise KernelUnsupported("nodes_modes values must lie in [0, 6]")
    leaf_w = np.asarray(info.attr("leaf_weights"), dtype=np.float64).reshape(-1)
    leaf_t = np.asarray(info.attr("leaf_targetids", []), dtype=np.int64)
    n_leaves = len(leaf_w)
    if len(leaf_t) != n_leaves:
        raise KernelUnsupported("leaf_targetids and leaf_weights differ in length")

    def child(ids: str, leafs: str) -> np.ndarray:
        c = np.asarray(info.attr(ids, []), dtype=np.int64)
        is_leaf = np.asarray(info.attr(leafs, []), dtype=bool)
        if len(c) != n or len(is_leaf) != n:
            raise KernelUnsupported(f"{ids} and {leafs} need one value per node")
        out = np.where(is_leaf, c + n, c)
        limit = np.where(is_leaf, n_leaves, n)
        if ((c < 0) | (c >= limit)).any():
            raise KernelUnsupported(f"{ids} refers to a node or leaf that does not exist")
        return out

    true = np.concatenate([child("nodes_truenodeids", "nodes_trueleafs"), np.arange(n_leaves) + n])
    false = np.concatenate(
        [child("nodes_falsenodeids", "nodes_falseleafs"), np.arange(n_leaves) + n]
    )
    roots = np.asarray(info.attr("tree_roots", []), dtype=np.int64)
    # a tree that is one leaf: its root's two branches are the same leaf
    single = (true[roots] == false[roots]) & (true[roots] >= n)
    roots = np.where(single, true[roots], roots)

    members: dict[int, np.ndarray] = {}
    member_nodes = np.flatnonzero(modes == _MEMBER)
    if member_nodes.size:
        values = info.attr("membership_values")
        if values is None:
            raise KernelUnsupported("BRANCH_MEMBER nodes need membership_values")
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        cuts = np.flatnonzero(np.isnan(values))
        if len(cuts) < len(member_nodes):
            raise KernelUnsupported("membership_values needs one NaN-ended set per MEMBER node")
        sets = np.split(values, cuts + 1)
        members = {int(k): np.unique(s[~np.isnan(s)]) for k, s in zip(member_nodes, sets)}

    missing = info.attr("nodes_missing_value_tracks_true")
    split = info.attr("nodes_splits")
    return Forest(
        feature=np.concatenate(
            [
                np.asarray(info.attr("nodes_featureids", []), dtype=np.int64),
                np.zeros(n_leaves, np.int64),
            ]
        ),
        split=np.concatenate([np.asarray(split, dtype=np.float64).reshape(-1), np.zeros(n_leaves)]),
        mode=np.concatenate([modes, np.full(n_leaves, _LEAF, dtype=np.uint8)]),
        true=true,
        false=false,
        missing_true=np.concatenate(
            [np.asarray(missing if missing else [0] * n, dtype=bool), np.zeros(n_leaves, bool)]
        ),
        members=members,
        roots=roots,
        leaf_start=np.concatenate([np.zeros(n + 1, np.int64), np.arange(1, n_leaves + 1) + 0]),
        targets=leaf_t,
        weights=leaf_w,
    )


_AGGREGATES = ["AVERAGE", "SUM", "MIN", "MAX"]


# onnxruntime finalizes tree scores per (sample, target) with a "has a score" flag: a target no
# reached leaf gives a weight reads as 0 when written out, even after a base value was added to
# it. A single-target ensemble takes its own path, where only PROBIT is applied.
def _write_scores(values: np.ndarray, post: str) -> np.ndarray:
    """onnxruntime's transform of rows of two or more scores (float32)."""
    v = values.astype(np.float32)
    if post == "NONE":
        return v
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _TRANSFORMS[post](v).astype(np.float32)


def _finalize_regression(forest, leaves, n_targets, how, post, base) -> np.ndarray:
    """TreeEnsembleRegressor and TreeEnsemble scores [N, n_targets] as onnxruntime writes them."""
    if n_targets == 1:
        origin = base[0] if base is not None and len(base) == 1 else 0.0
        p, scored = forest.first_weights(leaves, how)
        if how in ("MIN", "MAX"):
            p = np.where(scored, p + origin, origin)
        else:
            p = p + origin
        p = p.astype(np.float32).reshape(-1, 1)
        return _probit(p) if post == "PROBIT" else p
    scores = forest.aggregate(leaves, n_targets, how)
    scored = forest.scored(leaves, n_targets)
    if base is not None and len(base) == n_targets:
        scores = scores + base
    return _write_scores(np.where(scored, scores, 0.0), post)


@builder("TreeEnsemble", since=5, domain=ML, dtypes={0: {np.float16, np.float32, np.float64}})
def tree_ensemble(info):
    forest = _forest_5(info)
    agg, post = info.attr("aggregate_function", 1), info.attr("post_transform", 0)
    if agg not in range(4) or post not in range(5):
        raise KernelUnsupported("aggregate_function must lie in [0, 3], post_transform in [0, 4]")
    how, post_name = _AGGREGATES[agg], _TRANSFORM_NAMES[post]
    n_targets = info.attr("n_targets")
    if n_targets is None:
        n_targets = int(forest.targets.max(initial=-1)) + 1

    def run(x):
        leaves = forest.leaves(_features(x))
        scores = _finalize_regression(forest, leaves, n_targets, how, post_name, None)
        return scores.astype(x.dtype)

    return run


@builder("TreeEnsembleRegressor", since=(1, 3), domain=ML, dtypes={0: _ML_INPUTS})
def tree_ensemble_regressor(info):
    forest = _legacy_forest(info, "target")
    how = info.attr("aggregate_function", "SUM")
    if how not in _AGGREGATES:
        raise KernelUnsupported(f"aggregate_function {how!r}: use one of {_AGGREGATES}")
    post = _transform_name(info)
    n_targets = info.attr("n_targets") or int(forest.targets.max(initial=0)) + 1
    base = _floats(info, "base_values")
    if base is not None and base.size and len(base) != n_targets:
        raise KernelUnsupported(
            f"base_values has {len(base)} values for {n_targets} targets; give one per target"
        )

    def run(x):
        leaves = forest.leaves(_features(x))
        return _finalize_regression(forest, leaves, n_targets, how, post, base)

    return run


def _binary_scores(s, has, base, binary, all_positive, post):
    """onnxruntime's scores and labels of a two-class TreeEnsembleClassifier.

    Returns (label codes, z [N, 2], whether the codes index the labels): outside the binary case
    (both classes carry weights) onnxruntime writes 1 or 0 as the label, not a class label."""
    s0, s1 = s[:, 0], s[:, 1]
    h0, h1 = has[:, 0], has[:, 1]
    n = len(s0)
    second = np.full(n, -1)  # how a single score becomes two (onnxruntime's add_second_class)
    two = np.ones(n, dtype=bool)  # rows that keep two scores
    if base is not None and len(base) == 2:
        p1 = np.where(h1, base[1] + s0, s1 + base[1])
        s0, s1 = np.where(h1, -p1, s0 + base[0]), p1
    elif base is not None and len(base) == 1:
        s0, two = s0 + base[0], h1.copy()
    elif base is None or len(base) == 0:
        second[:], two = 3, h1.copy()
    positive = np.where(two & h1, s1, np.where(h0, s0, 0.0))
    if binary:
        up = positive > 0.5 if all_positive else positive > 0
        second = np.where(up, 0, 1) if all_positive else np.where(up, 2, 3)
    else:
        up = positive > 0
    v0, v1 = np.where(h0, s0, 0.0), np.where(h1, s1, 0.0)
    both = _write_scores(np.stack([v0, v1], axis=1), post)
    v0 = v0.astype(np.float32)
    if post == "PROBIT":
        one = np.stack([_probit(v0), np.zeros_like(v0)], axis=1)
    else:
        mixed = (
            np.stack([_logistic(-v0), _logistic(v0)], axis=1)
            if post == "LOGISTIC"
            else np.stack([-v0, v0], axis=1)
        )
        # LOGISTIC makes [logistic(-s), logistic(s)] whatever the weights' signs
        positive = np.stack([1 - v0, v0], axis=1) if post != "LOGISTIC" else mixed
        one = np.where(
            (second == 0)[:, None] | (second == 1)[:, None],
            positive,
            np.where((second >= 2)[:, None], mixed, np.stack([v0, np.zeros_like(v0)], axis=1)),
        )
    z = np.where(two[:, None], both, one).astype(np.float32)
    return up.astype(np.int64), z, binary


@builder("TreeEnsembleClassifier", since=(1, 3), domain=ML, dtypes={0: _ML_INPUTS})
def tree_ensemble_classifier(info):
    forest = _legacy_forest(info, "class")
    labels, strings = _labels(info, "classlabels_int64s")
    if labels is None or not len(labels):
        raise KernelUnsupported("TreeEnsembleClassifier needs classlabels_int64s or _strings")
    post = _transform_name(info)
    n_classes = len(labels)
    used = np.unique(forest.targets)
    if n_classes > 1 and used.size and (used.min() < 0 or used.max() >= n_classes):
        raise KernelUnsupported(f"class_ids must lie in [0, {n_classes})")
    weights = np.asarray(forest.weights)
    binary = n_classes == 2 and len(used) == 1
    all_positive = bool((weights >= 0).all())
    base = _floats(info, "base_values")
    base = base.astype(np.float32) if base is not None else None
    if base is not None and len(base) > max(n_classes, 2):
        raise KernelUnsupported(
            f"base_values has {len(base)} values for {n_classes} classes; give one per class"
        )
    width = max(n_classes, int(used.max(initial=0)) + 1)

    def label_of(codes: np.ndarray, index: bool) -> np.ndarray:
        if not strings and not index:  # onnxruntime writes 1/0 itself here, not a class label
            return codes.astype(np.int64)
        if (codes < 0).any() or (codes >= n_classes).any():
            raise InvalidArgument(
                f"TreeEnsembleClassifier: a sample's class index is outside the {n_classes} "
                "labels (a one-class model whose score is positive); onnxruntime reads past its "
                "label list here. Give the model two classes."
            )
        return labels[codes]

    def run(x):
        leaves = forest.leaves(_features(x))
        # onnxruntime sums in float32: ties such as 0.5 from averaged votes stay exact ties
        s = forest.aggregate(leaves, width, "SUM").astype(np.float32)
        if n_classes == 1:  # onnxruntime's single-output path: each leaf's first weight
            p = forest.first_weights(leaves, "SUM")[0].astype(np.float32)
            if base is not None and len(base) == 2:
                p = p + base[1]
                z = _write_scores(np.stack([-p, p], axis=1), post)[:, :1]
            else:
                if base is not None and len(base) == 1:
                    p = p + base[0]
                p32 = p.astype(np.float32).reshape(-1, 1)
                z = _probit(p32) if post == "PROBIT" else p32
            return label_of((p > 0).astype(np.int64), False), z.astype(np.float32)
        has = forest.scored(leaves, width)
        if n_classes == 2:
            codes, z, index = _binary_scores(s, has, base, binary, all_positive, post)
            return label_of(codes, index), z
        s, has = s[:, :n_classes], has[:, :n_classes]
        if base is not None and base.size:
            k = min(len(base), n_classes)
            s[:, :k] = np.where(has[:, :k], s[:, :k] + base[:k], base[:k])
            has[:, :k] = True
        best = np.argmax(np.where(has, s, -np.inf), axis=1)
        best = np.where(has.any(axis=1), best, n_classes - 1)  # no class scored: undefined there
        return label_of(best, True), _write_scores(np.where(has, s, 0.0), post)

    return run


# -- linear models ---------------------------------------------------------------------------------
def _two_columns(s: np.ndarray, post: str, negate: bool) -> np.ndarray:
    """One score per row made into two as onnxruntime does for binary models: [1 - s, s], or
    [-s, s] (``negate``); LOGISTIC makes [logistic(-s), logistic(s)] either way."""
    s = s.astype(np.float32)
    if post == "LOGISTIC":
        return np.stack([_logistic(-s), _logistic(s)], axis=1)
    return np.stack([-s if negate else 1 - s, s], axis=1)


def _linear_scores(x: np.ndarray, coef: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """x [N, F] @ coef.T + intercepts in float32 (onnxruntime casts every input to float)."""
    f = _features(x).astype(np.float32)
    if coef.size % max(len(intercepts), 1) or (
        f.shape[1] and coef.size // len(intercepts) != f.shape[1]
    ):
        raise InvalidArgument(
            f"the model has {coef.size} coefficients for {len(intercepts)} outputs but X has "
            f"{f.shape[1]} features"
        )
    return f @ coef.reshape(len(intercepts), -1).T + intercepts


@builder("LinearClassifier", since=1, domain=ML, dtypes={0: _ML_INPUTS})
def linear_classifier(info):
    labels, strings = _labels(info, "classlabels_ints")
    post = _transform_name(info)
    coef = np.asarray(info.attr("coefficients", []), dtype=np.float32)
    intercepts = info.attr("intercepts")
    n_out = len(intercepts) if intercepts else max(coef.size // max(coef.size, 1), 1)
    intercepts = np.asarray(intercepts if intercepts else [0.0] * n_out, dtype=np.float32)
    n_labels = len(labels) if labels is not None else 0
    if (n_out == 1 and n_labels not in (0, 2)) or (n_out > 1 and n_labels not in (0, n_out)):
        raise KernelUnsupported(
            f"LinearClassifier: {n_labels} class labels for {n_out} intercepts; give one label "
            "per intercept, or two labels (or none) for one intercept (binary)"
        )
    if n_labels == 0 and n_out > 1:
        raise KernelUnsupported("LinearClassifier with several intercepts needs class labels")
    second = n_out == 1 and n_labels == 2
    if n_labels == 2 and n_out == 1:
        pos, neg = labels[1], labels[0]
    else:
        pos, neg = ("1", "0") if strings else (1, 0)

    def run(x):
        s = _linear_scores(x, coef, intercepts)
        if n_out == 1:  # the label comes from the raw score's sign
            y = np.where(s[:, 0] > 0, pos, neg)
            y = y.astype(object) if strings else y.astype(np.int64)
            if post == "PROBIT":  # onnxruntime transforms only the first N entries of Z
                z = np.zeros(s.shape[0] * (2 if second else 1), dtype=np.float32)
                z[: s.shape[0]] = _probit(s[:, 0])
                return y, z.reshape(s.shape[0], -1)
            if second:
                return y, _two_columns(s[:, 0], post, negate=False)
            return y, s.astype(np.float32)
        y = labels[np.argmax(s, axis=1)]
        return y, _write_scores(s, post)

    return run


@builder("LinearRegressor", since=1, domain=ML, dtypes={0: _ML_INPUTS})
def linear_regressor(info):
    post = _transform_name(info)
    coef = np.asarray(info.attr("coefficients", []), dtype=np.float32)
    targets = info.attr("targets", 1)
    intercepts = info.attr("intercepts")
    intercepts = np.asarray(intercepts if intercepts else [0.0] * targets, dtype=np.float32)

    def run(x):
        s = _linear_scores(x, coef, intercepts)
        if targets == 1:  # onnxruntime applies only PROBIT to a single target
            return _probit(s) if post == "PROBIT" else s.astype(np.float32)
        return _write_scores(s, post)

    return run


# -- support vector machines -----------------------------------------------------------------------
_KERNELS = ("LINEAR", "POLY", "RBF", "SIGMOID")


def _svm_kernel(info):
    """The kernel function K(x [N, F], sv [V, F]) -> [N, V] of an SVM node."""
    name = str(info.attr("kernel_type", "LINEAR")).upper()
    if name not in _KERNELS:
        raise KernelUnsupported(f"kernel_type {name!r}: use one of {_KERNELS}")
    params = list(info.attr("kernel_params", []) or [])
    gamma, coef0, degree = (params + [0.0, 0.0, 0.0])[:3] if params else (0.0, 0.0, 0.0)
    gamma, coef0, degree = float(np.float32(gamma)), float(np.float32(coef0)), int(degree)

    def k(x: np.ndarray, sv: np.ndarray) -> np.ndarray:
        if name == "RBF":
            d = (x * x).sum(1)[:, None] + (sv * sv).sum(1)[None, :] - 2 * (x @ sv.T)
            return np.exp(-gamma * np.maximum(d, 0))
        dot = x @ sv.T
        if name == "POLY":
            return (dot * gamma + coef0) ** degree
        if name == "SIGMOID":
            return np.tanh(dot * gamma + coef0)
        return dot

    return k


def _svm_input(x: np.ndarray) -> np.ndarray:
    return _features(x).astype(np.float64)


@builder("SVMRegressor", since=1, domain=ML, dtypes={0: _ML_INPUTS})
def svm_regressor(info):
    transform = _TRANSFORMS[_transform_name(info)]
    coef = np.asarray(info.attr("coefficients", []), dtype=np.float32).astype(np.float64)
    rho = np.asarray(info.attr("rho", [0.0]), dtype=np.float32).astype(np.float64)
    n_sv = info.attr("n_supports", 0)
    one_class = bool(info.attr("one_class", 0))
    kernel = _svm_kernel(info)
    sv = np.asarray(info.attr("support_vectors", []), dtype=np.float32).astype(np.float64)

    def run(x):
        f = _svm_input(x)
        if n_sv > 0:
            s = kernel(f, sv.reshape(n_sv, -1)) @ coef[:n_sv]
        else:  # linear mode: the coefficients are the weight vector
            s = f @ coef
        s = s + rho[0]
        if one_class:
            s = np.where(s > 0, 1.0, -1.0)
        return transform(s.reshape(-1, 1)).astype(np.float32)

    return run


def _pairwise_coupling(r: np.ndarray) -> np.ndarray:
    """Class probabilities [N, K] from pairwise probabilities r [N, K, K] (r[i, j] = P(i | i or j)),
    by the iterative method of Wu, Lin and Weng (2004) that libsvm uses, for all samples at once."""
    n, k, _ = r.shape
    eye = np.eye(k, dtype=bool)
    q = -r.transpose(0, 2, 1) * r  # q[t, j] = -r[j, t] * r[t, j] off the diagonal
    diag = (np.where(eye, 0, r.transpose(0, 2, 1)) ** 2).sum(axis=2)  # sum_j r[j, t]^2
    q = np.where(eye, diag[:, :, None] * eye, q)
    p = np.full((n, k), 1.0 / k)
    eps = 0.005 / k
    todo = np.arange(n)
    for _ in range(max(100, k)):
        qs, ps = q[todo], p[todo]
        qp = np.einsum("nij,nj->ni", qs, ps)
        pqp = (ps * qp).sum(axis=1)
        done = np.abs(qp - pqp[:, None]).max(axis=1) < eps
        todo, qs, ps, qp, pqp = todo[~done], qs[~done], ps[~done], qp[~done], pqp[~done]
        if not todo.size:
            break
        for t in range(k):
            diff = (pqp - qp[:, t]) / qs[:, t, t]
            ps[:, t] += diff
            pqp = (pqp + diff * (diff * qs[:, t, t] + 2 * qp[:, t])) / (1 + diff) ** 2
            ps /= (1 + diff)[:, None]
            qp = (qp + diff[:, None] * qs[:, t, :]) / (1 + diff)[:, None]
        p[todo] = ps
    return p


@builder("SVMClassifier", since=1, domain=ML, dtypes={0: _ML_INPUTS})
def svm_classifier(info):
    post = _transform_name(info)
    labels, _ = _labels(info, "classlabels_ints")
    n_classes = max(len(labels) if labels is not None else 0, 1)
    coef = np.asarray(info.attr("coefficients", []), dtype=np.float32).astype(np.float64)
    rho = np.asarray(info.attr("rho", [0.0]), dtype=np.float32).astype(np.float64)
    per_class = np.asarray(info.attr("vectors_per_class", []) or [], dtype=np.int64)
    n_sv = int(per_class.sum())
    starts = np.concatenate([[0], np.cumsum(per_class)])
    sv = np.asarray(info.attr("support_vectors", []), dtype=np.float32).astype(np.float64)
    kernel = _svm_kernel(info) if n_sv else None
    prob_a = np.asarray(info.attr("prob_a", []) or [], dtype=np.float32).astype(np.float64)
    prob_b = np.asarray(info.attr("prob_b", []) or [], dtype=np.float32).astype(np.float64)
    has_proba = prob_a.size > 0 and n_sv > 0
    all_positive = coef.size > 0 and coef.min() >= 0
    pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
    if n_sv:
        coef2 = coef.reshape(-1, n_sv)
        if coef2.shape[0] < n_classes - 1 or len(rho) < len(pairs):
            raise KernelUnsupported("SVMClassifier: too few coefficients or rho for the classes")

    def one_vs_one(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = kernel(f, sv.reshape(n_sv, -1))
        votes = np.zeros((f.shape[0], n_classes))
        scores = np.empty((f.shape[0], len(pairs)))
        for e, (i, j) in enumerate(pairs):
            si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
            s = rho[e] + k[:, si] @ coef2[j - 1, si] + k[:, sj] @ coef2[i, sj]
            scores[:, e] = s
            votes[:, i] += s > 0
            votes[:, j] += s <= 0
        return votes, scores

    def probabilities(scores: np.ndarray) -> np.ndarray:
        val = 1 - _logistic(scores * prob_a[: len(pairs)] + prob_b[: len(pairs)])
        val = np.clip(val, 1e-7, 1 - 1e-7)
        r = np.zeros((scores.shape[0], n_classes, n_classes))
        for e, (i, j) in enumerate(pairs):
            r[:, i, j], r[:, j, i] = val[:, e], 1 - val[:, e]
        return _pairwise_coupling(r)

    def labels_of(best: np.ndarray, top: np.ndarray) -> np.ndarray:
        if len(pairs) == 1 and not prob_a.size:  # binary without probabilities
            up = (top >= 0.5) if all_positive else (top > 0)
            best = np.where(up, 1, best)
        return labels[best] if labels is not None else best.astype(np.int64)

    def run(x):
        f = _svm_input(x)
        if not n_sv:  # linear mode: one score per class, the label is the best score
            scores = f @ coef.reshape(n_classes, -1).T + rho[0]
            best = np.argmax(scores, axis=1)
            y = labels_of(best, scores[np.arange(len(best)), best])
            if n_classes == 1:
                return y, (_probit(scores) if post == "PROBIT" else scores.astype(np.float32))
            return y, _write_scores(scores, post)
        votes, scores = one_vs_one(f)
        # the label is the class with most votes; onnxruntime's binary rule then sees a best
        # score of 0, so it keeps the vote
        y = labels_of(np.argmax(votes, axis=1), np.zeros(len(votes)))
        if has_proba:
            return y, _write_scores(probabilities(scores), post)
        if len(pairs) != 1:
            return y, _write_scores(scores, post)
        s = scores[:, 0].astype(np.float32)
        if post == "PROBIT":
            return y, np.stack([_probit(s), np.zeros_like(s)], axis=1)
        return y, _two_columns(s, post, negate=post == "NONE")

    return run


# -- data plumbing ---------------------------------------------------------------------------------
# onnxruntime's per-feature attributes (Scaler, Imputer) index the flat input by i % stride, where
# the stride is dim 0 of a 1-D input and dim 1 otherwise; for 1-D and 2-D inputs that is a
# broadcast over the last axis.
def _stride(x: np.ndarray) -> int:
    return int(x.shape[0]) if x.ndim == 1 else int(x.shape[1]) if x.ndim > 1 else 1


def _per_feature(x: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` (one per feature) laid out to combine elementwise with ``x``."""
    if x.ndim <= 2:
        return values
    return np.resize(values, x.size).reshape(x.shape)


@kernel("Binarizer", since=1, domain=ML)
def binarizer(x, threshold=0.0):
    return np.where(x > threshold, 1, 0).astype(x.dtype)


@builder("Scaler", since=1, domain=ML)
def scaler(info):
    offset = np.asarray(info.attr("offset", [0.0]) or [0.0], dtype=np.float32)
    scale = np.asarray(info.attr("scale", [1.0]) or [1.0], dtype=np.float32)

    def run(x):
        stride = _stride(x)
        parts = []
        for name, v in (("offset", offset), ("scale", scale)):
            if len(v) not in (1, stride):
                raise InvalidArgument(
                    f"Scaler: {name} has {len(v)} values; it needs 1 or one per feature ({stride}: "
                    f"dim {0 if x.ndim == 1 else 1} of the input, shape {list(x.shape)})"
                )
            parts.append(v if len(v) == 1 else _per_feature(x, v))
        # onnxruntime computes in the input's precision (float for integers), then rounds to float
        xf = x if x.dtype == np.float64 else x.astype(np.float32)
        return ((xf - parts[0].astype(xf.dtype)) * parts[1].astype(xf.dtype)).astype(np.float32)

    return run


@kernel("Normalizer", since=1, domain=ML)
def normalizer(x, norm="MAX"):
    if x.ndim > 2:
        raise InvalidArgument(f"Normalizer takes a [C] or [N, C] tensor, got shape {list(x.shape)}")
    v = np.atleast_2d(x).astype(np.float32)
    if norm == "MAX":
        div = v.max(axis=1, keepdims=True)
    elif norm == "L1":
        div = np.abs(v).sum(axis=1, keepdims=True)
    elif norm == "L2":
        div = np.sqrt((v * v).sum(axis=1, keepdims=True))
    else:
        raise InvalidArgument(f"Normalizer: norm {norm!r} is not MAX, L1 or L2")
    y = np.divide(v, div, out=v.copy(), where=div != 0)
    return y.reshape(x.shape)


@kernel("Imputer", since=1, domain=ML)
def imputer(
    x,
    imputed_value_floats=None,
    imputed_value_int64s=None,
    replaced_value_float=0.0,
    replaced_value_int64=0,
):
    if x.dtype.kind == "f":
        values, target = imputed_value_floats, replaced_value_float
    else:
        values, target = imputed_value_int64s, replaced_value_int64
    if not values:
        kind = "imputed_value_floats" if x.dtype.kind == "f" else "imputed_value_int64s"
        raise InvalidArgument(f"Imputer: a {x.dtype} input needs {kind}")
    fill = np.asarray(values).astype(x.dtype)
    # one value per feature, else (as onnxruntime does) the first value everywhere
    fill = _per_feature(x, fill) if len(fill) == _stride(x) else fill[0]
    mask = np.isnan(x) if x.dtype.kind == "f" and np.isnan(target) else x == target
    return np.where(mask, fill, x).astype(x.dtype)


def _lookup_kernel(keys, values, default, out_dtype):
    """A kernel mapping each element found in ``keys`` to ``values`` and others to ``default``;
    a NaN key matches NaN inputs (onnxruntime does so from LabelEncoder 4 on only)."""
    if keys.dtype.kind == "f":
        nan = np.isnan(keys)
        nan_value = values[nan][-1] if nan.any() else default
        table = dict(zip(keys[~nan].tolist(), values[~nan].tolist(), strict=True))
    else:
        nan_value = default
        table = dict(zip(keys.tolist(), values.tolist(), strict=True))

    def get(k):
        if isinstance(k, float) and math.isnan(k):
            return nan_value
        return table.get(k, default)

    mapper = np.frompyfunc(get, 1, 1)

    def run(x):
        if x.size == 0:
            return np.empty(x.shape, dtype=out_dtype)
        return np.asarray(mapper(x.astype(object)), dtype=out_dtype).reshape(x.shape)

    return run


_TYPED_ATTRS = (  # (suffix of keys_*/values_*, default_* attribute, its default, numpy dtype)
    ("strings", "default_string", "_Unused", STRING),
    ("int64s", "default_int64", -1, np.dtype(np.int64)),
    ("floats", "default_float", -0.0, np.dtype(np.float32)),
)


def _label_encoder_attrs(info, side: str) -> tuple[np.ndarray, Any, np.dtype]:
    """(array, default, dtype) of one side ('keys' or 'values') of a LabelEncoder since 2."""
    tensor = info.attr(f"{side}_tensor")
    found = [(info.attr(f"{side}_{sfx}"), d, dv, dt) for sfx, d, dv, dt in _TYPED_ATTRS]
    found = [f for f in found if f[0] is not None]
    if (tensor is not None) + len(found) != 1:
        raise KernelUnsupported(f"LabelEncoder needs exactly one {side}_* attribute")
    if tensor is not None:
        arr = np.asarray(tensor).reshape(-1)
        default = info.attr("default_tensor")
        if default is None:
            default = "_Unused" if arr.dtype == object else -0.0 if arr.dtype.kind == "f" else -1
        else:
            default = np.asarray(default).reshape(-1)[0]
        return arr, default, arr.dtype
    values, default_name, default_value, dtype = found[0]
    return np.asarray(values, dtype=dtype), info.attr(default_name, default_value), dtype


def _two_way(to_int, to_str):
    """A kernel choosing between two lookups by the input's element type (string or int)."""

    def run(x):
        return to_int(x) if x.dtype == STRING else to_str(x)

    return run


@builder("LabelEncoder", since=1, domain=ML)
def label_encoder_1(info):
    classes = np.asarray(info.attr("classes_strings", []), dtype=object)
    positions = np.arange(len(classes), dtype=np.int64)
    return _two_way(
        _lookup_kernel(classes, positions, info.attr("default_int64", -1), np.int64),
        _lookup_kernel(positions, classes, info.attr("default_string", "_Unused"), STRING),
    )


@builder("LabelEncoder", since=(2, 4), domain=ML)
def label_encoder(info):
    keys, _, _ = _label_encoder_attrs(info, "keys")
    values, default, dtype = _label_encoder_attrs(info, "values")
    if len(keys) != len(values):
        raise KernelUnsupported("LabelEncoder: keys and values have different lengths")
    return _lookup_kernel(keys, values, default, dtype)


@builder("CategoryMapper", since=1, domain=ML)
def category_mapper(info):
    strings = np.asarray(info.attr("cats_strings", []), dtype=object)
    ints = np.asarray(info.attr("cats_int64s", []), dtype=np.int64)
    if len(strings) != len(ints):
        raise KernelUnsupported("CategoryMapper: cats_strings and cats_int64s differ in length")
    return _two_way(
        _lookup_kernel(strings, ints, info.attr("default_int64", -1), np.int64),
        _lookup_kernel(ints, strings, info.attr("default_string", "_Unused"), STRING),
    )


@kernel("ArrayFeatureExtractor", since=1, domain=ML)
def array_feature_extractor(x, indices):
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    # negative indices count from the end (onnxruntime refuses them: a documented difference)
    bad = (idx < -x.shape[-1]) | (idx >= x.shape[-1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidArgument(
            f"ArrayFeatureExtractor: index {idx[i]} (Y[{i}]) is out of range "
            f"[-{x.shape[-1]}, {x.shape[-1]}) of the input's last axis"
        )
    y = np.take(x, idx, axis=-1)
    return y.reshape(1, -1) if x.ndim == 1 else y


def _one_of(info, strings_name: str, ints_name: str) -> list:
    """The values of whichever of two attributes (strings or int64s) the node gives."""
    strings, ints = info.attr(strings_name), info.attr(ints_name)
    if (strings is None) == (ints is None):
        raise KernelUnsupported(
            f"{info.node.op_type} needs exactly one of {strings_name}, {ints_name}"
        )
    return list(strings if strings is not None else ints)


@builder("OneHotEncoder", since=1, domain=ML)
def one_hot_encoder(info):
    cats = _one_of(info, "cats_strings", "cats_int64s")
    position = {c: i for i, c in reversed(list(enumerate(cats)))}
    zeros = bool(info.attr("zeros", 1))
    find = np.frompyfunc(lambda v: position.get(v, -1), 1, 1)

    def run(x):
        keys = x if x.dtype == object else x.astype(np.int64)
        pos = np.asarray(find(keys.astype(object)), dtype=np.int64).reshape(x.shape)
        if not zeros and (pos < 0).any():
            raise InvalidArgument("OneHotEncoder: a value is not among the categories (zeros=0)")
        return (pos[..., None] == np.arange(len(cats))).astype(np.float32)

    return run


@kernel("FeatureVectorizer", since=1, domain=ML)
def feature_vectorizer(*xs, inputdimensions=None):
    dims = list(inputdimensions or [x.shape[-1] if x.ndim else 1 for x in xs])
    rows = max((x.shape[0] if x.ndim > 1 else 1) for x in xs) if xs else 1
    out = np.zeros((rows, sum(dims)), dtype=np.float32)
    col = 0
    for x, d in zip(xs, dims, strict=False):
        n = x.shape[0] if x.ndim > 1 else 1
        part = x.reshape(n, x.size // n if n else 0)[:, :d]
        out[:n, col : col + part.shape[1]] = part
        col += d
    return out


# -- maps (dicts) ----------------------------------------------------------------------------------
@kernel("ZipMap", since=1, domain=ML)
def zip_map(x, classlabels_int64s=None, classlabels_strings=None):
    labels = classlabels_strings if classlabels_strings is not None else classlabels_int64s
    if labels is None:
        raise InvalidArgument("ZipMap needs classlabels_strings or classlabels_int64s")
    if x.ndim > 2:
        raise InvalidArgument(f"ZipMap takes a [C] or [N, C] tensor, got shape {list(x.shape)}")
    rows = x.reshape(1, -1) if x.ndim < 2 else x
    if rows.shape[-1] != len(labels):
        raise InvalidArgument(
            f"ZipMap: the input has {rows.shape[-1]} scores per row for {len(labels)} class labels"
        )
    labels = list(labels)
    return [dict(zip(labels, r, strict=True)) for r in rows.tolist()]


def _map_value_dtype(type_proto) -> np.dtype | None:
    """The numpy dtype of a map type's values, or None when unknown."""
    if type_proto is None or type_proto.WhichOneof("value") != "map_type":
        return None
    return tensor_dtype(type_proto.map_type.value_type)


@builder("DictVectorizer", since=1, domain=ML)
def dict_vectorizer(info):
    vocab = _one_of(info, "string_vocabulary", "int64_vocabulary")
    position = {k: i for i, k in enumerate(vocab)}
    known = info.output_dtype(0) or _map_value_dtype(info.input_types[0])

    def run(x):
        if not isinstance(x, dict):
            raise InvalidArgument(
                f"DictVectorizer takes one map (a dict), got {type(x).__name__}; feed one dict"
            )
        dtype = known or (np.asarray(list(x.values())).dtype if x else np.dtype(np.float32))
        fill = "" if dtype == STRING else 0
        out = np.full((1, len(vocab)), fill, dtype=dtype)
        for k, v in x.items():
            if k in position:
                out[0, position[k]] = v
        return out

    return run


_CASTS = {"TO_FLOAT": np.float32, "TO_STRING": object, "TO_INT64": np.int64}


def _cast_value(v: Any, cast_to: str) -> Any:
    """One map value as CastMap casts it: strings are parsed, floats written with 6 decimals
    (C's %f, as onnxruntime writes them), float to int64 truncates toward zero."""
    if cast_to == "TO_STRING":
        return v if isinstance(v, str) else f"{float(np.float32(v)):f}"
    number = float(v)
    return int(number) if cast_to == "TO_INT64" else number


@kernel("CastMap", since=1, domain=ML)
def cast_map(x, cast_to="TO_FLOAT", map_form="DENSE", max_map=1):
    dtype = _CASTS.get(cast_to)
    if dtype is None:
        raise InvalidArgument(f"CastMap: cast_to {cast_to!r} is not one of {list(_CASTS)}")
    if map_form not in ("DENSE", "SPARSE"):
        raise InvalidArgument(f"CastMap: map_form {map_form!r} is not DENSE or SPARSE")
    keys = sorted(x)
    if map_form == "DENSE":
        out = np.empty((1, len(keys)), dtype=dtype)
        out[0, :] = [_cast_value(x[k], cast_to) for k in keys]
        return out
    # SPARSE: key k goes to column k; keys outside [0, max_map) are dropped, as in onnxruntime
    out = np.full((1, max_map), _cast_value(0.0, cast_to), dtype=dtype)
    for k in keys:
        if 0 <= k < max_map:
            out[0, k] = _cast_value(x[k], cast_to)
    return out
