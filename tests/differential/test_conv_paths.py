"""Every path of the CPU provider's convolution plans (``ort_cpu.kernels.conv._make_plan``) against
onnxruntime on the same one-node model: depthwise convolutions (kernel 3/5/7, stride 1/2, pads,
dilation, a channel multiplier) and grouped ones through the column matrix of the flat padded
layout, 1x1 convolutions as a GEMM over the channel axis (stride 1 and 2, grouped, one weight per
channel), small 3x3 convolutions, 1-D convolutions run as 2-D ones, FusedConv's activation and
residual, float16, batch 1 and 2, constant weights and weights fed at run time."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import numpy_helper

from ort_core import ops

from .harness import make_node_model, run_cpu

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle of these tests")

MS = "com.microsoft"


def _rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def _check(op, inputs, attrs, *, consts=(1, 2), domain="", rtol=1e-5, atol=1e-5):
    """One ``op`` node on ort-core's CPU provider and on onnxruntime (no graph optimizations),
    inputs in ``consts`` as initializers (packed once by the kernel builder). The outputs agree
    to ``rtol`` and ``atol`` times the largest expected magnitude (summation order differs)."""
    model, feeds = make_node_model(op, inputs, attrs, domain=domain, opset=17)
    for i in consts:
        name = f"x{i}"
        if name not in feeds:
            continue
        model.graph.initializer.append(numpy_helper.from_array(feeds.pop(name), name))
        kept = [v for v in model.graph.input if v.name != name]
        del model.graph.input[:]
        model.graph.input.extend(kept)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    (expected,) = sess.run(None, feeds)
    (got,) = run_cpu(model, feeds)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    e, g = expected.astype(np.float64), got.astype(np.float64)
    scale = max(1.0, float(np.abs(e).max(initial=0)))
    np.testing.assert_allclose(g, e, rtol=rtol, atol=atol * scale)


def _check_residual(rng, x, w, b, attrs, alpha, **tol) -> None:
    """FusedConv with a residual of the output's shape, then LeakyRelu(``alpha``)."""
    out = run_cpu(*make_node_model("Conv", [x, w, b], attrs, opset=17))[0].shape
    z = _rand(rng, out)
    _check(
        "FusedConv", [x, w, b, z], {**attrs, "activation": "LeakyRelu",
                                    "activation_params": [alpha]}, domain=MS, **tol,
    )  # fmt: skip


def _check_layer(rng, x, w, b, attrs, **tol) -> None:
    """A layer against onnxruntime as Conv with a bias, without one (the weights a constant),
    FusedConv with Clip and FusedConv with a residual and LeakyRelu(0.1)."""
    _check("Conv", [x, w, b], attrs, **tol)
    _check("Conv", [x, w], attrs, consts=(1,), **tol)
    _check(
        "FusedConv", [x, w, b], {**attrs, "activation": "Clip", "activation_params": [-0.5, 0.5]},
        domain=MS, **tol,
    )  # fmt: skip
    _check_residual(rng, x, w, b, attrs, 0.1, **tol)


def _plan(x_shape, w_shape, attrs, dtype=np.float32):
    """The plan the CPU provider makes for this geometry."""
    from ort_cpu.kernels import conv

    window = ops.Window.from_attrs(attrs)
    wmat_shape = (window.group, w_shape[0] // window.group, int(np.prod(w_shape[1:])))
    return conv._make_plan(x_shape, np.dtype(dtype), wmat_shape, w_shape[0], window, w_shape[2:])


def _gemm_paths(monkeypatch) -> None:
    """Dense layers take the GEMM plans whatever their channels (the dense direct kernel,
    conv._dense_direct_pays, and the channels-last one, conv._channels_last_conv_pays, off: as
    for float64): the tests of those plans use small layers."""
    from ort_cpu.kernels import conv

    monkeypatch.setattr(conv, "_dense_direct_pays", lambda *a: False)
    monkeypatch.setattr(conv, "_channels_last_conv_pays", lambda *a: False)


def _spy_shared(monkeypatch, split: str) -> list:
    """For ``split`` == "split": every compiled plan's work offered to the run's pool
    (DIRECT_SPLIT_WORK 0) and the list the hand-offs are recorded in (harness
    spy_split_compiled); an empty list otherwise."""
    from ort_cpu.kernels import conv

    from .harness import spy_split_compiled

    if split != "split":
        return []
    monkeypatch.setattr(conv, "DIRECT_SPLIT_WORK", 0)
    return spy_split_compiled(monkeypatch)


def _assert_shared(handed: list) -> None:
    """A hand-off at two threads ran its pieces (or every run had one thread)."""
    assert any(done for _, threads, done in handed if threads > 1) or all(
        threads == 1 for _, threads, _ in handed
    )


def _kind(plan) -> str:
    from ort_cpu.kernels import conv

    if isinstance(plan, conv._ColumnsPlan):
        return "columns"
    if isinstance(plan, conv._DirectPlan):
        return "direct"
    if isinstance(plan, conv._DepthwiseNHWCPlan):
        return "channels_last"
    if isinstance(plan, conv._TapsPlan):
        return "taps"
    if isinstance(plan, conv._GatherPlan):  # the compiled form of the gather plan
        return "_gather_plan"
    if isinstance(plan, conv._PointwisePlan):
        return "pointwise"
    if isinstance(plan, conv._ChannelsLastPlan):
        return "channels_last_dense"
    return plan.__qualname__.split(".")[0]


@pytest.fixture(params=["compiled", "numpy"])
def jit(request, monkeypatch):
    """Each depthwise case twice: through the compiled kernels (where numba is available) and
    through the numpy fallback they replace (compiled kernels turned off)."""
    from ort_cpu.kernels import _conv_jit

    if request.param == "numpy":
        monkeypatch.setattr(_conv_jit, "warm", lambda: None)
        monkeypatch.setattr(_conv_jit, "warm_nhwc", lambda: None)
    elif _conv_jit.warm() is None:
        pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")
    return request.param


def _depthwise_kinds(jit: str) -> set[str]:
    return {"columns"} if jit == "numpy" else {"direct", "channels_last"}


# -- depthwise ---------------------------------------------------------------------------------
DEPTHWISE = [
    # (channels, size, kernel, stride, extra attrs)
    (8, 17, 3, 1, {}),
    (8, 16, 3, 2, {}),
    (6, 15, 5, 1, {}),
    (6, 16, 5, 2, {}),
    (4, 19, 7, 1, {}),
    (4, 18, 7, 2, {}),
    (5, 14, 3, 1, {"dilations": [2, 2]}),
    (5, 13, 3, 2, {"dilations": [2, 1]}),
    (6, 12, 3, 1, {"pads": [0, 2, 1, 0]}),  # asymmetric
    (6, 11, 3, 2, {"auto_pad": "SAME_UPPER"}),
    (6, 11, 5, 2, {"auto_pad": "SAME_LOWER"}),
    (3, 9, 3, 1, {"auto_pad": "VALID"}),
    # stride 2 copies even and odd columns in one pass: first padded column of either parity,
    # odd and even widths
    (6, 20, 3, 2, {"pads": [0, 0, 1, 1]}),
    (5, 21, 3, 2, {"pads": [1, 2, 0, 1]}),
]


@pytest.mark.parametrize("case", range(len(DEPTHWISE)))
@pytest.mark.parametrize("batch", [1, 2])
def test_depthwise(case, batch, jit):
    c, size, k, s, extra = DEPTHWISE[case]
    rng = np.random.default_rng(case)
    attrs = {"group": c, "strides": [s, s], "kernel_shape": [k, k], **extra}
    if "pads" not in extra and "auto_pad" not in extra:
        attrs["pads"] = [k // 2] * 4
    x, w, b = _rand(rng, (batch, c, size, size + 3)), _rand(rng, (c, 1, k, k)), _rand(rng, (c,))
    assert _kind(_plan(x.shape, w.shape, attrs)) in _depthwise_kinds(jit)
    _check("Conv", [x, w, b], attrs)


@pytest.mark.parametrize("multiplier", [2, 3])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_channel_multiplier(multiplier, stride, jit):
    rng = np.random.default_rng(multiplier * 10 + stride)
    c = 6
    x = _rand(rng, (2, c, 13, 12))
    w, b = _rand(rng, (c * multiplier, 1, 3, 3)), _rand(rng, (c * multiplier,))
    attrs = {"group": c, "strides": [stride, stride], "pads": [1, 1, 1, 1]}
    assert _kind(_plan(x.shape, w.shape, attrs)) in _depthwise_kinds(jit)
    _check("Conv", [x, w, b], attrs)


def test_depthwise_without_bias_and_runtime_weights(jit):
    rng = np.random.default_rng(3)
    x, w = _rand(rng, (2, 12, 10, 11)), _rand(rng, (12, 1, 3, 3))
    attrs = {"group": 12, "pads": [1, 1, 1, 1]}
    _check("Conv", [x, w], attrs)
    _check("Conv", [x, w, _rand(rng, (12,))], attrs, consts=())


@pytest.mark.parametrize("batch", [1, 3])
def test_columns_in_chunks(batch, monkeypatch):
    """A column matrix larger than COLUMN_CHUNK is built a few groups (or images) at a time."""
    from ort_cpu.kernels import _conv_jit, conv

    monkeypatch.setattr(conv, "COLUMN_CHUNK", 4096)
    monkeypatch.setattr(_conv_jit, "warm", lambda: None)  # the depthwise case: the columns
    monkeypatch.setattr(_conv_jit, "warm_nhwc", lambda: None)
    rng = np.random.default_rng(batch)
    x, w, b = _rand(rng, (batch, 20, 12, 12)), _rand(rng, (20, 1, 3, 3)), _rand(rng, (20,))
    _check("Conv", [x, w, b], {"group": 20, "pads": [1, 1, 1, 1], "strides": [2, 1]})
    x, w = _rand(rng, (batch, 4, 9, 10)), _rand(rng, (8, 4, 3, 3))
    _check("Conv", [x, w, b[:8]], {"pads": [1, 1, 1, 1]})  # one group: images in chunks
    x, w = _rand(rng, (batch, 8, 9, 10)), _rand(rng, (8, 2, 3, 3))
    _check("Conv", [x, w, b[:8]], {"pads": [1, 0, 1, 2], "group": 4})


# -- grouped -----------------------------------------------------------------------------------
@pytest.mark.parametrize("groups", [2, 4, 8])
@pytest.mark.parametrize("kernel,stride", [(3, 1), (3, 2), (1, 1), (1, 2)])
@pytest.mark.parametrize("batch", [1, 2])
def test_grouped(groups, kernel, stride, batch, monkeypatch):
    """Grouped layers of 4 input channels a group: windows through the column matrix, 1x1 ones
    on the compiled tiles (float32) and, with those off (float64), one stacked GEMM."""
    from ort_cpu.kernels import conv

    rng = np.random.default_rng(groups * 7 + kernel + stride)
    c, m = 4 * groups, 2 * groups * 3
    x = _rand(rng, (batch, c, 11, 10))
    w, b = _rand(rng, (m, c // groups, kernel, kernel)), _rand(rng, (m,))
    attrs = {"group": groups, "strides": [stride, stride], "pads": [kernel // 2] * 4}
    if kernel > 1:
        assert _kind(_plan(x.shape, w.shape, attrs)) == "columns"
    else:
        assert _kind(_plan(x.shape, w.shape, attrs)) in ("pointwise", "_pointwise_plan")
    _check("Conv", [x, w, b], attrs)
    if kernel == 1:
        monkeypatch.setattr(conv, "_pointwise_tiled_pays", lambda *a: False)
        assert _kind(_plan(x.shape, w.shape, attrs)) == "_pointwise_plan"
        _check("Conv", [x, w, b], attrs)


# -- 1x1 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("batch", [1, 2])
def test_pointwise(stride, batch):
    rng = np.random.default_rng(stride + 10 * batch)
    x, w, b = _rand(rng, (batch, 40, 14, 13)), _rand(rng, (48, 40, 1, 1)), _rand(rng, (48,))
    attrs = {"strides": [stride, stride]}
    # 182 cells at stride 1: planar tiles; 49 and 25 at strides 2 and 3: channels last
    want = "pointwise" if stride == 1 else "channels_last_dense"
    assert _kind(_plan(x.shape, w.shape, attrs)) in (want, "_pointwise_plan")
    _check("Conv", [x, w, b], attrs)
    _check("Conv", [x, w], attrs, consts=())


@pytest.mark.parametrize(
    "xs, ws",
    [
        ((1, 16, 1, 1), (64, 16, 1, 1)),  # a squeeze-excite layer: one cell
        ((1, 88, 1, 1), (24, 88, 1, 1)),
        ((1, 40, 12, 48), (24, 40, 1, 1)),  # rows of 576 cells
        ((1, 36, 40, 40), (4, 36, 1, 1)),  # rows of 1600 cells: the bias through per_row
    ],
)
def test_pointwise_single_small_product(xs, ws, monkeypatch):
    """One image, one group, fewer than _blas.SMALL_MNK multiply-adds: the GEMM plan's short
    path (one matmul, the bias, the epilogue), with and without bias, and as FusedConv with a
    residual and an activation. Float32 layers of 4 cells or more take the compiled tiles
    (:func:`test_pointwise_tiles`), smaller ones the gather loop
    (:func:`test_pointwise_gathered`); here they take it as where compiled kernels are off."""
    from ort_cpu.kernels import conv

    from ort_core import ops

    monkeypatch.setattr(conv, "_pointwise_tiled_pays", lambda *a: False)
    monkeypatch.setattr(conv, "_pointwise_gathered", lambda *a: False)
    rng = np.random.default_rng(sum(xs))
    x, w, b = _rand(rng, xs), _rand(rng, ws), _rand(rng, (ws[0],))
    plan = conv._make_plan(xs, x.dtype, (1, ws[0], ws[1]), ws[0], ops.Window.from_attrs({}), (1, 1))
    assert plan.__name__ == "run_small"
    _check("Conv", [x, w, b], {})
    _check("Conv", [x, w], {}, consts=(1,))
    z = _rand(rng, (1, ws[0], *xs[2:]))
    _check(
        "FusedConv", [x, w, b, z], {"activation": "LeakyRelu", "activation_params": [0.2]},
        domain="com.microsoft",
    )  # fmt: skip


@pytest.mark.parametrize(
    "xs, ws, gathered",
    [
        ((1, 16, 1, 1), (64, 16, 1, 1), True),  # a squeeze-excite layer: one cell
        ((1, 128, 1), (1, 128, 1), True),  # a VAD's output layer: one frame, one channel
        ((1, 129, 4), (64, 129, 1), True),  # a 1-D layer over a few frames
        ((2, 24, 1, 3), (40, 24, 1, 1), True),  # batch 2, three cells
        ((1, 256, 1, 1), (256, 256, 1, 1), False),  # one cell past GATHER_ONE_CELL_WORK
        ((1, 512, 16), (512, 512, 1), False),  # past GATHER_COMPILED_WORK
    ],
)
@pytest.mark.parametrize("act", [None, "Relu", "Sigmoid", "Tanh"])
def test_pointwise_gathered(xs, ws, gathered, act):
    """Float32 1x1 layers of few multiply-adds that the tiles do not take (1-D, or fewer than
    POINTWISE_MIN_CELLS cells) run as the compiled gather loop (conv._pointwise_gathered), the
    bias and the activation on the way out; larger ones keep the GEMM plan. Against
    onnxruntime: Conv, and FusedConv with each activation (compiled or not) and a residual."""
    from ort_cpu.kernels import conv

    if conv_jit_off():
        pytest.skip("compiled kernels are off: the GEMM plan serves")
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x, w, b = _rand(rng, xs), _rand(rng, ws) * 0.2, _rand(rng, (ws[0],))
    plan = conv._make_plan(
        xs, np.float32, (1, ws[0], ws[1]), ws[0], ops.Window.from_attrs({}), ws[2:]
    )
    inner = plan.inner if isinstance(plan, conv._Plan1D) else plan
    assert isinstance(inner, conv._GatherPlan) == gathered, type(inner)
    _check("Conv", [x, w, b], {})
    _check("Conv", [x, w], {}, consts=(1,))
    attrs = {"activation": act} if act else {}
    _check("FusedConv", [x, w, b], attrs, domain=MS)
    z = _rand(rng, (xs[0], ws[0], *xs[2:]))
    _check("FusedConv", [x, w, b, z], attrs, domain=MS)


def test_pointwise_without_direct_gemm(monkeypatch):
    """Where numpy's BLAS GEMM cannot be called directly, the bias is added after np.matmul."""
    from ort_cpu.kernels import _blas

    monkeypatch.setattr(_blas, "find_gemm", lambda dtype: None)
    rng = np.random.default_rng(9)
    x, w, b = _rand(rng, (2, 12, 9, 10)), _rand(rng, (20, 12, 1, 1)), _rand(rng, (20,))
    _check("Conv", [x, w, b], {})
    _check("Conv", [x, w, b], {"strides": [2, 2]}, consts=())


@pytest.mark.parametrize("stride", [1, 2])
def test_pointwise_one_weight_per_channel(stride):
    """group == C == M: a per-channel scale (a BatchNormalization turned convolution)."""
    rng = np.random.default_rng(stride)
    x, w, b = _rand(rng, (2, 16, 9, 9)), _rand(rng, (16, 1, 1, 1)), _rand(rng, (16,))
    _check("Conv", [x, w, b], {"group": 16, "strides": [stride, stride]})


def test_pointwise_with_pads():
    """A padded 1x1 convolution reads zeros at the border: the column path."""
    rng = np.random.default_rng(4)
    x, w, b = _rand(rng, (2, 5, 80, 90)), _rand(rng, (3, 5, 1, 1)), _rand(rng, (3,))
    attrs = {"pads": [1, 0, 2, 1], "strides": [2, 1]}
    assert _kind(_plan(x.shape, w.shape, attrs)) == "columns"
    _check("Conv", [x, w, b], attrs)


def _inner(plan):
    """The 2-D plan a 1-D convolution's plan runs over a single row."""
    return plan.inner


def test_one_dimensional_plans_take_the_code_where_their_row_plan_does(monkeypatch):
    """A 1-D convolution's plan applies FusedConv's activation code as it writes where its 2-D
    row plan does (a compiled one), and not where the row plan is a GEMM (host logic)."""
    from ort_cpu.kernels import conv

    from .harness import use_compiled

    use_compiled(monkeypatch, True)
    monkeypatch.setattr(conv, "_channels_last_conv_pays", lambda *a: False)  # as for float64
    compiled = _plan((1, 129, 4), (128, 129, 3), {"pads": [1, 1]})
    assert conv.takes_code(compiled) and conv.takes_code(_inner(compiled))
    gemm = _plan((1, 256, 400), (256, 256, 3), {"pads": [1, 1]})
    assert not conv.takes_code(gemm) and not conv.takes_code(_inner(gemm))


GATHER = [
    ((1, 129, 4), (128, 129, 3), {"pads": [1, 1]}),  # Silero-VAD's encoder, Conv1d
    ((1, 128, 4), (64, 128, 3), {"pads": [1, 1], "strides": [2]}),
    ((1, 64, 1), (128, 64, 3), {"pads": [1, 1]}),  # one frame: all but one tap in the padding
    ((2, 16, 3, 12), (88, 16, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((1, 5, 6, 7), (3, 5, 1, 1), {"pads": [1, 0, 2, 1], "strides": [2, 1]}),  # padded 1x1
    ((1, 6, 5, 9), (4, 6, 2, 3), {"pads": [0, 2, 1, 0], "dilations": [2, 1], "strides": [1, 2]}),
    ((1, 4, 7, 9), (6, 4, 3, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 2]}),
    ((1, 3, 4, 5, 6), (2, 3, 2, 2, 3), {"pads": [1, 0, 1, 0, 1, 2]}),  # 3-D
]


@pytest.mark.parametrize("case", range(len(GATHER)))
def test_gathered_columns(case):
    """One group and a small column matrix: the columns gathered by a precomputed index (zeros
    for the padding), any rank, with and without bias, and as FusedConv with an activation."""
    xs, ws, attrs = GATHER[case]
    rng = np.random.default_rng(40 + case)
    x, w, b = _rand(rng, xs), _rand(rng, ws), _rand(rng, (ws[0],))
    plan = _plan(xs, ws, attrs)
    if len(xs) == 3:  # the 2-D plan over a single row
        plan = _inner(plan)
    assert _kind(plan) == "_gather_plan"
    _check("Conv", [x, w, b], attrs)
    _check("Conv", [x, w], attrs, consts=())
    _check(
        "FusedConv", [x, w, b], {**attrs, "activation": "Relu"}, domain="com.microsoft"
    )  # fmt: skip
    if len(xs) == 4:
        _check_residual(rng, x, w, b, attrs, 0.2)


@pytest.mark.parametrize("compiled", [True, False])
def test_gathered_columns_compiled_or_not(compiled, monkeypatch):
    """Few multiply-adds: one compiled loop (conv._GatherPlan: no column matrix, the bias and a
    compiled activation as each cell is written); many, or compiled kernels off: the GEMM of
    the gathered columns. Both give onnxruntime's results."""
    from ort_cpu.kernels import conv

    from .harness import use_compiled

    use_compiled(monkeypatch, compiled)
    small = GATHER[2]  # 64 -> 128 over one frame
    # batch 2, 11 cells: a block of GATHER_CELLS and a partial one; 69 column rows (a row left
    # after the passes of four)
    blocks = ((2, 23, 11), (40, 23, 3), {"pads": [1, 1]})
    large = ((1, 129, 4), (600, 129, 3), {"pads": [1, 1]})  # 929K multiply-adds
    for (xs, ws, attrs), want in ((small, compiled), (blocks, compiled), (large, False)):
        assert isinstance(_inner(_plan(xs, ws, attrs)), conv._GatherPlan) is want
        rng = np.random.default_rng(xs[1])
        x, w, b = _rand(rng, xs), _rand(rng, ws), _rand(rng, (ws[0],))
        # (the clipped outputs' largest magnitude, 0.4, scales atol: the large case's 387-term
        # sums, about 20 before the clip, round 2e-5 apart in another order)
        _check("FusedConv", [x, w, b], {**attrs, "activation": "Clip",
                                        "activation_params": [-0.3, 0.4]}, domain=MS,
               atol=1e-4 if xs == large[0] else 1e-5)  # fmt: skip
        _check("Conv", [x, w], attrs, consts=(1,))


# -- small dense convolutions --------------------------------------------------------------------
SMALL = [
    ((1, 16, 16, 16), (16, 16, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 16, 12, 40), (32, 16, 3, 3), {"pads": [1, 1, 1, 1]}),  # an OCR-like strip
    ((1, 3, 32, 32), (16, 3, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),  # a stem
    ((2, 8, 9, 11), (12, 8, 3, 3), {}),
    ((1, 24, 14, 14), (24, 24, 3, 3), {"pads": [1, 1, 1, 1], "dilations": [2, 2]}),
    ((2, 31, 20, 20), (64, 31, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
]


@pytest.mark.parametrize("case", range(len(SMALL)))
def test_small_convolutions(case, monkeypatch):
    _gemm_paths(monkeypatch)
    xs, ws, attrs = SMALL[case]
    rng = np.random.default_rng(case)
    x, w, b = _rand(rng, xs), _rand(rng, ws), _rand(rng, (ws[0],))
    # the smallest column matrices are gathered by index (test_gathered_columns)
    assert _kind(_plan(xs, ws, attrs)) in ("columns", "_gather_plan")
    _check("Conv", [x, w, b], attrs)


@pytest.mark.parametrize(
    "xs,ws,attrs,kind",
    [
        # an STFT as a Conv1d (Silero VAD): 256 taps over 5 cells, a small column matrix
        ((1, 1, 832), (258, 1, 256), {"strides": [128]}, "_gather_plan"),
        ((2, 1, 600), (64, 1, 400), {"strides": [160], "pads": [200, 200]}, "_gather_plan"),
        ((1, 2, 20, 20), (8, 2, 9, 9), {"strides": [4, 4]}, "_gather_plan"),  # 81 taps, 9 cells
        # larger ones: one strided copy
        ((1, 1, 16000), (64, 1, 400), {"strides": [160]}, "_generic_plan"),
        ((2, 8, 40, 40), (8, 8, 9, 9), {"strides": [4, 4]}, "_generic_plan"),
    ],
)
def test_many_taps_over_few_outputs_take_one_strided_copy(xs, ws, attrs, kind):
    """A single input channel over more than 7 x 7 taps is not a compiled direct layer, and a
    kernel of at least 64 taps over no more output cells than taps takes the column matrix in
    one strided copy (the generic plan) instead of a copy per tap, or, when the matrix is
    small, gathers it by index."""
    rng = np.random.default_rng(7)
    x, w, b = _rand(rng, xs), _rand(rng, ws), _rand(rng, (ws[0],))
    plan = _plan(xs, ws, attrs)
    if len(xs) == 3:  # the 2-D plan over a single row
        plan = _inner(plan)
    assert _kind(plan) == kind
    _check("Conv", [x, w, b], attrs)


@pytest.mark.parametrize(
    "xs,ws,attrs",
    [
        ((2, 6, 30), (8, 6, 3), {"pads": [1, 1]}),
        ((1, 4, 29), (4, 1, 5), {"group": 4, "pads": [2, 2], "strides": [2]}),
        ((2, 6, 25), (6, 2, 3), {"group": 3, "dilations": [2], "pads": [0, 3]}),
        ((1, 4, 20), (8, 4, 1), {"strides": [2]}),
    ],
)
def test_conv_1d(xs, ws, attrs):
    rng = np.random.default_rng(len(xs) + ws[0])
    x, w, b = _rand(rng, xs), _rand(rng, ws), _rand(rng, (ws[0],))
    _check("Conv", [x, w, b], attrs)


# -- FusedConv ---------------------------------------------------------------------------------
FUSED_GEOMETRIES = [
    ((2, 8, 12, 11), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1]}),  # depthwise
    ((1, 12, 13, 13), (12, 1, 5, 5), {"group": 12, "pads": [2, 2, 2, 2], "strides": [2, 2]}),
    ((2, 16, 9, 8), (24, 16, 1, 1), {}),  # pointwise
    ((1, 16, 10, 12), (16, 16, 3, 3), {"pads": [1, 1, 1, 1]}),  # small 3x3
    ((2, 8, 10, 9), (8, 2, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]}),  # grouped
]


@pytest.mark.parametrize("geometry", range(len(FUSED_GEOMETRIES)))
@pytest.mark.parametrize(
    "act,params", [("Relu", None), ("Clip", [0.0, 6.0]), ("LeakyRelu", [0.1]), (None, None)]
)
@pytest.mark.parametrize("with_z", [False, True])
def test_fused_conv(geometry, act, params, with_z):
    xs, ws, attrs = FUSED_GEOMETRIES[geometry]
    rng = np.random.default_rng(geometry)
    x, w, b = _rand(rng, xs), _rand(rng, ws), _rand(rng, (ws[0],))
    attrs = dict(attrs)
    if act:
        attrs["activation"] = act
    if params:
        attrs["activation_params"] = params
    z = None
    if with_z:
        window = ops.Window.from_attrs(attrs).resolve(2, ws[2:])
        out = window.geometry(xs[2:], ws[2:]).out
        z = _rand(rng, (xs[0], ws[0], *out))
    _check("FusedConv", [x, w, b, z], attrs, domain=MS)


@pytest.mark.parametrize("geometry", range(len(FUSED_GEOMETRIES)))
def test_conv_core_epilogue(geometry):
    """conv_core's residual and in-place activation (applied chunk by chunk where the plan
    computes the output in chunks) give activation(conv + bias + z)."""
    from ort_cpu.kernels import conv

    xs, ws, attrs = FUSED_GEOMETRIES[geometry]
    rng = np.random.default_rng(geometry)
    x, w, b = _rand(rng, xs), _rand(rng, ws), _rand(rng, (ws[0],))
    window = ops.Window.from_attrs(attrs)
    wmat = conv.pack_weights(w, window.group, np.dtype(np.float32))
    plain = conv.conv_core(x, wmat, ws[0], window, ws[2:], b)
    z = _rand(rng, plain.shape)

    def act(y):
        return np.maximum(y, 0.25, out=y)

    got = conv.conv_core(x, wmat, ws[0], window, ws[2:], b, z=z, act=act)
    np.testing.assert_allclose(got, np.maximum(plain + z, 0.25), rtol=1e-6, atol=1e-6)
    got = conv.conv_core(x, wmat, ws[0], window, ws[2:], b, z=z[:1], act=lambda y: y * 2)
    np.testing.assert_allclose(got, (plain + z[:1]) * 2, rtol=1e-6, atol=1e-6)


# -- float16 -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "xs,ws,attrs",
    [
        ((2, 8, 12, 11), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
        ((1, 6, 10, 10), (12, 1, 5, 5), {"group": 6, "pads": [2, 2, 2, 2]}),
        ((2, 16, 9, 8), (24, 16, 1, 1), {}),
        ((1, 16, 9, 8), (24, 16, 1, 1), {"strides": [2, 2]}),
        ((1, 8, 10, 12), (16, 8, 3, 3), {"pads": [1, 1, 1, 1]}),
        ((2, 8, 10, 9), (8, 2, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]}),
    ],
)
def test_float16(xs, ws, attrs):
    rng = np.random.default_rng(ws[0])
    x, w, b = (
        _rand(rng, xs, np.float16),
        _rand(rng, ws, np.float16),
        _rand(rng, (ws[0],), np.float16),
    )
    _check("Conv", [x, w, b], attrs, rtol=1e-2, atol=4e-3)


@pytest.mark.parametrize(
    "xs,ws,attrs",
    [
        ((2, 48, 21, 19), (40, 48, 3, 3), {"pads": [1, 1, 1, 1]}),
        ((1, 64, 23, 30), (24, 64, 3, 3), {"strides": [2, 2], "pads": [1, 0, 1, 1]}),
    ],
)  # fmt: skip
@pytest.mark.parametrize("threads", ["serial", "split"])
def test_taps_in_row_blocks(xs, ws, attrs, threads, monkeypatch):
    """The per-tap GEMMs run over blocks of output rows (each block's accumulator in cache
    through every tap and FusedConv's epilogue), shared among the run's threads: blocks of a
    few rows, split among threads even for small work, give onnxruntime's result with the bias,
    a residual and an activation applied block by block."""
    _gemm_paths(monkeypatch)
    from ort_cpu import _threads
    from ort_cpu.kernels import _blas, conv

    if _blas.find_gemm(np.float32) is None:
        pytest.skip("numpy's BLAS exposes no GEMM this process can call")
    assert _kind(_plan(xs, ws, attrs)) == "taps"
    monkeypatch.setattr(conv, "BLOCK_BYTES", 1)  # one output row per block
    if threads == "split":
        monkeypatch.setattr(_threads, "MIN_PARALLEL_WORK", 0)
    rng = np.random.default_rng(xs[1])
    x, w, b = _rand(rng, xs), _rand(rng, ws) * 0.1, _rand(rng, (ws[0],))
    _check("Conv", [x, w, b], attrs)
    plan = _plan(xs, ws, attrs)
    out = plan(x, conv.pack_weights(w, 1, np.dtype(np.float32)), b).shape
    z = _rand(rng, out)
    _check(
        "FusedConv", [x, w, b, z], {**attrs, "activation": "LeakyRelu", "activation_params": [0.1]},
        domain=MS,
    )  # fmt: skip
    _check("FusedConv", [x, w, b], {**attrs, "activation": "Sigmoid"}, domain=MS)


@pytest.mark.parametrize(
    "xs,ws,attrs",
    [
        ((1, 16, 40, 40), (32, 16, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ((2, 8, 23, 30), (12, 8, 3, 3), {"pads": [1, 1, 1, 1]}),
        ((1, 3, 33, 31), (16, 3, 5, 5), {"strides": [2, 1], "pads": [2, 1, 2, 3]}),
    ],
)  # fmt: skip
@pytest.mark.parametrize("threads", ["serial", "split"])
def test_columns_in_row_blocks(xs, ws, attrs, threads, monkeypatch):
    """One group whose column matrix outgrows COLUMN_BLOCKS_FROM is made a block of output rows
    at a time (each tap one strided copy into the block's columns, one GEMM, FusedConv's
    epilogue on the block), the blocks shared among the run's threads: blocks of one row, split
    among threads even for small work, give onnxruntime's result with the bias, a residual and
    an activation."""
    _gemm_paths(monkeypatch)
    from ort_cpu import _threads
    from ort_cpu.kernels import _blas, conv

    if _blas.find_gemm(np.float32) is None:
        pytest.skip("numpy's BLAS exposes no GEMM this process can call")
    monkeypatch.setattr(conv, "COLUMN_BLOCKS_FROM", 0)
    monkeypatch.setattr(conv, "BLOCK_BYTES", 1)  # one output row per block
    assert _kind(_plan(xs, ws, attrs)) == "columns"
    if threads == "split":
        monkeypatch.setattr(_threads, "MIN_PARALLEL_WORK", 0)
    called = []
    blocks = conv._ColumnsPlan._in_row_blocks
    monkeypatch.setattr(
        conv._ColumnsPlan,
        "_in_row_blocks",
        lambda self, *a: called.append(1) or blocks(self, *a),
    )
    rng = np.random.default_rng(xs[1])
    x, w, b = _rand(rng, xs), _rand(rng, ws) * 0.1, _rand(rng, (ws[0],))
    _check("Conv", [x, w, b], attrs)
    assert called
    out = _plan(xs, ws, attrs)(x, conv.pack_weights(w, 1, np.dtype(np.float32)), b).shape
    z = _rand(rng, out)
    _check(
        "FusedConv", [x, w, b, z], {**attrs, "activation": "LeakyRelu", "activation_params": [0.1]},
        domain=MS,
    )  # fmt: skip
    _check("FusedConv", [x, w], {**attrs, "activation": "Relu"}, domain=MS, consts=(1,))


DENSE = [
    ((1, 16, 16, 16), (16, 16, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 16, 12, 40), (32, 16, 3, 3), {"pads": [1, 1, 1, 1]}),  # an OCR-like strip, batch 2
    ((1, 3, 96, 96), (16, 3, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),  # a stem
    ((2, 8, 19, 21), (12, 8, 3, 3), {}),  # 12 outputs: a block of 8 and one of 4
    ((1, 24, 14, 14), (24, 24, 3, 3), {"pads": [1, 1, 1, 1], "dilations": [2, 2]}),
    ((2, 31, 20, 20), (64, 31, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ((1, 5, 17, 23), (13, 5, 5, 5), {"pads": [2, 1, 0, 2]}),  # 5x5, uneven pads, 13 outputs
    ((1, 4, 80, 80), (17, 4, 3, 1), {"strides": [1, 3], "pads": [1, 0, 1, 0]}),
    ((1, 16, 300), (9, 16, 7), {"pads": [3, 3]}),  # 1-D, as a 2-D layer of one row
]


@pytest.mark.parametrize("split", ["serial", "split"])
@pytest.mark.parametrize("case", range(len(DENSE)))
def test_dense_layers_direct(case, split, monkeypatch):
    """Dense layers on the compiled direct kernel, eight output channels at a time
    (``_taps.block_rows``), on one thread or their output channels shared among two (as
    compiled pieces, in multiples of eight): with and without a bias, and as FusedConv with a
    compiled activation and with a residual, against onnxruntime."""
    from ort_cpu.kernels import conv

    from .harness import use_compiled

    use_compiled(monkeypatch, True)
    monkeypatch.setattr(conv, "_dense_direct_pays", lambda g, c, m, taps: g == 1)
    monkeypatch.setattr(conv, "_channels_last_conv_pays", lambda *a: False)  # as for float64
    handed = _spy_shared(monkeypatch, split)
    calls = []
    real = conv._DirectPlan.__call__
    monkeypatch.setattr(
        conv._DirectPlan, "__call__", lambda self, *a, **k: calls.append(1) or real(self, *a, **k)
    )
    xs, ws, attrs = DENSE[case]
    rng = np.random.default_rng(case)
    x, w, b = _rand(rng, xs), _rand(rng, ws) * 0.1, _rand(rng, (ws[0],))
    _check_layer(rng, x, w, b, attrs)
    assert calls
    if split == "split":
        _assert_shared(handed)


POINTWISE = [
    ((1, 16, 28, 28), (96, 16, 1, 1)),  # an inverted residual's expansion
    ((2, 24, 30, 29), (24, 24, 1, 1)),  # as many outputs, rows of 29 cells, batch 2
    ((1, 3, 40, 40), (13, 3, 1, 1)),  # 13 outputs: a block of 8 and one of 5
    ((1, 32, 3, 12), (16, 32, 1, 1)),  # an OCR model's: into fewer channels on a small map
    ((1, 8, 6, 24), (32, 8, 1, 1)),  # rows of 24 cells: a vector and a masked one
]


@pytest.mark.parametrize("split", ["serial", "split"])
@pytest.mark.parametrize("case", range(len(POINTWISE)))
def test_pointwise_layers_direct(case, split, monkeypatch):
    """Where the compiled tiles do not take them (float64; here turned off), 1x1 layers of few
    input channels into as many or more over a large map take the compiled direct kernel
    (conv._pointwise_direct_pays), on one thread or shared among two: with and without a bias,
    and as FusedConv with a compiled activation and with a residual, against onnxruntime; so
    do small layers of at most 32 input channels on maps of 16 cells or more. Into fewer
    channels on a large map, past SMALL_POINTWISE_WORK on a small one, or on a single cell,
    they stay one GEMM."""
    from ort_cpu.kernels import conv

    from .harness import use_compiled

    use_compiled(monkeypatch, True)
    monkeypatch.setattr(conv, "_pointwise_tiled_pays", lambda *a: False)
    xs, ws = POINTWISE[case]
    assert _kind(_plan(xs, ws, {})) == "direct"
    assert _kind(_plan((1, 96, 56, 56), (24, 96, 1, 1), {})) == "_pointwise_plan"
    assert _kind(_plan((1, 32, 14, 14), (128, 32, 1, 1), {})) == "_pointwise_plan"
    assert _kind(_plan((1, 24, 1, 1), (96, 24, 1, 1), {})) == "_gather_plan"  # (one cell)
    assert _kind(_plan((1, 240, 1, 1), (960, 240, 1, 1), {})) == "_pointwise_plan"
    assert _kind(_plan((1, 40, 3, 12), (16, 40, 1, 1), {})) == "_pointwise_plan"
    assert _kind(_plan(xs, ws, {"strides": [2, 2]})) == "_pointwise_plan"
    handed = _spy_shared(monkeypatch, split)
    rng = np.random.default_rng(case)
    x, w, b = _rand(rng, xs), _rand(rng, ws) * 0.1, _rand(rng, (ws[0],))
    _check_layer(rng, x, w, b, {})
    if split == "split":
        _assert_shared(handed)


TILES = [
    ((1, 16, 28, 28), (96, 16, 1, 1), {}),  # an inverted residual's expansion: planar
    ((2, 24, 30, 29), (26, 24, 1, 1), {}),  # batch 2, 26 outputs (a partial tile), 870 cells
    ((1, 3, 40, 40), (13, 3, 1, 1), {}),  # three input channels
    ((1, 160, 7, 7), (960, 160, 1, 1), {}),  # channels last: 49 cells
    ((2, 40, 5, 9), (70, 40, 1, 1), {}),  # channels last, batch 2, 70 outputs (partial vectors)
    ((1, 32, 3, 12), (16, 32, 1, 1), {}),  # an OCR model's: 36 cells, 16 outputs
    ((1, 7, 2, 2), (5, 7, 1, 1), {}),  # four cells, five outputs
    ((1, 24, 14, 13), (48, 24, 1, 1), {"strides": [2, 2]}),  # strided: channels last
    ((1, 12, 30, 40), (20, 12, 1, 1), {"strides": [2, 1]}),  # strided: 600 cells, planar
    ((1, 20, 8, 8), (1, 20, 1, 1), {}),  # one output channel (tiles: rows past M unread)
    ((1, 40, 10, 12), (36, 40, 1, 1), {}),  # planar, two blocks of cells: shared by tiles
    # grouped (ShuffleNet v1's): each group's channels their own tiles, planar at any size
    ((1, 24, 20, 20), (112, 6, 1, 1), {"group": 4}),  # 28 outputs a group
    ((1, 136, 7, 7), (136, 34, 1, 1), {"group": 4}),  # 34 a group: partial tiles; 49 cells
    ((2, 32, 9, 11), (48, 8, 1, 1), {"group": 4, "strides": [2, 2]}),  # batch, strided
    ((1, 32, 12, 12), (30, 16, 1, 1), {"group": 2}),  # 15 outputs a group
    # AVX2's blocks of 24 channels (conv_cl's narrow tiles) where 24 divides M and 16 does not
    ((1, 32, 6, 9), (72, 32, 1, 1), {}),  # channels last: three blocks of 24, 54 cells
    ((2, 16, 5, 5), (24, 16, 1, 1), {}),  # batch 2, one block, 25 cells: a tile of one cell
]


@pytest.mark.parametrize("split", ["serial", "split"])
@pytest.mark.parametrize("case", range(len(TILES)))
def test_pointwise_tiles(case, split, monkeypatch):
    """Float32 1x1 layers from 4 cells take the compiled tiles (conv._PointwisePlan): planar
    from POINTWISE_TILED_CELLS cells, channels last below (grouped ones planar, each group's
    output channels tiles of their own), on one thread or shared among two
    (by blocks of cells, by tiles of channels where the blocks are few, channels last by
    blocks of channels): with and without a bias, and as FusedConv with a compiled
    activation and with a residual (planar: added in the tile; channels last: after),
    against onnxruntime. One or three cells take the gather loop, or stay a GEMV past its
    work (host logic on the compiled kernels)."""
    from ort_cpu.kernels import conv

    from .harness import use_compiled

    use_compiled(monkeypatch, True)
    xs, ws, attrs = TILES[case]
    g = attrs.get("group", 1)
    plan = _plan(xs, ws, attrs)
    cells = math.prod(plan.out)
    small = cells < conv.POINTWISE_TILED_CELLS and g == 1
    assert _kind(plan) == ("channels_last_dense" if small else "pointwise")
    # groups of fewer channels keep their plans
    assert _kind(_plan((1, 8, 10, 10), (8, 2, 1, 1), {"group": 4})) != "pointwise"
    # (one or three cells of few multiply-adds: the gather loop; more, a GEMV)
    assert _kind(_plan((1, 24, 1, 1), (96, 24, 1, 1), {})) == "_gather_plan"
    assert _kind(_plan((1, 24, 1, 3), (96, 24, 1, 1), {})) == "_gather_plan"
    assert _kind(_plan((1, 240, 1, 3), (960, 240, 1, 1), {})) == "_pointwise_plan"
    assert _kind(_plan((1, 24, 7, 7), (96, 24, 1, 1), {}, np.float64)) in (
        "direct",
        "_pointwise_plan",
    )
    handed = _spy_shared(monkeypatch, split)
    rng = np.random.default_rng(case)
    x, w, b = _rand(rng, xs), _rand(rng, ws) * 0.1, _rand(rng, (ws[0],))
    _check_layer(rng, x, w, b, attrs)
    _check(
        "FusedConv", [x, w, b], {**attrs, "activation": "HardSigmoid",
                                 "activation_params": [0.3, 0.4]}, domain=MS,
    )  # fmt: skip
    jit = conv._conv_jit
    if small:
        parts = -(-ws[0] // jit.cl_width(ws[0]))
    else:
        parts = max(xs[0] * -(-cells // jit.PW_CELLS), jit.pointwise_tiles(ws[0], g))
    if split == "split" and parts >= 2:  # shared wherever there are two pieces
        _assert_shared(handed)


DEEP = [
    ((1, 512, 13, 13), (40, 512, 1, 1), {}),  # 512 input channels: the GEMM at any size
    ((1, 640, 5, 5), (24, 640, 1, 1), {}),  # a channels-last size (25 cells)
    ((1, 256, 30, 30), (80, 256, 1, 1), {}),  # 256 input channels into 72,000 outputs
    ((2, 520, 9, 9), (36, 520, 1, 1), {"strides": [2, 2]}),  # batch 2, strided
    ((1, 1280, 1, 1), (1000, 1280, 1, 1), {}),  # one cell, past SMALL_MNK: the GEMV
]


@pytest.mark.parametrize("split", ["serial", "split"])
@pytest.mark.parametrize("case", range(len(DEEP)))
def test_pointwise_deep_layers_take_the_gemm(case, split, monkeypatch):
    """1x1 layers of one group from conv.POINTWISE_BLAS_K input channels (from half that on
    large outputs) are OpenBLAS's GEMM with the bias written first (conv._pointwise_plan), not
    the register tiles, whose reads of the input in place miss the cache from there; one cell
    is numpy's GEMV. On one thread or two, with and without a bias, FusedConv's activation and
    residual, against onnxruntime (host logic: which plan; the product is the BLAS's)."""
    from .harness import use_compiled

    use_compiled(monkeypatch, True)
    xs, ws, attrs = DEEP[case]
    assert _kind(_plan(xs, ws, attrs)) == "_pointwise_plan"
    # below the limits the tiles keep them: 256 channels on few outputs, 511 channels grouped
    assert _kind(_plan((1, 256, 14, 14), (64, 256, 1, 1), {})) == "pointwise"
    assert _kind(_plan((1, 1022, 14, 14), (64, 511, 1, 1), {"group": 2})) == "pointwise"
    _spy_shared(monkeypatch, split)
    rng = np.random.default_rng(case)
    x, w, b = _rand(rng, xs), _rand(rng, ws) * 0.05, _rand(rng, (ws[0],))
    _check_layer(rng, x, w, b, attrs)


WINDOWS = [
    ((1, 512, 7, 7), (512, 512, 3, 3), {"pads": [1, 1, 1, 1]}),  # ResNet-50's last stage
    ((1, 64, 14, 14), (64, 64, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ((2, 16, 12, 11), (24, 16, 3, 3), {"pads": [0, 1, 2, 1]}),  # batch, uneven pads, 24 outs
    ((1, 12, 20, 20), (32, 12, 5, 5), {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
    ((1, 24, 40, 60), (96, 24, 3, 1), {"strides": [1, 2]}),  # no padding: the input as it is
    ((1, 40, 30, 30), (32, 40, 3, 3), {"pads": [1, 1, 1, 1]}),  # 900 cells: bands of 256
    ((1, 130, 9, 10), (60, 130, 2, 2), {}),  # 60 outputs: a partial vector in the last block
    ((1, 64, 160), (64, 64, 3), {"pads": [1, 1]}),  # 1-D, over a single row
    # 120 and 72 outputs: AVX2's blocks of 24 channels (conv_cl's narrow tiles of 4 cells)
    ((1, 20, 33, 29), (120, 20, 3, 3), {"pads": [1, 1, 1, 1]}),  # 957 cells
    ((1, 32, 23, 21), (72, 32, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
]


@pytest.mark.parametrize("split", ["serial", "split"])
@pytest.mark.parametrize("case", range(len(WINDOWS)))
def test_channels_last_windows(case, split, monkeypatch):
    """Dense float32 windows of enough rows and output channels run channels last
    (conv._ChannelsLastPlan: an implicit GEMM through a table of offsets into the zero-padded
    input), on one thread or shared among two (by blocks of 32 channels, or by tiles of cells
    where the blocks are few): with and without a bias, as FusedConv with activation codes and
    with a residual, against onnxruntime (host logic on the compiled kernels). Winograd keeps
    the layers it takes from 16 x 16 cells; stems of few rows, and outputs that fill less
    than 70% of a block's lanes, keep their plans."""

    from .harness import use_compiled

    use_compiled(monkeypatch, True)
    xs, ws, attrs = WINDOWS[case]
    plan = _plan(xs, ws, attrs)
    if len(xs) == 3:
        plan = _inner(plan)
    assert _kind(plan) == "channels_last_dense"
    assert _kind(_plan((1, 128, 28, 28), (128, 128, 3, 3), {"pads": [1] * 4})) != (
        "channels_last_dense"
    )  # Winograd
    assert _kind(_plan((1, 3, 64, 64), (32, 3, 3, 3), {"pads": [1] * 4})) != "channels_last_dense"
    from ort_cpu.kernels import _conv_jit

    few = _conv_jit.CL_CHANNELS * 5 // 4  # 40 of 2 blocks of 32 (AVX-512), 20 of 2 of 16 (AVX2)
    assert _kind(_plan((1, 64, 9, 9), (few, 64, 3, 3), {})) != "channels_last_dense"
    assert _kind(_plan((1, 64, 9, 9), (64, 64, 3, 3), {}, np.float64)) != "channels_last_dense"
    handed = _spy_shared(monkeypatch, split)
    rng = np.random.default_rng(case)
    x, w, b = _rand(rng, xs), _rand(rng, ws) * 0.1, _rand(rng, (ws[0],))
    # sums of up to 4608 products, in another order
    _check_layer(rng, x, w, b, attrs, rtol=1e-4, atol=1e-4)
    if split == "split":
        _assert_shared(handed)
        assert handed


@pytest.mark.parametrize("layout", ["contiguous", "read-only", "strided", "float64 view"])
def test_channels_last_padded_input_from_any_array(layout, monkeypatch):
    """The channels-last plan copies a padded input in compiled code (conv_cl's zero-padded
    input: _conv_jit.pad_planes) where the input is float32 and C-contiguous, read-only too,
    and through numpy otherwise: the same output for every layout of the same values (host
    logic)."""
    from ort_cpu.kernels import conv

    from .harness import use_compiled

    use_compiled(monkeypatch, True)
    xs, ws, attrs = WINDOWS[2]  # batch 2, uneven pads
    plan = _plan(xs, ws, attrs)
    assert _kind(plan) == "channels_last_dense" and plan.pad is not None
    rng = np.random.default_rng(5)
    x, w, b = _rand(rng, xs), _rand(rng, ws), _rand(rng, (ws[0],))
    wmat = conv.pack_weights(w, 1, np.dtype(np.float32))
    want = plan(x.copy(), wmat, b)
    if layout == "read-only":
        x.flags.writeable = False
    elif layout == "strided":
        wide = np.zeros((*xs[:3], 2 * xs[3]), np.float32)
        wide[..., ::2] = x
        x = wide[..., ::2]
        assert not x.flags.c_contiguous
    elif layout == "float64 view":
        x = x.astype(np.float64)
    np.testing.assert_array_equal(plan(x, wmat, b), want)
    monkeypatch.setattr(plan, "pad", None)  # the numpy copy
    np.testing.assert_array_equal(plan(x, wmat, b), want)


def test_shared_direct_kernel_reads_each_runs_weights(monkeypatch):
    """Device: weights and bias fed at run time, a dense layer on the direct kernel shared among
    two threads: each run's pieces read that run's weights and bias (the argument block kept
    per plan is remade when they are other arrays), against onnxruntime run by run."""
    import onnxruntime
    from ort_cpu.kernels import conv

    import ort_core

    from .harness import make_node_model, spy_split_compiled, use_compiled

    use_compiled(monkeypatch, True)
    monkeypatch.setattr(conv, "DIRECT_SPLIT_WORK", 0)
    rng = np.random.default_rng(31)
    x = _rand(rng, (1, 16, 20, 20))
    attrs = {"pads": [1, 1, 1, 1]}
    model, _ = make_node_model("Conv", [x, _rand(rng, (24, 16, 3, 3)), _rand(rng, (24,))], attrs)
    so = ort_core.SessionOptions()
    so.intra_op_num_threads = 2
    ours = ort_core.InferenceSession(
        model.SerializeToString(), so, providers=["CPUExecutionProvider"]
    )
    theirs = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    handed = spy_split_compiled(monkeypatch)
    for seed in range(3):
        r = np.random.default_rng(seed)
        feeds = {"x0": x, "x1": _rand(r, (24, 16, 3, 3)) * 0.1, "x2": _rand(r, (24,))}
        np.testing.assert_allclose(
            ours.run(None, feeds)[0], theirs.run(None, feeds)[0], rtol=1e-4, atol=1e-4
        )
    _assert_shared(handed)


def conv_jit_off() -> bool:
    from ort_cpu.kernels import _conv_jit

    return _conv_jit.warm() is None


def _reference_outputs(blob: bytes, feeds: list) -> list:
    """onnxruntime's first output of the model ``blob`` for each of ``feeds``."""
    sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    return [sess.run(None, f)[0] for f in feeds]


def _session(blob: bytes, threads: int, optimized: str | None = None):
    """(ort-core's session of ``blob`` at ``threads`` threads, the path its optimized model is
    saved to, if ``optimized``)."""
    import ort_core

    opts = ort_core.SessionOptions()
    opts.intra_op_num_threads = threads
    if optimized:
        opts.optimized_model_filepath = optimized
    return ort_core.InferenceSession(blob, opts, providers=["CPUExecutionProvider"]), optimized


def _spy_bound_calls(monkeypatch) -> list:
    """The input shape of every call of a bound convolution (conv.bind_plan's), in order."""
    from ort_cpu.kernels import contrib, conv

    calls = []
    real = conv.bind_plan

    def spy(*args, **kw):
        fast = real(*args, **kw)
        if fast is None:
            return None
        return lambda x, *z: (calls.append(x.shape), fast(x, *z))[1]

    monkeypatch.setattr(conv, "bind_plan", spy)
    monkeypatch.setattr(contrib, "bind_plan", spy)
    return calls


BOUND_CASES = {
    # (x shape, weight shape, attrs): a layer of each plan that binds its call (bind_plan)
    "channels_last": ((1, 88, 3, 12), (16, 88, 1, 1), {}),
    "direct": ((1, 8, 24, 96), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1]}),
    "depthwise_nhwc": ((1, 200, 2, 8), (200, 1, 5, 5), {"group": 200, "pads": [2, 2, 2, 2]}),
    "pointwise": ((1, 8, 12, 48), (24, 8, 1, 1), {}),
    "gather_1d": ((1, 129, 4), (128, 129, 3), {"pads": [1, 1]}),
}


@pytest.mark.parametrize("case", sorted(BOUND_CASES))
@pytest.mark.parametrize("act", [None, "Relu", "Sigmoid", "Tanh"])
def test_bound_calls_of_small_layers(case, act, monkeypatch):
    """Small layers that no thread count shares run from their second run on through the call
    their plan bound with its arguments at the first (conv.bind_plan): Conv, and FusedConv
    with an activation the plan applies as it writes (Relu, Sigmoid) or not (Tanh, after the
    plan's own call). Every run against onnxruntime's Conv + activation, at one and two
    threads; a bias fed at run time, and another input shape, take the plan's own call."""
    import onnxruntime
    from onnx import TensorProto, helper
    from ort_cpu.kernels import conv

    import ort_core

    if conv_jit_off():
        pytest.skip("compiled kernels are off: the numpy plans bind no call")
    xs, ws, attrs = BOUND_CASES[case]
    rng = np.random.default_rng(len(case))
    w, b = _rand(rng, ws) * 0.3, _rand(rng, ws[:1])
    plan = conv._make_plan(xs, np.float32, conv.pack_weights(w, attrs.get("group", 1),
                           np.dtype(np.float32)).shape, ws[0], ops.Window.from_attrs(attrs),
                           ws[2:])  # fmt: skip
    inner = plan.inner if isinstance(plan, conv._Plan1D) else plan
    kinds = {"channels_last": conv._ChannelsLastPlan, "direct": conv._DirectPlan,
             "depthwise_nhwc": conv._DepthwiseNHWCPlan, "pointwise": conv._PointwisePlan,
             "gather_1d": conv._GatherPlan}  # fmt: skip
    assert isinstance(inner, kinds[case]), type(inner)
    calls = _spy_bound_calls(monkeypatch)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], **attrs)]
    nodes += [helper.make_node(act, ["c"], ["y"])] if act else []
    out = nodes[-1].output[0]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]

    def model(bias_fed=False, shape=xs):
        graph = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)]
            + ([helper.make_tensor_value_info("b", TensorProto.FLOAT, [ws[0]])] if bias_fed
               else []),
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
            inits[:1] if bias_fed else inits,
        )  # fmt: skip
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    other = (*xs[:-1], xs[-1] + 3)
    feeds = [{"x": _rand(rng, xs)} for _ in range(3)] + [{"x": _rand(rng, other)}]
    feeds.append({"x": _rand(rng, xs)})
    blob = model().SerializeToString()
    want = _reference_outputs(blob, feeds)
    for threads in (1, 2):
        calls.clear()
        sess, _ = _session(blob, threads)
        for f, e in zip(feeds, want, strict=True):
            np.testing.assert_allclose(sess.run(None, f)[0], e, rtol=1e-5, atol=1e-5)
        # runs 2 and 3 bound; the other shape binds its own, which run 5's shape then lacks.
        # A FusedConv whose activation the plan does not apply (Tanh) binds nothing
        assert calls == ([] if act == "Tanh" else [xs, xs]), (threads, calls)
    # a bias fed at run time, changed between runs: never bound
    calls.clear()
    sess = ort_core.InferenceSession(model(bias_fed=True).SerializeToString(),
                                     providers=["CPUExecutionProvider"])  # fmt: skip
    ref = onnxruntime.InferenceSession(model(bias_fed=True).SerializeToString(),
                                       providers=["CPUExecutionProvider"])  # fmt: skip
    for k in range(3):
        fed = {"x": feeds[0]["x"], "b": b + k}
        np.testing.assert_allclose(sess.run(None, fed)[0], ref.run(None, fed)[0], rtol=1e-5,
                                   atol=1e-5)  # fmt: skip
    assert calls == []


@pytest.mark.parametrize(
    "xs,ws,attrs",
    [
        ((1, 32, 6, 24), (32, 32, 3, 3), {"pads": [1, 1, 1, 1]}),  # channels last, padded
        ((2, 48, 7, 7), (64, 48, 1, 1), {}),  # channels last, batch 2
        ((2, 16, 14, 14), (24, 16, 1, 1), {}),  # pointwise tiles
        ((1, 96, 7, 7), (96, 1, 3, 3), {"group": 96, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
        ((1, 120, 6, 24), (120, 1, 5, 5), {"group": 120, "pads": [2, 2, 2, 2]}),
    ],
)
@pytest.mark.parametrize("code", [(0, 0.0, 0.0), (1, 0.0, 0.0), (2, -0.5, 0.5), (7, 0.0, 0.0)])
def test_bound_call_is_the_plans_call(xs, ws, attrs, code, monkeypatch):
    """A plan's bound call (conv.bind_plan) gives its own call's bits, with the bias and an
    activation code, for layers made small enough to bind (the split test forced off): the
    padded channels-last input included, which the models' small layers do not reach."""
    from ort_cpu.kernels import conv

    if conv_jit_off():
        pytest.skip("compiled kernels are off: the numpy plans bind no call")
    monkeypatch.setattr(conv, "_direct_split_pays", lambda *args: False)
    rng = np.random.default_rng(ws[0])
    w, b, x = _rand(rng, ws), _rand(rng, ws[:1]), _rand(rng, xs)
    wmat = conv.pack_weights(w, attrs.get("group", 1), np.dtype(np.float32))
    plan = conv._make_plan(xs, np.float32, wmat.shape, ws[0], ops.Window.from_attrs(attrs),
                           ws[2:])  # fmt: skip
    fast = conv.bind_plan(plan, xs, wmat, b, code)
    assert fast is not None, type(plan)
    want = plan(x, wmat, b, None, None, code)
    for _ in range(2):
        np.testing.assert_array_equal(fast(x), want)
    strided = _rand(rng, (*xs[:-1], 2 * xs[-1]))[..., ::2]  # not contiguous: copied first
    np.testing.assert_array_equal(fast(strided), plan(strided, wmat, b, None, None, code))


@pytest.mark.parametrize("case", sorted(set(BOUND_CASES) - {"gather_1d"}))
@pytest.mark.parametrize("act", [None, "Relu", "Tanh"])
def test_bound_calls_with_a_residual(case, act, tmp_path, monkeypatch):
    """FusedConv with a residual (Conv + Add (+ activation), fused where the shapes are known)
    binds its call too (conv.bind_residual): the residual read as the output is written where
    the plan does so (the pointwise tiles), else after the plan's bound call, then the
    activation, coded or not. Runs 2 and 3 take both convolutions' bound calls; every run
    against onnxruntime, at one and two threads."""
    import onnx
    from onnx import TensorProto, helper

    if conv_jit_off():
        pytest.skip("compiled kernels are off: the numpy plans bind no call")
    xs, ws, attrs = BOUND_CASES[case]
    rng = np.random.default_rng(len(case) + 7)
    calls = _spy_bound_calls(monkeypatch)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], **attrs),
        helper.make_node("Conv", ["x", "w2"], ["r"], **attrs),  # the residual
        helper.make_node("Add", ["c", "r"], ["s"]),
    ]
    nodes += [helper.make_node(act, ["s"], ["y"])] if act else []
    inits = [
        numpy_helper.from_array(v, n)
        for v, n in (
            (_rand(rng, ws) * 0.3, "w"),
            (_rand(rng, ws) * 0.3, "w2"),
            (_rand(rng, ws[:1]), "b"),
        )
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(xs))],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    blob = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    blob = blob.SerializeToString()
    feeds = [{"x": _rand(rng, xs)} for _ in range(3)]
    want = _reference_outputs(blob, feeds)
    for threads in (1, 2):
        calls.clear()
        sess, optimized = _session(blob, threads, str(tmp_path / f"opt{threads}.onnx"))
        fused = [n for n in onnx.load(optimized).graph.node if n.op_type == "FusedConv"]
        assert len(fused) == 1 and len(fused[0].input) == 4, fused
        for f, e in zip(feeds, want, strict=True):
            np.testing.assert_allclose(sess.run(None, f)[0], e, rtol=1e-5, atol=1e-5)
        assert calls == [xs] * 4, (threads, calls)
