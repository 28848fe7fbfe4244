"""OpenVINO against the CPU provider on every model the tests build: the random-weight models of
models.py (several shapes each) and the node models of onnx's backend suite with float inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ort_core as ort
from tests.conformance.suite import read_expected

from .models import CPU, MODELS, OV, placement, skip_unless_openvino

pytestmark = skip_unless_openvino()

RTOL, ATOL = 1e-4, 1e-5  # float32: kernels sum in different orders


def _compare(label: str, expected: list, got: list, rtol: float, atol: float) -> str | None:
    """A message naming the model and output on the first mismatch, else None."""
    if len(expected) != len(got):
        return f"{label}: {len(got)} outputs, expected {len(expected)}"
    for i, (e, g) in enumerate(zip(expected, got)):
        if isinstance(e, list) or e is None:
            if type(g) is not type(e):
                return f"{label} output {i}: {type(g).__name__}, CPU gave {type(e).__name__}"
            message = _compare(f"{label} output {i}", e or [], g or [], rtol, atol)
            if message is not None:
                return message
            continue
        e, g = np.asarray(e), np.asarray(g)
        if e.dtype != g.dtype or e.shape != g.shape:
            return f"{label} output {i}: {g.dtype}{g.shape} != CPU's {e.dtype}{e.shape}"
        if e.dtype.kind in "fc":
            ok = np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
        else:
            ok = np.array_equal(g, e)
        if not ok:
            diff = np.abs(g.astype(np.float64) - e.astype(np.float64))
            return f"{label} output {i}: max abs difference {np.nanmax(diff):.3g}"
    return None


@pytest.mark.parametrize("name", sorted(MODELS))
def test_built_model_matches_cpu(name):
    build, feeds = MODELS[name]
    data = build().SerializeToString()
    ov = ort.InferenceSession(data, providers=[OV, CPU])
    cpu = ort.InferenceSession(data, providers=[CPU])
    counts = placement(ov)
    assert counts == {OV: sum(counts.values())}, f"{name}: not fully on OpenVINO: {counts}"
    for feed in feeds:
        label = f"{name} with x{feed['x'].shape}"
        message = _compare(label, cpu.run(None, feed), ov.run(None, feed), RTOL, ATOL)
        assert message is None, message


def _node_cases():
    from onnx.backend.test.loader import load_node_model_tests

    skip = set(read_expected("cpu")) | set(read_expected("openvino"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = load_node_model_tests()
    for case in cases:
        if f"{case.name}_cpu" in skip or not case.data_sets:
            continue
        inputs = case.data_sets[0][0]
        arrays = [x for x in inputs if isinstance(x, np.ndarray)]
        if len(arrays) != len(inputs) or not any(a.dtype == np.float32 for a in arrays):
            continue
        yield case


@pytest.mark.slow
def test_backend_node_models_with_float_inputs_match_cpu():
    mismatches, compared, on_openvino = [], 0, 0
    for case in _node_cases():
        data = case.model.SerializeToString()
        names = [i.name for i in case.model.graph.input][: len(case.data_sets[0][0])]
        feed = dict(zip(names, case.data_sets[0][0]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy on inf/nan inputs
            try:
                expected = ort.InferenceSession(data, providers=[CPU]).run(None, feed)
            except Exception:  # the CPU provider cannot run it: nothing to compare with
                continue
            sess = ort.InferenceSession(data, providers=[OV, CPU])
            got = sess.run(None, feed)
        compared += 1
        on_openvino += OV in placement(sess)
        message = _compare(case.name, expected, got, max(case.rtol, 1e-4), max(case.atol, 1e-5))
        if message is not None:
            mismatches.append(message)
    assert compared > 500 and on_openvino > 300, (compared, on_openvino)
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches)
