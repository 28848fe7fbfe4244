"""Run an EXTENDED pass on a model whose nodes are assigned to the CPU provider by hand (as the
partitioner would), and compare the outputs of the fused model with the original's."""

from __future__ import annotations

import numpy as np

from ort_core.ir import load_model, model_to_proto
from ort_core.optimizer import PassContext
from ort_core.plugins import get_plugin_manager
from tests.differential.harness import run_cpu


def cpu_context() -> PassContext:
    cpu = get_plugin_manager().resolve("cpu").cls({})
    return PassContext(providers=[cpu])


def apply_on_cpu(pass_obj, proto):
    """(fused model, whether the pass changed it, its proto) with every node on the CPU."""
    model = load_model(proto)
    for _, n in model.graph.walk():
        n.provider = "CPUExecutionProvider"
    changed = pass_obj(model, cpu_context())
    model.graph.sort()
    return model, changed, model_to_proto(model)


def fused_ops(model):
    return [n.op_type for n in model.graph.nodes]


def assert_same_run(proto, fused_proto, feed, rtol=1e-5, atol=1e-5):
    """The fused model computes what the original does (both run with optimizations off)."""
    import ort_core as ort

    outs = []
    for p in (proto, fused_proto):
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(p.SerializeToString(), so, providers=["CPUExecutionProvider"])
        outs.append(sess.run(None, feed))
    for a, b in zip(*outs):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)


__all__ = ["apply_on_cpu", "assert_same_run", "cpu_context", "fused_ops", "run_cpu"]
