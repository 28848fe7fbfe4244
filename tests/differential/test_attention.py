"""The attention family's direct kernels (Attention, RotaryEmbedding, SwiGLU, CausalConvWithState,
LinearAttention, FlexAttention) against the ReferenceEvaluator and against the standard's function
body run by the CPU provider's other kernels."""

from __future__ import annotations

import numpy as np
import pytest
from ml_dtypes import bfloat16
from onnx import TensorProto, helper

from tests.differential.harness import check_node
from tests.differential.test_function_ops import compare_with_body

PREVIEW = "ai.onnx.preview"


def _tol(dtype):
    return {np.float16: 3e-3, bfloat16: 2e-2}.get(dtype, 1e-5)


# -- Attention ---------------------------------------------------------------------------------
def _qkv(rng, dtype, b=2, hq=4, hkv=2, sq=3, skv=5, d=8, dv=6, three_d=False):
    q = rng.standard_normal((b, hq, sq, d))
    k = rng.standard_normal((b, hkv, skv, d))
    v = rng.standard_normal((b, hkv, skv, dv))
    if three_d:
        q = q.transpose(0, 2, 1, 3).reshape(b, sq, hq * d)
        k = k.transpose(0, 2, 1, 3).reshape(b, skv, hkv * d)
        v = v.transpose(0, 2, 1, 3).reshape(b, skv, hkv * dv)
    return [x.astype(dtype) for x in (q, k, v)]


ATTENTION_CASES = {
    "plain": ({}, {}),
    "mha": ({"hkv": 4}, {}),
    "mqa": ({"hkv": 1}, {}),
    "3d": ({"three_d": True}, {"q_num_heads": 4, "kv_num_heads": 2}),
    "scaled": ({}, {"scale": 0.3}),
    "causal": ({"sq": 5}, {"is_causal": 1}),
    "causal_cross": ({}, {"is_causal": 1}),
    "softcap": ({}, {"softcap": 2.5, "qk_matmul_output_mode": 1}),
    "bool_mask": ({}, {"mask": "bool2d"}),
    "bool_mask_causal": ({"sq": 5}, {"mask": "bool4d", "is_causal": 1}),
    "float_mask_3d": ({}, {"mask": "float3d"}),
    "short_mask": ({}, {"mask": "short"}),
    "fully_masked": ({}, {"mask": "rowfalse", "qk_matmul_output_mode": 3}),
    "past": ({}, {"past": 4}),
    "past_causal_mask": ({}, {"past": 2, "is_causal": 1, "mask": "bool2d_total"}),
    "mode2": ({}, {"mask": "float3d", "qk_matmul_output_mode": 2, "softcap": 3.0}),
    "mode0_softcap": ({}, {"softcap": 1.5}),
    "softmax_precision": ({}, {"softmax_precision": 1, "qk_matmul_output_mode": 3}),
    "nonpad": ({"skv": 6}, {"nonpad": True}),
    "nonpad_causal": ({"skv": 6, "sq": 2}, {"nonpad": True, "is_causal": 1}),
    "window": ({"sq": 5, "skv": 7}, {"left_window_size": 2, "right_window_size": 1}),
    "window_causal": ({"sq": 4}, {"left_window_size": 1, "is_causal": 1, "past": 2}),
}


def _attention_inputs(rng, dtype, case):
    shape_kw, spec = ATTENTION_CASES[case]
    q, k, v = _qkv(rng, dtype, **shape_kw)
    attrs = {a: val for a, val in spec.items() if a not in ("mask", "past", "nonpad")}
    b, sq = q.shape[0], q.shape[-2] if q.ndim == 4 else q.shape[1]
    skv = k.shape[-2] if k.ndim == 4 else k.shape[1]
    past_len = spec.get("past", 0)
    total = skv + past_len
    mask = None
    kind = spec.get("mask")
    if kind == "bool2d":
        mask = rng.random((sq, total)) > 0.3
        mask[:, 0] = True
    elif kind == "bool2d_total":
        mask = rng.random((sq, total)) > 0.2
    elif kind == "bool4d":
        mask = rng.random((b, 1, sq, total)) > 0.3
    elif kind == "float3d":
        mask = rng.standard_normal((4, sq, total)).astype(dtype)
    elif kind == "short":
        mask = rng.standard_normal((sq, total - 2)).astype(dtype)
    elif kind == "rowfalse":
        mask = rng.random((sq, total)) > 0.3
        mask[1] = False
    inputs = [q, k, v, mask]
    if past_len:
        hkv = k.shape[1]
        inputs += [
            rng.standard_normal((b, hkv, past_len, k.shape[3])).astype(dtype),
            rng.standard_normal((b, hkv, past_len, v.shape[3])).astype(dtype),
        ]
    if spec.get("nonpad"):
        inputs += [None, None, np.array([skv, skv - 2], dtype=np.int64)[:b]]
    while inputs[-1] is None:
        inputs.pop()
    # present_key/value must not be asked for with nonpad_kv_seqlen (an external cache)
    return inputs, attrs, 1 if spec.get("nonpad") else 4


@pytest.mark.parametrize("case", sorted(ATTENTION_CASES))
def test_attention_direct_matches_function_body(case):
    rng = np.random.default_rng(sum(case.encode()))
    inputs, attrs, n_out = _attention_inputs(rng, np.float32, case)
    compare_with_body("Attention", inputs, attrs, n_outputs=n_out, tol=1e-5)


@pytest.mark.parametrize("case", sorted(set(ATTENTION_CASES) - {"mode0_softcap"}))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_attention_reference(case, dtype):
    # mode0_softcap: onnx's reference returns the soft-capped scores in qk_matmul_output mode 0,
    # while the spec and the function body return the raw QK product (covered above).
    rng = np.random.default_rng(7)
    inputs, attrs, n_out = _attention_inputs(rng, dtype, case)
    tol = _tol(dtype)
    check_node("Attention", inputs, attrs, n_outputs=n_out, rtol=tol, atol=tol)


@pytest.mark.parametrize("opset", [23, 24])
def test_attention_older_opsets(opset):
    rng = np.random.default_rng(opset)
    inputs, attrs, _ = _attention_inputs(rng, np.float32, "past_causal_mask")
    check_node("Attention", inputs, attrs, opset=opset, n_outputs=4)
    compare_with_body("Attention", inputs, attrs, opset=opset, n_outputs=4)


def test_attention_bfloat16():
    rng = np.random.default_rng(3)
    inputs, attrs, _ = _attention_inputs(rng, bfloat16, "bool_mask_causal")
    compare_with_body("Attention", inputs, attrs, n_outputs=4, tol=2e-2)


# -- RotaryEmbedding ---------------------------------------------------------------------------
def _rotary_inputs(rng, dtype, three_d, rot_dim, with_pos):
    b, h, s, d = 2, 3, 4, 8
    x = rng.standard_normal((b, h, s, d)).astype(dtype)
    if three_d:
        x = np.ascontiguousarray(x.transpose(0, 2, 1, 3).reshape(b, s, h * d))
    half = (rot_dim or d) // 2
    if with_pos:
        pos = rng.integers(0, 10, (b, s)).astype(np.int64)
        angles = rng.random((10, half)) * 6
        return [x, np.cos(angles).astype(dtype), np.sin(angles).astype(dtype), pos]
    angles = rng.random((b, s, half)) * 6
    return [x, np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)]


@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("three_d", [False, True])
@pytest.mark.parametrize("rot_dim", [0, 4])
@pytest.mark.parametrize("with_pos", [False, True])
def test_rotary_embedding(interleaved, three_d, rot_dim, with_pos):
    rng = np.random.default_rng(11)
    inputs = _rotary_inputs(rng, np.float32, three_d, rot_dim, with_pos)
    attrs = {"interleaved": interleaved, "rotary_embedding_dim": rot_dim}
    if three_d:
        attrs["num_heads"] = 3
    check_node("RotaryEmbedding", inputs, attrs)
    compare_with_body("RotaryEmbedding", inputs, attrs)


@pytest.mark.parametrize("dtype", [np.float16, bfloat16])
def test_rotary_embedding_low_precision(dtype):
    rng = np.random.default_rng(12)
    inputs = _rotary_inputs(rng, dtype, False, 0, True)
    compare_with_body("RotaryEmbedding", inputs, {"interleaved": 1}, tol=_tol(dtype))
    if dtype == np.float16:
        check_node("RotaryEmbedding", inputs, {"interleaved": 1}, rtol=3e-3, atol=3e-3)


# -- SwiGLU ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, bfloat16])
@pytest.mark.parametrize("shape", [(), (7,), (2, 3, 5)])
@pytest.mark.parametrize("alpha", [None, 1.702])
def test_swiglu(dtype, shape, alpha):
    rng = np.random.default_rng(5)
    a = (rng.standard_normal(shape) * 3).astype(dtype)
    b = rng.standard_normal(shape).astype(dtype)
    attrs = {} if alpha is None else {"alpha": alpha}
    tol = _tol(dtype)
    if dtype != bfloat16:  # the ReferenceEvaluator's SwiGLU has no bfloat16 path
        check_node("SwiGLU", [a, b], attrs, rtol=tol, atol=tol)
    compare_with_body("SwiGLU", [a, b], attrs, tol=tol)


# -- CausalConvWithState -----------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["none", "silu", "swish"])
@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("with_past", [False, True])
@pytest.mark.parametrize("length", [1, 2, 6])
def test_causal_conv_with_state(activation, k, with_bias, with_past, length):
    rng = np.random.default_rng(k * 10 + length)
    b, c = 2, 3
    inputs = [
        rng.standard_normal((b, c, length)).astype(np.float32),
        rng.standard_normal((c, 1, k)).astype(np.float32),
        rng.standard_normal(c).astype(np.float32) if with_bias else None,
        rng.standard_normal((b, c, k - 1)).astype(np.float32) if with_past else None,
    ]
    while inputs[-1] is None:
        inputs.pop()
    attrs = {"activation": activation}
    check_node("CausalConvWithState", inputs, attrs, n_outputs=2)
    compare_with_body("CausalConvWithState", inputs, attrs, n_outputs=2)


def test_causal_conv_with_state_float16():
    rng = np.random.default_rng(1)
    inputs = [
        rng.standard_normal((2, 4, 5)).astype(np.float16),
        rng.standard_normal((4, 1, 3)).astype(np.float16),
    ]
    check_node("CausalConvWithState", inputs, {"activation": "silu"}, n_outputs=2, rtol=3e-3)
    compare_with_body("CausalConvWithState", inputs, {"activation": "silu"}, n_outputs=2, tol=3e-3)


# -- LinearAttention ---------------------------------------------------------------------------
def _linear_attention_inputs(rng, rule, hq, hkv, t, past, per_head_decay, dtype=np.float32):
    b, dk, dv = 2, 4, 3
    q = rng.standard_normal((b, t, hq * dk))
    k = rng.standard_normal((b, t, hkv, dk))
    k = (k / np.linalg.norm(k, axis=-1, keepdims=True)).reshape(b, t, hkv * dk)
    v = rng.standard_normal((b, t, hkv * dv))
    inputs = [x.astype(dtype) for x in (q, k, v)]
    inputs.append(rng.standard_normal((b, hkv, dk, dv)).astype(dtype) if past else None)
    decay = beta = None
    if rule in ("gated", "gated_delta"):
        decay = -rng.random((b, t, hkv if per_head_decay else hkv * dk)).astype(dtype)
    if rule in ("delta", "gated_delta"):
        beta = rng.random((b, t, hkv)).astype(dtype)
    inputs += [decay, beta]
    while inputs[-1] is None:
        inputs.pop()
    return inputs, {"update_rule": rule, "q_num_heads": hq, "kv_num_heads": hkv}


@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
@pytest.mark.parametrize("heads", [(2, 2), (4, 2), (3, 1)])
@pytest.mark.parametrize("t", [1, 5])
@pytest.mark.parametrize("past", [False, True])
def test_linear_attention(rule, heads, t, past):
    rng = np.random.default_rng(t)
    inputs, attrs = _linear_attention_inputs(rng, rule, *heads, t, past, heads[0] == 3)
    check_node("LinearAttention", inputs, attrs, n_outputs=2, rtol=1e-4, atol=1e-5)
    compare_with_body("LinearAttention", inputs, attrs, n_outputs=2, tol=1e-4)


def test_linear_attention_scale_and_float16():
    rng = np.random.default_rng(9)
    inputs, attrs = _linear_attention_inputs(rng, "gated_delta", 2, 1, 4, True, True, np.float16)
    attrs["scale"] = 0.25
    check_node("LinearAttention", inputs, attrs, n_outputs=2, rtol=3e-3, atol=3e-3)
    compare_with_body("LinearAttention", inputs, attrs, n_outputs=2, tol=3e-3)


# -- FlexAttention -----------------------------------------------------------------------------
def _mod_graph(name, op, const):
    ttype = TensorProto.FLOAT
    return helper.make_graph(
        [helper.make_node(op, ["s", "c"], ["o"])],
        name,
        [helper.make_tensor_value_info("s", ttype, None)],
        [helper.make_tensor_value_info("o", ttype, None)],
        [helper.make_tensor("c", ttype, [], [const])],
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("hkv", [4, 2])
@pytest.mark.parametrize("mods", [(), ("score_mod",), ("score_mod", "prob_mod")])
def test_flex_attention(dtype, hkv, mods):
    if dtype == np.float64 and mods:
        pytest.skip("the modifier graphs here are float32; float64 would need float64 graphs")
    rng = np.random.default_rng(4)
    q, k, v = _qkv(rng, dtype, hkv=hkv)
    attrs = {"scale": 0.4} if hkv == 2 else {}
    if "score_mod" in mods:
        attrs["score_mod"] = _mod_graph("sm", "Add", 0.5)
    if "prob_mod" in mods:
        attrs["prob_mod"] = _mod_graph("pm", "Mul", 2.0)
    tol = _tol(dtype)
    compare_with_body("FlexAttention", [q, k, v], attrs, domain=PREVIEW, opset=26, tol=tol)
