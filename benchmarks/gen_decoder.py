"""One step of a KV-cache decoder, GPT-2 small's geometry (12 layers, hidden 768, 12 heads, vocabulary
50257), as Hugging Face Optimum exports ``decoder_with_past_model.onnx``: one new token, the past
keys and values of every layer in, the presents (past + 1) and the logits out. Random weights.

The graph is the plain opset-17 one (fused c_attn projection split into q/k/v, Concat of past and
new keys/values, an additive mask from ``attention_mask``, GPT-2's tanh GELU as Pow/Tanh arithmetic,
an untied LM head initializer as torch's constant folding leaves it).

- ``gpt2_step_past128``: past length 128, one new token
- ``gpt2_step_past512``: the same model at past length 512
"""

from __future__ import annotations

import math

import numpy as np
from geometries import _Builder
from onnx import TensorProto, helper
from zoo import Spec

KIND = "decoder"
DEPENDS = ("geometries.py", "zoo.py")
F = TensorProto.FLOAT
LAYERS, D, HEADS, VOCAB = 12, 768, 12, 50257


def gelu_tanh(b: _Builder, x: str) -> str:
    cube = b.op("Pow", [x, b.const("three", np.float32(3))])
    inner = b.op("Add", [x, b.op("Mul", [cube, b.const("c", np.float32(0.044715))])])
    t = b.op("Tanh", [b.op("Mul", [inner, b.const("k", np.float32(math.sqrt(2 / math.pi)))])])
    half_x = b.op("Mul", [x, b.const("half", np.float32(0.5))])
    return b.op("Mul", [half_x, b.op("Add", [t, b.const("one", np.float32(1))])])


def gpt2_step(layers: int = LAYERS, d: int = D, heads: int = HEADS, vocab: int = VOCAB):
    b = _Builder(30)
    hd = d // heads
    wte = b.weight("wte", (vocab, d))
    h = b.op(
        "Add",
        [
            b.op("Gather", [wte, "input_ids"]),
            b.op("Gather", [b.weight("wpe", (1024, d)), "position_ids"]),
        ],
    )
    m = b.op(
        "Cast",
        [b.op("Unsqueeze", ["attention_mask", b.const("axes", np.array([1, 2], np.int64))])],
        to=F,
    )
    mask = b.op(
        "Mul", [b.op("Sub", [b.const("one", np.float32(1)), m]), b.const("neg", np.float32(-1e4))]
    )
    heads_shape = b.const("shape", np.array([0, 0, heads, hd], np.int64))
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", 1]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", 1]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", F, ["batch", 1, vocab])]
    for i in range(layers):
        qkv = b.linear(b.layer_norm(h, d), d, 3 * d)
        q, k, v = (
            b.op("Transpose", [b.op("Reshape", [t, heads_shape])], perm=[0, 2, 1, 3])
            for t in b.op("Split", [qkv, b.const("split", np.array([d] * 3, np.int64))], 3, axis=2)
        )
        kv = []
        for name, t in (("key", k), ("value", v)):
            past, present = f"past_key_values.{i}.{name}", f"present.{i}.{name}"
            inputs.append(helper.make_tensor_value_info(past, F, ["batch", heads, "past", hd]))
            outputs.append(helper.make_tensor_value_info(present, F, ["batch", heads, "total", hd]))
            b.nodes.append(helper.make_node("Concat", [past, t], [present], axis=2, name=present))
            kv.append(present)
        scores = b.op(
            "Div",
            [
                b.op("MatMul", [q, b.op("Transpose", [kv[0]], perm=[0, 1, 3, 2])]),
                b.const("scale", np.float32(math.sqrt(hd))),
            ],
        )
        probs = b.op("Softmax", [b.op("Add", [scores, mask])], axis=-1)
        ctx = b.op("Transpose", [b.op("MatMul", [probs, kv[1]])], perm=[0, 2, 1, 3])
        ctx = b.op("Reshape", [ctx, b.const("shape", np.array([0, 0, d], np.int64))])
        h = b.op("Add", [h, b.linear(ctx, d, d)])
        h = b.op(
            "Add", [h, b.linear(gelu_tanh(b, b.linear(b.layer_norm(h, d), d, 4 * d)), 4 * d, d)]
        )
    head = b.const("lm_head", np.ascontiguousarray(_array(b, wte).T))
    b.nodes.append(
        helper.make_node("MatMul", [b.layer_norm(h, d), head], ["logits"], name="lm_head")
    )
    return b.model(inputs, outputs, "gpt2_decoder_with_past")


def _array(b: _Builder, name: str) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(next(t for t in b.inits if t.name == name))


def step_feed(past: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feed = {
        "input_ids": rng.integers(0, VOCAB, (1, 1)).astype(np.int64),
        "position_ids": np.array([[past]], np.int64),
        "attention_mask": np.ones((1, past + 1), np.int64),
    }
    for i in range(LAYERS):
        for name in ("key", "value"):
            feed[f"past_key_values.{i}.{name}"] = rng.standard_normal(
                (1, HEADS, past, D // HEADS), dtype=np.float32
            )
    return feed


MODELS = {
    f"gpt2_step_past{p}": Spec("gpt2_step", gpt2_step, lambda p=p: step_feed(p), f"past {p}")
    for p in (128, 512)
}
