"""Device: Core ML itself runs the converted partitions (macOS only). Everywhere else these tests
skip with the reason; they are never counted as passed off a Mac, and nothing here was verified by
this project's CI (no Mac is available to it)."""

from __future__ import annotations

import os
import platform

import numpy as np
import pytest
from ort_coreml.options import COMPUTE_UNITS

import ort_core as ort

from .harness import COREML, CPU, placement, session
from .test_package import _feed, _model

pytestmark = [
    pytest.mark.coreml_mac,
    pytest.mark.skipif(
        platform.system() != "Darwin",
        reason=f"needs Core ML on macOS; this machine runs {platform.system()}",
    ),
    pytest.mark.skipif(
        os.environ.get("ORT_COREML_REFERENCE") == "1",
        reason="ORT_COREML_REFERENCE=1 selects the MIL reference runtime, not Core ML",
    ),
]


def _cpu(model, feed):
    return ort.InferenceSession(model.SerializeToString(), providers=[CPU]).run(None, feed)


@pytest.mark.parametrize("units", COMPUTE_UNITS)
def test_core_ml_matches_cpu(units):
    sess = session(_model(), {"MLComputeUnits": units}, fallback=False)
    assert sess.get_provider_options()[COREML]["runtime"] == "Core ML"
    assert placement(sess) == {COREML: 7}
    feed = _feed()
    # the Neural Engine and the GPU compute in float16
    tol = 1e-5 if units == "CPUOnly" else 2e-2
    for g, w in zip(sess.run(None, feed), _cpu(_model(), feed)):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def test_cached_package_loads_and_hints_apply(tmp_path):
    opts = {
        "ModelCacheDirectory": str(tmp_path),
        "SpecializationStrategy": "FastPrediction",
        "AllowLowPrecisionAccumulationOnGPU": "1",
        "ProfileComputePlan": "1",
    }
    feed = _feed()
    first = session(_model(), opts, fallback=False).run(None, feed)
    again = session(_model(), opts, fallback=False).run(None, feed)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_dynamic_batch_on_core_ml():
    model = _model(batch="N")
    sess = session(model)
    for batch in (1, 2):
        feed = _feed(batch)
        for g, w in zip(sess.run(None, feed), _cpu(model, feed)):
            np.testing.assert_allclose(g, w, rtol=2e-2, atol=2e-2)
