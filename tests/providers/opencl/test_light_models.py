"""The light models from the onnx wheel on the OpenCL provider: at least 80% of their nodes run on
OpenCL and the outputs match the expected ones (rtol 1e-3, atol 1e-5)."""

import numpy as np
import pytest

import ort_core as ort
from ort_core.demo import LIGHT_MODELS, light_model_case

from ._util import OPENCL, placement, requires_opencl

pytestmark = requires_opencl
#: the heavy ones on a CPU OpenCL device (VGG-19 alone is ~20 GFLOP per run)
SLOW = {"vgg19", "densenet121", "inception_v2", "resnet50"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in LIGHT_MODELS]
)
def test_light_model_on_opencl(name):
    path, feed, expected = light_model_case(name)
    sess = ort.InferenceSession(path, providers=[OPENCL])
    counts = placement(sess)
    share = counts.get(OPENCL, 0) / sum(counts.values())
    assert share >= 0.8, f"{name}: only {share:.0%} of the nodes on OpenCL: {counts}"
    outs = sess.run(None, feed)
    assert len(outs) == len(expected)
    for got, exp in zip(outs, expected):
        assert got.shape == exp.shape and got.dtype == exp.dtype
        np.testing.assert_allclose(got, exp, rtol=1e-3, atol=1e-5)
