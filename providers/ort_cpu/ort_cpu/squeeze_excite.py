"""Squeeze-and-excitation blocks as one compiled kernel of the CPU provider.

MobileNetV3-style networks (PP-OCR's classifier, recognizer and detector among them) scale every
block's channels by a gate computed from their means:

    p = GlobalAveragePool(x); a = act(Conv1x1(p, W1, B1)); s = gate(Conv1x1(a, W2, B2))
    y = Mul(x, s)

Six kernels, four of them on one-cell maps where a call costs more than its arithmetic, and two
passes over ``x``. The CPU provider claims such a group as a fused subgraph at partitioning
(:func:`find`) and compiles it (:func:`compile_block`) into one pass of
:func:`.kernels._se_jit.squeeze_excite`. Only at the EXTENDED optimization level and above (as
onnxruntime's fusions), with constant 1x1 weights of one group, float32 values, one reader of
every intermediate value; the activations Relu, Clip, HardSigmoid, LeakyRelu, HardSwish and
Sigmoid. A saved optimized model holds the six nodes (fused subgraphs are saved unfused).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ort_core.ir import Graph, Node, tensor_dtype, tensor_shape
from ort_core.provider import GraphView

from .kernels._elementwise_jit import ACT_CODES
from .kernels._se_jit import SIGMOID

#: activations the kernel computes, by op type: the compiled epilogues' codes and Sigmoid
GATES = {**ACT_CODES, "Sigmoid": SIGMOID}


def _gate_params(node: Node, constant: Callable[[str], Any]) -> tuple[int, float, float] | None:
    """(code, a, b) of an activation node, None when the kernel does not compute it."""
    code = GATES.get(node.op_type)
    if code is None or node.domain:
        return None
    if node.op_type == "HardSigmoid":
        return code, float(node.attr("alpha", 0.2)), float(node.attr("beta", 0.5))
    if node.op_type == "LeakyRelu":
        return code, float(node.attr("alpha", 0.01)), 0.0
    if node.op_type == "Clip":
        bounds = [float(node.attr("min", -np.inf)), float(node.attr("max", np.inf))]
        for i in (1, 2):  # opset 11: bounds as inputs, constants only
            if len(node.inputs) > i and node.inputs[i]:
                v = constant(node.inputs[i])
                if v is None or v.size != 1:
                    return None
                bounds[i - 1] = float(v.reshape(()))
        return code, bounds[0], bounds[1]
    return code, 0.0, 0.0


def _pointwise(node: Node, constant) -> tuple[np.ndarray, np.ndarray] | None:
    """(W (M, C), B (M)) float32 of a Conv with a constant 1x1 kernel of one group, no pads,
    strides or dilations; None otherwise."""
    if node.op_type != "Conv" or node.domain or len(node.inputs) < 2:
        return None
    w = constant(node.inputs[1])
    if w is None or w.ndim != 4 or w.shape[2:] != (1, 1) or w.dtype != np.float32:
        return None
    if int(node.attr("group", 1)) != 1 or node.attr("auto_pad", "NOTSET") not in (
        "NOTSET",
        "VALID",
    ):
        return None
    for name in ("pads", "strides", "dilations"):
        v = node.attr(name)
        if v is not None and any(d != (0 if name == "pads" else 1) for d in v):
            return None
    b = np.zeros(w.shape[0], np.float32)
    if len(node.inputs) > 2 and node.inputs[2]:
        b = constant(node.inputs[2])
        if b is None or b.shape != (w.shape[0],) or b.dtype != np.float32:
            return None
    return np.ascontiguousarray(w.reshape(w.shape[:2])), np.ascontiguousarray(b)


def _match(mul: Node, producers: dict, readers: dict, outputs: set, constant, type_of):
    """The block's six nodes in order, ending at ``mul``, or None."""
    if mul.op_type != "Mul" or mul.domain or len(mul.inputs) != 2:
        return None

    def sole(name: str, op: str | None = None) -> Node | None:
        p = producers.get(name)
        if p is None or name in outputs or len(readers.get(name, ())) != 1:
            return None
        return p if op is None or p.op_type == op else None

    for gate_in, x in (mul.inputs, mul.inputs[::-1]):
        gate = sole(gate_in)
        if gate is None or gate.op_type not in GATES:
            continue
        up = sole(gate.inputs[0], "Conv")
        act = sole(up.inputs[0]) if up is not None else None
        down = sole(act.inputs[0], "Conv") if act is not None and act.op_type in GATES else None
        pool = sole(down.inputs[0], "GlobalAveragePool") if down is not None else None
        if pool is None or pool.inputs[0] != x:
            continue
        xt = type_of(x)
        shape = tensor_shape(xt)
        if tensor_dtype(xt) != np.dtype(np.float32) or shape is None or len(shape) != 4:
            continue
        w1, w2 = _pointwise(down, constant), _pointwise(up, constant)
        if w1 is None or w2 is None:
            continue
        (m, c), (c2, m2) = w1[0].shape, w2[0].shape
        if m2 != m or c2 != c or (isinstance(shape[1], int) and shape[1] != c):
            continue
        if _gate_params(act, constant) is None or _gate_params(gate, constant) is None:
            continue
        return [pool, down, act, up, gate, mul]
    return None


def graph_maps(graph: Graph) -> tuple[dict, dict, set]:
    """``graph``'s producer of every value, readers of every value, and outputs (the fused
    claims' matchers ask who reads what)."""
    producers = {o: n for n in graph.nodes for o in n.outputs if o}
    readers: dict[str, list[Node]] = {}
    for n in graph.nodes:
        for i in n.inputs:
            if i:
                readers.setdefault(i, []).append(n)
    return producers, readers, set(graph.outputs)


def find(view: GraphView, claimed: set[int]) -> list[list[Node]]:
    """The squeeze-and-excitation blocks among ``view``'s nodes whose six nodes are all in
    ``claimed`` (ids of the nodes the CPU provider claims one by one)."""
    producers, readers, outputs = graph_maps(view.graph)
    blocks = []
    for n in view.nodes:
        if n.op_type != "Mul" or id(n) not in claimed:
            continue
        nodes = _match(n, producers, readers, outputs, view.constant, view.type_of)
        if nodes is not None and all(id(m) in claimed for m in nodes):
            blocks.append(nodes)
    return blocks


def compile_block(sub: Graph) -> Callable[..., Any]:
    """The callable of a fused block (``sub`` as :func:`find` chose it): ``run(x) -> [y]``."""
    from .kernels import _se_jit

    pool, down, act, up, gate, mul = sub.nodes

    def constant(name: str):
        return sub.initializers.get(name)

    (w1, b1), (w2, b2) = _pointwise(down, constant), _pointwise(up, constant)
    w1t, w2t = np.ascontiguousarray(w1.T), np.ascontiguousarray(w2.T)  # (C, M), (M, C)
    (code1, a1, c1), (code2, a2, c2) = _gate_params(act, constant), _gate_params(gate, constant)
    fn = _se_jit.warm()

    def run(x):
        if x.dtype != np.float32 or x.ndim != 4:  # (the types are static: never, in practice)
            raise TypeError(f"{sub.name}: expected a 4-D float32 input, got {x.dtype} {x.shape}")
        x3 = np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)
        y = np.empty(x3.shape, np.float32)
        fn(x3, w1t, b1, code1, a1, c1, w2t, b2, code2, a2, c2, y)
        return [y.reshape(x.shape)]

    return run
