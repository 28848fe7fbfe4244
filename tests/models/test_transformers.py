"""Small BERT-, GPT-2- and ViT-style models (random weights, generated offline by
fixtures/generate.py): same outputs with optimizations off and at every level, the same as
onnxruntime, and at level ALL the transformer fusions fire (node count drops, the fused ops appear).
The fused graph that onnxruntime itself produces runs on ort-core too."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import pytest

import ort_core as ort

FIXTURES = Path(__file__).parent / "fixtures"
RNG = np.random.default_rng(0)
FEEDS = {
    "bert_tiny": {
        "input_ids": RNG.integers(0, 100, (2, 16)).astype(np.int64),
        "attention_mask": np.array([[1] * 16, [1] * 11 + [0] * 5], np.int64),
        "token_type_ids": np.array([[0] * 8 + [1] * 8] * 2, np.int64),
    },
    "gpt2_tiny": {"input_ids": RNG.integers(0, 100, (2, 16)).astype(np.int64)},
    "vit_tiny": {"pixel_values": RNG.standard_normal((2, 3, 32, 32)).astype(np.float32)},
}
#: fused ops that must appear at level ALL, and ops that must be gone
EXPECTED = {
    "bert_tiny": ({"Attention", "SkipLayerNormalization", "BiasGelu"}, {"Softmax", "Erf"}),
    "gpt2_tiny": ({"Attention", "SkipLayerNormalization", "FastGelu"}, {"Softmax", "Tanh"}),
    "vit_tiny": (
        {"Attention", "SkipLayerNormalization", "LayerNormalization", "QuickGelu"},
        {"Softmax", "Sigmoid", "ReduceMean"},
    ),
}
LEVELS = [
    ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
]


def _session(model, level):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _ops(sess):
    return collections.Counter(n.op_type for n in sess._model.graph.nodes)


@pytest.mark.parametrize("name", list(FEEDS))
def test_levels_agree_and_fusions_fire(name):
    path = str(FIXTURES / f"{name}.onnx")
    results, counts = [], []
    for level in LEVELS:
        sess = _session(path, level)
        results.append(sess.run(None, FEEDS[name]))
        counts.append(_ops(sess))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
    want, gone = EXPECTED[name]
    final = counts[-1]
    assert want <= set(final), f"missing fused ops {want - set(final)} in {dict(final)}"
    assert not gone & set(final), f"unfused ops left: {gone & set(final)}"
    total = [sum(c.values()) for c in counts]
    assert total[-1] < total[1] < total[0], total


@pytest.mark.parametrize("name", list(FEEDS))
def test_matches_onnxruntime(name):
    onnxruntime = pytest.importorskip("onnxruntime", reason="third opinion")
    path = str(FIXTURES / f"{name}.onnx")
    expected = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
        None, FEEDS[name]
    )
    got = _session(path, ort.GraphOptimizationLevel.ORT_ENABLE_ALL).run(None, FEEDS[name])
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list(FEEDS))
def test_runs_the_graph_onnxruntime_fused(name, tmp_path):
    """onnxruntime's own EXTENDED fusions produce com.microsoft ops: ort-core runs that graph."""
    onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime produces the graph")
    so = onnxruntime.SessionOptions()
    so.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "fused.onnx")
    path = str(FIXTURES / f"{name}.onnx")
    expected = onnxruntime.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(
        None, FEEDS[name]
    )
    fused = onnx.load(so.optimized_model_filepath)
    assert any(n.domain == "com.microsoft" for n in fused.graph.node)
    got = _session(fused, ort.GraphOptimizationLevel.ORT_DISABLE_ALL).run(None, FEEDS[name])
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)
