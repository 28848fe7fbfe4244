"""Every model of the test corpus gives the same outputs at every optimization level.

The corpus: the backend suite's node, simple and PyTorch models (with their own inputs), the light
models of the onnx wheel, and the small BERT/GPT-2/ViT fixtures. Level DISABLE_ALL is the baseline;
BASIC, EXTENDED and ALL must match it within the case's tolerance.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import ort_core as ort
from ort_core.demo import LIGHT_MODELS, light_model_case

LEVELS = (
    ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
)
FIXTURES = Path(__file__).parents[1] / "models" / "fixtures"


def _suite_cases():
    import onnx.backend.test.loader as loader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = []
        for kind in ("node", "simple", "pytorch-converted", "pytorch-operator"):
            cases.extend(loader.load_model_tests(kind=kind))
    return cases


SUITE = _suite_cases()


def _session(model, level):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _compare(model, feed, rtol, atol, what):
    try:
        base = _session(model, ort.GraphOptimizationLevel.ORT_DISABLE_ALL).run(None, feed)
    except ort.errors.OrtError as e:
        pytest.skip(f"{what} does not run unoptimized either: {type(e).__name__}")
    for level in LEVELS:
        got = _session(model, level).run(None, feed)
        assert len(got) == len(base), f"{what} at {level.name}: {len(got)} outputs"
        for i, (a, b) in enumerate(zip(base, got)):
            _same(a, b, rtol, atol, f"{what} output {i} at {level.name}")


def _same(a, b, rtol, atol, what):
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), what
        for x, y in zip(a, b):
            _same(x, y, rtol, atol, what)
        return
    if isinstance(a, dict) or a is None:
        assert a == b if a is None else set(a) == set(b), what
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (
        f"{what}: {b.dtype}{b.shape} != {a.dtype}{a.shape}"
    )
    if a.dtype.kind in "OUSb" or a.dtype.kind in "iu":
        np.testing.assert_array_equal(b, a, err_msg=what)
    else:
        np.testing.assert_allclose(
            b.astype(np.float64),
            a.astype(np.float64),
            rtol=rtol,
            atol=atol,
            err_msg=what,
            equal_nan=True,
        )


def _random_ops(model: onnx.ModelProto) -> bool:
    ops = {
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Bernoulli",
        "Multinomial",
    }
    return any(n.op_type in ops for n in model.graph.node)


def _load_case(case):
    """(model, feed) of a backend-suite case: generated in memory, or read from its folder."""
    if case.model is not None:
        model = case.model
        inputs = case.data_sets[0][0] if case.data_sets else None
    else:
        model = onnx.load(os.path.join(case.model_dir, "model.onnx"))
        folder = os.path.join(case.model_dir, "test_data_set_0")
        files = sorted(Path(folder).glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        inputs = []
        for f in files:
            t = onnx.TensorProto()
            t.ParseFromString(f.read_bytes())
            inputs.append(t)
    if inputs is None:
        return model, None
    inits = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    feed = {}
    for name, value in zip(names, inputs):
        feed[name] = numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else value
    return model, feed


@pytest.mark.parametrize("case", SUITE, ids=lambda c: c.name)
def test_backend_suite_model_at_every_level(case):
    model, feed = _load_case(case)
    if feed is None or _random_ops(model):
        pytest.skip("random outputs or no data")
    _compare(model.SerializeToString(), feed, max(case.rtol, 1e-4), max(case.atol, 1e-5), case.name)


@pytest.mark.slow
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_at_every_level(name):
    path, feed, _ = light_model_case(name)
    _compare(path, feed, 1e-4, 1e-5, name)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.onnx")), ids=lambda p: p.stem)
def test_transformer_fixture_at_every_level(path):
    model = onnx.load(path)
    rng = np.random.default_rng(0)
    feed = {}
    for vi in model.graph.input:
        tt = vi.type.tensor_type
        shape = [d.dim_value or 2 for d in tt.shape.dim]
        if tt.elem_type == onnx.TensorProto.INT64:  # ids below the vocabulary, masks/types 0 or 1
            high = 50 if vi.name == "input_ids" else 2
            feed[vi.name] = rng.integers(0, high, shape).astype(np.int64)
        else:
            feed[vi.name] = rng.standard_normal(shape).astype(np.float32)
    _compare(os.fspath(path), feed, 1e-4, 1e-5, path.stem)
