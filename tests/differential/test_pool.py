"""Pooling kernels against onnx's ReferenceEvaluator (and a loop oracle for MaxRoiPool, which the
reference does not implement)."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from .harness import (
    check_node,
    make_node_model,
    run_cpu,
    run_reference,
    spy_split_compiled,
    use_compiled,
)

TOL = {np.float16: (1e-3, 1e-3), np.float32: (1e-5, 1e-5), np.float64: (1e-12, 1e-12)}


def _rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


WINDOW_CASES = [
    # x shape, attrs
    ((1, 2, 9), {"kernel_shape": [3]}),
    ((2, 3, 10), {"kernel_shape": [2], "strides": [2], "pads": [1, 0]}),
    ((1, 2, 6, 7), {"kernel_shape": [3, 3]}),
    ((2, 3, 8, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 2, 7, 7), {"kernel_shape": [2, 3], "strides": [2, 1], "pads": [0, 1, 1, 0]}),
    ((1, 2, 7, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    (
        (1, 2, 6, 6),
        {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1, "pads": [1, 1, 1, 1]},
    ),
    ((1, 1, 5, 5), {"kernel_shape": [2, 2], "strides": [1, 1], "auto_pad": "SAME_UPPER"}),
    ((1, 1, 5, 6), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"}),
    ((1, 2, 3, 4, 5), {"kernel_shape": [2, 2, 2], "strides": [1, 2, 2]}),
    (
        (1, 2, 4, 5, 5),
        {"kernel_shape": [2, 3, 2], "pads": [1, 1, 0, 0, 1, 1], "strides": [2, 1, 2]},
    ),
]
DILATED = [
    ((1, 2, 8, 8), {"kernel_shape": [2, 2], "dilations": [2, 2]}),
    ((1, 2, 9, 8), {"kernel_shape": [3, 2], "dilations": [2, 3], "strides": [2, 1],
                    "pads": [1, 1, 1, 0]}),
]  # fmt: skip


@pytest.mark.parametrize("case", WINDOW_CASES + DILATED)
def test_max_pool(case):
    shape, attrs = case
    check_node("MaxPool", [_rand(np.random.default_rng(1), shape)], attrs)


@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize(
    "shape,attrs",
    [
        ((2, 3, 6, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ((1, 2, 8, 8), {"kernel_shape": [2, 2], "dilations": [2, 2]}),
        ((1, 2, 5, 7), {"kernel_shape": [2, 2], "strides": [1, 2]}),
    ],
)
def test_max_pool_indices(shape, attrs, storage_order):
    x = _rand(np.random.default_rng(2), shape)
    check_node("MaxPool", [x], {**attrs, "storage_order": storage_order}, n_outputs=2)


def test_max_pool_indices_1d_3d():
    rng = np.random.default_rng(3)
    check_node("MaxPool", [_rand(rng, (2, 3, 9))], {"kernel_shape": [3], "strides": [2]},
               n_outputs=2)  # fmt: skip
    check_node("MaxPool", [_rand(rng, (1, 2, 4, 5, 4))], {"kernel_shape": [2, 2, 2],
               "strides": [1, 2, 1]}, n_outputs=2)  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int8, np.uint8])
def test_max_pool_dtypes(dtype):
    rng = np.random.default_rng(4)
    if np.dtype(dtype).kind == "f":
        x = _rand(rng, (1, 3, 7, 7), dtype)
    else:
        x = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, (1, 3, 7, 7), dtype=dtype)
    check_node("MaxPool", [x], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]})


@pytest.mark.parametrize("opset", [1, 8, 10, 11, 12, 22])
def test_max_pool_opsets(opset):
    x = _rand(np.random.default_rng(opset), (1, 2, 6, 6))
    check_node("MaxPool", [x], {"kernel_shape": [3, 3], "strides": [2, 2]}, opset=opset)
    if opset >= 8:
        check_node("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2]}, opset=opset,
                   n_outputs=2)  # fmt: skip


def test_max_pool_bfloat16():
    x = _rand(np.random.default_rng(5), (1, 2, 6, 6)).astype(ml_dtypes.bfloat16)
    attrs = {"kernel_shape": [2, 2], "pads": [1, 1, 0, 0], "strides": [2, 1]}
    model, feeds = make_node_model("MaxPool", [x], attrs)
    (got,) = run_cpu(model, feeds)
    m32, f32 = make_node_model("MaxPool", [x.astype(np.float32)], attrs)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got.astype(np.float32), run_reference(m32, f32)[0])


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("case", WINDOW_CASES)
def test_average_pool(case, count_include_pad):
    shape, attrs = case
    x = _rand(np.random.default_rng(6), shape)
    check_node("AveragePool", [x], {**attrs, "count_include_pad": count_include_pad})


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "shape,attrs",
    [
        ((2, 272, 14, 14), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ((1, 40, 28, 28), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                           "count_include_pad": 1}),
        ((1, 33, 15, 15), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
        ((1, 20, 12, 13), {"kernel_shape": [2, 3], "dilations": [2, 1], "pads": [1, 0, 0, 2]}),
    ],
)  # fmt: skip
def test_average_pool_small_rows_run_channels_last(shape, attrs, threads, monkeypatch):
    """An average pool whose output rows fit in a vector (16 cells) sums its windows with the
    depthwise convolution's channels-last kernel, unit weights (pool._CompiledPool: planar, each
    short row's stride phases were a masked vector), its channels shared between two threads
    (the split forced): the reference's values, with pads counted or not, ceil mode's overhang,
    dilation. Host logic."""
    from ort_cpu.kernels import conv, pool

    import ort_core

    use_compiled(monkeypatch, True)
    monkeypatch.setattr(conv, "DIRECT_SPLIT_WORK", 0)
    handed = spy_split_compiled(monkeypatch)
    made = []
    real = pool._DepthwiseNHWCPlan

    def spy(*a):
        made.append(a)
        return real(*a)

    monkeypatch.setattr(pool, "_DepthwiseNHWCPlan", spy)
    x = _rand(np.random.default_rng(len(shape) + shape[1]), shape)
    model, feeds = make_node_model("AveragePool", [x], attrs, opset=19)
    so = ort_core.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort_core.InferenceSession(
        model.SerializeToString(), so, providers=["CPUExecutionProvider"]
    )
    got = sess.run(None, feeds)[0]
    assert made, "the channels-last plan was not used"
    # (shared in blocks of 16 channels: 20 stay on one thread)
    assert any(done for *_, done in handed) == (threads == 2 and shape[1] >= 32)
    np.testing.assert_allclose(got, run_reference(model, feeds)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("case", DILATED)
def test_average_pool_dilations(case, count_include_pad):
    shape, attrs = case
    x = _rand(np.random.default_rng(7), shape)
    check_node("AveragePool", [x], {**attrs, "count_include_pad": count_include_pad}, opset=19)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool_same_strided(auto_pad, count_include_pad):
    x = _rand(np.random.default_rng(8), (1, 2, 7, 8))
    attrs = {"kernel_shape": [3, 2], "strides": [2, 3], "auto_pad": auto_pad}
    check_node("AveragePool", [x], {**attrs, "count_include_pad": count_include_pad})


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_average_pool_dtypes(dtype):
    x = _rand(np.random.default_rng(8), (1, 3, 7, 7), dtype)
    rtol, atol = TOL[dtype]
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    check_node("AveragePool", [x], attrs, rtol=rtol, atol=atol)


@pytest.mark.parametrize("opset", [1, 7, 10, 11, 19, 22])
def test_average_pool_opsets(opset):
    x = _rand(np.random.default_rng(opset), (1, 2, 6, 6))
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2]}
    if opset >= 7:  # opset 1 has no count_include_pad; the reference counts pads there
        attrs.update(count_include_pad=1, pads=[1, 1, 1, 1])
    check_node("AveragePool", [x], attrs, opset=opset)


@pytest.mark.parametrize(
    "shape,attrs",
    [
        ((1, 2, 9), {"kernel_shape": [3], "strides": [2]}),
        ((1, 2, 6, 7), {"kernel_shape": [2, 3], "strides": [2, 2], "p": 3}),
        ((1, 2, 6, 6), {"kernel_shape": [2, 2], "p": 1}),
        ((1, 2, 3, 4, 4), {"kernel_shape": [2, 2, 2], "strides": [1, 2, 2]}),
        ((1, 2, 8, 8), {"kernel_shape": [2, 2], "dilations": [2, 2]}),
    ],
)
def test_lp_pool(shape, attrs):
    x = _rand(np.random.default_rng(9), shape)
    check_node("LpPool", [x], attrs, rtol=1e-5, atol=1e-5)


def test_lp_pool_pads_is_a_true_norm():
    """With padding the reference rescales by kernel size / valid count; the spec's Lp norm over
    the window (padding contributes zero) equals the unpadded norm on a zero-padded input."""
    x = _rand(np.random.default_rng(10), (1, 2, 5, 5))
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2]}
    model, feeds = make_node_model("LpPool", [x], {**attrs, "pads": [1, 1, 1, 1]})
    (got,) = run_cpu(model, feeds)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    check_node("LpPool", [padded], attrs)  # sanity: the oracle itself on the padded input
    m2, f2 = make_node_model("LpPool", [padded], attrs)
    np.testing.assert_allclose(got, run_reference(m2, f2)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opset", [1, 2, 11, 18])
def test_lp_pool_opsets(opset):
    x = _rand(np.random.default_rng(opset), (1, 2, 6, 6))
    p = 2.0 if opset == 1 else 2
    check_node("LpPool", [x], {"kernel_shape": [3, 3], "p": p}, opset=opset, rtol=1e-5)


def _global_lp_oracle(x, p):
    axes = tuple(range(2, x.ndim))
    x64 = x.astype(np.float64)
    return (np.abs(x64) ** p).sum(axis=axes, keepdims=True) ** (1.0 / p)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(1, 4, 3, 5), (2, 2, 2, 3, 4), (2, 3, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_global_pools(op, shape, dtype):
    if op == "GlobalMaxPool" and len(shape) != 4:
        pytest.skip("the reference gets this shape wrong: covered by test_global_max_pool_nd")
    x = _rand(np.random.default_rng(11), shape, dtype)
    rtol, atol = TOL[dtype]
    check_node(op, [x], rtol=rtol, atol=atol)


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 2, 2, 3, 4)])
def test_global_max_pool_nd(shape):
    """The reference keeps the wrong axes of GlobalMaxPool unless the input is 4-D: use numpy."""
    x = _rand(np.random.default_rng(11), shape)
    check_node("GlobalAveragePool", [x])
    model, feeds = make_node_model("GlobalMaxPool", [x])
    axes = tuple(range(2, x.ndim))
    np.testing.assert_array_equal(run_cpu(model, feeds)[0], x.max(axis=axes, keepdims=True))


@pytest.mark.parametrize("opset,p", [(1, 3.0), (2, 3), (2, 1), (2, 2), (22, 2)])
@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 5), (1, 2, 2, 3, 2)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_global_lp_pool(opset, p, shape, dtype):
    """The reference has no GlobalLpPool: compare with numpy in float64."""
    x = _rand(np.random.default_rng(12), shape, dtype)
    model, feeds = make_node_model("GlobalLpPool", [x], {"p": p}, opset=opset)
    (got,) = run_cpu(model, feeds)
    assert got.dtype == x.dtype
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(got.astype(np.float64), _global_lp_oracle(x, p), rtol=rtol,
                               atol=atol)  # fmt: skip


def _pool_indices(x, attrs):
    model, feeds = make_node_model("MaxPool", [x], attrs, n_outputs=2)
    return run_reference(model, feeds)


@pytest.mark.parametrize(
    "shape,attrs",
    [
        ((1, 2, 4, 4), {"kernel_shape": [2, 2], "strides": [2, 2]}),
        ((2, 2, 6), {"kernel_shape": [2], "strides": [2]}),
        ((1, 1, 4, 4, 4), {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2]}),
    ],
)
def test_max_unpool(shape, attrs):
    x = _rand(np.random.default_rng(13), shape)
    y, idx = _pool_indices(x, attrs)
    check_node("MaxUnpool", [y, idx], attrs)


@pytest.mark.parametrize(
    "shape,attrs",
    [
        ((1, 2, 5, 5), {"kernel_shape": [2, 2], "strides": [2, 2]}),
        ((1, 2, 6, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ],
)
def test_max_unpool_output_shape(shape, attrs):
    """With output_shape, MaxPool's indices address the original input (onnxruntime and PyTorch
    semantics; the reference addresses the inferred shape instead): the maxima land back where
    MaxPool found them."""
    x = _rand(np.random.default_rng(14), shape)
    y, idx = _pool_indices(x, attrs)
    model, feeds = make_node_model("MaxUnpool", [y, idx, np.array(shape, np.int64)], attrs)
    (got,) = run_cpu(model, feeds)
    expected = np.zeros(x.size, x.dtype)
    expected[idx.ravel()] = x.ravel()[idx.ravel()]
    np.testing.assert_array_equal(got, expected.reshape(shape))


def _round_half_away(v):
    return math.copysign(math.floor(abs(v) + 0.5), v)


def _max_roi_pool_oracle(x, rois, pooled_shape, spatial_scale):
    ph, pw = pooled_shape
    out = np.zeros((len(rois), x.shape[1], ph, pw), x.dtype)
    height, width = x.shape[2:]
    for n, roi in enumerate(rois):
        b = int(roi[0])
        x1, y1, x2, y2 = (int(_round_half_away(v * spatial_scale)) for v in roi[1:])
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for i in range(ph):
            hs = min(max(int(math.floor(i * rh / ph)) + y1, 0), height)
            he = min(max(int(math.ceil((i + 1) * rh / ph)) + y1, 0), height)
            for j in range(pw):
                ws = min(max(int(math.floor(j * rw / pw)) + x1, 0), width)
                we = min(max(int(math.ceil((j + 1) * rw / pw)) + x1, 0), width)
                if he > hs and we > ws:
                    out[n, :, i, j] = x[b, :, hs:he, ws:we].max(axis=(1, 2))
    return out


@pytest.mark.parametrize("spatial_scale", [1.0, 0.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_roi_pool(spatial_scale, dtype):
    rng = np.random.default_rng(14)
    x = _rand(rng, (2, 3, 8, 9), dtype)
    rois = np.array(
        [[0, 1, 1, 6, 5], [1, 0, 0, 8, 7], [0, 3.4, 2.6, 3.4, 2.6], [1, -2, -3, 20, 4],
         [0, 7, 6, 14, 16]],
        dtype,
    )  # fmt: skip
    model, feeds = make_node_model(
        "MaxRoiPool", [x, rois], {"pooled_shape": [3, 2], "spatial_scale": spatial_scale}
    )
    (got,) = run_cpu(model, feeds)
    expected = _max_roi_pool_oracle(x, rois, (3, 2), spatial_scale)
    assert got.dtype == x.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-6)


ROIS = np.array(
    [[0.3, 0.7, 4.2, 3.1], [1, 1, 2, 2], [0, 0, 5.9, 5.9], [-2, -1, 3, 8], [4.5, 4, 4.6, 4.2]],
    np.float32,
)  # fmt: skip


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("ctm", ["half_pixel", "output_half_pixel"])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align(mode, ctm, sampling_ratio):
    rng = np.random.default_rng(15)
    x = _rand(rng, (2, 3, 6, 7))
    batch = np.array([0, 1, 1, 0, 1], np.int64)
    attrs = {
        "mode": mode, "coordinate_transformation_mode": ctm, "sampling_ratio": sampling_ratio,
        "output_height": 3, "output_width": 2, "spatial_scale": 0.9,
    }  # fmt: skip
    check_node("RoiAlign", [x, ROIS, batch], attrs, rtol=1e-5, atol=1e-5)


def test_roi_align_opset10_uses_output_half_pixel():
    """Opset 10 has no coordinate_transformation_mode: the spec's rule is output_half_pixel (the
    reference applies opset 16's default there), so compare with opset 16 told so explicitly."""
    x = _rand(np.random.default_rng(16), (1, 2, 6, 6))
    batch = np.zeros(len(ROIS), np.int64)
    attrs = {"output_height": 2, "output_width": 3, "sampling_ratio": 2}
    model, feeds = make_node_model("RoiAlign", [x, ROIS, batch], attrs, opset=10)
    (got,) = run_cpu(model, feeds)
    m16, f16 = make_node_model(
        "RoiAlign", [x, ROIS, batch], {**attrs, "coordinate_transformation_mode":
                                       "output_half_pixel"}, opset=16
    )  # fmt: skip
    np.testing.assert_allclose(got, run_reference(m16, f16)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_roi_align_dtypes(dtype):
    x = _rand(np.random.default_rng(17), (1, 2, 5, 5), dtype)
    rois, batch = ROIS[:3].astype(dtype), np.zeros(3, np.int64)
    rtol, atol = (2e-3, 2e-3) if dtype == np.float16 else (1e-10, 1e-10)
    check_node("RoiAlign", [x, rois, batch], {"output_height": 2, "output_width": 2},
               rtol=rtol, atol=atol)  # fmt: skip


def _random_window(rng, channels=2):
    """A random 1-3-D window geometry whose output is not empty (ONNX: pads below the kernel)."""
    nd = int(rng.integers(1, 4))
    kernel = [int(k) for k in rng.integers(1, 4, nd)]
    strides = [int(s) for s in rng.integers(1, 4, nd)]
    dilations = [int(d) for d in rng.integers(1, 3, nd)]
    pads = [int(rng.integers(0, k)) for k in kernel] + [int(rng.integers(0, k)) for k in kernel]
    sizes = [int(rng.integers((k - 1) * d + 1, 9)) for k, d in zip(kernel, dilations)]
    attrs = {"kernel_shape": kernel, "strides": strides, "pads": pads, "dilations": dilations,
             "ceil_mode": int(rng.integers(0, 2))}  # fmt: skip
    return (1, channels, *sizes), attrs


def _loop_pool(x, attrs, op, count_include_pad=0, p=2):
    """Oracle: each output cell from its window's cells one by one. Cells inside the input are
    values; for averages with count_include_pad, padding cells count too, but not the cells past
    the padding that a ceil_mode window overhangs."""
    spatial = x.shape[2:]
    nd = len(spatial)
    k, s, d = attrs["kernel_shape"], attrs["strides"], attrs["dilations"]
    b, e = attrs["pads"][:nd], attrs["pads"][nd:]
    rnd = math.ceil if attrs["ceil_mode"] else math.floor
    out = []
    for i in range(nd):
        o = int(rnd((spatial[i] + b[i] + e[i] - ((k[i] - 1) * d[i] + 1)) / s[i])) + 1
        if attrs["ceil_mode"] and (o - 1) * s[i] >= spatial[i] + b[i]:
            o -= 1  # the last window must start inside the input or the leading padding
        out.append(o)
    y = np.zeros(x.shape[:2] + tuple(out), np.float64)
    for idx in np.ndindex(*out):
        vals, counted = [], 0
        for tap in np.ndindex(*k):
            pos = [idx[i] * s[i] - b[i] + tap[i] * d[i] for i in range(nd)]
            inside = all(0 <= pos[i] < spatial[i] for i in range(nd))
            if inside:
                vals.append(x[(slice(None), slice(None), *pos)].astype(np.float64))
            if inside or all(-b[i] <= pos[i] < spatial[i] + e[i] for i in range(nd)):
                counted += 1
        v = np.stack(vals)
        if op == "max":
            y[(slice(None), slice(None), *idx)] = v.max(0)
        elif op == "avg":
            y[(slice(None), slice(None), *idx)] = v.sum(0) / (
                counted if count_include_pad else len(vals)
            )
        else:
            y[(slice(None), slice(None), *idx)] = (np.abs(v) ** p).sum(0) ** (1 / p)
    return y


@pytest.mark.parametrize("channels", [2, 64])  # 64: the channels-last path for small maps
@pytest.mark.parametrize("seed", range(24))
def test_random_window_geometries(seed, channels):
    """Separable per-axis pooling over the unpadded input against a loop oracle, on random
    kernels, strides, dilations, pads and ceil_mode (onnx's reference disagrees with itself and
    with onnxruntime on some of these corners, so it is not the oracle here)."""
    rng = np.random.default_rng(100 + seed)
    shape, attrs = _random_window(rng, channels)
    x = _rand(rng, shape)
    include = seed % 2
    for op, name, extra, opset in (
        ("max", "MaxPool", {}, 12),
        ("avg", "AveragePool", {"count_include_pad": include}, 19),
        ("lp", "LpPool", {"p": 2}, 18),
    ):
        model, feed = make_node_model(name, [x], {**attrs, **extra}, opset=opset)
        got = run_cpu(model, feed)[0]
        want = _loop_pool(x, attrs, op, include)
        assert got.shape == want.shape, (name, attrs)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"{name} {attrs}")


@pytest.mark.parametrize("seed", range(24))
@pytest.mark.parametrize("path", ["numpy", "compiled"])
def test_random_stride1_windows_flat_layout(seed, path, monkeypatch):
    """2-D stride-1 windows (random kernels, dilations, pads, ceil_mode; two images of three
    channels, so windows run up against the next channel's padding) go through the flat layout
    (compiled kernels off) or the compiled direct kernel (on; a MaxPool whose output is its
    input's size the separable passes of ``_pool_jit``, another at dilation 1 its row
    buffer), and match the loop oracle."""
    from ort_cpu.kernels import pool

    if not use_compiled(monkeypatch, path == "compiled"):
        calls = []
        real = pool._flat_reduce
        monkeypatch.setattr(pool, "_flat_reduce", lambda *a: calls.append(1) or real(*a))
    else:
        calls = []
        real_call = pool._CompiledPool.__call__

        def spy(self, *a):
            got = real_call(self, *a)
            calls.append(got is not None)
            return got

        monkeypatch.setattr(pool._CompiledPool, "__call__", spy)
        real_same = pool._SamePool.__call__

        def spy_same(self, *a):  # MaxPool with an output of the input's size: the same path
            got = real_same(self, *a)
            if got is not None:
                calls.append(True)
            return got

        monkeypatch.setattr(pool._SamePool, "__call__", spy_same)
        real_rows = pool._RowsPool.__call__

        def spy_rows(self, *a):  # any other MaxPool at dilation 1: max_pool_rows
            got = real_rows(self, *a)
            if got is not None:
                calls.append(True)
            return got

        monkeypatch.setattr(pool._RowsPool, "__call__", spy_rows)
    _check_random_windows(500 + seed, [1, 1])
    assert calls == ([1, 1] if path == "numpy" else [True, True])


@pytest.mark.parametrize("seed", range(12))
def test_random_strided_windows_compiled(seed, monkeypatch):
    """The compiled direct kernel at strides 2 and 3 (its stride-phase planes; a MaxPool at
    dilation 1 ``_pool_jit.max_pool_rows``), random kernels, dilations, pads and ceil_mode,
    against the loop oracle."""
    use_compiled(monkeypatch, True)
    _check_random_windows(900 + seed, [2 + seed % 2, 2 + (seed // 2) % 2])


def _check_random_windows(seed, strides):
    rng = np.random.default_rng(seed)
    kernel = [int(k) for k in rng.integers(1, 4, 2)]
    dilations = [int(d) for d in rng.integers(1, 3, 2)]
    pads = [int(rng.integers(0, k)) for k in kernel] + [int(rng.integers(0, k)) for k in kernel]
    sizes = [int(rng.integers((k - 1) * d + 1, 12)) for k, d in zip(kernel, dilations)]
    attrs = {"kernel_shape": kernel, "strides": strides, "pads": pads, "dilations": dilations,
             "ceil_mode": int(rng.integers(0, 2))}  # fmt: skip
    x = _rand(rng, (2, 3, *sizes))
    include = seed % 2
    for op, name, extra, opset in (
        ("max", "MaxPool", {}, 12),
        ("avg", "AveragePool", {"count_include_pad": include}, 19),
    ):
        model, feed = make_node_model(name, [x], {**attrs, **extra}, opset=opset)
        got = run_cpu(model, feed)[0]
        want = _loop_pool(x, attrs, op, include)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"{name} {attrs}")


@pytest.mark.parametrize(
    "shape,attrs",
    [
        ((2, 5, 7, 7), {"kernel_shape": [7, 7]}),
        ((1, 3, 4, 6), {"kernel_shape": [4, 6], "strides": [2, 2], "pads": [0, 0, 1, 1]}),
        ((2, 4, 5), {"kernel_shape": [5]}),
    ],
)
def test_whole_input_window(shape, attrs, monkeypatch):
    """A single window covering the whole input (ShuffleNet's and the Inceptions' closing
    AveragePool 7x7) is one reduction over the spatial axes, never a tap-by-tap fold."""
    from ort_cpu.kernels import pool

    def no_fold(*a):
        raise AssertionError("folded tap by tap")

    monkeypatch.setattr(pool, "_reduce_axes", no_fold)
    monkeypatch.setattr(pool, "_flat_reduce", no_fold)
    nd = len(shape) - 2
    full = {"strides": [1] * nd, "dilations": [1] * nd, "pads": [0] * (2 * nd), "ceil_mode": 0}
    full.update(attrs)
    x = _rand(np.random.default_rng(7), shape)
    for op, name, extra, opset in (
        ("max", "MaxPool", {}, 12),
        ("avg", "AveragePool", {"count_include_pad": 0}, 19),
        ("avg", "AveragePool", {"count_include_pad": 1}, 19),
        ("lp", "LpPool", {"p": 2}, 18),
    ):
        model, feed = make_node_model(name, [x], {**attrs, **extra}, opset=opset)
        got = run_cpu(model, feed)[0]
        want = _loop_pool(x, full, op, extra.get("count_include_pad", 0))
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{name} {attrs}")
    xi = np.random.default_rng(8).integers(-128, 128, shape).astype(np.int8)
    model, feed = make_node_model("MaxPool", [xi], attrs, opset=12)
    np.testing.assert_array_equal(run_cpu(model, feed)[0], _loop_pool(xi, full, "max", 0))


@pytest.mark.parametrize(
    "window, probe",
    [
        ({"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, (3, 4)),
        # unit stride: the row loops that load each input row once for every output row
        ({"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1]}, (4, 8)),
        ({"kernel_shape": [5, 5], "strides": [1, 1], "pads": [2, 2, 2, 2]}, (7, 5)),
    ],
)
@pytest.mark.parametrize("name", ["MaxPool", "AveragePool"])
def test_compiled_pools_keep_nan_and_share_channels(name, window, probe, monkeypatch):
    """The compiled pools against the numpy path, bit for bit (NaN and infinities in some
    windows: np.maximum's NaN; ``probe`` is an output whose window holds the NaN), and at two
    threads (channels shared as compiled pieces on the pool) the one-thread result."""
    from ort_cpu import _threads

    import ort_core

    rng = np.random.default_rng(77)
    x = _rand(rng, (1, 24, 112, 112))  # enough work to share at two threads
    x[0, 3, 5, 7], x[0, 4, 10, 10], x[0, 5, 0, 0] = np.nan, np.inf, -np.inf
    model, feed = make_node_model(name, [x], window, opset=19)

    def run(threads):
        so = ort_core.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort_core.InferenceSession(
            model.SerializeToString(), so, providers=["CPUExecutionProvider"]
        )
        return sess.run(None, feed)[0]

    use_compiled(monkeypatch, True)
    spinning = _threads.spin_supported()  # (asked before the compiled kernels are turned off)
    shared = []
    split = _threads.split_compiled
    monkeypatch.setattr(
        _threads, "split_compiled", lambda *a, **k: shared.append(split(*a, **k)) or shared[-1]
    )
    one, two = run(1), run(2)
    monkeypatch.undo()
    use_compiled(monkeypatch, False)
    numpy_path = run(1)
    np.testing.assert_array_equal(one, numpy_path if name == "MaxPool" else one)
    np.testing.assert_allclose(one, numpy_path, rtol=1e-6, atol=1e-6)
    assert np.isnan(one[(0, 3, *probe)]) and np.isnan(numpy_path[(0, 3, *probe)])
    if spinning:
        assert True in shared, shared
    np.testing.assert_array_equal(two, one)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "width, attrs",
    [
        (111, {"kernel_shape": [3, 3], "strides": [2, 2]}),  # SqueezeNet's: 55 a row
        (112, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        (34, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),  # 17: one vector + 1
        (33, {"kernel_shape": [3, 3], "strides": [2, 2]}),  # 16: one whole vector of float32
        (31, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 1, 0, 1]}),  # 16
        (80, {"kernel_shape": [2, 2], "strides": [2, 2]}),  # 40
        (33, {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),  # 17
        (32, {"kernel_shape": [2, 2], "strides": [2, 2]}),  # 16
        # rows shorter than a vector (under a mask), windows reaching the last column
        (7, {"kernel_shape": [3, 3], "strides": [2, 2]}),
        (9, {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
        (15, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ],
)
def test_rows_of_stride_two_max_pools(width, attrs, dtype, monkeypatch):
    """Device code of this CPU (compiled): a MaxPool's windows of 2 or 3 columns at stride 2
    (``_pool_jit.max_pool_rows``) take a row's maxima down the window rows
    (``_taps.rows2_max_cells`` / ``rows3_max_cells``) and its outputs
    (``pair_max2_cells`` / ``pair_max3_cells``) in vectors of 16 float32 or 8 float64, the
    last partial one a whole vector ending at the row's end, or under a mask in a row shorter
    than a vector; rows of whole vectors, a vector and one cell, many vectors and a tail, and
    short rows, padded and in ceil mode, with NaN, infinities and -0.0 spread over the lanes:
    the numpy path's values bit for bit (np.maximum's NaN), and the loop oracle's."""
    rng = np.random.default_rng(width + len(attrs))
    x = _rand(rng, (1, 3, 7, width), dtype)
    flat = x.reshape(-1)
    for value, count in ((np.nan, 9), (np.inf, 5), (-np.inf, 5), (-0.0, 5)):
        flat[rng.choice(flat.size, count, replace=False)] = value
    model, feed = make_node_model("MaxPool", [x], attrs, opset=12)
    use_compiled(monkeypatch, True)
    compiled = run_cpu(model, feed)[0]
    use_compiled(monkeypatch, False)
    numpy_path = run_cpu(model, feed)[0]
    np.testing.assert_array_equal(compiled, numpy_path)
    assert np.array_equal(np.signbit(compiled), np.signbit(numpy_path))
    full = {"strides": [2, 2], "dilations": [1, 1], "pads": [0, 0, 0, 0], "ceil_mode": 0}
    np.testing.assert_array_equal(compiled, _loop_pool(x, {**full, **attrs}, "max", 0))


SAME_SIZE = [
    # (x shape, attrs): stride 1, output the input's size
    ((2, 3, 7, 7), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    ((1, 5, 6, 9), {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2]}),
    ((1, 4, 5, 5), {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 4, 5, 6), {"kernel_shape": [2, 4], "auto_pad": "SAME_LOWER"}),
    ((1, 3, 4, 7), {"kernel_shape": [3, 1], "pads": [0, 0, 2, 0]}),
    ((1, 3, 6, 4), {"kernel_shape": [1, 3], "pads": [0, 2, 0, 0]}),
    ((3, 2, 1, 1), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    ((1, 2, 2, 3), {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2]}),
    ((1, 9, 1, 8), {"kernel_shape": [1, 4], "pads": [0, 3, 0, 0]}),
    ((1, 1, 9, 1), {"kernel_shape": [4, 1], "pads": [1, 0, 2, 0]}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SAME_SIZE)
def test_max_pool_stride_one_same_size_matches_onnxruntime(case, dtype, monkeypatch):
    """Device code of this CPU (compiled): unit-stride MaxPools whose output is the input's size
    take the separable passes of ``_pool_jit.max_pool_same`` (whole planes flat, the windows
    overhanging a plane's edges redone), bit for bit onnxruntime's (inf at a plane's edge), and
    with NaN and -inf at its corners the provider's numpy path's (np.maximum's NaN, as the
    other compiled pools: onnxruntime's MLAS skips NaN, and gives -FLT_MAX for a window of
    -inf alone)."""
    onnxruntime = pytest.importorskip("onnxruntime")
    from ort_cpu.kernels import _pool_jit

    use_compiled(monkeypatch, True)
    calls = []
    same = _pool_jit.max_pool_same
    monkeypatch.setattr(same, "get", lambda: lambda *a: calls.append(a[2:6]) or real(*a))
    real = same.jitted()
    shape, attrs = case
    rng = np.random.default_rng(len(calls) + sum(shape))
    x = _rand(rng, shape, dtype)
    h, w = shape[2:]
    x[0, -1, h // 2, w - 1] = np.inf  # (-inf alone in a window: MLAS gives -FLT_MAX there)
    model, feed = make_node_model("MaxPool", [x], attrs, opset=12)
    got = run_cpu(model, feed)[0]
    assert calls, "the stride-1 same-size path was not taken"
    ref = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    ).run(None, feed)[0]
    np.testing.assert_array_equal(got, ref)
    x[0, 0, 0, 0] = np.nan
    x[-1, -1, h - 1, w - 1] = np.nan
    for at in {(0, 0, h - 1, 0), (0, 0, 0, w - 1)} - {(0, 0, 0, 0)}:
        if at[2:] != (h - 1, w - 1) or x.shape[:2] != (1, 1):
            x[at] = -np.inf
    model, feed = make_node_model("MaxPool", [x], attrs, opset=12)
    got = run_cpu(model, feed)[0]
    assert np.isnan(got[0, 0, 0, 0]) and np.isnan(got[-1, -1, h - 1, w - 1])
    monkeypatch.undo()
    use_compiled(monkeypatch, False)
    np.testing.assert_array_equal(got, run_cpu(model, feed)[0])
