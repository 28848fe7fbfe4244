"""ort_core.ops shape arithmetic: hand-worked ONNX examples, the invalid-argument messages, and
random cases against onnx's reference implementation and onnxruntime (which decides where the
spec is silent: Slice's clamping with negative steps, repeated axes, Split's last chunk)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx.reference.ops.op_reshape import reshape_reference_implementation

from ort_core import ops
from ort_core.errors import InvalidArgument
from tests.differential.harness import make_node_model, run_reference

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle of the random cases")

I64 = np.int64
INT_MAX, INT_MIN = 2**63 - 1, -(2**63)


def onnxruntime(op, inputs, attrs=None, opset=19, n_outputs=1):
    """onnxruntime's outputs for one node, or the exception it raised."""
    model, feeds = make_node_model(op, inputs, attrs or {}, opset=opset, n_outputs=n_outputs)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 4
    try:
        sess = ort.InferenceSession(
            model.SerializeToString(), so, providers=["CPUExecutionProvider"]
        )
        return sess.run(None, feeds)
    except Exception as e:  # noqa: BLE001 - any onnxruntime failure means "invalid"
        return e


def ints(*v):
    return np.array(v, I64)


# -- Reshape ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "in_shape, dims, allowzero, out",
    [
        ((2, 3, 4), [0, -1], 0, (2, 12)),  # 0 copies, -1 infers
        ((2, 3, 4), [4, 0, -1], 0, (4, 3, 2)),
        ((0, 3), [-1, 3], 0, (0, 3)),  # -1 inferred as 0
        ((0, 3), [3, 0], 1, (3, 0)),  # allowzero: a real 0
        ((2, 3), [6], 0, (6,)),
        ((), [1, 1], 0, (1, 1)),
    ],
)
def test_reshape_shape(in_shape, dims, allowzero, out):
    assert ops.reshape_shape(in_shape, dims, allowzero) == out
    assert ops.reshape_reason(in_shape, dims, allowzero) is None


@pytest.mark.parametrize(
    "in_shape, dims, allowzero, message",
    [
        ((2, 3), [-1, -1], 0, "Reshape: shape [-1, -1] has 2 dimensions of -1; expected at most"),
        ((2, 3), [-2, -3], 0, "has the dimension -2; expected -1 (inferred) or a size >= 0"),
        ((2, 3), [6, 0, 0], 0, "copies dimension 2 of the input with a 0, but the input [2, 3]"),
        ((0, 3), [-1, 0], 1, "has both -1 and 0 with allowzero=1"),
        ((0, 3), [0, -1], 0, "cannot infer the -1 of shape [0, -1] (resolved [0, -1])"),
        ((2, 3), [4, -1], 0, "has 6 elements, expected a multiple of 4"),
        ((2, 3), [4, 2], 0, "holds 8 elements; expected 6"),
    ],
)
def test_reshape_errors(in_shape, dims, allowzero, message):
    with pytest.raises(InvalidArgument) as info:
        ops.reshape_shape(in_shape, dims, allowzero)
    assert message in info.value.message
    assert message.removeprefix("Reshape: ") in ops.reshape_reason(in_shape, dims, allowzero)


def test_reshape_random_against_reference_and_onnxruntime():
    rng = np.random.default_rng(0)
    for _ in range(120):
        in_shape = tuple(int(d) for d in rng.integers(0, 4, rng.integers(0, 4)))
        dims = [int(d) for d in rng.integers(-1, 7, rng.integers(1, 4))]
        allowzero = int(rng.integers(0, 2))
        if allowzero and -1 in dims and 0 in dims:
            continue  # invalid by the spec; onnxruntime infers the -1 anyway (a hand case above)
        x = np.zeros(in_shape, np.float32)
        got = ops.reshape_reason(in_shape, dims, allowzero)
        want = onnxruntime("Reshape", [x, ints(*dims)], {"allowzero": allowzero})
        case = (in_shape, dims, allowzero)
        if isinstance(want, Exception):
            assert got is not None, case
            continue
        assert got is None, case
        assert ops.reshape_shape(in_shape, dims, allowzero) == want[0].shape, case
        ref = reshape_reference_implementation(x, np.array(dims, I64), allowzero)
        assert ref.shape == want[0].shape, case


# -- Slice -----------------------------------------------------------------------------------------
def _sliced(x, ranges):
    return x[tuple(slice(*r) for r in ranges)]


def test_slice_ranges_hand_worked():
    x = np.arange(10)
    # the spec's clamping: a start below -dim with a negative step clamps to 0, not "before 0"
    assert ops.slice_ranges((10,), [-20], [-20], None, [-1]) == ((0, None, -1),)
    assert list(_sliced(x, ops.slice_ranges((10,), [-20], [-20], None, [-1]))) == [0]
    # INT_MAX / INT_MIN: through the end, and backwards through index 0
    assert ops.slice_ranges((10,), [INT_MAX], [INT_MIN], [0], [-3]) == ((9, None, -3),)
    assert ops.slice_ranges((10,), [2], [INT_MAX]) == ((2, 10, 1),)
    # onnxruntime: an end of INT_MAX runs to the end backwards too (not clamped to dim - 1)
    assert ops.slice_ranges((1,), [8], [INT_MAX], [0], [-3]) == ((0, None, -3),)
    assert ops.slice_ranges((4,), [3], [2**31 - 1], [0], [-1]) == ((3, None, -1),)
    assert ops.slice_ranges((10,), [-3], [-1]) == ((7, 9, 1),)
    assert ops.slice_ranges((10,), [5], [2]) == ((5, 2, 1),)  # empty
    assert ops.slice_ranges((10,), [5], [2])[0].length == 0
    assert ops.slice_ranges((10,), [8], [1], None, [-2])[0].length == 4
    # axes: negative ones, the others whole
    assert ops.slice_ranges((3, 4, 5), [1], [3], [-2]) == ((0, 3, 1), (1, 3, 1), (0, 5, 1))
    # an empty axis with a negative step
    assert ops.slice_ranges((0,), [-1], [INT_MIN], [0], [-1])[0].length == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (((5,), [0], [3], [0], [0]), "Slice: the step on axis 0 is 0; expected a non-zero step"),
        (((3, 4), [0, 1], [2, 3], [0, 0], None), "Slice: axes names axis 0 twice"),
        (((3, 4), [0, 1], [2, 3], [0, -2], None), "Slice: axes names axis 0 twice"),
        (((3, 4), [0], [2], [2], None), "axes entry 2 is out of range for a tensor of rank 2"),
        (((3,), [0, 0], [2, 2], None, None), "axes entry 1 is out of range"),
        (((3,), [0, 1], [2], None, None), "have 2, 1, 2 and 2 entries; expected the same number"),
    ],
)
def test_slice_errors(args, message):
    with pytest.raises(InvalidArgument) as info:
        ops.slice_ranges(*args)
    assert message in info.value.message
    assert ops.slice_reason(*args) is not None


def _pick(rng, edges):
    return int(rng.choice(edges)) if rng.random() < 0.15 else int(rng.integers(-8, 9))


def test_slice_random_against_onnxruntime():
    rng = np.random.default_rng(1)
    edges = [INT_MAX, INT_MIN, -INT_MAX, 2**31 - 1, -(2**31)]
    for _ in range(150):
        shape = tuple(int(d) for d in rng.integers(0, 6, rng.integers(1, 4)))
        x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
        n = int(rng.integers(1, len(shape) + 1))
        axes = [int(a) for a in rng.permutation(len(shape))[:n]]
        axes = [a - len(shape) if rng.random() < 0.3 else a for a in axes]
        starts, ends = ([_pick(rng, edges) for _ in axes] for _ in range(2))
        steps = [int(rng.choice([-3, -2, -1, 1, 2, 3])) for _ in axes]
        want = onnxruntime("Slice", [x, ints(*starts), ints(*ends), ints(*axes), ints(*steps)])
        case = (shape, starts, ends, axes, steps)
        assert not isinstance(want, Exception), (case, want)
        ranges = ops.slice_ranges(shape, starts, ends, axes, steps)
        got = _sliced(x, ranges)
        assert got.shape == want[0].shape, case
        np.testing.assert_array_equal(got, want[0], err_msg=str(case))
        assert tuple(r.length for r in ranges) == want[0].shape, case


# -- Split -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, sizes",
    [
        ((6, 3), (2, 2, 2)),
        ((6, 2, [1, 5]), (1, 5)),
        ((6, 3, []), (2, 2, 2)),  # an empty split input counts as absent
        ((7, 3, None, 3), (3, 3, 1)),  # opset 18: the last chunk takes what is left
        ((2, 3, None, 3), (1, 1, 0)),
        ((0, 2, None, 2), (0, 0)),
        ((5, 2, [0, 5]), (0, 5)),
    ],
)
def test_split_sizes(args, sizes):
    assert ops.split_sizes(*args) == sizes
    assert ops.split_reason(*args) is None


@pytest.mark.parametrize(
    "args, message",
    [
        ((7, 3), "an axis of 7 does not split evenly into 3 outputs"),
        ((2, 4, None, 4), "leave a last chunk of -1"),
        ((6, 2, None, 3), "num_outputs is 3; expected 2, the node's number of outputs"),
        ((6, 2, [3, 3], 2), "both the split input and the num_outputs attribute are given"),
        ((6, 2, [6]), "split [6] has 1 entries; expected 2, one per output"),
        ((6, 2, [7, -1]), "split [7, -1] has a negative size"),
        ((6, 2, [2, 3]), "split [2, 3] sums to 5; expected 6"),
    ],
)
def test_split_errors(args, message):
    with pytest.raises(InvalidArgument, match=r"INVALID_ARGUMENT : Split: ") as info:
        ops.split_sizes(*args)
    assert message in info.value.message


def test_split_random_against_reference_and_onnxruntime():
    rng = np.random.default_rng(2)
    for _ in range(60):
        dim, n = int(rng.integers(0, 12)), int(rng.integers(1, 6))
        x = np.zeros(dim, np.float32)
        want = onnxruntime("Split", [x], {"num_outputs": n}, opset=18, n_outputs=n)
        got = ops.split_reason(dim, n, None, n)
        if isinstance(want, Exception):
            assert got is not None, (dim, n)
            continue
        sizes = ops.split_sizes(dim, n, None, n)
        assert sizes == tuple(len(y) for y in want), (dim, n)
        model, feeds = make_node_model("Split", [x], {"num_outputs": n}, opset=18, n_outputs=n)
        ref = run_reference(model, feeds)
        assert sizes == tuple(len(y) for y in ref), (dim, n)
    for _ in range(40):  # equal splits before opset 18
        dim, n = int(rng.integers(0, 12)), int(rng.integers(1, 5))
        want = onnxruntime("Split", [np.zeros(dim, np.float32)], {}, opset=13, n_outputs=n)
        if isinstance(want, Exception):
            assert ops.split_reason(dim, n) is not None, (dim, n)
        else:
            assert ops.split_sizes(dim, n) == tuple(len(y) for y in want), (dim, n)


# -- Squeeze and Unsqueeze -------------------------------------------------------------------------
def test_squeeze_and_unsqueeze_shapes():
    assert ops.squeeze_shape((1, 3, 1, 2)) == (3, 2)
    assert ops.squeeze_shape((1, 3, 1, 2), []) == (3, 2)  # empty axes: every 1
    assert ops.squeeze_shape((1, 3, 1, 2), [-2]) == (1, 3, 2)
    assert ops.squeeze_shape((1, 3), [0, 0]) == (3,)  # onnxruntime accepts a repeated axis
    assert ops.unsqueeze_shape((2, 3), [-1, 0]) == (1, 2, 3, 1)
    assert ops.unsqueeze_shape((2, 3), [1, 3]) == (2, 1, 3, 1)
    assert ops.unsqueeze_shape((2, 3), []) == (2, 3)
    assert ops.unsqueeze_shape((), [0]) == (1,)
    assert ops.unsqueeze_reason(("N", 3), [0]) is None


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ops.squeeze_shape((2, 3), [0]), "Squeeze: axis 0 of the input [2, 3] has size 2"),
        (lambda: ops.squeeze_shape((1, 3), [2]), "Squeeze: axes entry 2 is out of range"),
        (lambda: ops.unsqueeze_shape((2, 3), [0, 0]), "Unsqueeze: axes names axis 0 twice"),
        (lambda: ops.unsqueeze_shape((2, 3), [1, -3]), "Unsqueeze: axes names axis 1 twice"),
        (lambda: ops.unsqueeze_shape((2, 3), [3]), "Unsqueeze: axes entry 3 is out of range"),
    ],
)
def test_squeeze_and_unsqueeze_errors(call, message):
    with pytest.raises(InvalidArgument) as info:
        call()
    assert message in info.value.message


def test_squeeze_and_unsqueeze_random_against_onnxruntime():
    rng = np.random.default_rng(3)
    for _ in range(80):
        shape = tuple(int(d) for d in rng.integers(1, 3, rng.integers(0, 4)))
        x = np.zeros(shape, np.float32)
        axes = [int(a) for a in rng.integers(-len(shape) - 2, len(shape) + 2, rng.integers(0, 3))]
        for op, reason, shape_of in (
            ("Squeeze", ops.squeeze_reason, ops.squeeze_shape),
            ("Unsqueeze", ops.unsqueeze_reason, ops.unsqueeze_shape),
        ):
            want = onnxruntime(op, [x, ints(*axes)], opset=13)
            case = (op, shape, axes)
            if isinstance(want, Exception):
                assert reason(shape, axes) is not None, case
            else:
                assert reason(shape, axes) is None, case
                assert shape_of(shape, axes) == want[0].shape, case


# -- GatherND --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, indices, b, out",
    [
        ((2, 2), (2, 2), 0, (2,)),  # the spec's example 1
        ((2, 2), (2, 1), 0, (2, 2)),
        ((2, 2, 2), (2, 1, 2), 0, (2, 1, 2)),  # example 3
        ((2, 2, 2), (2, 1), 1, (2, 2)),  # example 5: batch_dims 1
        ((2, 3), (2, 3, 0), 2, (2, 3)),  # batch_dims equal to data's rank, k = 0
    ],
)
def test_gather_nd_shape(data, indices, b, out):
    assert ops.gather_nd_shape(data, indices, b) == out
    assert ops.gather_nd_reason(data, indices, b) is None


@pytest.mark.parametrize(
    "data, indices, b, message",
    [
        ((2, 3), (2, 1), 2, "batch_dims is 2; expected 0 <= batch_dims < 2 (the rank of indices)"),
        ((2, 3), (2, 1), -1, "batch_dims is -1"),
        ((2, 3), (4, 1), 1, "batch dimension 0 is 4 in indices [4, 1] and 2 in data [2, 3]"),
        ((2, 3), (2, 2), 1, "indices [2, 2] address 2 dimensions; expected at most 1"),
    ],
)
def test_gather_nd_errors(data, indices, b, message):
    with pytest.raises(InvalidArgument, match=r"INVALID_ARGUMENT : ScatterND: ") as info:
        ops.gather_nd_shape(data, indices, b, op="ScatterND")
    assert message in info.value.message
    assert ops.gather_nd_reason(data, indices, b) is not None


def test_gather_nd_random_against_onnxruntime():
    rng = np.random.default_rng(4)
    for _ in range(80):
        data = tuple(int(d) for d in rng.integers(1, 4, rng.integers(1, 4)))
        b = int(rng.integers(0, len(data) + 1))
        k = int(rng.integers(0, len(data) - b + 2))
        mid = tuple(int(d) for d in rng.integers(1, 3, rng.integers(0, 2)))
        # (batch dimensions that differ are invalid by the spec; onnxruntime only checks that
        # their products divide: a hand case above)
        indices_shape = (*data[:b], *mid, k)
        x = np.zeros(data, np.float32)
        idx = np.zeros(indices_shape, I64)
        want = onnxruntime("GatherND", [x, idx], {"batch_dims": b}, opset=13)
        case = (data, indices_shape, b)
        if isinstance(want, Exception):
            assert ops.gather_nd_reason(data, indices_shape, b) is not None, case
        else:
            assert ops.gather_nd_shape(data, indices_shape, b) == want[0].shape, case


# -- Pad -------------------------------------------------------------------------------------------
def test_pad_amounts_and_shape():
    assert ops.pad_amounts(2, [1, 2, 3, 4]) == ((1, 3), (2, 4))
    assert ops.pad_amounts(3, [1, 2], [-1]) == ((0, 0), (0, 0), (1, 2))
    assert ops.pad_amounts(2, [1, 2, 3, 4], [0, 0]) == ((2, 4), (0, 0))  # the last pads win
    assert ops.pad_amounts(2, [], []) == ((0, 0), (0, 0))  # empty axes: no axis padded
    assert ops.pad_shape((2, 3), ((-1, 2), (0, -3))) == (3, 0)  # negative pads crop
    assert ops.pad_shape((0, 3), ((1, 1), (0, 0))) == (2, 3)  # constant pads an empty axis
    assert ops.pad_shape((0, 3), ((0, 0), (1, 1)), "reflect") == (0, 5)
    assert ops.pad_reason((2, 3), [1, 1], [1], "edge") is None
    # an empty result from an empty input: nothing to reflect, and onnxruntime does not object
    assert ops.pad_reason((3, 2, 0), [2, -2, 0, -1, 0, 0], None, "reflect") is None


@pytest.mark.parametrize(
    "args, message",
    [
        (((2, 3), [1, 1, 1]), "pads [1, 1, 1] has 3 entries; expected 4, a begin and an end"),
        (((2, 3), [1, 1], [2]), "axes entry 2 is out of range"),
        (((2, 3), [1, 1, 1, 1], []), "expected 0, a begin and an end for each of 0 axes"),
        (((2, 3), [-3, 0, 0, 0]), "pads -3, 0 on axis 0 crop 3 elements; expected at most 2"),
        (((0, 3), [1, 0, 1, 0], None, "reflect"), "mode 'reflect' cannot pad axis 0"),
        (((2, 3), [-2, 0, 0, 0], None, "edge"), "mode 'edge' cannot pad axis 0, which is empty"),
        (((3, 2, 1), [0, -2, 0, 0, 0, 0], None, "wrap"), "mode 'wrap' cannot pad axis 1"),
        (((2,), [3, -3], None, "edge"), "mode 'edge' cannot pad axis 0"),
        (((1, 3), [2, 0, 0, 0], None, "reflect"), "which keeps 1 element after cropping"),
        (((2, 3), [0, 0, 0, 0], None, "mirror"), "mode 'mirror' is not one of"),
    ],
)
def test_pad_errors(args, message):
    reason = ops.pad_reason(*args)
    assert reason is not None and message in reason
    in_shape, pads, axes, mode = (*args, None, "constant")[:4]
    with pytest.raises(InvalidArgument, match=r"INVALID_ARGUMENT : Pad: "):
        ops.pad_shape(in_shape, ops.pad_amounts(len(in_shape), pads, axes), mode)


def _crop_pad(x, amounts, mode):
    """Pad with numpy as :func:`ops.pad_parts` says: crop, then np.pad."""
    parts = ops.pad_parts(x.shape, amounts)
    x = x[tuple(slice(p.start, p.stop) for p in parts)]
    return np.pad(x, [(p.before, p.after) for p in parts], mode=mode)


def test_pad_parts():
    # crop 1 at the start, pad 2 at the end
    assert ops.pad_parts((4,), ((-1, 2),)) == ((1, 4, 0, 2),)
    # a crop deeper than the axis leaves only padding: 3 in front, 3 cut from the end of 2 + 3
    assert ops.pad_parts((2,), ((3, -3),)) == ((0, 0, 2, 0),)
    assert ops.pad_parts((2,), ((-3, 3),)) == ((2, 2, 0, 2),)
    assert ops.pad_parts((5, 3), ((2, -4), (0, 0))) == ((0, 1, 2, 0), (0, 3, 0, 0))


def test_pad_random_against_onnxruntime():
    rng = np.random.default_rng(5)
    for _ in range(120):
        shape = tuple(int(d) for d in rng.integers(0, 4, rng.integers(1, 4)))
        rank = len(shape)
        axes = None
        if rng.random() < 0.5:
            axes = [int(a) for a in rng.permutation(rank)[: rng.integers(1, rank + 1)]]
        n = rank if axes is None else len(axes)
        pads = [int(p) for p in rng.integers(-4, 4, 2 * n)]
        mode = str(rng.choice(["constant", "edge", "reflect"]))
        x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
        inputs = [x, ints(*pads), None] + ([] if axes is None else [ints(*axes)])
        want = onnxruntime("Pad", inputs, {"mode": mode})
        case = (shape, pads, axes, mode)
        reason = ops.pad_reason(shape, pads, axes, mode)
        if isinstance(want, Exception):
            if mode == "reflect" and "exceeds maximum allowed" in str(want):
                continue  # reflect's own limit on pad sizes: not shape arithmetic
            assert reason is not None, (case, want)
            continue
        assert reason is None, case
        amounts = ops.pad_amounts(rank, pads, axes)
        assert ops.pad_shape(shape, amounts, mode) == want[0].shape, case
        if want[0].size:  # (numpy will not edge-pad an empty axis even into an empty result)
            np.testing.assert_array_equal(_crop_pad(x, amounts, mode), want[0], err_msg=str(case))


# -- Tile, DepthToSpace, SpaceToDepth --------------------------------------------------------------
def test_tile_shape():
    assert ops.tile_shape((2, 3), [2, 0]) == (4, 0)
    with pytest.raises(InvalidArgument, match="Tile: repeats \\[1\\] has 1 entries; expected 2"):
        ops.tile_shape((2, 3), [1])
    with pytest.raises(InvalidArgument, match="Tile: repeats \\[1, -1\\] has a negative count"):
        ops.tile_shape((2, 3), [1, -1])
    x = np.zeros((2, 1, 3), np.float32)
    assert ops.tile_shape(x.shape, [3, 2, 1]) == onnxruntime("Tile", [x, ints(3, 2, 1)])[0].shape


def test_depth_space_shapes():
    assert ops.depth_to_space_shape((1, 8, 2, 3), 2) == (1, 2, 4, 6)
    assert ops.space_to_depth_shape((1, 2, 4, 6), 2) == (1, 8, 2, 3)
    for call, message in (
        (lambda: ops.depth_to_space_shape((1, 6, 2, 2), 2), "6 channels are not a multiple of"),
        (lambda: ops.depth_to_space_shape((4, 2, 2), 2), "has rank 3; expected 4"),
        (lambda: ops.depth_to_space_shape((1, 4, 2, 2), 0), "blocksize is 0; expected a positive"),
        (lambda: ops.space_to_depth_shape((1, 6, 3, 2), 2), "height 3 and width 2 must be"),
    ):
        with pytest.raises(InvalidArgument) as info:
            call()
        assert message in info.value.message
    assert ops.depth_to_space_reason((1, 6, 2, 2), 2) is not None
    assert ops.space_to_depth_reason((1, 2, 4, 6), 2) is None
    x = np.zeros((2, 12, 3, 2), np.float32)
    want = onnxruntime("DepthToSpace", [x], {"blocksize": 2}, opset=13)[0].shape
    assert ops.depth_to_space_shape(x.shape, 2) == want
    want = onnxruntime("SpaceToDepth", [x[:, :, :2]], {"blocksize": 2}, opset=13)[0].shape
    assert ops.space_to_depth_shape((2, 12, 2, 2), 2) == want
