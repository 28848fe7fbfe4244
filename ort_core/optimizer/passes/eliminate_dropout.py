"""BASIC: remove inference-mode Dropout whose mask output nobody reads."""

from __future__ import annotations

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, bypass, constant, use_counts


class EliminateDropout(GraphPass):
    name = "EliminateDropout"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            uses = use_counts(g)
            for n in list(g.nodes):
                if n.op_type != "Dropout" or n.domain or not n.inputs[0]:
                    continue
                if len(n.outputs) > 1 and n.outputs[1] and uses.get(n.outputs[1]):
                    continue
                if n.attr("is_test", 1) == 0:  # opset < 7 training flag
                    continue
                if len(n.inputs) > 2 and n.inputs[2]:
                    training = constant(g, n.inputs[2])
                    if training is None or bool(training):
                        continue
                changed |= bypass(g, n, n.inputs[0], n.outputs[0])
        return changed


PASS = EliminateDropout()
