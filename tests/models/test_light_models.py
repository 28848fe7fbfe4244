"""The light models shipped inside the onnx wheel run on the CPU provider and match their expected
outputs (their weights are constants: this proves op coverage, see tests/differential for numerics)."""

import numpy as np
import pytest

import ort_core as ort
from ort_core.demo import LIGHT_MODELS, light_model_case


@pytest.mark.slow
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_matches_expected_output(name):
    path, feed, expected = light_model_case(name)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    outs = sess.run(None, feed)
    assert len(outs) == len(expected)
    for got, exp in zip(outs, expected):
        assert got.shape == exp.shape and got.dtype == exp.dtype
        np.testing.assert_allclose(got, exp, rtol=1e-3, atol=1e-5)
    counts = {}
    for sub in sess.get_provider_graph_assignment_info():
        counts[sub.ep_name] = counts.get(sub.ep_name, 0) + len(sub.get_nodes())
    assert set(counts) == {"CPUExecutionProvider"} and counts["CPUExecutionProvider"] > 0
