"""Build BERT-base, GPT-2 small and ViT-base geometries with random weights, with onnx.helper.

The graphs follow what PyTorch's exporter emits at opset 17 (MatMul+Add projections,
Reshape/Transpose to heads, scaled QK^T, Softmax, LayerNormalization, Gelu as x*0.5*(1+erf(x/sqrt2)))
so that optimizer fusions see realistic patterns. Weights are random (seeded): the models exist to be
timed, and are written to a cache folder on first use, never committed.

    python benchmarks/geometries.py --out /tmp/models     # writes bert_base.onnx, gpt2_small.onnx...
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


class _Builder:
    def __init__(self, seed: int = 0) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base: str, value) -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, base: str, shape, scale: float = 0.02) -> str:
        return self.const(base, (self.rng.standard_normal(shape) * scale).astype(np.float32))

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs) -> str | list[str]:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def linear(self, x: str, d_in: int, d_out: int) -> str:
        return self.op(
            "Add",
            [
                self.op("MatMul", [x, self.weight("w", (d_in, d_out))]),
                self.const("b", np.zeros(d_out, np.float32)),
            ],
        )

    def layer_norm(self, x: str, d: int) -> str:
        return self.op(
            "LayerNormalization",
            [
                x,
                self.const("ln_g", np.ones(d, np.float32)),
                self.const("ln_b", np.zeros(d, np.float32)),
            ],
            axis=-1,
            epsilon=1e-5,
        )

    def gelu(self, x: str) -> str:
        inner = self.op("Erf", [self.op("Div", [x, self.const("sqrt2", np.float32(math.sqrt(2)))])])
        one_plus = self.op("Add", [inner, self.const("one", np.float32(1))])
        return self.op("Mul", [self.op("Mul", [x, one_plus]), self.const("half", np.float32(0.5))])

    def attention(self, x: str, d: int, heads: int, mask: str | None) -> str:
        hd = d // heads
        shape_heads = self.const("shape", np.array([0, 0, heads, hd], np.int64))

        def split(t: str) -> str:
            return self.op("Transpose", [self.op("Reshape", [t, shape_heads])], perm=[0, 2, 1, 3])

        q, k, v = (split(self.linear(x, d, d)) for _ in range(3))
        kt = self.op("Transpose", [k], perm=[0, 1, 3, 2])
        scores = self.op(
            "Div", [self.op("MatMul", [q, kt]), self.const("scale", np.float32(math.sqrt(hd)))]
        )
        if mask is not None:
            scores = self.op("Add", [scores, mask])
        probs = self.op("Softmax", [scores], axis=-1)
        ctx = self.op("Transpose", [self.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = self.op("Reshape", [ctx, self.const("shape", np.array([0, 0, d], np.int64))])
        return self.linear(ctx, d, d)

    def ffn(self, x: str, d: int) -> str:
        return self.linear(self.gelu(self.linear(x, d, 4 * d)), 4 * d, d)

    def model(self, inputs, outputs, name: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ort-core-bench"
        )
        m.ir_version = 8
        return m


def bert(
    layers: int = 12, d: int = 768, heads: int = 12, vocab: int = 30522, seq: int = 128
) -> onnx.ModelProto:
    """BERT-base: post-norm encoder with an additive attention mask from input_mask."""
    b = _Builder(1)
    pos = b.const("pos_ids", np.arange(seq, dtype=np.int64)[None])
    h = b.op(
        "Add",
        [
            b.op("Gather", [b.weight("word_emb", (vocab, d)), "input_ids"]),
            b.op("Gather", [b.weight("pos_emb", (512, d)), pos]),
        ],
    )
    h = b.layer_norm(h, d)
    m = b.op(
        "Cast",
        [b.op("Unsqueeze", ["input_mask", b.const("axes", np.array([1, 2], np.int64))])],
        to=F,
    )
    mask = b.op(
        "Mul",
        [b.op("Sub", [b.const("one", np.float32(1)), m]), b.const("neg", np.float32(-10000.0))],
    )
    for _ in range(layers):
        h = b.layer_norm(b.op("Add", [h, b.attention(h, d, heads, mask)]), d)
        h = b.layer_norm(b.op("Add", [h, b.ffn(h, d)]), d)
    b.nodes.append(helper.make_node("Identity", [h], ["last_hidden_state"], name="output"))
    ins = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", seq]),
        helper.make_tensor_value_info("input_mask", TensorProto.INT64, ["batch", seq]),
    ]
    return b.model(
        ins, [helper.make_tensor_value_info("last_hidden_state", F, ["batch", seq, d])], "bert"
    )


def gpt2(
    layers: int = 12, d: int = 768, heads: int = 12, vocab: int = 50257, seq: int = 128
) -> onnx.ModelProto:
    """GPT-2 small: pre-norm decoder with a causal mask, tied LM head."""
    b = _Builder(2)
    wte = b.weight("wte", (vocab, d))
    pos = b.const("pos_ids", np.arange(seq, dtype=np.int64)[None])
    h = b.op(
        "Add",
        [b.op("Gather", [wte, "input_ids"]), b.op("Gather", [b.weight("wpe", (1024, d)), pos])],
    )
    causal = np.triu(np.full((seq, seq), -10000.0, np.float32), 1)[None, None]
    mask = b.const("causal", causal)
    for _ in range(layers):
        h = b.op("Add", [h, b.attention(b.layer_norm(h, d), d, heads, mask)])
        h = b.op("Add", [h, b.ffn(b.layer_norm(h, d), d)])
    h = b.layer_norm(h, d)
    b.nodes.append(
        helper.make_node(
            "MatMul", [h, b.op("Transpose", [wte], perm=[1, 0])], ["logits"], name="lm_head"
        )
    )
    ins = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", seq])]
    return b.model(ins, [helper.make_tensor_value_info("logits", F, ["batch", seq, vocab])], "gpt2")


def vit(
    layers: int = 12, d: int = 768, heads: int = 12, image: int = 224, patch: int = 16
) -> onnx.ModelProto:
    """ViT-base/16: patch embedding Conv, class token, pre-norm encoder, classification head."""
    b = _Builder(3)
    n = (image // patch) ** 2
    x = b.op(
        "Conv",
        [
            "pixel_values",
            b.weight("patch_w", (d, 3, patch, patch)),
            b.const("patch_b", np.zeros(d, np.float32)),
        ],
        strides=[patch, patch],
        kernel_shape=[patch, patch],
    )
    x = b.op(
        "Transpose",
        [b.op("Reshape", [x, b.const("shape", np.array([0, d, n], np.int64))])],
        perm=[0, 2, 1],
    )
    cls = b.op(
        "Expand",
        [
            b.weight("cls", (1, 1, d)),
            b.op(
                "Concat",
                [
                    b.op(
                        "Slice",
                        [
                            b.op("Shape", ["pixel_values"]),
                            b.const("s", np.array([0], np.int64)),
                            b.const("e", np.array([1], np.int64)),
                        ],
                    ),
                    b.const("one_d", np.array([1, d], np.int64)),
                ],
                axis=0,
            ),
        ],
    )
    h = b.op("Add", [b.op("Concat", [cls, x], axis=1), b.weight("pos", (1, n + 1, d))])
    for _ in range(layers):
        h = b.op("Add", [h, b.attention(b.layer_norm(h, d), d, heads, None)])
        h = b.op("Add", [h, b.ffn(b.layer_norm(h, d), d)])
    h = b.layer_norm(h, d)
    first = b.op("Gather", [h, b.const("zero", np.array(0, np.int64))], axis=1)
    b.nodes.append(
        helper.make_node(
            "Gemm",
            [first, b.weight("head_w", (d, 1000)), b.const("head_b", np.zeros(1000, np.float32))],
            ["logits"],
            name="head",
        )
    )
    ins = [helper.make_tensor_value_info("pixel_values", F, ["batch", 3, image, image])]
    return b.model(ins, [helper.make_tensor_value_info("logits", F, ["batch", 1000])], "vit")


BUILDERS = {"bert_base": bert, "gpt2_small": gpt2, "vit_base": vit}


def feed_for(name: str, batch: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    if name == "bert_base":
        return {
            "input_ids": rng.integers(0, 30522, (batch, 128)).astype(np.int64),
            "input_mask": np.ones((batch, 128), np.int64),
        }
    if name == "gpt2_small":
        return {"input_ids": rng.integers(0, 50257, (batch, 128)).astype(np.int64)}
    return {"pixel_values": rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)}


def build(name: str, folder: str | None = None) -> str:
    """Write model ``name`` to ``folder`` (default: a cache under the temp dir) once; its path."""
    folder = folder or os.path.join(tempfile.gettempdir(), "ort_core_bench_models")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.onnx")
    if not os.path.exists(path):
        model = BUILDERS[name]()
        onnx.save(model, path + ".tmp", save_as_external_data=True, location=f"{name}.onnx.data")
        os.replace(path + ".tmp", path)
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--models", default=",".join(BUILDERS))
    args = ap.parse_args()
    for n in args.models.split(","):
        print(build(n, args.out))
