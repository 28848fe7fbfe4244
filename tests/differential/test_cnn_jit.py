"""The CPU provider's compiled convolution kernels (``ort_cpu.kernels._conv_jit``) against
onnxruntime and against the numpy paths they replace: depthwise convolutions planar and channels
last (kernel 3/5/7, stride 1/2, dilation, asymmetric and automatic pads, channel multiplier,
batch 1 and 2, with and without bias), small dense stems, the activations fused into the kernel,
FusedConv models, float64, and a process with compiled kernels turned off (``ORT_CPU_JIT=0``)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from ort_core import ops

from .test_conv_paths import _check, _kind, _plan, _rand

pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle of these tests")


@pytest.fixture
def compiled():
    from ort_cpu.kernels import _conv_jit

    if _conv_jit.warm() is None or _conv_jit.warm_nhwc() is None:
        pytest.skip("compiled kernels are off (no numba, or ORT_CPU_JIT=0)")


CASES = [
    # (x shape, weight shape, attrs): the plan each takes is checked too
    ((1, 16, 20, 23), (16, 1, 3, 3), {"group": 16, "pads": [1, 1, 1, 1]}, "direct"),
    ((2, 16, 40, 46), (16, 1, 5, 5), {"group": 16, "pads": [2, 2, 2, 2], "strides": [2, 2]},
     "direct"),
    ((1, 8, 30, 33), (8, 1, 7, 7), {"group": 8, "pads": [3, 3, 3, 3], "strides": [2, 2]},
     "direct"),
    ((2, 8, 19, 21), (8, 1, 3, 3), {"group": 8, "dilations": [2, 3], "pads": [2, 3, 2, 3]},
     "direct"),
    ((1, 8, 19, 60), (8, 1, 3, 3), {"group": 8, "pads": [0, 2, 1, 0], "strides": [1, 3]},
     "direct"),
    ((1, 6, 17, 18), (12, 1, 3, 3), {"group": 6, "auto_pad": "SAME_UPPER", "strides": [2, 2]},
     "direct"),
    ((2, 6, 17, 18), (18, 1, 5, 5), {"group": 6, "auto_pad": "SAME_LOWER"}, "direct"),
    ((1, 6, 17, 40), (6, 1, 3, 3), {"group": 6, "auto_pad": "VALID", "strides": [3, 2]},
     "direct"),
    ((1, 8, 23, 29), (8, 1, 3, 3),
     {"group": 8, "dilations": [2, 2], "strides": [2, 2], "pads": [2, 1, 1, 2]}, "direct"),
    ((2, 12, 28, 28), (24, 1, 3, 3), {"group": 12, "pads": [1, 1, 1, 1], "strides": [2, 2]},
     "direct"),  # 14 output columns at a stride: planar since the stride-phase rows
    # rows of 7 cells, 3 x 3 at stride 1: channels last (planes transposed in registers), 40
    # channels: a vector and a half
    ((1, 40, 7, 7), (40, 1, 3, 3), {"group": 40, "pads": [1, 1, 1, 1]}, "channels_last"),
    ((2, 300, 6, 7), (300, 1, 5, 5), {"group": 300, "pads": [2, 1, 2, 2], "strides": [1, 2]},
     "channels_last"),  # three blocks of channels, the last partial
    ((2, 40, 14, 14), (40, 1, 3, 3), {"group": 40, "pads": [1, 1, 1, 1], "strides": [2, 2]},
     "channels_last"),
    ((1, 24, 6, 8), (24, 1, 5, 5), {"group": 24, "pads": [2, 1, 0, 2], "dilations": [1, 2]},
     "channels_last"),
    # rows of 12 cells but 36 in all, 5 x 5: channels last (an OCR model's small maps)
    ((1, 40, 3, 12), (40, 1, 5, 5), {"group": 40, "pads": [2, 2, 2, 2]}, "channels_last"),
    # rows of 14 cells: planar, whatever the channels
    ((1, 64, 14, 14), (64, 1, 3, 3), {"group": 64, "pads": [1, 1, 1, 1]}, "direct"),
    ((1, 32, 14, 14), (32, 1, 3, 3), {"group": 32, "pads": [1, 1, 1, 1]}, "direct"),
    ((2, 3, 33, 40), (8, 3, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}, "direct"),  # stem
    ((1, 2, 12, 15), (4, 2, 2, 2), {"strides": [2, 2]}, "direct"),
    # a stem over a large image: 16 outputs, a column matrix of 27 x 300 x 300 floats
    ((1, 3, 600, 600), (16, 3, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}, "direct"),
    # unit row stride, one output per channel: output rows that share their input rows (blocks
    # of 4 rows, the last partial; rows of two whole vectors and a masked rest over 16 cells,
    # or one vector and a rest below 16)
    ((2, 8, 13, 37), (8, 1, 5, 5), {"group": 8, "pads": [2, 2, 2, 2]}, "direct"),
    ((1, 8, 7, 51), (8, 1, 3, 3), {"group": 8, "pads": [1, 0, 1, 1], "strides": [1, 2]},
     "direct"),
    ((1, 16, 6, 24), (16, 1, 3, 3), {"group": 16, "pads": [0, 0, 0, 0]}, "direct"),
]  # fmt: skip


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_compiled_conv(case, bias, compiled):
    xs, ws, attrs, kind = CASES[case]
    rng = np.random.default_rng(case)
    assert _kind(_plan(xs, ws, attrs)) == kind
    inputs = [_rand(rng, xs), _rand(rng, ws)] + ([_rand(rng, (ws[0],))] if bias else [])
    _check("Conv", inputs, attrs)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_compiled_matches_numpy_float64(case, compiled, monkeypatch):
    """float64 runs compiled too, and agrees with the numpy column path it replaces."""
    from ort_cpu.kernels import _conv_jit, conv

    xs, ws, attrs, _ = CASES[case]
    rng = np.random.default_rng(case + 100)
    x, w, b = (_rand(rng, s, np.float64) for s in (xs, ws, (ws[0],)))
    window = ops.Window.from_attrs(attrs)
    wmat = conv.pack_weights(w, window.group, np.dtype(np.float64))
    got = _plan(xs, ws, attrs, np.float64)(x, wmat, b)
    monkeypatch.setattr(_conv_jit, "warm", lambda: None)
    monkeypatch.setattr(_conv_jit, "warm_nhwc", lambda: None)
    plan = _plan(xs, ws, attrs, np.float64)
    assert _kind(plan) not in ("direct", "channels_last")
    np.testing.assert_allclose(got, plan(x, wmat, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("width", [3, 7, 14, 16, 23, 56])
@pytest.mark.parametrize("mode", ["depthwise", "max", "dense"])
def test_row_stores_stay_in_their_planes(width, mode, compiled):
    """The row loops store a short row's last vector whole where the cells past it are the
    plane's next rows, written after it (a masked store is slow on AMD's cores), and a longer
    row's last vector shifted back to end at the row's end. Each call here writes half of the
    output's planes, the second half first, inside guard planes of NaN: no store lands past
    the planes a call owns (a whole last vector past a plane's last row would overwrite the
    next plane, written already, or a guard), and the halves equal the whole layer's output
    written in one call. Host logic: the kernel's stores, on this CPU's vectors."""
    from ort_cpu.kernels import _conv_jit

    fn = _conv_jit._direct.jitted()
    rng = np.random.default_rng(width)
    c, h, pad = (2, 9, 1) if mode == "dense" else (6, 11, 1)
    m = 8 if mode == "dense" else c  # dense: one group of 2 inputs, 8 outputs (a block)
    x = _rand(rng, (1, c, h, width))
    w = _rand(rng, (m, (c if mode == "dense" else 1) * 9))
    bias = np.full(m, -np.inf, np.float32) if mode == "max" else _rand(rng, (m,))
    groups, cg, mg = (1, c, m) if mode == "dense" else (c, 1, 1)
    kind = _conv_jit.MAX if mode == "max" else _conv_jit.CONVOLVE
    hq, wq = h + 2 * pad, width + 2 * pad
    geometry = (3, 3, 1, 1, 1, 1, pad, pad, hq, wq, h, kind, 2, -1.0, 1.0)

    def run(y, g0, g1, m0, m1):
        fn(x, w, bias, y, g0, g1, m0, m1, cg, mg, *geometry)

    def guarded():  # the output's planes, one plane of NaN before them and three after
        return np.full((1, m + 4, h, width), np.nan, np.float32)

    once = guarded()
    whole = once[:, 1 : m + 1]
    run(whole, 0, groups, 0, mg)
    assert not np.isnan(whole).any()
    assert np.isnan(once[:, 0]).all() and np.isnan(once[:, m + 1 :]).all()
    halves = guarded()
    y = halves[:, 1 : m + 1]
    half = m // 2
    if mode == "dense":  # output channels m0:m1 of the one group
        run(y, 0, 1, half, m)
        run(y, 0, 1, 0, half)
    else:  # groups (channels) g0:g1
        run(y, half, groups, 0, 1)
        run(y, 0, half, 0, 1)
    assert np.isnan(halves[:, 0]).all() and np.isnan(halves[:, m + 1 :]).all()
    np.testing.assert_array_equal(y, whole)


def _activations():
    def hard_sigmoid(y, a, b):
        return np.clip(y * a + b, 0, 1)

    def sigmoid(y, a, b):  # the Sigmoid kernel's compiled pass (float32)
        from ort_cpu.kernels import _exp_jit

        flat = np.ascontiguousarray(y, np.float32).reshape(-1)
        out = np.empty_like(flat)
        _exp_jit.logistic_cells.get()(flat, out, np.float32(1), False, 0, flat.size)
        return out.reshape(y.shape)

    return {
        1: lambda y, a, b: np.maximum(y, 0),
        2: lambda y, a, b: np.minimum(np.maximum(y, a), b),
        3: hard_sigmoid,
        4: lambda y, a, b: np.where(y >= 0, y, y * a),
        5: lambda y, a, b: y * hard_sigmoid(y, 1 / 6, 0.5),
        7: sigmoid,
    }


@pytest.mark.parametrize("code", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("case", [0, 1, 8, 11, 19, 20])
def test_fused_activation_codes(code, case, compiled):
    """The activation applied in the kernel, on the way out of the accumulator."""
    from ort_cpu.kernels import conv

    xs, ws, attrs, _ = CASES[case]
    rng = np.random.default_rng(code)
    x, w, b = _rand(rng, xs), _rand(rng, ws), _rand(rng, (ws[0],))
    alpha, beta = {2: (-0.5, 1.5), 3: (0.2, 0.5), 4: (0.1, 0.0)}.get(code, (0.0, 0.0))
    wmat = conv.pack_weights(w, ops.Window.from_attrs(attrs).group, np.dtype(np.float32))
    plan = _plan(xs, ws, attrs)
    plain = plan(x, wmat, b)
    fused = plan(x, wmat, b, code=(code, alpha, beta))
    want = _activations()[code](plain, np.float32(alpha), np.float32(beta))
    np.testing.assert_allclose(fused, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "code,dtype", [(c, d) for c in (1, 2, 3, 4, 5) for d in (np.float32, np.float64)]
    + [(7, np.float32)],  # Sigmoid's code is float32's only (FusedConv's builder keeps to it)
)  # fmt: skip
def test_activate_in_place_matches_numpy(code, dtype, compiled):
    """The compiled epilogue of the GEMM and column plans (``activate_in_place``) and the one of
    the direct kernels (``_activate``) against numpy, bit for bit, NaN and infinities included
    (NaN stays NaN, as in numpy's and onnxruntime's activations); Sigmoid against the Sigmoid
    kernel's own compiled pass, bit for bit, both tails included."""
    from ort_cpu.kernels import _elementwise_jit

    rng = np.random.default_rng(code)
    x = (rng.standard_normal(1001) * 8).astype(dtype)
    x[:6] = [np.nan, np.inf, -np.inf, 0.0, 3.0, -3.0]
    alpha, beta = {2: (-0.5, 1.5), 3: (0.2, 0.5), 4: (0.1, 0.0)}.get(code, (0.0, 0.0))
    with np.errstate(invalid="ignore"):  # HardSwish of -inf: -inf * 0
        want = _activations()[code](x, dtype(alpha), dtype(beta)).astype(dtype)
    y = x.copy()
    _elementwise_jit.warm_activate()(y, code, alpha, beta)
    np.testing.assert_array_equal(y, want)
    out = np.empty_like(x)
    _elementwise_jit.warm_activate_into()(x, out, code, alpha, beta)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("act", ["Relu", "Clip", "HardSigmoid", "LeakyRelu", "Sigmoid"])
@pytest.mark.parametrize(
    "xs, ws, attrs",
    [
        ((1, 16, 12, 14), (24, 16, 1, 1), {}),  # a GEMM over the channels
        ((2, 8, 11, 13), (12, 8, 3, 3), {"pads": [1, 1, 1, 1]}),  # column matrix
        ((1, 8, 9, 9), (16, 8, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ],
)
def test_fused_conv_gemm_plans(act, xs, ws, attrs, compiled, tmp_path):
    """FusedConv whose convolution is not compiled: the activation runs as one compiled pass
    over the output (``activate_in_place``), against onnxruntime's Conv + activation."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from ort_core.session import InferenceSession, SessionOptions

    rng = np.random.default_rng(11)
    inits = [
        numpy_helper.from_array(_rand(rng, ws), "w"),
        numpy_helper.from_array(_rand(rng, ws[:1]), "b"),
    ]
    extra, kw = (
        [],
        {"HardSigmoid": {"alpha": 0.3, "beta": 0.4}, "LeakyRelu": {"alpha": 0.2}}.get(act, {}),
    )
    if act == "Clip":
        inits += [numpy_helper.from_array(np.float32(v), n) for v, n in ((-0.5, "lo"), (0.7, "hi"))]
        extra = ["lo", "hi"]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], **attrs),
        helper.make_node(act, ["c", *extra], ["y"], **kw),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(xs))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    data = model.SerializeToString()
    x = _rand(rng, xs)
    so = SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    session = InferenceSession(data, so, providers=["CPUExecutionProvider"])
    optimized = onnx.load(so.optimized_model_filepath)
    assert [n.op_type for n in optimized.graph.node] == ["FusedConv"]
    (want,) = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    (got,) = session.run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


@pytest.mark.parametrize("act", ["Relu", "Clip", "HardSigmoid", "LeakyRelu", "Sigmoid"])
def test_fused_conv_models(act, compiled):
    """FusedConv (as the optimizer makes it from Conv + activation) on the compiled paths."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from ort_core.session import InferenceSession

    rng = np.random.default_rng(7)
    w1, w2 = _rand(rng, (16, 1, 3, 3)), _rand(rng, (32, 1, 3, 3))
    b1, b2 = _rand(rng, (16,)), _rand(rng, (32,))
    inits = [numpy_helper.from_array(v, n) for v, n in ((w1, "w1"), (b1, "b1"))]
    inits += [numpy_helper.from_array(v, n) for v, n in ((w2, "w2"), (b2, "b2"))]
    extra, attrs = [], {}
    if act == "Clip":
        inits += [numpy_helper.from_array(np.float32(v), n) for v, n in ((0, "lo"), (6, "hi"))]
        extra = ["lo", "hi"]
    elif act == "LeakyRelu":
        attrs = {"alpha": 0.2}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], group=16, pads=[1, 1, 1, 1]),
        helper.make_node(act, ["c1", *extra], ["a1"], **attrs),
        helper.make_node(
            "Conv", ["a1", "w2", "b2"], ["c2"], group=16, pads=[1] * 4, strides=[2, 2]
        ),
        helper.make_node(act, ["c2", *extra], ["y"], **attrs),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16, 15, 14])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)]
    ).SerializeToString()
    x = _rand(rng, (2, 16, 15, 14))
    (want,) = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    (got,) = InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


def test_jit_off_in_a_fresh_process():
    """ORT_CPU_JIT=0: the compiled kernels report off, and depthwise runs the column path."""
    code = (
        "import numpy as np\n"
        "from ort_core import ops\n"
        "from ort_cpu.kernels import _conv_jit, conv\n"
        "assert _conv_jit.warm() is None and _conv_jit.warm_nhwc() is None\n"
        "w = ops.Window.from_attrs({'group': 8, 'pads': [1, 1, 1, 1]})\n"
        "p = conv._make_plan((1, 8, 9, 9), np.dtype(np.float32), (8, 1, 9), 8, w, (3, 3))\n"
        "assert isinstance(p, conv._ColumnsPlan), p\n"
    )
    env = {**os.environ, "ORT_CPU_JIT": "0"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
