"""Random-weight models the OpenVINO tests build, each with a feed maker, and a helper that skips
when the provider is unavailable."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ort_core.session import get_provider_availability

OV = "OpenVINOExecutionProvider"
CPU = "CPUExecutionProvider"


def skip_unless_openvino() -> pytest.MarkDecorator:
    """A module-level mark: skip with the provider's own reason when it is unavailable."""
    available, reason = get_provider_availability().get(
        OV, (False, "ort-openvino is not installed: pip install ort-core[openvino]")
    )
    return pytest.mark.skipif(not available, reason=f"{OV} is unavailable: {reason}")


def _w(rng: np.random.Generator, name: str, *shape: int, scale: float = 0.5) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def _model(nodes, inputs, outputs, inits, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def mlp() -> onnx.ModelProto:
    """x[N,16] -> Gemm -> Relu -> MatMul+Add -> Sigmoid -> y[N,4] (dynamic batch)."""
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "B1"], ["h1"], transB=1),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("MatMul", ["a1", "W2"], ["h2"]),
        helper.make_node("Add", ["h2", "B2"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["y"]),
    ]
    inits = [_w(rng, "W1", 32, 16), _w(rng, "B1", 32), _w(rng, "W2", 32, 4), _w(rng, "B2", 4)]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        inits,
    )


def cnn() -> onnx.ModelProto:
    """x[N,3,16,16] -> Conv -> BatchNormalization -> Relu -> MaxPool -> Conv -> AveragePool ->
    Flatten -> Gemm -> Softmax (dynamic batch)."""
    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node("Conv", ["x", "C1", "CB1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "S", "Bb", "M", "V"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "C2"], ["c2"], strides=[2, 2]),
        helper.make_node("AveragePool", ["c2"], ["p2"], kernel_shape=[3, 3]),
        helper.make_node("Flatten", ["p2"], ["f"]),
        helper.make_node("Gemm", ["f", "G", "GB"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=-1),
    ]
    var = numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "V")
    inits = [
        _w(rng, "C1", 8, 3, 3, 3),
        _w(rng, "CB1", 8),
        _w(rng, "S", 8),
        _w(rng, "Bb", 8),
        _w(rng, "M", 8),
        var,
        _w(rng, "C2", 6, 8, 3, 3),
        _w(rng, "G", 6, 5),
        _w(rng, "GB", 5),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        inits,
    )


def transformer_block() -> onnx.ModelProto:
    """One self-attention block over x[B,S,16] with dynamic batch and sequence: LayerNormalization,
    Q/K/V MatMuls, a head split by Reshape/Transpose, scaled scores, Softmax, output projection,
    residual Add, and a GELU-like MLP (Erf)."""
    rng = np.random.default_rng(3)
    d, h = 16, 2
    nodes = [
        helper.make_node("LayerNormalization", ["x", "ln_s", "ln_b"], ["xn"], axis=-1),
        helper.make_node("MatMul", ["xn", "Wq"], ["q"]),
        helper.make_node("MatMul", ["xn", "Wk"], ["k"]),
        helper.make_node("MatMul", ["xn", "Wv"], ["v"]),
        helper.make_node("Reshape", ["q", "heads"], ["q4"]),
        helper.make_node("Reshape", ["k", "heads"], ["k4"]),
        helper.make_node("Reshape", ["v", "heads"], ["v4"]),
        helper.make_node("Transpose", ["q4"], ["qt"], perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["v4"], ["vt"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["qt", "kt"], ["s"]),
        helper.make_node("Mul", ["s", "scale"], ["ss"]),
        helper.make_node("Softmax", ["ss"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "vt"], ["o4"]),
        helper.make_node("Transpose", ["o4"], ["ot"], perm=[0, 2, 1, 3]),
        helper.make_node("Shape", ["x"], ["xshape"]),
        helper.make_node("Reshape", ["ot", "xshape"], ["o"]),
        helper.make_node("MatMul", ["o", "Wo"], ["proj"]),
        helper.make_node("Add", ["x", "proj"], ["r"]),
        helper.make_node("MatMul", ["r", "W1"], ["m1"]),
        helper.make_node("Div", ["m1", "sqrt2"], ["m1s"]),
        helper.make_node("Erf", ["m1s"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["e1"]),
        helper.make_node("Mul", ["m1", "e1"], ["g0"]),
        helper.make_node("Mul", ["g0", "half"], ["g"]),
        helper.make_node("MatMul", ["g", "W2"], ["m2"]),
        helper.make_node("Add", ["r", "m2"], ["y"]),
    ]

    def const(name, value, dtype=np.float32):
        return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)

    inits = [
        const("ln_s", np.ones(d)),
        const("ln_b", np.zeros(d)),
        _w(rng, "Wq", d, d, scale=0.3),
        _w(rng, "Wk", d, d, scale=0.3),
        _w(rng, "Wv", d, d, scale=0.3),
        _w(rng, "Wo", d, d, scale=0.3),
        _w(rng, "W1", d, 4 * d, scale=0.3),
        _w(rng, "W2", 4 * d, d, scale=0.3),
        const("heads", [0, -1, h, d // h], np.int64),
        const("scale", 1 / np.sqrt(d // h)),
        const("sqrt2", np.sqrt(2.0)),
        const("one", 1.0),
        const("half", 0.5),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "S", d])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "S", d])],
        inits,
    )


def dynamic_reshape() -> onnx.ModelProto:
    """x[N,C] -> Shape -> Gather(0) -> Concat with -1 -> Reshape -> ReduceSum -> Tanh: int64 shape
    arithmetic that must stay on OpenVINO (its values come from a shape)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
        helper.make_node("Concat", ["n1", "two", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("ReduceSum", ["r", "axes"], ["rs"], keepdims=0),
        helper.make_node("Tanh", ["rs"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "zero1"),
        numpy_helper.from_array(np.array([2], np.int64), "two"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
        numpy_helper.from_array(np.array([2], np.int64), "axes"),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "C"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )


def _feed(shape: tuple[int, ...], seed: int = 0) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}


#: name -> (model builder, feeds for several shapes of the dynamic axes)
MODELS: dict[str, tuple[Callable[[], onnx.ModelProto], list[dict[str, np.ndarray]]]] = {
    "mlp": (mlp, [_feed((n, 16), n) for n in (1, 3, 8)]),
    "cnn": (cnn, [_feed((n, 3, 16, 16), n) for n in (1, 2)]),
    "transformer_block": (
        transformer_block,
        [_feed(s, i) for i, s in enumerate([(1, 5, 16), (2, 9, 16)])],
    ),
    "dynamic_reshape": (dynamic_reshape, [_feed(s, i) for i, s in enumerate([(2, 8), (3, 12)])]),
}


def placement(sess) -> dict[str, int]:
    """Nodes per provider, from the session's assignment info (fused entries list members)."""
    counts: dict[str, int] = {}
    for sub in sess.placements:
        counts[sub.ep_name] = counts.get(sub.ep_name, 0) + len(sub.get_nodes())
    return counts
