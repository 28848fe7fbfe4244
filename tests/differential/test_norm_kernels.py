"""The CPU provider's compiled layer normalization (``ort_cpu.kernels._norm_jit``: 16-lane sums
written as LLVM vector code) against onnxruntime and against the numpy path it replaces: float32
and float64, one or several normalized axes, row lengths off the 16 lanes, with and without a
bias, the RMS forms, and a scale with leading axes (which only numpy broadcasts)."""

from __future__ import annotations

import numpy as np
import pytest

import ort_core

from .harness import make_node_model, use_compiled

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle")


@pytest.fixture(params=["compiled", "numpy"])
def compiled(request, monkeypatch):
    return use_compiled(monkeypatch, request.param == "compiled")


def _run_both(model, feeds, tol):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(model.SerializeToString(), so).run(None, feeds)
    got = ort_core.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    ).run(None, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, axis", [((2, 50, 384), -1), ((3, 7, 33), -1), ((2, 5, 6, 7), 2)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_layer_normalization_matches_onnxruntime(compiled, dtype, shape, axis, with_bias):
    """Device (this CPU): LayerNormalization's three outputs."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 4 + 3).astype(dtype)
    inner = shape[axis:]
    inputs = [x, rng.standard_normal(inner).astype(dtype)]
    if with_bias:
        inputs.append(rng.standard_normal(inner).astype(dtype))
    model, feeds = make_node_model(
        "LayerNormalization", inputs, {"axis": axis, "epsilon": 1e-5}, opset=17, n_outputs=3
    )
    _run_both(model, feeds, 2e-5 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("op", ["SkipLayerNormalization", "SkipSimplifiedLayerNormalization"])
def test_skip_forms_match_onnxruntime(compiled, op):
    rng = np.random.default_rng(2)
    x, skip = (rng.standard_normal((2, 9, 40)).astype(np.float32) for _ in range(2))
    gamma = rng.standard_normal(40).astype(np.float32)
    model, feeds = make_node_model(
        op, [x, skip, gamma], {"epsilon": 1e-5}, domain="com.microsoft", opset=17
    )
    _run_both(model, feeds, 2e-5)


def test_the_compiled_rows_against_the_numpy_path(monkeypatch):
    """Host logic: :func:`layer_norm` compiled and by numpy on rows of every length from 1 to
    40 (the lanes' remainders), mean and inv_std included; a scale with leading axes of its
    own goes to numpy."""
    from ort_cpu import _jit
    from ort_cpu.kernels import normalization

    if not _jit.available():
        pytest.skip(f"compiled kernels are off: {_jit.reason()}")
    rng = np.random.default_rng(3)
    real = normalization._compiled_layer_norm
    for n in range(1, 41):
        for dt, tol in ((np.float32, 1e-6), (np.float64, 1e-14)):
            x = (rng.standard_normal((5, n)) * 3 + 2).astype(dt)
            gamma, beta = rng.standard_normal(n).astype(dt), rng.standard_normal(n).astype(dt)
            assert real(x, (-1,)) is not None
            got = normalization.layer_norm(x, gamma, beta, 1e-5, False)
            monkeypatch.setattr(normalization, "_compiled_layer_norm", lambda s, a: None)
            want = normalization.layer_norm(x, gamma, beta, 1e-5, False)
            monkeypatch.setattr(normalization, "_compiled_layer_norm", real)
            for g, w in zip(got, want, strict=True):
                np.testing.assert_allclose(g, w, rtol=tol * 10, atol=tol * 10)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    leading = rng.standard_normal((4, 6)).astype(np.float32)  # one scale row per row
    fn = real(x, (-1,))
    assert normalization._layer_norm_compiled(fn, x, leading, None, 1e-5, False, 1) is None
    y = normalization.layer_norm(x, leading, None, 1e-5, False)[0]
    centred = x - x.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(
        y, centred / np.sqrt((centred**2).mean(-1, keepdims=True) + 1e-5) * leading, rtol=1e-5
    )
