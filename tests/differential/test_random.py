"""Random generators: the values cannot match the reference evaluator's, so these tests compare
shapes and dtypes with it and check ranges, seed reproducibility and sample statistics."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto

import ort_core

from .harness import make_node_model, run_reference

BIG = (200, 500)  # 100k samples: the mean of N(0, 1) is within 0.02 with overwhelming probability
FLOAT_TYPES = {
    TensorProto.FLOAT16: np.float16,
    TensorProto.FLOAT: np.float32,
    TensorProto.DOUBLE: np.float64,
    TensorProto.BFLOAT16: ml_dtypes.bfloat16,
}


def _run(op_type, inputs, attrs, opset=None, times=1, expected=None):
    """Outputs of ``times`` runs of the same session, after checking dtype and shape against the
    reference evaluator (or against ``expected``, an array of the right dtype and shape)."""
    model, feeds = make_node_model(op_type, inputs, attrs, opset=opset)
    if expected is None:
        expected = run_reference(model, feeds)[0]
    sess = ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = [sess.run(None, feeds)[0] for _ in range(times)]
    for got in outs:
        assert got.dtype == expected.dtype, f"dtype {got.dtype} != {expected.dtype}"
        assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}"
    return outs


def _opset_for(dtype):
    return 22 if dtype == TensorProto.BFLOAT16 else 13


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("mean,scale", [(0.0, 1.0), (3.0, 0.5)])
def test_random_normal_statistics(dtype, mean, scale):
    attrs = {"shape": list(BIG), "dtype": dtype, "mean": mean, "scale": scale}
    (y,) = _run("RandomNormal", [], attrs, opset=_opset_for(dtype))
    v = y.astype(np.float64)
    assert abs(v.mean() - mean) < 0.02 * scale + 0.01 * abs(mean)
    assert abs(v.std() - scale) < 0.02 * scale


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("low,high", [(0.0, 1.0), (-5.0, 2.0)])
def test_random_uniform_statistics(dtype, low, high):
    attrs = {"shape": list(BIG), "dtype": dtype, "low": low, "high": high}
    (y,) = _run("RandomUniform", [], attrs, opset=_opset_for(dtype))
    v = y.astype(np.float64)
    assert v.min() >= low and v.max() <= high
    width = high - low
    assert abs(v.mean() - (low + high) / 2) < 0.01 * width
    assert abs(v.std() - width / np.sqrt(12)) < 0.01 * width
    # Spread over the whole range, not stuck in one part of it.
    hist, _ = np.histogram(v, bins=10, range=(low, high))
    assert hist.min() > 0.08 * v.size


def test_random_default_dtype_and_shapes():
    for shape in ([0], [1], [3, 1, 2]):
        (y,) = _run("RandomNormal", [], {"shape": shape})
        assert y.shape == tuple(shape)
        (y,) = _run("RandomUniform", [], {"shape": shape}, opset=1)


@pytest.mark.parametrize("op_type", ["RandomNormal", "RandomUniform"])
def test_seed_reproducible_and_unseeded_varies(op_type):
    attrs = {"shape": [4, 5], "seed": 7.0}
    a, b = _run(op_type, [], attrs, times=2)
    np.testing.assert_array_equal(a, b)
    (c,) = _run(op_type, [], attrs)  # another session, same seed
    np.testing.assert_array_equal(a, c)
    (d,) = _run(op_type, [], {**attrs, "seed": 8.0})
    assert not np.array_equal(a, d)
    e, f = _run(op_type, [], {"shape": [4, 5]}, times=2)
    assert not np.array_equal(e, f)


LIKE_CASES = [  # (input dtype, dtype attribute): an int input needs the attribute (float output)
    (x, d)
    for x in (np.float32, np.float16, np.float64, np.int32)
    for d in (None, TensorProto.DOUBLE, TensorProto.FLOAT16)
    if not (d is None and x == np.int32)
]


@pytest.mark.parametrize("op_type", ["RandomNormalLike", "RandomUniformLike"])
@pytest.mark.parametrize("x_dtype,dtype", LIKE_CASES)
def test_like_ops_dtype_and_shape(op_type, x_dtype, dtype):
    x = np.zeros((3, 0, 2) if x_dtype == np.float64 else (3, 4, 2), dtype=x_dtype)
    attrs = {} if dtype is None else {"dtype": dtype}
    _run(op_type, [x], attrs)


@pytest.mark.parametrize("op_type", ["RandomNormalLike", "RandomUniformLike"])
def test_like_ops_statistics_and_seed(op_type):
    x = np.zeros(BIG, dtype=np.float32)
    if op_type == "RandomNormalLike":
        attrs, mean, std = {"mean": -1.0, "scale": 2.0}, -1.0, 2.0
    else:
        attrs, mean, std = {"low": 2.0, "high": 4.0}, 3.0, 2.0 / np.sqrt(12)
    (y,) = _run(op_type, [x], attrs)
    assert abs(y.mean() - mean) < 0.02 * std * 2
    assert abs(y.std() - std) < 0.02 * std
    a, b = _run(op_type, [x[:3, :3]], {**attrs, "seed": 1.5}, times=2)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [None, TensorProto.BOOL, TensorProto.INT64, TensorProto.FLOAT16])
@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
def test_bernoulli(dtype, x_dtype):
    rng = np.random.default_rng(0)
    p = rng.random(50).astype(x_dtype)
    x = np.broadcast_to(p, (4000, 50)).copy()
    attrs = {} if dtype is None else {"dtype": dtype}
    (y,) = _run("Bernoulli", [x], attrs, opset=15)
    v = y.astype(np.float64)
    assert set(np.unique(v)) <= {0.0, 1.0}
    np.testing.assert_allclose(v.mean(axis=0), p, atol=0.04)


def test_bernoulli_extremes_and_seed():
    x = np.array([[0.0, 1.0, 0.0, 1.0]] * 10, dtype=np.float32)
    (y,) = _run("Bernoulli", [x], {}, opset=15)
    np.testing.assert_array_equal(y, x)
    x = np.full((8, 9), 0.5, dtype=np.float32)
    a, b = _run("Bernoulli", [x], {"seed": 3.0}, times=2)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [None, TensorProto.INT64, TensorProto.INT32])
@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
def test_multinomial(dtype, x_dtype):
    probs = np.array([[0.1, 0.2, 0.7, 0.0], [0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 1.0, 0.0]])
    with np.errstate(divide="ignore"):
        x = np.log(probs).astype(x_dtype) + 2.0  # unnormalized log-probabilities
    attrs = {"sample_size": 20000}
    if dtype is not None:
        attrs["dtype"] = dtype
    # The reference evaluator has no Multinomial: the spec's int32 default and [batch, samples].
    out_dtype = np.int64 if dtype == TensorProto.INT64 else np.int32
    (y,) = _run("Multinomial", [x], attrs, expected=np.zeros((3, 20000), out_dtype))
    assert y.min() >= 0 and y.max() < probs.shape[1]
    freqs = np.stack([np.bincount(row, minlength=probs.shape[1]) for row in y]) / y.shape[1]
    np.testing.assert_allclose(freqs, probs, atol=0.015)
    assert (freqs[probs == 0] == 0).all()


def test_multinomial_seed():
    x = np.zeros((2, 5), dtype=np.float32)
    expected = np.zeros((2, 30), np.int32)
    a, b = _run("Multinomial", [x], {"sample_size": 30, "seed": 2.0}, times=2, expected=expected)
    np.testing.assert_array_equal(a, b)
    c, d = _run("Multinomial", [x], {"sample_size": 30}, times=2, expected=expected)
    assert not np.array_equal(c, d)
