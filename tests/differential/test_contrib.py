"""com.microsoft contrib kernels of the CPU provider against onnxruntime's own implementation of the
same one-node model (the ops the EXTENDED optimizer passes create)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import numpy_helper

from .harness import assert_same, make_node_model, run_cpu

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle for contrib ops")

MS = "com.microsoft"


def _rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def check_ms(
    op, inputs, attrs=None, *, n_outputs=1, domain=MS, rtol=1e-4, atol=1e-5, opset=17, consts=()
):
    """Run ``op`` on ort-core's CPU provider and on onnxruntime; assert equal outputs. Inputs
    whose indices are in ``consts`` become initializers (constants to the kernel builders)."""
    model, feeds = make_node_model(
        op, inputs, attrs, domain=domain, n_outputs=n_outputs, opset=opset
    )
    for i in consts:
        name = f"x{i}"
        model.graph.initializer.append(numpy_helper.from_array(feeds.pop(name), name))
        kept = [v for v in model.graph.input if v.name != name]
        del model.graph.input[:]
        model.graph.input.extend(kept)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    expected = sess.run(None, feeds)
    got = run_cpu(model, feeds)
    assert len(got) == len(expected)
    for i, (e, g) in enumerate(zip(expected, got)):
        if e.dtype.kind in "iu" and atol >= 1:  # quantized: one step of rounding apart at most
            assert g.dtype == e.dtype and g.shape == e.shape, f"{op} output {i}"
            diff = np.abs(g.astype(np.int64) - e.astype(np.int64))
            assert diff.max(initial=0) <= atol, f"{op} output {i}: off by {diff.max()}"
        else:
            assert_same(e, g, rtol, atol, f"{op} output {i}")
    return got


@pytest.mark.parametrize(
    "act,params",
    [(None, None), ("Relu", None), ("LeakyRelu", [0.2]), ("Clip", [-0.5, 0.7]), ("Sigmoid", None),
     ("Tanh", None), ("HardSigmoid", [0.3, 0.4])],
)  # fmt: skip
@pytest.mark.parametrize("with_z", [False, True])
def test_fused_conv(act, params, with_z):
    rng = np.random.default_rng(0)
    x, w, b = _rand(rng, (2, 4, 7, 6)), _rand(rng, (6, 2, 3, 3)), _rand(rng, (6,))
    z = _rand(rng, (2, 6, 4, 3)) if with_z else None
    attrs = {"group": 2, "pads": [1, 1, 1, 1], "strides": [2, 2]}
    if act:
        attrs["activation"] = act
    if params:
        attrs["activation_params"] = params
    check_ms("FusedConv", [x, w, b, z], attrs)


@pytest.mark.parametrize(
    "act,extra",
    [("Relu", {}), ("LeakyRelu", {"activation_alpha": 0.3}), ("Sigmoid", {}), ("Tanh", {}),
     ("HardSigmoid", {"activation_alpha": 0.3, "activation_beta": 0.6}),
     ("Elu", {"activation_alpha": 0.5})],
)  # fmt: skip
def test_fused_gemm(act, extra):
    rng = np.random.default_rng(1)
    a, b, c = _rand(rng, (5, 4)), _rand(rng, (3, 4)), _rand(rng, (3,))
    attrs = {"transB": 1, "alpha": 0.5, "beta": 2.0, "activation": act, **extra}
    check_ms("FusedGemm", [a, b, c], attrs)


@pytest.mark.parametrize(
    "sa,sb,attrs",
    [((3, 4), (4, 5), {"alpha": 0.25}),
     ((2, 3, 4), (2, 5, 4), {"transB": 1, "alpha": 2.0}),
     ((2, 4, 3), (4, 5), {"transA": 1}),
     ((2, 3, 4, 5), (2, 3, 6, 5), {"transB": 1, "alpha": 0.125}),
     ((4, 2, 3), (2, 3, 5), {"transBatchA": 1}),
     ((2, 3, 4), (5, 2, 4), {"transBatchB": 1, "transB": 1})],
)  # fmt: skip
def test_fused_matmul(sa, sb, attrs):
    rng = np.random.default_rng(2)
    check_ms("FusedMatMul", [_rand(rng, sa), _rand(rng, sb)], attrs)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_gelu_family(dtype):
    rng = np.random.default_rng(3)
    x, bias = _rand(rng, (2, 3, 8), dtype) * 3, _rand(rng, (8,), dtype)
    tol = {"rtol": 1e-3, "atol": 1e-3} if dtype == np.float16 else {}
    check_ms("Gelu", [x], **tol)
    check_ms("BiasGelu", [x, bias], **tol)
    check_ms("FastGelu", [x], **tol)
    check_ms("FastGelu", [x, bias], **tol)
    check_ms("QuickGelu", [x], **tol)
    check_ms("QuickGelu", [x], {"alpha": 1.3}, **tol)


@pytest.mark.parametrize("shape", [(3, 41, 300), (2, 20000), (7, 3)])
def test_gelu_family_blocks(shape):
    """Inputs over several of the blocks the erf GELU works in (the last one partial), long
    tails included; and tiny ones, computed element by element."""
    rng = np.random.default_rng(13)
    x, bias = _rand(rng, shape) * 4, _rand(rng, shape[-1:])
    x.reshape(-1)[:4] = [0.0, -12.0, 9.0, -0.0]
    check_ms("Gelu", [x])
    check_ms("BiasGelu", [x, bias])
    check_ms("BiasGelu", [x, bias], consts=(1,))
    check_ms("FastGelu", [x, bias])


def test_bias_split_gelu_and_bias_add():
    """onnxruntime implements these two on CUDA only: compare with their formulas."""
    from math import erf

    rng = np.random.default_rng(4)
    x, bias = _rand(rng, (2, 4, 16)), _rand(rng, (16,))
    model, feeds = make_node_model("BiasSplitGelu", [x, bias], domain=MS)
    s = (x + bias).astype(np.float64)
    left, right = s[..., :8], s[..., 8:]
    expected = left * right * 0.5 * (1 + np.vectorize(erf)(right / np.sqrt(2)))
    np.testing.assert_allclose(run_cpu(model, feeds)[0], expected, rtol=1e-5, atol=1e-5)
    x, skip = _rand(rng, (2, 4, 8)), _rand(rng, (2, 4, 8))
    model, feeds = make_node_model("BiasAdd", [x, bias[:8], skip], domain=MS)
    np.testing.assert_allclose(run_cpu(model, feeds)[0], x + bias[:8] + skip, rtol=1e-6)


@pytest.mark.parametrize("beta,bias,n_out", [(True, True, 4), (False, False, 1), (True, False, 1)])
def test_skip_layer_normalization(beta, bias, n_out):
    rng = np.random.default_rng(5)
    x, skip = _rand(rng, (2, 3, 8)), _rand(rng, (2, 3, 8))
    inputs = [x, skip, _rand(rng, (8,)), _rand(rng, (8,)) if beta else None]
    inputs.append(_rand(rng, (8,)) if bias else None)
    check_ms("SkipLayerNormalization", inputs, {"epsilon": 1e-5}, n_outputs=n_out)


def test_skip_simplified_layer_normalization():
    rng = np.random.default_rng(6)
    x, skip, gamma, bias = (_rand(rng, s) for s in [(2, 3, 8), (2, 3, 8), (8,), (8,)])
    check_ms("SkipSimplifiedLayerNormalization", [x, skip, gamma, bias], {"epsilon": 1e-6})
    check_ms("SkipSimplifiedLayerNormalization", [x, skip, gamma], {"epsilon": 1e-6})


@pytest.mark.parametrize("axis", [-1, 1])
def test_simplified_layer_normalization(axis):
    rng = np.random.default_rng(7)
    x = _rand(rng, (2, 3, 8))
    scale = _rand(rng, (8,) if axis == -1 else (3, 8))
    check_ms(
        "SimplifiedLayerNormalization",
        [x, scale],
        {"axis": axis, "epsilon": 1e-6},
        domain="",
        n_outputs=2,
    )


MASKS = {
    "none": None,
    "end": np.array([5, 3], np.int32),
    "end_start": np.array([5, 4, 0, 1], np.int32),
    "raw2d": np.array([[1, 1, 1, 1, 0], [1, 1, 0, 1, 1]], np.int32),
    "raw3d": (np.arange(2 * 5 * 5).reshape(2, 5, 5) % 3 != 0).astype(np.int32),
}


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("unidirectional", [0, 1])
def test_attention(mask, unidirectional):
    rng = np.random.default_rng(8)
    b, s, hidden, n = 2, 5, 16, 4
    x, w, bias = _rand(rng, (b, s, hidden)), _rand(rng, (hidden, 3 * hidden)), _rand(rng, (48,))
    attrs = {"num_heads": n, "unidirectional": unidirectional}
    check_ms("Attention", [x, w * 0.3, bias, MASKS[mask]], attrs)
    check_ms("Attention", [x, w * 0.3, bias, MASKS[mask]], attrs, consts=(1, 2))


def test_attention_qkv_hidden_sizes_and_present():
    rng = np.random.default_rng(10)
    b, s, hidden, n = 2, 6, 16, 2
    x, w = _rand(rng, (b, s, hidden)), _rand(rng, (hidden, 16 + 16 + 8)) * 0.3
    bias = _rand(rng, (40,))
    attrs = {"num_heads": n, "qkv_hidden_sizes": [16, 16, 8]}
    check_ms("Attention", [x, w, bias], attrs, consts=(1,))
    attrs = {"num_heads": n, "unidirectional": 1}
    w = _rand(rng, (hidden, 48)) * 0.3
    check_ms("Attention", [x, w, bias[:40].repeat(2)[:48]], attrs, n_outputs=2, consts=(1,))


def test_attention_past_present_and_bias():
    rng = np.random.default_rng(9)
    b, s, p, hidden, n = 2, 3, 4, 16, 2
    x, w, bias = _rand(rng, (b, s, hidden)), _rand(rng, (hidden, 48)) * 0.3, _rand(rng, (48,))
    past = _rand(rng, (2, b, n, p, hidden // n))
    mask = np.ones((b, p + s), np.int32)
    mask[1, :2] = 0
    attn_bias = _rand(rng, (1, n, s, p + s))
    attrs = {"num_heads": n, "unidirectional": 1}
    check_ms("Attention", [x, w, bias, mask, past], attrs, n_outputs=2)
    attn_bias = attn_bias[..., p:]
    check_ms("Attention", [x, w, bias, None, None, attn_bias], {"num_heads": n, "scale": 0.3})


@pytest.mark.parametrize("unidirectional", [0, 1])
def test_attention_heads_as_one_strided_batch(unidirectional, monkeypatch):
    """Heads of 128 x 64 run as one batch of GEMMs per sequence (scores, then the
    transposed scores times V): same result as onnxruntime, masks included."""
    from ort_cpu.kernels import _blas, contrib

    if _blas.find_gemm_batch(np.float32) is None:
        pytest.skip("numpy's BLAS exposes no GEMM this process can call")
    products = []
    real = contrib._head_batch

    def spy(q, k, v):
        batch = real(q, k, v)
        if batch is None:
            return None

        def counted(a, b, c, *args, **kw):
            products.append(
                c.shape[1] * c.shape[2] * (a.shape[1] if kw.get("trans_a") else a.shape[2])
            )
            return batch(a, b, c, *args, **kw)

        return counted

    monkeypatch.setattr(contrib, "_head_batch", spy)
    rng = np.random.default_rng(12)
    b, s, hidden, n = 2, 128, 128, 2
    x, w, bias = (
        _rand(rng, (b, s, hidden)),
        _rand(rng, (hidden, 3 * hidden)) * 0.1,
        _rand(rng, (3 * hidden,)),
    )
    mask = np.ones((b, s), np.int32)
    mask[1, 100:] = 0
    attrs = {"num_heads": n, "unidirectional": unidirectional}
    check_ms("Attention", [x, w, bias, mask], attrs, consts=(1, 2))
    assert len(products) == 2 * b and min(products) > _blas.BATCH_MIN_MNK


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("mask", ["none", "end", "raw2d"])
def test_multi_head_attention(with_bias, mask):
    rng = np.random.default_rng(10)
    b, s, d, n = 2, 5, 16, 4
    q, k, v = _rand(rng, (b, s, d)), _rand(rng, (b, s, d)), _rand(rng, (b, s, d))
    bias = _rand(rng, (3 * d,)) if with_bias else None
    check_ms("MultiHeadAttention", [q, k, v, bias, MASKS[mask]], {"num_heads": n})


def test_multi_head_attention_past_and_causal():
    rng = np.random.default_rng(11)
    b, s, p, d, n = 2, 3, 4, 16, 2
    q, k, v = _rand(rng, (b, s, d)), _rand(rng, (b, s, d)), _rand(rng, (b, s, d))
    pk, pv = _rand(rng, (b, n, p, d // n)), _rand(rng, (b, n, p, d // n))
    ab = _rand(rng, (b, 1, s, p + s))
    inputs = [q, k, v, None, None, ab, pk, pv]
    check_ms("MultiHeadAttention", inputs, {"num_heads": n, "unidirectional": 1}, n_outputs=3)


def _q(rng, shape, dtype=np.uint8):
    lim = np.iinfo(dtype)
    return rng.integers(lim.min, lim.max + 1, shape).astype(dtype)


def _qp(scale, zp, dtype=np.uint8):
    return np.array(scale, np.float32), np.array(zp, dtype)


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_binary(op, dtype):
    rng = np.random.default_rng(12)
    zp = 128 if dtype == np.uint8 else 0
    a, b = _q(rng, (2, 3, 4), dtype), _q(rng, (4,), dtype)
    sc = 0.2 if op == "QLinearAdd" else 3.0
    inputs = [a, *_qp(0.02, zp + 3, dtype), b, *_qp(0.03, zp - 5, dtype), *_qp(sc, zp, dtype)]
    check_ms(op, inputs, atol=1)


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_binary_compiled_path_equals_the_numpy_path(op, dtype):
    """Same shapes and constant parameters take the compiled one-pass kernel; it computes the
    numpy path's float32 expression, so the two agree exactly, and onnxruntime within a step."""
    rng = np.random.default_rng(15)
    zp = 128 if dtype == np.uint8 else 0
    a, b = _q(rng, (2, 3, 40), dtype), _q(rng, (2, 3, 40), dtype)
    sc = 0.2 if op == "QLinearAdd" else 3.0
    inputs = [a, *_qp(0.02, zp + 3, dtype), b, *_qp(0.03, zp - 5, dtype), *_qp(sc, zp, dtype)]
    check_ms(op, inputs, atol=1, consts=(1, 2, 4, 5, 6, 7))
    fed, _ = make_node_model(op, inputs, None, domain=MS, opset=17)
    model, feeds = make_node_model(op, inputs, None, domain=MS, opset=17)
    for i in (1, 2, 4, 5, 6, 7):
        model.graph.initializer.append(numpy_helper.from_array(feeds.pop(f"x{i}"), f"x{i}"))
    kept = [v for v in model.graph.input if v.name in feeds]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    compiled = run_cpu(model, feeds)[0]
    plain = run_cpu(fed, dict(zip([f"x{i}" for i in range(8)], inputs)))[0]
    np.testing.assert_array_equal(compiled, plain)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_unary_tables_equal_onnxruntime(dtype):
    """Constant parameters: the kernels answer from a 256-entry table (as onnxruntime does)."""
    zp = 128 if dtype == np.uint8 else 0
    x = np.arange(256, dtype=np.uint8).view(dtype).reshape(4, 64)  # every input value
    xp, yp = _qp(0.05, zp + 2, dtype), _qp(1 / 256, 0 if dtype == np.uint8 else -128, dtype)
    check_ms("QLinearSigmoid", [x, *xp, *yp], atol=1, consts=(1, 2, 3, 4))
    check_ms(
        "QLinearLeakyRelu", [x, *xp, *_qp(0.04, zp, dtype)], {"alpha": 0.1}, atol=1,
        consts=(1, 2, 3, 4),
    )  # fmt: skip


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_unary_table_lookup_equals_numpy_take(dtype, monkeypatch):
    """The compiled table lookup (constant parameters) gives the bytes numpy's take gives, for
    every input value, in the input's shape."""
    from ort_cpu.kernels import _quant_jit

    zp = 128 if dtype == np.uint8 else 0
    x = np.tile(np.arange(256, dtype=np.uint8).view(dtype), 3).reshape(3, 4, 64)
    inputs = [x, *_qp(0.05, zp + 2, dtype), *_qp(1 / 256, 0 if dtype == np.uint8 else -128, dtype)]
    model, feeds = make_node_model("QLinearSigmoid", inputs, None, domain=MS, opset=17)
    for i in (1, 2, 3, 4):
        model.graph.initializer.append(numpy_helper.from_array(feeds.pop(f"x{i}"), f"x{i}"))
    kept = [v for v in model.graph.input if v.name in feeds]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    compiled = run_cpu(model, feeds)[0]
    monkeypatch.setattr(_quant_jit, "warm_lookup", lambda: None)
    taken = run_cpu(model, feeds)[0]
    assert compiled.shape == x.shape and compiled.dtype == dtype
    np.testing.assert_array_equal(compiled, taken)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_unary(dtype):
    rng = np.random.default_rng(13)
    zp = 128 if dtype == np.uint8 else 0
    x = _q(rng, (2, 3, 4), dtype)
    xp, yp = _qp(0.05, zp + 2, dtype), _qp(1 / 256, 0 if dtype == np.uint8 else -128, dtype)
    check_ms("QLinearSigmoid", [x, *xp, *yp], atol=1)
    check_ms("QLinearLeakyRelu", [x, *xp, *_qp(0.04, zp, dtype)], {"alpha": 0.1}, atol=1)


@pytest.mark.parametrize(
    "shape, dtype",
    [
        ((2, 3, 4, 5), np.uint8),
        ((1, 1280, 7, 7), np.uint8),  # MobileNetV2-QDQ's
        ((2, 5, 6, 7), np.int8),
        ((1, 2, 300, 300), np.uint8),  # sums past float32's exact range: summed as integers
    ],
)
@pytest.mark.parametrize("channels_last", [0, 1])
def test_qlinear_global_average_pool_equals_onnxruntime_exactly(shape, dtype, channels_last):
    """onnxruntime's formula: the channel's integer sum less zero point x cells, times
    x_scale / (y_scale * cells) in float32, rounded half to even: the same bytes, over zero
    points and scales drawn at random, channels first and last, sums exact in float32 or not."""
    rng = np.random.default_rng(14)
    x = _q(rng, shape, dtype)
    lo = -128 if dtype == np.int8 else 0
    for _ in range(6):
        zx, zy = (int(v) for v in rng.integers(lo, lo + 256, 2))
        xs, ys = (float(v) for v in rng.uniform(0.01, 0.1, 2))
        inputs = [x, *_qp(xs, zx, dtype), *_qp(ys, zy, dtype)]
        check_ms("QLinearGlobalAveragePool", inputs, {"channels_last": channels_last}, atol=0)


def test_qlinear_concat():
    rng = np.random.default_rng(15)
    a, b = _q(rng, (2, 3)), _q(rng, (2, 5))
    inputs = [*_qp(0.05, 128), a, *_qp(0.03, 120), b, *_qp(0.07, 130)]
    check_ms("QLinearConcat", inputs, {"axis": 1}, atol=1)


@pytest.mark.parametrize(
    "shapes, axis",
    [
        (((1, 3, 4, 5), (1, 2, 4, 5), (1, 6, 4, 5)), 1),  # written in place (one entry before)
        (((1, 3, 4, 5), (1, 2, 4, 5), (1, 6, 4, 5)), -3),
        (((2, 4), (3, 4), (1, 4)), 0),  # in place (axis 0)
        (((2, 3, 4), (2, 1, 4), (2, 2, 4)), 1),  # two entries before the axis: concatenated
        (((1, 3, 4), (1, 3, 2), (1, 3, 1)), 2),
    ],
)  # fmt: skip
def test_qlinear_concat_constant_parameters(shapes, axis):
    """Constant parameters (tables): a part with Y's scale and zero point copied, the others
    looked up, written straight into their blocks of the output where those are contiguous,
    against onnxruntime."""
    rng = np.random.default_rng(len(shapes[0]) + axis)
    x0, x1, x2 = (_q(rng, s) for s in shapes)
    y = _qp(0.05, 128)
    inputs = [*y, x0, *_qp(0.03, 120), x1, *y, x2, *_qp(0.07, 131)]
    check_ms("QLinearConcat", inputs, {"axis": axis}, atol=1, consts=(0, 1, 3, 4, 6, 7, 9, 10))


@pytest.mark.parametrize("form", ["full", "no_segment", "position_ids", "no_mask"])
def test_embed_layer_normalization(form):
    """BERT's embeddings as onnxruntime's transformer optimizer fuses them."""
    rng = np.random.default_rng(21)
    b, s, h, vocab = 2, 7, 16, 30
    ids = rng.integers(0, vocab, (b, s)).astype(np.int32)
    seg = rng.integers(0, 2, (b, s)).astype(np.int32)
    word = rng.standard_normal((vocab, h)).astype(np.float32)
    pos = rng.standard_normal((12, h)).astype(np.float32)
    seg_table = rng.standard_normal((2, h)).astype(np.float32)
    gamma = rng.standard_normal(h).astype(np.float32)
    beta = rng.standard_normal(h).astype(np.float32)
    mask = np.ones((b, s), np.int32)
    mask[1, 4:] = 0
    inputs = [ids, seg, word, pos, seg_table, gamma, beta, mask]
    if form == "no_segment":
        inputs[1] = inputs[4] = None
    if form == "no_mask":
        inputs = inputs[:7]
    if form == "position_ids":
        inputs.append(np.array([[3, 1, 0, 2, 6, 5, 4]], np.int32))
    check_ms(
        "EmbedLayerNormalization", inputs, {"epsilon": 1e-5},
        n_outputs=3 if form != "no_mask" else 2, consts=(2, 3, 5, 6),
    )  # fmt: skip


def _const_model(op, inputs, consts, attrs=None):
    """A one-node model of ``op`` whose inputs at ``consts`` are initializers."""
    model, feeds = make_node_model(op, inputs, attrs, domain=MS, opset=17)
    for i in consts:
        model.graph.initializer.append(numpy_helper.from_array(feeds.pop(f"x{i}"), f"x{i}"))
    kept = [v for v in model.graph.input if v.name in feeds]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    return model, feeds


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_elementwise_shared_among_the_runs_threads(dtype, monkeypatch):
    """Device: QLinearSigmoid's and QLinearConcat's lookups and QLinearMul (over 83,517
    elements; the lookups over as many 123 x 97 planes as reach their threshold, which is higher
    where the CPU looks bytes up 64 at a time) are compiled pieces on the run's pool at two
    threads (kernels._quant_pieces), with the one-thread bytes (a last piece shorter than the
    others)."""
    from ort_cpu.kernels import contrib

    from .harness import run_one_and_two_threads

    rng = np.random.default_rng(16)
    zp = 128 if dtype == np.uint8 else 0
    planes = max(7, -(-contrib._lookup_split() // (123 * 97)) + 1)
    big = _q(rng, (1, planes, 123, 97), dtype)
    x = _q(rng, (1, 7, 123, 97), dtype)
    y = _q(rng, (1, 7, 123, 97), dtype)
    xp, yp = _qp(0.05, zp + 2, dtype), _qp(1 / 256, zp - 1, dtype)
    cases = [
        _const_model("QLinearSigmoid", [big, *xp, *yp], (1, 2, 3, 4)),
        _const_model("QLinearMul", [x, *xp, y, *_qp(0.04, zp, dtype), *yp], (1, 2, 4, 5, 6, 7)),
        _const_model(
            "QLinearConcat", [*yp, big, *xp, _q(rng, (1, 9, 123, 97), dtype), *yp],
            (0, 1, 3, 4, 6, 7), {"axis": 1},
        ),
    ]  # fmt: skip
    for model, feeds in cases:
        one, two, handed = run_one_and_two_threads(model, feeds, monkeypatch)
        assert any(done and t == 2 for _, t, done in handed), model.graph.node[0].op_type
        assert one[0].dtype == dtype
        np.testing.assert_array_equal(two[0], one[0])
    check_ms("QLinearSigmoid", [x, *xp, *yp], atol=1, consts=(1, 2, 3, 4))
