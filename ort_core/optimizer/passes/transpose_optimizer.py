"""BASIC: Transpose cancellation and push-through. Two Transposes in a row become one (or none,
when the permutations cancel). A Transpose followed by an elementwise unary op, or by a binary op
whose other operand is a constant, moves below that op (the constant is permuted) when what reads
the op's result is a Transpose, so the two meet and cancel."""

from __future__ import annotations

import numpy as np

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import add_initializer, all_graphs, bypass, constant

UNARY = {
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal",
    "Erf", "Elu", "Selu", "HardSigmoid", "Softplus", "Softsign", "Cast", "Clip", "Floor", "Ceil",
    "Round", "Sign", "Not", "Identity", "Gelu", "Sin", "Cos", "IsNaN", "HardSwish", "Mish",
}  # fmt: skip
BINARY = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Less", "Greater", "And", "Or"}


def _perm(n) -> list[int] | None:
    p = n.attr("perm")
    return None if p is None else list(p)


def _compose(first: list[int], second: list[int]) -> list[int]:
    """Transpose(Transpose(x, first), second) == Transpose(x, result)."""
    return [first[i] for i in second]


def _permuted_constant(c: np.ndarray, perm: list[int]) -> np.ndarray | None:
    """The constant as the op sees it after the Transpose moves below the op: broadcasting
    against transposed data becomes broadcasting against the data (inverse permutation)."""
    if c.ndim == 0:
        return c
    if c.ndim > len(perm):
        return None
    full = c.reshape((1,) * (len(perm) - c.ndim) + c.shape)
    inv = list(np.argsort(perm))
    return np.ascontiguousarray(full.transpose(inv))


def _pushable(g, op, x: str, perm: list[int]) -> bool:
    """Whether a Transpose producing ``x`` can move below ``op``."""
    if op.domain or len(op.outputs) != 1 or op.outputs[0] in g.outputs:
        return False
    if op.op_type in BINARY and len(op.inputs) == 2:
        k = 1 if op.inputs[0] == x else 0
        c = constant(g, op.inputs[k])
        return op.inputs[1 - k] == x and c is not None and _permuted_constant(c, perm) is not None
    extra = [i for i in op.inputs[1:] if i and constant(g, i) is None]
    return op.op_type in UNARY and op.inputs[0] == x and not extra


def _meets_transpose(g, op, consumers, depth: int = 8) -> bool:
    """Whether ``op``'s result reaches a Transpose through single-reader elementwise ops."""
    for _ in range(depth):
        users = consumers.get(op.outputs[0], [])
        if users and all(u.op_type == "Transpose" and not u.domain for u in users):
            return True
        if len(users) != 1 or op.outputs[0] in g.outputs:
            return False
        nxt = users[0]
        if nxt.domain or len(nxt.outputs) != 1 or nxt.op_type not in UNARY | BINARY:
            return False
        if nxt.op_type in BINARY and not any(constant(g, i) is not None for i in nxt.inputs):
            return False
        op = nxt
    return False


class TransposeOptimizer(GraphPass):
    name = "TransposeOptimizer"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            changed |= self._merge(g)
            changed |= self._push(g)
        return changed

    @staticmethod
    def _merge(g) -> bool:
        changed = False
        for n in list(g.nodes):
            if n.op_type != "Transpose" or n.domain or _perm(n) is None or n not in g.nodes:
                continue
            p = g.producers().get(n.inputs[0])
            if p is None or p.op_type != "Transpose" or p.domain or _perm(p) is None:
                continue
            perm = _compose(_perm(p), _perm(n))
            n.inputs[0] = p.inputs[0]
            n.set_attr("perm", perm)
            if not g.consumers().get(p.outputs[0]) and p.outputs[0] not in g.outputs:
                g.nodes.remove(p)
            if perm == list(range(len(perm))):
                bypass(g, n, n.inputs[0], n.outputs[0])
            changed = True
        return changed

    @staticmethod
    def _push(g) -> bool:
        changed = False
        for t in list(g.nodes):
            if t.op_type != "Transpose" or t.domain or _perm(t) is None or t not in g.nodes:
                continue
            consumers = g.consumers()
            users = consumers.get(t.outputs[0], [])
            if len(users) != 1 or t.outputs[0] in g.outputs:
                continue
            op = users[0]
            perm = _perm(t)
            if not _pushable(g, op, t.outputs[0], perm) or not _meets_transpose(g, op, consumers):
                continue
            if op.op_type in BINARY:
                k = 1 if op.inputs[0] == t.outputs[0] else 0
                pc = _permuted_constant(constant(g, op.inputs[k]), perm)
                op.inputs[k] = add_initializer(g, op.inputs[k] or "c", pc)
            # x -> T -> op -> y   becomes   x -> op -> T -> y
            x, mid, y = t.inputs[0], t.outputs[0], op.outputs[0]
            op.inputs = [x if i == mid else i for i in op.inputs]
            op.outputs = [mid]
            t.inputs, t.outputs = [mid], [y]
            g.value_types.pop(mid, None)
            i, j = g.nodes.index(t), g.nodes.index(op)
            g.nodes[i], g.nodes[j] = op, t
            changed = True
        return changed


PASS = TransposeOptimizer()
