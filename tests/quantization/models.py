"""Small float models the quantization tests build: a CNN and a transformer-like block."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _init(rng, name, shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    s = scale if scale is not None else np.sqrt(2.0 / max(fan_in, 1))
    return numpy_helper.from_array((rng.standard_normal(shape) * s).astype(np.float32), name)


def cnn(seed: int = 0, opset: int = 17) -> onnx.ModelProto:
    """x[N,3,16,16] -> Conv3x3+Relu -> MaxPool -> depthwise Conv3x3+Relu -> Conv1x1+Relu
    (+ residual Add) -> GlobalAveragePool -> Flatten -> Gemm -> logits[N,10]."""
    rng = np.random.default_rng(seed)
    inits = [
        _init(rng, "c1.w", [8, 3, 3, 3]),
        _init(rng, "c1.b", [8], 0.1),
        _init(rng, "dw.w", [8, 1, 3, 3]),
        _init(rng, "dw.b", [8], 0.1),
        _init(rng, "pw.w", [8, 8, 1, 1]),
        _init(rng, "pw.b", [8], 0.1),
        _init(rng, "fc.w", [10, 8]),
        _init(rng, "fc.b", [10], 0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "c1.w", "c1.b"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], "relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], "pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node(
            "Conv", ["p1", "dw.w", "dw.b"], ["dw"], "dwconv", pads=[1, 1, 1, 1], group=8
        ),
        helper.make_node("Relu", ["dw"], ["r2"], "relu2"),
        helper.make_node("Conv", ["r2", "pw.w", "pw.b"], ["pw"], "pwconv"),
        helper.make_node("Relu", ["pw"], ["r3"], "relu3"),
        helper.make_node("Add", ["r3", "p1"], ["res"], "residual"),
        helper.make_node("GlobalAveragePool", ["res"], ["gap"], "gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], "flatten"),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], "fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def transformer(seed: int = 0, d: int = 32, ff: int = 64) -> onnx.ModelProto:
    """x[N,8,32] -> LayerNorm -> single-head attention (MatMul/Add/Softmax) -> residual ->
    LayerNorm -> MatMul+Add -> Gelu -> MatMul+Add -> residual -> ReduceMean -> MatMul -> [N,10]."""
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(d)
    inits = [
        numpy_helper.from_array(np.ones(d, np.float32), "ln1.g"),
        numpy_helper.from_array(np.zeros(d, np.float32), "ln1.b"),
        numpy_helper.from_array((1 + 0.1 * rng.standard_normal(d)).astype(np.float32), "ln2.g"),
        numpy_helper.from_array((0.1 * rng.standard_normal(d)).astype(np.float32), "ln2.b"),
        _init(rng, "wq", [d, d], s),
        _init(rng, "bq", [d], 0.05),
        _init(rng, "wk", [d, d], s),
        _init(rng, "bk", [d], 0.05),
        _init(rng, "wv", [d, d], s),
        _init(rng, "bv", [d], 0.05),
        _init(rng, "wo", [d, d], s),
        _init(rng, "bo", [d], 0.05),
        _init(rng, "w1", [d, ff], s),
        _init(rng, "b1", [ff], 0.05),
        _init(rng, "w2", [ff, d], 1.0 / np.sqrt(ff)),
        _init(rng, "b2", [d], 0.05),
        _init(rng, "wc", [d, 10], s),
        numpy_helper.from_array(np.array(1.0 / np.sqrt(d), np.float32), "inv_sqrt_d"),
        numpy_helper.from_array(np.array([1], np.int64), "seq_axis"),
    ]
    mk = helper.make_node
    nodes = [
        mk("LayerNormalization", ["x", "ln1.g", "ln1.b"], ["ln1"], "ln1", axis=-1),
        mk("MatMul", ["ln1", "wq"], ["q0"], "q_proj"),
        mk("Add", ["q0", "bq"], ["q"], "q_bias"),
        mk("MatMul", ["ln1", "wk"], ["k0"], "k_proj"),
        mk("Add", ["k0", "bk"], ["k"], "k_bias"),
        mk("MatMul", ["ln1", "wv"], ["v0"], "v_proj"),
        mk("Add", ["v0", "bv"], ["v"], "v_bias"),
        mk("Transpose", ["k"], ["kt"], "k_t", perm=[0, 2, 1]),
        mk("MatMul", ["q", "kt"], ["qk"], "scores"),
        mk("Mul", ["qk", "inv_sqrt_d"], ["qk_s"], "scale"),
        mk("Softmax", ["qk_s"], ["attn"], "softmax", axis=-1),
        mk("MatMul", ["attn", "v"], ["ctx"], "context"),
        mk("MatMul", ["ctx", "wo"], ["o0"], "o_proj"),
        mk("Add", ["o0", "bo"], ["o"], "o_bias"),
        mk("Add", ["x", "o"], ["h1"], "residual1"),
        mk("LayerNormalization", ["h1", "ln2.g", "ln2.b"], ["ln2"], "ln2", axis=-1),
        mk("MatMul", ["ln2", "w1"], ["f0"], "ff1"),
        mk("Add", ["f0", "b1"], ["f1"], "ff1_bias"),
        mk("Gelu", ["f1"], ["g"], "gelu"),
        mk("MatMul", ["g", "w2"], ["f2"], "ff2"),
        mk("Add", ["f2", "b2"], ["f3"], "ff2_bias"),
        mk("Add", ["h1", "f3"], ["h2"], "residual2"),
        mk("ReduceMean", ["h2", "seq_axis"], ["pooled"], "pool", keepdims=0),
        mk("MatMul", ["pooled", "wc"], ["logits"], "classifier"),
    ]
    graph = helper.make_graph(
        nodes,
        "transformer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, d])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def mlp(k: int = 80, h: int = 24, n: int = 8, seed: int = 0, normalized: bool = False):
    """a[B,k] -> MatMul(w1 [k,h]) -> Relu -> MatMul(w2 [h,n]) -> y[B,n] (weights divided by
    the square root of their fan-in when ``normalized``)."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((k, h)).astype(np.float32)
    w2 = rng.standard_normal((h, n)).astype(np.float32)
    if normalized:
        w1, w2 = w1 / np.float32(np.sqrt(k)), w2 / np.float32(np.sqrt(h))
    g = helper.make_graph(
        [
            helper.make_node("MatMul", ["a", "w1"], ["h"], "mm1"),
            helper.make_node("Relu", ["h"], ["r"], "relu"),
            helper.make_node("MatMul", ["r", "w2"], ["y"], "mm2"),
        ],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["B", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", n])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def batches(shape, n: int, seed: int, name: str = "x") -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{name: rng.standard_normal(shape).astype(np.float32)} for _ in range(n)]


class ListReader:
    """A CalibrationDataReader over a list of feeds, usable with both quantizers."""

    def __init__(self, feeds):
        self.feeds = list(feeds)
        self.it = iter(self.feeds)

    def get_next(self):
        return next(self.it, None)

    def rewind(self):
        self.it = iter(self.feeds)


def op_zoo(seed: int = 0) -> onnx.ModelProto:
    """x[2,3,8,8] through the other ops the quantizers treat specially: BatchNormalization,
    LeakyRelu, ConvTranspose, Sigmoid, Resize, Concat, Slice, AveragePool, Reshape, ReduceMean."""
    rng = np.random.default_rng(seed)

    def w(name, shape, scale=0.3):
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name
        )

    def c(name, values, dtype):
        return numpy_helper.from_array(np.array(values, dtype), name)

    inits = [
        w("w1", [8, 3, 3, 3]),
        w("b1", [8], 0.1),
        w("bn_s", [8], 0.1),
        w("bn_b", [8]),
        w("bn_m", [8]),
        c("bn_v", rng.random(8) + 0.5, np.float32),
        w("wt", [8, 4, 2, 2]),
        w("w2", [4, 8, 1, 1]),
        w("fw", [64, 5]),
        c("roi", [], np.float32),
        c("scales", [1, 1, 0.5, 0.5], np.float32),
        c("shape", [0, -1], np.int64),
        c("st", [0], np.int64),
        c("en", [12], np.int64),
        c("ax", [1], np.int64),
    ]
    mk = helper.make_node
    nodes = [
        mk("Conv", ["x", "w1", "b1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
        mk("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], "bn"),
        mk("LeakyRelu", ["bn"], ["lr"], "lrelu", alpha=0.1),
        mk("ConvTranspose", ["lr", "wt"], ["ct"], "convT", strides=[2, 2]),
        mk("Sigmoid", ["ct"], ["sg"], "sig"),
        mk("Resize", ["lr", "roi", "scales"], ["rs"], "resize", mode="nearest"),
        mk("Concat", ["sg", "sg"], ["cc"], "concat", axis=1),
        mk("Slice", ["cc", "st", "en", "ax"], ["sl"], "slice"),
        mk("Conv", ["sl", "w2"], ["c2"], "conv2"),
        mk("AveragePool", ["c2"], ["ap"], "apool", kernel_shape=[4, 4], strides=[4, 4]),
        mk("Reshape", ["ap", "shape"], ["flat"], "reshape"),
        mk("MatMul", ["flat", "fw"], ["y"], "fc"),
        mk("ReduceMean", ["rs"], ["y2"], "rm", keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "zoo",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5]),
            helper.make_tensor_value_info("y2", TensorProto.FLOAT, []),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model
