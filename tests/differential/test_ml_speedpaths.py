"""scikit-learn models converted by skl2onnx on ort-core's CPU provider against onnxruntime: the
ai.onnx.ml kernels' fast paths (tree walks prepared at session creation, vectorised linear models
and SVMs, the plumbing of pipelines) must give onnxruntime's outputs, at batch 1 (the serving
case, its own code paths) and at larger batches.

Every test runs twice: with the compiled loops of ``ort_cpu.kernels._ml_jit`` (numba) and with
them off (the numpy paths), both against onnxruntime.

Tolerances: labels are compared exactly. Tree scores are added tree after tree in float32 as
onnxruntime adds them with one thread (the sessions here use one), so tree outputs match to the
last bits except where a transcendental function (exp in SOFTMAX/LOGISTIC) differs by an ulp
between numpy and the C library: rtol 1e-6, atol 1e-7 (one float32 ulp of 1 is 1.2e-7, the size
of the error of ``1 - p`` for p close to 1). Linear models and SVMs accumulate their dot products
in another order than onnxruntime's GEMM (MLAS), and SVM probabilities run libsvm's iterative
pairwise coupling, whose float32 result moves with those last bits: rtol 1e-5 there.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

import onnx  # noqa: E402
import skl2onnx.common.tree_ensemble as _tree_ensemble  # noqa: E402
from onnx import helper  # noqa: E402
from ort_cpu import _trees  # noqa: E402
from skl2onnx import to_onnx  # noqa: E402
from sklearn import (  # noqa: E402
    compose,
    datasets,
    ensemble,
    impute,
    linear_model,
    pipeline,
    preprocessing,
    svm,
)
from threadpoolctl import threadpool_limits  # noqa: E402

import ort_core  # noqa: E402

from .harness import spy_split_compiled, use_compiled  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),  # SVC(probability=True)
]

OPSETS = {"": 17, "ai.onnx.ml": 3}
BATCHES = (1, 7, 100, 0)
TREE_TOL = {"rtol": 1e-6, "atol": 1e-7}
LINEAR_TOL = {"rtol": 1e-5, "atol": 1e-6}


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def compiled(request, monkeypatch):
    """Sessions made in the test use the compiled kernels, or not (as with ORT_CPU_JIT=0)."""
    return use_compiled(monkeypatch, request.param == "compiled")


@pytest.fixture(autouse=True, scope="module")
def _hist_gradient_boosting_converts():
    """skl2onnx 1.20 hands onnx a bool for nodes_missing_value_tracks_true with this
    scikit-learn (onnx's make_node refuses it): give it the int it means."""
    original = _tree_ensemble.add_node

    def add_node(*args, nodes_missing_value_tracks_true=0, **kwargs):
        missing = int(nodes_missing_value_tracks_true)
        return original(*args, nodes_missing_value_tracks_true=missing, **kwargs)

    _tree_ensemble.add_node = add_node
    yield
    _tree_ensemble.add_node = original


def _classification(n_classes, seed=0, n=300, f=8):
    x, y = datasets.make_classification(
        n_samples=n, n_features=f, n_informative=5, n_redundant=0, n_classes=n_classes,
        random_state=seed,
    )  # fmt: skip
    return x.astype(np.float32), y


def _regression(seed=0, n=300, f=8):
    x, y = datasets.make_regression(n_samples=n, n_features=f, noise=0.5, random_state=seed)
    return x.astype(np.float32), (y / np.abs(y).max()).astype(np.float32)


def _sessions(onx):
    blob = onx.SerializeToString() if hasattr(onx, "SerializeToString") else onx
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1  # onnxruntime's sequential order of the tree sums
    expected = ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])
    got = ort_core.InferenceSession(blob, providers=["CPUExecutionProvider"])
    return expected, got


def _matrix(value, labels=None):
    if isinstance(value, list):  # ZipMap: a list of dicts
        if not value:
            return np.zeros((0, 0))
        labels = labels if labels is not None else list(value[0])
        return np.array([[d[c] for c in labels] for d in value], dtype=np.float64)
    return np.asarray(value)


def _compare(onx, x, tol, batches=BATCHES, walks=(None,)):
    """Both runtimes on rows drawn from ``x``, batch by batch; ``walks``: the tree walks to run
    ort-core's session with (None: the cost model's choice)."""
    expected, got = _sessions(onx)
    name = expected.get_inputs()[0].name
    rng = np.random.default_rng(1)
    for n in batches:
        rows = x[rng.choice(len(x), size=n, replace=n > len(x))]
        want = expected.run(None, {name: rows})
        for walk in walks:
            _trees.FORCE = walk
            try:
                have = got.run(None, {name: rows})
            finally:
                _trees.FORCE = None
            assert len(want) == len(have)
            for i, (w, h) in enumerate(zip(want, have)):
                where = f"output {i}, batch {n}, walk {walk}"
                if isinstance(w, list):
                    assert isinstance(h, list) and len(h) == len(w)
                    assert [list(d) for d in h] == [list(d) for d in w], where  # keys in order
                w, h = _matrix(w), _matrix(h)
                assert w.shape == h.shape, where
                if w.dtype.kind != "f":
                    np.testing.assert_array_equal(h, w, err_msg=where)
                else:
                    np.testing.assert_allclose(h, w, err_msg=where, **tol)


_FITTED: dict = {}


def _fit(key, make, x, y):
    """Fitted once per test module (scikit-learn's OpenMP pool on one thread: this machine is
    shared)."""
    if key not in _FITTED:
        with threadpool_limits(1):
            _FITTED[key] = make().fit(x, y)
    return _FITTED[key]


def _convert(model, x, zipmap=True):
    options = None if zipmap else {id(model): {"zipmap": False}}
    return to_onnx(model, x[:1], options=options, target_opset=OPSETS)


# -- tree ensembles --------------------------------------------------------------------------------
TREE_CLASSIFIERS = {
    "random_forest": lambda: ensemble.RandomForestClassifier(n_estimators=25, random_state=0),
    "extra_trees": lambda: ensemble.ExtraTreesClassifier(n_estimators=20, random_state=0),
    "gradient_boosting": lambda: ensemble.GradientBoostingClassifier(
        n_estimators=20, max_depth=3, random_state=0
    ),
    "hist_gradient_boosting": lambda: ensemble.HistGradientBoostingClassifier(
        max_iter=15, random_state=0
    ),
}
TREE_REGRESSORS = {
    "random_forest": lambda: ensemble.RandomForestRegressor(n_estimators=20, random_state=0),
    "extra_trees": lambda: ensemble.ExtraTreesRegressor(n_estimators=15, random_state=0),
    "gradient_boosting": lambda: ensemble.GradientBoostingRegressor(
        n_estimators=30, max_depth=4, random_state=0
    ),
    "hist_gradient_boosting": lambda: ensemble.HistGradientBoostingRegressor(
        max_iter=20, random_state=0
    ),
}
WALKS = (None, "super", "all", "levels")  # None: the cost model's choice


@pytest.mark.parametrize("zipmap", [True, False])
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("name", sorted(TREE_CLASSIFIERS))
def test_tree_classifier(name, n_classes, zipmap):
    x, y = _classification(n_classes, seed=n_classes)
    model = _fit((name, n_classes), TREE_CLASSIFIERS[name], x, y)
    _compare(_convert(model, x, zipmap), x, TREE_TOL, walks=WALKS if zipmap else (None,))


@pytest.mark.parametrize("name", sorted(TREE_REGRESSORS))
def test_tree_regressor(name):
    x, y = _regression(seed=3)
    model = _fit(("reg", name), TREE_REGRESSORS[name], x, y)
    _compare(_convert(model, x), x, TREE_TOL, walks=WALKS)


def test_forest_multi_target_regressor():
    x, y = _regression(seed=4)
    y2 = np.stack([y, -2 * y, y * y], axis=1)
    model = _fit(
        "multi", lambda: ensemble.RandomForestRegressor(n_estimators=12, random_state=0), x, y2
    )
    _compare(_convert(model, x), x, TREE_TOL, walks=WALKS)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_hist_gradient_boosting_with_missing_values(n_classes):
    """NaN inputs: the trees send them where scikit-learn learnt to (missing-value tracking)."""
    x, y = _classification(n_classes, seed=5)
    rng = np.random.default_rng(0)
    x[rng.random(x.shape) < 0.15] = np.nan
    model = _fit(
        ("hgb-nan", n_classes),
        lambda: ensemble.HistGradientBoostingClassifier(max_iter=12, random_state=0),
        x,
        y,
    )
    _compare(_convert(model, x), x, TREE_TOL, walks=WALKS)


@pytest.mark.parametrize("missing", [False, True], ids=["no-nan", "nan"])
def test_every_grouping_of_a_batchs_rows(missing):
    """Batches of 1 to 41 rows: the compiled walk takes rows 12 at a time down each tree and
    the 1 to 16 left over in groups of 12 or 8 (and fewer than 8 rows the trees of one row at
    a time), with and without a NaN in the batch; every row's leaves and sums must be
    onnxruntime's whatever group and lane it fell in (host logic of the compiled loops)."""
    x, y = _classification(3, seed=19)
    if missing:
        x[np.random.default_rng(2).random(x.shape) < 0.1] = np.nan
    model = _fit(
        ("groups", missing),
        lambda: ensemble.HistGradientBoostingClassifier(max_iter=6, random_state=0),
        x,
        y,
    )
    _compare(_convert(model, x, zipmap=False), x, TREE_TOL, batches=range(1, 42))
    forest = _fit("groups-forest", lambda: ensemble.RandomForestRegressor(8, random_state=0), x, y)
    _compare(_convert(forest, x), x, TREE_TOL, batches=range(1, 42))


@pytest.mark.parametrize(
    "base", [None, [0.1], [0.1, 0.7]], ids=["no-base", "one-base", "two-bases"]
)
@pytest.mark.parametrize("post", ["NONE", "LOGISTIC"])
def test_binary_one_column_with_base_values(compiled, base, post):
    """A two-class TreeEnsembleClassifier whose leaves weigh class 0 only, with no, one or two
    base values, against onnxruntime: bit for bit with compiled kernels (numpy's exp may differ
    by an ulp: TREE_TOL there). With two base values onnxruntime writes [score, 0] and LOGISTIC
    maps each column (the second to 0.5); the compiled binary column took LOGISTIC as the pair
    (logistic(-s), logistic(s)) and dropped the base values (labels right, scores 0.34 off)."""
    trees, leaves, weights = [], [], [0.3, -0.2, 0.5, 0.1, -0.4, 0.25]
    for t in range(3):  # stumps on feature t % 2
        trees += [(t, 0, t % 2, "BRANCH_LEQ", 0.5, 1, 2), (t, 1, 0, "LEAF", 0.0, 0, 0),
                  (t, 2, 0, "LEAF", 0.0, 0, 0)]  # fmt: skip
        leaves += [(t, 1), (t, 2)]
    tid, nid, feat, modes, vals, true, false = (list(c) for c in zip(*trees))
    attrs = dict(
        nodes_treeids=tid, nodes_nodeids=nid, nodes_featureids=feat, nodes_modes=modes,
        nodes_values=vals, nodes_truenodeids=true, nodes_falsenodeids=false,
        class_treeids=[t for t, _ in leaves], class_nodeids=[n for _, n in leaves],
        class_ids=[0] * len(leaves), class_weights=weights, classlabels_int64s=[0, 1],
        post_transform=post,
    )  # fmt: skip
    if base is not None:
        attrs["base_values"] = base
    node = helper.make_node("TreeEnsembleClassifier", ["x"], ["label", "probabilities"],
                            domain="ai.onnx.ml", **attrs)  # fmt: skip
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("label", onnx.TensorProto.INT64, [None]),
         helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [None, 2])],
    )  # fmt: skip
    onx = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in
                                                  OPSETS.items()])  # fmt: skip
    expected, got = _sessions(onx)
    x = np.random.default_rng(3).random((9, 2)).astype(np.float32)
    for n in (1, 9):
        (want_label, want), (label, have) = (s.run(None, {"x": x[:n]}) for s in (expected, got))
        np.testing.assert_array_equal(label, want_label)
        if compiled:
            np.testing.assert_array_equal(have, want)
        else:
            np.testing.assert_allclose(have, want, **TREE_TOL)


def test_forest_with_string_labels():
    x, y = _classification(3, seed=6)
    names = np.array(["ant", "bee", "cat"], dtype=object)[y]
    model = _fit(
        "strings",
        lambda: ensemble.RandomForestClassifier(n_estimators=10, random_state=0),
        x,
        names,
    )
    _compare(_convert(model, x), x, TREE_TOL)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ensemble.RandomForestClassifier(n_estimators=10, random_state=0),
        lambda: linear_model.LogisticRegression(max_iter=500),
    ],
    ids=["forest", "logistic"],
)
def test_integer_labels_other_than_the_class_indices(make):
    # the compiled paths return class indices as labels when the labels are 0 .. n-1; labels
    # 10, 20, 30 must come back as themselves, as onnxruntime gives them
    x, y = _classification(3, seed=7)
    model = _fit(("ints", make().__class__.__name__), make, x, (y + 1) * 10)
    _compare(_convert(model, x, zipmap=False), x, TREE_TOL)


def _as_tree_ensemble_5(onx):
    """The TreeEnsembleRegressor of ``onx`` rewritten as ai.onnx.ml 5 TreeEnsemble (one target,
    SUM): interior nodes and leaves in separate lists, children by index."""
    (node,) = [n for n in onx.graph.node if n.op_type == "TreeEnsembleRegressor"]
    a = {p.name: helper.get_attribute_value(p) for p in node.attribute}
    modes = [m.decode() for m in a["nodes_modes"]]
    keys = list(zip(a["nodes_treeids"], a["nodes_nodeids"]))
    weight = {
        (t, n): w for t, n, w in zip(a["target_treeids"], a["target_nodeids"], a["target_weights"])
    }
    interior = [k for k, m in zip(keys, modes) if m != "LEAF"]
    leaves = [k for k, m in zip(keys, modes) if m == "LEAF"]
    at = {k: i for i, k in enumerate(interior)}
    leaf_at = {k: i for i, k in enumerate(leaves)}
    rows = {k: i for i, k in enumerate(keys)}

    def child(tree, ids):
        out, is_leaf = [], []
        for k in interior:
            c = (tree[k], ids[rows[k]])
            is_leaf.append(int(c in leaf_at))
            out.append(leaf_at[c] if c in leaf_at else at[c])
        return out, is_leaf

    tree = {k: k[0] for k in keys}
    true, true_leaf = child(tree, a["nodes_truenodeids"])
    false, false_leaf = child(tree, a["nodes_falsenodeids"])
    roots = [at[k] for k in interior if k[1] == 0]
    f32 = np.float32
    new = helper.make_node(
        "TreeEnsemble",
        list(node.input),
        list(node.output),
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function=1,
        post_transform=0,
        tree_roots=roots,
        nodes_modes=helper.make_tensor("m", 2, [len(interior)], [0] * len(interior)),
        nodes_featureids=[a["nodes_featureids"][rows[k]] for k in interior],
        nodes_splits=helper.make_tensor(
            "s", 1, [len(interior)], [f32(a["nodes_values"][rows[k]]) for k in interior]
        ),
        nodes_truenodeids=true,
        nodes_trueleafs=true_leaf,
        nodes_falsenodeids=false,
        nodes_falseleafs=false_leaf,
        leaf_targetids=[0] * len(leaves),
        leaf_weights=helper.make_tensor("w", 1, [len(leaves)], [weight[k] for k in leaves]),
    )
    graph = helper.make_graph([new], "g", list(onx.graph.input), list(onx.graph.output))
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)],
        ir_version=10,
    )


def test_tree_ensemble_opset_5():
    x, y = _regression(seed=7)
    model = _fit(
        "v5", lambda: ensemble.GradientBoostingRegressor(n_estimators=15, max_depth=5), x, y
    )
    onx = _convert(model, x)
    _compare(_as_tree_ensemble_5(onx), x, TREE_TOL, walks=WALKS)


def test_large_batch_of_a_deep_forest():
    """A batch past the cost model's switch to the level walk, with compaction."""
    x, y = _classification(3, seed=8, n=600, f=12)
    model = _fit(
        "large", lambda: ensemble.RandomForestClassifier(n_estimators=30, random_state=0), x, y
    )
    _compare(_convert(model, x, zipmap=False), x, TREE_TOL, batches=(1, 500), walks=WALKS)


# -- linear models, SVMs, pipelines ----------------------------------------------------------------
LINEAR = {
    "logistic_regression": lambda: linear_model.LogisticRegression(max_iter=500),
    "linear_svc": lambda: svm.LinearSVC(max_iter=5000, random_state=0),
    "svc_rbf": lambda: svm.SVC(probability=True, random_state=0),
    "svc_poly": lambda: svm.SVC(kernel="poly", degree=2, probability=True, random_state=0),
    "svc_no_proba": lambda: svm.SVC(random_state=0),
}


@pytest.mark.parametrize("zipmap", [True, False])
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("name", sorted(LINEAR))
def test_linear_and_svm_classifiers(name, n_classes, zipmap):
    if name == "linear_svc" and not zipmap:
        pytest.skip("LinearSVC has no zipmap option: it outputs scores, no ZipMap")
    x, y = _classification(n_classes, seed=10 + n_classes)
    model = _fit((name, n_classes), LINEAR[name], x, y)
    _compare(_convert(model, x, zipmap), x, LINEAR_TOL)


@pytest.mark.parametrize(
    "model",
    [
        linear_model.LinearRegression,
        lambda: svm.SVR(C=3.0),
        lambda: svm.LinearSVR(max_iter=5000, random_state=0),
    ],
)
def test_linear_and_svm_regressors(model):
    x, y = _regression(seed=12)
    _compare(_convert(model().fit(x, y), x), x, LINEAR_TOL)


def _mixed(n=300, seed=0):
    """8 numeric columns with missing values, then 3 integer-coded categorical ones."""
    x, y = _classification(3, seed=seed, n=n)
    rng = np.random.default_rng(seed)
    num = x.copy()
    num[rng.random(num.shape) < 0.1] = np.nan
    cat = rng.integers(0, 5, size=(n, 3)).astype(np.float32)
    return np.concatenate([num, cat], axis=1), y


@pytest.mark.parametrize("final", ["logistic_regression", "random_forest"])
def test_pipeline_imputer_scaler_one_hot(final):
    x, y = _mixed()
    pre = compose.ColumnTransformer(
        [
            (
                "num",
                pipeline.make_pipeline(impute.SimpleImputer(), preprocessing.StandardScaler()),
                list(range(8)),
            ),
            ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), [8, 9, 10]),
        ]
    )
    clf = (
        linear_model.LogisticRegression(max_iter=500)
        if final == "logistic_regression"
        else ensemble.RandomForestClassifier(n_estimators=10, random_state=0)
    )
    model = pipeline.Pipeline([("pre", pre), ("clf", clf)]).fit(x, y)
    onx = to_onnx(model, x[:1], target_opset=OPSETS)
    x_new = x.copy()
    x_new[::7, 9] = 7  # a category the encoder never saw
    _compare(onx, x_new, TREE_TOL if final == "random_forest" else LINEAR_TOL)


def test_pipeline_scaler_normalizer_svc():
    x, y = _classification(3, seed=14)
    model = pipeline.make_pipeline(
        preprocessing.MinMaxScaler(),
        preprocessing.Normalizer(norm="l2"),
        svm.SVC(probability=True, random_state=0),
    ).fit(x, y)
    _compare(_convert(model, x), x, LINEAR_TOL)


# -- the compiled paths ----------------------------------------------------------------------------
def test_svc_rbf_exactly(compiled):
    """Compiled, the RBF SVC follows onnxruntime's order of operations: the same bits."""
    x, y = _classification(3, seed=15)
    model = _fit(("svc-exact", 3), lambda: svm.SVC(random_state=0), x, y)
    expected, got = _sessions(_convert(model, x, zipmap=False))
    for n in (1, 7, 100):
        want, have = expected.run(None, {"X": x[:n]}), got.run(None, {"X": x[:n]})
        np.testing.assert_array_equal(have[0], want[0])
        if compiled:
            np.testing.assert_array_equal(have[1], want[1])
        else:
            np.testing.assert_allclose(have[1], want[1], **LINEAR_TOL)


def test_svc_rbf_shares_its_rows_among_the_runs_threads(compiled, monkeypatch):
    """At two threads a batch with enough work (_ml_pieces.SVC_SPLIT_WORK) is scored a block
    of rows per thread (compiled pieces on the session's spinning pool), each row as the
    one-thread loop scores it: onnxruntime's bits, labels and scores; a single row, or one
    thread, stays on the calling thread."""
    from ort_cpu.kernels import _ml_pieces

    if not compiled:
        pytest.skip("the numpy SVM is not split")
    handed = spy_split_compiled(monkeypatch)
    x, y = _classification(3, seed=15)
    model = _fit(("svc-exact", 3), lambda: svm.SVC(random_state=0), x, y)
    blob = _convert(model, x, zipmap=False).SerializeToString()
    expected, _ = _sessions(blob)
    vectors = len(model.support_)
    split_from = -(-_ml_pieces.SVC_SPLIT_WORK // (vectors * (x.shape[1] + 16)))
    assert 100 >= split_from > 1
    for threads, batch, split in ((2, 100, True), (2, 1, False), (1, 100, False)):
        opts = ort_core.SessionOptions()
        opts.intra_op_num_threads = threads
        got = ort_core.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
        handed.clear()
        for _ in range(2):
            want, have = expected.run(None, {"X": x[:batch]}), got.run(None, {"X": x[:batch]})
            np.testing.assert_array_equal(have[0], want[0])
            np.testing.assert_array_equal(have[1], want[1])
        assert handed == ([(batch, 2, True)] * 2 if split else []), (threads, batch, handed)


def test_zipmap_gives_plain_python(compiled):
    """A list of new dicts per run, of Python keys and floats, as onnxruntime returns."""
    x, y = _classification(3, seed=16)
    model = _fit(("zipmap-types", 3), lambda: linear_model.LogisticRegression(max_iter=500), x, y)
    expected, got = _sessions(_convert(model, x))
    want = expected.run(None, {"X": x[:5]})[1]
    first = got.run(None, {"X": x[:5]})[1]
    assert type(first) is list and all(type(d) is dict for d in first)
    assert [[(type(k), type(v)) for k, v in d.items()] for d in first] == [
        [(type(k), type(v)) for k, v in d.items()] for d in want
    ]
    first[0][0] = "changed"
    again = got.run(None, {"X": x[:5]})[1]
    assert again[0][0] == want[0][0]


def test_forest_float64_input():
    """float64 inputs: thresholds and sums in float64, as onnxruntime's double kernels."""
    x, y = _regression(seed=17)
    model = _fit("f64", lambda: ensemble.RandomForestRegressor(10, random_state=0), x, y)
    onx = _convert(model, x)
    onx.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
    _compare(onx, x.astype(np.float64) / 3, TREE_TOL, walks=WALKS)


def test_compiled_walk_runs(compiled, monkeypatch):
    """With numba, tree ensembles walk with the compiled loop (not a numpy walk): batches too
    small to share among threads in one compiled call (Walker.block's), the others through
    Walker.walk_and_add."""
    calls = []
    original, original_block = _trees.Walker.walk_and_add, _trees.Walker.block

    def walk_and_add(self, *args, **kwargs):
        calls.append("walk_and_add")
        return original(self, *args, **kwargs)

    def block(self, *args):
        fn, made = original_block(self, *args)
        return (lambda *a: calls.append("one call") or fn(*a)), made

    monkeypatch.setattr(_trees.Walker, "walk_and_add", walk_and_add)
    monkeypatch.setattr(_trees.Walker, "block", block)
    x, y = _classification(2, seed=18)
    model = _fit(("walk", 2), TREE_CLASSIFIERS["hist_gradient_boosting"], x, y)
    _compare(_convert(model, x, zipmap=False), x, TREE_TOL, batches=(1, 9))
    assert bool(calls) == compiled


SHARED = {
    "forest_classifier": lambda: ensemble.RandomForestClassifier(n_estimators=40, random_state=0),
    "forest_regressor": lambda: ensemble.RandomForestRegressor(n_estimators=40, random_state=0),
    "hist_boosting": lambda: ensemble.HistGradientBoostingClassifier(max_iter=14, random_state=0),
    # two classes: one weight a leaf, to class 0 (the single-target sums)
    "binary_trees": lambda: ensemble.ExtraTreesClassifier(n_estimators=40, random_state=0),
}
#: trees of each model above (HistGradientBoosting: one per class and iteration)
SHARED_TREES = {
    "forest_classifier": 40, "forest_regressor": 40, "hist_boosting": 42, "binary_trees": 40
}  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(SHARED))
@pytest.mark.parametrize("by_rows", [False, True], ids=["by-trees", "by-rows"])
def test_compiled_walk_shares_the_trees_among_the_runs_threads(
    compiled, monkeypatch, name, dtype, by_rows
):
    """A batch of enough row-tree pairs is walked by the run's intra-op threads (compiled
    pieces on the session's spinning pool, ort_cpu._threads.split_compiled): a large forest a
    range of trees each, then summed a block of rows each; a small one a block of rows each,
    walked and summed in one piece. Either way onnxruntime's single-thread sums bit for bit
    (SUM, AVERAGE, base values; float32 and float64 inputs); one thread, or a small batch,
    walks on the calling thread."""
    from ort_cpu import _trees
    from ort_cpu.kernels import _ml_pieces

    if not compiled:
        pytest.skip("the numpy walks are not split")
    handed = spy_split_compiled(monkeypatch)
    monkeypatch.setattr(_ml_pieces, "ROWS_SPLIT_BYTES", 1 << 40 if by_rows else 0)
    classifier = name != "forest_regressor"
    classes = 2 if name == "binary_trees" else 3
    x, y = _classification(classes, seed=19, n=400) if classifier else _regression(seed=19, n=400)
    onx = _convert(_fit(("trees", name), SHARED[name], x, y), x, zipmap=not classifier)
    if dtype == np.float64:
        onx.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
    blob = onx.SerializeToString()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    expected = ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])
    input_name = expected.get_inputs()[0].name
    rows = (x / 3).astype(dtype)
    if name == "hist_boosting":  # NaNs, which its trees send where they learnt to
        rows[::7, 1] = np.nan
    want = expected.run(None, {input_name: rows})
    n_trees = SHARED_TREES[name]
    small = _trees.TREE_SPLIT_PAIRS // n_trees - 1  # rows below the threshold
    assert 400 * n_trees >= _trees.TREE_SPLIT_PAIRS > small * n_trees > 0
    for threads, batch, split_expected in ((2, 400, True), (1, 400, False), (2, small, False)):
        handed.clear()
        opts = ort_core.SessionOptions()
        opts.intra_op_num_threads = threads
        sess = ort_core.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
        for _ in range(3):
            have = sess.run(None, {input_name: rows[:batch]})
            for w, h in zip(want, have, strict=True):
                np.testing.assert_array_equal(h, w[:batch])
        if split_expected and by_rows:  # rows, walked and summed, on every run
            assert handed == [(batch, 2, True)] * 3, handed
        elif split_expected:  # trees, then rows, handed to the pool on every run
            assert handed == [(n_trees, 2, True), (batch, 2, True)] * 3, handed
        else:
            assert handed == [], (threads, batch, handed)


@pytest.mark.parametrize("n_targets", [1, 3, 6])
@pytest.mark.parametrize("track", [False, True])
def test_compiled_sums_of_leaves_that_weigh_every_target(compiled, n_targets, track):
    """Host logic of the compiled sums (``_ml_jit.add_leaves``) where every leaf gives every
    target a weight (a random forest classifier's probabilities): rows summed tree after tree
    in registers, four targets at a time, equal bit for bit to the same sums in numpy's order
    (``np.add.accumulate`` over the trees); every target marked scored."""
    if not compiled:
        pytest.skip("host logic of the compiled loops")
    from ort_cpu.kernels import _ml_jit

    rng = np.random.default_rng(7)
    n_leaves, n_trees, n = 50, 9, 11
    dense = rng.standard_normal((n_leaves, n_targets)).astype(np.float32)
    start = (np.arange(n_leaves + 1) * n_targets).astype(np.int32)
    target = np.tile(np.arange(n_targets, dtype=np.int32), n_leaves)
    leaves = rng.integers(0, n_leaves, (n, n_trees)).astype(np.int32)
    out = np.zeros((n, n_targets), np.float32)
    has = np.zeros((n, n_targets) if track else (0, 0), bool)
    base = rng.standard_normal(n_targets).astype(np.float32)
    add = _ml_jit.add_leaves.get()
    add(leaves, start, target, dense.reshape(-1), out, has, np.float32(3), base, 2, n)
    want = np.add.accumulate(dense[leaves[2:]], axis=1)[:, -1] / np.float32(3) + base
    np.testing.assert_array_equal(out[2:], want)
    assert not out[:2].any()  # rows outside r0..r1 untouched
    if track:
        assert has[2:].all() and not has[:2].any()


@pytest.mark.parametrize("n_targets", [2, 3, 5])
@pytest.mark.parametrize("track", [False, True])
def test_compiled_sums_of_a_round_robin(compiled, n_targets, track):
    """Host logic of the compiled sums (``_ml_jit.add_leaves``) of a round robin (gradient
    boosting's classes: every leaf of tree t gives one weight, to target t % C), marked by
    weights without targets: each target's trees summed in order, four rows at a time, equal
    bit for bit to the general path given the same weights with their targets written out."""
    if not compiled:
        pytest.skip("host logic of the compiled loops")
    from ort_cpu.kernels import _ml_jit

    rng = np.random.default_rng(8)
    n_trees, per_tree, n = 7 * n_targets, 6, 11
    n_leaves = n_trees * per_tree
    weight = rng.standard_normal(n_leaves).astype(np.float32)
    start = np.arange(n_leaves + 1, dtype=np.int32)
    target = (np.arange(n_leaves) // per_tree % n_targets).astype(np.int32)  # tree t's: t % C
    leaves = (np.arange(n_trees) * per_tree + rng.integers(0, per_tree, (n, n_trees))).astype(
        np.int32
    )
    base = rng.standard_normal(n_targets).astype(np.float32)
    add = _ml_jit.add_leaves.get()
    got, want = (np.zeros((n, n_targets), np.float32) for _ in range(2))
    got_has, want_has = (np.zeros((n, n_targets) if track else (0, 0), bool) for _ in range(2))
    add(leaves, start, target[:0], weight, got, got_has, np.float32(1), base, 3, n)
    add(leaves, start, target, weight, want, want_has, np.float32(1), base, 3, n)
    np.testing.assert_array_equal(got, want)
    assert not got[:3].any()  # rows outside r0..r1 untouched
    by_hand = weight[leaves[3:]].reshape(n - 3, 7, n_targets)
    np.testing.assert_array_equal(got[3:], np.add.accumulate(by_hand, axis=1)[:, -1] + base)
    if track:
        np.testing.assert_array_equal(got_has, want_has)
        assert got_has[3:].all()
