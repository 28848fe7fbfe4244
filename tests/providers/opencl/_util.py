"""Shared helpers of the OpenCL provider tests: skip when the provider is unavailable, and run one
model on OpenCL (asserting its nodes were placed there) and on the CPU provider."""

from __future__ import annotations

import numpy as np
import pytest

import ort_core as ort
from ort_core.plugins import get_plugin_manager
from tests.differential.harness import assert_same, make_node_model

OPENCL = "OpenCLExecutionProvider"


def _skip_reason() -> str | None:
    entry = get_plugin_manager().resolve(OPENCL)
    if entry is None:
        return "ort-opencl is not installed"
    avail = entry.availability()
    return None if avail else f"OpenCLExecutionProvider is unavailable: {avail.reason}"


SKIP_REASON = _skip_reason()
requires_opencl = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")


def placement(sess) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sub in sess.placements:
        counts[sub.ep_name] = counts.get(sub.ep_name, 0) + len(sub.get_nodes())
    return counts


def check_opencl(op_type, inputs, attrs=None, *, opset=None, n_outputs=1, rtol=1e-5, atol=1e-6):
    """Run one node on OpenCL and on CPU; assert it ran on OpenCL and the outputs agree."""
    model, feeds = make_node_model(op_type, inputs, attrs, opset=opset, n_outputs=n_outputs)
    data = model.SerializeToString()
    cl_sess = ort.InferenceSession(data, providers=[OPENCL])
    where = placement(cl_sess)
    assert where.get(OPENCL, 0) >= 1 and set(where) == {OPENCL}, (
        f"{op_type} did not run on OpenCL: {where}; reasons: {cl_sess.placement_reasons}"
    )
    got = cl_sess.run(None, feeds)
    expected = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert_same(e, g, rtol, atol, f"{op_type} output {i}")
    return got


def declined(op_type, inputs, attrs=None, *, opset=None) -> str:
    """The reason the OpenCL provider gave for leaving the node to the CPU provider."""
    model, _ = make_node_model(op_type, inputs, attrs, opset=opset)
    sess = ort.InferenceSession(model.SerializeToString(), providers=[OPENCL])
    assert placement(sess) == {"CPUExecutionProvider": 1}
    return " ".join(r for rs in sess.placement_reasons.values() for r in rs)


rng = np.random.default_rng(0)


def rand(shape, dtype=np.float32, lo=-3.0, hi=3.0):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        lo = max(lo, 0) if dtype.kind == "u" else lo
        return rng.integers(int(lo), int(hi) + 1, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    return np.asarray(rng.uniform(lo, hi, size=shape)).astype(dtype)
