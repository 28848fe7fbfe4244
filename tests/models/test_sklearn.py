"""Fitted scikit-learn models converted with skl2onnx: ort-core's outputs must match
scikit-learn's own predict / predict_proba / transform (labels exactly, scores closely).

Small synthetic datasets only; the whole file runs in a few seconds."""

from __future__ import annotations

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
skl2onnx = pytest.importorskip("skl2onnx")

from skl2onnx import to_onnx  # noqa: E402
from sklearn import (  # noqa: E402
    cluster,
    compose,
    datasets,
    ensemble,
    linear_model,
    neighbors,
    neural_network,
    pipeline,
    preprocessing,
    svm,
    tree,
)

import ort_core  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore:.*probability.*:FutureWarning"),  # SVC(probability=True)
]


def _session(model, x, options=None):
    onx = to_onnx(model, x[:1], options=options or {}, target_opset={"": 17, "ai.onnx.ml": 3})
    return ort_core.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])


def _classification(n_classes=3, seed=0):
    x, y = datasets.make_classification(
        n_samples=160,
        n_features=6,
        n_informative=4,
        n_redundant=0,
        n_classes=n_classes,
        random_state=seed,
    )
    return x.astype(np.float32), y


def _regression(n_targets=1, seed=0):
    x, y = datasets.make_regression(
        n_samples=160, n_features=5, n_targets=n_targets, noise=0.1, random_state=seed
    )
    return x.astype(np.float32), y


def _proba_matrix(proba, classes) -> np.ndarray:
    """skl2onnx's probabilities as a [N, C] array, from a ZipMap list of dicts or a tensor."""
    if isinstance(proba, list):
        assert all(isinstance(d, dict) for d in proba)
        return np.array([[d[c] for c in classes] for d in proba], dtype=np.float64)
    return np.asarray(proba, dtype=np.float64)


def check_classifier(model, x, *, zipmap=True):
    sess = _session(model, x, None if zipmap else {id(model): {"zipmap": False}})
    labels, proba = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_array_equal(labels, model.predict(x))
    classes = model.classes_.tolist()
    if zipmap:
        assert isinstance(proba, list)
    got = _proba_matrix(proba, classes)
    np.testing.assert_allclose(got, model.predict_proba(x), rtol=RTOL, atol=ATOL)


def check_regressor(model, x, rtol=RTOL, atol=ATOL):
    sess = _session(model, x)
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x})
    expected = model.predict(x)
    np.testing.assert_allclose(y.reshape(expected.shape), expected, rtol=rtol, atol=atol)


# -- classifiers -----------------------------------------------------------------------------------
CLASSIFIERS = {
    "random_forest": lambda: ensemble.RandomForestClassifier(
        n_estimators=10, max_depth=6, random_state=0
    ),
    "extra_trees": lambda: ensemble.ExtraTreesClassifier(
        n_estimators=8, max_depth=5, random_state=0
    ),
    "gradient_boosting": lambda: ensemble.GradientBoostingClassifier(
        n_estimators=15, max_depth=3, random_state=0
    ),
    "decision_tree": lambda: tree.DecisionTreeClassifier(max_depth=5, random_state=0),
    "logistic_regression": lambda: linear_model.LogisticRegression(max_iter=500),
    "svc": lambda: svm.SVC(probability=True, random_state=0),
    "svc_linear": lambda: svm.SVC(kernel="linear", probability=True, random_state=0),
    "svc_poly": lambda: svm.SVC(kernel="poly", degree=2, probability=True, random_state=0),
    "mlp": lambda: neural_network.MLPClassifier(
        hidden_layer_sizes=(8,), max_iter=300, random_state=0
    ),
    "knn": lambda: neighbors.KNeighborsClassifier(n_neighbors=3),
}


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifier(name, n_classes):
    x, y = _classification(n_classes)
    model = CLASSIFIERS[name]().fit(x, y)
    check_classifier(model, x)


@pytest.mark.parametrize(
    "name", ["random_forest", "gradient_boosting", "logistic_regression", "svc"]
)
def test_classifier_without_zipmap(name):
    x, y = _classification(3, seed=1)
    model = CLASSIFIERS[name]().fit(x, y)
    check_classifier(model, x, zipmap=False)


def test_classifier_with_string_labels():
    x, y = _classification(3, seed=2)
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    model = ensemble.RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0)
    check_classifier(model.fit(x, names), x)


def test_svc_decision_function_labels():
    """SVC without probabilities: labels come from the one-vs-one votes."""
    x, y = _classification(4, seed=3)
    model = svm.SVC(random_state=0).fit(x, y)
    sess = _session(model, x)
    labels = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_array_equal(labels, model.predict(x))


# -- regressors ------------------------------------------------------------------------------------
REGRESSORS = {
    "random_forest": lambda: ensemble.RandomForestRegressor(
        n_estimators=10, max_depth=6, random_state=0
    ),
    "gradient_boosting": lambda: ensemble.GradientBoostingRegressor(
        n_estimators=20, max_depth=3, random_state=0
    ),
    "decision_tree": lambda: tree.DecisionTreeRegressor(max_depth=6, random_state=0),
    "linear_regression": lambda: linear_model.LinearRegression(),
    "ridge": lambda: linear_model.Ridge(alpha=0.5),
    "svr": lambda: svm.SVR(C=10.0),
    "svr_linear": lambda: svm.LinearSVR(max_iter=5000, random_state=0),
    "mlp": lambda: neural_network.MLPRegressor(
        hidden_layer_sizes=(8,), max_iter=300, random_state=0
    ),
}


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_regressor(name):
    x, y = _regression()
    y = y / np.abs(y).max()  # keep SVR and MLP targets small
    model = REGRESSORS[name]().fit(x, y)
    check_regressor(model, x, rtol=1e-4, atol=1e-4)


def test_multi_target_forest_regressor():
    x, y = _regression(n_targets=3)
    model = ensemble.RandomForestRegressor(n_estimators=6, max_depth=5, random_state=0).fit(x, y)
    check_regressor(model, x, rtol=1e-4, atol=1e-3)


def test_one_class_svm():
    x, _ = _classification(2)
    model = svm.OneClassSVM(gamma=0.1, nu=0.2).fit(x)
    sess = _session(model, x)
    outputs = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_array_equal(outputs[0].reshape(-1), model.predict(x))
    np.testing.assert_allclose(
        outputs[1].reshape(-1), model.decision_function(x), rtol=1e-4, atol=1e-4
    )


# -- transformers and clustering -------------------------------------------------------------------
def test_kmeans():
    x, _ = _classification(3)
    model = cluster.KMeans(n_clusters=4, n_init=2, random_state=0).fit(x)
    sess = _session(model, x)
    labels, distances = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_array_equal(labels, model.predict(x))
    np.testing.assert_allclose(distances, model.transform(x), rtol=1e-4, atol=1e-4)


TRANSFORMERS = {
    "standard": preprocessing.StandardScaler,
    "minmax": preprocessing.MinMaxScaler,
    "maxabs": preprocessing.MaxAbsScaler,
    "normalizer_l2": lambda: preprocessing.Normalizer(norm="l2"),
    "normalizer_l1": lambda: preprocessing.Normalizer(norm="l1"),
    # ONNX's Normalizer MAX divides by the row's largest value, scikit-learn by the largest
    # absolute value (onnxruntime too gives the former): they agree on non-negative rows
    "normalizer_max": lambda: preprocessing.Normalizer(norm="max"),
    "binarizer": lambda: preprocessing.Binarizer(threshold=0.2),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_transformer(name):
    x, _ = _classification(3)
    if name == "normalizer_max":
        x = np.abs(x)
    model = TRANSFORMERS[name]().fit(x)
    sess = _session(model, x)
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_allclose(y, model.transform(x), rtol=RTOL, atol=ATOL)


def _mixed_data(n=150, seed=0):
    """Numeric columns, string categories, integer categories and a binary label."""
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(n, 3)).astype(np.float32)
    color = rng.choice(["red", "green", "blue"], size=(n, 2)).astype(object)
    size = rng.integers(0, 4, size=(n, 2)).astype(np.float32)
    y = (num[:, 0] + (color[:, 0] == "red") + 0.5 * size[:, 0] - (color[:, 1] == "blue")) > 1.0
    return num, color, size, y.astype(np.int64)


def test_pipeline_with_column_transformer():
    """ColumnTransformer(StandardScaler on numeric columns, OneHotEncoder on categorical ones)
    then a classifier, on one float tensor."""
    num, _, size, y = _mixed_data()
    x = np.concatenate([num, size], axis=1)
    pre = compose.ColumnTransformer(
        [
            ("num", preprocessing.StandardScaler(), [0, 1, 2]),
            ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), [3, 4]),
        ]
    )
    model = pipeline.Pipeline(
        [("pre", pre), ("clf", ensemble.RandomForestClassifier(n_estimators=8, random_state=0))]
    )
    check_classifier(model.fit(x, y), x)


def test_pipeline_with_string_and_numeric_inputs():
    """Two named inputs, strings one-hot encoded and numbers scaled, then LogisticRegression."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    num, color, _, y = _mixed_data(seed=1)
    pre = compose.ColumnTransformer(
        [
            ("num", preprocessing.StandardScaler(), [0, 1, 2]),
            ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), [3, 4]),
        ]
    )
    model = pipeline.Pipeline(
        [("pre", pre), ("clf", linear_model.LogisticRegression(max_iter=500))]
    )
    frame = np.concatenate([num.astype(object), color], axis=1)
    model.fit(frame, y)
    onx = skl2onnx.convert_sklearn(
        model,
        initial_types=[("num", FloatTensorType([None, 3])), ("cat", StringTensorType([None, 2]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    sess = ort_core.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, proba = sess.run(None, {"num": num, "cat": color})
    np.testing.assert_array_equal(labels, model.predict(frame))
    got = _proba_matrix(proba, model.classes_.tolist())
    np.testing.assert_allclose(got, model.predict_proba(frame), rtol=RTOL, atol=ATOL)


def test_pipeline_scaler_pca_svc():
    from sklearn.decomposition import PCA

    x, y = _classification(3, seed=4)
    model = pipeline.make_pipeline(
        preprocessing.StandardScaler(),
        PCA(n_components=4),
        svm.SVC(probability=True, random_state=0),
    ).fit(x, y)
    check_classifier(model, x)


# -- models onnx's shape inference cannot type on its own ------------------------------------------
#
# skl2onnx's decision_path option feeds a TreeEnsembleRegressor of ai.onnx.ml opset 1/2 (onnx has no
# inference for it, so its output is untyped) into a LabelEncoder, whose onnx inference then
# dereferences the missing type and kills the process. ort-core hides such nodes from onnx
# (ort_core/ir/_infer.py); each model is loaded in a fresh interpreter first, so that a regression
# is a failing test instead of a dead pytest worker.


def _loads_in_subprocess(onx, tmp_path) -> str:
    import os
    import subprocess
    import sys

    path = str(tmp_path / "model.onnx")
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    code = (
        f"import ort_core; ort_core.InferenceSession({path!r}, providers=['CPUExecutionProvider'])"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, f"loading the model failed (exit status {r.returncode}):\n{r.stderr}"
    return path


def _decision_path_strings(model, x) -> np.ndarray:
    """scikit-learn's decision path as skl2onnx encodes it: one '0'/'1' string per tree, a
    character per node."""
    indicator = model.decision_path(x)
    if isinstance(indicator, tuple):  # forests: (indicator, where each tree's nodes start)
        indicator, starts = indicator
    else:
        starts = [0, indicator.shape[1]]
    dense = indicator.toarray()
    return np.array(
        [
            [
                "".join(str(v) for v in row[starts[t] : starts[t + 1]])
                for t in range(len(starts) - 1)
            ]
            for row in dense
        ],
        dtype=object,
    )


DECISION_PATH_MODELS = {
    "tree_regressor": lambda: tree.DecisionTreeRegressor(max_depth=4, random_state=0),
    "tree_classifier": lambda: tree.DecisionTreeClassifier(max_depth=4, random_state=0),
    "forest_classifier": lambda: ensemble.RandomForestClassifier(
        n_estimators=3, max_depth=3, random_state=0
    ),
}


def _decision_path_session(name, tmp_path):
    classifier = "classifier" in name
    x, y = _classification(3) if classifier else _regression()
    model = DECISION_PATH_MODELS[name]().fit(x, y)
    options = {"decision_path": True, **({"zipmap": False} if classifier else {})}
    onx = to_onnx(
        model, x[:1], options={id(model): options}, target_opset={"": 17, "ai.onnx.ml": 5}
    )
    path = _loads_in_subprocess(onx, tmp_path)
    sess = ort_core.InferenceSession(path, providers=["CPUExecutionProvider"])
    return model, x, dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"X": x})))


@pytest.mark.parametrize("name", sorted(DECISION_PATH_MODELS))
def test_decision_path(name, tmp_path):
    """decision_path=True (without ZipMap: skl2onnx refuses the two together)."""
    model, x, outputs = _decision_path_session(name, tmp_path)
    want = _decision_path_strings(model, x)
    if "classifier" in name:
        np.testing.assert_array_equal(outputs["label"], model.predict(x))
        np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(x), rtol=RTOL)
    else:
        np.testing.assert_allclose(outputs["variable"].ravel(), model.predict(x), rtol=RTOL)
        np.testing.assert_array_equal(outputs["decision_path"], want)
    assert outputs["decision_path"].shape == want.shape
    assert outputs["decision_path"].dtype == object


@pytest.mark.parametrize("name", ["forest_classifier", "tree_classifier"])
def test_decision_path_strings_of_classifiers(name, tmp_path):
    """skl2onnx's decision path for classifiers gives each leaf one weight per class, all equal
    to the node id, and relies on onnxruntime keeping a single-target leaf's first weight."""
    model, x, outputs = _decision_path_session(name, tmp_path)
    np.testing.assert_array_equal(outputs["decision_path"], _decision_path_strings(model, x))


@pytest.mark.parametrize("name", ["decision_tree", "random_forest", "gradient_boosting"])
def test_tree_regressor_at_ml_opset_1(name, tmp_path):
    """TreeEnsembleRegressor-1 has no onnx inference: ort-core types its output itself."""
    x, y = _regression()
    model = REGRESSORS[name]().fit(x, y)
    onx = to_onnx(model, x[:1], target_opset={"": 17, "ai.onnx.ml": 1})
    path = _loads_in_subprocess(onx, tmp_path)
    graph = ort_core.ir.load_model(path).graph
    assert [o for n in graph.nodes for o in n.outputs if graph.type_of(o) is None] == []
    sess = ort_core.InferenceSession(path, providers=["CPUExecutionProvider"])
    (y_onnx,) = sess.run(None, {"X": x})
    np.testing.assert_allclose(y_onnx.ravel(), model.predict(x), rtol=1e-4, atol=1e-3)


def test_ml_ops_without_onnx_inference_are_typed():
    """Imputer, Scaler, Normalizer and LinearRegressor have no onnx inference function: every
    value of the pipeline still gets a type (from ort-core's own rules)."""
    from sklearn import impute

    x, y = _regression()
    x[0, 1] = np.nan
    model = pipeline.make_pipeline(
        impute.SimpleImputer(),
        preprocessing.StandardScaler(),
        preprocessing.Normalizer(),
        linear_model.LinearRegression(),
    ).fit(x, y)
    onx = to_onnx(model, x[:1], target_opset={"": 17, "ai.onnx.ml": 3})
    graph = ort_core.ir.load_model(onx).graph
    untyped = [o for n in graph.nodes for o in n.outputs if o and graph.type_of(o) is None]
    assert untyped == []
    assert [n.op_type for n in graph.nodes] == [
        "Imputer",
        "Scaler",
        "Normalizer",
        "LinearRegressor",
    ]
    sess = ort_core.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    (y_onnx,) = sess.run(None, {"X": x})
    np.testing.assert_allclose(y_onnx.ravel(), model.predict(x), rtol=1e-4, atol=1e-4)


# -- inputs and outputs as onnxruntime users see them ----------------------------------------------
def test_dict_vectorizer_fed_one_dict_per_run():
    """DictVectorizer's input is one map: each row is its own run, with str or int keys."""
    from skl2onnx.common.data_types import (
        DictionaryType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
    from sklearn.feature_extraction import DictVectorizer

    for keys, rows in (
        (StringTensorType([1]), [{"amy": 1.0, "chin": 200.0}, {"nice": 3.0, "amy": 1.5}]),
        (Int64TensorType([1]), [{1: 1.0, 2: 200.0}, {1: 3.0, 3: 1.0}, {}]),
    ):
        model = DictVectorizer(sparse=False).fit(rows)
        onx = skl2onnx.convert_sklearn(
            model,
            initial_types=[("input", DictionaryType(keys, FloatTensorType([1])))],
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        sess = ort_core.InferenceSession(onx.SerializeToString())
        for row in rows:
            (y,) = sess.run(None, {"input": row})
            assert y.dtype == np.float32 and y.shape == (1, len(model.feature_names_))
            np.testing.assert_allclose(y, model.transform([row]), rtol=RTOL)
        with pytest.raises(ort_core.errors.InvalidArgument, match="one dict"):
            sess.run(None, {"input": rows})


def test_zipmap_output_is_a_list_of_python_dicts():
    x, y = _classification(3, seed=5)
    for labels in (y, np.array(["a", "b", "c"], dtype=object)[y]):
        model = linear_model.LogisticRegression(max_iter=500).fit(x, labels)
        sess = _session(model, x)
        out_labels, proba = sess.run(None, {sess.get_inputs()[0].name: x[:4]})
        assert isinstance(proba, list) and len(proba) == 4
        key_type = type(model.classes_.tolist()[0])
        for row in proba:
            assert isinstance(row, dict)
            assert {type(k) for k in row} == {key_type}
            assert {type(v) for v in row.values()} == {float}
        if out_labels.dtype == object:
            assert {type(s) for s in out_labels} == {str}


def test_string_inputs_in_every_numpy_form():
    """A string input takes <U, |S and object arrays and nested lists alike (bytes arrays are
    decoded as UTF-8)."""
    from skl2onnx.common.data_types import StringTensorType

    words = np.array([["red"], ["blue"], ["green"], ["blue"]], dtype=object)
    model = preprocessing.OneHotEncoder(handle_unknown="ignore").fit(words)
    onx = skl2onnx.convert_sklearn(
        model,
        initial_types=[("input", StringTensorType([None, 1]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    sess = ort_core.InferenceSession(onx.SerializeToString())
    expected = model.transform(words).toarray()
    for fed in (words, words.astype(str), words.astype(bytes), words.tolist()):
        (got,) = sess.run(None, {"input": fed})
        np.testing.assert_allclose(got, expected)


def test_label_encoder_strings():
    from skl2onnx.common.data_types import StringTensorType

    model = preprocessing.LabelEncoder().fit(["paris", "tokyo", "amsterdam", "paris"])
    onx = skl2onnx.convert_sklearn(
        model,
        initial_types=[("input", StringTensorType([None]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    sess = ort_core.InferenceSession(onx.SerializeToString())
    fed = np.array(["tokyo", "paris", "amsterdam"])
    (got,) = sess.run(None, {"input": fed})
    np.testing.assert_array_equal(got, model.transform(fed))
    assert got.dtype == np.int64


def test_one_class_random_forest():
    """Trained on a single class: onnxruntime writes one probability column (label 1 = the
    positive side of the score), and the ZipMap keeps the one label."""
    x, _ = _classification(2, seed=6)
    model = ensemble.RandomForestClassifier(n_estimators=3, random_state=0)
    model.fit(x, np.zeros(len(x), dtype=np.int64))
    sess = _session(model, x)
    labels, proba = sess.run(None, {sess.get_inputs()[0].name: x[:5]})
    assert proba == [{0: 1.0}] * 5
    np.testing.assert_allclose(_proba_matrix(proba, [0]), model.predict_proba(x[:5]))


@pytest.mark.parametrize("loss", ["exponential", "log_loss"])
def test_binary_gradient_boosting_losses(loss):
    """One score per sample turned into two columns: [-s, s] before the sigmoid."""
    x, y = _classification(2, seed=7)
    model = ensemble.GradientBoostingClassifier(loss=loss, n_estimators=10, random_state=0)
    check_classifier(model.fit(x, y), x)


def test_binary_forest_ties_break_like_scikit_learn():
    """An even number of fully grown trees gives probabilities of exactly 0.5: the label is then
    the first class, as in scikit-learn (scores summed in float32, as onnxruntime sums them, keep
    the tie exact)."""
    x, y = _classification(2, seed=0)
    model = ensemble.RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    x_new = np.random.default_rng(0).normal(size=(200, x.shape[1])).astype(np.float32) * 2
    assert (model.predict_proba(x_new)[:, 1] == 0.5).sum() > 10
    check_classifier(model, x_new)
