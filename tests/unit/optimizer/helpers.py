"""Run one pass on a model built with onnx.helper, and check it keeps the outputs."""

from __future__ import annotations

import numpy as np

import ort_core as ort
from ort_core.ir import load_model
from ort_core.optimizer import PassContext


def apply(pass_obj, proto):
    """(model after the pass, whether it changed anything)."""
    model = load_model(proto)
    changed = pass_obj(model, PassContext())
    return model, changed


def ops(model):
    return [n.op_type for n in model.graph.nodes]


def same_outputs(proto, feed, rtol=1e-6, atol=1e-6):
    """The model gives the same outputs with optimizations off and at every level."""
    results = []
    for level in (0, 1, 2, 99):
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel(level)
        sess = ort.InferenceSession(
            proto.SerializeToString(), so, providers=["CPUExecutionProvider"]
        )
        results.append(sess.run(None, feed))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    return results[0]
