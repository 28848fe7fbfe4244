"""The arithmetic ort_core.ops holds, run by every provider against onnxruntime: Conv, ConvTranspose
and the pools with every auto_pad mode (CPU, OpenCL, OpenVINO), Resize with ``axes`` (CPU and
OpenCL; OpenVINO declines Resize with axes its frontend cannot convert), and the shapes of
Reshape, Slice, Split, Pad, Squeeze and Unsqueeze (CPU, OpenCL and the shared ort_array kernels
alone). Each case runs on one provider (the CPU provider as the fallback it is in practice) and
asserts where it ran, so a provider that declines a node it should take fails here instead of
passing on the CPU provider's result."""

from __future__ import annotations

import re

import numpy as np
import pytest

import ort_core
from tests.differential.harness import assert_same, make_node_model

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle of these tests")

CPU = "CPUExecutionProvider"
OPENCL = "OpenCLExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"
AUTO_PADS = ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]


def _availability() -> dict[str, str | None]:
    """Provider -> None when available, else why not."""
    from ort_core.plugins import get_plugin_manager

    out = {}
    for name in (CPU, OPENCL, OPENVINO):
        entry = get_plugin_manager().resolve(name)
        if entry is None:
            out[name] = f"{name} is not installed"
            continue
        avail = entry.availability()
        out[name] = None if avail else f"{name} is unavailable: {avail.reason}"
    return out


_WHY_NOT = _availability()
PROVIDERS = [
    pytest.param(p, marks=pytest.mark.skipif(_WHY_NOT[p] is not None, reason=_WHY_NOT[p] or ""))
    for p in (CPU, OPENCL, OPENVINO)
]


def _placement(sess) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sub in sess.placements:
        counts[sub.ep_name] = counts.get(sub.ep_name, 0) + len(sub.get_nodes())
    return counts


def check(provider, op, inputs, attrs, opset=19, rtol=1e-4, atol=1e-5, on=None):
    """Run one node on ``provider`` (CPU as fallback) and on onnxruntime; the outputs must agree
    and the node must have run on ``on`` (default: ``provider``)."""
    model, feeds = make_node_model(op, inputs, attrs, opset=opset)
    data = model.SerializeToString()
    # OpenVINO claims these one-node models (by default the CPU provider runs graphs that small)
    first = (provider, {"min_cpu_work": "0"}) if provider == OPENVINO else provider
    sess = ort_core.InferenceSession(data, providers=[first, CPU] if provider != CPU else [CPU])
    where = _placement(sess)
    assert set(where) == {on or provider}, (
        f"{op} {attrs} ran on {where}; reasons: {sess.placement_reasons}"
    )
    expected = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = sess.run(None, feeds)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert_same(e, g, rtol, atol, f"{op} {attrs} output {i} on {provider}")


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# -- windows -------------------------------------------------------------------------------------
def _pads(auto_pad, pads):
    return {"pads": pads} if auto_pad == "NOTSET" else {}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("auto_pad", AUTO_PADS)
@pytest.mark.parametrize(
    "x, w, attrs",
    [
        ((1, 3, 7, 8), (4, 3, 3, 3), {"strides": [2, 2]}),
        ((2, 4, 9, 6), (6, 2, 2, 3), {"strides": [3, 2], "group": 2}),
        ((1, 2, 11), (3, 2, 4), {"strides": [3]}),
        ((1, 2, 6, 6), (2, 2, 3, 3), {}),
    ],
    ids=["2d-stride2", "groups-stride32", "1d-even-kernel", "stride1"],
)
def test_conv_auto_pad(provider, auto_pad, x, w, attrs):
    attrs = {**attrs, "auto_pad": auto_pad, **_pads(auto_pad, [1, 0, 2, 1][: 2 * (len(x) - 2)])}
    check(provider, "Conv", [_rand(*x), _rand(*w, seed=1)], attrs)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("auto_pad", AUTO_PADS)
def test_conv_dilated_explicit_pads(provider, auto_pad):
    """Dilations with NOTSET and VALID (onnxruntime refuses dilated SAME convolutions)."""
    if auto_pad.startswith("SAME"):
        pytest.skip(
            "onnxruntime: 'Dilation not supported for AutoPadType::SAME_UPPER or SAME_LOWER'"
        )
    attrs = {
        "auto_pad": auto_pad,
        "dilations": [2, 1],
        "strides": [1, 2],
        **_pads(auto_pad, [2, 1, 1, 0]),
    }
    check(provider, "Conv", [_rand(1, 2, 9, 8), _rand(3, 2, 3, 3, seed=1)], attrs)


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p.values[0] != OPENCL])
@pytest.mark.parametrize("auto_pad", AUTO_PADS)
@pytest.mark.parametrize("output_shape", [None, [12, 15], [16, 18]])
def test_conv_transpose_auto_pad(provider, auto_pad, output_shape):
    """ConvTranspose (no OpenCL kernel) with every auto_pad, with and without output_shape."""
    attrs = {"auto_pad": auto_pad, "strides": [2, 2]}
    if output_shape is not None:
        attrs["output_shape"] = output_shape
    elif auto_pad == "NOTSET":
        attrs["pads"] = [1, 0, 0, 2]
    # a known OpenVINO difference: it declines these and the CPU provider runs them
    ov_declines = provider == OPENVINO and auto_pad == "SAME_UPPER" and output_shape is not None
    inputs = [_rand(1, 2, 7, 8), _rand(2, 3, 3, 3, seed=1)]
    check(provider, "ConvTranspose", inputs, attrs, on=CPU if ov_declines else provider)


POOL_CASES = [
    ({"kernel_shape": [3, 2], "strides": [2, 2]}, (1, 2, 7, 8)),
    ({"kernel_shape": [3, 3], "strides": [3, 2], "ceil_mode": 1}, (2, 3, 8, 7)),
    ({"kernel_shape": [2, 2], "strides": [1, 1]}, (1, 1, 5, 6)),
    ({"kernel_shape": [4], "strides": [3]}, (1, 3, 11)),
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("auto_pad", AUTO_PADS)
@pytest.mark.parametrize("attrs, shape", POOL_CASES, ids=str)
def test_pool_auto_pad(provider, op, auto_pad, attrs, shape):
    nd = len(shape) - 2
    attrs = {**attrs, "auto_pad": auto_pad, **_pads(auto_pad, [1, 0, 0, 1][: 2 * nd])}
    if op == "AveragePool":
        attrs["count_include_pad"] = 1 if auto_pad == "SAME_LOWER" else 0
    on = provider
    if provider == OPENVINO and attrs.get("ceil_mode") and auto_pad in ("NOTSET", "VALID"):
        # OpenVINO keeps a last ceil-mode window that starts in the padding: it declines these
        # (ort_core.ops.ceil_window_dropped) and the CPU provider runs them
        geo = [
            __import__("ort_core").ops.ceil_window_dropped(d, k, s, 1, b, e)
            for d, k, s, b, e in zip(
                shape[2:], attrs["kernel_shape"], attrs["strides"], *_split(attrs, nd)
            )
        ]
        on = CPU if any(geo) else OPENVINO
    check(provider, op, [_rand(*shape)], attrs, on=on)


def _split(attrs, nd):
    pads = attrs.get("pads") or [0] * (2 * nd)
    return pads[:nd], pads[nd:]


# -- Resize with axes ----------------------------------------------------------------------------
# onnxruntime interpolates (linear, cubic) only the spatial axes of a 4-D input, and rounds float32
# coordinates: scales here put no nearest coordinate on a tie where float32 and float64 differ.
RESIZE_PROVIDERS = [p for p in PROVIDERS if p.values[0] != OPENVINO]


@pytest.mark.parametrize("provider", RESIZE_PROVIDERS)
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("axes", [[2, 3], [3, 2], [-1], [-2]])
def test_resize_axes_scales(provider, mode, axes):
    scales = np.array([1.5, 0.65][: len(axes)], np.float32)
    attrs = {"mode": mode, "axes": axes}
    check(provider, "Resize", [_rand(1, 2, 5, 7), None, scales], attrs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("provider", RESIZE_PROVIDERS)
@pytest.mark.parametrize(
    "mode, shape, axes",
    [
        ("nearest", (1, 2, 5, 7), [3, 1]),
        ("nearest", (2, 3, 4), [0, 2]),
        ("linear", (2, 5, 7), [2, 1]),
    ],
)
def test_resize_axes_beyond_the_image(provider, mode, shape, axes):
    """Axes that are not the trailing spatial ones: channels, batch, a 3-D input."""
    scales = np.array([1.5, 2.0], np.float32)
    check(provider, "Resize", [_rand(*shape), None, scales], {"mode": mode, "axes": axes})


@pytest.mark.parametrize("provider", RESIZE_PROVIDERS)
@pytest.mark.parametrize("policy", ["stretch", "not_larger", "not_smaller"])
@pytest.mark.parametrize("axes", [[2, 3], [3, 2]])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_axes_sizes(provider, policy, axes, mode):
    attrs = {"mode": mode, "axes": axes, "keep_aspect_ratio_policy": policy}
    inputs = [_rand(1, 2, 5, 7), None, None, np.array([9, 4], np.int64)]
    check(provider, "Resize", inputs, attrs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("provider", RESIZE_PROVIDERS)
def test_resize_axes_crop_and_resize(provider):
    attrs = {
        "mode": "linear",
        "coordinate_transformation_mode": "tf_crop_and_resize",
        "axes": [3, 2],
    }
    roi = np.array([0.1, 0.3, 0.8, 0.9], np.float32)
    inputs = [_rand(1, 2, 5, 7), roi, None, np.array([6, 4], np.int64)]
    check(provider, "Resize", inputs, attrs, rtol=1e-4, atol=1e-4)


# -- shape arithmetic: Reshape, Slice, Split, Pad, Squeeze/Unsqueeze -----------------------------
# The CPU and OpenCL providers and the shared ort_array kernels alone (a provider that has nothing
# else, with CPU fallback disabled) all take these rules from ort_core.ops.
ARRAY = "ArrayNumpyExecutionProvider"
SHAPE_PROVIDERS = [p for p in PROVIDERS if p.values[0] != OPENVINO] + [ARRAY]
INT_MAX, INT_MIN = 2**63 - 1, -(2**63)


def _i64(*v):
    return np.array(v, np.int64)


def _session(provider, model, register_provider):
    data = model.SerializeToString()
    if provider != ARRAY:
        return ort_core.InferenceSession(data, providers=list(dict.fromkeys([provider, CPU])))
    from tests.providers.array._providers import ArrayNumpyProvider

    register_provider(ArrayNumpyProvider)
    so = ort_core.SessionOptions()
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    return ort_core.InferenceSession(data, so, providers=[ARRAY])


def check_shape(provider, register_provider, op, inputs, attrs, opset=19, n_outputs=1, on=None):
    """``check`` for the shape ops: several outputs, and the ort_array-only provider."""
    model, feeds = make_node_model(op, inputs, attrs, opset=opset, n_outputs=n_outputs)
    sess = _session(provider, model, register_provider)
    where = _placement(sess)
    assert set(where) == {on or provider}, f"{op} {attrs} ran on {where}"
    data = model.SerializeToString()
    expected = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = sess.run(None, feeds)
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert_same(e, g, 0, 0, f"{op} {attrs} output {i} on {provider}")


def _x(*shape):
    return np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)


@pytest.mark.parametrize("provider", SHAPE_PROVIDERS)
@pytest.mark.parametrize(
    "shape, dims, allowzero",
    [
        ((2, 3, 4), [0, -1], 0),
        ((2, 3, 4), [4, 0, -1], 0),
        ((0, 3), [-1, 3], 0),
        ((0, 3), [3, 0], 1),
        ((2, 3, 4), [-1], 0),
        ((2, 3, 4), [2, 0, 2, 2], 0),
    ],
    ids=str,
)
def test_reshape(provider, register_provider, shape, dims, allowzero):
    inputs = [_x(*shape), _i64(*dims)]
    check_shape(provider, register_provider, "Reshape", inputs, {"allowzero": allowzero})


SLICES = [
    # starts, ends, axes, steps
    ([-10, 1], [-20, INT_MAX], [0, -1], [-1, 2]),  # a start below -dim with a negative step
    ([8], [INT_MAX], [0], [-3]),  # INT_MAX as the end of a backwards slice
    ([INT_MAX, -2], [INT_MIN, 1], [2, 1], [-2, -1]),
    ([1, 1], [100, -1], None, None),  # clamped ends, default axes and steps
    ([-3, 0, 2], [-1, 0, 7], [-3, -2, -1], [1, 1, 2]),  # an empty axis
]


@pytest.mark.parametrize("provider", SHAPE_PROVIDERS)
@pytest.mark.parametrize("starts, ends, axes, steps", SLICES, ids=str)
def test_slice(provider, register_provider, starts, ends, axes, steps):
    inputs = [_x(5, 6, 7), _i64(*starts), _i64(*ends)]
    inputs += [None if axes is None else _i64(*axes), None if steps is None else _i64(*steps)]
    while inputs[-1] is None:
        inputs.pop()
    check_shape(provider, register_provider, "Slice", inputs, {})


@pytest.mark.parametrize("provider", SHAPE_PROVIDERS)
def test_slice_opset_1_attributes(provider, register_provider):
    attrs = {"starts": [-10, 1], "ends": [3, INT_MAX], "axes": [0, -1]}
    check_shape(provider, register_provider, "Slice", [_x(5, 6, 7)], attrs, opset=9)


@pytest.mark.parametrize("provider", SHAPE_PROVIDERS)
@pytest.mark.parametrize(
    "shape, axis, n, split, opset",
    [
        ((7, 4), 0, 3, None, 18),  # num_outputs: 3, 3, 1
        ((7, 4), -1, 3, None, 18),  # 2, 2, 0
        ((6, 4), 0, 3, None, 13),  # equal thirds
        ((6, 4), 0, 2, [1, 5], 13),
        ((6, 4), 1, 2, [0, 4], 18),
    ],
    ids=str,
)
def test_split(provider, register_provider, shape, axis, n, split, opset):
    attrs = {"axis": axis}
    inputs = [_x(*shape)]
    if split is not None:
        inputs.append(_i64(*split))
    elif opset >= 18:
        attrs["num_outputs"] = n
    check_shape(provider, register_provider, "Split", inputs, attrs, opset=opset, n_outputs=n)


@pytest.mark.parametrize("provider", SHAPE_PROVIDERS)
@pytest.mark.parametrize(
    "pads, axes, mode",
    [
        ([1, -1, 2, -2], [0, -1], "constant"),  # axes and negative pads
        ([1, 2, -1, 0, 0, 3], None, "constant"),
        ([4, -6], [1], "constant"),  # a crop deeper than the axis: only padding is left
        ([1, -1, 2, -2], [0, -1], "edge"),
        ([2, 1, 1, 2], [2, 1], "reflect"),
    ],
    ids=str,
)
def test_pad(provider, register_provider, pads, axes, mode):
    inputs = [_x(3, 4, 5), _i64(*pads), np.array(7, np.float32)]
    if axes is not None:
        inputs.append(_i64(*axes))
    on = CPU if provider == OPENCL and mode != "constant" else None  # OpenCL pads with constants
    check_shape(provider, register_provider, "Pad", inputs, {"mode": mode}, on=on)


@pytest.mark.parametrize("provider", SHAPE_PROVIDERS)
@pytest.mark.parametrize(
    "op, shape, axes",
    [
        ("Unsqueeze", (2, 3), [-1, 0]),
        ("Unsqueeze", (2, 3), [1, 3]),
        ("Squeeze", (1, 3, 1, 2), [0, -2]),
        ("Squeeze", (1, 3, 1, 2), None),
        ("Squeeze", (1, 3, 1, 2), []),  # empty axes: every axis of size 1
    ],
    ids=str,
)
def test_squeeze_unsqueeze(provider, register_provider, op, shape, axes):
    inputs = [_x(*shape)] + ([] if axes is None else [_i64(*axes)])
    check_shape(provider, register_provider, op, inputs, {}, opset=13)


@pytest.mark.parametrize("provider", SHAPE_PROVIDERS)
@pytest.mark.parametrize(
    "op, inputs, attrs, opset, n_outputs, message",
    [
        ("Split", [_x(2)], {"num_outputs": 4}, 18, 4, "Split: num_outputs=4 chunks of 1"),
        ("Split", [_x(7)], {}, 13, 3, "Split: an axis of 7 does not split evenly into 3"),
        ("Slice", [_x(5), _i64(0), _i64(3), _i64(0), _i64(0)], {}, 19, 1, "Slice: the step"),
        ("Reshape", [_x(2, 3), _i64(-1, -1)], {}, 19, 1, "Reshape: shape [-1, -1] has 2"),
        ("Squeeze", [_x(2, 3), _i64(0)], {}, 13, 1, "Squeeze: axis 0 of the input [2, 3]"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_invalid_arguments(
    provider, register_provider, op, inputs, attrs, opset, n_outputs, message
):
    """Arguments onnxruntime refuses are refused on every provider, with the same message."""
    model, feeds = make_node_model(op, inputs, attrs, opset=opset, n_outputs=n_outputs)
    sess = _session(provider, model, register_provider)
    assert set(_placement(sess)) == {provider}
    with pytest.raises(ort_core.errors.OrtError, match=re.escape(message)):
        sess.run(None, feeds)
