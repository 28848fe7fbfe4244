"""ort_core.ops Resize semantics: hand-worked coordinates, rounding and cubic coefficients, output
sizes with axes and keep_aspect_ratio_policy, and every tap table applied to a 1-D signal against
onnx's reference Resize (onnxruntime for nearest)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ort_core import ops
from ort_core.errors import InvalidArgument
from tests.differential.harness import make_node_model, run_reference


# -- hand-worked examples --------------------------------------------------------------------
@pytest.mark.parametrize(
    "mode, out_len, scale, in_len, want",
    [
        ("half_pixel", 4, 2.0, 2, [-0.25, 0.25, 0.75, 1.25]),
        ("asymmetric", 4, 2.0, 2, [0.0, 0.5, 1.0, 1.5]),
        ("align_corners", 5, 5 / 3, 3, [0.0, 0.5, 1.0, 1.5, 2.0]),
        ("align_corners", 1, 1 / 3, 3, [0.0]),
        ("pytorch_half_pixel", 1, 1 / 3, 3, [-0.5]),
        ("pytorch_half_pixel", 3, 1.5, 2, [-1 / 6, 0.5, 7 / 6]),
        ("tf_half_pixel_for_nn", 2, 0.5, 4, [1.0, 3.0]),
        # floor(0.7 * 5) = 3 cells: the spec centres the ratio 3 / 3.5 around the axis's middle
        (
            "half_pixel_symmetric",
            3,
            0.7,
            5,
            [2.5 * (1 - 3 / 3.5) + (j + 0.5) / 0.7 - 0.5 for j in range(3)],
        ),
    ],
)
def test_source_coordinates(mode, out_len, scale, in_len, want):
    x, outside = ops.source_coordinates(mode, out_len, scale, in_len)
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-12)
    assert outside is None


def test_tf_crop_and_resize_coordinates_and_outside():
    # roi [0.5, 1.5] of a 5-cell axis into 3 cells: from 2 to 6 in steps of 2
    x, outside = ops.source_coordinates("tf_crop_and_resize", 3, 0.6, 5, (0.5, 1.5))
    np.testing.assert_allclose(x, [2.0, 4.0, 6.0])
    assert outside.tolist() == [False, False, True]


@pytest.mark.parametrize(
    "mode, want",
    [
        ("round_prefer_floor", [0, 2, 2, 0, 3]),
        ("round_prefer_ceil", [1, 2, 3, 0, 3]),
        ("floor", [0, 1, 2, 0, 3]),
        ("ceil", [1, 2, 3, 0, 3]),
    ],
)
def test_nearest_indices(mode, want):
    x = np.array([0.5, 1.6, 2.5, -0.3, 3.7])
    assert ops.nearest_indices(x, mode, 2.0, 4).tolist() == want


def test_legacy_nearest_truncates_up_and_ceils_down():
    x = np.array([0.5, 1.6])
    assert ops.nearest_indices(x, "legacy", 2.0, 4).tolist() == [0, 1]
    assert ops.nearest_indices(x, "legacy", 0.5, 4).tolist() == [1, 2]


def test_cubic_weights():
    a = -0.75
    w = ops.cubic_weights(np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5]), a)
    # (a+2)/8 - (a+3)/4 + 1 and a(27/8 - 45/4 + 12 - 4) = a/8
    np.testing.assert_allclose(w, [1.0, 0.59375, 0.0, -0.09375, 0.0, 0.0], atol=1e-15)
    for t in (0.0, 0.3, 0.77):  # the four taps of any position sum to 1, for any a
        for coeff in (-0.5, -0.75):
            assert ops.cubic_weights(
                np.array([1 + t, t, 1 - t, 2 - t]), coeff
            ).sum() == pytest.approx(1)
    np.testing.assert_allclose(ops.linear_weights(np.array([-0.25, 0.5, 1.5])), [0.75, 0.5, 0.0])


# -- attributes ------------------------------------------------------------------------------
def test_attrs_legacy_ops():
    r10 = ops.ResizeAttrs.from_attrs({"mode": "linear"}, 10)
    assert (r10.coordinate_transformation_mode, r10.nearest_mode) == ("asymmetric", "legacy")
    up1 = ops.ResizeAttrs.from_attrs(
        {"mode": "bilinear", "height_scale": 2.0, "width_scale": 3.0}, 1, "Upsample"
    )
    assert up1.mode == "linear"
    assert ops.upsample_1_scales({"height_scale": 2.0, "width_scale": 3.0}) == [1, 1, 2.0, 3.0]
    r19 = ops.ResizeAttrs.from_attrs({"mode": "nearest", "antialias": 1, "axes": [-1]}, 19)
    assert (r19.antialias, r19.axes, r19.cubic_coeff_a) == (False, (-1,), -0.75)


@pytest.mark.parametrize(
    "attrs, opset, op, rank, reason",
    [
        ({"mode": "cubic"}, 10, "Resize", 4, "mode 'cubic' is not one of ['nearest', 'linear']"),
        ({"mode": "area"}, 19, "Resize", 4, "mode 'area'"),
        ({"nearest_mode": "sideways"}, 19, "Resize", 4, "nearest_mode 'sideways'"),
        ({"coordinate_transformation_mode": "corner"}, 13, "Resize", 4, "'corner' is not one of"),
        ({"keep_aspect_ratio_policy": "fit"}, 18, "Resize", 4, "keep_aspect_ratio_policy 'fit'"),
        ({"axes": [1, 4]}, 18, "Resize", 4, "axes entry 4 is out of range"),
        ({"axes": [1, -3]}, 18, "Resize", 4, "names axis 1 twice"),
        ({"mode": "nearest"}, 1, "Upsample", 4, "height_scale and width_scale"),
        ({"height_scale": 2.0, "width_scale": 2.0}, 1, "Upsample", 3, "rank 3"),
        ({}, 7, "Upsample", 4, "the scales attribute is required"),
    ],
)
def test_reasons(attrs, opset, op, rank, reason):
    got = ops.resize_reason(attrs, opset, op, rank)
    assert got is not None and reason in got


@pytest.mark.parametrize(
    "attrs, opset, op",
    [
        ({"mode": "cubic"}, 10, "Resize"),
        ({"nearest_mode": "up"}, 19, "Resize"),
        ({}, 7, "Upsample"),
    ],
)
def test_invalid_attributes_raise(attrs, opset, op):
    with pytest.raises(InvalidArgument, match=f"{op}-{opset}: "):
        ops.ResizeAttrs.from_attrs(attrs, opset, op)


def test_invalid_axes_raise_in_the_plan():
    attrs = ops.ResizeAttrs.from_attrs({"axes": [1, -3]}, 18)  # the rank is known at run time
    with pytest.raises(InvalidArgument, match="names axis 1 twice"):
        ops.resize_plan(attrs, (1, 2, 3, 4), sizes=[2, 2])


def test_valid_attributes_have_no_reason():
    assert ops.resize_reason({"mode": "cubic", "axes": [3, 2]}, 19, "Resize", 4) is None
    assert ops.resize_reason({"mode": "linear"}, 10) is None
    assert ops.resize_reason({"scales": [1.0, 2.0]}, 7, "Upsample") is None


# -- output sizes ----------------------------------------------------------------------------
SHAPE = (1, 2, 5, 7)


@pytest.mark.parametrize(
    "policy, out",
    [
        ("stretch", (1, 2, 4, 6)),
        # scales 4/5 and 6/7: the smaller for every axis, then round(0.8 * 7) = 6, round(4.0) = 4
        ("not_larger", (1, 2, 4, 6)),
        # the larger, 6/7: round(4.29) = 4 and round(6.0) = 6
        ("not_smaller", (1, 2, 4, 6)),
    ],
)
def test_plan_sizes_with_axes(policy, out):
    attrs = ops.ResizeAttrs.from_attrs({"axes": [3, 2], "keep_aspect_ratio_policy": policy}, 18)
    shape, steps = ops.resize_plan(attrs, SHAPE, sizes=np.array([6, 4]))
    assert shape == out
    assert [s.axis for s in steps] == [3, 2]  # in the order of axes


def test_plan_keep_aspect_ratio_rounds():
    attrs = ops.ResizeAttrs.from_attrs(
        {"keep_aspect_ratio_policy": "not_smaller", "axes": [2, 3]}, 18
    )
    shape, steps = ops.resize_plan(attrs, (1, 1, 5, 7), sizes=[9, 9])
    # scale max(9/5, 9/7) = 1.8 on the resized axes: 9 and round(12.6) = 13
    assert shape == (1, 1, 9, 13)
    assert [(s.axis, s.scale) for s in steps] == [(2, 1.8), (3, 1.8)]
    # without axes the policy's one scale applies to every axis: N and C too
    attrs = ops.ResizeAttrs.from_attrs({"keep_aspect_ratio_policy": "not_smaller"}, 18)
    assert ops.resize_plan(attrs, (1, 1, 5, 7), sizes=[1, 1, 9, 9])[0] == (2, 2, 9, 13)


def test_plan_scales_floor_and_skips_unchanged_axes():
    attrs = ops.ResizeAttrs.from_attrs({}, 19)
    shape, steps = ops.resize_plan(attrs, SHAPE, scales=np.array([1, 1, 0.6, 1.0], np.float32))
    assert shape == (1, 2, 3, 7)  # floor(0.6 * 5)
    assert [s.axis for s in steps] == [2]


def test_plan_roi_per_axis():
    attrs = ops.ResizeAttrs.from_attrs(
        {"coordinate_transformation_mode": "tf_crop_and_resize", "axes": [3, 2]}, 18
    )
    _, steps = ops.resize_plan(attrs, SHAPE, sizes=[7, 5], roi=[0.1, 0.0, 0.9, 1.0])
    # axis 2 keeps its size and takes the whole axis: only axis 3 is resized
    assert [(s.axis, s.roi) for s in steps] == [(3, (0.1, 0.9))]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "neither 'scales' nor 'sizes'"),
        ({"scales": [1.0, 2.0]}, "2 scales for 4 axes"),
        ({"sizes": [1, 2, 3]}, "3 sizes for 4 axes"),
        ({"scales": [1.0, 1.0, 0.0, 2.0]}, "scale 0.0 of axis 2 is not positive"),
    ],
)
def test_plan_errors(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        ops.resize_plan(ops.ResizeAttrs(), SHAPE, **kwargs)


# -- tap tables against onnx's reference -----------------------------------------------------
def _apply(table: ops.TapTable, x: np.ndarray, extrapolation: float) -> np.ndarray:
    if table.weight is None:
        y = x[table.index[:, 0]]
    else:
        y = (x[table.index] * table.weight).sum(axis=1)
    if table.outside is not None:
        y = np.where(table.outside, extrapolation, y)
    return y


def _onnxruntime(model, feeds):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _oracle_1d(x, attrs: dict, scales=None, sizes=None, roi=None) -> np.ndarray:
    """onnx's reference Resize of a 1-D ``x``; onnxruntime's for tf_half_pixel_for_nn, which the
    reference lacks."""
    f32 = np.float32
    inputs = [
        x,
        None if roi is None else np.array(roi, f32),
        None if scales is None else np.array(scales, f32),
        None if sizes is None else np.array(sizes, np.int64),
    ]
    model, feeds = make_node_model("Resize", inputs, attrs, opset=19)
    tf_nn = attrs.get("coordinate_transformation_mode") == "tf_half_pixel_for_nn"
    run = _onnxruntime if tf_nn else run_reference
    return run(model, feeds)[0]


def _check_table(attrs: dict, in_len: int, scales=None, sizes=None, roi=None):
    x = np.random.default_rng(in_len).standard_normal(in_len).astype(np.float32)
    scales = None if scales is None else np.array(scales, np.float32)  # as the node's input
    want = _oracle_1d(x, attrs, scales, sizes, roi)
    r = ops.ResizeAttrs.from_attrs(attrs, 19)
    shape, steps = ops.resize_plan(r, x.shape, scales, sizes, roi)
    assert shape == want.shape
    got = _apply(ops.tap_table(r, steps[0]), x.astype(np.float64), r.extrapolation_value)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=str(attrs))


COORDS = [m for m in ops.COORDINATE_TRANSFORMATION_MODES if m != "tf_crop_and_resize"]


@pytest.mark.parametrize("coord", COORDS)
@pytest.mark.parametrize("nearest_mode", ops.NEAREST_MODES)
def test_nearest_tables_match_reference(coord, nearest_mode):
    """Scales that put no coordinate exactly on a tie (.5) or an integer past 0: there the oracles
    round float32 coordinates (onnxruntime) or send an integer to the cell before it (the
    reference), while the spec and these tables work in float64."""
    for in_len, scale in itertools.product([1, 4, 7], [0.37, 0.83, 1.45, 2.45, 3.13]):
        if int(in_len * scale) == 0:
            continue
        attrs = {
            "mode": "nearest",
            "coordinate_transformation_mode": coord,
            "nearest_mode": nearest_mode,
        }
        _check_table(attrs, in_len, scales=[scale])


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("coord", [c for c in COORDS if c != "tf_half_pixel_for_nn"])
@pytest.mark.parametrize("exclude_outside", [0, 1])
def test_interpolation_tables_match_reference(mode, coord, exclude_outside):
    for in_len, scale in itertools.product([2, 5, 8], [0.45, 0.8, 1.7, 3.0]):
        if int(in_len * scale) == 0:
            continue
        attrs = {
            "mode": mode,
            "coordinate_transformation_mode": coord,
            "exclude_outside": exclude_outside,
        }
        _check_table(attrs, in_len, scales=[scale])


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("size", [3, 4, 6, 13])
def test_antialias_tables_match_reference(mode, size):
    _check_table({"mode": mode, "antialias": 1}, 11, sizes=[size])


@pytest.mark.parametrize("a", [-0.5, -0.75])
def test_cubic_coeff_a_matches_reference(a):
    _check_table({"mode": "cubic", "cubic_coeff_a": a}, 7, scales=[1.6])


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_crop_and_resize_tables_match_reference(mode):
    attrs = {
        "mode": mode,
        "coordinate_transformation_mode": "tf_crop_and_resize",
        "extrapolation_value": -2.5,
    }
    _check_table(attrs, 9, sizes=[5], roi=[-0.2, 1.3])
    _check_table(attrs, 9, sizes=[4], roi=[0.3, 0.8])


def test_tables_are_cached_and_read_only():
    r = ops.ResizeAttrs(mode="linear")
    _, steps = ops.resize_plan(r, (5,), scales=[2.0])
    table = ops.tap_table(r, steps[0])
    assert ops.tap_table(r, steps[0]) is table
    with pytest.raises(ValueError):
        table.weight[0, 0] = 2.0
