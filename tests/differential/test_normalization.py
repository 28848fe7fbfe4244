"""Normalization kernels against onnx's ReferenceEvaluator."""

from __future__ import annotations

import numpy as np
import pytest

from .harness import check_node, make_node_model, run_cpu

TOL = {np.float16: (5e-3, 5e-3), np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-12)}
DTYPES = [np.float16, np.float32, np.float64]


def _rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def _bn_inputs(rng, shape, dtype=np.float32, pdtype=None):
    c = shape[1]
    pdtype = pdtype or dtype
    return [
        _rand(rng, shape, dtype),
        _rand(rng, (c,), pdtype),
        _rand(rng, (c,), pdtype),
        _rand(rng, (c,), pdtype),
        (rng.random(c) + 0.5).astype(pdtype),
    ]


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 5), (1, 4, 3, 5), (2, 2, 2, 3, 2), (0, 3, 2)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm(shape, dtype):
    rtol, atol = TOL[dtype]
    inputs = _bn_inputs(np.random.default_rng(1), shape, dtype)
    check_node("BatchNormalization", inputs, {"epsilon": 1e-3}, rtol=rtol, atol=atol)


@pytest.mark.parametrize("opset", [1, 6, 7, 9, 14, 15])
def test_batch_norm_opsets(opset):
    """The reference runs opsets 7-13 in training mode and lacks opset 1: compare those with
    opset 15."""
    inputs = _bn_inputs(np.random.default_rng(opset), (2, 3, 4, 4))
    attrs = {"is_test": 1} if opset < 7 else {}
    if opset == 1:  # required by BatchNormalization-1 (onnxruntime refuses the node without it)
        attrs["consumed_inputs"] = [0, 0, 0, 1, 1]
    if opset not in (1, 7, 9):
        check_node("BatchNormalization", inputs, attrs, opset=opset, rtol=1e-4, atol=1e-5)
        return
    model, feeds = make_node_model("BatchNormalization", inputs, attrs, opset=opset)
    (got,) = run_cpu(model, feeds)
    (expected,) = check_node("BatchNormalization", inputs, opset=15, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_batch_norm_spatial0():
    """Opsets 1-7 with spatial=0: parameters per activation (C x D1 x ...), not per channel."""
    rng = np.random.default_rng(21)
    x = _rand(rng, (2, 3, 4))
    scale, bias, mean = (_rand(rng, (3, 4)) for _ in range(3))
    var = (rng.random((3, 4)) + 0.5).astype(np.float32)
    model, feeds = make_node_model(
        "BatchNormalization", [x, scale, bias, mean, var], {"spatial": 0}, opset=7
    )
    (got,) = run_cpu(model, feeds)
    np.testing.assert_allclose(
        got, (x - mean) / np.sqrt(var + 1e-5) * scale + bias, rtol=1e-5, atol=1e-6
    )


def test_batch_norm_mixed_types():
    """Opset 15: float16 data with float32 scale/bias/mean/var."""
    inputs = _bn_inputs(np.random.default_rng(2), (2, 3, 4), np.float16, np.float32)
    check_node("BatchNormalization", inputs, opset=15, rtol=5e-3, atol=5e-3)


@pytest.mark.parametrize("opset", [14, 15])
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5, 4)])
def test_batch_norm_training(opset, shape):
    inputs = _bn_inputs(np.random.default_rng(3), shape)
    attrs = {"training_mode": 1, "momentum": 0.8, "epsilon": 1e-4}
    check_node("BatchNormalization", inputs, attrs, opset=opset, n_outputs=3, rtol=1e-4,
               atol=1e-5)  # fmt: skip


def test_batch_norm_training_opset6():
    """Before opset 7, is_test=0 (the default) is training mode (the reference fails there:
    compare with numpy)."""
    x, scale, bias, mean, var = _bn_inputs(np.random.default_rng(4), (3, 2, 4))
    model, feeds = make_node_model(
        "BatchNormalization", [x, scale, bias, mean, var], {"momentum": 0.7}, opset=6,
        n_outputs=5,
    )  # fmt: skip
    y, run_mean, run_var, saved_mean, saved_var = run_cpu(model, feeds)
    bm, bv = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    expected_y = (x - bm[:, None]) / np.sqrt(bv[:, None] + 1e-5) * scale[:, None] + bias[:, None]
    np.testing.assert_allclose(y, expected_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(run_mean, 0.7 * mean + 0.3 * bm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run_var, 0.7 * var + 0.3 * bv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(saved_mean, bm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(saved_var, bv, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 4, 3, 5), (2, 2, 2, 3, 2)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_instance_norm(shape, dtype):
    rng = np.random.default_rng(5)
    c = shape[1]
    inputs = [_rand(rng, shape, dtype), _rand(rng, (c,), dtype), _rand(rng, (c,), dtype)]
    rtol, atol = TOL[dtype]
    check_node("InstanceNormalization", inputs, {"epsilon": 1e-4}, rtol=rtol, atol=atol)


@pytest.mark.parametrize("opset", [1, 6, 22])
def test_instance_norm_opsets(opset):
    rng = np.random.default_rng(6)
    inputs = [_rand(rng, (2, 3, 4)), _rand(rng, (3,)), _rand(rng, (3,))]
    check_node("InstanceNormalization", inputs, opset=opset, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "shape,axis",
    [((4, 6), -1), ((2, 3, 5), -1), ((2, 3, 5), 1), ((2, 3, 4, 5), -2), ((3, 4), 0), ((7,), 0)],
)
@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm(shape, axis, bias):
    rng = np.random.default_rng(7)
    norm_shape = shape[axis % len(shape) :]
    inputs = [_rand(rng, shape), _rand(rng, norm_shape)]
    if bias:
        inputs.append(_rand(rng, norm_shape))
    attrs = {"axis": axis, "epsilon": 1e-3}
    check_node("LayerNormalization", inputs, attrs, opset=17, n_outputs=3, rtol=1e-4, atol=1e-5)


def test_layer_norm_broadcast_scale():
    rng = np.random.default_rng(8)
    inputs = [_rand(rng, (2, 3, 4)), _rand(rng, (1, 4)), _rand(rng, (4,))]
    check_node("LayerNormalization", inputs, {"axis": 1}, n_outputs=3, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_layer_norm_dtypes(dtype):
    """Y in the input type; Mean and InvStdDev are float32 (stash_type=1) as shape inference says
    (the reference casts them to the input type, so only Y is compared)."""
    rng = np.random.default_rng(9)
    inputs = [_rand(rng, (3, 8), dtype), _rand(rng, (8,), dtype), _rand(rng, (8,), dtype)]
    rtol, atol = TOL[dtype]
    check_node("LayerNormalization", inputs, rtol=rtol, atol=atol)
    model, feeds = make_node_model("LayerNormalization", inputs, n_outputs=3)
    _, mean, inv = run_cpu(model, feeds)
    assert mean.dtype == inv.dtype == np.float32 and mean.shape == (3, 1)


@pytest.mark.parametrize("shape,axis", [((4, 6), -1), ((2, 3, 5), 1), ((2, 3, 4, 5), -2)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm(shape, axis, dtype):
    rng = np.random.default_rng(10)
    inputs = [_rand(rng, shape, dtype), _rand(rng, shape[axis % len(shape) :], dtype)]
    rtol, atol = TOL[dtype]
    check_node("RMSNormalization", inputs, {"axis": axis, "epsilon": 1e-3}, opset=23, rtol=rtol,
               atol=atol)  # fmt: skip


@pytest.mark.parametrize("opset", [18, 21])
@pytest.mark.parametrize("shape,groups", [((2, 6, 5), 3), ((1, 4, 3, 3), 2), ((2, 4, 2), 4)])
def test_group_norm(opset, shape, groups):
    rng = np.random.default_rng(11)
    n_params = groups if opset == 18 else shape[1]
    inputs = [_rand(rng, shape), _rand(rng, (n_params,)), _rand(rng, (n_params,))]
    attrs = {"num_groups": groups, "epsilon": 1e-3}
    check_node("GroupNormalization", inputs, attrs, opset=opset, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("dtype", DTYPES)
def test_lrn(size, dtype):
    """The reference loops over the batch axis where it means channels: N == C keeps it right."""
    x = _rand(np.random.default_rng(12), (6, 6, 3, 2), dtype)
    attrs = {"size": size, "alpha": 1e-2, "beta": 0.75, "bias": 1.5}
    # the reference divides alpha by size in float32 even for float64 data
    rtol, atol = TOL[dtype] if dtype != np.float64 else (1e-8, 1e-8)
    check_node("LRN", [x], attrs, rtol=rtol, atol=atol)


@pytest.mark.parametrize("opset", [1, 13])
def test_lrn_opsets(opset):
    x = _rand(np.random.default_rng(13), (5, 5, 4, 4))
    check_node("LRN", [x], {"size": 3}, opset=opset, rtol=1e-5)


@pytest.mark.parametrize("shape", [(1, 7, 3, 4), (2, 5, 6), (2, 4, 2, 2, 3)])
@pytest.mark.parametrize("size", [2, 5])
def test_lrn_any_shape(shape, size):
    """Shapes the reference cannot do: compare with the definition in numpy."""
    x = _rand(np.random.default_rng(14), shape)
    model, feeds = make_node_model("LRN", [x], {"size": size, "alpha": 0.1, "bias": 2.0})
    (got,) = run_cpu(model, feeds)
    c, lo, hi = shape[1], (size - 1) // 2, size // 2
    sq = np.stack([(x[:, max(0, i - lo) : i + hi + 1] ** 2).sum(axis=1) for i in range(c)], 1)
    np.testing.assert_allclose(got, x / (2.0 + 0.1 / size * sq) ** 0.75, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_lp_normalization(axis, p, dtype):
    rng = np.random.default_rng(14)
    x = _rand(rng, (3, 4, 5), dtype)
    if p == 1:  # the reference forgets the absolute value of the L1 norm
        x = np.abs(x)
    x[0, 0] = 0  # a zero vector normalizes to zero
    rtol, atol = TOL[dtype]
    check_node("LpNormalization", [x], {"axis": axis, "p": p}, rtol=rtol, atol=atol)


def test_lp_normalization_l1_signed():
    x = _rand(np.random.default_rng(15), (3, 4))
    model, feeds = make_node_model("LpNormalization", [x], {"axis": 1, "p": 1})
    (got,) = run_cpu(model, feeds)
    np.testing.assert_allclose(got, x / np.abs(x).sum(axis=1, keepdims=True), rtol=1e-6)


@pytest.mark.parametrize("opset", [9, 13])
@pytest.mark.parametrize("axes", [None, [0, 2, 3], [1], [2, 3]])
def test_mean_variance_normalization(opset, axes):
    x = _rand(np.random.default_rng(16), (2, 3, 4, 5))
    attrs = {} if axes is None else {"axes": axes}
    check_node("MeanVarianceNormalization", [x], attrs, opset=opset, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("opset", [7, 10, 12, 13, 22])
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_dropout_inference(opset, n_outputs):
    x = _rand(np.random.default_rng(17), (3, 4))
    attrs = {"ratio": 0.3} if opset < 12 else {}
    if opset >= 10 or n_outputs == 1:
        check_node("Dropout", [x], attrs, opset=opset, n_outputs=n_outputs)
        return
    # before opset 10 the mask has the data's type (the reference returns bool)
    model, feeds = make_node_model("Dropout", [x], attrs, opset=opset, n_outputs=2)
    y, mask = run_cpu(model, feeds)
    np.testing.assert_array_equal(y, x)
    assert mask.dtype == x.dtype and (mask == 1).all()


@pytest.mark.parametrize("opset", [1, 6])
def test_dropout_legacy(opset):
    x = _rand(np.random.default_rng(17), (3, 4))
    model, feeds = make_node_model("Dropout", [x], {"is_test": 1, "ratio": 0.2}, opset=opset)
    (y,) = run_cpu(model, feeds)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_inputs_not_training(dtype):
    x = _rand(np.random.default_rng(18), (2, 3, 4), dtype)
    inputs = [x, np.array(0.4, np.float32), np.array(False)]
    check_node("Dropout", inputs, {"seed": 3}, n_outputs=2)
    check_node("Dropout", [x, None, np.array(False)], n_outputs=2)


def test_dropout_training_ratio_zero():
    x = _rand(np.random.default_rng(19), (5, 6))
    check_node("Dropout", [x, np.array(0.0, np.float32), np.array(True)], n_outputs=2)


def test_dropout_training_mask_is_consistent():
    """The reference is random: check the kernel's invariants instead."""
    x = _rand(np.random.default_rng(20), (40, 50)) + 3.0
    model, feeds = make_node_model(
        "Dropout", [x, np.array(0.25, np.float32), np.array(True)], {"seed": 7}, n_outputs=2
    )
    y, mask = run_cpu(model, feeds)
    assert mask.dtype == np.bool_ and y.dtype == x.dtype
    np.testing.assert_allclose(y, np.where(mask, x / 0.75, 0), rtol=1e-6)
    assert 0.15 < 1 - mask.mean() < 0.35
    y2, mask2 = run_cpu(model, feeds)
    np.testing.assert_array_equal(mask, mask2)  # seeded
