"""The operators of the ai.onnx.ml domain: tree ensembles (TreeEnsemble, TreeEnsembleClassifier,
TreeEnsembleRegressor), linear models (LinearClassifier, LinearRegressor), support vector machines
(SVMClassifier, SVMRegressor), the data plumbing (Binarizer, Scaler, Normalizer, Imputer,
LabelEncoder, CategoryMapper, ArrayFeatureExtractor, OneHotEncoder, FeatureVectorizer) and the map
operators (ZipMap, DictVectorizer, CastMap). Strings are object arrays of ``str``; maps are dicts
of Python keys and values, sequences of maps lists of them (see ``ort_core.feeds``).

Tree ensembles are compiled at session creation into flat tables (``ort_cpu._trees``) and walked
by a compiled loop (``_ml_jit``; without numba, for the whole batch with a few numpy calls per
step); leaf weights are added tree after tree in float32 (float64 for float64 inputs), the order
onnxruntime adds them in. The RBF SVM classifier, linear scores, post transforms, Scaler and
Normalizer have compiled loops too, each kernel keeping its numpy path as the fallback. Linear models, SVMs and
the plumbing operators precompute what they can at session creation (transposed coefficients,
lookup tables) and keep the run path to a handful of numpy calls: at batch 1, a model's cost is
the number of calls. Where the specification leaves a case open (the binary classifiers), the
kernels follow onnx's reference implementation, which agrees with onnxruntime on the models
converters produce.
"""

from __future__ import annotations

import math
import operator
import warnings
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np

from ort_core.errors import InvalidArgument
from ort_core.feeds import PlainMaps
from ort_core.ir import tensor_dtype
from ort_core.provider import KernelUnsupported

from .. import _threads, _trees
from .._trees import LeafValues, Walker, distinct
from . import _ml_jit
from ._registry import builder, kernel

ML = "ai.onnx.ml"
STRING = np.dtype(object)
_ML_INPUTS = {np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64)}


# -- post transforms -------------------------------------------------------------------------------
# Written for small arrays: direct ufunc calls (no ndarray method wrappers), results in place.
def _logistic(s: np.ndarray) -> np.ndarray:
    """onnxruntime's ComputeLogistic: v = 1 / (1 + exp(-|s|)), 1 - v for negative s."""
    v = np.abs(s)
    np.negative(v, out=v)
    np.exp(v, out=v)
    v += 1
    np.divide(1, v, out=v)
    return np.where(s < 0, 1 - v, v)


def _logistic_pair(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ComputeLogistic(-s), ComputeLogistic(s)), sharing the exponential."""
    v = np.abs(s)
    np.negative(v, out=v)
    np.exp(v, out=v)
    v += 1
    np.divide(1, v, out=v)
    w = 1 - v
    return np.where(s > 0, w, v), np.where(s < 0, w, v)


def _logistic_mlas(s: np.ndarray) -> np.ndarray:
    """The logistic without cancellation (e / (1 + e) for negative s), as onnxruntime's MLAS
    kernel computes it for the linear models' and SVMs' rows of scores."""
    e = np.abs(s)
    np.negative(e, out=e)
    np.exp(e, out=e)
    d = e + 1
    return np.where(s < 0, e / d, 1 / d)


def _softmax(s: np.ndarray) -> np.ndarray:
    top = np.maximum.reduce(s, axis=-1, keepdims=True)
    if top.size == 1 and math.isfinite(top.item()) or np.isfinite(top).all():
        e = np.subtract(s, top)
    else:  # an infinite score: NaN rows, as onnxruntime gives, without a warning
        with np.errstate(invalid="ignore"):
            e = np.subtract(s, top)
    np.exp(e, out=e)
    e /= np.add.reduce(e, axis=-1, keepdims=True)
    return e


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


#: the dtypes of the batch-1 paths' checks and allocations, as objects: ``x.dtype is _F32`` and
#: ``np.empty(shape, _F32)`` cost 40 and 180 ns where ``x.dtype == np.float32`` and
#: ``np.empty(shape, dtype=np.float32)`` cost 75 and 260 (a logistic regression's batch-1 run
#: calls them five times); a float32 array of another byte order takes the general path
_F32, _I64 = np.dtype(np.float32), np.dtype(np.int64)


def _label_indices(labels: np.ndarray | None, strings: bool, n: int) -> bool:
    """Whether ``labels`` are the class indices 0 .. n-1 (scikit-learn's usual classes): a
    kernel then returns its class indices as the labels, without a take from the list."""
    return labels is not None and not strings and np.array_equal(labels, np.arange(n))


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
    value = info.attr_array(name, np.float32)
    if value is None:
        return default
    return value.astype(np.float64)


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
        modes = distinct(self.mode[branch])
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
    tree_ids = info.attr_array("nodes_treeids", np.int64, np.zeros(0, np.int64))
    node_ids = info.attr_array("nodes_nodeids", np.int64, np.zeros(0, np.int64))
    m = len(tree_ids)
    if m == 0:
        raise KernelUnsupported("the tree ensemble has no nodes")
    names = list(info.attr("nodes_modes", []))
    known = _MODES + ["BRANCH_MEMBER", "LEAF"]
    bad = sorted(set(names) - set(known))
    if bad or len(names) != m:
        raise KernelUnsupported(f"nodes_modes must give one of {known} per node, not {bad}")
    number = {name: i for i, name in enumerate(known)}
    mode = np.fromiter(map(number.__getitem__, names), dtype=np.uint8, count=m)
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
    true_ids = info.attr_array("nodes_truenodeids", np.int64, np.zeros(m, np.int64))
    false_ids = info.attr_array("nodes_falsenodeids", np.int64, np.zeros(m, np.int64))
    branch = np.flatnonzero(~leaf)
    true, false = own.copy(), own.copy()
    true[branch] = find(tree_ids[branch], true_ids[branch], "nodes_truenodeids")
    false[branch] = find(tree_ids[branch], false_ids[branch], "nodes_falsenodeids")

    _, first = np.unique(tree_ids, return_index=True)  # root: a tree's first node, trees sorted
    w_trees = info.attr_array(f"{prefix}_treeids", np.int64, np.zeros(0, np.int64))
    w_nodes = info.attr_array(f"{prefix}_nodeids", np.int64, np.zeros(0, np.int64))
    w_targets = info.attr_array(f"{prefix}_ids", np.int64, np.zeros(0, np.int64))
    w_values = _floats(info, f"{prefix}_weights", np.zeros(0))
    if not len(w_trees) == len(w_nodes) == len(w_targets) == len(w_values):
        raise KernelUnsupported(f"the {prefix}_* attributes differ in length")
    owner = find(w_trees, w_nodes, f"{prefix}_nodeids")
    perm, start = _leaf_csr(m, owner)
    missing = info.attr("nodes_missing_value_tracks_true")
    return Forest(
        feature=info.attr_array("nodes_featureids", np.int64, np.zeros(m, np.int64)),
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
    leaf_t = info.attr_array("leaf_targetids", np.int64, np.zeros(0, np.int64))
    n_leaves = len(leaf_w)
    if len(leaf_t) != n_leaves:
        raise KernelUnsupported("leaf_targetids and leaf_weights differ in length")

    def child(ids: str, leafs: str) -> np.ndarray:
        c = info.attr_array(ids, np.int64, np.zeros(0, np.int64))
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
    roots = info.attr_array("tree_roots", np.int64, np.zeros(0, np.int64))
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
                info.attr_array("nodes_featureids", np.int64, np.zeros(0, np.int64)),
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
#: the compiled sums' "no scored flags" argument
_NO_HAS = np.zeros((0, 0), dtype=bool)


def _tree_input(x: np.ndarray, walker: Walker) -> np.ndarray:
    """The input as a C-contiguous [N, F] float32 or float64 array (integers and float16 compare
    as float32, as onnxruntime's float thresholds make them)."""
    if x.dtype != np.float32 and x.dtype != np.float64:
        x = x.astype(np.float32)
    if x.ndim != 2:
        x = x.reshape(1, -1) if x.ndim == 1 else x.reshape(x.shape[0], -1)
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    if x.shape[1] <= walker.max_feature and x.shape[0]:
        raise InvalidArgument(
            f"the trees read feature {walker.max_feature} but X has {x.shape[1]} features"
        )
    return x


class _Ensemble:
    """A tree ensemble prepared for scoring: its walker and its leaves' weights, with the
    aggregations onnxruntime computes (leaf weights added tree after tree in the accumulation
    dtype: float32, or float64 for float64 inputs). Where compiled kernels are on, the walk and
    the sums run in one compiled loop (``_ml_jit.forest``); the numpy path walks with
    ``ort_cpu._trees`` and adds with ``np.add.accumulate`` in the same order."""

    def __init__(self, forest: Forest, n_targets: int, info) -> None:
        dtype = info.input_dtype(0)
        dtypes = (np.float32, np.float64) if dtype is None else (dtype,)
        self.walker = Walker(forest, dtypes)
        self.values = LeafValues(forest, self.walker, n_targets)
        self.n_trees = len(forest.roots)
        self.n_targets = n_targets
        # every leaf gives a first weight: single-target MIN/MAX always have a score
        self.all_first = bool(self.values.first_has.all())
        # the node arrays serve only the general aggregations
        general = not self.values.dense_ok or not self.all_first
        self.forest = forest if general else None
        self.compiled = False
        self._one_call: dict = {}  # see compiled_sums
        if not self.walker.general:
            kinds = {np.float64 if d == np.float64 else np.float32 for d in dtypes}
            fn = _ml_jit.warm_forest(kinds)
            # loaded now, not in the first run
            one_call = _ml_jit.warm_walk_and_add(kinds) if fn is not None else None
            self.compiled = one_call is not None and self.walker.compile((fn, one_call))
            if self.compiled and _threads.will_split(info.provider):
                from . import _ml_pieces  # imports numba: the pieces are numba cfuncs

                _ml_pieces.warm(kinds, self.walker.n_nodes)

    def compiled_sums(self, x: np.ndarray, first: bool, track: bool, div=1, base=None):
        """(sums [N, C] in ``x``'s dtype, divided by ``div`` then ``base`` [C] added, scored
        [N, C] or None) from the compiled loop; ``first``: each leaf's first weight, C = 1.
        Batches walked on one thread take one compiled call whose constant arguments are
        prepared once per dtype, weights, ``base`` (the callers' own constant arrays) and
        ``div`` (:meth:`Walker.block`): a batch-1 run spends its time in the walk, not in
        Python between it and the session."""
        n_out = 1 if first else self.n_targets
        if self.walker.one_call(x.shape[0]):
            dtype = x.dtype.type
            kept = self._one_call.get((dtype, first, div, id(base)))
            if kept is None or kept[0] is not base:
                entries = self.values.entries(dtype, first)
                kept = (base, entries, *self.walker.block(dtype, entries, base, div))
                if len(self._one_call) < 16:  # (the block keeps base and entries alive)
                    self._one_call[(dtype, first, div, id(base))] = kept
            out = np.zeros((x.shape[0], n_out), x.dtype)
            has = np.zeros(out.shape, bool) if track else _NO_HAS
            kept[2](x, kept[3], out, has)
            return out, (has if track else None)
        entries = self.values.entries(x.dtype.type, first)
        _, out, has = self.walker.walk_and_add(x, entries, n_out, track, div, base)
        return out, has

    def quick_sums(self, first: bool, div=1, base=None):
        """``fn(x) -> sums [N, C] float32 or None``: :meth:`compiled_sums` (no tracking) for
        what a batch-1 model feeds, with nothing between the run and the compiled call but the
        checks: a float32 C-contiguous [N, F] array whose batch is walked on one thread (else
        None: the caller takes its general path). None where the walk is not compiled for
        float32. Measured at one thread, a 200-tree HistGradientBoosting regressor's batch-1
        kernel 5.6 -> 4.3 us (the compiled call 3.9)."""
        if not self.compiled or np.float32 not in self.walker._compiled[1]:
            return None
        entries = self.values.entries(np.float32, first)
        call, block = self.walker.block(np.float32, entries, base, div)
        n_out, n_trees = (1 if first else self.n_targets), self.n_trees
        least, keep = self.walker.max_feature, (entries, base)  # the block's arrays, kept alive

        def quick(x):
            if (
                type(x) is not np.ndarray
                or x.dtype != _F32
                or x.ndim != 2
                or x.shape[1] <= least
                or not x.flags.c_contiguous
                or (x.shape[0] * n_trees >= _trees.TREE_SPLIT_PAIRS and n_trees > 1)
                or _trees.FORCE is not None
            ):
                return None
            out = np.zeros((x.shape[0], n_out), _F32)
            call(x, block, out, _NO_HAS)
            return out

        quick.keep = keep
        return quick

    @property
    def fast(self) -> bool:
        """Whether the compiled walk runs (tests force a numpy walk with ``_trees.FORCE``)."""
        return self.compiled and _trees.FORCE is None

    def first_sum(self, x: np.ndarray) -> np.ndarray:
        """Sum [N] of each reached leaf's first weight, tree after tree."""
        if self.fast:
            return self.compiled_sums(x, True, False)[0][:, 0]
        v = self.values.first(x.dtype.type).take(self.walker(x))
        return np.add.accumulate(v, axis=1)[:, -1]

    def first_extreme(self, x: np.ndarray, how: str) -> tuple[np.ndarray, Any]:
        """MIN or MAX [N] of the reached leaves' first weights, and which rows had one (True:
        all)."""
        acc, leaves = x.dtype.type, self.walker(x)
        if self.all_first:
            v = self.values.first(acc).take(leaves)
            return (v.min(axis=1) if how == "MIN" else v.max(axis=1)), True
        p, scored = self.forest.first_weights(self.walker.leaf_nodes.take(leaves), how)
        return p.astype(acc), scored

    def target_scores(self, x: np.ndarray, how: str) -> tuple[np.ndarray, Any]:
        """Scores [N, C] per target (0 where no leaf scores it) and which are scored ([N, C], or
        [C] when that does not depend on the input)."""
        v, acc = self.values, x.dtype.type
        if v.dense_ok and how in ("SUM", "AVERAGE") and self.fast:
            s, has = self.compiled_sums(x, False, v.static_has is None)
            if has is None:
                has = v.static_has
            return (s / acc(self.n_trees) if how == "AVERAGE" else s), has
        leaves = self.walker(x)
        if not v.dense_ok:  # a leaf gives a target two weights: the general aggregation
            nodes = self.walker.leaf_nodes.take(leaves)
            s = self.forest.aggregate(nodes, self.n_targets, how).astype(acc)
            return s, self.forest.scored(nodes, self.n_targets)
        has = v.static_has
        if has is None:
            has = v.dense_has.take(leaves, axis=0).any(axis=1)
        if how in ("SUM", "AVERAGE"):
            if v.round_robin:  # target c: trees c, c + C, c + 2C... in order
                w = v.first(acc).take(leaves)
                w = w.reshape(len(leaves), self.n_trees // self.n_targets, self.n_targets)
                s = np.add.accumulate(w, axis=1)[:, -1]
            else:
                s = np.add.accumulate(v.dense(acc).take(leaves, axis=0), axis=1)[:, -1]
            if how == "AVERAGE":
                s = s / acc(self.n_trees)
            return s, has
        fill = np.inf if how == "MIN" else -np.inf
        w = v.dense(acc, fill).take(leaves, axis=0)
        s = w.min(axis=1) if how == "MIN" else w.max(axis=1)
        return np.where(has, s, acc(0)), has


# onnxruntime finalizes tree scores per (sample, target) with a "has a score" flag: a target no
# reached leaf gives a weight reads as 0 when written out, even after a base value was added to
# it. A single-target ensemble takes its own path, where only PROBIT is applied.
def _write_scores(values: np.ndarray, post: str, mlas: bool = False, fast=None) -> np.ndarray:
    """onnxruntime's transform of rows of two or more scores (float32); ``mlas``: the logistic
    and softmax of its MLAS kernels (linear models, SVMs) instead of the trees' ComputeLogistic
    and ComputeSoftmax (the compiled paths differ; numpy's are the same for both). ``fast``:
    ``_ml_jit.warm_transforms()``'s result, or None for numpy."""
    if post == "NONE":
        return values if values.dtype == np.float32 else values.astype(np.float32)
    if fast is not None and values.ndim == 2 and post in ("SOFTMAX", "LOGISTIC"):
        out = values.astype(np.float32, order="C")  # a copy: the caller may still read values
        code = (_ml_jit.MLAS_TRANSFORMS if mlas else _ml_jit.TRANSFORMS)[post]
        fast[0](out, code, _ml_jit.NO_BIAS, _ml_jit.NO_BEST)
        return out
    v = values if values.dtype == np.float32 else values.astype(np.float32)
    if post == "SOFTMAX":
        return _softmax(v)
    if post == "LOGISTIC":
        return _logistic_mlas(v) if mlas else _logistic(v)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _TRANSFORMS[post](v).astype(np.float32, copy=False)


def _regression(ens: _Ensemble, how: str, post: str, base) -> Any:
    """``scores(x) -> [N, n_targets] float32``, as onnxruntime writes TreeEnsembleRegressor's
    and TreeEnsemble's outputs."""
    n_targets = ens.n_targets
    if n_targets == 1:
        origin64 = float(base[0]) if base is not None and len(base) == 1 else 0.0
        origins = {t: np.full(1, origin64, dtype=t) for t in (np.float32, np.float64)}
        div = ens.n_trees if how == "AVERAGE" else 1

        def single(x):
            acc = x.dtype.type
            origin = acc(origin64)
            if how in ("SUM", "AVERAGE") and ens.fast:  # sum / div + origin, compiled
                p = ens.compiled_sums(x, True, False, div, origins[acc])[0]
                p = p if acc is np.float32 else p.astype(np.float32)
                return _probit(p) if post == "PROBIT" else p
            if how in ("MIN", "MAX"):
                p, scored = ens.first_extreme(x, how)
                p = p + origin if scored is True else np.where(scored, p + origin, origin)
            else:
                p = ens.first_sum(x)
                if how == "AVERAGE":
                    p = p / acc(ens.n_trees)
                p = p + origin
            p = p.astype(np.float32).reshape(-1, 1)
            return _probit(p) if post == "PROBIT" else p

        return single
    use_base = base is not None and len(base) == n_targets
    base64 = np.asarray(base, dtype=np.float64) if use_base else None
    fast = _ml_jit.warm_transforms() if post in ("SOFTMAX", "LOGISTIC") else None

    def multi(x):
        acc = x.dtype.type
        scores, has = ens.target_scores(x, how)
        if use_base:
            scores = scores + base64.astype(acc)
        if has.ndim == 2 or not has.all():
            scores = np.where(has, scores, acc(0))
        return _write_scores(scores, post, fast=fast)

    return multi


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
    ens = _Ensemble(forest, n_targets, info)
    scores = _regression(ens, how, post_name, None)

    def run(x):
        out = scores(_tree_input(x, ens.walker))
        return out if out.dtype == x.dtype else out.astype(x.dtype)

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
    ens = _Ensemble(forest, n_targets, info)
    scores = _regression(ens, how, post, base)
    walker = ens.walker
    quick = None
    if n_targets == 1 and how in ("SUM", "AVERAGE") and post == "NONE":
        origin = np.full(1, base[0] if base is not None and len(base) == 1 else 0, np.float32)
        quick = ens.quick_sums(True, ens.n_trees if how == "AVERAGE" else 1, origin)

    def run(x):
        if quick is not None:
            out = quick(x)
            if out is not None:
                return out
        return scores(_tree_input(x, walker))

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
            np.stack(_logistic_pair(v0), axis=1)
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


def _binary_one_column(base, binary: bool, all_positive: bool, post: str, fast=None):
    """``_binary_scores`` where every leaf scores class 0 and none class 1 (the binary models
    converters write): ``finish(s0 [N]) -> (label codes, z [N, 2], codes index the labels)``."""
    n_base = 0 if base is None else len(base)
    b0 = base[0] if n_base in (1, 2) else None
    threshold = 0.5 if binary and all_positive else 0.0
    if n_base == 2:
        kind = "both"
    elif binary:
        kind = "positive" if all_positive else "mixed"
    elif n_base == 0:
        kind = "mixed"  # add_second_class 3
    else:
        kind = "raw"

    def finish(s0):
        v0 = s0 if b0 is None else s0 + s0.dtype.type(b0)
        up = (v0 > threshold).astype(np.int64)
        if kind == "both":  # two scores, the second unscored (0)
            z = np.zeros((len(v0), 2), dtype=np.float32)
            z[:, 0] = v0
            return up, (z if post == "NONE" else _write_scores(z, post, fast=fast)), binary
        v = v0.astype(np.float32)
        z = np.empty((len(v), 2), dtype=np.float32)
        if post == "PROBIT":
            z[:, 0], z[:, 1] = _probit(v), 0
        elif post == "LOGISTIC" and kind != "raw":
            if fast is not None:
                fast[1](v, z)
            else:
                z[:, 0], z[:, 1] = _logistic_pair(v)
        elif kind == "positive":  # 1 - p in the scores' type (double inputs: double)
            z[:, 0], z[:, 1] = 1 - v0, v
        elif kind == "mixed":
            z[:, 0], z[:, 1] = -v, v
        else:
            z[:, 0], z[:, 1] = v, 0
        return up, z, binary

    return finish


@builder("TreeEnsembleClassifier", since=(1, 3), domain=ML, dtypes={0: _ML_INPUTS})
def tree_ensemble_classifier(info):
    forest = _legacy_forest(info, "class")
    labels, strings = _labels(info, "classlabels_int64s")
    if labels is None or not len(labels):
        raise KernelUnsupported("TreeEnsembleClassifier needs classlabels_int64s or _strings")
    post = _transform_name(info)
    n_classes = len(labels)
    used = distinct(forest.targets)
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
    ens = _Ensemble(forest, width, info)
    walker = ens.walker
    label_list = labels
    fast = _ml_jit.warm_transforms() if post in ("SOFTMAX", "LOGISTIC") else None

    def label_of(codes: np.ndarray, index: bool) -> np.ndarray:
        if not strings and not index:  # onnxruntime writes 1/0 itself here, not a class label
            return codes.astype(np.int64)
        if (codes < 0).any() or (codes >= n_classes).any():
            raise InvalidArgument(
                f"TreeEnsembleClassifier: a sample's class index is outside the {n_classes} "
                "labels (a one-class model whose score is positive); onnxruntime reads past its "
                "label list here. Give the model two classes."
            )
        return label_list.take(codes)

    if n_classes == 1:  # onnxruntime's single-output path: each leaf's first weight

        def run_single(x):
            x = _tree_input(x, walker)
            p = ens.first_sum(x).astype(np.float32)
            if base is not None and len(base) == 2:
                p = p + base[1]
                z = _write_scores(np.stack([-p, p], axis=1), post)[:, :1]
            else:
                if base is not None and len(base) == 1:
                    p = p + base[0]
                p32 = p.astype(np.float32).reshape(-1, 1)
                z = _probit(p32) if post == "PROBIT" else p32
            return label_of((p > 0).astype(np.int64), False), z.astype(np.float32)

        return run_single

    static = ens.values.static_has
    if n_classes == 2:
        one_column = static is not None and bool(static[0]) and not static[1:].any()
        finish = _binary_one_column(base, binary, all_positive, post, fast) if one_column else None
        quick = None  # the float32 one-column case, compiled: (function, base, threshold, how)
        if finish is not None and ens.compiled and post in ("NONE", "LOGISTIC"):
            n_base = 0 if base is None else len(base)
            # as _binary_one_column chooses (two base values: numpy)
            kind = None if n_base == 2 else "raw" if n_base and not binary else "mixed"
            if binary and all_positive and kind:
                kind = "positive"
            if post == "LOGISTIC" and kind not in (None, "raw"):  # (two base values stay numpy's)
                kind = "logistic"
            fn = _ml_jit.warm_binary_column() if kind is not None else None
            if fn is not None:
                b = np.zeros(2, np.float32)
                b[0] = base[0] if n_base == 1 else 0
                threshold = np.float32(0.5 if binary and all_positive else 0.0)
                quick = fn, (b if n_base else None), threshold, _ml_jit.BINARY[kind]
        # class 0's one weight a leaf: the single-target sums (registers, four rows at a time:
        # extra trees' 200 over 100 rows 104 -> 21 us), then base[0] added
        sums = ens.quick_sums(True, 1, quick[1]) if quick is not None else None

        def run_binary(x):
            s = sums(x) if sums is not None else None
            if s is None:
                x = _tree_input(x, walker)
                if quick is not None and x.dtype == np.float32 and ens.fast:
                    s = ens.compiled_sums(x, True, False, 1, quick[1])[0]
            if s is not None:
                fn, _, threshold, how = quick
                codes = np.empty(len(s), dtype=np.int64)
                z = np.empty((len(s), 2), dtype=np.float32)
                fn(s, threshold, how, codes, z)
                return (label_list.take(codes) if strings or binary else codes), z
            s, has = ens.target_scores(x, "SUM")
            if finish is not None:
                codes, z, index = finish(s[:, 0])
            else:
                if has.ndim == 1:
                    has = np.broadcast_to(has, s.shape)
                s32 = s.astype(np.float32)
                codes, z, index = _binary_scores(s32, has, base, binary, all_positive, post)
            # codes are 0 or 1 here: they index the two labels
            return (label_list.take(codes) if strings or index else codes), z

        return run_binary

    base_k = min(len(base), n_classes) if base is not None else 0
    base_cache = {}

    def base_acc(acc):
        if acc not in base_cache:
            base_cache[acc] = base[:base_k].astype(acc)
        return base_cache[acc]

    dense_all = static is not None and bool(static[:n_classes].all())
    # every class scored, float32: base, argmax and transform in the compiled loops
    quick = (
        ens.compiled
        and dense_all
        and width == n_classes
        and base_k in (0, n_classes)
        and post in ("NONE", "SOFTMAX", "LOGISTIC")
    )
    rows = _ml_jit.warm_transforms() if quick else None
    code = _ml_jit.TRANSFORMS[post] if rows is not None else 0
    indices = _label_indices(labels, strings, n_classes)
    base32 = base_acc(np.float32) if base_k and rows is not None else None
    sums = ens.quick_sums(False, 1, base32) if rows is not None else None

    def run_multi(x):
        s = sums(x) if sums is not None else None
        if s is None:
            x = _tree_input(x, walker)
            if rows is not None and x.dtype == np.float32 and ens.fast:
                s = ens.compiled_sums(x, False, False, 1, base32)[0]
        if s is not None:
            best = np.empty(len(s), _I64)
            rows[0](s, code, _ml_jit.NO_BIAS, best)
            return (best if indices else label_list.take(best)), s
        acc = x.dtype.type
        s, has = ens.target_scores(x, "SUM")
        if s.shape[1] != n_classes:
            s = s[:, :n_classes]
        if dense_all:  # every class scored: no masks
            if base_k == n_classes:
                s = s + base_acc(acc)
            elif base_k:
                s = s.copy()
                s[:, :base_k] += base_acc(acc)
            return label_list.take(s.argmax(axis=1)), _write_scores(s, post, fast=fast)
        has = np.array(np.broadcast_to(has, (len(s), has.shape[-1])))[:, :n_classes]
        if base_k:
            b = base_acc(acc)
            s = s.copy()
            s[:, :base_k] = np.where(has[:, :base_k], s[:, :base_k] + b, b)
            has[:, :base_k] = True
        best = np.argmax(np.where(has, s, -np.inf), axis=1)
        best = np.where(has.any(axis=1), best, n_classes - 1)  # no class scored: undefined there
        return label_of(best, True), _write_scores(np.where(has, s, acc(0)), post, fast=fast)

    return run_multi


# -- linear models ---------------------------------------------------------------------------------
def _two_columns(s: np.ndarray, post: str, negate: bool) -> np.ndarray:
    """One score per row made into two as onnxruntime does for binary models: [1 - s, s], or
    [-s, s] (``negate``); LOGISTIC makes [logistic(-s), logistic(s)] either way."""
    s = s.astype(np.float32, copy=False)
    z = np.empty((len(s), 2), dtype=np.float32)
    if post == "LOGISTIC":
        z[:, 0], z[:, 1] = _logistic_pair(s)
    else:
        z[:, 1] = s
        if negate:
            np.negative(s, out=z[:, 0])
        else:
            np.subtract(1, s, out=z[:, 0])
    return z


def _float_rows(x: np.ndarray) -> np.ndarray:
    """The input as [N, F] float32 (onnxruntime casts every input of these models to float)."""
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    if x.ndim != 2:
        x = x.reshape(1, -1) if x.ndim == 1 else x.reshape(x.shape[0], -1)
    return x


class _Linear:
    """x [N, F] @ coef.T + intercepts in float32, coefficients transposed once."""

    def __init__(self, coef: np.ndarray, intercepts: np.ndarray) -> None:
        self.n_out = max(len(intercepts), 1)
        self.coef = coef
        self.intercepts = intercepts
        self.n_features = coef.size // self.n_out if coef.size % self.n_out == 0 else -1
        self.weights = (
            np.ascontiguousarray(coef.reshape(self.n_out, -1).T) if self.n_features >= 0 else None
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        f = _float_rows(x)
        if f.shape[1] != self.n_features and (self.n_features < 0 or f.shape[1]):
            raise InvalidArgument(
                f"the model has {self.coef.size} coefficients for {len(self.intercepts)} outputs "
                f"but X has {f.shape[1]} features"
            )
        if self.weights is None or not f.shape[1]:
            return np.zeros((f.shape[0], self.n_out), np.float32) + self.intercepts
        s = f @ self.weights
        s += self.intercepts
        return s


@builder("LinearClassifier", since=1, domain=ML, dtypes={0: _ML_INPUTS})
def linear_classifier(info):
    labels, strings = _labels(info, "classlabels_ints")
    post = _transform_name(info)
    coef = info.attr_array("coefficients", np.float32, np.zeros(0, np.float32))
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
    two_labels = np.array([neg, pos], dtype=object if strings else np.int64)
    scores = _Linear(coef, intercepts)

    if n_out == 1:  # the label comes from the raw score's sign

        def run_one(x):
            s = scores(x)
            y = two_labels.take((s[:, 0] > 0).view(np.uint8))
            if post == "PROBIT":  # onnxruntime transforms only the first N entries of Z
                z = np.zeros(s.shape[0] * (2 if second else 1), dtype=np.float32)
                z[: s.shape[0]] = _probit(s[:, 0])
                return y, z.reshape(s.shape[0], -1)
            if second:
                return y, _two_columns(s[:, 0], post, negate=False)
            return y, s

        return run_one

    known = post in ("NONE", "SOFTMAX", "LOGISTIC")
    finish = _ml_jit.warm_transforms() if scores.n_features > 0 and known else None
    few = _ml_jit.warm_linear_rows() if finish is not None else None
    code = _ml_jit.MLAS_TRANSFORMS[post] if known else 0
    weights, intercepts, n_out = scores.weights, scores.intercepts, scores.n_out

    indices = _label_indices(labels, strings, n_out)
    n_features, many = scores.n_features, _ml_jit.GEMM_ROWS

    def run(x):
        if finish is not None:
            f = x if x.dtype is _F32 and x.ndim == 2 else _float_rows(x)
            if f.shape[1] == n_features and f.flags.c_contiguous:
                rows = f.shape[0]
                best = np.empty(rows, _I64)
                if rows >= many:
                    out = f @ weights
                    finish[0](out, code, intercepts, best)
                else:  # the product and the transform in one compiled call
                    out = np.empty((rows, n_out), _F32)
                    few(f, weights, intercepts, code, out, best)
                return (best if indices else labels.take(best)), out
        s = scores(x)
        return labels.take(s.argmax(axis=1)), _write_scores(s, post, mlas=True)

    return run


@builder("LinearRegressor", since=1, domain=ML, dtypes={0: _ML_INPUTS})
def linear_regressor(info):
    post = _transform_name(info)
    coef = info.attr_array("coefficients", np.float32, np.zeros(0, np.float32))
    targets = info.attr("targets", 1)
    intercepts = info.attr("intercepts")
    intercepts = np.asarray(intercepts if intercepts else [0.0] * targets, dtype=np.float32)
    scores = _Linear(coef, intercepts)
    fast = _ml_jit.warm_transforms() if post in ("SOFTMAX", "LOGISTIC") and targets != 1 else None

    def run(x):
        s = scores(x)
        if targets == 1:  # onnxruntime applies only PROBIT to a single target
            return _probit(s) if post == "PROBIT" else s
        return _write_scores(s, post, mlas=True, fast=fast)

    return run


# -- support vector machines -----------------------------------------------------------------------
_KERNELS = ("LINEAR", "POLY", "RBF", "SIGMOID")


def _svm_kernel(info, sv: np.ndarray):
    """The kernel function K(x [N, F]) -> [N, V] of an SVM node against its support vectors
    ``sv`` [V, F] (float64, transposed and their squared norms computed once)."""
    name = str(info.attr("kernel_type", "LINEAR")).upper()
    if name not in _KERNELS:
        raise KernelUnsupported(f"kernel_type {name!r}: use one of {_KERNELS}")
    params = list(info.attr("kernel_params", []) or [])
    gamma, coef0, degree = (params + [0.0, 0.0, 0.0])[:3] if params else (0.0, 0.0, 0.0)
    gamma, coef0, degree = float(np.float32(gamma)), float(np.float32(coef0)), int(degree)
    sv_t = np.ascontiguousarray(sv.T)
    sv_norms = np.einsum("ij,ij->i", sv, sv)

    # RBF: exp(-gamma |x - sv|^2) = exp(min(x . (2 gamma sv) - gamma |sv|^2 - gamma |x|^2, 0))
    sv_t2 = sv_t * (2 * gamma)
    sv_g = sv_norms * -gamma

    def k(x: np.ndarray) -> np.ndarray:
        if name == "RBF":
            arg = x @ sv_t2
            arg += sv_g - gamma * np.einsum("ij,ij->i", x, x)[:, None]
            np.minimum(arg, 0, out=arg)
            return np.exp(arg, out=arg)
        dot = x @ sv_t
        if name == "POLY":
            return (dot * gamma + coef0) ** degree
        if name == "SIGMOID":
            return np.tanh(dot * gamma + coef0)
        return dot

    return k


def _svm_input(x: np.ndarray) -> np.ndarray:
    """[N, F] float64 (the input as float32 first, as onnxruntime casts it)."""
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    if x.ndim != 2:
        x = x.reshape(1, -1) if x.ndim == 1 else x.reshape(x.shape[0], -1)
    return x.astype(np.float64)


@builder("SVMRegressor", since=1, domain=ML, dtypes={0: _ML_INPUTS})
def svm_regressor(info):
    post = _transform_name(info)
    coef = info.attr_array("coefficients", np.float32, np.zeros(0, np.float32)).astype(np.float64)
    rho = info.attr_array("rho", np.float32, np.zeros(1, np.float32)).astype(np.float64)
    n_sv = info.attr("n_supports", 0)
    one_class = bool(info.attr("one_class", 0))
    sv = info.attr_array("support_vectors", np.float32, np.zeros(0, np.float32)).astype(np.float64)
    kernel = _svm_kernel(info, sv.reshape(n_sv, -1)) if n_sv > 0 else None
    weights = coef[:n_sv] if n_sv > 0 else coef

    def run(x):
        f = _svm_input(x)
        s = (kernel(f) if kernel is not None else f) @ weights  # linear mode: coef is the weights
        s += rho[0]
        if one_class:
            s = np.where(s > 0, 1.0, -1.0)
        s = s.reshape(-1, 1).astype(np.float32)
        if post == "NONE":
            return s
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return _TRANSFORMS[post](s).astype(np.float32, copy=False)

    return run


def _pairwise_coupling(r: np.ndarray) -> np.ndarray:
    """Class probabilities [N, K] from pairwise probabilities r [N, K, K] (r[i, j] = P(i | i or j)),
    by the iterative method of Wu, Lin and Weng (2004) as onnxruntime's multiclass_probability
    runs it (float32, the same stopping rule, rows stop one by one), for all samples at once."""
    f = np.float32
    n, k, _ = r.shape
    r = r.astype(f)
    eye = np.eye(k, dtype=bool)
    rt = r.transpose(0, 2, 1)
    q = np.where(eye, 0, -rt * r)  # q[t, j] = -r[j, t] * r[t, j] off the diagonal
    q[:, eye] = (np.where(eye, 0, rt) ** 2).sum(axis=2)  # sum over j != t of r[j, t]^2
    p = np.full((n, k), f(1) / f(k), dtype=f)
    eps = f(0.005) / f(k)
    todo = np.arange(n)
    qs, ps = q, p.copy()
    for _ in range(100):
        qp = np.matmul(qs, ps[:, :, None])[:, :, 0]
        pqp = (ps * qp).sum(axis=1)
        live = np.abs(qp - pqp[:, None]).max(axis=1) >= eps
        if not live.all():
            p[todo[~live]] = ps[~live]
            todo, qs, ps, qp, pqp = todo[live], qs[live], ps[live], qp[live], pqp[live]
            if not todo.size:
                break
        for t in range(k):
            qtt = qs[:, t, t]
            diff = (pqp - qp[:, t]) / qtt
            ps[:, t] += diff
            one = 1 + diff
            pqp = (pqp + diff * (diff * qtt + 2 * qp[:, t])) / one / one
            qp = (qp + diff[:, None] * qs[:, t, :]) / one[:, None]
            ps /= one[:, None]
    else:
        p[todo] = ps
    return p


def _pairwise_coupling_one(r: list) -> list:
    """``_pairwise_coupling`` of one sample in Python floats (a numpy call per operation costs
    more than the arithmetic at this size); r is K x K nested lists."""
    k = len(r)
    ks = range(k)
    q = [[-r[j][t] * r[t][j] for j in ks] for t in ks]
    for t in ks:
        q[t][t] = sum(r[j][t] * r[j][t] for j in ks if j != t)
    p = [1.0 / k] * k
    eps = 0.005 / k
    mul = operator.mul
    for _ in range(100):
        qp = [sum(map(mul, row, p)) for row in q]
        pqp = sum(map(mul, p, qp))
        if max(abs(v - pqp) for v in qp) < eps:
            break
        for t in ks:
            qt = q[t]
            qtt = qt[t]
            diff = (pqp - qp[t]) / qtt
            p[t] += diff
            one = 1 + diff
            pqp = (pqp + diff * (diff * qtt + 2 * qp[t])) / one / one
            qp = [(a + diff * b) / one for a, b in zip(qp, qt)]
            p = [v / one for v in p]
    return p


@builder("SVMClassifier", since=1, domain=ML, dtypes={0: _ML_INPUTS})
def svm_classifier(info):
    post = _transform_name(info)
    labels, _ = _labels(info, "classlabels_ints")
    n_classes = max(len(labels) if labels is not None else 0, 1)
    coef = info.attr_array("coefficients", np.float32, np.zeros(0, np.float32)).astype(np.float64)
    rho = info.attr_array("rho", np.float32, np.zeros(1, np.float32)).astype(np.float64)
    per_class = np.asarray(info.attr("vectors_per_class", []) or [], dtype=np.int64)
    n_sv = int(per_class.sum())
    starts = np.concatenate([[0], np.cumsum(per_class)])
    sv = info.attr_array("support_vectors", np.float32, np.zeros(0, np.float32)).astype(np.float64)
    kernel = _svm_kernel(info, sv.reshape(n_sv, -1)) if n_sv else None
    prob_a = np.asarray(info.attr("prob_a", []) or [], dtype=np.float32)
    prob_b = np.asarray(info.attr("prob_b", []) or [], dtype=np.float32)
    has_proba = prob_a.size > 0 and n_sv > 0
    all_positive = coef.size > 0 and coef.min() >= 0
    pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
    n_pairs = len(pairs)
    fast = None
    transforms = _ml_jit.warm_transforms() if post in ("SOFTMAX", "LOGISTIC") else None
    if n_sv:
        coef2 = coef.reshape(-1, n_sv)
        if coef2.shape[0] < n_classes - 1 or len(rho) < n_pairs:
            raise KernelUnsupported("SVMClassifier: too few coefficients or rho for the classes")
        # one product for all pairs: score[e] = rho[e] + K[class i's vectors] . coef[j - 1] +
        # K[class j's vectors] . coef[i]
        pair_coef = np.zeros((n_sv, n_pairs))
        for e, (i, j) in enumerate(pairs):
            si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
            pair_coef[si, e] = coef2[j - 1, si]
            pair_coef[sj, e] = coef2[i, sj]
        pair_rho = rho[:n_pairs]
        # votes: pair e gives class i a vote when its score is > 0, else class j
        win_i = np.zeros((n_pairs, n_classes))
        win_j = np.zeros((n_pairs, n_classes))
        for e, (i, j) in enumerate(pairs):
            win_i[e, i] = 1
            win_j[e, j] = 1
        pa, pb = prob_a[:n_pairs], prob_b[:n_pairs]
        lo, hi = np.float32(1e-7), np.float32(1 - 1e-7)
        upper = np.triu_indices(n_classes, 1)
        rbf = str(info.attr("kernel_type", "LINEAR")).upper() == "RBF"
        fast = _ml_jit.warm_svc_rbf() if rbf and len(starts) == n_classes + 1 else None
        if fast is not None:  # onnxruntime's own order of operations, in float32
            params = list(info.attr("kernel_params", []) or []) + [0.0]
            gamma32 = np.float32(params[0])
            sv_t32 = np.ascontiguousarray(sv.reshape(n_sv, -1).T, dtype=np.float32)
            coef32 = np.ascontiguousarray(coef2, dtype=np.float32)
            rho32 = np.ascontiguousarray(pair_rho, dtype=np.float32)
            starts64 = starts.astype(np.int64)
            svc_block = None  # the rows shared among the run's threads (_ml_pieces.split_svc)
            if _threads.will_split(info.provider):
                from . import _ml_pieces  # imports numba: the piece is a numba cfunc

                _ml_pieces.warm_svc()
                svc_block = _ml_pieces.svc_template(sv_t32, gamma32, coef32, starts64, rho32)
    else:
        linear = _Linear(coef.astype(np.float32), np.zeros(n_classes, np.float32))

    def labels_of(best: np.ndarray, top: np.ndarray) -> np.ndarray:
        if n_pairs == 1 and not prob_a.size:  # binary without probabilities
            up = (top >= 0.5) if all_positive else (top > 0)
            best = np.where(up, 1, best)
        return labels.take(best) if labels is not None else best.astype(np.int64)

    def probabilities(scores: np.ndarray) -> np.ndarray:
        # onnxruntime: 1 - logistic(score * a + b) in float32, clipped to [1e-7, 1 - 1e-7]
        val = 1 - _logistic(scores * pa + pb)
        np.maximum(val, lo, out=val)
        np.minimum(val, hi, out=val)
        rest = 1 - val
        if len(val) == 1:
            r = [[0.0] * n_classes for _ in range(n_classes)]
            for (i, j), v, w in zip(pairs, val[0].tolist(), rest[0].tolist()):
                r[i][j], r[j][i] = v, w
            return np.array([_pairwise_coupling_one(r)], dtype=np.float32)
        r = np.zeros((len(val), n_classes, n_classes), dtype=np.float32)
        r[:, upper[0], upper[1]] = val
        r[:, upper[1], upper[0]] = rest
        return _pairwise_coupling(r)

    def classify(x):
        """(scores [N, P] float32, the class with most votes [N]) in numpy."""
        scores = kernel(_svm_input(x)) @ pair_coef
        scores += pair_rho
        up = scores > 0  # the vote reads the double sum, the scores keep its float
        scores = scores.astype(np.float32)
        if len(up) == 1:  # one sample: count its votes in Python
            count = [0] * n_classes
            for (i, j), u in zip(pairs, up[0].tolist()):
                count[i if u else j] += 1
            best = np.array([count.index(max(count))])
        else:
            best = np.argmax(up @ win_i + (~up) @ win_j, axis=1)
        return scores, best

    def run(x):
        if not n_sv:  # linear mode: one score per class, the label is the best score
            scores = linear(x) + np.float32(rho[0])
            best = np.argmax(scores, axis=1)
            y = labels_of(best, scores[np.arange(len(best)), best])
            if n_classes == 1:
                return y, (_probit(scores) if post == "PROBIT" else scores.astype(np.float32))
            return y, _write_scores(scores, post, mlas=True)
        f = _float_rows(x) if fast is not None else None
        if f is not None and f.flags.c_contiguous and f.shape[1] == sv_t32.shape[0]:
            scores = np.empty((f.shape[0], n_pairs), dtype=np.float32)
            best = np.empty(f.shape[0], dtype=np.int64)
            if svc_block is None or not _ml_pieces.split_svc(svc_block, f, scores, best):
                work = np.empty(n_sv, np.float32)
                fast(f, sv_t32, gamma32, coef32, starts64, rho32, work, scores, best)
        else:
            scores, best = classify(x)
        # the label is the class with most votes (the first of equals); onnxruntime's binary rule
        # then sees a best score of 0, so it keeps the vote (labels_of(best, 0) is the vote)
        y = labels.take(best) if labels is not None else best
        if has_proba:
            return y, _write_scores(probabilities(scores), post, mlas=True, fast=transforms)
        if n_pairs != 1:
            return y, _write_scores(scores, post, mlas=True, fast=transforms)
        s = scores[:, 0]
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


@builder("Binarizer", since=1, domain=ML)
def binarizer(info):
    threshold = info.attr("threshold", 0.0)

    def run(x):
        return (x > threshold).astype(x.dtype)

    return run


@builder("Scaler", since=1, domain=ML)
def scaler(info):
    offset = np.asarray(info.attr("offset", [0.0]) or [0.0], dtype=np.float32)
    scale = np.asarray(info.attr("scale", [1.0]) or [1.0], dtype=np.float32)
    offset64, scale64 = offset.astype(np.float64), scale.astype(np.float64)
    fast = _ml_jit.warm_scale()
    per_feature: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # stride -> (offset, scale)

    def run(x):
        if fast is not None and x.dtype is _F32 and x.ndim == 2 and x.flags.c_contiguous:
            params = per_feature.get(x.shape[1])
            if params is None and {len(offset), len(scale)} <= {1, x.shape[1]}:
                params = (np.resize(offset, x.shape[1]), np.resize(scale, x.shape[1]))
                if len(per_feature) < 8:
                    per_feature[x.shape[1]] = params
            if params is not None:
                y = np.empty(x.shape, _F32)
                fast(x, params[0], params[1], y)
                return y
        stride = _stride(x)
        for name, v in (("offset", offset), ("scale", scale)):
            if len(v) != 1 and len(v) != stride:
                raise InvalidArgument(
                    f"Scaler: {name} has {len(v)} values; it needs 1 or one per feature ({stride}: "
                    f"dim {0 if x.ndim == 1 else 1} of the input, shape {list(x.shape)})"
                )
        # onnxruntime computes in the input's precision (float for integers), then rounds to float
        if x.dtype == np.float64:
            off, sc = offset64, scale64
        else:
            off, sc = offset, scale
            if x.dtype != np.float32:
                x = x.astype(np.float32)
        if x.ndim > 2:
            off = off if len(off) == 1 else _per_feature(x, off)
            sc = sc if len(sc) == 1 else _per_feature(x, sc)
        y = np.subtract(x, off)
        y *= sc
        return y if y.dtype == np.float32 else y.astype(np.float32)

    return run


@builder("Normalizer", since=1, domain=ML)
def normalizer(info):
    norm = info.attr("norm", "MAX")
    if isinstance(norm, bytes):
        norm = norm.decode()

    fast = _ml_jit.warm_normalize() if norm in _ml_jit.NORMS else None
    code = _ml_jit.NORMS.get(norm)

    def run(x):
        if (
            fast is not None and x.dtype is _F32 and x.ndim == 2 and x.flags.c_contiguous
        ):  # the usual rows, first: a batch-1 call spent 0.8 of its 1.1 us in the checks below
            y = np.empty(x.shape, _F32)
            fast(x, code, y)
            return y
        if x.ndim > 2:
            raise InvalidArgument(
                f"Normalizer takes a [C] or [N, C] tensor, got shape {list(x.shape)}"
            )
        v = x.reshape(1, -1) if x.ndim < 2 else x
        if v.dtype != np.float32:
            v = v.astype(np.float32)
        if fast is not None and v.flags.c_contiguous:
            y = np.empty(v.shape, dtype=np.float32)
            fast(v, code, y)
            return y.reshape(x.shape)
        if norm == "MAX":
            div = np.maximum.reduce(v, axis=1, keepdims=True) if v.shape[1] else None
        elif norm == "L1":
            div = np.add.reduce(np.abs(v), axis=1, keepdims=True)
        elif norm == "L2":
            div = np.sqrt(np.add.reduce(v * v, axis=1, keepdims=True))
        else:
            raise InvalidArgument(f"Normalizer: norm {norm!r} is not MAX, L1 or L2")
        if div is None or not v.size:
            y = v.copy()
        elif div.all():
            y = v / div
        else:  # rows whose norm is 0 stay as they are
            y = np.divide(v, div, out=v.copy(), where=div != 0)
        return y.reshape(x.shape)

    return run


@builder("Imputer", since=1, domain=ML)
def imputer(info):
    floats = info.attr("imputed_value_floats")
    ints = info.attr("imputed_value_int64s")
    target_f = info.attr("replaced_value_float", 0.0)
    target_i = info.attr("replaced_value_int64", 0)
    fills: dict = {}

    def run(x):
        floating = x.dtype.kind == "f"
        values, target = (floats, target_f) if floating else (ints, target_i)
        if not values:
            kind = "imputed_value_floats" if floating else "imputed_value_int64s"
            raise InvalidArgument(f"Imputer: a {x.dtype} input needs {kind}")
        key = (x.dtype, _stride(x), x.shape if x.ndim > 2 else None)
        fill = fills.get(key)
        if fill is None:
            fill = np.asarray(values).astype(x.dtype)
            # one value per feature, else (as onnxruntime does) the first value everywhere
            fill = _per_feature(x, fill) if len(fill) == _stride(x) else fill[0]
            if len(fills) < 16:
                fills[key] = fill
        mask = np.isnan(x) if floating and math.isnan(target) else x == target
        return np.where(mask, fill, x)

    return run


def _lookup_kernel(keys, values, default, out_dtype):
    """A kernel mapping each element found in ``keys`` to ``values`` and others to ``default``;
    a NaN key matches NaN inputs (onnxruntime does so from LabelEncoder 4 on only). Numeric keys
    are looked up with ``searchsorted`` on the sorted keys, strings through a dict."""
    if keys.dtype.kind == "f":
        nan = np.isnan(keys)
        nan_value = values[nan][-1] if nan.any() else default
        table = dict(zip(keys[~nan].tolist(), values[~nan].tolist(), strict=True))
    else:
        nan_value = default
        table = dict(zip(keys.tolist(), values.tolist(), strict=True))
    numeric = keys.dtype.kind in "iuf"
    float_keys = keys.dtype.kind == "f"
    if numeric:  # the table's last value per key wins, as in the dict
        uniq = np.array(sorted(table), dtype=np.float64 if keys.dtype.kind == "f" else np.int64)
        mapped = np.empty(len(uniq) + 1, dtype=out_dtype)
        mapped[:-1] = [table[k] for k in uniq.tolist()]
        mapped[-1] = default
        with_nan = np.empty(len(mapped) + 1, dtype=out_dtype)
        with_nan[:-1], with_nan[-1] = mapped, nan_value

    def get(k):
        if isinstance(k, float) and math.isnan(k):
            return nan_value
        return table.get(k, default)

    def run(x):
        if x.size == 0:
            return np.empty(x.shape, dtype=out_dtype)
        if numeric and x.dtype.kind in "iuf" and (x.dtype.kind == "f") == float_keys:
            k = x.astype(uniq.dtype, copy=False)
            pos = np.searchsorted(uniq, k)
            np.minimum(pos, max(len(uniq) - 1, 0), out=pos)
            if len(uniq):
                pos[uniq.take(pos) != k] = len(uniq)
            else:
                pos[...] = 0
            if k.dtype.kind == "f":
                pos[np.isnan(k)] = len(mapped)
                return with_nan.take(pos)
            return mapped.take(pos)
        flat = x.reshape(-1).tolist()
        out = np.empty(len(flat), dtype=out_dtype)
        out[:] = [get(k) for k in flat]
        return out.reshape(x.shape)

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
    ints = info.attr_array("cats_int64s", np.int64, np.zeros(0, np.int64))
    if len(strings) != len(ints):
        raise KernelUnsupported("CategoryMapper: cats_strings and cats_int64s differ in length")
    return _two_way(
        _lookup_kernel(strings, ints, info.attr("default_int64", -1), np.int64),
        _lookup_kernel(ints, strings, info.attr("default_string", "_Unused"), STRING),
    )


@builder("ArrayFeatureExtractor", since=1, domain=ML)
def array_feature_extractor(info):
    const = info.constant(1) if info.num_inputs > 1 else None
    fixed = np.asarray(const, dtype=np.int64).reshape(-1) if const is not None else None
    low, high = (int(fixed.min()), int(fixed.max())) if fixed is not None and fixed.size else (0, 0)

    def run(x, indices):
        idx = fixed if fixed is not None else np.asarray(indices, dtype=np.int64).reshape(-1)
        width = x.shape[-1]
        if fixed is None or low < -width or high >= width:
            # negative indices count from the end (onnxruntime refuses them: a documented
            # difference)
            bad = (idx < -width) | (idx >= width)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InvalidArgument(
                    f"ArrayFeatureExtractor: index {idx[i]} (Y[{i}]) is out of range "
                    f"[-{width}, {width}) of the input's last axis"
                )
        y = x.take(idx, axis=-1)
        return y.reshape(1, -1) if x.ndim == 1 else y

    return run


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
    n_cats = len(cats)
    # row i: the one-hot vector of category i; the last row (index -1): none of them
    rows = np.vstack([np.eye(n_cats, dtype=np.float32), np.zeros((1, n_cats), np.float32)])
    table = None
    if info.attr("cats_int64s") is not None and cats:
        low, high = min(cats), max(cats)
        if high - low < 1 << 16:  # a lookup table over the categories' range, -1 around it
            table = np.full(high - low + 3, -1, dtype=np.intp)
            for c, i in position.items():
                table[c - low + 1] = i
            shift = low - 1

    def positions(x: np.ndarray) -> np.ndarray:
        if table is not None and x.dtype != object:
            k = x if x.dtype == np.int64 else x.astype(np.int64)
            # out-of-range values clip to the -1 ends (k - shift cannot overflow for sane codes)
            return table.take(k - shift, mode="clip")
        flat = (x if x.dtype == object else x.astype(np.int64)).reshape(-1).tolist()
        return np.array([position.get(v, -1) for v in flat], dtype=np.intp).reshape(x.shape)

    def run(x):
        pos = positions(x)
        if not zeros and (pos < 0).any():
            raise InvalidArgument("OneHotEncoder: a value is not among the categories (zeros=0)")
        return rows.take(pos, axis=0)

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
@builder("ZipMap", since=1, domain=ML)
def zip_map(info):
    strings, ints = info.attr("classlabels_strings"), info.attr("classlabels_int64s")
    labels = strings if strings is not None else ints
    if labels is not None:
        labels = list(labels)

    maps = _row_maps(labels) if labels is not None else None

    def run(x):
        if labels is None:
            raise InvalidArgument("ZipMap needs classlabels_strings or classlabels_int64s")
        if x.ndim > 2:
            raise InvalidArgument(f"ZipMap takes a [C] or [N, C] tensor, got shape {list(x.shape)}")
        rows = x.reshape(1, -1) if x.ndim < 2 else x
        if rows.shape[-1] != len(labels):
            raise InvalidArgument(
                f"ZipMap: the input has {rows.shape[-1]} scores per row for {len(labels)} class "
                "labels"
            )
        return maps(rows.tolist())

    return run


#: labels up to which ZipMap's dicts are built by generated code (:func:`_row_maps`)
ZIPMAP_WRITTEN_LABELS = 64


def _row_maps(labels: list):
    """A function from rows (lists of C floats) to a :class:`PlainMaps` of one dict a row, the
    labels its keys in order. For up to :data:`ZIPMAP_WRITTEN_LABELS` labels, a comprehension
    of dict displays generated for C (the labels are its closure's values, never its text):
    100 rows of 3 classes 35 -> 17 us, of which ``tolist`` 6, against ``dict(zip(...))``."""
    if len(labels) > ZIPMAP_WRITTEN_LABELS or not labels:
        return lambda rows: PlainMaps(map(dict, map(zip, repeat(labels), rows)))
    keys = [f"k{i}" for i in range(len(labels))]
    values = [f"v{i}" for i in range(len(labels))]
    display = ", ".join(f"{k}: {v}" for k, v in zip(keys, values))
    lines = [
        f"def made({', '.join(keys)}):",
        "    def maps(rows):",
        f"        return PLAIN([{{{display}}} for {', '.join(values)}, in rows])",
        "    return maps",
    ]
    env = {"PLAIN": PlainMaps}
    exec(compile("\n".join(lines), "<ort_cpu ZipMap rows>", "exec"), env)  # noqa: S102 - ours
    return env["made"](*labels)


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
