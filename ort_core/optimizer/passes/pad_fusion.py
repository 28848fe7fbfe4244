"""BASIC: fold a constant zero Pad on the spatial axes into the pads of the Conv, or the
AveragePool counting padding (count_include_pad=1), that reads it."""

from __future__ import annotations

import numpy as np

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, constant


def _pads(g, pad, model) -> np.ndarray | None:
    """The Pad's pads as (begin..., end...) when it pads with zeros in constant mode."""
    if (pad.attr("mode", "constant") or "constant") != "constant":
        return None
    if model.opset("") < 11:
        pads, value = pad.attr("pads"), pad.attr("value", 0.0)
    else:
        pads = constant(g, pad.inputs[1]) if len(pad.inputs) > 1 else None
        value = 0.0
        if len(pad.inputs) > 2 and pad.inputs[2]:
            v = constant(g, pad.inputs[2])
            value = None if v is None or v.size != 1 else float(v.reshape(()))
        if len(pad.inputs) > 3 and pad.inputs[3]:
            return None  # axes input: leave it
    if pads is None or value != 0.0:
        return None
    pads = np.asarray(pads, dtype=np.int64)
    return None if (pads < 0).any() else pads


class PadFusion(GraphPass):
    name = "PadFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            for pad in list(g.nodes):
                if pad.op_type != "Pad" or pad.domain or pad.outputs[0] in g.outputs:
                    continue
                users = g.consumers().get(pad.outputs[0], [])
                if len(users) != 1:
                    continue
                op = users[0]
                if op.domain or op.inputs[0] != pad.outputs[0]:
                    continue
                if op.op_type == "AveragePool" and not op.attr("count_include_pad", 0):
                    continue
                if op.op_type not in ("Conv", "AveragePool"):
                    continue
                if (op.attr("auto_pad", "NOTSET") or "NOTSET") != "NOTSET":
                    continue
                pads = _pads(g, pad, model)
                if pads is None:
                    continue
                rank = len(pads) // 2
                if pads[:2].any() or pads[rank : rank + 2].any():
                    continue  # batch or channel padding is not a window padding
                old = op.attr("pads") or [0] * (2 * (rank - 2))
                sp = list(pads[2:rank]) + list(pads[rank + 2 :])
                op.set_attr("pads", [int(a) + int(b) for a, b in zip(old, sp)])
                op.inputs[0] = pad.inputs[0]
                g.nodes.remove(pad)
                changed = True
        return changed


PASS = PadFusion()
