"""BASIC: fold a Mul or Add by a per-output-channel (or scalar) constant that follows a Conv with
constant weights into those weights and bias."""

from __future__ import annotations

import numpy as np

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import GraphMaps, all_graphs, constant
from .conv_bn_fusion import conv_weights, set_conv_weights


def per_channel(c: np.ndarray, m: int, rank: int) -> np.ndarray | None:
    """``c`` as an (M,) vector when it broadcasts against (N, M, spatial...) along M only."""
    if c.size == 1:
        return np.full(m, c.reshape(()), dtype=c.dtype)
    if c.ndim > rank or c.ndim < rank - 1:
        return None
    shape = (1,) * (rank - c.ndim) + c.shape
    if shape[0] != 1 or shape[1] != m or any(d != 1 for d in shape[2:]):
        return None
    return c.reshape(m)


class ConvAddMulFusion(GraphPass):
    name = "ConvAddMulFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            maps = GraphMaps(g)
            removed: set[int] = set()
            for conv in list(g.nodes):
                if conv.op_type != "Conv" or conv.domain or id(conv) in removed:
                    continue
                wb = conv_weights(g, conv)
                out = conv.outputs[0]
                users = maps.consumers.get(out, [])
                if wb is None or out in g.outputs or len(users) != 1:
                    continue
                op = users[0]
                if op.op_type not in ("Add", "Mul") or op.domain or len(op.inputs) != 2:
                    continue
                other = op.inputs[1] if op.inputs[0] == out else op.inputs[0]
                c = constant(g, other)
                w, b = wb
                if c is None or c.dtype != w.dtype or other == out:
                    continue
                c = per_channel(c, w.shape[0], w.ndim)
                if c is None:
                    continue
                b = np.zeros(w.shape[0], w.dtype) if b is None else b
                if op.op_type == "Mul":
                    w = w * c.reshape(-1, *([1] * (w.ndim - 1)))
                    b = b * c
                else:
                    b = b + c
                maps.remove_node(conv)  # the maps follow the rewrite: no rescan per fusion
                maps.remove_node(op)
                set_conv_weights(g, conv, w.astype(wb[0].dtype), b.astype(wb[0].dtype))
                conv.outputs = [op.outputs[0]]
                g.nodes.remove(op)
                removed.add(id(op))
                maps.add_node(conv)
                changed = True
        return changed


PASS = ConvAddMulFusion()
