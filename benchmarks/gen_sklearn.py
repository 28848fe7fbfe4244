"""scikit-learn models converted with skl2onnx, as users deploy them (ai.onnx.ml opset 3).

Each model is fitted on a seeded synthetic data set (``make_classification``/``make_regression``) and
fed held-out rows of the same data set, at batch 1 and batch 100 (``<name>_b1``, ``<name>_b100``, one
model file). Classifiers are converted with ``zipmap`` off (probabilities as a tensor) and, for three
of them, on (``*_zipmap``: a list of {class: probability} maps, skl2onnx's default).

- ``rf_cls``: RandomForestClassifier, 100 fully grown trees, 20 features, 3 classes (+ ``_zipmap``)
- ``rf_reg``: RandomForestRegressor, 100 trees of depth 12, 20 features
- ``et_cls``: ExtraTreesClassifier, 200 trees of depth 12, 50 features, 2 classes
- ``et_reg``: ExtraTreesRegressor, 200 trees of depth 10, 50 features
- ``gb_cls``: GradientBoostingClassifier, 100 rounds x 3 classes = 300 trees of depth 3, 30 features
- ``gb_reg``: GradientBoostingRegressor, 200 trees of depth 3, 30 features
- ``hgb_cls``: HistGradientBoostingClassifier, 200 trees of 31 leaves, 30 features, 2 classes
- ``hgb_reg``: HistGradientBoostingRegressor, 200 trees of 31 leaves, 30 features
- ``logreg``: LogisticRegression, 100 features, 10 classes (+ ``_zipmap``)
- ``linsvc``: LinearSVC, 100 features, 10 classes
- ``svc_rbf``: SVC with an RBF kernel, 20 features, 2 classes (a few hundred support vectors)
- ``pipeline``: StandardScaler + PCA(16) + LogisticRegression, 64 features, 5 classes (+ ``_zipmap``)
"""

from __future__ import annotations

import contextlib
import functools
import warnings

import numpy as np
from zoo import Spec

KIND = "sklearn"
DEPENDS = ("zoo.py",)
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
N_TRAIN = 1000
BATCHES = (1, 100)


@functools.cache
def dataset(features: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) float32 rows: N_TRAIN to fit, then 100 held out to feed; classes 0 = regression."""
    from sklearn.datasets import make_classification, make_regression

    n = N_TRAIN + max(BATCHES)
    if classes:
        x, y = make_classification(
            n, features, n_informative=features // 2, n_classes=classes, random_state=seed
        )
    else:
        x, y = make_regression(
            n, features, n_informative=features // 2, noise=1.0, random_state=seed
        )
    return x.astype(np.float32), y


# name: (estimator factory, features, classes, seed)
def _estimators() -> dict:
    from sklearn import ensemble, linear_model, svm
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "rf_cls": (lambda: ensemble.RandomForestClassifier(100, random_state=0), 20, 3, 1),
        "rf_reg": (
            lambda: ensemble.RandomForestRegressor(100, max_depth=12, random_state=0),
            20,
            0,
            2,
        ),
        "et_cls": (
            lambda: ensemble.ExtraTreesClassifier(200, max_depth=12, random_state=0),
            50,
            2,
            3,
        ),
        "et_reg": (
            lambda: ensemble.ExtraTreesRegressor(200, max_depth=10, random_state=0),
            50,
            0,
            4,
        ),
        "gb_cls": (
            lambda: ensemble.GradientBoostingClassifier(n_estimators=100, random_state=0),
            30,
            3,
            5,
        ),
        "gb_reg": (
            lambda: ensemble.GradientBoostingRegressor(n_estimators=200, random_state=0),
            30,
            0,
            6,
        ),
        "hgb_cls": (
            lambda: ensemble.HistGradientBoostingClassifier(
                max_iter=200, early_stopping=False, random_state=0
            ),
            30,
            2,
            7,
        ),
        "hgb_reg": (
            lambda: ensemble.HistGradientBoostingRegressor(
                max_iter=200, early_stopping=False, random_state=0
            ),
            30,
            0,
            8,
        ),
        "logreg": (lambda: linear_model.LogisticRegression(max_iter=300), 100, 10, 9),
        "linsvc": (lambda: svm.LinearSVC(max_iter=2000), 100, 10, 10),
        "svc_rbf": (lambda: svm.SVC(kernel="rbf"), 20, 2, 11),
        "pipeline": (
            lambda: make_pipeline(
                StandardScaler(), PCA(16, random_state=0), linear_model.LogisticRegression()
            ),
            64,
            5,
            12,
        ),
    }


@functools.cache
def fitted(name: str):
    factory, features, classes, seed = _estimators()[name]
    x, y = dataset(features, classes, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: the fit only has to exist
        return factory().fit(x[:N_TRAIN], y[:N_TRAIN])


@contextlib.contextmanager
def _int_attributes():
    """skl2onnx 1.20 hands HistGradientBoosting's boolean per-node flags to onnx.helper as a list of
    Python bools, which onnx's protobuf rejects: cast such lists to ints while converting."""
    import skl2onnx.common._container as container

    make_node = container.make_node

    def fixed(*args, **kwargs):
        for k, v in kwargs.items():
            if isinstance(v, (list, tuple)) and any(isinstance(e, (bool, np.bool_)) for e in v):
                kwargs[k] = [int(e) for e in v]
        return make_node(*args, **kwargs)

    container.make_node = fixed
    try:
        yield
    finally:
        container.make_node = make_node


def convert(name: str, zipmap: bool):
    from skl2onnx import to_onnx

    model = fitted(name)
    _, features, classes, seed = _estimators()[name]
    x, _ = dataset(features, classes, seed)
    options = None
    if classes and name != "linsvc":  # LinearSVC has no probabilities, so no zipmap option
        final = model.steps[-1][1] if hasattr(model, "steps") else model
        options = {type(final): {"zipmap": zipmap}}
    with _int_attributes(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onx = to_onnx(model, x[:1], target_opset=TARGET_OPSET, options=options)
    onx.graph.name = name
    return onx


def feed(name: str, batch: int) -> dict[str, np.ndarray]:
    _, features, classes, seed = _estimators()[name]
    x, _ = dataset(features, classes, seed)
    return {"X": x[N_TRAIN : N_TRAIN + batch]}


def _specs() -> dict[str, Spec]:
    out = {}
    zipmapped = ("rf_cls", "logreg", "pipeline")
    for name in (
        "rf_cls",
        "rf_reg",
        "et_cls",
        "et_reg",
        "gb_cls",
        "gb_reg",
        "hgb_cls",
        "hgb_reg",
        "logreg",
        "linsvc",
        "svc_rbf",
        "pipeline",
    ):
        for zipmap in (False, True) if name in zipmapped else (False,):
            base = name + ("_zipmap" if zipmap else "")
            for batch in BATCHES:
                out[f"{base}_b{batch}"] = Spec(
                    base,
                    functools.partial(convert, name, zipmap),
                    functools.partial(feed, name, batch),
                    f"batch {batch}",
                )
    return out


MODELS = _specs()
