"""The CPU provider's intra-op threads (ort_cpu._threads): host logic of the pool and the BLAS
pin, and kernels split among threads giving the results they give on one thread."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from ort_cpu import _threads
from ort_cpu.kernels import _blas

import ort_core as ort


@pytest.fixture
def two_threads():
    _threads.enter(_threads.pool(2), pin_blas=_threads.can_set_threads())
    try:
        yield
    finally:
        _threads.leave()


def test_split_covers_every_item_once_in_whole_pieces(two_threads):
    seen = []
    lock = threading.Lock()

    def piece(lo, hi):
        with lock:
            seen.append((lo, hi, threading.get_ident()))

    _threads.split(1001, piece, cost=1e12, min_piece=16)
    bounds = sorted((lo, hi) for lo, hi, _ in seen)
    assert bounds[0][0] == 0 and bounds[-1][1] == 1001
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert all((hi - lo) % 16 == 0 for lo, hi in bounds[:-1])
    assert len(bounds) == 2  # one piece per thread
    assert len({t for *_, t in seen}) <= 2


@pytest.mark.parametrize("spinning", [False, True], ids=["queue", "spinning"])
def test_a_busy_worker_does_not_hold_the_caller_up(spinning):
    """Pieces are claimed one at a time: while another caller's job keeps the only worker busy
    (its core taken elsewhere), a run started on this thread runs every piece of its own split
    itself, at once, instead of waiting for the worker or for that job (on a spinning pool the
    run's start included)."""
    pool = _threads.Pool(2)
    if spinning and not pool.start_spinning():
        pytest.skip("no spinning hand-off here (needs numba on Linux x86-64)")
    release, both = threading.Event(), threading.Barrier(3, timeout=10)

    def block(lo, hi):
        both.wait()  # the other caller's piece and the worker's
        release.wait(30)

    blocker = threading.Thread(target=pool.map, args=(block, [(0, 1), (1, 2)]))
    blocker.start()
    try:
        both.wait()  # both pieces of the other caller's job are running
        start = time.monotonic()
        _threads.enter(pool, pin_blas=False)
        try:
            seen = []
            _threads.split(8, lambda lo, hi: seen.append(threading.get_ident()), cost=1e12)
        finally:
            _threads.leave()
        assert time.monotonic() - start < 5
        assert seen and set(seen) == {threading.get_ident()}
    finally:
        release.set()
        blocker.join(30)


def test_small_work_and_nested_splits_run_serially(two_threads):
    calls = []
    _threads.split(100, lambda lo, hi: calls.append((lo, hi)), cost=10)
    assert calls == [(0, 100)]
    inner = []

    def outer(lo, hi):
        _threads.split(10, lambda a, b: inner.append((a, b)), cost=1e12)

    _threads.split(2, outer, cost=1e12)
    assert sorted(inner) == [(0, 10), (0, 10)]  # each piece ran its own split whole


def test_an_exception_in_a_worker_piece_reaches_the_caller(two_threads):
    def piece(lo, hi):
        if lo > 0:
            raise ValueError("piece failed")

    with pytest.raises(ValueError, match="piece failed"):
        _threads.split(10, piece, cost=1e12)
    # the pool still works afterwards
    out = np.zeros(10)
    _threads.split(10, lambda lo, hi: out.__setitem__(slice(lo, hi), 1), cost=1e12)
    assert out.sum() == 10


def test_without_a_pool_everything_is_serial():
    assert _threads.threads() == 1
    calls = []
    _threads.split(100, lambda lo, hi: calls.append((lo, hi)), cost=1e12)
    assert calls == [(0, 100)]


@pytest.mark.skipif(
    not _threads.can_set_threads(), reason="numpy's BLAS is not a settable OpenBLAS"
)
def test_blas_is_pinned_to_one_thread_while_any_run_is_in_progress():
    before = _threads.blas_threads(2)  # make the pin visible even on a 1-core machine
    try:
        _threads.enter(None)
        assert _threads.blas_threads(1) == 1
        _threads.enter(None)  # a second run (nested or on another thread)
        _threads.leave()
        assert _threads.blas_threads(1) == 1  # still one run in progress
        _threads.leave()
        assert _threads.blas_threads(2) == 2  # restored once no run is left
    finally:
        _threads.blas_threads(before)


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [
        ((300, 500), (500, 900)),  # split by columns
        ((900, 500), (500, 300)),  # split by rows
        ((4, 120, 200), (4, 200, 150)),  # split by the stack
        ((6, 120, 200), (200, 150)),  # a 2-D operand broadcast over the stack
        ((1, 300, 200), (3, 200, 400)),  # broadcast on the first axis
        ((2, 3, 64, 96), (2, 3, 96, 256)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_matmul_equals_numpy(two_threads, a_shape, b_shape, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape).astype(dtype)
    b = rng.standard_normal(b_shape).astype(dtype)
    got = _blas.matmul(a, b)
    want = np.matmul(a, b)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-4)


def test_split_matmul_into_a_transposed_view(two_threads):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 4, 100, 300)).astype(np.float32)
    b = rng.standard_normal((2, 4, 300, 64)).astype(np.float32)
    out = np.empty((2, 100, 4, 64), np.float32)
    _blas.matmul(a, b, out=out.transpose(0, 2, 1, 3))
    np.testing.assert_allclose(out.transpose(0, 2, 1, 3), a @ b, rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(_blas.find_gemm(np.float32) is None, reason="no direct BLAS GEMM")
def test_split_gemm_accumulates_like_one_call(two_threads):
    gemm = _blas.find_gemm(np.float32)
    rng = np.random.default_rng(2)
    a = rng.standard_normal((64, 600)).astype(np.float32)
    b = rng.standard_normal((600, 2000)).astype(np.float32)
    c = rng.standard_normal((64, 2000)).astype(np.float32)
    want = c + a @ b
    gemm(a, b, c, 1.0)
    np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-3)


def _conv_model(c, m, hw, k, stride, group):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((m, c // group, k, k)).astype(np.float32)
    node = helper.make_node(
        "Conv", ["x", "w"], ["y"], group=group, strides=[stride] * 2, pads=[k // 2] * 4
    )
    graph = helper.make_graph(
        [node], "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString(), rng.standard_normal((1, c, hw, hw)).astype(np.float32)


@pytest.mark.parametrize(
    "c, m, hw, k, stride, group",
    [
        # depthwise kernels run on the calling thread (memory-bound), GEMMs of at least
        # _threads.MIN_PARALLEL_WORK multiply-adds are split
        (32, 32, 56, 3, 1, 32),  # depthwise, planar direct kernel
        (256, 256, 7, 3, 1, 256),  # depthwise, channels-last kernel
        (64, 64, 56, 3, 1, 1),  # dense 3x3 (per-tap GEMMs or Winograd)
        (64, 128, 56, 1, 1, 1),  # pointwise GEMM
        (64, 64, 56, 3, 2, 4),  # grouped
    ],
)
def test_conv_on_two_threads_equals_one_thread_and_onnxruntime(c, m, hw, k, stride, group):
    model, x = _conv_model(c, m, hw, k, stride, group)
    outs = []
    for threads in (1, 2):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        outs.append(sess.run(None, {"x": x})[0])
    # float32 sums of hundreds of terms: a split product may round its last bit differently
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-4, atol=1e-4)
    onnxruntime = pytest.importorskip("onnxruntime")
    ref = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(outs[1], ref.run(None, {"x": x})[0], rtol=1e-4, atol=1e-4)


def test_concurrent_runs_share_the_pool_and_agree():
    model, x = _conv_model(64, 64, 28, 3, 1, 1)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0]
    errors, results = [], []

    def worker():
        try:
            for _ in range(5):
                results.append(sess.run(None, {"x": x})[0])
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(results) == 15
    for r in results:
        np.testing.assert_array_equal(r, want)


def _products_model():
    """MatMulIntegerToFloat (constant int8 weights, the float32-block path), QLinearMatMul
    (float64) and ONNX Attention over 8 heads, each large enough to be split."""
    rng = np.random.default_rng(5)
    w = rng.integers(-128, 128, (384, 1536), dtype=np.int8)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.float32(0.02), "a_scale"),
        numpy_helper.from_array(np.full(1536, 0.01, np.float32), "w_scale"),
        numpy_helper.from_array(np.uint8(128), "a_zp"),
        numpy_helper.from_array(np.float32(0.5), "y_scale"),
        numpy_helper.from_array(np.uint8(100), "y_zp"),
        numpy_helper.from_array(np.int8(0), "w_zp"),
    ]
    nodes = [
        helper.make_node(
            "MatMulIntegerToFloat", ["a", "w", "a_scale", "w_scale", "a_zp"], ["f"],
            domain="com.microsoft",
        ),
        helper.make_node(
            "QLinearMatMul", ["a", "a_scale", "a_zp", "w", "a_scale", "w_zp", "y_scale", "y_zp"],
            ["q"],
        ),
        helper.make_node("Attention", ["qh", "kh", "vh"], ["att"]),
    ]  # fmt: skip
    shapes = {"a": ([128, 384], TensorProto.UINT8)}
    shapes.update({n: ([1, 8, 128, 64], TensorProto.FLOAT) for n in ("qh", "kh", "vh")})
    graph = helper.make_graph(
        nodes, "products",
        [helper.make_tensor_value_info(n, t, s) for n, (s, t) in shapes.items()],
        [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in ("f", "q", "att")],
        inits,
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 23), helper.make_opsetid("com.microsoft", 1)]
    )
    feeds = {"a": rng.integers(0, 256, (128, 384), dtype=np.uint8)}
    feeds.update({n: f32(1, 8, 128, 64) for n in ("qh", "kh", "vh")})
    return model.SerializeToString(), feeds


def test_integer_products_and_attention_on_two_threads_equal_one_thread():
    """The integer products (exact) and attention's products take the run's threads through
    _blas.matmul; each output element is the same dot product either way."""
    model, feeds = _products_model()
    outs = []
    for threads in (1, 2):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        outs.append(sess.run(None, feeds))
    for one, two in zip(*outs, strict=True):
        np.testing.assert_allclose(two, one, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(outs[1][1], outs[0][1])  # the requantized integers


def test_gelu_and_erf_blocks_on_two_threads_equal_one_thread():
    """Gelu (com.microsoft BiasGelu, ONNX Gelu) and Erf share their blocks among the run's
    threads: element for element the same operations, so the same bits."""
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((128, 1536)) * 3).astype(np.float32)
    bias = rng.standard_normal(1536).astype(np.float32)
    nodes = [
        helper.make_node("BiasGelu", ["x", "b"], ["g1"], domain="com.microsoft"),
        helper.make_node("Gelu", ["x"], ["g2"]),
        helper.make_node("Erf", ["x"], ["e"]),
    ]
    graph = helper.make_graph(
        nodes, "gelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [128, 1536])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("g1", "g2", "e")],
        [numpy_helper.from_array(bias, "b")],
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("com.microsoft", 1)]
    ).SerializeToString()
    outs = []
    for threads in (1, 2):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        outs.append(ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(
            None, {"x": x}
        ))  # fmt: skip
    for one, two in zip(*outs, strict=True):
        np.testing.assert_array_equal(two, one)


@pytest.mark.parametrize("features, classes, pinned", [(4, 3, False), (64, 40, True)])
def test_small_ml_products_do_not_pin_blas(features, classes, pinned):
    """A scikit-learn linear model with few weights leaves numpy's BLAS alone during runs
    (OpenBLAS multiplies it on one thread anyway; setting its thread count twice a run cost a
    quarter of a batch-1 run); a large one, like a MatMul, keeps it on one thread."""
    rng = np.random.default_rng(3)
    node = helper.make_node(
        "LinearClassifier", ["x"], ["label", "scores"], domain="ai.onnx.ml",
        coefficients=rng.standard_normal(features * classes).astype(np.float32).tolist(),
        intercepts=[0.0] * classes, classlabels_ints=list(range(classes)),
    )  # fmt: skip
    graph = helper.make_graph(
        [node], "lin", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, features])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, None),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)]
    model = helper.make_model(graph, opset_imports=opsets).SerializeToString()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    (cpu,) = [ep for ep in sess._providers if ep.name == "CPUExecutionProvider"]
    assert cpu._uses_blas is pinned
    x = rng.standard_normal((5, features)).astype(np.float32)
    label, scores = sess.run(None, {"x": x})
    np.testing.assert_array_equal(label, scores.argmax(axis=1))


@pytest.mark.parametrize("k, n, pinned", [(8, 16, False), (64, 64, True)])
def test_small_constant_matmuls_do_not_pin_blas(k, n, pinned):
    """A MatMul by a small constant (a scikit-learn PCA or scaler) leaves numpy's BLAS alone,
    like a small ai.onnx.ml product; a large one keeps it on one thread during runs."""
    rng = np.random.default_rng(4)
    w = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    (cpu,) = [ep for ep in sess._providers if ep.name == "CPUExecutionProvider"]
    assert cpu._uses_blas is pinned
    x = rng.standard_normal((3, k)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], x @ numpy_helper.to_array(w), rtol=1e-5)
