"""Image kernels against onnx's ReferenceEvaluator: Resize, Upsample, DepthToSpace, SpaceToDepth,
GridSample, AffineGrid, Col2Im, CenterCropPad, NonMaxSuppression.

Where the reference does not implement a version (Resize-10, Upsample linear or with fractional
scales, GridSample-16 mode names), the node is compared with the reference running the equivalent
newer node.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from tests.differential.harness import (
    assert_same,
    check_node,
    make_node_model,
    run_cpu,
    run_reference,
)

F32 = np.float32
TOL = {"rtol": 1e-4, "atol": 1e-5}


def _rng(seed=0):
    return np.random.default_rng(seed)


def _image(shape=(1, 2, 5, 7), dtype=F32, seed=0):
    x = _rng(seed).standard_normal(shape) * 4
    if np.dtype(dtype).kind in "iu":
        x = np.abs(x) * 10
    return x.astype(dtype)


def _check_equiv(op, inputs, attrs, opset, ref_op, ref_inputs, ref_attrs, ref_opset, **tol):
    """Run ``op`` on the CPU provider and the equivalent ``ref_op`` node on the reference."""
    model, feeds = make_node_model(op, inputs, attrs, opset=opset)
    ref_model, ref_feeds = make_node_model(ref_op, ref_inputs, ref_attrs, opset=ref_opset)
    expected = run_reference(ref_model, ref_feeds)
    got = run_cpu(model, feeds)
    assert_same(expected[0], got[0], tol.get("rtol", 1e-5), tol.get("atol", 1e-6))


# -- Resize ----------------------------------------------------------------------------------
COORDS = ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel", "half_pixel_symmetric"]
SCALES = [[1, 1, 2.0, 1.7], [1, 1, 0.6, 0.45], [1, 1, 1.3, 0.3]]
NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


@pytest.mark.parametrize("coord", COORDS)
@pytest.mark.parametrize("scales", SCALES)
@pytest.mark.parametrize("nearest_mode", NEAREST_MODES)
def test_resize_nearest_scales(coord, scales, nearest_mode):
    attrs = dict(mode="nearest", coordinate_transformation_mode=coord, nearest_mode=nearest_mode)
    check_node("Resize", [_image(), None, np.array(scales, F32)], attrs, opset=19)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("coord", COORDS)
@pytest.mark.parametrize("scales", SCALES)
@pytest.mark.parametrize("exclude_outside", [0, 1])
def test_resize_interp_scales(mode, coord, scales, exclude_outside):
    attrs = dict(mode=mode, coordinate_transformation_mode=coord, exclude_outside=exclude_outside)
    check_node("Resize", [_image(), None, np.array(scales, F32)], attrs, opset=19, **TOL)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", [[1, 1, 0.6, 0.45], [1, 1, 0.3, 1.5], [1, 1, 0.8, 0.2]])
@pytest.mark.parametrize("exclude_outside", [0, 1])
def test_resize_antialias(mode, scales, exclude_outside):
    x = _image((1, 2, 11, 13))
    attrs = dict(mode=mode, antialias=1, exclude_outside=exclude_outside)
    check_node("Resize", [x, None, np.array(scales, F32)], attrs, opset=18, **TOL)


@pytest.mark.parametrize("cubic_coeff_a", [-0.5, -0.75])
def test_resize_cubic_coeff(cubic_coeff_a):
    attrs = dict(mode="cubic", cubic_coeff_a=cubic_coeff_a, exclude_outside=1)
    check_node("Resize", [_image(), None, np.array([1, 1, 1.6, 0.8], F32)], attrs, opset=13, **TOL)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("sizes", [[1, 2, 9, 4], [1, 1, 3, 11], [2, 2, 5, 7]])
@pytest.mark.parametrize("opset", [11, 13])
def test_resize_sizes(mode, sizes, opset):
    empty = np.zeros(0, F32)
    inputs = [_image(), empty, empty, np.array(sizes, np.int64)]
    check_node("Resize", inputs, dict(mode=mode), opset=opset, **TOL)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("extrapolation_value", [0.0, -3.5])
def test_resize_tf_crop_and_resize(mode, extrapolation_value):
    roi = np.array([0, 0, 0.2, -0.3, 1, 1, 0.9, 1.4], F32)
    attrs = dict(
        mode=mode,
        coordinate_transformation_mode="tf_crop_and_resize",
        extrapolation_value=extrapolation_value,
    )
    inputs = [_image(), roi, None, np.array([1, 2, 4, 6], np.int64)]
    check_node("Resize", inputs, attrs, opset=19, **TOL)


def test_resize_tf_crop_and_resize_axes():
    roi = np.array([0.1, 0.3, 0.8, 0.9], F32)
    attrs = dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize", axes=[3, 2])
    inputs = [_image(), roi, None, np.array([6, 4], np.int64)]
    check_node("Resize", inputs, attrs, opset=18, **TOL)


@pytest.mark.parametrize("policy", ["stretch", "not_larger", "not_smaller"])
@pytest.mark.parametrize("axes", [[2, 3], [3, 2], [3, 1]])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_axes_keep_aspect(policy, axes, mode):
    attrs = dict(mode=mode, axes=axes, keep_aspect_ratio_policy=policy)
    inputs = [_image(), None, None, np.array([9, 4], np.int64)]
    check_node("Resize", inputs, attrs, opset=18, **TOL)


@pytest.mark.parametrize("axes", [[2, 3], [3, 1]])
def test_resize_axes_scales(axes):
    attrs = dict(mode="cubic", axes=axes)
    check_node("Resize", [_image(), None, np.array([1.5, 0.7], F32)], attrs, opset=19, **TOL)


@pytest.mark.parametrize("coord", COORDS)
@pytest.mark.parametrize("scales", [[1, 1, 2.0, 2.0], [1, 1, 3.0, 1.0], [1, 1, 1.0, 4.0]])
@pytest.mark.parametrize("nearest_mode", NEAREST_MODES)
def test_resize_nearest_whole_factors(coord, scales, nearest_mode):
    """Whole factors: where nearest picks j // factor the cells are repeated by a compiled loop,
    elsewhere gathered; the reference's values either way."""
    attrs = dict(mode="nearest", coordinate_transformation_mode=coord, nearest_mode=nearest_mode)
    check_node("Resize", [_image(), None, np.array(scales, F32)], attrs, opset=19)


@pytest.mark.parametrize(
    "dtype", [np.float32, np.float64, np.uint8, np.int64, np.bool_, np.float16]
)
def test_resize_repeated_cells_every_type_and_changing_scales(dtype):
    """Each cell repeated (nearest, asymmetric, floor, whole factors): the input's values
    exactly for every element type (float16 goes the gather way), with scales that change from
    run to run in one session (the plan is kept per input shape and scales)."""
    import ort_core as ort

    x = _image((2, 3, 4, 5), F32 if dtype == np.bool_ else dtype)
    x = x > 0 if dtype == np.bool_ else x
    attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    model, _ = make_node_model("Resize", [x, None, np.array([1, 1, 2, 2], F32)], attrs, opset=19)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for sh, sw in ((2, 2), (3, 1), (1, 4), (2, 2), (8, 3)):
        (got,) = session.run(None, {"x0": x, "x2": np.array([1, 1, sh, sw], F32)})
        expected = np.repeat(np.repeat(x, sh, axis=2), sw, axis=3)
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.uint8, np.int32, np.int8])
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_dtypes(dtype, mode):
    tol = {"rtol": 2e-3, "atol": 2e-3} if dtype == np.float16 else TOL
    if np.dtype(dtype).kind in "iu" and mode != "nearest":
        tol = {"rtol": 0, "atol": 1}  # rounding of exact .5 may differ by one
    x = _image((1, 3, 4, 6), dtype)
    check_node(
        "Resize", [x, None, np.array([1, 1, 1.5, 0.7], F32)], dict(mode=mode), opset=19, **tol
    )


def test_resize_bfloat16_nearest():
    x = _image((1, 1, 3, 4)).astype(ml_dtypes.bfloat16)
    model, feeds = make_node_model("Resize", [x, None, np.array([1, 1, 2, 1.5], F32)], {}, opset=19)
    got = run_cpu(model, feeds)[0]
    ref_model, ref_feeds = make_node_model(
        "Resize", [x.astype(F32), None, np.array([1, 1, 2, 1.5], F32)], {}, opset=19
    )
    expected = run_reference(ref_model, ref_feeds)[0]
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got.astype(F32), expected)


def test_resize_3d_and_5d():
    check_node("Resize", [_image((2, 3, 5)), None, np.array([1, 1, 2.5], F32)], dict(mode="linear"),
               opset=19, **TOL)  # fmt: skip
    x = _image((1, 1, 3, 4, 5))
    sizes = np.array([1, 1, 5, 3, 8], np.int64)
    check_node("Resize", [x, None, None, sizes], dict(mode="cubic"), opset=19, **TOL)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("scales", [[1, 1, 2.0, 3.0], [1, 1, 1.5, 2.5]])
def test_resize_10_upsampling(mode, scales):
    """Resize-10 maps coordinates asymmetrically; nearest truncates when upsampling."""
    x, s = _image(), np.array(scales, F32)
    ref_attrs = dict(mode=mode, coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    _check_equiv(
        "Resize", [x, s], dict(mode=mode), 10, "Resize", [x, None, s], ref_attrs, 11, **TOL
    )


def test_resize_10_nearest_downsampling():
    """Resize-10 nearest rounds up when downsampling."""
    x, s = _image(), np.array([1, 1, 0.6, 0.5], F32)
    ref_attrs = dict(
        mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="ceil"
    )
    _check_equiv("Resize", [x, s], dict(mode="nearest"), 10, "Resize", [x, None, s], ref_attrs, 11)


# -- Upsample --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [F32, np.int64, np.uint8])
def test_upsample_9_nearest(dtype):
    x = _image((1, 2, 3, 4), dtype)
    check_node("Upsample", [x, np.array([1, 1, 2, 3], F32)], dict(mode="nearest"), opset=9)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("opset", [7, 9])
def test_upsample_vs_resize(mode, opset):
    x, s = _image((1, 2, 3, 4)), np.array([1, 1, 2.5, 1.5], F32)
    inputs, attrs = (
        ([x, s], dict(mode=mode)) if opset == 9 else ([x], dict(mode=mode, scales=s.tolist()))
    )
    ref_attrs = dict(mode=mode, coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    _check_equiv("Upsample", inputs, attrs, opset, "Resize", [x, None, s], ref_attrs, 11, **TOL)


# -- DepthToSpace / SpaceToDepth -------------------------------------------------------------
@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("dtype", [F32, np.int64, np.bool_, np.float16])
@pytest.mark.parametrize("blocksize", [1, 2, 3])
def test_depth_to_space(mode, dtype, blocksize):
    x = (_rng().standard_normal((2, 2 * blocksize * blocksize, 3, 2)) > 0.2).astype(dtype)
    if dtype != np.bool_:
        x = _image((2, 2 * blocksize * blocksize, 3, 2), dtype)
    check_node("DepthToSpace", [x], dict(blocksize=blocksize, mode=mode), opset=13)


def test_depth_to_space_opset1_and_strings():
    check_node("DepthToSpace", [_image((1, 8, 2, 3))], dict(blocksize=2), opset=1)
    x = np.array([str(i) for i in range(2 * 4 * 2 * 3)], dtype=object).reshape(2, 4, 2, 3)
    check_node("DepthToSpace", [x], dict(blocksize=2, mode="CRD"), opset=13)


@pytest.mark.parametrize("dtype", [F32, np.int32, np.float64])
@pytest.mark.parametrize("blocksize", [1, 2, 3])
@pytest.mark.parametrize("opset", [1, 13])
def test_space_to_depth(dtype, blocksize, opset):
    x = _image((2, 3, 2 * blocksize, 3 * blocksize), dtype)
    check_node("SpaceToDepth", [x], dict(blocksize=blocksize), opset=opset)


# -- GridSample ------------------------------------------------------------------------------
def _grid(shape, seed=1, lim=1.3):
    return _rng(seed).uniform(-lim, lim, shape).astype(F32)


@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [0, 1])
@pytest.mark.parametrize("rank", [4, 5])
def test_grid_sample_20(mode, padding_mode, align_corners, rank):
    if rank == 4:
        x, g = _image((2, 3, 4, 5)), _grid((2, 3, 6, 2))
    else:
        x, g = _image((1, 2, 3, 4, 5)), _grid((1, 2, 3, 4, 3))
    attrs = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    check_node("GridSample", [x, g], attrs, opset=20, **TOL)


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_grid_sample_16(mode, padding_mode, align_corners):
    x, g = _image((2, 3, 4, 5)), _grid((2, 4, 3, 2), seed=3, lim=2.5)
    attrs = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    ref_attrs = dict(attrs, mode={"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode))
    _check_equiv("GridSample", [x, g], attrs, 16, "GridSample", [x, g], ref_attrs, 20, **TOL)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_grid_sample_dtypes(dtype):
    x, g = _image((1, 2, 4, 4), dtype), _grid((1, 3, 3, 2)).astype(dtype)
    tol = {"rtol": 5e-3, "atol": 5e-3} if dtype == np.float16 else TOL
    check_node("GridSample", [x, g], dict(mode="linear"), opset=20, **tol)


def test_grid_sample_nearest_int():
    x, g = _image((1, 2, 4, 4), np.int32), _grid((1, 3, 3, 2))
    check_node("GridSample", [x, g], dict(mode="nearest", padding_mode="border"), opset=20)


# -- AffineGrid ------------------------------------------------------------------------------
@pytest.mark.parametrize("align_corners", [0, 1])
@pytest.mark.parametrize("size", [[2, 3, 4, 5], [1, 1, 1, 3], [2, 1, 3, 4, 5]])
def test_affine_grid(align_corners, size):
    nd = len(size) - 2
    theta = _rng().standard_normal((size[0], nd, nd + 1)).astype(F32)
    check_node("AffineGrid", [theta, np.array(size, np.int64)], dict(align_corners=align_corners),
               opset=20, **TOL)  # fmt: skip


# -- Col2Im ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "image, block, attrs",
    [
        ([5, 5], [2, 2], {}),
        ([6, 7], [3, 2], dict(strides=[2, 1], pads=[1, 0, 1, 1], dilations=[1, 2])),
        ([4, 5, 3], [2, 2, 2], dict(pads=[1, 1, 0, 0, 1, 1])),
        ([9], [3], dict(strides=[2], dilations=[2], pads=[2, 1])),
    ],
)
@pytest.mark.parametrize("dtype", [F32, np.float64, np.int32])
def test_col2im(image, block, attrs, dtype):
    nd = len(image)
    st = attrs.get("strides", [1] * nd)
    dl = attrs.get("dilations", [1] * nd)
    pd = attrs.get("pads", [0] * 2 * nd)
    counts = [
        (image[i] + pd[i] + pd[nd + i] - dl[i] * (block[i] - 1) - 1) // st[i] + 1 for i in range(nd)
    ]
    x = _image((2, 3 * int(np.prod(block)), int(np.prod(counts))), dtype)
    inputs = [x, np.array(image, np.int64), np.array(block, np.int64)]
    check_node("Col2Im", inputs, attrs, opset=18, **TOL)


# -- CenterCropPad ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, target, axes",
    [
        ((5, 6, 3), [3, 9, 3], None),
        ((4, 7), [6, 2], None),
        ((2, 5, 6), [8, 3], [1, -1]),
        ((3, 3), [3], [0]),
        ((1, 0, 4), [2, 4], [1, 2]),
    ],
)
@pytest.mark.parametrize("dtype", [F32, np.int64, np.bool_])
def test_center_crop_pad(shape, target, axes, dtype):
    x = (_rng().standard_normal(shape) * 5).astype(dtype)
    attrs = {} if axes is None else dict(axes=axes)
    check_node("CenterCropPad", [x, np.array(target, np.int64)], attrs, opset=18)


# -- NonMaxSuppression -----------------------------------------------------------------------
def _boxes(batches, n, center, seed=0):
    r = _rng(seed)
    if center:
        xy = r.uniform(0, 10, (batches, n, 2))
        wh = r.uniform(0.5, 4, (batches, n, 2))
        return np.concatenate([xy, wh], -1).astype(F32)
    a = r.uniform(0, 10, (batches, n, 2))
    b = a + r.uniform(-4, 4, (batches, n, 2))  # corners in either order
    return np.concatenate([a[..., :1], a[..., 1:], b[..., :1], b[..., 1:]], -1).astype(F32)


@pytest.mark.parametrize("center_point_box", [0, 1])
@pytest.mark.parametrize("max_out, iou, score", [(3, 0.5, None), (10, 0.2, 0.4), (0, 0.5, 0.1),
                                                 (2, 0.0, 0.0), (100, 0.7, None)])  # fmt: skip
@pytest.mark.parametrize("opset", [10, 11])
def test_non_max_suppression(center_point_box, max_out, iou, score, opset):
    boxes = _boxes(2, 12, center_point_box)
    scores = _rng(1).uniform(0, 1, (2, 3, 12)).astype(F32)
    scores[0, 0, 3] = scores[0, 0, 5]  # a tie
    inputs = [boxes, scores, np.array([max_out], np.int64), np.array([iou], F32)]
    if score is not None:
        inputs.append(np.array([score], F32))
    check_node("NonMaxSuppression", inputs, dict(center_point_box=center_point_box), opset=opset)
