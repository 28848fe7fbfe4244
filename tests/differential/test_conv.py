"""Conv, ConvTranspose, ConvInteger and QLinearConv against onnx's ReferenceEvaluator."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core

from .harness import check_node, make_node_model, run_cpu, run_reference

TOL = {np.float16: (1e-2, 1e-2), np.float32: (1e-4, 1e-4), np.float64: (1e-10, 1e-10)}


def _rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


CONV_CASES = [
    # x shape, w shape, attrs
    ((1, 3, 7), (4, 3, 3), {}),
    ((2, 2, 9), (3, 2, 2), {"strides": [2], "pads": [1, 2], "dilations": [2]}),
    ((2, 3, 6, 5), (4, 3, 3, 3), {}),
    ((1, 4, 7, 8), (6, 2, 3, 2), {"group": 2, "pads": [1, 0, 2, 1], "strides": [2, 1]}),
    ((1, 4, 7, 8), (4, 1, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]}),  # depthwise
    ((1, 3, 7, 8), (6, 1, 3, 3), {"group": 3, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ((1, 2, 9, 9), (3, 2, 3, 3), {"dilations": [2, 3], "pads": [2, 1, 0, 3]}),
    ((2, 5, 6, 7), (4, 5, 1, 1), {}),  # 1x1 as one matmul
    ((1, 5, 7, 7), (4, 5, 1, 1), {"strides": [2, 3]}),
    ((1, 6, 5, 5), (4, 3, 1, 1), {"group": 2, "strides": [2, 2]}),
    ((1, 3, 7, 6), (2, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 6, 7), (2, 3, 4, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 1]}),
    ((1, 3, 7, 6), (2, 3, 3, 2), {"auto_pad": "VALID", "strides": [2, 2]}),
    ((1, 3, 5, 5), (2, 3, 3, 3), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    ((1, 2, 4, 5, 3), (3, 2, 2, 3, 2), {"pads": [1, 0, 1, 0, 1, 1], "strides": [1, 2, 1]}),
    ((2, 4, 3, 4, 5), (4, 2, 1, 2, 2), {"group": 2, "dilations": [1, 2, 1]}),
    ((0, 3, 5, 5), (2, 3, 3, 3), {}),  # empty batch
    # one group, few input channels: im2col
    ((2, 6, 7, 8), (4, 6, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((1, 5, 9, 9), (3, 5, 3, 2), {"dilations": [2, 3], "pads": [2, 1, 0, 3]}),
    ((1, 4, 6, 7), (4, 4, 4, 3), {"auto_pad": "SAME_UPPER"}),
    ((1, 4, 6, 7), (2, 4, 2, 3), {}),
    ((2, 3, 6, 7), (3, 1, 3, 2), {"group": 3, "dilations": [2, 1], "pads": [2, 0, 1, 1]}),
]
# one group, 32 or more input channels, at most one junk column in 8: one GEMM per kernel tap, reading the
# flat padded input in place (TAP_CASES are indices into CONV_CASES)
TAP_CASES = list(range(len(CONV_CASES), len(CONV_CASES) + 6))
CONV_CASES += [
    ((2, 32, 7, 8), (16, 32, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((1, 40, 9, 24), (8, 40, 3, 2), {"dilations": [2, 3], "pads": [2, 1, 0, 3]}),
    ((1, 48, 6, 16), (64, 48, 4, 3), {"auto_pad": "SAME_UPPER"}),
    ((1, 32, 12, 40), (2, 32, 2, 3), {}),
    ((1, 32, 12, 29), (8, 32, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    (
        (2, 36, 11, 40),
        (5, 36, 5, 3),
        {"strides": [3, 2], "pads": [2, 0, 1, 2], "dilations": [1, 2]},
    ),
]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
@pytest.mark.parametrize("bias", [True, False])
def test_conv_float32(case, bias):
    xs, ws, attrs = CONV_CASES[case]
    rng = np.random.default_rng(case)
    inputs = [_rand(rng, xs), _rand(rng, ws)]
    if bias:
        inputs.append(_rand(rng, (ws[0],)))
    check_node("Conv", inputs, attrs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
@pytest.mark.parametrize("case", [2, 3, 4, 7, 17, TAP_CASES[0], TAP_CASES[-1]])
def test_conv_dtypes(dtype, case):
    xs, ws, attrs = CONV_CASES[case]
    rng = np.random.default_rng(case)
    inputs = [_rand(rng, xs, dtype), _rand(rng, ws, dtype), _rand(rng, (ws[0],), dtype)]
    rtol, atol = TOL[dtype]
    check_node("Conv", inputs, attrs, rtol=rtol, atol=atol)


def _gemm_paths(monkeypatch) -> None:
    """Dense layers take the GEMM plans whatever their channels (the dense direct kernel,
    conv._dense_direct_pays, and the channels-last one, conv._channels_last_conv_pays, off: as
    for float64): the tests of those plans use small layers."""
    from ort_cpu.kernels import conv

    monkeypatch.setattr(conv, "_dense_direct_pays", lambda *a: False)
    monkeypatch.setattr(conv, "_channels_last_conv_pays", lambda *a: False)


def _no_channels_last(monkeypatch) -> None:
    """Float32 windows take the plans of float64 (the channels-last plan off)."""
    from ort_cpu.kernels import conv

    monkeypatch.setattr(conv, "_channels_last_conv_pays", lambda *a: False)


def _spy_on_path(monkeypatch, name: str) -> list:
    """Count the calls of conv.<name> (a function, or a plan class's ``__call__``), a path that
    needs numpy's BLAS GEMM (skip without it)."""
    from ort_cpu.kernels import _blas, conv

    if _blas.find_gemm(np.float32) is None:
        pytest.skip("numpy's BLAS exposes no GEMM this process can call")
    calls = []
    real = getattr(conv, name)
    if isinstance(real, type):
        call = real.__call__
        monkeypatch.setattr(real, "__call__", lambda *a, **k: calls.append(1) or call(*a, **k))
    else:
        monkeypatch.setattr(conv, name, lambda *a: calls.append(1) or real(*a))
    return calls


@pytest.mark.parametrize("case", TAP_CASES)
def test_conv_tap_path_taken(case, monkeypatch):
    """The TAP_CASES reach the per-tap GEMMs (where numpy's BLAS exposes its GEMM), and give the
    reference result with a bias added on the way out (the dense direct kernel, which takes
    such layers below 128 channels, turned off: the taps serve the larger ones)."""
    _gemm_paths(monkeypatch)
    calls = _spy_on_path(monkeypatch, "_TapsPlan")
    xs, ws, attrs = CONV_CASES[case]
    rng = np.random.default_rng(case)
    inputs = [_rand(rng, xs), _rand(rng, ws), _rand(rng, (ws[0],))]
    check_node("Conv", inputs, attrs, rtol=1e-4, atol=1e-4)
    assert calls


@pytest.mark.parametrize(
    "xs,ws,attrs",
    [
        ((1, 3, 30, 30), (8, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),  # a stem
        ((2, 6, 17, 15), (4, 3, 3, 2), {"strides": [3, 2], "dilations": [2, 1],
                                        "pads": [1, 0, 2, 1], "group": 2}),
        ((1, 4, 36, 39), (5, 4, 4, 4), {"strides": [1, 2], "pads": [0, 2, 1, 0]}),
    ],
)  # fmt: skip
def test_conv_strided_columns_from_phases(xs, ws, attrs, monkeypatch):
    """Strided 2-D convolutions on the column-matrix path gather their columns from the stride
    phases of the padded input, a copy of whole rows per tap."""
    from ort_cpu.kernels import conv

    _gemm_paths(monkeypatch)
    calls = []
    real = conv._phase_columns
    monkeypatch.setattr(conv, "_phase_columns", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(5)
    inputs = [_rand(rng, xs), _rand(rng, ws), _rand(rng, (ws[0],))]
    check_node("Conv", inputs, attrs, rtol=1e-4, atol=1e-4)
    assert calls


WINOGRAD_CASES = [
    ((1, 256, 28, 28), (256, 256, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 256, 29, 31), (260, 256, 3, 3), {"pads": [1, 0, 2, 1]}),  # odd output: a cropped tile
    ((1, 264, 30, 30), (256, 264, 3, 3), {}),
    ((1, 128, 14, 14), (160, 128, 3, 3), {"pads": [1, 1, 1, 1]}),  # batched GEMMs only
]


@pytest.fixture
def one_thread(monkeypatch):
    """Sessions made in the test default to one intra-op thread."""
    from ort_cpu import _threads

    monkeypatch.setattr(_threads, "default_threads", lambda: 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("case", range(len(WINOGRAD_CASES)))
def test_conv_winograd(case, dtype, monkeypatch, one_thread):
    """On one thread, 3x3 stride-1 convolutions with 128+ channels on 14+ wide maps go through
    Winograd F(2x2, 3x3) (where numpy's BLAS exposes its GEMM) and give the reference result,
    bias included (float32 on maps below 16 x 16 runs channels last: turned off here)."""
    _no_channels_last(monkeypatch)
    calls = _spy_on_path(monkeypatch, "_conv_winograd")
    xs, ws, attrs = WINOGRAD_CASES[case]
    rng = np.random.default_rng(40 + case)
    inputs = [_rand(rng, xs, dtype), _rand(rng, ws, dtype) * 0.05, _rand(rng, (ws[0],), dtype)]
    tol = {np.float16: 2e-2, np.float32: 1e-4, np.float64: 1e-9}[dtype]
    check_node("Conv", inputs, attrs, rtol=tol, atol=tol)
    assert calls


@pytest.mark.parametrize("spinning", [True, False])
@pytest.mark.parametrize("case", [0, 3])
def test_conv_winograd_on_two_threads_needs_a_spinning_pool(case, spinning, monkeypatch):
    """On two threads the same layers go through Winograd where the pool spins (its 16 products
    are GEMM pieces the workers run without the GIL), else through the per-tap GEMMs or im2col:
    same result."""
    from ort_cpu import _threads

    if spinning and not _threads.spin_supported():
        pytest.skip("the pool spins only on Linux x86-64 with numba")
    monkeypatch.setattr(_threads, "default_threads", lambda: 2)
    if not spinning:
        monkeypatch.setattr(_threads, "spinning", lambda: False)
    _no_channels_last(monkeypatch)
    calls = _spy_on_path(monkeypatch, "_conv_winograd")
    xs, ws, attrs = WINOGRAD_CASES[case]
    rng = np.random.default_rng(50 + case)
    inputs = [_rand(rng, xs), _rand(rng, ws) * 0.05, _rand(rng, (ws[0],))]
    check_node("Conv", inputs, attrs, rtol=1e-4, atol=1e-4)
    assert bool(calls) == spinning


@pytest.mark.parametrize("static", [True, False])
def test_conv_winograd_weights_derived_at_session_creation(static, monkeypatch, one_thread):
    """With the input's shape static, a Winograd layer's transformed weights are derived when
    the session is created, not in its first run (a dynamic shape leaves them to the run)."""
    from ort_cpu.kernels import conv

    calls = _spy_on_path(monkeypatch, "_conv_winograd")
    # a store of its own: entries of earlier tests' weights leave the shared one when the
    # garbage collector takes those weights, which can happen during this test's run
    monkeypatch.setattr(conv, "_WINOGRAD", conv._DerivedWeights())
    derived = []
    real = conv._winograd_weights

    def spy(wmat, m):
        before = len(conv._WINOGRAD._items)
        out = real(wmat, m)
        derived.append(len(conv._WINOGRAD._items) - before)
        return out

    monkeypatch.setattr(conv, "_winograd_weights", spy)
    rng = np.random.default_rng(70)
    xs, ws = (1, 128, 16, 16), (128, 128, 3, 3)
    w = numpy_helper.from_array((rng.standard_normal(ws) * 0.05).astype(np.float32), "w")
    shape = list(xs) if static else ["n", 128, "h", "w"]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "wino",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert sum(derived) == (1 if static else 0)  # a new entry at creation
    derived.clear()
    x = rng.standard_normal(xs).astype(np.float32)
    got = sess.run(None, {"x": x})[0]
    assert calls and sum(derived) == (0 if static else 1)  # the run found them, or made them
    ref = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    np.testing.assert_allclose(got, ref.run(None, {"x": x})[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", [1, 3])
def test_conv_winograd_split_among_threads(case, monkeypatch):
    """Called on two threads with every split paying, Winograd's products are shared by
    product and its output transform by blocks of output channels: the same result as on one
    thread, odd output sizes and bias included."""
    from ort_cpu import _threads
    from ort_cpu.kernels import _blas, conv

    gemm = _blas.find_gemm(np.float32)
    if gemm is None or not _threads.can_set_threads():
        pytest.skip("numpy's BLAS exposes no GEMM this process can call")
    xs, ws, attrs = WINOGRAD_CASES[case]
    rng = np.random.default_rng(60 + case)
    x, w, b = _rand(rng, xs), _rand(rng, ws) * 0.05, _rand(rng, (ws[0],))
    pads = attrs.get("pads", [0, 0, 0, 0])
    out = tuple(xs[2 + i] + pads[i] + pads[2 + i] - 2 for i in range(2))
    wmat = conv.pack_weights(w, 1, np.dtype(np.float32))
    one = conv._conv_winograd(x, wmat, ws[0], out, pads[:2], b, gemm)
    monkeypatch.setattr(_threads, "MIN_PARALLEL_WORK", 0)
    _threads.enter(_threads.pool(2))
    try:
        two = conv._conv_winograd(x, wmat, ws[0], out, pads[:2], b, gemm)
    finally:
        _threads.leave()
    np.testing.assert_allclose(two, one, rtol=1e-6, atol=1e-5)
    model, feeds = make_node_model("Conv", [x, w, b], attrs)
    np.testing.assert_allclose(one, run_reference(model, feeds)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", [1, 3])
def test_conv_winograd_compiled_transforms(case, monkeypatch):
    """Where compiled kernels are on, Winograd's input and output transforms are one compiled
    pass each (_conv_jit.winograd_input and winograd_output, LLVM vector code): the same bits as
    numpy's passes, on one thread and shared by channels among two; float32 and float64, an
    odd output size (a cropped tile) and a batch of two, with a bias and without (host logic
    and the compiled kernels)."""
    from ort_cpu import _threads
    from ort_cpu.kernels import _blas, _conv_jit, conv

    if _conv_jit.warm_winograd() is None or not _threads.can_set_threads():
        pytest.skip("compiled kernels are off in this process")
    assert conv._winograd_kernels() is not None  # the path the first call below takes
    xs, ws, attrs = WINOGRAD_CASES[case]
    rng = np.random.default_rng(80 + case)
    pads = attrs.get("pads", [0, 0, 0, 0])
    out = tuple(xs[2 + i] + pads[i] + pads[2 + i] - 2 for i in range(2))
    for dtype in (np.float32, np.float64):
        gemm = _blas.find_gemm(dtype)
        if gemm is None:
            pytest.skip("numpy's BLAS exposes no GEMM this process can call")
        x, w = _rand(rng, xs, dtype), _rand(rng, ws, dtype) * 0.05
        wmat = conv.pack_weights(w, 1, np.dtype(dtype))
        for b in (_rand(rng, (ws[0],), dtype), None):
            compiled = conv._conv_winograd(x, wmat, ws[0], out, pads[:2], b, gemm)
            with monkeypatch.context() as m:
                m.setattr(conv, "_winograd_kernels", lambda: None)
                passes = conv._conv_winograd(x, wmat, ws[0], out, pads[:2], b, gemm)
            assert np.array_equal(compiled, passes)
            # on two threads (the products then GEMM pieces on the pool: compared with numpy's
            # transforms around the same products)
            with monkeypatch.context() as m:
                m.setattr(conv, "WINOGRAD_SPLIT_CELLS", 0)
                m.setattr(_threads, "MIN_PARALLEL_WORK", 0)
                cuts: list = []
                real = _threads.split

                def split(n, fn, *a, cuts=cuts, real=real):
                    cuts.append(n)
                    real(n, fn, *a)

                m.setattr(_threads, "split", split)
                _threads.enter(_threads.pool(2))
                try:
                    shared = conv._conv_winograd(x, wmat, ws[0], out, pads[:2], b, gemm)
                    m.setattr(conv, "_winograd_kernels", lambda: None)
                    m.setattr(_threads, "split", real)
                    passes = conv._conv_winograd(x, wmat, ws[0], out, pads[:2], b, gemm)
                finally:
                    _threads.leave()
            assert cuts == [xs[1], ws[0]] * xs[0]  # the input's channels, then the output's
            assert np.array_equal(shared, passes)


@pytest.mark.parametrize("case", TAP_CASES[:2])
def test_conv_without_direct_gemm(case, monkeypatch):
    """Where numpy's BLAS GEMM cannot be called directly, the same geometries go through im2col."""
    from ort_cpu.kernels import _blas

    monkeypatch.setattr(_blas, "find_gemm", lambda dtype: None)
    xs, ws, attrs = CONV_CASES[case]
    rng = np.random.default_rng(case)
    inputs = [_rand(rng, xs), _rand(rng, ws), _rand(rng, (ws[0],))]
    check_node("Conv", inputs, attrs, rtol=1e-4, atol=1e-4)


def test_conv_constant_weights_repeated_runs():
    """Weights that are initializers are packed once; every run (and a second session over the
    same weights) gives the reference result."""
    import ort_core

    rng = np.random.default_rng(7)
    for xs, ws, attrs in (CONV_CASES[17], CONV_CASES[4], CONV_CASES[7], CONV_CASES[TAP_CASES[0]]):
        x, w = _rand(rng, xs), _rand(rng, ws)
        model, feeds = make_node_model("Conv", [x, w], attrs)
        expected = run_reference(model, feeds)[0]
        model.graph.initializer.append(onnx.numpy_helper.from_array(w, "x1"))
        del model.graph.input[1]
        for _ in range(2):
            sess = ort_core.InferenceSession(
                model.SerializeToString(), providers=["CPUExecutionProvider"]
            )
            for _ in range(2):
                got = sess.run(None, {"x0": x})[0]
                np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("opset", [1, 11, 22])
def test_conv_opsets(opset):
    rng = np.random.default_rng(opset)
    inputs = [_rand(rng, (1, 2, 5, 6)), _rand(rng, (3, 2, 3, 3)), _rand(rng, (3,))]
    check_node("Conv", inputs, {"pads": [1, 1, 1, 1]}, opset=opset, rtol=1e-4, atol=1e-4)


def test_conv_bfloat16_close_to_float32():
    rng = np.random.default_rng(3)
    x, w = _rand(rng, (1, 3, 6, 6)), _rand(rng, (4, 3, 3, 3))
    xb, wb = x.astype(ml_dtypes.bfloat16), w.astype(ml_dtypes.bfloat16)
    model, feeds = make_node_model("Conv", [xb, wb], {"pads": [1, 1, 1, 1]})
    (got,) = run_cpu(model, feeds)
    model32, feeds32 = make_node_model(
        "Conv", [xb.astype(np.float32), wb.astype(np.float32)], {"pads": [1, 1, 1, 1]}
    )
    (expected,) = run_reference(model32, feeds32)
    assert got.dtype == ml_dtypes.bfloat16
    np.testing.assert_allclose(got.astype(np.float32), expected, rtol=2e-2, atol=5e-2)


TRANSPOSE_CASES = [
    ((1, 2, 4), (2, 3, 3), {}),
    ((2, 2, 5), (2, 2, 3), {"strides": [2], "pads": [1, 0], "output_padding": [1]}),
    ((1, 1, 3, 3), (1, 2, 3, 3), {}),
    ((1, 2, 3, 4), (2, 3, 3, 2), {"strides": [3, 2]}),
    ((1, 2, 3, 4), (2, 3, 3, 3), {"strides": [2, 2], "pads": [1, 2, 0, 1]}),
    ((1, 1, 3, 3), (1, 2, 3, 3), {"strides": [3, 2], "output_padding": [1, 1]}),
    ((1, 1, 3, 3), (1, 2, 3, 3), {"strides": [3, 2], "output_shape": [10, 8]}),
    ((1, 1, 3, 3), (1, 2, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 1, 3, 4), (1, 2, 3, 3), {"strides": [2, 3], "auto_pad": "SAME_LOWER"}),
    ((1, 1, 3, 3), (1, 2, 2, 2), {"dilations": [2, 2]}),
    ((1, 2, 3, 3), (2, 2, 3, 3), {"strides": [2, 2], "auto_pad": "VALID"}),
    ((1, 2, 2, 3, 2), (2, 2, 2, 2, 3), {"strides": [2, 1, 2], "pads": [0, 1, 1, 1, 0, 1]}),
    # windows that tile the output (kernel == stride): written once each, not summed
    ((2, 4, 5, 6), (4, 3, 2, 2), {"strides": [2, 2]}),
    ((1, 2, 7), (2, 3, 2), {"strides": [2]}),
    ((1, 2, 2, 3, 2), (2, 2, 2, 2, 2), {"strides": [2, 2, 2]}),
    ((1, 2, 3, 3), (2, 2, 2, 2), {"strides": [2, 2], "output_padding": [1, 1]}),
]


@pytest.mark.parametrize("case", range(len(TRANSPOSE_CASES)))
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose(case, bias):
    xs, ws, attrs = TRANSPOSE_CASES[case]
    rng = np.random.default_rng(100 + case)
    inputs = [_rand(rng, xs), _rand(rng, ws)]
    if bias:
        inputs.append(_rand(rng, (ws[1],)))
    check_node("ConvTranspose", inputs, attrs, rtol=1e-4, atol=1e-4)


def test_conv_transpose_empty_batch():
    """The reference fails on an empty batch: compare with the shape of a one-image run."""
    rng = np.random.default_rng(5)
    x, w = _rand(rng, (1, 2, 3, 3)), _rand(rng, (2, 3, 3, 3))
    attrs = {"strides": [2, 2], "pads": [1, 0, 0, 1]}
    model, feeds = make_node_model("ConvTranspose", [x[:0], w], attrs)
    (got,) = run_cpu(model, feeds)
    (one,) = check_node("ConvTranspose", [x, w], attrs, rtol=1e-4, atol=1e-4)
    assert got.shape == (0, *one.shape[1:]) and got.dtype == one.dtype


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_conv_transpose_dtypes(dtype):
    rng = np.random.default_rng(7)
    inputs = [_rand(rng, (1, 2, 3, 4), dtype), _rand(rng, (2, 3, 3, 3), dtype)]
    rtol, atol = TOL[dtype]
    check_node(
        "ConvTranspose", inputs, {"strides": [2, 2], "pads": [1, 0, 0, 1]}, rtol=rtol, atol=atol
    )


@pytest.mark.parametrize(
    "mg,attrs",
    [
        (1, {"strides": [2, 1], "pads": [1, 0, 0, 1], "output_padding": [1, 0]}),
        (2, {"strides": [2, 1], "pads": [1, 0, 0, 1], "output_padding": [1, 0]}),
        (2, {"strides": [3, 2]}),  # windows that tile the output
    ],
)
def test_conv_transpose_group(mg, attrs):
    """The reference mishandles group > 1, so compare with one group=1 reference run per group."""
    rng = np.random.default_rng(mg)
    g, cg = 2, 2
    x, w = _rand(rng, (2, g * cg, 3, 4)), _rand(rng, (g * cg, mg, 3, 2))
    b = _rand(rng, (g * mg,))
    model, feeds = make_node_model("ConvTranspose", [x, w, b], {**attrs, "group": g})
    (got,) = run_cpu(model, feeds)
    parts = []
    for i in range(g):
        sl = slice(i * cg, (i + 1) * cg)
        m1, f1 = make_node_model(
            "ConvTranspose", [x[:, sl], w[sl], b[i * mg : (i + 1) * mg]], attrs
        )
        parts.append(run_reference(m1, f1)[0])
    np.testing.assert_allclose(got, np.concatenate(parts, axis=1), rtol=1e-4, atol=1e-4)


INT_CASES = [
    ((1, 2, 5, 5), (3, 2, 3, 3), {}),
    ((2, 4, 6, 5), (4, 2, 2, 2), {"group": 2, "pads": [1, 0, 1, 1], "strides": [2, 1]}),
    ((1, 3, 7), (2, 3, 3), {"dilations": [2], "pads": [1, 1]}),
]


@pytest.mark.parametrize("case", range(len(INT_CASES)))
@pytest.mark.parametrize("xdt,wdt", [(np.uint8, np.uint8), (np.int8, np.int8), (np.uint8, np.int8)])
@pytest.mark.parametrize("zero_points", ["none", "scalar", "per_channel"])
def test_conv_integer(case, xdt, wdt, zero_points):
    xs, ws, attrs = INT_CASES[case]
    rng = np.random.default_rng(case)
    x = rng.integers(np.iinfo(xdt).min, np.iinfo(xdt).max, xs, dtype=xdt)
    w = rng.integers(np.iinfo(wdt).min, np.iinfo(wdt).max, ws, dtype=wdt)
    inputs = [x, w]
    if zero_points == "scalar":
        inputs += [np.array(3, xdt), np.array(5, wdt)]
    elif zero_points == "per_channel":
        if len(ws) != 4:
            pytest.skip("the reference expands per-channel zero points for 2-D kernels only")
        inputs += [np.array(7, xdt), rng.integers(0, 9, ws[0]).astype(wdt)]
    check_node("ConvInteger", inputs, attrs)


@pytest.mark.parametrize("case", range(len(INT_CASES)))
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("per_channel", [False, True])
def test_qlinear_conv(case, dtype, per_channel):
    xs, ws, attrs = INT_CASES[case]
    if per_channel and len(ws) != 4:
        pytest.skip("the reference expands per-channel scales for 2-D kernels only")
    rng = np.random.default_rng(10 + case)
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    x = rng.integers(lo, hi, xs, dtype=dtype)
    w = rng.integers(lo, hi, ws, dtype=dtype)
    m = ws[0]
    w_scale = (
        (rng.random(m) * 0.01 + 0.001).astype(np.float32) if per_channel else np.float32(0.004)
    )
    w_zp = np.zeros(m, dtype) if per_channel else np.array(2, dtype)
    b = rng.integers(-500, 500, m).astype(np.int32)
    inputs = [
        x, np.array(0.02, np.float32), np.array(5, dtype),
        np.asarray(w, dtype), np.asarray(w_scale, np.float32), w_zp,
        np.array(0.05, np.float32), np.array(3, dtype), b,
    ]  # fmt: skip
    check_node("QLinearConv", inputs, attrs)


DEFORM_CASES = [
    # x shape, w shape, attrs, offset_group, with mask
    ((1, 2, 4, 4), (2, 2, 2, 2), {}, 1, False),
    ((2, 2, 5, 4), (3, 2, 3, 2), {"pads": [1, 0, 1, 1], "strides": [2, 1]}, 2, True),
    ((1, 4, 5, 5), (2, 2, 2, 2), {"group": 2, "dilations": [2, 1]}, 2, True),
]


@pytest.mark.parametrize("case", range(len(DEFORM_CASES)))
@pytest.mark.parametrize("bias", [True, False])
def test_deform_conv(case, bias):
    xs, ws, attrs, og, with_mask = DEFORM_CASES[case]
    rng = np.random.default_rng(30 + case)
    x, w = _rand(rng, xs), _rand(rng, ws)
    kh, kw = ws[2:]
    st, dl = attrs.get("strides", [1, 1]), attrs.get("dilations", [1, 1])
    pads = attrs.get("pads", [0, 0, 0, 0])
    oh = (xs[2] + pads[0] + pads[2] - (kh - 1) * dl[0] - 1) // st[0] + 1
    ow = (xs[3] + pads[1] + pads[3] - (kw - 1) * dl[1] - 1) // st[1] + 1
    offset = (rng.standard_normal((xs[0], og * 2 * kh * kw, oh, ow)) * 1.5).astype(np.float32)
    b = _rand(rng, (ws[0],)) if bias else None
    mask = rng.random((xs[0], og * kh * kw, oh, ow)).astype(np.float32) if with_mask else None
    inputs = [x, w, offset, b] + ([mask] if with_mask else [])
    check_node("DeformConv", inputs, {**attrs, "offset_group": og}, rtol=1e-4, atol=1e-4)


def _random_conv(rng, depthwise: bool):
    """A random 2-D convolution geometry (kernel, stride, dilation, pads, groups) with a
    non-empty output; depthwise: one group per channel."""
    while True:
        c = int(rng.integers(1, 6))
        g = c if depthwise else int(rng.choice([d for d in range(1, c + 1) if c % d == 0]))
        m = c if depthwise else g * int(rng.integers(1, 4))
        h, w = (int(v) for v in rng.integers(3, 12, 2))
        k = [int(v) for v in rng.integers(1, 4, 2)]
        s = [int(v) for v in rng.integers(1, 4, 2)]
        d = [int(v) for v in rng.integers(1, 3, 2)]
        p = [int(v) for v in rng.integers(0, 3, 4)]
        if (k[0] - 1) * d[0] + 1 <= h + p[0] + p[2] and (k[1] - 1) * d[1] + 1 <= w + p[1] + p[3]:
            attrs = {"kernel_shape": k, "strides": s, "dilations": d, "pads": p, "group": g}
            return (2, c, h, w), (m, c // g, *k), attrs


@pytest.mark.parametrize("depthwise", [True, False])
@pytest.mark.parametrize("seed", range(40))
def test_conv_random_geometries(seed, depthwise):
    """Every path of the convolution engine (pointwise, shifted, depthwise through the stride
    phases, im2col) against the reference on random geometries."""
    rng = np.random.default_rng(seed)
    x_shape, w_shape, attrs = _random_conv(rng, depthwise)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    check_node("Conv", [x, w], attrs)
