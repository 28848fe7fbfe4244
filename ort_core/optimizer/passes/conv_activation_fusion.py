"""EXTENDED: Conv followed by an activation becomes com.microsoft FusedConv (activation and its
parameters as attributes), on providers that run FusedConv."""

from __future__ import annotations

import numpy as np

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, constant
from ._fusion import MS, accepted, can_fuse, new_node, replace, replace_reads


def activation_params(g, act, model) -> list[float] | None:
    """FusedConv's activation_params for ``act`` ([] when it has none), None when unfusable."""
    op = act.op_type
    if op in ("Relu", "Sigmoid", "Tanh"):
        return []
    if op == "LeakyRelu":
        return [float(act.attr("alpha", 0.01))]
    if op == "HardSigmoid":
        return [float(act.attr("alpha", 0.2)), float(act.attr("beta", 0.5))]
    if op == "Clip":
        if model.opset("") < 11:
            return [float(act.attr("min", -3.4028234663852886e38)),
                    float(act.attr("max", 3.4028234663852886e38))]  # fmt: skip
        bounds = []
        for i, default in ((1, np.finfo(np.float32).min), (2, np.finfo(np.float32).max)):
            if len(act.inputs) > i and act.inputs[i]:
                v = constant(g, act.inputs[i])
                if v is None:
                    return None
                bounds.append(float(v.reshape(())))
            else:
                bounds.append(float(default))
        return bounds
    return None


def single_activation(g, node, consumers=None):
    """The node reading ``node``'s only output when it is the only reader, else None
    (``consumers``: ``g.consumers()`` as it is now, when the caller has it: a pass that asks
    for every convolution made the map once per node, a scan of the whole graph each time)."""
    out = node.outputs[0]
    users = (g.consumers() if consumers is None else consumers).get(out, [])
    if out in g.outputs or len(users) != 1 or users[0].domain or users[0].inputs[0] != out:
        return None
    return users[0]


class ConvActivationFusion(GraphPass):
    name = "ConvActivationFusion"
    level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            consumers = g.consumers()  # kept up to date through each fusion
            for conv in list(g.nodes):
                if conv.op_type != "Conv" or conv.domain or len(conv.outputs) != 1:
                    continue
                act = single_activation(g, conv, consumers)
                if act is None:
                    continue
                params = activation_params(g, act, model)
                if params is None or not can_fuse(ctx, model, [conv, act], MS, "FusedConv"):
                    continue
                fused = new_node(
                    model, g, "FusedConv", list(conv.inputs), list(act.outputs),
                    provider=conv.provider, base=conv.name or "FusedConv",
                    activation=act.op_type, activation_params=params or None,
                )  # fmt: skip
                for k, a in conv.attributes.items():
                    fused.attributes[k] = a
                if not accepted(ctx, model, g, [fused]):
                    continue
                replace(g, act, [fused], [conv, act])
                replace_reads(consumers, [fused], [conv, act])
                changed = True
        return changed


PASS = ConvActivationFusion()
