"""Since-versions added for the coverage audit (tests/unit/test_coverage.py) whose opset the
ReferenceEvaluator does not implement: the CPU provider on the old form of the op against the
ReferenceEvaluator on the equivalent newer form."""

from __future__ import annotations

import numpy as np
import pytest

from tests.differential.harness import assert_same, make_node_model, run_cpu, run_reference


def _compare(old, new, tol=1e-5):
    (got,) = run_cpu(*old)
    (expected,) = run_reference(*new)
    assert_same(expected, got, tol, tol)


@pytest.mark.parametrize("mode, new_mode", [("nearest", "nearest"), ("bilinear", "linear")])
@pytest.mark.parametrize("scales", [(2.0, 3.0), (1.0, 2.5), (1.5, 1.0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_upsample_1(mode, new_mode, scales, dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(dtype)
    h, w = scales
    old = make_node_model(
        "Upsample", [x], {"height_scale": h, "width_scale": w, "mode": mode}, opset=1
    )
    # the ReferenceEvaluator's Upsample takes integer nearest scales only: Resize with
    # asymmetric coordinates and floor rounding is the same operation for scales >= 1
    attrs = {"mode": new_mode, "coordinate_transformation_mode": "asymmetric"}
    if new_mode == "nearest":
        attrs["nearest_mode"] = "floor"
    new = make_node_model("Resize", [x, None, np.array([1, 1, h, w], np.float32)], attrs, opset=13)
    _compare(old, new, 2e-3 if dtype == np.float16 else 1e-5)


@pytest.mark.parametrize(
    "in_shape, shape",
    [((2, 3, 4), [6, 4]), ((2, 3, 4), [0, -1]), ((24,), [2, 3, 4]), ((1, 6), [-1])],
)
def test_reshape_1(in_shape, shape):
    x = np.arange(np.prod(in_shape), dtype=np.float32).reshape(in_shape)
    old = make_node_model("Reshape", [x], {"shape": shape}, opset=1)
    new = make_node_model("Reshape", [x, np.array(shape, np.int64)], opset=5)
    _compare(old, new)
