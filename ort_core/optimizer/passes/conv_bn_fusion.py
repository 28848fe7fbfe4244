"""BASIC: fold an inference-mode BatchNormalization with constant parameters into the weights and
bias of the Conv that feeds it (when nothing else reads the Conv's output)."""

from __future__ import annotations

import numpy as np

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import GraphMaps, add_initializer, all_graphs, constant


def conv_weights(g, conv):
    """(W, B or None) of a Conv with constant float weights and bias, else None."""
    w = constant(g, conv.inputs[1]) if len(conv.inputs) > 1 else None
    b = constant(g, conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] else None
    if w is None or w.dtype.kind != "f" or (len(conv.inputs) > 2 and conv.inputs[2] and b is None):
        return None
    return w, b


def set_conv_weights(g, conv, w: np.ndarray, b: np.ndarray) -> None:
    """Give ``conv`` new weight and bias initializers (the old ones may be shared)."""
    conv.inputs[1] = add_initializer(g, conv.inputs[1], w.astype(w.dtype))
    name = add_initializer(g, conv.inputs[2] if len(conv.inputs) > 2 else "bias", b)
    conv.inputs[2:] = [name]


def single_reader(g, conv, op_type, consumers=None):
    """The only node reading ``conv``'s output when it is an ``op_type`` node, else None
    (``consumers``: ``g.consumers()`` as it is now, when the caller has it)."""
    out = conv.outputs[0]
    users = (g.consumers() if consumers is None else consumers).get(out, [])
    if out in g.outputs or len(users) != 1:
        return None
    u = users[0]
    return u if u.op_type == op_type and not u.domain and u.inputs[0] == out else None


class ConvBatchNormFusion(GraphPass):
    name = "ConvBNFusion"
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
                bn = single_reader(g, conv, "BatchNormalization", maps.consumers)
                if wb is None or bn is None or len([o for o in bn.outputs if o]) != 1:
                    continue
                if bn.attr("training_mode", 0) or (
                    model.opset("") < 7 and not bn.attr("is_test", 0)
                ):
                    continue
                params = [constant(g, i) for i in bn.inputs[1:5]]
                if any(p is None for p in params):
                    continue
                w, b = wb
                scale, shift, mean, var = (p.astype(np.float64) for p in params)
                if scale.ndim != 1 or scale.shape[0] != w.shape[0]:
                    continue
                a = scale / np.sqrt(var + float(bn.attr("epsilon", 1e-5)))
                b0 = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
                new_w = (w.astype(np.float64) * a.reshape(-1, *([1] * (w.ndim - 1)))).astype(
                    w.dtype
                )
                new_b = ((b0 - mean) * a + shift).astype(w.dtype)
                maps.remove_node(conv)  # the maps follow the rewrite: no rescan per fusion
                maps.remove_node(bn)
                set_conv_weights(g, conv, new_w, new_b)
                conv.outputs = [bn.outputs[0]]
                g.nodes.remove(bn)
                removed.add(id(bn))
                maps.add_node(conv)
                changed = True
        return changed


PASS = ConvBatchNormFusion()
