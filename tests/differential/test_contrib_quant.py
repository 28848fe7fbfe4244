"""Quantized com.microsoft kernels of the CPU provider (QGemm, QLinearSoftmax, QLinearAveragePool,
MatMulNBits, DynamicQuantizeMatMul, QAttention) against onnxruntime's own implementation of the
same one-node model.

Integer weights stay within [-63, 63] (int8) so that onnxruntime's u8s8 GEMM, which saturates
pairs of products in 16-bit lanes on CPUs without VNNI, computes the exact product too.
"""

from __future__ import annotations

import numpy as np
import pytest

from ort_core.errors import OrtError

from .harness import make_node_model, run_cpu
from .test_contrib import check_ms

pytest.importorskip("onnxruntime", reason="onnxruntime is the oracle for contrib ops")


def _f(v) -> np.ndarray:
    return np.array(v, np.float32)


def _u8(rng, shape) -> np.ndarray:
    return rng.integers(0, 256, shape).astype(np.uint8)


def _weights(rng, shape, dtype) -> np.ndarray:
    if dtype == np.int8:
        return rng.integers(-63, 64, shape).astype(np.int8)
    return rng.integers(0, 256, shape).astype(np.uint8)


# -- QGemm -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("b_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("trans", [(0, 0), (1, 1)])
@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("out", ["quant", "float"])
def test_qgemm(b_dtype, trans, per_column, out):
    rng = np.random.default_rng(1)
    m, k, n = 5, 37, 6
    ta, tb = trans
    a = _u8(rng, (k, m) if ta else (m, k))
    b = _weights(rng, (n, k) if tb else (k, n), b_dtype)
    if per_column:
        b_scale = rng.uniform(0.001, 0.01, n).astype(np.float32)
        b_zp = _weights(rng, n, b_dtype) // 4
    else:
        b_scale, b_zp = _f(0.004), np.array(3, b_dtype)
    c = rng.integers(-3000, 3000, n).astype(np.int32)
    inputs = [a, _f(0.02), np.array(120, np.uint8), b, b_scale, b_zp, c]
    if out == "quant":
        inputs += [_f(0.1), np.array(128, np.uint8)]
    check_ms(
        "QGemm",
        inputs,
        {"alpha": 0.75, "transA": ta, "transB": tb},
        rtol=0,
        atol=0,
        consts=(3, 4, 5),
    )


def test_qgemm_without_bias_int8_output():
    rng = np.random.default_rng(2)
    a, b = _weights(rng, (4, 20), np.int8), _weights(rng, (20, 3), np.int8)
    inputs = [a, _f(0.03), np.array(-4, np.int8), b, _f(0.01), np.array(0, np.int8), None]
    check_ms("QGemm", [*inputs, _f(0.05), np.array(-5, np.int8)], rtol=0, atol=0)


@pytest.mark.parametrize("c_shape", [(), (4, 1), (4, 3)])
def test_qgemm_bias_broadcast(c_shape):
    rng = np.random.default_rng(8)
    a, b = _u8(rng, (4, 30)), _weights(rng, (30, 3), np.uint8)
    c = rng.integers(-20000, 20000, c_shape).astype(np.int32)
    inputs = [a, _f(0.02), np.array(7, np.uint8), b, _f(0.01), np.array(130, np.uint8), c]
    check_ms("QGemm", [*inputs, _f(0.3), np.array(100, np.uint8)], rtol=0, atol=0)


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (), (6,), (1, 6), (5, 6)])
def test_qgemm_u8s8_constant_weights_equal_onnxruntime(trans_b, c_shape, monkeypatch):
    """uint8 A by constant int8 B with zero zero points (a QDQ classifier): on AVX-512 VNNI
    the sums are int32 with the bias folded in, rounded once to float32 as onnxruntime's
    accumulator is; K = 2048 so that the sums pass 2**24. onnxruntime's bytes either way (a
    per-element bias takes the float64 product). B stays below 64: onnxruntime's AVX2 kernel
    (vpmaddubsw, where the CPU has no VNNI) saturates a pair of products past 32767 to int16,
    which the exact sums (and onnxruntime on VNNI) do not."""
    from ort_cpu.kernels import _vnni, contrib_quant

    used = []
    real = contrib_quant._vnni_product
    monkeypatch.setattr(
        contrib_quant, "_vnni_product", lambda *a: used.append(real(*a)) or used[-1]
    )
    rng = np.random.default_rng(12)
    m, k, n = 5, 2048, 6
    a = rng.integers(200, 256, (m, k)).astype(np.uint8)  # large sums: past float32's integers
    b = rng.integers(40, 64, (n, k) if trans_b else (k, n)).astype(np.int8)
    c = None if c_shape is None else rng.integers(-30000, 30000, c_shape).astype(np.int32)
    inputs = [a, _f(0.02), np.array(3, np.uint8), b, rng.uniform(0.001, 0.01, n).astype(np.float32),
              np.zeros(n, np.int8), c, _f(40.0), np.array(128, np.uint8)]  # fmt: skip
    check_ms("QGemm", inputs, {"transB": trans_b}, rtol=0, atol=0, consts=(3, 4, 5))
    if _vnni.available():
        assert used and used[0] is not None


def test_qgemm_rejects_y_scale_without_zero_point():
    rng = np.random.default_rng(9)
    a, b = _u8(rng, (2, 4)), _weights(rng, (4, 3), np.uint8)
    inputs = [a, _f(0.02), np.array(7, np.uint8), b, _f(0.01), np.array(1, np.uint8), None, _f(1)]
    model, feeds = make_node_model("QGemm", inputs, domain="com.microsoft", opset=17)
    with pytest.raises(OrtError, match="y_zero_point"):
        run_cpu(model, feeds)


# -- QLinearSoftmax --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("opset,axis", [(13, -1), (13, 1), (11, 1), (11, 2)])
def test_qlinear_softmax(dtype, opset, axis):
    rng = np.random.default_rng(3)
    lim = np.iinfo(dtype)
    x = rng.integers(lim.min, lim.max + 1, (2, 3, 40)).astype(dtype)
    inputs = [x, _f(0.05), np.array(3, dtype), _f(1 / 256), np.array(lim.min, dtype)]
    check_ms(
        "QLinearSoftmax",
        inputs,
        {"axis": axis, "opset": opset},
        rtol=0,
        atol=0,
        consts=(1, 2, 3, 4),
    )


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_softmax_runtime_scales(dtype):
    """Scales fed at run time (the table built per run); a zero point whose sum with large
    probabilities saturates; a short row whose exp table times 1/y_scale overflows float32."""
    rng = np.random.default_rng(7)
    lim = np.iinfo(dtype)
    for d, x_scale, y_scale in ((57, 0.3, 1 / 256), (2, 0.47, 0.003)):
        x = rng.integers(lim.min, lim.max + 1, (4, d)).astype(dtype)
        inputs = [x, _f(x_scale), np.array(0, dtype), _f(y_scale), np.array(40, dtype)]
        check_ms("QLinearSoftmax", inputs, {"axis": -1, "opset": 13}, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_softmax_columns_shared_among_the_runs_threads(dtype, monkeypatch):
    """Device: a softmax along axis 1 of (1, 16, 40001) (a YOLO's box distributions) is
    compiled pieces of columns on the run's pool at two threads (kernels._quant_pieces, the
    last piece short), with the one-thread bytes, and onnxruntime's within one step (2 of its
    640,016 bytes are one step apart at one thread already: its sums of 16 rows strided by
    the inner axis round differently)."""
    from .harness import run_one_and_two_threads

    rng = np.random.default_rng(8)
    lim = np.iinfo(dtype)
    x = rng.integers(lim.min, lim.max + 1, (1, 16, 40001)).astype(dtype)
    inputs = [x, _f(0.05), np.array(3, dtype), _f(1 / 256), np.array(lim.min, dtype)]
    attrs = {"axis": 1, "opset": 13}
    model, feeds = make_node_model(
        "QLinearSoftmax", inputs, attrs, domain="com.microsoft", opset=17
    )
    one, two, handed = run_one_and_two_threads(model, feeds, monkeypatch)
    assert any(done and t == 2 for _, t, done in handed)
    np.testing.assert_array_equal(two[0], one[0])
    check_ms("QLinearSoftmax", inputs, attrs, rtol=0, atol=1, consts=(1, 2, 3, 4))


# -- QLinearAveragePool ----------------------------------------------------------------------------
_POOLS = [
    {"kernel_shape": [3, 3]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1},
    {"kernel_shape": [2, 3], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [2, 3], "strides": [2, 2], "ceil_mode": 1, "count_include_pad": 1},
    {"kernel_shape": [3, 2], "auto_pad": "SAME_UPPER"},
    {"kernel_shape": [3]},
]


@pytest.mark.parametrize("attrs", _POOLS)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("channels_last", [0, 1])
def test_qlinear_average_pool(attrs, dtype, channels_last):
    """count_include_pad divides by the whole kernel, also for ceil_mode windows overhanging the
    padding, as onnxruntime does."""
    rng = np.random.default_rng(4)
    lim = np.iinfo(dtype)
    spatial = (9, 8) if len(attrs["kernel_shape"]) == 2 else (11,)
    shape = (2, *spatial, 3) if channels_last else (2, 3, *spatial)
    x = rng.integers(lim.min, lim.max + 1, shape).astype(dtype)
    inputs = [
        x,
        _f(0.05),
        np.array(5, dtype),
        _f(0.04),
        np.array(-2 if dtype == np.int8 else 130, dtype),
    ]
    check_ms(
        "QLinearAveragePool", inputs, {**attrs, "channels_last": channels_last}, rtol=0, atol=0
    )


# -- MatMulNBits -----------------------------------------------------------------------------------
def _nbits_inputs(rng, k, n, bits, block, zp):
    n_blocks = (k + block - 1) // block
    blob = block * bits // 8
    b = _u8(rng, (n, n_blocks, blob))
    scales = rng.uniform(0.01, 0.1, n * n_blocks).astype(np.float32)
    zps = None
    if zp == "packed":
        zps = _u8(rng, n * ((n_blocks * bits + 7) // 8))
    elif zp == "float":
        zps = rng.uniform(0, 2**bits - 1, n * n_blocks).astype(np.float32)
    return b, scales, zps


_NBITS = [(bits, zp) for bits in (4, 8, 2) for zp in ("none", "packed", "float")]


@pytest.mark.parametrize("bits,zp", [c for c in _NBITS if c != (8, "float")])  # not in onnxruntime
@pytest.mark.parametrize("const", [True, False])
def test_matmul_nbits(bits, zp, const):
    """Random packed bytes: a wrong nibble order or default zero point fails by whole steps.
    The float32 GEMM sums in another order than onnxruntime's, hence the tolerance."""
    rng = np.random.default_rng(5)
    k, n, block = 72, 10, 32  # K not a multiple of the block: a padded last block
    b, scales, zps = _nbits_inputs(rng, k, n, bits, block, zp)
    a = rng.standard_normal((2, 3, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    inputs = [a, b, scales, zps, None, bias]
    attrs = {"K": k, "N": n, "bits": bits, "block_size": block, "accuracy_level": 0}
    consts = [i for i in (1, 2, 3) if const and inputs[i] is not None]
    check_ms("MatMulNBits", inputs, attrs, rtol=1e-5, atol=1e-4, consts=consts)


@pytest.mark.parametrize("block", [16, 128])
@pytest.mark.parametrize("zp", ["none", "float"])
@pytest.mark.parametrize("const", [True, False])
def test_matmul_nbits_g_idx(block, zp, const):
    """4-bit weights with a per-column block index (act-order). onnxruntime 1.32 unpacks 2-bit
    weights as 4-bit nibbles on its g_idx path and ignores packed uint8 zero points there (it
    uses the default 8), so only 4 bits with default or float zero points are compared."""
    rng = np.random.default_rng(10)
    k, n = 150, 7
    b, scales, zps = _nbits_inputs(rng, k, n, 4, block, zp)
    g_idx = rng.integers(0, (k + block - 1) // block, k).astype(np.int32)
    a = rng.standard_normal((5, k)).astype(np.float32)
    inputs = [a, b, scales, zps, g_idx]
    attrs = {"K": k, "N": n, "bits": 4, "block_size": block, "accuracy_level": 1}
    consts = [i for i in (1, 2, 3, 4) if const and inputs[i] is not None]
    check_ms("MatMulNBits", inputs, attrs, rtol=1e-5, atol=1e-4, consts=consts)


@pytest.mark.parametrize("bits,block,message", [(4, 24, "block_size=24"), (3, 16, "bits=3")])
def test_matmul_nbits_rejects_unsupported_attributes(bits, block, message):
    rng = np.random.default_rng(6)
    b = _u8(rng, (4, 2, block * bits // 8))
    scales = rng.uniform(0.01, 0.1, 8).astype(np.float32)
    a = rng.standard_normal((2, 2 * block)).astype(np.float32)
    attrs = {"K": 2 * block, "N": 4, "bits": bits, "block_size": block}
    model, feeds = make_node_model(
        "MatMulNBits", [a, b, scales], attrs, domain="com.microsoft", opset=17
    )
    with pytest.raises(OrtError, match=message):
        run_cpu(model, feeds)


# -- DynamicQuantizeMatMul -------------------------------------------------------------------------
@pytest.mark.parametrize("b_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("const", [True, False])
def test_dynamic_quantize_matmul(b_dtype, per_column, const):
    rng = np.random.default_rng(11)
    k, n = 300, 9
    a = rng.standard_normal((2, 4, k)).astype(np.float32)
    b = _weights(rng, (k, n), b_dtype)
    if per_column:
        b_scale = rng.uniform(0.001, 0.01, n).astype(np.float32)
        b_zp = _weights(rng, n, b_dtype) // 4
    else:
        b_scale, b_zp = _f(0.004), np.array(5, b_dtype)
    bias = rng.standard_normal(n).astype(np.float32)
    inputs = [a, b, b_scale, b_zp, bias]
    check_ms("DynamicQuantizeMatMul", inputs, rtol=0, atol=0, consts=(1, 2, 3) if const else ())


def test_dynamic_quantize_matmul_without_zero_point():
    rng = np.random.default_rng(12)
    a = rng.uniform(0.5, 2.0, (5, 40)).astype(np.float32)  # all positive: a_zp 0
    b = _weights(rng, (40, 6), np.int8)
    check_ms("DynamicQuantizeMatMul", [a, b, _f(0.02)], rtol=0, atol=0, consts=(1,))


# -- QAttention ------------------------------------------------------------------------------------
@pytest.mark.parametrize("w_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("form", ["plain", "mask", "unidirectional_past", "per_column"])
def test_qattention(w_dtype, form):
    """The projection is exact on both sides; the attention itself is float32 in a different
    order of operations than onnxruntime's, hence the tolerance."""
    rng = np.random.default_rng(13)
    b, s, hidden, heads = 2, 5, 16, 4
    x = _u8(rng, (b, s, hidden))
    w = _weights(rng, (hidden, 3 * hidden), w_dtype)
    bias = rng.standard_normal(3 * hidden).astype(np.float32)
    w_scale, w_zp = _f(0.002), np.array(3, w_dtype)
    if form == "per_column":
        w_scale = rng.uniform(0.001, 0.003, 3 * hidden).astype(np.float32)
        w_zp = _weights(rng, 3 * hidden, w_dtype) // 8
    mask = past = None
    if form == "mask":
        mask = np.array([5, 3], np.int32)
    attrs = {"num_heads": heads}
    n_outputs = 1
    if form == "unidirectional_past":
        attrs["unidirectional"] = 1
        past = rng.standard_normal((2, b, heads, 3, hidden // heads)).astype(np.float32)
        n_outputs = 2
    inputs = [x, w, bias, _f(0.02), w_scale, mask, np.array(120, np.uint8), w_zp, past]
    while inputs[-1] is None:
        inputs.pop()
    check_ms("QAttention", inputs, attrs, n_outputs=n_outputs, rtol=1e-5, atol=1e-5)
