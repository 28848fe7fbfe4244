"""The shared ort_array kernels against onnxruntime, node by node: a provider that has nothing but
the shared kernels runs each case with CPU fallback disabled (so the shared kernel ran, or the
session fails), and every output must match onnxruntime's in dtype, shape and value."""

from __future__ import annotations

import numpy as np
import ort_array
import pytest

import ort_core
from tests.differential.harness import assert_same, make_node_model, run_reference

from ._providers import ArrayNumpyProvider
from .cases import CASES, Case

ort = pytest.importorskip("onnxruntime")


def run_shared(case: Case, provider: str, register_provider, cls=ArrayNumpyProvider) -> list:
    register_provider(cls)
    model, feeds = make_node_model(
        case.op, case.inputs, case.attrs, opset=case.opset, n_outputs=case.n_outputs,
        domain=case.domain,
    )  # fmt: skip
    so = ort_core.SessionOptions()
    so.graph_optimization_level = ort_core.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    sess = ort_core.InferenceSession(model.SerializeToString(), so, providers=[provider])
    assert {a.ep_name for a in sess.placements} == {provider}
    return sess.run(None, feeds)


def run_onnxruntime(case: Case) -> list:
    """onnxruntime's outputs; onnx's ReferenceEvaluator's where onnxruntime has no kernel for the
    node's types or opset (float64 Tan, HardSwish...)."""
    model, feeds = make_node_model(
        case.op, case.inputs, case.attrs, opset=case.opset, n_outputs=case.n_outputs,
        domain=case.domain,
    )  # fmt: skip
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        sess = ort.InferenceSession(
            model.SerializeToString(), so, providers=["CPUExecutionProvider"]
        )
    except ort.capi.onnxruntime_pybind11_state.NotImplemented:
        return run_reference(model, feeds)
    return sess.run(None, feeds)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matches_onnxruntime(case: Case, register_provider) -> None:
    expected = run_onnxruntime(case)
    got = run_shared(case, "ArrayNumpyExecutionProvider", register_provider)
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert_same(e, g, case.rtol, case.atol, f"{case.id} output {i}")


def test_every_shared_op_has_a_case() -> None:
    from . import test_contrib, test_more_ops

    covered = {c.op for c in [*CASES, *test_contrib.CASES, *test_more_ops.CASES]}
    missing = ort_array.ops() - covered
    assert not missing, f"shared kernels without a differential case: {sorted(missing)}"


def test_shared_index_out_of_range_is_an_error(register_provider) -> None:
    case = Case("Gather", [np.arange(6, dtype=np.float32), np.array([6], np.int64)])
    with pytest.raises(
        ort_core.errors.OrtError, match=r"Gather: index 6 is out of range \[-6, 5\]"
    ):
        run_shared(case, "ArrayNumpyExecutionProvider", register_provider)
