"""The CPU provider's compiled softmax of attention scores and erf GELU
(``ort_cpu.kernels._exp_jit``, built on an exponential the compiler vectorizes) against
onnxruntime and against the numpy path they replace; the exponential itself against float64;
and the work shared among a run's threads (compiled pieces on the spinning pool) giving the
one-thread bits."""

from __future__ import annotations

import numpy as np
import pytest

import ort_core

from .harness import make_node_model, spy_split_compiled, use_compiled

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle for contrib ops")

MS = "com.microsoft"


@pytest.fixture(params=["compiled", "numpy"])
def compiled(request, monkeypatch):
    return use_compiled(monkeypatch, request.param == "compiled")


def _jit_module():
    from ort_cpu import _jit

    if not _jit.available():
        pytest.skip(f"compiled kernels are off: {_jit.reason()}")
    from ort_cpu.kernels import _exp_jit

    return _exp_jit


def _calls():
    """:mod:`ort_cpu.kernels._exp`, which calls the kernels (on this thread or as pieces)."""
    _jit_module()
    from ort_cpu.kernels import _exp

    return _exp


def test_the_exponential_against_float64():
    """Host logic: within 3.5e-7 of exp over float32's normal range; 0 below it, inf above
    float32's largest, NaN kept."""
    import numba

    exp = _jit_module()._exp.jitted()

    @numba.njit(error_model="numpy")
    def exps(x, y):
        for i in range(x.shape[0]):
            y[i] = exp(x[i])

    x = np.concatenate([np.linspace(-86.9, 88.7, 400_001), np.linspace(-1, 1, 10_001)]).astype(
        np.float32
    )
    y = np.empty_like(x)
    exps(x, y)
    exact = np.exp(x.astype(np.float64))
    assert np.abs(y / exact - 1).max() < 3.5e-7
    ends = np.array([-np.inf, -1e30, -200, -88, 89.0, 100, 1e30, np.inf, np.nan], np.float32)
    y = np.empty_like(ends)
    exps(ends, y)
    assert list(y[:4]) == [0, 0, 0, 0]
    assert np.isposinf(y[4:8]).all() and np.isnan(y[8])


def _onnxruntime(model, feeds, threads=1):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _ours(model, feeds, threads=1):
    so = ort_core.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort_core.InferenceSession(
        model.SerializeToString(), so, providers=["CPUExecutionProvider"]
    )
    return sess.run(None, feeds)


def _gelu_input(rng, shape):
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    flat = x.reshape(-1)
    flat[:8] = [np.inf, np.nan, -200, 200, -1e30, 1e30, -5.5, 5.5]  # -inf: onnxruntime NaN, ours -0
    return x


@pytest.mark.parametrize("op", ["BiasGelu", "Gelu", "onnx-Gelu"])
def test_gelu_matches_onnxruntime(compiled, op):
    """Device (this CPU): BiasGelu, com.microsoft Gelu and ONNX Gelu (opset 20) on activations
    with large, infinite and NaN values, compiled and numpy, against onnxruntime."""
    rng = np.random.default_rng(3)
    x = _gelu_input(rng, (3, 40, 96))
    inputs = [x, rng.standard_normal(96).astype(np.float32)] if op == "BiasGelu" else [x]
    domain = "" if op == "onnx-Gelu" else MS
    model, feeds = make_node_model(
        op.replace("onnx-", ""), inputs, {}, domain=domain, opset=20 if not domain else 17
    )
    want, got = _onnxruntime(model, feeds)[0], _ours(model, feeds)[0]
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


def test_gelu_rows_are_shared_among_the_runs_threads(monkeypatch):
    """Device: at two threads a BiasGelu's rows are compiled pieces on the run's pool (once a
    run), with the one-thread result bit for bit."""
    _jit_module()
    handed = spy_split_compiled(monkeypatch)
    rng = np.random.default_rng(4)
    x = _gelu_input(rng, (2, 64, 384))
    model, feeds = make_node_model(
        "BiasGelu", [x, rng.standard_normal(384).astype(np.float32)], {}, domain=MS, opset=17
    )
    one = _ours(model, feeds, threads=1)[0]
    assert not any(done for *_, done in handed)  # one thread: no pool
    handed.clear()
    two = _ours(model, feeds, threads=2)[0]
    assert handed == [(128, 2, True)]
    np.testing.assert_array_equal(two, one)
    np.testing.assert_allclose(two, _onnxruntime(model, feeds)[0], rtol=2e-6, atol=1e-6)


def _attention_inputs(rng, b, s, d, mask_kind):
    q, k, v = (rng.standard_normal((b, s, d)).astype(np.float32) for _ in range(3))
    bias = rng.standard_normal(3 * d).astype(np.float32)
    if mask_kind == "raw2d":
        mask = np.ones((b, s), np.int32)
        mask[-1, s // 2 :] = 0  # the last sequence right-padded
    elif mask_kind == "end":
        mask = np.array([s] * (b - 1) + [s // 3], np.int32)
    else:
        mask = None
    return [q * 3, k * 3, v, bias, mask]  # scaled: a peaked softmax


@pytest.mark.parametrize("mask_kind", ["none", "raw2d", "end"])
def test_attention_softmax_matches_onnxruntime(compiled, mask_kind):
    """Device: MultiHeadAttention with no mask, a raw key padding mask and end positions, at
    sequence 96 (the compiled softmax and the numpy one), against onnxruntime."""
    rng = np.random.default_rng(5)
    inputs = _attention_inputs(rng, 2, 96, 64, mask_kind)
    model, feeds = make_node_model("MultiHeadAttention", inputs, {"num_heads": 4}, domain=MS)
    want, got = _onnxruntime(model, feeds)[0], _ours(model, feeds)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_attention_heads_are_shared_among_the_runs_threads(monkeypatch):
    """Device: at two threads the softmax's heads are compiled pieces on the run's pool, with
    the one-thread result bit for bit."""
    _jit_module()
    rng = np.random.default_rng(6)
    inputs = _attention_inputs(rng, 2, 128, 64, "raw2d")
    model, feeds = make_node_model("MultiHeadAttention", inputs, {"num_heads": 4}, domain=MS)
    one = _ours(model, feeds, threads=1)[0]
    handed = spy_split_compiled(monkeypatch)
    two = _ours(model, feeds, threads=2)[0]
    assert (8, 2, True) in handed  # 2 sequences x 4 heads
    np.testing.assert_array_equal(two, one)


@pytest.mark.parametrize("rows", [0, 1, 2])
def test_softmax_against_the_numpy_path(rows):
    """Host logic: the compiled softmax of transposed scores (with no mask, one mask row for
    every head, a row per sequence) against :func:`contrib._softmax_in_numpy`; a NaN score
    makes its query's column NaN in both, and the other columns stay finite."""
    from ort_cpu.kernels import contrib

    _jit_module()
    rng = np.random.default_rng(7)
    b, n, t, s = 2, 3, 70, 50
    scores = (rng.standard_normal((b, n, t, s)) * 30).astype(np.float32)
    scores[1, 2, 5, 7] = np.nan
    masks = []
    if rows:
        m = np.where(rng.random((rows, 1, 1, t)) < 0.3, -10000.0, 0.0).astype(np.float32)
        masks = [m]
    want = contrib._softmax_in_numpy(scores.copy(), 0.25, masks)
    got = scores.copy()
    mask_rows, per = contrib._mask_rows(got, masks)
    assert per == {0: 0, 1: b * n, 2: n}[rows]
    _calls().softmax(got.reshape(b * n, t, s), 0.25, mask_rows, per)
    assert np.isnan(got[1, 2, :, 7]).all() and np.isnan(want[1, 2, :, 7]).all()
    got[1, 2, :, 7] = want[1, 2, :, 7] = 0
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-9)


def test_masks_the_compiled_softmax_does_not_take():
    """Host logic: a per-query mask, two masks or float64 scores go to numpy."""
    from ort_cpu.kernels import contrib

    scores = np.zeros((1, 2, 4, 3), np.float32)
    assert contrib._mask_rows(scores, [np.zeros((1, 1, 3, 4), np.float32)]) is None
    two = [np.zeros((1, 1, 1, 4), np.float32)] * 2
    assert contrib._mask_rows(scores, two) is None
    assert contrib._mask_rows(scores.astype(np.float64), []) is None
    assert contrib._mask_rows(scores, [None])[1] == 0


@pytest.mark.parametrize(
    "alpha,times_x", [(1.0, False), (1.702, False), (1.0, True), (1.702, True)]
)
def test_logistic_against_the_numpy_path(alpha, times_x, monkeypatch):
    """Host logic: the compiled Sigmoid / SiLU / QuickGelu (:func:`_exp.logistic`) against
    :func:`.elementwise.logistic`'s numpy steps: within 4e-7 relative (the exponential's error),
    the tails, zeros' signs and NaN exactly; a tensor's cells whatever their offset in it (a
    piece starts mid-tensor)."""
    from ort_cpu.kernels import elementwise

    module = _jit_module()
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(70_001) * 12).astype(np.float32)
    tails = [np.nan, np.inf, -np.inf, 100, -100, 88.8, -88.8, 89, -89, 0, -0.0, 1e-30, -1e-30]
    x[: len(tails)] = tails
    got = _calls().logistic(x, alpha, times_x)
    monkeypatch.setattr(elementwise, "_compiled_logistic", lambda: None)
    want = elementwise.logistic(x, alpha, times_x)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(got[: len(tails)], want[: len(tails)])
    big = np.abs(want) > 1e-30
    np.testing.assert_allclose(got[big], want[big], rtol=4e-7, atol=0)
    part = np.empty(100, np.float32)
    module.logistic_cells.get()(x[1000:1100], part, np.float32(alpha), times_x, 0, 100)
    tail = np.empty(x.size, np.float32)
    module.logistic_cells.get()(x, tail, np.float32(alpha), times_x, 1000, 1100)
    np.testing.assert_array_equal(part, got[1000:1100])
    np.testing.assert_array_equal(tail[1000:1100], got[1000:1100])


def test_a_loaded_exp_kernel_asks_nothing_else_per_call(monkeypatch):
    """Host logic: once :mod:`._exp_jit`'s logistic and GELU are loaded, a Sigmoid call finds
    them without asking whether pools spin (that question imports ``platform``: 3 us a call,
    more than a small Sigmoid's work)."""
    from ort_cpu import _threads
    from ort_cpu.kernels import elementwise

    module = _calls()
    assert elementwise._compiled_logistic() is module and elementwise._compiled_gelu() is module

    def asked():
        raise AssertionError("spin_supported asked on a call")

    monkeypatch.setattr(_threads, "spin_supported", asked)
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    np.testing.assert_allclose(elementwise.logistic(x), 1 / (1 + np.exp(-x)), rtol=1e-6)
    assert elementwise._compiled_gelu() is module


@pytest.mark.parametrize(
    "op,attrs,domain", [("Sigmoid", {}, ""), ("QuickGelu", {"alpha": 1.0}, MS)]
)
def test_logistic_is_shared_among_the_runs_threads(op, attrs, domain, monkeypatch):
    """Device: at two threads a large Sigmoid / SiLU is compiled pieces on the run's pool,
    with the one-thread bits; within 2e-6 of onnxruntime (whose logistic is MLAS's rational
    approximation, off by about 1e-7 near 0, 1.311e-6 for 1.187e-6, which SiLU multiplies by
    x)."""
    _jit_module()
    from ort_cpu.kernels import _exp_jit

    rng = np.random.default_rng(12)
    x = (rng.standard_normal((1, 16, 80, 80)) * 5).astype(np.float32)
    model, feeds = make_node_model(op, [x], attrs, domain=domain)
    one = _ours(model, feeds, threads=1)[0]
    handed = spy_split_compiled(monkeypatch)
    two = _ours(model, feeds, threads=2)[0]
    units = -(-x.size // _exp_jit.LOGISTIC_PIECE)
    assert (units, 2, True) in handed
    np.testing.assert_array_equal(two, one)
    np.testing.assert_allclose(one, _onnxruntime(model, feeds)[0], rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize(
    "opset, shape, axis",
    [
        (11, (1, 1000, 1, 1), 1),  # SqueezeNet's classifier
        (11, (2, 3, 4, 5), 1),  # the legacy form: rows of the flattened axes from axis on
        (11, (2, 3, 4, 5), 0),
        (11, (2, 3, 4, 5), -2),
        (13, (1, 1000, 1, 1), 1),  # from opset 13: unit axes after it
        (13, (2, 7, 1), -2),
    ],
)
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_over_an_axis_with_contiguous_cells_is_compiled(
    op, opset, shape, axis, monkeypatch
):
    """Device code of this CPU (compiled): a Softmax whose cells along ``axis`` lie contiguous
    (the legacy form at any axis, or unit axes after it) runs as compiled rows of a 2-D view,
    within float32 rounding of onnxruntime's; an axis with real axes after it keeps numpy."""
    exp = _calls()
    use_compiled(monkeypatch, True)
    rows = []
    real = exp.softmax_last
    monkeypatch.setattr(exp, "softmax_last", lambda x, log: rows.append(x.shape) or real(x, log))
    x = (np.random.default_rng(3).standard_normal(shape) * 4).astype(np.float32)
    model, feed = make_node_model(op, [x], {"axis": axis}, opset=opset)
    got = _ours(model, feed)[0]
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, feed
    )[0]
    a = axis % len(shape)
    assert rows == [(int(np.prod(shape[:a])), int(np.prod(shape[a:])))]
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)
    rows.clear()
    model, feed = make_node_model(op, [x], {"axis": 1}, opset=13)  # real axes after axis 1
    if len(shape) > 2 and np.prod(shape[2:]) > 1:
        _ours(model, feed)
        assert rows == []
