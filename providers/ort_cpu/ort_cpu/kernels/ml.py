"""The model operators of the ai.onnx.ml domain: tree ensembles (TreeEnsemble,
TreeEnsembleClassifier, TreeEnsembleRegressor), linear models (LinearClassifier, LinearRegressor)
and support vector machines (SVMClassifier, SVMRegressor).

Trees are evaluated for the whole batch at once: every (sample, tree) pair walks down its tree one
level per step with numpy index arrays, and pairs drop out of the active set when they reach a
leaf. Leaf weights are aggregated with ``bincount`` (SUM, AVERAGE) or ``ufunc.at`` (MIN, MAX).
Where the specification leaves a case open (the binary classifiers), the kernels follow onnx's
reference implementation, which agrees with onnxruntime on the models converters produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ort_core.errors import InvalidArgument
from ort_core.provider import KernelUnsupported

from ._registry import builder

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
    """sqrt(2) * erfinv(2p - 1) with Winitzki's closed-form erfinv (a = 0.147), the approximation
    onnxruntime uses."""
    x = 2 * p - 1
    w = (1 - x) * (1 + x)
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log(w)
        v = 2 / (np.pi * 0.147) + 0.5 * log
        r = np.sign(x + (x == 0)) * np.sqrt(-v + np.sqrt(v * v - log / 0.147))
    return 1.41421356 * np.where(w == 0, 0, r)


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


@builder("TreeEnsemble", since=5, domain=ML, dtypes={0: {np.float16, np.float32, np.float64}})
def tree_ensemble(info):
    forest = _forest_5(info)
    agg, post = info.attr("aggregate_function", 1), info.attr("post_transform", 0)
    if agg not in range(4) or post not in range(5):
        raise KernelUnsupported("aggregate_function must lie in [0, 3], post_transform in [0, 4]")
    how, transform = _AGGREGATES[agg], _TRANSFORMS[_TRANSFORM_NAMES[post]]
    n_targets = info.attr("n_targets")
    if n_targets is None:
        n_targets = int(forest.targets.max(initial=-1)) + 1

    def run(x):
        scores = forest.aggregate(forest.leaves(_features(x)), n_targets, how)
        return transform(scores).astype(x.dtype)

    return run


@builder("TreeEnsembleRegressor", since=(1, 3), domain=ML, dtypes={0: _ML_INPUTS})
def tree_ensemble_regressor(info):
    forest = _legacy_forest(info, "target")
    how = info.attr("aggregate_function", "SUM")
    if how not in _AGGREGATES:
        raise KernelUnsupported(f"aggregate_function {how!r}: use one of {_AGGREGATES}")
    transform = _TRANSFORMS[_transform_name(info)]
    n_targets = info.attr("n_targets") or int(forest.targets.max(initial=0)) + 1
    base = _floats(info, "base_values")

    def run(x):
        leaves = forest.leaves(_features(x))
        scores = forest.aggregate(leaves, n_targets, how)
        if base is not None and base.size:
            if how in ("MIN", "MAX"):  # onnxruntime leaves the targets no leaf scores at 0
                scores = np.where(forest.scored(leaves, n_targets), scores + base, scores)
            else:
                scores = scores + base
        return transform(scores).astype(np.float32)

    return run


@builder("TreeEnsembleClassifier", since=(1, 3), domain=ML, dtypes={0: _ML_INPUTS})
def tree_ensemble_classifier(info):
    forest = _legacy_forest(info, "class")
    labels, _ = _labels(info, "classlabels_int64s")
    if labels is None or not len(labels):
        raise KernelUnsupported("TreeEnsembleClassifier needs classlabels_int64s or _strings")
    post = _transform_name(info)
    transform = _TRANSFORMS[post]
    n_classes = len(labels)
    used = np.unique(forest.targets)
    if used.size and (used.min() < 0 or used.max() >= max(n_classes, 2)):
        raise KernelUnsupported(f"class_ids must lie in [0, {n_classes})")
    binary = len(used) == 1 and n_classes <= 2
    base = _floats(info, "base_values")
    width = max(n_classes, 2) if binary else n_classes
    start = np.zeros(width)
    if base is not None and base.size:
        start[: len(base)] = base[:width]

    def run(x):
        scores = forest.aggregate(forest.leaves(_features(x)), width, "SUM") + start
        if binary:  # one score s for the positive class: [1 - s, s] or [-s, s] before transform
            s = scores[:, used[0]]
            scores = np.stack([1 - s if post in ("NONE", "PROBIT") else -s, s], axis=1)
        z = transform(scores.astype(np.float32)).astype(np.float32)
        best = np.argmax(z, axis=1)
        if n_classes == 1:  # one label: the positive class is it, the negative one 0
            y = np.where(best == 1, labels[0], 0 if labels.dtype != object else "")
            return y.astype(labels.dtype), z
        return labels[best], z

    return run


# -- linear models ---------------------------------------------------------------------------------
@builder("LinearClassifier", since=1, domain=ML, dtypes={0: _ML_INPUTS})
def linear_classifier(info):
    labels, _ = _labels(info, "classlabels_ints")
    post = _transform_name(info)
    transform = _TRANSFORMS[post]
    coef = np.asarray(info.attr("coefficients", []), dtype=np.float32)
    intercepts = info.attr("intercepts")
    n_classes = len(labels) if labels is not None else 0

    def run(x):
        f = _features(x)
        xf = f if f.dtype == np.float64 else f.astype(np.float32)
        w = coef.astype(xf.dtype).reshape(-1, xf.shape[1])
        scores = xf @ w.T
        if intercepts is not None:
            scores = scores + np.asarray(intercepts, dtype=np.float32).astype(xf.dtype)
        if w.shape[0] == 1 and n_classes == 2:
            scores = np.concatenate([-scores, scores], axis=1)
        z = transform(scores).astype(np.float32)
        if z.shape[1] > 1:
            best = np.argmax(z, axis=1)
            y = labels[best] if labels is not None else best.astype(np.int64)
        else:
            positive = z[:, 0] >= (0 if post == "NONE" else 0.5)
            if labels is None:
                y = positive.astype(np.int64)
            elif labels.dtype == object:
                y = np.where(positive, labels[0], "").astype(object)
            else:
                y = np.where(positive, labels[0], 0).astype(np.int64)
        return y, z

    return run


@builder("LinearRegressor", since=1, domain=ML, dtypes={0: _ML_INPUTS})
def linear_regressor(info):
    transform = _TRANSFORMS[_transform_name(info)]
    coef = np.asarray(info.attr("coefficients", []), dtype=np.float32)
    intercepts = info.attr("intercepts")
    targets = info.attr("targets", 1)

    def run(x):
        f = _features(x)
        xf = f if f.dtype == np.float64 else f.astype(np.float32)
        scores = xf @ coef.astype(xf.dtype).reshape(targets, -1).T
        if intercepts is not None:
            scores = scores + np.asarray(intercepts, dtype=np.float32).astype(xf.dtype)
        return transform(scores).astype(np.float32)

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
    transform = _TRANSFORMS[post]
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

    def run(x):
        f = _svm_input(x)
        if n_sv:
            votes, scores = one_vs_one(f)
        else:  # linear mode: one score per class
            votes, scores = None, f @ coef.reshape(n_classes, -1).T + rho[0]
        if has_proba:
            scores = probabilities(scores)
        scores = scores.astype(np.float32).astype(np.float64)
        decide = votes if votes is not None else scores
        best = np.argmax(decide, axis=1)
        top = decide[np.arange(len(best)), best]
        binary = rho.size == 1
        if binary and n_classes == 2:
            if not has_proba and all_positive:
                best = np.where(top >= 0.5, 1, best)
            y = labels[best]
        elif binary:
            y = np.where(top > 0, 1, 0).astype(np.int64)
            if labels is not None and labels.dtype == object:
                y = labels[np.minimum(y, len(labels) - 1)]
        else:
            y = labels[best] if labels is not None else best.astype(np.int64)
        if scores.shape[1] >= 2:
            z = transform(scores)
        elif post == "PROBIT":
            z = _probit(scores)
        elif binary and n_classes == 2:
            z = transform(np.concatenate([-scores, scores], axis=1))
        else:
            z = scores
        return y, z.astype(np.float32)

    return run
