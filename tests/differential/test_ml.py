"""The ai.onnx.ml model operators (tree ensembles, linear models, SVMs) against the
ReferenceEvaluator, on random trees and random coefficients.

Where the reference departs from the spec (it ignores the *_as_tensor attributes, TreeEnsemble's
post_transform and the regressors' output type), the reference runs an equivalent node and the test
applies the missing step with the reference's own helpers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper, numpy_helper
from onnx.reference.ops.aionnxml import _common_classifier as ref_post

from .harness import assert_same, make_node_model, run_cpu, run_reference

ML = "ai.onnx.ml"
BRANCHES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]
TRANSFORMS = ["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"]
SPLITS = np.array([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0], dtype=np.float32)


def _ml_model(op_type, x, attrs, version, n_outputs):
    model, feeds = make_node_model(op_type, [x], attrs, domain=ML, n_outputs=n_outputs)
    for o in model.opset_import:
        if o.domain == ML:
            o.version = version
    return model, feeds


def _as_object(value):
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        return value.astype(object)
    return value


def check_ml(
    op_type,
    x,
    attrs,
    version,
    *,
    n_outputs=1,
    ref_attrs=None,
    ref_x=None,
    post=None,
    rtol=1e-5,
    atol=1e-5,
):
    """Compare an ai.onnx.ml node with the reference evaluator running ``attrs | ref_attrs`` on
    ``ref_x`` (default ``x``); ``post(expected_list) -> expected_list`` fixes up its results."""
    model, feeds = _ml_model(op_type, x, attrs, version, n_outputs)
    ref_model, ref_feeds = _ml_model(
        op_type, x if ref_x is None else ref_x, {**attrs, **(ref_attrs or {})}, version, n_outputs
    )
    expected = [_as_object(e) for e in run_reference(ref_model, ref_feeds)]
    if post is not None:
        expected = post(expected)
    got = run_cpu(model, feeds)
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert_same(e, g, rtol, atol, f"{op_type} output {i}")
    return got


def check_ort(op_type, x, attrs, version, *, n_outputs=1, rtol=1e-5, atol=1e-5, columns=None):
    """Compare an ai.onnx.ml node with onnxruntime, the oracle where onnxruntime and the reference
    evaluator disagree: binary classifiers (which scores become two columns, which label wins),
    PROBIT of 0 and 1, targets no leaf scores, single-target post transforms. ort-core returns
    what onnxruntime returns there. ``columns`` limits the comparison of the last output to its
    first columns (onnxruntime leaves the others unwritten in some cases)."""
    ort = pytest.importorskip("onnxruntime")
    model, feeds = _ml_model(op_type, x, attrs, version, n_outputs)
    for o in model.opset_import:
        if o.domain == "":
            o.version = 18  # an opset onnxruntime knows; the node is in ai.onnx.ml anyway
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = sess.run(None, feeds)
    got = run_cpu(model, feeds)
    assert len(got) == len(expected)
    if columns is not None:
        expected[-1], got[-1] = expected[-1][:, :columns], got[-1][:, :columns]
    for i, (e, g) in enumerate(zip(expected, got)):
        assert_same(e, g, rtol, atol, f"{op_type} output {i} (onnxruntime)")
    return got


def _features(rng, n, f, dtype=np.float32, nan=True):
    """Inputs that often hit the splits exactly (EQ/NEQ) and sometimes are NaN."""
    x = rng.choice(SPLITS, size=(n, f)) + rng.choice([0, 0, 0.1, -0.1], size=(n, f))
    if nan:
        x[rng.random((n, f)) < 0.1] = np.nan
    return x.astype(dtype)


# -- random trees ----------------------------------------------------------------------------------
def _random_tree(rng, n_features, max_depth, modes):
    """A random tree as (nodes, leaves): nodes [(feature, mode, split, missing, true, false)] where
    children are ('node', i) or ('leaf', j); node 0 is the root."""
    nodes, leaves = [], []

    def grow(depth):
        if depth >= max_depth or (depth > 0 and rng.random() < 0.3):
            leaves.append(len(leaves))
            return ("leaf", leaves[-1])
        i = len(nodes)
        nodes.append(None)
        mode = str(rng.choice(modes))
        split = float(rng.choice(SPLITS))
        t, f = grow(depth + 1), grow(depth + 1)
        # the legacy reference sends NaN to the false branch of a NEQ node whose missing flag is
        # 0; onnxruntime and TreeEnsemble's reference send it to the true one (NaN != split)
        missing = 1 if mode == "BRANCH_NEQ" else int(rng.integers(2))
        nodes[i] = (int(rng.integers(n_features)), mode, split, missing, t, f)
        return ("node", i)

    grow(0)
    return nodes, len(leaves)


def legacy_ensemble(rng, n_trees, n_features, n_targets, prefix, max_depth=4, modes=BRANCHES):
    """Attributes of a TreeEnsembleClassifier/Regressor with shuffled node ids, sparse tree ids and
    leaves that give 1 or 2 weights."""
    a = {k: [] for k in ("treeids", "nodeids", "featureids", "modes", "values", "missing")}
    a.update(true=[], false=[])
    w = {"treeids": [], "nodeids": [], "ids": [], "weights": []}
    for t in range(n_trees):
        tree_id = 3 * t + 1
        nodes, n_leaves = _random_tree(rng, n_features, max_depth, modes)
        total = len(nodes) + n_leaves
        ids = np.concatenate([[0], rng.permutation(np.arange(1, total + 2))[: total - 1]])

        def nid(child, nodes=nodes, ids=ids):
            return int(ids[child[1] if child[0] == "node" else len(nodes) + child[1]])

        for i, (feat, mode, split, miss, tc, fc) in enumerate(nodes):
            for k, v in zip(a, (tree_id, int(ids[i]), feat, mode, split, miss)):
                a[k].append(v)
            a["true"].append(nid(tc))
            a["false"].append(nid(fc))
        for j in range(n_leaves):
            leaf_id = int(ids[len(nodes) + j])
            for k, v in zip(a, (tree_id, leaf_id, 0, "LEAF", 0.0, 0)):
                a[k].append(v)
            a["true"].append(0)
            a["false"].append(0)
            for target in rng.choice(
                n_targets, size=min(n_targets, rng.integers(1, 3)), replace=False
            ):
                for k, v in zip(w, (tree_id, leaf_id, int(target), float(rng.normal()))):
                    w[k].append(v)
    attrs = {
        "nodes_treeids": a["treeids"],
        "nodes_nodeids": a["nodeids"],
        "nodes_featureids": a["featureids"],
        "nodes_modes": a["modes"],
        "nodes_values": a["values"],
        "nodes_missing_value_tracks_true": a["missing"],
        "nodes_truenodeids": a["true"],
        "nodes_falsenodeids": a["false"],
    }
    attrs.update({f"{prefix}_{k}": v for k, v in w.items()})
    return attrs


def ensemble_5(rng, n_trees, n_features, n_targets, dtype, modes=range(7), max_depth=4):
    """Attributes of a TreeEnsemble (ai.onnx.ml 5) and the first tree may be a single leaf."""
    cols = {k: [] for k in ("feat", "mode", "split", "miss", "t", "tl", "f", "fl")}
    members, leaf_t, leaf_w, roots = [], [], [], []
    names = BRANCHES + ["BRANCH_MEMBER"]
    for t in range(n_trees):
        if t == 0 and n_trees > 1:  # a tree that is one leaf
            roots.append(len(cols["mode"]))
            for k, v in zip(cols, (0, 0, 0.0, 0, len(leaf_w), 1, len(leaf_w), 1)):
                cols[k].append(v)
            leaf_t.append(int(rng.integers(n_targets)))
            leaf_w.append(float(rng.normal()))
            continue
        nodes, n_leaves = _random_tree(rng, n_features, max_depth, [names[m] for m in modes])
        base, leaf_base = len(cols["mode"]), len(leaf_w)
        roots.append(base)
        for feat, mode, split, miss, tc, fc in nodes:
            m = names.index(mode)
            if m == 6:
                # not 0.0: the reference stops reading a set at a 0.0 as at the NaN that ends it
                values = rng.choice(SPLITS[SPLITS != 0], size=int(rng.integers(1, 4)))
                members.extend(values.tolist())
                members.append(np.nan)
            for k, v in zip(cols, (feat, m, split, miss)):
                cols[k].append(v)
            for (kind, i), key in ((tc, "t"), (fc, "f")):
                cols[key].append(i + (leaf_base if kind == "leaf" else base))
                cols[key + "l"].append(int(kind == "leaf"))
        leaf_t.extend(rng.integers(n_targets, size=n_leaves).tolist())
        leaf_w.extend(rng.normal(size=n_leaves).tolist())
    attrs = {
        "nodes_featureids": cols["feat"],
        "nodes_modes": numpy_helper.from_array(np.array(cols["mode"], np.uint8)),
        "nodes_splits": numpy_helper.from_array(np.array(cols["split"], dtype)),
        "nodes_missing_value_tracks_true": cols["miss"],
        "nodes_truenodeids": cols["t"],
        "nodes_trueleafs": cols["tl"],
        "nodes_falsenodeids": cols["f"],
        "nodes_falseleafs": cols["fl"],
        "leaf_targetids": leaf_t,
        "leaf_weights": numpy_helper.from_array(np.array(leaf_w, dtype)),
        "tree_roots": roots,
        "n_targets": n_targets,
    }
    if members:
        attrs["membership_values"] = numpy_helper.from_array(np.array(members, dtype))
    return attrs


def unscored_to_zero(expected):
    """MIN/MAX: the reference leaves targets no leaf scores at the largest float; onnxruntime (and
    ort-core) at 0."""
    e = expected[0]
    big = np.finfo(e.dtype).max
    return [np.where(np.abs(e) >= big, 0, e).astype(e.dtype)] + expected[1:]


REF_TRANSFORM = {
    0: lambda s: s,
    1: ref_post.softmax,
    2: ref_post.logistic,
    3: ref_post.softmax_zero,
    4: ref_post.probit,
}


# -- TreeEnsemble (ai.onnx.ml 5) -------------------------------------------------------------------
@pytest.mark.parametrize("aggregate", [0, 1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_tree_ensemble_aggregates(aggregate, dtype):
    rng = np.random.default_rng(aggregate)
    attrs = ensemble_5(rng, 5, 3, 3, dtype)
    attrs["aggregate_function"] = aggregate
    x = _features(rng, 40, 3, dtype)
    # the reference sums in float16, ort-core in float64
    atol = 2e-3 if dtype == np.float16 else 1e-5
    check_ml("TreeEnsemble", x, attrs, 5, post=unscored_to_zero, rtol=1e-3, atol=atol)


@pytest.mark.parametrize("post", [1, 2, 3, 4])
def test_tree_ensemble_post_transform(post):
    rng = np.random.default_rng(10 + post)
    attrs = ensemble_5(rng, 4, 3, 3, np.float32)
    x = _features(rng, 30, 3)
    if post == 4:  # probit takes probabilities: keep the leaf weights in (0, 1)
        w = numpy_helper.to_array(attrs["leaf_weights"])
        attrs["leaf_weights"] = numpy_helper.from_array((np.abs(w) % 1 / 4).astype(np.float32))
        attrs["aggregate_function"] = 0

    if post == 4:  # onnxruntime: a target no leaf scores is probit(0) = -inf, not 0
        check_ort("TreeEnsemble", x, {**attrs, "post_transform": post}, 5, rtol=1e-4)
        return

    def transform(expected):
        return [REF_TRANSFORM[post](expected[0].astype(np.float32)).astype(np.float32)]

    check_ml(
        "TreeEnsemble",
        x,
        {**attrs, "post_transform": post},
        5,
        ref_attrs={"post_transform": 0},
        post=transform,
        rtol=1e-4,
    )


@pytest.mark.parametrize("mode", range(7))
def test_tree_ensemble_each_mode(mode):
    rng = np.random.default_rng(20 + mode)
    attrs = ensemble_5(rng, 3, 2, 2, np.float32, modes=[mode], max_depth=5)
    check_ml("TreeEnsemble", _features(rng, 50, 2), attrs, 5)


def test_tree_ensemble_one_sample_and_empty_batch():
    rng = np.random.default_rng(30)
    attrs = ensemble_5(rng, 3, 4, 2, np.float32)
    check_ml("TreeEnsemble", _features(rng, 1, 4), attrs, 5)
    model, feeds = _ml_model("TreeEnsemble", np.zeros((0, 4), np.float32), attrs, 5, 1)
    (y,) = run_cpu(model, feeds)
    assert y.shape == (0, 2) and y.dtype == np.float32


# -- TreeEnsembleRegressor -------------------------------------------------------------------------
@pytest.mark.parametrize("aggregate", ["SUM", "AVERAGE", "MIN", "MAX"])
@pytest.mark.parametrize("version", [1, 3])
def test_tree_ensemble_regressor(aggregate, version):
    rng = np.random.default_rng(40 + version)
    attrs = legacy_ensemble(rng, 4, 3, 2, "target")
    attrs.update(n_targets=2, aggregate_function=aggregate, base_values=[0.5, -0.25])
    # onnxruntime writes 0 for a target no leaf scores, base value or not
    check_ort("TreeEnsembleRegressor", _features(rng, 40, 3), attrs, version)


@pytest.mark.parametrize("aggregate", ["SUM", "AVERAGE"])
@pytest.mark.parametrize("rows", [1, 40])
def test_tree_ensemble_regressor_one_target(aggregate, rows):
    """One target: the compiled walk and sums in one call (the divisor and the base value from
    its argument block), at batch 1 and over a batch; against onnxruntime."""
    from ort_cpu import _jit, _trees

    rng = np.random.default_rng(47)
    ordered = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT")  # the compiled walk's
    attrs = legacy_ensemble(rng, 5, 3, 1, "target", modes=ordered)
    attrs.update(n_targets=1, aggregate_function=aggregate, base_values=[0.75])
    made = []
    block = _trees.Walker.block
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_trees.Walker, "block", lambda self, *a: made.append(a) or block(self, *a))
        check_ort("TreeEnsembleRegressor", _features(rng, rows, 3), attrs, 3)
    assert bool(made) == _jit.available()  # the one-call walk ran where numba is on


def test_tree_ensemble_regressor_as_tensor():
    rng = np.random.default_rng(45)
    plain = legacy_ensemble(rng, 3, 3, 2, "target")
    plain.update(n_targets=2, base_values=[0.5, -0.25])
    attrs = dict(plain)
    for name in ("nodes_values", "target_weights", "base_values"):
        del attrs[name]
        attrs[f"{name}_as_tensor"] = numpy_helper.from_array(np.array(plain[name], np.float64))
    check_ml("TreeEnsembleRegressor", _features(rng, 30, 3), attrs, 3, ref_attrs=plain)


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.int32])
def test_tree_ensemble_regressor_input_types(dtype):
    rng = np.random.default_rng(46)
    attrs = legacy_ensemble(rng, 3, 3, 1, "target")
    attrs["n_targets"] = 1
    x = (_features(rng, 20, 3, nan=False) * 4).astype(dtype)

    def as_float(expected):  # the reference keeps the input type; the spec says float
        return [expected[0].astype(np.float32)]

    # the reference sums integer inputs' scores in the integer type: give it floats
    ref_x = x if dtype == np.float64 else x.astype(np.float32)
    check_ml("TreeEnsembleRegressor", x, attrs, 3, ref_x=ref_x, post=as_float)


def test_tree_ensemble_regressor_deep_forest():
    """Many deep trees and a large batch: vectorized evaluation of unbalanced trees."""
    rng = np.random.default_rng(47)
    attrs = legacy_ensemble(rng, 30, 8, 1, "target", max_depth=9)
    attrs["n_targets"] = 1
    check_ml("TreeEnsembleRegressor", _features(rng, 300, 8), attrs, 3, rtol=1e-4)


# -- TreeEnsembleClassifier ------------------------------------------------------------------------
@pytest.mark.parametrize("post", TRANSFORMS)
@pytest.mark.parametrize("labels", ["int64s", "strings"])
def test_tree_ensemble_classifier_multiclass(post, labels):
    rng = np.random.default_rng(len(post))
    attrs = legacy_ensemble(rng, 4, 3, 3, "class")
    if post == "PROBIT":
        attrs["class_weights"] = [abs(w) % 1 / 4 for w in attrs["class_weights"]]
    names = [5, 7, 11] if labels == "int64s" else ["a", "bb", "c"]
    attrs.update({f"classlabels_{labels}": names, "post_transform": post})
    attrs["base_values"] = [0.1, -0.2, 0.05]
    check = check_ort if post == "PROBIT" else check_ml  # probit(0) is -inf in onnxruntime
    check("TreeEnsembleClassifier", _features(rng, 40, 3), attrs, 3, n_outputs=2, rtol=1e-4)


@pytest.mark.parametrize("post", TRANSFORMS)
@pytest.mark.parametrize("positive", [True, False])
@pytest.mark.parametrize("base", [None, [0.1]])
def test_tree_ensemble_classifier_binary_one_score(post, positive, base):
    """Two labels and one class id: the weights score the positive class alone; the scores become
    [1 - s, s] (all weights positive) or [-s, s], as onnxruntime writes them."""
    rng = np.random.default_rng(50)
    attrs = legacy_ensemble(rng, 3, 3, 1, "class")
    weights = np.array(attrs["class_weights"])
    attrs["class_weights"] = (np.abs(weights) % 0.3 if positive else weights / 4).tolist()
    attrs.update(classlabels_int64s=[0, 1], post_transform=post)
    if base:
        attrs["base_values"] = base
    # PROBIT: onnxruntime writes the first column only and leaves the second as memory held
    columns = 1 if post == "PROBIT" else None
    x = _features(rng, 40, 3)
    check_ort("TreeEnsembleClassifier", x, attrs, 1, n_outputs=2, rtol=1e-4, columns=columns)


def test_tree_ensemble_classifier_as_tensor_and_int_input():
    rng = np.random.default_rng(60)
    plain = legacy_ensemble(rng, 3, 2, 2, "class")
    plain.update(classlabels_strings=["no", "yes"], post_transform="SOFTMAX", base_values=[0, 0])
    attrs = dict(plain)
    for name in ("nodes_values", "class_weights", "base_values"):
        del attrs[name]
        attrs[f"{name}_as_tensor"] = numpy_helper.from_array(np.array(plain[name], np.float32))
    x = (_features(rng, 25, 2, nan=False) * 2).astype(np.int64)
    check_ort("TreeEnsembleClassifier", x, attrs, 3, n_outputs=2, rtol=1e-4)


# -- linear models ---------------------------------------------------------------------------------
@pytest.mark.parametrize("post", TRANSFORMS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_linear_classifier(post, n_classes):
    rng = np.random.default_rng(70 + n_classes)
    f = 4
    coef = rng.normal(size=n_classes * f).astype(np.float32)
    if post == "PROBIT":
        coef = np.abs(coef) / 20
    attrs = {
        "coefficients": coef.tolist(),
        "intercepts": (rng.normal(size=n_classes) / 10 if post != "PROBIT" else [0.1] * n_classes),
        "classlabels_ints": list(range(3, 3 + n_classes)),
        "post_transform": post,
    }
    x = rng.random((20, f)).astype(np.float32)
    check_ml("LinearClassifier", x, attrs, 1, n_outputs=2, rtol=1e-4)


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX"])
def test_linear_classifier_binary_one_row(post):
    """One row of coefficients for two labels: onnxruntime writes [1 - s, s] (LOGISTIC:
    [logistic(-s), logistic(s)]) and labels by the sign of s."""
    rng = np.random.default_rng(75)
    attrs = {
        "coefficients": rng.normal(size=3).tolist(),
        "intercepts": [0.2],
        "classlabels_strings": ["neg", "pos"],
        "post_transform": post,
    }
    check_ort(
        "LinearClassifier", rng.normal(size=(15, 3)).astype(np.float32), attrs, 1, n_outputs=2
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_linear_regressor(dtype):
    rng = np.random.default_rng(80)
    attrs = {"coefficients": rng.normal(size=6).tolist(), "intercepts": [0.5, -1.0], "targets": 2}
    x = (rng.normal(size=(11, 3)) * 3).astype(dtype)

    def as_float(expected):
        return [expected[0].astype(np.float32)]

    ref_x_dtype = np.float32 if dtype == np.int64 else dtype
    model, feeds = _ml_model("LinearRegressor", x.astype(ref_x_dtype), attrs, 1, 1)
    expected = as_float(run_reference(model, feeds))
    got = run_cpu(*_ml_model("LinearRegressor", x, attrs, 1, 1))
    assert_same(expected[0], got[0], 1e-5, 1e-5)


# -- SVMs ------------------------------------------------------------------------------------------
KERNELS = [
    ("LINEAR", []),
    ("POLY", [0.3, 0.5, 3]),
    ("RBF", [0.4, 0, 0]),
    ("SIGMOID", [0.2, 0.1, 0]),
]


@pytest.mark.parametrize("kernel,params", KERNELS)
@pytest.mark.parametrize("one_class", [0, 1])
def test_svm_regressor(kernel, params, one_class):
    rng = np.random.default_rng(90)
    n_sv, f = 5, 3
    attrs = {
        "coefficients": rng.normal(size=n_sv).tolist(),
        "support_vectors": rng.normal(size=n_sv * f).tolist(),
        "n_supports": n_sv,
        "rho": [0.3],
        "kernel_type": kernel,
        "one_class": one_class,
    }
    if params:
        attrs["kernel_params"] = params
    check_ml("SVMRegressor", rng.normal(size=(17, f)).astype(np.float32), attrs, 1, rtol=1e-4)


def test_svm_regressor_linear_mode():
    rng = np.random.default_rng(91)
    attrs = {"coefficients": rng.normal(size=4).tolist(), "rho": [0.3], "n_supports": 0}
    check_ml("SVMRegressor", rng.normal(size=(9, 4)).astype(np.float32), attrs, 1)


def _svc_attrs(rng, n_classes, f, kernel, params, proba, labels):
    per_class = rng.integers(1, 4, size=n_classes)
    n_sv = int(per_class.sum())
    n_pairs = n_classes * (n_classes - 1) // 2
    attrs = {
        "coefficients": rng.normal(size=(n_classes - 1) * n_sv).tolist(),
        "support_vectors": rng.normal(size=n_sv * f).tolist(),
        "vectors_per_class": per_class.tolist(),
        "rho": (rng.normal(size=n_pairs) / 5).tolist(),
        "kernel_type": kernel,
    }
    if params:
        attrs["kernel_params"] = params
    if labels == "ints":
        attrs["classlabels_ints"] = [2 * i + 1 for i in range(n_classes)]
    else:
        attrs["classlabels_strings"] = [f"c{i}" for i in range(n_classes)]
    if proba:
        attrs["prob_a"] = (-1 - rng.random(n_pairs)).tolist()
        attrs["prob_b"] = (rng.normal(size=n_pairs) / 5).tolist()
    return attrs


def _libsvm_coupling(k, r):
    """libsvm's multiclass_probability (Wu, Lin and Weng 2004, method 2) for one sample. The
    reference evaluator's version fills Q's off-diagonal with one dot product instead of
    -r[j, t] * r[t, j]; onnxruntime and scikit-learn follow libsvm."""
    q = np.empty((k, k))
    for t in range(k):
        q[t, t] = sum(r[j, t] ** 2 for j in range(k) if j != t)
        for j in range(k):
            if j != t:
                q[t, j] = -r[j, t] * r[t, j]
    p = np.full(k, 1.0 / k)
    for _ in range(max(100, k)):
        qp = q @ p
        pqp = p @ qp
        if np.abs(qp - pqp).max() < 0.005 / k:
            break
        for t in range(k):
            diff = (-qp[t] + pqp) / q[t, t]
            p[t] += diff
            pqp = (pqp + diff * (diff * q[t, t] + 2 * qp[t])) / (1 + diff) ** 2
            p /= 1 + diff
            qp = (qp + diff * q[t, :]) / (1 + diff)
    return p


@pytest.fixture
def libsvm_reference(monkeypatch):
    from onnx.reference.ops.aionnxml import op_svm_classifier

    monkeypatch.setattr(op_svm_classifier, "multiclass_probability", _libsvm_coupling)


@pytest.mark.parametrize("kernel,params", KERNELS)
@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("proba", [False, True])
def test_svm_classifier(kernel, params, n_classes, proba, libsvm_reference):
    rng = np.random.default_rng(100 + n_classes)
    attrs = _svc_attrs(rng, n_classes, 3, kernel, params, proba, "ints")
    x = rng.normal(size=(25, 3)).astype(np.float32)
    check_ml("SVMClassifier", x, attrs, 1, n_outputs=2, rtol=1e-4)


@pytest.mark.parametrize("post", ["LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"])
def test_svm_classifier_binary_post_transform(post):
    rng = np.random.default_rng(110)
    attrs = _svc_attrs(rng, 2, 3, "RBF", [0.5, 0, 0], False, "ints")
    attrs["post_transform"] = post
    # binary without probabilities: onnxruntime writes [1 - s, s] (LOGISTIC: logistic of both)
    check_ort("SVMClassifier", rng.normal(size=(12, 3)).astype(np.float32), attrs, 1, n_outputs=2)


def test_svm_classifier_string_labels_multiclass(libsvm_reference):
    rng = np.random.default_rng(111)
    attrs = _svc_attrs(rng, 3, 2, "RBF", [0.5, 0, 0], True, "strings")
    x = rng.normal(size=(12, 2)).astype(np.float32)
    check_ml("SVMClassifier", x, attrs, 1, n_outputs=2, rtol=1e-4)


def test_svm_classifier_linear_mode():
    rng = np.random.default_rng(112)
    attrs = {
        "coefficients": rng.normal(size=3 * 4).tolist(),
        "rho": [0.1],
        "classlabels_ints": [0, 1, 2],
        "post_transform": "SOFTMAX",
        "kernel_type": "LINEAR",  # onnxruntime requires both attributes even in linear mode
        "kernel_params": [0.0, 0.0, 0.0],
    }
    check_ort("SVMClassifier", rng.normal(size=(10, 4)).astype(np.float32), attrs, 1, n_outputs=2)


def test_tree_ensemble_rejects_unknown_mode():
    rng = np.random.default_rng(120)
    attrs = legacy_ensemble(rng, 1, 2, 1, "target")
    attrs["nodes_modes"] = ["BRANCH_XX" if m != "LEAF" else m for m in attrs["nodes_modes"]]
    model, feeds = _ml_model("TreeEnsembleRegressor", _features(rng, 3, 2), attrs, 3, 1)
    with pytest.raises(Exception, match="nodes_modes"):
        run_cpu(model, feeds)


def test_random_ensembles_pass_the_checker():
    """The random-tree generators give nodes that onnx's schema check accepts."""
    rng = np.random.default_rng(0)
    for op, attrs, version in (
        ("TreeEnsemble", ensemble_5(rng, 3, 3, 2, np.float32), 5),
        ("TreeEnsembleRegressor", legacy_ensemble(rng, 2, 3, 1, "target"), 3),
    ):
        ctx = onnx.checker.C.CheckerContext()
        ctx.ir_version = onnx.IR_VERSION
        ctx.opset_imports = {"": 17, ML: version}
        onnx.checker.check_node(helper.make_node(op, ["x"], ["y"], domain=ML, **attrs), ctx)


# -- data plumbing and maps, against onnxruntime ---------------------------------------------------
@pytest.mark.parametrize(
    "shape, n",
    [((5, 4), 4), ((4,), 4), ((2, 3, 4), 3), ((5, 4), 1)],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_scaler_per_feature_values(shape, n, dtype):
    """Per-feature offset/scale apply along dim 1 (dim 0 of a 1-D input), as onnxruntime does."""
    rng = np.random.default_rng(130)
    x = (rng.normal(size=shape) * 4).astype(dtype)
    attrs = {"offset": rng.normal(size=n).tolist(), "scale": rng.normal(size=n).tolist()}
    check_ort("Scaler", x, attrs, 1)


@pytest.mark.parametrize("n_values", [4, 1, 2])
@pytest.mark.parametrize("shape", [(5, 4), (4,)])
def test_imputer_value_count(n_values, shape):
    """One imputed value per feature, or else onnxruntime's rule: the first value everywhere."""
    rng = np.random.default_rng(131)
    x = rng.integers(-2, 3, size=shape).astype(np.float32)
    x[x == 1] = np.nan
    attrs = {
        "imputed_value_floats": rng.normal(size=n_values).tolist(),
        "replaced_value_float": 0.0,
    }
    check_ort("Imputer", x, attrs, 1)
    attrs["replaced_value_float"] = float("nan")
    check_ort("Imputer", x, attrs, 1)


@pytest.mark.parametrize(
    "keys, values",
    [
        (np.array(["a", "b", "c"], object), np.array([1, 2, 3], np.int64)),
        (np.array([1, 2, 3], np.int64), np.array(["x", "y", "z"], object)),
        (np.array([0.5, 1.5, np.nan], np.float32), np.array([1, 2, 3], np.int64)),
        (np.array(["a", "b"], object), np.array([0.5, 1.5], np.float32)),
        (np.array([0.5, 1.5], np.float64), np.array([2.5, 3.5], np.float64)),
        (np.array(["a", "b"], object), np.array([7, 8], np.int16)),
    ],
)
def test_label_encoder_v4_tensor_pairs(keys, values):
    x = np.concatenate([keys, keys[:1]]) if keys.dtype == object else np.append(keys, 99)
    if keys.dtype.kind == "f":
        x = np.append(x, np.nan).astype(keys.dtype)
    attrs = {
        "keys_tensor": numpy_helper.from_array(keys, "keys"),
        "values_tensor": numpy_helper.from_array(values, "values"),
    }
    check_ort("LabelEncoder", x.reshape(1, -1), attrs, 4)


@pytest.mark.parametrize(
    "labels",
    [["a", "b", "c"], [4, 7, 9], ["only"], [3], ["a", "b", "a"], list(range(64)), list(range(70))],
    ids=["strings", "ints", "one-string", "one-int", "repeated", "64", "70"],
)
@pytest.mark.parametrize("shape", [(5,), (3,), (0,)], ids=["5-rows", "one-row", "no-rows"])
def test_zip_map(labels, shape):
    """ZipMap's dicts, built by code generated for up to 64 labels and by ``zip`` above, as
    onnxruntime's: keys in order, a repeated label keeping its last score."""
    key = "classlabels_strings" if isinstance(labels[0], str) else "classlabels_int64s"
    shape = (*shape, len(labels)) if shape != (3,) else (len(labels),)
    x = np.random.default_rng(132).random(shape).astype(np.float32)
    (got,) = check_ort("ZipMap", x, {key: labels}, 1)
    assert all(type(k) is type(labels[0]) for row in got for k in row)
    assert all(type(v) is float for row in got for v in row.values())


def _map_model(op_type, key, value, out, attrs):
    node = helper.make_node(op_type, ["x"], ["y"], domain=ML, **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_value_info("x", helper.make_map_type_proto(key, value))],
        [helper.make_value_info("y", out)],
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid(ML, 3)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model.SerializeToString()


def _same_as_onnxruntime(model: bytes, feed: dict) -> list:
    ort = pytest.importorskip("onnxruntime")
    import ort_core

    expected = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feed)
    got = ort_core.InferenceSession(model).run(None, feed)
    for e, g in zip(expected, got):
        assert_same(e, g, 1e-6, 1e-6, "output")
    return got


_ZERO_TEXT = (
    "onnxruntime fills empty SPARSE string columns with the text '0.f'; ort-core '0.000000'"
)
CAST_MAP_CASES = [
    pytest.param(
        cast_to,
        form,
        marks=[pytest.mark.xfail(strict=True, reason=_ZERO_TEXT)]
        if cast_to == "TO_STRING" and form == ("SPARSE", 6)
        else [],
    )
    for cast_to in ("TO_FLOAT", "TO_INT64", "TO_STRING")
    for form in (("DENSE", 1), ("SPARSE", 6), ("SPARSE", 2))
]


@pytest.mark.parametrize("cast_to, form", CAST_MAP_CASES)
def test_cast_map(cast_to, form):
    """Keys in order; floats written as C's %f; SPARSE drops keys from max_map on."""
    map_form, max_map = form
    tt = helper.make_tensor_type_proto
    out = {"TO_FLOAT": TP.FLOAT, "TO_INT64": TP.INT64, "TO_STRING": TP.STRING}[cast_to]
    model = _map_model(
        "CastMap",
        TP.INT64,
        tt(TP.FLOAT, None),
        tt(out, None),
        {"cast_to": cast_to, "map_form": map_form, "max_map": max_map},
    )
    _same_as_onnxruntime(model, {"x": {3: 1.5, 1: 2.7, 0: -2.7, 4: 1 / 3}})


@pytest.mark.parametrize("key", ["str", "int"])
def test_dict_vectorizer(key):
    tt = helper.make_tensor_type_proto
    if key == "str":
        attrs, elem, feed = {"string_vocabulary": ["a", "b", "c"]}, TP.STRING, {"c": 2, "a": 0.5}
    else:
        attrs, elem, feed = {"int64_vocabulary": [5, 1, 3]}, TP.INT64, {3: 2.0, 7: 1.0}
    model = _map_model("DictVectorizer", elem, tt(TP.FLOAT, None), tt(TP.FLOAT, None), attrs)
    (y,) = _same_as_onnxruntime(model, {"x": feed})
    assert y.shape == (1, 3)
