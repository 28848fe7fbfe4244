"""com.microsoft GroupQueryAttention against onnxruntime: first prompts with right padding,
decode steps with a key/value cache, local windows, softcap, rotary embeddings and packed QKV."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import ort_core as ort

onnxruntime = pytest.importorskip("onnxruntime")
NAMES = ["query", "key", "value", "past_key", "past_value", "seqlens_k",
         "total_sequence_length", "cos_cache", "sin_cache"]  # fmt: skip
B, NQ, NKV = 2, 4, 2


def _model(attrs, feeds):
    inputs = [n if n in feeds else "" for n in NAMES[: max(NAMES.index(n) for n in feeds) + 1]]
    node = helper.make_node(
        "GroupQueryAttention", inputs, ["out", "present_key", "present_value"],
        domain="com.microsoft", num_heads=NQ, kv_num_heads=NKV, **attrs,
    )  # fmt: skip
    types = {"seqlens_k": TensorProto.INT32, "total_sequence_length": TensorProto.INT32}
    graph = helper.make_graph(
        [node], "gqa",
        [helper.make_tensor_value_info(n, types.get(n, TensorProto.FLOAT), None) for n in feeds],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
         for o in ("out", "present_key", "present_value")],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def _compare(attrs, feeds, valid=None):
    model = _model(attrs, feeds)
    want = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    for i, (w, g) in enumerate(zip(want, got)):
        assert w.shape == g.shape, f"output {i}"
        if i == 0 and valid is not None:  # padded rows of a first prompt are unspecified
            for b, n in enumerate(valid):
                np.testing.assert_allclose(g[b, :n], w[b, :n], rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def _qkv(rng, s, head):
    return (
        rng.standard_normal((B, s, NQ * head)).astype(np.float32),
        rng.standard_normal((B, s, NKV * head)).astype(np.float32),
        rng.standard_normal((B, s, NKV * head)).astype(np.float32),
    )


def _prompt(rng, head):
    q, k, v = _qkv(rng, 5, head)
    empty = np.zeros((B, NKV, 0, head), np.float32)
    return {"query": q, "key": k, "value": v, "past_key": empty, "past_value": empty,
            "seqlens_k": np.array([4, 2], np.int32),
            "total_sequence_length": np.array(5, np.int32)}  # fmt: skip


def _decode(rng, head):
    q, k, v = _qkv(rng, 1, head)
    past = rng.standard_normal((2, B, NKV, 6, head)).astype(np.float32)
    return {"query": q, "key": k, "value": v, "past_key": past[0], "past_value": past[1],
            "seqlens_k": np.array([6, 4], np.int32),
            "total_sequence_length": np.array(7, np.int32)}  # fmt: skip


@pytest.mark.parametrize(
    "attrs", [{}, {"local_window_size": 3}, {"softcap": 2.0}, {"scale": 0.3}], ids=str
)
def test_decode_step_with_cache(attrs):
    _compare(attrs, _decode(np.random.default_rng(1), 8))


def test_first_prompt_with_right_padding():
    _compare({}, _prompt(np.random.default_rng(2), 8), valid=[5, 3])


@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("step", ["prompt", "decode"])
def test_rotary(step, interleaved):
    rng = np.random.default_rng(3)
    head = 16  # onnxruntime's rotary path wants a multiple of 16
    feeds = _prompt(rng, head) if step == "prompt" else _decode(rng, head)
    feeds["cos_cache"] = rng.random((16, head // 2)).astype(np.float32)
    feeds["sin_cache"] = rng.random((16, head // 2)).astype(np.float32)
    attrs = {"do_rotary": 1, "rotary_interleaved": interleaved}
    _compare(attrs, feeds, valid=[5, 3] if step == "prompt" else None)


def test_packed_qkv():
    feeds = _decode(np.random.default_rng(4), 8)
    feeds["query"] = np.concatenate([feeds.pop("query"), feeds.pop("key"), feeds.pop("value")], -1)
    _compare({}, feeds)


def test_heads_that_do_not_group_are_an_error():
    feeds = _decode(np.random.default_rng(5), 8)
    node = helper.make_node(
        "GroupQueryAttention", NAMES[:7], ["out", "pk", "pv"], domain="com.microsoft",
        num_heads=3, kv_num_heads=2,
    )  # fmt: skip
    graph = helper.make_graph(
        [node], "gqa",
        [helper.make_tensor_value_info(n, TensorProto.INT32 if n in ("seqlens_k", "total_sequence_length") else TensorProto.FLOAT, None) for n in NAMES[:7]],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in ("out", "pk", "pv")],
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    with pytest.raises(ort.errors.InvalidArgument, match="kv_num_heads"):
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, feeds
        )
