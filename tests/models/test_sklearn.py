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
