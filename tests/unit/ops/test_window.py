"""ort_core.ops window geometry: hand-worked ONNX examples, onnx's reference implementation over a
grid of shapes, and the invalid-node reasons."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from onnx.reference.ops.op_pool_common import (
    get_output_shape_auto_pad,
    get_output_shape_explicit_padding,
    get_pad_shape,
    get_pad_with_auto_pad,
)

from ort_core import ops
from ort_core.errors import InvalidArgument
from tests.differential.harness import make_node_model, run_reference


# -- hand-worked examples --------------------------------------------------------------------
@pytest.mark.parametrize(
    "size, kernel, stride, dilation, auto_pad, pads",
    [
        (5, 3, 2, 1, "SAME_UPPER", (1, 1)),  # 3 outputs: (3-1)*2 + 3 - 5 = 2 cells of padding
        (6, 3, 2, 1, "SAME_UPPER", (0, 1)),  # 3 outputs: 1 cell, at the end for UPPER
        (6, 3, 2, 1, "SAME_LOWER", (1, 0)),  # ... and at the beginning for LOWER
        (7, 3, 1, 2, "SAME_UPPER", (2, 2)),  # dilated kernel spans 5 cells: 4 cells of padding
        (5, 2, 1, 1, "SAME_LOWER", (1, 0)),
        (5, 1, 3, 1, "SAME_UPPER", (0, 0)),  # stride > kernel: 2 outputs need no padding
    ],
)
def test_same_pads(size, kernel, stride, dilation, auto_pad, pads):
    assert ops.same_pads(size, kernel, stride, dilation, auto_pad) == pads


@pytest.mark.parametrize(
    "args, floor, ceil",
    [
        ((4, 3, 2, 1, 0, 0), 1, 2),  # the spec's maxpool_2d_ceil: (4 - 3) / 2 + 1 = 1.5
        ((5, 2, 2, 1, 1, 1), 3, 3),  # ceil would give 4, but the 4th window starts in the pad
        ((32, 5, 1, 1, 0, 0), 28, 28),  # maxpool_2d_default
        ((8, 3, 2, 2, 1, 1), 3, 4),  # dilated: (8 + 2 - 5) / 2 + 1 = 3.5
        ((2, 5, 1, 1, 0, 0), 0, 0),  # a window larger than the input: no output
    ],
)
def test_window_output_size(args, floor, ceil):
    assert ops.window_output_size(*args) == floor
    assert ops.window_output_size(*args, ceil_mode=True) == ceil


def test_ceil_window_dropped():
    assert ops.ceil_window_dropped(5, 2, 2, 1, 1, 1)  # (4 - 1) * 2 = 6 >= 5 + 1
    assert not ops.ceil_window_dropped(4, 3, 2, 1, 0, 0)


def test_window_reach():
    # ceil_mode maxpool_2d_ceil: 2 windows of 3 at stride 2 reach cell 4 of a 4-cell input
    assert ops.window_reach(4, 2, 3, 2, 1, 0) == 1
    assert ops.window_reach(5, 2, 2, 2, 1, 0) == -1  # the last cell is never read


def test_window_geometry_auto_pad_modes():
    args = ((6, 7), (3, 3), (2, 2), (1, 1), (1, 0, 2, 1))
    assert ops.window_geometry(*args, "NOTSET") == ((4, 3), (1, 0), (2, 1))
    assert ops.window_geometry(*args, "") == ((4, 3), (1, 0), (2, 1))
    assert ops.window_geometry(*args, "VALID") == ((2, 3), (0, 0), (0, 0))
    assert ops.window_geometry(*args, "SAME_UPPER") == ((3, 4), (0, 1), (1, 1))
    assert ops.window_geometry(*args, "SAME_LOWER") == ((3, 4), (1, 1), (0, 1))
    # SAME ignores ceil_mode; VALID and NOTSET honour it
    assert ops.window_geometry(*args[:4], None, "SAME_UPPER", True).out == (3, 4)
    assert ops.window_geometry(*args[:4], None, "VALID", True).out == (3, 3)


# -- against onnx's reference implementation -----------------------------------------------------
GRID = list(itertools.product([1, 4, 5, 8], [1, 2, 3], [1, 2, 3], [1, 2]))


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_explicit_pads_match_reference(ceil_mode):
    for size, kernel, stride, dilation in GRID:
        for pads in ([0, 0], [1, 0], [1, 2], [2, 2]):
            if pads[0] >= (kernel - 1) * dilation + 1:
                continue  # the reference needs each pad inside the window
            if size + sum(pads) < (kernel - 1) * dilation + 1:
                continue  # no window fits: the reference gives a negative size
            want, _ = get_output_shape_explicit_padding(
                pads, [size], [kernel], [stride], [dilation], ceil_mode
            )
            got = ops.window_geometry(
                [size], [kernel], [stride], [dilation], pads, "NOTSET", ceil_mode
            )
            assert got.out == tuple(want), (size, kernel, stride, dilation, pads)
            assert (got.begin, got.end) == ((pads[0],), (pads[1],))


@pytest.mark.parametrize("auto_pad", ["VALID", "SAME_UPPER", "SAME_LOWER"])
def test_auto_pad_matches_reference(auto_pad):
    for size, kernel, stride, _ in GRID:
        if auto_pad == "VALID" and size < kernel:
            continue
        out = get_output_shape_auto_pad(auto_pad, [size], [kernel], [stride])
        pads = get_pad_with_auto_pad(
            auto_pad, get_pad_shape(auto_pad, [size], [kernel], [stride], out)
        )
        got = ops.window_geometry([size], [kernel], [stride], [1], None, auto_pad)
        assert got.out == tuple(out), (size, kernel, stride)
        # the reference keeps a negative total (stride > kernel); ONNX pads at least 0
        if pads[0] >= 0 and pads[1] >= 0:
            assert (got.begin[0], got.end[0]) == (pads[0], pads[1]), (size, kernel, stride)


def _conv_transpose_case(x_shape, attrs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((x_shape[1], 2, 3, 2)).astype(np.float32)
    return x, w


@pytest.mark.parametrize(
    "attrs",
    [
        {},
        {"strides": [2, 3]},
        {"strides": [2, 2], "pads": [1, 0, 2, 1]},
        {"strides": [3, 2], "output_padding": [1, 1], "dilations": [2, 1]},
        {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
        {"strides": [2, 3], "auto_pad": "SAME_LOWER"},
        {"strides": [2, 2], "auto_pad": "SAME_UPPER", "output_shape": [11, 12]},
        {"strides": [2, 2], "auto_pad": "VALID"},
    ],
    ids=str,
)
def test_conv_transpose_shape_matches_reference(attrs):
    x, w = _conv_transpose_case((1, 2, 5, 6), attrs)
    model, feeds = make_node_model("ConvTranspose", [x, w], attrs, opset=19)
    want = run_reference(model, feeds)[0].shape[2:]
    got = ops.Window.from_attrs(attrs).transpose_geometry(x.shape[2:], w.shape[2:])
    assert got.out == tuple(want)


def test_conv_transpose_pads_from_output_shape():
    """The spec: with output_shape the pads are generated, the odd cell at the end for SAME_UPPER
    and at the beginning otherwise (onnxruntime agrees; pads given with NOTSET are ignored)."""
    full = 2 * (7 - 1) + 3  # 15 cells: stride 2, kernel 3
    for auto_pad, begin in (("SAME_UPPER", 1), ("SAME_LOWER", 2), ("NOTSET", 2), ("VALID", 2)):
        geo = ops.conv_transpose_geometry([7], [3], [2], [1], None, auto_pad, None, [12])
        assert geo == ((12,), (begin,), (full - 12 - begin,)), auto_pad
    # larger than the full result: nothing cropped, zeros after it
    assert ops.conv_transpose_geometry([7], [3], [2], [1], None, "NOTSET", None, [17]) == (
        (17,),
        (0,),
        (-2,),
    )
    # SAME without output_shape asks for size * stride cells
    assert ops.conv_transpose_geometry([7], [3], [2], [1], None, "SAME_UPPER").out == (14,)


# -- attributes and reasons ------------------------------------------------------------------
def test_from_attrs_defaults_and_resolve():
    w = ops.Window.from_attrs({"auto_pad": "", "pads": [], "group": 2})
    assert (w.auto_pad, w.pads, w.group, w.kernel_shape) == ("NOTSET", None, 2, None)
    r = w.resolve(2, (3, 5))
    assert (r.kernel_shape, r.strides, r.dilations) == ((3, 5), (1, 1), (1, 1))
    with pytest.raises(InvalidArgument, match="kernel_shape"):
        w.resolve(2)


@pytest.mark.parametrize(
    "attrs, rank, w_shape, pool, reason",
    [
        ({"auto_pad": "SAME"}, 4, None, False, "auto_pad 'SAME' is not one of"),
        ({}, 4, None, True, "kernel_shape attribute is required"),
        (
            {"kernel_shape": [3, 3], "strides": [1]},
            4,
            None,
            True,
            "strides has 1 values; 2 expected",
        ),
        ({"kernel_shape": [3, 3], "pads": [1, 1]}, 4, None, True, "pads has 2 values; 4 expected"),
        ({"kernel_shape": [3, 0]}, 4, None, True, "kernel_shape [3, 0] has a value below 1"),
        ({"kernel_shape": [3, 3], "strides": [1, 0]}, 4, None, True, "strides [1, 0]"),
        ({"kernel_shape": [3, 3], "pads": [0, -1, 0, 0]}, 4, None, True, "below 0"),
        ({"kernel_shape": [3]}, 4, None, True, "kernel_shape has 1 values for an input with 2"),
        ({"kernel_shape": [3, 3], "auto_pad": "VALID", "pads": [0] * 4}, 4, None, True, "together"),
        ({"kernel_shape": [3, 3]}, 4, (8, 2, 3, 2), False, "differs from the weight's [3, 2]"),
        ({}, 4, (8, 2, 3), False, "the weight has rank 3, the input rank 4"),
        ({}, 2, None, False, "rank 3 or more"),
        ({"group": 0}, 4, None, False, "group 0 is below 1"),
    ],
)
def test_reasons(attrs, rank, w_shape, pool, reason):
    got = ops.Window.from_attrs(attrs).reason(rank, w_shape, pool=pool)
    assert got is not None and reason in got


def test_valid_attributes_have_no_reason():
    attrs = {"kernel_shape": [3, 3], "strides": [2, 1], "pads": [1, 1, 0, 0], "dilations": [1, 2]}
    assert ops.Window.from_attrs(attrs).reason(4, (8, 2, 3, 3)) is None
    assert ops.Window.from_attrs({}).reason(None, None) is None  # nothing known: nothing to say
    assert ops.pool_reason({"kernel_shape": [2], "auto_pad": "SAME_LOWER"}, (1, 3, "n")) is None


def test_conv_channels():
    assert ops.conv_reason({"group": 2}, (1, 4, 5, 5), (6, 2, 3, 3)) is None
    assert "expects 6 (group 2)" in ops.conv_reason({"group": 2}, (1, 4, 5, 5), (6, 3, 3, 3))
    assert "not a multiple of group 4" in ops.conv_reason({"group": 4}, (1, 4, 5, 5), (6, 1, 3, 3))
    assert ops.conv_reason({"group": 2}, (1, "c", 5, 5), (6, 3, 3, 3)) is None  # symbolic dim
    assert ops.conv_reason({"group": 2}, (1, 4, 5, 5), (4, 3, 3, 3), transpose=True) is None
    assert "expects 6" in ops.conv_reason({}, (1, 4, 5, 5), (6, 3, 3, 3), transpose=True)
