"""The arithmetic ort_core.ops holds, run by every provider against onnxruntime: Conv, ConvTranspose
and the pools with every auto_pad mode (CPU, OpenCL, OpenVINO), and Resize with ``axes`` (CPU and
OpenCL; OpenVINO declines Resize with axes its frontend cannot convert). Each case runs on one provider
(the CPU provider as the fallback it is in practice) and asserts where it ran, so a provider that
declines a node it should take fails here instead of passing on the CPU provider's result."""

from __future__ import annotations

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
    sess = ort_core.InferenceSession(data, providers=list(dict.fromkeys([provider, CPU])))
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
