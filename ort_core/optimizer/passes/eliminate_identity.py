"""BASIC: remove Identity nodes on tensors (readers read the input instead)."""

from __future__ import annotations

from ...ir import Model
from .._infra import GraphOptimizationLevel, GraphPass
from .._util import all_graphs, bypass


class EliminateIdentity(GraphPass):
    name = "EliminateIdentity"
    level = GraphOptimizationLevel.ORT_ENABLE_BASIC

    def __call__(self, model: Model, ctx) -> bool:
        changed = False
        for g in all_graphs(model):
            for n in list(g.nodes):
                if n.op_type == "Identity" and not n.domain and n.inputs and n.inputs[0]:
                    changed |= bypass(g, n, n.inputs[0], n.outputs[0])
        return changed


PASS = EliminateIdentity()
